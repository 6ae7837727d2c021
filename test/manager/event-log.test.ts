import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsError, InvalidArgumentError, SubscriberLaggedError } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import {
  type DeltaEvent,
  type EventInput,
  EventLog,
  type EventLogOptions,
  EventLogs,
} from '../../src/manager/event-log.js';

const delta = (content: string): EventInput => ({ type: 'agent_choice', content, turnId: 't1' });

function makeLog(options: Partial<EventLogOptions> = {}): EventLog {
  return new EventLog({ sessionId: 's1', now: () => '2025-01-01T00:00:00.000Z', ...options });
}

function appendMany(log: EventLog, count: number): void {
  for (let index = 0; index < count; index++) log.append(delta(`d${log.lastSeq + 1}`));
}

/** Reads until done (or `limit` values), returning what was received. */
async function drain(iterator: AsyncIterator<SessionEvent>, limit = Number.POSITIVE_INFINITY) {
  const events: SessionEvent[] = [];
  while (events.length < limit) {
    const result = await iterator.next();
    if (result.done) break;
    events.push(result.value);
  }
  return events;
}

const seqs = (events: SessionEvent[]) => events.map((event) => event.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

afterEach(() => {
  vi.useRealTimers();
});

describe('EventLog.append', () => {
  test('append numbers events from 1 and sets sessionId and the clock timestamp', () => {
    const log = makeLog();
    expect(log.lastSeq).toBe(0);
    expect(log.oldestSeq).toBe(1);
    const first = log.append({ type: 'stream_started', turnId: 't1' });
    const second = log.append({ ...delta('hi'), sessionId: 'other' });
    expect(first).toEqual({
      type: 'stream_started',
      turnId: 't1',
      sessionId: 's1',
      seq: 1,
      timestamp: '2025-01-01T00:00:00.000Z',
    });
    expect(second).toMatchObject({ type: 'agent_choice', content: 'hi', sessionId: 's1', seq: 2 });
    expect(log.lastSeq).toBe(2);
    expect(log.oldestSeq).toBe(1);
  });

  test('append completes a fresh input object in place and returns it', () => {
    const log = makeLog();
    const input = delta('mine');
    expect(log.append(input)).toBe(input);
    expect(input).toMatchObject({ seq: 1, sessionId: 's1' });
  });

  test('append copies a frozen input or an already appended event instead of changing it', () => {
    const log = makeLog();
    const frozen = Object.freeze(delta('frozen'));
    const first = log.append(frozen);
    expect(first).not.toBe(frozen);
    expect(first).toMatchObject({ content: 'frozen', seq: 1 });
    expect(frozen).not.toHaveProperty('seq');
    const again = log.append(first as unknown as EventInput);
    expect(again).not.toBe(first);
    expect(first?.seq).toBe(1);
    expect(again?.seq).toBe(2);
  });

  test('append keeps a given timestamp', () => {
    const log = makeLog();
    expect(log.append({ ...delta('x'), timestamp: '1999-12-31T23:59:59.999Z' })?.timestamp).toBe(
      '1999-12-31T23:59:59.999Z',
    );
  });

  test('append uses the current time as ISO-8601 by default', () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2030-05-06T07:08:09.010Z'));
    const log = new EventLog({ sessionId: 's1' });
    expect(log.append(delta('a'))?.timestamp).toBe('2030-05-06T07:08:09.010Z');
    vi.setSystemTime(new Date('2030-05-06T07:08:09.011Z'));
    expect(log.append(delta('b'))?.timestamp).toBe('2030-05-06T07:08:09.011Z');
  });

  test('append keeps at most capacity events', async () => {
    const log = makeLog({ capacity: 4 });
    appendMany(log, 10);
    expect(log.oldestSeq).toBe(7);
    expect(log.lastSeq).toBe(10);
    log.close('closed');
    expect(seqs(await drain(log.subscribe()))).toEqual([7, 8, 9, 10, 11]);
  });

  test('append returns undefined after close and does not advance lastSeq', () => {
    const log = makeLog();
    appendMany(log, 2);
    log.close('closed');
    expect(log.lastSeq).toBe(3);
    expect(log.append(delta('late'))).toBeUndefined();
    expect(log.lastSeq).toBe(3);
    expect(log.closed).toBe(true);
  });

  test.each([
    [{ capacity: 0 }],
    [{ capacity: -1 }],
    [{ capacity: 1.5 }],
    [{ capacity: Number.NaN }],
    [{ releaseAfterMs: -1 }],
    [{ releaseAfterMs: Number.NaN }],
  ])('new EventLog throws INVALID_ARGUMENT for %o', (options) => {
    expect(() => makeLog(options)).toThrow(InvalidArgumentError);
  });
});

