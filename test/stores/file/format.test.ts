// FileStore's on-disk format: versioned records, logs written before versions existed, and records
// that do not fit the format.
import { appendFile, cp, mkdtemp, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { Page, SessionSummary } from '../../../src/index.js';
import { encodeLine } from '../../../src/internal/record-lines.js';
import type { Logger } from '../../../src/logger.js';
import type { Session, SessionItem } from '../../../src/schemas.js';
import {
  appendLine,
  encodeSessionName,
  FORMAT_VERSION,
  judgeTail,
  readRecord,
} from '../../../src/stores/file/format.js';
import { FileStore } from '../../../src/stores/file/store.js';
import { expectRejectsWithCode } from '../../helpers/assertions.js';
import { sessionRecord } from '../../helpers/sessions.js';

// A store directory written by FileStore before log records carried a format version (commit
// 548ad71), with what that code read back from it.
const FIXTURE = fileURLToPath(new URL('../fixtures/format-v0', import.meta.url));
// The same for format version 1 (checksummed `{"v":1,"t":…}` records), written by commit 9402798
// before the compact format: creates, appends, a patch and a message replacement.
const FIXTURE_V1 = fileURLToPath(new URL('../fixtures/format-v1', import.meta.url));

let root: string;
let directory: string;
const stores: FileStore[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-format-'));
  directory = join(root, 'store');
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await rm(root, { recursive: true, force: true });
});

function storeAt(logger?: Logger): FileStore {
  const store = new FileStore({ directory, durability: 'buffered', ...(logger ? { logger } : {}) });
  stores.push(store);
  return store;
}

function logPath(id: string): string {
  return join(directory, 'sessions', `${encodeSessionName(id)}.log`);
}

const at = '2024-01-01T00:00:00.000Z';
const message = (id: string): SessionItem => ({
  kind: 'message',
  message: { id, role: 'user', content: id, createdAt: at },
});

async function expected(fixture = FIXTURE): Promise<{ sessions: Session[]; listing: Page<SessionSummary> }> {
  return JSON.parse(await readFile(join(fixture, 'expected.json'), 'utf8'));
}

