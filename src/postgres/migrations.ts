// The PostgresStore's schema and how it gets there: a list of numbered migrations, applied in order,
// each in its own transaction under an advisory lock, recorded in `<schema>.schema_migrations`.
//
// Rules every migration here follows (and every later one must):
// - it only adds (tables, columns, indexes) or changes data in place: nothing here drops or
//   truncates stored sessions, and no failure leads to a reset;
// - it is written so that running it twice changes nothing (`IF NOT EXISTS`), and the runner
//   records it in the same transaction, so a crash in the middle leaves it unapplied and whole;
// - its number never changes once released; a new change is a new number.
//
// A failed migration rolls back and the store rejects every call with `MigrationError` naming the
// version, until the cause is fixed; a database migrated by a newer version of this library (a
// version this code does not know) is refused the same way rather than written with an old schema.

import type { PoolClient } from 'pg';
import { AgentSessionsError, type AgentSessionsErrorOptions, ErrorCode } from '../errors.js';

/** One step of the schema. */
export interface Migration {
  /** Its number: 1, 2, 3… in order, never reused. */
  readonly version: number;
  /** What it does, stored with it. */
  readonly description: string;
  /** Its SQL statements; `{schema}` is replaced by the quoted schema name. */
  readonly statements: readonly string[];
}

// Stored JSON is `text`, not `jsonb`: jsonb cannot hold U+0000 (which a session may contain), and
// text keeps every record byte for byte as the driver wrote it. Columns that are filtered or
// sorted on are kept beside it: `owner_key` and `working_dir_key` hold the JSON encoding of the
// value (so U+0000 is fine and equality is exact), `updated_ms` the instant of `updated_at`.
// Ids use the "C" collation so `ORDER BY id` is the code-unit order of the Store contract.
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'sessions and items',
    statements: [
      `CREATE TABLE IF NOT EXISTS {schema}.sessions (
        id text COLLATE "C" PRIMARY KEY,
        meta text NOT NULL,
        summary text NOT NULL,
        updated_at text NOT NULL,
        updated_ms bigint NOT NULL,
        message_count integer NOT NULL,
        next_position integer NOT NULL,
        starred boolean NOT NULL,
        owner_key text,
        working_dir_key text
      )`,
      `CREATE INDEX IF NOT EXISTS sessions_listing ON {schema}.sessions (updated_ms DESC, id DESC)`,
      `CREATE INDEX IF NOT EXISTS sessions_owner_listing ON {schema}.sessions (owner_key, updated_ms DESC, id DESC) WHERE owner_key IS NOT NULL`,
      `CREATE INDEX IF NOT EXISTS sessions_working_dir_listing ON {schema}.sessions (working_dir_key, updated_ms DESC, id DESC) WHERE working_dir_key IS NOT NULL`,
      `CREATE INDEX IF NOT EXISTS sessions_starred_listing ON {schema}.sessions (starred, updated_ms DESC, id DESC)`,
      `CREATE TABLE IF NOT EXISTS {schema}.items (
        session_id text COLLATE "C" NOT NULL REFERENCES {schema}.sessions (id) ON DELETE CASCADE,
        position integer NOT NULL,
        message_key text,
        body text NOT NULL,
        PRIMARY KEY (session_id, position)
      )`,
      `CREATE INDEX IF NOT EXISTS items_message ON {schema}.items (session_id, message_key) WHERE message_key IS NOT NULL`,
    ],
  },
  {
    version: 2,
    description: 'durable session events',
    statements: [
      // Not tied to sessions by a foreign key: events are written beside the turn, and a session's
      // events outlive nothing (deleteSession of the store does not know them; retention does).
      `CREATE TABLE IF NOT EXISTS {schema}.events (
        session_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (session_id, seq)
      )`,
    ],
  },
  {
    version: 3,
    description: 'fencing tokens of busy leases',
    statements: [
      // The greatest fencing token a write of the session carried (0: none yet). Added with a
      // default, so existing rows are kept as they are and every token is greater.
      `ALTER TABLE {schema}.sessions ADD COLUMN IF NOT EXISTS fence_token bigint NOT NULL DEFAULT 0`,
    ],
  },
];

