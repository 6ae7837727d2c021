/**
 * A running turn: what `runSession` (or a started follow-up) hands back once admission succeeded.
 *
 * One {@link RunningTurn} drives a {@link TurnStream}: its first turn (whose user messages admission
 * already stored), then the steered messages no turn took and the queued follow-ups, each as its own
 * turn, until none is left or the stream is cancelled. Per turn, in order:
 * 0. with `maxConcurrentTurns`, a slot (`turn-slots.ts`): `turn_queued` when it has to wait; with
 *    `telemetry`, the turn's span opens first (`turn-tracing.ts`);
 * 1. `turn_started` (manager event) and `stream_started`;
 * 2. the user messages: stored (unless admission stored them), then `user_message` each;
 * 3. the title work of a turn start (`titles.ts`);
 * 4. the runtime's events, validated; persisted ones are stored, then emitted (see below);
 * 5. the closing: pending human requests of the turn rejected, an `error` item for a failed turn,
 *    a `role: 'tool'` result for each tool call that has none, then `error` (if any) and
 *    `stream_stopped`, then `turn_ended`.
 *
 * Store first, then emit: `message_added`, a steered `user_message` and `token_usage` are emitted
 * only after their write succeeded, in the order the runtime produced them; a runtime event that
 * follows one of them waits for that write. A failed write ends the turn with `error`.
 *
 * The turn receives what it needs (the record handle, the queues, the approvals, an event sink and
 * an `onEnd` callback from admission) and changes no state of the manager's own: when its last turn
 * ended it calls `onEnd` once, which releases the busy lock, before the stream's last `next()`
 * resolves.
 */
import type { EventEmitter } from 'eventemitter3';
import { AgentSessionsError, ErrorCode, toAgentSessionsError } from '../errors.js';
import { type RuntimeEvent, RuntimeEventSchema, type SessionEvent, type StopReason } from '../events.js';
import { cancellation } from '../internal/abort.js';
import { Channel } from '../internal/channel.js';
import { newId } from '../internal/ids.js';
import type { Logger } from '../logger.js';
import type { Runtime, TurnContext, TurnResumption } from '../runtime.js';
import type { Message, SessionItem } from '../schemas.js';
import type { Telemetry, TelemetrySpan } from '../telemetry.js';
import {
  authorizeToolCall,
  elicit,
  removePending,
  type SessionApprovals,
  type TurnScope,
} from './authorization.js';
import type { DeltaEvent, EventInput, EventSink } from './event-log.js';
import { notRunResult, repairHistory } from './history-repair.js';
import { DEFAULT_AGENT, overrideOf } from './models.js';
import type { FollowUp, TurnQueues } from './queues.js';
import { needsReservation, reservationDueAt, reserveEventSeqs } from './seq-reservation.js';
import type { SessionCache, SessionRecord } from './session-records.js';
import { titleAtTurnStart } from './titles.js';
import type { SlotWait, TurnSlots } from './turn-slots.js';
import { Attr, TurnTrace } from './turn-tracing.js';
import type { ManagerEvents, QueuedTurn, TitleGenerator, TurnResult, TurnStream } from './types.js';

