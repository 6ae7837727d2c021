// bench/store: MemoryStore and FileStore (fsync, buffered) against raw file baselines.
//
// Per store: append messages one at a time to one session, load it, create 10 000 sessions, list
// the first page and all pages. Baselines, measured in the same run on the same JSON lines (one
// item per line):
// - raw append, buffered: `fs.promises.appendFile(path, line)` per line (open, write, close): the
//   same system calls FileStore makes per write;
// - raw append, fsync: open, write, `datasync`, close per line: FileStore's calls plus nothing;
// - raw load: `readFile` and `JSON.parse` of every line.
// Listing goal: the first page of 10 000 sessions costs the same whether each holds 1 item or 100
// (FileStore measured cold: a fresh store reopening the directory, then the first page).
//
// Durable writes (issue 15), each against a baseline of the same run:
// - one durable append awaited at a time ÷ raw `write` + `fdatasync` of the same line through a
//   handle kept open (the least a durable append of one line can cost): goal ≥ 0.85;
// - 8 writers appending to one session concurrently ÷ the same raw serial write + `fdatasync`
//   (group commit shares a sync between queued appends): goal ≥ 5;
// - and two more raw baselines of the same run, for what bounds those two: one `write` of the line
//   to a handle opened with O_DSYNC (FileStore's own way to make a write durable, one system call)
//   and one `write` + `fdatasync` of 8 lines at once (the I/O of a group of 8 appends, the ceiling
//   of the 8-writer figure, since its writers can only share what 8 lines cost);
// - a durable 500-turn session (each turn: getSession, then append a user item and an assistant
//   item, two durable commits), in 'fsync' and 'buffered': ms per turn and per durable commit,
//   the figures the peers bench compares (`turnWorkload` is exported for it);
// - bytes on disk (log and summary file) ÷ the items as raw JSON lines, short and long messages:
//   goal ≤ 1.2.
import { constants } from 'node:fs';
import { appendFile, type FileHandle, open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Session, SessionItem } from '../src/schemas.js';
import type { Store } from '../src/store.js';
import { FileStore } from '../src/stores/file/store.js';
import { MemoryStore } from '../src/stores/memory.js';
import { sessionRecord } from '../src/testing/records.js';
import { type BenchRow, median, report, time, withTempDir } from './lib.js';

const TURNS = 500;
const DURABLE_BLOCK = 96;
const DURABLE_PAIRS = 21;
const WRITERS = 8;

const APPENDS = 10_000;
const SESSIONS = 10_000;
const REPEAT = 5;
const FSYNC_BUDGET_MS = 25_000; // for the fsync'd appends of store and baseline together
// A fsync'd create syncs the new file and the directory; 10 000 of them take about 40 s here.
const FSYNC_SESSIONS = 2_000;

function session(id: string, items: SessionItem[] = []): Session {
  return sessionRecord(id, { title: `title ${id}`, titleSource: 'manual', items });
}

function messages(count: number, prefix = 'm'): SessionItem[] {
  const at = new Date().toISOString();
  return Array.from({ length: count }, (_, index) => ({
    kind: 'message',
    message: {
      id: `${prefix}${index}`,
      role: index % 2 === 0 ? 'user' : 'assistant',
      content: `message ${index}: the quick brown fox jumps over the lazy dog, again and again.`,
      createdAt: at,
    },
  }));
}

async function rawAppend(path: string, lines: readonly string[], sync: boolean): Promise<number> {
  return time(async () => {
    for (const line of lines) {
      if (!sync) {
        await appendFile(path, line);
        continue;
      }
      const handle = await open(path, 'a');
      await handle.write(line);
      await handle.datasync();
      await handle.close();
    }
  });
}

async function rawLoad(path: string): Promise<number> {
  const runs: number[] = [];
  for (let index = 0; index < REPEAT; index++) {
    runs.push(
      await time(async () => {
        const text = await readFile(path, 'utf8');
        const items: unknown[] = [];
        for (const line of text.split('\n')) if (line.length > 0) items.push(JSON.parse(line));
        return items;
      }),
    );
  }
  return median(runs);
}

async function listAll(store: Store): Promise<number> {
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await store.listSessions({ limit: 100, ...(cursor === undefined ? {} : { cursor }) });
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== undefined);
  return pages;
}

// Milliseconds per fdatasync here, to size the fsync'd append run.
async function probeFsync(directory: string): Promise<number> {
  const handle = await open(join(directory, 'probe'), 'a');
  const ms = await time(async () => {
    for (let index = 0; index < 50; index++) {
      await handle.write('probe\n');
      await handle.datasync();
    }
  });
  await handle.close();
  return ms / 50;
}

function chatItem(id: string, role: 'user' | 'assistant', content: string): SessionItem {
  return { kind: 'message', message: { id, role, content, createdAt: '2026-01-01T00:00:00.000Z' } };
}

