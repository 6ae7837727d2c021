// RedisLeaseLock against a real Redis: one holder per session across instances, fencing tokens,
// expiry, a lost lease noticed and fenced off, and two SessionManagers sharing it.
import { createClient } from 'redis';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { TurnStream } from '../../src/manager/types.js';
import { LeaseLostError, type RedisLease, RedisLeaseLock } from '../../src/redis/lease-lock.js';
import type { Session } from '../../src/schemas.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { probeRedis, REDIS_URL, uniqueName, whenServer } from '../helpers/servers.js';
import { sessionRecord } from '../helpers/sessions.js';

type Client = ReturnType<typeof createClient>;
const probe = await probeRedis();
const clients: Client[] = [];
const prefixes: string[] = [];

async function connect(): Promise<Client> {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  return client;
}

function prefix(): string {
  const value = `${uniqueName('test')}:`;
  prefixes.push(value);
  return value;
}

afterEach(async () => {
  if (!probe.available) return;
  const admin = await connect();
  for (const value of prefixes.splice(0)) {
    const keys = await admin.keys(`${value}*`);
    if (keys.length > 0) await admin.del(keys);
  }
  for (const client of clients.splice(0)) if (client.isOpen) await client.close().catch(() => {});
});
afterAll(async () => {
  for (const client of clients.splice(0)) if (client.isOpen) await client.close().catch(() => {});
});

/** Resolves when `signal` aborts (bounded by the test timeout). */
function aborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true }),
  );
}

