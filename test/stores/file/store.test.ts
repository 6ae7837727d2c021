import { existsSync, constants as fsConstants, promises as fsPromises } from 'node:fs';
import {
  appendFile,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { AgentSessionsError } from '../../../src/errors.js';
import type { Logger } from '../../../src/logger.js';
import type { Session, SessionItem } from '../../../src/schemas.js';
import type { Store } from '../../../src/store.js';
import { decodeSessionName, encodeSessionName } from '../../../src/stores/file/format.js';
import { FileStore } from '../../../src/stores/file/store.js';
import { describeStoreConformance } from '../../../src/testing/conformance/index.js';
import { expectRejectsWithCode } from '../../helpers/assertions.js';
import { sessionRecord } from '../../helpers/sessions.js';

const directories = new Map<Store, string>();

describeStoreConformance({
  test,
  describe,
  name: 'FileStore conformance',
  createStore: async () => {
    const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-file-'));
    const store = new FileStore({ directory, durability: 'buffered' });
    directories.set(store, directory);
    return store;
  },
  reopenStore: async (store) => {
    const directory = directories.get(store)!;
    await store.close?.();
    const reopened = new FileStore({ directory, durability: 'buffered' });
    directories.set(reopened, directory);
    return reopened;
  },
  destroyStore: async (store) => {
    await store.close?.();
    const directory = directories.get(store);
    directories.delete(store);
    if (directory) await rm(directory, { recursive: true, force: true });
  },
});

let root: string;
let directory: string;
const open_stores: FileStore[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-file-'));
  directory = join(root, 'store');
});

afterEach(async () => {
  for (const store of open_stores.splice(0)) await store.close();
  await rm(root, { recursive: true, force: true });
});

function storeAt(options: Partial<ConstructorParameters<typeof FileStore>[0]> = {}): FileStore {
  const store = new FileStore({ directory, durability: 'buffered', ...options });
  open_stores.push(store);
  return store;
}

async function reopen(store: FileStore, options: Partial<ConstructorParameters<typeof FileStore>[0]> = {}) {
  await store.close();
  return storeAt(options);
}

const at = '2024-01-01T00:00:00.000Z';

const session = (id: string, overrides: Partial<Session> = {}): Session => sessionRecord(id, overrides, at);

function message(id: string, content = id): SessionItem {
  return { kind: 'message', message: { id, role: 'user', content, createdAt: at } };
}

function logPath(id: string): string {
  return join(directory, 'sessions', `${encodeSessionName(id)}.log`);
}

function recordingLogger(): Logger & { warnings: unknown[][] } {
  const warnings: unknown[][] = [];
  return { warnings, debug() {}, info() {}, warn: (...args) => warnings.push(args), error() {} };
}

