// Follow-ups (followUpSession, docs/contract.md): queued behind the running turn, or started at once when
// idle; idempotency keys; capacity; discard on cancel; keys and queues die with the session.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { SessionManager } from '../../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../../src/manager/types.js';
import { BlockingStore } from '../../../src/testing/blocking-store.js';
import { FailingStore } from '../../../src/testing/failing-store.js';
import { ScriptedRuntime, step } from '../../../src/testing/scripted-runtime.js';
import { expectRejectsWithCode } from '../../helpers/assertions.js';
import { logUntil, messageContents, outline } from '../../helpers/history.js';
import { closeManager } from '../../helpers/manager.js';
import { collect, type StoreFixture, storeFixtures } from '../../helpers/stores.js';

describe.each(storeFixtures())('followUpSession ($name)', (fixture: StoreFixture) => {
  let store: FailingStore;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  let blocking: BlockingStore | undefined;

  async function setup(options: Partial<SessionManagerOptions> = {}, withBlocking = false) {
    store = new FailingStore(await fixture.create());
    scripted = new ScriptedRuntime();
    blocking = withBlocking ? new BlockingStore(store) : undefined;
    manager = new SessionManager({ runtime: scripted.factory, store: blocking ?? store, ...options });
  }

  beforeEach(async () => {
    await setup();
  });

  afterEach(async () => {
    blocking?.releaseAll();
    store.reset();
    await closeManager(fixture, { manager, scripted });
  });

  /** Waits until the session's running turns have all ended and the busy lock is free. */
  const stopped = (id: string) => manager.waitStopped(id, { timeoutMs: 10_000 });

  test('followUpSession while a turn runs returns queued; each runs as its own turn, in order, in the same TurnStream and the event log', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('first'), step.reply('a0')]);
    scripted.reply('a1').reply('a2');
    const stream = await manager.runSession(created.id, { messages: ['q0'] });
    await scripted.waitUntilHeld('first');
    expect(await manager.followUpSession(created.id, ['q1'])).toEqual({ status: 'queued' });
    expect(await manager.followUpSession(created.id, ['q2a', 'q2b'])).toEqual({ status: 'queued' });
    expect(
      (await manager.getSessionSnapshot(created.id)).queues.followUp.map((m) => m.map((x) => x.content)),
    ).toEqual([['q1'], ['q2a', 'q2b']]);
    // Not persisted while queued.
    expect(messageContents(await store.getSession(created.id))).toEqual(['user:q0']);
    scripted.release('first');
    const events = await collect(stream);
    expect(await stream.done).toEqual({ stopReason: 'end_turn', discarded: [] });
    const [t0, t1, t2] = scripted.turns.map((turn) => turn.turnId);
    expect(scripted.turns).toHaveLength(3);
    expect(outline(events)).toEqual([
      `start ${t0}`,
      `user ${t0} q0`,
      `stop ${t0} end_turn`,
      `start ${t1}`,
      `user ${t1} q1`,
      `stop ${t1} end_turn`,
      `start ${t2}`,
      `user ${t2} q2a`,
      `user ${t2} q2b`,
      `stop ${t2} end_turn`,
    ]);
    const logged = await logUntil(
      manager,
      created.id,
      (event) => event.type === 'stream_stopped' && event.turnId === t2,
    );
    expect(outline(logged)).toEqual(outline(events));
    expect(messageContents(await store.getSession(created.id))).toEqual([
      'user:q0',
      'assistant:a0',
      'user:q1',
      'assistant:a1',
      'user:q2a',
      'user:q2b',
      'assistant:a2',
    ]);
  });

  test('the TurnStream done settles only after the last queued follow-up', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('first'), step.reply('a0')]);
    scripted.turn([step.hold('follow-up'), step.reply('a1')]);
    const stream = await manager.runSession(created.id, { messages: ['q0'] }, { onDetach: 'continue' });
    let doneSettled = false;
    void stream.done.then(() => {
      doneSettled = true;
    });
    await scripted.waitUntilHeld('first');
    expect(await manager.followUpSession(created.id, ['q1'])).toEqual({ status: 'queued' });
    scripted.release('first');
    await scripted.waitUntilHeld('follow-up');
    await store.getSession(created.id);
    expect(doneSettled).toBe(false);
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(true);
    scripted.release('follow-up');
    expect(await stream.done).toEqual({ stopReason: 'end_turn', discarded: [] });
    expect(scripted.turns).toHaveLength(2);
  });

  test('followUpSession past followUpCapacity rejects with QUEUE_FULL and changes nothing queued', async () => {
    await manager.close();
    await setup({ followUpCapacity: 2 });
    const created = await manager.createSession();
    scripted.turn([step.hold('h')]);
    scripted.reply('1').reply('2');
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    await manager.followUpSession(created.id, ['one']);
    await manager.followUpSession(created.id, ['two']);
    await expectRejectsWithCode(manager.followUpSession(created.id, ['three']), 'QUEUE_FULL');
    expect((await manager.getSessionSnapshot(created.id)).queues.followUp).toHaveLength(2);
    scripted.release('h');
    await collect(stream);
    expect(messageContents(await store.getSession(created.id))).toEqual([
      'user:go',
      'user:one',
      'assistant:1',
      'user:two',
      'assistant:2',
    ]);
  });

  test('followUpSession when idle returns started; the turn runs at once, its events go to the event log, and streaming is true until it ends', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('h'), step.reply('answer')]);
    expect(await manager.followUpSession(created.id, ['hello'])).toEqual({ status: 'started' });
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(true);
    // Persisted before it resolved.
    expect(messageContents(await store.getSession(created.id))).toEqual(['user:hello']);
    const held = await scripted.waitUntilHeld('h');
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(true);
    // A second delivery meanwhile queues behind it.
    scripted.reply('second');
    expect(await manager.followUpSession(created.id, ['again'])).toEqual({ status: 'queued' });
    scripted.release('h');
    const events = await logUntil(
      manager,
      created.id,
      (event) => event.type === 'stream_stopped' && event.turnId !== held.turnId,
    );
    await stopped(created.id);
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(false);
    const second = scripted.turns[1]?.turnId;
    expect(outline(events)).toEqual([
      `start ${held.turnId}`,
      `user ${held.turnId} hello`,
      `stop ${held.turnId} end_turn`,
      `start ${second}`,
      `user ${second} again`,
      `stop ${second} end_turn`,
    ]);
    expect(messageContents(await store.getSession(created.id))).toEqual([
      'user:hello',
      'assistant:answer',
      'user:again',
      'assistant:second',
    ]);
  });

  test('followUpSession rejects an empty list with INVALID_ARGUMENT and an unknown session with SESSION_NOT_FOUND', async () => {
    const created = await manager.createSession();
    await expectRejectsWithCode(manager.followUpSession(created.id, []), 'INVALID_ARGUMENT');
    await expectRejectsWithCode(manager.followUpSession('nobody', ['hi']), 'SESSION_NOT_FOUND');
    expect(messageContents(await store.getSession(created.id))).toEqual([]);
  });

  test('steering and follow-ups sent while runSession is being admitted still run when that admission is refused', async () => {
    await manager.close();
    await setup({}, true);
    const gate = blocking as BlockingStore;
    const created = await manager.createSession();
    gate.block('appendItems');
    const running = manager.runSession(created.id, { messages: ['refused'] });
    await gate.waitForBlocked('appendItems');
    await manager.steerSession(created.id, ['steered']);
    expect(await manager.followUpSession(created.id, ['follow 1'], { idempotencyKey: 'k1' })).toEqual({
      status: 'queued',
    });
    expect(await manager.followUpSession(created.id, ['follow 2'])).toEqual({ status: 'queued' });
    gate.rejectBlocked('appendItems', new Error('disk full'));
    gate.unblock('appendItems');
    scripted.reply('a-steered').reply('a-1').reply('a-2');
    await expect(running).rejects.toThrow('disk full');
    const events = await logUntil(
      manager,
      created.id,
      (event) => event.type === 'user_message' && event.message.content === 'follow 2',
    );
    expect(
      events.filter((event) => event.type === 'user_message').map((event) => event.message.content),
    ).toEqual(['steered', 'follow 1', 'follow 2']);
    await stopped(created.id);
    expect(messageContents(await store.getSession(created.id))).toEqual([
      'user:steered',
      'assistant:a-steered',
      'user:follow 1',
      'assistant:a-1',
      'user:follow 2',
      'assistant:a-2',
    ]);
    // The key was delivered: a repeat is a duplicate.
    expect(await manager.followUpSession(created.id, ['follow 1'], { idempotencyKey: 'k1' })).toEqual({
      status: 'duplicate',
    });
  });

  test('follow-ups and steering sent while a cancelled turn winds down go to done.discarded, never stay queued, and free their keys', async () => {
    await manager.close();
    await setup({}, true);
    const gate = blocking as BlockingStore;
    const created = await manager.createSession();
    scripted.turn([
      {
        type: 'message_added',
        message: {
          id: 'assistant-1',
          role: 'assistant',
          content: '',
          toolCalls: [{ id: 'c1', name: 'shell', arguments: '{}' }],
          createdAt: new Date().toISOString(),
        },
      },
      step.hold('h'),
    ]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    // The cancelled turn closes its open tool call in the store: hold that write to keep it winding down.
    gate.block('appendItems');
    stream.cancel();
    await gate.waitForBlocked('appendItems');
    expect(await manager.followUpSession(created.id, ['late follow-up'], { idempotencyKey: 'k' })).toEqual({
      status: 'queued',
    });
    await manager.steerSession(created.id, ['late steer']);
    gate.release('appendItems');
    const result = await stream.done;
    expect(result.stopReason).toBe('cancelled');
    expect(result.discarded.map((message) => message.content).sort()).toEqual([
      'late follow-up',
      'late steer',
    ]);
    await stopped(created.id);
    const snapshot = await manager.getSessionSnapshot(created.id);
    expect(snapshot.queues).toEqual({ steer: [], followUp: [] });
    expect(snapshot.streaming).toBe(false);
    expect(messageContents(snapshot.session)).not.toContain('user:late follow-up');
    scripted.reply('now');
    expect(await manager.followUpSession(created.id, ['late follow-up'], { idempotencyKey: 'k' })).toEqual({
      status: 'started',
    });
    await stopped(created.id);
    expect(scripted.turns.at(-1)?.messages.at(-1)?.content).toBe('late follow-up');
  });

  describe('idempotency keys', () => {
    test('a repeated key while queued returns duplicate and delivers nothing', async () => {
      const created = await manager.createSession();
      scripted.turn([step.hold('h')]);
      scripted.reply('once');
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'queued',
      });
      expect(await manager.followUpSession(created.id, ['x again'], { idempotencyKey: 'k' })).toEqual({
        status: 'duplicate',
      });
      expect((await manager.getSessionSnapshot(created.id)).queues.followUp).toHaveLength(1);
      scripted.release('h');
      await collect(stream);
      expect(messageContents(await store.getSession(created.id))).toEqual([
        'user:go',
        'user:x',
        'assistant:once',
      ]);
    });

    test('a repeated key after its turn ran returns duplicate and starts nothing', async () => {
      const created = await manager.createSession();
      scripted.reply('once');
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'started',
      });
      await stopped(created.id);
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'duplicate',
      });
      expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(false);
      expect(scripted.turns).toHaveLength(1);
      expect(messageContents(await store.getSession(created.id))).toEqual(['user:x', 'assistant:once']);
    });

    test('only the last idempotencyKeys keys are remembered: the oldest is evicted and delivers again', async () => {
      await manager.close();
      await setup({ idempotencyKeys: 2 });
      const created = await manager.createSession();
      for (const key of ['k1', 'k2', 'k3']) {
        scripted.reply(`a-${key}`);
        expect(await manager.followUpSession(created.id, [key], { idempotencyKey: key })).toEqual({
          status: 'started',
        });
        await stopped(created.id);
      }
      expect(await manager.followUpSession(created.id, ['k3'], { idempotencyKey: 'k3' })).toEqual({
        status: 'duplicate',
      });
      expect(await manager.followUpSession(created.id, ['k2'], { idempotencyKey: 'k2' })).toEqual({
        status: 'duplicate',
      });
      scripted.reply('a-k1 again');
      expect(await manager.followUpSession(created.id, ['k1'], { idempotencyKey: 'k1' })).toEqual({
        status: 'started',
      });
      await stopped(created.id);
      expect(scripted.turns).toHaveLength(4);
    });

    test('a delivery refused with QUEUE_FULL releases its key, so a retry is not a duplicate', async () => {
      await manager.close();
      await setup({ followUpCapacity: 1 });
      const created = await manager.createSession();
      scripted.turn([step.hold('h')]);
      scripted.reply('filler').reply('retried');
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      await manager.followUpSession(created.id, ['filler']);
      await expectRejectsWithCode(
        manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' }),
        'QUEUE_FULL',
      );
      await expectRejectsWithCode(
        manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' }),
        'QUEUE_FULL',
      );
      scripted.release('h');
      await collect(stream);
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'started',
      });
      await stopped(created.id);
      expect(messageContents(await store.getSession(created.id)).slice(-2)).toEqual([
        'user:x',
        'assistant:retried',
      ]);
    });

    test('a started delivery whose messages cannot be stored rejects and releases its key', async () => {
      const created = await manager.createSession();
      store.failNext('appendItems');
      await expectRejectsWithCode(
        manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' }),
        'STORE_UNAVAILABLE',
      );
      expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(false);
      scripted.reply('stored now');
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'started',
      });
      await stopped(created.id);
      expect(messageContents(await store.getSession(created.id))).toEqual(['user:x', 'assistant:stored now']);
    });

    test('a queued delivery whose turn fails to store its messages releases its key; the stream goes on', async () => {
      const created = await manager.createSession();
      scripted.turn([step.hold('h')]);
      scripted.reply('after the failure');
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      let failed = false;
      store.failWhen('appendItems', ([, items]) => {
        const hit = !failed && items.some((item) => item.kind === 'message' && item.message.content === 'x');
        if (hit) failed = true;
        return hit;
      });
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'queued',
      });
      expect(await manager.followUpSession(created.id, ['y'])).toEqual({ status: 'queued' });
      scripted.release('h');
      const events = await collect(stream);
      expect(failed).toBe(true);
      const stops = events.filter((event) => event.type === 'stream_stopped').map((event) => event.reason);
      expect(stops).toEqual(['end_turn', 'error', 'end_turn']);
      expect(messageContents(await store.getSession(created.id))).toEqual([
        'user:go',
        'user:y',
        'assistant:after the failure',
      ]);
      scripted.reply('retried');
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'started',
      });
      await stopped(created.id);
      expect(messageContents(await store.getSession(created.id)).slice(-2)).toEqual([
        'user:x',
        'assistant:retried',
      ]);
    });

    test('50 concurrent calls with one key on an idle session deliver exactly once', async () => {
      const created = await manager.createSession();
      scripted.reply('once');
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          manager.followUpSession(created.id, ['x'], { idempotencyKey: 'same' }),
        ),
      );
      expect(results.filter((result) => result.status === 'started')).toHaveLength(1);
      expect(results.filter((result) => result.status === 'duplicate')).toHaveLength(49);
      await stopped(created.id);
      expect(scripted.turns).toHaveLength(1);
      expect(messageContents(await store.getSession(created.id))).toEqual(['user:x', 'assistant:once']);
    });

    test('50 concurrent calls with one key while a turn runs queue exactly once', async () => {
      const created = await manager.createSession();
      scripted.turn([step.hold('h')]);
      scripted.reply('once');
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          manager.followUpSession(created.id, ['x'], { idempotencyKey: 'same' }),
        ),
      );
      expect(results.filter((result) => result.status === 'queued')).toHaveLength(1);
      expect(results.filter((result) => result.status === 'duplicate')).toHaveLength(49);
      scripted.release('h');
      await collect(stream);
      expect(messageContents(await store.getSession(created.id))).toEqual([
        'user:go',
        'user:x',
        'assistant:once',
      ]);
    });

    test('cancel discards queued follow-ups into done.discarded, never stores them, and releases their keys', async () => {
      const created = await manager.createSession();
      scripted.turn([step.hold('h')]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      await manager.followUpSession(created.id, ['a'], { idempotencyKey: 'ka' });
      await manager.followUpSession(created.id, ['b1', 'b2'], { idempotencyKey: 'kb' });
      stream.cancel();
      await collect(stream);
      const result = await stream.done;
      expect(result.stopReason).toBe('cancelled');
      expect(result.discarded.map((message) => message.content)).toEqual(['a', 'b1', 'b2']);
      expect(messageContents(await store.getSession(created.id))).toEqual(['user:go']);
      expect(scripted.turns).toHaveLength(1);
      scripted.reply('redelivered');
      expect(await manager.followUpSession(created.id, ['a'], { idempotencyKey: 'ka' })).toEqual({
        status: 'started',
      });
      await stopped(created.id);
      expect(messageContents(await store.getSession(created.id))).toEqual([
        'user:go',
        'user:a',
        'assistant:redelivered',
      ]);
    });

    test('keys die with the session: delete then recreate with the same id, and the old key delivers again', async () => {
      const created = await manager.createSession({ id: 'reused' });
      scripted.reply('first life');
      expect(await manager.followUpSession(created.id, ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'started',
      });
      await stopped(created.id);
      await manager.deleteSession(created.id);
      await manager.createSession({ id: 'reused' });
      scripted.reply('second life');
      expect(await manager.followUpSession('reused', ['x'], { idempotencyKey: 'k' })).toEqual({
        status: 'started',
      });
      await stopped('reused');
      expect(messageContents(await store.getSession('reused'))).toEqual(['user:x', 'assistant:second life']);
    });

    test('queues die with the session: follow-ups queued before a delete never run in the recreated session', async () => {
      const created = await manager.createSession({ id: 'reused' });
      scripted.turn([step.hold('h')]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      await manager.followUpSession(created.id, ['queued'], { idempotencyKey: 'k' });
      await manager.deleteSession(created.id);
      const result = await stream.done;
      expect(result.stopReason).toBe('cancelled');
      expect(result.discarded.map((message) => message.content)).toEqual(['queued']);
      await manager.createSession({ id: 'reused' });
      expect((await manager.getSessionSnapshot('reused')).queues.followUp).toEqual([]);
      scripted.reply('fresh');
      expect(await manager.followUpSession('reused', ['queued'], { idempotencyKey: 'k' })).toEqual({
        status: 'started',
      });
      await stopped('reused');
      expect(scripted.turns).toHaveLength(2);
      expect(messageContents(await store.getSession('reused'))).toEqual(['user:queued', 'assistant:fresh']);
    });
  });
});
