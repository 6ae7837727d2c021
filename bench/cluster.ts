// bench/cluster: a multi-instance deployment and its pieces on the local PostgreSQL and Redis
// (DATABASE_URL, REDIS_URL).
//
// - Instances: turns/s and events/s through 1 vs 3 host processes (test/cluster/host.ts: a
//   SessionManager each on one PostgresStore schema, RedisLeaseLock, RedisEventStream,
//   RedisCommandBus), the Redis commands the hosts sent per streamed event, and the latency from a
//   runtime's yield on one host to a subscriber on another (median and p99).
// - The same durable turn workload in one process on PostgresStore vs FileStore (fsync).
// - PostgresStore against LangGraph's PostgresSaver (@langchain/langgraph-checkpoint-postgres, a
//   devDependency): one durable N-turn session each, a turn = load the state, then append a user
//   and an assistant message; ms per turn, the ratio, and SQL statements/transactions per turn
//   counted through each side's own pg pool.
//
// - PostgresStore against FileStore (buffered) and against a raw pg baseline (one INSERT of the
//   same JSON per append, the least a SQL store can do per write): appends to one session, a load,
//   and the first listing page of sessions holding 1 vs 50 items (the goal: the same cost).
// - RedisEventStream appends in batches of 1, 10 and 100 events: events/s and Redis round trips
//   per event, against a raw baseline of one XADD per event (one round trip each).
// - RedisLeaseLock acquire + release against raw SET NX PX + DEL.
import {
  type Checkpoint,
  type CheckpointMetadata,
  copyCheckpoint,
  emptyCheckpoint,
  uuid6,
} from '@langchain/langgraph-checkpoint';
import { PostgresSaver } from '@langchain/langgraph-checkpoint-postgres';
import pg from 'pg';
import { createClient } from 'redis';
import type { SessionEvent } from '../src/events.js';
import { SessionManager } from '../src/manager/session-manager.js';
import { PostgresStore } from '../src/postgres/store.js';
import { RedisEventStream } from '../src/redis/event-stream.js';
import { RedisLeaseLock } from '../src/redis/lease-lock.js';
import type { SessionItem } from '../src/schemas.js';
import type { Store } from '../src/store.js';
import { FileStore } from '../src/stores/file/store.js';
import { sessionRecord } from '../src/testing/records.js';
import { ScriptedRuntime, step } from '../src/testing/scripted-runtime.js';
import { type HostProcess, spawnHost } from '../test/cluster/host-process.js';
import { type BenchRow, median, report, time, withTempDir } from './lib.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Sizes of one run (small in the test that keeps the bench from rotting). */
export interface ClusterBenchOptions {
  appends: number;
  sessions: number;
  events: number;
  leases: number;
  repetitions: number;
}

/** Sizes of the instance benchmark. */
export interface InstanceBenchOptions {
  /** Sessions run at once (spread over the instances). */
  sessions: number;
  /** Turns per session, one after the other. */
  turns: number;
  /** Deltas each turn streams. */
  chunks: number;
  /** Timed deltas for the latency to a remote subscriber. */
  latencyChunks: number;
  repetitions: number;
}

const FULL: ClusterBenchOptions = {
  appends: 2000,
  sessions: 2000,
  events: 10_000,
  leases: 2000,
  repetitions: 3,
};

const FULL_INSTANCES: InstanceBenchOptions = {
  sessions: 24,
  turns: 5,
  chunks: 50,
  latencyChunks: 500,
  repetitions: 3,
};

/** Sizes of the PostgresStore vs PostgresSaver comparison. */
export interface CheckpointBenchOptions {
  /** Turns of the one durable session of a round. */
  turns: number;
  /** Measured rounds (a fresh session each), after one warm-up round. */
  rounds: number;
}

const FULL_CHECKPOINTS: CheckpointBenchOptions = { turns: 50, rounds: 5 };

let hostCount = 0;

function startHost(schema: string, prefix: string): Promise<HostProcess> {
  hostCount += 1;
  return spawnHost({ name: `bench-${hostCount}`, schema, prefix, ttlMs: 15_000 });
}

/** The `p`-quantile (0..1) of `values`. */
function quantile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

