// Regression tests from a correctness review of FileStore.
import { promises as fsPromises } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, rmdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { SessionItem } from '../../../src/schemas.js';
import { FileStore } from '../../../src/stores/file/store.js';
import { expectRejectsWithCode } from '../../helpers/assertions.js';
import { sessionRecord } from '../../helpers/sessions.js';

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

describe('FileStore maintenance after a write', () => {
  test('appendItems resolves when the summary rewrite after its durable line fails, and the items are kept once', async () => {
    const store = storeAt({ tuning: { summaryEveryBytes: 1 } });
    await store.createSession(sessionRecord('a', {}, at));
    const writeFile = fsPromises.writeFile;
    const spy = vi.spyOn(fsPromises, 'writeFile').mockImplementation((async (
      ...args: Parameters<typeof writeFile>
    ) => {
      if (String(args[0]).endsWith('.tmp')) {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      return writeFile(...args);
    }) as typeof writeFile);
    try {
      await store.appendItems('a', [message('m1')]);
    } finally {
      spy.mockRestore();
    }
    const items = (await store.getSession('a')).items;
    expect(items.map((item) => (item.kind === 'message' ? item.message.id : item.id))).toEqual(['m1']);
  });

  test('updateSession resolves when compaction after its durable line fails, and the patch is kept', async () => {
    const store = storeAt({ tuning: { compactMinBytes: 1 } });
    await store.createSession(sessionRecord('a', {}, at));
    // A patch line longer than the rest of the log makes the store compact right after writing it.
    const title = 'k'.repeat(2000);
    const open = fsPromises.open;
    const spy = vi.spyOn(fsPromises, 'open').mockImplementation((async (...args: Parameters<typeof open>) => {
      if (String(args[0]).endsWith('.tmp')) {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      return open(...args);
    }) as typeof open);
    try {
      await store.updateSession('a', { title });
      expect(spy.mock.calls.some((call) => String(call[0]).endsWith('.tmp'))).toBe(true);
    } finally {
      spy.mockRestore();
    }
    expect((await store.getSession('a')).title).toBe(title);
    expect((await store.listSessions()).sessions[0]?.title).toBe(title);
  });
});

describe('FileStore paths', () => {
  test('open rejects with STORE_CORRUPT when the lock directory is a symlink, writing nothing at its target', async () => {
    await mkdir(directory, { recursive: true });
    const elsewhere = join(root, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(directory, '.lock'));
    await expectRejectsWithCode(storeAt().listSessions(), 'STORE_CORRUPT');
    expect(await readdir(elsewhere)).toEqual([]);
  });
});

describe('FileStore lock', () => {
  test('an open that fails while reading the lock directory leaves no claim behind to lock the directory', async () => {
    const planted = join(directory, '.lock', 'planted.claim');
    await mkdir(planted, { recursive: true });
    const failed = storeAt();
    await expect(failed.listSessions()).rejects.toThrow();
    expect((await readdir(join(directory, '.lock'))).sort()).toEqual(['planted.claim']);
    await rmdir(planted);
    const next = storeAt();
    await next.open();
  });
});
