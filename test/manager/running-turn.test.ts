// The running turn (see src/manager/running-turn.ts): the TurnStream, cancellation, history and
// usage written as they happen, the frozen TurnContext.session, the manager's turn events, and a
// session continued by a second manager.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { TurnStream } from '../../src/manager/types.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { BlockingStore } from '../../src/testing/blocking-store.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { deferred, expectCode, rejection } from '../helpers/assertions.js';
import { types } from '../helpers/history.js';
import { observeUnchanged, useScriptedManagers } from '../helpers/manager.js';
import { withoutUpdatedAt } from '../helpers/sessions.js';
import { collect, type StoreFixture, storeFixtures } from '../helpers/stores.js';

/** The session's whole event log so far, read through streamEvents up to lastEventSeq. */
async function readLog(manager: SessionManager, id: string): Promise<SessionEvent[]> {
  const { lastEventSeq } = await manager.getSessionSnapshot(id);
  const events: SessionEvent[] = [];
  if (lastEventSeq === 0) return events;
  for await (const event of manager.streamEvents(id)) {
    events.push(event);
    if (event.seq >= lastEventSeq) break;
  }
  return events;
}

describe.each(storeFixtures())('running turn ($name)', (fixture: StoreFixture) => {
  const { setup, managers, runtimes } = useScriptedManagers(fixture);

  describe('TurnStream', () => {
    test('runSession streams stream_started, user_message, session_title, runtime events, stream_stopped with seq from 1', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.reply('Hello there', { usage: { inputTokens: 3, outputTokens: 2 } });
      const stream = await manager.runSession(id, { messages: ['Say hello'] });
      expect(stream.turnId).toMatch(/\S/);
      const events = await collect(stream);
      expect(types(events)).toEqual([
        'stream_started',
        'user_message',
        'session_title',
        'agent_choice',
        'agent_choice',
        'message_added',
        'token_usage',
        'stream_stopped',
      ]);
      expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      for (const event of events) {
        expect(event.sessionId).toBe(id);
        expect(event.turnId).toBe(stream.turnId);
        expect(Number.isNaN(Date.parse(event.timestamp))).toBe(false);
      }
      expect(events.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'end_turn' });
      expect(await stream.done).toEqual({ stopReason: 'end_turn', discarded: [] });
      expect(scripted.turns[0]?.turnId).toBe(stream.turnId);
    });

    test('runSession rejects with the reason of an already aborted signal and writes nothing', async () => {
      const { manager, scripted, store } = await setup();
      const { id } = await manager.createSession();
      const check = await observeUnchanged(manager, store, scripted, id);
      const controller = new AbortController();
      const reason = new Error('caller gave up');
      controller.abort(reason);
      expect(
        await rejection(manager.runSession(id, { messages: ['hi'] }, { signal: controller.signal })),
      ).toBe(reason);
      await check();
    });

    type Canceller = (context: {
      manager: SessionManager;
      stream: TurnStream;
      controller: AbortController;
      id: string;
    }) => Promise<void>;
    const cancellers: Array<[string, Canceller]> = [
      ['aborting the signal', async ({ controller }) => controller.abort(new Error('stop'))],
      ['stream.cancel()', async ({ stream }) => stream.cancel()],
      [
        'cancelTurn',
        async ({ manager, id }) => {
          expect(await manager.cancelTurn(id, 'enough')).toBe(true);
        },
      ],
      ['deleteSession', async ({ manager, id }) => manager.deleteSession(id)],
      ['close()', async ({ manager }) => manager.close()],
    ];
    test.each(cancellers)(
      '%s during a turn ends it cancelled and aborts the runtime signal',
      async (_, cancel) => {
        const { manager, scripted } = await setup();
        const { id } = await manager.createSession();
        scripted.turn([step.reply('partial'), step.hold('h'), step.reply('never')]);
        const controller = new AbortController();
        const stream = await manager.runSession(id, { messages: ['go'] }, { signal: controller.signal });
        const reading = collect(stream);
        await scripted.waitUntilHeld('h');
        await cancel({ manager, stream, controller, id });
        const result = await stream.done;
        expect(result).toEqual({ stopReason: 'cancelled', discarded: [] });
        const events = await reading;
        expect(events.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'cancelled' });
        expect(scripted.turns[0]?.aborted).toBe(true);
        expect(scripted.turns[0]?.signal.aborted).toBe(true);
      },
    );

    test('cancelTurn resolves to false when no turn runs', async () => {
      const { manager } = await setup();
      const { id } = await manager.createSession();
      expect(await manager.cancelTurn(id)).toBe(false);
    });

    test('breaking out of the for-await loop cancels the turn', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([{ type: 'agent_choice', content: 'a' }, step.hold('h'), step.reply('never')]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      for await (const event of stream) if (event.type === 'agent_choice') break;
      expect((await stream.done).stopReason).toBe('cancelled');
      expect(scripted.turns[0]?.aborted).toBe(true);
      expect((await manager.getSessionSnapshot(id)).streaming).toBe(false);
    });

    test("breaking out with onDetach 'continue' lets the turn complete into the event log and the store", async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([{ type: 'agent_choice', content: 'a' }, step.hold('h'), step.reply('finished')]);
      const stream = await manager.runSession(id, { messages: ['go'] }, { onDetach: 'continue' });
      for await (const event of stream) if (event.type === 'agent_choice') break;
      await scripted.waitUntilHeld('h');
      scripted.release('h');
      expect((await stream.done).stopReason).toBe('end_turn');
      expect(scripted.turns[0]?.aborted).toBe(false);
      const session = await manager.getSession(id);
      expect(session.items.map((item) => item.kind === 'message' && item.message.content)).toEqual([
        'go',
        'finished',
      ]);
      const log = await readLog(manager, id);
      expect(log.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'end_turn' });
      expect(log.some((event) => event.type === 'message_added')).toBe(true);
    });

    test('runSession can run again at once after draining a stream, 50 turns in a row (no SESSION_BUSY)', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      for (let turn = 0; turn < 50; turn++) {
        scripted.reply(`answer ${turn}`);
        const stream = await manager.runSession(id, { messages: [`question ${turn}`] });
        const events = await collect(stream);
        expect(events.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'end_turn' });
      }
      expect((await manager.getSession(id)).items).toHaveLength(100);
    });

    test('a runtime that throws ends the turn with an error event and stop reason error; the session stays usable', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      const cause = new Error('model exploded');
      scripted.turn(cause, { before: [{ type: 'agent_choice', content: 'hm' }] });
      const stream = await manager.runSession(id, { messages: ['go'] });
      const events = await collect(stream);
      expect(types(events).slice(-2)).toEqual(['error', 'stream_stopped']);
      expect(events.at(-1)).toMatchObject({ reason: 'error' });
      expect(events.at(-2)).toMatchObject({ code: ErrorCode.RUNTIME_FAILED });
      const result = await stream.done;
      expect(result.stopReason).toBe('error');
      expectCode(result.error, ErrorCode.RUNTIME_FAILED);
      expect(result.error?.cause).toBe(cause);
      scripted.reply('fine again');
      const next = await manager.runSession(id, { messages: ['retry'] });
      expect((await next.done).stopReason).toBe('end_turn');
    });

    test.each([
      ['an invalid message_added', { type: 'message_added', message: { role: 'robot', content: 'x' } }],
      ['an unknown event type', { type: 'telepathy', content: 'x' }],
      ['a delta without content', { type: 'agent_choice' }],
    ])('%s from the runtime ends the turn as a runtime error and is never stored', async (_, raw) => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([step.raw(raw), step.reply('never')]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      const events = await collect(stream);
      const result = await stream.done;
      expect(result.stopReason).toBe('error');
      expectCode(result.error, ErrorCode.RUNTIME_FAILED);
      expect(types(events)).not.toContain(raw.type);
      expect(types(events)).not.toContain('message_added');
      expect(types(events).slice(-2)).toEqual(['error', 'stream_stopped']);
      const log = await readLog(manager, id);
      expect(types(log)).not.toContain(raw.type);
      const session = await manager.getSession(id);
      expect(
        session.items.filter((item) => item.kind === 'message').map((item) => item.message.role),
      ).toEqual(['user']);
    });

    test("turn_end { reason: 'max_tokens' } ends the turn with stop reason max_tokens", async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([step.reply('truncat'), { type: 'turn_end', reason: 'max_tokens' }]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      const events = await collect(stream);
      expect(events.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'max_tokens' });
      expect((await stream.done).stopReason).toBe('max_tokens');
    });

    test('cancel ends a turn whose runtime ignores its signal; waitStopped times out until the runtime returns', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      const reached = deferred();
      const gate = deferred();
      scripted.turn(async function* () {
        yield { type: 'agent_choice', content: 'thinking' };
        reached.resolve();
        await gate.promise; // ignores ctx.signal
        yield { type: 'agent_choice', content: 'late' };
      });
      const stream = await manager.runSession(id, { messages: ['go'] });
      await reached.promise;
      stream.cancel();
      expect((await stream.done).stopReason).toBe('cancelled');
      // The lock is free even though the runtime still runs.
      expect((await manager.getSessionSnapshot(id)).streaming).toBe(false);
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const waiting = rejection(manager.waitStopped(id, { timeoutMs: 5_000 }));
      await vi.advanceTimersByTimeAsync(5_000);
      expectCode(await waiting, ErrorCode.TIMEOUT);
      const stopped = manager.waitStopped(id, { timeoutMs: 5_000 });
      gate.resolve();
      await stopped;
      const log = await readLog(manager, id);
      expect(log.map((event) => (event.type === 'agent_choice' ? event.content : ''))).not.toContain('late');
    });
  });

  describe('history and metadata', () => {
    test('runSession rejects with the reason of a signal aborted during the override write and rolls it back', async () => {
      const scripted = new ScriptedRuntime();
      runtimes.push(scripted);
      const inner = await fixture.create();
      const store = new BlockingStore(inner);
      const manager = new SessionManager({ runtime: scripted.factory, store });
      managers.push(manager);
      const { id } = await manager.createSession({ agentModelOverrides: { default: 'old' } });
      const before = await inner.getSession(id);
      const controller = new AbortController();
      store.block('updateSession');
      const running = rejection(
        manager.runSession(id, { messages: ['hi'], model: 'new' }, { signal: controller.signal }),
      );
      await store.waitForBlocked('updateSession');
      const reason = new Error('caller left');
      controller.abort(reason);
      store.release('updateSession');
      expect(await running).toBe(reason);
      expect(withoutUpdatedAt(await inner.getSession(id))).toEqual(withoutUpdatedAt(before));
      expect(scripted.setModelCalls.map((call) => call.modelRef)).toEqual(['new', 'old']);
      expect(scripted.turns).toHaveLength(0);
      expect((await manager.getSessionSnapshot(id)).lastEventSeq).toBe(0);
    });

    test('a turn that fails after a tool call was stored appends a result for it before stream_stopped', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      const toolCall = { id: 'call-1', name: 'shell', arguments: '{}' };
      scripted.turn(new Error('crashed'), {
        before: [
          {
            type: 'message_added',
            message: {
              id: 'a1',
              role: 'assistant',
              content: '',
              toolCalls: [toolCall],
              createdAt: new Date().toISOString(),
            },
          },
        ],
      });
      const events = await collect(await manager.runSession(id, { messages: ['run it'] }));
      const session = await manager.getSession(id);
      const results = session.items.flatMap((item) =>
        item.kind === 'message' && item.message.role === 'tool' ? [item.message] : [],
      );
      expect(results).toHaveLength(1);
      expect(results[0]?.toolCallId).toBe('call-1');
      const added = events.filter((event) => event.type === 'message_added');
      expect(added.at(-1)).toMatchObject({ message: { role: 'tool', toolCallId: 'call-1' } });
      expect(events.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'error' });
    });

    test('each message_added is persisted as it arrives, before the turn ends', async () => {
      const { manager, scripted, store } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([step.reply('one'), step.reply('two'), step.hold('h'), step.reply('three')]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      const during = await store.getSession(id);
      expect(during.items.map((item) => item.kind === 'message' && item.message.content)).toEqual([
        'go',
        'one',
        'two',
      ]);
      scripted.release('h');
      await stream.done;
      const after = await store.getSession(id);
      expect(after.items.map((item) => item.kind === 'message' && item.message.content)).toEqual([
        'go',
        'one',
        'two',
        'three',
      ]);
    });

    test('a message_added without id or createdAt is stored and emitted with both filled in', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([
        step.raw({ type: 'message_added', message: { role: 'assistant', content: 'no id' } }),
        step.raw({ type: 'message_added', message: { id: 'mine', role: 'assistant', content: 'kept id' } }),
      ]);
      const events = await collect(await manager.runSession(id, { messages: ['go'] }));
      const added = events.flatMap((event) => (event.type === 'message_added' ? [event.message] : []));
      expect(added).toHaveLength(2);
      expect(added[0]?.id).toMatch(/^msg_/);
      expect(Date.parse(added[0]?.createdAt ?? '')).not.toBeNaN();
      expect(added[1]?.id).toBe('mine');
      const stored = (await manager.getSession(id)).items.flatMap((item) =>
        item.kind === 'message' && item.message.role === 'assistant' ? [item.message] : [],
      );
      expect(stored).toEqual(added);
    });

    test('token_usage events are added to session.usage (cost optional)', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession({ usage: { inputTokens: 1, outputTokens: 1, cost: 0.5 } });
      scripted.turn([
        step.reply('a', { usage: { inputTokens: 10, outputTokens: 5, cost: 0.25 } }),
        step.reply('b', { usage: { inputTokens: 7, outputTokens: 3 } }),
      ]);
      await (await manager.runSession(id, { messages: ['go'] })).done;
      expect((await manager.getSession(id)).usage).toEqual({ inputTokens: 18, outputTokens: 9, cost: 0.75 });
      scripted.reply('c', { usage: { inputTokens: 2, outputTokens: 1, cost: 1 } });
      await (await manager.runSession(id, { messages: ['more'] })).done;
      expect((await manager.getSession(id)).usage).toEqual({ inputTokens: 20, outputTokens: 10, cost: 1.75 });
    });

    test('metadata edits made during a turn are not lost when the turn ends', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([step.hold('h'), step.reply('done', { usage: { inputTokens: 1, outputTokens: 1 } })]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      await manager.updateSessionTitle(id, 'My title');
      await manager.setSessionStarred(id, true);
      await manager.updateSessionPermissions(id, { allow: ['read'], ask: [], deny: ['rm'] });
      await manager.setSessionSafetyPolicy(id, 'strict');
      scripted.release('h');
      await stream.done;
      const session = await manager.getSession(id);
      expect(session).toMatchObject({
        title: 'My title',
        titleSource: 'manual',
        starred: true,
        permissions: { allow: ['read'], ask: [], deny: ['rm'] },
        safetyPolicy: 'strict',
        usage: { inputTokens: 1, outputTokens: 1, cost: 0 },
      });
    });

    test('addMessage, updateMessage and addSummary reject with SESSION_BUSY during a turn and work when idle', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      const added = await manager.addMessage(id, 'before');
      scripted.turn([step.hold('h'), step.reply('done')]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      expectCode(await rejection(manager.addMessage(id, 'x')), ErrorCode.SESSION_BUSY);
      expectCode(
        await rejection(manager.updateMessage(id, added.id, { content: 'edited' })),
        ErrorCode.SESSION_BUSY,
      );
      expectCode(
        await rejection(manager.addSummary(id, { summary: 's', firstKeptItem: 0 })),
        ErrorCode.SESSION_BUSY,
      );
      scripted.release('h');
      await stream.done;
      await manager.updateMessage(id, added.id, { content: 'edited' });
      await manager.addMessage(id, { role: 'assistant', content: 'note' });
      await manager.addSummary(id, { summary: 'short', firstKeptItem: 1 });
      const session = await manager.getSession(id);
      expect(
        session.items.map((item) => (item.kind === 'message' ? item.message.content : item.kind)),
      ).toEqual(['edited', 'go', 'done', 'note', 'summary']);
      // The next turn sees the edits (the manager's cached history follows them).
      scripted.reply('ok');
      await (await manager.runSession(id, { messages: ['next'] })).done;
      const seen = scripted.turns[1]?.session.items.map((item) =>
        item.kind === 'message' ? item.message.content : item.kind,
      );
      expect(seen).toEqual(['edited', 'go', 'done', 'note', 'summary', 'next']);
    });
  });

  describe('TurnContext.session', () => {
    test('TurnContext.session is deeply frozen, holds the turn input, and shares old items across turns', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      scripted.reply('first answer').reply('second answer');
      await (await manager.runSession(id, { messages: ['first'] })).done;
      await (await manager.runSession(id, { messages: ['second'] })).done;
      const [one, two] = scripted.turns;
      if (!one || !two) throw new Error('two turns expected');
      for (const session of [one.session, two.session]) {
        expect(Object.isFrozen(session)).toBe(true);
        expect(Object.isFrozen(session.items)).toBe(true);
        const item = session.items[0];
        expect(item?.kind).toBe('message');
        if (item?.kind === 'message') expect(Object.isFrozen(item.message)).toBe(true);
        expect(Object.isFrozen(session.usage)).toBe(true);
      }
      expect(one.messages.map((message) => message.content)).toEqual(['first']);
      expect(two.messages.map((message) => message.content)).toEqual(['first', 'first answer', 'second']);
      expect(two.session.items[0]).toBe(one.session.items[0]);
    });
  });

  describe('manager events', () => {
    test('manager.events emits session_created, turn_started, turn_ended (with stopReason) and session_deleted', async () => {
      const { manager, scripted } = await setup();
      const seen: Array<[string, unknown]> = [];
      manager.events.on('session_created', (event) => seen.push(['session_created', event.session.id]));
      manager.events.on('session_deleted', (event) => seen.push(['session_deleted', event.sessionId]));
      manager.events.on('turn_started', (event) => seen.push(['turn_started', event.turnId]));
      manager.events.on('turn_ended', (event) =>
        seen.push(['turn_ended', [event.sessionId, event.turnId, event.stopReason, event.error?.code]]),
      );
      const { id } = await manager.createSession();
      scripted.reply('ok').turn(new Error('boom'));
      const first = await manager.runSession(id, { messages: ['a'] });
      await first.done;
      const second = await manager.runSession(id, { messages: ['b'] });
      await second.done;
      await manager.deleteSession(id);
      expect(seen).toEqual([
        ['session_created', id],
        ['turn_started', first.turnId],
        ['turn_ended', [id, first.turnId, 'end_turn', undefined]],
        ['turn_started', second.turnId],
        ['turn_ended', [id, second.turnId, 'error', ErrorCode.RUNTIME_FAILED]],
        ['session_deleted', id],
      ]);
    });
  });

  describe('restart', () => {
    test('a second manager on the same store continues a session; streamEvents from an old seq starts with a reset gap', async () => {
      const scripted = new ScriptedRuntime();
      runtimes.push(scripted);
      const store = await fixture.create();
      const first = new SessionManager({ runtime: scripted.factory, store });
      const { id } = await first.createSession();
      scripted.reply('one').reply('two').reply('three');
      await collect(await first.runSession(id, { messages: ['a'] }));
      const events = await collect(await first.runSession(id, { messages: ['b'] }));
      const lastSeq = events.at(-1)?.seq ?? 0;
      const before = await first.getSession(id);
      await first.close();
      const reopened = fixture.name === 'MemoryStore' ? store : await fixture.reopen(store);
      // MemoryStore is closed by the first manager's close(); it keeps its data (a restart in-process).
      const second = new SessionManager({ runtime: scripted.factory, store: reopened });
      managers.push(second);
      expect(await second.getSession(id)).toEqual(before);
      const stream = await second.runSession(id, { messages: ['c'] });
      expect((await stream.done).stopReason).toBe('end_turn');
      expect(scripted.turns[2]?.messages.map((message) => message.content)).toEqual([
        'a',
        'one',
        'b',
        'two',
        'c',
      ]);
      const iterator = second.streamEvents(id, { since: lastSeq })[Symbol.asyncIterator]();
      const gap = await iterator.next();
      expect(gap.value).toMatchObject({ type: 'gap', reason: 'reset', seq: 0 });
      // The new process numbers after the mark the first one persisted: no seq is reused.
      expect(before.eventSeqReserved).toBeGreaterThan(lastSeq);
      expect((await iterator.next()).value).toMatchObject({
        type: 'stream_started',
        seq: (before.eventSeqReserved ?? 0) + 1,
      });
      await iterator.return?.();
    });
  });
});

