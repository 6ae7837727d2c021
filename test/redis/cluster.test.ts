// Several SessionManagers on one PostgresStore and one Redis (lease, durable event stream, command
// bus): events numbered once and readable from every instance, commands that reach the instance
// running the turn with the same results and errors as in one process, and caches that are never
// stale when the lease moves.
import { describe, expect, test } from 'vitest';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import type { Logger } from '../../src/logger.js';
import type { SessionManager } from '../../src/manager/session-manager.js';
import { TOMBSTONE_SEQ } from '../../src/manager/shared-events.js';
import type { RunInput, TurnStream } from '../../src/manager/types.js';
import { step } from '../../src/testing/scripted-runtime.js';
import { deferred } from '../helpers/assertions.js';
import { eventually, useCluster } from '../helpers/cluster.js';
import { probePostgres, probeRedis, whenServer } from '../helpers/servers.js';

const [redis, postgres] = await Promise.all([probeRedis(), probePostgres()]);
const probe = !redis.available ? redis : postgres;

/** runSession, retried while the lease of the turn before is still being released. */
function runOn(manager: SessionManager, id: string, input: RunInput): Promise<TurnStream> {
  return eventually(() =>
    manager.runSession(id, input).catch((error: unknown) => {
      if (AgentSessionsError.hasCode(error, ErrorCode.SESSION_BUSY)) return undefined;
      throw error;
    }),
  );
}

/** Reads `stream` until `last` matches (inclusive). */
async function readUntil(
  stream: AsyncIterable<SessionEvent>,
  last: (event: SessionEvent) => boolean,
): Promise<SessionEvent[]> {
  const seen: SessionEvent[] = [];
  for await (const event of stream) {
    seen.push(event);
    if (last(event)) break;
  }
  return seen;
}

const stopped = (event: SessionEvent) => event.type === 'stream_stopped';
const seqs = (events: readonly SessionEvent[]) => events.map((event) => event.seq);
const exited = (event: SessionEvent) => event.type === 'session_exited';
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

