import { afterEach, describe, expect, test, vi } from 'vitest';
import { EVENTS_PER_READING, turnTimestamp } from '../../src/internal/turn-clock.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const base = Date.parse('2030-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

afterEach(() => {
  vi.useRealTimers();
});

describe('turnTimestamp', () => {
  test('turnTimestamp reads the clock once per 16 calls within one task, each reading being the time of its first call', async () => {
    await nextTurn(); // whatever reading an earlier test left has expired
    vi.useFakeTimers({ toFake: ['Date'] });
    const stamps: string[] = [];
    for (let call = 0; call < 40; call++) {
      vi.setSystemTime(base + call);
      stamps.push(turnTimestamp());
    }
    expect(EVENTS_PER_READING).toBe(16);
    expect(stamps).toEqual(Array.from({ length: 40 }, (_, call) => iso(base + call - (call % 16))));
  });

  test('a reading is never used past the end of its task', async () => {
    await nextTurn();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(base);
    expect(turnTimestamp()).toBe(iso(base));
    vi.setSystemTime(base + 5);
    await Promise.resolve(); // microtasks belong to the same task
    expect(turnTimestamp()).toBe(iso(base));
    await nextTurn();
    expect(turnTimestamp()).toBe(iso(base + 5));
  });
});
