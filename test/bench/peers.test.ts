// Runs bench/peers with small counts, so the bench cannot rot: every variant runs its workload
// (each checks the history it leaves), and the commits each side makes per turn are the ones the
// bench and docs/performance.md describe.
import { describe, expect, test } from 'vitest';
import {
  DURABLE_VARIANTS,
  measureDurable,
  measureInMemory,
  peerRows,
  sqliteSaverDefault,
  sqliteUnavailable,
} from '../../bench/peers.js';

// better-sqlite3 is compiled by `npm ci` for the Node that ran it (20, here and in CI). `npm run
// test:node24` runs this file on Node 24, which cannot load that binary: there, and only for that
// reason, the SQLite variants are left out (the bench itself runs on the installing Node).
const sqliteError = sqliteUnavailable();
const variants = DURABLE_VARIANTS.filter(
  (variant) => sqliteError === undefined || !variant.label.startsWith('SqliteSaver'),
);

describe('bench/peers', () => {
  test('measureInMemory times the MemorySession loop and the SessionManager over the same turns', async () => {
    const result = await measureInMemory({ turns: 40, rounds: 1, warmupTurns: 0 });
    expect(result.turns).toBe(40);
    expect(result.memorySessionMs).toBeGreaterThan(0);
    expect(result.sessionManagerMs).toBeGreaterThan(0);
    expect(result.ratio).toBeCloseTo(result.memorySessionMs / result.sessionManagerMs);
  });

  test('better-sqlite3 loads, or fails only for being built for another Node', () => {
    if (sqliteError !== undefined) expect(sqliteError).toMatch(/NODE_MODULE_VERSION/);
    else expect(variants).toHaveLength(DURABLE_VARIANTS.length);
  });

  test('measureDurable runs every variant and counts its commits and SQLite settings', async () => {
    const results = await measureDurable({ turns: 6, rounds: 2, warmupTurns: 1, variants });
    const byLabel = new Map(results.map((result) => [result.label, result]));
    expect([...byLabel.keys()]).toEqual(variants.map((variant) => variant.label));
    // Ours: two appends a turn.
    expect(byLabel.get("FileStore 'fsync'")).toMatchObject({ commitsPerTurn: 2 });
    expect(byLabel.get("FileStore 'buffered'")).toMatchObject({ commitsPerTurn: 2 });
    for (const result of results) {
      expect(result.ms).toBeGreaterThan(0);
      if (result.commitsPerTurn === undefined) continue;
      expect(result.msPerCommit).toBeCloseTo(result.msPerTurn / result.commitsPerTurn);
      expect(result.bytes).toBeGreaterThan(0);
    }
    // In memory nothing is committed, so nothing is counted per commit.
    for (const label of ['MemoryStore', 'MemorySaver, checkpointer API']) {
      expect(byLabel.get(label)!.commitsPerTurn).toBeUndefined();
    }
    const rows = peerRows({ turns: 40, memorySessionMs: 30, sessionManagerMs: 2, ratio: 15 }, results);
    expect(rows[0]).toMatchObject({
      name: '40 turns in memory: our SessionManager vs OpenAI Agents MemorySession loop',
      ms: 2,
      baselineMs: 30,
      pass: true,
    });
    expect(rows.slice(1).map((row) => row.name)).toEqual(
      results
        .filter((result) => result.against !== undefined)
        .map((result) => `6 turns: ${result.against} vs ${result.label}`),
    );
    if (sqliteError !== undefined) return;

    // Theirs: one put per message through the API; a graph turn commits more (input checkpoint,
    // the node's writes, the step's checkpoint).
    for (const level of ['FULL', 'NORMAL']) {
      expect(byLabel.get(`SqliteSaver WAL+${level}, checkpointer API`)).toMatchObject({
        commitsPerTurn: 2,
        settings: `journal_mode=wal synchronous=${level}`,
      });
      const graph = byLabel.get(`SqliteSaver WAL+${level}, StateGraph`)!;
      expect(graph.commitsPerTurn).toBeGreaterThan(2);
      expect(graph.settings).toBe(`journal_mode=wal synchronous=${level}`);
    }
    // The SQLite rows carry the goal; the MemorySaver rows are for reference.
    expect(rows.filter((row) => row.pass !== undefined).map((row) => row.name)).toEqual([
      rows[0]!.name,
      "6 turns: FileStore 'fsync' vs SqliteSaver WAL+FULL, checkpointer API",
      "6 turns: FileStore 'fsync' vs SqliteSaver WAL+FULL, StateGraph",
      "6 turns: FileStore 'buffered' vs SqliteSaver WAL+NORMAL, checkpointer API",
      "6 turns: FileStore 'buffered' vs SqliteSaver WAL+NORMAL, StateGraph",
    ]);
    expect(await sqliteSaverDefault()).toMatch(/^journal_mode=wal synchronous=(OFF|NORMAL|FULL|EXTRA)$/);
  });
});