/** The figures of one instance count. */
export interface InstanceFigures {
  instances: number;
  ms: number;
  turnsPerSecond: number;
  eventsPerSecond: number;
  redisCommandsPerEvent: number;
}

/**
 * Turns/s and events/s through 1 vs 3 host processes, Redis commands per streamed event, and the
 * yield-to-remote-subscriber latency (3 instances: yield on one, subscriber on another).
 */
export async function measureInstances(options: InstanceBenchOptions): Promise<{
  rows: BenchRow[];
  figures: InstanceFigures[];
  latency: { median: number; p99: number; samples: number };
}> {
  const figures: InstanceFigures[] = [];
  const samples: number[] = [];
  const rows: BenchRow[] = [];
  for (const count of [1, 3]) {
    const schema = `bench_${Date.now().toString(36)}_${count}`;
    const prefix = `bench-${Date.now().toString(36)}-${count}:`;
    const hosts = await Promise.all(Array.from({ length: count }, () => startHost(schema, prefix)));
    try {
      const runs: Array<{ ms: number; events: number; commands: number }> = [];
      for (let repetition = 0; repetition < options.repetitions; repetition++) {
        const ids: string[][] = hosts.map(() => []);
        for (let index = 0; index < options.sessions; index++) {
          const host = hosts[index % count]!;
          ids[index % count]!.push((await host.rpc<{ id: string }>({ op: 'create' })).id);
        }
        const before = await Promise.all(
          hosts.map((host) => host.rpc<{ count: number }>({ op: 'redisCommands' })),
        );
        const start = performance.now();
        const results = await Promise.all(
          hosts.map((host, index) =>
            host.rpc<{ events: number }>({
              op: 'benchRun',
              ids: ids[index],
              turns: options.turns,
              chunks: options.chunks,
            }),
          ),
        );
        const ms = performance.now() - start;
        const after = await Promise.all(
          hosts.map((host) => host.rpc<{ count: number }>({ op: 'redisCommands' })),
        );
        const commands = after.reduce((sum, value, index) => sum + value.count - before[index]!.count, 0);
        runs.push({ ms, events: results.reduce((sum, result) => sum + result.events, 0), commands });
      }
      const ms = median(runs.map((run) => run.ms));
      const events = median(runs.map((run) => run.events));
      const turns = options.sessions * options.turns;
      figures.push({
        instances: count,
        ms,
        turnsPerSecond: turns / (ms / 1000),
        eventsPerSecond: events / (ms / 1000),
        redisCommandsPerEvent: median(runs.map((run) => run.commands / run.events)),
      });
      if (count === 3) {
        // Latency: the turn runs on host 0, the subscriber listens on host 1.
        for (let repetition = 0; repetition < options.repetitions; repetition++) {
          const { id } = await hosts[0]!.rpc<{ id: string }>({ op: 'create' });
          const name = `latency-${repetition}`;
          await hosts[1]!.rpc({ op: 'subscribe', id, name });
          await hosts[0]!.rpc({
            op: 'script',
            id,
            turn: { kind: 'timed', chunks: options.latencyChunks, text: 'ok' },
          });
          await hosts[0]!.rpc({ op: 'run', id, text: 'latency' });
          await hosts[0]!.rpc({ op: 'done', id });
          for (;;) {
            const { latencies } = await hosts[1]!.rpc<{ latencies: number[] }>({ op: 'latencies', name });
            if (latencies.length >= options.latencyChunks) {
              samples.push(...latencies);
              break;
            }
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          await hosts[1]!.rpc({ op: 'unsubscribe', name });
        }
      }
    } finally {
      for (const host of hosts) host.child.kill('SIGTERM');
      await Promise.all(hosts.map((host) => host.exited));
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
      const client = createClient({ url: REDIS_URL });
      client.on('error', () => {});
      await client.connect();
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(keys);
      await client.close();
    }
  }
  const [one, three] = figures as [InstanceFigures, InstanceFigures];
  for (const figure of figures) {
    rows.push({
      name: `${figure.instances} instance${figure.instances === 1 ? '' : 's'}: ${options.sessions * options.turns} turns of ${options.chunks} deltas`,
      ms: figure.ms,
      ...(figure.instances === 3 ? { baselineMs: one.ms } : {}),
      goal: 'Redis commands/event < 1',
      pass: figure.redisCommandsPerEvent < 1,
      note: `${figure.turnsPerSecond.toFixed(1)} turns/s, ${Math.round(figure.eventsPerSecond)} events/s, ${figure.redisCommandsPerEvent.toFixed(3)} Redis commands/event`,
    });
  }
  rows.push({
    name: `yield → subscriber on another instance (${samples.length} deltas)`,
    ms: quantile(samples, 0.99),
    note: `median ${median(samples).toFixed(2)} ms, p99 ${quantile(samples, 0.99).toFixed(2)} ms (3 vs 1 instances: ${(three.turnsPerSecond / one.turnsPerSecond).toFixed(2)}× turns/s)`,
  });
  return {
    rows,
    figures,
    latency: { median: median(samples), p99: quantile(samples, 0.99), samples: samples.length },
  };
}

/** The same durable turn workload in one process: SessionManager on PostgresStore vs FileStore. */
export async function measureManagerStores(options: InstanceBenchOptions): Promise<BenchRow[]> {
  async function turns(store: Store): Promise<number> {
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({ runtime: scripted.factory, store });
    try {
      const ids: string[] = [];
      for (let index = 0; index < options.sessions; index++) ids.push((await manager.createSession()).id);
      const samples: number[] = [];
      for (let repetition = 0; repetition < options.repetitions; repetition++) {
        samples.push(
          await time(() =>
            Promise.all(
              ids.map(async (id) => {
                for (let turn = 0; turn < options.turns; turn++) {
                  scripted.turn(
                    [
                      ...Array.from({ length: options.chunks }, (_, index) => ({
                        type: 'agent_choice' as const,
                        content: `c${index} `,
                      })),
                      step.reply('ok'),
                    ],
                    { sessionId: id },
                  );
                  const stream = await manager.runSession(id, { messages: [`turn ${turn}`] });
                  for await (const _event of stream) {
                    // drain
                  }
                }
              }),
            ),
          ),
        );
      }
      return median(samples);
    } finally {
      await manager.close();
    }
  }
  const schema = `bench_${Date.now().toString(36)}_mgr`;
  try {
    const postgresMs = await turns(new PostgresStore({ connectionString: DATABASE_URL, schema }));
    const fileMs = await withTempDir('cluster-mgr', (directory) =>
      turns(new FileStore({ directory, durability: 'fsync' })),
    );
    const count = options.sessions * options.turns;
    return [
      {
        name: `SessionManager on PostgresStore: ${count} turns`,
        ms: postgresMs,
        baselineMs: fileMs,
        note: `${(count / (postgresMs / 1000)).toFixed(1)} turns/s; raw = FileStore(fsync) ${(count / (fileMs / 1000)).toFixed(1)} turns/s`,
      },
    ];
  } finally {
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

/** SQL sent through one pool: statements (round trips), and transactions (explicit or implicit). */
interface SqlCounter {
  statements: number;
  transactions: number;
}

/**
 * A pool whose every connection counts what it sends: each statement, and each transaction — a
 * `BEGIN` opens one, a statement outside `BEGIN`…`COMMIT`/`ROLLBACK` is one on its own.
 */
function countingPool(counter: SqlCounter): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    let open = false;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      const text = typeof first === 'string' ? first : (first as { text?: unknown } | undefined)?.text;
      const verb = typeof text === 'string' ? (/^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '') : '';
      counter.statements++;
      if (verb === 'BEGIN') {
        open = true;
        counter.transactions++;
      } else if (verb === 'COMMIT' || verb === 'ROLLBACK') {
        open = false;
      } else if (!open) {
        counter.transactions++;
      }
      return query(...args);
    };
  });
  return pool;
}