describe('EventLog.appendDelta', () => {
  const fresh = (content: string, type: DeltaEvent['type'] = 'agent_choice'): DeltaEvent => ({
    type,
    content,
    turnId: 't1',
    sessionId: undefined,
    seq: undefined,
    timestamp: undefined,
  });

  test('appendDelta numbers in the same sequence as append, completes the object in place and delivers it', async () => {
    const log = makeLog({ capacity: 4 });
    const perEvent = log.subscribe();
    const batches = log.subscribeBatches();
    log.append({ type: 'stream_started', turnId: 't1' });
    const input = fresh('a');
    expect(log.appendDelta(input)).toBe(input);
    expect(input).toEqual({
      type: 'agent_choice',
      content: 'a',
      turnId: 't1',
      sessionId: 's1',
      seq: 2,
      timestamp: '2025-01-01T00:00:00.000Z',
    });
    log.appendDelta(fresh('r', 'agent_choice_reasoning'));
    log.append(delta('c'));
    expect(seqs(await drain(perEvent, 4))).toEqual([1, 2, 3, 4]);
    expect((await batches.next()).value?.map((event: SessionEvent) => event.seq)).toEqual([1, 2, 3, 4]);
  });

  test('appendDelta keeps at most capacity events, ends a lagging subscriber, and returns undefined once closed', async () => {
    const log = makeLog({ capacity: 2 });
    const lagging = log.subscribe();
    for (let index = 0; index < 5; index++) log.appendDelta(fresh(`d${index}`));
    expect(log.oldestSeq).toBe(4);
    await expect(drain(lagging)).rejects.toBeInstanceOf(SubscriberLaggedError);
    log.close('closed');
    expect(log.appendDelta(fresh('late'))).toBeUndefined();
    expect(log.lastSeq).toBe(6);
  });
});

