import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { RuntimeEvent, RuntimeEventInput } from '../../src/events.js';
import type {
  ElicitationRequest,
  ElicitationResult,
  RuntimeInit,
  ToolAuthorizationRequest,
  ToolDecision,
  TurnContext,
} from '../../src/runtime.js';
import type { Message, Session, SessionItem } from '../../src/schemas.js';
import {
  isScriptDirective,
  ScriptedRuntime,
  type ScriptedSessionRuntime,
  step,
} from '../../src/testing/scripted-runtime.js';
import { sessionRecord } from '../helpers/sessions.js';

const NOW = '2025-01-02T03:04:05.000Z';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

function userMessage(id: string, content: string): Message {
  return { id, role: 'user', content, createdAt: NOW };
}

const makeSession = (id = 's1', items: SessionItem[] = []): Session => sessionRecord(id, { items }, NOW);

function makeInit(sessionId = 's1'): RuntimeInit {
  return { session: makeSession(sessionId), agent: 'root', signal: new AbortController().signal };
}

interface FakeTurnOptions {
  sessionId?: string;
  turnId?: string;
  items?: SessionItem[];
  agent?: string;
  model?: string;
  decide?: (request: ToolAuthorizationRequest) => ToolDecision | Promise<ToolDecision>;
  answer?: (request: ElicitationRequest) => ElicitationResult | Promise<ElicitationResult>;
  steering?: Message[][];
}

/** A hand-made TurnContext that records what the runtime asked of it. */
function fakeTurn(options: FakeTurnOptions = {}) {
  const controller = new AbortController();
  const authorizations: ToolAuthorizationRequest[] = [];
  const elicitations: ElicitationRequest[] = [];
  const steering = [...(options.steering ?? [])];
  const session = deepFreeze(makeSession(options.sessionId ?? 's1', options.items ?? []));
  const context: TurnContext = {
    sessionId: options.sessionId ?? 's1',
    turnId: options.turnId ?? 't1',
    session,
    signal: controller.signal,
    takeSteering: () => steering.shift() ?? [],
    authorizeToolCall: async (request) => {
      authorizations.push(request);
      return options.decide ? options.decide(request) : { approved: true };
    },
    elicit: async (request) => {
      elicitations.push(request);
      return options.answer ? options.answer(request) : { action: 'decline' };
    },
  };
  if (options.agent !== undefined) context.agent = options.agent;
  if (options.model !== undefined) context.model = options.model;
  return { context, controller, authorizations, elicitations, session };
}

async function collect(iterable: AsyncIterable<RuntimeEventInput>): Promise<RuntimeEvent[]> {
  const events: RuntimeEvent[] = [];
  for await (const event of iterable) events.push(event as RuntimeEvent);
  return events;
}

async function collectFailure(
  iterable: AsyncIterable<RuntimeEventInput>,
): Promise<{ events: RuntimeEvent[]; error: unknown }> {
  const events: RuntimeEvent[] = [];
  try {
    for await (const event of iterable) events.push(event as RuntimeEvent);
  } catch (error) {
    return { events, error };
  }
  throw new Error('expected the turn to throw');
}

/** Settles every pending microtask chain the runtime can have started (no timers involved). */
async function flush(): Promise<void> {
  for (let index = 0; index < 20; index++) await Promise.resolve();
}

async function runtimeFor(scripted: ScriptedRuntime, sessionId = 's1'): Promise<ScriptedSessionRuntime> {
  return scripted.factory(makeInit(sessionId));
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ScriptedRuntime factory', () => {
  test('factory records each init as given and makes one runtime per call', async () => {
    const scripted = new ScriptedRuntime();
    const first = makeInit('s1');
    const second = makeInit('s2');
    const runtime1 = await scripted.factory(first);
    const runtime2 = await scripted.factory(second);
    expect(scripted.inits).toEqual([first, second]);
    expect(scripted.inits[0]).toBe(first);
    expect(runtime1).not.toBe(runtime2);
    expect(scripted.runtimes).toEqual([runtime1, runtime2]);
    expect([runtime1.index, runtime1.sessionId, runtime1.init]).toEqual([0, 's1', first]);
    expect([runtime2.index, runtime2.sessionId, runtime2.init]).toEqual([1, 's2', second]);
    expect(runtime1.closed).toBe(false);
  });

  test('factory rejects once per failNextFactory, still recording the init', async () => {
    const scripted = new ScriptedRuntime();
    const failure = new Error('boom');
    scripted.failNextFactory(failure);
    const init = makeInit();
    await expect(scripted.factory(init)).rejects.toBe(failure);
    expect(scripted.inits).toEqual([init]);
    expect(scripted.runtimes).toEqual([]);
    await expect(scripted.factory(init)).resolves.toBeDefined();
    expect(scripted.runtimes).toHaveLength(1);
  });

  test('factory can be passed detached from the instance', async () => {
    const scripted = new ScriptedRuntime();
    const { factory } = scripted;
    await factory(makeInit());
    expect(scripted.runtimes).toHaveLength(1);
  });
});

