// The AI SDK runtime's tool loop, driven through a real SessionManager on a MemoryStore with the
// SDK's MockLanguageModelV3: steps, approvals, rejections, tool errors and progress, steering,
// the step limit and finish reasons.
import { tool } from 'ai';
import { afterEach, describe, expect, test } from 'vitest';
import * as z from 'zod';
import { type AiSdkRuntimeOptions, createAiSdkRuntime } from '../../src/ai-sdk/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import {
  answer,
  callTools,
  finish,
  ofType,
  reasoning,
  runTurn,
  type ScriptEntry,
  scriptedModel,
  shape,
  step,
  text,
  toolCall,
  usage,
} from './helpers.js';

let manager: SessionManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

/** A weather tool that records its calls. */
function weatherTool() {
  const calls: string[] = [];
  const weather = tool({
    description: 'The weather in a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return { city, sky: 'sunny', celsius: 21 };
    },
  });
  return { weather, calls };
}

async function start(script: ScriptEntry[], options: Omit<AiSdkRuntimeOptions, 'model'> = {}) {
  const model = scriptedModel(script);
  manager = new SessionManager({
    runtime: createAiSdkRuntime({ model, ...options }),
    store: new MemoryStore(),
  });
  const session = await manager.createSession();
  return { model, manager, sessionId: session.id };
}

describe('a multi-step tool loop', () => {
  test('streams the call, runs the approved tool, persists each step and answers with its result', async () => {
    const { weather, calls } = weatherTool();
    const { model, manager, sessionId } = await start(
      [callTools(['call-1', 'weather', { city: 'Paris' }]), answer('Sunny in Paris.')],
      { tools: { weather: { tool: weather, readOnly: true } } },
    );
    const { events, result } = await runTurn(manager, sessionId, { messages: ['Weather in Paris?'] });

    expect(result.stopReason).toBe('end_turn');
    expect(calls).toEqual(['Paris']);
    const runtimeTypes = events
      .map((event) => event.type)
      .filter(
        (type) => !['stream_started', 'user_message', 'session_title', 'stream_stopped'].includes(type),
      );
    expect(runtimeTypes).toEqual([
      'partial_tool_call',
      'partial_tool_call',
      'partial_tool_call',
      'tool_call',
      'token_usage',
      'message_added',
      'tool_call_response',
      'message_added',
      'agent_choice',
      'agent_choice',
      'agent_choice',
      'token_usage',
      'message_added',
    ]);
    expect(ofType(events, 'partial_tool_call').at(-1)?.toolCall).toEqual({
      id: 'call-1',
      name: 'weather',
      arguments: '{"city":"Paris"}',
    });
    expect(ofType(events, 'tool_call_response')[0]).toMatchObject({
      toolCallId: 'call-1',
      response: '{"city":"Paris","sky":"sunny","celsius":21}',
    });
    expect(ofType(events, 'tool_call_response')[0]?.isError).toBeUndefined();

    const session = await manager.getSession(sessionId);
    expect(shape(session)).toEqual(['user', 'assistant+calls', 'tool', 'assistant']);
    const [, call, result1, final] = session.items.map((item) =>
      item.kind === 'message' ? item.message : null,
    );
    expect(call).toMatchObject({
      toolCalls: [{ id: 'call-1', name: 'weather', arguments: '{"city":"Paris"}' }],
      model: 'mock-model',
      usage: { inputTokens: 10, outputTokens: 5, cost: 0 },
    });
    expect(result1).toMatchObject({ role: 'tool', toolCallId: 'call-1', toolName: 'weather' });
    expect(result1?.isError).toBeUndefined();
    expect(final).toMatchObject({ role: 'assistant', content: 'Sunny in Paris.', model: 'mock-model' });

    // The second model call saw the call and its result.
    expect(model.doStreamCalls).toHaveLength(2);
    expect(model.doStreamCalls[1]?.prompt.slice(1)).toMatchObject([
      { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 'call-1', input: { city: 'Paris' } }] },
      {
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: 'call-1',
            toolName: 'weather',
            output: { type: 'text', value: '{"city":"Paris","sky":"sunny","celsius":21}' },
          },
        ],
      },
    ]);
    // Tools are offered to the model, but the SDK never ran one on its own.
    expect(model.doStreamCalls[0]?.tools?.map((entry) => entry.name)).toEqual(['weather']);
  });

  test('runs several calls of one step in order and answers after all of them', async () => {
    const { weather, calls } = weatherTool();
    const { model, manager, sessionId } = await start(
      [
        callTools(['c1', 'weather', { city: 'Paris' }], ['c2', 'weather', { city: 'Oslo' }]),
        callTools(['c3', 'weather', { city: 'Rome' }]),
        answer('Done.'),
      ],
      { tools: { weather: { tool: weather, readOnly: true } } },
    );
    const { result } = await runTurn(manager, sessionId, { messages: ['Three cities'] });
    expect(result.stopReason).toBe('end_turn');
    expect(calls).toEqual(['Paris', 'Oslo', 'Rome']);
    expect(shape(await manager.getSession(sessionId))).toEqual([
      'user',
      'assistant+calls',
      'tool',
      'tool',
      'assistant+calls',
      'tool',
      'assistant',
    ]);
    // One tool message per step's results, as the SDK builds them.
    const tool = model.doStreamCalls[1]?.prompt.find((message) => message.role === 'tool');
    expect(tool?.content.map((part) => (part.type === 'tool-result' ? part.toolCallId : ''))).toEqual([
      'c1',
      'c2',
    ]);
  });

  test('a text answer with reasoning streams both and stores the reasoning with the answer', async () => {
    const { manager, sessionId, model } = await start([
      step(reasoning('The user greets me.'), text('Hello there!'), finish('stop')),
      answer('Again.'),
    ]);
    const { events } = await runTurn(manager, sessionId, { messages: ['Hi'] });
    expect(ofType(events, 'agent_choice_reasoning').map((event) => event.content)).toEqual([
      'The user greets me.',
    ]);
    expect(
      ofType(events, 'agent_choice')
        .map((event) => event.content)
        .join(''),
    ).toBe('Hello there!');
    const stored = (await manager.getSession(sessionId)).items[1];
    expect(stored).toMatchObject({
      kind: 'message',
      message: { role: 'assistant', content: 'Hello there!', reasoning: 'The user greets me.' },
    });
    await runTurn(manager, sessionId, { messages: ['Again'] });
    expect(model.doStreamCalls[1]?.prompt[1]).toMatchObject({
      role: 'assistant',
      content: [
        { type: 'reasoning', text: 'The user greets me.' },
        { type: 'text', text: 'Hello there!' },
      ],
    });
  });
});