describe('FileStore format versions', () => {
  test.each([
    ['0', FIXTURE],
    ['1', FIXTURE_V1],
  ])(
    'a store written in format version %s opens, reads back exactly and takes new writes',
    async (_, fixture) => {
      const want = await expected(fixture);
      await cp(fixture, directory, { recursive: true });
      await unlink(join(directory, 'expected.json'));
      const store = storeAt();
      for (const session of want.sessions) expect(await store.getSession(session.id)).toEqual(session);
      expect(await store.listSessions()).toEqual(want.listing);
      const first = want.sessions[0]!;
      await store.appendItems(first.id, [message('added-now')]);
      await store.close();
      const reopened = storeAt();
      const read = await reopened.getSession(first.id);
      expect(read.items.slice(0, -1)).toEqual(first.items);
      expect(read.items.at(-1)).toEqual(message('added-now'));
      for (const session of want.sessions.slice(1))
        expect(await reopened.getSession(session.id)).toEqual(session);
    },
  );

  test('a store written before records had a version opens and reads back exactly, with and without its summary files', async () => {
    const want = await expected();
    await cp(FIXTURE, directory, { recursive: true });
    await unlink(join(directory, 'expected.json'));
    const store = storeAt();
    for (const session of want.sessions) expect(await store.getSession(session.id)).toEqual(session);
    expect(await store.listSessions()).toEqual(want.listing);
    await store.close();

    for (const file of await readdir(join(directory, 'sessions'))) {
      if (file.endsWith('.sum')) await unlink(join(directory, 'sessions', file));
    }
    const rebuilt = storeAt();
    expect(await rebuilt.listSessions()).toEqual(want.listing);
    for (const session of want.sessions) expect(await rebuilt.getSession(session.id)).toEqual(session);
  });

  test('a legacy log takes new records after its old ones and reads back whole after a reopen', async () => {
    const want = await expected();
    await cp(FIXTURE, directory, { recursive: true });
    const store = storeAt();
    await store.appendItems('Legacy-1', [message('new-1')]);
    await store.updateSession('Legacy-1', { title: 'renamed' });
    await store.close();
    const text = await readFile(logPath('Legacy-1'), 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(lines.slice(0, -2).every((line) => !line.includes('"v":'))).toBe(true);
    expect(lines.slice(-2).every((line) => line.slice(9).startsWith(`[${FORMAT_VERSION},`))).toBe(true);
    const session = await storeAt().getSession('Legacy-1');
    expect(session.title).toBe('renamed');
    expect(session.items).toEqual([...want.sessions[0]!.items, message('new-1')]);
  });

  test('every record written now carries the format version', async () => {
    const store = storeAt();
    await store.createSession(sessionRecord('s', { items: [message('m0')] }, at));
    await store.appendItems('s', [message('m1')]);
    await store.updateSession('s', { title: 't', workingDir: undefined });
    await store.updateMessage('s', 'm1', { id: 'm1', role: 'assistant', content: 'x', createdAt: at });
    await store.close();
    const lines = (await readFile(logPath('s'), 'utf8')).trimEnd().split('\n');
    expect(lines.map((line) => (JSON.parse(line.slice(9)) as unknown[]).slice(0, 2))).toEqual([
      [FORMAT_VERSION, 's'],
      [FORMAT_VERSION, 'a'],
      [FORMAT_VERSION, 'p'],
      [FORMAT_VERSION, 'm'],
    ]);
  });

  test('an append record holds a message as its message object and the time as milliseconds', async () => {
    const store = storeAt();
    await store.createSession(sessionRecord('s', {}, at));
    const item = message('m1');
    await store.appendItems('s', [item]);
    const updatedAt = (await store.getSummary('s')).updatedAt;
    await store.close();
    const last = (await readFile(logPath('s'), 'utf8')).trimEnd().split('\n').at(-1)!;
    const json = `[${FORMAT_VERSION},"a",${Date.parse(updatedAt)},${JSON.stringify(item.kind === 'message' ? item.message : item)}]`;
    expect(last.slice(9)).toBe(json);
    // The framing (checksum, space, newline) and the envelope: a short message costs little more than its JSON.
    expect(Buffer.byteLength(last) + 1 - Buffer.byteLength(JSON.stringify(item))).toBeLessThan(10);
  });

  test('every kind of item, a patch removing a field and a message update read back exactly after a reopen', async () => {
    const store = storeAt();
    await store.createSession(sessionRecord('s', { workingDir: '/w' }, at));
    const items: SessionItem[] = [
      message('m1'),
      { kind: 'summary', id: 'sum1', summary: 'so far', firstKeptItem: 1, createdAt: at },
      { kind: 'error', id: 'e1', message: 'failed', code: 'X', createdAt: at },
      {
        kind: 'message',
        message: { id: 'm2', role: 'assistant', content: 'é🙂\n"q"', toolCalls: [], createdAt: at },
      },
    ];
    await store.appendItems('s', items);
    await store.updateSession('s', {
      title: 'T',
      workingDir: undefined,
      attributes: { a: [1, { b: null }] },
    });
    await store.updateMessage('s', 'm1', { id: 'm1', role: 'user', content: 'edited', createdAt: at });
    const before = await store.getSession('s');
    expect(before.workingDir).toBeUndefined();
    await store.close();
    expect(await storeAt().getSession('s')).toEqual(before);
  });

  test('a time that milliseconds cannot give back exactly is kept as the string', () => {
    const line = appendLine('2024-01-01T00:00:00Z', [message('m1')]);
    const value = JSON.parse(line.text.slice(9)) as unknown[];
    expect(value[2]).toBe('2024-01-01T00:00:00Z');
    const record = readRecord({ start: 0, end: line.length, crc: line.crc, value }, 'x.log');
    expect(record).toMatchObject({ t: 'append', at: '2024-01-01T00:00:00Z', items: [message('m1')] });
  });

  test('a record of a newer format version is STORE_CORRUPT naming the file and the version', async () => {
    const store = storeAt();
    await store.createSession(sessionRecord('s', {}, at));
    await store.createSession(sessionRecord('other', {}, at));
    await store.close();
    const line = encodeLine(
      JSON.stringify({ v: FORMAT_VERSION + 1, t: 'append', at, items: [message('from-the-future')] }),
    );
    await appendFile(logPath('s'), line.text);
    const reopened = storeAt({ debug() {}, info() {}, warn() {}, error() {} });
    const error = await expectRejectsWithCode(reopened.getSession('s'), 'STORE_CORRUPT');
    expect(error.message).toContain(`format version ${FORMAT_VERSION + 1}`);
    expect((error as { path?: string }).path).toBe(logPath('s'));
    expect((await reopened.getSession('other')).id).toBe('other');
  });

  test.each([
    ['items that are not an array', { v: 1, t: 'append', at, items: 'nope' }],
    ['a record that is an array', [1, 2, 3]],
    ['a patch without set', { v: 1, t: 'patch', at, unset: [] }],
    ['a message update without a message', { v: 1, t: 'message', at, id: 'm1' }],
    ['an unknown record type', { v: 1, t: 'rewind', at }],
    ['a version that is not a number', { v: 'one', t: 'append', at, items: [] }],
    ['an object record claiming version 2', { v: 2, t: 'append', at, items: [] }],
    ['a compact record of version 1', [1, 'a', 0]],
    ['a compact record with an unknown tag', [2, 'x', 0]],
    ['a compact append whose item is not an object', [2, 'a', 0, 'nope']],
    ['a compact append whose message has no id', [2, 'a', 0, { role: 'user', content: '' }]],
    ['a compact append with an invalid time', [2, 'a', true]],
    ['a compact patch without set', [2, 'p', 0, null, []]],
    ['a compact message update without a message', [2, 'm', 0, 'm1']],
    ['a compact session record holding no session', [2, 's', 7]],
  ])('a record with a valid checksum but %s is STORE_CORRUPT, not a TypeError', async (_what, record) => {
    const store = storeAt();
    await store.createSession(sessionRecord('s', { items: [message('m1')] }, at));
    await store.close();
    await appendFile(logPath('s'), encodeLine(JSON.stringify(record)).text);
    const reopened = storeAt({ debug() {}, info() {}, warn() {}, error() {} });
    await expectRejectsWithCode(reopened.getSession('s'), 'STORE_CORRUPT');
    expect((await reopened.listSessions()).sessions).toEqual([]);
  });
});

describe('judgeTail', () => {
  const record = encodeLine(JSON.stringify({ v: 1, t: 'append', at, items: [] })).text;
  test.each([
    ['nothing', '', 'none'],
    ['a few bytes of a checksum', '0a1b', 'torn'],
    ['a record cut short', record.slice(0, -5), 'torn'],
    ['a whole record without its newline', record.slice(0, -1), 'torn'],
  ])('%s after the last line is a torn tail of an unfinished write', (_what, tail, expected) => {
    expect(judgeTail(Buffer.from(tail), 100, 'x.log')).toBe(expected);
  });

  test.each([
    ['bytes that do not start like a record', 'hello world'],
    ['a whole record whose newline was replaced', `${record.slice(0, -1)}!`],
    ['a checksum with capitals', '0A1B2C3D {'],
  ])('%s is STORE_CORRUPT', (_what, tail) => {
    expect(() => judgeTail(Buffer.from(tail), 100, 'x.log')).toThrow(
      expect.objectContaining({ code: 'STORE_CORRUPT' }),
    );
  });
});
