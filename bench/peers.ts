// bench/peers: the same workloads against other agent frameworks' session stores, in one run.
//
// The peers are dev dependencies of this bench only (never of the package; nothing under src/
// imports this file). Versions: see package.json; why these: docs/performance.md.
//
// 1. In memory, 2 000 turns of one session:
//    - OpenAI Agents JS `MemorySession` loop: per turn `getItems()` (what its runner reads to build
//      the model input) then `addItems([user, assistant])` (what it saves after the turn);
//    - our whole `SessionManager` on a `MemoryStore`: per turn `runSession` with one user message,
//      a runtime that yields one assistant message, the TurnStream read to the end and `done`.
//    Figure: MemorySession ms ÷ SessionManager ms (how many times faster ours is). Goal ≥ 10.
//
// 2. Durable, 500 turns of one session, each side on the same file system (the OS temp dir):
//    - ours: `getSession`, then `appendItems([user])`, then `appendItems([assistant])` on a
//      `FileStore` (2 commits a turn, as the manager writes them: the user's message before the
//      runtime runs, the answer after);
//    - LangGraph, checkpointer API: `getTuple` of the thread, then `put` of a checkpoint with the
//      user message added, then `put` of one with the answer added (2 commits a turn);
//    - LangGraph, graph: `invoke` of a one-node `StateGraph(MessagesAnnotation)` with the user
//      message, the node answering (the checkpointer then commits the input checkpoint, the node's
//      writes and the step's checkpoint: ~5 commits a turn, counted below).
//    Fairness: FileStore 'fsync' against SQLite WAL + `synchronous=FULL` (a commit syncs the WAL),
//    'buffered' against WAL + `synchronous=NORMAL` (a commit reaches the OS; syncs at checkpoints
//    only). The pragmas are set on the database handed to `SqliteSaver`, read back and printed.
//    Figures: per turn and per durable commit; goal SqliteSaver ÷ FileStore ≥ 2 per turn.
//    `MemorySaver` (checkpointer API) against `MemoryStore`: the same work without a disk, for
//    reference. (A StateGraph on MemorySaver, measured while this bench was written, cost about
//    what one on SQLite with NORMAL does: it is left out to keep the bench within minutes.)
//
// Each round runs every variant once on fresh data, interleaved, so the machine's drift hits all
// alike, after an untimed warm-up; in the first timed round the commits are counted.
import { promises as fs } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { AIMessage, HumanMessage } from '@langchain/core/messages';
import { END, MemorySaver, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import {
  type BaseCheckpointSaver,
  type Checkpoint,
  emptyCheckpoint,
  uuid6,
} from '@langchain/langgraph-checkpoint';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import { type AgentInputItem, MemorySession } from '@openai/agents';
import Database from 'better-sqlite3';
import type { RuntimeEvent } from '../src/events.js';
import { SessionManager } from '../src/manager/session-manager.js';
import type { Runtime } from '../src/runtime.js';
import type { SessionItem } from '../src/schemas.js';
import type { Store } from '../src/store.js';
import { FileStore } from '../src/stores/file/store.js';
import { MemoryStore } from '../src/stores/memory.js';
import { sessionRecord } from '../src/testing/records.js';
import { type BenchRow, median, report, time, withTempDir } from './lib.js';

const ANSWER = 'Sure, here is a short answer.';
const SESSION_ID = 'peers';

function userText(turn: number): string {
  return `message ${turn}: the quick brown fox jumps over the lazy dog, again and again.`;
}

function turnItems(turn: number): [SessionItem, SessionItem] {
  const createdAt = new Date().toISOString();
  return [
    { kind: 'message', message: { id: `u${turn}`, role: 'user', content: userText(turn), createdAt } },
    { kind: 'message', message: { id: `a${turn}`, role: 'assistant', content: ANSWER, createdAt } },
  ];
}

// ---------------------------------------------------------------- 1. in memory

/** A runtime whose every turn yields one assistant message. */
function answerRuntime(): Runtime {
  let answers = 0;
  return {
    async *run(): AsyncGenerator<RuntimeEvent> {
      answers++;
      yield {
        type: 'message_added',
        message: {
          id: `a${answers}`,
          role: 'assistant',
          content: ANSWER,
          createdAt: new Date().toISOString(),
        },
      };
    },
  };
}

async function timeMemorySession(turns: number): Promise<number> {
  const session = new MemorySession();
  const ms = await time(async () => {
    for (let turn = 0; turn < turns; turn++) {
      const history = await session.getItems();
      if (history.length !== turn * 2)
        throw new Error(`MemorySession: ${history.length} items before turn ${turn}`);
      const items: AgentInputItem[] = [
        { type: 'message', role: 'user', content: userText(turn) },
        {
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: ANSWER }],
        },
      ];
      await session.addItems(items);
    }
  });
  const items = await session.getItems();
  if (items.length !== turns * 2)
    throw new Error(`MemorySession: ${items.length} items after ${turns} turns`);
  return ms;
}

