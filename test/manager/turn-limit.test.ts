// The global turn limit (maxConcurrentTurns; src/manager/turn-slots.ts): turns past it wait in one
// FIFO queue, announced with turn_queued and shown in the snapshot, holding their session's busy
// lock; every way of cancelling takes a waiting turn out of the queue.
import { afterEach, describe, expect, test } from 'vitest';
import type { SessionEvent } from '../../src/events.js';
import type { SessionManager } from '../../src/manager/session-manager.js';
import type { SessionManagerOptions, TurnStream } from '../../src/manager/types.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { type ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { expectRejectsWithCode } from '../helpers/assertions.js';
import { startManager } from '../helpers/manager.js';
import { collect } from '../helpers/stores.js';

let parts: { manager: SessionManager; scripted: ScriptedRuntime } | undefined;
afterEach(async () => {
  await parts?.manager.close();
  parts?.scripted.assertConsumed();
  parts = undefined;
});

function start(options: Omit<SessionManagerOptions, 'runtime' | 'store'> = { maxConcurrentTurns: 1 }) {
  parts = startManager(new MemoryStore(), options);
  return parts;
}

/** A stream being read: its events so far, and the next one on demand. */
function reader(stream: TurnStream) {
  const iterator = stream[Symbol.asyncIterator]();
  const events: SessionEvent[] = [];
  return {
    events,
    async next(): Promise<SessionEvent> {
      const step = await iterator.next();
      if (step.done) throw new Error('the stream ended');
      events.push(step.value);
      return step.value;
    },
    /** Breaks out of the loop (`return()`), as a `for await` does. */
    async leave(): Promise<void> {
      await iterator.return?.();
    },
    async rest(): Promise<SessionEvent[]> {
      for (;;) {
        const step = await iterator.next();
        if (step.done) return events;
        events.push(step.value);
      }
    },
  };
}

/** A session whose turn holds at `hold` (a slot taken) until released. */
async function holding(manager: SessionManager, scripted: ScriptedRuntime, hold: string) {
  const session = await manager.createSession();
  scripted.turn([step.hold(hold), step.reply(`${hold} done`)], { sessionId: session.id });
  const stream = await manager.runSession(session.id, { messages: [hold] });
  await scripted.waitUntilHeld(hold);
  return { id: session.id, stream };
}

