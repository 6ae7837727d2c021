/**
 * Tool authorisation and the humans in the loop: where a running turn's `authorizeToolCall` and
 * `elicit` are decided or parked, where `resumeSession` and `resumeElicitation` answer what was
 * parked, and where pending confirmations are decided again when the session's permissions or
 * safety policy change. The decision rule itself (patterns, policies) is the pure
 * {@link decideToolCall} in `permissions.ts`.
 *
 * - `authorizeToolCall` validates the call, then decides by the session's current permissions and
 *   policy: approved and rejected calls answer at once; a call that needs asking is parked as a
 *   pending confirmation, announced with `tool_call_confirmation`, and waits for
 *   `resumeSession`. The wait rejects with the turn's cancellation reason when the turn is
 *   cancelled, and when the turn ends it is rejected.
 * - `elicit` parks an elicitation the same way (`elicitation_request`, answered by
 *   `resumeElicitation`).
 * - An answer is applied exactly once: it takes the pending entry first (a concurrent answer then
 *   finds nothing pending), applies what it persists (`approve-tool`, `approve-session`), and only
 *   then resolves the runtime's wait. If persisting fails the entry is put back and the call rejects.
 * - Every parked request is also persisted with the session (`pendingApprovals`) before it is
 *   announced, and removed when it is answered or its turn ends, so a restart keeps it: the
 *   manager then answers it through a resumed turn (`resumption.ts`).
 * - After permissions or the policy change (an edit, `approve-tool`, `approve-session`,
 *   `toggleToolApproval`), each pending confirmation is decided again and approved if the new rules
 *   approve it without asking. It is never rejected that way: a human was asked and answers it.
 */
import { InvalidArgumentError, invalidArgument } from '../errors.js';
import { cancellation } from '../internal/abort.js';
import { newId } from '../internal/ids.js';
import type { Logger } from '../logger.js';
import type {
  ElicitationRequest,
  ElicitationResult,
  ToolAuthorizationRequest,
  ToolDecision,
} from '../runtime.js';
import {
  type PendingApproval,
  type Permissions,
  PermissionsSchema,
  type SafetyPolicy,
  SafetyPolicySchema,
  type ToolCall,
  ToolCallSchema,
} from '../schemas.js';
import type { TelemetrySpan } from '../telemetry.js';
import type { EventInput } from './event-log.js';
import { optionalString } from './input.js';
import { PendingRequests } from './pending.js';
import { decideToolCall } from './permissions.js';
import type { SessionMetadata, SessionRecord } from './session-records.js';
import { Attr } from './turn-tracing.js';
import type { ResumeElicitationInput, ResumeInput } from './types.js';

/** What a pending confirmation remembers of the call. */
export interface ConfirmationInfo {
  toolCall: ToolCall;
  readOnly?: boolean;
  safe?: boolean;
}

/** What the snapshot shows of a pending elicitation. */
export interface ElicitationInfo {
  message: string;
  schema?: unknown;
  mode: 'form' | 'url';
  url?: string;
}

/** One session's requests that wait for a human, and the policy `toggleToolApproval` restores. */
export class SessionApprovals {
  readonly confirmations = new PendingRequests<ConfirmationInfo, ToolDecision>('tool confirmation');
  readonly elicitations = new PendingRequests<ElicitationInfo, ElicitationResult>('elicitation');
  /** The policy `toggleToolApproval` restores (kept in this process's memory). */
  previousPolicy: SafetyPolicy | undefined;

  /** Nothing waits and nothing is remembered. */
  get empty(): boolean {
    return this.confirmations.size === 0 && this.elicitations.size === 0 && this.previousPolicy === undefined;
  }

  /** Rejects what a turn parked (it ended without an answer). */
  rejectTurn(turnId: string, error: unknown): void {
    this.confirmations.rejectTurn(turnId, error);
    this.elicitations.rejectTurn(turnId, error);
  }

  /** Rejects everything parked (delete, close). */
  rejectAll(error: unknown): void {
    this.confirmations.rejectAll(error);
    this.elicitations.rejectAll(error);
  }
}

/** What a running turn hands {@link authorizeToolCall} and {@link elicit}. */
export interface TurnScope {
  turnId: string;
  /** The turn's signal: a parked request rejects with its reason when it aborts. */
  signal: AbortSignal;
  approvals: SessionApprovals;
  /** The session's metadata now (permissions and policy may change during the turn). */
  metadata(): Readonly<SessionMetadata>;
  /** Emits an event of the turn. */
  emit(event: EventInput): void;
  /** Where parked requests are persisted. */
  record: SessionRecord;
  /** False once the turn ended: a request whose persisting outlasted the turn is not parked. */
  active?(): boolean;
  /** The turn's span, when traced: each wait for a human is a child span of it. */
  span?: TelemetrySpan;
}

