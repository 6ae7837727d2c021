/**
 * Events through a {@link DurableEventLog}: the manager's event log when one is configured
 * (`SessionManagerOptions.eventLog`, or a store's `eventLog`), shared by every instance.
 *
 * - **Numbering** ({@link SharedEventWriter}): the instance holding a session's busy lease numbers
 *   its events. When it takes the lease it continues after the greater of the durable log's last
 *   seq and the session's persisted reservation (`eventSeqReserved`, written ahead of the numbers
 *   handed out, see `seq-reservation.ts`): a number handed out and lost in a crash is never reused.
 *   On a clean end (every event stored) the reservation is brought back to the last seq, so the
 *   next holder continues without a jump.
 * - **Batches**: events are written in batches, one in flight at a time: a batch goes out on the
 *   next turn of the event loop, or at once when it reaches `batchSize`; what arrives meanwhile
 *   forms the next batch. A batch that fails (or a crash before it was written) is lost: readers
 *   see a `gap` where it was (the seqs jump), never a wrong event. The writer's `finish` waits for
 *   every batch before the lease is released.
 * - **Reading** ({@link SharedEventSubscriber}): a `streamEvents` subscriber tails the durable log
 *   from its `since`; on the instance that numbers the events, the writer also hands each event to
 *   the local subscribers at once (the fast path), which they take when it is the next one they
 *   need and otherwise leave to the durable tail. Events are delivered in seq order, each once; a
 *   jump in seq (retention, a lost batch) is delivered as a `gap` (`'dropped'`) before the event.
 *   A subscriber has no backlog of its own beyond a bounded queue: the durable tail is read only as
 *   fast as the subscriber reads, so it never lags out.
 * - **Deletion** ({@link SharedEvents.deleteLog}): the instance deleting a session replaces its
 *   events with one tombstone, `session_exited { reason: 'deleted' }` at seq {@link TOMBSTONE_SEQ}.
 *   Every subscriber, on every instance, ends with `session_exited` when its tail reads it, and the
 *   log refuses every later append of the session (its first seq is not after the tombstone's), so
 *   a batch still in flight from the instance that ran the turn can never bring the deleted events
 *   back. A session created again under the same id starts from a cleared log (see
 *   {@link SharedEvents.clearTombstone}).
 */

import type { DurableEventLog } from '../durable-event-log.js';
import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { SessionEvent, SessionEventOf } from '../events.js';
import type { Logger } from '../logger.js';
import type { EventInput, EventSink } from './event-log.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Options of {@link SharedEvents}. */
export interface SharedEventsOptions {
  log: DurableEventLog;
  logger: Logger;
  /** Events per batch at most. @default 256 */
  batchSize?: number;
}

const DEFAULT_BATCH = 256;
/**
 * The seq of a deleted session's tombstone: above every seq a writer hands out, so the durable log
 * refuses every later append of the session.
 */
export const TOMBSTONE_SEQ = Number.MAX_SAFE_INTEGER;
/** Events a subscriber's queue holds before the durable tail waits for the reader. */
const QUEUE_HIGH = 512;
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The events of one session numbered by this instance while it holds the lease. */
export class SharedEventWriter implements EventSink {
  readonly sessionId: string;
  /** The seq numbering continued after (the first event gets `startedAfter + 1`). */
  readonly startedAfter: number;
  readonly #shared: SharedEvents;
  #lastSeq: number;
  #pending: SessionEvent[] = [];
  #inFlight: Promise<void> | undefined;
  #scheduled = false;
  #closed = false;
  /** Some batch could not be stored. */
  #lost = false;
  #clock = { ms: Number.NaN, iso: '' };

