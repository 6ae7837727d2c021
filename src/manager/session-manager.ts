import { EventEmitter } from 'eventemitter3';
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  invalidArgument,
  SessionBusyError,
  SessionNotFoundError,
  toAgentSessionsError,
} from '../errors.js';
import type { SessionEvent } from '../events.js';
import { throwIfAborted } from '../internal/abort.js';
import { cloneRecord } from '../internal/clone.js';
import { newId } from '../internal/ids.js';
import { type Logger, silentLogger } from '../logger.js';
import type { ModelChoice, Runtime } from '../runtime.js';
import {
  assertSessionId,
  type ExportBundle,
  ExportBundleSchema,
  emptyUsage,
  type Message,
  type Permissions,
  PermissionsSchema,
  parseSession,
  type SafetyPolicy,
  SafetyPolicySchema,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
  type SummaryItem,
  SummaryItemSchema,
} from '../schemas.js';
import { redactSourceRef } from '../sources/match.js';
import type { ResolvedSource, SourceResolver } from '../sources.js';
import type { ListOptions, Page, Store } from '../store.js';
import { MemoryStore } from '../stores/memory.js';
import { type EventLog, EventLogs } from './event-log.js';
import { normalizeMessage, normalizeMessages } from './messages.js';
import { decideToolCall } from './permissions.js';
import { RuntimePool } from './runtime-pool.js';
import { SessionCache, SessionState } from './session-state.js';
import { ActiveRun, cancellation, type RunHost } from './turn-runner.js';
import type {
  AvailableModels,
  FollowUpOptions,
  ImportOptions,
  ManagerEvents,
  MessageInput,
  ResumeElicitationInput,
  ResumeInput,
  RunInput,
  RunOptions,
  SessionManagerOptions,
  SessionSnapshot,
  SessionTemplate,
  TitleGenerator,
  TurnStream,
} from './types.js';
import { validateWorkingDir } from './working-dir.js';

const CONFIRMATIONS = new Set(['approve', 'approve-tool', 'approve-session', 'reject']);
const ELICITATION_ACTIONS = new Set(['accept', 'decline', 'cancel']);

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`invalid option ${name}: expected a positive integer`, {
      issues: [{ path: [name], message: 'expected a positive integer' }],
    });
  }
  return value;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`invalid ${name}: expected a non-empty string`, {
      issues: [{ path: [name], message: 'expected a non-empty string' }],
    });
  }
  return value;
}

/**
 * Owns AI-agent chat sessions: their records (in a {@link Store}), their turns (driven through a
 * {@link Runtime} per session), their live events (a replayable log per session) and the humans in
 * the loop (tool confirmations, elicitations, steering, follow-ups).
 *
 * Every method validates its input before writing anything and rejects with an
 * {@link AgentSessionsError}. After {@link close}, every method rejects with `CLOSED`.
 */
export class SessionManager {
  /** The manager's own events: `session_created`, `session_deleted`, `turn_started`, `turn_ended`. */
  readonly events = new EventEmitter<ManagerEvents>();
  /** The store sessions live in. */
  readonly store: Store;

