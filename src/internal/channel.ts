// A single-consumer, unbounded channel from a producer that never waits to one async iterator.
// Used for a TurnStream: the turn runs at its own pace and the caller reads what it produced, one
// value per `next()` or, through `nextBatch()`, everything produced since the last read.
// Once detached (the reader left), pushes are dropped so nothing accumulates.
import { onNextTurn } from './next-turn.js';

type Settle<R> = { resolve: (result: R) => void; reject: (error: unknown) => void };

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

export class Channel<T> {
  #buffer: T[] = [];
  #head = 0;
  // The waiting reader's settle functions live in fields, set by an executor made once per
  // channel: a waiter object and an executor closure per value would double what a value costs.
  #resolve: ((result: IteratorResult<T>) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  readonly #executor = (resolve: (result: IteratorResult<T>) => void, reject: (error: unknown) => void) => {
    this.#resolve = resolve;
    this.#reject = reject;
  };
  #batch: Settle<IteratorResult<readonly T[]>> | undefined;
  #wakeScheduled = false;
  readonly #wake = (): void => {
    this.#wakeScheduled = false;
    if (this.#batch !== undefined && this.#head < this.#buffer.length) this.#flushBatch();
  };
  readonly #maxBatch: number;
  #ended = false;
  #error: unknown;
  #hasError = false;
  #detached = false;

  /** @param maxBatch A waiting batch reader is woken at once when this many values are buffered. */
  constructor(maxBatch = 512) {
    this.#maxBatch = maxBatch;
  }

  get detached(): boolean {
    return this.#detached;
  }

  push(value: T): void {
    if (this.#ended || this.#detached) return;
    const resolve = this.#resolve;
    if (resolve !== undefined) {
      this.#resolve = undefined;
      this.#reject = undefined;
      resolve({ value, done: false });
      return;
    }
    this.#buffer.push(value);
    if (this.#batch !== undefined) {
      // A batch reader takes everything produced within this task: woken on the next turn of the
      // event loop, or at once when the batch is already large.
      if (this.#buffer.length - this.#head >= this.#maxBatch) this.#flushBatch();
      else if (!this.#wakeScheduled) {
        this.#wakeScheduled = true;
        onNextTurn(this.#wake);
      }
    }
  }

  /** Ends the channel: the reader gets what is buffered, then done (or `error`). */
  end(error?: unknown, hasError = false): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#hasError = hasError;
    if (this.#head < this.#buffer.length) {
      if (this.#batch !== undefined) this.#flushBatch();
      return;
    }
    this.#settleEnded();
  }

  /** The reader left: drop what is buffered and everything pushed later; a waiting read is done. */
  detach(): void {
    this.#detached = true;
    this.#buffer = [];
    this.#head = 0;
    this.#settleEnded();
  }

  // Arrow properties: a TurnStream hands them out as its iterator's own methods, one call less per value.
  readonly next = (): Promise<IteratorResult<T>> => {
    if (this.#head < this.#buffer.length) {
      const value = this.#buffer[this.#head] as T;
      this.#buffer[this.#head] = undefined as T;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#buffer.length) {
        this.#buffer = this.#buffer.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended || this.#detached) return this.#endResult();
    return new Promise(this.#executor);
  };

  /**
   * Everything buffered, as one array (never empty), or, when nothing is, the values pushed from
   * now until the next turn of the event loop (or until `maxBatch` are buffered). Then done (or
   * `error`) once ended.
   */
  readonly nextBatch = (): Promise<IteratorResult<readonly T[]>> => {
    if (this.#head < this.#buffer.length) return Promise.resolve({ value: this.#take(), done: false });
    if (this.#ended || this.#detached) return this.#endResult();
    return new Promise((resolve, reject) => {
      this.#batch = { resolve, reject };
    });
  };

  #endResult(): Promise<IteratorReturnResult<undefined>> {
    if (this.#hasError) {
      this.#hasError = false;
      return Promise.reject(this.#error);
    }
    return Promise.resolve(DONE);
  }

  /** Settles a waiting reader of an ended (or detached) channel whose buffer is empty. */
  #settleEnded(): void {
    const resolve = this.#resolve;
    const reject = this.#reject;
    const batch = this.#batch;
    this.#resolve = undefined;
    this.#reject = undefined;
    this.#batch = undefined;
    for (const waiter of [
      ...(resolve === undefined ? [] : [{ resolve, reject: reject! }]),
      ...(batch === undefined ? [] : [batch]),
    ]) {
      if (this.#hasError) {
        this.#hasError = false;
        waiter.reject(this.#error);
      } else {
        waiter.resolve(DONE);
      }
    }
  }

  #flushBatch(): void {
    const batch = this.#batch!;
    this.#batch = undefined;
    batch.resolve({ value: this.#take(), done: false });
  }

  /** Takes what is buffered: the buffer itself when nothing of it was read one by one. */
  #take(): T[] {
    const taken = this.#head === 0 ? this.#buffer : this.#buffer.slice(this.#head);
    this.#buffer = [];
    this.#head = 0;
    return taken;
  }
}
