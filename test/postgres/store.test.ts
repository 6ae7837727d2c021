import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MIGRATIONS, MigrationError, migrate } from '../../src/postgres/migrations.js';
import { PostgresStore } from '../../src/postgres/store.js';
import type { Store } from '../../src/store.js';
import { describeStoreConformance } from '../../src/testing/conformance/index.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { DATABASE_URL, probePostgres, uniqueName, whenServer } from '../helpers/servers.js';
import { sessionRecord } from '../helpers/sessions.js';

const probe = await probePostgres();
// Drops the schemas the tests made (the store never drops anything itself).
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => {});
afterAll(() => admin.end());

async function dropSchema(schema: string): Promise<void> {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

function storeIn(schema: string, options: { max?: number } = {}): PostgresStore {
  return new PostgresStore({
    connectionString: DATABASE_URL,
    schema,
    poolOptions: { max: options.max ?? 4 },
  });
}

whenServer(probe, 'PostgresStore suites', () => {
  const schemas = new WeakMap<Store, string>();
  describeStoreConformance({
    test,
    describe,
    name: 'PostgresStore conformance',
    createStore: () => {
      const schema = uniqueName('conformance');
      const store = storeIn(schema);
      schemas.set(store, schema);
      return store;
    },
    reopenStore: async (store) => {
      const schema = schemas.get(store)!;
      await store.close?.();
      const reopened = storeIn(schema);
      schemas.set(reopened, schema);
      return reopened;
    },
    destroyStore: async (store) => {
      await store.close?.();
      await dropSchema(schemas.get(store)!);
    },
  });

  describe('PostgresStore', () => {
    test('opening migrates an empty schema once; a second store and a second open apply nothing', async () => {
      const schema = uniqueName('migrate');
      try {
        const first = storeIn(schema);
        const second = storeIn(schema);
        await Promise.all([first.open(), second.open()]);
        const rows = await admin.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
        expect(rows.rows.map((row) => row.version)).toEqual(MIGRATIONS.map((migration) => migration.version));
        const client = await admin.connect();
        await expect(migrate(async () => client, schema)).resolves.toEqual([]);
        await Promise.all([first.close(), second.close()]);
      } finally {
        await dropSchema(schema);
      }
    });

    test('a failed migration rejects with MigrationError naming its version, rolls back, and keeps every session', async () => {
      const schema = uniqueName('failing');
      try {
        const store = storeIn(schema);
        await store.createSession(sessionRecord('kept', { title: 'before the upgrade' }));
        await store.close();
        const broken = [
          ...MIGRATIONS,
          {
            version: MIGRATIONS.length + 1,
            description: 'a broken step',
            statements: [
              'ALTER TABLE {schema}.sessions ADD COLUMN IF NOT EXISTS half_done text',
              'SELECT no_such_function()',
            ],
          },
        ];
        const client = await admin.connect();
        const error = await migrate(async () => client, schema, broken).catch((caught: unknown) => caught);
        expect(MigrationError.isInstance(error)).toBe(true);
        expect(error).toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE, version: MIGRATIONS.length + 1 });
        expect((error as Error).message).toContain(`migration ${MIGRATIONS.length + 1}`);
        const columns = await admin.query(
          `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'half_done'`,
          [schema],
        );
        expect(columns.rowCount).toBe(0);
        const reopened = storeIn(schema);
        expect((await reopened.getSession('kept')).title).toBe('before the upgrade');
        await reopened.close();
      } finally {
        await dropSchema(schema);
      }
    });

    test('a schema migrated by a newer version is refused with MigrationError, not written', async () => {
      const schema = uniqueName('newer');
      try {
        const store = storeIn(schema);
        await store.open();
        await store.close();
        await admin.query(
          `INSERT INTO "${schema}".schema_migrations (version, description) VALUES (999, 'future')`,
        );
        const newer = storeIn(schema);
        const error = await newer.createSession(sessionRecord('x')).catch((caught: unknown) => caught);
        expect(MigrationError.isInstance(error)).toBe(true);
        expect(error).toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE, version: 999 });
        await newer.close();
        const count = await admin.query(`SELECT count(*)::int AS n FROM "${schema}".sessions`);
        expect(count.rows[0].n).toBe(0);
      } finally {
        await dropSchema(schema);
      }
    });

    test('an unreachable server is STORE_UNAVAILABLE with the connection error as cause', async () => {
      const store = new PostgresStore({
        connectionString: 'postgres://postgres@127.0.0.1:1/test',
        schema: uniqueName('unreachable'),
        poolOptions: { connectionTimeoutMillis: 2000 },
      });
      const error = await store.getSession('a').catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE });
      expect((error as Error).cause).toBeInstanceOf(Error);
      expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
      await store.close();
    });

    test('a connection killed mid-write is STORE_UNAVAILABLE, nothing half-written, and the store recovers', async () => {
      const schema = uniqueName('killed');
      const applicationName = uniqueName('victim');
      const store = new PostgresStore({
        connectionString: DATABASE_URL,
        schema,
        poolOptions: { max: 2, application_name: applicationName },
      });
      const blocker = await admin.connect();
      try {
        await store.createSession(sessionRecord('s', { title: 'before' }));
        // Hold the session's row so the store's write waits on it, then kill the store's backend.
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${schema}".sessions WHERE id = 's' FOR UPDATE`);
        const write = store.updateSession('s', { title: 'lost' }).catch((caught: unknown) => caught);
        let pid: number | undefined;
        while (pid === undefined) {
          const waiting = await admin.query(
            `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [applicationName],
          );
          pid = waiting.rows[0]?.pid;
        }
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        const error = await write;
        expect(error).toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE });
        expect(((error as Error).cause as { code?: string }).code).toBe('57P01');
        await blocker.query('ROLLBACK');
        // Every connection of the pool is gone too (idle ones are reported, not thrown).
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );
        expect((await store.getSession('s')).title).toBe('before');
        await store.updateSession('s', { title: 'after' });
        await store.appendItems('s', [
          {
            kind: 'message',
            message: { id: 'm1', role: 'user', content: 'hi', createdAt: new Date().toISOString() },
          },
        ]);
        const session = await store.getSession('s');
        expect(session.title).toBe('after');
        expect(session.items).toHaveLength(1);
      } finally {
        blocker.release();
        await store.close();
        await dropSchema(schema);
      }
    });

    test('two stores on one schema (two instances) see each other and one concurrent create wins', async () => {
      const schema = uniqueName('instances');
      const first = storeIn(schema);
      const second = storeIn(schema);
      try {
        const results = await Promise.allSettled([
          first.createSession(sessionRecord('shared', { title: 'first' })),
          second.createSession(sessionRecord('shared', { title: 'second' })),
        ]);
        expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        expect(results.find((result) => result.status === 'rejected')).toMatchObject({
          reason: { code: ErrorCode.SESSION_EXISTS },
        });
        const message = (id: string) => ({
          kind: 'message' as const,
          message: { id, role: 'user' as const, content: id, createdAt: new Date().toISOString() },
        });
        await Promise.all(
          Array.from({ length: 20 }, (_, index) =>
            (index % 2 === 0 ? first : second).appendItems('shared', [
              message(`a${index}`),
              message(`b${index}`),
            ]),
          ),
        );
        const items = (await first.getSession('shared')).items;
        expect(items).toHaveLength(40);
        for (let index = 0; index < items.length; index += 2) {
          const head = items[index]!;
          const tail = items[index + 1]!;
          expect(head.kind === 'message' && tail.kind === 'message').toBe(true);
          if (head.kind === 'message' && tail.kind === 'message') {
            expect(tail.message.id).toBe(head.message.id.replace('a', 'b'));
          }
        }
        expect((await second.getSummary('shared')).messageCount).toBe(40);
      } finally {
        await first.close();
        await second.close();
        await dropSchema(schema);
      }
    });

    test('a listing page does not read items: the plan of a filtered page with a cursor uses a listing index', async () => {
      const schema = uniqueName('plan');
      const store = storeIn(schema);
      try {
        await store.open();
        const plan = await admin.query(
          `EXPLAIN (FORMAT JSON) SELECT id FROM "${schema}".sessions WHERE owner_key = '"a"'
           AND (updated_ms, id) < (5::bigint, 'x'::text COLLATE "C") ORDER BY updated_ms DESC, id DESC LIMIT 11`,
        );
        const text = JSON.stringify(plan.rows[0]);
        expect(text).not.toContain('items');
        await admin.query(`SET enable_seqscan = off`);
        const indexed = await admin.query(
          `EXPLAIN (FORMAT JSON) SELECT id FROM "${schema}".sessions WHERE owner_key = '"a"'
           ORDER BY updated_ms DESC, id DESC LIMIT 11`,
        );
        await admin.query(`RESET enable_seqscan`);
        expect(JSON.stringify(indexed.rows[0])).toContain('sessions_owner_listing');
      } finally {
        await store.close();
        await dropSchema(schema);
      }
    });

    test('a record that is not JSON is STORE_CORRUPT naming the row, and is not deleted', async () => {
      const schema = uniqueName('corrupt');
      const store = storeIn(schema);
      try {
        await store.createSession(sessionRecord('bad'));
        await store.createSession(sessionRecord('good'));
        await admin.query(`UPDATE "${schema}".sessions SET meta = '{oops' WHERE id = 'bad'`);
        const error = await store.getSession('bad').catch((caught: unknown) => caught);
        expect(error).toMatchObject({ code: ErrorCode.STORE_CORRUPT });
        expect((error as { path: string }).path).toContain('bad');
        expect((await store.getSession('good')).id).toBe('good');
        const rows = await admin.query(`SELECT meta FROM "${schema}".sessions WHERE id = 'bad'`);
        expect(rows.rows[0].meta).toBe('{oops');
      } finally {
        await store.close();
        await dropSchema(schema);
      }
    });

    test('an invalid schema name is INVALID_ARGUMENT before any connection', () => {
      expect(() => new PostgresStore({ schema: 'bad"; DROP' })).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    });
  });
});

whenServer(probe, 'SessionManager on PostgresStore', () => {
  test('a connection killed while a turn writes: the turn ends with a typed store error, and the next turn runs', async () => {
    const schema = uniqueName('turn');
    const applicationName = uniqueName('turn_app');
    const store = new PostgresStore({
      connectionString: DATABASE_URL,
      schema,
      poolOptions: { max: 2, application_name: applicationName },
    });
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({ runtime: scripted.factory, store });
    const blocker = await admin.connect();
    try {
      const session = await manager.createSession();
      scripted.turn([step.hold('h'), step.reply('the answer')]);
      const stream = await manager.runSession(session.id, { messages: ['question'] });
      await scripted.waitUntilHeld('h');
      // The turn's next write waits on the session's row; its connection is then killed.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM "${schema}".sessions WHERE id = $1 FOR UPDATE`, [session.id]);
      scripted.release('h');
      let pid: number | undefined;
      while (pid === undefined) {
        const waiting = await admin.query(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [applicationName],
        );
        pid = waiting.rows[0]?.pid;
      }
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await blocker.query('ROLLBACK');
      const events: string[] = [];
      for await (const event of stream) events.push(event.type);
      const done = await stream.done;
      expect(done.stopReason).toBe('error');
      expect(done.error?.code).toBe(ErrorCode.STORE_UNAVAILABLE);
      scripted.turn([step.reply('second answer')]);
      const next = await manager.runSession(session.id, { messages: ['again'] });
      for await (const _ of next) {
        // drain
      }
      expect((await next.done).stopReason).toBe('end_turn');
      const stored = await store.getSession(session.id);
      const contents = stored.items.flatMap((item) =>
        item.kind === 'message' ? [item.message.content] : [],
      );
      expect(contents).toContain('question');
      expect(contents).toContain('second answer');
    } finally {
      blocker.release();
      await manager.close();
      await dropSchema(schema);
    }
  });
});
