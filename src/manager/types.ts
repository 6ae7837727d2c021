import type { Keyv } from 'keyv';
import type { CommandBus } from '../command-bus.js';
import type { DurableEventLog } from '../durable-event-log.js';
import type { AgentSessionsError } from '../errors.js';
import type { SessionEvent, StopReason } from '../events.js';
import type { Logger } from '../logger.js';
import type { ModelChoice, RuntimeFactory } from '../runtime.js';
import type { Message, Session, ToolCall } from '../schemas.js';
import type { SourceResolver } from '../sources.js';
import type { Store } from '../store.js';
import type { Telemetry } from '../telemetry.js';
import type { BusyLock } from './busy-lock.js';

/**
 * A message as callers give it: a string is a user message; an object needs `content`, and a
 * missing `id`, `role` (`'user'`) or `createdAt` is filled in.
 */
export type MessageInput = string | (Partial<Message> & { content: string });

/** Makes a title from the first messages of a session. Its first non-empty line is used. */
export type TitleGenerator = (input: { messages: string[]; signal: AbortSignal }) => Promise<string>;

/**
 * Limits on what callers pass in, checked before anything is written (`INVALID_ARGUMENT`). Each is
 * a positive integer.
 */
export interface InputLimits {
  /** UTF-8 bytes of one message's content (and parts). @default 1048576 (1 MiB) */
  maxMessageBytes: number;
  /** Messages in one `runSession`, `steerSession` or `followUpSession` call. @default 100 */
  maxMessagesPerCall: number;
  /** Characters of a title. @default 1000 */
  maxTitleLength: number;
  /** UTF-8 bytes of a session's `attributes` as JSON. @default 65536 (64 KiB) */
  maxAttributesBytes: number;
  /** Nesting depth of a session's `attributes` (`{}` is 1; the HTTP layer's JSON depth limit is the same). @default 256 */
  maxAttributesDepth: number;
}

/** Options of {@link SessionManager}. */
export interface SessionManagerOptions {
  /** Makes each session's runtime. Required. */
  runtime: RuntimeFactory;
  /** Where sessions live. @default new MemoryStore() */
  store?: Store;
  /**
   * Decides which holder runs a session. The default is for one process; several instances on one
   * shared store need a shared lock such as `RedisLeaseLock` from `agent-sessions/redis`. When the
   * lock has `fenceStore`, every write goes through the store it returns (see `BusyLock`).
   * @default new InProcessBusyLock()
   */
  busyLock?: BusyLock;
  /**
   * A durable event log shared by every instance (`RedisEventStream`, `PostgresEventLog`,
   * `FileEventLog`). When given — or when the store declares one as `store.eventLog` (see
   * `eventLogOf`) — events are numbered by the instance holding the session's busy lease, once
   * across all instances and restarts, written to it in batches, and `streamEvents` on any
   * instance replays from it and then tails it (see `docs/events-and-replay.md`). Without one,
   * each process keeps its sessions' events in memory (`eventLogCapacity`).
   */
  eventLog?: DurableEventLog;
  /** Events written to {@link SessionManagerOptions.eventLog} per batch at most. @default 256 */
  eventLogBatchSize?: number;
  /**
   * Carries commands for a running turn (cancel, steer, follow-up, answers to confirmations and
   * elicitations) to the instance that runs it: `RedisCommandBus` from `agent-sessions/redis`, or
   * `InProcessCommandBus` shared by managers of one process. Without one, a command reaches only
   * turns of this manager.
   */
  commandBus?: CommandBus;
  /** Resolves agent sources; without one, runtimes get no `source`. */
  sources?: SourceResolver;
  /** Generates titles beside the first turn (30 s limit). Without one, the heuristic title stays. */
  titleGenerator?: TitleGenerator;
  /** When set, working dirs must resolve (symlinks included) inside this directory. */
  workingDirRoot?: string;
  /** Events kept per session for replay, and how far a subscriber may lag. @default 1024 */
  eventLogCapacity?: number;
  /** Release a session's kept events after this long with no subscriber and no event (the seq counter stays). 0 = never. @default 300000 */
  eventLogReleaseAfterMs?: number;
  /** Steered messages a running turn may hold. @default 5 */
  steerCapacity?: number;
  /** Follow-ups that may wait behind a running turn. @default 20 */
  followUpCapacity?: number;
  /** Idempotency keys remembered per session. @default 256 */
  idempotencyKeys?: number;
  /**
   * Follow-up idempotency keys shared by several instances: a `Keyv` (e.g. `@keyv/redis`, or Keyv's
   * PostgreSQL adapter) where each used key is kept for {@link SessionManagerOptions.idempotencyKeyTtlMs}.
   * A key used on one instance is then a `'duplicate'` on every other. Without it, keys are
   * remembered by this process only (the last {@link SessionManagerOptions.idempotencyKeys} per
   * session). Keyv has no atomic set-if-absent: two instances claiming one key within the same
   * round trip can both deliver.
   */
  idempotencyStore?: Keyv;
  /** How long a key used with {@link SessionManagerOptions.idempotencyStore} is kept. @default 86400000 */
  idempotencyKeyTtlMs?: number;
  /** Close runtimes (and drop the cached history) idle this long. 0 = never. @default 900000 */
  idleRuntimeTtlMs?: number;
  /**
   * How long a turn start waits for the previous turn's `run()` to return (a runtime that ignores
   * its cancel signal can run on after its turn ended). Past it the stuck runtime is closed and
   * replaced by a new one, and a warning is logged.
   * @default 5000
   */
  runtimeStopTimeoutMs?: number;
  /** Where the manager logs. Nothing is printed by default. */
  logger?: Logger;
  /**
   * When a turn is cancelled after text was streamed, keep that text as an assistant
   * message marked `interrupted` (with the stop reason), so a reload shows what the user saw and
   * the next turn does not start with two user messages in a row. Tool calls streamed but never
   * completed are not kept. @default true
   */
  keepPartialAnswers?: boolean;
  /** Limits on caller input; each one left out keeps its default (see {@link InputLimits}). */
  limits?: Partial<InputLimits>;
  /**
   * At most this many turns of this manager run at once (a positive integer; `INVALID_ARGUMENT`
   * otherwise), so a host stays within its model provider's rate limits. Turns past it wait in one
   * first-in, first-out queue: `runSession` resolves as usual, the stream's first event is
   * `turn_queued { position }`, and `stream_started` follows once a slot is free. A waiting turn
   * holds its session's busy lock as a running one does (`SESSION_BUSY` for another turn; steering
   * and follow-ups queue for it), shows in the snapshot as {@link SessionSnapshot.queued}, and
   * leaves the queue at once when cancelled (signal, `cancel()`, `cancelTurn`, `deleteSession`,
   * `close`). Each turn of a TurnStream (a steered one, a follow-up) waits for a slot of its own.
   * Counted per manager: several instances each allow this many. The queue (`p-queue`) is loaded
   * only when this is set.
   * @default unlimited
   */
  maxConcurrentTurns?: number;
  /**
   * Traces turns: `openTelemetry()` from `agent-sessions/otel`, or any {@link Telemetry}. One span
   * per turn (`invoke_agent`), with child spans for slot and human waits and store writes, and the
   * turn's span handed to the runtime as `TurnContext.span`. Without it nothing is traced (see
   * `docs/operations.md`).
   */
  telemetry?: Telemetry;
}

