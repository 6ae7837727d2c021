/**
 * `SessionManager`: the façade hosts use. It validates what callers pass, guards every call the
 * same way (open manager, valid id), and hands the work to the modules that own it, in the order a
 * turn flows:
 *
 * - `admission.ts` (with `busy-lock.ts`): whether a turn may start, and its first writes;
 * - `running-turn.ts`: the turns of a TurnStream, driving the runtime (`runtime-pool.ts`);
 * - `authorization.ts`: tool calls, confirmations and elicitations of a running turn;
 * - `titles.ts`, `models.ts`: title work at turn start, model switching;
 * - `session-records.ts`: every read and write of the store, and the cached history;
 * - `event-log.ts`: numbering, replay and fan-out of events (`streamEvents`);
 * - `portability.ts`: fork, export, import.
 *
 * The full contract of each method is in its TSDoc below and in `docs/contract.md`.
 */
import { EventEmitter } from 'eventemitter3';
import type { Command, CommandBus } from '../command-bus.js';
import { eventLogOf } from '../durable-event-log.js';
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  SessionNotFoundError,
  toAgentSessionsError,
} from '../errors.js';
import type { SessionEvent } from '../events.js';
import { cancellation, throwIfAborted } from '../internal/abort.js';
import { cloneRecord } from '../internal/clone.js';
import { turnTimestamp } from '../internal/turn-clock.js';
import { type Logger, silentLogger } from '../logger.js';
import {
  assertSessionId,
  type ExportBundle,
  type Message,
  type Permissions,
  type SafetyPolicy,
  type Session,
  type SessionSummary,
  type SummaryItem,
} from '../schemas.js';
import type { ListOptions, Page, Store } from '../store.js';
import { MemoryStore } from '../stores/memory.js';
import type { Telemetry } from '../telemetry.js';
import { Admission } from './admission.js';
import {
  answerConfirmation,
  answerElicitation,
  parseElicitationInput,
  parseResumeInput,
  reconsiderPending,
  type SessionScope,
  setPermissions,
  setSafetyPolicy,
  toggleToolApproval,
} from './authorization.js';
import { BackgroundWork } from './background-work.js';
import { type BusyLease, type BusyLock, InProcessBusyLock } from './busy-lock.js';
import {
  batchesOf,
  type EventInput,
  type EventLog,
  EventLogs,
  type EventSink,
  type SubscribeOptions,
  subscribeOnFirstNext,
} from './event-log.js';
import {
  assertTemplate,
  assertTitle,
  inputLimits,
  nonNegativeNumber,
  normalizeMessage,
  normalizeMessages,
  optionalString,
  parseRunInput,
  positiveInteger,
  sessionFromTemplate,
  summaryItem,
} from './input.js';
import { LiveSession } from './live-session.js';
import { availableModels, DEFAULT_AGENT, switchModel } from './models.js';
import { Portability } from './portability.js';
import { answerPersisted, persistedWaiting } from './resumption.js';
import { RuntimePool } from './runtime-pool.js';
import { type SessionRecord, SessionRecords } from './session-records.js';
import { SharedEvents, type SharedEventWriter } from './shared-events.js';
import { SharedIdempotencyKeys } from './shared-keys.js';
import { TurnSlots } from './turn-slots.js';
import { guardTelemetry } from './turn-tracing.js';
import type {
  AvailableModels,
  FollowUpOptions,
  ImportOptions,
  InputLimits,
  ManagerEvents,
  MessageInput,
  ResumeElicitationInput,
  ResumeInput,
  RunInput,
  RunOptions,
  SessionEventBatchStream,
  SessionEventStream,
  SessionManagerOptions,
  SessionSnapshot,
  SessionTemplate,
  TurnStream,
} from './types.js';
import { validateWorkingDir } from './working-dir.js';

/**
 * Owns AI-agent chat sessions: their records (in a {@link Store}), their turns (driven through a
 * `Runtime` per session), their live events (a replayable log per session) and the humans in the
 * loop (tool confirmations, elicitations, steering, follow-ups).
 *
 * Every method validates its input before writing anything and rejects with an
 * {@link AgentSessionsError} (or, for a call whose `signal` aborted, with the signal's reason).
 * After {@link close}, every method rejects with `CLOSED`.
 */
export class SessionManager {
  /** The manager's own events: `session_created`, `session_deleted`, `turn_started`, `turn_ended`. */
  readonly events = new EventEmitter<ManagerEvents>();
  /** The store sessions live in. */
  readonly store: Store;

