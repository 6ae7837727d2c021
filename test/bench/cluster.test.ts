// Runs bench/cluster's code paths with small counts against the real servers, so the bench cannot
// rot: every row is measured, and batched appends cost fewer round trips than events.
import { describe, expect, test } from 'vitest';
import {
  measureCheckpointers,
  measureInstances,
  measureManagerStores,
  measureRedis,
  measureStores,
} from '../../bench/cluster.js';
import { probePostgres, probeRedis, whenServer } from '../helpers/servers.js';

const small = { appends: 20, sessions: 20, events: 200, leases: 20, repetitions: 1 };
const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const tiny = { sessions: 3, turns: 2, chunks: 5, latencyChunks: 20, repetitions: 1 };

describe('bench/cluster', () => {
  whenServer(postgres, 'bench/cluster stores', () => {
    test('measureStores measures PostgresStore against raw INSERTs and FileStore', async () => {
      const rows = await measureStores(small);
      expect(rows.map((row) => row.name.split(' ')[0])).toEqual([
        'postgres',
        'postgres',
        'postgres',
        'postgres',
        'file(buffered)',
        'file(buffered)',
        'file(buffered)',
        'file(buffered)',
      ]);
      expect(rows[0]!.baselineMs).toBeGreaterThan(0);
      for (const row of rows) expect(Number.isFinite(row.ms)).toBe(true);
    });
  });
  whenServer(postgres.available ? redis : postgres, 'bench/cluster instances', () => {
    test('measureInstances runs turns through 1 and 3 host processes, counts Redis commands per event and a yield-to-remote-subscriber latency', async () => {
      const { figures, latency, rows } = await measureInstances(tiny);
      expect(figures.map((figure) => figure.instances)).toEqual([1, 3]);
      for (const figure of figures) {
        expect(figure.turnsPerSecond).toBeGreaterThan(0);
        expect(figure.eventsPerSecond).toBeGreaterThan(figure.turnsPerSecond);
        expect(figure.redisCommandsPerEvent).toBeGreaterThan(0);
      }
      expect(latency.samples).toBe(tiny.latencyChunks);
      expect(latency.p99).toBeGreaterThanOrEqual(latency.median);
      expect(rows).toHaveLength(3);
    }, 60_000);
  });
  whenServer(postgres, 'bench/cluster manager stores', () => {
    test('measureManagerStores runs one turn workload on PostgresStore against FileStore', async () => {
      const rows = await measureManagerStores(tiny);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.baselineMs).toBeGreaterThan(0);
      expect(rows[0]!.ms).toBeGreaterThan(0);
    });
  });
  whenServer(postgres, 'bench/cluster checkpointers', () => {
    test('measureCheckpointers runs one durable session on PostgresStore and on LangGraph PostgresSaver, counting SQL per turn', async () => {
      const { rows, store, saver, ratio } = await measureCheckpointers({ turns: 3, rounds: 1 });
      expect(rows.map((row) => row.name.split(':')[0])).toEqual(['PostgresStore', 'LangGraph PostgresSaver']);
      expect(rows[0]!.baselineMs).toBe(saver.msPerTurn);
      expect(ratio).toBeCloseTo(saver.msPerTurn / store.msPerTurn);
      for (const figures of [store, saver]) {
        expect(figures.msPerTurn).toBeGreaterThan(0);
        // At least one statement to load and one to write, in at least one transaction.
        expect(figures.statementsPerTurn).toBeGreaterThanOrEqual(2);
        expect(figures.transactionsPerTurn).toBeGreaterThanOrEqual(1);
      }
      // PostgresSaver.put is BEGIN, one blob upsert, one checkpoint upsert, COMMIT: 2 transactions
      // with the load, 5 statements.
      expect(saver).toMatchObject({ statementsPerTurn: 5, transactionsPerTurn: 2 });
    });
  });
  whenServer(redis, 'bench/cluster redis', () => {
    test('measureRedis counts round trips per event: 1, 0.1 and 0.01 for batches of 1, 10 and 100', async () => {
      const rows = await measureRedis(small);
      expect(rows.slice(0, 3).map((row) => row.note?.split(' ')[0])).toEqual(['1.000', '0.100', '0.010']);
      expect(rows[3]!.name).toContain('lease');
    });
  });
});
