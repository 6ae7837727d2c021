// FileStore's write and read path: kept append handles, group commit of queued appends, failed
// writes cut off, and the decoded-session cache (copies out, bounded, dropped when a log changes).
import callbackFs, { constants as fsConstants, promises as fsPromises, readdirSync } from 'node:fs';
import { link, mkdtemp, open, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { copyJson } from '../../../src/internal/clone.js';
import { decodeLines, encodeLine } from '../../../src/internal/record-lines.js';
import type { Session, SessionItem } from '../../../src/schemas.js';
import { encodeSessionName } from '../../../src/stores/file/format.js';
import { FileStore, type FileStoreOptions } from '../../../src/stores/file/store.js';
import { expectRejectsWithCode } from '../../helpers/assertions.js';
import { sessionRecord } from '../../helpers/sessions.js';

let root: string;
let directory: string;
const stores: FileStore[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-write-path-'));
  directory = join(root, 'store');
});

// Spies made by a test, restored after it even when it fails.
const spies: { mockRestore(): void }[] = [];
function spied<T extends { mockRestore(): void }>(spy: T): T {
  spies.push(spy);
  return spy;
}

afterEach(async () => {
  for (const spy of spies.splice(0)) spy.mockRestore();
  for (const store of stores.splice(0)) await store.close();
  await rm(root, { recursive: true, force: true });
});

function storeAt(options: Partial<FileStoreOptions> = {}): FileStore {
  const store = new FileStore({ directory, durability: 'buffered', ...options });
  stores.push(store);
  return store;
}

const at = '2024-01-01T00:00:00.000Z';
const session = (id: string, overrides: Partial<Session> = {}) => sessionRecord(id, overrides, at);
const message = (id: string, content = id): SessionItem => ({
  kind: 'message',
  message: { id, role: 'user', content, createdAt: at },
});
const ids = (value: Session) =>
  value.items.map((item) => (item.kind === 'message' ? item.message.id : item.id));
const logPath = (id: string) => join(directory, 'sessions', `${encodeSessionName(id)}.log`);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** The prototype of fs.promises FileHandle (not exported by node:fs). */
async function fileHandlePrototype(): Promise<{
  write(...args: unknown[]): Promise<{ bytesWritten: number }>;
}> {
  const handle = await open(join(root, 'probe'), 'w');
  const prototype = Object.getPrototypeOf(handle);
  await handle.close();
  return prototype;
}

/**
 * A stand-in for `fs.write(fd, buffer, offset, length, position, callback)` that writes the first
 * `keep(buffer)` bytes for real, then fails with `code`.
 */
function failingWrite(keep: (buffer: Buffer) => number, code: string): typeof callbackFs.write {
  const real = callbackFs.write;
  return ((...args: unknown[]) => {
    const fd = args[0] as number;
    const buffer = args[1] as Buffer;
    const callback = args.at(-1) as (error: NodeJS.ErrnoException | null, written: number) => void;
    const part = buffer.subarray(0, keep(buffer));
    real(fd, part, 0, part.length, null, (error) => {
      callback(error ?? Object.assign(new Error(`${code}: write failed`), { code }), 0);
    });
  }) as typeof callbackFs.write;
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('FileStore append handles', () => {
  test('appends to one session open its log once and keep writing through that handle', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    const opened = spied(vi.spyOn(fsPromises, 'open'));
    for (let index = 0; index < 20; index++) await store.appendItems('s', [message(`m${index}`)]);
    expect(opened.mock.calls.filter((call) => String(call[0]) === logPath('s'))).toHaveLength(1);
    opened.mockRestore();
    await store.close();
    expect(ids(await storeAt().getSession('s'))).toHaveLength(20);
  });

  test('at most 64 append handles stay open, whatever the number of sessions written', async () => {
    const store = storeAt();
    await store.open();
    const before = openFds();
    for (let index = 0; index < 100; index++) {
      await store.createSession(session(`s${index}`));
      await store.appendItems(`s${index}`, [message('m')]);
    }
    // Evicted handles close asynchronously: let those closes finish.
    await vi.waitFor(() => expect(openFds() - before).toBeLessThanOrEqual(64));
    expect(openFds() - before).toBeGreaterThan(0);
    await store.close();
    await vi.waitFor(() => expect(openFds()).toBeLessThan(before));
  });

  test('a hard link made to a log after its handle was kept is refused at the next write', async () => {
    const store = storeAt({ logger: silent });
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1')]);
    const outside = join(root, 'outside.log');
    await link(logPath('s'), outside);
    const before = await readFile(outside);
    const error = await expectRejectsWithCode(store.appendItems('s', [message('m2')]), 'STORE_CORRUPT');
    expect(error.message).toMatch(/2 hard links/);
    expect(await readFile(outside)).toEqual(before);
  });

  test('a log deleted while its handle is kept: the next write is STORE_CORRUPT, not written to the deleted file', async () => {
    const store = storeAt({ logger: silent });
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1')]);
    await unlink(logPath('s'));
    const error = await expectRejectsWithCode(store.appendItems('s', [message('m2')]), 'STORE_CORRUPT');
    expect(error.message).toMatch(/missing/);
  });

  test('a log replaced by another file while its handle is kept: the next write goes to the file now at its path', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1')]);
    // The same bytes under a new inode, moved over the log.
    const copy = join(root, 'copy.log');
    await writeFile(copy, await readFile(logPath('s')));
    await rename(copy, logPath('s'));
    await store.appendItems('s', [message('m2')]);
    await store.close();
    expect(ids(await storeAt().getSession('s'))).toEqual(['m1', 'm2']);
  });

  test('a log another process wrote to while its handle is kept is refused with STORE_LOCKED', async () => {
    const store = storeAt({ logger: silent });
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1')]);
    await writeFile(logPath('s'), encodeLine('[2,"a",0]').text, { flag: 'a' });
    await expectRejectsWithCode(store.appendItems('s', [message('m2')]), 'STORE_LOCKED');
  });
});