const SHORT = 'Can you summarise the meeting?';
const LONG = 'The quick brown fox jumps over the lazy dog. '.repeat(45);

/** What {@link turnWorkload} measured. */
export interface TurnResult {
  /** Milliseconds for all turns. */
  ms: number;
  turns: number;
  /** Durable commits made (two appends per turn). */
  commits: number;
  /** Bytes of the session's files on disk (log and summary file). */
  bytes: number;
  /** Bytes of the same items as raw JSON lines. */
  rawBytes: number;
}

/**
 * A chat session of `turns` turns on a fresh FileStore in `directory`: each turn reads the session
 * (`getSession`), then appends a user item and an assistant item, one awaited call each.
 */
export async function turnWorkload(
  directory: string,
  durability: 'fsync' | 'buffered',
  turns = TURNS,
  content = SHORT,
): Promise<TurnResult> {
  const store = new FileStore({ directory, durability });
  await store.createSession(session('chat'));
  let rawBytes = 0;
  const ms = await time(async () => {
    for (let turn = 0; turn < turns; turn++) {
      await store.getSession('chat');
      const user = chatItem(`u${turn}`, 'user', content);
      const assistant = chatItem(`a${turn}`, 'assistant', content);
      await store.appendItems('chat', [user]);
      await store.appendItems('chat', [assistant]);
      rawBytes += Buffer.byteLength(`${JSON.stringify(user)}\n${JSON.stringify(assistant)}\n`);
    }
  });
  await store.close();
  let bytes = 0;
  const sessions = join(directory, 'sessions');
  for (const file of await readdir(sessions)) bytes += (await stat(join(sessions, file))).size;
  return { ms, turns, commits: turns * 2, bytes, rawBytes };
}

/** Writes each buffer, then `fdatasync`s, one buffer at a time. */
async function writeAndSync(handle: FileHandle, buffers: readonly Buffer[]): Promise<void> {
  for (const buffer of buffers) {
    await handle.write(buffer);
    await handle.datasync();
  }
}

/**
 * The durable-append rows: one append awaited at a time, 8 concurrent writers, and the raw
 * baselines, alternating in blocks of `block` appends, `pairs` rounds (medians over rounds).
 */
export async function durableRows(
  root: string,
  rows: BenchRow[],
  { block = DURABLE_BLOCK, pairs = DURABLE_PAIRS }: { block?: number; pairs?: number } = {},
): Promise<void> {
  // fdatasync latency here swings 10× within seconds (other processes share the disk), so the
  // store and the raw baseline run in small blocks that alternate (the order flipping every pair):
  // each pair sees the same disk, and the medians over pairs are compared.
  const directory = join(root, 'durable');
  const store = new FileStore({ directory, durability: 'fsync' });
  await store.createSession(session('single'));
  await store.createSession(session('shared'));
  const raw = await open(join(root, 'raw-durable.jsonl'), 'a');
  const dsync = await open(
    join(root, 'raw-dsync.jsonl'),
    constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC,
  );
  const grouped = await open(join(root, 'raw-grouped.jsonl'), 'a');
  const singles: number[] = [];
  const concurrents: number[] = [];
  const raws: number[] = [];
  const dsyncs: number[] = [];
  const groups: number[] = [];
  let next = 0;
  const item = () => chatItem(`d${next++}`, 'user', SHORT);
  /** `block` fresh items as JSON lines, `perWrite` lines to a buffer. */
  const lineBuffers = (perWrite: number): Buffer[] => {
    const lines = Array.from({ length: block }, () => `${JSON.stringify(item())}\n`);
    const buffers: Buffer[] = [];
    for (let index = 0; index < lines.length; index += perWrite) {
      buffers.push(Buffer.from(lines.slice(index, index + perWrite).join('')));
    }
    return buffers;
  };
  const measures: (() => Promise<void>)[] = [
    async () => {
      const items = Array.from({ length: block }, item);
      singles.push(
        await time(async () => {
          for (const value of items) await store.appendItems('single', [value]);
        }),
      );
    },
    async () => {
      const buffers = lineBuffers(1);
      raws.push(await time(() => writeAndSync(raw, buffers)));
    },
    async () => {
      const buffers = lineBuffers(1);
      dsyncs.push(
        await time(async () => {
          for (const buffer of buffers) await dsync.write(buffer);
        }),
      );
    },
    async () => {
      const buffers = lineBuffers(WRITERS);
      groups.push(await time(() => writeAndSync(grouped, buffers)));
    },
    async () => {
      const items = Array.from({ length: block }, item);
      concurrents.push(
        await time(() =>
          Promise.all(
            Array.from({ length: WRITERS }, async (_, writer) => {
              for (let index = writer; index < items.length; index += WRITERS) {
                await store.appendItems('shared', [items[index]!]);
              }
            }),
          ),
        ),
      );
    },
  ];
  try {
    for (let pair = 0; pair < pairs; pair++) {
      for (const measure of pair % 2 === 0 ? measures : [...measures].reverse()) await measure();
    }
  } finally {
    await raw.close();
    await dsync.close();
    await grouped.close();
    await store.close();
  }
  const single = median(singles);
  const baseline = median(raws);
  const concurrent = median(concurrents);
  const perAppend = (ms: number) => `${((ms * 1000) / block).toFixed(0)} µs/append`;
  rows.push({
    name: `file(fsync) durable append, 1 awaited at a time (median of ${pairs} blocks of ${block})`,
    ms: single,
    baselineMs: baseline,
    goal: '≥ 0.85× raw write+fdatasync',
    pass: baseline / single >= 0.85,
    note: `${perAppend(single)}, raw ${perAppend(baseline)}`,
  });
  rows.push({
    name: `file(fsync) ${WRITERS} concurrent writers on one session (median of ${pairs} blocks of ${block})`,
    ms: concurrent,
    baselineMs: baseline,
    goal: '≥ 5× raw serial write+fdatasync',
    pass: baseline / concurrent >= 5,
    note: perAppend(concurrent),
  });
  rows.push({
    name: `raw write to an O_DSYNC handle, 1 line at a time (median of ${pairs} blocks of ${block})`,
    ms: median(dsyncs),
    baselineMs: baseline,
    note: `${perAppend(median(dsyncs))}: the least one durable append can cost the way FileStore makes it durable`,
  });
  rows.push({
    name: `raw write + fdatasync of ${WRITERS} lines at once (median of ${pairs} blocks of ${block} lines)`,
    ms: median(groups),
    baselineMs: baseline,
    note: `${perAppend(median(groups))}: the I/O of a group of ${WRITERS}, the ceiling of the ${WRITERS}-writer figure`,
  });
}

