import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, SubscriberLaggedError } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import { batchesOf, type EventInput, EventLog, type EventLogOptions } from '../../src/manager/event-log.js';

const delta = (content: string): EventInput => ({ type: 'agent_choice', content, turnId: 't1' });

function makeLog(options: Partial<EventLogOptions> = {}): EventLog {
  return new EventLog({ sessionId: 's1', now: () => '2025-01-01T00:00:00.000Z', ...options });
}

function appendMany(log: EventLog, count: number): void {
  for (let index = 0; index < count; index++) log.append(delta(`d${log.lastSeq + 1}`));
}

type Batches = AsyncIterator<readonly SessionEvent[]>;

/** Reads batches until done, returning them. */
async function drainBatches(iterator: Batches): Promise<SessionEvent[][]> {
  const batches: SessionEvent[][] = [];
  for (;;) {
    const result = await iterator.next();
    if (result.done) return batches;
    batches.push([...result.value]);
  }
}

const seqs = (events: readonly SessionEvent[]) => events.map((event) => event.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const microtasks = async (count: number) => {
  for (let index = 0; index < count; index++) await Promise.resolve();
};

/** Whether `promise` has settled by now (after the microtasks already queued). */
async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await microtasks(5);
  return settled;
}

// A small deterministic PRNG, so a failure reproduces.
function prng(seed: number) {
  let state = seed;
  return (bound: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % bound;
  };
}

describe('EventLog.subscribeBatches positions', () => {
  test('subscribeBatches without since yields the whole kept backlog as one batch, without a gap', async () => {
    const log = makeLog();
    appendMany(log, 5);
    const iterator = log.subscribeBatches();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    expect(seqs(first.value as SessionEvent[])).toEqual([1, 2, 3, 4, 5]);
  });

  test('subscribeBatches with since yields only later events', async () => {
    const log = makeLog();
    appendMany(log, 5);
    const iterator = log.subscribeBatches({ since: 3 });
    expect(seqs((await iterator.next()).value as SessionEvent[])).toEqual([4, 5]);
  });

  test('subscribeBatches with since before the oldest kept event starts its first batch with a dropped gap', async () => {
    const log = makeLog({ capacity: 4 });
    appendMany(log, 10);
    const batch = (await log.subscribeBatches({ since: 2 }).next()).value as SessionEvent[];
    expect(batch[0]).toMatchObject({ type: 'gap', reason: 'dropped', nextSeq: 7, seq: 0, sessionId: 's1' });
    expect(seqs(batch)).toEqual([0, 7, 8, 9, 10]);
  });

  test('subscribeBatches with since beyond lastSeq yields a reset gap and the whole kept backlog', async () => {
    const log = makeLog();
    appendMany(log, 3);
    const batch = (await log.subscribeBatches({ since: 50 }).next()).value as SessionEvent[];
    expect(batch[0]).toMatchObject({ type: 'gap', reason: 'reset', nextSeq: 1 });
    expect(seqs(batch)).toEqual([0, 1, 2, 3]);
  });

  test('a reset gap on an empty log is a batch of its own, then live events follow', async () => {
    const log = makeLog();
    const iterator = log.subscribeBatches({ since: 9 });
    expect(seqs((await iterator.next()).value as SessionEvent[])).toEqual([0]);
    const next = iterator.next();
    appendMany(log, 2);
    expect(seqs((await next).value as SessionEvent[])).toEqual([1, 2]);
  });

  test('subscribeBatches rejects a since that is not a non-negative integer', () => {
    const log = makeLog();
    for (const since of [-1, 1.5, Number.NaN]) {
      expect(() => log.subscribeBatches({ since })).toThrow(InvalidArgumentError);
    }
  });
});

