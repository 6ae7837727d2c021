import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { Message, Session, SessionItem, SessionPatch } from '../schemas.js';
import type { ListOptions } from '../store.js';
import { InterceptingStore } from './intercepting-store.js';

/** The methods of a {@link Store} that the test wrappers can fail or block (`close` included). */
export type StoreMethod =
  | 'createSession'
  | 'getSession'
  | 'listSessions'
  | 'updateSession'
  | 'appendItems'
  | 'updateMessage'
  | 'deleteSession'
  | 'close';

/** The arguments of each {@link StoreMethod}. */
export interface StoreMethodArgs {
  createSession: [session: Session];
  getSession: [id: string];
  listSessions: [options?: ListOptions];
  updateSession: [id: string, patch: SessionPatch];
  appendItems: [id: string, items: SessionItem[]];
  updateMessage: [id: string, messageId: string, message: Message];
  deleteSession: [id: string];
  close: [];
}

/** One call that reached a wrapper, in call order. */
export type StoreCall = {
  [M in StoreMethod]: {
    method: M;
    /** The arguments as given (not copied). */
    args: StoreMethodArgs[M];
    /** True when the wrapper rejected the call instead of passing it on. */
    failed: boolean;
  };
}[StoreMethod];

/**
 * What an injected failure rejects with: an error value, or a function making one per call (so
 * every rejection can carry its own error).
 */
export type FailureError<M extends StoreMethod = StoreMethod> =
  | Error
  | ((call: { method: M; args: StoreMethodArgs[M] }) => unknown);

/**
 * The default error of an injected failure: an {@link AgentSessionsError} with code
 * `STORE_UNAVAILABLE` (a store that failed for a reason of its own) whose message starts with `injected failure:`.
 */
export class InjectedStoreError extends AgentSessionsError {
  /** The method that was failed. */
  readonly method: StoreMethod;
  constructor(method: StoreMethod) {
    super(ErrorCode.STORE_UNAVAILABLE, `injected failure: FailingStore.${method}`);
    this.method = method;
  }
}

interface Rule {
  when: (args: readonly unknown[]) => boolean;
  error: FailureError | undefined;
  once: boolean;
}

/**
 * A {@link Store} wrapper that makes chosen calls reject, for testing how a caller (e.g. the
 * session manager) handles store failures. A failed call never reaches the inner store; every
 * other call is passed on unchanged. Every call is logged in {@link FailingStore.calls}.
 *
 * Rules are checked per call in this order: the oldest pending {@link failNext} of the method,
 * then {@link failWhen} rules and {@link failAlways} in the order they were added.
 *
 * Only the methods of {@link Store} are forwarded; optional capabilities of the inner store are
 * not exposed.
 *
 * @example
 * ```ts
 * const store = new FailingStore(new MemoryStore());
 * store.failNext('appendItems');
 * await manager.runSession(id, { messages: ['hi'] }); // rejects with the injected error
 * ```
 */
export class FailingStore extends InterceptingStore {
  /** Every call, in order, including failed ones. Clear it with `calls.length = 0`. */
  readonly calls: StoreCall[] = [];
  readonly #once = new Map<StoreMethod, Rule[]>();
  readonly #rules = new Map<StoreMethod, Rule[]>();

  /**
   * Makes the next call of `method` reject with `error` (default an {@link InjectedStoreError}).
   * Several `failNext` calls queue up: each fails one call, oldest first.
   */
  failNext<M extends StoreMethod>(method: M, error?: FailureError<M>): this {
    return this.#add(this.#once, method, {
      when: () => true,
      error: error as FailureError | undefined,
      once: true,
    });
  }

  /** Makes every call of `method` reject with `error` until {@link reset}. */
  failAlways<M extends StoreMethod>(method: M, error?: FailureError<M>): this {
    return this.#add(this.#rules, method, {
      when: () => true,
      error: error as FailureError | undefined,
      once: false,
    });
  }

  /** Makes the calls of `method` whose arguments satisfy `predicate` reject, until {@link reset}. */
  failWhen<M extends StoreMethod>(
    method: M,
    predicate: (args: StoreMethodArgs[M]) => boolean,
    error?: FailureError<M>,
  ): this {
    return this.#add(this.#rules, method, {
      when: (args) => predicate(args as StoreMethodArgs[M]),
      error: error as FailureError | undefined,
      once: false,
    });
  }

  /** Removes every failure rule (of one method, or all). The call log is kept. */
  reset(method?: StoreMethod): this {
    if (method === undefined) {
      this.#once.clear();
      this.#rules.clear();
    } else {
      this.#once.delete(method);
      this.#rules.delete(method);
    }
    return this;
  }

  /** The logged calls of one method. */
  callsOf<M extends StoreMethod>(method: M): Extract<StoreCall, { method: M }>[] {
    return this.calls.filter((call): call is Extract<StoreCall, { method: M }> => call.method === method);
  }

  #add(table: Map<StoreMethod, Rule[]>, method: StoreMethod, rule: Rule): this {
    const rules = table.get(method) ?? [];
    rules.push(rule);
    table.set(method, rules);
    return this;
  }

  protected override async intercept<M extends StoreMethod, R>(
    method: M,
    args: StoreMethodArgs[M],
    forward: () => Promise<R>,
  ): Promise<R> {
    const rule = this.#match(method, args);
    this.calls.push({ method, args, failed: rule !== undefined } as StoreCall);
    if (rule) {
      const error = typeof rule.error === 'function' ? rule.error({ method, args }) : rule.error;
      throw error ?? new InjectedStoreError(method);
    }
    return forward();
  }

  #match(method: StoreMethod, args: readonly unknown[]): Rule | undefined {
    const once = this.#once.get(method);
    if (once && once.length > 0) return once.shift();
    return this.#rules.get(method)?.find((rule) => rule.when(args));
  }
}