describe('FileStore persistence', () => {
  test('getSession and listSessions return after a reopen what was written before it', async () => {
    const store = storeAt();
    await store.createSession(session('one', { workingDir: '/w', attributes: { nested: { a: [1, 'x'] } } }));
    await store.createSession(session('two'));
    await store.appendItems('one', [message('m1'), message('m2')]);
    await store.updateSession('one', { title: 'First', starred: true, workingDir: undefined });
    await store.updateMessage('one', 'm1', { id: 'm1', role: 'assistant', content: 'edited', createdAt: at });
    await store.deleteSession('two');
    const before = await store.getSession('one');
    const listed = await store.listSessions();

    const reopened = await reopen(store);
    expect(await reopened.getSession('one')).toEqual(before);
    expect(await reopened.listSessions()).toEqual(listed);
    await expectRejectsWithCode(reopened.getSession('two'), 'SESSION_NOT_FOUND');
  });

  test('listSessions after a reopen rebuilds summaries from the logs when summary files are missing', async () => {
    const store = storeAt();
    await store.createSession(session('a'));
    await store.appendItems('a', [message('m1')]);
    await store.updateSession('a', { title: 'T' });
    const listed = await store.listSessions();
    await store.close();
    for (const file of await readdir(join(directory, 'sessions'))) {
      if (file.endsWith('.sum')) await unlink(join(directory, 'sessions', file));
    }
    expect(await storeAt().listSessions()).toEqual(listed);
  });

  test('a summary file describing an older log is detected, and the log tail after it is replayed', async () => {
    const store = storeAt();
    await store.createSession(session('a'));
    await store.close();
    const stale = await readFile(join(directory, 'sessions', 'a.sum'));
    const reopened = storeAt();
    await reopened.appendItems('a', [message('m1'), message('m2')]);
    await reopened.updateSession('a', { title: 'later' });
    const listed = await reopened.listSessions();
    await reopened.close();
    await writeFile(join(directory, 'sessions', 'a.sum'), stale);
    expect(await storeAt().listSessions()).toEqual(listed);
  });

  test('100 concurrent appendItems to one session all land once, in call order, also after a reopen', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    await store.createSession(session('other'));
    const ids = Array.from({ length: 100 }, (_, index) => `m${index}`);
    await Promise.all([
      ...ids.map((id) => store.appendItems('s', [message(id)])),
      store.appendItems('other', [message('x')]),
    ]);
    const order = (value: Session) =>
      value.items.map((item) => (item.kind === 'message' ? item.message.id : ''));
    expect(order(await store.getSession('s'))).toEqual(ids);
    expect(order(await (await reopen(store)).getSession('s'))).toEqual(ids);
  });

  test('a log full of message updates is compacted and keeps its content', async () => {
    const store = storeAt({ tuning: { compactMinBytes: 4096 } });
    await store.createSession(session('s', { items: [message('m0')] }));
    for (let index = 0; index < 200; index++) {
      await store.updateMessage('s', 'm0', { id: 'm0', role: 'user', content: `v${index}`, createdAt: at });
    }
    const expected = await store.getSession('s');
    expect((await readFile(logPath('s'))).length).toBeLessThan(8192);
    expect(await (await reopen(store)).getSession('s')).toEqual(expected);
    expect(expected.items).toEqual([
      { kind: 'message', message: { id: 'm0', role: 'user', content: 'v199', createdAt: at } },
    ]);
  });
});

describe('FileStore getSummary', () => {
  test('getSummary reads no file: the summary is kept in memory from the open', async () => {
    const store = storeAt();
    await store.createSession(session('s', { items: [message('m1')] }));
    await store.appendItems('s', [message('m2')]);
    const reopened = await reopen(store);
    await reopened.open();
    const opened = vi.spyOn(fsPromises, 'open');
    const read = vi.spyOn(fsPromises, 'readFile');
    try {
      const summary = await reopened.getSummary('s');
      expect(summary).toMatchObject({ id: 's', messageCount: 2 });
      expect(opened).not.toHaveBeenCalled();
      expect(read).not.toHaveBeenCalled();
      await reopened.getSession('s');
      expect(opened).toHaveBeenCalled();
    } finally {
      opened.mockRestore();
      read.mockRestore();
    }
  });
});

// A log without a complete record is no longer taken for an unfinished create (issue 9): see
// damage.test.ts, "a create that never finished leaves only a temporary file".
describe('FileStore crash leftovers', () => {
  test('getSession ignores a torn trailing line and the next write cuts it off', async () => {
    const store = storeAt();
    await store.createSession(session('s', { items: [message('m1')] }));
    await store.close();
    await appendFile(logPath('s'), '0badc0de {"t":"append","at":"2024');
    const reopened = storeAt();
    expect((await reopened.getSession('s')).items).toEqual([message('m1')]);
    await reopened.appendItems('s', [message('m2')]);
    const text = await readFile(logPath('s'), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('0badc0de');
    expect((await (await reopen(reopened)).getSession('s')).items).toEqual([message('m1'), message('m2')]);
  });
});

describe('FileStore damaged files', () => {
  test('a damaged line gives STORE_CORRUPT naming the file, listings skip the session with a warning, others keep working', async () => {
    const store = storeAt();
    await store.createSession(session('bad', { items: [message('m1', 'hello world')] }));
    await store.createSession(session('good'));
    await store.close();
    const text = await readFile(logPath('bad'), 'utf8');
    await writeFile(logPath('bad'), text.replace('hello world', 'hello w0rld'));

    const logger = recordingLogger();
    const reopened = storeAt({ logger });
    const error = await expectRejectsWithCode(reopened.getSession('bad'), 'STORE_CORRUPT');
    expect((error as AgentSessionsError & { path: string }).path).toBe(logPath('bad'));
    await expectRejectsWithCode(reopened.appendItems('bad', [message('m2')]), 'STORE_CORRUPT');
    expect((await reopened.listSessions()).sessions.map((summary) => summary.id)).toEqual(['good']);
    expect(logger.warnings.length).toBeGreaterThan(0);
    await reopened.appendItems('good', [message('g1')]);
    expect((await reopened.getSession('good')).items).toHaveLength(1);
    await reopened.deleteSession('bad');
    await expectRejectsWithCode(reopened.getSession('bad'), 'SESSION_NOT_FOUND');
  });

  test('a hand-edited line that is valid JSON still gives STORE_CORRUPT (its checksum does not match)', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1')]);
    await store.close();
    const text = await readFile(logPath('s'), 'utf8');
    await writeFile(logPath('s'), text.replace('"content":"m1"', '"content":"m2"'));
    await expectRejectsWithCode(storeAt().getSession('s'), 'STORE_CORRUPT');
  });

  test('a complete line of garbage after the summary offset marks the session damaged on open', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    await store.close();
    await appendFile(logPath('s'), 'not a record\n');
    const reopened = storeAt({ logger: recordingLogger() });
    await expectRejectsWithCode(reopened.getSession('s'), 'STORE_CORRUPT');
    expect((await reopened.listSessions()).sessions).toEqual([]);
  });
});