  constructor(shared: SharedEvents, sessionId: string, startedAfter: number) {
    this.#shared = shared;
    this.sessionId = sessionId;
    this.startedAfter = startedAfter;
    this.#lastSeq = startedAfter;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** True once {@link finish} ran: later events are not numbered. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Numbers the event, queues it for the durable log and hands it to local subscribers. */
  append(input: EventInput): SessionEvent | undefined {
    if (this.#closed) return undefined;
    const event = (
      (input as Partial<SessionEvent>).seq === undefined && Object.isExtensible(input)
        ? input
        : Object.assign({}, input)
    ) as Mutable<SessionEvent>;
    event.sessionId = this.sessionId;
    event.seq = ++this.#lastSeq;
    event.timestamp ??= this.#timestamp();
    this.#pending.push(event);
    this.#schedule();
    this.#shared.deliverLocal(event);
    return event;
  }

  /**
   * Stops numbering and waits until every batch was written (or failed). Resolves to `true` when
   * every event numbered was stored.
   */
  async finish(): Promise<boolean> {
    this.#closed = true;
    await this.drained();
    return !this.#lost;
  }

  /** Resolves once every event numbered so far was written (or failed); numbering goes on. */
  async drained(): Promise<void> {
    while (this.#inFlight !== undefined || this.#pending.length > 0) {
      if (this.#inFlight === undefined) this.#flush();
      await this.#inFlight;
    }
  }

  #schedule(): void {
    if (this.#inFlight !== undefined) return; // the batch in flight sends the next when it lands
    if (this.#pending.length >= this.#shared.batchSize) {
      this.#flush();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#inFlight === undefined && this.#pending.length > 0) this.#flush();
    });
  }

  #flush(): void {
    const batch = this.#pending.splice(0, this.#shared.batchSize);
    this.#inFlight = this.#shared.log
      .append(this.sessionId, batch)
      .catch((error: unknown) => {
        this.#lost = true;
        this.#shared.logger.error('writing events to the durable event log failed: readers get a gap', {
          sessionId: this.sessionId,
          firstSeq: batch[0]?.seq,
          lastSeq: batch[batch.length - 1]?.seq,
          error,
        });
      })
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#pending.length > 0) this.#schedule();
      });
  }

  #timestamp(): string {
    const ms = Date.now();
    if (ms !== this.#clock.ms) this.#clock = { ms, iso: new Date(ms).toISOString() };
    return this.#clock.iso;
  }
}

/** One `streamEvents` subscriber over the durable log; see the module documentation. */
class SharedEventSubscriber implements AsyncIterableIterator<SessionEvent> {
  readonly #shared: SharedEvents;
  readonly #sessionId: string;
  /** Seq of the last event queued; `undefined` until the first (a subscriber without `since`). */
  #last: number | undefined;
  /** Deliver the first durable event without a gap (no `since`: the whole retained backlog). */
  readonly #from: number;
  #queue: SessionEvent[] = [];
  #waiter:
    | { resolve: (result: IteratorResult<SessionEvent>) => void; reject: (error: unknown) => void }
    | undefined;
  #space: (() => void) | undefined;
  #error: { error: unknown } | undefined;
  /** No more events will be queued (session_exited queued, an error, or return()). */
  #ended = false;
  /** Nothing more will be delivered. */
  #done = false;
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;

