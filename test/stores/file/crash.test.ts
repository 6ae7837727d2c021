// Crash safety of FileStore: a child process writes in a loop and is killed with SIGKILL at a
// random moment; the reopened directory must hold every acknowledged write, in order, and nothing
// torn. CRASH_TRIALS sets the number of trials (default 20; `npm run test:crash` runs 200).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import type { Session, SessionSummary } from '../../../src/schemas.js';
import { FileStore } from '../../../src/stores/file/store.js';

const TRIALS = Number(process.env.CRASH_TRIALS ?? 20);
const PARALLEL = 6;
const FIXTURE = fileURLToPath(new URL('../fixtures/crash-writer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

type Op =
  | { w: number; op: 'create'; id: string }
  | { w: number; op: 'append'; id: string; items: { id: string; content: string }[] }
  | { w: number; op: 'patch'; id: string; title: string }
  | { w: number; op: 'update'; id: string; messageId: string; content: string }
  | { w: number; op: 'burst'; id: string; items: { id: string; content: string }[] };

interface Model {
  title: string;
  items: [string, string][];
}

function apply(models: Map<string, Model>, op: Op): void {
  if (op.op === 'create') {
    models.set(op.id, { title: '', items: [] });
    return;
  }
  const model = models.get(op.id);
  if (!model) throw new Error(`report names unknown session ${op.id}`);
  if (op.op === 'append' || op.op === 'burst') {
    for (const item of op.items) model.items.push([item.id, item.content]);
  }
  if (op.op === 'patch') model.title = op.title;
  if (op.op === 'update') {
    const index = model.items.findIndex(([id]) => id === op.messageId);
    model.items[index] = [op.messageId, op.content];
  }
}

function cloneModels(models: Map<string, Model>): Map<string, Model> {
  return new Map([...models].map(([id, model]) => [id, { title: model.title, items: [...model.items] }]));
}

function observe(session: Session): Model {
  return {
    title: session.title,
    items: session.items.map((item) => {
      if (item.kind !== 'message') throw new Error('unexpected item kind');
      return [item.message.id, item.message.content];
    }),
  };
}

// Acknowledged ops per worker, and the one each worker had in flight.
async function readReport(path: string): Promise<{ acked: Op[]; inFlight: Op[] }> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const lines = text.split('\n').slice(0, -1); // a last line without '\n' was cut by the kill
  const pending = new Map<number, Op>();
  const acked: Op[] = [];
  for (const line of lines) {
    const value = JSON.parse(line.slice(2)) as Op;
    if (line.startsWith('B ')) pending.set(value.w, value);
    else {
      const op = pending.get(value.w)!;
      pending.delete(value.w);
      acked.push(op);
    }
  }
  return { acked, inFlight: [...pending.values()] };
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`writer exited early (${code}): ${stderr}`)));
  });
}

async function listAll(store: FileStore): Promise<SessionSummary[]> {
  const all: SessionSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listSessions({ limit: 7, ...(cursor === undefined ? {} : { cursor }) });
    all.push(...page.sessions);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return all;
}

async function runTrial(trial: number): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'agent-sessions-crash-'));
  const directory = join(root, 'store');
  const report = join(root, 'report.txt');
  const durability = trial % 2 === 0 ? 'fsync' : 'buffered';
  const seed = (Math.random() * 0xffff_ffff) >>> 0 || 1;
  const context = `trial ${trial} (${durability}, seed ${seed})`;
  try {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', FIXTURE, directory, report, durability, String(seed)],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitForReady(child);
    // The moment of the kill is what the trial varies.
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 150));
    child.kill('SIGKILL');
    await exited;

    const { acked, inFlight } = await readReport(report);
    expect(acked.length, context).toBeGreaterThan(0);
    const expected = new Map<string, Model>();
    for (const op of acked) apply(expected, op);
    // With one op in flight per worker (each on its own sessions), each session is in the acked
    // state or the acked state plus its worker's in-flight op; for a burst of appends in flight,
    // plus any prefix of its appends, in call order.
    const withInFlight = cloneModels(expected);
    for (const op of inFlight) apply(withInFlight, op);
    const candidatesOf = (id: string): Model[] => {
      const acked = expected.get(id);
      const op = inFlight.find((pending) => pending.id === id);
      if (!op) return acked ? [acked] : [];
      if (op.op !== 'burst') return [acked, withInFlight.get(id)].filter((model) => model !== undefined);
      return op.items
        .map((_, count) => {
          const partial = cloneModels(new Map([[id, acked!]]));
          apply(partial, { ...op, items: op.items.slice(0, count + 1) });
          return partial.get(id)!;
        })
        .concat(acked!);
    };

    // Checking needs no syncs: what is verified is what the killed writer left.
    const store = new FileStore({ directory, durability: 'buffered' });
    const summaries = await listAll(store);
    const listed = new Set(summaries.map((summary) => summary.id));
    const seen = new Map<string, Model>();
    for (const id of expected.keys()) expect(listed.has(id), `${context}: ${id} listed`).toBe(true);
    for (const id of listed) expect(withInFlight.has(id), `${context}: ${id} was written`).toBe(true);
    for (const summary of summaries) {
      const session = await store.getSession(summary.id);
      const actual = observe(session);
      seen.set(summary.id, actual);
      expect(candidatesOf(summary.id), `${context}: ${summary.id}`).toContainEqual(actual);
      expect(summary.messageCount, context).toBe(actual.items.length);
      expect(summary.title, context).toBe(session.title);
      expect(summary.updatedAt, context).toBe(session.updatedAt);
      // The next write cuts any torn tail and lands whole.
      await store.appendItems(summary.id, [
        {
          kind: 'message',
          message: { id: 'after-crash', role: 'user', content: 'after', createdAt: new Date().toISOString() },
        },
      ]);
    }
    await store.close();

    const reopened = new FileStore({ directory, durability: 'buffered' });
    for (const summary of summaries) {
      const session = await reopened.getSession(summary.id);
      expect(session.items.at(-1), context).toMatchObject({ message: { id: 'after-crash' } });
      expect(observe(session).items.slice(0, -1), context).toEqual(seen.get(summary.id)!.items);
    }
    await reopened.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

describe('FileStore crash safety', () => {
  test(`${TRIALS} writers killed with SIGKILL at random moments lose no acknowledged write and leave nothing torn`, {
    timeout: 60_000 + TRIALS * 3_000,
  }, async () => {
    let next = 0;
    const worker = async () => {
      while (next < TRIALS) await runTrial(next++);
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, TRIALS) }, worker));
  });
});
