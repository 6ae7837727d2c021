// Model selection (setModel / availableModels, overrides and their rollback), usage and cost, and
// the pass-through options of the AI SDK runtime, through a real SessionManager.
import { afterEach, describe, expect, test } from 'vitest';
import {
  AiSdkRuntime,
  type AiSdkRuntimeOptions,
  costOf,
  createAiSdkRuntime,
  ModelCallError,
} from '../../src/ai-sdk/index.js';
import { AgentSessionsError, InvalidArgumentError } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { answer, finish, ofType, runTurn, scriptedModel, step, text, usage } from './helpers.js';

let manager: SessionManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

function twoModels() {
  const small = scriptedModel([answer('small 1'), answer('small 2'), answer('small 3')], 'small-1');
  const large = scriptedModel([answer('large 1'), answer('large 2')], 'large-1');
  return { small, large };
}

describe('model switching', () => {
  test('setSessionModel switches the next turn to the chosen model; availableModels lists them', async () => {
    const { small, large } = twoModels();
    manager = new SessionManager({
      runtime: createAiSdkRuntime({
        models: { small, large: { model: large, name: 'The large one', contextLimit: 200_000 } },
      }),
    });
    const { id } = await manager.createSession();
    const first = await runTurn(manager, id, { messages: ['one'] });
    expect(ofType(first.events, 'message_added')[0]?.message.model).toBe('small');

    await manager.setSessionModel(id, 'large');
    const second = await runTurn(manager, id, { messages: ['two'] });
    expect(
      ofType(second.events, 'agent_choice')
        .map((event) => event.content)
        .join(''),
    ).toBe('large 1');
    expect(ofType(second.events, 'token_usage')[0]?.usage).toMatchObject({
      model: 'large',
      contextLimit: 200_000,
    });
    expect(small.doStreamCalls).toHaveLength(1);
    expect(large.doStreamCalls).toHaveLength(1);

    const models = await manager.getAvailableModels(id);
    expect(models).toEqual({
      agent: 'default',
      current: 'large',
      models: [
        { ref: 'small', current: false },
        { ref: 'large', name: 'The large one', current: true },
      ],
    });

    await manager.setSessionModel(id, undefined);
    await runTurn(manager, id, { messages: ['three'] });
    expect(small.doStreamCalls).toHaveLength(2);
  });

  test('an unknown ref is refused and the model stays', async () => {
    const { small, large } = twoModels();
    manager = new SessionManager({
      runtime: createAiSdkRuntime({ models: { small, large }, defaultModel: 'large' }),
    });
    const { id } = await manager.createSession();
    await expect(manager.setSessionModel(id, 'huge')).rejects.toSatisfy((error) =>
      InvalidArgumentError.isInstance(error),
    );
    expect((await manager.getSession(id)).agentModelOverrides).toEqual({});
    await runTurn(manager, id, { messages: ['hi'] });
    expect(large.doStreamCalls).toHaveLength(1);
    expect(small.doStreamCalls).toHaveLength(0);
  });

  test('a switch whose write fails is rolled back: the runtime keeps the previous model', async () => {
    const { small, large } = twoModels();
    const store = new FailingStore(new MemoryStore());
    manager = new SessionManager({ runtime: createAiSdkRuntime({ models: { small, large } }), store });
    const { id } = await manager.createSession();
    await runTurn(manager, id, { messages: ['warm up the runtime'] });
    store.failNext('updateSession');
    await expect(manager.setSessionModel(id, 'large')).rejects.toThrow();
    expect((await manager.getSession(id)).agentModelOverrides).toEqual({});
    await runTurn(manager, id, { messages: ['after the failed switch'] });
    expect(small.doStreamCalls).toHaveLength(2);
    expect(large.doStreamCalls).toHaveLength(0);
  });

  test("runSession's model override applies to that turn and is persisted", async () => {
    const { small, large } = twoModels();
    manager = new SessionManager({ runtime: createAiSdkRuntime({ models: { small, large } }) });
    const { id } = await manager.createSession();
    await runTurn(manager, id, { messages: ['hi'], model: 'large' });
    expect(large.doStreamCalls).toHaveLength(1);
    expect((await manager.getSession(id)).agentModelOverrides).toEqual({ default: 'large' });
  });

  test('resolveModel accepts refs outside the map; the rest stay refused', async () => {
    const { small } = twoModels();
    const custom = scriptedModel([answer('custom')], 'custom-1');
    manager = new SessionManager({
      runtime: createAiSdkRuntime({
        models: { small },
        resolveModel: (ref) => (ref === 'provider/custom' ? custom : undefined),
      }),
    });
    const { id } = await manager.createSession();
    await manager.setSessionModel(id, 'provider/custom');
    await runTurn(manager, id, { messages: ['hi'] });
    expect(custom.doStreamCalls).toHaveLength(1);
    await expect(manager.setSessionModel(id, 'provider/other')).rejects.toThrow(/unknown model/);
    expect((await manager.getAvailableModels(id)).models.map((model) => model.ref)).toEqual([
      'small',
      'provider/custom',
    ]);
  });
});

