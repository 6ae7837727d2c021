// defineStore: the one wrapper that owns the Store contract's policy for every driver.
import { describe, expect, test, vi } from 'vitest';
import { AgentSessionsError, StoreCorruptError } from '../../src/errors.js';
import {
  type Message,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
  toSummary,
} from '../../src/schemas.js';
import { DefinedStore, defineStore } from '../../src/stores/define-store.js';
import {
  type AppendBatchEntry,
  type BatchAppendDriver,
  type IncrementalDriver,
  isBatchAppendDriver,
  isIncrementalDriver,
  isListingDriver,
  isSummaryDriver,
  type StoreDriver,
} from '../../src/stores/driver.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { describeStoreConformance } from '../../src/testing/conformance/index.js';
import { expectRejectsWithCode } from '../helpers/assertions.js';
import { sessionRecord } from '../helpers/sessions.js';

const at = '2024-01-01T00:00:00.000Z';

function message(id: string, content = id): SessionItem {
  return { kind: 'message', message: { id, role: 'user', content, createdAt: at } };
}

/** The smallest driver: the four required methods over a Map that keeps what it is given. */
function mapDriver(): StoreDriver & { sessions: Map<string, Session> } {
  const sessions = new Map<string, Session>();
  return {
    name: 'map',
    sessions,
    async read(id) {
      return sessions.get(id);
    },
    async write(session) {
      sessions.set(session.id, session);
    },
    async remove(id) {
      return sessions.delete(id);
    },
    async summaries() {
      return [...sessions.values()].map((session) => toSummary(session));
    },
  };
}

describeStoreConformance({
  test,
  describe,
  name: 'defineStore over the four required driver methods passes the whole suite',
  createStore: () => defineStore(mapDriver()),
});

describeStoreConformance({
  test,
  describe,
  name: 'defineStore over an async-iterable summaries() passes the whole suite',
  createStore: () => {
    const inner = mapDriver();
    return defineStore({
      ...inner,
      name: 'iterable',
      async *summaries() {
        yield* await inner.summaries();
      },
    });
  },
});

describe('driver capabilities', () => {
  test('the type guards detect each capability by its methods', () => {
    const plain = mapDriver();
    expect([isSummaryDriver(plain), isIncrementalDriver(plain), isListingDriver(plain)]).toEqual([
      false,
      false,
      false,
    ]);
    const summaries = { ...plain, readSummary: async () => undefined };
    expect([isSummaryDriver(summaries), isIncrementalDriver(summaries)]).toEqual([true, false]);
    const incremental = {
      ...summaries,
      append: async () => true,
      patch: async () => true,
      replaceMessage: async () => true as const,
    };
    expect(isIncrementalDriver(incremental)).toBe(true);
    const listing: StoreDriver = Object.assign({}, plain, { list: async () => ({ sessions: [] }) });
    expect(isListingDriver(listing)).toBe(true);
  });

  test('getSummary reads the summary by id when the driver can, never the session', async () => {
    const inner = mapDriver();
    const read = vi.fn(inner.read);
    const readSummary = vi.fn(async (id: string) => {
      const session = inner.sessions.get(id);
      return session && toSummary(session);
    });
    const store = defineStore({ ...inner, read, readSummary });
    await store.createSession(sessionRecord('a', { items: [message('m1')] }));
    read.mockClear();
    expect((await store.getSummary('a')).messageCount).toBe(1);
    await store.updateSession('a', { title: 'x' });
    expect(readSummary).toHaveBeenCalled();
    // The patch itself is a read-modify-write (no incremental writes), the summary read is not.
    expect(read).toHaveBeenCalledTimes(1);
  });

  test('an incremental driver gets appends, patches and message updates in place, with the stamped updatedAt', async () => {
    const memory = mapDriver();
    const calls: string[] = [];
    const driver: IncrementalDriver = {
      ...memory,
      async write(session, summary) {
        calls.push(`write ${session.id}`);
        await memory.write(session, summary);
      },
      async readSummary(id) {
        const session = memory.sessions.get(id);
        return session && toSummary(session);
      },
      async append(id: string, items: SessionItem[], updatedAt: string) {
        calls.push(`append ${items.length} ${updatedAt > at}`);
        const session = memory.sessions.get(id);
        if (!session) return false;
        session.items.push(...items);
        session.updatedAt = updatedAt;
        return true;
      },
      async patch(id: string, patch: SessionPatch, updatedAt: string) {
        calls.push(`patch ${Object.keys(patch).join(',')}`);
        const session = memory.sessions.get(id);
        if (!session) return false;
        Object.assign(session, patch, { updatedAt });
        return true;
      },
      async replaceMessage(id: string, messageId: string, replacement: Message, updatedAt: string) {
        calls.push(`message ${messageId}`);
        const session = memory.sessions.get(id);
        if (!session) return 'session';
        const index = session.items.findIndex(
          (item) => item.kind === 'message' && item.message.id === messageId,
        );
        if (index < 0) return 'message';
        session.items[index] = { kind: 'message', message: replacement };
        session.updatedAt = updatedAt;
        return true;
      },
    };
    const store = defineStore(driver);
    await store.createSession(sessionRecord('a', {}, at));
    await store.appendItems('a', [message('m1'), message('m2')]);
    await store.updateSession('a', { title: 't' });
    await store.updateMessage('a', 'm1', { id: 'm1', role: 'user', content: 'edited', createdAt: at });
    await expectRejectsWithCode(
      store.updateMessage('a', 'nope', { id: 'nope', role: 'user', content: '', createdAt: at }),
      'MESSAGE_NOT_FOUND',
    );
    await expectRejectsWithCode(store.appendItems('b', [message('m3')]), 'SESSION_NOT_FOUND');
    expect(calls).toEqual(['write a', 'append 2 true', 'patch title', 'message m1', 'message nope']);
  });

  test('a listing driver pages itself: summaries() is not called, and what it returns is copied', async () => {
    const inner = mapDriver();
    const kept: SessionSummary = toSummary(sessionRecord('a', {}, at));
    const summaries = vi.fn(inner.summaries);
    const store = defineStore({ ...inner, summaries, list: async () => ({ sessions: [kept] }) });
    const page = await store.listSessions({ limit: 5 });
    expect(page.sessions).toEqual([kept]);
    expect(page.sessions[0]).not.toBe(kept);
    expect(summaries).not.toHaveBeenCalled();
    await expectRejectsWithCode(store.listSessions({ limit: 0 }), 'INVALID_ARGUMENT');
    await expectRejectsWithCode(store.listSessions({ cursor: '!' }), 'INVALID_ARGUMENT');
  });
});

