import { describe, expect, test, vi } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import type { Session, SessionItem } from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { BlockingStore } from '../../src/testing/blocking-store.js';
import { describeStoreConformance } from '../../src/testing/conformance.js';
import { FailingStore, InjectedStoreError } from '../../src/testing/failing-store.js';
import { sessionRecord } from '../helpers/sessions.js';

const T0 = '2024-01-02T03:04:05.000Z';

const session = (id: string): Session => sessionRecord(id, {}, T0);

function item(id: string): SessionItem {
  return { kind: 'message', message: { id, role: 'user', content: id, createdAt: T0 } };
}

async function itemIds(store: { getSession(id: string): Promise<Session> }, id: string): Promise<string[]> {
  return (await store.getSession(id)).items.map((entry) =>
    entry.kind === 'message' ? entry.message.id : entry.id,
  );
}

/** Lets every pending promise callback run (a macrotask runs only after all microtasks). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function storeWith(...ids: string[]): Promise<MemoryStore> {
  const inner = new MemoryStore();
  for (const id of ids) await inner.createSession(session(id));
  return inner;
}

describe('FailingStore', () => {
  describeStoreConformance({
    test,
    describe,
    name: 'FailingStore without failures passes the conformance suite',
    createStore: () => new FailingStore(new MemoryStore()),
  });

  test('name is the inner store name; close closes the inner store', async () => {
    const inner = new MemoryStore();
    const close = vi.spyOn(inner, 'close');
    const store = new FailingStore(inner);
    expect(store.name).toBe('memory');
    await store.close();
    expect(close).toHaveBeenCalledTimes(1);
  });

  test('close resolves when the inner store has no close method', async () => {
    const inner = new MemoryStore();
    const bare: Store = {
      name: 'bare',
      createSession: (value) => inner.createSession(value),
      getSession: (id) => inner.getSession(id),
      listSessions: (options) => inner.listSessions(options),
      updateSession: (id, patch) => inner.updateSession(id, patch),
      appendItems: (id, items) => inner.appendItems(id, items),
      updateMessage: (id, messageId, message) => inner.updateMessage(id, messageId, message),
      deleteSession: (id) => inner.deleteSession(id),
    };
    const store = new FailingStore(bare);
    expect(store.name).toBe('bare');
    await expect(store.close()).resolves.toBeUndefined();
    await expect(new BlockingStore(bare).close()).resolves.toBeUndefined();
  });

  test('failNext rejects the next call with an InjectedStoreError that never reaches the inner store', async () => {
    const inner = await storeWith('a');
    const store = new FailingStore(inner);
    store.failNext('appendItems');
    const error = await store.appendItems('a', [item('m1')]).catch((caught: unknown) => caught);
    expect(AgentSessionsError.isInstance(error)).toBe(true);
    expect(error).toBeInstanceOf(InjectedStoreError);
    expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE', method: 'appendItems' });
    expect((error as Error).message).toBe('injected failure: FailingStore.appendItems');
    expect(await itemIds(inner, 'a')).toEqual([]);
    await store.appendItems('a', [item('m2')]);
    expect(await itemIds(inner, 'a')).toEqual(['m2']);
  });

  test('failNext calls queue up and fail one call each, oldest first, with the given errors', async () => {
    const store = new FailingStore(await storeWith('a'));
    const first = new Error('first');
    const second = new Error('second');
    store.failNext('getSession', first).failNext('getSession', second);
    await expect(store.getSession('a')).rejects.toBe(first);
    await expect(store.getSession('a')).rejects.toBe(second);
    await expect(store.getSession('a')).resolves.toMatchObject({ id: 'a' });
  });

  test('failNext of one method leaves the other methods working', async () => {
    const store = new FailingStore(await storeWith('a'));
    store.failNext('deleteSession');
    await expect(store.getSession('a')).resolves.toMatchObject({ id: 'a' });
    await store.updateSession('a', { title: 't' });
    await expect(store.deleteSession('a')).rejects.toBeInstanceOf(InjectedStoreError);
    await expect(store.getSession('a')).resolves.toMatchObject({ title: 't' });
  });

  test('failAlways rejects every call of the method until reset', async () => {
    const inner = await storeWith('a');
    const store = new FailingStore(inner);
    store.failAlways('updateSession');
    for (let index = 0; index < 3; index++) {
      await expect(store.updateSession('a', { title: `t${index}` })).rejects.toBeInstanceOf(
        InjectedStoreError,
      );
    }
    expect((await inner.getSession('a')).title).toBe('');
    store.reset();
    await store.updateSession('a', { title: 'after reset' });
    expect((await inner.getSession('a')).title).toBe('after reset');
  });

  test('reset(method) removes only that method’s failures', async () => {
    const store = new FailingStore(await storeWith('a'));
    store.failAlways('getSession').failAlways('listSessions');
    store.reset('getSession');
    await expect(store.getSession('a')).resolves.toMatchObject({ id: 'a' });
    await expect(store.listSessions()).rejects.toBeInstanceOf(InjectedStoreError);
  });

  test('failWhen rejects only the calls whose arguments match', async () => {
    const inner = await storeWith('a', 'b');
    const store = new FailingStore(inner);
    store.failWhen('appendItems', ([id, items]) => id === 'b' && items.length > 1);
    await store.appendItems('a', [item('a1'), item('a2')]);
    await store.appendItems('b', [item('b1')]);
    await expect(store.appendItems('b', [item('b2'), item('b3')])).rejects.toBeInstanceOf(InjectedStoreError);
    expect(await itemIds(inner, 'a')).toEqual(['a1', 'a2']);
    expect(await itemIds(inner, 'b')).toEqual(['b1']);
  });

  test('an error factory makes a fresh error for each call from its method and arguments', async () => {
    const store = new FailingStore(await storeWith('a'));
    store.failAlways('getSession', ({ method, args }) => new Error(`${method}(${args[0]})`));
    const first = await store.getSession('a').catch((error: unknown) => error);
    const second = await store.getSession('zz').catch((error: unknown) => error);
    expect((first as Error).message).toBe('getSession(a)');
    expect((second as Error).message).toBe('getSession(zz)');
    expect(first).not.toBe(second);
  });

  test('failNext takes precedence over failAlways and is used up first', async () => {
    const store = new FailingStore(await storeWith('a'));
    const once = new Error('once');
    const always = new Error('always');
    store.failAlways('getSession', always).failNext('getSession', once);
    await expect(store.getSession('a')).rejects.toBe(once);
    await expect(store.getSession('a')).rejects.toBe(always);
  });

  test('failNext on close rejects without closing the inner store', async () => {
    const inner = new MemoryStore();
    const close = vi.spyOn(inner, 'close');
    const store = new FailingStore(inner);
    store.failNext('close');
    await expect(store.close()).rejects.toBeInstanceOf(InjectedStoreError);
    expect(close).not.toHaveBeenCalled();
  });

  test('calls logs every call in order with its arguments and whether it failed', async () => {
    const store = new FailingStore(await storeWith('a'));
    const items = [item('m1')];
    store.failNext('appendItems');
    await store.getSession('a');
    await store.appendItems('a', items).catch(() => {});
    await store.appendItems('a', items);
    await store.listSessions({ limit: 5 });
    expect(store.calls).toEqual([
      { method: 'getSession', args: ['a'], failed: false },
      { method: 'appendItems', args: ['a', items], failed: true },
      { method: 'appendItems', args: ['a', items], failed: false },
      { method: 'listSessions', args: [{ limit: 5 }], failed: false },
    ]);
    expect(store.callsOf('appendItems').map((call) => call.failed)).toEqual([true, false]);
    expect(store.callsOf('appendItems')[0]?.args[1]).toBe(items);
  });

  test('errors of the inner store pass through unchanged and are logged as not injected', async () => {
    const store = new FailingStore(new MemoryStore());
    const error = await store.getSession('missing').catch((caught: unknown) => caught);
    expect(AgentSessionsError.hasCode(error, 'SESSION_NOT_FOUND')).toBe(true);
    expect(store.calls).toEqual([{ method: 'getSession', args: ['missing'], failed: false }]);
  });
});

describe('BlockingStore', () => {
  describeStoreConformance({
    test,
    describe,
    name: 'BlockingStore without blocks passes the conformance suite',
    createStore: () => new BlockingStore(new MemoryStore()),
  });

  test('name is the inner store name; close closes the inner store', async () => {
    const inner = new MemoryStore();
    const close = vi.spyOn(inner, 'close');
    const store = new BlockingStore(inner);
    expect(store.name).toBe('memory');
    await store.close();
    expect(close).toHaveBeenCalledTimes(1);
  });

  test('block pauses calls before the inner store until release', async () => {
    const inner = await storeWith('a');
    const store = new BlockingStore(inner);
    store.block('appendItems');
    let done = false;
    const append = store.appendItems('a', [item('m1')]).then(() => {
      done = true;
    });
    await store.waitForBlocked('appendItems');
    await settle();
    expect(done).toBe(false);
    expect(await itemIds(inner, 'a')).toEqual([]);
    expect(store.pausedCount('appendItems')).toBe(1);
    store.release('appendItems');
    await append;
    expect(await itemIds(inner, 'a')).toEqual(['m1']);
    expect(store.pausedCount('appendItems')).toBe(0);
  });

  test('waitForBlocked(method, count) resolves only once that many calls are paused', async () => {
    const store = new BlockingStore(await storeWith('a'));
    store.block('getSession');
    let reached = false;
    const waiting = store.waitForBlocked('getSession', 2).then(() => {
      reached = true;
    });
    const first = store.getSession('a');
    await settle();
    expect(reached).toBe(false);
    const second = store.getSession('a');
    await waiting;
    expect(reached).toBe(true);
    store.release('getSession');
    await expect(Promise.all([first, second])).resolves.toHaveLength(2);
  });

  test('waitForBlocked resolves at once when enough calls are already paused', async () => {
    const store = new BlockingStore(await storeWith('a'));
    store.block('getSession');
    const call = store.getSession('a');
    await store.waitForBlocked('getSession');
    await store.waitForBlocked('getSession', 1);
    store.release('getSession');
    await call;
  });

  test('release lets paused calls through in call order and stops blocking', async () => {
    const inner = await storeWith('a');
    const store = new BlockingStore(inner);
    store.block('appendItems');
    const calls = ['m1', 'm2', 'm3'].map((id) => store.appendItems('a', [item(id)]));
    await store.waitForBlocked('appendItems', 3);
    expect(store.pausedArgs('appendItems').map(([, items]) => items[0])).toEqual([
      item('m1'),
      item('m2'),
      item('m3'),
    ]);
    store.release('appendItems');
    await Promise.all(calls);
    expect(store.isBlocking('appendItems')).toBe(false);
    await store.appendItems('a', [item('m4')]);
    expect(await itemIds(inner, 'a')).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  test('releaseNext lets one paused call through and keeps blocking', async () => {
    const inner = await storeWith('a');
    const store = new BlockingStore(inner);
    store.block('appendItems');
    const first = store.appendItems('a', [item('m1')]);
    const second = store.appendItems('a', [item('m2')]);
    await store.waitForBlocked('appendItems', 2);
    expect(store.releaseNext('appendItems')).toBe(true);
    await first;
    expect(await itemIds(inner, 'a')).toEqual(['m1']);
    const third = store.appendItems('a', [item('m3')]);
    await store.waitForBlocked('appendItems', 2);
    expect(store.releaseNext('appendItems')).toBe(true);
    expect(store.releaseNext('appendItems')).toBe(true);
    await Promise.all([second, third]);
    expect(store.releaseNext('appendItems')).toBe(false);
    expect(await itemIds(inner, 'a')).toEqual(['m1', 'm2', 'm3']);
  });

  test('unblock lets new calls through while paused calls stay paused', async () => {
    const inner = await storeWith('a');
    const store = new BlockingStore(inner);
    store.block('appendItems');
    const paused = store.appendItems('a', [item('m1')]);
    await store.waitForBlocked('appendItems');
    store.unblock('appendItems');
    await store.appendItems('a', [item('m2')]);
    expect(await itemIds(inner, 'a')).toEqual(['m2']);
    expect(store.pausedCount('appendItems')).toBe(1);
    store.release('appendItems');
    await paused;
    expect(await itemIds(inner, 'a')).toEqual(['m2', 'm1']);
  });

  test('rejectBlocked rejects paused calls without reaching the inner store', async () => {
    const inner = await storeWith('a');
    const store = new BlockingStore(inner);
    store.block('updateSession');
    const call = store.updateSession('a', { title: 'never' });
    await store.waitForBlocked('updateSession');
    const error = new Error('disk gone');
    store.rejectBlocked('updateSession', error);
    await expect(call).rejects.toBe(error);
    expect((await inner.getSession('a')).title).toBe('');
    expect(store.isBlocking('updateSession')).toBe(true);
  });

  test('blocking one method leaves the others working', async () => {
    const store = new BlockingStore(await storeWith('a'));
    store.block('appendItems');
    const append = store.appendItems('a', [item('m1')]);
    await store.waitForBlocked('appendItems');
    await store.updateSession('a', { title: 'during' });
    await expect(store.getSession('a')).resolves.toMatchObject({ title: 'during', items: [] });
    store.releaseAll();
    await append;
    expect(await itemIds(store, 'a')).toEqual(['m1']);
  });

  test('releaseAll releases every method and stops all blocking', async () => {
    const store = new BlockingStore(await storeWith('a'));
    store.block('getSession').block('listSessions').block('close');
    const get = store.getSession('a');
    const list = store.listSessions();
    await store.waitForBlocked('getSession');
    await store.waitForBlocked('listSessions');
    store.releaseAll();
    await Promise.all([get, list]);
    expect(store.isBlocking('close')).toBe(false);
    await store.close();
  });

  test('blocking close pauses it before the inner store closes', async () => {
    const inner = new MemoryStore();
    const close = vi.spyOn(inner, 'close');
    const store = new BlockingStore(inner);
    store.block('close');
    const closing = store.close();
    await store.waitForBlocked('close');
    expect(close).not.toHaveBeenCalled();
    store.release('close');
    await closing;
    expect(close).toHaveBeenCalledTimes(1);
  });

  test('wraps a FailingStore: a released call can still fail by injection', async () => {
    const failing = new FailingStore(await storeWith('a'));
    const store = new BlockingStore(failing);
    failing.failNext('appendItems');
    store.block('appendItems');
    const call = store.appendItems('a', [item('m1')]);
    await store.waitForBlocked('appendItems');
    expect(failing.calls).toEqual([]);
    store.release('appendItems');
    await expect(call).rejects.toBeInstanceOf(InjectedStoreError);
    expect(failing.calls).toEqual([{ method: 'appendItems', args: ['a', [item('m1')]], failed: true }]);
  });
});
