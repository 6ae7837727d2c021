/**
 * A durable event log of sessions in PostgreSQL (`<schema>.events`, migration 2): a
 * {@link DurableEventLog} (contract in `src/durable-event-log.ts`). Hand it to every instance's
 * `SessionManager` as `eventLog`, or let `PostgresStore` declare it (`eventLog: true`).
 *
 * - **Numbering once**: a batch is one transaction that takes the session's advisory lock and
 *   refuses (`SESSION_BUSY`) a batch whose first seq is not after the stored last one;
 *   `(session_id, seq)` is the primary key besides.
 * - **Retention**: each append deletes the session's events more than `maxEvents` before its last
 *   one and those older than `maxAgeMs`, in the same transaction (never the session's last
 *   event); replay reports `dropped` when events after `since` are gone, so the caller sends a
 *   `gap`, never a wrong event.
 * - **Tail** by polling: a replay after the last seen seq every `pollIntervalMs` while nothing new
 *   comes (an append through this same object wakes its tails at once). Polling rather than
 *   `LISTEN/NOTIFY`: a listening connection per tail (or a shared one with its own reconnection)
 *   would cost more than it saves at the default interval; for low-latency remote subscribers use
 *   `RedisEventStream`, whose blocking reads need no polling.
 */
import type { Pool } from 'pg';
import { assertIncreasingSeqs, type DurableEventLog, type DurableTailOptions } from '../durable-event-log.js';
import { AgentSessionsError, ErrorCode, StoreCorruptError } from '../errors.js';
import type { SessionEvent } from '../events.js';
import { pollTail, TailWakers } from '../internal/poll-tail.js';
import { inTransaction, MIGRATIONS, migrate, quoteIdentifier } from './migrations.js';

/** Options of {@link PostgresEventLog}. */
export interface PostgresEventLogOptions {
  /** The pool to use (e.g. `PostgresStore.pool`); never ended by the log. */
  pool: Pool;
  /** The schema (migrated like the store's). @default 'agent_sessions' */
  schema?: string;
  /** Events kept per session. @default 10000 */
  maxEvents?: number;
  /** Events older than this are deleted on the session's next append. @default 86400000 (a day) */
  maxAgeMs?: number;
  /** How often a tail that found nothing new reads again. @default 100 */
  pollIntervalMs?: number;
}

/** What {@link PostgresEventLog.replay} read. */
export interface PostgresReplay {
  /** The retained events after `since`, in seq order. */
  events: SessionEvent[];
  /** True when events after `since` were deleted by retention already. */
  dropped: boolean;
}

/** Session events in PostgreSQL. See the module documentation. */
export class PostgresEventLog implements DurableEventLog {
  readonly #pool: Pool;
  readonly #schema: string;
  readonly #table: string;
  readonly #maxEvents: number;
  readonly #maxAgeMs: number;
  readonly #pollIntervalMs: number;
  /** Tails waiting in this process, per session: an append here wakes them. */
  readonly #wakers = new TailWakers();
  #ready: Promise<unknown> | undefined;

  constructor(options: PostgresEventLogOptions) {
    this.#pool = options.pool;
    this.#schema = options.schema ?? 'agent_sessions';
    this.#table = `${quoteIdentifier(this.#schema)}.events`;
    this.#maxEvents = options.maxEvents ?? 10_000;
    this.#maxAgeMs = options.maxAgeMs ?? 86_400_000;
    this.#pollIntervalMs = options.pollIntervalMs ?? 100;
  }

