// Helpers shared by benches: timing, medians, temp dirs, the table and the BENCH_JSON line.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One row of a bench's report. */
export interface BenchRow {
  /** What was measured, e.g. `file(fsync) append 10000`. */
  name: string;
  /** Median milliseconds. */
  ms: number;
  /** The raw baseline measured in the same run, when there is one. */
  baselineMs?: number;
  /** A goal and whether it was met, e.g. `≥ 0.5× raw`. */
  goal?: string;
  pass?: boolean;
  note?: string;
}

/** Milliseconds that `work` took. */
export async function time(work: () => Promise<unknown> | unknown): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Runs `work` in a fresh directory under the OS temp dir, removed afterwards. */
export async function withTempDir<T>(prefix: string, work: (directory: string) => Promise<T>): Promise<T> {
  const directory = await mkdtemp(join(tmpdir(), `agent-sessions-bench-${prefix}-`));
  try {
    return await work(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Prints rows as a table, then one `BENCH_JSON {…}` line for machines. */
export function report(bench: string, rows: readonly BenchRow[], extra: Record<string, unknown> = {}): void {
  const format = (ms: number | undefined) => (ms === undefined ? '' : ms.toFixed(1));
  const table = rows.map((row) => ({
    name: row.name,
    ms: format(row.ms),
    'raw ms': format(row.baselineMs),
    'speed vs raw': row.baselineMs === undefined ? '' : `${(row.baselineMs / row.ms).toFixed(2)}×`,
    goal: row.goal ?? '',
    result: row.pass === undefined ? '' : row.pass ? 'PASS' : 'FAIL',
    note: row.note ?? '',
  }));
  const columns = Object.keys(table[0] ?? {}) as (keyof (typeof table)[number])[];
  const widths = columns.map((column) => Math.max(column.length, ...table.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index]!)).join('  ');
  console.log(`\n${bench}`);
  console.log(line(columns));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of table) console.log(line(columns.map((column) => row[column])));
  console.log(`BENCH_JSON ${JSON.stringify({ bench, rows, ...extra })}`);
}