describe('tools run only after approval', () => {
  test('a tool that is not read-only waits for resumeSession and does not run before it', async () => {
    const { weather, calls } = weatherTool();
    const { manager, sessionId } = await start(
      [callTools(['c1', 'weather', { city: 'Paris' }]), answer('Sunny.')],
      { tools: { weather } },
    );
    let ranBeforeAnswer: number | undefined;
    const { events, result } = await runTurn(
      manager,
      sessionId,
      { messages: ['Weather?'] },
      async (event) => {
        if (event.type !== 'tool_call_confirmation') return;
        ranBeforeAnswer = calls.length;
        await manager.resumeSession(sessionId, { confirmation: 'approve' });
      },
    );
    expect(result.stopReason).toBe('end_turn');
    expect(ofType(events, 'tool_call_confirmation')).toHaveLength(1);
    expect(ofType(events, 'tool_call_confirmation')[0]?.toolCall).toEqual({
      id: 'c1',
      name: 'weather',
      arguments: '{"city":"Paris"}',
    });
    expect(ranBeforeAnswer).toBe(0);
    expect(calls).toEqual(['Paris']);
  });

  test('a rejection does not run the tool and gives the model the reason as an error result', async () => {
    const { weather, calls } = weatherTool();
    const { manager, sessionId, model } = await start(
      [callTools(['c1', 'weather', { city: 'Paris' }]), answer('I could not check.')],
      { tools: { weather } },
    );
    const { events, result } = await runTurn(
      manager,
      sessionId,
      { messages: ['Weather?'] },
      async (event) => {
        if (event.type === 'tool_call_confirmation') {
          await manager.resumeSession(sessionId, { confirmation: 'reject', reason: 'not today' });
        }
      },
    );
    expect(result.stopReason).toBe('end_turn');
    expect(calls).toEqual([]);
    expect(ofType(events, 'tool_call_response')[0]).toMatchObject({
      toolCallId: 'c1',
      response: 'The tool did not run: not today',
      isError: true,
    });
    const stored = (await manager.getSession(sessionId)).items[2];
    expect(stored).toMatchObject({
      kind: 'message',
      message: { role: 'tool', toolCallId: 'c1', toolName: 'weather', isError: true },
    });
    expect(model.doStreamCalls[1]?.prompt.at(-1)).toMatchObject({
      role: 'tool',
      content: [
        { type: 'tool-result', output: { type: 'error-text', value: 'The tool did not run: not today' } },
      ],
    });
  });

  test('approve-tool runs the call and later calls of that tool without asking again', async () => {
    const { weather, calls } = weatherTool();
    const { manager, sessionId } = await start(
      [
        callTools(['c1', 'weather', { city: 'Paris' }]),
        callTools(['c2', 'weather', { city: 'Oslo' }]),
        answer('Both sunny.'),
      ],
      { tools: { weather } },
    );
    const { events } = await runTurn(manager, sessionId, { messages: ['Two cities'] }, async (event) => {
      if (event.type === 'tool_call_confirmation') {
        await manager.resumeSession(sessionId, { confirmation: 'approve-tool' });
      }
    });
    expect(ofType(events, 'tool_call_confirmation')).toHaveLength(1);
    expect(calls).toEqual(['Paris', 'Oslo']);
    expect((await manager.getSession(sessionId)).permissions.allow).toEqual(['weather']);
  });

  test.each([
    { policy: '' as const, flags: { readOnly: true }, asks: false },
    { policy: '' as const, flags: { safe: true }, asks: true },
    { policy: 'balanced' as const, flags: { safe: true }, asks: false },
    { policy: 'balanced' as const, flags: {}, asks: true },
    { policy: 'restricted' as const, flags: { readOnly: true }, asks: false },
  ])('policy "$policy" with a tool marked $flags asks: $asks', async ({ policy, flags, asks }) => {
    const { weather, calls } = weatherTool();
    const { manager, sessionId } = await start(
      [callTools(['c1', 'weather', { city: 'Paris' }]), answer('Ok.')],
      { tools: { weather: { tool: weather, ...flags } } },
    );
    await manager.setSessionSafetyPolicy(sessionId, policy);
    const { events } = await runTurn(manager, sessionId, { messages: ['Weather?'] }, async (event) => {
      if (event.type === 'tool_call_confirmation')
        await manager.resumeSession(sessionId, { confirmation: 'approve' });
    });
    expect(ofType(events, 'tool_call_confirmation').length > 0).toBe(asks);
    expect(calls).toEqual(policy === 'restricted' ? [] : ['Paris']);
  });
});