describe('usage', () => {
  const prices = {
    'mock-model': {
      inputPerMillion: 3,
      outputPerMillion: 15,
      cacheReadPerMillion: 0.3,
      cacheWritePerMillion: 3.75,
    },
  };

  test('each step reports token_usage with cache and reasoning tokens and its cost; the session sums them', async () => {
    const model = scriptedModel([
      step(text('one'), finish('stop', usage(1000, 200, { cacheRead: 600, cacheWrite: 100, reasoning: 50 }))),
      step(text('two'), finish('stop', usage(2000, 100))),
    ]);
    manager = new SessionManager({ runtime: createAiSdkRuntime({ model, prices }) });
    const { id } = await manager.createSession();
    const first = await runTurn(manager, id, { messages: ['one'] });
    const second = await runTurn(manager, id, { messages: ['two'] });
    const firstUsage = ofType(first.events, 'token_usage')[0]?.usage;
    // 300 uncached × 3 + 600 × 0.3 + 100 × 3.75 + 200 × 15, per million.
    const firstCost = (300 * 3 + 600 * 0.3 + 100 * 3.75 + 200 * 15) / 1e6;
    expect(firstUsage).toEqual({
      inputTokens: 1000,
      outputTokens: 200,
      cacheReadTokens: 600,
      cacheWriteTokens: 100,
      reasoningTokens: 50,
      cost: firstCost,
      contextLength: 1200,
      model: 'mock-model',
    });
    const secondCost = (2000 * 3 + 100 * 15) / 1e6;
    expect(ofType(second.events, 'token_usage')[0]?.usage.cost).toBeCloseTo(secondCost, 12);
    const session = await manager.getSession(id);
    expect(session.usage.inputTokens).toBe(3000);
    expect(session.usage.outputTokens).toBe(300);
    expect(session.usage.cost).toBeCloseTo(firstCost + secondCost, 12);
    expect(session.items[1]).toMatchObject({
      message: {
        usage: {
          inputTokens: 1000,
          outputTokens: 200,
          cacheReadTokens: 600,
          cacheWriteTokens: 100,
          reasoningTokens: 50,
        },
      },
    });
  });

  test('without a price for the model there is no cost, never an invented one', async () => {
    const model = scriptedModel([answer('hi', usage(100, 10))]);
    manager = new SessionManager({
      runtime: createAiSdkRuntime({ model, prices: { other: prices['mock-model'] } }),
    });
    const { id } = await manager.createSession();
    const { events } = await runTurn(manager, id, { messages: ['hi'] });
    expect(ofType(events, 'token_usage')[0]?.usage.cost).toBeUndefined();
    expect((await manager.getSession(id)).usage).toEqual({ inputTokens: 100, outputTokens: 10, cost: 0 });
  });

  test('costOf prices cache reads and writes as input when they have no price of their own', () => {
    expect(
      costOf(
        { inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 500_000 },
        { inputPerMillion: 2, outputPerMillion: 8 },
      ),
    ).toBe(10);
    expect(costOf({ inputTokens: 5, outputTokens: 5 }, undefined)).toBeUndefined();
  });
});

