/**
 * The per-session event log behind `streamEvents`: where events are numbered, kept for replay and
 * fanned out to subscribers (the contract is in `docs/events-and-replay.md`).
 *
 * Every event the manager emits for a session is appended to that session's {@link EventLog}, which
 * numbers it (`seq` from 1, one more per event), keeps the last `capacity` events for replay and
 * hands each one to the live subscribers. A subscriber is a cursor into that one shared ring: it
 * has no queue of its own, so appending costs O(1 + subscribers) and allocates nothing but the
 * event, and a subscriber that falls behind by `capacity` events is exactly one whose next event
 * is about to be overwritten.
 *
 * A subscriber reads per event (`subscribe`) or in batches (`subscribeBatches`): a batch subscriber
 * is the same cursor, woken once per turn of the event loop with everything appended meanwhile (or
 * at once when half the ring waits for it), so a burst of events costs it one promise, not one per
 * event; an append looks at the batch subscribers only at the seq where one of them is due.
 *
 * Events are shared between every subscriber and the log: treat them as read-only.
 */
import { InvalidArgumentError, SubscriberLaggedError } from '../errors.js';
import type { SessionEvent, SessionEventOf } from '../events.js';
import { unrefTimer } from '../internal/abort.js';
import { onNextTurn } from '../internal/next-turn.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type WithoutEnvelope<E> = E extends unknown ? Omit<E, 'seq' | 'sessionId' | 'timestamp'> : never;

/**
 * An event as the manager hands it to {@link EventLog.append}: a {@link SessionEvent} without the
 * envelope the log assigns. `sessionId` is always replaced by the log's; `timestamp` is kept when
 * given. `gap` and `session_exited` are the log's own and cannot be appended.
 */
export type EventInput = WithoutEnvelope<Exclude<SessionEvent, { type: 'gap' | 'session_exited' }>> & {
  sessionId?: string;
  timestamp?: string;
};

/**
 * Where a running turn sends its events: {@link EventLog} is one. `append` numbers the event and
 * delivers it; it returns `undefined` when the log is closed (the session was deleted or the
 * manager closed), and the event goes nowhere.
 */
export interface EventSink {
  append(input: EventInput): SessionEvent | undefined;
  /** Optional fast path for the turn loop's own text deltas (see {@link EventLog.appendDelta}). */
  appendDelta?(event: DeltaEvent): SessionEvent | undefined;
}

/** A text delta as the turn loop makes it, envelope fields declared for the log to fill in. */
export interface DeltaEvent {
  type: 'agent_choice' | 'agent_choice_reasoning';
  content: string;
  turnId: string;
  sessionId: string | undefined;
  seq: number | undefined;
  timestamp: string | undefined;
}

/** Options of {@link EventLog}. */
export interface EventLogOptions {
  sessionId: string;
  /** Events kept for replay, and how far a subscriber may fall behind. A positive integer. @default 1024 */
  capacity?: number;
  /**
   * Drop the kept events (keeping the seq counter) after this long with no subscriber and no
   * append (checked every quarter of it, so it happens up to a quarter later). 0 = never.
   * @default 300_000
   */
  releaseAfterMs?: number;
  /** Clock for timestamps. @default () => new Date().toISOString() */
  now?: () => string;
  /** The log continues a numbering: its first event gets this seq. @default 1 */
  firstSeq?: number;
  /**
   * Positions below this seq come from an earlier numbering (a previous process): a subscriber
   * asking from one gets a `gap` `reset`, never events it would take for the ones it missed.
   * @default 0
   */
  resetBefore?: number;
  /** Called after an idle release (not after an explicit {@link EventLog.release}). */
  onIdleRelease?: (log: EventLog) => void;
}

/** Options of {@link EventLog.subscribe}. */
export interface SubscribeOptions {
  /**
   * Deliver only events with a greater seq (a non-negative integer). Omitted: the whole kept
   * backlog, without a `gap`.
   */
  since?: number;
  /** Ends the subscription: a pending or later `next()` rejects with `signal.reason`. */
  signal?: AbortSignal;
}

const DEFAULT_CAPACITY = 1024;
const DEFAULT_RELEASE_AFTER_MS = 300_000;
/** Idle checks per `releaseAfterMs`: a log is released between 1 and 1.25 × `releaseAfterMs` after it went idle. */
const IDLE_CHECKS = 4;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** What a waiting `next()` resolves with: one event, or a batch of them. */
type Delivery = IteratorResult<SessionEvent> | IteratorResult<readonly SessionEvent[]>;
type PromiseExecutor<T> = (resolve: (value: T) => void, reject: (error: unknown) => void) => void;
type Waiter = { resolve: (result: Delivery) => void; reject: (error: unknown) => void };