describe('tool results', () => {
  test('a tool that throws gives an isError result and the loop goes on', async () => {
    const failing = tool({
      inputSchema: z.object({ path: z.string() }),
      execute: async ({ path }): Promise<string> => {
        throw new Error(`cannot read ${path}`);
      },
    });
    const { manager, sessionId, model } = await start(
      [callTools(['c1', 'read', { path: 'a.txt' }]), answer('It failed.')],
      { tools: { read: { tool: failing, readOnly: true } } },
    );
    const { events, result } = await runTurn(manager, sessionId, { messages: ['Read a.txt'] });
    expect(result.stopReason).toBe('end_turn');
    expect(ofType(events, 'tool_call_response')[0]).toMatchObject({
      response: 'cannot read a.txt',
      isError: true,
    });
    expect(model.doStreamCalls[1]?.prompt.at(-1)).toMatchObject({
      role: 'tool',
      content: [{ output: { type: 'error-text', value: 'cannot read a.txt' } }],
    });
  });

  test('a call of an unknown tool or with input that fails the schema is an error result, never authorised', async () => {
    const { weather, calls } = weatherTool();
    const { manager, sessionId } = await start(
      [
        step(
          toolCall('c1', 'teleport', { to: 'Mars' }),
          toolCall('c2', 'weather', { town: 'Paris' }),
          finish('tool-calls'),
        ),
        answer('Sorry.'),
      ],
      { tools: { weather } },
    );
    const { events, result } = await runTurn(manager, sessionId, { messages: ['Go'] });
    expect(result.stopReason).toBe('end_turn');
    expect(ofType(events, 'tool_call_confirmation')).toEqual([]);
    expect(calls).toEqual([]);
    const responses = ofType(events, 'tool_call_response');
    expect(responses.map((event) => [event.toolCallId, event.isError])).toEqual([
      ['c1', true],
      ['c2', true],
    ]);
    expect(responses[0]?.response).toMatch(/teleport/);
    expect(shape(await manager.getSession(sessionId))).toEqual([
      'user',
      'assistant+calls',
      'tool!',
      'tool!',
      'assistant',
    ]);
  });

  test('an execute that is an async generator reports its preliminary values as tool_call_output', async () => {
    const build = tool({
      inputSchema: z.object({}),
      async *execute() {
        yield 'compiling…';
        yield { progress: 0.5 };
        yield 'built 3 files';
      },
    });
    const { manager, sessionId } = await start([callTools(['c1', 'build', {}]), answer('Built.')], {
      tools: { build: { tool: build, readOnly: true } },
    });
    const { events } = await runTurn(manager, sessionId, { messages: ['Build it'] });
    expect(ofType(events, 'tool_call_output').map((event) => [event.toolCallId, event.output])).toEqual([
      ['c1', 'compiling…'],
      ['c1', '{"progress":0.5}'],
    ]);
    expect(ofType(events, 'tool_call_response')[0]?.response).toBe('built 3 files');
  });

  test("a tool's toModelOutput decides the stored text, and its error outputs are errors", async () => {
    const lookup = tool({
      inputSchema: z.object({ id: z.number() }),
      execute: async ({ id }) => ({ id, found: id === 1 }),
      toModelOutput: ({ output }) =>
        output.found
          ? { type: 'text', value: `record ${output.id}` }
          : { type: 'error-text', value: `no record ${output.id}` },
    });
    const { manager, sessionId } = await start(
      [callTools(['c1', 'lookup', { id: 1 }], ['c2', 'lookup', { id: 2 }]), answer('Ok.')],
      { tools: { lookup: { tool: lookup, readOnly: true } } },
    );
    const { events } = await runTurn(manager, sessionId, { messages: ['Look up'] });
    expect(
      ofType(events, 'tool_call_response').map((event) => [event.response, event.isError ?? false]),
    ).toEqual([
      ['record 1', false],
      ['no record 2', true],
    ]);
  });
});

