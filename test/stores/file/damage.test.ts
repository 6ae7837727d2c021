// FileStore and damage it did not cause (issue 9): damage is reported, never repaired by deleting or
// cutting; nothing blocks on a FIFO; one bad file damages one session; the lock cannot be bypassed;
// a hard link never leads outside. Cases that could hang or need another user run in a child.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { AgentSessionsError } from '../../../src/errors.js';
import type { Logger } from '../../../src/logger.js';
import type { Session, SessionItem } from '../../../src/schemas.js';
import { encodeSessionName } from '../../../src/stores/file/format.js';
import { FileStore } from '../../../src/stores/file/store.js';
import { expectRejectsWithCode } from '../../helpers/assertions.js';
import { sessionRecord } from '../../helpers/sessions.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PROBE = fileURLToPath(new URL('../fixtures/store-probe.ts', import.meta.url));
const APPENDER = fileURLToPath(new URL('../fixtures/appender.ts', import.meta.url));
const HOLDER = fileURLToPath(new URL('../fixtures/lock-holder.ts', import.meta.url));

let root: string;
let directory: string;
const stores: FileStore[] = [];
const children: ChildProcess[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-damage-'));
  directory = join(root, 'store');
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {});
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

interface RecordingLogger extends Logger {
  warnings: { message: string; fields: Record<string, unknown> | undefined }[];
}

function recordingLogger(): RecordingLogger {
  const warnings: RecordingLogger['warnings'] = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn: (message, fields) => warnings.push({ message, fields }),
    error() {},
  };
}

function storeAt(options: Partial<ConstructorParameters<typeof FileStore>[0]> = {}): FileStore {
  const store = new FileStore({ directory, durability: 'buffered', logger: recordingLogger(), ...options });
  stores.push(store);
  return store;
}

const at = '2024-01-01T00:00:00.000Z';
const session = (id: string, overrides: Partial<Session> = {}): Session => sessionRecord(id, overrides, at);
const message = (id: string, content = id): SessionItem => ({
  kind: 'message',
  message: { id, role: 'user', content, createdAt: at },
});
const sessionsDir = () => join(directory, 'sessions');
const logPath = (id: string) => join(sessionsDir(), `${encodeSessionName(id)}.log`);
const summaryPath = (id: string) => join(sessionsDir(), `${encodeSessionName(id)}.sum`);
const ids = (items: readonly SessionItem[]) =>
  items.map((item) => (item.kind === 'message' ? item.message.id : item.id));

/** A store with sessions `victim` (3 items) and `other` (1 item), closed, so summary files exist. */
async function seed(withSummaries = true): Promise<void> {
  const store = new FileStore({ directory, durability: 'buffered' });
  await store.createSession(session('victim', { items: [message('v0')] }));
  await store.appendItems('victim', [message('v1')]);
  await store.appendItems('victim', [message('v2')]);
  await store.updateSession('victim', { title: 'victim' });
  await store.createSession(session('other', { items: [message('o0')] }));
  await store.close();
  if (!withSummaries) {
    for (const file of await readdir(sessionsDir()))
      if (file.endsWith('.sum')) await unlink(join(sessionsDir(), file));
  }
}

/** Asserts `victim` is reported (not deleted, not cut) and `other` keeps working. */
async function expectReported(store: FileStore, detail: RegExp): Promise<void> {
  const before = await readFile(logPath('victim'));
  const error = (await expectRejectsWithCode(
    store.getSession('victim'),
    'STORE_CORRUPT',
  )) as AgentSessionsError & {
    path: string;
  };
  expect(error.path).toBe(logPath('victim'));
  expect(error.message).toMatch(detail);
  await expectRejectsWithCode(store.appendItems('victim', [message('late')]), 'STORE_CORRUPT');
  await expectRejectsWithCode(store.getSummary('victim'), 'STORE_CORRUPT');
  expect((await store.listSessions()).sessions.map((summary) => summary.id)).toEqual(['other']);
  await store.appendItems('other', [message('o1')]);
  expect(ids((await store.getSession('other')).items)).toEqual(['o0', 'o1']);
  await store.close();
  // Nothing on disk changed: the log is byte for byte what was found.
  expect(await readFile(logPath('victim'))).toEqual(before);
}

function damageWarnings(logger: RecordingLogger): unknown[] {
  return logger.warnings.filter((warning) => warning.fields?.sessionId === 'victim');
}

