// Several SessionManagers on one PostgresStore and one Redis (lease, durable event stream, command
// bus): events numbered once and readable from every instance, commands that reach the instance
// running the turn with the same results and errors as in one process, and caches that are never
// stale when the lease moves.
import { describe, expect, test } from 'vitest';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import type { SessionManager } from '../../src/manager/session-manager.js';
import type { RunInput, TurnStream } from '../../src/manager/types.js';
import { step } from '../../src/testing/scripted-runtime.js';
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
      await c!.manager.resumeSession(session.id, { confirmation: 'approve' });
      expect((await turn.done).stopReason).toBe('end_turn');
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