describe('options', () => {
  test('system prompt, provider options, call settings and tool choice reach every model call', async () => {
    const model = scriptedModel([answer('hi')]);
    const contexts: unknown[] = [];
    manager = new SessionManager({
      runtime: createAiSdkRuntime({
        model,
        system: ({ agent, model: ref, turn }) => {
          contexts.push({ agent, ref, sessionId: turn.sessionId });
          return `You help ${agent}.`;
        },
        providerOptions: { mock: { flavour: 'vanilla' } },
        callSettings: { temperature: 0.2, maxOutputTokens: 99 },
        toolChoice: 'none',
      }),
    });
    const { id } = await manager.createSession({ agent: 'coder' });
    await runTurn(manager, id, { messages: ['hi'] });
    const call = model.doStreamCalls[0];
    expect(call?.prompt[0]).toEqual({ role: 'system', content: 'You help coder.' });
    expect(call?.providerOptions).toEqual({ mock: { flavour: 'vanilla' } });
    expect(call?.temperature).toBe(0.2);
    expect(call?.maxOutputTokens).toBe(99);
    expect(contexts).toEqual([{ agent: 'coder', ref: 'mock-model', sessionId: id }]);
  });

  test('prepareMessages shapes what each step sends, and is told the step', async () => {
    const model = scriptedModel([answer('one'), answer('two'), answer('three')]);
    const steps: number[] = [];
    manager = new SessionManager({
      runtime: createAiSdkRuntime({
        model,
        system: 'Be brief.',
        prepareMessages: ({ messages, step }) => {
          steps.push(step);
          return messages.slice(-1); // a context window of one message
        },
      }),
    });
    const { id } = await manager.createSession();
    for (const words of ['first', 'second', 'third']) await runTurn(manager, id, { messages: [words] });
    expect(steps).toEqual([0, 0, 0]);
    expect(model.doStreamCalls[2]?.prompt).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'third' }], providerOptions: undefined },
    ]);
  });

  test.each<[string, AiSdkRuntimeOptions, RegExp]>([
    ['no model', {}, /model or models is required/],
    ['model and models', { model: scriptedModel([]), models: { a: scriptedModel([]) } }, /cannot both/],
    ['an unknown defaultModel', { models: { a: scriptedModel([]) }, defaultModel: 'b' }, /defaultModel/],
    ['a step limit of 0', { model: scriptedModel([]), maxSteps: 0 }, /maxSteps/],
    [
      'a tool without a schema',
      { model: scriptedModel([]), tools: { x: { tool: {} as never } } },
      /inputSchema/,
    ],
  ])('createAiSdkRuntime with %s throws INVALID_ARGUMENT at once', (_name, options, message) => {
    let thrown: unknown;
    try {
      createAiSdkRuntime(options);
    } catch (error) {
      thrown = error;
    }
    expect(AgentSessionsError.hasCode(thrown, 'INVALID_ARGUMENT')).toBe(true);
    expect((thrown as Error).message).toMatch(message);
  });

  test('an AiSdkRuntime made by a factory of your own runs like the one from createAiSdkRuntime', async () => {
    const model = scriptedModel([answer('mine')]);
    manager = new SessionManager({ runtime: (init) => new AiSdkRuntime({ model }, init) });
    const { id } = await manager.createSession();
    const { result, events } = await runTurn(manager, id, { messages: ['hi'] });
    expect(result.stopReason).toBe('end_turn');
    expect(ofType(events, 'agent_choice').map((event) => event.content)).toEqual(['mine']);
    expect(ModelCallError.isInstance(new Error('x'))).toBe(false);
  });
});