describe('1. damage on open is reported, never deleted or cut', () => {
  test('a 0-byte log whose summary shows the session existed is STORE_CORRUPT, logged, and left on disk', async () => {
    await seed();
    await truncate(logPath('victim'), 0);
    const logger = recordingLogger();
    const store = storeAt({ logger });
    await expectReported(store, /no complete record, but its summary file says the session was written/);
    expect(damageWarnings(logger).length).toBeGreaterThan(0);
    expect(existsSync(summaryPath('victim'))).toBe(true);
  });

  test('a 0-byte log without a summary file is STORE_CORRUPT, not taken for an unfinished create', async () => {
    await seed(false);
    await truncate(logPath('victim'), 0);
    await expectReported(storeAt(), /no complete record/);
  });

  test('a one-line log whose final newline is damaged is STORE_CORRUPT naming the damage', async () => {
    const store = new FileStore({ directory, durability: 'buffered' });
    await store.createSession(session('victim', { items: [message('v0')] }));
    await store.createSession(session('other', { items: [message('o0')] }));
    await store.close();
    const bytes = await readFile(logPath('victim'));
    bytes[bytes.length - 1] = 0x21;
    await writeFile(logPath('victim'), bytes);
    await expectReported(storeAt(), /final newline .* is damaged/);
  });

  test('a log cut in the middle of a record, with a summary recording more, is STORE_CORRUPT and the next write cuts nothing', async () => {
    await seed();
    const size = (await stat(logPath('victim'))).size;
    await truncate(logPath('victim'), size - 20);
    await expectReported(storeAt(), /acknowledged writes are missing/);
    expect((await stat(logPath('victim'))).size).toBe(size - 20);
  });

  test('a log whose last record lost its final newline (the last patch) is STORE_CORRUPT', async () => {
    await seed(false);
    const bytes = await readFile(logPath('victim'));
    bytes[bytes.length - 1] = 0x20;
    await writeFile(logPath('victim'), bytes);
    await expectReported(storeAt(), /final newline/);
  });

  test('a log cut at a record boundary, with a summary recording a later state, is STORE_CORRUPT', async () => {
    await seed();
    const text = await readFile(logPath('victim'), 'utf8');
    const lines = text.split('\n').filter(Boolean);
    await writeFile(logPath('victim'), `${lines.slice(0, 2).join('\n')}\n`);
    await expectReported(storeAt(), /older state .* than its summary file recorded/);
  });

  test('a create that never finished leaves only a temporary file, which open removes: the session does not exist', async () => {
    await mkdir(sessionsDir(), { recursive: true });
    const temp = join(sessionsDir(), `${encodeSessionName('half')}.0a1b2c3d4e5f.tmp`);
    await writeFile(temp, '12345678 {"v":1,"t":"session","sess');
    const store = storeAt();
    expect((await store.listSessions()).sessions).toEqual([]);
    await expectRejectsWithCode(store.getSession('half'), 'SESSION_NOT_FOUND');
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(logPath('half'))).toBe(false);
    await store.createSession(session('half'));
    expect((await store.getSession('half')).id).toBe('half');
  });

  test('verify reports every damaged session with its file; repairSession cuts back to the last valid record, keeping a copy', async () => {
    await seed(false);
    const original = await readFile(logPath('victim'));
    // Damage the third record (the second append): it and everything after it are dropped.
    const lines = original.toString('utf8').split('\n');
    const third = lines.slice(0, 2).join('\n').length + 1;
    const damaged = Buffer.from(original);
    damaged[third + 20] = damaged[third + 20] === 0x41 ? 0x42 : 0x41;
    await writeFile(logPath('victim'), damaged);
    const store = storeAt();
    const report = await store.verify();
    expect(report.checked).toBe(2);
    expect(report.damaged).toEqual([
      expect.objectContaining({ sessionId: 'victim', code: 'STORE_CORRUPT', path: logPath('victim') }),
    ]);
    expect(await readFile(logPath('victim'))).toEqual(damaged);

    const repaired = await store.repairSession('victim', { truncateTo: 'last-valid-record' });
    expect(repaired).toMatchObject({
      sessionId: 'victim',
      keptBytes: third,
      droppedBytes: damaged.length - third,
    });
    expect(await readFile(repaired.backup!)).toEqual(damaged);
    expect(ids((await store.getSession('victim')).items)).toEqual(['v0', 'v1']);
    expect((await store.listSessions()).sessions.map((summary) => summary.id).sort()).toEqual([
      'other',
      'victim',
    ]);
    await store.appendItems('victim', [message('v3')]);
    expect((await store.verify()).damaged).toEqual([]);
    await store.close();
    expect(ids((await storeAt().getSession('victim')).items)).toEqual(['v0', 'v1', 'v3']);
  });

  test('repairSession of a sound session changes nothing; of a log with no valid record it refuses', async () => {
    await seed();
    const store = storeAt();
    expect(await store.repairSession('other', { truncateTo: 'last-valid-record' })).toEqual({
      sessionId: 'other',
      keptBytes: (await stat(logPath('other'))).size,
      droppedBytes: 0,
    });
    await store.close();
    await writeFile(logPath('victim'), 'garbage that is no record\n');
    const reopened = storeAt();
    await expectRejectsWithCode(
      reopened.repairSession('victim', { truncateTo: 'last-valid-record' }),
      'STORE_CORRUPT',
    );
    await expectRejectsWithCode(
      reopened.repairSession('victim', { truncateTo: 'everything' as 'last-valid-record' }),
      'INVALID_ARGUMENT',
    );
    await expectRejectsWithCode(
      reopened.repairSession('nobody', { truncateTo: 'last-valid-record' }),
      'SESSION_NOT_FOUND',
    );
    await reopened.deleteSession('victim');
    expect(existsSync(logPath('victim'))).toBe(false);
  });
});

