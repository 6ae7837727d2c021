/**
 * The per-session busy lock as a lease in Redis, shared by every instance of a deployment
 * (see `BusyLock` in src/manager/busy-lock.ts for the contract it implements).
 *
 * **Keys** (under `prefix`): `busy:<session>` holds the current lease's owner id with a TTL;
 * `fence:<session>` is the session's fencing counter, never expiring (one small key per session
 * that was ever leased).
 *
 * **Acquire** is one script: `SET busy NX PX ttl`, and only when that succeeded `INCR fence`; the
 * counter's new value is the lease's fencing token, greater than every earlier lease's.
 * **Renewal** runs every `ttl / 3` while the lease is held: a script extends the TTL only if the
 * key still holds this lease's owner id (compare-and-`PEXPIRE`). **Release** is a script that
 * deletes the key only if it still holds this owner id (compare-and-`DEL`), so a holder whose lease
 * expired never frees the next holder's.
 *
 * **A lost lease is noticed** without asking Redis: each successful renewal moves the lease's
 * validity to the time the renewal was *sent* plus the TTL minus a margin for clock drift, so the
 * lease counts as lost no later than Redis lets the key expire. A renewal that finds the key taken
 * or gone marks it lost at once. When lost, the lease's `lost` signal aborts (the manager cancels
 * the turn) and {@link RedisLeaseLock.fenceStore}'s writes for that session reject with
 * `LeaseLostError` — this is how the fencing protects writes: every write batch of a turn (each
 * `appendItems`, `updateSession`, `updateMessage`) is checked against its lease before it is sent.
 *
 * **Fencing in the store.** That local check cannot see a pause of the process between the check
 * and the write reaching the database. A store that checks tokens itself (a `FencingStore`, such
 * as `PostgresStore`) closes that gap: `fenceStore` sends each write of a held session with its
 * lease's token, and `acquire` raises the store's fence of the session to the new token before it
 * resolves — so once a new holder has the session, the store refuses every write of an older
 * lease, however late it arrives. Should the store have seen a greater token than Redis's counter
 * (Redis lost its data), the counter is moved past it and the lease taken again.
 */
import { AgentSessionsError, ErrorCode } from '../errors.js';
import { newId } from '../internal/ids.js';
import { type Logger, silentLogger } from '../logger.js';
import {
  type BusyLease,
  type BusyLock,
  type FencingStore,
  isFencingStore,
  LeaseLostError,
} from '../manager/busy-lock.js';

export { LeaseLostError };

import type { Message, Session, SessionItem, SessionPatch, SessionSummary } from '../schemas.js';
import type { ListOptions, Page, Store } from '../store.js';

/**
 * The Redis commands the coordinator needs: a `redis` (node-redis v5) client has them as is.
 * Scripts are sent with `EVAL` (each is a few lines; Redis caches them by hash).
 */