async function timeSessionManager(turns: number): Promise<number> {
  const manager = new SessionManager({ runtime: answerRuntime, store: new MemoryStore() });
  try {
    const { id } = await manager.createSession();
    const ms = await time(async () => {
      for (let turn = 0; turn < turns; turn++) {
        const stream = await manager.runSession(id, { messages: [userText(turn)] });
        let events = 0;
        for await (const _event of stream) events++;
        const result = await stream.done;
        if (result.stopReason !== 'end_turn' || events === 0) {
          throw new Error(
            `SessionManager: turn ${turn} stopped with ${result.stopReason} after ${events} events`,
          );
        }
      }
    });
    const session = await manager.getSession(id);
    if (session.items.length !== turns * 2) {
      throw new Error(`SessionManager: ${session.items.length} items after ${turns} turns`);
    }
    return ms;
  } finally {
    await manager.close();
  }
}

/** What {@link measureInMemory} found. */
export interface InMemoryResult {
  turns: number;
  /** Median milliseconds of the whole loop. */
  memorySessionMs: number;
  sessionManagerMs: number;
  /** `memorySessionMs / sessionManagerMs`: how many times faster our whole turn is than their loop. */
  ratio: number;
}

/** Times the OpenAI Agents `MemorySession` loop and our `SessionManager` over `turns` turns, interleaved. */
export async function measureInMemory(
  options: { turns?: number; rounds?: number; warmupTurns?: number } = {},
): Promise<InMemoryResult> {
  const turns = options.turns ?? 2_000;
  const rounds = options.rounds ?? 3;
  // A shorter session first, untimed, so both sides run JIT-compiled code when timed.
  const warmupTurns = options.warmupTurns ?? 200;
  if (warmupTurns > 0) {
    await timeMemorySession(warmupTurns);
    await timeSessionManager(warmupTurns);
  }
  const theirs: number[] = [];
  const ours: number[] = [];
  for (let round = 0; round < rounds; round++) {
    theirs.push(await timeMemorySession(turns));
    ours.push(await timeSessionManager(turns));
  }
  const memorySessionMs = median(theirs);
  const sessionManagerMs = median(ours);
  return { turns, memorySessionMs, sessionManagerMs, ratio: memorySessionMs / sessionManagerMs };
}

// ---------------------------------------------------------------- 2. durable

type Synchronous = 'FULL' | 'NORMAL';

/** What a warm-up round counted for one variant. */
interface Counters {
  /** Acknowledged atomic writes: FileStore calls that write; SQLite transactions (explicit or autocommit). */
  commits: number;
}

/** One variant opened on fresh data. */
export interface OpenVariant {
  turn(turn: number): Promise<void>;
  /** Messages in the session after the run, read back (checked against the turns). */
  messages(): Promise<number>;
  /** For SQLite: the journal mode and synchronous level read back from the connection. */
  settings?(): string;
  close(): Promise<void>;
}

/** One side of the durable workload. */
export interface Variant {
  /** Short name in the tables. */
  label: string;
  /** The label of ours it is compared with; absent for ours. */
  against?: string;
  /** Whether it writes to disk (its commits are counted) or keeps everything in memory. */
  durable: boolean;
  open(directory: string, counters: Counters | undefined): Promise<OpenVariant>;
}

