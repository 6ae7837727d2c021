// streamEvents, getSessionSnapshot and the per-session event log, driven through the SessionManager
// (docs/events-and-replay.md): replay, live tail, races between a subscription and a running turn, gaps, lagging
// subscribers, delete and close, follow-ups, and the idle release of a log.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsError, ErrorCode, SubscriberLaggedError } from '../../../src/errors.js';
import type { RuntimeEvent, SessionEvent } from '../../../src/events.js';
import { SessionManager } from '../../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../../src/manager/types.js';
import type { Runtime } from '../../../src/runtime.js';
import type { Store } from '../../../src/store.js';
import { BlockingStore } from '../../../src/testing/blocking-store.js';
import { ScriptedRuntime, type ScriptedTurnFunction, step } from '../../../src/testing/scripted-runtime.js';
import { collect, type StoreFixture, storeFixtures } from '../../helpers/stores.js';

const seqs = (events: SessionEvent[]) => events.map((event) => event.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);
const lastSeq = (events: SessionEvent[]) => events[events.length - 1]?.seq ?? 0;

/** Reads `count` events from a fresh iterator, then leaves it (which unsubscribes). */
async function take(iterable: AsyncIterable<SessionEvent>, count: number): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  if (count <= 0) return events;
  for await (const event of iterable) {
    events.push(event);
    if (events.length >= count) break;
  }
  return events;
}

/** Reads until `isLast` holds for an event (included), then leaves. */
async function until(
  iterable: AsyncIterable<SessionEvent>,
  isLast: (event: SessionEvent) => boolean,
): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of iterable) {
    events.push(event);
    if (isLast(event)) break;
  }
  return events;
}

const stoppedIn = (turnId: string) => (event: SessionEvent) =>
  event.type === 'stream_stopped' && event.turnId === turnId;

/** The first `next()` of a stream, which is where streamEvents reports its errors. */
async function firstError(iterable: AsyncIterable<SessionEvent>): Promise<unknown> {
  try {
    const result = await iterable[Symbol.asyncIterator]().next();
    return new Error(`expected a rejection, got ${JSON.stringify(result)}`);
  } catch (error) {
    return error;
  }
}

/** A turn function that yields `count` text deltas, letting the event loop turn every `pauseEvery`. */
function deltas(
  count: number,
  options: { pauseEvery?: number; at?: (index: number) => Promise<unknown> | undefined } = {},
) {
  const turn: ScriptedTurnFunction = async function* () {
    for (let index = 0; index < count; index++) {
      const waitFor = options.at?.(index);
      if (waitFor !== undefined) await waitFor;
      if (options.pauseEvery !== undefined && index > 0 && index % options.pauseEvery === 0) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      yield { type: 'agent_choice', content: `d${index}` } satisfies RuntimeEvent;
    }
  };
  return turn;
}