/** The figures of one side of {@link measureCheckpointers}. */
export interface CheckpointFigures {
  msPerTurn: number;
  statementsPerTurn: number;
  transactionsPerTurn: number;
}

/**
 * PostgresStore against LangGraph's PostgresSaver on one PostgreSQL, each in its own schema: a
 * round is one durable session of `turns` turns, each turn loading the state and then appending a
 * user and an assistant message (the same JSON message objects on both sides).
 *
 * - PostgresStore: `getSession(id)`, then `appendItems(id, [user, assistant])`.
 * - PostgresSaver, driven directly as a graph's loop drives it (no StateGraph, so no graph
 *   overhead is counted): `getTuple({ thread_id })`, then `put` of the next checkpoint whose one
 *   channel `messages` holds the whole list with both new messages, with `newVersions` naming
 *   that channel (so the saver writes one blob of the list and one checkpoint row per turn).
 *
 * Both sides create the empty session / an `input` checkpoint before the timer. Medians over
 * `rounds` after one warm-up round; statements and transactions are counted per timed turn.
 */
export async function measureCheckpointers(options: CheckpointBenchOptions): Promise<{
  rows: BenchRow[];
  store: CheckpointFigures;
  saver: CheckpointFigures;
  ratio: number;
}> {
  const stamp = Date.now().toString(36);
  const storeSchema = `bench_${stamp}_pgstore`;
  const saverSchema = `bench_${stamp}_pgsaver`;
  const storeCounter: SqlCounter = { statements: 0, transactions: 0 };
  const saverCounter: SqlCounter = { statements: 0, transactions: 0 };
  const storePool = countingPool(storeCounter);
  const saverPool = countingPool(saverCounter);
  const store = new PostgresStore({ pool: storePool, schema: storeSchema });
  const saver = new PostgresSaver(saverPool, undefined, { schema: saverSchema });
  const storeRounds: CheckpointFigures[] = [];
  const saverRounds: CheckpointFigures[] = [];
  const measure = async (
    counter: SqlCounter,
    turn: (index: number) => Promise<void>,
  ): Promise<CheckpointFigures> => {
    counter.statements = 0;
    counter.transactions = 0;
    const ms = await time(async () => {
      for (let index = 0; index < options.turns; index++) await turn(index);
    });
    return {
      msPerTurn: ms / options.turns,
      statementsPerTurn: counter.statements / options.turns,
      transactionsPerTurn: counter.transactions / options.turns,
    };
  };
  try {
    await saver.setup();
    for (let round = 0; round <= options.rounds; round++) {
      const id = `turns-${round}`;
      await store.createSession(sessionRecord(id));
      const storeFigures = await measure(storeCounter, async (index) => {
        await store.getSession(id);
        await store.appendItems(id, [message(2 * index), message(2 * index + 1)]);
      });
      const stored = (await store.getSession(id)).items.length;
      if (stored !== 2 * options.turns)
        throw new Error(`PostgresStore holds ${stored} items, not ${2 * options.turns}`);

      const thread = { configurable: { thread_id: id, checkpoint_ns: '' } };
      const input: Checkpoint = emptyCheckpoint();
      input.channel_values = { messages: [] };
      input.channel_versions = { messages: saver.getNextVersion(undefined) };
      await saver.put(thread, input, { source: 'input', step: -1, parents: {} }, input.channel_versions);
      const saverFigures = await measure(saverCounter, async (index) => {
        const tuple = await saver.getTuple(thread);
        if (!tuple) throw new Error(`PostgresSaver lost thread ${id}`);
        const previous = tuple.checkpoint;
        const next = copyCheckpoint(previous);
        next.id = uuid6(-1);
        next.ts = new Date().toISOString();
        const version = saver.getNextVersion(previous.channel_versions.messages as number | undefined);
        next.channel_values = {
          messages: [
            ...((previous.channel_values.messages as unknown[] | undefined) ?? []),
            (message(2 * index) as Extract<SessionItem, { kind: 'message' }>).message,
            (message(2 * index + 1) as Extract<SessionItem, { kind: 'message' }>).message,
          ],
        };
        next.channel_versions = { ...previous.channel_versions, messages: version };
        const metadata: CheckpointMetadata = {
          source: 'loop',
          step: ((tuple.metadata?.step as number | undefined) ?? -1) + 1,
          parents: {},
        };
        await saver.put(tuple.config, next, metadata, { messages: version });
      });
      const saved = (await saver.getTuple(thread))?.checkpoint.channel_values.messages as
        | unknown[]
        | undefined;
      if (saved?.length !== 2 * options.turns) {
        throw new Error(`PostgresSaver holds ${saved?.length} messages, not ${2 * options.turns}`);
      }
      if (round > 0) {
        storeRounds.push(storeFigures);
        saverRounds.push(saverFigures);
      }
    }
  } finally {
    await store.close();
    await storePool.end();
    await saverPool.end();
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${storeSchema}" CASCADE`);
    await admin.query(`DROP SCHEMA IF EXISTS "${saverSchema}" CASCADE`);
    await admin.end();
  }
  const summarise = (rounds: CheckpointFigures[]): CheckpointFigures => ({
    msPerTurn: median(rounds.map((figures) => figures.msPerTurn)),
    statementsPerTurn: median(rounds.map((figures) => figures.statementsPerTurn)),
    transactionsPerTurn: median(rounds.map((figures) => figures.transactionsPerTurn)),
  });
  const storeFigures = summarise(storeRounds);
  const saverFigures = summarise(saverRounds);
  const ratio = saverFigures.msPerTurn / storeFigures.msPerTurn;
  const sql = (figures: CheckpointFigures) =>
    `${figures.statementsPerTurn.toFixed(1)} SQL statements, ${figures.transactionsPerTurn.toFixed(1)} transactions/turn`;
  const workload = `${options.turns}-turn session, ms/turn`;
  return {
    rows: [
      {
        name: `PostgresStore: ${workload} (getSession + appendItems user & assistant)`,
        ms: storeFigures.msPerTurn,
        baselineMs: saverFigures.msPerTurn,
        note: `${sql(storeFigures)}; raw = LangGraph PostgresSaver; PostgresSaver ÷ PostgresStore = ${ratio.toFixed(2)}×`,
      },
      {
        name: `LangGraph PostgresSaver: ${workload} (getTuple + put, messages channel, no StateGraph)`,
        ms: saverFigures.msPerTurn,
        note: sql(saverFigures),
      },
    ],
    store: storeFigures,
    saver: saverFigures,
    ratio,
  };
}

