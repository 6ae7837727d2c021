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

/**
 * What waits for a session's turns: steered messages (drained by the running turn, or run as the
 * next turn when none took them), follow-ups (each its own turn, in order) and the idempotency keys
 * of follow-ups. Kept while the session is in memory; dropped with it on delete.
 */
export class TurnQueues {
  /** Messages steered into the running turn. */
  readonly steer: BoundedQueue<Message>;
  /** Follow-ups waiting for the running turn to end. */
  readonly followUps: BoundedQueue<FollowUp>;
  /** Keys of delivered follow-ups. */
  readonly keys: IdempotencyKeys;

  constructor(capacities: { steer: number; followUp: number; keys: number }) {
    this.steer = new BoundedQueue(capacities.steer, 'steering');
    this.followUps = new BoundedQueue(capacities.followUp, 'follow-up');
    this.keys = new IdempotencyKeys(capacities.keys);
  }

  /** Some steered message or follow-up waits for a turn. */
  get waiting(): boolean {
    return this.steer.length > 0 || this.followUps.length > 0;
  }

  /** Nothing waits and no key is remembered: nothing here a later call needs. */
  get empty(): boolean {
    return !this.waiting && this.keys.size === 0;
  }

  /** The next turn's input: the steered messages no turn took (as one turn), else the first follow-up. */
  next(): FollowUp | undefined {
    const steered = this.steer.drain();
    if (steered.length > 0) return { messages: steered };
    return this.followUps.shift();
  }

  /** Empties both queues (a cancel): resolves to their messages and frees their keys. */
  discard(): Message[] {
    const discarded = this.steer.drain();
    for (const followUp of this.followUps.drain()) {
      if (followUp.idempotencyKey !== undefined) this.keys.release(followUp.idempotencyKey);
      discarded.push(...followUp.messages);
    }
    return discarded;
  }
}