async function turnRows(root: string, rows: BenchRow[]): Promise<void> {
  for (const durability of ['fsync', 'buffered'] as const) {
    const runs: TurnResult[] = [];
    for (let round = 0; round < 3; round++) {
      runs.push(await turnWorkload(join(root, `turns-${durability}-${round}`), durability));
    }
    const ms = median(runs.map((run) => run.ms));
    rows.push({
      name: `file(${durability}) ${TURNS}-turn session (getSession + 2 appends per turn)`,
      ms,
      note: `${(ms / TURNS).toFixed(3)} ms/turn, ${(ms / (TURNS * 2)).toFixed(3)} ms/durable commit, median of 3`,
    });
  }
  for (const [label, content] of [
    ['short', SHORT],
    ['long', LONG],
  ] as const) {
    const result = await turnWorkload(join(root, `bytes-${label}`), 'buffered', TURNS, content);
    const ratio = result.bytes / result.rawBytes;
    rows.push({
      name: `bytes on disk ÷ raw JSON, ${label} messages (${content.length} chars, ${TURNS * 2} items)`,
      ms: 0,
      goal: '≤ 1.2',
      pass: ratio <= 1.2,
      note: `ratio ${ratio.toFixed(3)}: ${result.bytes} B on disk, ${result.rawBytes} B raw`,
    });
  }
}

interface Variant {
  label: string;
  durability?: 'fsync' | 'buffered';
  make(directory: string): Store;
}

const variants: Variant[] = [
  { label: 'memory', make: () => new MemoryStore() },
  {
    label: 'file(fsync)',
    durability: 'fsync',
    make: (directory) => new FileStore({ directory, durability: 'fsync' }),
  },
  {
    label: 'file(buffered)',
    durability: 'buffered',
    make: (directory) => new FileStore({ directory, durability: 'buffered' }),
  },
];