whenServer(probe, 'SessionManager cluster suites (PostgreSQL + Redis)', () => {
  const { cluster } = useCluster();

  describe('events across instances', () => {
    test.each(['redis', 'postgres'] as const)(
      '%s log: a subscriber on B sees the turn running on A, gapless; reconnecting to C with its last seq misses nothing',
      async (eventLog) => {
        const { instances, scripted } = await cluster(3, { eventLog });
        const [a, b, c] = instances as [
          NonNullable<(typeof instances)[0]>,
          (typeof instances)[0],
          (typeof instances)[0],
        ];
        const session = await a.manager.createSession();
        const deltas = Array.from({ length: 40 }, (_, index) => `d${index} `);
        scripted.turn([step.hold('mid'), step.reply(deltas.join(''), { deltas }), step.hold('end')]);

        const onB = b!.manager.streamEvents(session.id, { since: 0 });
        await onB.ready;
        const turn = await a.manager.runSession(session.id, { messages: ['hello'] });
        const local = readUntil(turn, stopped);
        await scripted.waitUntilHeld('mid');
        const iterator = onB[Symbol.asyncIterator]();
        const first: SessionEvent[] = [];
        // B reads what A emitted before the hold (stream_started, user_message), then leaves.
        while (first.length < 2) {
          const next = await iterator.next();
          first.push(next.value as SessionEvent);
        }
        await iterator.return?.();
        scripted.release('mid');
        await scripted.waitUntilHeld('end');
        const onC = c!.manager.streamEvents(session.id, { since: first[first.length - 1]!.seq });
        scripted.release('end');
        const rest = await readUntil(onC, stopped);
        const all = [...first, ...rest];
        const fromTurn = await local;
        expect(seqs(all)).toEqual(range(1, all.length));
        expect(all.map((event) => event.type)).toEqual(fromTurn.map((event) => event.type));
        expect(seqs(all)).toEqual(seqs(fromTurn));
        expect(all.filter((event) => event.type === 'agent_choice').map((event) => event.content)).toEqual(
          deltas,
        );
      },
    );

    test('seqs continue across instances and a restart: turn 1 on A, turn 2 on B, turn 3 on a new instance', async () => {
      const { instances, scripted, start } = await cluster(2);
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      scripted.turn([step.reply('one')]);
      scripted.turn([step.reply('two')]);
      scripted.turn([step.reply('three')]);
      const first = await readUntil(await runOn(a!.manager, session.id, { messages: ['1'] }), stopped);
      const second = await readUntil(await runOn(b!.manager, session.id, { messages: ['2'] }), stopped);
      await a!.manager.close();
      const restarted = await start();
      const third = await readUntil(await runOn(restarted.manager, session.id, { messages: ['3'] }), stopped);
      const all = [...first, ...second, ...third];
      expect(seqs(all)).toEqual(range(1, all.length));
      // Every instance replays the same log.
      for (const instance of [b!, restarted]) {
        const replayed = await readUntil(
          instance.manager.streamEvents(session.id, { since: 0 }),
          (event) => event.seq === all.length,
        );
        expect(replayed).toEqual(all);
      }
      expect((await restarted.manager.getSessionSnapshot(session.id)).lastEventSeq).toBe(all.length);
    });

    test('streamEvents with a durable log: ready rejects for an unknown session; deleting ends the subscribers with session_exited', async () => {
      const { instances, scripted } = await cluster(2);
      const [a, b] = instances;
      await expect(b!.manager.streamEvents('sess_missing').ready).rejects.toMatchObject({
        code: ErrorCode.SESSION_NOT_FOUND,
      });
      const session = await a!.manager.createSession();
      scripted.turn([step.reply('hi')]);
      const events = await readUntil(await a!.manager.runSession(session.id, { messages: ['go'] }), stopped);
      const stream = b!.manager.streamEvents(session.id, { since: events.length });
      await stream.ready;
      const reading = readUntil(stream, () => false);
      await b!.manager.deleteSession(session.id);
      expect(await reading).toEqual([
        expect.objectContaining({ type: 'session_exited', reason: 'deleted', seq: events.length + 1 }),
      ]);
    });

    test('a turn on B after one on A sees A’s history: the lease moving drops a stale cache', async () => {
      const { instances, scripted } = await cluster(2);
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      for (const text of ['one', 'two', 'three']) scripted.turn([step.reply(text)]);
      await (await runOn(b!.manager, session.id, { messages: ['1'] })).done;
      await (await runOn(a!.manager, session.id, { messages: ['2'] })).done;
      await (await runOn(b!.manager, session.id, { messages: ['3'] })).done;
      const contents = scripted.turns[2]!.messages.map((message) => message.content);
      expect(contents).toEqual(['1', 'one', '2', 'two', '3']);
    });
  });

  describe('what a lost batch, retention and batching do', () => {
    test('a batch that could not be stored is a gap on other instances, never a wrong event; the next holder numbers past it', async () => {
      const failed: number[] = [];
      let failing = false;
      const { instances, scripted } = await cluster(3, {
        wrapLog: (log, index) =>
          index !== 0
            ? log
            : {
                append: (sessionId, events) => {
                  if (!failing) return log.append(sessionId, events);
                  failed.push(...events.map((entry) => entry.seq));
                  return Promise.reject(new Error('injected: Redis went away'));
                },
                replay: (...args) => log.replay(...args),
                tail: (...args) => log.tail(...args),
                lastSeq: (sessionId) => log.lastSeq(sessionId),
              },
      });
      const [a, b, c] = instances;
      const session = await a!.manager.createSession();
      const deltas = ['lost ', 'in ', 'a ', 'crash '];
      scripted.turn([step.hold('mid'), step.reply(deltas.join(''), { deltas }), step.hold('end')]);
      scripted.turn([step.reply('next')]);
      const onB = b!.manager.streamEvents(session.id, { since: 0 });
      await onB.ready;
      const turn = await a!.manager.runSession(session.id, { messages: ['go'] });
      const local = readUntil(turn, stopped);
      await scripted.waitUntilHeld('mid');
      // Everything numbered so far (stream_started, user_message, session_title) is stored.
      const stored = (await a!.manager.getSessionSnapshot(session.id)).lastEventSeq;
      await eventually(async () => ((await a!.events.lastSeq(session.id)) === stored ? true : undefined));
      failing = true;
      scripted.release('mid');
      await scripted.waitUntilHeld('end');
      // The deltas and message_added: numbered on A, none of them stored.
      const lost = (await a!.manager.getSessionSnapshot(session.id)).lastEventSeq;
      expect(lost).toBeGreaterThan(stored + deltas.length);
      await eventually(async () => (failed.includes(lost) ? true : undefined));
      failing = false;
      scripted.release('end');
      const onA = await local;
      expect(seqs(onA)).toEqual(range(1, onA.length));
      const seen = await readUntil(onB, stopped);
      expect(seen).toEqual([
        ...onA.slice(0, stored),
        expect.objectContaining({ type: 'gap', reason: 'dropped', nextSeq: lost + 1, seq: 0 }),
        ...onA.slice(lost),
      ]);
      // A's writer lost events, so the reservation was not brought back: B numbers after it.
      const next = await readUntil(await runOn(b!.manager, session.id, { messages: ['again'] }), stopped);
      expect(next[0]!.seq).toBeGreaterThan(onA.length + 1);
      // A reader that saw a lost event on A reconnects to C with it: a gap, never another event.
      const fromLost = await readUntil(c!.manager.streamEvents(session.id, { since: stored + 2 }), stopped);
      expect(fromLost[0]).toMatchObject({ type: 'gap', reason: 'dropped', nextSeq: lost + 1 });
      expect(fromLost.slice(1)).toEqual(onA.slice(lost));
    });

    test('a since older than retention gets a gap first, then every retained event', async () => {
      const { instances, scripted } = await cluster(2, { eventLog: 'postgres', maxEvents: 10 });
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      const deltas = Array.from({ length: 30 }, (_, index) => `d${index} `);
      scripted.turn([step.reply(deltas.join(''), { deltas })]);
      const all = await readUntil(await a!.manager.runSession(session.id, { messages: ['go'] }), stopped);
      await a!.manager.waitStopped(session.id, { timeoutMs: 5000 });
      const replayed = await readUntil(b!.manager.streamEvents(session.id, { since: 1 }), stopped);
      expect(replayed[0]).toMatchObject({ type: 'gap', reason: 'dropped', nextSeq: all.length - 9 });
      expect(replayed.slice(1)).toEqual(all.slice(-10));
    });

    test('events go to the durable log in batches: far fewer appends than events', async () => {
      let appends = 0;
      const { instances, scripted } = await cluster(1, {
        wrapLog: (log) => ({
          append: (sessionId, events) => {
            appends++;
            return log.append(sessionId, events);
          },
          replay: (...args) => log.replay(...args),
          tail: (...args) => log.tail(...args),
          lastSeq: (sessionId) => log.lastSeq(sessionId),
        }),
      });
      const [a] = instances;
      const session = await a!.manager.createSession();
      const deltas = Array.from({ length: 500 }, (_, index) => `d${index} `);
      scripted.turn([step.reply(deltas.join(''), { deltas })]);
      const events = await readUntil(await a!.manager.runSession(session.id, { messages: ['go'] }), stopped);
      await a!.manager.waitStopped(session.id, { timeoutMs: 5000 });
      expect(await a!.events.lastSeq(session.id)).toBe(events.length);
      expect(appends * 10).toBeLessThan(events.length);
    });
  });

  describe('deleting and titles across instances', () => {
    test.each(['redis', 'postgres'] as const)(
      '%s log: deleteSession on B while A runs the turn: A’s turn is cancelled and its last batch lands first, subscribers on A, B and C end with session_exited, and the log keeps only a tombstone that refuses later batches',
      async (eventLog) => {
        const errors: string[] = [];
        const logger: Logger = {
          debug: () => {},
          info: () => {},
          warn: () => {},
          error: (message) => errors.push(message),
        };
        let gate: Promise<void> | undefined;
        let gated = false;
        const { instances, scripted } = await cluster(3, {
          eventLog,
          manager: { logger },
          wrapLog: (log, index) =>
            index !== 0
              ? log
              : {
                  append: async (sessionId, events) => {
                    if (gate !== undefined) {
                      gated = true;
                      await gate;
                    }
                    return log.append(sessionId, events);
                  },
                  replay: (...args) => log.replay(...args),
                  tail: (...args) => log.tail(...args),
                  lastSeq: (sessionId) => log.lastSeq(sessionId),
                  delete: (sessionId) => log.delete!(sessionId),
                },
        });
        const [a, b, c] = instances;
        const session = await a!.manager.createSession();
        scripted.turn([step.hold('running'), step.reply('never')]);
        const streams = instances.map((instance) => instance.manager.streamEvents(session.id, { since: 0 }));
        await Promise.all(streams.map((stream) => stream.ready));
        const readers = streams.map((stream) => readUntil(stream, exited));
        const turn = await a!.manager.runSession(session.id, { messages: ['go'] });
        await scripted.waitUntilHeld('running');
        const stored = (await a!.manager.getSessionSnapshot(session.id)).lastEventSeq;
        await eventually(async () => ((await a!.events.lastSeq(session.id)) === stored ? true : undefined));
        // A's next batch (the cancelled turn's last events) waits until the gate opens.
        const held = deferred();
        gate = held.promise;
        const deleting = b!.manager.deleteSession(session.id);
        expect((await turn.done).stopReason).toBe('cancelled');
        await eventually(async () => (gated ? true : undefined));
        let deleted = false;
        void deleting.then(() => {
          deleted = true;
        });
        expect(deleted).toBe(false);
        held.resolve();
        await deleting;

        for (const seen of await Promise.all(readers)) {
          const last = seen.at(-1)!;
          expect(last).toMatchObject({ type: 'session_exited', reason: 'deleted', sessionId: session.id });
          expect(seqs(seen)).toEqual(range(1, seen.length));
        }
        expect(errors).toEqual([]);
        // Only the tombstone is left; a batch numbered by any writer after it is refused.
        expect((await c!.events.replay(session.id, 0)).events).toEqual([
          expect.objectContaining({ type: 'session_exited', reason: 'deleted', seq: TOMBSTONE_SEQ }),
        ]);
        const late = {
          type: 'session_title',
          title: 'late',
          sessionId: session.id,
          seq: stored + 50,
          timestamp: '',
        };
        await expect(a!.events.append(session.id, [late as SessionEvent])).rejects.toMatchObject({
          code: ErrorCode.SESSION_BUSY,
        });
        for (const instance of instances) {
          await expect(instance.manager.streamEvents(session.id).ready).rejects.toMatchObject({
            code: ErrorCode.SESSION_NOT_FOUND,
          });
        }
      },
    );

    test('a session created again with a deleted session’s id starts from a cleared log', async () => {
      const { instances, scripted } = await cluster(2);
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      scripted.turn([step.reply('first life')]);
      await readUntil(await runOn(a!.manager, session.id, { messages: ['1'] }), stopped);
      await b!.manager.deleteSession(session.id);
      await a!.manager.createSession({ id: session.id });
      expect((await b!.manager.getSessionSnapshot(session.id)).lastEventSeq).toBe(0);
      const stream = b!.manager.streamEvents(session.id, { since: 0 });
      await stream.ready;
      scripted.turn([step.reply('second life')]);
      const events = await readUntil(await runOn(a!.manager, session.id, { messages: ['2'] }), stopped);
      expect(await readUntil(stream, stopped)).toEqual(events);
      expect(events[0]!.seq).toBe(1);
    });

    test('updateSessionTitle on B reaches subscribers on every instance as session_title, while A runs the turn and when no turn runs', async () => {
      const logged: unknown[] = [];
      const logger: Logger = {
        debug: () => {},
        info: () => {},
        warn: (...args) => logged.push(args),
        error: (...args) => logged.push(args),
      };
      const { instances, scripted } = await cluster(3, { manager: { logger } });
      const [a, b, c] = instances;
      const session = await a!.manager.createSession({ title: 'Start' });
      scripted.turn([step.hold('running'), step.reply('done')]);
      scripted.turn([step.reply('again')]);
      const onC = c!.manager.streamEvents(session.id, { since: 0 });
      await onC.ready;
      let stops = 0;
      const readingC = readUntil(onC, (event) => stopped(event) && ++stops === 2);
      const turn = await a!.manager.runSession(session.id, { messages: ['go'] });
      await scripted.waitUntilHeld('running');
      await b!.manager.updateSessionTitle(session.id, 'While running');
      scripted.release('running');
      await turn.done;
      await a!.manager.waitStopped(session.id, { timeoutMs: 5000 });
      // No turn runs anywhere: B numbers it after everything A stored.
      await b!.manager.updateSessionTitle(session.id, 'While idle');
      const second = await readUntil(await runOn(a!.manager, session.id, { messages: ['2'] }), stopped);
      const seen = await readingC;
      expect(logged).toEqual([]);
      expect(seqs(seen)).toEqual(range(1, seen.length));
      // As in one process: to the event log (not to the TurnStream), numbered by the instance
      // running the turn, or by B when none runs.
      const titles = seen.filter((event) => event.type === 'session_title');
      expect(titles.map((event) => event.title)).toEqual([
        'Start',
        'While running',
        'While idle',
        'While idle',
      ]);
      const first = seen.slice(0, seen.findIndex(stopped) + 1);
      expect(seen[first.length]).toMatchObject({ type: 'session_title', title: 'While idle' });
      expect(seen[first.length]).not.toHaveProperty('turnId');
      expect(seen.slice(first.length + 1)).toEqual(second);
      expect((await c!.manager.getSession(session.id)).title).toBe('While idle');
    });

    test('a title generated after the turn ended reaches subscribers on every instance, numbered after the turn', async () => {
      const generated = deferred<string>();
      const { instances, scripted } = await cluster(2, {
        manager: { titleGenerator: () => generated.promise },
      });
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      scripted.turn([step.reply('done')]);
      const onB = b!.manager.streamEvents(session.id, { since: 0 });
      await onB.ready;
      const turn = await a!.manager.runSession(session.id, { messages: ['name this session'] });
      const events = await readUntil(turn, stopped);
      await a!.manager.waitStopped(session.id, { timeoutMs: 5000 });
      generated.resolve('A generated title');
      const seen = await readUntil(
        onB,
        (event) => event.type === 'session_title' && event.title !== 'name this session',
      );
      expect(seen.slice(0, events.length)).toEqual(events);
      expect(seen.slice(events.length)).toEqual([
        expect.objectContaining({
          type: 'session_title',
          title: 'A generated title',
          turnId: events[0]!.turnId,
          seq: events.length + 1,
        }),
      ]);
      expect(await b!.manager.getSession(session.id)).toMatchObject({
        title: 'A generated title',
        titleSource: 'generated',
      });
    });
  });

  describe('commands across instances', () => {
    test('a confirmation raised on A is listed by a snapshot on C and approved through C', async () => {
      const { instances, scripted } = await cluster(3);
      const [a, , c] = instances;
      const session = await a!.manager.createSession();
      scripted.turn([step.authorize({ name: 'shell', arguments: { cmd: 'ls' } }), step.reply('done')]);
      const turn = await a!.manager.runSession(session.id, { messages: ['go'] });
      const events = readUntil(turn, stopped);
      const pending = await eventually(async () => {
        const snapshot = await c!.manager.getSessionSnapshot(session.id);
        return snapshot.pending.confirmations[0];
      });
      expect(pending.toolCall.name).toBe('shell');
      // C runs nothing, but A holds the session's lease.
      expect((await c!.manager.getSessionSnapshot(session.id)).streaming).toBe(true);
      await c!.manager.resumeSession(session.id, { confirmation: 'approve' });
      expect((await turn.done).stopReason).toBe('end_turn');
      await a!.manager.waitStopped(session.id, { timeoutMs: 5000 });
      expect(await c!.manager.getSessionSnapshot(session.id)).toMatchObject({
        streaming: false,
        pending: { confirmations: [], elicitations: [] },
      });
      expect(scripted.turns[0]!.decisions).toEqual([{ approved: true }]);
      expect((await events).some((event) => event.type === 'tool_call_response')).toBe(true);
    });

    test('a cancel sent to B ends the turn running on A with cancelled', async () => {
      const { instances, scripted } = await cluster(2);
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      scripted.turn([step.hold('running'), step.reply('never')]);
      const turn = await a!.manager.runSession(session.id, { messages: ['go'] });
      await scripted.waitUntilHeld('running');
      expect(await b!.manager.cancelTurn(session.id)).toBe(true);
      expect((await turn.done).stopReason).toBe('cancelled');
      // Nothing runs anywhere now: a cancel is false, as in one process.
      await eventually(async () => ((await b!.manager.cancelTurn(session.id)) ? undefined : true));
    });

    test('steer and follow-up through B reach A’s turn; a follow-up key used on A is a duplicate on B', async () => {
      const { instances, scripted } = await cluster(2);
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      scripted.turn([step.hold('running'), step.takeSteering(), step.reply('first')]);
      scripted.turn([step.reply('follow-up')]);
      const turn = await a!.manager.runSession(session.id, { messages: ['go'] });
      await scripted.waitUntilHeld('running');
      await b!.manager.steerSession(session.id, ['steer me']);
      expect(await b!.manager.followUpSession(session.id, ['later'], { idempotencyKey: 'k1' })).toEqual({
        status: 'queued',
      });
      expect(await a!.manager.followUpSession(session.id, ['later'], { idempotencyKey: 'k1' })).toEqual({
        status: 'duplicate',
      });
      scripted.release('running');
      expect((await turn.done).stopReason).toBe('end_turn');
      expect(scripted.turns[0]!.steered.map((batch) => batch.map((message) => message.content))).toEqual([
        ['steer me'],
      ]);
      expect(scripted.turns[1]!.messages.at(-1)?.content).toBe('later');
    });

    test('errors are the same as in one process: SESSION_NOT_RUNNING, NOTHING_PENDING, QUEUE_FULL, INVALID_ARGUMENT, SESSION_NOT_FOUND', async () => {
      const { instances, scripted } = await cluster(2, { manager: { steerCapacity: 1 } });
      const [a, b] = instances;
      const session = await a!.manager.createSession();
      const codeOf = (promise: Promise<unknown>) =>
        promise.then(
          () => 'resolved',
          (error: unknown) => (AgentSessionsError.isInstance(error) ? error.code : String(error)),
        );
      // Nothing runs: handled where it was asked.
      expect(await codeOf(b!.manager.steerSession(session.id, ['x']))).toBe(ErrorCode.SESSION_NOT_RUNNING);
      expect(await codeOf(b!.manager.steerSession('sess_missing', ['x']))).toBe(ErrorCode.SESSION_NOT_FOUND);
      expect(await codeOf(b!.manager.resumeSession(session.id, { confirmation: 'approve' }))).toBe(
        ErrorCode.NOTHING_PENDING,
      );
      expect(await b!.manager.cancelTurn(session.id)).toBe(false);

      scripted.turn([step.hold('running'), step.reply('done')]);
      const turn = await a!.manager.runSession(session.id, { messages: ['go'] });
      await scripted.waitUntilHeld('running');
      // While A runs: answered by A, errors rebuilt with their code.
      expect(await codeOf(b!.manager.resumeSession(session.id, { confirmation: 'approve' }))).toBe(
        ErrorCode.NOTHING_PENDING,
      );
      expect(await codeOf(b!.manager.resumeElicitation(session.id, { action: 'decline' }))).toBe(
        ErrorCode.NOTHING_PENDING,
      );
      expect(await codeOf(b!.manager.steerSession(session.id, ['one']))).toBe('resolved');
      expect(await codeOf(b!.manager.steerSession(session.id, ['two']))).toBe(ErrorCode.QUEUE_FULL);
      // Refused before anything is sent.
      expect(await codeOf(b!.manager.steerSession(session.id, []))).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(await codeOf(b!.manager.resumeSession(session.id, { confirmation: 'maybe' as 'approve' }))).toBe(
        ErrorCode.INVALID_ARGUMENT,
      );
      // The steered message no turn took runs as the next turn of the stream.
      scripted.turn([step.reply('steered turn')]);
      scripted.release('running');
      expect((await turn.done).stopReason).toBe('end_turn');
      expect(scripted.turns[1]!.messages.at(-1)?.content).toBe('one');
    });
  });
});