describe('ScriptedRuntime model switching', () => {
  test('setModel is implemented by default and records each call', async () => {
    const scripted = new ScriptedRuntime();
    const runtime = await runtimeFor(scripted);
    expect(typeof runtime.setModel).toBe('function');
    await runtime.setModel?.('root', 'openai/gpt-5');
    await runtime.setModel?.('root', undefined);
    await runtime.setModel?.('helper', 'small');
    expect(scripted.setModelCalls).toEqual([
      { sessionId: 's1', agent: 'root', modelRef: 'openai/gpt-5' },
      { sessionId: 's1', agent: 'root', modelRef: undefined },
      { sessionId: 's1', agent: 'helper', modelRef: 'small' },
    ]);
    expect(scripted.currentModel('s1', 'root')).toBeUndefined();
    expect(scripted.currentModel('s1', 'helper')).toBe('small');
    expect(scripted.currentModel('s2', 'helper')).toBeUndefined();
  });

  test('modelSwitching false leaves no setModel property at all', async () => {
    const runtime = await runtimeFor(new ScriptedRuntime({ modelSwitching: false }));
    expect('setModel' in runtime).toBe(false);
    expect(runtime.setModel).toBeUndefined();
  });

  test('setModel rejects once per failNextSetModel and records the failed call', async () => {
    const scripted = new ScriptedRuntime();
    const runtime = await runtimeFor(scripted);
    const failure = new Error('no such model');
    scripted.failNextSetModel(failure);
    await expect(runtime.setModel?.('root', 'bad')).rejects.toBe(failure);
    expect(scripted.currentModel('s1', 'root')).toBeUndefined();
    await runtime.setModel?.('root', 'good');
    expect(scripted.setModelCalls).toEqual([
      { sessionId: 's1', agent: 'root', modelRef: 'bad', error: failure },
      { sessionId: 's1', agent: 'root', modelRef: 'good' },
    ]);
    expect(scripted.currentModel('s1', 'root')).toBe('good');
  });

  test('availableModels is absent when no models are given', async () => {
    const runtime = await runtimeFor(new ScriptedRuntime());
    expect('availableModels' in runtime).toBe(false);
  });

  test('availableModels resolves to a fresh copy of the models on each call and records it', async () => {
    const models = [{ ref: 'a', name: 'A' }, { ref: 'b' }];
    const scripted = new ScriptedRuntime({ models });
    const runtime = await runtimeFor(scripted);
    const first = await runtime.availableModels?.('root');
    expect(first).toEqual(models);
    expect(first).not.toBe(models);
    first![0]!.current = true;
    expect(await runtime.availableModels?.('other')).toEqual(models);
    expect(models[0]).toEqual({ ref: 'a', name: 'A' });
    expect(scripted.availableModelsCalls).toEqual([
      { sessionId: 's1', agent: 'root' },
      { sessionId: 's1', agent: 'other' },
    ]);
  });

  test('availableModels takes the models per agent from a function', async () => {
    const scripted = new ScriptedRuntime({ models: (agent) => [{ ref: `${agent}-model` }] });
    const runtime = await runtimeFor(scripted);
    expect(await runtime.availableModels?.('coder')).toEqual([{ ref: 'coder-model' }]);
  });
});

describe('ScriptedRuntime close', () => {
  test('close is recorded per runtime and counted', async () => {
    const scripted = new ScriptedRuntime();
    const runtime1 = await runtimeFor(scripted, 's1');
    const runtime2 = await runtimeFor(scripted, 's2');
    expect(scripted.closed).toBe(0);
    await runtime2.close();
    expect(runtime2.closed).toBe(true);
    expect(runtime1.closed).toBe(false);
    expect(scripted.closed).toBe(1);
    expect(scripted.closeCalls).toEqual([{ sessionId: 's2', runtime: runtime2 }]);
  });

  test('close rejects once per failNextClose and the runtime still counts as closed', async () => {
    const scripted = new ScriptedRuntime();
    const runtime = await runtimeFor(scripted);
    const failure = new Error('close failed');
    scripted.failNextClose(failure);
    await expect(runtime.close()).rejects.toBe(failure);
    expect(runtime.closed).toBe(true);
    expect(scripted.closed).toBe(1);
    expect(scripted.closeCalls).toEqual([{ sessionId: 's1', runtime, error: failure }]);
  });

  test('run on a closed runtime throws, keeps the scripted turn and is reported by assertConsumed', async () => {
    const scripted = new ScriptedRuntime();
    const runtime = await runtimeFor(scripted);
    scripted.reply('hi');
    await runtime.close();
    const { error } = await collectFailure(runtime.run(fakeTurn().context));
    expect(error).toEqual(new Error('ScriptedRuntime: turn 1 of session s1 ran on a closed runtime'));
    expect(scripted.remaining).toBe(1);
    expect(() => scripted.assertConsumed()).toThrow(/ran on a closed runtime/);
  });
});