/** A subscriber's state; the iterator handed out closes over it, so nothing outside can reach it. */
class Subscriber {
  /** Seq of the next event to deliver. */
  cursor: number;
  /** Reads batches (`subscribeBatches`): woken once per event-loop turn, not per event. */
  readonly batch: boolean;
  /** A `gap` still to deliver before anything else. */
  gap: SessionEventOf<'gap'> | undefined;
  /** Ended: no more events, only a pending `error` (once) and then `done`. */
  ended = false;
  /** Why it ended, delivered to the next `next()` (lag or abort). */
  error: unknown;
  hasError = false;
  /** A `next()` waiting for an append (at most one in the usual `for await`). */
  resolve: Waiter['resolve'] | undefined;
  reject: Waiter['reject'] | undefined;
  /** Further concurrent `next()` calls, in call order. Rare: allocated on demand. */
  extraWaiters: Waiter[] | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /**
   * Registers a waiting `next()`. Made once per subscriber: a fresh executor closure (and waiter
   * object) per event would be most of what delivering an event allocates.
   */
  readonly executor = (resolve: Waiter['resolve'], reject: Waiter['reject']): void => {
    if (this.resolve === undefined) {
      this.resolve = resolve;
      this.reject = reject;
    } else {
      this.extraWaiters ??= [];
      this.extraWaiters.push({ resolve, reject });
    }
  };

  constructor(cursor: number, batch: boolean) {
    this.cursor = cursor;
    this.batch = batch;
    this.gap = undefined;
  }
}

/**
 * The event log of one session: numbering, a bounded replay ring, and live fan-out.
 *
 * Ordering: events are delivered to every subscriber in `seq` order, gapless and exactly once,
 * however an `append` interleaves with `subscribe` or `next()` (subscribing is synchronous and a
 * subscriber is only a position in the log).
 *
 * Memory: a log keeps at most `capacity` events (the ring grows with use up to that; about 100
 * bytes per small text-delta event plus its strings on Node 20, so ~100 KB at the default 1024),
 * plus the final `session_exited` once closed. A subscriber keeps only a position, never a queue.
 * An idle log (no subscriber and no append for `releaseAfterMs`) drops its events and then costs
 * only its counters, well under 1 KB. A log arms at most one (unref'd) timer at a time, and none
 * once released.
 */
export class EventLog implements EventSink {
  readonly sessionId: string;
  readonly #capacity: number;
  readonly #releaseAfterMs: number;
  readonly #now: (() => string) | undefined;

  /** Kept events in seq order starting at `#base`, wrapping once it reaches `#capacity`. */
  #ring: SessionEvent[] = [];
  /** Seq stored at ring index 0 when the ring last started filling. */
  #base = 1;
  /** Seq of the oldest event in the ring (meaningful while the ring is not empty). */
  #oldestInRing = 1;
  #lastSeq = 0;
  readonly #onIdleRelease: ((log: EventLog) => void) | undefined;
  readonly #resetBefore: number;
  #exit: SessionEventOf<'session_exited'> | undefined;
  /** The live per-event subscribers. */
  #subscribers: Subscriber[] = [];
  /** The live batch subscribers (made with the first). */
  #batches: Subscriber[] | undefined;
  /**
   * The seq whose append must look at the batch subscribers: the first at which one of them is due
   * a wake-up (half the ring waits for it) or lags; 0 once any of them changed. Until then an
   * append costs them nothing, however many there are.
   */
  #batchCheckAt = 0;
  /** Some batch subscriber waits (as of the last look). */
  #batchWaiting = false;

  /** Appended to, or lost its last subscriber, since the last idle check. */
  #active = false;
  #quietChecks = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onTimer = (): void => this.#idleCheck();

  /** Waiting batch subscribers get what was appended once the current task is done. */
  #wakeScheduled = false;

  /** Default-clock cache: one ISO string per millisecond instead of a `Date` per event. */
  #clockMs = Number.NaN;
  #clockIso = '';