describe('FileStore path safety', () => {
  const hostile = [
    '..',
    '../escape',
    'a/b',
    '/abs',
    'a\\b',
    'a\0b',
    'x'.repeat(129),
    '\u0430bc', // Cyrillic a
    'ａbc', // full-width a
    '',
    '.hidden',
    'a.b',
    'con:',
  ];

  test.each(hostile)(
    'every call rejects id %j with INVALID_ARGUMENT before touching the file system',
    async (id) => {
      const store = storeAt();
      const calls: (() => Promise<unknown>)[] = [
        () => store.createSession(session(id)),
        () => store.getSession(id),
        () => store.updateSession(id, { title: 't' }),
        () => store.appendItems(id, [message('m')]),
        () => store.updateMessage(id, 'm', { id: 'm', role: 'user', content: '', createdAt: at }),
        () => store.deleteSession(id),
      ];
      for (const call of calls) await expectRejectsWithCode(call(), 'INVALID_ARGUMENT');
      // The store opens lazily: had any call reached the file system, the directory would exist.
      expect(existsSync(directory)).toBe(false);
    },
  );

  test('ids that differ only in case are different sessions with different files', async () => {
    const store = storeAt();
    await store.createSession(session('abc', { title: 'lower' }));
    await store.createSession(session('ABC', { title: 'upper' }));
    await store.createSession(session('aBc', { title: 'mixed' }));
    const files = (await readdir(join(directory, 'sessions'))).filter((file) => file.endsWith('.log'));
    expect(new Set(files.map((file) => file.toLowerCase())).size).toBe(3);
    const reopened = await reopen(store);
    expect((await reopened.getSession('ABC')).title).toBe('upper');
    expect((await reopened.getSession('aBc')).title).toBe('mixed');
    expect((await reopened.getSession('abc')).title).toBe('lower');
  });

  test.each(['abc', 'ABC', 'a_B-c9', `Z${'y'.repeat(127)}`, 'A'.repeat(128)])(
    'encodeSessionName(%j) is lowercase, short and decodes back',
    (id) => {
      const name = encodeSessionName(id);
      expect(name).toMatch(/^[a-z0-9][a-z0-9_.-]*$/);
      expect(name.length).toBeLessThan(200);
      expect(decodeSessionName(name)).toBe(id);
    },
  );

  test('a symlink planted where a log would be is never followed: STORE_CORRUPT, and the target is untouched', async () => {
    const store = storeAt();
    await store.createSession(session('real', { items: [message('m1')] }));
    await store.close();
    const outside = join(root, 'outside.log');
    const original = await readFile(logPath('real'), 'utf8');
    await writeFile(outside, original.replaceAll('real', 'link'));
    await symlink(outside, logPath('link'));
    const before = await readFile(outside, 'utf8');

    const reopened = storeAt({ logger: recordingLogger() });
    await expectRejectsWithCode(reopened.getSession('link'), 'STORE_CORRUPT');
    await expectRejectsWithCode(reopened.appendItems('link', [message('m2')]), 'STORE_CORRUPT');
    await expectRejectsWithCode(reopened.createSession(session('link')), 'STORE_CORRUPT');
    expect((await reopened.listSessions()).sessions.map((summary) => summary.id)).toEqual(['real']);
    await reopened.deleteSession('link');
    await reopened.close();
    expect(await readFile(outside, 'utf8')).toBe(before);
    expect(existsSync(logPath('link'))).toBe(false);
  });

  test('a symlink planted where a summary file would be is not read, and close replaces the link, not its target', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1')]);
    const listed = await store.listSessions();
    await store.close();
    const sum = join(directory, 'sessions', 's.sum');
    const outside = join(root, 'outside.sum');
    await writeFile(outside, await readFile(sum));
    await unlink(sum);
    await symlink(outside, sum);
    const before = await readFile(outside, 'utf8');
    const reopened = storeAt();
    expect(await reopened.listSessions()).toEqual(listed);
    await reopened.appendItems('s', [message('m2')]);
    await reopened.close();
    expect(await readFile(outside, 'utf8')).toBe(before);
  });

  test('open rejects with STORE_CORRUPT when the sessions directory is a symlink', async () => {
    await mkdir(directory, { recursive: true });
    await mkdir(join(root, 'elsewhere'));
    await symlink(join(root, 'elsewhere'), join(directory, 'sessions'));
    await expectRejectsWithCode(storeAt().listSessions(), 'STORE_CORRUPT');
  });
});

