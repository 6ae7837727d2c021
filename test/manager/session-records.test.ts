// Session records (see src/manager/session-records.ts): the store first, then the cache; the
// cache only after a write succeeded; read-modify-write of metadata serialised; existence checked
// without reading items when the store can.
import { describe, expect, test } from 'vitest';
import { SessionRecords } from '../../src/manager/session-records.js';
import type { Session, SessionSummary } from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { BlockingStore } from '../../src/testing/blocking-store.js';
import { FailingStore, InjectedStoreError } from '../../src/testing/failing-store.js';
import { rejection } from '../helpers/assertions.js';
import { sessionRecord } from '../helpers/sessions.js';

const message = (id: string, content = id) => ({
  kind: 'message' as const,
  message: { id, role: 'user' as const, content, createdAt: '2024-01-01T00:00:00.000Z' },
});

async function setup(session: Session = sessionRecord('s1')) {
  const inner = new MemoryStore();
  await inner.createSession(session);
  const store = new FailingStore(inner);
  const records = new SessionRecords(store);
  return { inner, store, records, record: records.open(session.id) };
}

describe('SessionRecord cache', () => {
  test('load reads the store once and then serves the cache', async () => {
    const { store, record } = await setup(sessionRecord('s1', { items: [message('m1')] }));
    const first = await record.load();
    const second = await record.load();
    expect(second).toBe(first);
    expect(store.callsOf('getSession')).toHaveLength(1);
    expect(first.items.map((item) => item.kind === 'message' && item.message.id)).toEqual(['m1']);
    expect(Object.isFrozen(first.items[0])).toBe(true);
  });

  test('forget drops the cache: the next load reads the store again', async () => {
    const { store, record, inner } = await setup();
    await record.load();
    await inner.updateSession('s1', { title: 'changed elsewhere' });
    record.forget();
    expect(record.cached).toBeUndefined();
    expect((await record.load()).meta.title).toBe('changed elsewhere');
    expect(store.callsOf('getSession')).toHaveLength(2);
  });

  test('append writes the store, then the cache; a refused append leaves the cache as it was', async () => {
    const { store, record, inner } = await setup();
    const cache = await record.load();
    await record.append([message('m1')]);
    expect(cache.items).toHaveLength(1);
    expect((await inner.getSession('s1')).items).toHaveLength(1);
    store.failNext('appendItems');
    expect(await rejection(record.append([message('m2')]))).toBeInstanceOf(InjectedStoreError);
    expect(cache.items).toHaveLength(1);
  });

  test('patch writes the store, then the cache; a refused patch leaves the cache as it was', async () => {
    const { store, record, inner } = await setup();
    const cache = await record.load();
    await record.patch({ starred: true, agent: 'planner' });
    expect(cache.meta).toMatchObject({ starred: true, agent: 'planner' });
    await record.patch({ agent: undefined });
    expect('agent' in cache.meta).toBe(false);
    expect((await inner.getSession('s1')).agent).toBeUndefined();
    store.failNext('updateSession');
    await rejection(record.patch({ title: 'never' }));
    expect(cache.meta.title).toBe('');
  });

  test('replaceMessage replaces the stored and the cached message', async () => {
    const { record, inner } = await setup(sessionRecord('s1', { items: [message('m1', 'old')] }));
    const cache = await record.load();
    await record.replaceMessage('m1', { ...message('m1', 'new').message });
    expect(cache.items[0]).toMatchObject({ message: { content: 'new' } });
    expect((await inner.getSession('s1')).items[0]).toMatchObject({ message: { content: 'new' } });
  });

  test('addUsage adds to the cached total and writes the sum', async () => {
    const { record, inner } = await setup(
      sessionRecord('s1', { usage: { inputTokens: 1, outputTokens: 2, cost: 0.5 } }),
    );
    await record.load();
    expect(await record.addUsage({ inputTokens: 10, outputTokens: 20 })).toEqual({
      inputTokens: 11,
      outputTokens: 22,
      cost: 0.5,
    });
    await record.addUsage({ inputTokens: 1, outputTokens: 1, cost: 0.25 });
    expect((await inner.getSession('s1')).usage).toEqual({ inputTokens: 12, outputTokens: 23, cost: 0.75 });
  });

  test('a load that raced a metadata write reads again, so the cache never holds the older value', async () => {
    const inner = new MemoryStore();
    await inner.createSession(sessionRecord('s1'));
    const blocking = new BlockingStore(inner);
    const record = new SessionRecords(blocking).open('s1');
    blocking.block('getSession');
    const loading = record.load();
    await blocking.waitForBlocked('getSession');
    blocking.unblock('getSession');
    await record.update(() => ({ safetyPolicy: 'restricted' }));
    blocking.release('getSession');
    expect((await loading).meta.safetyPolicy).toBe('restricted');
  });
});