describe('ScriptedRuntime event lists', () => {
  test('run yields the scripted events in order, as the same objects', async () => {
    const scripted = new ScriptedRuntime();
    const events: RuntimeEvent[] = [
      { type: 'agent_choice_reasoning', content: 'thinking' },
      { type: 'agent_choice', content: 'Hel' },
      { type: 'agent_choice', content: 'lo' },
      { type: 'turn_end', reason: 'max_tokens' },
    ];
    scripted.turn(events);
    const runtime = await runtimeFor(scripted);
    const yielded = await collect(runtime.run(fakeTurn().context));
    expect(yielded).toEqual(events);
    yielded.forEach((event, index) => {
      expect(event).toBe(events[index]);
    });
    scripted.assertConsumed();
  });

  test('run passes invalid events through unchanged (the manager validates)', async () => {
    const scripted = new ScriptedRuntime();
    const bogus = { type: 'not_an_event', whatever: 1 };
    const missingContent = { type: 'agent_choice' } as unknown as RuntimeEvent;
    scripted.turn([step.raw(bogus), missingContent, step.raw(undefined)]);
    const runtime = await runtimeFor(scripted);
    const yielded: unknown[] = await collect(runtime.run(fakeTurn().context));
    expect(yielded).toHaveLength(3);
    expect(yielded[0]).toBe(bogus);
    expect(yielded[1]).toBe(missingContent);
    expect(yielded[2]).toBeUndefined();
  });

  test('a script array changed after turn() does not change the scripted turn', async () => {
    const scripted = new ScriptedRuntime();
    const events: RuntimeEvent[] = [{ type: 'agent_choice', content: 'a' }];
    scripted.turn(events);
    events.push({ type: 'agent_choice', content: 'b' });
    const runtime = await runtimeFor(scripted);
    expect(await collect(runtime.run(fakeTurn().context))).toEqual([{ type: 'agent_choice', content: 'a' }]);
  });

  test('directives are never yielded as events and are recognised by isScriptDirective', () => {
    expect(isScriptDirective(step.hold())).toBe(true);
    expect(isScriptDirective(step.takeSteering())).toBe(true);
    expect(isScriptDirective({ type: 'agent_choice', content: 'x' })).toBe(false);
    expect(isScriptDirective({ kind: 'hold' })).toBe(false);
    expect(isScriptDirective(null)).toBe(false);
    expect(Object.isFrozen(step.reply('x'))).toBe(true);
  });
});

describe('ScriptedRuntime turn queue', () => {
  test('shared turns are taken first-in first-out across sessions', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('one').reply('two').reply('three');
    const runtime1 = await runtimeFor(scripted, 's1');
    const runtime2 = await runtimeFor(scripted, 's2');
    const texts: string[] = [];
    for (const [runtime, sessionId] of [
      [runtime2, 's2'],
      [runtime1, 's1'],
      [runtime2, 's2'],
    ] as const) {
      const events = await collect(runtime.run(fakeTurn({ sessionId }).context));
      const added = events.find((event) => event.type === 'message_added');
      texts.push(added?.type === 'message_added' ? added.message.content : '');
    }
    expect(texts).toEqual(['one', 'two', 'three']);
    scripted.assertConsumed();
  });

  test("a session's own turns are taken before the shared queue, in order", async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([{ type: 'agent_choice', content: 'shared' }]);
    scripted.turn([{ type: 'agent_choice', content: 's1 first' }], { sessionId: 's1' });
    scripted.turn([{ type: 'agent_choice', content: 's1 second' }], { sessionId: 's1' });
    scripted.turn([{ type: 'agent_choice', content: 's2 only' }], { sessionId: 's2' });
    const runtime = await runtimeFor(scripted, 's1');
    const contents: string[] = [];
    for (let index = 0; index < 3; index++) {
      for (const event of await collect(runtime.run(fakeTurn({ turnId: `t${index}` }).context))) {
        if (event.type === 'agent_choice') contents.push(event.content);
      }
    }
    expect(contents).toEqual(['s1 first', 's1 second', 'shared']);
    expect(scripted.remaining).toBe(1);
    expect(() => scripted.assertConsumed()).toThrow('1 scripted turn(s) not run: 1 step(s) (session s2)');
  });

  test('run with no scripted turn left throws naming the session and turn number', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('a').reply('b');
    const runtime = await runtimeFor(scripted);
    await collect(runtime.run(fakeTurn({ turnId: 't1' }).context));
    await collect(runtime.run(fakeTurn({ turnId: 't2' }).context));
    const { events, error } = await collectFailure(runtime.run(fakeTurn({ turnId: 't3' }).context));
    expect(events).toEqual([]);
    expect(error).toEqual(new Error('ScriptedRuntime: unexpected turn 3 of session s1: no turn scripted'));
    expect(scripted.turns).toHaveLength(3);
    expect(scripted.turns[2]).toMatchObject({ turnNumber: 3, outcome: 'threw', error, label: undefined });
  });

  test('turn numbers count per session across its runtimes', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('a').reply('b').reply('c');
    const first = await runtimeFor(scripted, 's1');
    await collect(first.run(fakeTurn({ sessionId: 's1' }).context));
    await collect((await runtimeFor(scripted, 's2')).run(fakeTurn({ sessionId: 's2' }).context));
    const again = await runtimeFor(scripted, 's1');
    await collect(again.run(fakeTurn({ sessionId: 's1' }).context));
    expect(scripted.turns.map((turn) => [turn.sessionId, turn.turnNumber])).toEqual([
      ['s1', 1],
      ['s2', 1],
      ['s1', 2],
    ]);
    expect(scripted.turnsOf('s1').map((turn) => turn.runtime)).toEqual([first, again]);
  });

  test('turn rejects `before` on a turn that is not an error', () => {
    const scripted = new ScriptedRuntime();
    expect(() => scripted.turn([], { before: [] })).toThrow(TypeError);
    expect(scripted.remaining).toBe(0);
  });
});