/** What a {@link RunningTurn} needs; admission builds it once the first turn's writes succeeded. */
export interface RunningTurnOptions {
  sessionId: string;
  /** The id of the first turn (admission made it, and named it in `SESSION_BUSY` meanwhile). */
  firstTurnId: string;
  /** The first turn's user messages, already stored by admission. */
  messages: Message[];
  runtime: Runtime;
  record: SessionRecord;
  queues: TurnQueues;
  approvals: SessionApprovals;
  /** Where the turn's events go (the session's event log). */
  events: EventSink & { readonly lastSeq: number };
  /** The manager's own events (`turn_started`, `turn_ended`). */
  observer: EventEmitter<ManagerEvents>;
  titleGenerator: TitleGenerator | undefined;
  /** The session's signal, aborted on delete and close: stops work that outlives a turn (title generation). */
  sessionSignal(): AbortSignal;
  logger: Logger;
  /** Registers work that must end before `waitStopped` resolves. */
  track(work: Promise<unknown>): void;
  /**
   * Called when the runtime's `run()` starts, with a promise that settles once it has returned
   * (its iterator finished or was closed): the next turn on this runtime waits for it.
   */
  runStarted?(stopped: Promise<void>): void;
  /** Called once, when the last turn ended and before the stream ends: releases the busy lock. */
  onEnd(): void;
  /** What breaking out of the stream does. @default 'cancel' */
  onDetach?: 'cancel' | 'continue';
  /** Aborting it cancels the turn. */
  signal?: AbortSignal;
  /** No one reads the stream (a started follow-up): its events go to the event log only. */
  detached?: boolean;
  /** A cancel that arrived while admission ran: the turn starts cancelled. */
  cancelled?: { reason: unknown };
  /** The first turn resumes requests answered after a restart (`TurnContext.resume`). */
  resume?: TurnResumption;
  /** Keep the text streamed before a cancel as an interrupted assistant message. @default true */
  keepPartialAnswers?: boolean;
  /** The manager's turn slots (`maxConcurrentTurns`): each turn waits for one before it starts. */
  slots?: TurnSlots;
  /** Traces each turn (`invoke_agent`) and what it waits for and writes. */
  telemetry?: Telemetry;
}

/** One turn's input. */
interface TurnInput {
  turnId: string;
  messages: Message[];
  /** Already stored (the first turn's, by admission). */
  persisted: boolean;
  idempotencyKey?: string;
  resume?: TurnResumption;
}

interface TurnOutcome {
  reason: StopReason;
  error?: AgentSessionsError;
}

/** Text deltas of a partial answer joined into one string at a time. */
const PARTIAL_CHUNK = 256;

const endReasons = new Set(['end_turn', 'max_tokens', 'max_turn_requests', 'refusal']);

/**
 * Validates a runtime event and tags it with its turn. Text deltas, by far the most frequent, take a
 * hand-written path; the rest go through the zod schema. Anything invalid is a runtime failure.
 */