function storeVariant(label: string, durable: boolean, make: (directory: string) => Store): Variant {
  return {
    label,
    durable,
    async open(directory, counters) {
      const store = make(directory);
      await store.createSession(sessionRecord(SESSION_ID));
      const append = (items: SessionItem[]) => {
        if (counters) counters.commits++;
        return store.appendItems(SESSION_ID, items);
      };
      return {
        async turn(turn) {
          await store.getSession(SESSION_ID);
          const [user, answer] = turnItems(turn);
          await append([user]);
          await append([answer]);
        },
        messages: async () => (await store.getSession(SESSION_ID)).items.length,
        close: async () => store.close?.(),
      };
    },
  };
}

// Counts SQLite commits on a better-sqlite3 connection: a write statement run outside a
// transaction commits on its own; a `transaction()` function commits once per call.
function countCommits(db: Database.Database, counters: Counters): void {
  const prepare = db.prepare.bind(db);
  const transaction = db.transaction.bind(db);
  const patched = db as unknown as {
    prepare: (sql: string) => Database.Statement;
    transaction: (work: (...args: unknown[]) => unknown) => (...args: unknown[]) => unknown;
  };
  patched.prepare = (sql) => {
    const statement = prepare(sql);
    const run = statement.run.bind(statement);
    statement.run = (...args: unknown[]) => {
      if (!db.inTransaction && !statement.reader) counters.commits++;
      return run(...args);
    };
    return statement;
  };
  patched.transaction = (work) => {
    const wrapped = transaction(work);
    return (...args: unknown[]) => {
      counters.commits++;
      return wrapped(...args);
    };
  };
}

const SYNCHRONOUS_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

/** A SQLite database in WAL mode with `synchronous` set explicitly, as handed to `SqliteSaver`. */
function openSqlite(path: string, synchronous: Synchronous, counters: Counters | undefined) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  if (counters) countCommits(db, counters);
  const settings = () => {
    const journal = String(db.pragma('journal_mode', { simple: true }));
    const level = SYNCHRONOUS_NAMES[Number(db.pragma('synchronous', { simple: true }))] ?? '?';
    if (journal !== 'wal' || level !== synchronous) {
      throw new Error(`SQLite runs journal_mode=${journal} synchronous=${level}, not WAL + ${synchronous}`);
    }
    return `journal_mode=${journal} synchronous=${level}`;
  };
  return { db, settings };
}

type Saver = { saver: BaseCheckpointSaver; settings?: () => string; close(): void };

function sqliteSaver(directory: string, synchronous: Synchronous, counters: Counters | undefined): Saver {
  const { db, settings } = openSqlite(join(directory, 'checkpoints.db'), synchronous, counters);
  return { saver: new SqliteSaver(db), settings, close: () => db.close() };
}

function memorySaver(): Saver {
  return { saver: new MemorySaver(), close: () => {} };
}

const threadConfig = { configurable: { thread_id: SESSION_ID, checkpoint_ns: '' } };

function checkpointWith(messages: readonly unknown[]): Checkpoint {
  return {
    ...emptyCheckpoint(),
    id: uuid6(messages.length),
    ts: new Date().toISOString(),
    channel_values: { messages },
    channel_versions: { messages: messages.length },
  };
}

/**
 * A LangGraph side over a checkpoint saver: `start` gets the saver and returns how it runs a turn
 * and reads the messages back; the saver's settings and close are the variant's.
 */
function saverVariant(
  label: string,
  against: string,
  durable: boolean,
  make: (directory: string, counters: Counters | undefined) => Saver,
  start: (saver: BaseCheckpointSaver) => Promise<Pick<OpenVariant, 'turn' | 'messages'>>,
): Variant {
  return {
    label,
    against,
    durable,
    async open(directory, counters) {
      const { saver, settings, close } = make(directory, counters);
      return {
        ...(await start(saver)),
        ...(settings ? { settings } : {}),
        close: async () => close(),
      };
    },
  };
}

