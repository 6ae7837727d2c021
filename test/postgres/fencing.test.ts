// Fencing tokens checked by PostgresStore itself (issue 14, item 2): a writer whose lease was lost
// cannot write even when it was paused between the lock's local check and the write reaching the
// database. Two writers (two stores, two RedisLeaseLocks, as two instances) and a paused one.
import pg from 'pg';
import { createClient } from 'redis';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { isFencingStore, LeaseLostError } from '../../src/manager/busy-lock.js';
import { MIGRATIONS, migrate } from '../../src/postgres/migrations.js';
import { PostgresStore } from '../../src/postgres/store.js';
import { RedisLeaseLock } from '../../src/redis/lease-lock.js';
import type { SessionItem } from '../../src/schemas.js';
import { MemoryStore } from '../../src/stores/memory.js';
import {
  DATABASE_URL,
  probePostgres,
  probeRedis,
  REDIS_URL,
  uniqueName,
  whenServer,
} from '../helpers/servers.js';
import { sessionRecord } from '../helpers/sessions.js';

const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
admin.on('error', () => {});
const schemas: string[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
});
afterAll(() => admin.end());

function schema(): string {
  const name = uniqueName('fence');
  schemas.push(name);
  return name;
}

function store(name: string, pool?: pg.Pool): PostgresStore {
  const made = new PostgresStore({
    schema: name,
    ...(pool === undefined ? { connectionString: DATABASE_URL, poolOptions: { max: 3 } } : { pool }),
  });
  closers.push(() => made.close());
  return made;
}

function item(id: string): SessionItem {
  return { kind: 'error', id, message: id, createdAt: new Date().toISOString() };
}

const ids = (items: readonly SessionItem[]) => items.map((entry) => (entry.kind === 'error' ? entry.id : ''));

async function fenceOf(name: string, id: string): Promise<number> {
  const rows = await admin.query(`SELECT fence_token FROM "${name}".sessions WHERE id = $1`, [id]);
  return Number(rows.rows[0].fence_token);
}

