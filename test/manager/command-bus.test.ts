// InProcessCommandBus: two managers of one process on one store and one lock, commands asked of
// the one that does not run the turn reach the one that does (the Redis bus is tested against a
// real server in test/redis/cluster.test.ts).
import { afterEach, describe, expect, test } from 'vitest';
import { InProcessCommandBus } from '../../src/command-bus.js';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import { InProcessBusyLock } from '../../src/manager/busy-lock.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';

const made: SessionManager[] = [];
const runtimes: ScriptedRuntime[] = [];
afterEach(async () => {
  for (const manager of made.splice(0)) await manager.close();
  for (const scripted of runtimes.splice(0)) scripted.assertConsumed();
});

function pair() {
  const store = new MemoryStore();
  const busyLock = new InProcessBusyLock();
  const commandBus = new InProcessCommandBus();
  const scripted = new ScriptedRuntime();
  runtimes.push(scripted);
  const [a, b] = [0, 1].map(
    () => new SessionManager({ runtime: scripted.factory, store, busyLock, commandBus }),
  ) as [SessionManager, SessionManager];
  made.push(a, b);
  return { a, b, scripted, commandBus };
}

/** Two managers (see {@link pair}) and a turn held running on A; `ended()` says whether it settled. */
async function turnHeldOnA() {
  const parts = pair();
  const session = await parts.a.createSession();
  parts.scripted.turn([step.hold('running'), step.reply('never')]);
  const turn = await parts.a.runSession(session.id, { messages: ['go'] });
  await parts.scripted.waitUntilHeld('running');
  let settled = false;
  void turn.done.then(() => {
    settled = true;
  });
  return { ...parts, session, turn, ended: () => settled };
}