export async function run(): Promise<void> {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  await withTempDir('store', async (root) => {
    const fsyncMs = await probeFsync(root);
    await durableRows(root, rows);
    await turnRows(root, rows);
    if (process.env.STORE_BENCH_DURABLE_ONLY === '1') return;
    const fsyncAppends = Math.min(APPENDS, Math.max(200, Math.floor(FSYNC_BUDGET_MS / (2.2 * fsyncMs))));
    if (fsyncAppends < APPENDS) {
      notes.push(
        `fdatasync takes ${fsyncMs.toFixed(2)} ms here: fsync'd appends reduced from ${APPENDS} to ${fsyncAppends}`,
      );
    }
    for (const variant of variants) {
      const directory = join(root, variant.label.replace(/[^a-z]/g, '-'));
      const sync = variant.durability === 'fsync';
      const count = sync ? fsyncAppends : APPENDS;
      const items = messages(count);
      const lines = items.map((item) => `${JSON.stringify(item)}\n`);

      // Append, one message per call.
      let store = variant.make(directory);
      await store.createSession(session('big'));
      const appendMs = await time(async () => {
        for (const item of items) await store.appendItems('big', [item]);
      });
      const rawPath = join(root, `${variant.label.replace(/[^a-z]/g, '-')}.jsonl`);
      const rawAppendMs = await rawAppend(rawPath, lines, sync);
      const isFile = variant.durability !== undefined;
      rows.push({
        name: `${variant.label} append ${count} × 1`,
        ms: appendMs,
        baselineMs: rawAppendMs,
        ...(isFile ? { goal: '≥ 0.5× raw', pass: rawAppendMs / appendMs >= 0.5 } : {}),
        note: `${((appendMs * 1000) / count).toFixed(0)} µs/append`,
      });

      // Load: FileStore from a freshly opened store each time (nothing cached).
      const loads: number[] = [];
      for (let index = 0; index < REPEAT; index++) {
        if (isFile) {
          await store.close?.();
          store = variant.make(directory);
          await (store as FileStore).open();
        }
        loads.push(await time(() => store.getSession('big')));
      }
      const loadMs = median(loads);
      const rawLoadMs = await rawLoad(rawPath);
      rows.push({
        name: `${variant.label} load ${count} items`,
        ms: loadMs,
        baselineMs: rawLoadMs,
        ...(isFile ? { goal: '≥ 0.5× raw', pass: rawLoadMs / loadMs >= 0.5 } : {}),
        note: `median of ${REPEAT}`,
      });

      // Create 10 000 sessions, then list.
      const createCount = sync ? FSYNC_SESSIONS : SESSIONS;
      if (sync) notes.push(`fsync'd creates reduced from ${SESSIONS} to ${FSYNC_SESSIONS} (two syncs each)`);
      const createMs = await time(async () => {
        for (let index = 0; index < createCount; index++) await store.createSession(session(`s${index}`));
      });
      rows.push({
        name: `${variant.label} create ${createCount} sessions`,
        ms: createMs,
        note: `${((createMs * 1000) / createCount).toFixed(0)} µs/create${sync ? ' (2 syncs each: file + directory)' : ''}`,
      });
      const firstPage: number[] = [];
      const allPages: number[] = [];
      let pages = 0;
      for (let index = 0; index < REPEAT; index++) {
        firstPage.push(await time(() => store.listSessions({ limit: 100 })));
        allPages.push(
          await time(async () => {
            pages = await listAll(store);
          }),
        );
      }
      rows.push({ name: `${variant.label} list first page of ${createCount + 1}`, ms: median(firstPage) });
      rows.push({ name: `${variant.label} list all ${pages} pages`, ms: median(allPages) });
      await store.close?.();
    }

    // Listing cost against items per session: 10 000 sessions of 1 item, then of 100. The goal is
    // FileStore's (measured cold); MemoryStore's figure is for reference.
    for (const variant of [variants[0]!, variants[2]!]) {
      const sizes = [1, 100];
      const stores: Store[] = [];
      const directories: string[] = [];
      for (const perSession of sizes) {
        const directory = join(root, `${variant.label.replace(/[^a-z]/g, '-')}-list-${perSession}`);
        const store = variant.make(directory);
        const items = messages(perSession);
        for (let index = 0; index < SESSIONS; index++) await store.createSession(session(`s${index}`, items));
        stores.push(store);
        directories.push(directory);
      }
      // The two sizes alternate, so the machine's load drifts over both alike.
      const runs: number[][] = sizes.map(() => []);
      for (let round = 0; round < REPEAT; round++) {
        for (const [index] of sizes.entries()) {
          if (variant.durability) {
            // Cold: a fresh store opens the directory (reads summaries), then lists.
            await stores[index]!.close?.();
            stores[index] = variant.make(directories[index]!);
          }
          const store = stores[index]!;
          runs[index]!.push(await time(() => store.listSessions({ limit: 100 })));
        }
      }
      for (const store of stores) await store.close?.();
      const firsts = runs.map((values) => median(values));
      const ratio = firsts[1]! / firsts[0]!;
      rows.push({
        name: `${variant.label} first page, ${SESSIONS} sessions × 1 item${variant.durability ? ' (open + list)' : ''}`,
        ms: firsts[0]!,
      });
      rows.push({
        name: `${variant.label} first page, ${SESSIONS} sessions × 100 items${variant.durability ? ' (open + list)' : ''}`,
        ms: firsts[1]!,
        ...(variant.durability ? { goal: 'ratio ≤ 1.5', pass: ratio <= 1.5 } : {}),
        note: `ratio ${ratio.toFixed(2)}`,
      });
    }
  });
  for (const note of notes) console.log(`note: ${note}`);
  report('store', rows, { notes });
}