/** Calls `attempt` until it returns a value (the condition, not a guessed delay, ends the wait). */
async function eventually<T>(attempt: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const userContents = (session: Session) =>
  session.items.flatMap((item) =>
    item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
  );

whenServer(probe, 'RedisLeaseLock suites', () => {
  describe('RedisLeaseLock', () => {
    test('isHeld: true on every instance while any holds the session, false once released', async () => {
      const keys = prefix();
      const holder = new RedisLeaseLock({ client: await connect(), prefix: keys });
      const other = new RedisLeaseLock({ client: await connect(), prefix: keys });
      expect(await other.isHeld('s1')).toBe(false);
      const lease = await holder.acquire('s1');
      expect(await other.isHeld('s1')).toBe(true);
      expect(await other.isHeld('s2')).toBe(false);
      await lease!.release();
      expect(await other.isHeld('s1')).toBe(false);
    });

    test('acquire: one holder across two locks; each later lease has a greater fencing token', async () => {
      const keys = prefix();
      const first = new RedisLeaseLock({ client: await connect(), prefix: keys });
      const second = new RedisLeaseLock({ client: await connect(), prefix: keys });
      const lease = (await first.acquire('s1'))!;
      expect(lease.token).toBeGreaterThan(0);
      expect(await second.acquire('s1')).toBeUndefined();
      expect(await first.acquire('s1')).toBeUndefined();
      const other = (await second.acquire('s2'))!;
      expect(other).toBeDefined();
      await lease.release();
      await lease.release();
      const next = (await second.acquire('s1'))!;
      expect(next.token).toBeGreaterThan(lease.token);
      await Promise.all([next.release(), other.release()]);
    });

    test('concurrent acquires from three locks: exactly one lease', async () => {
      const keys = prefix();
      const locks = await Promise.all(
        [0, 1, 2].map(async () => new RedisLeaseLock({ client: await connect(), prefix: keys })),
      );
      const leases = await Promise.all(
        Array.from({ length: 60 }, (_, index) => locks[index % 3]!.acquire('contended')),
      );
      const held = leases.filter((lease) => lease !== undefined);
      expect(held).toHaveLength(1);
      await held[0]!.release();
    });

    test('a lease whose holder stopped renewing expires and another instance gets the session with a greater token', async () => {
      const keys = prefix();
      const dying = await connect();
      const first = new RedisLeaseLock({ client: dying, prefix: keys, ttlMs: 300, renewEveryMs: 100 });
      const second = new RedisLeaseLock({ client: await connect(), prefix: keys, ttlMs: 300 });
      const lease = (await first.acquire('s'))!;
      // The holder's connection dies (its process is gone): no more renewals.
      dying.destroy();
      expect(await second.acquire('s')).toBeUndefined();
      const next = await eventually(() => second.acquire('s'));
      expect(next.token).toBeGreaterThan(lease.token);
      // The old holder notices by its own clock, without Redis.
      await aborted(lease.lost);
      expect(lease.valid).toBe(false);
      await next.release();
    });

    test('a lease taken over is noticed as lost, and releasing it does not free the new holder', async () => {
      const keys = prefix();
      const admin = await connect();
      const first = new RedisLeaseLock({
        client: await connect(),
        prefix: keys,
        ttlMs: 3000,
        renewEveryMs: 50,
      });
      const second = new RedisLeaseLock({ client: await connect(), prefix: keys });
      const lease = (await first.acquire('s'))!;
      // As if it expired (a long pause of the holder): the key goes, another instance takes it.
      await admin.del(`${keys}busy:s`);
      const next = (await second.acquire('s'))!;
      const reason = await aborted(lease.lost);
      expect(LeaseLostError.isInstance(reason)).toBe(true);
      expect(reason).toMatchObject({ code: ErrorCode.SESSION_BUSY, token: lease.token });
      await lease.release();
      expect(await first.acquire('s')).toBeUndefined();
      await next.release();
      expect(await first.acquire('s')).toBeDefined();
    });

    test('fenceStore: writes of a session whose lease was lost reject with LeaseLostError and write nothing', async () => {
      const keys = prefix();
      const admin = await connect();
      const lock = new RedisLeaseLock({
        client: await connect(),
        prefix: keys,
        ttlMs: 3000,
        renewEveryMs: 50,
      });
      const store = lock.fenceStore(new MemoryStore());
      await store.createSession(sessionRecord('s'));
      await store.createSession(sessionRecord('free'));
      const lease = (await lock.acquire('s')) as RedisLease;
      const item = { kind: 'error' as const, id: 'e1', message: 'x', createdAt: new Date().toISOString() };
      await store.appendItems('s', [item]);
      await admin.del(`${keys}busy:s`);
      await aborted(lease.lost);
      for (const write of [
        () => store.appendItems('s', [{ ...item, id: 'e2' }]),
        () => store.updateSession('s', { title: 'late' }),
        () =>
          store.updateMessage('s', 'm', { id: 'm', role: 'user', content: 'x', createdAt: item.createdAt }),
      ]) {
        const error = await write().catch((caught: unknown) => caught);
        expect(LeaseLostError.isInstance(error)).toBe(true);
      }
      const session = await store.getSession('s');
      expect(session.items.map((entry) => (entry.kind === 'error' ? entry.id : ''))).toEqual(['e1']);
      expect(session.title).toBe('');
      // Sessions this instance holds no lease on are not fenced.
      await store.updateSession('free', { title: 'renamed' });
      expect((await store.getSession('free')).title).toBe('renamed');
      await lease.release();
    });

    test('acquire rejects with STORE_UNAVAILABLE when Redis is unreachable', async () => {
      const client = await connect();
      const lock = new RedisLeaseLock({ client, prefix: prefix() });
      await client.close();
      const error = await lock.acquire('s').catch((caught: unknown) => caught);
      expect(AgentSessionsError.hasCode(error, ErrorCode.STORE_UNAVAILABLE)).toBe(true);
    });
  });

  describe('SessionManager with busyLock: RedisLeaseLock (two instances, one shared store)', () => {
    async function instances(options: { ttlMs?: number; renewEveryMs?: number } = {}) {
      const keys = prefix();
      const store = new MemoryStore();
      const made = [];
      for (let index = 0; index < 2; index++) {
        const scripted = new ScriptedRuntime();
        const busyLock = new RedisLeaseLock({ client: await connect(), prefix: keys, ...options });
        made.push({
          scripted,
          busyLock,
          manager: new SessionManager({ runtime: scripted.factory, store, busyLock }),
        });
      }
      return { store, keys, first: made[0]!, second: made[1]! };
    }

    test('concurrent runSession calls spread over two managers: exactly one turn runs, the rest SESSION_BUSY', async () => {
      const { store, first, second } = await instances();
      const created = await first.manager.createSession();
      first.scripted.turn([step.hold('winner'), step.reply('done')]);
      second.scripted.turn([step.hold('winner'), step.reply('done')]);
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, index) =>
          (index % 2 === 0 ? first : second).manager.runSession(created.id, { messages: [`m${index}`] }),
        ),
      );
      const fulfilled = results.flatMap((result, index) =>
        result.status === 'fulfilled' ? [{ stream: result.value, index }] : [],
      );
      expect(fulfilled).toHaveLength(1);
      for (const result of results) {
        if (result.status === 'rejected')
          expect(result.reason).toMatchObject({ code: ErrorCode.SESSION_BUSY });
      }
      const winner = fulfilled[0]!;
      const running = winner.index % 2 === 0 ? first : second;
      await running.scripted.waitUntilHeld('winner');
      running.scripted.release('winner');
      for await (const _ of winner.stream as TurnStream) {
        // drain
      }
      expect(userContents(await store.getSession(created.id))).toEqual([`m${winner.index}`]);
      // The lease is released once the turn ended (a Redis round trip after \`done\`): then the other
      // instance runs the session.
      const idle = winner.index % 2 === 0 ? second : first;
      const next = await eventually(() =>
        idle.manager.runSession(created.id, { messages: ['next'] }).catch((error: unknown) => {
          if (AgentSessionsError.hasCode(error, ErrorCode.SESSION_BUSY)) return undefined;
          throw error;
        }),
      );
      await idle.scripted.waitUntilHeld('winner');
      idle.scripted.release('winner');
      expect((await next.done).stopReason).toBe('end_turn');
      expect(userContents(await store.getSession(created.id))).toEqual([`m${winner.index}`, 'next']);
      await Promise.all([first.manager.close(), second.manager.close()]);
    });

    test('a manager whose lease was lost cannot write: its turn is cancelled and nothing after the loss is stored', async () => {
      const { store, keys, first, second } = await instances({ ttlMs: 3000, renewEveryMs: 50 });
      const admin = await connect();
      const created = await first.manager.createSession();
      first.scripted.turn([step.hold('h'), step.reply('written after the loss')]);
      const stream = await first.manager.runSession(
        created.id,
        { messages: ['before'] },
        { onDetach: 'continue' },
      );
      await first.scripted.waitUntilHeld('h');
      const lease = first.busyLock.held(created.id)!;
      // The lease expires during a pause of the holder and another instance takes the session.
      await admin.del(`${keys}busy:${created.id}`);
      const taken = (await second.busyLock.acquire(created.id))!;
      expect(taken.token).toBeGreaterThan(lease.token);
      await aborted(lease.lost);
      // Losing the lease cancelled the turn (its hold was given up with it).
      const result = await stream.done;
      expect(result.stopReason).toBe('cancelled');
      const stored = await store.getSession(created.id);
      expect(userContents(stored)).toEqual(['before']);
      expect(JSON.stringify(stored.items)).not.toContain('written after the loss');
      await taken.release();
      await Promise.all([first.manager.close(), second.manager.close()]);
    });
  });
});