/**
 * Traces a wait for a human as a child span of the turn's (when traced): it ends with the answer
 * (`agent_sessions.human.answer`: `approved`, `rejected`, an elicitation's action, or `cancelled`
 * when the turn was cancelled meanwhile), or with the error that ended the wait.
 */
function tracedWait<T>(
  turn: TurnScope,
  name: string,
  attributes: Record<string, string>,
  wait: Promise<T>,
  answerOf: (answer: T) => string,
): Promise<T> {
  const parent = turn.span;
  if (parent === undefined) return wait;
  const span = parent.startChild(name, attributes);
  return wait.then(
    (answer) => {
      span.setAttributes({ [Attr.humanAnswer]: answerOf(answer) });
      span.end();
      return answer;
    },
    (error: unknown) => {
      // A turn cancelled while it waited: the wait ended without an answer, not with a failure.
      if (turn.signal.aborted) {
        span.setAttributes({ [Attr.humanAnswer]: 'cancelled' });
        span.end();
      } else span.end({ error });
      throw error;
    },
  );
}

/** After persisting: a turn that ended meanwhile parks nothing (its copy is removed again). */
async function assertStillActive(turn: TurnScope, id: string): Promise<void> {
  if (turn.signal.aborted || turn.active?.() === false) {
    await removePending(turn.record, (entry) => entry.id === id).catch(() => undefined);
    throw turn.signal.aborted ? turn.signal.reason : cancellation(`turn ${turn.turnId} ended`);
  }
}

/** Persists a parked request with the session (before it is announced). */
export async function persistPending(record: SessionRecord, entry: PendingApproval): Promise<void> {
  await record.update((current) => ({ pendingApprovals: [...(current.pendingApprovals ?? []), entry] }));
}

/** Removes the persisted requests `matches` selects; writes nothing when none matches. */
export async function removePending(
  record: SessionRecord,
  matches: (entry: PendingApproval) => boolean,
): Promise<void> {
  await record.update((current) => {
    const list = current.pendingApprovals;
    if (!list?.some(matches)) return undefined;
    const rest = list.filter((entry) => !matches(entry));
    return { pendingApprovals: rest.length > 0 ? rest : undefined };
  });
}

/** Decides a tool call for a running turn; may park it for a human (see the module documentation). */
export async function authorizeToolCall(
  turn: TurnScope,
  request: ToolAuthorizationRequest,
): Promise<ToolDecision> {
  const parsed = ToolCallSchema.safeParse(request?.toolCall);
  if (!parsed.success) throw invalidArgument('tool call', parsed.error);
  if (turn.signal.aborted) throw turn.signal.reason;
  const toolCall = parsed.data;
  const flags = {
    ...(request.readOnly === undefined ? {} : { readOnly: request.readOnly }),
    ...(request.safe === undefined ? {} : { safe: request.safe }),
  };
  const metadata = turn.metadata();
  const outcome = decideToolCall({
    toolCall,
    ...flags,
    permissions: metadata.permissions,
    safetyPolicy: metadata.safetyPolicy,
  });
  if (outcome.decision === 'approve') return { approved: true };
  if (outcome.decision === 'reject') return { approved: false, reason: outcome.reason };
  const confirmationId = newId('conf');
  await persistPending(turn.record, {
    kind: 'confirmation',
    id: confirmationId,
    turnId: turn.turnId,
    toolCall,
    ...flags,
    createdAt: new Date().toISOString(),
  });
  await assertStillActive(turn, confirmationId);
  const answer = turn.approvals.confirmations.add(
    confirmationId,
    turn.turnId,
    { toolCall, ...flags },
    turn.signal,
  );
  const traced = tracedWait(
    turn,
    `await_confirmation ${toolCall.name}`,
    {
      [Attr.confirmationId]: confirmationId,
      [Attr.toolName]: toolCall.name,
      [Attr.toolCallId]: toolCall.id,
    },
    answer,
    (decision) => (decision.approved ? 'approved' : 'rejected'),
  );
  turn.emit({ type: 'tool_call_confirmation', turnId: turn.turnId, toolCall, confirmationId });
  return traced;
}