function message(index: number): SessionItem {
  return {
    kind: 'message',
    message: {
      id: `m${index}`,
      role: index % 2 === 0 ? 'user' : 'assistant',
      content: `message ${index}: the quick brown fox jumps over the lazy dog.`,
      createdAt: new Date().toISOString(),
    },
  };
}

function event(seq: number): SessionEvent {
  return {
    type: 'agent_choice',
    content: `delta ${seq} `,
    sessionId: 'bench',
    turnId: 't',
    seq,
    timestamp: new Date().toISOString(),
  } as SessionEvent;
}

async function storeRows(store: Store, options: ClusterBenchOptions, label: string): Promise<BenchRow[]> {
  await store.createSession(sessionRecord('append'));
  const appendMs = await time(async () => {
    for (let index = 0; index < options.appends; index++) await store.appendItems('append', [message(index)]);
  });
  const loadMs = median(
    await Promise.all(
      Array.from({ length: options.repetitions }, () => time(() => store.getSession('append'))),
    ),
  );
  const firstPage: Record<string, number> = {};
  for (const items of [1, 50]) {
    const batch: Promise<void>[] = [];
    for (let index = 0; index < options.sessions; index++) {
      const id = `list-${items}-${index}`;
      batch.push(
        store.createSession(
          sessionRecord(id, {
            owner: `owner-${items}`,
            items: Array.from({ length: items }, (_, item) => message(item)),
          }),
        ),
      );
      if (batch.length === 50) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    const samples: number[] = [];
    for (let repeat = 0; repeat < options.repetitions; repeat++) {
      samples.push(await time(() => store.listSessions({ owner: `owner-${items}`, limit: 50 })));
    }
    firstPage[items] = median(samples);
  }
  return [
    { name: `${label} append ×${options.appends}`, ms: appendMs },
    { name: `${label} getSession (${options.appends} items)`, ms: loadMs },
    { name: `${label} first page, sessions of 1 item`, ms: firstPage[1]! },
    {
      name: `${label} first page, sessions of 50 items`,
      ms: firstPage[50]!,
      goal: '≤ 2× the 1-item page',
      pass: firstPage[50]! <= 2 * firstPage[1]! + 1,
    },
  ];
}

/** PostgresStore vs FileStore vs raw pg INSERTs. */
export async function measureStores(options: ClusterBenchOptions): Promise<BenchRow[]> {
  const schema = `bench_${Date.now().toString(36)}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const store = new PostgresStore({ connectionString: DATABASE_URL, schema });
  try {
    await admin.query(`CREATE TABLE IF NOT EXISTS "${schema}_raw" (id serial PRIMARY KEY, body text)`);
    const rawMs = await time(async () => {
      for (let index = 0; index < options.appends; index++) {
        await admin.query(`INSERT INTO "${schema}_raw" (body) VALUES ($1)`, [JSON.stringify(message(index))]);
      }
    });
    const postgres = await storeRows(store, options, 'postgres');
    postgres[0]!.baselineMs = rawMs;
    postgres[0]!.note = 'raw: one INSERT per append';
    const file = await withTempDir('cluster', async (directory) => {
      const fileStore = new FileStore({ directory, durability: 'buffered' });
      try {
        return await storeRows(fileStore, options, 'file(buffered)');
      } finally {
        await fileStore.close();
      }
    });
    return [...postgres, ...file];
  } finally {
    await store.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.query(`DROP TABLE IF EXISTS "${schema}_raw"`);
    await admin.end();
  }
}

/** RedisEventStream batches and RedisLeaseLock against raw commands; round trips counted. */
export async function measureRedis(options: ClusterBenchOptions): Promise<BenchRow[]> {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  const prefix = `bench-${Date.now().toString(36)}:`;
  const rows: BenchRow[] = [];
  try {
    const rawMs = await time(async () => {
      for (let seq = 1; seq <= options.events; seq++) {
        await client.sendCommand(['XADD', `${prefix}raw`, `${seq}-0`, 'e', JSON.stringify(event(seq))]);
      }
    });
    for (const batch of [1, 10, 100]) {
      let calls = 0;
      const stream = new RedisEventStream({
        client: {
          sendCommand: (args) => {
            calls++;
            return client.sendCommand(args);
          },
        },
        prefix: `${prefix}${batch}:`,
      });
      const ms = await time(async () => {
        for (let seq = 1; seq <= options.events; seq += batch) {
          await stream.append(
            'bench',
            Array.from({ length: Math.min(batch, options.events - seq + 1) }, (_, index) =>
              event(seq + index),
            ),
          );
        }
      });
      const perEvent = calls / options.events;
      rows.push({
        name: `event stream, batches of ${batch}: ${Math.round(options.events / (ms / 1000))} events/s`,
        ms,
        baselineMs: rawMs,
        goal: batch === 1 ? undefined : 'round trips/event < 1',
        pass: batch === 1 ? undefined : perEvent < 1,
        note: `${perEvent.toFixed(3)} round trips/event (raw: 1 XADD per event)`,
      } as BenchRow);
    }
    const lock = new RedisLeaseLock({ client, prefix });
    const leaseMs = await time(async () => {
      for (let index = 0; index < options.leases; index++)
        await (await lock.acquire(`s${index % 10}`))!.release();
    });
    const rawLeaseMs = await time(async () => {
      for (let index = 0; index < options.leases; index++) {
        await client.set(`${prefix}rawlock`, 'x', { NX: true, PX: 1000 });
        await client.del(`${prefix}rawlock`);
      }
    });
    rows.push({
      name: `lease acquire + release ×${options.leases}`,
      ms: leaseMs,
      baselineMs: rawLeaseMs,
      note: 'raw: SET NX PX + DEL',
    });
    return rows;
  } finally {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.close();
  }
}

/** Runs the bench and prints its table. */
export async function run(
  options: ClusterBenchOptions = FULL,
  instances: InstanceBenchOptions = FULL_INSTANCES,
  checkpoints: CheckpointBenchOptions = FULL_CHECKPOINTS,
): Promise<void> {
  const measured = await measureInstances(instances);
  const managerRows = await measureManagerStores(instances);
  const checkpointers = await measureCheckpointers(checkpoints);
  const rows = [
    ...measured.rows,
    ...managerRows,
    ...checkpointers.rows,
    ...(await measureStores(options)),
    ...(await measureRedis(options)),
  ];
  report('cluster', rows, {
    instances: measured.figures,
    latency: measured.latency,
    checkpointers: { store: checkpointers.store, saver: checkpointers.saver, ratio: checkpointers.ratio },
  });
}