/** Input of {@link SessionManager.runSession}. */
export interface RunInput {
  /**
   * The turn's user messages (at least one, none empty or whitespace only). Only user input: a
   * `role` other than `'user'` (`system` included: system prompts are the runtime's) and the fields
   * of assistant and tool messages are refused with `INVALID_ARGUMENT`; add such records to history
   * with `addMessage`.
   */
  messages: MessageInput[];
  /** Switch the session to this agent source (resolved before anything is written). */
  source?: string;
  /** Switch the session to this agent. */
  agent?: string;
  /** Set the agent's model override before the turn (persisted, like {@link SessionManager.setSessionModel}). */
  model?: string;
}

/** Options of {@link SessionManager.runSession}. */
export interface RunOptions {
  /** Aborting cancels the turn (and rejects `runSession` if it is still being admitted). */
  signal?: AbortSignal;
  /** What breaking out of the stream does: cancel the turn, or let it run on into the event log. @default 'cancel' */
  onDetach?: 'cancel' | 'continue';
}

/** How a {@link TurnStream} ended. */
export interface TurnResult {
  /** Why the last turn of the stream stopped. */
  stopReason: StopReason;
  /** The error, when `stopReason` is `'error'`. */
  error?: AgentSessionsError;
  /** Steered and follow-up messages dropped by a cancel (never persisted). */
  discarded: Message[];
}

/**
 * The events of a turn (and of the steered and follow-up turns that run after it) as an async
 * iterable. Breaking out of the loop cancels unless `onDetach: 'continue'`.
 *
 * A TurnStream has one reader: iterate it per event, or read it in batches through
 * {@link TurnStream.batches}, once; a second iteration throws `INVALID_ARGUMENT`.
 */
export interface TurnStream extends AsyncIterable<SessionEvent> {
  /** The id of the stream's first turn. */
  readonly turnId: string;
  /**
   * The same events as iterating the stream, in the same order, as arrays: each `next()` yields
   * every event produced since the last one (never an empty array). A reader waiting for events is
   * woken once the task that produced them has run (the next turn of the event loop) or as soon as
   * 512 are waiting, so a turn that emits many events at once costs one wake-up, not one per event.
   * Counts as the stream's one iteration; breaking out of the loop cancels unless
   * `onDetach: 'continue'`. Each array is the reader's own; the events are shared (read-only).
   */
  batches(): AsyncIterable<readonly SessionEvent[]>;
  /** Cancels the running turn and drops queued follow-ups; `done` resolves with `'cancelled'`. */
  cancel(reason?: unknown): void;
  /** Settles when the stream's last turn has ended; never rejects. */
  readonly done: Promise<TurnResult>;
}

