// A single-consumer, unbounded channel from a producer that never waits to one async iterator.
// Used for a TurnStream: the turn runs at its own pace and the caller reads what it produced.
// Once detached (the reader left), pushes are dropped so nothing accumulates.

export class Channel<T> {
  #buffer: T[] = [];
  #head = 0;
  #waiter: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void } | undefined;
  #ended = false;
  #error: unknown;
  #hasError = false;
  #detached = false;

  get detached(): boolean {
    return this.#detached;
  }

  push(value: T): void {
    if (this.#ended || this.#detached) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve({ value, done: false });
      return;
    }
    this.#buffer.push(value);
  }

  /** Ends the channel: the reader gets what is buffered, then done (or `error`). */
  end(error?: unknown, hasError = false): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#hasError = hasError;
    const waiter = this.#waiter;
    if (waiter && this.#head >= this.#buffer.length) {
      this.#waiter = undefined;
      if (hasError) waiter.reject(error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** The reader left: drop what is buffered and everything pushed later. */
  detach(): void {
    this.#detached = true;
    this.#buffer = [];
    this.#head = 0;
  }

  next(): Promise<IteratorResult<T>> {
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
    if (this.#ended || this.#detached) {
      if (this.#hasError) {
        this.#hasError = false;
        return Promise.reject(this.#error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }
}