function parseRuntimeEvent(value: unknown, turnId: string): RuntimeEvent & { turnId: string } {
  if (typeof value === 'object' && value !== null) {
    const candidate = value as { type?: unknown; content?: unknown };
    if (
      (candidate.type === 'agent_choice' || candidate.type === 'agent_choice_reasoning') &&
      typeof candidate.content === 'string'
    ) {
      // One literal with turnId: a spread copy plus an added key makes V8 give each event its own
      // shape, and every later property access on it a slow lookup (10× the cost of the pipeline).
      // The envelope fields are declared up front (undefined) so the log completes the event
      // without changing its hidden class.
      return {
        type: candidate.type,
        content: candidate.content,
        turnId,
        sessionId: undefined,
        seq: undefined,
        timestamp: undefined,
      } as unknown as RuntimeEvent & { turnId: string };
    }
  }
  const result = RuntimeEventSchema.safeParse(value);
  if (!result.success) {
    const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
    throw new AgentSessionsError(
      ErrorCode.RUNTIME_FAILED,
      `runtime yielded an invalid event${typeof type === 'string' ? ` of type ${JSON.stringify(type)}` : ''}: ${result.error.issues[0]?.message ?? 'invalid'}`,
      { cause: result.error },
    );
  }
  return { ...result.data, turnId };
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** The turns of one {@link TurnStream}; see the module documentation. */
export class RunningTurn {
  readonly firstTurnId: string;
  readonly stream: TurnStream;
  /** The turn running now (the first, a steered one or a follow-up). */
  currentTurnId: string;

  readonly #options: RunningTurnOptions;
  readonly #record: SessionRecord;
  readonly #queues: TurnQueues;
  readonly #events: EventSink & { readonly lastSeq: number };
  readonly #onDetach: 'cancel' | 'continue';
  readonly #channel = new Channel<SessionEvent>();
  readonly #done = deferred<TurnResult>();
  readonly #disposeSignal: () => void;
  #cancelled = false;
  #cancelReason: unknown;
  #ended = false;
  #turnController: AbortController | undefined;
  #discarded: Message[] = [];
  #reserving = false;
  /**
   * The first seq whose event needs the persisted mark moved ahead, as of the last look at the mark
   * (0: not looked yet). A number compared per event instead of the record's metadata.
   */
  #reserveAt = 0;
  #iterated = false;
  /** The current turn's wait for a slot, while it waits. */
  #slotWait: SlotWait | undefined;
  /** Gives the current turn's slot back (set while it holds one). */
  #releaseSlot: (() => void) | undefined;
  /** The current turn's span, when traced. */
  #trace: TurnTrace | undefined;

  /** Starts the first turn at once: admission calls it only after its writes succeeded. */
  static start(options: RunningTurnOptions): RunningTurn {
    const turn = new RunningTurn(options);
    void turn.#drive({
      turnId: turn.firstTurnId,
      messages: options.messages,
      persisted: true,
      ...(options.resume === undefined ? {} : { resume: options.resume }),
    });
    return turn;
  }

  private constructor(options: RunningTurnOptions) {
    this.#options = options;
    this.#record = options.record;
    this.#queues = options.queues;
    this.#events = options.events;
    this.#onDetach = options.onDetach ?? 'cancel';
    this.firstTurnId = options.firstTurnId;
    this.currentTurnId = this.firstTurnId;
    if (options.detached) this.#channel.detach();
    if (options.cancelled) this.cancel(options.cancelled.reason);
    const signal = options.signal;
    if (signal && !this.#cancelled) {
      const onAbort = () => this.cancel(signal.reason);
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#disposeSignal = () => signal.removeEventListener('abort', onAbort);
    } else {
      this.#disposeSignal = () => {};
    }
    const channel = this.#channel;
    // One reader, per event or in batches: a second would split the events and hang one of them.
    const claim = () => {
      if (this.#iterated) {
        throw new AgentSessionsError(
          ErrorCode.INVALID_ARGUMENT,
          `turn stream ${this.firstTurnId} is already being read: a TurnStream can be iterated once, per event or in batches (use streamEvents for more readers)`,
        );
      }
      this.#iterated = true;
    };
    const leave = async (): Promise<IteratorReturnResult<undefined>> => {
      this.#detach();
      return { value: undefined, done: true };
    };
    this.stream = {
      turnId: this.firstTurnId,
      done: this.#done.promise,
      cancel: (reason?: unknown) => this.cancel(reason),
      [Symbol.asyncIterator](): AsyncIterator<SessionEvent> {
        claim();
        return { next: channel.next, return: leave };
      },
      batches: () => ({
        [Symbol.asyncIterator](): AsyncIterator<readonly SessionEvent[]> {
          claim();
          return { next: channel.nextBatch, return: leave };
        },
      }),
    };
  }

  /** The current turn while it waits for a slot (`maxConcurrentTurns`). */
  get queued(): QueuedTurn | undefined {
    const wait = this.#slotWait;
    const position = wait === undefined ? undefined : this.#options.slots?.position(wait);
    if (wait === undefined || position === undefined) return undefined;
    return { turnId: wait.turnId, since: wait.since, position };
  }

  /** Cancels the running turn and drops the queued steering and follow-ups into `done.discarded`. */
  cancel(reason?: unknown): void {
    if (this.#cancelled || this.#ended) return;
    this.#cancelled = true;
    this.#cancelReason = reason ?? cancellation('the turn was cancelled');
    this.#discarded.push(...this.#queues.discard());
    this.#turnController?.abort(this.#cancelReason);
  }

  #detach(): void {
    if (this.#onDetach === 'cancel') this.cancel(cancellation('the reader left the turn stream'));
    this.#channel.detach();
  }

  #emit(input: EventInput): SessionEvent | undefined {
    return this.#delivered(this.#events.append(input));
  }

  /**
   * {@link #emit} for a text delta the turn loop made itself (`parseRuntimeEvent`): through the
   * log's `appendDelta`, whose property writes only ever see that one shape of object. Every kind
   * of event goes through `append`, where writing the envelope onto so many shapes is slow
   * (megamorphic), and text deltas are most of a turn's events.
   */
  #emitDelta(input: DeltaEvent): SessionEvent | undefined {
    const events = this.#events;
    return this.#delivered(
      events.appendDelta === undefined
        ? events.append(input as unknown as EventInput)
        : events.appendDelta(input),
    );
  }

  /** What follows an append that numbered `event`: the TurnStream gets it, the mark moves if due. */
  #delivered(event: SessionEvent | undefined): SessionEvent | undefined {
    if (event) {
      this.#channel.push(event);
      if (event.seq >= this.#reserveAt && !this.#reserving) this.#reserveSeqs(event.seq);
    }
    return event;
  }

  /** Moves the persisted event-number mark ahead, in the background (see seq-reservation.ts). */
  #reserveSeqs(seq: number): void {
    if (this.#record.cached === undefined) return;
    if (!needsReservation(this.#record, seq)) {
      this.#reserveAt = reservationDueAt(this.#record);
      return;
    }
    this.#reserving = true;
    const work = reserveEventSeqs(this.#record, seq)
      .catch((error: unknown) => {
        this.#options.logger.error('reserving event numbers failed', {
          sessionId: this.#options.sessionId,
          error,
        });
      })
      .finally(() => {
        this.#reserving = false;
        this.#reserveAt = reservationDueAt(this.#record);
      });
    this.#options.track(work);
  }

  async #drive(first: TurnInput): Promise<void> {
    let outcome: TurnOutcome = { reason: 'end_turn' };
    let input: TurnInput | undefined = first;
    let ranToEnd = false;
    try {
      while (input) {
        ranToEnd = false;
        outcome = await this.#runTurn(input);
        ranToEnd = true;
        if (this.#cancelled) break;
        input = this.#nextInput();
      }
    } catch (error) {
      this.#options.logger.error('turn loop failed', { sessionId: this.#options.sessionId, error });
      outcome = {
        reason: 'error',
        error: toAgentSessionsError(error, ErrorCode.RUNTIME_FAILED, 'turn loop failed'),
      };
    } finally {
      if (this.#cancelled) {
        // `done` reports how the last turn actually stopped: a cancel that arrived after it
        // stopped with end_turn (say) changes nothing about it. A turn the cancel cut short
        // returned `cancelled` itself.
        if (outcome.reason !== 'cancelled' && !ranToEnd) outcome = { reason: 'cancelled' };
        // Queued while the cancelled turn wound down: no turn of this stream will take them, and
        // left in the queues they would wait, unseen, for whatever turn comes next.
        this.#discarded.push(...this.#queues.discard());
      }
      this.#release(outcome);
      this.#ended = true;
      this.#disposeSignal();
      this.#options.onEnd();
      this.#channel.end();
      this.#done.resolve({
        stopReason: outcome.reason,
        ...(outcome.error === undefined ? {} : { error: outcome.error }),
        discarded: this.#discarded,
      });
    }
  }

  /** Steered messages no turn took run first, then follow-ups in order. */
  #nextInput(): TurnInput | undefined {
    const next: FollowUp | undefined = this.#queues.next();
    if (!next) return undefined;
    return {
      turnId: newId('turn'),
      messages: next.messages,
      persisted: false,
      ...(next.idempotencyKey === undefined ? {} : { idempotencyKey: next.idempotencyKey }),
    };
  }

  async #runTurn(input: TurnInput): Promise<TurnOutcome> {
    const { sessionId, observer } = this.#options;
    const turnId = input.turnId;
    this.currentTurnId = turnId;
    const controller = new AbortController();
    this.#turnController = controller;
    if (this.#cancelled) controller.abort(this.#cancelReason);

    let cache: SessionCache;
    try {
      cache = await this.#record.load();
    } catch (error) {
      if (input.idempotencyKey !== undefined) this.#queues.keys.release(input.idempotencyKey);
      this.#startTrace(turnId, undefined);
      observer.emit('turn_started', { sessionId, turnId });
      this.#emit({ type: 'stream_started', turnId });
      const failure = toAgentSessionsError(error, ErrorCode.RUNTIME_FAILED, `turn ${turnId} could not start`);
      return this.#stop(turnId, { reason: 'error', error: failure });
    }
    try {
      // Event numbers: the persisted mark moves ahead before this turn emits anything, when fewer
      // than a margin of numbers are left (see seq-reservation.ts).
      await reserveEventSeqs(this.#record, this.#events.lastSeq);
    } catch (error) {
      if (input.idempotencyKey !== undefined) this.#queues.keys.release(input.idempotencyKey);
      this.#startTrace(turnId, cache);
      observer.emit('turn_started', { sessionId, turnId });
      this.#emit({ type: 'stream_started', turnId });
      const failure = toAgentSessionsError(error, ErrorCode.RUNTIME_FAILED, `turn ${turnId} could not start`);
      return this.#stop(turnId, { reason: 'error', error: failure });
    }
    const agent = cache.meta.agent;
    this.#startTrace(turnId, cache);
    const notRun = this.#options.slots ? await this.#takeSlot(turnId, controller.signal) : undefined;
    if (notRun) {
      // Cancelled while it waited (or the queue failed): a turn that never ran, bracketed like any
      // other. A follow-up's messages were not stored yet: they are dropped like a queued one's.
      if (!input.persisted) {
        if (input.idempotencyKey !== undefined) this.#queues.keys.release(input.idempotencyKey);
        if (notRun.reason === 'cancelled') this.#discarded.push(...input.messages);
      }
      observer.emit('turn_started', { sessionId, turnId });
      this.#emit({ type: 'stream_started', turnId, ...(agent === undefined ? {} : { agent }) });
      return this.#stop(turnId, notRun);
    }
    observer.emit('turn_started', { sessionId, turnId });
    this.#emit({ type: 'stream_started', turnId, ...(agent === undefined ? {} : { agent }) });

    if (!input.persisted) {
      try {
        // Admission repaired the first turn's history; a later turn's history is checked here (a
        // failed closing write of the turn before may have left a call without its result).
        await repairHistory({ record: this.#record, cache, logger: this.#options.logger });
        await this.#record.append(input.messages.map((message) => ({ kind: 'message', message })));
      } catch (error) {
        if (input.idempotencyKey !== undefined) this.#queues.keys.release(input.idempotencyKey);
        const failure = toAgentSessionsError(
          error,
          ErrorCode.RUNTIME_FAILED,
          `turn ${turnId} could not store its messages`,
        );
        return this.#stop(turnId, { reason: 'error', error: failure });
      }
    }
    for (const message of input.messages) this.#emit({ type: 'user_message', turnId, message });
    await titleAtTurnStart({
      record: this.#record,
      cache,
      turnId,
      emit: (event) => this.#emit(event),
      generator: this.#options.titleGenerator,
      signal: this.#options.sessionSignal,
      logger: this.#options.logger,
    });

    if (controller.signal.aborted) return this.#stop(turnId, { reason: 'cancelled' });
    return this.#consume(cache, turnId, controller, input.resume);
  }

  /** Opens the turn's span (with telemetry) and traces the session's writes under it. */
  #startTrace(turnId: string, cache: SessionCache | undefined): void {
    const telemetry = this.#options.telemetry;
    if (telemetry === undefined) return;
    const meta = cache?.meta;
    const agent = meta?.agent;
    const model =
      meta === undefined ? undefined : overrideOf(meta.agentModelOverrides, agent ?? DEFAULT_AGENT);
    this.#trace = new TurnTrace(telemetry, {
      sessionId: this.#options.sessionId,
      turnId,
      ...(agent === undefined ? {} : { agent }),
      ...(model === undefined ? {} : { model }),
    });
    this.#record.traceWrites(this.#trace.span);
  }

  /**
   * Waits for one of the manager's turn slots, announcing the wait with `turn_queued` (and a child
   * span). Resolves to `undefined` once it has one, else to how the turn ends without running:
   * `cancelled` when it was cancelled first, `error` when the queue failed.
   */
  async #takeSlot(turnId: string, signal: AbortSignal): Promise<TurnOutcome | undefined> {
    const slots = this.#options.slots;
    if (!slots) return undefined;
    let waitSpan: TelemetrySpan | undefined;
    try {
      this.#releaseSlot = await slots.acquire({
        turnId,
        signal,
        onQueued: (wait, position) => {
          this.#slotWait = wait;
          waitSpan = this.#trace?.span.startChild('await_turn_slot', { [Attr.queuePosition]: position });
          this.#emit({ type: 'turn_queued', turnId, position });
        },
      });
      waitSpan?.end();
      return undefined;
    } catch (error) {
      if (signal.aborted) {
        waitSpan?.end();
        return { reason: 'cancelled' };
      }
      waitSpan?.end({ error });
      return {
        reason: 'error',
        error: toAgentSessionsError(
          error,
          ErrorCode.RUNTIME_FAILED,
          `turn ${turnId} could not get a turn slot`,
        ),
      };
    } finally {
      this.#slotWait = undefined;
    }
  }

  /** Gives back the turn's slot and ends its span (once; also when the turn loop itself failed). */
  #release(outcome: TurnOutcome): void {
    this.#releaseSlot?.();
    this.#releaseSlot = undefined;
    const trace = this.#trace;
    if (trace) {
      this.#trace = undefined;
      this.#record.traceWrites(undefined);
      trace.end(outcome.reason, outcome.error);
    }
  }

  /** Emits the error (if any) and `stream_stopped` of a turn that ends, then `turn_ended`. */
  #stop(turnId: string, outcome: TurnOutcome): TurnOutcome {
    this.#release(outcome);
    if (outcome.error) {
      this.#emit({ type: 'error', turnId, message: outcome.error.message, code: outcome.error.code });
    }
    this.#emit({ type: 'stream_stopped', turnId, reason: outcome.reason });
    this.#options.observer.emit('turn_ended', {
      sessionId: this.#options.sessionId,
      turnId,
      stopReason: outcome.reason,
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    });
    return outcome;
  }

  /** Drives the runtime for one turn and closes it. */
  async #consume(
    cache: SessionCache,
    turnId: string,
    controller: AbortController,
    resume: TurnResumption | undefined,
  ): Promise<TurnOutcome> {
    const { sessionId, logger, runtime } = this.#options;
    const record = this.#record;
    const queues = this.#queues;
    const approvals: SessionApprovals = this.#options.approvals;
    const signal = controller.signal;
    const openToolCalls = new Map<string, string>();
    // A resumed turn starts with the calls it answers open: the runtime writes their results.
    for (const { toolCall } of resume?.decisions ?? []) openToolCalls.set(toolCall.id, toolCall.name);
    let finished = false;
    const settled = deferred<TurnOutcome>();
    const settle = (outcome: TurnOutcome) => {
      if (finished) return;
      finished = true;
      settled.resolve(outcome);
    };
    const onAbort = () => settle({ reason: 'cancelled' });
    signal.addEventListener('abort', onAbort, { once: true });

    // The turn's writes, in the order the runtime produced them. Each job stores, then emits.
    let writes: Promise<void> = Promise.resolve();
    let pendingWrites = 0;
    let writeError: AgentSessionsError | undefined;
    const enqueueWrite = (write: () => Promise<void>): Promise<void> => {
      pendingWrites++;
      const next = writes.then(write).then(
        () => {
          pendingWrites--;
        },
        (error: unknown) => {
          pendingWrites--;
          writeError ??= toAgentSessionsError(
            error,
            ErrorCode.RUNTIME_FAILED,
            `turn ${turnId} could not store its history`,
          );
          settle({ reason: 'error', error: writeError });
        },
      );
      writes = next;
      return next;
    };

    const scope: TurnScope = {
      turnId,
      signal,
      approvals,
      metadata: () => record.cached?.meta ?? cache.meta,
      emit: (event) => {
        this.#emit(event);
      },
      record,
      active: () => !finished,
      ...(this.#trace === undefined ? {} : { span: this.#trace.span }),
    };
    const model = overrideOf(cache.meta.agentModelOverrides, cache.meta.agent ?? DEFAULT_AGENT);
    const context: TurnContext = {
      sessionId,
      turnId,
      session: cache.snapshot(),
      ...(cache.meta.agent === undefined ? {} : { agent: cache.meta.agent }),
      ...(model === undefined ? {} : { model }),
      ...(resume === undefined ? {} : { resume }),
      ...(this.#trace === undefined ? {} : { span: this.#trace.span }),
      signal,
      takeSteering: () => {
        // A user message between an assistant's tool calls and their results makes a history that
        // model providers reject: steering waits until every call of the turn has its result.
        if (finished || openToolCalls.size > 0) return [];
        const messages = queues.steer.drain();
        if (messages.length === 0) return [];
        const items: SessionItem[] = messages.map((message) => ({ kind: 'message', message }));
        void enqueueWrite(async () => {
          await record.append(items);
          for (const message of messages) this.#emit({ type: 'user_message', turnId, message });
        });
        return messages;
      },
      // A runtime that kept the context past the end of its turn gets a rejection, never a wait
      // that no one can answer (the turn's pending requests were settled when it ended).
      authorizeToolCall: (request) =>
        finished && !signal.aborted
          ? Promise.reject(cancellation(`turn ${turnId} ended`))
          : authorizeToolCall(scope, request),
      elicit: (request) =>
        finished && !signal.aborted
          ? Promise.reject(cancellation(`turn ${turnId} ended`))
          : elicit(scope, request),
    };

    let pendingEnd: StopReason | undefined;
    /**
     * Text streamed since the last assistant message, kept as a partial answer on cancel: the last
     * `recentCount` deltas in `recent`, an array of PARTIAL_CHUNK slots made once per turn and
     * reused, joined into `partial` each time it is full. `+=` per delta would build a rope of one
     * string object per event that lives until the answer completes (copied again by every
     * young-generation GC); an array of every delta grows by copying, and a fresh array per chunk
     * grows by copying too (together a tenth of the event path with a batch reader).
     */
    let partial: string[] = [];
    const recent: string[] = new Array<string>(PARTIAL_CHUNK).fill('');
    let recentCount = 0;
    const consumer = (async () => {
      let iterator: AsyncIterator<unknown> | undefined;
      let exhausted = false;
      try {
        iterator = runtime.run(context)[Symbol.asyncIterator]();
        while (!finished) {
          const step = await iterator.next();
          // Store first, then emit: what the runtime yields after a steered message (taken during
          // that next()) waits until the message is stored and announced.
          if (pendingWrites > 0) await writes;
          if (finished) break;
          if (step.done) {
            exhausted = true;
            settle({ reason: pendingEnd ?? 'end_turn' });
            break;
          }
          const event = parseRuntimeEvent(step.value, turnId);
          switch (event.type) {
            case 'agent_choice':
              recent[recentCount++] = event.content;
              if (recentCount === PARTIAL_CHUNK) {
                partial.push(recent.join(''));
                recentCount = 0;
              }
              this.#emitDelta(event as unknown as DeltaEvent);
              break;
            case 'agent_choice_reasoning':
              this.#emitDelta(event as unknown as DeltaEvent);
              break;
            case 'message_added': {
              const message = event.message;
              // The answer is complete (or the runtime stored what it had): nothing partial is left.
              if (message.role === 'assistant') {
                partial = [];
                recentCount = 0;
              }
              // The bookkeeping follows the write itself, not the turn: a write that lands after a
              // cancel is in the store, so its tool calls must still be closed (or counted as answered).
              await enqueueWrite(async () => {
                await record.append([{ kind: 'message', message }]);
                if (message.role === 'assistant')
                  for (const call of message.toolCalls ?? []) openToolCalls.set(call.id, call.name);
                if (message.role === 'tool' && message.toolCallId !== undefined)
                  openToolCalls.delete(message.toolCallId);
                this.#emit(event);
              });
              break;
            }
            case 'token_usage':
              this.#trace?.addUsage(event.usage);
              await enqueueWrite(async () => {
                await record.addUsage(event.usage);
                this.#emit(event);
              });
              break;
            case 'turn_end':
              if (!endReasons.has(event.reason)) break;
              pendingEnd = event.reason;
              this.#emit(event);
              settle({ reason: event.reason });
              break;
            default:
              this.#emit(event);
          }
        }
      } catch (error) {
        if (!finished) {
          settle(
            signal.aborted
              ? { reason: 'cancelled' }
              : {
                  reason: 'error',
                  error: toAgentSessionsError(
                    error,
                    ErrorCode.RUNTIME_FAILED,
                    `runtime failed in session ${JSON.stringify(sessionId)} turn ${turnId}`,
                  ),
                },
          );
        }
      } finally {
        if (iterator && !exhausted && typeof iterator.return === 'function') {
          try {
            await iterator.return();
          } catch (error) {
            logger.debug('runtime iterator return failed', { sessionId, turnId, error });
          }
        }
      }
    })();
    this.#options.track(consumer);
    this.#options.runStarted?.(consumer);

    let outcome = await settled.promise;
    signal.removeEventListener('abort', onAbort);
    await writes;
    if (writeError && outcome.reason !== 'cancelled') outcome = { reason: 'error', error: writeError };

    // A turn that waited for a human and ended anyway: the waits are settled now.
    approvals.rejectTurn(turnId, cancellation(`turn ${turnId} ended`));

    const closing: SessionItem[] = [];
    if (outcome.error) {
      closing.push({
        kind: 'error',
        id: newId('err'),
        message: outcome.error.message,
        code: outcome.error.code,
        ...(cache.meta.agent === undefined ? {} : { agent: cache.meta.agent }),
        createdAt: new Date().toISOString(),
      });
    }
    // A manager that closes (a deploy, a graceful restart) keeps what waits for a human: the
    // persisted confirmations stay, and their calls stay open, for the next process to answer.
    const shuttingDown = this.#options.sessionSignal().aborted;
    const parked = new Set(
      shuttingDown
        ? (record.cached?.meta.pendingApprovals ?? []).flatMap((entry) =>
            entry.kind === 'confirmation' && entry.turnId === turnId ? [entry.toolCall.id] : [],
          )
        : [],
    );
    for (const toolCallId of parked) openToolCalls.delete(toolCallId);
    const missing: Message[] = [...openToolCalls].map(([toolCallId, name]) =>
      notRunResult(
        toolCallId,
        name,
        `the turn ${
          outcome.reason === 'cancelled' ? 'was cancelled' : outcome.reason === 'error' ? 'failed' : 'ended'
        } before it produced a result.`,
      ),
    );
    for (const message of missing) closing.push({ kind: 'message', message });
    // What the user already saw stays: the streamed text of an answer the turn never completed
    // (tool calls streamed but never completed are not kept).
    const interruptedBy = outcome.reason === 'cancelled' ? outcome.reason : undefined;
    const partialText =
      interruptedBy === undefined ? '' : partial.join('') + recent.slice(0, recentCount).join('');
    if (
      interruptedBy !== undefined &&
      partialText.trim() !== '' &&
      this.#options.keepPartialAnswers !== false
    ) {
      const message: Message = {
        id: newId('msg'),
        role: 'assistant',
        content: partialText,
        interrupted: { reason: interruptedBy },
        ...(cache.meta.agent === undefined ? {} : { agent: cache.meta.agent }),
        createdAt: new Date().toISOString(),
      };
      missing.push(message);
      closing.push({ kind: 'message', message });
    }
    if (closing.length > 0) {
      try {
        await record.append(closing);
        for (const message of missing) this.#emit({ type: 'message_added', turnId, message });
      } catch (error) {
        record.forget();
        logger.error('closing a turn in history failed', { sessionId, turnId, error });
      }
    }
    // What the turn parked for a human is moot now: the persisted copies go (a crash before this
    // point leaves them for the next process to answer).
    if (!shuttingDown && record.cached?.meta.pendingApprovals?.some((entry) => entry.turnId === turnId)) {
      try {
        await removePending(record, (entry) => entry.turnId === turnId);
      } catch (error) {
        logger.error('removing the pending requests of an ended turn failed', { sessionId, turnId, error });
      }
    }
    if (writeError) record.forget();
    return this.#stop(turnId, outcome);
  }
}