describe('ScriptedRuntime reply', () => {
  test('reply streams word deltas, then the assistant message, then the usage', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date(NOW) });
    const scripted = new ScriptedRuntime();
    const usage = { inputTokens: 12, outputTokens: 3, cost: 0.01 };
    scripted.reply('Hello there,  world!', { usage });
    const runtime = await runtimeFor(scripted);
    const events = await collect(runtime.run(fakeTurn().context));
    expect(events.slice(0, 3)).toEqual([
      { type: 'agent_choice', content: 'Hello ' },
      { type: 'agent_choice', content: 'there,  ' },
      { type: 'agent_choice', content: 'world!' },
    ]);
    expect(events[3]).toEqual({
      type: 'message_added',
      message: {
        id: expect.stringMatching(/^msg_/),
        role: 'assistant',
        content: 'Hello there,  world!',
        createdAt: NOW,
      },
    });
    expect(events[4]).toEqual({ type: 'token_usage', usage });
    expect(events).toHaveLength(5);
  });

  test('reply without usage yields no token_usage and new ids on each run', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('same').reply('same');
    const runtime = await runtimeFor(scripted);
    const first = await collect(runtime.run(fakeTurn().context));
    const second = await collect(runtime.run(fakeTurn().context));
    expect(first.map((event) => event.type)).toEqual(['agent_choice', 'message_added']);
    const id = (events: RuntimeEvent[]) => (events[1]?.type === 'message_added' ? events[1].message.id : '');
    expect(id(first)).not.toBe(id(second));
  });

  test('reply of an empty text yields only the message', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('');
    const events = await collect((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(events).toEqual([{ type: 'message_added', message: expect.objectContaining({ content: '' }) }]);
  });

  test('reply yields the given deltas and merges the given message fields', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('abc', { deltas: ['a', 'bc'], message: { id: 'm1', agent: 'root', model: 'x' } });
    const events = await collect((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(events.slice(0, 2)).toEqual([
      { type: 'agent_choice', content: 'a' },
      { type: 'agent_choice', content: 'bc' },
    ]);
    expect(events[2]).toEqual({
      type: 'message_added',
      message: {
        id: 'm1',
        role: 'assistant',
        content: 'abc',
        agent: 'root',
        model: 'x',
        createdAt: expect.any(String),
      },
    });
  });

  test('step.reply composes with other steps in one turn', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([{ type: 'warning', message: 'careful' }, step.reply('ok')]);
    const events = await collect((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(events.map((event) => event.type)).toEqual(['warning', 'agent_choice', 'message_added']);
  });
});

describe('ScriptedRuntime turn records', () => {
  test('run records what the manager handed the runtime, keeping the session by reference', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('hi', { label: 'greeting' });
    const runtime = await runtimeFor(scripted);
    const message1 = userMessage('m1', 'first');
    const message2 = userMessage('m2', 'second');
    const items: SessionItem[] = [
      { kind: 'message', message: message1 },
      { kind: 'summary', id: 'sum1', summary: 'so far', firstKeptItem: 1, createdAt: NOW },
      { kind: 'error', id: 'e1', message: 'failed', createdAt: NOW },
      { kind: 'message', message: message2 },
    ];
    const { context, session } = fakeTurn({ turnId: 'turn-9', items, agent: 'coder', model: 'openai/gpt-5' });
    await collect(runtime.run(context));
    const record = scripted.turns[0]!;
    expect(record).toMatchObject({
      sessionId: 's1',
      turnId: 'turn-9',
      turnNumber: 1,
      agent: 'coder',
      model: 'openai/gpt-5',
      label: 'greeting',
      decisions: [],
      elicitations: [],
      steered: [],
      aborted: false,
      outcome: 'completed',
    });
    expect(record.session).toBe(session);
    expect(record.signal).toBe(context.signal);
    expect(record.runtime).toBe(runtime);
    expect(record.messages).toEqual([message1, message2]);
    expect(record.messages[0]).toBe(
      session.items[0]?.kind === 'message' ? session.items[0].message : undefined,
    );
    expect(record.messages[1]).toBe(
      session.items[3]?.kind === 'message' ? session.items[3].message : undefined,
    );
    expect(record.error).toBeUndefined();
  });

  test('run records the turn without agent or model when the context has none', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([]);
    await collect((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(scripted.turns[0]).toMatchObject({ agent: undefined, model: undefined, label: '0 step(s)' });
  });

  test('a turn the consumer stops early is recorded as stopped', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([
      { type: 'agent_choice', content: 'a' },
      { type: 'agent_choice', content: 'b' },
    ]);
    const runtime = await runtimeFor(scripted);
    for await (const event of runtime.run(fakeTurn().context)) {
      expect(event).toEqual({ type: 'agent_choice', content: 'a' });
      expect(scripted.turns[0]?.outcome).toBe('running');
      break;
    }
    expect(scripted.turns[0]?.outcome).toBe('stopped');
  });
});

