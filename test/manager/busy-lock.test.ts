// The in-process busy lock (see src/manager/busy-lock.ts): one holder per session, fencing tokens
// that grow, and releases that never free a later holder.
import { describe, expect, test } from 'vitest';
import { InProcessBusyLock } from '../../src/manager/busy-lock.js';

describe('InProcessBusyLock', () => {
  test('acquire resolves to a lease for a free session and to undefined while it is held', async () => {
    const lock = new InProcessBusyLock();
    const lease = await lock.acquire('s1');
    expect(lease?.sessionId).toBe('s1');
    expect(lock.isHeld('s1')).toBe(true);
    expect(await lock.acquire('s1')).toBeUndefined();
    // Other sessions are independent.
    expect(await lock.acquire('s2')).toBeDefined();
    await lease?.release();
    expect(lock.isHeld('s1')).toBe(false);
    expect(await lock.acquire('s1')).toBeDefined();
  });

  test('of 100 concurrent acquire calls exactly one gets the lease (decided at the call)', async () => {
    const lock = new InProcessBusyLock();
    const leases = await Promise.all(Array.from({ length: 100 }, () => lock.acquire('s')));
    expect(leases.filter((lease) => lease !== undefined)).toHaveLength(1);
  });

  test('each lease of a session carries a greater fencing token than the one before', async () => {
    const lock = new InProcessBusyLock();
    const tokens: number[] = [];
    for (let round = 0; round < 5; round++) {
      const lease = await lock.acquire('s');
      if (!lease) throw new Error('expected a lease');
      tokens.push(lease.token);
      await lease.release();
    }
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    expect(new Set(tokens).size).toBe(5);
  });

  test('release is idempotent and an old lease released late never frees the next holder', async () => {
    const lock = new InProcessBusyLock();
    const first = await lock.acquire('s');
    await first?.release();
    await first?.release();
    const second = await lock.acquire('s');
    expect(second).toBeDefined();
    await first?.release();
    expect(lock.isHeld('s')).toBe(true);
    expect(await lock.acquire('s')).toBeUndefined();
    await second?.release();
    expect(lock.isHeld('s')).toBe(false);
  });
});