describe('FileStore group commit', () => {
  test("8 appends made at once are written with fewer writes than appends and read back in call order ('fsync')", async () => {
    const store = storeAt({ durability: 'fsync' });
    await store.createSession(session('s'));
    await store.appendItems('s', [message('first')]);
    // Appends write through the callback API on the kept handle's descriptor.
    const write = spied(vi.spyOn(callbackFs, 'write'));
    const order = Array.from({ length: 8 }, (_, index) => `m${index}`);
    await Promise.all(order.map((id) => store.appendItems('s', [message(id)])));
    expect(write.mock.calls.length).toBeLessThan(8);
    write.mockRestore();
    expect(ids(await store.getSession('s'))).toEqual(['first', ...order]);
    await store.close();
    expect(ids(await storeAt().getSession('s'))).toEqual(['first', ...order]);
  });

  test('a failed write rejects only the appends it carried, leaves no bytes behind, and later appends land', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m0')]);
    // The write carrying m1 and m2 puts half its bytes in the file, then fails.
    const spy = spied(
      vi
        .spyOn(callbackFs, 'write')
        .mockImplementationOnce(failingWrite((buffer) => buffer.length >> 1, 'ENOSPC')),
    );
    const outcomes = await Promise.allSettled([
      store.appendItems('s', [message('m1')]),
      store.appendItems('s', [message('m2')]),
    ]);
    spy.mockRestore();
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    const text = await readFile(logPath('s'));
    expect(text.at(-1)).toBe(0x0a);
    expect(decodeLines(text).end).toBe(text.length);
    await store.appendItems('s', [message('m3')]);
    expect(ids(await store.getSession('s'))).toEqual(['m0', 'm3']);
    await store.close();
    expect(ids(await storeAt().getSession('s'))).toEqual(['m0', 'm3']);
  });

  test('bytes of a failed write that could not be cut off are recognised as the store’s own and cut before the next write', async () => {
    const store = storeAt();
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m0')]);
    const prototype = (await fileHandlePrototype()) as unknown as { truncate(length: number): Promise<void> };
    // A whole first line reaches the file, then the write fails, and so does cutting it off.
    const spy = spied(
      vi
        .spyOn(callbackFs, 'write')
        .mockImplementationOnce(failingWrite((buffer) => buffer.indexOf(0x0a) + 1, 'EIO')),
    );
    const truncate = spied(vi.spyOn(prototype, 'truncate')).mockRejectedValueOnce(
      new Error('EIO: i/o error'),
    );
    const outcomes = await Promise.allSettled([
      store.appendItems('s', [message('m1')]),
      store.appendItems('s', [message('m2')]),
    ]);
    spy.mockRestore();
    truncate.mockRestore();
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    await store.appendItems('s', [message('m3')]);
    await store.close();
    expect(ids(await storeAt().getSession('s'))).toEqual(['m0', 'm3']);
  });
});