/** Parks an elicitation for a running turn and announces it with `elicitation_request`. */
export async function elicit(turn: TurnScope, request: ElicitationRequest): Promise<ElicitationResult> {
  if (typeof request?.message !== 'string') {
    throw new InvalidArgumentError('invalid elicitation: message must be a string', {
      issues: [{ path: ['message'], message: 'expected a string' }],
    });
  }
  const mode = request.mode ?? 'form';
  if (mode !== 'form' && mode !== 'url') {
    throw new InvalidArgumentError('invalid elicitation: mode must be "form" or "url"', {
      issues: [{ path: ['mode'], message: 'expected "form" or "url"' }],
    });
  }
  if (mode === 'url' && typeof request.url !== 'string') {
    throw new InvalidArgumentError('invalid elicitation: url mode needs a url', {
      issues: [{ path: ['url'], message: 'expected a string' }],
    });
  }
  if (turn.signal.aborted) throw turn.signal.reason;
  const elicitationId = newId('elic');
  const info: ElicitationInfo = {
    message: request.message,
    mode,
    ...(request.schema === undefined ? {} : { schema: request.schema }),
    ...(request.url === undefined ? {} : { url: request.url }),
  };
  await persistPending(turn.record, {
    kind: 'elicitation',
    id: elicitationId,
    turnId: turn.turnId,
    ...info,
    createdAt: new Date().toISOString(),
  });
  await assertStillActive(turn, elicitationId);
  const answer = turn.approvals.elicitations.add(elicitationId, turn.turnId, info, turn.signal);
  const traced = tracedWait(
    turn,
    'await_elicitation',
    { [Attr.elicitationId]: elicitationId },
    answer,
    (result) => result.action,
  );
  turn.emit({ type: 'elicitation_request', turnId: turn.turnId, elicitationId, ...info });
  return traced;
}

const CONFIRMATIONS = new Set(['approve', 'approve-tool', 'approve-session', 'reject']);
const ELICITATION_ACTIONS = new Set(['accept', 'decline', 'cancel']);

/** What an answer needs of the session. */
export interface SessionScope {
  sessionId: string;
  approvals: SessionApprovals;
  record: SessionRecord;
  /** Rejects with `SESSION_NOT_FOUND` when the session does not exist (checked when nothing is pending). */
  assertExists(): Promise<void>;
  logger: Logger;
}

/** Drops the persisted copy of an answered request; a failure is logged (the turn's end retries). */
async function forgetPersisted(session: SessionScope, id: string): Promise<void> {
  try {
    await removePending(session.record, (entry) => entry.id === id);
  } catch (error) {
    session.logger.warn('removing an answered request from the record failed', {
      sessionId: session.sessionId,
      id,
      error,
    });
  }
}

/** Validates a `resumeSession` input before anything is looked up. */
export function parseResumeInput(input: ResumeInput): ResumeInput {
  if (!CONFIRMATIONS.has(input?.confirmation)) {
    throw new InvalidArgumentError(
      `invalid confirmation ${JSON.stringify(input?.confirmation)}: expected approve, approve-tool, approve-session or reject`,
      {
        issues: [
          { path: ['confirmation'], message: 'expected approve, approve-tool, approve-session or reject' },
        ],
      },
    );
  }
  const reason = optionalString(input.reason, 'reason');
  const toolName = optionalString(input.toolName, 'toolName');
  const confirmationId = optionalString(input.confirmationId, 'confirmationId');
  return {
    confirmation: input.confirmation,
    ...(reason === undefined ? {} : { reason }),
    ...(toolName === undefined ? {} : { toolName }),
    ...(confirmationId === undefined ? {} : { confirmationId }),
  };
}

/** Answers a pending confirmation (`resumeSession`); `input` was validated by {@link parseResumeInput}. */
export async function answerConfirmation(session: SessionScope, input: ResumeInput): Promise<void> {
  const { approvals, record } = session;
  if (approvals.confirmations.size === 0) await session.assertExists();
  const entry = approvals.confirmations.take(session.sessionId, input.confirmationId);
  try {
    if (input.confirmation === 'approve-tool') {
      const pattern = input.toolName ?? entry.info.toolCall.name;
      await record.update((current) =>
        current.permissions.allow.includes(pattern)
          ? undefined
          : { permissions: { ...current.permissions, allow: [...current.permissions.allow, pattern] } },
      );
    } else if (input.confirmation === 'approve-session') {
      await record.update(() => ({ safetyPolicy: 'autonomous' }));
    }
  } catch (error) {
    approvals.confirmations.restore(entry);
    throw error;
  }
  // Forgotten before the runtime goes on: a crash after this point never asks again for a call
  // that may already have run.
  await forgetPersisted(session, entry.id);
  if (input.confirmation === 'reject') {
    entry.resolve({ approved: false, reason: input.reason ?? 'The user rejected this tool call.' });
    return;
  }
  entry.resolve({ approved: true });
  if (input.confirmation !== 'approve') reconsiderPending(session);
}

