import type { StoreMethod, StoreMethodArgs } from './failing-store.js';
import { InterceptingStore } from './intercepting-store.js';

interface Paused {
  args: readonly unknown[];
  resume: () => void;
  reject: (error: unknown) => void;
}

interface Waiter {
  count: number;
  resolve: () => void;
}

/**
 * A {@link Store} wrapper that holds chosen calls before they reach the inner store, so a test
 * can act while a write is in flight (a race) and then let it through. Deterministic: nothing
 * depends on timers.
 *
 * - {@link block} makes the following calls of a method pause;
 * - {@link waitForBlocked} resolves once that many calls of the method are paused;
 * - {@link release} lets every paused call through, oldest first, and stops blocking;
 *   {@link releaseNext} lets one through and keeps blocking; {@link rejectBlocked} makes the
 *   paused calls reject without reaching the inner store.
 *
 * Released calls reach the inner store in the order they were made. Only the methods of
 * {@link Store} are forwarded (`getSummary` when the inner store has it).
 *
 * @example
 * ```ts
 * const store = new BlockingStore(new MemoryStore());
 * store.block('appendItems');
 * const running = manager.runSession(id, { messages: ['hi'] });
 * await store.waitForBlocked('appendItems');
 * // …the user message is being written: race something against it…
 * store.release('appendItems');
 * await running;
 * ```
 */
export class BlockingStore extends InterceptingStore {
  readonly #blocking = new Set<StoreMethod>();
  readonly #paused = new Map<StoreMethod, Paused[]>();
  readonly #waiters = new Map<StoreMethod, Waiter[]>();

  /** Makes the following calls of `method` pause before reaching the inner store. */
  block(method: StoreMethod): this {
    this.#blocking.add(method);
    return this;
  }

  /** Stops pausing new calls of `method`; calls already paused stay paused until released. */
  unblock(method: StoreMethod): this {
    this.#blocking.delete(method);
    return this;
  }

  /** True while new calls of `method` pause. */
  isBlocking(method: StoreMethod): boolean {
    return this.#blocking.has(method);
  }

  /** How many calls of `method` are paused now. */
  pausedCount(method: StoreMethod): number {
    return this.#paused.get(method)?.length ?? 0;
  }

  /** The arguments of the calls of `method` paused now, oldest first (as given, not copied). */
  pausedArgs<M extends StoreMethod>(method: M): StoreMethodArgs[M][] {
    return (this.#paused.get(method) ?? []).map((paused) => paused.args as StoreMethodArgs[M]);
  }

  /**
   * Resolves when at least `count` calls of `method` are paused at the same time (at once if they
   * already are). It never times out by itself: use the test framework's timeout.
   * @default count 1
   */
  waitForBlocked(method: StoreMethod, count = 1): Promise<void> {
    if (this.pausedCount(method) >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(method) ?? [];
      waiters.push({ count, resolve });
      this.#waiters.set(method, waiters);
    });
  }

  /** Lets every paused call of `method` through, oldest first, and stops blocking it. */
  release(method: StoreMethod): this {
    this.#blocking.delete(method);
    const paused = this.#paused.get(method) ?? [];
    this.#paused.delete(method);
    for (const call of paused) call.resume();
    return this;
  }

  /** Lets the oldest paused call of `method` through; new calls keep pausing. False when none was paused. */
  releaseNext(method: StoreMethod): boolean {
    const call = this.#paused.get(method)?.shift();
    call?.resume();
    return call !== undefined;
  }

  /** Releases every paused call of every method and stops all blocking (e.g. in `afterEach`). */
  releaseAll(): this {
    for (const method of [...this.#blocking, ...this.#paused.keys()]) this.release(method);
    return this;
  }

  /** Makes the paused calls of `method` reject with `error`, without reaching the inner store. Blocking continues. */
  rejectBlocked(method: StoreMethod, error: unknown): this {
    const paused = this.#paused.get(method) ?? [];
    this.#paused.delete(method);
    for (const call of paused) call.reject(error);
    return this;
  }

  protected override async intercept<M extends StoreMethod, R>(
    method: M,
    args: StoreMethodArgs[M],
    forward: () => Promise<R>,
  ): Promise<R> {
    if (this.#blocking.has(method)) {
      await new Promise<void>((resume, reject) => {
        const paused = this.#paused.get(method) ?? [];
        paused.push({ args, resume, reject });
        this.#paused.set(method, paused);
        this.#notify(method);
      });
    }
    return forward();
  }

  #notify(method: StoreMethod): void {
    const waiters = this.#waiters.get(method);
    if (!waiters) return;
    const count = this.pausedCount(method);
    const remaining = waiters.filter((waiter) => {
      if (count < waiter.count) return true;
      waiter.resolve();
      return false;
    });
    if (remaining.length > 0) this.#waiters.set(method, remaining);
    else this.#waiters.delete(method);
  }
}
