// Two processes on one FileStore directory: the second is refused with STORE_LOCKED while the
// first holds it, opens once the first has closed or died, and no write is lost or duplicated.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { FileStore } from '../../../src/stores/file/store.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/lock-holder.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

interface Holder {
  child: ChildProcess;
  /** Resolves with the next stdout line. */
  line(): Promise<string>;
  exited: Promise<unknown>;
}

function startHolder(directory: string, tag: string, appends: number): Holder {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', FIXTURE, directory, 'shared', tag, String(appends)],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(line);
      else lines.push(line);
      newline = buffered.indexOf('\n');
    }
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    exited,
    line: () =>
      new Promise((resolve, reject) => {
        const line = lines.shift();
        if (line !== undefined) return resolve(line);
        waiting.push(resolve);
        void exited.then(() => reject(new Error(`holder ${tag} exited: ${stderr}`)));
      }),
  };
}

let directory: string;
let root: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-multiprocess-'));
  directory = join(root, 'store');
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

function holder(tag: string, appends: number): Holder {
  const started = startHolder(directory, tag, appends);
  children.push(started.child);
  return started;
}

async function messageIds(): Promise<string[]> {
  const store = new FileStore({ directory });
  try {
    const session = await store.getSession('shared');
    return session.items.map((item) => (item.kind === 'message' ? item.message.id : '?'));
  } finally {
    await store.close();
  }
}

describe('FileStore with two processes', () => {
  test('a second process gets STORE_LOCKED while the first holds the directory, then opens after it closes; nothing lost or duplicated', async () => {
    const first = holder('a', 50);
    expect(await first.line()).toBe('opened');
    expect(await first.line()).toBe('written');

    const refused = holder('b', 50);
    expect(await refused.line()).toBe('locked STORE_LOCKED');
    await refused.exited;

    first.child.stdin?.end();
    await first.exited;
    const second = holder('b', 50);
    expect(await second.line()).toBe('opened');
    expect(await second.line()).toBe('written');
    second.child.stdin?.end();
    await second.exited;

    const expected = [
      ...Array.from({ length: 50 }, (_, n) => `a-${n}`),
      ...Array.from({ length: 50 }, (_, n) => `b-${n}`),
    ];
    expect(await messageIds()).toEqual(expected);
  });

  test('a lock left by a process killed with SIGKILL is taken over by exactly one of two racing processes', async () => {
    const dead = holder('dead', 10);
    expect(await dead.line()).toBe('opened');
    expect(await dead.line()).toBe('written');
    dead.child.kill('SIGKILL');
    await dead.exited;

    const racers = [holder('x', 10), holder('y', 10)];
    const outcomes = await Promise.all(racers.map((racer) => racer.line()));
    expect(outcomes.filter((outcome) => outcome === 'opened')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'locked STORE_LOCKED')).toHaveLength(1);
    const winner = racers[outcomes.indexOf('opened')]!;
    const winnerTag = outcomes.indexOf('opened') === 0 ? 'x' : 'y';
    expect(await winner.line()).toBe('written');
    winner.child.kill('SIGKILL');
    await winner.exited;

    // The parent takes over the winner's stale lock too, and finds both writers' messages once.
    expect(await messageIds()).toEqual([
      ...Array.from({ length: 10 }, (_, n) => `dead-${n}`),
      ...Array.from({ length: 10 }, (_, n) => `${winnerTag}-${n}`),
    ]);
  });
});