describe('FileStore lock and close', () => {
  test('a second store on the same directory rejects with STORE_LOCKED until the first closes', async () => {
    const first = storeAt();
    await first.createSession(session('s'));
    const second = storeAt();
    await expectRejectsWithCode(second.listSessions(), 'STORE_LOCKED');
    await first.close();
    expect((await second.listSessions()).sessions).toHaveLength(1);
  });

  test('every call after close rejects with CLOSED, and close is idempotent', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    const pending = store.appendItems('s', [message('m1')]);
    await Promise.all([store.close(), store.close()]);
    await pending;
    await expectRejectsWithCode(store.getSession('s'), 'CLOSED');
    await expectRejectsWithCode(store.listSessions(), 'CLOSED');
    await expectRejectsWithCode(store.createSession(session('t')), 'CLOSED');
    await expectRejectsWithCode(store.appendItems('s', [message('m2')]), 'CLOSED');
    await expectRejectsWithCode(store.open(), 'CLOSED');
    expect((await storeAt().getSession('s')).items).toEqual([message('m1')]);
  });

  test('constructor rejects an unknown durability with INVALID_ARGUMENT', () => {
    expect(() => new FileStore({ directory, durability: 'sometimes' as 'fsync' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('FileStore durability', () => {
  // What one appendItems asks of the file system: whether the log was opened with O_DSYNC (each
  // write reaches the disk before it returns) and how many fdatasync calls were made.
  async function appendSyncs(
    durability: 'fsync' | 'buffered',
  ): Promise<{ dsync: boolean; datasyncs: number }> {
    const store = storeAt({ durability });
    await store.createSession(session('s'));
    // FileHandle is not exported by node:fs; its prototype is reached through an open handle.
    const handle = await open(join(root, 'probe'), 'w');
    const prototype = Object.getPrototypeOf(handle) as { datasync(): Promise<void> };
    await handle.close();
    const datasync = vi.spyOn(prototype, 'datasync');
    const opened = vi.spyOn(fsPromises, 'open');
    try {
      await store.appendItems('s', [message('m1')]);
      const logOpens = opened.mock.calls.filter((call) => String(call[0]) === logPath('s'));
      expect(logOpens).toHaveLength(1);
      return {
        dsync: (Number(logOpens[0]![1]) & fsConstants.O_DSYNC) !== 0,
        datasyncs: datasync.mock.calls.length,
      };
    } finally {
      datasync.mockRestore();
      opened.mockRestore();
    }
  }

  test("with 'fsync' appendItems writes through a log handle opened with O_DSYNC: write and sync are one call", async () => {
    expect(await appendSyncs('fsync')).toEqual({ dsync: true, datasyncs: 0 });
  });

  test("with 'buffered' appendItems neither syncs nor opens the log with O_DSYNC", async () => {
    expect(await appendSyncs('buffered')).toEqual({ dsync: false, datasyncs: 0 });
  });
});