describe('steering', () => {
  test('a message steered while a tool waits joins the conversation after the tool result', async () => {
    const { weather } = weatherTool();
    const { manager, sessionId, model } = await start(
      [callTools(['c1', 'weather', { city: 'Paris' }]), answer('Sunny, and briefly.')],
      { tools: { weather } },
    );
    const { events, result } = await runTurn(
      manager,
      sessionId,
      { messages: ['Weather?'] },
      async (event) => {
        if (event.type !== 'tool_call_confirmation') return;
        await manager.steerSession(sessionId, ['Keep it short.']);
        await manager.resumeSession(sessionId, { confirmation: 'approve' });
      },
    );
    expect(result.stopReason).toBe('end_turn');
    const turnIds = new Set(events.map((event) => event.turnId));
    expect(turnIds.size).toBe(1);
    expect(ofType(events, 'user_message').map((event) => event.message.content)).toEqual([
      'Weather?',
      'Keep it short.',
    ]);
    expect(shape(await manager.getSession(sessionId))).toEqual([
      'user',
      'assistant+calls',
      'tool',
      'user',
      'assistant',
    ]);
    expect(model.doStreamCalls[1]?.prompt.map((message) => message.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'user',
    ]);
    expect(model.doStreamCalls[1]?.prompt.at(-1)).toMatchObject({
      role: 'user',
      content: [{ type: 'text', text: 'Keep it short.' }],
    });
  });
});