  readonly #sources: SourceResolver | undefined;
  readonly #titleGenerator: TitleGenerator | undefined;
  readonly #workingDirRoot: string | undefined;
  readonly #logger: Logger;
  readonly #capacities: { steer: number; followUp: number; keys: number };
  readonly #logs: EventLogs;
  readonly #pool: RuntimePool;
  readonly #states = new Map<string, SessionState>();
  /** Ids deleted by this manager: a late event or subscriber must not bring them back. */
  readonly #deleted = new Set<string>();
  /** Work that must end before `waitStopped` resolves, per session. */
  readonly #working = new Map<string, Set<Promise<unknown>>>();
  readonly #host: RunHost;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: SessionManagerOptions) {
    if (typeof options?.runtime !== 'function') {
      throw new InvalidArgumentError('SessionManager needs a runtime factory', {
        issues: [{ path: ['runtime'], message: 'expected a function' }],
      });
    }
    this.store = options.store ?? new MemoryStore();
    this.#sources = options.sources;
    this.#titleGenerator = options.titleGenerator;
    this.#workingDirRoot = options.workingDirRoot;
    this.#logger = options.logger ?? silentLogger;
    this.#capacities = {
      steer: positiveInteger(options.steerCapacity, 5, 'steerCapacity'),
      followUp: positiveInteger(options.followUpCapacity, 20, 'followUpCapacity'),
      keys: positiveInteger(options.idempotencyKeys, 256, 'idempotencyKeys'),
    };
    this.#logs = new EventLogs({
      capacity: positiveInteger(options.eventLogCapacity, 1024, 'eventLogCapacity'),
      releaseAfterMs: options.eventLogReleaseAfterMs ?? 300_000,
    });
    this.#pool = new RuntimePool({
      factory: options.runtime,
      idleTtlMs: options.idleRuntimeTtlMs ?? 900_000,
      logger: this.#logger,
      onIdleClose: (sessionId) => {
        const state = this.#states.get(sessionId);
        if (state && !state.run) state.cache = undefined;
        this.#forgetIfIdle(sessionId);
      },
    });
    this.#host = {
      store: this.store,
      logger: this.#logger,
      events: this.events,
      titleGenerator: this.#titleGenerator,
      loadCache: (state) => this.#loadCache(state),
      track: (sessionId, work) => this.#track(sessionId, work),
      releaseRuntime: (sessionId) => this.#pool.releaseHold(sessionId),
    };
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Creates and persists a session. Validates the id (generated, sortable by time, when omitted) and
   * the working dir (no `..`, absolute, an existing directory, inside `workingDirRoot` after
   * resolving symlinks) before writing. A template title sets `titleSource: 'manual'`.
   */
  async createSession(template: SessionTemplate = {}): Promise<Session> {
    this.#assertOpen();
    if (typeof template !== 'object' || template === null) {
      throw new InvalidArgumentError('invalid session template: expected an object', {
        issues: [{ path: [], message: 'expected an object' }],
      });
    }
    if (template.id !== undefined) assertSessionId(template.id);
    if (template.workingDir !== undefined)
      await validateWorkingDir(template.workingDir, this.#workingDirRoot);
    const now = new Date().toISOString();
    const title = template.title ?? '';
    const session = parseSession({
      ...template,
      id: template.id ?? newId('ses'),
      title,
      titleSource: title !== '' ? 'manual' : (template.titleSource ?? 'none'),
      starred: template.starred ?? false,
      items: template.items ?? [],
      usage: template.usage ?? emptyUsage(),
      safetyPolicy: template.safetyPolicy ?? '',
      permissions: template.permissions ?? { allow: [], ask: [], deny: [] },
      agentModelOverrides: template.agentModelOverrides ?? {},
      customModelsUsed: template.customModelsUsed ?? [],
      attributes: template.attributes ?? {},
      createdAt: now,
      updatedAt: now,
    });
    await this.store.createSession(session);
    this.#deleted.delete(session.id);
    this.events.emit('session_created', { session: cloneRecord(session) });
    return session;
  }

  /** The whole session, from the store. `SESSION_NOT_FOUND`. */
  async getSession(id: string): Promise<Session> {
    this.#assertOpen();
    assertSessionId(id);
    return this.store.getSession(id);
  }

  /** Session summaries, newest first (see {@link ListOptions}). */
  async listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    this.#assertOpen();
    return this.store.listSessions(options);
  }

  // ---------------------------------------------------------------- turns

  /**
   * Starts a turn. Everything that can be refused is refused before anything is written (unknown
   * session, `SESSION_BUSY`, `SOURCE_NOT_FOUND`, `MODEL_SWITCHING_NOT_SUPPORTED`, invalid input).
   * Then, in order: the model override, the agent/source switch, the user messages. If one of those
   * writes fails, the override is rolled back, the lock released and the call rejects. Resolves to
   * the {@link TurnStream} once the writes succeeded; the runtime is driven from then on.
   */
  async runSession(id: string, input: RunInput, options: RunOptions = {}): Promise<TurnStream> {
    this.#assertOpen();
    assertSessionId(id);
    const messages = normalizeMessages(input?.messages);
    const source = optionalString(input.source, 'source');
    const agent = optionalString(input.agent, 'agent');
    const model = optionalString(input.model, 'model');
    if (options.onDetach !== undefined && options.onDetach !== 'cancel' && options.onDetach !== 'continue') {
      throw new InvalidArgumentError('invalid onDetach: expected "cancel" or "continue"', {
        issues: [{ path: ['onDetach'], message: 'expected "cancel" or "continue"' }],
      });
    }
    throwIfAborted(options.signal);
    const run = await this.#admit(id, {
      messages,
      ...(source === undefined ? {} : { source }),
      ...(agent === undefined ? {} : { agent }),
      ...(model === undefined ? {} : { model }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onDetach: options.onDetach ?? 'cancel',
      detached: false,
    });
    return run.stream;
  }

  /** Cancels the running turn (stop reason `cancelled`); false when none runs. */
  async cancelTurn(id: string, reason?: unknown): Promise<boolean> {
    this.#assertOpen();
    assertSessionId(id);
    const run = this.#states.get(id)?.run;
    if (!run) return false;
    run.cancel(reason ?? cancellation('cancelTurn was called'));
    return true;
  }

  /**
   * Queues messages for the running turn; the runtime drains them with `takeSteering()`. Messages no
   * turn took run as the next turn, before follow-ups. `SESSION_NOT_RUNNING` when no turn runs,
   * `SESSION_NOT_FOUND` for an unknown session, `QUEUE_FULL` past `steerCapacity` (nothing of the
   * call is queued), `INVALID_ARGUMENT` for an empty list.
   */
  async steerSession(id: string, messages: MessageInput[]): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    const normalized = normalizeMessages(messages);
    let state = this.#states.get(id);
    if (!state?.run) {
      // An unknown session is not found rather than merely idle.
      await this.#assertExists(id);
      state = this.#states.get(id);
    }
    if (!state?.run) {
      throw new AgentSessionsError(
        ErrorCode.SESSION_NOT_RUNNING,
        `no turn runs in session ${JSON.stringify(id)}`,
      );
    }
    state.steer.push(id, normalized);
  }

  /**
   * While a turn runs: queues the messages to run as their own turn after it, in the same
   * TurnStream (`'queued'`). When idle: starts that turn now, its events going to the event log
   * (`'started'`). A repeated idempotency key delivers nothing (`'duplicate'`); a delivery that fails
   * releases its key.
   */
  async followUpSession(
    id: string,
    messages: MessageInput[],
    options: FollowUpOptions = {},
  ): Promise<{ status: 'queued' | 'started' | 'duplicate' }> {
    this.#assertOpen();
    assertSessionId(id);
    const normalized = normalizeMessages(messages);
    const key = optionalString(options.idempotencyKey, 'idempotencyKey');
    const state = this.#state(id);
    if (key !== undefined && !state.keys.claim(key)) return { status: 'duplicate' };
    try {
      if (state.run) {
        state.followUps.push(id, [
          { messages: normalized, ...(key === undefined ? {} : { idempotencyKey: key }) },
        ]);
        return { status: 'queued' };
      }
      await this.#admit(id, { messages: normalized, onDetach: 'continue', detached: true });
      return { status: 'started' };
    } catch (error) {
      if (key !== undefined) state.keys.release(key);
      this.#forgetIfIdle(id);
      throw error;
    }
  }

  /**
   * Answers a pending `tool_call_confirmation`: `approve`; `approve-tool` (also always allow the
   * tool in this session, persisted); `approve-session` (policy `autonomous`, persisted); `reject`
   * (the runtime gets `reason`). `INVALID_ARGUMENT` for an unknown value or when several are
   * pending and no `confirmationId` is given; `NOTHING_PENDING` when none waits.
   */
  async resumeSession(id: string, input: ResumeInput): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
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
    const state = await this.#stateWithPending(id, 'confirmations');
    const entry = state.confirmations.take(id, confirmationId);
    try {
      if (input.confirmation === 'approve-tool') {
        const pattern = toolName ?? entry.info.toolCall.name;
        await this.#updateMetadata(state, (session) =>
          session.permissions.allow.includes(pattern)
            ? undefined
            : { permissions: { ...session.permissions, allow: [...session.permissions.allow, pattern] } },
        );
      } else if (input.confirmation === 'approve-session') {
        await this.#updateMetadata(state, () => ({ safetyPolicy: 'autonomous' }));
      }
    } catch (error) {
      state.confirmations.restore(entry);
      throw error;
    }
    if (input.confirmation === 'reject') {
      entry.resolve({ approved: false, reason: reason ?? 'The user rejected this tool call.' });
      return;
    }
    entry.resolve({ approved: true });
    if (input.confirmation !== 'approve') this.#reconsiderPending(state);
  }

  /** Answers a pending `elicitation_request` (same error rules as {@link resumeSession}). */
  async resumeElicitation(id: string, input: ResumeElicitationInput): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    if (!ELICITATION_ACTIONS.has(input?.action)) {
      throw new InvalidArgumentError(
        `invalid elicitation action ${JSON.stringify(input?.action)}: expected accept, decline or cancel`,
        { issues: [{ path: ['action'], message: 'expected accept, decline or cancel' }] },
      );
    }
    const elicitationId = optionalString(input.elicitationId, 'elicitationId');
    const state = await this.#stateWithPending(id, 'elicitations');
    const entry = state.elicitations.take(id, elicitationId);
    entry.resolve(
      input.action === 'accept'
        ? { action: 'accept', ...(input.content === undefined ? {} : { content: input.content }) }
        : { action: input.action },
    );
  }

  // ---------------------------------------------------------------- events

  /**
   * The session's events: the kept backlog after `since` (all of it when omitted; a `gap` first if
   * some were dropped or `since` is beyond the log, e.g. from before a restart), then live events,
   * gapless and without duplicates. Ends after `session_exited`. A subscriber that falls
   * `eventLogCapacity` behind ends with `SUBSCRIBER_LAGGED`. Errors (`SESSION_NOT_FOUND`,
   * `INVALID_ARGUMENT`, the signal's reason) surface on the first `next()`.
   */
  streamEvents(
    id: string,
    options: { since?: number; signal?: AbortSignal } = {},
  ): AsyncIterable<SessionEvent> {
    const manager = this;
    return {
      [Symbol.asyncIterator](): AsyncIterator<SessionEvent> {
        let inner: AsyncIterator<SessionEvent> | undefined;
        let opening: Promise<AsyncIterator<SessionEvent>> | undefined;
        let finished = false;
        const open = async () => {
          manager.#assertOpen();
          assertSessionId(id);
          throwIfAborted(options.signal);
          await manager.#assertExists(id);
          throwIfAborted(options.signal);
          return manager.#liveLog(id).subscribe({
            ...(options.since === undefined ? {} : { since: options.since }),
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          });
        };
        return {
          // Once open, the log's own promise is handed out: an async wrapper would add ticks per
          // event, enough for a reader to fall behind a runtime that yields without I/O.
          next: () => {
            if (finished) return Promise.resolve({ value: undefined, done: true });
            if (inner) return inner.next();
            return (async () => {
              opening ??= open();
              try {
                inner = await opening;
              } catch (error) {
                finished = true;
                throw error;
              }
              return inner.next();
            })();
          },
          return: async () => {
            finished = true;
            if (!inner && opening) inner = await opening.catch(() => undefined);
            await inner?.return?.();
            return { value: undefined, done: true };
          },
        };
      },
    };
  }

  /**
   * What a reconnecting client needs: the session, whether a turn is admitted and running, the
   * agent, the last event seq (tail with `since: lastEventSeq`), pending requests and queues.
   */
  async getSessionSnapshot(id: string): Promise<SessionSnapshot> {
    this.#assertOpen();
    assertSessionId(id);
    const session = await this.store.getSession(id);
    // The log must exist before lastEventSeq is read, so tailing from it misses nothing.
    const log = this.#liveLog(id);
    const state = this.#states.get(id);
    return {
      session,
      streaming: state?.run?.admitted === true,
      ...(session.agent === undefined ? {} : { agent: session.agent }),
      lastEventSeq: log.lastSeq,
      pending: {
        confirmations: (state?.confirmations.entries() ?? []).map((entry) => ({
          confirmationId: entry.id,
          turnId: entry.turnId,
          toolCall: cloneRecord(entry.info.toolCall),
        })),
        elicitations: (state?.elicitations.entries() ?? []).map((entry) => ({
          elicitationId: entry.id,
          turnId: entry.turnId,
          ...cloneRecord(entry.info),
        })),
      },
      queues: {
        steer: cloneRecord([...(state?.steer.peek() ?? [])]),
        followUp: cloneRecord((state?.followUps.peek() ?? []).map((followUp) => followUp.messages)),
      },
    };
  }

  // ---------------------------------------------------------------- models

  /**
   * Switches (or with no `modelRef`, clears) the model of the agent in force; persisted in
   * `agentModelOverrides` (under `'default'` when the session has no agent), refs with `/` added to
   * `customModelsUsed`. The runtime and the record agree after a failure of either step.
   */
  async setSessionModel(id: string, modelRef?: string): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    const ref = optionalString(modelRef, 'modelRef');
    const state = this.#state(id);
    try {
      await state.metadata.runExclusive(async () => {
        const cache = await this.#loadCache(state);
        const runtime = await this.#runtimeFor(state, cache);
        await this.#applyModel(state, cache, runtime, cache.meta.agent ?? 'default', ref);
      });
    } finally {
      this.#forgetIfIdle(id);
    }
  }

  /** The runtime's models for the agent in force, each marked `current`, then the custom refs used. */
  async getAvailableModels(id: string): Promise<AvailableModels> {
    this.#assertOpen();
    assertSessionId(id);
    const state = this.#state(id);
    let cache: SessionCache;
    let runtime: Runtime;
    try {
      cache = await this.#loadCache(state);
      runtime = await this.#runtimeFor(state, cache);
    } finally {
      this.#forgetIfIdle(id);
    }
    const agent = cache.meta.agent ?? 'default';
    const current = cache.meta.agentModelOverrides[agent];
    let listed: ModelChoice[] = [];
    if (runtime.availableModels) {
      try {
        listed = await runtime.availableModels(agent);
      } catch (error) {
        throw toAgentSessionsError(
          error,
          ErrorCode.RUNTIME_FAILED,
          `runtime could not list models for ${agent}`,
        );
      }
    }
    const models = listed.map((choice) => ({ ...choice, current: choice.ref === current }));
    for (const ref of cache.meta.customModelsUsed) {
      if (!models.some((choice) => choice.ref === ref)) models.push({ ref, current: ref === current });
    }
    return { agent, ...(current === undefined ? {} : { current }), models };
  }

  // ---------------------------------------------------------------- metadata

  /** Sets the title by hand (`titleSource: 'manual'`, which stops automatic titling; `''` clears it). */
  async updateSessionTitle(id: string, title: string): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    if (typeof title !== 'string') {
      throw new InvalidArgumentError('invalid title: expected a string', {
        issues: [{ path: ['title'], message: 'expected a string' }],
      });
    }
    const state = this.#state(id);
    await this.#updateMetadata(state, () => ({ title, titleSource: title === '' ? 'none' : 'manual' }));
    this.#logs.get(id)?.append({ type: 'session_title', title });
  }

  /** Stars or unstars a session (listings can filter on it). Allowed during a turn. */
  async setSessionStarred(id: string, starred: boolean): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    if (typeof starred !== 'boolean') {
      throw new InvalidArgumentError('invalid starred: expected a boolean', {
        issues: [{ path: ['starred'], message: 'expected a boolean' }],
      });
    }
    await this.#updateMetadata(this.#state(id), () => ({ starred }));
  }

  /**
   * Replaces the tool permission patterns; a running turn's next authorisation uses them, and
   * pending confirmations that the new patterns approve without asking are approved (never
   * rejected: a human was asked and answers them).
   */
  async updateSessionPermissions(id: string, permissions: Permissions): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    const parsed = PermissionsSchema.safeParse(permissions);
    if (!parsed.success) throw invalidArgument('permissions', parsed.error);
    const state = this.#state(id);
    await this.#updateMetadata(state, () => ({ permissions: parsed.data }));
    this.#reconsiderPending(state);
  }

  /**
   * Sets the tool safety policy (`INVALID_ARGUMENT` for an unknown one). Like
   * {@link updateSessionPermissions}, pending confirmations the new policy approves are approved.
   */
  async setSessionSafetyPolicy(id: string, policy: SafetyPolicy): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    const parsed = SafetyPolicySchema.safeParse(policy);
    if (!parsed.success) throw invalidArgument('safety policy', parsed.error);
    const state = this.#state(id);
    await this.#updateMetadata(state, () => ({ safetyPolicy: parsed.data }));
    this.#reconsiderPending(state);
  }

  /**
   * Not `autonomous`: remembers the policy and sets `autonomous`. `autonomous`: restores the
   * remembered policy (`''` if none). Resolves to the new policy. The remembered policy lives in
   * this manager's memory.
   */
  async toggleToolApproval(id: string): Promise<SafetyPolicy> {
    this.#assertOpen();
    assertSessionId(id);
    const state = this.#state(id);
    let next: SafetyPolicy = 'autonomous';
    const before = state.previousPolicy;
    try {
      await this.#updateMetadata(state, (session) => {
        if (session.safetyPolicy === 'autonomous') {
          next = state.previousPolicy ?? '';
          state.previousPolicy = undefined;
        } else {
          next = 'autonomous';
          // Remembered before the write: #updateMetadata drops a state that holds nothing, and this
          // state must not be dropped with the policy it has to restore.
          state.previousPolicy = session.safetyPolicy;
        }
        return { safetyPolicy: next };
      });
    } catch (error) {
      state.previousPolicy = before;
      throw error;
    }
    if (next === 'autonomous') this.#reconsiderPending(state);
    this.#forgetIfIdle(id);
    return next;
  }

  // ---------------------------------------------------------------- history edits

  /** Appends a message. `SESSION_BUSY` while a turn runs. Resolves to the stored message. */
  async addMessage(
    id: string,
    message: Message | (Partial<Message> & { content: string }) | string,
  ): Promise<Message> {
    this.#assertOpen();
    assertSessionId(id);
    const normalized = normalizeMessage(message);
    return this.#whileIdle(id, async (state) => {
      const item: SessionItem = { kind: 'message', message: normalized };
      await this.store.appendItems(id, [item]);
      state.cache?.push([cloneRecord(item)]);
      return cloneRecord(normalized);
    });
  }

  /** Replaces a message. `SESSION_BUSY` while a turn runs; `MESSAGE_NOT_FOUND`. */
  async updateMessage(
    id: string,
    messageId: string,
    message: Partial<Message> & { content: string },
  ): Promise<Message> {
    this.#assertOpen();
    assertSessionId(id);
    const normalized = normalizeMessage({ ...message, id: messageId });
    return this.#whileIdle(id, async (state) => {
      await this.store.updateMessage(id, messageId, normalized);
      state.cache?.replaceMessage(messageId, cloneRecord(normalized));
      return cloneRecord(normalized);
    });
  }

  /** Appends a compaction summary. `SESSION_BUSY` while a turn runs. */
  async addSummary(
    id: string,
    summary: Omit<SummaryItem, 'kind' | 'id' | 'createdAt'> & Partial<Pick<SummaryItem, 'id' | 'createdAt'>>,
  ): Promise<SummaryItem> {
    this.#assertOpen();
    assertSessionId(id);
    const item = {
      ...summary,
      kind: 'summary' as const,
      id: summary?.id ?? newId('sum'),
      createdAt: summary?.createdAt ?? new Date().toISOString(),
    };
    const parsed = SummaryItemSchema.safeParse(item);
    if (!parsed.success) throw invalidArgument('summary', parsed.error);
    return this.#whileIdle(id, async (state) => {
      await this.store.appendItems(id, [parsed.data]);
      state.cache?.push([cloneRecord(parsed.data)]);
      return cloneRecord(parsed.data);
    });
  }

  // ---------------------------------------------------------------- fork, export, import

  /**
   * A new session holding the items before the `beforeUserMessage`-th user message (0-based; all
   * items when omitted), titled `"<title> (fork N)"`. The parent is untouched.
   */
  async forkSession(id: string, options: { beforeUserMessage?: number } = {}): Promise<Session> {
    this.#assertOpen();
    assertSessionId(id);
    const parent = await this.store.getSession(id);
    let items = parent.items;
    const cut = options.beforeUserMessage;
    if (cut !== undefined) {
      const userIndexes: number[] = [];
      parent.items.forEach((item, index) => {
        if (item.kind === 'message' && item.message.role === 'user') userIndexes.push(index);
      });
      if (!Number.isInteger(cut) || cut < 0 || cut >= userIndexes.length) {
        throw new InvalidArgumentError(
          `invalid beforeUserMessage ${String(cut)}: session ${JSON.stringify(id)} has ${userIndexes.length} user messages`,
          {
            issues: [
              {
                path: ['beforeUserMessage'],
                message: `expected an integer from 0 to ${userIndexes.length - 1}`,
              },
            ],
          },
        );
      }
      items = parent.items.slice(0, userIndexes[cut]);
    }
    const base = parent.title === '' ? 'Untitled' : parent.title;
    const number = 1 + (await this.#highestForkNumber(base, id));
    const now = new Date().toISOString();
    const fork: Session = {
      ...parent,
      id: newId('ses'),
      title: `${base} (fork ${number})`,
      titleSource: 'manual',
      starred: false,
      items,
      usage: emptyUsage(),
      createdAt: now,
      updatedAt: now,
      parentId: id,
      forkedFrom: { sessionId: id, ...(cut === undefined ? {} : { beforeUserMessage: cut }) },
    };
    await this.store.createSession(fork);
    this.events.emit('session_created', { session: cloneRecord(fork) });
    return fork;
  }

  /** Full records of the sessions, as a version-1 bundle. `SESSION_NOT_FOUND` for any unknown id. */
  async exportSessions(ids: string[]): Promise<ExportBundle> {
    this.#assertOpen();
    if (!Array.isArray(ids)) {
      throw new InvalidArgumentError('invalid ids: expected an array', {
        issues: [{ path: ['ids'], message: 'expected an array' }],
      });
    }
    for (const id of ids) assertSessionId(id);
    const sessions = await Promise.all(ids.map((id) => this.store.getSession(id)));
    return { version: 1, exportedAt: new Date().toISOString(), sessions };
  }

  /**
   * Imports a bundle, keeping ids and every field. The whole bundle is validated (and with
   * `onConflict: 'error'`, every id checked) before anything is written.
   */
  async importSessions(
    bundle: ExportBundle,
    options: ImportOptions,
  ): Promise<{ imported: string[]; skipped: string[]; replaced: string[] }> {
    this.#assertOpen();
    const onConflict = options?.onConflict;
    if (onConflict !== 'error' && onConflict !== 'skip' && onConflict !== 'replace') {
      throw new InvalidArgumentError('invalid onConflict: expected "error", "skip" or "replace"', {
        issues: [{ path: ['onConflict'], message: 'expected "error", "skip" or "replace"' }],
      });
    }
    const parsed = ExportBundleSchema.safeParse(bundle);
    if (!parsed.success) throw invalidArgument('import bundle', parsed.error);
    const seen = new Set<string>();
    for (const session of parsed.data.sessions) {
      if (seen.has(session.id)) {
        throw new InvalidArgumentError(
          `invalid import bundle: session ${JSON.stringify(session.id)} appears twice`,
          {
            issues: [{ path: ['sessions'], message: `duplicate id ${session.id}` }],
          },
        );
      }
      seen.add(session.id);
    }
    const exists = await Promise.all(parsed.data.sessions.map((session) => this.#exists(session.id)));
    if (onConflict === 'error') {
      const taken = parsed.data.sessions.filter((_, index) => exists[index]).map((session) => session.id);
      if (taken.length > 0) {
        throw new AgentSessionsError(
          ErrorCode.SESSION_EXISTS,
          `import refused: sessions already exist: ${taken.join(', ')}`,
        );
      }
    }
    const result = { imported: [] as string[], skipped: [] as string[], replaced: [] as string[] };
    for (const [index, session] of parsed.data.sessions.entries()) {
      if (exists[index]) {
        if (onConflict === 'skip') {
          result.skipped.push(session.id);
          continue;
        }
        await this.deleteSession(session.id);
        result.replaced.push(session.id);
      }
      await this.store.createSession(session);
      this.#deleted.delete(session.id);
      result.imported.push(session.id);
      this.events.emit('session_created', { session: cloneRecord(session) });
    }
    return result;
  }

  // ---------------------------------------------------------------- delete, stop, close

  /**
   * Deletes a session: removes it from the store, cancels its running turn, ends event subscribers
   * with `session_exited`, closes its runtime and drops its queues and keys. `SESSION_NOT_FOUND`.
   */
  async deleteSession(id: string): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    await this.store.deleteSession(id);
    this.#deleted.add(id);
    const state = this.#states.get(id);
    if (state) {
      state.controller.abort(cancellation(`session ${id} was deleted`));
      const run = state.run;
      if (run) {
        run.cancel(cancellation(`session ${id} was deleted`));
        await run.stream.done;
      }
      const gone = new AgentSessionsError(
        ErrorCode.SESSION_NOT_FOUND,
        `session ${JSON.stringify(id)} was deleted`,
      );
      state.confirmations.rejectAll(gone);
      state.elicitations.rejectAll(gone);
      this.#states.delete(id);
    }
    this.#logs.delete(id);
    await this.#pool.close(id);
    this.events.emit('session_deleted', { sessionId: id });
  }

  /** Deletes each session; never fails as a whole. */
  async deleteSessions(
    ids: string[],
  ): Promise<{ deleted: string[]; failed: Array<{ id: string; error: AgentSessionsError }> }> {
    this.#assertOpen();
    const result = {
      deleted: [] as string[],
      failed: [] as Array<{ id: string; error: AgentSessionsError }>,
    };
    for (const id of Array.isArray(ids) ? ids : []) {
      try {
        await this.deleteSession(id);
        result.deleted.push(id);
      } catch (error) {
        result.failed.push({
          id: String(id),
          error: toAgentSessionsError(
            error,
            ErrorCode.RUNTIME_FAILED,
            `deleting session ${String(id)} failed`,
          ),
        });
      }
    }
    return result;
  }

  /**
   * Resolves when the session's turns (including a cancelled runtime that is still winding down)
   * and background work have fully stopped. `TIMEOUT` after `timeoutMs`.
   */
  async waitStopped(id: string, options: { timeoutMs: number }): Promise<void> {
    assertSessionId(id);
    const timeoutMs = options?.timeoutMs;
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new InvalidArgumentError('invalid timeoutMs: expected a non-negative number', {
        issues: [{ path: ['timeoutMs'], message: 'expected a non-negative number' }],
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AgentSessionsError(
              ErrorCode.TIMEOUT,
              `session ${JSON.stringify(id)} did not stop within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      for (;;) {
        const run = this.#states.get(id)?.run;
        const working = [...(this.#working.get(id) ?? [])];
        if (!run && working.length === 0) return;
        await Promise.race([Promise.allSettled([run?.stream.done, ...working]), timeout]);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cancels every turn, ends subscribers, closes runtimes and the store. Later calls reject with `CLOSED`. */
  close(): Promise<void> {
    // A repeated call waits for the same close: resolving at once would report the runtimes and the
    // store closed while the first call is still closing them.
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const runs: Promise<unknown>[] = [];
    for (const state of this.#states.values()) {
      state.controller.abort(cancellation('the session manager closed'));
      if (state.run) {
        state.run.cancel(cancellation('the session manager closed'));
        runs.push(state.run.stream.done);
      }
    }
    await Promise.all(runs);
    for (const state of this.#states.values()) {
      const closed = new AgentSessionsError(ErrorCode.CLOSED, 'the session manager closed');
      state.confirmations.rejectAll(closed);
      state.elicitations.rejectAll(closed);
    }
    this.#logs.closeAll();
    await this.#pool.closeAll();
    this.#states.clear();
    await this.store.close?.();
  }

  // ---------------------------------------------------------------- internals

  #assertOpen(): void {
    if (this.#closed) throw new AgentSessionsError(ErrorCode.CLOSED, 'the session manager is closed');
  }

  /**
   * The session's event log, made if needed, after an await: `close()` or `deleteSession` may have
   * run meanwhile, and a log made then would never get its `session_exited`.
   */
  #liveLog(id: string): EventLog {
    this.#assertOpen();
    if (this.#deleted.has(id)) throw new SessionNotFoundError(id);
    return this.#logs.getOrCreate(id);
  }

  #state(id: string): SessionState {
    let state = this.#states.get(id);
    if (!state) {
      state = new SessionState(id, this.#capacities);
      this.#states.set(id, state);
    }
    return state;
  }

  /**
   * Drops a state that holds nothing a later call needs (bounded memory for idle sessions). Its
   * cache goes with it: the cache lives as long as the session's runtime, and without a runtime (a
   * refused turn, a failing factory) no idle close would ever drop it.
   */
  #forgetIfIdle(id: string): void {
    const state = this.#states.get(id);
    if (state?.idle && this.#pool.peek(id, null) === undefined) this.#states.delete(id);
  }

  #track(sessionId: string, work: Promise<unknown>): void {
    let set = this.#working.get(sessionId);
    if (!set) {
      set = new Set();
      this.#working.set(sessionId, set);
    }
    set.add(work);
    const done = () => {
      set.delete(work);
      if (set.size === 0 && this.#working.get(sessionId) === set) this.#working.delete(sessionId);
    };
    work.then(done, done);
  }

  async #exists(id: string): Promise<boolean> {
    try {
      await this.store.getSession(id);
      return true;
    } catch (error) {
      if (AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)) return false;
      throw error;
    }
  }

  async #assertExists(id: string): Promise<void> {
    if (this.#deleted.has(id)) throw new SessionNotFoundError(id);
    if (this.#states.get(id)?.cache || this.#logs.get(id)) return;
    if (!(await this.#exists(id))) throw new SessionNotFoundError(id);
  }

  async #loadCache(state: SessionState): Promise<SessionCache> {
    for (;;) {
      if (state.cache) return state.cache;
      const writes = state.metadataWrites;
      const session = await this.store.getSession(state.id);
      // A concurrent load may have finished first; keep one cache.
      if (state.cache) return state.cache;
      // A metadata write ran meanwhile: the read may predate it, and a cache made from it would keep
      // the old value (a policy, permissions) for as long as the cache lives.
      if (writes !== state.metadataWrites) continue;
      state.cache = new SessionCache(session);
      return state.cache;
    }
  }

  /** The state, or for an unknown session `SESSION_NOT_FOUND`; `NOTHING_PENDING` is left to `take`. */
  async #stateWithPending(id: string, kind: 'confirmations' | 'elicitations'): Promise<SessionState> {
    const state = this.#states.get(id);
    if (state && state[kind].size > 0) return state;
    await this.#assertExists(id);
    return state ?? new SessionState(id, this.#capacities);
  }

  /**
   * Read-modify-write of metadata, serialised per session: `change` sees the current record and
   * returns the patch (or undefined for none). The cache follows the store.
   */
  async #updateMetadata(
    state: SessionState,
    change: (session: Omit<Session, 'items'>) => SessionPatch | undefined,
  ): Promise<void> {
    try {
      await state.metadata.runExclusive(async () => {
        const current = state.cache?.meta ?? (await this.store.getSession(state.id));
        const patch = change(current);
        if (!patch) return;
        state.metadataWrites++;
        try {
          await this.store.updateSession(state.id, patch);
        } finally {
          state.metadataWrites++;
        }
        if (state.cache) Object.assign(state.cache.meta, cloneRecord(patch));
      });
    } finally {
      this.#forgetIfIdle(state.id);
    }
  }

  /** After the permissions or policy changed: approve pending calls that no longer need asking. */
  #reconsiderPending(state: SessionState): void {
    const meta = state.cache?.meta;
    if (!meta) return;
    for (const entry of state.confirmations.entries()) {
      const outcome = decideToolCall({
        ...entry.info,
        permissions: meta.permissions,
        safetyPolicy: meta.safetyPolicy,
      });
      if (outcome.decision === 'approve') entry.resolve({ approved: true });
    }
  }

  /** Runs `work` holding the busy lock; `SESSION_BUSY` if a turn holds it. */
  async #whileIdle<T>(id: string, work: (state: SessionState) => Promise<T>): Promise<T> {
    const state = this.#state(id);
    if (state.busy.isLocked()) throw new SessionBusyError(id, state.run?.currentTurnId);
    const release = await state.busy.acquire();
    try {
      return await work(state);
    } finally {
      release();
      this.#forgetIfIdle(id);
    }
  }

  async #resolveSource(ref: string, signal: AbortSignal | undefined): Promise<ResolvedSource> {
    const sources = this.#sources as SourceResolver;
    try {
      return await sources.resolve(ref, signal === undefined ? {} : { signal });
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error;
      throw toAgentSessionsError(
        error,
        ErrorCode.SOURCE_UNAVAILABLE,
        `source ${JSON.stringify(redactSourceRef(ref))} could not be resolved`,
      );
    }
  }

  /**
   * The session's runtime: the cached one, or one made now from the session's source. With
   * `switchTo`, the source is resolved and the runtime remade if it came from another source.
   */
  async #runtimeFor(
    state: SessionState,
    cache: SessionCache,
    options: { signal?: AbortSignal; switchTo?: string; agent?: string } = {},
  ): Promise<Runtime> {
    if (options.switchTo === undefined) {
      const cached = this.#pool.peek(state.id, null);
      if (cached) return cached;
    }
    const ref = options.switchTo ?? cache.meta.source;
    const source =
      this.#sources && ref !== undefined ? await this.#resolveSource(ref, options.signal) : undefined;
    const session = cache.copy();
    if (options.agent !== undefined) session.agent = options.agent;
    return this.#pool.acquire(session, source);
  }

  async #applyModel(
    state: SessionState,
    cache: SessionCache,
    runtime: Runtime,
    agent: string,
    ref: string | undefined,
  ): Promise<() => Promise<void>> {
    if (typeof runtime.setModel !== 'function') {
      throw new AgentSessionsError(
        ErrorCode.MODEL_SWITCHING_NOT_SUPPORTED,
        `the runtime of session ${JSON.stringify(state.id)} cannot switch models`,
      );
    }
    const overrides = cache.meta.agentModelOverrides;
    const previous = overrides[agent];
    try {
      await runtime.setModel(agent, ref);
    } catch (error) {
      throw toAgentSessionsError(
        error,
        ErrorCode.RUNTIME_FAILED,
        `the runtime could not switch ${agent} to ${String(ref)}`,
      );
    }
    const nextOverrides = { ...overrides };
    if (ref === undefined) delete nextOverrides[agent];
    else nextOverrides[agent] = ref;
    const patch: SessionPatch = { agentModelOverrides: nextOverrides };
    if (ref?.includes('/') && !cache.meta.customModelsUsed.includes(ref)) {
      patch.customModelsUsed = [...cache.meta.customModelsUsed, ref];
    }
    const restoreRuntime = async () => {
      try {
        await runtime.setModel?.(agent, previous);
      } catch (error) {
        this.#logger.error('restoring the runtime model failed', { sessionId: state.id, agent, error });
      }
    };
    try {
      await this.store.updateSession(state.id, patch);
    } catch (error) {
      await restoreRuntime();
      throw error;
    }
    Object.assign(cache.meta, cloneRecord(patch));
    return async () => {
      // Only this call's change is undone: a model set meanwhile (by setSessionModel) is kept.
      if (cache.meta.agentModelOverrides[agent] !== ref) return;
      await restoreRuntime();
      const restored: SessionPatch = { agentModelOverrides: { ...cache.meta.agentModelOverrides } };
      const restoredOverrides = restored.agentModelOverrides as Record<string, string>;
      if (previous === undefined) delete restoredOverrides[agent];
      else restoredOverrides[agent] = previous;
      if (patch.customModelsUsed) {
        restored.customModelsUsed = cache.meta.customModelsUsed.filter((used) => used !== ref);
      }
      await this.store.updateSession(state.id, restored);
      Object.assign(cache.meta, restored);
    };
  }

  /**
   * Admission: lock, validate, resolve, write (override, agent/source, messages), then start the
   * run. On any failure before the run starts, the writes made are rolled back and the lock released.
   */
  async #admit(
    id: string,
    request: {
      messages: Message[];
      source?: string;
      agent?: string;
      model?: string;
      signal?: AbortSignal;
      onDetach: 'cancel' | 'continue';
      detached: boolean;
    },
  ): Promise<ActiveRun> {
    const state = this.#state(id);
    if (state.busy.isLocked()) throw new SessionBusyError(id, state.run?.currentTurnId);
    // Released synchronously once held: the refusal path checks idleness right after releasing.
    let unlock: (() => void) | undefined;
    const acquired = state.busy.acquire().then((release) => {
      unlock = release;
      return release;
    });
    const hadLog = this.#logs.get(id) !== undefined;
    // The mutex is taken synchronously by acquire(); the run registers at once so follow-ups queue on it.
    const run = new ActiveRun({
      host: this.#host,
      state,
      log: this.#logs.getOrCreate(id),
      release: () => {
        if (unlock) unlock();
        else void acquired.then((release) => release());
      },
      onDetach: request.onDetach,
      ...(request.signal === undefined ? {} : { signal: request.signal }),
      detached: request.detached,
    });
    state.run = run;
    const rollbacks: Array<() => Promise<void>> = [];
    let runtime: Runtime;
    try {
      await acquired;
      if (this.#deleted.has(id)) throw new SessionNotFoundError(id);
      const cache = await this.#loadCache(state);
      throwIfAborted(request.signal);
      // Without a resolver a source is opaque: stored as given, never resolved.
      const switchingSource = request.source !== undefined && request.source !== cache.meta.source;
      const agent = request.agent ?? cache.meta.agent;
      const runtimeBefore = this.#pool.peek(id, null);
      runtime = await this.#runtimeFor(state, cache, {
        ...(request.signal === undefined ? {} : { signal: request.signal }),
        ...(switchingSource && this.#sources ? { switchTo: request.source } : {}),
        ...(agent === undefined ? {} : { agent }),
      });
      if (runtime !== runtimeBefore && switchingSource) {
        // Made for the new source: if the turn is refused, the stored source is the old one again.
        rollbacks.push(() => this.#pool.close(id));
      }
      if (request.model !== undefined && typeof runtime.setModel !== 'function') {
        throw new AgentSessionsError(
          ErrorCode.MODEL_SWITCHING_NOT_SUPPORTED,
          `the runtime of session ${JSON.stringify(id)} cannot switch models`,
        );
      }
      throwIfAborted(request.signal);
      // Writes, in order: model override, agent/source switch, user messages.
      if (request.model !== undefined) {
        const model = request.model;
        // Under the metadata lock, like setSessionModel: both rewrite the whole overrides map.
        const undo = await state.metadata.runExclusive(() =>
          this.#applyModel(state, cache, runtime, agent ?? 'default', model),
        );
        rollbacks.push(() => state.metadata.runExclusive(undo));
      }
      const switchPatch: SessionPatch = {};
      if (request.agent !== undefined && request.agent !== cache.meta.agent)
        switchPatch.agent = request.agent;
      if (switchingSource) {
        const key = this.#sources ? this.#pool.sourceKey(id) : undefined;
        switchPatch.source = key ?? request.source;
      }
      if (Object.keys(switchPatch).length > 0) {
        const previous: SessionPatch = {};
        if ('agent' in switchPatch) previous.agent = cache.meta.agent;
        if ('source' in switchPatch) previous.source = cache.meta.source;
        await this.store.updateSession(id, switchPatch);
        Object.assign(cache.meta, switchPatch);
        rollbacks.push(async () => {
          await this.store.updateSession(id, previous);
          for (const [key, value] of Object.entries(previous)) {
            if (value === undefined) delete (cache.meta as Record<string, unknown>)[key];
            else (cache.meta as Record<string, unknown>)[key] = value;
          }
        });
      }
      // Last point where a refusal can still be undone: the user messages cannot be taken back.
      throwIfAborted(request.signal);
      const items: SessionItem[] = request.messages.map((message) => ({ kind: 'message', message }));
      await this.store.appendItems(id, items);
      cache.push(items);
    } catch (error) {
      for (const rollback of rollbacks.reverse()) {
        try {
          await rollback();
        } catch (rollbackError) {
          state.cache = undefined;
          this.#logger.error('rolling back a refused turn failed', { sessionId: id, error: rollbackError });
        }
      }
      const queued = state.followUps.length > 0 || state.steer.length > 0;
      run.abandon();
      // A log made for an id that does not exist would make it look like a session (streamEvents).
      if (!hadLog && AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)) this.#logs.delete(id);
      if (queued) this.#startQueued(state);
      else this.#forgetIfIdle(id);
      throw error;
    }
    this.#pool.hold(id);
    run.start(runtime, { turnId: run.firstTurnId, messages: request.messages, persisted: true });
    return run;
  }

  /** The highest N among titles `"<base> (fork N)"` already used by forks of `parentId`. */
  async #highestForkNumber(base: string, parentId: string): Promise<number> {
    const prefix = `${base} (fork `;
    let highest = 0;
    let cursor: string | undefined;
    do {
      const page = await this.store.listSessions({
        limit: 1000,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const summary of page.sessions) {
        if (!summary.title.startsWith(prefix) || !summary.title.endsWith(')')) continue;
        const number = Number(summary.title.slice(prefix.length, -1));
        if (!Number.isInteger(number) || number <= highest) continue;
        // Summaries carry no parentId: only a candidate that would raise the number is read.
        const candidate = await this.store.getSession(summary.id).catch(() => undefined);
        if (candidate?.parentId === parentId) highest = number;
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return highest;
  }

  /** Messages queued behind a turn that was then refused: run them now rather than lose them. */
  #startQueued(state: SessionState): void {
    const start = async () => {
      // The refused run releases the busy lock asynchronously: admitting now would be refused as
      // busy and lose the messages. If another turn takes the session first, they stay queued and
      // run after it.
      for (;;) {
        await state.busy.waitForUnlock();
        if (this.#closed || this.#states.get(state.id) !== state || state.run) return;
        if (!state.busy.isLocked()) break;
      }
      const steered = state.steer.drain();
      // Steered messages run first; the follow-ups stay queued and run after them in the same run.
      const followUp = steered.length > 0 ? undefined : state.followUps.shift();
      const messages = steered.length > 0 ? steered : followUp?.messages;
      if (!messages) return;
      try {
        await this.#admit(state.id, { messages, onDetach: 'continue', detached: true });
      } catch (error) {
        if (followUp?.idempotencyKey !== undefined) state.keys.release(followUp.idempotencyKey);
        this.#logger.error('starting queued messages failed', { sessionId: state.id, error });
      }
    };
    this.#track(state.id, start());
  }
}