/** LangGraph's checkpointer API alone: get the thread's latest checkpoint, put one per new message. */
function checkpointerVariant(
  label: string,
  against: string,
  durable: boolean,
  make: (directory: string, counters: Counters | undefined) => Saver,
): Variant {
  return saverVariant(label, against, durable, make, async (saver) => {
    const metadata = (step: number) => ({ source: 'update' as const, step, parents: {} });
    await saver.put(threadConfig, checkpointWith([]), metadata(0), { messages: 0 });
    const latest = async () => {
      const tuple = await saver.getTuple(threadConfig);
      if (tuple === undefined) throw new Error(`${label}: the thread has no checkpoint`);
      return tuple;
    };
    return {
      async turn(turn) {
        const tuple = await latest();
        let config = tuple.config;
        let messages = tuple.checkpoint.channel_values.messages as unknown[];
        for (const item of turnItems(turn)) {
          messages = [...messages, item];
          config = await saver.put(config, checkpointWith(messages), metadata(messages.length), {
            messages: messages.length,
          });
        }
      },
      messages: async () => ((await latest()).checkpoint.channel_values.messages as unknown[]).length,
    };
  });
}

/** A LangGraph chat turn: `invoke` of a one-node graph over the messages channel, checkpointed. */
function graphVariant(
  label: string,
  against: string,
  durable: boolean,
  make: (directory: string, counters: Counters | undefined) => Saver,
): Variant {
  return saverVariant(label, against, durable, make, async (saver) => {
    const graph = new StateGraph(MessagesAnnotation)
      .addNode('agent', () => ({ messages: [new AIMessage(ANSWER)] }))
      .addEdge(START, 'agent')
      .addEdge('agent', END)
      .compile({ checkpointer: saver });
    const config = { configurable: { thread_id: SESSION_ID } };
    return {
      async turn(turn) {
        await graph.invoke({ messages: [new HumanMessage(userText(turn))] }, config);
      },
      messages: async () =>
        ((await graph.getState(config)).values as { messages: unknown[] }).messages.length,
    };
  });
}

const FSYNC = "FileStore 'fsync'";
const BUFFERED = "FileStore 'buffered'";
const MEMORY = 'MemoryStore';

/** Every durable-workload variant, in the order a round runs them. */
export const DURABLE_VARIANTS: readonly Variant[] = [
  storeVariant(FSYNC, true, (directory) => new FileStore({ directory, durability: 'fsync' })),
  checkpointerVariant('SqliteSaver WAL+FULL, checkpointer API', FSYNC, true, (d, c) =>
    sqliteSaver(d, 'FULL', c),
  ),
  graphVariant('SqliteSaver WAL+FULL, StateGraph', FSYNC, true, (d, c) => sqliteSaver(d, 'FULL', c)),
  storeVariant(BUFFERED, true, (directory) => new FileStore({ directory, durability: 'buffered' })),
  checkpointerVariant('SqliteSaver WAL+NORMAL, checkpointer API', BUFFERED, true, (d, c) =>
    sqliteSaver(d, 'NORMAL', c),
  ),
  graphVariant('SqliteSaver WAL+NORMAL, StateGraph', BUFFERED, true, (d, c) => sqliteSaver(d, 'NORMAL', c)),
  storeVariant(MEMORY, false, () => new MemoryStore()),
  checkpointerVariant('MemorySaver, checkpointer API', MEMORY, false, () => memorySaver()),
];

/** One variant of {@link measureDurable}. */
export interface DurableResult {
  label: string;
  /** The label of ours it is compared with; absent for ours. */
  against?: string;
  turns: number;
  /** Median milliseconds of the whole session. */
  ms: number;
  msPerTurn: number;
  /** Counted in the first timed round; absent for what keeps everything in memory. */
  commitsPerTurn?: number;
  /** `msPerTurn / commitsPerTurn`: what a turn costs per durable commit. */
  msPerCommit?: number;
  /** SQLite's journal mode and synchronous level, read back after the run. */
  settings?: string;
  /** Bytes on disk once the store is closed (durable variants). */
  bytes?: number;
}

