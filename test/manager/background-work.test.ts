// Work that outlives a call (see src/manager/background-work.ts), which waitStopped waits for.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { BackgroundWork } from '../../src/manager/background-work.js';
import { deferred, expectCode, rejection } from '../helpers/assertions.js';

describe('BackgroundWork', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('waitStopped resolves at once when nothing runs', async () => {
    await new BackgroundWork().waitStopped('s', () => undefined, 1_000);
  });

  test('waitStopped waits for tracked work and for the turn, asking for the turn again after each wait', async () => {
    const work = new BackgroundWork();
    const tracked = deferred();
    const turn = deferred();
    let turnRunning = true;
    work.track('s', tracked.promise);
    let stopped = false;
    const waiting = work
      .waitStopped('s', () => (turnRunning ? turn.promise : undefined), 10_000)
      .then(() => {
        stopped = true;
      });
    tracked.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    turnRunning = false;
    turn.resolve();
    await waiting;
    expect(stopped).toBe(true);
  });

  test('waitStopped rejects with TIMEOUT when work outlives timeoutMs; a rejected work counts as stopped', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const work = new BackgroundWork();
    const stuck = deferred();
    work.track('s', stuck.promise);
    const waiting = rejection(work.waitStopped('s', () => undefined, 5_000));
    await vi.advanceTimersByTimeAsync(5_000);
    expectCode(await waiting, 'TIMEOUT');
    stuck.reject(new Error('failed'));
    await work.waitStopped('s', () => undefined, 5_000);
  });
});
