// Model switching (src/manager/models.ts: setSessionModel, getAvailableModels, runSession({ model })): where the
// override is persisted, what the runtime and TurnContext see, and the rollback rules.
import { afterEach, describe, expect, test } from 'vitest';
import { type AgentSessionsError, ErrorCode } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { FailingStore, InjectedStoreError } from '../../src/testing/failing-store.js';
import { ScriptedRuntime, type ScriptedRuntimeOptions } from '../../src/testing/scripted-runtime.js';
import { expectCode, rejection } from '../helpers/assertions.js';
import { withoutUpdatedAt } from '../helpers/sessions.js';
import { type StoreFixture, storeFixtures } from '../helpers/stores.js';

describe.each(storeFixtures())('SessionManager models ($name)', (fixture: StoreFixture) => {
  const managers: SessionManager[] = [];
  const runtimes: ScriptedRuntime[] = [];

  afterEach(async () => {
    for (const manager of managers.splice(0)) await manager.close();
    await fixture.cleanup();
    for (const scripted of runtimes.splice(0)) scripted.assertConsumed();
  });

  async function setup(scriptedOptions: ScriptedRuntimeOptions = {}) {
    const scripted = new ScriptedRuntime(scriptedOptions);
    runtimes.push(scripted);
    const inner = await fixture.create();
    const store = new FailingStore(inner);
    const manager = new SessionManager({ runtime: scripted.factory, store });
    managers.push(manager);
    return { manager, scripted, store, inner };
  }

  test('setSessionModel persists the override under the agent in force, or under default without one', async () => {
    const { manager, scripted } = await setup();
    const plain = await manager.createSession();
    const withAgent = await manager.createSession({ agent: 'planner' });
    await manager.setSessionModel(plain.id, 'small');
    await manager.setSessionModel(withAgent.id, 'large');
    expect((await manager.getSession(plain.id)).agentModelOverrides).toEqual({ default: 'small' });
    expect((await manager.getSession(withAgent.id)).agentModelOverrides).toEqual({ planner: 'large' });
    expect(scripted.currentModel(plain.id, 'default')).toBe('small');
    expect(scripted.currentModel(withAgent.id, 'planner')).toBe('large');
  });

  test('setSessionModel adds refs with a slash to customModelsUsed once, and not plain names', async () => {
    const { manager } = await setup();
    const { id } = await manager.createSession();
    await manager.setSessionModel(id, 'acme/one');
    await manager.setSessionModel(id, 'plain');
    await manager.setSessionModel(id, 'acme/one');
    await manager.setSessionModel(id, 'acme/two');
    const session = await manager.getSession(id);
    expect(session.customModelsUsed).toEqual(['acme/one', 'acme/two']);
    expect(session.agentModelOverrides).toEqual({ default: 'acme/two' });
  });

  test('setSessionModel with no ref clears the override (customModelsUsed is kept)', async () => {
    const { manager, scripted } = await setup();
    const { id } = await manager.createSession({ agentModelOverrides: { other: 'kept' } });
    await manager.setSessionModel(id, 'acme/one');
    await manager.setSessionModel(id);
    const session = await manager.getSession(id);
    expect(session.agentModelOverrides).toEqual({ other: 'kept' });
    expect(session.customModelsUsed).toEqual(['acme/one']);
    expect(scripted.setModelCalls.at(-1)).toMatchObject({ agent: 'default', modelRef: undefined });
    expect(scripted.currentModel(id, 'default')).toBeUndefined();
  });

  test('TurnContext.model is the override in force, and runSession({ model }) persists it', async () => {
    const { manager, scripted } = await setup();
    const { id } = await manager.createSession({ agent: 'main' });
    scripted.reply('1').reply('2').reply('3').reply('4');
    await (await manager.runSession(id, { messages: ['a'] })).done;
    await manager.setSessionModel(id, 'acme/fast');
    await (await manager.runSession(id, { messages: ['b'] })).done;
    await (await manager.runSession(id, { messages: ['c'], model: 'acme/smart' })).done;
    await (await manager.runSession(id, { messages: ['d'], agent: 'reviewer', model: 'acme/critic' })).done;
    expect(scripted.turns.map((turn) => [turn.agent, turn.model])).toEqual([
      ['main', undefined],
      ['main', 'acme/fast'],
      ['main', 'acme/smart'],
      ['reviewer', 'acme/critic'],
    ]);
    const session = await manager.getSession(id);
    expect(session.agent).toBe('reviewer');
    expect(session.agentModelOverrides).toEqual({ main: 'acme/smart', reviewer: 'acme/critic' });
    expect(session.customModelsUsed).toEqual(['acme/fast', 'acme/smart', 'acme/critic']);
  });

  test('getAvailableModels lists the runtime models with current, then the custom refs not listed', async () => {
    const { manager, scripted } = await setup({
      models: (agent) => [{ ref: 'acme/fast', name: `Fast for ${agent}` }, { ref: 'acme/smart' }],
    });
    const { id } = await manager.createSession({ agent: 'main' });
    expect(await manager.getAvailableModels(id)).toEqual({
      agent: 'main',
      models: [
        { ref: 'acme/fast', name: 'Fast for main', current: false },
        { ref: 'acme/smart', current: false },
      ],
    });
    await manager.setSessionModel(id, 'other/custom');
    await manager.setSessionModel(id, 'acme/smart');
    expect(await manager.getAvailableModels(id)).toEqual({
      agent: 'main',
      current: 'acme/smart',
      models: [
        { ref: 'acme/fast', name: 'Fast for main', current: false },
        { ref: 'acme/smart', current: true },
        { ref: 'other/custom', current: false },
      ],
    });
    await manager.setSessionModel(id, 'other/custom');
    const models = await manager.getAvailableModels(id);
    expect(models.current).toBe('other/custom');
    expect(models.models.filter((choice) => choice.current).map((choice) => choice.ref)).toEqual([
      'other/custom',
    ]);
    expect(scripted.availableModelsCalls.every((call) => call.agent === 'main')).toBe(true);
  });

  test('getAvailableModels lists only the custom refs when the runtime cannot list models', async () => {
    const { manager } = await setup();
    const { id } = await manager.createSession({ customModelsUsed: ['acme/x'] });
    expect(await manager.getAvailableModels(id)).toEqual({
      agent: 'default',
      models: [{ ref: 'acme/x', current: false }],
    });
  });

  test('setSessionModel rejects and leaves the record unchanged when the runtime setModel fails', async () => {
    const { manager, scripted, inner } = await setup();
    const { id } = await manager.createSession();
    await manager.setSessionModel(id, 'acme/old');
    const before = await inner.getSession(id);
    const cause = new Error('model refused');
    scripted.failNextSetModel(cause);
    const error = await rejection(manager.setSessionModel(id, 'acme/new'));
    expectCode(error, ErrorCode.RUNTIME_FAILED);
    expect((error as AgentSessionsError).cause).toBe(cause);
    expect(await inner.getSession(id)).toEqual(before);
    expect(scripted.currentModel(id, 'default')).toBe('acme/old');
    scripted.reply('ok');
    await (await manager.runSession(id, { messages: ['a'] })).done;
    expect(scripted.turns[0]?.model).toBe('acme/old');
  });

  test('setSessionModel rejects and sets the runtime back when the store patch fails', async () => {
    const { manager, scripted, store, inner } = await setup();
    const { id } = await manager.createSession();
    await manager.setSessionModel(id, 'acme/old');
    const before = await inner.getSession(id);
    const injected = new InjectedStoreError('updateSession');
    store.failNext('updateSession', injected);
    expect(await rejection(manager.setSessionModel(id, 'acme/new'))).toBe(injected);
    expect(scripted.setModelCalls.slice(-2).map((call) => call.modelRef)).toEqual(['acme/new', 'acme/old']);
    expect(scripted.currentModel(id, 'default')).toBe('acme/old');
    expect(withoutUpdatedAt(await inner.getSession(id))).toEqual(withoutUpdatedAt(before));
    scripted.reply('ok');
    await (await manager.runSession(id, { messages: ['a'] })).done;
    expect(scripted.turns[0]?.model).toBe('acme/old');
    expect(await manager.getAvailableModels(id)).toMatchObject({ current: 'acme/old' });
  });

  test('runSession({ model }) rejects and leaves the record unchanged when the runtime setModel fails', async () => {
    const { manager, scripted, inner } = await setup();
    const { id } = await manager.createSession();
    const before = await inner.getSession(id);
    scripted.failNextSetModel(new Error('nope'));
    expectCode(
      await rejection(manager.runSession(id, { messages: ['a'], model: 'acme/new' })),
      ErrorCode.RUNTIME_FAILED,
    );
    expect(await inner.getSession(id)).toEqual(before);
    expect(scripted.turns).toHaveLength(0);
  });

  test('setSessionModel and runSession({ model }) reject with MODEL_SWITCHING_NOT_SUPPORTED when the runtime cannot switch', async () => {
    const { manager, scripted, inner } = await setup({ modelSwitching: false });
    const { id } = await manager.createSession();
    const before = await inner.getSession(id);
    expectCode(
      await rejection(manager.setSessionModel(id, 'acme/x')),
      ErrorCode.MODEL_SWITCHING_NOT_SUPPORTED,
    );
    expectCode(
      await rejection(manager.runSession(id, { messages: ['a'], model: 'acme/x' })),
      ErrorCode.MODEL_SWITCHING_NOT_SUPPORTED,
    );
    expect(await inner.getSession(id)).toEqual(before);
    expect(scripted.turns).toHaveLength(0);
  });

  test('setSessionModel rejects an unknown session with SESSION_NOT_FOUND and an empty ref with INVALID_ARGUMENT', async () => {
    const { manager, scripted } = await setup();
    const { id } = await manager.createSession();
    expectCode(await rejection(manager.setSessionModel('missing', 'acme/x')), ErrorCode.SESSION_NOT_FOUND);
    expectCode(await rejection(manager.getAvailableModels('missing')), ErrorCode.SESSION_NOT_FOUND);
    expectCode(await rejection(manager.setSessionModel(id, '')), ErrorCode.INVALID_ARGUMENT);
    expect(scripted.runtimes).toHaveLength(0);
  });
});
