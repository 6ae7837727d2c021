// bench/cluster: the pieces of a multi-instance deployment on the local PostgreSQL and Redis
// (DATABASE_URL, REDIS_URL). Not yet the 1-vs-3-instance turn benchmark of issue 14 (that needs the
// event log wired into the manager).
//
// - PostgresStore against FileStore (buffered) and against a raw pg baseline (one INSERT of the
//   same JSON per append, the least a SQL store can do per write): appends to one session, a load,
//   and the first listing page of sessions holding 1 vs 50 items (the goal: the same cost).
// - RedisEventStream appends in batches of 1, 10 and 100 events: events/s and Redis round trips
//   per event, against a raw baseline of one XADD per event (one round trip each).
// - RedisLeaseLock acquire + release against raw SET NX PX + DEL.
import pg from 'pg';
import { createClient } from 'redis';
import type { SessionEvent } from '../src/events.js';
import { PostgresStore } from '../src/postgres/store.js';
import { RedisEventStream } from '../src/redis/event-stream.js';
import { RedisLeaseLock } from '../src/redis/lease-lock.js';
import type { SessionItem } from '../src/schemas.js';
import type { Store } from '../src/store.js';
import { FileStore } from '../src/stores/file/store.js';
import { sessionRecord } from '../src/testing/records.js';
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

const FULL: ClusterBenchOptions = {
  appends: 2000,
  sessions: 2000,
  events: 10_000,
  leases: 2000,
  repetitions: 3,
};

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
export async function run(options: ClusterBenchOptions = FULL): Promise<void> {
  const rows = [...(await measureStores(options)), ...(await measureRedis(options))];
  report('cluster', rows);
}
