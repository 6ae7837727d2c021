// Runs bench/peers with small counts, so the bench cannot rot: every variant runs its workload
// (each checks the history it leaves), and the commits each side makes per turn are the ones the
// bench and docs/performance.md describe.
import { describe, expect, test } from 'vitest';
import { measureDurable, measureInMemory, peerRows, sqliteSaverDefault } from '../../bench/peers.js';

describe('bench/peers', () => {
  test('measureInMemory times the MemorySession loop and the SessionManager over the same turns', async () => {
    const result = await measureInMemory({ turns: 40, rounds: 1, warmupTurns: 0 });
    expect(result.turns).toBe(40);
    expect(result.memorySessionMs).toBeGreaterThan(0);
    expect(result.sessionManagerMs).toBeGreaterThan(0);
    expect(result.ratio).toBeCloseTo(result.memorySessionMs / result.sessionManagerMs);
  });

  test('measureDurable runs every variant and counts its commits, fdatasyncs and SQLite settings', async () => {
    const results = await measureDurable({ turns: 6, rounds: 2, warmupTurns: 1 });
    const byLabel = new Map(results.map((result) => [result.label, result]));
    expect([...byLabel.keys()]).toEqual([
      "FileStore 'fsync'",
      'SqliteSaver WAL+FULL, checkpointer API',
      'SqliteSaver WAL+FULL, StateGraph',
      "FileStore 'buffered'",
      'SqliteSaver WAL+NORMAL, checkpointer API',
      'SqliteSaver WAL+NORMAL, StateGraph',
      'MemoryStore',
      'MemorySaver, checkpointer API',
      'MemorySaver, StateGraph',
    ]);
    // Ours: two appends a turn; 'fsync' syncs each, 'buffered' none.
    expect(byLabel.get("FileStore 'fsync'")).toMatchObject({ commitsPerTurn: 2, syncsPerTurn: 2 });
    expect(byLabel.get("FileStore 'buffered'")).toMatchObject({ commitsPerTurn: 2, syncsPerTurn: 0 });
    // Theirs: one put per message through the API; a graph turn commits more.
    for (const level of ['FULL', 'NORMAL']) {
      expect(byLabel.get(`SqliteSaver WAL+${level}, checkpointer API`)).toMatchObject({
        commitsPerTurn: 2,
        settings: `journal_mode=wal synchronous=${level}`,
      });
      const graph = byLabel.get(`SqliteSaver WAL+${level}, StateGraph`)!;
      expect(graph.commitsPerTurn).toBeGreaterThan(2);
      expect(graph.settings).toBe(`journal_mode=wal synchronous=${level}`);
    }
    for (const result of results) {
      expect(result.ms).toBeGreaterThan(0);
      if (result.commitsPerTurn === undefined) continue;
      expect(result.msPerCommit).toBeCloseTo(result.msPerTurn / result.commitsPerTurn);
    }
    // In memory nothing is committed, so nothing is counted per commit.
    for (const label of ['MemoryStore', 'MemorySaver, checkpointer API', 'MemorySaver, StateGraph']) {
      expect(byLabel.get(label)!.commitsPerTurn).toBeUndefined();
    }

    const rows = peerRows({ turns: 40, memorySessionMs: 30, sessionManagerMs: 2, ratio: 15 }, results);
    expect(rows.map((row) => row.name)).toEqual([
      '40 turns in memory: our SessionManager vs OpenAI Agents MemorySession loop',
      "6 turns: FileStore 'fsync' vs SqliteSaver WAL+FULL, checkpointer API",
      "6 turns: FileStore 'fsync' vs SqliteSaver WAL+FULL, StateGraph",
      "6 turns: FileStore 'buffered' vs SqliteSaver WAL+NORMAL, checkpointer API",
      "6 turns: FileStore 'buffered' vs SqliteSaver WAL+NORMAL, StateGraph",
      '6 turns: MemoryStore vs MemorySaver, checkpointer API',
      '6 turns: MemoryStore vs MemorySaver, StateGraph',
    ]);
    expect(rows[0]).toMatchObject({ ms: 2, baselineMs: 30, pass: true });
    expect(rows.filter((row) => row.pass !== undefined)).toHaveLength(5);
  });

  test('sqliteSaverDefault reads the synchronous level SqliteSaver runs with on a plain connection', async () => {
    expect(await sqliteSaverDefault()).toMatch(/^journal_mode=wal synchronous=(OFF|NORMAL|FULL|EXTRA)$/);
  });
});
