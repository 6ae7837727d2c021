import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { Message } from '../schemas.js';

/** A follow-up waiting for the running turn to end. */
export interface FollowUp {
  messages: Message[];
  idempotencyKey?: string;
}

/**
 * The last `capacity` idempotency keys of a session, oldest evicted first. A key is claimed
 * synchronously, so concurrent calls with one key deliver once; a failed delivery releases it.
 */
export class IdempotencyKeys {
  readonly #keys = new Set<string>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Claims `key`; false when it was seen already. */
  claim(key: string): boolean {
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    if (this.#keys.size > this.#capacity) {
      const oldest = this.#keys.values().next().value as string;
      this.#keys.delete(oldest);
    }
    return true;
  }

  release(key: string): void {
    this.#keys.delete(key);
  }

  get size(): number {
    return this.#keys.size;
  }
}

/** Bounded FIFO of steered messages or follow-ups; full → `QUEUE_FULL`. */
export class BoundedQueue<T> {
  #items: T[] = [];
  readonly #capacity: number;
  readonly #what: string;

  constructor(capacity: number, what: string) {
    this.#capacity = capacity;
    this.#what = what;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Adds all of `items` or none. */
  push(sessionId: string, items: T[]): void {
    if (this.#items.length + items.length > this.#capacity) {
      throw new AgentSessionsError(
        ErrorCode.QUEUE_FULL,
        `${this.#what} queue of session ${JSON.stringify(sessionId)} is full (capacity ${this.#capacity})`,
      );
    }
    this.#items.push(...items);
  }

  shift(): T | undefined {
    return this.#items.shift();
  }

  drain(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  peek(): readonly T[] {
    return this.#items;
  }
}