describe('FileStore decoded-session cache', () => {
  test('getSession after writes reads no file, and returns a copy each time', async () => {
    const store = storeAt();
    await store.createSession(session('s', { attributes: { nested: { a: [1] } } }));
    await store.appendItems('s', [message('m1')]);
    await store.updateSession('s', { title: 'T', starred: true });
    await store.updateMessage('s', 'm1', { id: 'm1', role: 'assistant', content: 'edited', createdAt: at });
    const opened = spied(vi.spyOn(fsPromises, 'open'));
    const first = await store.getSession('s');
    expect(opened).not.toHaveBeenCalled();
    opened.mockRestore();
    first.items.push(message('mutated'));
    (first.attributes as { nested: { a: number[] } }).nested.a.push(2);
    first.title = 'changed';
    const second = await store.getSession('s');
    expect(second).not.toBe(first);
    expect(ids(second)).toEqual(['m1']);
    expect(second.attributes).toEqual({ nested: { a: [1] } });
    expect(second.title).toBe('T');
    await store.close();
    expect(await storeAt().getSession('s')).toEqual(second);
  });

  test('with cacheBytes 0 every getSession decodes the log again', async () => {
    const store = storeAt({ cacheBytes: 0 });
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1')]);
    const opened = spied(vi.spyOn(fsPromises, 'open'));
    await store.getSession('s');
    await store.getSession('s');
    expect(opened.mock.calls.filter((call) => String(call[0]) === logPath('s'))).toHaveLength(2);
  });

  test('the cache is bounded by log bytes: a session read twice is kept, evicting the least recently used', async () => {
    const big = 'x'.repeat(3000);
    const store = storeAt({ cacheBytes: 8000 });
    // Each session is kept from its create; the third evicts the first.
    for (const id of ['a', 'b', 'c']) {
      await store.createSession(session(id));
      await store.appendItems(id, [message(`${id}1`, big)]);
    }
    const opened = spied(vi.spyOn(fsPromises, 'open'));
    const reads = () => opened.mock.calls.map((call) => String(call[0]));
    await store.getSession('c');
    await store.getSession('b');
    expect(reads()).toEqual([]);
    // Read once, 'a' is decoded for that call only; read again, it is kept and 'c' is evicted.
    await store.getSession('a');
    expect(reads()).toEqual([logPath('a')]);
    await store.getSession('a');
    await store.getSession('a');
    await store.getSession('b');
    expect(reads()).toEqual([logPath('a'), logPath('a')]);
    await store.getSession('c');
    expect(reads()).toEqual([logPath('a'), logPath('a'), logPath('c')]);
  });

  test('verify reads the logs on disk, not the cache', async () => {
    const store = storeAt({ logger: silent });
    await store.createSession(session('s'));
    await store.appendItems('s', [message('m1', 'hello world')]);
    await store.getSession('s');
    const text = await readFile(logPath('s'), 'utf8');
    await writeFile(logPath('s'), text.replace('hello world', 'hello w0rld'));
    const report = await store.verify();
    expect(report.damaged.map((damaged) => damaged.code)).toEqual(['STORE_CORRUPT']);
    await expectRejectsWithCode(store.getSession('s'), 'STORE_CORRUPT');
  });

  test('a compaction keeps what getSession returns, before and after a reopen', async () => {
    const store = storeAt({ tuning: { compactMinBytes: 2048 } });
    await store.createSession(session('s', { items: [message('m0')] }));
    for (let index = 0; index < 60; index++) {
      await store.updateMessage('s', 'm0', { id: 'm0', role: 'user', content: `v${index}`, createdAt: at });
      await store.appendItems('s', [message(`n${index}`)]);
    }
    const expected = await store.getSession('s');
    expect(expected.items[0]).toMatchObject({ message: { content: 'v59' } });
    await store.close();
    expect(await storeAt().getSession('s')).toEqual(expected);
  });

  test('the constructor rejects a negative or fractional cacheBytes with INVALID_ARGUMENT', () => {
    for (const cacheBytes of [-1, 1.5, Number.NaN]) {
      expect(() => new FileStore({ directory, cacheBytes })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('decoding', () => {
  test('decodeLines decodes lines in pieces: lines longer and shorter than a piece, multi-byte text', () => {
    const values = [
      { text: 'é🙂'.repeat(10) },
      { text: 'x'.repeat(70 * 1024) },
      ...Array.from({ length: 3000 }, (_, index) => ({ n: index, text: `ü${index}` })),
      { text: '🙂'.repeat(40 * 1024) },
      { tail: true },
    ];
    const buffer = Buffer.from(values.map((value) => encodeLine(JSON.stringify(value)).text).join(''));
    const { lines, end } = decodeLines(buffer, 100);
    expect(end).toBe(100 + buffer.length);
    expect(lines.map((line) => line.value)).toEqual(values);
  });

  test('copyJson copies deeply, shares nothing, and keeps an own __proto__ key as data', () => {
    const value = JSON.parse('{"a":[1,{"b":null}],"__proto__":{"polluted":true},"s":"x"}') as Record<
      string,
      unknown
    >;
    const copy = copyJson(value);
    expect(copy).toEqual(value);
    expect(copy.a).not.toBe(value.a);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.hasOwn(copy, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(fsConstants.O_DSYNC).toBeGreaterThan(0);
  });
});