/** Answers to a `tool_call_confirmation`. */
export type Confirmation = 'approve' | 'approve-tool' | 'approve-session' | 'reject';

/** Input of {@link SessionManager.resumeSession}. */
export interface ResumeInput {
  confirmation: Confirmation;
  /** Told to the model when rejecting. */
  reason?: string;
  /** With `approve-tool`: the pattern to always allow. @default the pending call's tool name */
  toolName?: string;
  /** Which confirmation, when several are pending. */
  confirmationId?: string;
}

/** Input of {@link SessionManager.resumeElicitation}. */
export interface ResumeElicitationInput {
  action: 'accept' | 'decline' | 'cancel';
  content?: unknown;
  /** Which elicitation, when several are pending. */
  elicitationId?: string;
}

/** A pending tool confirmation, as a snapshot shows it. */
export interface PendingConfirmation {
  confirmationId: string;
  turnId: string;
  toolCall: ToolCall;
}

/** A pending elicitation, as a snapshot shows it. */
export interface PendingElicitation {
  elicitationId: string;
  turnId: string;
  message: string;
  schema?: unknown;
  mode: 'form' | 'url';
  url?: string;
}

/** What a reconnecting client needs. Tail with `streamEvents(id, { since: lastEventSeq })`. */
export interface SessionSnapshot {
  session: Session;
  /** From when a turn is admitted until its busy lock is released. */
  streaming: boolean;
  agent?: string;
  lastEventSeq: number;
  pending: { confirmations: PendingConfirmation[]; elicitations: PendingElicitation[] };
  queues: { steer: Message[]; followUp: Message[][] };
  /**
   * Present while the session's turn waits for a slot (`maxConcurrentTurns`): the waiting turn,
   * since when (ISO-8601), and its place in line (1: next).
   */
  queued?: QueuedTurn;
}

/** A turn waiting for one of the manager's `maxConcurrentTurns` slots. */
export interface QueuedTurn {
  turnId: string;
  /** ISO-8601: when it started waiting. */
  since: string;
  /** Its place in line: 1 is the next turn to start. */
  position: number;
}

/** What {@link SessionManager.getAvailableModels} resolves to. */
export interface AvailableModels {
  agent: string;
  current?: string;
  models: Array<ModelChoice & { current: boolean }>;
}

/** The manager's own events, for hosts that observe everything (`manager.events.on(...)`). */
export interface ManagerEvents {
  session_created: [event: { session: Session }];
  session_deleted: [event: { sessionId: string }];
  turn_started: [event: { sessionId: string; turnId: string }];
  turn_ended: [
    event: { sessionId: string; turnId: string; stopReason: StopReason; error?: AgentSessionsError },
  ];
}

/** Options of {@link SessionManager.followUpSession}. */
export interface FollowUpOptions {
  /** A repeated key (among the session's last `idempotencyKeys`) delivers nothing and returns `'duplicate'`. */
  idempotencyKey?: string;
}

/** Options of {@link SessionManager.importSessions}. */
export interface ImportOptions {
  /** What to do with an id that exists: fail before writing anything, skip it, or replace it. */
  onConflict: 'error' | 'skip' | 'replace';
}

/** A template for {@link SessionManager.createSession}: any session fields; the rest get defaults. */
export type SessionTemplate = Partial<Omit<Session, 'createdAt' | 'updatedAt'>>;

/**
 * What {@link SessionManager.streamEvents} returns: the events, and `ready`, which settles as soon
 * as the session is known to exist (never waiting for an event): it rejects with
 * `SESSION_NOT_FOUND` (or `CLOSED`, `INVALID_ARGUMENT`, the signal's reason) for a stream that
 * cannot be read, so a host can refuse the request before it answers (an HTTP 404 rather than a
 * 200 that ends at once). The first `next()` rejects with the same error.
 */
export interface SessionEventStream extends AsyncIterable<SessionEvent> {
  /** Resolves once the session is known to exist; rejects with the error the first `next()` gives. */
  readonly ready: Promise<void>;
}

/**
 * What {@link SessionManager.streamEventBatches} returns: the events of {@link SessionEventStream}
 * as arrays (each the reader's own, never empty, in `seq` order), with the same `ready`.
 */
export interface SessionEventBatchStream extends AsyncIterable<readonly SessionEvent[]> {
  /** Resolves once the session is known to exist; rejects with the error the first `next()` gives. */
  readonly ready: Promise<void>;
}