describe('store first, then emit (running turn)', () => {
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  afterEach(async () => {
    await manager.close();
    scripted.assertConsumed();
  });

  /** The session's log up to now. */
  async function logged(id: string): Promise<SessionEvent[]> {
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    const events: SessionEvent[] = [];
    if (lastEventSeq === 0) return events;
    for await (const event of manager.streamEvents(id)) {
      events.push(event);
      if (event.seq >= lastEventSeq) break;
    }
    return events;
  }

  test('a steered user_message is emitted only once stored, and what the runtime yields next waits for it', async () => {
    const blocking = new BlockingStore(new MemoryStore());
    scripted = new ScriptedRuntime();
    manager = new SessionManager({ runtime: scripted.factory, store: blocking });
    const { id } = await manager.createSession();
    scripted.turn([step.hold('h'), step.takeSteering(), step.reply('ok')]);
    const stream = await manager.runSession(id, { messages: ['go'] });
    const reading = collect(stream);
    await scripted.waitUntilHeld('h');
    await manager.steerSession(id, ['steered']);
    blocking.block('appendItems');
    scripted.release('h');
    await blocking.waitForBlocked('appendItems');
    const during = await logged(id);
    expect(during.some((event) => event.type === 'user_message' && event.message.content === 'steered')).toBe(
      false,
    );
    expect(during.some((event) => event.type === 'custom')).toBe(false);
    blocking.unblock('appendItems');
    blocking.release('appendItems');
    const events = await reading;
    const steered = events.findIndex(
      (event) => event.type === 'user_message' && event.message.content === 'steered',
    );
    const taken = events.findIndex((event) => event.type === 'custom');
    expect(steered).toBeGreaterThan(-1);
    expect(steered).toBeLessThan(taken);
  });

  test('a steered message whose write fails is never emitted and ends the turn with error', async () => {
    const store = new FailingStore(new MemoryStore());
    scripted = new ScriptedRuntime();
    manager = new SessionManager({ runtime: scripted.factory, store });
    const { id } = await manager.createSession();
    scripted.turn([step.hold('h'), step.takeSteering(), step.reply('never stored')]);
    const stream = await manager.runSession(id, { messages: ['go'] });
    await scripted.waitUntilHeld('h');
    await manager.steerSession(id, ['lost write']);
    store.failNext('appendItems');
    scripted.release('h');
    const events = await collect(stream);
    expect((await stream.done).stopReason).toBe('error');
    expect(
      events.some((event) => event.type === 'user_message' && event.message.content === 'lost write'),
    ).toBe(false);
    expect(types(events).slice(-2)).toEqual(['error', 'stream_stopped']);
  });

  test('token_usage is emitted only once the new total is stored; a failed usage write is never emitted', async () => {
    const store = new FailingStore(new MemoryStore());
    scripted = new ScriptedRuntime();
    manager = new SessionManager({ runtime: scripted.factory, store });
    const { id } = await manager.createSession();
    scripted.turn([
      step.reply('one', { usage: { inputTokens: 1, outputTokens: 1 } }),
      step.reply('two', { usage: { inputTokens: 5, outputTokens: 5 } }),
    ]);
    store.failWhen('updateSession', ([, patch]) => patch.usage?.inputTokens === 6);
    const stream = await manager.runSession(id, { messages: ['go'] });
    const events = await collect(stream);
    const usage = events.flatMap((event) => (event.type === 'token_usage' ? [event.usage.inputTokens] : []));
    expect(usage).toEqual([1]);
    expect((await stream.done).stopReason).toBe('error');
    store.reset();
    expect((await manager.getSession(id)).usage.inputTokens).toBe(1);
  });
});
