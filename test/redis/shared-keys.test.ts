// Follow-up idempotency keys shared through Redis with Keyv's own adapter (@keyv/redis).
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { createClient } from 'redis';
import { afterEach, describe, expect, test } from 'vitest';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { probeRedis, REDIS_URL, uniqueName, whenServer } from '../helpers/servers.js';

const probe = await probeRedis();
const namespaces: string[] = [];
const keyvs: Keyv[] = [];

afterEach(async () => {
  for (const keyv of keyvs.splice(0)) await keyv.disconnect().catch(() => {});
  if (!probe.available) return;
  const admin = createClient({ url: REDIS_URL });
  admin.on('error', () => {});
  await admin.connect();
  for (const namespace of namespaces.splice(0)) {
    const keys = await admin.keys(`${namespace}*`);
    if (keys.length > 0) await admin.del(keys);
  }
  await admin.close();
});

function redisKeyv(namespace: string): Keyv {
  const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace });
  keyv.on('error', () => {});
  keyvs.push(keyv);
  return keyv;
}

whenServer(probe, 'shared idempotency keys on Redis', () => {
  describe('idempotencyStore: a Keyv on Redis (@keyv/redis)', () => {
    test('a follow-up key used on one instance is a duplicate on another, across connections, and expires with its TTL', async () => {
      const namespace = uniqueName('keys');
      namespaces.push(namespace);
      const store = new MemoryStore();
      const instances = [0, 1].map(() => {
        const scripted = new ScriptedRuntime();
        const manager = new SessionManager({
          runtime: scripted.factory,
          store,
          idempotencyStore: redisKeyv(namespace),
          idempotencyKeyTtlMs: 60_000,
        });
        return { scripted, manager };
      });
      const [first, second] = instances as [(typeof instances)[0], (typeof instances)[0]];
      const session = await first.manager.createSession();
      first.scripted.turn([step.reply('ok')]);
      expect((await first.manager.followUpSession(session.id, ['x'], { idempotencyKey: 'k' })).status).toBe(
        'started',
      );
      await first.manager.waitStopped(session.id, { timeoutMs: 5000 });
      expect((await second.manager.followUpSession(session.id, ['x'], { idempotencyKey: 'k' })).status).toBe(
        'duplicate',
      );
      const admin = createClient({ url: REDIS_URL });
      admin.on('error', () => {});
      await admin.connect();
      const keys = await admin.keys(`${namespace}*`);
      expect(keys).toHaveLength(1);
      const ttl = await admin.pTTL(keys[0]!);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
      await admin.close();
      expect(second.scripted.turns).toHaveLength(0);
      await Promise.all([first.manager.close(), second.manager.close()]);
    });
  });
});