  constructor(
    shared: SharedEvents,
    sessionId: string,
    since: number | undefined,
    gap: SessionEventOf<'gap'> | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.#shared = shared;
    this.#sessionId = sessionId;
    this.#last = since;
    this.#from = since ?? 0;
    if (gap) this.#queue.push(gap);
    this.#signal = signal;
    this.#onAbort = () => this.#fail(signal?.reason);
    if (signal?.aborted) this.#fail(signal.reason);
    else {
      signal?.addEventListener('abort', this.#onAbort, { once: true });
      void this.#pump();
    }
  }

  /** An event numbered on this instance: taken when it is the next one needed. */
  offerLocal(event: SessionEvent): void {
    if (this.#ended || this.#last === undefined || event.seq !== this.#last + 1) return;
    if (this.#queue.length >= QUEUE_HIGH) return; // the durable tail brings it when the reader catches up
    this.#enqueue(event);
  }

  /** Ends the subscriber after `session_exited` (delete, close on this instance). */
  exit(reason: 'deleted' | 'closed'): void {
    if (this.#ended) return;
    this.#enqueue({
      type: 'session_exited',
      reason,
      sessionId: this.#sessionId,
      seq: (this.#last ?? this.#from) + 1,
      timestamp: new Date().toISOString(),
    });
    this.#stop();
  }

  next(): Promise<IteratorResult<SessionEvent>> {
    const event = this.#queue.shift();
    if (event !== undefined) {
      if (this.#queue.length < QUEUE_HIGH / 2) this.#wakePump();
      if (event.type === 'session_exited') this.#finish();
      return Promise.resolve({ value: event, done: false });
    }
    if (this.#error) {
      const { error } = this.#error;
      this.#error = undefined;
      this.#finish();
      return Promise.reject(error);
    }
    if (this.#done || this.#ended) {
      this.#finish();
      return Promise.resolve(DONE);
    }
    this.#wakePump();
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<SessionEvent>> {
    this.#queue = [];
    this.#error = undefined;
    this.#stop();
    this.#finish();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<SessionEvent> {
    return this;
  }

  async #pump(): Promise<void> {
    const signal = this.#controller.signal;
    try {
      for await (const event of this.#shared.log.tail(this.#sessionId, this.#last ?? this.#from, {
        signal,
      })) {
        if (this.#ended) return;
        this.#offerDurable(event);
        if (this.#queue.length >= QUEUE_HIGH) {
          await new Promise<void>((resolve) => {
            this.#space = resolve;
          });
          if (this.#ended) return;
        }
      }
    } catch (error) {
      if (this.#ended) return;
      this.#fail(error);
    }
  }

  #offerDurable(event: SessionEvent): void {
    // A deleted session's tombstone (see SharedEvents.deleteLog): this subscriber's own end.
    if (event.type === 'session_exited') {
      this.exit(event.reason === 'closed' ? 'closed' : 'deleted');
      return;
    }
    const last = this.#last;
    if (last !== undefined && event.seq <= last) return;
    if (last !== undefined && event.seq > last + 1) {
      this.#enqueue({
        type: 'gap',
        reason: 'dropped',
        nextSeq: event.seq,
        sessionId: this.#sessionId,
        seq: 0,
        timestamp: event.timestamp,
      });
    }
    this.#enqueue(event);
  }

  #enqueue(event: SessionEvent): void {
    if (event.seq > 0) this.#last = event.seq;
    const waiter = this.#waiter;
    if (waiter !== undefined && this.#queue.length === 0) {
      this.#waiter = undefined;
      if (event.type === 'session_exited') this.#finish();
      waiter.resolve({ value: event, done: false });
      return;
    }
    this.#queue.push(event);
  }

  #wakePump(): void {
    const space = this.#space;
    this.#space = undefined;
    space?.();
  }

  #fail(error: unknown): void {
    if (this.#ended) return;
    this.#stop();
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      this.#finish();
      waiter.reject(error);
    } else {
      this.#queue = [];
      this.#error = { error };
    }
  }

  /** No more events: stops the durable tail and leaves the local fan-out. */
  #stop(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#controller.abort(new AgentSessionsError(ErrorCode.CLOSED, 'the subscriber ended'));
    this.#wakePump();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#shared.unsubscribe(this.#sessionId, this);
  }

  #finish(): void {
    this.#stop();
    this.#done = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve(DONE);
  }
}

/** The manager's events through a durable log: writers and subscribers per session. */
export class SharedEvents {
  readonly log: DurableEventLog;
  readonly logger: Logger;
  readonly batchSize: number;
  readonly #writers = new Map<string, SharedEventWriter>();
  readonly #subscribers = new Map<string, Set<SharedEventSubscriber>>();

  constructor(options: SharedEventsOptions) {
    this.log = options.log;
    this.logger = options.logger;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH;
  }

  /**
   * Starts numbering a session's events on this instance (it just took the lease): after the
   * greater of the durable log's last seq and `reserved`.
   */
  async startWriter(sessionId: string, reserved: number): Promise<SharedEventWriter> {
    let stored = await this.log.lastSeq(sessionId);
    if (stored >= TOMBSTONE_SEQ) {
      // The tombstone of a deleted session of the same id that was not cleared when the id was
      // used again: this session's events start afresh.
      await this.log.delete?.(sessionId);
      stored = 0;
    }
    const writer = new SharedEventWriter(this, sessionId, Math.max(stored, reserved));
    this.#writers.set(sessionId, writer);
    return writer;
  }

  /** The writer numbering the session's events on this instance, if any. */
  writer(sessionId: string): SharedEventWriter | undefined {
    const writer = this.#writers.get(sessionId);
    return writer?.closed ? undefined : writer;
  }