describe('maxConcurrentTurns', () => {
  test.each([0, -1, 1.5, Number.NaN, '2'])(
    'new SessionManager rejects maxConcurrentTurns %s with INVALID_ARGUMENT',
    (value) => {
      expect(() => start({ maxConcurrentTurns: value as number })).toThrowError(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      parts = undefined;
    },
  );

  test('a turn past the limit waits: turn_queued first, queued in the snapshot, stream_started once a slot frees', async () => {
    const { manager, scripted } = start();
    const first = await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    scripted.reply('b done', { sessionId: second.id });
    const stream = await manager.runSession(second.id, { messages: ['b'] });
    const events = reader(stream);

    const queued = await events.next();
    expect(queued).toMatchObject({
      type: 'turn_queued',
      turnId: stream.turnId,
      position: 1,
      sessionId: second.id,
    });
    const snapshot = await manager.getSessionSnapshot(second.id);
    expect(snapshot.streaming).toBe(true);
    expect(snapshot.queued).toEqual({ turnId: stream.turnId, since: expect.any(String), position: 1 });
    expect(Date.parse(snapshot.queued?.since ?? '')).not.toBeNaN();
    expect((await manager.getSessionSnapshot(first.id)).queued).toBeUndefined();
    // The runtime has not been asked to run the waiting turn.
    expect(scripted.turnsOf(second.id)).toHaveLength(0);

    scripted.release('a');
    expect(await events.next()).toMatchObject({ type: 'stream_started', turnId: stream.turnId });
    const rest = await events.rest();
    expect(rest.map((event) => event.type)).toEqual([
      'turn_queued',
      'stream_started',
      'user_message',
      'session_title',
      'agent_choice',
      'agent_choice',
      'message_added',
      'stream_stopped',
    ]);
    expect((await stream.done).stopReason).toBe('end_turn');
    expect((await first.stream.done).stopReason).toBe('end_turn');
    expect((await manager.getSessionSnapshot(second.id)).queued).toBeUndefined();
  });

  test('a turn within the limit starts at once, with no turn_queued', async () => {
    const { manager, scripted } = start({ maxConcurrentTurns: 2 });
    await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    scripted.reply('b done', { sessionId: second.id });
    const events = await collect(await manager.runSession(second.id, { messages: ['b'] }));
    expect(events[0]?.type).toBe('stream_started');
    expect(events.some((event) => event.type === 'turn_queued')).toBe(false);
    scripted.release('a');
  });

  test('runSession on a session whose turn waits rejects with SESSION_BUSY naming the waiting turn', async () => {
    const { manager, scripted } = start();
    await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    scripted.reply('b done', { sessionId: second.id });
    const stream = await manager.runSession(second.id, { messages: ['b'] });
    const events = reader(stream);
    expect(await events.next()).toMatchObject({ type: 'turn_queued' });
    const error = await expectRejectsWithCode(
      manager.runSession(second.id, { messages: ['again'] }),
      'SESSION_BUSY',
    );
    expect(error).toMatchObject({ turnId: stream.turnId });
    await expectRejectsWithCode(manager.addMessage(second.id, 'edit'), 'SESSION_BUSY');
    scripted.release('a');
    await events.rest();
  });

  test('waiting turns start in the order they asked (FIFO), and positions move up as turns start', async () => {
    const { manager, scripted } = start();
    const started: string[] = [];
    manager.events.on('turn_started', ({ sessionId }) => started.push(sessionId));
    const first = await holding(manager, scripted, 'a');
    const waiting: Array<{ id: string; events: ReturnType<typeof reader> }> = [];
    for (const name of ['b', 'c', 'd']) {
      const session = await manager.createSession();
      scripted.turn([step.hold(name), step.reply(`${name} done`)], { sessionId: session.id });
      const events = reader(await manager.runSession(session.id, { messages: [name] }));
      expect(await events.next()).toMatchObject({ type: 'turn_queued', position: waiting.length + 1 });
      waiting.push({ id: session.id, events });
    }
    expect((await manager.getSessionSnapshot(waiting[2]!.id)).queued?.position).toBe(3);

    scripted.release('a');
    await first.stream.done;
    await scripted.waitUntilHeld('b');
    expect((await manager.getSessionSnapshot(waiting[1]!.id)).queued?.position).toBe(1);
    expect((await manager.getSessionSnapshot(waiting[2]!.id)).queued?.position).toBe(2);
    expect(scripted.turnsOf(waiting[1]!.id)).toHaveLength(0);
    scripted.release('b');
    await scripted.waitUntilHeld('c');
    expect(scripted.turnsOf(waiting[2]!.id)).toHaveLength(0);
    scripted.release('c');
    await scripted.waitUntilHeld('d');
    scripted.release('d');
    for (const { events } of waiting) await events.rest();
    expect(started).toEqual([first.id, ...waiting.map(({ id }) => id)]);
  });

  const cancels: Array<
    [
      string,
      (manager: SessionManager, id: string, stream: TurnStream, abort: AbortController) => Promise<unknown>,
    ]
  > = [
    ['the signal', async (_manager, _id, _stream, abort) => abort.abort(new Error('stop'))],
    ['stream.cancel()', async (_manager, _id, stream) => stream.cancel()],
    ['cancelTurn', (manager, id) => manager.cancelTurn(id)],
    ['deleteSession', (manager, id) => manager.deleteSession(id)],
  ];
  test.each(cancels)(
    '%s takes a waiting turn out of the queue: it ends cancelled without running, and frees no slot it never had',
    async (_name, cancel) => {
      const { manager, scripted } = start();
      const first = await holding(manager, scripted, 'a');
      const second = await manager.createSession();
      const abort = new AbortController();
      const stream = await manager.runSession(second.id, { messages: ['b'] }, { signal: abort.signal });
      const events = reader(stream);
      expect(await events.next()).toMatchObject({ type: 'turn_queued' });
      await cancel(manager, second.id, stream, abort);
      const done = await stream.done;
      expect(done.stopReason).toBe('cancelled');
      expect((await events.rest()).map((event) => event.type)).toEqual([
        'turn_queued',
        'stream_started',
        'stream_stopped',
      ]);
      expect(events.events.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'cancelled' });
      expect(scripted.turnsOf(second.id)).toHaveLength(0);

      // The running turn keeps its slot: a third turn still waits, and starts when the first ends.
      const third = await manager.createSession();
      scripted.reply('c done', { sessionId: third.id });
      const thirdEvents = reader(await manager.runSession(third.id, { messages: ['c'] }));
      expect(await thirdEvents.next()).toMatchObject({ type: 'turn_queued', position: 1 });
      scripted.release('a');
      await first.stream.done;
      expect((await thirdEvents.rest()).at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'end_turn' });
    },
  );

  test("breaking out of a waiting turn's stream cancels it; its events are in the event log", async () => {
    const { manager, scripted } = start();
    const first = await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    const stream = await manager.runSession(second.id, { messages: ['b'] });
    const events = reader(stream);
    expect(await events.next()).toMatchObject({ type: 'turn_queued' });
    await events.leave();
    expect((await stream.done).stopReason).toBe('cancelled');
    expect(scripted.turnsOf(second.id)).toHaveLength(0);
    const log: SessionEvent[] = [];
    const abort = new AbortController();
    for await (const event of manager.streamEvents(second.id, { signal: abort.signal })) {
      log.push(event);
      if (event.type === 'stream_stopped') break;
    }
    expect(log.map((event) => event.type)).toEqual(['turn_queued', 'stream_started', 'stream_stopped']);
    expect(log.at(-1)).toMatchObject({ reason: 'cancelled' });
    scripted.release('a');
    await first.stream.done;
  });

  test('followUpSession on an idle session past the limit starts a turn that waits: started, queued in the snapshot, turn_queued in the log', async () => {
    const { manager, scripted } = start();
    const first = await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    scripted.reply('b done', { sessionId: second.id });
    const ended = new Promise<string>((resolve) => {
      manager.events.on('turn_ended', ({ sessionId, stopReason }) => {
        if (sessionId === second.id) resolve(stopReason);
      });
    });
    expect(await manager.followUpSession(second.id, ['later'])).toEqual({ status: 'started' });
    const log = manager.streamEvents(second.id)[Symbol.asyncIterator]();
    expect((await log.next()).value).toMatchObject({ type: 'turn_queued', position: 1 });
    expect((await manager.getSessionSnapshot(second.id)).queued).toMatchObject({ position: 1 });
    await expectRejectsWithCode(manager.runSession(second.id, { messages: ['now'] }), 'SESSION_BUSY');
    scripted.release('a');
    await first.stream.done;
    expect((await log.next()).value).toMatchObject({ type: 'stream_started' });
    expect(await ended).toBe('end_turn');
    await log.return?.();
  });

  test('close() settles a waiting turn as cancelled', async () => {
    const { manager, scripted } = start();
    const first = await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    const stream = await manager.runSession(second.id, { messages: ['b'] });
    const events = reader(stream);
    expect(await events.next()).toMatchObject({ type: 'turn_queued' });
    await manager.close();
    expect((await stream.done).stopReason).toBe('cancelled');
    expect((await first.stream.done).stopReason).toBe('cancelled');
    expect(scripted.turnsOf(second.id)).toHaveLength(0);
    // The held turn was cancelled, never released: nothing of the script is left to check.
    parts = undefined;
  });

  test('steering a waiting turn queues for it, and the turn takes the messages once it runs', async () => {
    const { manager, scripted } = start();
    await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    scripted.turn([step.takeSteering(), step.reply('b done')], { sessionId: second.id });
    const stream = await manager.runSession(second.id, { messages: ['b'] });
    const events = reader(stream);
    expect(await events.next()).toMatchObject({ type: 'turn_queued' });
    await manager.steerSession(second.id, ['while you wait']);
    expect(
      (await manager.getSessionSnapshot(second.id)).queues.steer.map((message) => message.content),
    ).toEqual(['while you wait']);
    scripted.release('a');
    await events.rest();
    expect(scripted.turnsOf(second.id)[0]?.steered[0]?.map((message) => message.content)).toEqual([
      'while you wait',
    ]);
  });

  test('a follow-up to a waiting turn is queued behind it, and waits for a slot of its own behind turns that asked first', async () => {
    const { manager, scripted } = start();
    const started: string[] = [];
    manager.events.on('turn_started', ({ sessionId }) => started.push(sessionId));
    const first = await holding(manager, scripted, 'a');
    const second = await manager.createSession();
    scripted.turn([step.hold('b'), step.reply('b done')], { sessionId: second.id });
    scripted.reply('b follow-up done', { sessionId: second.id });
    const stream = await manager.runSession(second.id, { messages: ['b'] });
    const events = reader(stream);
    expect(await events.next()).toMatchObject({ type: 'turn_queued' });
    expect(await manager.followUpSession(second.id, ['then this'])).toEqual({ status: 'queued' });
    const third = await manager.createSession();
    scripted.reply('c done', { sessionId: third.id });
    const thirdEvents = reader(await manager.runSession(third.id, { messages: ['c'] }));
    expect(await thirdEvents.next()).toMatchObject({ type: 'turn_queued', position: 2 });

    scripted.release('a');
    await scripted.waitUntilHeld('b');
    scripted.release('b');
    const all = await events.rest();
    await thirdEvents.rest();
    // b's follow-up asked for a slot after c: c ran between b's two turns.
    expect(started).toEqual([first.id, second.id, third.id, second.id]);
    const secondQueued = all.filter((event) => event.type === 'turn_queued');
    expect(secondQueued).toHaveLength(2);
    expect((await stream.done).stopReason).toBe('end_turn');
  });

  test('a failed turn gives its slot back', async () => {
    const { manager, scripted } = start();
    const failing = await manager.createSession();
    scripted.turn(new Error('boom'), { sessionId: failing.id });
    const failed = await manager.runSession(failing.id, { messages: ['x'] });
    await collect(failed);
    expect((await failed.done).stopReason).toBe('error');
    const next = await manager.createSession();
    scripted.reply('ok', { sessionId: next.id });
    const events = await collect(await manager.runSession(next.id, { messages: ['y'] }));
    expect(events[0]?.type).toBe('stream_started');
  });
});