whenServer(postgres, 'PostgresStore fencing tokens', () => {
  describe('PostgresStore fencing tokens', () => {
    test('is a FencingStore; MemoryStore is not', () => {
      expect(isFencingStore(new PostgresStore({ schema: 'unused' }))).toBe(true);
      expect(isFencingStore(new MemoryStore())).toBe(false);
    });

    test('writes carrying a token older than the fence reject with LeaseLostError and write nothing; newer and untokened writes pass', async () => {
      const name = schema();
      const base = store(name);
      await base.createSession(sessionRecord('s', { title: 'kept' }));
      await base.appendItems('s', [
        {
          kind: 'message',
          message: { id: 'm', role: 'user', content: 'hi', createdAt: new Date().toISOString() },
        },
      ]);
      let token = 1;
      const fenced = base.withFencing((id) => (id === 's' ? token : undefined));
      await fenced.appendItems('s', [item('a')]);
      expect(await fenceOf(name, 's')).toBe(1);
      await base.raiseFence('s', 5);
      const before = await base.getSession('s');
      for (const write of [
        () => fenced.appendItems('s', [item('late')]),
        () => fenced.updateSession('s', { title: 'late' }),
        () =>
          fenced.updateMessage('s', 'm', {
            id: 'm',
            role: 'user',
            content: 'late',
            createdAt: before.createdAt,
          }),
      ]) {
        const error = await write().catch((caught: unknown) => caught);
        expect(LeaseLostError.isInstance(error), String(error)).toBe(true);
        expect(error).toMatchObject({ code: ErrorCode.SESSION_BUSY, sessionId: 's', token: 1 });
      }
      expect(await base.getSession('s')).toEqual(before);
      // A raise to an older token is refused too, and the fence never goes down.
      await expect(base.raiseFence('s', 3)).rejects.toMatchObject({ code: ErrorCode.SESSION_BUSY, token: 3 });
      expect(await fenceOf(name, 's')).toBe(5);
      token = 6;
      await fenced.appendItems('s', [item('b')]);
      await fenced.updateSession('s', { title: 'newer' });
      expect(await fenceOf(name, 's')).toBe(6);
      await base.updateSession('s', { starred: true });
      const after = await base.getSession('s');
      expect(ids(after.items.slice(1))).toEqual(['a', 'b']);
      expect(after).toMatchObject({ title: 'newer', starred: true });
      // Unknown sessions: a raise does nothing, a fenced write is SESSION_NOT_FOUND.
      await base.raiseFence('nope', 9);
      await expect(fenced.appendItems('nope', [item('x')])).rejects.toMatchObject({
        code: ErrorCode.SESSION_NOT_FOUND,
      });
    });

    test('migration 3 adds the fence to a database at version 2 and keeps its sessions', async () => {
      const name = schema();
      await migrate(() => admin.connect(), name, MIGRATIONS.slice(0, 2));
      const columns = await admin.query(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'sessions' AND column_name = 'fence_token'`,
        [name],
      );
      expect(columns.rowCount).toBe(0);
      const { items: _items, ...meta } = sessionRecord('old', { title: 'from v2' });
      await admin.query(
        `INSERT INTO "${name}".sessions (id, meta, summary, updated_at, updated_ms, message_count, next_position, starred)
         VALUES ('old', $1, $2, $3, 0, 0, 0, false)`,
        [JSON.stringify(meta), JSON.stringify({ id: 'old', title: 'from v2' }), meta.updatedAt],
      );
      const upgraded = store(name);
      await upgraded.raiseFence('old', 2);
      expect(await fenceOf(name, 'old')).toBe(2);
      expect((await upgraded.getSession('old')).title).toBe('from v2');
      const versions = await admin.query(`SELECT version FROM "${name}".schema_migrations ORDER BY version`);
      expect(versions.rows.map((row) => row.version)).toEqual([1, 2, 3]);
    });
  });

  whenServer(redis, 'RedisLeaseLock with PostgresStore fencing', () => {
    describe('RedisLeaseLock + PostgresStore: two writers, one paused', () => {
      async function connect() {
        const client = createClient({ url: REDIS_URL });
        client.on('error', () => {});
        await client.connect();
        closers.push(() => client.close());
        return client;
      }

      test('a writer paused past its local lease check is refused by the store once another instance leased the session', async () => {
        const name = schema();
        const keys = `${uniqueName('fence')}:`;
        const redisAdmin = await connect();
        closers.push(async () => {
          const found = await redisAdmin.keys(`${keys}*`);
          if (found.length > 0) await redisAdmin.del(found);
        });
        // Instance A's pool can be paused: each query waits for `gate` before it is sent (the
        // process stalls between its lease check and the database, e.g. a long GC pause).
        const pausedPool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
        closers.push(() => pausedPool.end());
        let gate: Promise<void> | undefined;
        let reachedGate: () => void = () => {};
        const original = pausedPool.query.bind(pausedPool) as (...args: unknown[]) => Promise<unknown>;
        (pausedPool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (
          ...args: unknown[]
        ) => {
          if (gate !== undefined) {
            reachedGate();
            await gate;
          }
          return original(...args);
        };
        const lockA = new RedisLeaseLock({ client: await connect(), prefix: keys, ttlMs: 10_000 });
        const lockB = new RedisLeaseLock({ client: await connect(), prefix: keys, ttlMs: 10_000 });
        const storeA = lockA.fenceStore(store(name, pausedPool));
        const storeB = lockB.fenceStore(store(name));
        await storeA.createSession(sessionRecord('s'));
        const leaseA = (await lockA.acquire('s'))!;
        expect(await fenceOf(name, 's')).toBe(leaseA.token);
        await storeA.appendItems('s', [item('a1')]);

        let open: () => void = () => {};
        gate = new Promise((resolve) => {
          open = resolve;
        });
        const paused = new Promise<void>((resolve) => {
          reachedGate = resolve;
        });
        const late = storeA.appendItems('s', [item('a2-late')]).catch((caught: unknown) => caught);
        await paused;
        // A is past its local check (its lease was valid). Its lease now expires in Redis (the pause
        // outlasted the TTL) and instance B leases the session and writes.
        await redisAdmin.del(`${keys}busy:s`);
        const leaseB = (await lockB.acquire('s'))!;
        expect(leaseB.token).toBeGreaterThan(leaseA.token);
        expect(await fenceOf(name, 's')).toBe(leaseB.token);
        await storeB.appendItems('s', [item('b1')]);
        gate = undefined;
        open();
        const error = await late;
        expect(LeaseLostError.isInstance(error), String(error)).toBe(true);
        expect(error).toMatchObject({ code: ErrorCode.SESSION_BUSY, token: leaseA.token });
        expect(ids((await storeB.getSession('s')).items)).toEqual(['a1', 'b1']);
        await leaseA.release();
        await leaseB.release();
      });

      test('an acquire whose fence cannot be raised (the database is unreachable) rejects with STORE_UNAVAILABLE and releases the lease', async () => {
        const keys = `${uniqueName('fence')}:`;
        const redisAdmin = await connect();
        closers.push(async () => {
          const found = await redisAdmin.keys(`${keys}*`);
          if (found.length > 0) await redisAdmin.del(found);
        });
        const unreachable = new PostgresStore({
          connectionString: 'postgres://postgres@127.0.0.1:1/test',
          schema: uniqueName('unreachable'),
          poolOptions: { connectionTimeoutMillis: 2000 },
        });
        closers.push(() => unreachable.close());
        const lock = new RedisLeaseLock({ client: await connect(), prefix: keys });
        lock.fenceStore(unreachable);
        const error = await lock.acquire('s').catch((caught: unknown) => caught);
        expect(error).toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE });
        expect(lock.held('s')).toBeUndefined();
        // The lease was given back: another instance gets the session at once.
        const other = new RedisLeaseLock({ client: await connect(), prefix: keys });
        const lease = await other.acquire('s');
        expect(lease).toBeDefined();
        await lease!.release();
      });

      test('a store that saw a greater token than Redis (Redis lost its data) moves the counter past it', async () => {
        const name = schema();
        const keys = `${uniqueName('fence')}:`;
        const redisAdmin = await connect();
        closers.push(async () => {
          const found = await redisAdmin.keys(`${keys}*`);
          if (found.length > 0) await redisAdmin.del(found);
        });
        const lock = new RedisLeaseLock({ client: await connect(), prefix: keys });
        const fenced = lock.fenceStore(store(name));
        await fenced.createSession(sessionRecord('s'));
        const first = (await lock.acquire('s'))!;
        await first.release();
        await redisAdmin.del(`${keys}fence:s`);
        await admin.query(`UPDATE "${name}".sessions SET fence_token = 40 WHERE id = 's'`);
        const lease = (await lock.acquire('s'))!;
        expect(lease.token).toBe(41);
        await fenced.appendItems('s', [item('x')]);
        expect(await fenceOf(name, 's')).toBe(41);
        await lease.release();
      });
    });
  });
});
