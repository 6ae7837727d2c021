// Steering (steerSession; TurnContext.takeSteering in src/runtime.ts): messages for the running turn,
// drained by the runtime at safe points; those never taken run as the next turn, never lost.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { SessionManager } from '../../../src/manager/session-manager.js';
import type { Message } from '../../../src/schemas.js';
import type { Store } from '../../../src/store.js';
import { type ScriptedRuntime, step } from '../../../src/testing/scripted-runtime.js';
import { expectRejectsWithCode } from '../../helpers/assertions.js';
import { messageContents, outline } from '../../helpers/history.js';
import { closeManager, startManager } from '../../helpers/manager.js';
import { collect, storeFixtures } from '../../helpers/stores.js';

describe.each(storeFixtures())('steering ($name)', (fixture) => {
  let store: Store;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(async () => {
    ({ store, scripted, manager } = startManager(await fixture.create(), { steerCapacity: 2 }));
  });

  afterEach(() => closeManager(fixture, { manager, scripted }));

  test('steerSession queues for the running turn; takeSteering drains it, persists each message and emits user_message', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('h'), step.takeSteering(), step.reply('ok')]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    await manager.steerSession(created.id, ['also this', { content: 'and that', id: 'steer-2' }]);
    const queued = (await manager.getSessionSnapshot(created.id)).queues.steer;
    expect(queued.map((message) => message.content)).toEqual(['also this', 'and that']);
    scripted.release('h');
    const events = await collect(stream);
    expect((await stream.done).stopReason).toBe('end_turn');

    const taken = scripted.turns[0]?.steered ?? [];
    expect(taken).toHaveLength(1);
    expect(taken[0]?.map((message: Message) => [message.role, message.content])).toEqual([
      ['user', 'also this'],
      ['user', 'and that'],
    ]);
    expect(taken[0]?.[1]?.id).toBe('steer-2');
    // Emitted in the running turn, before the runtime's next event.
    expect(outline(events)).toEqual([
      `start ${stream.turnId}`,
      `user ${stream.turnId} go`,
      `user ${stream.turnId} also this`,
      `user ${stream.turnId} and that`,
      `stop ${stream.turnId} end_turn`,
    ]);
    const takenAt = events.findIndex((event) => event.type === 'custom' && event.name === 'steering_taken');
    const lastSteer = events.findIndex(
      (event) => event.type === 'user_message' && event.message.content === 'and that',
    );
    expect(lastSteer).toBeLessThan(takenAt);
    expect(messageContents(await store.getSession(created.id))).toEqual([
      'user:go',
      'user:also this',
      'user:and that',
      'assistant:ok',
    ]);
    // Taken messages are not run again.
    expect(scripted.turns).toHaveLength(1);
    expect((await manager.getSessionSnapshot(created.id)).queues.steer).toEqual([]);
  });

  test('takeSteering returns nothing while a tool call of the turn has no result, and the messages wait for the result', async () => {
    const created = await manager.createSession();
    const call = { id: 'call-1', name: 'shell', arguments: '{}' };
    const at = () => new Date().toISOString();
    scripted.turn([
      {
        type: 'message_added',
        message: { id: 'a1', role: 'assistant', content: '', toolCalls: [call], createdAt: at() },
      },
      step.hold('between'),
      step.takeSteering(),
      {
        type: 'message_added',
        message: { id: 't1', role: 'tool', toolCallId: 'call-1', content: 'done', createdAt: at() },
      },
      step.takeSteering(),
      step.reply('ok'),
    ]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('between');
    await manager.steerSession(created.id, ['wait for the tool']);
    scripted.release('between');
    await collect(stream);
    expect(scripted.turns[0]?.steered.map((taken) => taken.map((message) => message.content))).toEqual([
      [],
      ['wait for the tool'],
    ]);
    const session = await manager.getSession(created.id);
    expect(messageContents(session)).toEqual([
      'user:go',
      'assistant:',
      'tool:done',
      'user:wait for the tool',
      'assistant:ok',
    ]);
  });

  test('steerSession past steerCapacity rejects with QUEUE_FULL and changes nothing queued', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('h'), step.takeSteering()]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    await manager.steerSession(created.id, ['one']);
    await expectRejectsWithCode(manager.steerSession(created.id, ['two', 'three']), 'QUEUE_FULL');
    expect((await manager.getSessionSnapshot(created.id)).queues.steer.map((m) => m.content)).toEqual([
      'one',
    ]);
    await manager.steerSession(created.id, ['two']);
    await expectRejectsWithCode(manager.steerSession(created.id, ['three']), 'QUEUE_FULL');
    expect((await manager.getSessionSnapshot(created.id)).queues.steer.map((m) => m.content)).toEqual([
      'one',
      'two',
    ]);
    scripted.release('h');
    await collect(stream);
    expect(scripted.turns[0]?.steered[0]?.map((message) => message.content)).toEqual(['one', 'two']);
    expect(messageContents(await store.getSession(created.id))).toEqual(['user:go', 'user:one', 'user:two']);
  });

  test('steerSession rejects with SESSION_NOT_RUNNING when no turn runs', async () => {
    const created = await manager.createSession();
    await expectRejectsWithCode(manager.steerSession(created.id, ['hello']), 'SESSION_NOT_RUNNING');
    expect(messageContents(await store.getSession(created.id))).toEqual([]);
  });

  test('steerSession rejects with SESSION_NOT_FOUND for an unknown session', async () => {
    await expectRejectsWithCode(manager.steerSession('nobody', ['hello']), 'SESSION_NOT_FOUND');
  });

  test('steerSession rejects an empty list with INVALID_ARGUMENT, even while a turn runs', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('h')]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    await expectRejectsWithCode(manager.steerSession(created.id, []), 'INVALID_ARGUMENT');
    expect((await manager.getSessionSnapshot(created.id)).queues.steer).toEqual([]);
    scripted.release('h');
    await collect(stream);
    expect(scripted.turns).toHaveLength(1);
  });

  test('steered messages never taken run as the next turn in the same TurnStream, before queued follow-ups', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('first'), step.reply('first answer')]);
    scripted.turn([step.hold('second'), step.reply('steer answer')]);
    scripted.reply('follow-up answer');
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    let doneSettled = false;
    void stream.done.then(() => {
      doneSettled = true;
    });
    await scripted.waitUntilHeld('first');
    expect(await manager.followUpSession(created.id, ['later'])).toEqual({ status: 'queued' });
    await manager.steerSession(created.id, ['steer a', 'steer b']);
    scripted.release('first');

    const second = await scripted.waitUntilHeld('second');
    await store.getSession(created.id);
    expect(doneSettled).toBe(false);
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(true);
    scripted.release('second');

    const events = await collect(stream);
    const result = await stream.done;
    expect(result).toEqual({ stopReason: 'end_turn', discarded: [] });
    const turnIds = scripted.turns.map((turn) => turn.turnId);
    expect(turnIds).toHaveLength(3);
    expect(turnIds[0]).toBe(stream.turnId);
    expect(turnIds[1]).toBe(second.turnId);
    expect(new Set(turnIds).size).toBe(3);
    const [t1, t2, t3] = turnIds;
    expect(outline(events)).toEqual([
      `start ${t1}`,
      `user ${t1} go`,
      `stop ${t1} end_turn`,
      `start ${t2}`,
      `user ${t2} steer a`,
      `user ${t2} steer b`,
      `stop ${t2} end_turn`,
      `start ${t3}`,
      `user ${t3} later`,
      `stop ${t3} end_turn`,
    ]);
    // The steered turn's runtime saw its messages as the latest history.
    expect(scripted.turns[1]?.messages.slice(-2).map((message) => message.content)).toEqual([
      'steer a',
      'steer b',
    ]);
    expect(messageContents(await store.getSession(created.id))).toEqual([
      'user:go',
      'assistant:first answer',
      'user:steer a',
      'user:steer b',
      'assistant:steer answer',
      'user:later',
      'assistant:follow-up answer',
    ]);
  });

  test('cancel drops untaken steering into done.discarded and never persists it', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('h'), step.takeSteering(), step.hold('h2')]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    await manager.steerSession(created.id, ['taken']);
    scripted.release('h');
    await scripted.waitUntilHeld('h2');
    await manager.steerSession(created.id, ['dropped 1', 'dropped 2']);
    expect(await manager.cancelTurn(created.id)).toBe(true);
    await collect(stream);
    const result = await stream.done;
    expect(result.stopReason).toBe('cancelled');
    expect(result.discarded.map((message) => message.content)).toEqual(['dropped 1', 'dropped 2']);
    expect(scripted.turns).toHaveLength(1);
    expect(messageContents(await store.getSession(created.id))).toEqual(['user:go', 'user:taken']);
    expect((await manager.getSessionSnapshot(created.id)).queues.steer).toEqual([]);
  });
});