describe('EventLog.subscribe replay', () => {
  test('subscribe without since delivers the whole kept backlog then live events, without a gap', async () => {
    const log = makeLog({ capacity: 3 });
    appendMany(log, 5); // 1 and 2 dropped
    const iterator = log.subscribe();
    expect(seqs(await drain(iterator, 3))).toEqual([3, 4, 5]);
    const pending = iterator.next();
    log.append(delta('live'));
    expect((await pending).value).toMatchObject({ seq: 6, content: 'live' });
  });

  test('subscribe with since delivers only later events', async () => {
    const log = makeLog();
    appendMany(log, 5);
    const iterator = log.subscribe({ since: 3 });
    log.append(delta('live'));
    log.close('closed');
    expect(seqs(await drain(iterator))).toEqual([4, 5, 6, 7]);
  });

  test('subscribe with since equal to lastSeq delivers only live events', async () => {
    const log = makeLog();
    appendMany(log, 5);
    const iterator = log.subscribe({ since: 5 });
    appendMany(log, 1);
    log.close('closed');
    expect(seqs(await drain(iterator))).toEqual([6, 7]);
  });

  test('subscribe with since 0 on a full log delivers everything without a gap', async () => {
    const log = makeLog({ capacity: 8 });
    appendMany(log, 8);
    log.close('closed');
    expect(seqs(await drain(log.subscribe({ since: 0 })))).toEqual(range(1, 9));
  });

  test('subscribe with since before the oldest kept event sends a dropped gap first', async () => {
    const log = makeLog({ capacity: 3 });
    appendMany(log, 6); // keeps 4..6
    const iterator = log.subscribe({ since: 2 });
    log.close('closed');
    const events = await drain(iterator);
    expect(events[0]).toEqual({
      type: 'gap',
      reason: 'dropped',
      nextSeq: 4,
      sessionId: 's1',
      seq: 0,
      timestamp: '2025-01-01T00:00:00.000Z',
    });
    expect(events[0]).not.toHaveProperty('turnId');
    expect(seqs(events.slice(1))).toEqual([4, 5, 6, 7]);
  });

  test('subscribe with since just before the oldest kept event sends no gap', async () => {
    const log = makeLog({ capacity: 3 });
    appendMany(log, 6);
    log.close('closed');
    expect(seqs(await drain(log.subscribe({ since: 3 })))).toEqual([4, 5, 6, 7]);
  });

  test('subscribe with since beyond lastSeq sends a reset gap and the whole kept backlog', async () => {
    const log = makeLog({ capacity: 4 });
    appendMany(log, 5); // keeps 2..5
    const iterator = log.subscribe({ since: 1000 });
    const events = await drain(iterator, 2); // read before appending: the backlog fills the capacity
    log.append(delta('live'));
    log.close('closed');
    events.push(...(await drain(iterator)));
    expect(events[0]).toMatchObject({ type: 'gap', reason: 'reset', nextSeq: 2, seq: 0, sessionId: 's1' });
    expect(seqs(events.slice(1))).toEqual([2, 3, 4, 5, 6, 7]);
  });

  test('subscribe with since beyond lastSeq of an empty log sends a reset gap then live events', async () => {
    const log = makeLog();
    const iterator = log.subscribe({ since: 42 });
    log.append(delta('first'));
    const events = await drain(iterator, 2);
    expect(events[0]).toMatchObject({ type: 'gap', reason: 'reset', nextSeq: 1 });
    expect(events[1]).toMatchObject({ seq: 1, content: 'first' });
  });

  test.each([[-1], [1.5], [Number.NaN], [Number.POSITIVE_INFINITY], ['3' as unknown as number]])(
    'subscribe throws INVALID_ARGUMENT synchronously for since %s',
    (since) => {
      const log = makeLog();
      expect(() => log.subscribe({ since })).toThrow(InvalidArgumentError);
      expect(log.subscriberCount).toBe(0);
    },
  );

  test('concurrent next() calls resolve in call order', async () => {
    const log = makeLog();
    const iterator = log.subscribe();
    const first = iterator.next();
    const second = iterator.next();
    log.append(delta('a'));
    log.append(delta('b'));
    expect((await first).value).toMatchObject({ seq: 1 });
    expect((await second).value).toMatchObject({ seq: 2 });
  });
});