describe('SessionRecord.update', () => {
  test('concurrent read-modify-writes are serialised: no change is lost', async () => {
    const { record, inner } = await setup();
    await Promise.all(
      ['a', 'b', 'c'].map((tool) =>
        record.update((current) => ({
          permissions: { ...current.permissions, allow: [...current.permissions.allow, tool] },
        })),
      ),
    );
    expect((await inner.getSession('s1')).permissions.allow).toEqual(['a', 'b', 'c']);
  });

  test('update without a cache reads the store, writes nothing for no patch, and resolves to the patch written', async () => {
    const { record, store } = await setup();
    expect(await record.update(() => undefined)).toBeUndefined();
    expect(store.callsOf('updateSession')).toHaveLength(0);
    expect(await record.update(() => ({ starred: true }))).toEqual({ starred: true });
    expect(record.cached).toBeUndefined();
    expect(record.busy).toBe(false);
  });
});

describe('SessionRecords.exists', () => {
  class SummaryStore extends MemoryStore {
    summaryReads = 0;
    sessionReads = 0;
    override async getSession(id: string): Promise<Session> {
      this.sessionReads++;
      return super.getSession(id);
    }
    override async getSummary(id: string): Promise<SessionSummary> {
      this.summaryReads++;
      return super.getSummary(id);
    }
  }

  test('exists uses getSummary when the store has it and never reads the session', async () => {
    const store = new SummaryStore();
    await store.createSession(sessionRecord('s1'));
    const records = new SessionRecords(store);
    const before = store.sessionReads;
    expect(await records.exists('s1')).toBe(true);
    expect(await records.exists('nobody')).toBe(false);
    expect(store.summaryReads).toBe(2);
    expect(store.sessionReads).toBe(before);
  });

  test('exists falls back to getSession and passes on errors other than SESSION_NOT_FOUND', async () => {
    const inner = new MemoryStore();
    await inner.createSession(sessionRecord('s1'));
    // A store written before getSummary existed: the seven required methods only.
    const legacy: Store = {
      name: 'legacy',
      createSession: (session) => inner.createSession(session),
      getSession: (id) => inner.getSession(id),
      listSessions: (options) => inner.listSessions(options),
      updateSession: (id, patch) => inner.updateSession(id, patch),
      appendItems: (id, items) => inner.appendItems(id, items),
      updateMessage: (id, messageId, message) => inner.updateMessage(id, messageId, message),
      deleteSession: (id) => inner.deleteSession(id),
    };
    const store = new FailingStore(legacy);
    expect(store.getSummary).toBeUndefined();
    const records = new SessionRecords(store);
    expect(await records.exists('s1')).toBe(true);
    expect(await records.exists('nobody')).toBe(false);
    expect(store.callsOf('getSession')).toHaveLength(2);
    store.failNext('getSession');
    expect(await rejection(records.exists('s1'))).toBeInstanceOf(InjectedStoreError);
  });
});

describe('SessionCache', () => {
  test('snapshot is deeply frozen and shares the cached items; copy is a mutable deep copy', async () => {
    const { record } = await setup(sessionRecord('s1', { items: [message('m1')] }));
    const cache = await record.load();
    const snapshot = cache.snapshot();
    expect(Object.isFrozen(snapshot)).toBe(true);
    expect(Object.isFrozen(snapshot.permissions)).toBe(true);
    expect(snapshot.items[0]).toBe(cache.items[0]);
    const copy = cache.copy();
    copy.title = 'mine';
    expect(cache.meta.title).toBe('');
    expect(copy.items[0]).not.toBe(cache.items[0]);
  });
});