describe('InProcessCommandBus', () => {
  test('send rejects with SESSION_NOT_RUNNING when no manager serves the session', async () => {
    const bus = new InProcessCommandBus();
    await expect(bus.send('s', { kind: 'cancel' })).rejects.toMatchObject({
      code: ErrorCode.SESSION_NOT_RUNNING,
    });
  });

  test('answers and errors cross as JSON, errors keep their code; a stopped server no longer answers', async () => {
    const bus = new InProcessCommandBus();
    const stop = await bus.serve('s', async (command) => {
      if (command.kind === 'fail') throw new AgentSessionsError(ErrorCode.QUEUE_FULL, 'full');
      if (command.kind === 'crash') throw new Error('boom');
      return { echoed: command.value, when: new Date(0) };
    });
    expect(await bus.send('s', { kind: 'echo', value: [1, 'two'] })).toEqual({
      echoed: [1, 'two'],
      when: '1970-01-01T00:00:00.000Z',
    });
    await expect(bus.send('s', { kind: 'fail' })).rejects.toMatchObject({
      code: ErrorCode.QUEUE_FULL,
      message: 'full',
    });
    await expect(bus.send('s', { kind: 'crash' })).rejects.toMatchObject({ code: ErrorCode.RUNTIME_FAILED });
    await stop();
    await expect(bus.send('s', { kind: 'echo' })).rejects.toMatchObject({
      code: ErrorCode.SESSION_NOT_RUNNING,
    });
  });

  test('cancel, steer and a confirmation answer asked of B reach the turn running on A', async () => {
    const { a, b, scripted } = pair();
    const session = await a.createSession();
    scripted.turn([
      step.hold('running'),
      step.takeSteering(),
      step.authorize({ name: 'shell' }),
      step.reply('ok'),
    ]);
    const turn = await a.runSession(session.id, { messages: ['go'] });
    await scripted.waitUntilHeld('running');
    await b.steerSession(session.id, ['steered']);
    scripted.release('running');
    await expect
      .poll(async () => (await b.getSessionSnapshot(session.id)).pending.confirmations.length)
      .toBe(1);
    await b.resumeSession(session.id, { confirmation: 'reject', reason: 'no' });
    expect((await turn.done).stopReason).toBe('end_turn');
    expect(scripted.turns[0]!.steered.map((batch) => batch.map((message) => message.content))).toEqual([
      ['steered'],
    ]);
    expect(scripted.turns[0]!.decisions).toEqual([{ approved: false, reason: 'no' }]);

    scripted.turn([step.hold('again'), step.reply('never')]);
    const second = await a.runSession(session.id, { messages: ['again'] });
    await scripted.waitUntilHeld('again');
    expect(await b.cancelTurn(session.id, new Error('stop it'))).toBe(true);
    expect((await second.done).stopReason).toBe('cancelled');
    expect(await b.cancelTurn(session.id)).toBe(false);
  });

  test('deleteSession on B ends the turn running on A (cancelled) before it resolves; A then knows the session is gone', async () => {
    const { a, b, session, turn, ended } = await turnHeldOnA();
    await b.deleteSession(session.id);
    expect(ended()).toBe(true);
    expect((await turn.done).stopReason).toBe('cancelled');
    await expect(a.getSession(session.id)).rejects.toMatchObject({ code: ErrorCode.SESSION_NOT_FOUND });
    await expect(a.steerSession(session.id, ['x'])).rejects.toMatchObject({
      code: ErrorCode.SESSION_NOT_FOUND,
    });
  });

  test.each([
    [
      'setSessionSafetyPolicy',
      (manager: SessionManager, id: string) => manager.setSessionSafetyPolicy(id, 'autonomous'),
    ],
    ['toggleToolApproval', (manager: SessionManager, id: string) => manager.toggleToolApproval(id)],
    [
      'updateSessionPermissions',
      (manager: SessionManager, id: string) =>
        manager.updateSessionPermissions(id, (current) => ({ ...current, allow: ['shell'] })),
    ],
  ] as const)(
    '%s on B approves the confirmation pending on A and rules A’s next tool call',
    async (_name, change) => {
      const { a, b, scripted } = pair();
      const session = await a.createSession();
      scripted.turn([
        step.authorize({ name: 'shell', arguments: { n: 1 } }),
        step.authorize({ name: 'shell', arguments: { n: 2 } }),
        step.reply('ok'),
      ]);
      const turn = await a.runSession(session.id, { messages: ['go'] });
      await expect
        .poll(async () => (await b.getSessionSnapshot(session.id)).pending.confirmations.length)
        .toBe(1);
      await change(b, session.id);
      expect((await turn.done).stopReason).toBe('end_turn');
      // The first was pending and approved by the new rule; the second never asked.
      expect(scripted.turns[0]!.decisions).toEqual([{ approved: true }, { approved: true }]);
      const events = [];
      for await (const event of a.streamEvents(session.id, { since: 0 })) {
        events.push(event);
        if (event.type === 'stream_stopped') break;
      }
      expect(events.filter((event) => event.type === 'tool_call_confirmation')).toHaveLength(1);
    },
  );

  test('an atomic permissions edit on B after a turn there reads what A stored since, not B’s cached copy', async () => {
    const { a, b, scripted } = pair();
    const session = await a.createSession();
    scripted.turn([step.reply('cached on B')]);
    await (await b.runSession(session.id, { messages: ['go'] })).done;
    await a.updateSessionPermissions(session.id, (current) => ({ ...current, allow: ['ls'] }));
    await b.updateSessionPermissions(session.id, (current) => ({ ...current, deny: ['rm'] }));
    expect((await a.getSession(session.id)).permissions).toMatchObject({ allow: ['ls'], deny: ['rm'] });
    await a.setSessionSafetyPolicy(session.id, 'autonomous');
    expect(await b.toggleToolApproval(session.id)).toBe('');
  });

  test('releaseSession on B cancels the turn running on A and waits for it, keeping the record', async () => {
    const { b, session, turn, ended } = await turnHeldOnA();
    await b.releaseSession(session.id);
    expect(ended()).toBe(true);
    expect((await turn.done).stopReason).toBe('cancelled');
    expect((await b.getSession(session.id)).id).toBe(session.id);
  });

  test('getSessionSnapshot on B says streaming while A holds the session’s lease for a turn, and not after', async () => {
    const { a, b, scripted } = pair();
    const session = await a.createSession();
    expect((await b.getSessionSnapshot(session.id)).streaming).toBe(false);
    scripted.turn([step.hold('running'), step.reply('done')]);
    const turn = await a.runSession(session.id, { messages: ['go'] });
    await scripted.waitUntilHeld('running');
    expect((await b.getSessionSnapshot(session.id)).streaming).toBe(true);
    expect((await a.getSessionSnapshot(session.id)).streaming).toBe(true);
    scripted.release('running');
    await turn.done;
    await a.waitStopped(session.id, { timeoutMs: 5000 });
    expect((await b.getSessionSnapshot(session.id)).streaming).toBe(false);
  });

  test('without a bus, a manager that does not run the turn cannot reach it (SESSION_NOT_RUNNING)', async () => {
    const store = new MemoryStore();
    const busyLock = new InProcessBusyLock();
    const scripted = new ScriptedRuntime();
    runtimes.push(scripted);
    const a = new SessionManager({ runtime: scripted.factory, store, busyLock });
    const b = new SessionManager({ runtime: scripted.factory, store, busyLock });
    made.push(a, b);
    const session = await a.createSession();
    scripted.turn([step.hold('running'), step.reply('ok')]);
    const turn = await a.runSession(session.id, { messages: ['go'] });
    await scripted.waitUntilHeld('running');
    await expect(b.steerSession(session.id, ['x'])).rejects.toMatchObject({
      code: ErrorCode.SESSION_NOT_RUNNING,
    });
    expect(await b.cancelTurn(session.id)).toBe(false);
    scripted.release('running');
    expect((await turn.done).stopReason).toBe('end_turn');
  });
});
