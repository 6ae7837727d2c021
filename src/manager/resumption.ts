/**
 * Requests that outlived the process that asked them: answering them after a restart.
 *
 * A turn persists each request it parks for a human (`pendingApprovals`, see `authorization.ts`).
 * When the process dies, the record keeps them, and the history ends with the assistant message
 * whose calls wait. In a new process, nothing runs for the session, so `resumeSession` and
 * `resumeElicitation` come here:
 *
 * 1. The answer is recorded on the persisted request, in one write with what it persists
 *    (`approve-tool` adds the allow pattern, `approve-session` sets the policy). The usual rules
 *    apply: `NOTHING_PENDING` when none waits (or none with that id), `INVALID_ARGUMENT` when
 *    several wait and none is named. A request whose call already has a result is moot and ignored.
 * 2. Once every persisted request is answered, the answers go to the runtime:
 *    - a runtime with `canResume` gets a turn with no user message and `turn.resume` holding the
 *      decisions (and elicitation answers); it runs the approved calls and continues its loop. The
 *      turn runs like a started follow-up: its events go to the event log;
 *    - any other runtime cannot continue the old turn: each call is recorded as not run, with the
 *      reason (the rejection's, or that the runtime cannot resume), and no turn starts. The session
 *      stays usable.
 *    Either way the persisted requests are cleared in the same step.
 */
import { AgentSessionsError, ErrorCode, InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ElicitationResult, ToolCallDecision, ToolDecision, TurnResumption } from '../runtime.js';
import type { PendingApproval, Permissions, Session, SessionPatch } from '../schemas.js';
import type { Admission } from './admission.js';
import { notRunResult, openToolCallsOf } from './history-repair.js';
import type { LiveSession } from './live-session.js';
import type { RuntimePool } from './runtime-pool.js';
import type { SessionMetadata } from './session-records.js';
import type {
  PendingConfirmation,
  PendingElicitation,
  ResumeElicitationInput,
  ResumeInput,
} from './types.js';

/** What answering a persisted request needs of the manager. */
export interface ResumptionOptions {
  admission: Admission;
  runtimes: RuntimePool;
  logger: Logger;
}

type Answer =
  | { kind: 'confirmation'; input: ResumeInput }
  | { kind: 'elicitation'; input: ResumeElicitationInput };

/** The persisted requests still waiting: unanswered, and (for a call) without a result. */
function waiting(list: readonly PendingApproval[], open: ReadonlyMap<string, string>): PendingApproval[] {
  return list.filter(
    (entry) => entry.answer === undefined && (entry.kind !== 'confirmation' || open.has(entry.toolCall.id)),
  );
}

/** What a snapshot lists of the persisted requests of a session no turn runs for. */
export function persistedWaiting(session: Session): {
  confirmations: PendingConfirmation[];
  elicitations: PendingElicitation[];
} {
  const list = session.pendingApprovals ?? [];
  const confirmations: PendingConfirmation[] = [];
  const elicitations: PendingElicitation[] = [];
  if (list.length === 0) return { confirmations, elicitations };
  for (const entry of waiting(list, openToolCallsOf(session.items))) {
    if (entry.kind === 'confirmation') {
      confirmations.push({ confirmationId: entry.id, turnId: entry.turnId, toolCall: { ...entry.toolCall } });
    } else {
      elicitations.push({
        elicitationId: entry.id,
        turnId: entry.turnId,
        message: entry.message,
        mode: entry.mode,
        ...(entry.schema === undefined ? {} : { schema: structuredClone(entry.schema) }),
        ...(entry.url === undefined ? {} : { url: entry.url }),
      });
    }
  }
  return { confirmations, elicitations };
}

function select(
  sessionId: string,
  candidates: PendingApproval[],
  id: string | undefined,
  kind: string,
): PendingApproval {
  if (id !== undefined) {
    const entry = candidates.find((candidate) => candidate.id === id);
    if (!entry) {
      throw new AgentSessionsError(
        ErrorCode.NOTHING_PENDING,
        `no pending ${kind} ${JSON.stringify(id)} in session ${JSON.stringify(sessionId)}`,
      );
    }
    return entry;
  }
  if (candidates.length === 0) {
    throw new AgentSessionsError(
      ErrorCode.NOTHING_PENDING,
      `nothing pending: no ${kind} waits in session ${JSON.stringify(sessionId)}`,
    );
  }
  if (candidates.length > 1) {
    throw new InvalidArgumentError(
      `${candidates.length} ${kind}s are pending in session ${JSON.stringify(sessionId)}: name one by id`,
      { issues: [{ path: ['id'], message: 'required when several are pending' }] },
    );
  }
  return candidates[0] as PendingApproval;
}

function decisionOf(input: ResumeInput): ToolDecision {
  return input.confirmation === 'reject'
    ? { approved: false, reason: input.reason ?? 'The user rejected this tool call.' }
    : { approved: true };
}