describe('EventLog.subscribe race-freedom', () => {
  // A small deterministic PRNG, so a failure reproduces.
  function prng(seed: number) {
    let state = seed;
    return (bound: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return (state >>> 8) % bound;
    };
  }

  test('subscribe delivers each event exactly once however appends interleave with subscribe and next', async () => {
    const random = prng(7);
    for (let iteration = 0; iteration < 3000; iteration++) {
      const log = makeLog({ capacity: 64 });
      appendMany(log, random(6));
      const lastAtSubscribe = log.lastSeq;
      const since = random(3) === 0 ? undefined : random(lastAtSubscribe + 3);
      const iterator = log.subscribe(since === undefined ? {} : { since });
      appendMany(log, random(3));
      // next() calls made before, between and after appends, some left pending across appends.
      const pending = [iterator.next()];
      appendMany(log, random(3));
      const events: SessionEvent[] = [];
      for (let round = random(4); round > 0; round--) {
        appendMany(log, random(3));
        if (random(2) === 0) pending.push(iterator.next());
        if (random(3) === 0) await Promise.resolve();
      }
      log.close('closed');
      for (const result of await Promise.all(pending)) if (!result.done) events.push(result.value);
      events.push(...(await drain(iterator)));

      const expected =
        since === undefined || since <= lastAtSubscribe
          ? range((since ?? 0) + 1, log.lastSeq)
          : range(1, log.lastSeq);
      const gap = since !== undefined && since > lastAtSubscribe ? [0] : [];
      expect(seqs(events), `iteration ${iteration}, since ${since}`).toEqual([...gap, ...expected]);
      expect(events.at(-1)?.type).toBe('session_exited');
    }
  });

  test('subscribe delivers each event exactly once when a producer appends across microtasks', async () => {
    const random = prng(11);
    for (let iteration = 0; iteration < 2000; iteration++) {
      const log = makeLog({ capacity: 64 });
      const total = 1 + random(20);
      const yields = Array.from({ length: total }, () => random(3));
      const producer = (async () => {
        for (const count of yields) {
          log.append(delta('x'));
          for (let index = 0; index < count; index++) await Promise.resolve();
        }
        log.close('closed');
      })();
      for (let wait = random(8); wait > 0; wait--) await Promise.resolve();
      const since = random(2) === 0 ? undefined : log.lastSeq;
      const iterator = log.subscribe(since === undefined ? {} : { since });
      const events = await drain(iterator);
      await producer;
      expect(seqs(events), `iteration ${iteration}`).toEqual(range((since ?? 0) + 1, total + 1));
    }
  });
});

describe('EventLog lag', () => {
  test('a subscriber that falls capacity behind rejects with SUBSCRIBER_LAGGED while a fast one gets everything', async () => {
    const log = makeLog({ capacity: 4 });
    const slow = log.subscribe();
    const fast = log.subscribe();
    const fastEvents: SessionEvent[] = [];
    const fastDone = (async () => {
      for await (const event of fast) fastEvents.push(event);
    })();
    appendMany(log, 2);
    expect(seqs(await drain(slow, 2))).toEqual([1, 2]);
    appendMany(log, 4); // slow: 4 undelivered, still fine
    expect(log.subscriberCount).toBe(2);
    appendMany(log, 1); // slow: would be 5 undelivered
    expect(log.subscriberCount).toBe(1);

    const error = await slow.next().then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(SubscriberLaggedError);
    expect(AgentSessionsError.hasCode(error, 'SUBSCRIBER_LAGGED')).toBe(true);
    expect((error as SubscriberLaggedError).lastSeq).toBe(2);
    expect((error as SubscriberLaggedError).sessionId).toBe('s1');
    expect(await slow.next()).toEqual({ done: true, value: undefined });

    log.close('closed');
    await fastDone;
    expect(seqs(fastEvents)).toEqual(range(1, 8));
  });

  test('a subscriber exactly capacity behind does not lag', async () => {
    const log = makeLog({ capacity: 4 });
    const iterator = log.subscribe();
    appendMany(log, 4);
    expect(seqs(await drain(iterator, 4))).toEqual([1, 2, 3, 4]);
  });

  test('a lagged subscriber no longer pins events: release drops them all', () => {
    const log = makeLog({ capacity: 2 });
    log.subscribe();
    appendMany(log, 3);
    expect(log.subscriberCount).toBe(0);
    log.release();
    expect(log.oldestSeq).toBe(4);
  });

  test('a lagged subscriber can reconnect with since: lastSeq and continue after a dropped gap', async () => {
    const log = makeLog({ capacity: 2 });
    const slow = log.subscribe();
    appendMany(log, 1);
    await slow.next();
    appendMany(log, 3);
    const error = (await slow.next().catch((rejection: unknown) => rejection)) as SubscriberLaggedError;
    expect(error.lastSeq).toBe(1);
    log.close('closed');
    const events = await drain(log.subscribe({ since: error.lastSeq }));
    expect(events[0]).toMatchObject({ type: 'gap', reason: 'dropped', nextSeq: 3 });
    expect(seqs(events.slice(1))).toEqual([3, 4, 5]);
  });
});

