// Admission's refusals and writes (see src/manager/admission.ts): everything that can be refused
// is refused before anything is written; then the model override, the agent switch and the user
// messages, in order, each rolled back if a later one fails.
import { describe, expect, test } from 'vitest';
import { type AgentSessionsError, ErrorCode, SessionBusyError } from '../../src/errors.js';
import { StaticSourceResolver } from '../../src/sources/static.js';
import { InjectedStoreError } from '../../src/testing/failing-store.js';
import { step } from '../../src/testing/scripted-runtime.js';
import { expectCode, rejection } from '../helpers/assertions.js';
import { observeUnchanged, useScriptedManagers } from '../helpers/manager.js';
import { withoutUpdatedAt } from '../helpers/sessions.js';
import { type StoreFixture, storeFixtures } from '../helpers/stores.js';

describe.each(storeFixtures())('admission writes ($name)', (fixture: StoreFixture) => {
  const { setup } = useScriptedManagers(fixture);

  describe('runSession admission', () => {
    test('runSession rejects with SESSION_NOT_FOUND for an unknown session and leaves no trace', async () => {
      const { manager, scripted } = await setup();
      const error = await rejection(manager.runSession('missing', { messages: ['hi'] }));
      expectCode(error, ErrorCode.SESSION_NOT_FOUND);
      expect(scripted.inits).toHaveLength(0);
      expect(scripted.turns).toHaveLength(0);
      // No event log was left behind for the unknown id: streaming it still says not found.
      const iterator = manager.streamEvents('missing')[Symbol.asyncIterator]();
      expectCode(await rejection(iterator.next()), ErrorCode.SESSION_NOT_FOUND);
    });

    test('runSession rejects with SESSION_BUSY (sessionId and the running turnId) while a turn runs', async () => {
      const { manager, scripted, store } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([step.hold('h'), step.reply('done')]);
      const stream = await manager.runSession(id, { messages: ['first'] });
      await scripted.waitUntilHeld('h');
      const check = await observeUnchanged(manager, store, scripted, id);
      const error = await rejection(manager.runSession(id, { messages: ['second'] }));
      expect(error).toBeInstanceOf(SessionBusyError);
      expectCode(error, ErrorCode.SESSION_BUSY);
      expect((error as SessionBusyError).sessionId).toBe(id);
      expect((error as SessionBusyError).turnId).toBe(stream.turnId);
      await check();
      scripted.release('h');
      expect((await stream.done).stopReason).toBe('end_turn');
    });

    test('runSession rejects with SOURCE_NOT_FOUND before writing anything (stored source and switch)', async () => {
      const { manager, scripted, store } = await setup({
        sources: new StaticSourceResolver({ coder: { role: 'coder' } }),
      });
      const { id } = await manager.createSession({ source: 'nope' });
      const check = await observeUnchanged(manager, store, scripted, id);
      expectCode(await rejection(manager.runSession(id, { messages: ['hi'] })), ErrorCode.SOURCE_NOT_FOUND);
      await check();
      const other = await manager.createSession({ source: 'coder' });
      const checkOther = await observeUnchanged(manager, store, scripted, other.id);
      expectCode(
        await rejection(manager.runSession(other.id, { messages: ['hi'], source: 'ghost', model: 'm' })),
        ErrorCode.SOURCE_NOT_FOUND,
      );
      await checkOther();
      expect(scripted.runtimes).toHaveLength(0);
    });

    test('runSession rejects with MODEL_SWITCHING_NOT_SUPPORTED before writing anything', async () => {
      const { manager, scripted, store } = await setup({ scripted: { modelSwitching: false } });
      const { id } = await manager.createSession();
      const check = await observeUnchanged(manager, store, scripted, id);
      expectCode(
        await rejection(manager.runSession(id, { messages: ['hi'], model: 'acme/big', agent: 'other' })),
        ErrorCode.MODEL_SWITCHING_NOT_SUPPORTED,
      );
      await check();
    });

    test.each([
      ['an empty message list', { messages: [] }],
      ['no messages', {}],
      ['a message without content', { messages: [{ role: 'user' }] }],
      ['a message with an unknown role', { messages: [{ content: 'x', role: 'robot' }] }],
      ['an empty agent', { messages: ['hi'], agent: '' }],
      ['a non-string model', { messages: ['hi'], model: 42 }],
    ])('runSession rejects %s with INVALID_ARGUMENT before writing anything', async (_, input) => {
      const { manager, scripted, store } = await setup();
      const { id } = await manager.createSession();
      const check = await observeUnchanged(manager, store, scripted, id);
      // biome-ignore lint/suspicious/noExplicitAny: invalid input on purpose
      expectCode(await rejection(manager.runSession(id, input as any)), ErrorCode.INVALID_ARGUMENT);
      await check();
    });

    test('runSession rejects an invalid session id or onDetach with INVALID_ARGUMENT', async () => {
      const { manager } = await setup();
      const { id } = await manager.createSession();
      expectCode(
        await rejection(manager.runSession('bad id!', { messages: ['hi'] })),
        ErrorCode.INVALID_ARGUMENT,
      );
      expectCode(
        // biome-ignore lint/suspicious/noExplicitAny: invalid input on purpose
        await rejection(manager.runSession(id, { messages: ['hi'] }, { onDetach: 'wander' as any })),
        ErrorCode.INVALID_ARGUMENT,
      );
    });

    test('runSession rejects with RUNTIME_FAILED before writing anything when the factory throws', async () => {
      const { manager, scripted, store } = await setup();
      const { id } = await manager.createSession();
      const check = await observeUnchanged(manager, store, scripted, id);
      const cause = new Error('no runtime today');
      scripted.failNextFactory(cause);
      const error = await rejection(manager.runSession(id, { messages: ['hi'] }));
      expectCode(error, ErrorCode.RUNTIME_FAILED);
      expect((error as AgentSessionsError).cause).toBe(cause);
      await check();
      scripted.reply('now it works');
      expect((await (await manager.runSession(id, { messages: ['again'] })).done).stopReason).toBe(
        'end_turn',
      );
    });

    test('runSession writes the model override, then the agent switch, then the user messages', async () => {
      const { manager, scripted, failingStore } = await setup({ failing: true });
      const { id } = await manager.createSession({ agent: 'main' });
      failingStore.calls.length = 0;
      scripted.reply('ok');
      const stream = await manager.runSession(id, {
        messages: ['hello'],
        model: 'acme/new',
        agent: 'planner',
      });
      const writes = failingStore.calls
        .filter((call) => call.method === 'updateSession' || call.method === 'appendItems')
        .slice(0, 3)
        .map((call) =>
          call.method === 'appendItems' ? 'messages' : Object.keys(call.args[1]).sort().join(),
        );
      expect(writes).toEqual(['agentModelOverrides,customModelsUsed', 'agent', 'messages']);
      await stream.done;
      const session = await manager.getSession(id);
      expect(session.agent).toBe('planner');
      expect(session.agentModelOverrides).toEqual({ planner: 'acme/new' });
      expect(scripted.turns[0]?.model).toBe('acme/new');
      expect(scripted.turns[0]?.agent).toBe('planner');
    });

    test.each([
      [
        'the model override',
        'updateSession',
        (args: unknown[]) => 'agentModelOverrides' in (args[1] as object),
      ],
      ['the agent switch', 'updateSession', (args: unknown[]) => 'agent' in (args[1] as object)],
      ['the user messages', 'appendItems', () => true],
    ] as const)(
      'runSession rejects with the error when writing %s fails, rolls back and releases the lock',
      async (_, method, when) => {
        const { manager, scripted, failingStore, inner } = await setup({ failing: true });
        const { id } = await manager.createSession({
          agent: 'main',
          agentModelOverrides: { main: 'old', planner: 'planner-old' },
        });
        const before = await inner.getSession(id);
        const injected = new InjectedStoreError(method);
        let failed = false;
        failingStore.failWhen(
          method,
          (args) => {
            if (failed || !when(args)) return false;
            failed = true;
            return true;
          },
          () => injected,
        );
        const error = await rejection(
          manager.runSession(id, { messages: ['hello'], model: 'acme/new', agent: 'planner' }),
        );
        expect(error).toBe(injected);
        expect(scripted.turns).toHaveLength(0);
        // The runtime was switched, then switched back to the previous model of that agent.
        expect(scripted.setModelCalls.map((call) => [call.agent, call.modelRef])).toEqual([
          ['planner', 'acme/new'],
          ['planner', 'planner-old'],
        ]);
        expect(withoutUpdatedAt(await inner.getSession(id))).toEqual(withoutUpdatedAt(before));
        expect((await manager.getSessionSnapshot(id)).streaming).toBe(false);
        // The lock is free and the manager's view was rolled back too.
        scripted.reply('ok');
        const stream = await manager.runSession(id, { messages: ['again'] });
        expect((await stream.done).stopReason).toBe('end_turn');
        expect(scripted.turns[0]?.agent).toBe('main');
        expect(scripted.turns[0]?.model).toBe('old');
        expect(scripted.turns[0]?.messages.map((message) => message.content)).toEqual(['again']);
      },
    );
  });
});