describe('EventLog.subscribeBatches wake-ups', () => {
  test('a waiting reader gets every event appended within one task as one batch on the next turn', async () => {
    const log = makeLog();
    const iterator = log.subscribeBatches();
    const next = iterator.next();
    appendMany(log, 3);
    await microtasks(3);
    appendMany(log, 2); // still within the same task: microtasks do not end it
    expect(await settledYet(next)).toBe(false);
    await nextTurn();
    expect(seqs((await next).value as SessionEvent[])).toEqual([1, 2, 3, 4, 5]);
  });

  test('a waiting reader is woken at once when half the ring waits for it, not on the next turn', async () => {
    const log = makeLog({ capacity: 8 });
    const iterator = log.subscribeBatches();
    const next = iterator.next();
    appendMany(log, 3);
    expect(await settledYet(next)).toBe(false);
    appendMany(log, 1); // 4 = capacity / 2
    expect(await settledYet(next)).toBe(true);
    expect(seqs((await next).value as SessionEvent[])).toEqual([1, 2, 3, 4]);
  });

  test('a reader that asks again as soon as it has a batch never lags behind a producer that never yields a turn', async () => {
    const log = makeLog({ capacity: 4 });
    const iterator = log.subscribeBatches();
    const reader = drainBatches(iterator);
    // 400 events, one per microtask: the event loop never turns, so only the half-ring wake-up
    // keeps the reader up (woken on the next turn alone, it would lag after 4).
    for (let index = 0; index < 400; index++) {
      log.append(delta('x'));
      await Promise.resolve();
    }
    log.close('closed');
    const batches = await reader;
    expect(seqs(batches.flat())).toEqual(range(1, 401));
    expect(Math.max(...batches.map((batch) => batch.length))).toBeLessThanOrEqual(4);
  });

  test('concurrent next() calls get consecutive batches in call order', async () => {
    const log = makeLog();
    const iterator = log.subscribeBatches();
    const first = iterator.next();
    const second = iterator.next();
    appendMany(log, 2);
    await nextTurn();
    appendMany(log, 3);
    await nextTurn();
    expect(seqs((await first).value as SessionEvent[])).toEqual([1, 2]);
    expect(seqs((await second).value as SessionEvent[])).toEqual([3, 4, 5]);
  });

  test('each batch is a fresh array and the events are the ones the log keeps', async () => {
    const log = makeLog();
    appendMany(log, 2);
    const a = (await log.subscribeBatches().next()).value as SessionEvent[];
    const b = (await log.subscribeBatches().next()).value as SessionEvent[];
    expect(a).not.toBe(b);
    expect(a[0]).toBe(b[0]);
  });
});