describe('ScriptedRuntime failing turns', () => {
  test('turn(error) makes run throw that error after the `before` events', async () => {
    const scripted = new ScriptedRuntime();
    const failure = new Error('model unavailable');
    scripted.turn(failure, { before: [{ type: 'agent_choice', content: 'partial' }] });
    const { events, error } = await collectFailure((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(events).toEqual([{ type: 'agent_choice', content: 'partial' }]);
    expect(error).toBe(failure);
    expect(scripted.turns[0]).toMatchObject({
      outcome: 'threw',
      error: failure,
      label: 'error "model unavailable"',
    });
  });

  test('step.fail throws at its place in the list', async () => {
    const scripted = new ScriptedRuntime();
    const failure = new Error('mid-turn');
    scripted.turn([
      { type: 'agent_choice', content: 'x' },
      step.fail(failure),
      { type: 'agent_choice', content: 'y' },
    ]);
    const { events, error } = await collectFailure((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(events).toEqual([{ type: 'agent_choice', content: 'x' }]);
    expect(error).toBe(failure);
  });
});

describe('ScriptedRuntime turn functions', () => {
  test('a turn function gets a context with the same session, signal and ids and may yield directives', async () => {
    const scripted = new ScriptedRuntime();
    const seen: TurnContext[] = [];
    scripted.turn(async function* answer(ctx) {
      seen.push(ctx);
      yield { type: 'agent_choice', content: `hi ${ctx.agent}` };
      yield step.takeSteering();
      yield step.reply('done');
    });
    const { context, session } = fakeTurn({
      agent: 'root',
      model: 'm',
      steering: [[userMessage('s', 'steer')]],
    });
    const events = await collect((await runtimeFor(scripted)).run(context));
    expect(events.map((event) => event.type)).toEqual([
      'agent_choice',
      'custom',
      'agent_choice',
      'message_added',
    ]);
    expect(events[0]).toEqual({ type: 'agent_choice', content: 'hi root' });
    const ctx = seen[0]!;
    expect(ctx.session).toBe(session);
    expect(ctx.signal).toBe(context.signal);
    expect([ctx.sessionId, ctx.turnId, ctx.agent, ctx.model]).toEqual(['s1', 't1', 'root', 'm']);
    expect(scripted.turns[0]?.label).toBe('function answer');
  });

  test('a turn function that calls the context directly is recorded like the steps', async () => {
    const scripted = new ScriptedRuntime();
    const steered = [userMessage('x', 'steer me')];
    scripted.turn(async function* (ctx) {
      const decision = await ctx.authorizeToolCall({ toolCall: { id: 'c1', name: 'read', arguments: '{}' } });
      const answer = await ctx.elicit({ message: 'name?' });
      const taken = ctx.takeSteering();
      yield {
        type: 'custom',
        name: 'seen',
        data: { approved: decision.approved, action: answer.action, taken: taken.length },
      };
    });
    const { context } = fakeTurn({
      decide: () => ({ approved: false, reason: 'no' }),
      answer: () => ({ action: 'accept', content: { name: 'Ada' } }),
      steering: [steered],
    });
    const events = await collect((await runtimeFor(scripted)).run(context));
    expect(events).toEqual([
      { type: 'custom', name: 'seen', data: { approved: false, action: 'accept', taken: 1 } },
    ]);
    expect(scripted.turns[0]).toMatchObject({
      decisions: [{ approved: false, reason: 'no' }],
      elicitations: [{ action: 'accept', content: { name: 'Ada' } }],
    });
    expect(scripted.turns[0]?.steered[0]).toBe(steered);
  });

  test('a turn function may return a plain array', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn((ctx) => [{ type: 'agent_choice', content: ctx.turnId }]);
    const events = await collect((await runtimeFor(scripted)).run(fakeTurn({ turnId: 'tx' }).context));
    expect(events).toEqual([{ type: 'agent_choice', content: 'tx' }]);
  });

  test('a turn function that returns no iterable makes run throw a TypeError', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn((() => 42) as unknown as () => []);
    const { error } = await collectFailure((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(error).toBeInstanceOf(TypeError);
  });

  test('a turn function that throws makes run throw the same error', async () => {
    const scripted = new ScriptedRuntime();
    const failure = new Error('sync');
    scripted.turn(() => {
      throw failure;
    });
    const { error } = await collectFailure((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(error).toBe(failure);
  });
});

describe('ScriptedRuntime abort', () => {
  test('run throws signal.reason between events once the signal aborts', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([
      { type: 'agent_choice', content: 'a' },
      { type: 'agent_choice', content: 'b' },
    ]);
    const { context, controller } = fakeTurn();
    const iterator = (await runtimeFor(scripted)).run(context)[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: { type: 'agent_choice', content: 'a' } });
    const reason = new Error('cancelled by test');
    controller.abort(reason);
    await expect(iterator.next()).rejects.toBe(reason);
    expect(scripted.turns[0]).toMatchObject({ aborted: true, outcome: 'threw', error: reason });
  });

  test('after an abort the next step is not performed', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([{ type: 'agent_choice', content: 'a' }, step.takeSteering()]);
    const takeSteering = vi.fn(() => []);
    const { context, controller } = fakeTurn();
    const iterator = (await runtimeFor(scripted)).run({ ...context, takeSteering })[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort('stop');
    await expect(iterator.next()).rejects.toBe('stop');
    expect(takeSteering).not.toHaveBeenCalled();
    expect(scripted.turns[0]?.steered).toEqual([]);
  });

  test('an abort inside a step that yields several events stops before the next one', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.authorize({ id: 'c1', name: 'shell' })]);
    const { context, controller, authorizations } = fakeTurn();
    const iterator = (await runtimeFor(scripted)).run(context)[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: 'message_added' });
    controller.abort('stop');
    await expect(iterator.next()).rejects.toBe('stop');
    expect(authorizations).toEqual([]);
  });

  test('an abort between reply deltas stops the reply', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('one two three');
    const { context, controller } = fakeTurn();
    const iterator = (await runtimeFor(scripted)).run(context)[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual({ type: 'agent_choice', content: 'one ' });
    controller.abort('stop');
    await expect(iterator.next()).rejects.toBe('stop');
  });

  test('run on an already aborted signal throws its reason before any event', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('never');
    const { context, controller } = fakeTurn();
    controller.abort('gone');
    const { events, error } = await collectFailure((await runtimeFor(scripted)).run(context));
    expect(events).toEqual([]);
    expect(error).toBe('gone');
    expect(scripted.turns[0]?.aborted).toBe(true);
  });

  test('an abort stops a turn function and runs its cleanup', async () => {
    const scripted = new ScriptedRuntime();
    let cleaned = false;
    scripted.turn(async function* () {
      try {
        yield { type: 'agent_choice', content: 'a' };
        yield { type: 'agent_choice', content: 'b' };
      } finally {
        cleaned = true;
      }
    });
    const { context, controller } = fakeTurn();
    const iterator = (await runtimeFor(scripted)).run(context)[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort(new Error('stop'));
    await expect(iterator.next()).rejects.toThrow('stop');
    expect(cleaned).toBe(true);
  });

  test('an abort after the turn ended does not mark it aborted', async () => {
    const scripted = new ScriptedRuntime();
    scripted.reply('ok');
    const { context, controller } = fakeTurn();
    await collect((await runtimeFor(scripted)).run(context));
    controller.abort();
    expect(scripted.turns[0]?.aborted).toBe(false);
  });
});