describe('defineStore policy', () => {
  test('a driver error that is not ours becomes STORE_UNAVAILABLE with the error as cause; ours pass through', async () => {
    const inner = mapDriver();
    const disk = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    const corrupt = new StoreCorruptError('sessions/a.log', 'checksum mismatch at byte 0');
    let failWith: unknown = disk;
    const store = defineStore({
      ...inner,
      async read() {
        throw failWith;
      },
      async summaries() {
        throw failWith;
      },
    });
    const error = await expectRejectsWithCode(store.getSession('a'), 'STORE_UNAVAILABLE');
    expect(error.cause).toBe(disk);
    expect(error.message).toMatch(/map store could not read a session: EIO/);
    expect((await expectRejectsWithCode(store.listSessions(), 'STORE_UNAVAILABLE')).cause).toBe(disk);
    failWith = 'a string';
    expect((await expectRejectsWithCode(store.getSession('a'), 'STORE_UNAVAILABLE')).cause).toBe('a string');
    failWith = corrupt;
    expect(await store.getSession('a').catch((caught: unknown) => caught)).toBe(corrupt);
  });

  test('calls naming one session never overlap in the driver; other sessions run meanwhile', async () => {
    const inner = mapDriver();
    const active = new Map<string, number>();
    let overlapped = false;
    const gates: (() => void)[] = [];
    const store = defineStore({
      ...inner,
      async write(session, summary) {
        const now = (active.get(session.id) ?? 0) + 1;
        active.set(session.id, now);
        if (now > 1) overlapped = true;
        if (session.id === 'slow' && session.items.length > 0) {
          await new Promise<void>((resolve) => gates.push(resolve));
        }
        await inner.write(session, summary);
        active.set(session.id, now - 1);
      },
    });
    await store.createSession(sessionRecord('slow', {}, at));
    await store.createSession(sessionRecord('fast', {}, at));
    const pending = Array.from({ length: 5 }, (_, index) =>
      store.appendItems('slow', [message(`m${index}`)]),
    );
    // The first append is held inside the driver; the others wait in the queue.
    await vi.waitFor(() => expect(gates).toHaveLength(1));
    await store.appendItems('fast', [message('f1')]);
    expect(gates).toHaveLength(1);
    for (let released = 0; released < 5; released++) {
      await vi.waitFor(() => expect(gates).toHaveLength(1));
      gates.shift()!();
    }
    await Promise.all(pending);
    expect(overlapped).toBe(false);
    const ids = (await store.getSession('slow')).items.map(
      (item) => (item as { message: Message }).message.id,
    );
    expect(ids).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  test('what the driver is given shares nothing with the caller, and what it keeps is copied out unless freshReads', async () => {
    const inner = mapDriver();
    const store = defineStore(inner);
    const session = sessionRecord(
      'a',
      { attributes: { nested: { list: [1] } }, agentModelOverrides: { x: 'y' } },
      at,
    );
    await store.createSession(session);
    const kept = inner.sessions.get('a')!;
    expect(kept).not.toBe(session);
    expect(kept.attributes.nested).not.toBe(session.attributes.nested);
    expect(kept.agentModelOverrides).not.toBe(session.agentModelOverrides);
    const items = [message('m1')];
    await store.appendItems('a', items);
    expect(inner.sessions.get('a')!.items[0]).not.toBe(items[0]);
    expect((inner.sessions.get('a')!.items[0] as { message: Message }).message).not.toBe(
      (items[0] as { message: Message }).message,
    );
    expect(await store.getSession('a')).not.toBe(inner.sessions.get('a'));

    const fresh = mapDriver();
    let made: Session | undefined;
    const freshStore = defineStore({
      ...fresh,
      freshReads: true,
      read: async (id: string) => {
        made = structuredClone(fresh.sessions.get(id));
        return made;
      },
    });
    await freshStore.createSession(session);
    // Newly made for the call: returned as is, without a second copy.
    expect(await freshStore.getSession('a')).toBe(made);
  });

  test('close waits for pending calls, closes the driver once, and later calls reject with CLOSED', async () => {
    const inner = mapDriver();
    const close = vi.fn(async () => {});
    const store = defineStore({ ...inner, close });
    await store.createSession(sessionRecord('a', {}, at));
    const pending = store.appendItems('a', [message('m1')]);
    await Promise.all([store.close(), store.close()]);
    await pending;
    expect(close).toHaveBeenCalledTimes(1);
    expect(inner.sessions.get('a')!.items).toHaveLength(1);
    for (const call of [
      () => store.getSession('a'),
      () => store.getSummary('a'),
      () => store.listSessions(),
      () => store.createSession(sessionRecord('b', {}, at)),
      () => store.deleteSession('a'),
    ]) {
      await expectRejectsWithCode(call(), 'CLOSED');
    }
  });

  test('a store whose driver has nothing to close stays usable after close (MemoryStore)', async () => {
    const store = new MemoryStore();
    await store.createSession(sessionRecord('a', {}, at));
    await store.close();
    expect((await store.getSession('a')).id).toBe('a');
  });

  test('a failing driver close rejects with STORE_UNAVAILABLE', async () => {
    const store = defineStore({
      ...mapDriver(),
      async close() {
        throw new Error('connection reset');
      },
    });
    await expectRejectsWithCode(store.close(), 'STORE_UNAVAILABLE');
  });

  test('defineStore returns a DefinedStore named after the driver, and a subclass can add methods', async () => {
    class Tagged extends DefinedStore {
      tag() {
        return `${this.name}!`;
      }
    }
    const store = new Tagged(mapDriver());
    expect(defineStore(mapDriver())).toBeInstanceOf(DefinedStore);
    expect(store.tag()).toBe('map!');
    expect(AgentSessionsError.isInstance(await store.getSession('x').catch((error: unknown) => error))).toBe(
      true,
    );
  });
});

describe('group commit (drivers with appendMany)', () => {
  /** A batch driver over a Map whose appendMany waits for `gate` and records each batch. */
  function batchDriver() {
    const memory = mapDriver();
    const batches: { id: string; appends: AppendBatchEntry[] }[] = [];
    const failures = new Map<number, Error>();
    let gate: Promise<void> = Promise.resolve();
    const driver: BatchAppendDriver = {
      ...memory,
      async readSummary(id) {
        const session = memory.sessions.get(id);
        return session && toSummary(session);
      },
      async append(id, items, updatedAt) {
        return this.appendMany(id, [{ items, updatedAt }]);
      },
      async appendMany(id, appends) {
        batches.push({ id, appends: [...appends] });
        const failure = failures.get(batches.length);
        await gate;
        if (failure) throw failure;
        const session = memory.sessions.get(id);
        if (!session) return false;
        for (const append of appends) {
          session.items.push(...append.items);
          session.updatedAt = append.updatedAt;
        }
        return true;
      },
      async patch(id, _patch, updatedAt) {
        const session = memory.sessions.get(id);
        if (session) session.updatedAt = updatedAt;
        return session !== undefined;
      },
      async replaceMessage() {
        return true as const;
      },
    };
    return {
      driver,
      memory,
      batches,
      /** Makes the `count`-th batch fail. */
      failBatch(count: number, error: Error) {
        failures.set(count, error);
      },
      hold() {
        let release!: () => void;
        gate = new Promise((resolve) => {
          release = resolve;
        });
        return () => {
          gate = Promise.resolve();
          release();
        };
      },
    };
  }

  const ids = (items: SessionItem[]) => items.map((item) => (item.kind === 'message' ? item.message.id : ''));

  test('isBatchAppendDriver detects appendMany on an incremental driver only', () => {
    const { driver } = batchDriver();
    expect(isBatchAppendDriver(driver)).toBe(true);
    expect(isBatchAppendDriver({ ...mapDriver(), appendMany: async () => true } as StoreDriver)).toBe(false);
  });

  test('appends queued while one is written go to the driver as one batch, in call order, with rising updatedAt', async () => {
    const { driver, memory, batches, hold } = batchDriver();
    const store = defineStore(driver);
    await store.createSession(sessionRecord('a', {}, at));
    const release = hold();
    const first = store.appendItems('a', [message('m0')]);
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const queued = Array.from({ length: 7 }, (_, index) =>
      store.appendItems('a', [message(`m${index + 1}`)]),
    );
    release();
    await Promise.all([first, ...queued]);
    expect(batches.map((batch) => batch.appends.length)).toEqual([1, 7]);
    const stamps = batches[1]!.appends.map((append) => append.updatedAt);
    expect([...stamps].sort()).toEqual(stamps);
    expect(new Set(stamps).size).toBe(7);
    expect(ids(memory.sessions.get('a')!.items)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
  });

  test('a call queued between appends splits the batch, so call order holds', async () => {
    const { driver, batches, hold } = batchDriver();
    const store = defineStore(driver);
    await store.createSession(sessionRecord('a', {}, at));
    const release = hold();
    const first = store.appendItems('a', [message('m0')]);
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const second = store.appendItems('a', [message('m1')]);
    const read = store.getSession('a');
    const third = store.appendItems('a', [message('m2')]);
    release();
    await Promise.all([first, second, third]);
    expect(ids((await read).items)).toEqual(['m0', 'm1']);
    expect(batches.map((batch) => batch.appends.length)).toEqual([1, 1, 1]);
  });

  test('a failed batch rejects each of its appends and nothing else; a retry of them lands once', async () => {
    const { driver, memory, batches, hold, failBatch } = batchDriver();
    const store = defineStore(driver);
    await store.createSession(sessionRecord('a', {}, at));
    failBatch(2, new Error('disk full'));
    const release = hold();
    const first = store.appendItems('a', [message('m0')]);
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const failing = [store.appendItems('a', [message('m1')]), store.appendItems('a', [message('m2')])];
    release();
    await first;
    const outcomes = await Promise.allSettled(failing);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    for (const outcome of outcomes) {
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    }
    await store.appendItems('a', [message('m3')]);
    await store.appendItems('a', [message('m1'), message('m2')]);
    expect(ids(memory.sessions.get('a')!.items)).toEqual(['m0', 'm3', 'm1', 'm2']);
  });

  test('an item repeated within a batch is stored once; a batch on an unknown session rejects each append', async () => {
    const { driver, memory, batches, hold } = batchDriver();
    const store = defineStore(driver);
    await store.createSession(sessionRecord('a', {}, at));
    const release = hold();
    const first = store.appendItems('a', [message('m0')]);
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const again = [store.appendItems('a', [message('m1')]), store.appendItems('a', [message('m1')])];
    const missing = [store.appendItems('b', [message('x')]), store.appendItems('b', [message('y')])];
    release();
    await Promise.all([first, ...again]);
    expect(ids(memory.sessions.get('a')!.items)).toEqual(['m0', 'm1']);
    for (const call of missing) await expectRejectsWithCode(call, 'SESSION_NOT_FOUND');
  });
});