export interface RedisScripting {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/** Options of {@link RedisLeaseLock}. */
export interface RedisLeaseLockOptions {
  /** A connected client (node-redis `createClient()`), shared or not; the lock never closes it. */
  client: RedisScripting;
  /** Prefix of every key, so several deployments share one Redis. @default 'agent-sessions:' */
  prefix?: string;
  /**
   * How long a lease lives without renewal: how long a session stays busy after its holder died.
   * @default 15000
   */
  ttlMs?: number;
  /** How often a held lease is renewed. @default ttlMs / 3 */
  renewEveryMs?: number;
  /** Where failed renewals and releases are logged. */
  logger?: Logger;
}

// KEYS[1] busy key, KEYS[2] fence key; ARGV[1] owner id, ARGV[2] ttl ms. Returns the token or 0.
const ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0`;
// KEYS[1] busy key; ARGV[1] owner id, ARGV[2] ttl ms. 1 when extended, 0 when not ours.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;
// KEYS[1] fence key; ARGV[1] a token a store has seen. Moves the counter up to it (never down).
const FAST_FORWARD = `local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;
// KEYS[1] busy key; ARGV[1] owner id. 1 when deleted, 0 when not ours.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

// KEYS[1] busy key. 1 when some holder has it.
const HELD = `return redis.call('EXISTS', KEYS[1])`;

/** A lease of {@link RedisLeaseLock}. */
export interface RedisLease extends BusyLease {
  /** Aborts when the lease is lost before it was released; its reason is a {@link LeaseLostError}. */
  readonly lost: AbortSignal;
  /** True while the lease is held and known valid. */
  readonly valid: boolean;
  /** Throws {@link LeaseLostError} unless {@link RedisLease.valid}. */
  assertValid(): void;
}

// Renewal is sent before this much of the TTL is left; validity ends this much before Redis's
// expiry at the latest, for clock drift between this process and Redis.
const DRIFT_FACTOR = 0.01;
const DRIFT_MIN_MS = 2;

class Lease implements RedisLease {
  readonly sessionId: string;
  readonly token: number;
  readonly #lock: RedisLeaseLock;
  readonly #owner: string;
  readonly #controller = new AbortController();
  #validUntil: number;
  #released = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(lock: RedisLeaseLock, sessionId: string, token: number, owner: string, sentAt: number) {
    this.#lock = lock;
    this.sessionId = sessionId;
    this.token = token;
    this.#owner = owner;
    this.#validUntil = sentAt + lock.validityMs;
    this.#schedule();
  }

  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  get valid(): boolean {
    if (this.#released || this.#controller.signal.aborted) return false;
    if (performance.now() >= this.#validUntil) {
      this.#lose('it was not renewed in time');
      return false;
    }
    return true;
  }

  assertValid(): void {
    if (!this.valid) throw new LeaseLostError(this.sessionId, this.token);
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#timer);
    this.#lock.forget(this);
    try {
      await this.#lock.script(RELEASE, [this.#lock.busyKey(this.sessionId)], [this.#owner]);
    } catch (error) {
      // The key expires by itself; the session is free again after the TTL at the latest.
      this.#lock.logger.warn('redis lease: releasing failed', { sessionId: this.sessionId, error });
    }
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#renew(), this.#lock.renewEveryMs);
    // A held lease alone does not keep the process alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  async #renew(): Promise<void> {
    if (this.#released || this.#controller.signal.aborted) return;
    const sentAt = performance.now();
    try {
      const renewed = await this.#lock.script(
        RENEW,
        [this.#lock.busyKey(this.sessionId)],
        [this.#owner, String(this.#lock.ttlMs)],
      );
      if (this.#released) return;
      if (Number(renewed) !== 1) {
        this.#lose('another holder has it, or it expired');
        return;
      }
      this.#validUntil = sentAt + this.#lock.validityMs;
    } catch (error) {
      this.#lock.logger.warn('redis lease: renewing failed', { sessionId: this.sessionId, error });
      if (!this.valid) return;
    }
    this.#schedule();
  }

  #lose(why: string): void {
    if (this.#controller.signal.aborted) return;
    clearTimeout(this.#timer);
    this.#lock.logger.warn(`redis lease: lost (${why})`, { sessionId: this.sessionId, token: this.token });
    this.#controller.abort(new LeaseLostError(this.sessionId, this.token));
  }
}

/**
 * A {@link BusyLock} shared by every instance through Redis: a lease with a fencing token per
 * session. Pass it as `busyLock` to each `SessionManager`; see the module documentation for the
 * keys, the scripts and how lost leases are fenced off.
 *
 * @example
 * ```ts
 * const redis = await createClient({ url: process.env.REDIS_URL }).connect();
 * const busyLock = new RedisLeaseLock({ client: redis });
 * const manager = new SessionManager({ runtime, store, busyLock });
 * ```
 */
export class RedisLeaseLock implements BusyLock {
  /** The lease TTL. */
  readonly ttlMs: number;
  /** The renewal period. */
  readonly renewEveryMs: number;
  /** @internal How long after a renewal was sent the lease counts as valid. */
  readonly validityMs: number;
  /** @internal */
  readonly logger: Logger;
  readonly #client: RedisScripting;
  readonly #prefix: string;
  readonly #instance = newId('instance');
  readonly #held = new Map<string, Lease>();
  readonly #fencingStores = new Set<FencingStore>();

  constructor(options: RedisLeaseLockOptions) {
    this.#client = options.client;
    this.#prefix = options.prefix ?? 'agent-sessions:';
    this.ttlMs = options.ttlMs ?? 15_000;
    this.renewEveryMs = options.renewEveryMs ?? Math.floor(this.ttlMs / 3);
    if (
      !Number.isInteger(this.ttlMs) ||
      this.ttlMs < 10 ||
      this.renewEveryMs <= 0 ||
      this.renewEveryMs >= this.ttlMs
    ) {
      throw new AgentSessionsError(
        ErrorCode.INVALID_ARGUMENT,
        'RedisLeaseLock: ttlMs must be an integer >= 10 and renewEveryMs between 0 and ttlMs',
      );
    }
    this.validityMs = this.ttlMs - Math.max(DRIFT_MIN_MS, Math.ceil(this.ttlMs * DRIFT_FACTOR));
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * A lease on the session, or `undefined` at once while another holder (in any instance) has it.
   * Rejects with `STORE_UNAVAILABLE` when Redis cannot be reached (without the lock no turn
   * starts) or when a fencing store's fence could not be raised (the lease is released again).
   */
  acquire(sessionId: string): Promise<RedisLease | undefined> {
    return this.#acquire(sessionId, false);
  }

  async #acquire(sessionId: string, retried: boolean): Promise<RedisLease | undefined> {
    const owner = `${this.#instance}:${newId('lease')}`;
    const sentAt = performance.now();
    let token: number;
    try {
      token = Number(
        await this.script(
          ACQUIRE,
          [this.busyKey(sessionId), this.#fenceKey(sessionId)],
          [owner, String(this.ttlMs)],
        ),
      );
    } catch (error) {
      throw new AgentSessionsError(
        ErrorCode.STORE_UNAVAILABLE,
        `the redis busy lock could not lease session ${sessionId}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (!Number.isSafeInteger(token) || token <= 0) return undefined;
    const lease = new Lease(this, sessionId, token, owner, sentAt);
    this.#held.set(sessionId, lease);
    try {
      await this.#raiseFences(sessionId, token);
    } catch (error) {
      await lease.release();
      const seen = LeaseLostError.isInstance(error) ? error.fencedBy : undefined;
      if (seen !== undefined && seen > token && !retried) {
        // The store has seen a greater token than Redis's counter (Redis lost its data): the
        // counter moves past it and the session is leased again, with a token the store accepts.
        await this.script(FAST_FORWARD, [this.#fenceKey(sessionId)], [String(seen)]).catch(() => undefined);
        return this.#acquire(sessionId, true);
      }
      throw error;
    }
    return lease;
  }

  // Before the new holder reads or writes anything, the stores that check tokens themselves learn
  // this lease's token: from then on they refuse every write of an older lease.
  async #raiseFences(sessionId: string, token: number): Promise<void> {
    for (const store of this.#fencingStores) {
      try {
        await store.raiseFence(sessionId, token);
      } catch (error) {
        if (LeaseLostError.isInstance(error)) throw error;
        throw new AgentSessionsError(
          ErrorCode.STORE_UNAVAILABLE,
          `the fence of session ${sessionId} could not be raised to lease ${token}: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
    }
  }

  /**
   * Whether any instance holds a lease on the session now: one `EXISTS` of its busy key. A
   * snapshot on an instance that runs no turn of the session asks it (`streaming`).
   * `STORE_UNAVAILABLE` when Redis cannot be reached.
   */
  async isHeld(sessionId: string): Promise<boolean> {
    try {
      return Number(await this.script(HELD, [this.busyKey(sessionId)], [])) === 1;
    } catch (error) {
      throw new AgentSessionsError(
        ErrorCode.STORE_UNAVAILABLE,
        `the redis busy lock could not read the lease of session ${sessionId}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }

  /** The lease this instance holds on the session, if any. */
  held(sessionId: string): RedisLease | undefined {
    return this.#held.get(sessionId);
  }

  /**
   * The store with fenced writes: `appendItems`, `updateSession` and `updateMessage` of a session
   * whose lease this instance holds reject with {@link LeaseLostError} (writing nothing) once the
   * lease is lost. Writes of sessions this instance holds no lease on (creates, renames outside a
   * turn) pass unchecked. The manager applies it to its store when given this lock.
   *
   * A {@link FencingStore} is also given each held lease's token with every write (it refuses the
   * write itself once it saw a greater token) and has its fence raised on every acquire.
   */
  fenceStore(store: Store): Store {
    let inner = store;
    if (isFencingStore(store)) {
      this.#fencingStores.add(store);
      inner = store.withFencing((sessionId) => this.#held.get(sessionId)?.token);
    }
    return new FencedStore(inner, (sessionId) => this.#held.get(sessionId)?.assertValid());
  }

  /** @internal */
  forget(lease: Lease): void {
    if (this.#held.get(lease.sessionId) === lease) this.#held.delete(lease.sessionId);
  }

  /** @internal */
  busyKey(sessionId: string): string {
    return `${this.#prefix}busy:${sessionId}`;
  }

  #fenceKey(sessionId: string): string {
    return `${this.#prefix}fence:${sessionId}`;
  }

  /** @internal */
  script(script: string, keys: string[], values: string[]): Promise<unknown> {
    return this.#client.eval(script, { keys, arguments: values });
  }
}

/** A store whose writes are checked by `check` (which throws) before they are sent. */
class FencedStore implements Store {
  readonly name: string;
  readonly #store: Store;
  readonly #check: (sessionId: string) => void;

  constructor(store: Store, check: (sessionId: string) => void) {
    this.#store = store;
    this.#check = check;
    this.name = store.name;
    if (store.getSummary) this.getSummary = (id) => store.getSummary!(id);
  }

  getSummary?: (id: string) => Promise<SessionSummary>;

  createSession(session: Session): Promise<void> {
    return this.#store.createSession(session);
  }
  getSession(id: string): Promise<Session> {
    return this.#store.getSession(id);
  }
  listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    return this.#store.listSessions(options);
  }
  async updateSession(id: string, patch: SessionPatch): Promise<void> {
    this.#check(id);
    return this.#store.updateSession(id, patch);
  }
  async appendItems(id: string, items: SessionItem[]): Promise<void> {
    this.#check(id);
    return this.#store.appendItems(id, items);
  }
  async updateMessage(id: string, messageId: string, message: Message): Promise<void> {
    this.#check(id);
    return this.#store.updateMessage(id, messageId, message);
  }
  deleteSession(id: string): Promise<void> {
    return this.#store.deleteSession(id);
  }
  async close(): Promise<void> {
    await this.#store.close?.();
  }
}