async function runOnce(
  variant: Variant,
  directory: string,
  turns: number,
  counters: Counters | undefined,
): Promise<{ ms: number; counted: Counters; settings?: string; bytes: number }> {
  await fs.mkdir(directory);
  const open = await variant.open(directory, counters);
  let closed = false;
  try {
    // Only the turns count: not the session's creation before them, nor the reads and close after.
    const before = counters?.commits ?? 0;
    const ms = await time(async () => {
      for (let turn = 0; turn < turns; turn++) await open.turn(turn);
    });
    const counted = { commits: (counters?.commits ?? 0) - before };
    const messages = await open.messages();
    if (messages !== turns * 2)
      throw new Error(`${variant.label}: ${messages} messages after ${turns} turns`);
    const settings = open.settings?.();
    closed = true;
    await open.close();
    return { ms, counted, ...(settings ? { settings } : {}), bytes: await directoryBytes(directory) };
  } finally {
    if (!closed) await open.close();
    await fs.rm(directory, { recursive: true, force: true });
  }
}

/** Bytes of every file under `directory`, as the closed store left them. */
async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(directory, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await fs.stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/**
 * Runs the durable workload of `turns` turns on every variant: a short warm-up session each
 * (untimed), then `rounds` timed rounds on fresh data, the variants interleaved. In the first timed
 * round the commits of the durable variants are counted, by wrappers whose
 * cost (a counter increment per commit) is far below a commit's.
 */
export async function measureDurable(
  options: { turns?: number; rounds?: number; warmupTurns?: number; variants?: readonly Variant[] } = {},
): Promise<DurableResult[]> {
  const turns = options.turns ?? 500;
  const rounds = Math.max(1, options.rounds ?? 3);
  const warmupTurns = options.warmupTurns ?? 50;
  const variants = options.variants ?? DURABLE_VARIANTS;
  return withTempDir('peers', async (root) => {
    if (warmupTurns > 0) {
      for (const [index, variant] of variants.entries()) {
        await runOnce(variant, join(root, `warm-${index}`), warmupTurns, undefined);
      }
    }
    const counted: (Counters | undefined)[] = [];
    const settings: (string | undefined)[] = [];
    const bytes: (number | undefined)[] = [];
    const samples = variants.map(() => [] as number[]);
    for (let round = 0; round < rounds; round++) {
      for (const [index, variant] of variants.entries()) {
        const directory = join(root, `r${round}-${index}`);
        if (round > 0 || !variant.durable) {
          const once = await runOnce(variant, directory, turns, undefined);
          samples[index]!.push(once.ms);
          if (round === 0) {
            settings.push(once.settings);
            counted.push(undefined);
            bytes.push(undefined);
          }
          continue;
        }
        const counters: Counters = { commits: 0 };
        const once = await runOnce(variant, directory, turns, counters);
        samples[index]!.push(once.ms);
        settings.push(once.settings);
        counted.push(once.counted);
        bytes.push(once.bytes);
      }
    }
    return variants.map((variant, index) => {
      const ms = median(samples[index]!);
      const counts = counted[index];
      const commitsPerTurn = counts === undefined ? undefined : counts.commits / turns;
      return {
        label: variant.label,
        ...(variant.against ? { against: variant.against } : {}),
        turns,
        ms,
        msPerTurn: ms / turns,
        ...(commitsPerTurn === undefined ? {} : { commitsPerTurn, msPerCommit: ms / turns / commitsPerTurn }),
        ...(settings[index] ? { settings: settings[index] } : {}),
        ...(bytes[index] === undefined ? {} : { bytes: bytes[index] }),
      };
    });
  });
}

/**
 * Why better-sqlite3's native binding cannot load in this process, or `undefined` when it loads.
 * `npm ci` compiles it for the Node that ran the install; another Node (`npm run test:node24`)
 * cannot load that binary.
 */
export function sqliteUnavailable(): string | undefined {
  try {
    new Database(':memory:').close();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** The SQLite library better-sqlite3 carries. */
export function sqliteVersion(): string {
  const db = new Database(':memory:');
  try {
    return String(db.prepare('select sqlite_version()').pluck().get());
  } finally {
    db.close();
  }
}

/** The synchronous level `SqliteSaver` runs with here when handed a plain connection (its own default). */
export async function sqliteSaverDefault(): Promise<string> {
  return withTempDir('peers-default', async (directory) => {
    const db = new Database(join(directory, 'default.db'));
    try {
      const saver = new SqliteSaver(db);
      await saver.getTuple(threadConfig); // runs its setup (journal_mode=WAL)
      const level = SYNCHRONOUS_NAMES[Number(db.pragma('synchronous', { simple: true }))] ?? '?';
      return `journal_mode=${String(db.pragma('journal_mode', { simple: true }))} synchronous=${level}`;
    } finally {
      db.close();
    }
  });
}

// ---------------------------------------------------------------- report

const IN_MEMORY_GOAL = 10;
const DURABLE_GOAL = 2;

function us(ms: number): string {
  return `${(ms * 1000).toFixed(0)} µs`;
}

/** The rows of the goal table: each peer against ours, per turn, with the per-commit ratio in the note. */
export function peerRows(inMemory: InMemoryResult, durable: readonly DurableResult[]): BenchRow[] {
  const rows: BenchRow[] = [
    {
      name: `${inMemory.turns} turns in memory: our SessionManager vs OpenAI Agents MemorySession loop`,
      ms: inMemory.sessionManagerMs,
      baselineMs: inMemory.memorySessionMs,
      goal: `peer ÷ ours ≥ ${IN_MEMORY_GOAL}`,
      pass: inMemory.ratio >= IN_MEMORY_GOAL,
      note: `ours ${us(inMemory.sessionManagerMs / inMemory.turns)}/turn, theirs ${us(inMemory.memorySessionMs / inMemory.turns)}/turn`,
    },
  ];
  for (const peer of durable) {
    if (peer.against === undefined) continue;
    const ours = durable.find((result) => result.label === peer.against);
    if (ours === undefined) continue;
    const durableGoal = peer.label.startsWith('SqliteSaver');
    rows.push({
      name: `${peer.turns} turns: ${ours.label} vs ${peer.label}`,
      ms: ours.ms,
      baselineMs: peer.ms,
      ...(durableGoal
        ? { goal: `peer ÷ ours ≥ ${DURABLE_GOAL}`, pass: peer.ms / ours.ms >= DURABLE_GOAL }
        : { goal: 'reference' }),
      ...(peer.msPerCommit !== undefined && ours.msPerCommit !== undefined
        ? { note: `per commit: ${(peer.msPerCommit / ours.msPerCommit).toFixed(2)}×` }
        : {}),
    });
  }
  return rows;
}

function printVariants(durable: readonly DurableResult[]): void {
  const columns = [
    'variant',
    'ms/turn',
    'commits/turn',
    'per commit',
    'bytes on disk',
    'SQLite settings (read back)',
  ];
  const table = durable.map((result) => [
    result.label,
    result.msPerTurn.toFixed(3),
    result.commitsPerTurn === undefined ? '' : result.commitsPerTurn.toFixed(2),
    result.msPerCommit === undefined ? '' : us(result.msPerCommit),
    result.bytes === undefined ? '' : result.bytes.toLocaleString('en-US'),
    result.settings ?? '',
  ]);
  const widths = columns.map((column, index) =>
    Math.max(column.length, ...table.map((row) => row[index]!.length)),
  );
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index]!)).join('  ');
  console.log(`\npeers: durable ${durable[0]?.turns ?? 0}-turn session, medians`);
  console.log(line(columns));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of table) console.log(line(row));
}

/** `npm run bench -- peers`: the per-variant table, the goal table and one BENCH_JSON line. */
export async function run(): Promise<void> {
  const rounds = Number(process.env.PEERS_ROUNDS ?? 3);
  const load = () => loadavg()[0]!.toFixed(1);
  const loadAtStart = load();
  const inMemory = await measureInMemory({ rounds });
  const durable = await measureDurable({ rounds });
  const saverDefault = await sqliteSaverDefault();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version}, SQLite ${sqliteVersion()}, 1-minute load average ${loadAtStart} at start, ${load()} at end`;
  printVariants(durable);
  console.log(`note: SqliteSaver on a connection left as it opens runs ${saverDefault} here`);
  console.log(`machine: ${machine}`);
  report(
    'peers',
    peerRows(inMemory, durable),
    { rounds, inMemory, durable, sqliteSaverDefault: saverDefault, machine },
    { baseline: 'peer ms', ratio: 'peer ÷ ours' },
  );
}
