// Runs bench/cluster's code paths with small counts against the real servers, so the bench cannot
// rot: every row is measured, and batched appends cost fewer round trips than events.
import { describe, expect, test } from 'vitest';
import { measureRedis, measureStores } from '../../bench/cluster.js';
import { probePostgres, probeRedis, whenServer } from '../helpers/servers.js';

const small = { appends: 20, sessions: 20, events: 200, leases: 20, repetitions: 1 };
const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);

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
  whenServer(redis, 'bench/cluster redis', () => {
    test('measureRedis counts round trips per event: 1, 0.1 and 0.01 for batches of 1, 10 and 100', async () => {
      const rows = await measureRedis(small);
      expect(rows.slice(0, 3).map((row) => row.note?.split(' ')[0])).toEqual(['1.000', '0.100', '0.010']);
      expect(rows[3]!.name).toContain('lease');
    });
  });
});
