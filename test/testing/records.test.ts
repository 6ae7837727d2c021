import { describe, expect, test } from 'vitest';
import { SessionSchema } from '../../src/schemas.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { sessionRecord } from '../../src/testing/records.js';

describe('sessionRecord', () => {
  test('makes a record the session schema accepts, with empty defaults and the given time', () => {
    const record = sessionRecord('s1', {}, '2024-05-06T07:08:09.000Z');
    expect(SessionSchema.parse(record)).toEqual(record);
    expect(record).toMatchObject({ id: 's1', title: '', titleSource: 'none', items: [], starred: false });
    expect(record.createdAt).toBe('2024-05-06T07:08:09.000Z');
    expect(record.updatedAt).toBe('2024-05-06T07:08:09.000Z');
  });

  test('overrides replace fields, and each call returns fresh objects a store accepts', async () => {
    const first = sessionRecord('a', { title: 'hello', starred: true });
    const second = sessionRecord('b');
    expect(first).toMatchObject({ title: 'hello', starred: true });
    expect(first.permissions).not.toBe(second.permissions);
    expect(Date.parse(second.createdAt)).not.toBeNaN();
    const store = new MemoryStore();
    await store.createSession(first);
    expect((await store.getSession('a')).title).toBe('hello');
  });
});