describe('ScriptedRuntime holds', () => {
  test('a hold pauses the turn until release, and waitUntilHeld resolves when it gets there', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([
      { type: 'agent_choice', content: 'before' },
      step.hold('mid'),
      { type: 'agent_choice', content: 'after' },
    ]);
    const iterator = (await runtimeFor(scripted))
      .run(fakeTurn({ turnId: 'tA' }).context)
      [Symbol.asyncIterator]();
    let reached = false;
    const waiting = scripted.waitUntilHeld('mid').then((info) => {
      reached = true;
      return info;
    });
    await flush();
    expect(reached).toBe(false);
    expect(await iterator.next()).toEqual({
      done: false,
      value: { type: 'agent_choice', content: 'before' },
    });
    let next: IteratorResult<RuntimeEventInput> | undefined;
    const pending = iterator.next().then((result) => {
      next = result;
    });
    expect(await waiting).toEqual({ name: 'mid', sessionId: 's1', turnId: 'tA' });
    expect(scripted.held).toEqual([{ name: 'mid', sessionId: 's1', turnId: 'tA' }]);
    await flush();
    expect(next).toBeUndefined();
    expect(scripted.release('mid')).toBe(1);
    await pending;
    expect(next).toEqual({ done: false, value: { type: 'agent_choice', content: 'after' } });
    expect(scripted.held).toEqual([]);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    scripted.assertConsumed();
  });

  test('waitUntilHeld resolves at once when a matching hold is already held', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.hold()]);
    const turn = collect((await runtimeFor(scripted)).run(fakeTurn().context));
    await scripted.waitUntilHeld();
    await expect(scripted.waitUntilHeld()).resolves.toEqual({
      name: undefined,
      sessionId: 's1',
      turnId: 't1',
    });
    scripted.release();
    expect(await turn).toEqual([]);
  });

  test('waitUntilHeld and release match by name and session', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.hold('x')], { sessionId: 's1' });
    scripted.turn([step.hold('x')], { sessionId: 's2' });
    scripted.turn([step.hold('y')], { sessionId: 's3' });
    const onS2 = scripted.waitUntilHeld('x', { sessionId: 's2' });
    const onY = scripted.waitUntilHeld('y');
    let s2Reached = false;
    void onS2.then(() => {
      s2Reached = true;
    });
    const turn1 = collect((await runtimeFor(scripted, 's1')).run(fakeTurn({ sessionId: 's1' }).context));
    await scripted.waitUntilHeld('x', { sessionId: 's1' });
    await flush();
    expect(s2Reached).toBe(false);
    const turn2 = collect((await runtimeFor(scripted, 's2')).run(fakeTurn({ sessionId: 's2' }).context));
    const turn3 = collect((await runtimeFor(scripted, 's3')).run(fakeTurn({ sessionId: 's3' }).context));
    expect(await onS2).toEqual({ name: 'x', sessionId: 's2', turnId: 't1' });
    expect(await onY).toEqual({ name: 'y', sessionId: 's3', turnId: 't1' });
    expect(scripted.release('x', { sessionId: 's2' })).toBe(1);
    await turn2;
    expect(scripted.held.map((hold) => hold.sessionId)).toEqual(['s1', 's3']);
    expect(scripted.release()).toBe(2);
    await Promise.all([turn1, turn3]);
    scripted.assertConsumed();
  });

  test('release(name) releases every turn held there', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.hold('gate')]).turn([step.hold('gate')]);
    const turn1 = collect((await runtimeFor(scripted, 's1')).run(fakeTurn({ sessionId: 's1' }).context));
    await scripted.waitUntilHeld('gate');
    const turn2 = collect((await runtimeFor(scripted, 's2')).run(fakeTurn({ sessionId: 's2' }).context));
    await scripted.waitUntilHeld('gate', { sessionId: 's2' });
    expect(scripted.release('gate')).toBe(2);
    await Promise.all([turn1, turn2]);
  });

  test('release throws when no turn is paused at a matching hold', async () => {
    const scripted = new ScriptedRuntime();
    expect(() => scripted.release('nope')).toThrow(
      'ScriptedRuntime: release: no turn is paused at hold "nope" (held: none)',
    );
    expect(() => scripted.release()).toThrow('no turn is paused at any hold');
    scripted.turn([step.hold('a')]);
    const turn = collect((await runtimeFor(scripted)).run(fakeTurn().context));
    await scripted.waitUntilHeld('a');
    expect(() => scripted.release('b')).toThrow('(held: hold "a" in turn t1 of session s1)');
    expect(() => scripted.release('a', { sessionId: 's2' })).toThrow('of session s2');
    scripted.release('a');
    await turn;
  });

  test('a release before the hold is reached does not carry over', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([{ type: 'agent_choice', content: 'x' }, step.hold('late')]);
    const iterator = (await runtimeFor(scripted)).run(fakeTurn().context)[Symbol.asyncIterator]();
    await iterator.next();
    expect(() => scripted.release('late')).toThrow();
    let settled = false;
    const pending = iterator.next().then(() => {
      settled = true;
    });
    await scripted.waitUntilHeld('late');
    await flush();
    expect(settled).toBe(false);
    scripted.release('late');
    await pending;
    expect(settled).toBe(true);
  });

  test('an abort while held makes run throw signal.reason and clears the hold', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.hold('h'), { type: 'agent_choice', content: 'never' }]);
    const { context, controller } = fakeTurn();
    const turn = collectFailure((await runtimeFor(scripted)).run(context));
    await scripted.waitUntilHeld('h');
    const reason = new DOMException('cancelled', 'AbortError');
    controller.abort(reason);
    const { events, error } = await turn;
    expect(events).toEqual([]);
    expect(error).toBe(reason);
    expect(scripted.held).toEqual([]);
    expect(scripted.turns[0]).toMatchObject({ aborted: true, outcome: 'threw' });
    scripted.assertConsumed();
  });
});