describe('EventLog.subscribeBatches lag, abort, return and close', () => {
  test('a reader holding a batch while capacity events are appended rejects with SUBSCRIBER_LAGGED, then is done', async () => {
    const log = makeLog({ capacity: 4 });
    appendMany(log, 2);
    const iterator = log.subscribeBatches();
    expect(seqs((await iterator.next()).value as SessionEvent[])).toEqual([1, 2]);
    appendMany(log, 4); // 3..6: its next event (3) is still kept
    appendMany(log, 1); // 7 overwrites 3
    const error = await iterator.next().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SubscriberLaggedError);
    expect((error as SubscriberLaggedError).lastSeq).toBe(2);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(log.subscriberCount).toBe(0);
  });

  test('abort rejects a waiting next() with the signal reason, then the iterator is done', async () => {
    const log = makeLog();
    const controller = new AbortController();
    const iterator = log.subscribeBatches({ signal: controller.signal });
    const next = iterator.next();
    appendMany(log, 1); // not yet delivered: the wake-up is on the next turn
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(next).rejects.toBe(reason);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    await nextTurn();
    expect(log.subscriberCount).toBe(0);
  });

  test('an already aborted signal makes the first next() reject with its reason', async () => {
    const log = makeLog();
    appendMany(log, 2);
    const reason = new Error('gone');
    const iterator = log.subscribeBatches({ signal: AbortSignal.abort(reason) });
    await expect(iterator.next()).rejects.toBe(reason);
    expect(log.subscriberCount).toBe(0);
  });

  test('return() unsubscribes at once and settles a waiting next() as done', async () => {
    const log = makeLog();
    const iterator = log.subscribeBatches();
    const next = iterator.next();
    expect(log.subscriberCount).toBe(1);
    await iterator.return?.();
    expect(log.subscriberCount).toBe(0);
    expect(await next).toEqual({ done: true, value: undefined });
  });

  test('close hands a waiting reader everything up to session_exited in one batch, then done', async () => {
    const log = makeLog();
    const iterator = log.subscribeBatches();
    const next = iterator.next();
    appendMany(log, 2);
    log.close('deleted');
    const batch = (await next).value as SessionEvent[];
    expect(seqs(batch)).toEqual([1, 2, 3]);
    expect(batch.at(-1)).toMatchObject({ type: 'session_exited', reason: 'deleted' });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  test('a reader subscribing to a closed log gets the kept backlog ending with session_exited', async () => {
    const log = makeLog();
    appendMany(log, 2);
    log.close('closed');
    const batches = await drainBatches(log.subscribeBatches({ since: 1 }));
    expect(batches.map(seqs)).toEqual([[2, 3]]);
  });

  test('release keeps what a batch reader has not received yet', async () => {
    const log = makeLog();
    appendMany(log, 2);
    const iterator = log.subscribeBatches();
    expect(seqs((await iterator.next()).value as SessionEvent[])).toEqual([1, 2]);
    appendMany(log, 3);
    log.release();
    expect(log.oldestSeq).toBe(3);
    expect(seqs((await iterator.next()).value as SessionEvent[])).toEqual([3, 4, 5]);
  });
});

describe('EventLog.subscribeBatches race-freedom', () => {
  test('batches carry each event exactly once, in order, however appends interleave with subscribe, next and turns', async () => {
    const random = prng(5);
    for (let iteration = 0; iteration < 1500; iteration++) {
      const log = makeLog({ capacity: 64 });
      appendMany(log, random(4));
      const lastAtSubscribe = log.lastSeq;
      const since = random(3) === 0 ? undefined : random(lastAtSubscribe + 3);
      const iterator = log.subscribeBatches(since === undefined ? {} : { since });
      appendMany(log, random(3));
      // next() calls made before, between and after appends, some left waiting across appends,
      // microtasks and turns of the event loop.
      const pending = [iterator.next()];
      for (let round = random(6); round > 0; round--) {
        appendMany(log, random(4));
        if (random(2) === 0) pending.push(iterator.next());
        const wait = random(3);
        if (wait === 1) await Promise.resolve();
        else if (wait === 2) await nextTurn();
      }
      log.close('closed');
      const events: SessionEvent[] = [];
      for (const result of await Promise.all(pending)) if (!result.done) events.push(...result.value);
      for (const batch of await drainBatches(iterator)) events.push(...batch);

      const expected =
        since === undefined || since <= lastAtSubscribe
          ? range((since ?? 0) + 1, log.lastSeq)
          : range(1, log.lastSeq);
      const gap = since !== undefined && since > lastAtSubscribe ? [0] : [];
      expect(seqs(events), `iteration ${iteration}, since ${since}`).toEqual([...gap, ...expected]);
      expect(events.at(-1)?.type).toBe('session_exited');
    }
  });

  test('a batch reader and a per-event reader of one log see the same events when the producer yields microtasks and turns', async () => {
    const random = prng(13);
    for (let iteration = 0; iteration < 300; iteration++) {
      const log = makeLog({ capacity: [8, 16, 64][random(3)]! });
      const total = 1 + random(60);
      const waits = Array.from({ length: total }, () => random(4));
      const producer = (async () => {
        for (const wait of waits) {
          log.append(delta('x'));
          if (wait === 3) await nextTurn();
          else for (let index = 0; index < wait; index++) await Promise.resolve();
        }
        log.close('closed');
      })();
      for (let wait = random(6); wait > 0; wait--) await Promise.resolve();
      const since = random(2) === 0 ? undefined : log.lastSeq;
      const options = since === undefined ? {} : { since };
      const perEvent = (async () => {
        const events: SessionEvent[] = [];
        for await (const event of log.subscribe(options)) events.push(event);
        return events;
      })();
      const batched = drainBatches(log.subscribeBatches(options));
      const [events, batches] = await Promise.all([perEvent, batched]);
      await producer;
      expect(seqs(batches.flat()), `iteration ${iteration}`).toEqual(range((since ?? 0) + 1, total + 1));
      expect(batches.flat()).toEqual(events);
      expect(batches.every((batch) => batch.length > 0)).toBe(true);
    }
  });
});

describe('batchesOf', () => {
  /** A per-event source that has `ready` events at once, then one more on each release(). */
  function source(ready: number, failAfter?: number) {
    let released = 0;
    let wake: (() => void) | undefined;
    let seq = 0;
    const make = (): SessionEvent =>
      ({ type: 'agent_choice', content: 'x', sessionId: 's1', seq: ++seq, timestamp: 'T' }) as SessionEvent;
    const iterator: AsyncIterator<SessionEvent> = {
      next: async () => {
        if (failAfter !== undefined && seq >= failAfter) throw new Error('lagged');
        if (seq >= ready + released) await new Promise<void>((resolve) => (wake = resolve));
        return { value: make(), done: false };
      },
      return: async () => ({ value: undefined, done: true }),
    };
    return {
      iterator,
      release: () => {
        released++;
        wake?.();
      },
    };
  }

  test('batchesOf waits for one event, then adds every event already there, in order', async () => {
    const { iterator, release } = source(5);
    const batches = batchesOf(iterator, 3);
    expect(seqs((await batches.next()).value as SessionEvent[])).toEqual([1, 2, 3]);
    expect(seqs((await batches.next()).value as SessionEvent[])).toEqual([4, 5]);
    const waiting = batches.next();
    release();
    expect(seqs((await waiting).value as SessionEvent[])).toEqual([6]);
  });

  test('batchesOf hands out the events before an error, then the error, then done', async () => {
    const { iterator } = source(10, 2);
    const batches = batchesOf(iterator);
    expect(seqs((await batches.next()).value as SessionEvent[])).toEqual([1, 2]);
    await expect(batches.next()).rejects.toThrow('lagged');
    expect(await batches.next()).toEqual({ done: true, value: undefined });
  });
});
