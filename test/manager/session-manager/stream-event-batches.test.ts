// The batch readers through the SessionManager (docs/events-and-replay.md, "Reading in batches"):
// streamEventBatches and TurnStream.batches carry the events of streamEvents and of the
// TurnStream, in the same order, with the same errors, gaps and ends.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsError, ErrorCode } from '../../../src/errors.js';
import type { RuntimeEvent, SessionEvent } from '../../../src/events.js';
import { SessionManager } from '../../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../../src/manager/types.js';
import { FileStore } from '../../../src/stores/file/store.js';
import { MemoryStore } from '../../../src/stores/memory.js';
import { ScriptedRuntime, type ScriptedTurnFunction } from '../../../src/testing/scripted-runtime.js';

const seqs = (events: readonly SessionEvent[]) => events.map((event) => event.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

const managers: SessionManager[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const manager of managers.splice(0)) await manager.close();
});

function start(options: Partial<SessionManagerOptions> = {}) {
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store: new MemoryStore(), ...options });
  managers.push(manager);
  return { scripted, manager };
}

/** Text deltas `d0…`, the event loop turning every `pauseEvery`, then the assistant message. */
function deltas(count: number, pauseEvery = 7): ScriptedTurnFunction {
  return async function* () {
    for (let index = 0; index < count; index++) {
      if (index > 0 && index % pauseEvery === 0) await new Promise((resolve) => setImmediate(resolve));
      yield { type: 'agent_choice', content: `d${index}` } satisfies RuntimeEvent;
    }
  };
}

/** Reads batches until one holds an event for which `isLast` is true; returns them all. */
async function batchesUntil(
  iterable: AsyncIterable<readonly SessionEvent[]>,
  isLast: (event: SessionEvent) => boolean,
): Promise<SessionEvent[][]> {
  const batches: SessionEvent[][] = [];
  for await (const batch of iterable) {
    batches.push([...batch]);
    if (batch.some(isLast)) break;
  }
  return batches;
}