function elicitationResultOf(input: ResumeElicitationInput): ElicitationResult {
  return input.action === 'accept'
    ? { action: 'accept', ...(input.content === undefined ? {} : { content: input.content }) }
    : { action: input.action };
}

/**
 * Records an answer to a persisted request and, once none waits, hands the answers to the runtime
 * (see the module documentation). `input` was validated by the caller.
 */
export async function answerPersisted(
  live: LiveSession,
  answer: Answer,
  options: ResumptionOptions,
): Promise<void> {
  const { record } = live;
  const cache = await record.load();
  const open = cache.openToolCalls();
  let complete: PendingApproval[] | undefined;
  await record.update((current: Readonly<SessionMetadata>): SessionPatch | undefined => {
    const list = current.pendingApprovals ?? [];
    const pending = waiting(list, open);
    const kind = answer.kind === 'confirmation' ? 'tool confirmation' : 'elicitation';
    const candidates = pending.filter((entry) => entry.kind === answer.kind);
    const id = answer.kind === 'confirmation' ? answer.input.confirmationId : answer.input.elicitationId;
    if (candidates.length === 0 && pending.length === 0 && list.some((entry) => entry.answer !== undefined)) {
      // Every request was answered but handing the answers over failed: hand them over again.
      complete = [...list];
      return undefined;
    }
    const entry = select(record.id, candidates, id, kind);
    const patch: SessionPatch = {};
    let answered: PendingApproval;
    if (answer.kind === 'confirmation' && entry.kind === 'confirmation') {
      answered = { ...entry, answer: decisionOf(answer.input) };
      if (answer.input.confirmation === 'approve-tool') {
        const pattern = answer.input.toolName ?? entry.toolCall.name;
        if (!current.permissions.allow.includes(pattern)) {
          const permissions: Permissions = {
            ...current.permissions,
            allow: [...current.permissions.allow, pattern],
          };
          patch.permissions = permissions;
        }
      } else if (answer.input.confirmation === 'approve-session') {
        patch.safetyPolicy = 'autonomous';
      }
    } else if (answer.kind === 'elicitation' && entry.kind === 'elicitation') {
      answered = { ...entry, answer: elicitationResultOf(answer.input) } as PendingApproval;
    } else {
      throw new Error('unreachable: the candidates have the answer kind');
    }
    const next = list.map((candidate) => (candidate === entry ? answered : candidate));
    if (waiting(next, open).length === 0) complete = next;
    patch.pendingApprovals = next;
    return patch;
  });
  if (complete !== undefined) await handOver(live, complete, options);
}

/** Hands every answer to the runtime: a resumed turn, or the calls recorded as not run. */
async function handOver(
  live: LiveSession,
  answered: PendingApproval[],
  options: ResumptionOptions,
): Promise<void> {
  const { admission, runtimes, logger } = options;
  const cache = await live.record.load();
  const open = cache.openToolCalls();
  const decisions: ToolCallDecision[] = [];
  const elicitations: NonNullable<TurnResumption['elicitations']> = [];
  for (const entry of answered) {
    if (entry.kind === 'confirmation') {
      if (entry.answer !== undefined && open.has(entry.toolCall.id)) {
        decisions.push({ toolCall: { ...entry.toolCall }, decision: entry.answer });
      }
    } else if (entry.answer !== undefined) {
      elicitations.push({
        elicitationId: entry.id,
        request: {
          message: entry.message,
          mode: entry.mode,
          ...(entry.schema === undefined ? {} : { schema: entry.schema }),
          ...(entry.url === undefined ? {} : { url: entry.url }),
        },
        result: entry.answer as ElicitationResult,
      });
    }
  }
  const runtime = await runtimes.forSession(cache);
  if (runtime.canResume === true) {
    await admission.admit(live, {
      messages: [],
      resume: { decisions, ...(elicitations.length === 0 ? {} : { elicitations }) },
      onDetach: 'continue',
      detached: true,
    });
    return;
  }
  await admission.whileIdle(live, async () => {
    const results = decisions.map(({ toolCall, decision }) =>
      notRunResult(
        toolCall.id,
        toolCall.name,
        decision.approved
          ? 'it was approved after the process that ran the turn had stopped, and this runtime cannot resume tool calls.'
          : `it was rejected: ${decision.reason}`,
      ),
    );
    if (results.length > 0)
      await live.record.append(results.map((message) => ({ kind: 'message', message })));
    await live.record.exclusive(() => live.record.patch({ pendingApprovals: undefined }));
  });
  if (elicitations.length > 0) {
    logger.warn('answers to elicitations of a turn that is gone were dropped: the runtime cannot resume', {
      sessionId: live.id,
      elicitationIds: elicitations.map((entry) => entry.elicitationId),
    });
  }
}