const migrationErrorBrand = Symbol.for('agent-sessions.error.MigrationError');

/**
 * `STORE_UNAVAILABLE`: the database schema could not be brought to the version this library needs.
 * `version` names the migration that failed (or the newer version found in the database). Nothing
 * was dropped or reset: the failed migration was rolled back whole; fix its `cause` and open again.
 */
export class MigrationError extends AgentSessionsError {
  /** The migration that failed, or the unknown newer version the database is at. */
  readonly version: number;
  constructor(version: number, message: string, options: AgentSessionsErrorOptions = {}) {
    super(ErrorCode.STORE_UNAVAILABLE, message, options);
    if (new.target === MigrationError) this.name = 'MigrationError';
    this.version = version;
    Object.defineProperty(this, migrationErrorBrand, { value: true });
  }

  /** True for a {@link MigrationError} from either build. */
  static override isInstance(error: unknown): error is MigrationError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[migrationErrorBrand] === true
    );
  }
}

/** A schema name as an SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The advisory lock key of a schema's migrations: one per schema, shared by every instance. */
function lockKey(schema: string): string {
  return `agent-sessions:migrate:${schema}`;
}

/**
 * Brings `schema` to the last of `migrations`: creates the schema and the migrations table if
 * needed, then applies each missing migration in its own transaction, holding a transaction-level
 * advisory lock so that instances starting together apply each migration once. Returns the
 * versions it applied.
 */
export async function migrate(
  connect: () => Promise<PoolClient>,
  schema: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  const quoted = quoteIdentifier(schema);
  const known = migrations.at(-1)?.version ?? 0;
  const client = await connect();
  const ignore = () => {}; // a broken connection also fails the query in flight, which reports it
  client.on('error', ignore);
  const applied: number[] = [];
  let broken = false;
  try {
    await inTransaction(client, async () => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey(schema)]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${quoted}.schema_migrations (
          version integer PRIMARY KEY,
          description text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`,
      );
    }).catch((error: unknown) => {
      throw new MigrationError(0, `could not prepare schema ${quoted} for migrations`, { cause: error });
    });
    for (const migration of migrations) {
      const done = await inTransaction(client, async () => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey(schema)]);
        const newest = await currentVersion(client, quoted);
        if (newest > known) {
          throw new MigrationError(
            newest,
            `schema ${quoted} is at version ${newest}, newer than this library knows (${known}): upgrade agent-sessions`,
          );
        }
        const found = await client.query(`SELECT 1 FROM ${quoted}.schema_migrations WHERE version = $1`, [
          migration.version,
        ]);
        if (found.rowCount !== 0) return false;
        for (const statement of migration.statements) {
          await client.query(statement.replaceAll('{schema}', quoted));
        }
        await client.query(`INSERT INTO ${quoted}.schema_migrations (version, description) VALUES ($1, $2)`, [
          migration.version,
          migration.description,
        ]);
        return true;
      }).catch((error: unknown) => {
        if (MigrationError.isInstance(error)) throw error;
        const detail = error instanceof Error ? error.message : String(error);
        throw new MigrationError(
          migration.version,
          `migration ${migration.version} (${migration.description}) of schema ${quoted} failed and was rolled back: ${detail}`,
          { cause: error },
        );
      });
      if (done) applied.push(migration.version);
    }
    return applied;
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    // A client whose transaction failed may be on a broken connection: destroyed, not pooled.
    client.off('error', ignore);
    client.release(broken);
  }
}

async function currentVersion(client: PoolClient, quoted: string): Promise<number> {
  const result = await client.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM ${quoted}.schema_migrations`,
  );
  return result.rows[0]?.version ?? 0;
}

/** Runs `work` between BEGIN and COMMIT on `client`, rolling back when it throws. */
export async function inTransaction<T>(client: PoolClient, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