describe('ScriptedRuntime authorize step', () => {
  const toolCall = { id: 'call_1', name: 'shell', arguments: '{"cmd":"ls"}' };

  test('an approved call yields the message, tool_call, response and tool message in order', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date(NOW) });
    const scripted = new ScriptedRuntime();
    scripted.turn([step.authorize(toolCall, { readOnly: true, result: 'a.txt' })]);
    const { context, authorizations } = fakeTurn();
    const events = await collect((await runtimeFor(scripted)).run(context));
    expect(events).toEqual([
      {
        type: 'message_added',
        message: {
          id: expect.stringMatching(/^msg_/),
          role: 'assistant',
          content: '',
          toolCalls: [toolCall],
          createdAt: NOW,
        },
      },
      { type: 'tool_call', toolCall },
      { type: 'tool_call_response', toolCallId: 'call_1', response: 'a.txt' },
      {
        type: 'message_added',
        message: {
          id: expect.stringMatching(/^msg_/),
          role: 'tool',
          content: 'a.txt',
          toolCallId: 'call_1',
          createdAt: NOW,
        },
      },
    ]);
    expect(authorizations).toEqual([{ toolCall, readOnly: true }]);
    expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
  });

  test('the authorisation is asked after tool_call is yielded and before the response', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.authorize(toolCall, { messages: false })]);
    let decide: (decision: ToolDecision) => void = () => {};
    const { context, authorizations } = fakeTurn({
      decide: () =>
        new Promise((resolve) => {
          decide = resolve;
        }),
    });
    const iterator = (await runtimeFor(scripted)).run(context)[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: { type: 'tool_call', toolCall } });
    expect(authorizations).toEqual([]);
    const next = iterator.next();
    await flush();
    expect(authorizations).toEqual([{ toolCall }]);
    expect(scripted.turns[0]?.decisions).toEqual([]);
    decide({ approved: true });
    expect(await next).toEqual({
      done: false,
      value: { type: 'tool_call_response', toolCallId: 'call_1', response: 'ok' },
    });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  test('a rejected call yields the reason as an error response and tool message', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.authorize(toolCall, { safe: false })]);
    const { context, authorizations } = fakeTurn({
      decide: () => ({ approved: false, reason: 'not allowed' }),
    });
    const events = await collect((await runtimeFor(scripted)).run(context));
    expect(events[2]).toEqual({
      type: 'tool_call_response',
      toolCallId: 'call_1',
      response: 'not allowed',
      isError: true,
    });
    expect(events[3]).toEqual({
      type: 'message_added',
      message: expect.objectContaining({ role: 'tool', content: 'not allowed', toolCallId: 'call_1' }),
    });
    expect(authorizations).toEqual([{ toolCall, safe: false }]);
    expect(scripted.turns[0]?.decisions).toEqual([{ approved: false, reason: 'not allowed' }]);
  });

  test('messages: false yields only tool_call and tool_call_response', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.authorize(toolCall, { messages: false })]);
    const events = await collect((await runtimeFor(scripted)).run(fakeTurn().context));
    expect(events.map((event) => event.type)).toEqual(['tool_call', 'tool_call_response']);
  });

  test('authorize fills in an id and serialises object arguments', () => {
    const made = step.authorize({ name: 'write', arguments: { path: 'a', n: 1 } });
    expect(made.toolCall).toEqual({
      id: expect.stringMatching(/^call_/),
      name: 'write',
      arguments: '{"path":"a","n":1}',
    });
    expect(step.authorize({ name: 'noop' }).toolCall.arguments).toBe('{}');
    expect(step.authorize({ name: 'a' }).toolCall.id).not.toBe(step.authorize({ name: 'a' }).toolCall.id);
  });

  test('a rejected authorisation wait is thrown out of run', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.authorize(toolCall)]);
    const reason = new Error('turn cancelled');
    const { context } = fakeTurn({ decide: () => Promise.reject(reason) });
    const { events, error } = await collectFailure((await runtimeFor(scripted)).run(context));
    expect(events.map((event) => event.type)).toEqual(['message_added', 'tool_call']);
    expect(error).toBe(reason);
    expect(scripted.turns[0]?.decisions).toEqual([]);
  });
});

