// Runs bench/store's durable workloads with small counts, so the bench cannot rot.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { BenchRow } from '../../bench/lib.js';
import { durableRows, turnWorkload } from '../../bench/store.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-bench-store-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('bench/store', () => {
  test.each(['fsync', 'buffered'] as const)(
    "turnWorkload (%s) makes two durable commits per turn and counts the session's bytes against raw JSON",
    async (durability) => {
      const result = await turnWorkload(join(root, durability), durability, 5, 'hello');
      expect(result).toMatchObject({ turns: 5, commits: 10 });
      expect(result.ms).toBeGreaterThan(0);
      expect(result.rawBytes).toBeGreaterThan(0);
      // The items, a few bytes of framing each, the session record and the summary file.
      expect(result.bytes).toBeGreaterThan(result.rawBytes);
      expect(result.bytes).toBeLessThan(result.rawBytes + 2048);
    },
  );
});

describe('bench/store durable rows', () => {
  test('durableRows times one append at a time, 8 writers and the raw baselines, each against raw write + fdatasync', async () => {
    const rows: BenchRow[] = [];
    await durableRows(root, rows, { block: 16, pairs: 2 });
    expect(rows.map((row) => row.name.replace(/ \(.*\)$/, ''))).toEqual([
      'file(fsync) durable append, 1 awaited at a time',
      'file(fsync) 8 concurrent writers on one session',
      'raw write to an O_DSYNC handle, 1 line at a time',
      'raw write + fdatasync of 8 lines at once',
    ]);
    for (const row of rows) {
      expect(row.ms).toBeGreaterThan(0);
      expect(row.baselineMs).toBeGreaterThan(0);
    }
    expect(rows.map((row) => row.goal)).toEqual([
      '≥ 0.85× raw write+fdatasync',
      '≥ 5× raw serial write+fdatasync',
      undefined,
      undefined,
    ]);
  });
});
