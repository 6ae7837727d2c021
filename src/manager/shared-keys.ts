/**
 * Follow-up idempotency keys shared by every instance, in a `Keyv` with a TTL (issue 14). The
 * manager's own per-session set (`IdempotencyKeys` in queues.ts) still decides first, synchronously,
 * between callers of one process; this decides between instances.
 *
 * A key is claimed by reading it (present: a duplicate), writing a claim of this call's own and
 * reading it back (another claim there: a duplicate). Keyv has no atomic set-if-absent, so two
 * instances that claim one key within the same round trip can both win: a key used on one instance
 * and later on another is delivered once, and a true simultaneous double claim is possible only
 * in that window. A failed delivery releases the key only if it still holds this call's claim.
 */
import type { Keyv } from 'keyv';
import { AgentSessionsError, ErrorCode } from '../errors.js';
import { newId } from '../internal/ids.js';

/** The idempotency keys of every session, shared through a Keyv. */
export class SharedIdempotencyKeys {
  readonly #keyv: Keyv;
  readonly #ttlMs: number;
  readonly #claims = new Map<string, string>();

  constructor(keyv: Keyv, ttlMs: number) {
    this.#keyv = keyv;
    this.#ttlMs = ttlMs;
  }

  #name(sessionId: string, key: string): string {
    return `agent-sessions:idempotency:${sessionId}:${key}`;
  }

  /** True when this call claimed `key` for the session; false when it was used already. */
  async claim(sessionId: string, key: string): Promise<boolean> {
    const name = this.#name(sessionId, key);
    const claim = newId('claim');
    try {
      if ((await this.#keyv.get(name)) !== undefined) return false;
      await this.#keyv.set(name, claim, this.#ttlMs);
      if ((await this.#keyv.get(name)) !== claim) return false;
    } catch (error) {
      throw unavailable('claim an idempotency key', error);
    }
    this.#claims.set(name, claim);
    return true;
  }

  /** Gives a claimed key back (its delivery failed), if it still holds this instance's claim. */
  async release(sessionId: string, key: string): Promise<void> {
    const name = this.#name(sessionId, key);
    const claim = this.#claims.get(name);
    if (claim === undefined) return;
    this.#claims.delete(name);
    if ((await this.#keyv.get(name)) === claim) await this.#keyv.delete(name);
  }

  /** Forgets this instance's record of a delivered key's claim (the key itself stays until its TTL). */
  delivered(sessionId: string, key: string): void {
    this.#claims.delete(this.#name(sessionId, key));
  }
}

function unavailable(what: string, error: unknown): AgentSessionsError {
  const detail = error instanceof Error ? error.message : String(error);
  return new AgentSessionsError(ErrorCode.STORE_UNAVAILABLE, `could not ${what}: ${detail}`, {
    cause: error,
  });
}
