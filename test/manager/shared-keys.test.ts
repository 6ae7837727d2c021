// Follow-up idempotency keys shared by instances through a Keyv (SessionManagerOptions
// idempotencyStore): a key used on one manager is a duplicate on another, a failed delivery gives
// it back, and the TTL ends it. Redis-backed Keyv: test/redis/shared-keys.test.ts.
import { Keyv } from 'keyv';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';

function twoInstances(keyv: Keyv, store = new FailingStore(new MemoryStore()), ttlMs?: number) {
  return [0, 1].map(() => {
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({
      runtime: scripted.factory,
      store,
      idempotencyStore: keyv,
      ...(ttlMs === undefined ? {} : { idempotencyKeyTtlMs: ttlMs }),
    });
    return { scripted, manager };
  }) as [
    { scripted: ScriptedRuntime; manager: SessionManager },
    { scripted: ScriptedRuntime; manager: SessionManager },
  ];
}

afterEach(() => {
  vi.useRealTimers();
});

describe('shared follow-up idempotency keys (idempotencyStore)', () => {
  test('a key used on one manager is a duplicate on another, and only the first is delivered', async () => {
    const [first, second] = twoInstances(new Keyv());
    const session = await first.manager.createSession();
    first.scripted.turn([step.reply('ok')]);
    expect(await first.manager.followUpSession(session.id, ['once'], { idempotencyKey: 'k1' })).toEqual({
      status: 'started',
    });
    await first.manager.waitStopped(session.id, { timeoutMs: 5000 });
    expect(await second.manager.followUpSession(session.id, ['once'], { idempotencyKey: 'k1' })).toEqual({
      status: 'duplicate',
    });
    expect(await first.manager.followUpSession(session.id, ['once'], { idempotencyKey: 'k1' })).toEqual({
      status: 'duplicate',
    });
    const users = (await second.manager.getSession(session.id)).items.filter(
      (item) => item.kind === 'message' && item.message.role === 'user',
    );
    expect(users).toHaveLength(1);
    expect(second.scripted.turns).toHaveLength(0);
    // Another session's key of the same name is its own.
    const other = await second.manager.createSession();
    second.scripted.turn([step.reply('ok')]);
    expect(await second.manager.followUpSession(other.id, ['x'], { idempotencyKey: 'k1' })).toEqual({
      status: 'started',
    });
    await second.manager.waitStopped(other.id, { timeoutMs: 5000 });
    await Promise.all([first.manager.close(), second.manager.close()]);
  });

  test('concurrent follow-ups with one key on two managers: one is delivered, every other is a duplicate', async () => {
    const [first, second] = twoInstances(new Keyv());
    const session = await first.manager.createSession();
    first.scripted.turn([step.reply('ok')]);
    second.scripted.turn([step.reply('ok')]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        (index < 10 ? first : second).manager.followUpSession(session.id, ['same'], { idempotencyKey: 'k' }),
      ),
    );
    expect(results.filter((result) => result.status !== 'duplicate')).toHaveLength(1);
    await Promise.all([
      first.manager.waitStopped(session.id, { timeoutMs: 5000 }),
      second.manager.waitStopped(session.id, { timeoutMs: 5000 }),
    ]);
    await Promise.all([first.manager.close(), second.manager.close()]);
  });

  test('a delivery that fails gives the key back on every instance', async () => {
    const store = new FailingStore(new MemoryStore());
    const [first, second] = twoInstances(new Keyv(), store);
    const session = await first.manager.createSession();
    store.failNext('appendItems');
    const error = await first.manager
      .followUpSession(session.id, ['retry me'], { idempotencyKey: 'k' })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: expect.any(String) });
    second.scripted.turn([step.reply('ok')]);
    expect(await second.manager.followUpSession(session.id, ['retry me'], { idempotencyKey: 'k' })).toEqual({
      status: 'started',
    });
    await second.manager.waitStopped(session.id, { timeoutMs: 5000 });
    await Promise.all([first.manager.close(), second.manager.close()]);
  });

  test('a key is usable again after idempotencyKeyTtlMs', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const [first, second] = twoInstances(new Keyv(), undefined, 60_000);
    const session = await first.manager.createSession();
    first.scripted.turn([step.reply('ok')]);
    await first.manager.followUpSession(session.id, ['a'], { idempotencyKey: 'k' });
    await first.manager.waitStopped(session.id, { timeoutMs: 5000 });
    expect((await second.manager.followUpSession(session.id, ['a'], { idempotencyKey: 'k' })).status).toBe(
      'duplicate',
    );
    vi.setSystemTime(Date.now() + 61_000);
    second.scripted.turn([step.reply('ok')]);
    expect((await second.manager.followUpSession(session.id, ['a'], { idempotencyKey: 'k' })).status).toBe(
      'started',
    );
    await second.manager.waitStopped(session.id, { timeoutMs: 5000 });
    await Promise.all([first.manager.close(), second.manager.close()]);
  });

  test('a Keyv that fails makes the follow-up reject with STORE_UNAVAILABLE and the key stays usable', async () => {
    const keyv = new Keyv();
    const [first] = twoInstances(keyv);
    const session = await first.manager.createSession();
    const get = vi.spyOn(keyv, 'get').mockRejectedValueOnce(new Error('connection lost'));
    await expect(
      first.manager.followUpSession(session.id, ['a'], { idempotencyKey: 'k' }),
    ).rejects.toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE });
    get.mockRestore();
    first.scripted.turn([step.reply('ok')]);
    expect((await first.manager.followUpSession(session.id, ['a'], { idempotencyKey: 'k' })).status).toBe(
      'started',
    );
    await first.manager.waitStopped(session.id, { timeoutMs: 5000 });
    await first.manager.close();
  });
});