describe.each(storeFixtures())('streamEvents through the SessionManager ($name)', (fixture: StoreFixture) => {
  let store: Store;
  let scripted: ScriptedRuntime;
  const managers: SessionManager[] = [];

  beforeEach(async () => {
    store = await fixture.create();
    scripted = new ScriptedRuntime();
  });

  afterEach(async () => {
    for (const manager of managers.splice(0)) await manager.close();
    vi.useRealTimers();
    await fixture.cleanup();
  });

  function makeManager(options: Partial<SessionManagerOptions> = {}): SessionManager {
    const manager = new SessionManager({ runtime: scripted.factory, store, ...options });
    managers.push(manager);
    return manager;
  }

  async function newSession(manager: SessionManager): Promise<string> {
    return (await manager.createSession()).id;
  }

  // ------------------------------------------------------------ replay and tail

  test('streamEvents without since replays the whole kept backlog from seq 1, then tails live events', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    scripted.reply('First answer here');
    const first = await collect(await manager.runSession(id, { messages: ['hello'] }));
    expect(seqs(first)).toEqual(range(1, first.length));

    scripted.turn([step.hold('mid'), step.reply('Second answer')]);
    const second = await manager.runSession(id, { messages: ['again'] });
    const subscriber = until(manager.streamEvents(id), stoppedIn(second.turnId));
    await scripted.waitUntilHeld('mid');
    scripted.release('mid');
    const streamed = await collect(second);
    const received = await subscriber;

    expect(seqs(received)).toEqual(range(1, lastSeq(streamed)));
    expect(received.slice(0, first.length)).toEqual(first);
    expect(received.slice(first.length)).toEqual(streamed);
  });

  test('streamEvents with since replays only the kept events after it, then tails', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    scripted.reply('One two three four');
    const first = await collect(await manager.runSession(id, { messages: ['hello'] }));
    const since = 3;

    scripted.reply('Five six');
    const second = await manager.runSession(id, { messages: ['more'] });
    const received = await until(manager.streamEvents(id, { since }), stoppedIn(second.turnId));
    const streamed = await collect(second);

    expect(seqs(received)).toEqual(range(since + 1, lastSeq(streamed)));
    expect(received).toEqual([...first.slice(since), ...streamed]);
  });

  test('streamEvents started mid-turn delivers every event after its since exactly once', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    scripted.turn([
      step.reply('Before the hold'),
      step.hold('mid'),
      step.reply('After the hold is released'),
    ]);
    const stream = await manager.runSession(id, { messages: ['go'] });
    await scripted.waitUntilHeld('mid');
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    expect(lastEventSeq).toBeGreaterThan(4);
    const since = lastEventSeq - 2; // two kept events to replay, then live ones

    const subscriber = until(manager.streamEvents(id, { since }), stoppedIn(stream.turnId));
    scripted.release('mid');
    const streamed = await collect(stream);
    const received = await subscriber;

    expect(seqs(received)).toEqual(range(since + 1, lastSeq(streamed)));
    expect(received).toEqual(streamed.filter((event) => event.seq > since));
  });

  test('streamEvents with since from getSessionSnapshot continues exactly after the snapshot', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    scripted.turn([step.reply('Part one'), step.hold('mid'), step.reply('Part two of it')]);
    const stream = await manager.runSession(id, { messages: ['go'] });
    await scripted.waitUntilHeld('mid');
    const snapshot = await manager.getSessionSnapshot(id);
    expect(snapshot.streaming).toBe(true);

    // Events are appended between the snapshot and the subscription: none may be missed.
    scripted.release('mid');
    const streamed = await collect(stream);
    expect(lastSeq(streamed)).toBeGreaterThan(snapshot.lastEventSeq);
    const received = await take(
      manager.streamEvents(id, { since: snapshot.lastEventSeq }),
      lastSeq(streamed) - snapshot.lastEventSeq,
    );
    expect(seqs(received)).toEqual(range(snapshot.lastEventSeq + 1, lastSeq(streamed)));
    expect(received).toEqual(streamed.filter((event) => event.seq > snapshot.lastEventSeq));

    // And from the snapshot of an idle session: the next event is the next turn's first one.
    const idle = await manager.getSessionSnapshot(id);
    expect(idle.streaming).toBe(false);
    expect(idle.lastEventSeq).toBe(lastSeq(streamed));
    scripted.reply('Next');
    const next = await manager.runSession(id, { messages: ['next'] });
    const tail = await until(manager.streamEvents(id, { since: idle.lastEventSeq }), stoppedIn(next.turnId));
    expect(tail).toEqual(await collect(next));
    expect(tail[0]).toMatchObject({ type: 'stream_started', seq: idle.lastEventSeq + 1 });
  });

  test('streamEvents subscribed from a snapshot while a turn streams gets the log after since exactly (race, 200 runs)', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    const turnLength = 40;
    let midTurn = 0;
    for (let iteration = 0; iteration < 200; iteration++) {
      let subscription: { since: Promise<number>; events: Promise<SessionEvent[]> } | undefined;
      const sentinel = `end ${iteration}`;
      const subscribe = () => {
        const since = manager.getSessionSnapshot(id).then((snapshot) => snapshot.lastEventSeq);
        const events = since.then((from) =>
          until(
            manager.streamEvents(id, { since: from }),
            (event) => event.type === 'session_title' && event.title === sentinel,
          ),
        );
        subscription = { since, events };
        return since;
      };
      // The turn goes on once the snapshot was read (so `since` is always mid-turn, whatever the
      // store's speed), while streamEvents opens: that opening is what races the turn's events.
      const at = (index: number) => (index === iteration % turnLength ? subscribe() : undefined);
      scripted.turn(deltas(turnLength, { pauseEvery: 2, at }));
      const stream = await manager.runSession(id, { messages: [`go ${iteration}`] });
      const streamed = await collect(stream);
      // A last event after the turn, so a subscription that began at the very end still has an end.
      await manager.updateSessionTitle(id, sentinel);
      const end = lastSeq(streamed) + 1;

      if (!subscription) throw new Error('the turn never subscribed');
      const since = await subscription.since;
      const received = await subscription.events;
      if (since > streamed[0]!.seq && since < lastSeq(streamed)) midTurn++;
      const log = await take(manager.streamEvents(id, { since }), end - since);

      expect(seqs(received)).toEqual(range(since + 1, end));
      expect(received).toEqual(log);
      expect(received.slice(0, -1)).toEqual(streamed.filter((event) => event.seq > since));
    }
    // The race was really run: every subscription began while the turn was streaming.
    expect(midTurn).toBe(200);
  });

  test('TurnStream and streamEvents carry the same events with the same seqs', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    scripted.turn([
      step.reply('Let me check', { usage: { inputTokens: 3, outputTokens: 2 } }),
      step.authorize({ name: 'read', arguments: { path: 'a' } }, { readOnly: true }),
      { type: 'warning', message: 'careful' },
      step.reply('Done'),
    ]);
    const stream = await manager.runSession(id, { messages: ['hello'] });
    const [streamed, logged] = await Promise.all([
      collect(stream),
      until(manager.streamEvents(id, { since: 0 }), stoppedIn(stream.turnId)),
    ]);
    expect(streamed.length).toBeGreaterThan(10);
    expect(seqs(streamed)).toEqual(range(1, streamed.length));
    expect(logged).toEqual(streamed);
    expect(await take(manager.streamEvents(id), streamed.length)).toEqual(streamed);
    for (const event of streamed) expect(event.sessionId).toBe(id);
  });

  // ------------------------------------------------------------ gaps and lag

  test('streamEvents starts with a gap (dropped) when the asked position fell out of the log', async () => {
    const manager = makeManager({ eventLogCapacity: 8 });
    const id = await newSession(manager);
    scripted.turn(deltas(50));
    const streamed = await collect(await manager.runSession(id, { messages: ['go'] }));
    const last = lastSeq(streamed);
    expect(last).toBeGreaterThan(50);

    const received = await take(manager.streamEvents(id, { since: 1 }), 9);
    expect(received[0]).toMatchObject({
      type: 'gap',
      seq: 0,
      reason: 'dropped',
      nextSeq: last - 7,
      sessionId: id,
    });
    expect(seqs(received.slice(1))).toEqual(range(last - 7, last));
    expect(received.slice(1)).toEqual(streamed.slice(-8));

    // Since omitted: the kept backlog without a gap.
    const backlog = await take(manager.streamEvents(id), 8);
    expect(backlog).toEqual(streamed.slice(-8));
  });

  test('streamEvents starts with a gap (reset) when since is beyond the last seq, then the whole kept log', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    scripted.reply('Hello there');
    const streamed = await collect(await manager.runSession(id, { messages: ['hi'] }));
    const last = lastSeq(streamed);

    const received = await take(manager.streamEvents(id, { since: last + 100 }), last + 1);
    expect(received[0]).toMatchObject({ type: 'gap', seq: 0, reason: 'reset', nextSeq: 1 });
    expect(received.slice(1)).toEqual(streamed);

    // since equal to the last seq is no gap: the next live event follows directly.
    scripted.reply('Again');
    const next = await manager.runSession(id, { messages: ['again'] });
    const tail = await until(manager.streamEvents(id, { since: last }), stoppedIn(next.turnId));
    expect(tail[0]).toMatchObject({ type: 'stream_started', seq: last + 1 });
    await collect(next);
  });

  test('a subscriber that does not read ends with SUBSCRIBER_LAGGED while a fast one gets everything', async () => {
    const manager = makeManager({ eventLogCapacity: 8 });
    const id = await newSession(manager);
    scripted.turn([
      step.hold('start'),
      ...Array.from({ length: 50 }, (_, index) => ({
        type: 'agent_choice' as const,
        content: `d${index}`,
      })),
    ]);
    const stream = await manager.runSession(id, { messages: ['go'] });
    await scripted.waitUntilHeld('start');
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    expect(lastEventSeq).toBeGreaterThan(1);

    const slow = manager.streamEvents(id, { since: 0 })[Symbol.asyncIterator]();
    const firstSlow = await slow.next();
    expect(firstSlow).toMatchObject({ done: false, value: { seq: 1, type: 'stream_started' } });
    const fast = until(manager.streamEvents(id, { since: 0 }), stoppedIn(stream.turnId));
    await new Promise((resolve) => setImmediate(resolve)); // subscribed

    scripted.release('start');
    const streamed = await collect(stream);
    const fastEvents = await fast;
    expect(seqs(fastEvents)).toEqual(range(1, lastSeq(streamed)));
    expect(fastEvents).toEqual(streamed);

    const lagged = await slow.next().then(
      (result) => new Error(`expected SUBSCRIBER_LAGGED, got ${JSON.stringify(result)}`),
      (error: unknown) => error,
    );
    expect(lagged).toBeInstanceOf(SubscriberLaggedError);
    expect(AgentSessionsError.hasCode(lagged, ErrorCode.SUBSCRIBER_LAGGED)).toBe(true);
    expect((lagged as SubscriberLaggedError).lastSeq).toBe(1);
    expect(await slow.next()).toEqual({ done: true, value: undefined });

    // It reconnects with its last seq: position 1 was dropped, so a gap, then the kept events.
    const reconnected = await take(manager.streamEvents(id, { since: 1 }), 9);
    expect(reconnected[0]).toMatchObject({ type: 'gap', reason: 'dropped' });
    expect(reconnected.slice(1)).toEqual(streamed.slice(-8));
  });

  test('a subscriber reading concurrently keeps up with a runtime that yields without I/O (no SUBSCRIBER_LAGGED)', async () => {
    // No await between events: only the microtask cost per event decides whether a reader falls behind.
    const eager: Runtime = {
      async *run() {
        for (let index = 0; index < 5_000; index++) yield { type: 'agent_choice', content: 'x' };
      },
    };
    const manager = makeManager({ runtime: () => eager, eventLogCapacity: 64 });
    const id = await newSession(manager);
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    const readers = [1, 2, 3].map(() =>
      until(manager.streamEvents(id, { since: lastEventSeq }), (event) => event.type === 'stream_stopped'),
    );
    const stream = await manager.runSession(id, { messages: ['go'] });
    const streamed = await collect(stream);
    expect(streamed).toHaveLength(5_000 + 4);
    for (const received of await Promise.all(readers)) expect(received).toEqual(streamed);
  });

  // ------------------------------------------------------------ end of a session

  test('deleteSession ends subscribers after session_exited (deleted); later subscribers get SESSION_NOT_FOUND', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    scripted.turn([step.reply('Working on it'), step.hold('mid'), step.reply('never')]);
    const stream = await manager.runSession(id, { messages: ['go'] });
    await scripted.waitUntilHeld('mid');
    const subscriber = collect(manager.streamEvents(id));
    const streamed = collect(stream);
    await new Promise((resolve) => setImmediate(resolve)); // subscribed

    await manager.deleteSession(id);
    const received = await subscriber; // the loop ends by itself
    const turnEvents = await streamed;
    const exit = received[received.length - 1]!;
    expect(exit).toMatchObject({ type: 'session_exited', reason: 'deleted', seq: lastSeq(turnEvents) + 1 });
    expect(received.slice(0, -1)).toEqual(turnEvents);
    expect(turnEvents[turnEvents.length - 1]).toMatchObject({ type: 'stream_stopped', reason: 'cancelled' });
    expect(seqs(received)).toEqual(range(1, exit.seq));

    for (const since of [undefined, 0, exit.seq]) {
      const error = await firstError(manager.streamEvents(id, since === undefined ? {} : { since }));
      expect(AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)).toBe(true);
    }
    await expect(manager.getSessionSnapshot(id)).rejects.toMatchObject({ code: ErrorCode.SESSION_NOT_FOUND });
  });

  test('streamEvents of an unknown session rejects with SESSION_NOT_FOUND on the first next()', async () => {
    const manager = makeManager();
    const iterable = manager.streamEvents('no-such-session'); // never throws synchronously
    const error = await firstError(iterable);
    expect(AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)).toBe(true);
    const invalid = await firstError(manager.streamEvents('../etc'));
    expect(AgentSessionsError.hasCode(invalid, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });

  test('an event from a runtime that ends after deleteSession never revives the log', async () => {
    let proceed!: () => void;
    const blocked = new Promise<void>((resolve) => {
      proceed = resolve;
    });
    let yieldedLate = false;
    // A runtime that ignores its signal and yields once more after the delete.
    const stubborn: Runtime = {
      async *run() {
        yield { type: 'agent_choice', content: 'early' };
        await blocked;
        yieldedLate = true;
        yield { type: 'agent_choice', content: 'late' };
        yield {
          type: 'message_added',
          message: { id: 'm-late', role: 'assistant', content: 'late', createdAt: new Date().toISOString() },
        };
      },
    };
    const manager = makeManager({ runtime: () => stubborn });
    const id = await newSession(manager);
    const stream = await manager.runSession(id, { messages: ['go'] });
    const iterator = stream[Symbol.asyncIterator]();
    while (!(await iterator.next()).value?.type.startsWith('agent_choice')) {
      // read up to the first delta: the runtime now waits
    }
    await manager.deleteSession(id);
    proceed();
    await manager.waitStopped(id, { timeoutMs: 5_000 });
    expect(yieldedLate).toBe(true);

    const error = await firstError(manager.streamEvents(id, { since: 0 }));
    expect(AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)).toBe(true);
    await expect(manager.getSessionSnapshot(id)).rejects.toMatchObject({ code: ErrorCode.SESSION_NOT_FOUND });

    // A new session under the same id starts a new log: nothing of the old one comes back.
    await manager.createSession({ id });
    expect((await manager.getSessionSnapshot(id)).lastEventSeq).toBe(0);
    await expect(manager.getSession(id)).resolves.toMatchObject({ items: [] });
  });

  test('a title generated after deleteSession never revives the log', async () => {
    let finishTitle!: (title: string) => void;
    const manager = makeManager({
      titleGenerator: () =>
        new Promise<string>((resolve) => {
          finishTitle = resolve;
        }),
    });
    const id = await newSession(manager);
    scripted.reply('Answer');
    await collect(await manager.runSession(id, { messages: ['a question'] }));
    await manager.deleteSession(id);
    finishTitle('A late title');
    await manager.waitStopped(id, { timeoutMs: 5_000 });
    await new Promise((resolve) => setImmediate(resolve));

    const error = await firstError(manager.streamEvents(id));
    expect(AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)).toBe(true);
    await expect(manager.getSession(id)).rejects.toMatchObject({ code: ErrorCode.SESSION_NOT_FOUND });
  });

  test('close() ends subscribers after session_exited (closed)', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    const other = await newSession(manager);
    scripted.turn([step.reply('Hi'), step.hold('mid')]);
    const stream = await manager.runSession(id, { messages: ['go'] });
    await scripted.waitUntilHeld('mid');
    await manager.getSessionSnapshot(other); // the log exists: subscribing needs no store read
    const running = collect(manager.streamEvents(id, { since: 0 }));
    const idle = collect(manager.streamEvents(other));
    const streamed = collect(stream);
    await new Promise((resolve) => setImmediate(resolve)); // both subscribed

    await manager.close();
    const received = await running;
    const turnEvents = await streamed;
    expect(received.slice(0, -1)).toEqual(turnEvents);
    expect(received[received.length - 1]).toMatchObject({
      type: 'session_exited',
      reason: 'closed',
      seq: lastSeq(turnEvents) + 1,
    });
    expect(await idle).toEqual([
      expect.objectContaining({ type: 'session_exited', reason: 'closed', seq: 1 }),
    ]);
    const closed = await firstError(manager.streamEvents(id));
    expect(AgentSessionsError.hasCode(closed, ErrorCode.CLOSED)).toBe(true);
  });

  test('streamEvents still opening when close() runs rejects with CLOSED instead of waiting forever', async () => {
    const blocking = new BlockingStore(store);
    const manager = makeManager({ store: blocking });
    const id = await newSession(manager); // no log yet: opening checks the store (its summary)
    blocking.block('getSummary');
    const first = manager.streamEvents(id)[Symbol.asyncIterator]().next();
    await blocking.waitForBlocked('getSummary');
    await manager.close();
    blocking.release('getSummary');
    await expect(first).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  test("streamEvents's signal ends the stream with the signal's reason", async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    const controller = new AbortController();
    const iterator = manager.streamEvents(id, { signal: controller.signal })[Symbol.asyncIterator]();
    const pending = iterator.next();
    await new Promise((resolve) => setImmediate(resolve));
    const reason = new Error('the client went away');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });

    const aborted = AbortSignal.abort('already gone');
    expect(await firstError(manager.streamEvents(id, { signal: aborted }))).toBe('already gone');
  });

  // ------------------------------------------------------------ follow-ups, memory

  test('a follow-up started while idle is visible through streamEvents, stream_started to stream_stopped', async () => {
    const manager = makeManager();
    const id = await newSession(manager);
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    const subscriber = manager.streamEvents(id, { since: lastEventSeq });
    scripted.reply('Following up');
    await expect(manager.followUpSession(id, ['and then?'])).resolves.toEqual({ status: 'started' });
    const received = await until(subscriber, (event) => event.type === 'stream_stopped');

    expect(seqs(received)).toEqual(range(lastEventSeq + 1, lastEventSeq + received.length));
    expect(received[0]).toMatchObject({ type: 'stream_started' });
    const turnId = received[0]!.turnId;
    expect(turnId).toEqual(expect.any(String));
    for (const event of received) expect(event.turnId).toBe(turnId);
    expect(received).toContainEqual(
      expect.objectContaining({
        type: 'user_message',
        message: expect.objectContaining({ content: 'and then?' }),
      }),
    );
    expect(received).toContainEqual(
      expect.objectContaining({
        type: 'message_added',
        message: expect.objectContaining({ content: 'Following up' }),
      }),
    );
    expect(received[received.length - 1]).toMatchObject({ type: 'stream_stopped', reason: 'end_turn' });
    await manager.waitStopped(id, { timeoutMs: 5_000 });
  });

  test('an idle log is released after eventLogReleaseAfterMs: since 0 then gets a gap, lastEventSeq is unchanged', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const manager = makeManager({ eventLogReleaseAfterMs: 60_000 });
    const id = await newSession(manager);
    scripted.reply('Hello there');
    const streamed = await collect(await manager.runSession(id, { messages: ['hi'] }));
    const last = lastSeq(streamed);

    // Not yet released: the backlog is there (also a subscriber's activity restarts the clock).
    vi.advanceTimersByTime(59_000);
    expect(await take(manager.streamEvents(id, { since: 0 }), last)).toEqual(streamed);

    vi.advanceTimersByTime(120_000);
    const received = await take(manager.streamEvents(id, { since: 0 }), 1);
    expect(received).toEqual([
      expect.objectContaining({ type: 'gap', seq: 0, reason: 'dropped', nextSeq: last + 1 }),
    ]);
    expect((await manager.getSessionSnapshot(id)).lastEventSeq).toBe(last);

    // The numbering goes on where it stopped.
    scripted.reply('Again');
    const next = await collect(await manager.runSession(id, { messages: ['again'] }));
    expect(next[0]).toMatchObject({ type: 'stream_started', seq: last + 1 });
  });
});