/** Validates a `resumeElicitation` input before anything is looked up. */
export function parseElicitationInput(input: ResumeElicitationInput): ResumeElicitationInput {
  if (!ELICITATION_ACTIONS.has(input?.action)) {
    throw new InvalidArgumentError(
      `invalid elicitation action ${JSON.stringify(input?.action)}: expected accept, decline or cancel`,
      { issues: [{ path: ['action'], message: 'expected accept, decline or cancel' }] },
    );
  }
  const elicitationId = optionalString(input.elicitationId, 'elicitationId');
  return {
    action: input.action,
    ...(input.content === undefined ? {} : { content: input.content }),
    ...(elicitationId === undefined ? {} : { elicitationId }),
  };
}

/** Answers a pending elicitation (`resumeElicitation`). */
export async function answerElicitation(session: SessionScope, input: ResumeElicitationInput): Promise<void> {
  parseElicitationInput(input);
  const elicitationId = optionalString(input.elicitationId, 'elicitationId');
  const { approvals } = session;
  if (approvals.elicitations.size === 0) await session.assertExists();
  const entry = approvals.elicitations.take(session.sessionId, elicitationId);
  await forgetPersisted(session, entry.id);
  entry.resolve(
    input.action === 'accept'
      ? { action: 'accept', ...(input.content === undefined ? {} : { content: input.content }) }
      : { action: input.action },
  );
}

/**
 * Replaces the permission patterns, then decides the pending confirmations again. With a function,
 * the edit is atomic: it gets the current patterns under the metadata lock and returns the new
 * ones (or the same object for no change), so a concurrent edit is never lost.
 */
export async function setPermissions(
  session: SessionScope,
  permissions: Permissions | ((current: Permissions) => Permissions),
): Promise<void> {
  const parse = (value: unknown): Permissions => {
    const parsed = PermissionsSchema.safeParse(value);
    if (!parsed.success) throw invalidArgument('permissions', parsed.error);
    return parsed.data;
  };
  if (typeof permissions === 'function') {
    await session.record.update((current) => {
      const next = permissions(structuredClone(current.permissions));
      return next === undefined ? undefined : { permissions: parse(next) };
    });
  } else {
    const parsed = parse(permissions);
    await session.record.update(() => ({ permissions: parsed }));
  }
  reconsiderPending(session);
}

/** Sets the safety policy, then decides the pending confirmations again. */
export async function setSafetyPolicy(session: SessionScope, policy: SafetyPolicy): Promise<void> {
  const parsed = SafetyPolicySchema.safeParse(policy);
  if (!parsed.success) throw invalidArgument('safety policy', parsed.error);
  await session.record.update(() => ({ safetyPolicy: parsed.data }));
  reconsiderPending(session);
}

/**
 * Not `autonomous`: remembers the policy and sets `autonomous` (then decides the pending
 * confirmations again). `autonomous`: restores the remembered policy (`''` if none). Resolves to
 * the new policy.
 */
export async function toggleToolApproval(session: SessionScope): Promise<SafetyPolicy> {
  const { approvals } = session;
  let next: SafetyPolicy = 'autonomous';
  const before = approvals.previousPolicy;
  try {
    await session.record.update((current) => {
      if (current.safetyPolicy === 'autonomous') {
        next = approvals.previousPolicy ?? '';
        approvals.previousPolicy = undefined;
      } else {
        next = 'autonomous';
        approvals.previousPolicy = current.safetyPolicy;
      }
      return { safetyPolicy: next };
    });
  } catch (error) {
    approvals.previousPolicy = before;
    throw error;
  }
  if (next === 'autonomous') reconsiderPending(session);
  return next;
}

/**
 * After the permissions or the policy changed: approves each pending confirmation the new rules
 * approve without asking. Needs the cache (a running turn holds it); without one nothing is pending.
 */
export function reconsiderPending(session: Pick<SessionScope, 'approvals' | 'record'>): void {
  const metadata = session.record.cached?.meta;
  if (!metadata) return;
  for (const entry of session.approvals.confirmations.entries()) {
    const outcome = decideToolCall({
      ...entry.info,
      permissions: metadata.permissions,
      safetyPolicy: metadata.safetyPolicy,
    });
    if (outcome.decision === 'approve') entry.resolve({ approved: true });
  }
}
