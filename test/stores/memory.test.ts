import { describe, expect, test } from 'vitest';
import type { Session } from '../../src/schemas.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { describeStoreConformance } from '../../src/testing/conformance/index.js';
import { sessionRecord } from '../helpers/sessions.js';

describeStoreConformance({
  test,
  describe,
  name: 'MemoryStore conformance',
  createStore: () => new MemoryStore(),
});

const session = (id: string): Session => sessionRecord(id);

describe('MemoryStore', () => {
  test('name is "memory" and close resolves', async () => {
    const store = new MemoryStore();
    expect(store.name).toBe('memory');
    await expect(store.close()).resolves.toBeUndefined();
  });

  test('two instances share nothing', async () => {
    const first = new MemoryStore();
    const second = new MemoryStore();
    await first.createSession(session('a'));
    await second.createSession(session('a'));
    await first.updateSession('a', { title: 'first' });
    expect((await second.getSession('a')).title).toBe('');
    await first.deleteSession('a');
    await expect(second.getSession('a')).resolves.toMatchObject({ id: 'a' });
  });

  test('createSession drops fields that are not part of a session, like a store that writes JSON would', async () => {
    const store = new MemoryStore();
    await store.createSession({ ...session('a'), extra: 'dropped' } as Session);
    expect(Object.keys(await store.getSession('a'))).not.toContain('extra');
  });
});
