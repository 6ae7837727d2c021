// Regression tests from a correctness review of FileStore.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { SessionItem } from '../../src/schemas.js';
import { FileStore } from '../../src/stores/file.js';
import { sessionRecord } from '../helpers/sessions.js';

let root: string;
let directory: string;
const stores: FileStore[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-file-review-'));
  directory = join(root, 'store');
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await rm(root, { recursive: true, force: true });
});

function storeAt(options: Partial<ConstructorParameters<typeof FileStore>[0]> = {}): FileStore {
  const store = new FileStore({ directory, durability: 'buffered', ...options });
  stores.push(store);
  return store;
}

const at = '2024-01-01T00:00:00.000Z';

function message(id: string): SessionItem {
  return { kind: 'message', message: { id, role: 'user', content: id, createdAt: at } };
}

describe('FileStore close', () => {
  test('close right after a first call on an unopened store releases the lock that call took', async () => {
    const store = storeAt();
    const created = store.createSession(sessionRecord('a', {}, at));
    await store.close();
    await created;
    const next = storeAt();
    await next.open();
    expect((await next.getSession('a')).id).toBe('a');
  });
});
