// Fuzzing FileStore with damage it did not cause: a store directory is damaged at random (files
// truncated, bytes flipped, garbage inserted, a file replaced by a directory, a FIFO, a symlink or
// a hard link to a file outside, modes changed), then opened and used. Every call must return a
// value or reject with an AgentSessionsError within a bound; sessions whose log was not touched
// read back exactly; nothing outside the directory changes. FUZZ_ITERATIONS sets the number of
// iterations (default 25; `npm run test:fuzz` runs 1 000), FUZZ_SEED the first seed.
import { execFileSync } from 'node:child_process';
import {
  chmod,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { AgentSessionsError } from '../../../src/errors.js';
import type { Session, SessionItem } from '../../../src/schemas.js';
import { encodeSessionName } from '../../../src/stores/file/format.js';
import { FileStore } from '../../../src/stores/file/store.js';
import { sessionRecord } from '../../helpers/sessions.js';

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 25);
const FIRST_SEED = Number(process.env.FUZZ_SEED ?? (Math.random() * 0xffff_ffff) >>> 0) >>> 0 || 1;
const CALL_BOUND_MS = 5_000;
const SESSIONS = ['s0', 's1', 'S2', 's3', 's4'];
/** How often each answer was seen, over all iterations: proof that the damage reached the store. */
const tally = new Map<string, number>();

function rng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function message(id: string, content: string): SessionItem {
  return { kind: 'message', message: { id, role: 'user', content, createdAt: '2024-01-01T00:00:00.000Z' } };
}