  async #migrated(): Promise<void> {
    this.#ready ??= migrate(() => this.#pool.connect(), this.#schema, MIGRATIONS).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    await this.#ready;
  }

  /**
   * Stores events (seqs increasing) in one transaction and applies retention. `SESSION_BUSY` when a
   * seq is stored already (nothing of the batch is); `STORE_UNAVAILABLE` for a database failure.
   */
  async append(sessionId: string, events: readonly SessionEvent[]): Promise<void> {
    if (events.length === 0) return;
    const batchLast = assertIncreasingSeqs(events);
    try {
      await this.#migrated();
      const client = await this.#pool.connect();
      const ignore = () => {};
      client.on('error', ignore);
      let broken = false;
      try {
        await inTransaction(client, async () => {
          // One appender per session at a time, so the check below and the insert are one step.
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${this.#table}:${sessionId}`]);
          const stored = await client.query<{ last: string | null }>(
            `SELECT max(seq)::text AS last FROM ${this.#table} WHERE session_id = $1`,
            [sessionId],
          );
          const last = Number(stored.rows[0]?.last ?? 0);
          if (events[0]!.seq <= last)
            throw Object.assign(new Error(`seq ${last} is stored`), { code: '23505' });
          await client.query(
            `INSERT INTO ${this.#table} (session_id, seq, body)
             SELECT $1, t.seq, t.body FROM unnest($2::bigint[], $3::text[]) AS t(seq, body)`,
            [sessionId, events.map((event) => event.seq), events.map((event) => JSON.stringify(event))],
          );
          await client.query(
            `DELETE FROM ${this.#table} WHERE session_id = $1 AND seq < $4::bigint
             AND (seq <= $2::bigint OR created_at < now() - make_interval(secs => $3::double precision))`,
            [sessionId, batchLast - this.#maxEvents, this.#maxAgeMs / 1000, batchLast],
          );
        });
      } catch (error) {
        broken = (error as { code?: string }).code !== '23505';
        throw error;
      } finally {
        client.off('error', ignore);
        client.release(broken);
      }
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new AgentSessionsError(
          ErrorCode.SESSION_BUSY,
          `the event log of session ${sessionId} already holds one of seqs ${events[0]!.seq}..${batchLast}`,
          { cause: error },
        );
      }
      throw unavailable('append events', error);
    }
    this.#wakers.wake(sessionId);
  }

  /** The greatest seq stored for the session; 0 when none. */
  async lastSeq(sessionId: string): Promise<number> {
    try {
      await this.#migrated();
      const result = await this.#pool.query<{ last: string | null }>(
        `SELECT max(seq)::text AS last FROM ${this.#table} WHERE session_id = $1`,
        [sessionId],
      );
      return Number(result.rows[0]?.last ?? 0);
    } catch (error) {
      throw unavailable('read the last seq', error);
    }
  }

  /** Removes the session's events. */
  async delete(sessionId: string): Promise<void> {
    try {
      await this.#migrated();
      await this.#pool.query(`DELETE FROM ${this.#table} WHERE session_id = $1`, [sessionId]);
    } catch (error) {
      throw unavailable('delete events', error);
    }
  }

  /** The events after `since`, then new ones, polled (see the module documentation). */
  tail(sessionId: string, since: number, options: DurableTailOptions = {}): AsyncGenerator<SessionEvent> {
    return pollTail((after, limit) => this.replay(sessionId, after, limit), since, {
      signal: options.signal,
      intervalMs: this.#pollIntervalMs,
      onWake: this.#wakers.onWake(sessionId),
    });
  }

  /** The retained events after `since` (0: from the start), at most `limit`. */
  async replay(sessionId: string, since = 0, limit = 1000): Promise<PostgresReplay> {
    try {
      await this.#migrated();
      const result = await this.#pool.query<{ body: string; oldest: string }>(
        `SELECT body, (SELECT min(seq) FROM ${this.#table} WHERE session_id = $1)::text AS oldest
         FROM ${this.#table} WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
        [sessionId, since, limit],
      );
      const events = result.rows.map((row) => parseEvent(row.body, `${this.#table}:${sessionId}`));
      let oldest = result.rows[0]?.oldest;
      if (oldest === undefined) {
        const found = await this.#pool.query<{ oldest: string | null }>(
          `SELECT min(seq)::text AS oldest FROM ${this.#table} WHERE session_id = $1`,
          [sessionId],
        );
        oldest = found.rows[0]?.oldest ?? undefined;
      }
      const dropped = oldest !== undefined && Number(oldest) > since + 1;
      return { events, dropped };
    } catch (error) {
      throw unavailable('replay events', error);
    }
  }
}

function unavailable(what: string, error: unknown): AgentSessionsError {
  if (AgentSessionsError.isInstance(error)) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new AgentSessionsError(
    ErrorCode.STORE_UNAVAILABLE,
    `the postgres event log could not ${what}: ${detail}`,
    {
      cause: error,
    },
  );
}

function parseEvent(body: string, where: string): SessionEvent {
  try {
    return JSON.parse(body) as SessionEvent;
  } catch (error) {
    throw new StoreCorruptError(where, 'an event is not JSON', { cause: error });
  }
}