  /** @throws InvalidArgumentError when `capacity` is not a positive integer or `releaseAfterMs` is negative. */
  constructor(options: EventLogOptions) {
    const capacity = options.capacity ?? DEFAULT_CAPACITY;
    const releaseAfterMs = options.releaseAfterMs ?? DEFAULT_RELEASE_AFTER_MS;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new InvalidArgumentError(`invalid event log capacity: ${String(capacity)}`);
    }
    if (typeof releaseAfterMs !== 'number' || !(releaseAfterMs >= 0)) {
      throw new InvalidArgumentError(`invalid event log releaseAfterMs: ${String(releaseAfterMs)}`);
    }
    this.sessionId = options.sessionId;
    this.#capacity = capacity;
    this.#releaseAfterMs = releaseAfterMs === Number.POSITIVE_INFINITY ? 0 : releaseAfterMs;
    this.#now = options.now;
    const firstSeq = options.firstSeq ?? 1;
    if (!Number.isSafeInteger(firstSeq) || firstSeq < 1) {
      throw new InvalidArgumentError(`invalid event log firstSeq: ${String(firstSeq)}`);
    }
    this.#lastSeq = firstSeq - 1;
    this.#base = firstSeq;
    this.#oldestInRing = firstSeq;
    this.#onIdleRelease = options.onIdleRelease;
    this.#resetBefore = options.resetBefore ?? 0;
  }

  /** Seq of the last appended event (`session_exited` included); 0 when nothing was ever appended. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Seq of the oldest kept event; `lastSeq + 1` when none is kept. */
  get oldestSeq(): number {
    if (this.#ring.length > 0) return this.#oldestInRing;
    return this.#exit ? this.#exit.seq : this.#lastSeq + 1;
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#exit !== undefined;
  }

  /** Subscribers not yet ended. */
  get subscriberCount(): number {
    return this.#subscribers.length + (this.#batches?.length ?? 0);
  }

  /**
   * Numbers an event (`seq` = `lastSeq + 1`), sets `sessionId` and `timestamp` (unless given), keeps
   * it (dropping the oldest when `capacity` are kept, which ends any subscriber that had not yet
   * received that oldest one, with `SUBSCRIBER_LAGGED`) and delivers it to waiting subscribers.
   *
   * Ownership: `input` itself becomes the event (the envelope is written onto it) and is then shared
   * with every subscriber, so pass a fresh object and do not change it afterwards. A frozen object,
   * or one that already has a `seq`, is copied instead.
   *
   * @returns the event, or `undefined` when the log is closed (a late event never revives it).
   */
  append(input: EventInput): SessionEvent | undefined {
    if (this.#exit !== undefined) return undefined;
    const seq = this.#lastSeq + 1;
    // Completing the caller's fresh object in place is what keeps append allocation-free (a spread
    // copy costs more than the rest of append put together); an object that cannot be completed
    // safely (frozen, or already an appended event) is copied.
    const event = (
      (input as Partial<SessionEvent>).seq === undefined && Object.isExtensible(input)
        ? input
        : Object.assign({}, input)
    ) as Mutable<SessionEvent>;
    event.sessionId = this.sessionId;
    event.seq = seq;
    event.timestamp ??= this.#timestamp();
    return this.#publish(event, seq);
  }

  /**
   * {@link append} for the turn loop's own text deltas: a fresh extensible object of one fixed
   * shape with the envelope fields declared (undefined), so the envelope is written at property
   * sites that only ever see that shape; `append` sees every kind of event.
   */
  appendDelta(event: DeltaEvent): SessionEvent | undefined {
    if (this.#exit !== undefined) return undefined;
    const seq = this.#lastSeq + 1;
    event.sessionId = this.sessionId;
    event.seq = seq;
    event.timestamp = this.#timestamp();
    return this.#publish(event as unknown as Mutable<SessionEvent>, seq);
  }

  /** Keeps the numbered event (evicting the oldest when full) and hands it to the subscribers. */
  #publish(event: Mutable<SessionEvent>, seq: number): SessionEvent {
    this.#lastSeq = seq;
    this.#active = true;

    const ring = this.#ring;
    let evicted = 0;
    if (ring.length < this.#capacity) {
      if (ring.length === 0) {
        this.#base = seq;
        this.#oldestInRing = seq;
      }
      ring.push(event);
    } else {
      ring[(seq - this.#base) % this.#capacity] = event;
      evicted = this.#oldestInRing++;
    }

    const subscribers = this.#subscribers;
    // Backwards, because a lagging subscriber is removed in place.
    for (let index = subscribers.length - 1; index >= 0; index--) {
      const subscriber = subscribers[index]!;
      if (subscriber.resolve !== undefined) {
        subscriber.cursor = seq + 1;
        this.#resolveWaiter(subscriber, { value: event, done: false });
      } else if (subscriber.cursor === evicted) {
        this.#fail(subscriber, new SubscriberLaggedError(this.sessionId, subscriber.cursor - 1));
      }
    }
    if (this.#batches !== undefined && this.#batches.length > 0) {
      if (seq >= this.#batchCheckAt) this.#checkBatches(seq, evicted);
      else if (this.#batchWaiting && !this.#wakeScheduled) this.#scheduleWake();
    }
    if (this.#timer === undefined) this.#armTimer();
    return event;
  }

  /**
   * Subscribes synchronously, so every event appended after this call is delivered, and none twice.
   *
   * Delivers the kept events with `seq > since` (all kept events when `since` is omitted), then live
   * events. A `gap` (`seq: 0`) comes first when `since` is given and some events after it are no
   * longer kept (`reason: 'dropped'`), or when `since > lastSeq`, e.g. a position from before a
   * restart (`reason: 'reset'`, and the whole kept backlog follows); its `nextSeq` is the seq of the
   * next event delivered. The iterator is done after `session_exited`.
   *
   * A subscriber that falls `capacity` events behind is ended: its next `next()` rejects with
   * {@link SubscriberLaggedError} (`lastSeq`: the position it reached, to reconnect with as
   * `since`), then it is done. An aborted `signal` makes a pending or later `next()` reject with
   * `signal.reason`, then it is done. `return()` (leaving a `for await`) unsubscribes at once.
   *
   * @throws InvalidArgumentError when `since` is not a non-negative integer.
   */
  subscribe(options: SubscribeOptions = {}): AsyncIterableIterator<SessionEvent> {
    const subscriber = this.#open(options, false);
    const iterator: AsyncIterableIterator<SessionEvent> = {
      next: () => this.#next(subscriber),
      return: () => this.#return(subscriber),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * Like {@link subscribe}, with the same positions, `gap`, lag, abort and end, but each `next()`
   * yields every event available to the subscriber at once, as one array (never empty) in `seq`
   * order, the `gap` (if any) first. A `next()` with nothing to read waits until the task that
   * appends has run to its end (the next turn of the event loop), so a producer appending many
   * events within one task wakes it once; it is woken at once when half of `capacity` events wait
   * for it, so a subscriber that asks for its next batch as soon as it has handled the last one
   * never lags. It can still lag while it holds a batch: `capacity` events appended before its
   * next `next()` end it with {@link SubscriberLaggedError}.
   *
   * Each batch is a fresh array the subscriber owns; the events in it are shared (read-only).
   *
   * @throws InvalidArgumentError when `since` is not a non-negative integer.
   */
  subscribeBatches(options: SubscribeOptions = {}): AsyncIterableIterator<readonly SessionEvent[]> {
    const subscriber = this.#open(options, true);
    const iterator: AsyncIterableIterator<readonly SessionEvent[]> = {
      next: () => this.#nextBatch(subscriber),
      return: () => this.#return(subscriber),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Validates the options and registers a subscriber at its starting position. */
  #open(options: SubscribeOptions, batch: boolean): Subscriber {
    const { since, signal } = options;
    if (since !== undefined && !(Number.isSafeInteger(since) && since >= 0)) {
      throw new InvalidArgumentError(`invalid since: ${String(since)}; expected a non-negative integer`);
    }
    const oldest = this.oldestSeq;
    let cursor = oldest;
    let gap: SessionEventOf<'gap'>['reason'] | undefined;
    if (since !== undefined) {
      if (since > this.#lastSeq || since < this.#resetBefore) gap = 'reset';
      else if (since < oldest - 1) gap = 'dropped';
      else cursor = since + 1;
    }
    const subscriber = new Subscriber(cursor, batch);
    if (gap !== undefined) {
      subscriber.gap = {
        type: 'gap',
        reason: gap,
        nextSeq: cursor,
        sessionId: this.sessionId,
        seq: 0,
        timestamp: this.#timestamp(),
      };
    }
    if (signal?.aborted) {
      subscriber.ended = true;
      subscriber.hasError = true;
      subscriber.error = signal.reason;
    } else if (this.#exit !== undefined && cursor > this.#lastSeq) {
      subscriber.ended = true; // asked from after session_exited: nothing will ever come
    } else {
      if (signal !== undefined) {
        subscriber.signal = signal;
        subscriber.onAbort = () => this.#fail(subscriber, signal.reason);
        signal.addEventListener('abort', subscriber.onAbort, { once: true });
      }
      if (batch) {
        this.#batches ??= [];
        this.#batches.push(subscriber);
        this.#batchCheckAt = 0;
      } else {
        this.#subscribers.push(subscriber);
      }
    }
    return subscriber;
  }

  #return(subscriber: Subscriber): Promise<IteratorReturnResult<undefined>> {
    this.#end(subscriber);
    subscriber.hasError = false;
    subscriber.error = undefined;
    return Promise.resolve(DONE);
  }

  /**
   * Appends `session_exited { reason }` (with a seq, kept even across {@link release}) and closes
   * the log: later appends are ignored, and each subscriber ends once it has received everything
   * before `session_exited` and `session_exited` itself. Closing never makes a subscriber lag.
   * Idempotent: a closed log stays closed with its first reason.
   */
  close(reason: 'deleted' | 'closed'): void {
    if (this.#exit !== undefined) return;
    const seq = this.#lastSeq + 1;
    const exit: SessionEventOf<'session_exited'> = {
      type: 'session_exited',
      reason,
      sessionId: this.sessionId,
      seq,
      timestamp: this.#timestamp(),
    };
    this.#lastSeq = seq;
    this.#exit = exit;
    const subscribers = this.#subscribers;
    for (let index = subscribers.length - 1; index >= 0; index--) {
      const subscriber = subscribers[index]!;
      if (subscriber.resolve === undefined) continue;
      subscriber.cursor = seq + 1;
      this.#resolveWaiter(subscriber, { value: exit, done: false });
      this.#end(subscriber);
    }
    const batches = this.#batches ?? [];
    for (let index = batches.length - 1; index >= 0; index--) {
      // A waiting one gets its batch closed by session_exited, and ends.
      if (batches[index]!.resolve !== undefined) this.#deliverBatch(batches[index]!);
    }
  }

  /**
   * Drops the kept events now, keeping `lastSeq` (and `session_exited` once closed). Events that a
   * current subscriber has not received yet are kept until it does, so releasing never loses an
   * event for a live subscriber; a later subscriber asking from before `oldestSeq` gets a `gap`.
   */
  release(): void {
    const ring = this.#ring;
    if (ring.length === 0) return;
    let keepFrom = this.#lastSeq + 1;
    for (const subscriber of this.#subscribers) keepFrom = Math.min(keepFrom, subscriber.cursor);
    for (const subscriber of this.#batches ?? []) keepFrom = Math.min(keepFrom, subscriber.cursor);
    const ringEnd = this.#oldestInRing + ring.length;
    const kept: SessionEvent[] = [];
    for (let seq = Math.max(keepFrom, this.#oldestInRing); seq < ringEnd; seq++) kept.push(this.#at(seq));
    this.#ring = kept;
    if (kept.length > 0) {
      this.#base = kept[0]!.seq;
      this.#oldestInRing = this.#base;
    } else if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #at(seq: number): SessionEvent {
    const exit = this.#exit;
    if (exit !== undefined && seq === exit.seq) return exit;
    return this.#ring[(seq - this.#base) % this.#capacity]!;
  }

  #next(subscriber: Subscriber): Promise<IteratorResult<SessionEvent>> {
    if (subscriber.hasError) {
      const error = subscriber.error;
      subscriber.hasError = false;
      subscriber.error = undefined;
      return Promise.reject(error);
    }
    if (subscriber.ended) return Promise.resolve(DONE);
    const gap = subscriber.gap;
    if (gap !== undefined) {
      subscriber.gap = undefined;
      return Promise.resolve({ value: gap, done: false });
    }
    const cursor = subscriber.cursor;
    if (cursor <= this.#lastSeq) {
      const event = this.#at(cursor);
      subscriber.cursor = cursor + 1;
      if (event === this.#exit) this.#end(subscriber);
      return Promise.resolve({ value: event, done: false });
    }
    if (this.#exit !== undefined) {
      // Only reachable when subscribing to a closed log from at or after its session_exited.
      this.#end(subscriber);
      return Promise.resolve(DONE);
    }
    return new Promise(subscriber.executor as PromiseExecutor<IteratorResult<SessionEvent>>);
  }

  #nextBatch(subscriber: Subscriber): Promise<IteratorResult<readonly SessionEvent[]>> {
    this.#batchCheckAt = 0; // it moves or starts waiting: the next append looks again
    if (subscriber.hasError) {
      const error = subscriber.error;
      subscriber.hasError = false;
      subscriber.error = undefined;
      return Promise.reject(error);
    }
    if (subscriber.ended) return Promise.resolve(DONE);
    // A concurrent call waits behind the one already waiting, which gets the next batch.
    if (subscriber.resolve !== undefined) {
      return new Promise(subscriber.executor as PromiseExecutor<IteratorResult<readonly SessionEvent[]>>);
    }
    const gap = subscriber.gap;
    if (gap !== undefined || subscriber.cursor <= this.#lastSeq) {
      subscriber.gap = undefined;
      const batch = this.#collect(subscriber, gap);
      if (this.#exit !== undefined) this.#end(subscriber);
      return Promise.resolve({ value: batch, done: false });
    }
    if (this.#exit !== undefined) {
      this.#end(subscriber);
      return Promise.resolve(DONE);
    }
    return new Promise(subscriber.executor as PromiseExecutor<IteratorResult<readonly SessionEvent[]>>);
  }

  /**
   * Every event from the subscriber's cursor on (after `gap`, if given), as a fresh array; moves
   * the cursor past them. The caller ends the subscriber when the log is closed (the batch then
   * closes with `session_exited`), after handing the batch out.
   */
  #collect(subscriber: Subscriber, gap?: SessionEventOf<'gap'>): SessionEvent[] {
    const last = this.#lastSeq;
    const from = subscriber.cursor;
    const exit = this.#exit;
    const ringTo = exit === undefined ? last : last - 1;
    const batch = from <= ringTo ? this.#slice(from, ringTo) : [];
    if (exit !== undefined && from <= last) batch.push(exit);
    if (gap !== undefined) batch.unshift(gap);
    subscriber.cursor = last + 1;
    return batch;
  }

  /** The kept events `from`…`to` (inclusive): one or two copies of ring ranges, not a push per event. */
  #slice(from: number, to: number): SessionEvent[] {
    const ring = this.#ring;
    const start = (from - this.#base) % this.#capacity;
    const end = start + (to - from) + 1;
    // The ring only wraps once full, so a range past its end continues at index 0.
    if (end <= ring.length) return ring.slice(start, end);
    return ring.slice(start).concat(ring.slice(0, end - ring.length));
  }

  /** Hands a waiting batch subscriber everything it has not received yet. */
  #deliverBatch(subscriber: Subscriber): void {
    this.#batchCheckAt = 0;
    const resolve = subscriber.resolve!;
    const extra = subscriber.extraWaiters?.shift();
    subscriber.resolve = extra?.resolve;
    subscriber.reject = extra?.reject;
    resolve({ value: this.#collect(subscriber), done: false });
    if (this.#exit !== undefined) this.#end(subscriber);
  }

  /**
   * An append reached {@link #batchCheckAt}: wakes the batch subscribers half the ring waits for,
   * ends those it overtook (lag), schedules the wake-up of the others that wait, and works out
   * the next seq at which one of them will need a look.
   */
  #checkBatches(seq: number, evicted: number): void {
    const subscribers = this.#batches!;
    let checkAt = Number.POSITIVE_INFINITY;
    let waiting = false;
    // Backwards, because a lagging subscriber is removed in place.
    for (let index = subscribers.length - 1; index >= 0; index--) {
      const subscriber = subscribers[index]!;
      if (subscriber.resolve === undefined && subscriber.cursor === evicted) {
        this.#fail(subscriber, new SubscriberLaggedError(this.sessionId, subscriber.cursor - 1));
        continue;
      }
      // Half the ring waits for it: woken now, so a batch reader that keeps reading never lags.
      if (subscriber.resolve !== undefined && seq - subscriber.cursor + 1 >= this.#batchWakeAt()) {
        this.#deliverBatch(subscriber);
      }
      if (subscriber.resolve !== undefined) {
        waiting = true;
        checkAt = Math.min(checkAt, subscriber.cursor + this.#batchWakeAt() - 1);
      } else {
        checkAt = Math.min(checkAt, subscriber.cursor + this.#capacity);
      }
    }
    this.#batchCheckAt = checkAt;
    this.#batchWaiting = waiting;
    if (waiting && !this.#wakeScheduled) this.#scheduleWake();
  }

  /** A waiting batch subscriber is woken at once when this many events wait for it: half the ring. */
  #batchWakeAt(): number {
    return (this.#capacity + 1) >> 1;
  }

  #scheduleWake(): void {
    this.#wakeScheduled = true;
    onNextTurn(() => this.#wakeBatches());
  }

  /** The next turn after appends: every waiting batch subscriber gets what was appended meanwhile. */
  #wakeBatches(): void {
    this.#wakeScheduled = false;
    const subscribers = this.#batches ?? [];
    for (let index = subscribers.length - 1; index >= 0; index--) {
      const subscriber = subscribers[index]!;
      if (subscriber.resolve !== undefined && subscriber.cursor <= this.#lastSeq)
        this.#deliverBatch(subscriber);
    }
  }

  /** Settles the first waiting `next()` and promotes the next concurrent one, if any. */
  #resolveWaiter(subscriber: Subscriber, result: Delivery): void {
    const resolve = subscriber.resolve!;
    const extra = subscriber.extraWaiters?.shift();
    subscriber.resolve = extra?.resolve;
    subscriber.reject = extra?.reject;
    resolve(result);
  }

  /** Ends a subscriber with an error for its next (or pending) `next()`. */
  #fail(subscriber: Subscriber, error: unknown): void {
    if (subscriber.ended) return;
    const reject = subscriber.reject;
    if (reject !== undefined) {
      const extra = subscriber.extraWaiters?.shift();
      subscriber.resolve = extra?.resolve;
      subscriber.reject = extra?.reject;
      reject(error);
    } else {
      subscriber.hasError = true;
      subscriber.error = error;
    }
    this.#end(subscriber);
  }

  /** Detaches a subscriber: done for every later (and pending) `next()`. */
  #end(subscriber: Subscriber): void {
    if (subscriber.ended) return;
    subscriber.ended = true;
    subscriber.gap = undefined;
    if (subscriber.onAbort !== undefined) {
      subscriber.signal!.removeEventListener('abort', subscriber.onAbort);
      subscriber.onAbort = undefined;
      subscriber.signal = undefined;
    }
    while (subscriber.resolve !== undefined) this.#resolveWaiter(subscriber, DONE);
    const subscribers = (subscriber.batch ? this.#batches : this.#subscribers) ?? [];
    if (subscriber.batch) this.#batchCheckAt = 0;
    const index = subscribers.indexOf(subscriber);
    if (index !== -1) {
      subscribers.splice(index, 1);
      if (this.subscriberCount === 0) {
        this.#active = true;
        if (this.#timer === undefined) this.#armTimer();
      }
    }
  }

  #timestamp(): string {
    if (this.#now !== undefined) return this.#now();
    const ms = Date.now();
    if (ms !== this.#clockMs) {
      this.#clockMs = ms;
      this.#clockIso = new Date(ms).toISOString();
    }
    return this.#clockIso;
  }

  #armTimer(): void {
    if (this.#releaseAfterMs === 0 || this.#ring.length === 0) return;
    const timer = setTimeout(this.#onTimer, Math.max(1, Math.ceil(this.#releaseAfterMs / IDLE_CHECKS)));
    unrefTimer(timer);
    this.#timer = timer;
  }

  /**
   * Idleness is sampled, not timed: an append only sets a flag (reading a clock per event would cost
   * more than the rest of append), and the log is released after IDLE_CHECKS quiet checks in a row.
   */
  #idleCheck(): void {
    this.#timer = undefined;
    if (this.subscriberCount > 0) return; // re-armed when the last one leaves
    if (this.#active) {
      this.#active = false;
      this.#quietChecks = 0;
    } else if (++this.#quietChecks >= IDLE_CHECKS) {
      this.#quietChecks = 0;
      this.release();
      this.#onIdleRelease?.(this);
      return;
    }
    this.#armTimer();
  }
}

/** Options of {@link EventLogs}: those of {@link EventLog} for every log it creates. */
export type EventLogsOptions = Omit<EventLogOptions, 'sessionId' | 'firstSeq' | 'onIdleRelease'>;

/**
 * One {@link EventLog} per session id: created on demand, closed and forgotten on delete.
 *
 * Memory: a log released for idleness with no subscriber is dropped, and only its `lastSeq` is
 * remembered (a map entry of a few dozen bytes); `get` or `getOrCreate` makes it again, empty,
 * numbering on from that seq, so to a caller it is the same log with its kept events released.
 */
export class EventLogs {
  readonly #options: EventLogsOptions;
  readonly #logs = new Map<string, EventLog>();
  /** lastSeq of logs dropped after an idle release. */
  readonly #released = new Map<string, number>();
  /** The high-water mark each session's numbering started after in this process. */
  readonly #floors = new Map<string, number>();
  readonly #onIdleRelease = (log: EventLog): void => {
    if (log.subscriberCount > 0 || log.closed || this.#logs.get(log.sessionId) !== log) return;
    this.#logs.delete(log.sessionId);
    this.#released.set(log.sessionId, log.lastSeq);
  };

  constructor(options: EventLogsOptions = {}) {
    this.#options = options;
  }

  /** The log of a session, if one exists (a released one is made again, its numbering kept). */
  get(sessionId: string): EventLog | undefined {
    return (
      this.#logs.get(sessionId) ?? (this.#released.has(sessionId) ? this.getOrCreate(sessionId) : undefined)
    );
  }

  /**
   * The log of a session, created empty when there is none. `reserved` is the session's persisted
   * high-water mark (`Session.eventSeqReserved`): a log made in this process numbers after it, and
   * positions before it (from a previous process) get a `gap` `reset`.
   */
  getOrCreate(sessionId: string, reserved = 0): EventLog {
    let log = this.#logs.get(sessionId);
    if (log === undefined) {
      const released = this.#released.get(sessionId);
      this.#released.delete(sessionId);
      const floor = this.#floors.get(sessionId) ?? reserved;
      this.#floors.set(sessionId, floor);
      log = new EventLog({
        ...this.#options,
        sessionId,
        firstSeq: (released ?? floor) + 1,
        resetBefore: floor,
        onIdleRelease: this.#onIdleRelease,
      });
      this.#logs.set(sessionId, log);
    }
    return log;
  }

  /**
   * Closes the session's log with `session_exited { reason: 'deleted' }`, frees what its remaining
   * subscribers no longer need, and forgets it: `get` returns `undefined` and `getOrCreate` makes
   * a new, empty log. No-op for an unknown id.
   */
  delete(sessionId: string): void {
    this.#released.delete(sessionId);
    this.#floors.delete(sessionId);
    const log = this.#logs.get(sessionId);
    if (log === undefined) return;
    this.#logs.delete(sessionId);
    log.close('deleted');
    log.release();
  }

  /** Closes every log with `session_exited { reason: 'closed' }`; the closed logs stay readable. */
  closeAll(): void {
    for (const log of this.#logs.values()) log.close('closed');
  }

  /** Number of logs held in memory (released ones not counted). */
  get size(): number {
    return this.#logs.size;
  }
}

/**
 * An async iterable whose subscription is opened by `open` on the first `next()`, so errors of
 * opening (an unknown session, an aborted signal) surface there. Once open, the subscription's own
 * `next()` promises are handed out unwrapped: an async wrapper would add ticks per event, enough
 * for a reader to fall behind a runtime that yields without I/O.
 */
export function subscribeOnFirstNext<T = SessionEvent>(
  open: () => Promise<AsyncIterator<T>>,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      let inner: AsyncIterator<T> | undefined;
      let opening: Promise<AsyncIterator<T>> | undefined;
      let finished = false;
      return {
        next: () => {
          if (inner !== undefined && !finished) return inner.next();
          if (finished) return Promise.resolve({ value: undefined, done: true });
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

const NOT_READY = Symbol('not ready');
const notReady = Promise.resolve(NOT_READY);

/**
 * Batches of a per-event subscription that has no batch reader of its own (the durable log's):
 * each `next()` waits for one event, then adds every further one that is already there, up to
 * `max`. An error behind events already taken comes on the following `next()`, after them.
 */
export function batchesOf(
  events: AsyncIterator<SessionEvent>,
  max = 512,
): AsyncIterableIterator<readonly SessionEvent[]> {
  let pending: Promise<IteratorResult<SessionEvent>> | undefined;
  let failure: { error: unknown } | undefined;
  let finished = false;
  const iterator: AsyncIterableIterator<readonly SessionEvent[]> = {
    next: async () => {
      if (failure !== undefined) {
        const { error } = failure;
        failure = undefined;
        finished = true;
        throw error;
      }
      if (finished) return DONE;
      const first = await (pending ?? events.next());
      pending = undefined;
      if (first.done) {
        finished = true;
        return DONE;
      }
      const batch = [first.value];
      while (batch.length < max) {
        const next = events.next();
        let result: IteratorResult<SessionEvent> | typeof NOT_READY;
        try {
          // An already settled next() wins the race: it was there first.
          result = await Promise.race([next, notReady]);
        } catch (error) {
          failure = { error };
          break;
        }
        if (result === NOT_READY) {
          pending = next;
          break;
        }
        if (result.done) {
          finished = true;
          break;
        }
        batch.push(result.value);
      }
      return { value: batch, done: false };
    },
    return: async () => {
      finished = true;
      pending?.catch(() => undefined);
      await events.return?.();
      return DONE;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