describe('ScriptedRuntime elicit and steering steps', () => {
  test('elicit passes the request, records the answer and yields it as a custom event', async () => {
    const scripted = new ScriptedRuntime();
    const request: ElicitationRequest = { message: 'Your name?', schema: { type: 'object' } };
    scripted.turn([step.elicit(request), step.elicit({ message: 'again?' })]);
    const answers: ElicitationResult[] = [
      { action: 'accept', content: { name: 'Ada' } },
      { action: 'cancel' },
    ];
    const { context, elicitations } = fakeTurn({ answer: () => answers.shift()! });
    const events = await collect((await runtimeFor(scripted)).run(context));
    expect(elicitations[0]).toBe(request);
    expect(events).toEqual([
      { type: 'custom', name: 'elicitation_result', data: { action: 'accept', content: { name: 'Ada' } } },
      { type: 'custom', name: 'elicitation_result', data: { action: 'cancel' } },
    ]);
    expect(scripted.turns[0]?.elicitations).toEqual([
      { action: 'accept', content: { name: 'Ada' } },
      { action: 'cancel' },
    ]);
  });

  test('takeSteering records each drain, empty ones included, and yields the count', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.takeSteering(), step.takeSteering()]);
    const steered = [userMessage('a', 'one'), userMessage('b', 'two')];
    const { context } = fakeTurn({ steering: [steered] });
    const events = await collect((await runtimeFor(scripted)).run(context));
    expect(events).toEqual([
      { type: 'custom', name: 'steering_taken', data: { count: 2 } },
      { type: 'custom', name: 'steering_taken', data: { count: 0 } },
    ]);
    expect(scripted.turns[0]?.steered).toEqual([steered, []]);
    expect(scripted.turns[0]?.steered[0]).toBe(steered);
  });
});

describe('ScriptedRuntime assertConsumed', () => {
  test('assertConsumed passes on a fresh runtime and once everything is played out', async () => {
    const scripted = new ScriptedRuntime();
    scripted.assertConsumed();
    scripted.reply('x');
    await collect((await runtimeFor(scripted)).run(fakeTurn().context));
    scripted.assertConsumed();
  });

  test('assertConsumed lists unconsumed turns, holds and failures', async () => {
    const scripted = new ScriptedRuntime();
    scripted.turn([step.hold('stuck')]);
    scripted.reply('a long answer that goes on and on and on for a while', { sessionId: 's9' });
    scripted.turn(new Error('boom'), { label: 'the failure' });
    const turn = collect((await runtimeFor(scripted)).run(fakeTurn().context));
    scripted.failNextFactory(new Error('f')).failNextSetModel(new Error('m')).failNextClose(new Error('c'));
    await scripted.waitUntilHeld('stuck');
    let message = '';
    try {
      scripted.assertConsumed();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe(
      [
        'ScriptedRuntime: script not consumed:',
        '- 2 scripted turn(s) not run: the failure (any session); reply "a long answer that goes on and on and on…" (session s9)',
        '- still held: hold "stuck" in turn t1 of session s1',
        '- 1 failNextFactory failure(s) not used',
        '- 1 failNextSetModel failure(s) not used',
        '- 1 failNextClose failure(s) not used',
      ].join('\n'),
    );
    scripted.release('stuck');
    await turn;
  });

  test('assertConsumed reports an unexpected turn even if its error was swallowed', async () => {
    const scripted = new ScriptedRuntime();
    const runtime = await runtimeFor(scripted, 'sX');
    await collectFailure(runtime.run(fakeTurn({ sessionId: 'sX' }).context));
    expect(() => scripted.assertConsumed()).toThrow(
      'ScriptedRuntime: unexpected turn 1 of session sX: no turn scripted',
    );
  });
});

describe('ScriptedRuntime packaging', () => {
  test('the module never imports vitest', async () => {
    const source = await readFile(new URL('../../src/testing/scripted-runtime.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/from ['"](vitest|jest|node:test)/);
    expect(source).not.toMatch(/import\(['"]vitest/);
  });
});
