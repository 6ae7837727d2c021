/**
 * A durable event log of sessions in PostgreSQL (`<schema>.events`, migration 2): the Postgres
 * form of the event-log capability of issue 14, standalone until the manager's event log (issue 10)
 * settles. Replay only: a live tail across instances goes through Redis (`RedisEventStream`).
 *
 * - **Numbering once**: `(session_id, seq)` is the primary key and a batch is one `INSERT`, so a
 *   batch holding a seq another instance stored is refused whole (`SESSION_BUSY`).
 * - **Retention**: each append deletes the session's events more than `maxEvents` before its last
 *   one and those older than `maxAgeMs`, in the same transaction; replay reports `dropped` when
 *   events after `since` are gone, so the caller sends a `gap`, never a wrong event.
 */
import type { Pool } from 'pg';
import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { SessionEvent } from '../events.js';
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
}

/** What {@link PostgresEventLog.replay} read. */
export interface PostgresReplay {
  /** The retained events after `since`, in seq order. */
  events: SessionEvent[];
  /** True when events after `since` were deleted by retention already. */
  dropped: boolean;
}

/** Session events in PostgreSQL. See the module documentation. */
export class PostgresEventLog {
  readonly #pool: Pool;
  readonly #schema: string;
  readonly #table: string;
  readonly #maxEvents: number;
  readonly #maxAgeMs: number;
  #ready: Promise<unknown> | undefined;

  constructor(options: PostgresEventLogOptions) {
    this.#pool = options.pool;
    this.#schema = options.schema ?? 'agent_sessions';
    this.#table = `${quoteIdentifier(this.#schema)}.events`;
    this.#maxEvents = options.maxEvents ?? 10_000;
    this.#maxAgeMs = options.maxAgeMs ?? 86_400_000;
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
    let previous = 0;
    for (const event of events) {
      if (!Number.isSafeInteger(event.seq) || event.seq <= previous) {
        throw new AgentSessionsError(
          ErrorCode.INVALID_ARGUMENT,
          'event seqs must be increasing integers from 1',
        );
      }
      previous = event.seq;
    }
    try {
      await this.#migrated();
      const client = await this.#pool.connect();
      const ignore = () => {};
      client.on('error', ignore);
      let broken = false;
      try {
        await inTransaction(client, async () => {
          await client.query(
            `INSERT INTO ${this.#table} (session_id, seq, body)
             SELECT $1, t.seq, t.body FROM unnest($2::bigint[], $3::text[]) AS t(seq, body)`,
            [sessionId, events.map((event) => event.seq), events.map((event) => JSON.stringify(event))],
          );
          await client.query(
            `DELETE FROM ${this.#table} WHERE session_id = $1
             AND (seq <= $2::bigint OR created_at < now() - make_interval(secs => $3::double precision))`,
            [sessionId, previous - this.#maxEvents, this.#maxAgeMs / 1000],
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
          `the event log of session ${sessionId} already holds one of seqs ${events[0]!.seq}..${previous}`,
          { cause: error },
        );
      }
      throw unavailable('append events', error);
    }
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
      const events = result.rows.map((row) => JSON.parse(row.body) as SessionEvent);
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
