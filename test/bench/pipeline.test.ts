// Runs bench/pipeline's code paths with small counts, so the bench cannot rot: every reader of every
// configuration must get every event (the bench throws otherwise).
import { describe, expect, test } from 'vitest';
import { measureIdleSessions, measurePipeline } from '../../bench/pipeline.js';

describe('bench/pipeline', () => {
  test('measurePipeline measures raw, TurnStream and 1 and 10 subscribers per event and in batches, and the floors of those designs, each reader getting every event', async () => {
    const results = await measurePipeline({ events: 2_000, repetitions: 1, warmups: 0 });
    expect(results.map((result) => result.name)).toEqual([
      'raw for await',
      'runSession → TurnStream',
      '+ 1 streamEvents subscriber',
      '+ 10 streamEvents subscribers',
      'batches: TurnStream + 1 streamEventBatches subscriber',
      'batches: TurnStream + 10 streamEventBatches subscribers',
      'floor: bare loop + 2 per-event readers',
      'floor: bare loop + 11 per-event readers',
      'floor: bare loop + 2 batch readers',
      'floor: bare loop + 11 batch readers',
    ]);
    expect(results.map((result) => result.goal)).toEqual([
      undefined,
      undefined,
      0.45,
      undefined,
      0.55,
      0.35,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(results[0]!.ratio).toBe(1);
    for (const result of results) {
      expect(result.ms).toBeGreaterThan(0);
      expect(Number.isFinite(result.eventsPerSecond)).toBe(true);
      expect(result.cpuRatio).toBeGreaterThan(0);
    }
  });

  test('measureIdleSessions runs one short turn per session and reports bytes before and after release', async () => {
    const result = await measureIdleSessions({ sessions: 20, releaseAfterMs: 5, gc: () => {} });
    expect(result.sessions).toBe(20);
    expect(result.eventsPerTurn).toBeGreaterThanOrEqual(10);
    for (const bytes of [result.afterTurnBytes, result.afterReleaseBytes, result.storeItemsBytes]) {
      expect(Number.isFinite(bytes)).toBe(true);
    }
  });
});
