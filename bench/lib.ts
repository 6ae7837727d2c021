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

/** Headers of the baseline columns of {@link report}, for benches whose baseline is not a raw one. */
export interface ReportLabels {
  /** @default 'raw ms' */
  baseline?: string;
  /** The header of `baselineMs / ms`. @default 'speed vs raw' */
  ratio?: string;
}

/** Prints rows as a table, then one `BENCH_JSON {…}` line for machines. */
export function report(
  bench: string,
  rows: readonly BenchRow[],
  extra: Record<string, unknown> = {},
  labels: ReportLabels = {},
): void {
  const format = (ms: number | undefined) => (ms === undefined ? '' : ms.toFixed(1));
  const columns = [
    'name',
    'ms',
    labels.baseline ?? 'raw ms',
    labels.ratio ?? 'speed vs raw',
    'goal',
    'result',
    'note',
  ];
  const table = rows.map((row) => [
    row.name,
    format(row.ms),
    format(row.baselineMs),
    row.baselineMs === undefined ? '' : `${(row.baselineMs / row.ms).toFixed(2)}×`,
    row.goal ?? '',
    row.pass === undefined ? '' : row.pass ? 'PASS' : 'FAIL',
    row.note ?? '',
  ]);
  const widths = columns.map((column, index) =>
    Math.max(column.length, ...table.map((row) => row[index]!.length)),
  );
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index]!)).join('  ');
  console.log(`\n${bench}`);
  console.log(line(columns));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of table) console.log(line(row));
  console.log(`BENCH_JSON ${JSON.stringify({ bench, rows, ...extra })}`);
}