describe('EventLog abort and return', () => {
  test('abort rejects a pending next() with the signal reason, then the iterator is done', async () => {
    const log = makeLog();
    const controller = new AbortController();
    const addListener = vi.spyOn(controller.signal, 'addEventListener');
    const iterator = log.subscribe({ signal: controller.signal });
    expect(addListener).toHaveBeenCalledWith('abort', expect.any(Function), { once: true });
    addListener.mockRestore();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const pending = iterator.next();
    const reason = { why: 'client left' };
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(log.subscriberCount).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  test('abort rejects the next next() with the signal reason even when events are waiting', async () => {
    const log = makeLog();
    const controller = new AbortController();
    const iterator = log.subscribe({ signal: controller.signal });
    appendMany(log, 3);
    expect(seqs(await drain(iterator, 1))).toEqual([1]);
    controller.abort(new Error('stop'));
    await expect(iterator.next()).rejects.toThrow('stop');
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  test('an already aborted signal makes the first next() reject with its reason', async () => {
    const log = makeLog();
    appendMany(log, 2);
    const reason = new Error('already');
    const iterator = log.subscribe({ signal: AbortSignal.abort(reason) });
    expect(log.subscriberCount).toBe(0);
    await expect(iterator.next()).rejects.toBe(reason);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  test('breaking out of for await unsubscribes at once and removes the abort listener', async () => {
    const log = makeLog();
    const controller = new AbortController();
    appendMany(log, 3);
    const iterator = log.subscribe({ signal: controller.signal });
    for await (const event of iterator) {
      if (event.seq === 2) break;
    }
    expect(log.subscriberCount).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    appendMany(log, 5);
    controller.abort(new Error('late'));
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  test('return() settles a pending next() as done', async () => {
    const log = makeLog();
    const iterator = log.subscribe();
    const pending = iterator.next();
    await iterator.return?.();
    expect(await pending).toEqual({ done: true, value: undefined });
  });
});

describe('EventLog.close', () => {
  test('close delivers everything before session_exited, then session_exited, then done', async () => {
    const log = makeLog({ capacity: 3 });
    const waiting = log.subscribe();
    const behind = log.subscribe();
    const waitingEvents: SessionEvent[] = [];
    const waitingDone = (async () => {
      for await (const event of waiting) waitingEvents.push(event);
    })();
    appendMany(log, 3); // behind has exactly capacity undelivered
    await Promise.resolve();
    log.close('deleted');
    await waitingDone;
    const behindEvents = await drain(behind);
    for (const events of [waitingEvents, behindEvents]) {
      expect(seqs(events)).toEqual([1, 2, 3, 4]);
      expect(events[3]).toEqual({
        type: 'session_exited',
        reason: 'deleted',
        sessionId: 's1',
        seq: 4,
        timestamp: '2025-01-01T00:00:00.000Z',
      });
    }
    expect(log.subscriberCount).toBe(0);
  });

  test('subscribing to a closed log yields the kept backlog ending with session_exited', async () => {
    const log = makeLog();
    appendMany(log, 2);
    log.close('closed');
    const events = await drain(log.subscribe({ since: 1 }));
    expect(events.map((event) => event.type)).toEqual(['agent_choice', 'session_exited']);
    expect(await drain(log.subscribe({ since: 3 }))).toEqual([]);
    expect(log.subscriberCount).toBe(0);
  });

  test('close twice keeps the first session_exited', () => {
    const log = makeLog();
    log.close('deleted');
    log.close('closed');
    expect(log.lastSeq).toBe(1);
  });
});

describe('EventLog.release', () => {
  test('release drops kept events, keeps lastSeq, and a later subscriber gets a dropped gap', async () => {
    const log = makeLog();
    appendMany(log, 5);
    log.release();
    expect(log.lastSeq).toBe(5);
    expect(log.oldestSeq).toBe(6);
    const iterator = log.subscribe({ since: 2 });
    log.append(delta('after'));
    const events = await drain(iterator, 2);
    expect(events[0]).toMatchObject({ type: 'gap', reason: 'dropped', nextSeq: 6 });
    expect(events[1]).toMatchObject({ seq: 6, content: 'after' });
  });

  test('release keeps what a live subscriber has not received yet', async () => {
    const log = makeLog({ capacity: 10 });
    appendMany(log, 6);
    const iterator = log.subscribe({ since: 3 });
    log.release();
    expect(log.oldestSeq).toBe(4);
    expect(seqs(await drain(iterator, 2))).toEqual([4, 5]);
    appendMany(log, 8); // the ring refills from the kept part and wraps: 6..14 undelivered
    expect(log.oldestSeq).toBe(5);
    log.close('closed');
    expect(seqs(await drain(iterator))).toEqual(range(6, 15));
  });

  test('release of a closed log keeps session_exited', async () => {
    const log = makeLog();
    appendMany(log, 3);
    log.close('closed');
    log.release();
    expect(log.oldestSeq).toBe(4);
    const events = await drain(log.subscribe({ since: 0 }));
    expect(events.map((event) => event.type)).toEqual(['gap', 'session_exited']);
  });
});

describe('EventLog idle release', () => {
  test('releases between releaseAfterMs and 1.25 × it after the last append, keeping lastSeq', () => {
    vi.useFakeTimers();
    const log = makeLog({ releaseAfterMs: 1000 });
    appendMany(log, 3);
    vi.advanceTimersByTime(999);
    expect(log.oldestSeq).toBe(1);
    vi.advanceTimersByTime(251);
    expect(log.oldestSeq).toBe(4);
    expect(log.lastSeq).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('an append restarts the idle period and the log arms at most one timer', () => {
    vi.useFakeTimers();
    const log = makeLog({ releaseAfterMs: 1000 });
    appendMany(log, 100);
    expect(vi.getTimerCount()).toBe(1);
    for (let step = 0; step < 6; step++) {
      vi.advanceTimersByTime(100);
      appendMany(log, 100);
      expect(vi.getTimerCount()).toBe(1);
    }
    vi.advanceTimersByTime(999); // 999 ms after the last append
    expect(log.oldestSeq).toBe(1);
    vi.advanceTimersByTime(251);
    expect(log.oldestSeq).toBe(701);
  });

  test('a subscriber prevents idle release until it leaves', async () => {
    vi.useFakeTimers();
    const log = makeLog({ releaseAfterMs: 1000 });
    appendMany(log, 3);
    const iterator = log.subscribe();
    expect(seqs(await drain(iterator, 3))).toEqual([1, 2, 3]); // caught up, yet still subscribed
    vi.advanceTimersByTime(5000);
    expect(log.oldestSeq).toBe(1);
    await iterator.return?.();
    vi.advanceTimersByTime(999);
    expect(log.oldestSeq).toBe(1);
    vi.advanceTimersByTime(251);
    expect(log.oldestSeq).toBe(4);
  });

  test('releaseAfterMs 0 never releases and arms no timer', () => {
    vi.useFakeTimers();
    const log = makeLog({ releaseAfterMs: 0 });
    appendMany(log, 3);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000_000);
    expect(log.oldestSeq).toBe(1);
  });

  test('the idle timer is unref’d so it never keeps the process alive', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const log = makeLog({ releaseAfterMs: 60_000 });
    log.append(delta('x'));
    const timer = setTimeoutSpy.mock.results[0]?.value as NodeJS.Timeout;
    setTimeoutSpy.mockRestore();
    expect(timer.hasRef()).toBe(false);
    log.release(); // clears it
  });
});

describe('EventLogs', () => {
  test('getOrCreate creates one log per session id and get finds it', () => {
    const logs = new EventLogs({ capacity: 2, now: () => 'T' });
    expect(logs.get('a')).toBeUndefined();
    const a = logs.getOrCreate('a');
    expect(logs.getOrCreate('a')).toBe(a);
    expect(logs.get('a')).toBe(a);
    expect(a.sessionId).toBe('a');
    expect(logs.size).toBe(1);
    appendMany(a, 3);
    expect(a.oldestSeq).toBe(2); // capacity passed through
    expect(a.append(delta('x'))?.timestamp).toBe('T');
  });

  test('delete ends subscribers with session_exited deleted and forgets the log', async () => {
    const logs = new EventLogs({});
    const log = logs.getOrCreate('a');
    appendMany(log, 2);
    const iterator = log.subscribe();
    logs.delete('a');
    expect(logs.get('a')).toBeUndefined();
    expect(logs.size).toBe(0);
    const events = await drain(iterator);
    expect(seqs(events)).toEqual([1, 2, 3]);
    expect(events[2]).toMatchObject({ type: 'session_exited', reason: 'deleted' });
    const fresh = logs.getOrCreate('a');
    expect(fresh).not.toBe(log);
    expect(fresh.lastSeq).toBe(0);
    expect(() => logs.delete('unknown')).not.toThrow();
  });

  test('a log released for idleness with no subscriber is dropped, and made again with its numbering kept', async () => {
    vi.useFakeTimers();
    const logs = new EventLogs({ releaseAfterMs: 1000 });
    const log = logs.getOrCreate('a');
    appendMany(log, 5);
    vi.advanceTimersByTime(1250);
    expect(logs.size).toBe(0);
    const again = logs.get('a');
    expect(again).toBeDefined();
    expect(again).not.toBe(log);
    expect(again?.lastSeq).toBe(5);
    expect(again?.append(delta('x'))?.seq).toBe(6);
    const events = await drain(again!.subscribe({ since: 0 }), 2);
    expect(events[0]).toMatchObject({ type: 'gap', reason: 'dropped', nextSeq: 6 });
    expect(seqs(events.slice(1))).toEqual([6]);
  });

  test('a log released for idleness while a subscriber waits is kept, and delete forgets a dropped log', () => {
    vi.useFakeTimers();
    const logs = new EventLogs({ releaseAfterMs: 1000 });
    const kept = logs.getOrCreate('kept');
    appendMany(kept, 2);
    const iterator = kept.subscribe({ since: 2 });
    vi.advanceTimersByTime(5000);
    expect(logs.get('kept')).toBe(kept);
    void iterator.return?.();
    const dropped = logs.getOrCreate('dropped');
    appendMany(dropped, 3);
    vi.advanceTimersByTime(1250);
    logs.delete('dropped');
    expect(logs.get('dropped')).toBeUndefined();
    expect(logs.getOrCreate('dropped').lastSeq).toBe(0);
  });

  test('firstSeq continues a numbering and must be a positive integer', () => {
    const log = makeLog({ firstSeq: 10 });
    expect(log.lastSeq).toBe(9);
    expect(log.oldestSeq).toBe(10);
    expect(log.append(delta('x'))?.seq).toBe(10);
    expect(() => makeLog({ firstSeq: 0 })).toThrow(InvalidArgumentError);
  });

  test('closeAll closes every log with session_exited closed', async () => {
    const logs = new EventLogs({});
    const a = logs.getOrCreate('a');
    const b = logs.getOrCreate('b');
    const iterators = [a.subscribe(), b.subscribe()];
    logs.closeAll();
    expect(a.closed && b.closed).toBe(true);
    for (const iterator of iterators) {
      expect(await drain(iterator)).toEqual([
        expect.objectContaining({ type: 'session_exited', reason: 'closed' }),
      ]);
    }
  });
});
