// History stays valid for model providers (src/manager/running-turn.ts, the closing): a stored history never holds an
// assistant tool call without a later `role: 'tool'` result, however the turn ended.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { SessionEvent } from '../../src/events.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { Message, Session, ToolCall } from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { BlockingStore } from '../../src/testing/blocking-store.js';
import { ScriptedRuntime, type ScriptStep, step } from '../../src/testing/scripted-runtime.js';
import { assertHistoryValid } from '../helpers/history.js';
import { closeManager, startManager } from '../helpers/manager.js';
import { collect, storeFixtures } from '../helpers/stores.js';

const messagesOf = (session: Session): Message[] =>
  session.items.flatMap((item) => (item.kind === 'message' ? [item.message] : []));

const call = (id: string, name = 'shell'): ToolCall => ({ id, name, arguments: '{}' });

function assistantWith(...calls: ToolCall[]): ScriptStep {
  return {
    type: 'message_added',
    message: {
      id: `msg-${calls[0]?.id}`,
      role: 'assistant',
      content: '',
      toolCalls: calls,
      createdAt: new Date().toISOString(),
    },
  };
}

function toolResult(toolCallId: string, content = 'ok'): ScriptStep {
  return {
    type: 'message_added',
    message: {
      id: `res-${toolCallId}`,
      role: 'tool',
      content,
      toolCallId,
      createdAt: new Date().toISOString(),
    },
  };
}

/** The synthetic results the manager added: tool messages whose id we did not script. */
const synthetic = (session: Session) =>
  messagesOf(session).filter((message) => message.role === 'tool' && !message.id.startsWith('res-'));