interface ProbeLine {
  call: string[];
  ok: boolean;
  code?: string;
  value?: unknown;
  message?: string;
}

/** Runs calls on the directory in a child process; rejects when it does not finish in `ms`. */
function probe(calls: string[][], options: { uid?: number; ms?: number } = {}): Promise<ProbeLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', PROBE, directory, JSON.stringify(calls)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid === undefined
        ? {}
        : { uid: options.uid, gid: options.uid, env: { ...process.env, HOME: root } }),
    });
    children.push(child);
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the store did not answer within ${options.ms ?? 15_000} ms: ${output}`));
    }, options.ms ?? 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      if (!output.includes('done')) return reject(new Error(`probe failed: ${errors}${output}`));
      resolve(
        output
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as ProbeLine),
      );
    });
  });
}

describe('2. a FIFO never blocks the store', () => {
  test('four FIFOs where logs should be: open answers at once, each such session is STORE_CORRUPT, others work', async () => {
    await seed();
    const fifos = ['f1', 'f2', 'f3', 'f4'];
    for (const id of fifos) execFileSync('mkfifo', [logPath(id)]);
    const lines = await probe([
      ['open'],
      ['list'],
      ...fifos.map((id) => ['get', id]),
      ['append', 'other', 'o1'],
      ['get', 'other'],
    ]);
    expect(lines[0]).toMatchObject({ ok: true });
    expect(lines[1]?.value).toEqual(expect.arrayContaining(['victim', 'other']));
    for (const line of lines.slice(2, 6)) expect(line).toMatchObject({ ok: false, code: 'STORE_CORRUPT' });
    expect(lines.slice(6)).toMatchObject([{ ok: true }, { ok: true, value: 2 }]);
  });

  test('four FIFOs where the summary files of real sessions should be: open answers, every session reads back whole', async () => {
    const writer = new FileStore({ directory, durability: 'buffered' });
    const fifos = ['f1', 'f2', 'f3', 'f4'];
    for (const id of fifos) await writer.createSession(session(id, { items: [message(`${id}-m`)] }));
    await writer.close();
    for (const id of fifos) {
      await rm(summaryPath(id));
      execFileSync('mkfifo', [summaryPath(id)]);
    }
    const lines = await probe([
      ['open'],
      ['list'],
      ...fifos.map((id) => ['get', id]),
      ['append', 'f1', 'late'],
    ]);
    expect(lines[0]).toMatchObject({ ok: true });
    expect([...((lines[1]?.value ?? []) as string[])].sort()).toEqual(fifos);
    expect(lines.slice(2)).toMatchObject([
      { ok: true, value: 1 },
      { ok: true, value: 1 },
      { ok: true, value: 1 },
      { ok: true, value: 1 },
      { ok: true },
    ]);
  });

  test('a FIFO where the summary file of a real session should be is ignored: the session reads back whole', async () => {
    await seed();
    await rm(summaryPath('victim'));
    execFileSync('mkfifo', [summaryPath('victim')]);
    const lines = await probe([
      ['get', 'victim'],
      ['summary', 'victim'],
    ]);
    expect(lines).toMatchObject([
      { ok: true, value: 3 },
      { ok: true, value: 3 },
    ]);
  });

  test('a FIFO in the lock directory named like a claim: open rejects with STORE_CORRUPT at once', async () => {
    await seed();
    await mkdir(join(directory, '.lock'), { recursive: true });
    execFileSync('mkfifo', [join(directory, '.lock', 'planted.claim')]);
    const [line] = await probe([['open']]);
    expect(line).toMatchObject({ ok: false, code: 'STORE_CORRUPT' });
    expect(line?.message).toContain('planted.claim');
    expect((await readdir(join(directory, '.lock'))).sort()).toEqual(['planted.claim']);
  });
});

describe('3. one bad entry damages one session, typed', () => {
  test('a log the store may not read (mode 000, another user) is STORE_UNAVAILABLE for that session only; open succeeds', async () => {
    await seed();
    // Root reads any file: as root, the probe runs as another user who owns the directory.
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', '65534:65534', root]);
    await chmod(logPath('victim'), 0o000);
    const lines = await probe(
      [['open'], ['list'], ['get', 'victim'], ['get', 'other'], ['append', 'other', 'o1'], ['get', 'other']],
      process.getuid?.() === 0 ? { uid: 65534 } : {},
    );
    expect(lines[0]).toMatchObject({ ok: true });
    expect(lines[1]).toMatchObject({ ok: true, value: ['other'] });
    expect(lines[2]).toMatchObject({ ok: false, code: 'STORE_UNAVAILABLE' });
    expect(lines[2]?.message).toMatch(/permission denied/);
    expect(lines.slice(3)).toMatchObject([{ ok: true, value: 1 }, { ok: true }, { ok: true, value: 2 }]);
  });

  test('a session refused for permissions works again, without a reopen, once they are fixed', async () => {
    await seed();
    // Root reads any file: as root, the probe runs as another user who owns the directory.
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', '65534:65534', root]);
    await chmod(logPath('victim'), 0o000);
    const lines = await probe(
      [['open'], ['get', 'victim'], ['chmod', logPath('victim'), '600'], ['get', 'victim'], ['list']],
      process.getuid?.() === 0 ? { uid: 65534 } : {},
    );
    expect(lines).toMatchObject([
      { ok: true },
      { ok: false, code: 'STORE_UNAVAILABLE' },
      { ok: true },
      { ok: true, value: 3 },
      { ok: true, value: expect.arrayContaining(['victim', 'other']) },
    ]);
  });

  test.each(['victim.sum', 'victim.tmp', 'x.tmp'])(
    'a directory named %s: open succeeds and every session reads back',
    async (name) => {
      await seed();
      await rm(join(sessionsDir(), name), { force: true });
      await mkdir(join(sessionsDir(), name));
      await writeFile(join(sessionsDir(), name, 'inside'), 'kept');
      const store = storeAt();
      expect(ids((await store.getSession('victim')).items)).toEqual(['v0', 'v1', 'v2']);
      await store.appendItems('victim', [message('v3')]);
      await store.close();
      expect(await readFile(join(sessionsDir(), name, 'inside'), 'utf8')).toBe('kept');
      expect(ids((await storeAt().getSession('victim')).items)).toEqual(['v0', 'v1', 'v2', 'v3']);
    },
  );

  test('a log larger than maxSessionBytes: getSession names the limit, the session is still listed, and open without its summary streams it', async () => {
    const big = 'x'.repeat(64 * 1024);
    const writer = new FileStore({ directory, durability: 'buffered' });
    await writer.createSession(session('victim'));
    for (let index = 0; index < 8; index++) await writer.appendItems('victim', [message(`v${index}`, big)]);
    await writer.createSession(session('other'));
    await writer.close();
    const limited = storeAt({ maxSessionBytes: 256 * 1024, tuning: { chunkBytes: 4096 } });
    const error = await expectRejectsWithCode(limited.getSession('victim'), 'STORE_UNAVAILABLE');
    expect(error.message).toMatch(/maxSessionBytes: 262144/);
    expect((await limited.getSummary('victim')).messageCount).toBe(8);
    expect((await limited.listSessions()).sessions.map((summary) => summary.id).sort()).toEqual([
      'other',
      'victim',
    ]);
    await limited.close();
    await unlink(summaryPath('victim'));
    const streamed = storeAt({ tuning: { chunkBytes: 1000 } });
    expect((await streamed.getSummary('victim')).messageCount).toBe(8);
    expect(ids((await streamed.getSession('victim')).items)).toHaveLength(8);
  });

  test.each([
    ['sessions', 'sessions'],
    ['.lock', '.lock'],
  ])('a regular file named %s: open rejects with STORE_CORRUPT naming it', async (_what, name) => {
    await mkdir(directory, { recursive: true });
    await writeFile(join(directory, name), 'not a directory');
    const error = (await expectRejectsWithCode(storeAt().open(), 'STORE_CORRUPT')) as AgentSessionsError & {
      path: string;
    };
    expect(error.path).toBe(join(directory, name));
  });

  test('a directory where a lock claim should be: open rejects with STORE_CORRUPT and leaves no claim of its own', async () => {
    await mkdir(join(directory, '.lock', 'planted.claim'), { recursive: true });
    await expectRejectsWithCode(storeAt().open(), 'STORE_CORRUPT');
    expect(await readdir(join(directory, '.lock'))).toEqual(['planted.claim']);
  });

  test('deleteSession of a session whose log is an empty directory removes it; a non-empty one is STORE_CORRUPT and kept', async () => {
    await seed();
    await rm(logPath('victim'));
    await mkdir(logPath('victim'));
    await rm(logPath('other'));
    await mkdir(logPath('other'));
    await writeFile(join(logPath('other'), 'keep'), 'x');
    const store = storeAt();
    await expectRejectsWithCode(store.getSession('victim'), 'STORE_CORRUPT');
    await store.deleteSession('victim');
    expect(existsSync(logPath('victim'))).toBe(false);
    await expectRejectsWithCode(store.getSession('victim'), 'SESSION_NOT_FOUND');
    await expectRejectsWithCode(store.deleteSession('other'), 'STORE_CORRUPT');
    expect(await readFile(join(logPath('other'), 'keep'), 'utf8')).toBe('x');
  });

  test('deleteSession when the summary file is a non-empty directory is STORE_CORRUPT and keeps the log', async () => {
    await seed();
    await rm(summaryPath('victim'));
    await mkdir(summaryPath('victim'));
    await writeFile(join(summaryPath('victim'), 'keep'), 'x');
    const store = storeAt();
    await expectRejectsWithCode(store.deleteSession('victim'), 'STORE_CORRUPT');
    expect(ids((await store.getSession('victim')).items)).toEqual(['v0', 'v1', 'v2']);
  });
});

interface Appender {
  child: ChildProcess;
  lines: string[];
  waitFor(line: string | RegExp): Promise<string>;
  exited: Promise<unknown>;
}

function startAppender(tag: string, report: string): Appender {
  const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, directory, 'shared', tag, report], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  const waiters: { match: string | RegExp; resolve: (line: string) => void }[] = [];
  let buffered = '';
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      lines.push(line);
      for (const waiter of waiters.splice(0)) {
        if (typeof waiter.match === 'string' ? line === waiter.match : waiter.match.test(line))
          waiter.resolve(line);
        else waiters.push(waiter);
      }
      newline = buffered.indexOf('\n');
    }
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    lines,
    exited,
    waitFor: (match) =>
      new Promise((resolve, reject) => {
        const found = lines.find((line) => (typeof match === 'string' ? line === match : match.test(line)));
        if (found !== undefined) return resolve(found);
        waiters.push({ match, resolve });
        void exited.then(() =>
          reject(new Error(`appender ${tag} exited before ${String(match)}: ${errors}`)),
        );
      }),
  };
}

async function acknowledged(report: string): Promise<string[]> {
  return (await readFile(report, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

describe('4. the lock cannot be bypassed', () => {
  test('a store whose lock was deleted refuses writes with STORE_LOCKED; reads keep working', async () => {
    const store = storeAt();
    await store.createSession(session('s', { items: [message('m0')] }));
    await rm(join(directory, '.lock'), { recursive: true });
    await expectRejectsWithCode(store.appendItems('s', [message('m1')]), 'STORE_LOCKED');
    await expectRejectsWithCode(store.updateSession('s', { title: 't' }), 'STORE_LOCKED');
    await expectRejectsWithCode(store.createSession(session('t')), 'STORE_LOCKED');
    await expectRejectsWithCode(store.deleteSession('s'), 'STORE_LOCKED');
    expect(ids((await store.getSession('s')).items)).toEqual(['m0']);
  });

  test.each([1, 2, 3])(
    'deleting the lock while two processes append to one session loses no acknowledged write of either (trial %i)',
    { timeout: 60_000 },
    async () => {
      const reportA = join(root, 'a.txt');
      const reportB = join(root, 'b.txt');
      const a = startAppender('a', reportA);
      await a.waitFor('appending');
      const b = startAppender('b', reportB);
      // b retries its open while a holds the directory.
      while ((await acknowledged(reportA)).length < 30)
        await new Promise((resolve) => setTimeout(resolve, 5));
      expect(b.lines).not.toContain('opened');
      await rm(join(directory, '.lock'), { recursive: true, force: true });
      await b.waitFor('opened');
      expect(await a.waitFor(/^failed /)).toBe('failed STORE_LOCKED');
      await a.exited;
      const bStarted = (await acknowledged(reportB)).length;
      while (
        !b.lines.some((line) => line.startsWith('failed')) &&
        (await acknowledged(reportB)).length < bStarted + 30
      ) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      b.child.stdin?.end();
      await b.exited;

      const store = storeAt();
      const stored = ids((await store.getSession('shared')).items);
      expect(new Set(stored).size).toBe(stored.length);
      for (const id of [...(await acknowledged(reportA)), ...(await acknowledged(reportB))]) {
        expect(stored, `acknowledged ${id}`).toContain(id);
      }
    },
  );

  test('a zombie holder (killed, never reaped) counts as dead: its lock is taken over', {
    timeout: 30_000,
  }, async () => {
    // sh starts the holder in the background and becomes `sleep`, which never reaps it.
    const parent = spawn(
      'sh',
      [
        '-c',
        `"${process.execPath}" --import tsx "${HOLDER}" "${directory}" s zombie 1 < /dev/null & echo "pid $!"; exec sleep 60`,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(parent);
    let output = '';
    const written = new Promise<void>((resolve) => {
      parent.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('written')) resolve();
      });
    });
    await written;
    const pid = Number(/pid (\d+)/.exec(output)?.[1]);
    process.kill(pid, 'SIGKILL');
    for (let tries = 0; tries < 200; tries++) {
      const state = (await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '')).split(') ')[1]?.[0];
      if (state === 'Z') break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect((await readFile(`/proc/${pid}/stat`, 'latin1')).split(') ')[1]?.[0]).toBe('Z');
    const store = storeAt();
    await store.open();
    expect(ids((await store.getSession('s')).items)).toEqual(['zombie-0']);
  });
});

describe('5. a hard link never leads outside the store', () => {
  test('a log replaced by a hard link to a file outside is STORE_CORRUPT and the outside file is never written', async () => {
    await seed();
    const outside = join(root, 'outside.log');
    await writeFile(outside, await readFile(logPath('victim')));
    await unlink(logPath('victim'));
    await link(outside, logPath('victim'));
    const before = await readFile(outside);
    const store = storeAt();
    const error = await expectRejectsWithCode(store.getSession('victim'), 'STORE_CORRUPT');
    expect(error.message).toMatch(/2 hard links/);
    await expectRejectsWithCode(store.appendItems('victim', [message('v9')]), 'STORE_CORRUPT');
    await store.appendItems('other', [message('o1')]);
    await store.close();
    expect(await readFile(outside)).toEqual(before);
  });

  test('a hard link made while the store is open is refused at the next write', async () => {
    await seed();
    const store = storeAt();
    await store.open();
    const outside = join(root, 'outside.log');
    await link(logPath('victim'), outside);
    const before = await readFile(outside);
    await expectRejectsWithCode(store.appendItems('victim', [message('v9')]), 'STORE_CORRUPT');
    expect(await readFile(outside)).toEqual(before);
  });

  test('deleteSession of a hard-linked log removes only the name in the store: the outside file keeps its content', async () => {
    await seed();
    const outside = join(root, 'outside.log');
    await writeFile(outside, 'outside');
    await chmod(outside, 0o644);
    await unlink(logPath('other'));
    await link(outside, logPath('other'));
    const store = storeAt();
    await expectRejectsWithCode(store.appendItems('other', [message('x')]), 'STORE_CORRUPT');
    await store.deleteSession('other');
    expect(existsSync(logPath('other'))).toBe(false);
    expect(await readFile(outside, 'utf8')).toBe('outside');
    expect((await stat(outside)).mode & 0o777).toBe(0o644);
  });
});