describe('how a turn ends', () => {
  test('the step limit ends the turn with max_turn_requests after that many model calls', async () => {
    const { weather, calls } = weatherTool();
    const { manager, sessionId, model } = await start(
      [callTools(['c1', 'weather', { city: 'A' }]), callTools(['c2', 'weather', { city: 'B' }])],
      { tools: { weather: { tool: weather, readOnly: true } }, maxSteps: 2 },
    );
    const { events, result } = await runTurn(manager, sessionId, { messages: ['Loop'] });
    expect(result.stopReason).toBe('max_turn_requests');
    expect(ofType(events, 'turn_end').map((event) => event.reason)).toEqual(['max_turn_requests']);
    expect(model.doStreamCalls).toHaveLength(2);
    expect(calls).toEqual(['A', 'B']);
    expect(shape(await manager.getSession(sessionId))).toEqual([
      'user',
      'assistant+calls',
      'tool',
      'assistant+calls',
      'tool',
    ]);
  });

  test.each([
    { reason: 'length' as const, stop: 'max_tokens' },
    { reason: 'content-filter' as const, stop: 'refusal' },
  ])(
    'finish reason $reason ends the turn with $stop, the partial answer stored',
    async ({ reason, stop }) => {
      const { manager, sessionId } = await start([step(text('A long story that'), finish(reason))]);
      const { events, result } = await runTurn(manager, sessionId, { messages: ['Tell me a story'] });
      expect(result.stopReason).toBe(stop);
      expect(ofType(events, 'turn_end').map((event) => event.reason)).toEqual([stop]);
      const session = await manager.getSession(sessionId);
      expect(session.items[1]).toMatchObject({
        message: { role: 'assistant', content: 'A long story that' },
      });
    },
  );

  test('tool calls of a response cut off at the token limit do not run and get error results', async () => {
    const { weather, calls } = weatherTool();
    const { manager, sessionId } = await start(
      [step(toolCall('c1', 'weather', { city: 'Paris' }), finish('length'))],
      { tools: { weather: { tool: weather, readOnly: true } } },
    );
    const { result } = await runTurn(manager, sessionId, { messages: ['Weather?'] });
    expect(result.stopReason).toBe('max_tokens');
    expect(calls).toEqual([]);
    expect(shape(await manager.getSession(sessionId))).toEqual(['user', 'assistant+calls', 'tool!']);
  });

  test('a model that answers with nothing ends the turn without storing an empty message', async () => {
    const { manager, sessionId } = await start([step(finish('stop', usage(3, 0)))]);
    const { result } = await runTurn(manager, sessionId, { messages: ['…'] });
    expect(result.stopReason).toBe('end_turn');
    expect(shape(await manager.getSession(sessionId))).toEqual(['user']);
  });
});

describe('tool context', () => {
  test("toolContext hands tools the turn's elicit: a tool asks the human and uses the answer", async () => {
    const signUp = tool({
      inputSchema: z.object({}),
      execute: async (_input, { experimental_context }) => {
        const { elicit } = experimental_context as {
          elicit: (request: { message: string }) => Promise<unknown>;
        };
        const answer = (await elicit({ message: 'Which email?' })) as {
          action: string;
          content?: { email: string };
        };
        return answer.action === 'accept' ? `signed up ${answer.content?.email}` : 'not signed up';
      },
    });
    const { manager, sessionId } = await start([callTools(['c1', 'sign_up', {}]), answer('Done.')], {
      tools: { sign_up: { tool: signUp, readOnly: true } },
      toolContext: (turn) => ({ elicit: turn.elicit }),
    });
    const { events } = await runTurn(manager, sessionId, { messages: ['Sign me up'] }, async (event) => {
      if (event.type === 'elicitation_request') {
        await manager.resumeElicitation(sessionId, {
          action: 'accept',
          content: { email: 'ada@example.com' },
        });
      }
    });
    expect(ofType(events, 'elicitation_request').map((event) => event.message)).toEqual(['Which email?']);
    expect(ofType(events, 'tool_call_response')[0]?.response).toBe('signed up ada@example.com');
  });
});