describe.each(storeFixtures())('history validity ($name)', (fixture) => {
  let store: Store;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(async () => {
    ({ store, scripted, manager } = startManager(await fixture.create()));
  });

  afterEach(() => closeManager(fixture, { manager, scripted }));

  /** Checks the closing tool messages were emitted as message_added before stream_stopped. */
  function expectClosedBeforeStop(events: SessionEvent[], toolCallIds: string[]): void {
    const stopped = events.findIndex((event) => event.type === 'stream_stopped');
    expect(stopped).toBeGreaterThan(-1);
    for (const id of toolCallIds) {
      const index = events.findIndex(
        (event) =>
          event.type === 'message_added' && event.message.role === 'tool' && event.message.toolCallId === id,
      );
      expect(index, `no message_added closing ${id}`).toBeGreaterThan(-1);
      expect(index).toBeLessThan(stopped);
    }
  }

  test('a cancelled turn after an assistant message with toolCalls gets a tool message per call before stream_stopped', async () => {
    const created = await manager.createSession();
    scripted.turn([assistantWith(call('c1'), call('c2', 'read')), step.hold('tools running')]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('tools running');
    stream.cancel();
    const events = await collect(stream);
    expect((await stream.done).stopReason).toBe('cancelled');
    expectClosedBeforeStop(events, ['c1', 'c2']);
    const stored = await store.getSession(created.id);
    assertHistoryValid(stored);
    const closing = synthetic(stored);
    expect(closing.map((message) => message.toolCallId)).toEqual(['c1', 'c2']);
    for (const message of closing) {
      expect(message.content).toMatch(/did not run/);
      expect(message.content).toMatch(/cancelled/);
    }
    // The stored history and the events agree: the closing messages are the last items.
    expect(messagesOf(stored).slice(-2)).toEqual(closing);
  });

  test('an errored turn closes only the calls without a result', async () => {
    const created = await manager.createSession();
    scripted.turn(new Error('model crashed'), {
      before: [assistantWith(call('c1'), call('c2')), toolResult('c1')],
    });
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    const events = await collect(stream);
    expect((await stream.done).stopReason).toBe('error');
    expectClosedBeforeStop(events, ['c2']);
    const stored = await store.getSession(created.id);
    assertHistoryValid(stored);
    expect(synthetic(stored).map((message) => message.toolCallId)).toEqual(['c2']);
    expect(synthetic(stored)[0]?.content).toMatch(/failed/);
    // c1 has exactly its own result.
    expect(messagesOf(stored).filter((message) => message.toolCallId === 'c1')).toHaveLength(1);
  });

  test('a turn that ends normally (end_turn) with an unanswered tool call is closed as well', async () => {
    const created = await manager.createSession();
    scripted.turn([assistantWith(call('c1'))]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    const events = await collect(stream);
    expect((await stream.done).stopReason).toBe('end_turn');
    expectClosedBeforeStop(events, ['c1']);
    const stored = await store.getSession(created.id);
    assertHistoryValid(stored);
    expect(synthetic(stored)).toHaveLength(1);
  });

  test('a turn ending with turn_end max_tokens after a tool call is closed before stream_stopped', async () => {
    const created = await manager.createSession();
    scripted.turn([assistantWith(call('c1')), { type: 'turn_end', reason: 'max_tokens' }]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    const events = await collect(stream);
    expect((await stream.done).stopReason).toBe('max_tokens');
    expectClosedBeforeStop(events, ['c1']);
    assertHistoryValid(await store.getSession(created.id));
  });

  test('an invalid runtime event after a tool call ends the turn with error and closes the call', async () => {
    const created = await manager.createSession();
    scripted.turn([assistantWith(call('c1')), step.raw({ type: 'tool_call_response', toolCallId: 5 })]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    const events = await collect(stream);
    expect((await stream.done).stopReason).toBe('error');
    expectClosedBeforeStop(events, ['c1']);
    assertHistoryValid(await store.getSession(created.id));
  });

  test('a turn cancelled while its tool call waits for confirmation closes that call', async () => {
    const created = await manager.createSession({ safetyPolicy: 'strict' });
    scripted.turn([step.authorize({ id: 'c1', name: 'shell' })]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    const events: SessionEvent[] = [];
    for await (const event of stream) {
      events.push(event);
      if (event.type === 'tool_call_confirmation') await manager.cancelTurn(created.id);
    }
    expect((await stream.done).stopReason).toBe('cancelled');
    expectClosedBeforeStop(events, ['c1']);
    assertHistoryValid(await store.getSession(created.id));
  });

  test('calls that got results get no extra message', async () => {
    const created = await manager.createSession({ safetyPolicy: 'autonomous' });
    scripted.turn([
      step.authorize({ id: 'c1', name: 'shell' }),
      step.authorize({ id: 'c2', name: 'read' }),
      step.reply('done'),
    ]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await collect(stream);
    const stored = await store.getSession(created.id);
    assertHistoryValid(stored);
    const tools = messagesOf(stored).filter((message) => message.role === 'tool');
    expect(tools.map((message) => message.content)).toEqual(['ok', 'ok']);
  });

  test('a cancelled turn whose calls all got results gets no extra message', async () => {
    const created = await manager.createSession();
    scripted.turn([assistantWith(call('c1')), toolResult('c1'), step.hold('after')]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('after');
    stream.cancel();
    await collect(stream);
    const stored = await store.getSession(created.id);
    assertHistoryValid(stored);
    expect(synthetic(stored)).toEqual([]);
  });

  test('the closing messages are persisted: history is valid after the store is reopened', async () => {
    const created = await manager.createSession();
    scripted.turn([assistantWith(call('c1')), step.hold('h')]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    stream.cancel();
    await collect(stream);
    await manager.close();
    store = await fixture.reopen(store);
    manager = new SessionManager({ runtime: scripted.factory, store });
    assertHistoryValid(await store.getSession(created.id));
  });
});

describe('history validity with a write in flight (BlockingStore)', () => {
  let blocking: BlockingStore;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;
  const fixtures = storeFixtures();

  afterEach(async () => {
    blocking.releaseAll();
    await manager.close();
    for (const fixture of fixtures) await fixture.cleanup();
    scripted.assertConsumed();
  });

  test.each(fixtures)(
    'a cancel while the assistant tool-call message is being stored still closes the call ($name)',
    async (fixture) => {
      blocking = new BlockingStore(await fixture.create());
      scripted = new ScriptedRuntime();
      manager = new SessionManager({ runtime: scripted.factory, store: blocking });
      const created = await manager.createSession();
      scripted.turn([step.hold('before'), assistantWith(call('c1')), step.hold('after')]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('before');
      blocking.block('appendItems');
      scripted.release('before');
      await blocking.waitForBlocked('appendItems');
      stream.cancel();
      blocking.release('appendItems');
      await collect(stream);
      expect((await stream.done).stopReason).toBe('cancelled');
      const stored = await blocking.getSession(created.id);
      expect(messagesOf(stored).some((message) => message.toolCalls?.[0]?.id === 'c1')).toBe(true);
      assertHistoryValid(stored);
    },
  );

  test.each(fixtures)(
    'a cancel while a tool result is being stored adds no second result for that call ($name)',
    async (fixture) => {
      blocking = new BlockingStore(await fixture.create());
      scripted = new ScriptedRuntime();
      manager = new SessionManager({ runtime: scripted.factory, store: blocking });
      const created = await manager.createSession();
      scripted.turn([assistantWith(call('c1')), step.hold('before'), toolResult('c1'), step.hold('after')]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('before');
      blocking.block('appendItems');
      scripted.release('before');
      await blocking.waitForBlocked('appendItems');
      stream.cancel();
      blocking.release('appendItems');
      await collect(stream);
      const stored = await blocking.getSession(created.id);
      assertHistoryValid(stored);
      expect(messagesOf(stored).filter((message) => message.toolCallId === 'c1')).toHaveLength(1);
    },
  );
});
