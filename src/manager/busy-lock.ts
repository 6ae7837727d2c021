/**
 * The per-session busy lock: at most one holder per session at a time. A turn holds it from
 * admission until the last turn of its TurnStream ended; a history edit (`addMessage`,
 * `updateMessage`, `addSummary`) holds it for its write.
 *
 * The manager asks for the lock only after it has claimed the session among its own callers (see
 * `admission.ts`), so a {@link BusyLock} decides only between processes. The default,
 * {@link InProcessBusyLock}, is for one process. A lock shared by several processes (a lease in
 * Redis, say) implements the same interface:
 * - {@link BusyLock.acquire} MUST resolve to `undefined` while another holder has the session, and
 *   MUST NOT wait for it to be released;
 * - each lease MUST carry a fencing token greater than that of every earlier lease of the session,
 *   so a writer can be told apart from one whose lease has since been lost and taken by another;
 * - {@link BusyLease.release} MUST be idempotent and SHOULD NOT reject (a failure is the lock's to
 *   log; an expired lease frees the session anyway).
 *
 * A lock that can lose a lease (a lease that expires) SHOULD also:
 * - give each lease a {@link BusyLease.lost} signal that aborts when the lease is lost while held:
 *   the manager then cancels the turn holding it;
 * - fence writes with {@link BusyLock.fenceStore}: the manager sends every write through the store
 *   it returns, which rejects the writes of a session whose lease this holder lost, so a holder
 *   that lost its lease cannot change the session another holder now runs.
 *
 * With a lock passed as `SessionManagerOptions.busyLock` (possibly shared), the manager keeps a
 * session's cached record across leases only when a new lease's token is exactly one more than that
 * of its own previous lease of the session (nobody held it in between); otherwise it reads the
 * store again. A lock whose tokens per session are consecutive (`RedisLeaseLock`: one `INCR` per
 * lease) thus keeps the cache on an instance that runs a session's turns in a row.
 */
import { AgentSessionsError, type AgentSessionsErrorOptions, ErrorCode } from '../errors.js';
import type { Store } from '../store.js';

const leaseLostBrand = Symbol.for('agent-sessions.error.LeaseLostError');

/**
 * `SESSION_BUSY`: a write for a session whose busy lease its writer has lost (it expired, or
 * another instance holds the session now with a greater fencing token). Nothing was written.
 * Raised by a lock's fenced store ({@link BusyLock.fenceStore}) and by a {@link FencingStore}
 * that saw a greater token.
 */
export class LeaseLostError extends AgentSessionsError {
  /** The session. */
  readonly sessionId: string;
  /** The fencing token of the lost lease. */
  readonly token: number;
  /** When a store refused the write: the greater token it has seen for the session. */
  readonly fencedBy: number | undefined;
  constructor(
    sessionId: string,
    token: number,
    options: AgentSessionsErrorOptions & { message?: string; fencedBy?: number } = {},
  ) {
    super(
      ErrorCode.SESSION_BUSY,
      options.message ??
        `the busy lease ${token} of session ${sessionId} was lost: another instance may hold it`,
      options,
    );
    if (new.target === LeaseLostError) this.name = 'LeaseLostError';
    this.sessionId = sessionId;
    this.token = token;
    this.fencedBy = options.fencedBy;
    Object.defineProperty(this, leaseLostBrand, { value: true });
  }

  /** True for a {@link LeaseLostError} from either build. */
  static override isInstance(error: unknown): error is LeaseLostError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[leaseLostBrand] === true
    );
  }
}

/**
 * Optional store capability: fencing tokens checked by the store itself, in the transaction of
 * each write, so a writer whose lease was lost cannot write even when its process was paused
 * between a lock's local check and the write reaching the database.
 *
 * - {@link FencingStore.raiseFence} records `token` as the session's fence (when greater than the
 *   one recorded) and MUST reject with {@link LeaseLostError} when a greater token was recorded
 *   already; it does nothing for an unknown session.
 * - {@link FencingStore.withFencing} returns a view of the store whose writes of a session
 *   (`updateSession`, `appendItems`, `updateMessage`) carry `tokenOf(sessionId)` when it is
 *   defined: such a write MUST reject with {@link LeaseLostError}, writing nothing, when the
 *   session's fence is greater than its token, and otherwise raises the fence to its token in the
 *   same transaction. Writes without a token are not checked. Everything else is the store's own.
 *
 * A lock with globally increasing tokens (`RedisLeaseLock`) uses it from its `fenceStore`: it
 * raises the fence right after each acquire, before the new holder reads anything, so from then on
 * every write of an older lease is refused. `PostgresStore` has it; other stores rely on the
 * lock's local check alone.
 */
export interface FencingStore extends Store {
  raiseFence(sessionId: string, token: number): Promise<void>;
  withFencing(tokenOf: (sessionId: string) => number | undefined): Store;
}

/** True when `store` checks fencing tokens itself ({@link FencingStore}). */
export function isFencingStore(store: Store): store is FencingStore {
  const candidate = store as Partial<FencingStore>;
  return typeof candidate.raiseFence === 'function' && typeof candidate.withFencing === 'function';
}

/** One holding of a session's busy lock. */
export interface BusyLease {
  /** The session it is for. */
  readonly sessionId: string;
  /** Greater than the token of every earlier lease of this session (a fencing token). */
  readonly token: number;
  /** Gives the session up. Idempotent. */
  release(): Promise<void>;
  /** Aborts when the lease is lost while held (it expired, another holder took it). Optional. */
  readonly lost?: AbortSignal;
}

/** Decides which holder has a session. See the module documentation for the contract. */
export interface BusyLock {
  /** A lease on the session, or `undefined` at once when someone else holds it. */
  acquire(sessionId: string): Promise<BusyLease | undefined>;
  /**
   * Optional: `store` with writes fenced by this lock's leases (see the module documentation).
   * The manager calls it once, on the store it was given.
   */
  fenceStore?(store: Store): Store;
  /**
   * Optional: whether any holder (in any process) has the session now. A manager that runs no turn
   * of the session asks it for `streaming` in `getSessionSnapshot`; without it, `streaming` says
   * only whether this manager runs a turn.
   */
  isHeld?(sessionId: string): boolean | Promise<boolean>;
}

/** The busy lock of one process: a set of held session ids and one counter for fencing tokens. */
export class InProcessBusyLock implements BusyLock {
  readonly #held = new Map<string, number>();
  #lastToken = 0;

  /** Whether someone (any manager given this lock) holds the session. */
  isHeld(sessionId: string): boolean {
    return this.#held.has(sessionId);
  }

  /** Decided synchronously, at the call: of concurrent callers, the first one gets the lease. */
  acquire(sessionId: string): Promise<BusyLease | undefined> {
    if (this.#held.has(sessionId)) return Promise.resolve(undefined);
    const token = ++this.#lastToken;
    this.#held.set(sessionId, token);
    const held = this.#held;
    const lease: BusyLease = {
      sessionId,
      token,
      release: () => {
        if (held.get(sessionId) === token) held.delete(sessionId);
        return Promise.resolve();
      },
    };
    return Promise.resolve(lease);
  }
}