/** Rejects when `promise` has not settled within the bound: a hang is a failure, not a wait. */
async function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not settle within ${CALL_BOUND_MS} ms`)),
          CALL_BOUND_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every file under `path` with its content and mode, to prove nothing there changed. */
async function snapshot(path: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of await readdir(path)) {
    const full = join(path, name);
    const info = await stat(full);
    files.set(full, `${info.mode} ${(await readFile(full)).toString('base64')}`);
  }
  return files;
}

type Damage = (target: string, random: () => number, outside: string) => Promise<string>;

const damages: Record<string, Damage> = {
  async truncate(target, random) {
    const size = (await stat(target)).size;
    const length = Math.floor(random() * size);
    await truncate(target, length);
    return `truncate to ${length}`;
  },
  async flip(target, random) {
    const bytes = await readFile(target);
    if (bytes.length === 0) return 'flip (empty)';
    const flips = 1 + Math.floor(random() * 3);
    for (let index = 0; index < flips; index++) {
      const at = Math.floor(random() * bytes.length);
      bytes[at] = bytes[at]! ^ (1 + Math.floor(random() * 255));
    }
    await writeFile(target, bytes);
    return `flip ${flips} bytes`;
  },
  async garbage(target, random) {
    const bytes = await readFile(target);
    const at = Math.floor(random() * (bytes.length + 1));
    const garbage = Buffer.from(
      Array.from({ length: 1 + Math.floor(random() * 40) }, () => Math.floor(random() * 256)),
    );
    if (random() < 0.5) garbage[garbage.length - 1] = 0x0a;
    await writeFile(target, Buffer.concat([bytes.subarray(0, at), garbage, bytes.subarray(at)]));
    return `insert ${garbage.length} bytes at ${at}`;
  },
  async directory(target) {
    await rm(target, { recursive: true, force: true });
    await mkdir(target);
    return 'replace by a directory';
  },
  async fifo(target) {
    await rm(target, { recursive: true, force: true });
    execFileSync('mkfifo', [target]);
    return 'replace by a FIFO';
  },
  async hardLink(target, _random, outside) {
    await rm(target, { recursive: true, force: true });
    await link(join(outside, 'target'), target);
    return 'replace by a hard link to a file outside';
  },
  async symlink(target, _random, outside) {
    await rm(target, { recursive: true, force: true });
    await symlink(join(outside, 'target'), target);
    return 'replace by a symlink to a file outside';
  },
  async mode(target, random) {
    const mode = [0o000, 0o200, 0o400, 0o100][Math.floor(random() * 4)]!;
    await chmod(target, mode);
    return `chmod ${mode.toString(8)}`;
  },
};

async function iteration(seed: number): Promise<void> {
  const random = rng(seed);
  const root = await mkdtemp(join(tmpdir(), 'agent-sessions-fuzz-'));
  const directory = join(root, 'store');
  const outside = join(root, 'outside');
  const context: string[] = [`seed ${seed}`];
  try {
    await mkdir(outside);
    await writeFile(join(outside, 'target'), `outside ${seed}\n`);
    await writeFile(join(root, 'beside'), 'beside the store');

    // A store with a few sessions, closed so their summary files are written.
    const writer = new FileStore({ directory, durability: 'buffered', tuning: { summaryEveryBytes: 512 } });
    const expected = new Map<string, Session>();
    for (const [index, id] of SESSIONS.entries()) {
      await writer.createSession(sessionRecord(id, { title: `title ${index}` }));
      const appends = 1 + Math.floor(random() * 4);
      for (let count = 0; count < appends; count++) {
        await writer.appendItems(id, [message(`${id}-m${count}`, 'x'.repeat(Math.floor(random() * 300)))]);
      }
      if (random() < 0.5) await writer.updateSession(id, { starred: true });
      if (random() < 0.3) {
        await writer.updateMessage(id, `${id}-m0`, {
          id: `${id}-m0`,
          role: 'user',
          content: 'edited',
          createdAt: '2024-01-01T00:00:00.000Z',
        });
      }
      expected.set(id, await writer.getSession(id));
    }
    await writer.close();

    // Damage 1 to 3 files.
    const damaged = new Set<string>();
    let structural = false;
    const names = Object.keys(damages);
    const count = 1 + Math.floor(random() * 3);
    for (let index = 0; index < count; index++) {
      const roll = random();
      let target: string;
      if (roll < 0.05) {
        target = join(directory, '.lock');
        structural = true;
      } else {
        const id = SESSIONS[Math.floor(random() * SESSIONS.length)]!;
        const summary = random() < 0.35;
        target = join(directory, 'sessions', `${encodeSessionName(id)}${summary ? '.sum' : '.log'}`);
        if (!summary) damaged.add(id);
      }
      const info = await stat(target).catch(() => undefined);
      let name = names[Math.floor(random() * names.length)]!;
      if (!info?.isFile() && ['truncate', 'flip', 'garbage', 'mode'].includes(name)) name = 'directory';
      if (target.endsWith('.lock') && name !== 'directory') name = random() < 0.5 ? 'fifo' : 'hardLink';
      context.push(`${target.slice(directory.length)}: ${await damages[name]!(target, random, outside)}`);
    }
    const outsideBefore = await snapshot(outside);
    const besideBefore = await readFile(join(root, 'beside'), 'utf8');

    // Use the damaged store: every call answers, with a value or an error of the library.
    const store = new FileStore({ directory, durability: 'buffered', logger: silent });
    const answers: string[] = [];
    const call = async <T>(what: string, run: () => Promise<T>): Promise<T | AgentSessionsError> => {
      try {
        const value = await bounded(run(), what);
        answers.push(`${what}: ok`);
        return value;
      } catch (error) {
        if (!AgentSessionsError.isInstance(error)) {
          throw new Error(
            `${what} rejected with an error that is not the library's (${context.join('; ')}): ${String(error)}`,
            {
              cause: error,
            },
          );
        }
        answers.push(`${what}: ${error.code}`);
        tally.set(error.code, (tally.get(error.code) ?? 0) + 1);
        return error;
      }
    };
    const opened = await call('open', () => store.open());
    await call('listSessions', () => store.listSessions({ limit: 1000 }));
    for (const id of SESSIONS) {
      const summary = await call(`getSummary ${id}`, () => store.getSummary(id));
      const session = await call(`getSession ${id}`, () => store.getSession(id));
      if (!AgentSessionsError.isInstance(opened) && !structural && !damaged.has(id)) {
        expect(session, `${id} was not damaged: ${context.join('; ')}; ${answers.join(', ')}`).toEqual(
          expected.get(id),
        );
        expect(summary).toMatchObject({ id, messageCount: expected.get(id)!.items.length });
      }
    }
    await call('verify', () => store.verify());
    const writeTo = SESSIONS[Math.floor(random() * SESSIONS.length)]!;
    await call(`appendItems ${writeTo}`, () => store.appendItems(writeTo, [message('fuzz', 'after damage')]));
    await call(`updateSession ${writeTo}`, () => store.updateSession(writeTo, { title: 'after damage' }));
    const removed = [...damaged][0];
    if (removed) await call(`deleteSession ${removed}`, () => store.deleteSession(removed));
    await call('close', () => store.close());

    // Nothing outside the store's directory changed.
    expect(await snapshot(outside), context.join('; ')).toEqual(outsideBefore);
    expect(await readFile(join(root, 'beside'), 'utf8')).toBe(besideBefore);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

describe('FileStore fuzzed with damage', () => {
  test(`${ITERATIONS} damaged store directories: every call answers with a value or a library error, undamaged sessions read back, nothing outside changes`, {
    timeout: 60_000 + ITERATIONS * 2_000,
  }, async () => {
    for (let index = 0; index < ITERATIONS; index++)
      await iteration((FIRST_SEED + index * 0x9e37_79b9) >>> 0 || 1);
  });
});