  readonly #records: SessionRecords;
  readonly #workingDirRoot: string | undefined;
  readonly #logger: Logger;
  readonly #sharedKeys: SharedIdempotencyKeys | undefined;
  readonly #capacities: { steer: number; followUp: number; keys: number };
  readonly #limits: InputLimits;
  readonly #logs: EventLogs;
  readonly #pool: RuntimePool;
  readonly #admission: Admission;
  readonly #portability: Portability;
  readonly #sessions = new Map<string, LiveSession>();
  /** Ids deleted by this manager: a late event or subscriber must not bring them back. */
  readonly #deleted = new Set<string>();
  /** Work that must end before `waitStopped` resolves. */
  readonly #background = new BackgroundWork();
  /** Events through a durable log shared by every instance, when one is configured. */
  readonly #shared: SharedEvents | undefined;
  /** Commands for turns that run on another instance. */
  readonly #bus: CommandBus | undefined;
  /** The lock is shared with other instances: a cached record may be stale when a lease is taken. */
  readonly #sharedLock: boolean;
  readonly #lock: BusyLock;
  /** The fencing token of the last turn lease this manager took per record (see #onLease). */
  readonly #leaseTokens = new WeakMap<SessionRecord, number>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: SessionManagerOptions) {
    if (typeof options?.runtime !== 'function') {
      throw new InvalidArgumentError('SessionManager needs a runtime factory', {
        issues: [{ path: ['runtime'], message: 'expected a function' }],
      });
    }
    const lock: BusyLock = options.busyLock ?? new InProcessBusyLock();
    const store = options.store ?? new MemoryStore();
    this.store = lock.fenceStore?.(store) ?? store;
    this.#sharedLock = options.busyLock !== undefined;
    this.#lock = lock;
    const durableLog = options.eventLog ?? eventLogOf(store);
    this.#shared =
      durableLog === undefined
        ? undefined
        : new SharedEvents({
            log: durableLog,
            logger: options.logger ?? silentLogger,
            batchSize: positiveInteger(options.eventLogBatchSize, 256, 'eventLogBatchSize'),
          });
    this.#bus = options.commandBus;
    this.#records = new SessionRecords(this.store);
    this.#workingDirRoot = options.workingDirRoot;
    this.#limits = inputLimits(options.limits);
    this.#logger = options.logger ?? silentLogger;
    this.#sharedKeys =
      options.idempotencyStore === undefined
        ? undefined
        : new SharedIdempotencyKeys(
            options.idempotencyStore,
            positiveInteger(options.idempotencyKeyTtlMs, 86_400_000, 'idempotencyKeyTtlMs'),
          );
    this.#capacities = {
      steer: positiveInteger(options.steerCapacity, 5, 'steerCapacity'),
      followUp: positiveInteger(options.followUpCapacity, 20, 'followUpCapacity'),
      keys: positiveInteger(options.idempotencyKeys, 256, 'idempotencyKeys'),
    };
    this.#logs = new EventLogs({
      capacity: positiveInteger(options.eventLogCapacity, 1024, 'eventLogCapacity'),
      releaseAfterMs: options.eventLogReleaseAfterMs ?? 300_000,
      // One clock reading per task for up to 16 events (see turn-clock.ts and EventEnvelope.timestamp).
      now: turnTimestamp,
    });
    this.#pool = new RuntimePool({
      factory: options.runtime,
      sources: options.sources,
      idleTtlMs: options.idleRuntimeTtlMs ?? 900_000,
      logger: this.#logger,
      onIdleClose: (sessionId) => {
        // The cached history lives as long as the runtime.
        if (!this.#admission.isActive(sessionId)) this.#sessions.get(sessionId)?.record.forget();
        this.#forgetIfIdle(sessionId);
      },
    });
    this.#admission = new Admission({
      lock,
      runtimes: this.#pool,
      eventLog: (sessionId, reserved) =>
        this.#turnSink(sessionId) ?? this.#logs.getOrCreate(sessionId, reserved),
      onLease: (live, lease) => this.#onLease(live, lease),
      assertUsable: (sessionId) => {
        this.#assertOpen();
        if (this.#deleted.has(sessionId)) throw new SessionNotFoundError(sessionId);
      },
      observer: this.events,
      titleGenerator: options.titleGenerator,
      logger: this.#logger,
      track: (sessionId, work) => this.#background.track(sessionId, work),
      keepPartialAnswers: options.keepPartialAnswers ?? true,
      runtimeStopTimeoutMs: positiveInteger(options.runtimeStopTimeoutMs, 5_000, 'runtimeStopTimeoutMs'),
      ...(options.maxConcurrentTurns === undefined
        ? {}
        : { slots: new TurnSlots(positiveInteger(options.maxConcurrentTurns, 1, 'maxConcurrentTurns')) }),
      ...(options.telemetry === undefined
        ? {}
        : { telemetry: guardTelemetry(assertTelemetry(options.telemetry), this.#logger) }),
    });
    this.#portability = new Portability({
      records: this.#records,
      created: async (session) => {
        await this.#clearTombstone(session.id);
        this.#created(session);
      },
      limits: this.#limits,
      deleteSession: (id) => this.deleteSession(id),
    });
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Creates and persists a session. Validates the id (generated, sortable by time, when omitted) and
   * the working dir (no `..`, absolute, an existing directory, inside `workingDirRoot` after
   * resolving symlinks) before writing. A template title sets `titleSource: 'manual'`. `source` is
   * stored as given and resolved only when a turn starts. `SESSION_EXISTS` for a taken id.
   */
  async createSession(template: SessionTemplate = {}): Promise<Session> {
    this.#assertOpen();
    assertTemplate(template, this.#limits);
    if (template.workingDir !== undefined)
      await validateWorkingDir(template.workingDir, this.#workingDirRoot);
    const session = sessionFromTemplate(template);
    await this.#records.create(session);
    // A chosen id may be that of a deleted session whose durable log holds its tombstone.
    if (template.id !== undefined) await this.#clearTombstone(session.id);
    this.#created(session);
    return session;
  }

  /** The whole session, from the store. `SESSION_NOT_FOUND`. */
  async getSession(id: string): Promise<Session> {
    this.#guard(id);
    return this.#records.get(id);
  }

  /** Session summaries, newest first (see {@link ListOptions}); never the items. */
  async listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    this.#assertOpen();
    return this.#records.list(options);
  }

  // ---------------------------------------------------------------- turns

  /**
   * Starts a turn. Everything that can be refused is refused before anything is written (unknown
   * session, `SESSION_BUSY`, `SOURCE_NOT_FOUND`, `MODEL_SWITCHING_NOT_SUPPORTED`, invalid input).
   * Then, in order: the model override, the agent/source switch, the user messages. If one of those
   * writes fails, the earlier ones are rolled back, the lock released and the call rejects (no turn
   * starts). Resolves to the {@link TurnStream} once the writes succeeded; the runtime is driven from
   * then on. An aborted `signal` rejects with its reason while the turn is admitted, and cancels it
   * afterwards.
   */
  async runSession(id: string, input: RunInput, options: RunOptions = {}): Promise<TurnStream> {
    return this.#withSession(id, async (live) => {
      const turn = await this.#admission.admit(live, parseRunInput(input, options, this.#limits));
      return turn.stream;
    });
  }

  /** Cancels the running turn (stop reason `cancelled`); resolves to `false` when none runs. */
  async cancelTurn(id: string, reason?: unknown): Promise<boolean> {
    this.#guard(id);
    const forwarded = await this.#forward(id, { kind: 'cancel', value: { reason: describeReason(reason) } });
    if (forwarded) return forwarded.value === true;
    return this.#admission.cancel(id, reason ?? cancellation('cancelTurn was called'));
  }

  /**
   * Queues messages for the running turn; the runtime drains them with `takeSteering()`. Messages no
   * turn took run as the next turn, before follow-ups. `SESSION_NOT_RUNNING` when no turn runs,
   * `SESSION_NOT_FOUND` for an unknown session, `QUEUE_FULL` past `steerCapacity` (nothing of the
   * call is queued), `INVALID_ARGUMENT` for an empty list.
   */
  async steerSession(id: string, messages: MessageInput[]): Promise<void> {
    return this.#withSession(id, async () => {
      const normalized = normalizeMessages(messages, 'messages', { limits: this.#limits, userOnly: true });
      if (await this.#forward(id, { kind: 'steer', value: { messages: normalized } })) return;
      await this.#steerHere(id, normalized);
    });
  }

  async #steerHere(id: string, normalized: Message[]): Promise<void> {
    // An unknown session is not found rather than merely idle.
    if (!this.#admission.isActive(id)) await this.#assertExists(id);
    if (!this.#admission.isActive(id)) {
      throw new AgentSessionsError(
        ErrorCode.SESSION_NOT_RUNNING,
        `no turn runs in session ${JSON.stringify(id)}`,
      );
    }
    // Read again after the await: the state may have been dropped and made anew meanwhile.
    this.#live(id).queues.steer.push(id, normalized);
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
    return this.#withSession(id, async (live) => {
      const normalized = normalizeMessages(messages, 'messages', { limits: this.#limits, userOnly: true });
      const key = optionalString(options.idempotencyKey, 'idempotencyKey');
      const forwarded = await this.#forward(id, {
        kind: 'follow-up',
        value: { messages: normalized, ...(key === undefined ? {} : { idempotencyKey: key }) },
      });
      if (forwarded) return forwarded.value as { status: 'queued' | 'started' | 'duplicate' };
      return this.#followUpHere(live, normalized, key);
    });
  }

  async #followUpHere(
    live: LiveSession,
    normalized: Message[],
    key: string | undefined,
  ): Promise<{ status: 'queued' | 'started' | 'duplicate' }> {
    const id = live.id;
    const { queues } = live;
    if (key !== undefined && !queues.keys.claim(key)) return { status: 'duplicate' };
    const shared = key === undefined ? undefined : this.#sharedKeys;
    if (shared && key !== undefined) {
      // The shared store decides between instances (and its TTL ends a key); this process's
      // claim only held off concurrent callers here while it was asked.
      const claimed = await shared.claim(id, key).finally(() => queues.keys.release(key));
      if (!claimed) return { status: 'duplicate' };
    }
    try {
      if (this.#admission.isActive(id)) {
        queues.followUps.push(id, [
          { messages: normalized, ...(key === undefined ? {} : { idempotencyKey: key }) },
        ]);
        return { status: 'queued' };
      }
      await this.#admission.admit(live, { messages: normalized, onDetach: 'continue', detached: true });
      return { status: 'started' };
    } catch (error) {
      if (key !== undefined) {
        queues.keys.release(key);
        await shared?.release(id, key).catch((releaseError: unknown) => {
          this.#logger.error('releasing a shared idempotency key failed', {
            sessionId: id,
            error: releaseError,
          });
        });
      }
      throw error;
    } finally {
      if (key !== undefined) shared?.delivered(id, key);
    }
  }

  /**
   * Answers a pending `tool_call_confirmation`: `approve`; `approve-tool` (also always allow the
   * tool, or `toolName`, in this session, persisted); `approve-session` (policy `autonomous`,
   * persisted); `reject` (the runtime gets `reason`). `INVALID_ARGUMENT` for an unknown value or
   * when several are pending and no `confirmationId` is given; `NOTHING_PENDING` when none waits.
   */
  async resumeSession(id: string, input: ResumeInput): Promise<void> {
    return this.#withSession(id, async (live) => {
      const parsed = parseResumeInput(input);
      if (await this.#forward(id, { kind: 'resume', value: parsed })) return;
      if (live.approvals.confirmations.size > 0 || this.#admission.isActive(id)) {
        return answerConfirmation(this.#scope(live), parsed);
      }
      // No turn of this process asked: the confirmation may have outlived the process that did.
      return answerPersisted(live, { kind: 'confirmation', input: parsed }, this.#resumption());
    });
  }

  /** Answers a pending `elicitation_request` (same error rules as {@link resumeSession}). */
  async resumeElicitation(id: string, input: ResumeElicitationInput): Promise<void> {
    return this.#withSession(id, async (live) => {
      if (live.approvals.elicitations.size === 0 && !this.#admission.isActive(id)) {
        if (await this.#forward(id, { kind: 'elicitation', value: parseElicitationInput(input) })) return;
      }
      if (live.approvals.elicitations.size > 0 || this.#admission.isActive(id)) {
        return answerElicitation(this.#scope(live), input);
      }
      const parsed = parseElicitationInput(input);
      return answerPersisted(live, { kind: 'elicitation', input: parsed }, this.#resumption());
    });
  }

  // ---------------------------------------------------------------- events

  /**
   * The session's events: the kept backlog after `since` (all of it when omitted; a `gap` first if
   * some were dropped or `since` is beyond the log, e.g. from before a restart), then live events,
   * gapless and without duplicates. Ends after `session_exited`. A subscriber that falls
   * `eventLogCapacity` behind ends with `SUBSCRIBER_LAGGED`. Errors (`SESSION_NOT_FOUND`,
   * `INVALID_ARGUMENT`, the signal's reason) surface at once on the returned stream's `ready`
   * (checked from the call on, never waiting for an event) and on the first `next()`.
   */
  streamEvents(id: string, options: { since?: number; signal?: AbortSignal } = {}): SessionEventStream {
    const open = this.#subscription(id, options);
    const events = subscribeOnFirstNext(async () => {
      const source = await open.source();
      return 'log' in source ? source.log.subscribe(subscribeOptions(options)) : source.shared;
    });
    return {
      [Symbol.asyncIterator]: () => events[Symbol.asyncIterator](),
      get ready() {
        return open.checked.then(() => undefined);
      },
    };
  }

  /**
   * The events of {@link streamEvents} — the same positions, `gap`, `SUBSCRIBER_LAGGED`, signal,
   * errors, `ready` and end — as arrays: each `next()` yields every event available (never an
   * empty array, in `seq` order, a `gap` first). A reader waiting for events is woken once per turn
   * of the event loop with everything appended meanwhile, or at once when half of
   * `eventLogCapacity` events wait for it, so a reader that asks for its next batch as soon as it
   * has handled one never lags. Use it where a wake-up per event costs too much (many readers, fast
   * runtimes); it can still lag while it holds a batch, like a per-event reader between events.
   * With a durable event log (`eventLog`), a batch is what the durable subscriber already holds.
   */
  streamEventBatches(
    id: string,
    options: { since?: number; signal?: AbortSignal } = {},
  ): SessionEventBatchStream {
    const open = this.#subscription(id, options);
    const batches = subscribeOnFirstNext<readonly SessionEvent[]>(async () => {
      const source = await open.source();
      return 'log' in source
        ? source.log.subscribeBatches(subscribeOptions(options))
        : batchesOf(source.shared);
    });
    return {
      [Symbol.asyncIterator]: () => batches[Symbol.asyncIterator](),
      get ready() {
        return open.checked.then(() => undefined);
      },
    };
  }

  /**
   * The checks of a subscription, started now (so `ready` settles without waiting for an event),
   * and its source: the durable log's subscriber when one is configured, else this process's log.
   */
  #subscription(
    id: string,
    options: { since?: number; signal?: AbortSignal },
  ): {
    checked: Promise<number | undefined>;
    source: () => Promise<{ log: EventLog } | { shared: AsyncIterator<SessionEvent> }>;
  } {
    const shared = this.#shared;
    const checked = (async () => {
      this.#guard(id);
      throwIfAborted(options.signal);
      if (shared) {
        await this.#assertExists(id);
        return undefined;
      }
      // A log not yet made in this process numbers after the session's persisted mark: read it.
      return this.#reservedSeq(id);
    })();
    // Whoever reads neither `ready` nor the stream must not see an unhandled rejection.
    checked.catch(() => undefined);
    return {
      checked,
      source: async () => {
        const reserved = await checked;
        throwIfAborted(options.signal);
        if (shared) {
          if (options.since !== undefined) assertSince(options.since);
          this.#assertOpen();
          if (this.#deleted.has(id)) throw new SessionNotFoundError(id);
          const subscriber = await shared.subscribe(id, {
            ...subscribeOptions(options),
            reserved: async () => (await this.#records.get(id)).eventSeqReserved ?? 0,
          });
          return { shared: subscriber };
        }
        return { log: this.#liveLog(id, reserved) };
      },
    };
  }

  /**
   * What a reconnecting client needs: the session, whether a turn is admitted and running, the
   * agent, the last event seq (tail with `since: lastEventSeq`), pending requests and queues.
   * `streaming` on an instance that runs no turn of the session asks a shared lock's `isHeld`.
   */
  async getSessionSnapshot(id: string): Promise<SessionSnapshot> {
    return this.#withSession(id, async () => {
      const session = await this.#records.get(id);
      // The log must exist before lastEventSeq is read, so tailing from it misses nothing.
      const lastEventSeq = this.#shared
        ? await this.#shared.lastSeq(id)
        : this.#liveLog(id, session.eventSeqReserved).lastSeq;
      const live = this.#live(id);
      const waiting = live.waiting();
      // Requests a previous process left waiting (no turn of this process asked anything).
      if (
        live.approvals.confirmations.size === 0 &&
        live.approvals.elicitations.size === 0 &&
        !this.#admission.isActive(id)
      ) {
        waiting.pending = persistedWaiting(session);
      }
      const queued = this.#admission.running(id)?.queued;
      return {
        session,
        streaming: await this.#streaming(id),
        ...(session.agent === undefined ? {} : { agent: session.agent }),
        lastEventSeq,
        ...waiting,
        ...(queued === undefined ? {} : { queued }),
      };
    });
  }

  // ---------------------------------------------------------------- models

  /**
   * Switches (or with no `modelRef`, clears) the model of the agent in force; persisted in
   * `agentModelOverrides` (under `'default'` when the session has no agent), refs with `/` added to
   * `customModelsUsed`. The runtime and the record agree after a failure of either step.
   * `MODEL_SWITCHING_NOT_SUPPORTED` when the runtime has no `setModel`.
   */
  async setSessionModel(id: string, modelRef?: string): Promise<void> {
    return this.#withSession(id, async ({ record }) => {
      const ref = optionalString(modelRef, 'modelRef');
      await record.exclusive(async () => {
        const cache = await record.load();
        const runtime = await this.#pool.forSession(cache);
        await switchModel(record, cache, runtime, cache.meta.agent ?? DEFAULT_AGENT, ref, this.#logger);
      });
    });
  }

  /** The runtime's models for the agent in force, each marked `current`, then the custom refs used. */
  async getAvailableModels(id: string): Promise<AvailableModels> {
    return this.#withSession(id, async ({ record }) => {
      const cache = await record.load();
      return availableModels(cache, await this.#pool.forSession(cache));
    });
  }

  // ---------------------------------------------------------------- metadata

  /**
   * Sets the title by hand (`titleSource: 'manual'`, which stops automatic titling; `''` clears it)
   * and emits `session_title` to the event log (with a durable log: numbered by the instance
   * running the turn, or by this one, under the session's lease, when none runs).
   */
  async updateSessionTitle(id: string, title: string): Promise<void> {
    return this.#withSession(id, async ({ record }) => {
      if (typeof title !== 'string') {
        throw new InvalidArgumentError('invalid title: expected a string', {
          issues: [{ path: ['title'], message: 'expected a string' }],
        });
      }
      assertTitle(title, this.#limits);
      await record.update(() => ({ title, titleSource: title === '' ? 'none' : 'manual' }));
      if (this.#shared) await this.#sharedEvent(id, { type: 'session_title', title });
      else this.#logs.get(id)?.append({ type: 'session_title', title });
    });
  }

  /** Stars or unstars a session (listings can filter on it). Allowed during a turn. */
  async setSessionStarred(id: string, starred: boolean): Promise<void> {
    return this.#withSession(id, async ({ record }) => {
      if (typeof starred !== 'boolean') {
        throw new InvalidArgumentError('invalid starred: expected a boolean', {
          issues: [{ path: ['starred'], message: 'expected a boolean' }],
        });
      }
      await record.update(() => ({ starred }));
    });
  }

  /**
   * Replaces the tool permission patterns; a running turn's next authorisation uses them, and
   * pending confirmations that the new patterns approve without asking are approved (never
   * rejected: a human was asked and answers them). Pass a function for an atomic edit: it gets a
   * copy of the current patterns under the session's metadata lock and returns the new ones, e.g.
   * `(current) => ({ ...current, deny: [...current.deny, 'rm'] })`.
   */
  async updateSessionPermissions(
    id: string,
    permissions: Permissions | ((current: Permissions) => Permissions),
  ): Promise<void> {
    return this.#withSession(id, async (live) => {
      this.#forgetUnleased(live);
      await setPermissions(this.#scope(live), permissions);
      await this.#rulesChanged(id);
    });
  }

  /**
   * Sets the tool safety policy (`INVALID_ARGUMENT` for an unknown one). Like
   * {@link updateSessionPermissions}, pending confirmations the new policy approves are approved.
   */
  async setSessionSafetyPolicy(id: string, policy: SafetyPolicy): Promise<void> {
    return this.#withSession(id, async (live) => {
      this.#forgetUnleased(live);
      await setSafetyPolicy(this.#scope(live), policy);
      await this.#rulesChanged(id);
    });
  }

  /**
   * Not `autonomous`: remembers the policy and sets `autonomous`. `autonomous`: restores the
   * remembered policy (`''` if none). Resolves to the new policy. The remembered policy lives in
   * this manager's memory.
   */
  async toggleToolApproval(id: string): Promise<SafetyPolicy> {
    return this.#withSession(id, async (live) => {
      this.#forgetUnleased(live);
      const policy = await toggleToolApproval(this.#scope(live));
      await this.#rulesChanged(id);
      return policy;
    });
  }

  // ---------------------------------------------------------------- history edits

  /** Appends a message. `SESSION_BUSY` while a turn runs. Resolves to the stored message. */
  async addMessage(
    id: string,
    message: Message | (Partial<Message> & { content: string }) | string,
  ): Promise<Message> {
    return this.#withSession(id, async (live) => {
      const normalized = normalizeMessage(message, undefined, 'message', { limits: this.#limits });
      const stored = cloneRecord(normalized);
      await this.#admission.whileIdle(live, () =>
        live.record.append([{ kind: 'message', message: normalized }]),
      );
      return stored;
    });
  }

  /** Replaces a message. `SESSION_BUSY` while a turn runs; `MESSAGE_NOT_FOUND`. */
  async updateMessage(
    id: string,
    messageId: string,
    message: Partial<Message> & { content: string },
  ): Promise<Message> {
    return this.#withSession(id, async (live) => {
      const normalized = normalizeMessage({ ...message, id: messageId }, undefined, 'message', {
        limits: this.#limits,
      });
      await this.#admission.whileIdle(live, () => live.record.replaceMessage(messageId, normalized));
      return cloneRecord(normalized);
    });
  }

  /** Appends a compaction summary. `SESSION_BUSY` while a turn runs. */
  async addSummary(
    id: string,
    summary: Omit<SummaryItem, 'kind' | 'id' | 'createdAt'> & Partial<Pick<SummaryItem, 'id' | 'createdAt'>>,
  ): Promise<SummaryItem> {
    return this.#withSession(id, async (live) => {
      const item = summaryItem(summary);
      const stored = cloneRecord(item);
      await this.#admission.whileIdle(live, () => live.record.append([item]));
      return stored;
    });
  }

  // ---------------------------------------------------------------- fork, export, import

  /**
   * A new session holding the items before the `beforeUserMessage`-th user message (0-based, valid
   * from 0 to the count of user messages - 1, else `INVALID_ARGUMENT`; all items when omitted),
   * titled `"<title> (fork N)"`, N one more than the highest fork number used for that parent. The
   * parent is untouched.
   */
  async forkSession(id: string, options: { beforeUserMessage?: number } = {}): Promise<Session> {
    this.#guard(id);
    return this.#portability.fork(id, options);
  }

  /** Full records of the sessions, as a version-1 bundle. `SESSION_NOT_FOUND` for any unknown id. */
  async exportSessions(ids: string[]): Promise<ExportBundle> {
    this.#assertOpen();
    return this.#portability.exportSessions(ids);
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
    return this.#portability.importSessions(bundle, options);
  }

  // ---------------------------------------------------------------- delete, stop, close

  /**
   * Deletes a session: removes it from the store, cancels its running turn, ends event subscribers
   * with `session_exited`, closes its runtime and drops its queues and keys. `SESSION_NOT_FOUND`.
   * Across instances (a command bus, a durable log) the instance running the turn ends it first,
   * and a tombstone in the durable log ends every instance's subscribers and refuses later event
   * batches (see `docs/scaling.md`).
   */
  async deleteSession(id: string): Promise<void> {
    this.#guard(id);
    await this.#records.delete(id);
    // The instance running the session's turn ends it first (see docs/scaling.md).
    await this.#forward(id, { kind: 'delete' }).catch((error: unknown) => {
      this.#logger.error('the instance running the deleted session’s turn could not be told', {
        sessionId: id,
        error,
      });
    });
    await this.#deletedHere(id);
    if (this.#sharedLock) await this.#burnLease(id);
    if (this.#shared) {
      await this.#shared.deleteLog(id).catch((error: unknown) => {
        this.#logger.error('deleting the durable events of a deleted session failed', {
          sessionId: id,
          error,
        });
      });
    }
    await this.#pool.close(id);
    this.events.emit('session_deleted', { sessionId: id });
  }

  /**
   * Takes and gives back the deleted session's lease once, so its fencing token moves on: an
   * instance that still caches the session's history (it ran a turn of it, and was not running one
   * when it was deleted) drops that cache on its next lease (see {@link #onLease}), and a session
   * created again under the id never runs on the deleted one's history. Failures are logged.
   */
  async #burnLease(id: string): Promise<void> {
    try {
      const lease = await this.#lock.acquire(id);
      await lease?.release();
      if (lease === undefined) {
        this.#logger.warn('the deleted session’s lease was held: caches of it elsewhere are kept', {
          sessionId: id,
        });
      }
    } catch (error) {
      this.#logger.error('moving the deleted session’s fencing token on failed', { sessionId: id, error });
    }
  }

  /**
   * What deleting a session does in this manager, its record already gone: cancels its turn and
   * waits for it (and for the events it numbered to be written), ends its subscribers here and
   * drops its state. Run by the deleting manager, and by the one running the turn when asked.
   */
  async #deletedHere(id: string): Promise<void> {
    this.#deleted.add(id);
    const reason = cancellation(`session ${id} was deleted`);
    const live = this.#sessions.get(id);
    live?.end(reason);
    this.#admission.cancel(id, reason);
    await this.#admission.ended(id);
    if (live) {
      live.approvals.rejectAll(
        new AgentSessionsError(ErrorCode.SESSION_NOT_FOUND, `session ${JSON.stringify(id)} was deleted`),
      );
      this.#sessions.delete(id);
    }
    this.#logs.delete(id);
    if (this.#shared) {
      this.#shared.exitSession(id, 'deleted');
      // The turn's last batches land before the tombstone that refuses any later one.
      await this.#shared.drained(id);
    }
    // The id is remembered only while work of the deleted session may still run (a runtime winding
    // down, a queued admission): then the store alone answers, and the set does not grow for the
    // manager's lifetime.
    void this.#background.settled(id).then(() => {
      if (!this.#sessions.has(id)) this.#deleted.delete(id);
    });
  }

  /**
   * Releases what this manager holds for a session, keeping its record: cancels its running turn
   * and waits for it, closes its runtime and drops the cached history (the next turn reads the
   * store and makes a new runtime). `SESSION_NOT_FOUND` for an unknown session. With a command
   * bus, a turn running on another instance is released there too.
   */
  async releaseSession(id: string): Promise<void> {
    this.#guard(id);
    if (!this.#admission.isOccupied(id)) await this.#assertExists(id);
    // A turn on another instance is cancelled there, as it would be here.
    await this.#forward(id, { kind: 'release' });
    await this.#releaseHere(id);
  }

  async #releaseHere(id: string): Promise<void> {
    this.#admission.cancel(id, cancellation(`session ${id} was released`));
    await this.#admission.ended(id);
    await this.#pool.close(id);
    this.#sessions.get(id)?.record.forget();
    this.#forgetIfIdle(id);
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
    const timeoutMs = nonNegativeNumber(options?.timeoutMs, 'timeoutMs');
    await this.#background.waitStopped(id, () => this.#admission.ended(id), timeoutMs);
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
    const reason = cancellation('the session manager closed');
    for (const live of this.#sessions.values()) live.end(reason);
    await this.#admission.cancelAll(reason);
    const closed = new AgentSessionsError(ErrorCode.CLOSED, 'the session manager closed');
    for (const live of this.#sessions.values()) live.approvals.rejectAll(closed);
    this.#logs.closeAll();
    await this.#shared?.close();
    await this.#pool.closeAll();
    this.#sessions.clear();
    await this.#records.close();
  }

  // ---------------------------------------------------------------- wiring

  /**
   * A turn took the session's lease (see `AdmissionOptions.onLease`). With a shared lock, a cached
   * record is kept only when this manager's previous lease of the session was the one right
   * before (consecutive fencing tokens: no other instance held it since); otherwise the cache is
   * dropped and the turn reads the store. With a durable log, numbering starts after what the
   * log and the record say; with a command bus, the session's commands are served here until the
   * session is let go.
   */
  async #onLease(live: LiveSession, lease: BusyLease): Promise<(() => Promise<void>) | undefined> {
    const record = live.record;
    if (this.#sharedLock) {
      const previous = this.#leaseTokens.get(record);
      if (previous === undefined || lease.token !== previous + 1) record.forget();
      this.#leaseTokens.set(record, lease.token);
    }
    const shared = this.#shared;
    const bus = this.#bus;
    if (shared === undefined && bus === undefined) return undefined;
    let writer: SharedEventWriter | undefined;
    let stopServing: (() => Promise<void>) | undefined;
    try {
      if (shared) {
        const cache = await record.load();
        writer = await shared.startWriter(live.id, cache.meta.eventSeqReserved ?? 0);
      }
      if (bus) stopServing = await bus.serve(live.id, (command) => this.#serveCommand(live.id, command));
    } catch (error) {
      if (writer) await shared?.finishWriter(writer);
      throw toAgentSessionsError(error, ErrorCode.STORE_UNAVAILABLE, 'the turn could not take the session');
    }
    const letGo = async (): Promise<void> => {
      try {
        if (shared && writer && (await shared.finishWriter(writer))) {
          // Every number handed out is stored: the next holder may continue right after it.
          const last = writer.lastSeq;
          await record
            .update((current) =>
              (current.eventSeqReserved ?? 0) > last ? { eventSeqReserved: last } : undefined,
            )
            .catch((error: unknown) => {
              if (AgentSessionsError.isInstance(error) && error.code === ErrorCode.SESSION_NOT_FOUND) return;
              this.#logger.warn('bringing the event-number reservation back failed (numbers jump)', {
                sessionId: live.id,
                error,
              });
            });
        }
      } finally {
        await stopServing?.();
      }
    };
    return () => {
      const work = letGo();
      this.#background.track(live.id, work);
      return work;
    };
  }

  /**
   * Sends a command to the instance running the session's turn when this manager runs none and
   * has a bus. `undefined`: no instance serves the session (handle it here, as if alone).
   */
  async #forward(id: string, command: Command): Promise<{ value: unknown } | undefined> {
    const bus = this.#bus;
    if (bus === undefined || this.#admission.isActive(id)) return undefined;
    try {
      return { value: await bus.send(id, command) };
    } catch (error) {
      if (AgentSessionsError.isInstance(error) && error.code === ErrorCode.SESSION_NOT_RUNNING)
        return undefined;
      throw error;
    }
  }

  /** Serves a command another instance sent for a turn of this one (see `command-bus.ts`). */
  async #serveCommand(id: string, command: Command): Promise<unknown> {
    const value = (command.value ?? {}) as Record<string, unknown>;
    switch (command.kind) {
      case 'cancel':
        this.#guard(id);
        return this.#admission.cancel(
          id,
          cancellation(typeof value.reason === 'string' ? value.reason : 'cancelTurn was called'),
        );
      case 'steer':
        return this.#withSession(id, async () => {
          const messages = normalizeMessages(value.messages as MessageInput[], 'messages', {
            limits: this.#limits,
            userOnly: true,
          });
          await this.#steerHere(id, messages);
          return null;
        });
      case 'follow-up':
        return this.#withSession(id, (live) =>
          this.#followUpHere(
            live,
            normalizeMessages(value.messages as MessageInput[], 'messages', {
              limits: this.#limits,
              userOnly: true,
            }),
            optionalString(value.idempotencyKey, 'idempotencyKey'),
          ),
        );
      case 'resume':
        return this.#withSession(id, async (live) => {
          const parsed = parseResumeInput(value as unknown as ResumeInput);
          if (live.approvals.confirmations.size > 0 || this.#admission.isActive(id)) {
            await answerConfirmation(this.#scope(live), parsed);
          } else {
            await answerPersisted(live, { kind: 'confirmation', input: parsed }, this.#resumption());
          }
          return null;
        });
      case 'elicitation':
        return this.#withSession(id, async (live) => {
          const input = value as unknown as ResumeElicitationInput;
          if (live.approvals.elicitations.size > 0 || this.#admission.isActive(id)) {
            await answerElicitation(this.#scope(live), input);
          } else {
            const parsed = parseElicitationInput(input);
            await answerPersisted(live, { kind: 'elicitation', input: parsed }, this.#resumption());
          }
          return null;
        });
      case 'delete':
        // The sender deleted the record already.
        this.#guard(id);
        await this.#deletedHere(id);
        await this.#pool.close(id);
        return null;
      case 'rules-changed':
        // Another instance stored new permissions or a new policy: this turn's cache takes them,
        // and its pending confirmations are decided again.
        return this.#withSession(id, async (live) => {
          const { record } = live;
          await record.exclusive(async () => {
            const cache = record.cached;
            if (cache === undefined) return;
            const { permissions, safetyPolicy } = await this.#records.get(id);
            cache.applyPatch({ permissions, safetyPolicy });
          });
          reconsiderPending(this.#scope(live));
          return null;
        });
      case 'release':
        this.#guard(id);
        await this.#releaseHere(id);
        return null;
      case 'event': {
        // An event only the instance numbering the session's events may number (a title).
        this.#guard(id);
        const writer = this.#shared?.writer(id);
        if (writer === undefined) return false;
        if (value.type !== 'session_title' || typeof value.title !== 'string') {
          throw new InvalidArgumentError('only session_title events are forwarded');
        }
        writer.append({
          type: 'session_title',
          title: value.title,
          ...(typeof value.turnId === 'string' ? { turnId: value.turnId } : {}),
        });
        return true;
      }
      default:
        throw new InvalidArgumentError(`unknown command ${JSON.stringify(command.kind)}`);
    }
  }

  /**
   * The event sink of a turn with a durable log: this instance's writer, and once the writer is
   * closed (the turn let the session go), a title generated late still reaches every instance
   * (see {@link #sharedEvent}) as it would reach the in-memory log.
   */
  #turnSink(sessionId: string): (EventSink & { readonly lastSeq: number }) | undefined {
    const writer = this.#shared?.writer(sessionId);
    if (writer === undefined) return undefined;
    return {
      get lastSeq() {
        return writer.lastSeq;
      },
      append: (input) => {
        if (!writer.closed || input.type !== 'session_title') return writer.append(input);
        void this.#sharedEvent(sessionId, input);
        return undefined;
      },
    };
  }

  /**
   * Numbers a `session_title` event with a durable log, from any instance: this instance's writer
   * when it runs the session's turn; else the instance running it (over the command bus); else,
   * when no instance runs one, this instance takes the session's lease for one append. When the
   * lease is taken meanwhile it asks again (a turn that started re-emits the stored title anyway).
   * Never rejects: the title is stored, and a failure to announce it is logged.
   */
  async #sharedEvent(id: string, input: EventInput & { type: 'session_title' }): Promise<void> {
    const shared = this.#shared;
    if (shared === undefined) return;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const writer = shared.writer(id);
        if (writer) {
          writer.append(input);
          return;
        }
        if (this.#bus && !this.#admission.isOccupied(id)) {
          const served = await this.#bus.send(id, { kind: 'event', value: input }).catch((error: unknown) => {
            if (AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_RUNNING)) return false;
            throw error;
          });
          if (served === true) return;
        }
        if (this.#closed || this.#deleted.has(id)) return;
        try {
          const live = this.#live(id);
          await this.#admission.whileIdle(live, () => this.#appendIdle(id, live.record, input));
          return;
        } catch (error) {
          if (!AgentSessionsError.hasCode(error, ErrorCode.SESSION_BUSY)) throw error;
        } finally {
          this.#forgetIfIdle(id);
        }
      }
      this.#logger.warn('a session_title event was not numbered: the session stayed busy', { sessionId: id });
    } catch (error) {
      this.#logger.error('numbering a session_title event failed', { sessionId: id, error });
    }
  }

  /** One event numbered while this instance holds the session's lease and runs no turn. */
  async #appendIdle(id: string, record: SessionRecord, input: EventInput): Promise<void> {
    const shared = this.#shared;
    if (shared === undefined) return;
    const session = await this.#records.get(id);
    const writer = await shared.startWriter(id, session.eventSeqReserved ?? 0);
    writer.append(input);
    if (!(await shared.finishWriter(writer))) return;
    // Stored: the reservation covers it too, for when the log expires and numbering starts from it.
    if (writer.lastSeq > (session.eventSeqReserved ?? 0))
      await record.patch({ eventSeqReserved: writer.lastSeq });
  }

  /**
   * Permissions or the safety policy were stored here: the instance running the session's turn
   * takes them for its next authorisation and decides its pending confirmations again, as this
   * one would. The change is stored already, so a failure to tell it is logged, not thrown.
   */
  async #rulesChanged(id: string): Promise<void> {
    await this.#forward(id, { kind: 'rules-changed' }).catch((error: unknown) => {
      this.#logger.error('the instance running the session’s turn could not be told of new rules', {
        sessionId: id,
        error,
      });
    });
  }

  /**
   * Before a read-modify-write of metadata: with a shared lock, a cache this manager keeps while it
   * holds no lease of the session may miss what other instances wrote since; dropping it makes
   * the edit read the store (the next turn here reads it anyway, see {@link #onLease}).
   */
  #forgetUnleased(live: LiveSession): void {
    if (this.#sharedLock && !this.#admission.isOccupied(live.id)) live.record.forget();
  }

  /** `streaming` of a snapshot: a turn runs here, or (a shared lock) another instance holds the lease. */
  async #streaming(id: string): Promise<boolean> {
    if (this.#admission.running(id) !== undefined) return true;
    if (!this.#sharedLock || this.#admission.isOccupied(id) || this.#lock.isHeld === undefined) return false;
    return this.#lock.isHeld(id);
  }

  /** With a durable log: removes the tombstone a deleted session of the same id left. */
  async #clearTombstone(id: string): Promise<void> {
    await this.#shared?.clearTombstone(id);
  }

  /** The one guard of every call on a session: the manager is open and `id` is a valid session id. */
  #guard(id: string): void {
    this.#assertOpen();
    assertSessionId(id);
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentSessionsError(ErrorCode.CLOSED, 'the session manager is closed');
  }

  /**
   * A call on one session: {@link guard}, then `work` with the session's in-memory state, which is
   * dropped afterwards if it holds nothing a later call needs (bounded memory for idle sessions).
   */
  async #withSession<T>(id: string, work: (live: LiveSession) => Promise<T>): Promise<T> {
    this.#guard(id);
    try {
      return await work(this.#live(id));
    } finally {
      this.#forgetIfIdle(id);
    }
  }

  #live(id: string): LiveSession {
    let live = this.#sessions.get(id);
    if (!live) {
      live = new LiveSession(this.#records.open(id), this.#capacities);
      this.#sessions.set(id, live);
    }
    return live;
  }

  #scope(live: LiveSession): SessionScope {
    return {
      sessionId: live.id,
      approvals: live.approvals,
      record: live.record,
      assertExists: () => this.#assertExists(live.id),
      logger: this.#logger,
    };
  }

  #resumption(): { admission: Admission; runtimes: RuntimePool; logger: Logger } {
    return { admission: this.#admission, runtimes: this.#pool, logger: this.#logger };
  }

  /**
   * Drops a session's state when it holds nothing a later call needs. Its cache goes with it: the
   * cache lives as long as the session's runtime, and without a runtime (a refused turn, a failing
   * factory) no idle close would ever drop it.
   */
  #forgetIfIdle(id: string): void {
    const live = this.#sessions.get(id);
    if (live?.idle && !this.#admission.isOccupied(id) && this.#pool.peek(id, null) === undefined) {
      this.#sessions.delete(id);
    }
  }

  #created(session: Session): void {
    this.#deleted.delete(session.id);
    this.events.emit('session_created', { session: cloneRecord(session) });
  }

  /**
   * The session's event log, made if needed, after an await: `close()` or `deleteSession` may have
   * run meanwhile, and a log made then would never get its `session_exited`.
   */
  #liveLog(id: string, reserved: number | undefined): EventLog {
    this.#assertOpen();
    if (this.#deleted.has(id)) throw new SessionNotFoundError(id);
    return this.#logs.getOrCreate(id, reserved);
  }

  /**
   * The session's persisted event-number mark when this process has no log for it yet (a read of
   * the record); `SESSION_NOT_FOUND` for an unknown session.
   */
  async #reservedSeq(id: string): Promise<number | undefined> {
    if (this.#deleted.has(id)) throw new SessionNotFoundError(id);
    const cached = this.#sessions.get(id)?.record.cached;
    if (cached) return cached.meta.eventSeqReserved;
    if (this.#logs.get(id)) return undefined;
    return (await this.#records.get(id)).eventSeqReserved;
  }

  /** `SESSION_NOT_FOUND` unless the session exists (known from memory, or a summary read). */
  async #assertExists(id: string): Promise<void> {
    if (this.#deleted.has(id)) throw new SessionNotFoundError(id);
    if (this.#sessions.get(id)?.record.cached || this.#logs.get(id)) return;
    if (!(await this.#records.exists(id))) throw new SessionNotFoundError(id);
  }
}

/** The options an event log subscription takes, without `undefined` members. */
function subscribeOptions(options: { since?: number; signal?: AbortSignal }): SubscribeOptions {
  return {
    ...(options.since === undefined ? {} : { since: options.since }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
}

/** `options.telemetry`: something with `startSpan` (`INVALID_ARGUMENT` otherwise). */
function assertTelemetry(telemetry: Telemetry): Telemetry {
  if (typeof telemetry?.startSpan !== 'function') {
    throw new InvalidArgumentError('invalid telemetry: expected an object with startSpan', {
      issues: [{ path: ['telemetry'], message: 'expected an object with startSpan' }],
    });
  }
  return telemetry;
}

/** A cancel reason as text, for a cancel sent to another instance. */
function describeReason(reason: unknown): string | undefined {
  if (reason === undefined) return undefined;
  return reason instanceof Error ? reason.message : String(reason);
}

function assertSince(since: number): void {
  if (!(Number.isSafeInteger(since) && since >= 0)) {
    throw new InvalidArgumentError(`invalid since: ${String(since)}; expected a non-negative integer`);
  }
}