  /** Finishes the writer (before the lease is released); see {@link SharedEventWriter.finish}. */
  async finishWriter(writer: SharedEventWriter): Promise<boolean> {
    try {
      return await writer.finish();
    } finally {
      if (this.#writers.get(writer.sessionId) === writer) this.#writers.delete(writer.sessionId);
    }
  }

  /** Resolves once the events this instance numbered for the session so far are written (or failed). */
  async drained(sessionId: string): Promise<void> {
    await this.#writers.get(sessionId)?.drained();
  }

  /** The last seq a reader can tail from without missing anything. */
  async lastSeq(sessionId: string): Promise<number> {
    const writer = this.#writers.get(sessionId);
    if (writer !== undefined) return writer.lastSeq;
    const stored = await this.log.lastSeq(sessionId);
    return stored >= TOMBSTONE_SEQ ? 0 : stored;
  }

  /**
   * The session was deleted (its record is gone, and no instance runs its turn any more): ends
   * this instance's subscribers with `session_exited`, removes its events and leaves the
   * tombstone that ends every other instance's subscribers and refuses any later append (see the
   * module documentation).
   */
  async deleteLog(sessionId: string): Promise<void> {
    this.exitSession(sessionId, 'deleted');
    await this.log.delete?.(sessionId);
    await this.log.append(sessionId, [
      {
        type: 'session_exited',
        reason: 'deleted',
        sessionId,
        seq: TOMBSTONE_SEQ,
        timestamp: new Date().toISOString(),
      },
    ]);
  }

  /**
   * Removes a tombstone left under `sessionId` (a session created again with the id of a deleted
   * one): its subscribers must not end at once. One read of the log, and a delete when needed.
   */
  async clearTombstone(sessionId: string): Promise<void> {
    if ((await this.log.lastSeq(sessionId)) >= TOMBSTONE_SEQ) await this.log.delete?.(sessionId);
  }

  /**
   * A subscriber from `since` (see the module documentation). A `since` beyond every number
   * handed out (the log's last seq, and `reserved()`: the session's reservation) gets a `gap` `'reset'` and the whole retained
   * backlog, as with the in-memory log.
   */
  async subscribe(
    sessionId: string,
    options: { since?: number; signal?: AbortSignal; reserved: () => Promise<number> },
  ): Promise<AsyncIterableIterator<SessionEvent>> {
    let since = options.since;
    let gap: SessionEventOf<'gap'> | undefined;
    if (since !== undefined) {
      let last = await this.lastSeq(sessionId);
      // Numbers handed out and lost in a crash are reserved in the record: read it only then.
      if (since > last) last = Math.max(last, await options.reserved());
      if (since > last) {
        const { events } = await this.log.replay(sessionId, 0, 1);
        gap = {
          type: 'gap',
          reason: 'reset',
          nextSeq: events[0]?.seq ?? last + 1,
          sessionId,
          seq: 0,
          timestamp: new Date().toISOString(),
        };
        since = undefined;
      }
    }
    const subscriber = new SharedEventSubscriber(this, sessionId, since, gap, options.signal);
    let set = this.#subscribers.get(sessionId);
    if (set === undefined) {
      set = new Set();
      this.#subscribers.set(sessionId, set);
    }
    set.add(subscriber);
    return subscriber;
  }

  /** @internal Hands an event numbered here to this instance's subscribers of its session. */
  deliverLocal(event: SessionEvent): void {
    const set = this.#subscribers.get(event.sessionId);
    if (set === undefined) return;
    for (const subscriber of set) subscriber.offerLocal(event);
  }

  /** @internal */
  unsubscribe(sessionId: string, subscriber: SharedEventSubscriber): void {
    const set = this.#subscribers.get(sessionId);
    if (set === undefined) return;
    set.delete(subscriber);
    if (set.size === 0) this.#subscribers.delete(sessionId);
  }

  /** Ends this instance's subscribers of the session with `session_exited` (delete). */
  exitSession(sessionId: string, reason: 'deleted' | 'closed'): void {
    for (const subscriber of [...(this.#subscribers.get(sessionId) ?? [])]) subscriber.exit(reason);
  }

  /** Ends every subscriber with `session_exited { reason: 'closed' }` and waits for every writer. */
  async close(): Promise<void> {
    for (const sessionId of [...this.#subscribers.keys()]) this.exitSession(sessionId, 'closed');
    await Promise.all([...this.#writers.values()].map((writer) => this.finishWriter(writer)));
  }
}
