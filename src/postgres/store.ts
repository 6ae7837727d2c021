import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { InvalidArgumentError, SessionExistsError, StoreCorruptError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { type FencingStore, LeaseLostError } from '../manager/busy-lock.js';
import {
  applyPatch,
  countMessages,
  type Message,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
  toSummary,
} from '../schemas.js';
import { DEFAULT_LIST_LIMIT, type ListOptions, type Page, type Store } from '../store.js';
import { DefinedStore } from '../stores/define-store.js';
import type { FencingDriver, ListingDriver } from '../stores/driver.js';
import { decodeCursor, encodeCursor } from '../stores/paging.js';
import { PostgresEventLog, type PostgresEventLogOptions } from './event-log.js';
import { inTransaction, MIGRATIONS, migrate, quoteIdentifier } from './migrations.js';

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * A `pg` pool to use. The store does not end it on `close()`: it is yours. Without it the store
   * makes its own pool from {@link PostgresStoreOptions.connectionString} and
   * {@link PostgresStoreOptions.poolOptions}, and ends it on `close()`.
   */
  pool?: Pool;
  /** A connection string such as `postgres://user@127.0.0.1:5432/app`, for the store's own pool. */
  connectionString?: string;
  /**
   * More options of the store's own pool (`max`, `ssl`, …).
   * @default { max: 10, connectionTimeoutMillis: 10_000, application_name: 'agent-sessions' }
   */
  poolOptions?: PoolConfig;
  /**
   * The PostgreSQL schema that holds the store's tables; created when missing. Letters, digits and
   * `_`, not starting with a digit, at most 63 characters.
   * @default 'agent_sessions'
   */
  schema?: string;
  /** Where the store reports what it cannot throw (an idle pooled connection that broke). */
  logger?: Logger;
  /**
   * Declare a durable event log in the same schema ({@link PostgresStore.eventLog}), which a
   * `SessionManager` on this store then uses (see `docs/scaling.md`): `true`, or the options of
   * the {@link PostgresEventLog} (its pool and schema are the store's). Off by default: one process
   * keeps events in memory.
   */
  eventLog?: boolean | Omit<PostgresEventLogOptions, 'pool' | 'schema'>;
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

interface SessionRow {
  meta: string;
  updated_at: string;
  items: string | null;
}

interface SummaryRow {
  summary: string;
  updated_at: string;
  message_count: number;
}

/** The key a filter column holds for a value: its JSON encoding (exact, and U+0000 is safe). */
function filterKey(value: string | undefined): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** The stored columns of a session's metadata: everything but its items. */
function metaColumns(session: Session, summary: SessionSummary) {
  const { items: _items, ...meta } = session;
  return {
    meta: JSON.stringify(meta),
    summary: JSON.stringify(summary),
    updatedMs: Date.parse(summary.updatedAt),
    starred: summary.starred,
    ownerKey: filterKey(summary.owner),
    workingDirKey: filterKey(summary.workingDir),
  };
}

/** The columns of item rows, as parallel arrays for `unnest`. */
function itemColumns(items: readonly SessionItem[]): { keys: (string | null)[]; bodies: string[] } {
  return {
    keys: items.map((item) => (item.kind === 'message' ? JSON.stringify(item.message.id) : null)),
    bodies: items.map((item) => JSON.stringify(item)),
  };
}

/** A fenced write refused: the session's fence (`seen`) is greater than the write's token. */
function fencedOut(id: string, token: number, seen: number): LeaseLostError {
  return new LeaseLostError(id, token, {
    fencedBy: seen,
    message: `session ${id} is fenced at lease ${seen}: a write of the older lease ${token} was refused (its lease was lost)`,
  });
}

// The driver of PostgresStore. `defineStore` has validated and copied everything it is given and
// serialises the calls of one process per session; across processes, every write is one statement
// or one transaction that locks the session's row, so writes from several instances never interleave.
class PostgresDriver implements FencingDriver, ListingDriver {
  readonly name = 'postgres';
  readonly freshReads = true;
  readonly pool: Pool;
  readonly schema: string;
  readonly #ownsPool: boolean;
  readonly #logger: Logger;
  readonly #sessions: string;
  readonly #items: string;
  readonly #onPoolError: (error: Error) => void;
  #ready: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    const schema = options.schema ?? 'agent_sessions';
    if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
      throw new InvalidArgumentError(`invalid PostgreSQL schema name ${JSON.stringify(schema)}`, {
        issues: [
          { path: ['schema'], message: 'letters, digits and _, not starting with a digit, at most 63' },
        ],
      });
    }
    this.schema = schema;
    const quoted = quoteIdentifier(schema);
    this.#sessions = `${quoted}.sessions`;
    this.#items = `${quoted}.items`;
    this.#logger = options.logger ?? silentLogger;
    this.#ownsPool = options.pool === undefined;
    this.pool =
      options.pool ??
      new Pool({
        max: 10,
        connectionTimeoutMillis: 10_000,
        application_name: 'agent-sessions',
        ...(options.connectionString === undefined ? {} : { connectionString: options.connectionString }),
        ...options.poolOptions,
      });
    // An idle pooled connection that breaks (a restarted server, a killed backend) is reported
    // here; without a listener the pool's 'error' event would end the process. The pool drops
    // that connection and the next call opens a fresh one.
    this.#onPoolError = (error) => {
      this.#logger.warn('postgres store: an idle connection failed and was dropped', { error });
    };
    this.pool.on('error', this.#onPoolError);
  }

  /** Migrates the schema once; a failure is retried on the next call. */
  ready(): Promise<void> {
    if (!this.#ready) {
      const ready = migrate(() => this.pool.connect(), this.schema, MIGRATIONS).then(() => {});
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  async #query<Row extends object>(text: string, values: unknown[]): Promise<Row[]> {
    await this.ready();
    const result = await this.pool.query<Row & Record<string, unknown>>(text, values);
    return result.rows;
  }

  async #transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    await this.ready();
    const client = await this.pool.connect();
    // A checked-out client whose connection breaks emits 'error' besides failing its query; the
    // query's rejection is what reports it.
    const onError = (error: Error) => {
      this.#logger.debug('postgres store: a connection broke during a transaction', { error });
    };
    client.on('error', onError);
    let broken = false;
    try {
      return await inTransaction(client, () => work(client));
    } catch (error) {
      // Rolled back; the connection itself may be what failed, so it is not pooled again.
      broken = !(error instanceof StoreCorruptError);
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  #corrupt(id: string, what: string, cause?: unknown): StoreCorruptError {
    return new StoreCorruptError(`${this.#sessions}:${id}`, what, cause === undefined ? {} : { cause });
  }

  #summary(id: string, row: SummaryRow): SessionSummary {
    let summary: SessionSummary;
    try {
      summary = JSON.parse(row.summary) as SessionSummary;
    } catch (error) {
      throw this.#corrupt(id, 'the summary is not JSON', error);
    }
    summary.updatedAt = row.updated_at;
    summary.messageCount = row.message_count;
    return summary;
  }

  async read(id: string): Promise<Session | undefined> {
    // One statement, so the metadata and the items are of one snapshot.
    const rows = await this.#query<SessionRow>(
      `SELECT s.meta, s.updated_at,
        (SELECT string_agg(i.body, ',' ORDER BY i.position) FROM ${this.#items} i WHERE i.session_id = s.id) AS items
       FROM ${this.#sessions} s WHERE s.id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    let session: Session;
    try {
      session = JSON.parse(row.meta) as Session;
      session.items = JSON.parse(`[${row.items ?? ''}]`) as SessionItem[];
    } catch (error) {
      throw this.#corrupt(id, 'a stored record is not JSON', error);
    }
    session.updatedAt = row.updated_at;
    return session;
  }

  async readSummary(id: string): Promise<SessionSummary | undefined> {
    const rows = await this.#query<SummaryRow>(
      `SELECT summary, updated_at, message_count FROM ${this.#sessions} WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    return row && this.#summary(id, row);
  }

  async write(session: Session, summary: SessionSummary): Promise<void> {
    // Only ever a create (this driver writes incrementally): inserted only if the id is free, so
    // two instances creating one id concurrently get one session and one SESSION_EXISTS.
    const columns = metaColumns(session, summary);
    const { keys, bodies } = itemColumns(session.items);
    const rows = await this.#query<{ created: number }>(
      `WITH s AS (
         INSERT INTO ${this.#sessions}
           (id, meta, summary, updated_at, updated_ms, message_count, next_position, starred, owner_key, working_dir_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO NOTHING RETURNING id
       ), i AS (
         INSERT INTO ${this.#items} (session_id, position, message_key, body)
         SELECT s.id, t.ord - 1, t.message_key, t.body
         FROM s, unnest($11::text[], $12::text[]) WITH ORDINALITY AS t(message_key, body, ord)
       )
       SELECT count(*)::int AS created FROM s`,
      [
        session.id,
        columns.meta,
        columns.summary,
        summary.updatedAt,
        columns.updatedMs,
        summary.messageCount,
        session.items.length,
        columns.starred,
        columns.ownerKey,
        columns.workingDirKey,
        keys,
        bodies,
      ],
    );
    if (rows[0]?.created !== 1) throw new SessionExistsError(session.id);
  }

  async append(id: string, items: SessionItem[], updatedAt: string, fence?: number): Promise<boolean> {
    // One statement: the row update takes the session's row lock, checks and raises the fence and
    // hands out the positions, the insert uses them; both or neither are applied.
    const { keys, bodies } = itemColumns(items);
    const rows = await this.#query<{ found: number }>(
      `WITH s AS (
         UPDATE ${this.#sessions}
         SET next_position = next_position + $2::int, message_count = message_count + $3::int,
             updated_at = $4, updated_ms = $5, fence_token = GREATEST(fence_token, COALESCE($8::bigint, 0))
         WHERE id = $1 AND ($8::bigint IS NULL OR fence_token <= $8::bigint)
         RETURNING next_position - $2::int AS start
       ), i AS (
         INSERT INTO ${this.#items} (session_id, position, message_key, body)
         SELECT $1, s.start + t.ord - 1, t.message_key, t.body
         FROM s, unnest($6::text[], $7::text[]) WITH ORDINALITY AS t(message_key, body, ord)
       )
       SELECT count(*)::int AS found FROM s`,
      [id, items.length, countMessages(items), updatedAt, Date.parse(updatedAt), keys, bodies, fence ?? null],
    );
    if (rows[0]?.found === 1) return true;
    if (fence !== undefined) await this.#assertFence(id, fence);
    return false;
  }

  /**
   * Throws {@link LeaseLostError} when the session's fence is greater than `fence` (why a fenced
   * write matched no row); returns when the session is unknown or the fence allows it.
   */
  async #assertFence(id: string, fence: number): Promise<void> {
    const found = await this.#query<{ fence_token: string }>(
      `SELECT fence_token FROM ${this.#sessions} WHERE id = $1`,
      [id],
    );
    const seen = found[0] === undefined ? undefined : Number(found[0].fence_token);
    if (seen !== undefined && seen > fence) throw fencedOut(id, fence, seen);
  }

  async raiseFence(id: string, token: number): Promise<void> {
    // GREATEST: the fence never goes down; a result above `token` means a newer lease was seen.
    const rows = await this.#query<{ fence_token: string }>(
      `UPDATE ${this.#sessions} SET fence_token = GREATEST(fence_token, $2::bigint) WHERE id = $1
       RETURNING fence_token`,
      [id, token],
    );
    const seen = rows[0] === undefined ? undefined : Number(rows[0].fence_token);
    if (seen !== undefined && seen > token) throw fencedOut(id, token, seen);
  }

  async patch(id: string, patch: SessionPatch, updatedAt: string, fence?: number): Promise<boolean> {
    return this.#transaction(async (client) => {
      const found = await client.query<{ meta: string; message_count: number; fence_token: string }>(
        `SELECT meta, message_count, fence_token FROM ${this.#sessions} WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const row = found.rows[0];
      if (!row) return false;
      if (fence !== undefined) {
        if (Number(row.fence_token) > fence) throw fencedOut(id, fence, Number(row.fence_token));
        await client.query(`UPDATE ${this.#sessions} SET fence_token = $2 WHERE id = $1`, [id, fence]);
      }
      let session: Session;
      try {
        session = JSON.parse(row.meta) as Session;
      } catch (error) {
        throw this.#corrupt(id, 'the metadata is not JSON', error);
      }
      session.items = [];
      applyPatch(session, patch);
      session.updatedAt = updatedAt;
      const columns = metaColumns(session, toSummary(session, row.message_count));
      await client.query(
        `UPDATE ${this.#sessions}
         SET meta = $2, summary = $3, updated_at = $4, updated_ms = $5, starred = $6, owner_key = $7,
             working_dir_key = $8
         WHERE id = $1`,
        [
          id,
          columns.meta,
          columns.summary,
          updatedAt,
          columns.updatedMs,
          columns.starred,
          columns.ownerKey,
          columns.workingDirKey,
        ],
      );
      return true;
    });
  }

  async replaceMessage(
    id: string,
    messageId: string,
    message: Message,
    updatedAt: string,
    fence?: number,
  ): Promise<true | 'session' | 'message'> {
    return this.#transaction(async (client) => {
      const session = await client.query<{ fence_token: string }>(
        `SELECT fence_token FROM ${this.#sessions} WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const row = session.rows[0];
      if (!row) return 'session';
      if (fence !== undefined) {
        if (Number(row.fence_token) > fence) throw fencedOut(id, fence, Number(row.fence_token));
        await client.query(`UPDATE ${this.#sessions} SET fence_token = $2 WHERE id = $1`, [id, fence]);
      }
      const replaced = await client.query(
        `UPDATE ${this.#items} SET body = $3
         WHERE session_id = $1 AND position = (
           SELECT position FROM ${this.#items} WHERE session_id = $1 AND message_key = $2
           ORDER BY position LIMIT 1
         )`,
        [id, JSON.stringify(messageId), JSON.stringify({ kind: 'message', message } satisfies SessionItem)],
      );
      if (replaced.rowCount === 0) return 'message';
      await client.query(`UPDATE ${this.#sessions} SET updated_at = $2, updated_ms = $3 WHERE id = $1`, [
        id,
        updatedAt,
        Date.parse(updatedAt),
      ]);
      return true;
    });
  }

  async remove(id: string): Promise<boolean> {
    // Items go with the row (ON DELETE CASCADE), in the same statement.
    const rows = await this.#query<{ id: string }>(
      `DELETE FROM ${this.#sessions} WHERE id = $1 RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  async summaries(): Promise<Iterable<SessionSummary>> {
    const rows = await this.#query<SummaryRow & { id: string }>(
      `SELECT id, summary, updated_at, message_count FROM ${this.#sessions}`,
      [],
    );
    return rows.map((row) => this.#summary(row.id, row));
  }

  async list(options: ListOptions): Promise<Page<SessionSummary>> {
    // Filters and the cursor's position in SQL; each filter has an index in listing order, so a
    // page costs the same however many sessions and items there are.
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    const conditions: string[] = [];
    const values: unknown[] = [];
    const bind = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    if (options.owner !== undefined) conditions.push(`owner_key = ${bind(filterKey(options.owner))}`);
    if (options.workingDir !== undefined)
      conditions.push(`working_dir_key = ${bind(filterKey(options.workingDir))}`);
    if (options.starred !== undefined) conditions.push(`starred = ${bind(options.starred)}`);
    if (options.cursor !== undefined) {
      const after = decodeCursor(options.cursor);
      conditions.push(
        `(updated_ms, id) < (${bind(Date.parse(after.updatedAt))}::bigint, ${bind(after.id)}::text COLLATE "C")`,
      );
    }
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = await this.#query<SummaryRow & { id: string }>(
      `SELECT id, summary, updated_at, message_count FROM ${this.#sessions} ${where}
       ORDER BY updated_ms DESC, id DESC LIMIT ${bind(limit + 1)}`,
      values,
    );
    const sessions = rows.slice(0, limit).map((row) => this.#summary(row.id, row));
    const page: Page<SessionSummary> = { sessions };
    const last = sessions.at(-1);
    if (rows.length > limit && last) page.nextCursor = encodeCursor(last);
    return page;
  }

  async close(): Promise<void> {
    try {
      await this.#ready;
    } catch {
      // Never ready: nothing was written.
    }
    if (this.#ownsPool) await this.pool.end();
    this.pool.off('error', this.#onPoolError);
  }
}

/**
 * A {@link Store} in PostgreSQL (`agent-sessions/postgres`, on the `pg` package), for any number of
 * processes at once. A driver behind `defineStore`, so every rule of the Store contract holds.
 *
 * **Tables** (in {@link PostgresStoreOptions.schema}, created and migrated on the first call or
 * {@link PostgresStore.open}): `sessions` holds one row per session — its metadata and summary as
 * JSON text, and the columns listings filter and sort on, each with an index in listing order;
 * `items` holds one row per item, numbered per session. `schema_migrations` records the migrations
 * applied (see {@link MigrationError}).
 *
 * **Costs.** `appendItems` is one statement (the session row's update hands out the positions and
 * the items are inserted with it, atomically); `getSession` is one statement; `getSummary` and
 * listings read one row per session returned and never read items; a listing page is an index
 * range scan, whatever the filters and the cursor. `updateSession` and `updateMessage` are short
 * transactions that lock the session's row.
 *
 * **Several instances.** Writes to one session take its row lock, so writes from several
 * processes never interleave; a create of a taken id is refused by the primary key, also when two
 * instances race. `defineStore` serialises one process's calls per session on top.
 *
 * **Failures.** A refused or lost connection, a pool that cannot hand out a connection in time,
 * any server error: `STORE_UNAVAILABLE` with the `pg` error as `cause`. A transaction that failed
 * is rolled back and its connection discarded; the next call uses a fresh one. A stored record
 * that is not valid JSON is `STORE_CORRUPT` naming `<schema>.sessions:<id>`; it is never deleted.
 */
export class PostgresStore extends DefinedStore implements FencingStore {
  readonly #postgres: PostgresDriver;
  /** The durable event log the store declares, when `eventLog` was set; a manager on it uses it. */
  readonly eventLog: PostgresEventLog | undefined;

  constructor(options: PostgresStoreOptions = {}) {
    const driver = new PostgresDriver(options);
    super(driver);
    this.#postgres = driver;
    const eventLog = options.eventLog;
    this.eventLog =
      eventLog === undefined || eventLog === false
        ? undefined
        : new PostgresEventLog({
            ...(eventLog === true ? {} : eventLog),
            pool: driver.pool,
            schema: driver.schema,
          });
  }

  /** The schema that holds the store's tables. */
  get schema(): string {
    return this.#postgres.schema;
  }

  /** The pool the store queries through (its own, or the one it was given). */
  get pool(): Pool {
    return this.#postgres.pool;
  }

  /**
   * Records `token` as the fence of the session: from then on, writes of a fenced view
   * ({@link PostgresStore.withFencing}) carrying a smaller token are refused. Rejects with
   * `LeaseLostError` (`SESSION_BUSY`) when a greater token was recorded already; does nothing for
   * an unknown session. `RedisLeaseLock` calls it on every acquire.
   */
  raiseFence(sessionId: string, token: number): Promise<void> {
    return this.raiseFenceOf(sessionId, token);
  }

  /**
   * A view of this store whose writes of a session carry `tokenOf(sessionId)` when it is defined:
   * in the write's own statement or transaction, a write whose token is smaller than the session's
   * fence is refused with `LeaseLostError` (`SESSION_BUSY`) and writes nothing; otherwise the fence
   * becomes its token. Writes without a token are not checked. `RedisLeaseLock.fenceStore` uses it
   * with the token of the lease it holds on the session. Closing the view closes this store.
   */
  withFencing(tokenOf: (sessionId: string) => number | undefined): Store {
    return this.fencedView(tokenOf);
  }

  /**
   * Connects and migrates the schema now rather than on the first call. Idempotent. Rejects with
   * `STORE_UNAVAILABLE` when the server cannot be reached (a later call tries again) and with
   * {@link MigrationError} when a migration fails; `CLOSED` after `close()`.
   */
  async open(): Promise<void> {
    this.assertOpen();
    try {
      await this.#postgres.ready();
    } catch (error) {
      throw this.normalizeError(error, 'open');
    }
  }
}