async function eventsUntil(
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

const stopped = (event: SessionEvent) => event.type === 'stream_stopped';

describe('streamEventBatches', () => {
  test('streamEventBatches carries the same events as streamEvents and the TurnStream, gapless, in non-empty batches', async () => {
    const { scripted, manager } = start();
    const { id } = await manager.createSession();
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    scripted.turn(deltas(300));
    const batched = batchesUntil(manager.streamEventBatches(id, { since: lastEventSeq }), stopped);
    const perEvent = eventsUntil(manager.streamEvents(id, { since: lastEventSeq }), stopped);
    const stream = await manager.runSession(id, { messages: ['go'] });
    const fromStream = await eventsUntil(stream, stopped);
    const [batches, events] = await Promise.all([batched, perEvent]);
    expect(batches.flat()).toEqual(events);
    expect(batches.flat()).toEqual(fromStream);
    expect(seqs(events)).toEqual(range(lastEventSeq + 1, lastEventSeq + fromStream.length));
    expect(batches.every((batch) => batch.length > 0)).toBe(true);
    expect(batches.length).toBeLessThan(events.length); // several events per wake-up
  });

  test('streamEventBatches from a position beyond the log starts with a reset gap, then the kept log', async () => {
    const { scripted, manager } = start();
    const { id } = await manager.createSession();
    scripted.reply('hi');
    const turn = await eventsUntil(await manager.runSession(id, { messages: ['go'] }), stopped);
    const [first] = await batchesUntil(manager.streamEventBatches(id, { since: 10_000 }), stopped);
    expect(first![0]).toMatchObject({ type: 'gap', reason: 'reset', nextSeq: 1, seq: 0 });
    expect(seqs(first!.slice(1))).toEqual(seqs(turn));
  });

  test('streamEventBatches of an unknown session rejects ready and the first next() with SESSION_NOT_FOUND', async () => {
    const { manager } = start();
    const stream = manager.streamEventBatches('nope');
    await expect(stream.ready).rejects.toMatchObject({ code: ErrorCode.SESSION_NOT_FOUND });
    await expect(stream[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      code: ErrorCode.SESSION_NOT_FOUND,
    });
  });

  test('streamEventBatches with an aborted signal rejects with its reason; aborting while waiting ends it', async () => {
    const { manager } = start();
    const { id } = await manager.createSession();
    const reason = new Error('stop');
    await expect(
      manager
        .streamEventBatches(id, { signal: AbortSignal.abort(reason) })
        [Symbol.asyncIterator]()
        .next(),
    ).rejects.toBe(reason);
    const controller = new AbortController();
    const iterator = manager.streamEventBatches(id, { signal: controller.signal })[Symbol.asyncIterator]();
    const waiting = iterator.next();
    await manager.getSessionSnapshot(id); // the subscription is open once its checks ran
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });

  test('streamEventBatches ends with session_exited when the session is deleted', async () => {
    const { manager } = start();
    const { id } = await manager.createSession();
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    const reading = (async () => {
      const events: SessionEvent[] = [];
      for await (const batch of manager.streamEventBatches(id, { since: lastEventSeq }))
        events.push(...batch);
      return events;
    })();
    await manager.getSessionSnapshot(id);
    await manager.deleteSession(id);
    const events = await reading;
    expect(events.map((event) => event.type)).toEqual(['session_exited']);
    expect(events[0]).toMatchObject({ reason: 'deleted' });
  });
});

describe('streamEventBatches with a durable event log', () => {
  test('streamEventBatches replays and tails the durable log like streamEvents', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-batches-'));
    try {
      const scripted = new ScriptedRuntime();
      const manager = new SessionManager({
        runtime: scripted.factory,
        store: new FileStore({ directory, eventLog: true }),
      });
      managers.push(manager);
      const { id } = await manager.createSession();
      scripted.turn(deltas(40));
      const first = await eventsUntil(await manager.runSession(id, { messages: ['one'] }), stopped);
      const { lastEventSeq } = await manager.getSessionSnapshot(id);
      scripted.turn(deltas(30));
      const live = batchesUntil(manager.streamEventBatches(id, { since: lastEventSeq }), stopped);
      const second = await eventsUntil(await manager.runSession(id, { messages: ['two'] }), stopped);
      const replay = await batchesUntil(
        manager.streamEventBatches(id, { since: 0 }),
        (event) => event.seq === lastEventSeq,
      );
      // The batch that reaches the first turn's end may go on into the second turn's events.
      expect(replay.flat().filter((event) => event.seq <= lastEventSeq)).toEqual(first);
      expect(replay.flat().filter((event) => event.seq > lastEventSeq)).toEqual(
        second.slice(0, replay.flat().length - first.length),
      );
      expect((await live).flat()).toEqual(second);
      expect(replay.every((batch) => batch.length > 0)).toBe(true);
    } finally {
      for (const manager of managers.splice(0)) await manager.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('TurnStream.batches', () => {
  test('TurnStream.batches yields the turn’s events in order as streamEvents numbers them, then done', async () => {
    const { scripted, manager } = start();
    const { id } = await manager.createSession();
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    scripted.turn(deltas(100, 9));
    const perEvent = eventsUntil(manager.streamEvents(id, { since: lastEventSeq }), stopped);
    const stream = await manager.runSession(id, { messages: ['go'] });
    const batches: SessionEvent[][] = [];
    for await (const batch of stream.batches()) batches.push([...batch]);
    expect(batches.flat()).toEqual(await perEvent);
    expect(batches.flat().at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'end_turn' });
    expect(batches.every((batch) => batch.length > 0)).toBe(true);
    expect((await stream.done).stopReason).toBe('end_turn');
  });

  test('a TurnStream is read once: batches() after a per-event loop, or a loop after batches(), throws INVALID_ARGUMENT', async () => {
    const { scripted, manager } = start();
    const { id } = await manager.createSession();
    scripted.reply('one');
    const first = await manager.runSession(id, { messages: ['a'] });
    first[Symbol.asyncIterator]();
    expect(() => first.batches()[Symbol.asyncIterator]()).toThrow(AgentSessionsError);
    await first.done;
    scripted.reply('two');
    const second = await manager.runSession(id, { messages: ['b'] });
    second.batches()[Symbol.asyncIterator]();
    let caught: unknown;
    try {
      second[Symbol.asyncIterator]();
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await second.done;
  });

  test('breaking out of TurnStream.batches cancels the turn, keeping every streamed delta as the partial answer', async () => {
    const { scripted, manager } = start();
    const { id } = await manager.createSession();
    // More deltas than one chunk of the partial answer (256), then a wait the cancel cuts short.
    const streamed = deltas(700, 50);
    scripted.turn(async function* (context) {
      yield* streamed(context);
      await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
    });
    const stream = await manager.runSession(id, { messages: ['go'] });
    let seen = 0;
    for await (const batch of stream.batches()) {
      seen += batch.filter((event) => event.type === 'agent_choice').length;
      if (seen === 700) break;
    }
    expect((await stream.done).stopReason).toBe('cancelled');
    const messages = (await manager.getSession(id)).items.flatMap((item) =>
      item.kind === 'message' ? [item.message] : [],
    );
    const partial = messages.find((message) => message.role === 'assistant');
    expect(partial?.content).toBe(Array.from({ length: 700 }, (_, index) => `d${index}`).join(''));
    expect(partial?.interrupted).toEqual({ reason: 'cancelled' });
  });
});

describe('event timestamps', () => {
  test('the manager stamps events with a clock reading shared by at most 16 events and never later than the event', async () => {
    const base = Date.parse('2030-01-01T00:00:00.000Z');
    await new Promise((resolve) => setImmediate(resolve)); // a reading of an earlier test has expired
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(base);
    const yieldedAt: number[] = [];
    const manager = new SessionManager({
      store: new MemoryStore(),
      runtime: () => ({
        async *run() {
          for (let index = 0; index < 100; index++) {
            vi.setSystemTime(base + 1000 + index); // the clock moves 1 ms per event, within one task
            yieldedAt.push(Date.now());
            yield { type: 'agent_choice', content: 'x' } satisfies RuntimeEvent;
          }
        },
      }),
    });
    managers.push(manager);
    const { id } = await manager.createSession();
    const events = await eventsUntil(await manager.runSession(id, { messages: ['go'] }), stopped);
    const deltaStamps = events
      .filter((event) => event.type === 'agent_choice')
      .map((event) => event.timestamp);
    expect(deltaStamps).toHaveLength(100);
    // Never later than the event; read at or after the event 15 places before it.
    deltaStamps.forEach((stamp, index) => {
      const ms = Date.parse(stamp);
      expect(ms).toBeLessThanOrEqual(yieldedAt[index]!);
      if (index >= 15) expect(ms).toBeGreaterThanOrEqual(yieldedAt[index - 15]!);
    });
    const perReading = new Map<string, number>();
    for (const event of events) perReading.set(event.timestamp, (perReading.get(event.timestamp) ?? 0) + 1);
    expect(Math.max(...perReading.values())).toBeLessThanOrEqual(16);
  });
});
