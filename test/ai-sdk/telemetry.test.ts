// The AI SDK runtime under tracing (agent-sessions/otel, the SDK's InMemorySpanExporter; the model is
// the AI SDK's MockLanguageModelV3): execute_tool spans under the turn's invoke_agent span, and the
// model and provider the runtime adds to the turn's span.
import { SpanStatusCode } from '@opentelemetry/api';
import { tool } from 'ai';
import { afterEach, expect, test } from 'vitest';
import * as z from 'zod';
import { createAiSdkRuntime } from '../../src/ai-sdk/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { childrenOf, expectInternal, only, spanRecorder } from '../helpers/spans.js';
import { answer, callTools, runTurn, scriptedModel, usage } from './helpers.js';

let manager: SessionManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

const weather = tool({
  description: 'The weather in a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => {
    if (city === 'Atlantis') throw new Error('no such city');
    return { city, sky: 'sunny' };
  },
});

test('each tool call runs in an execute_tool span under the turn span; the turn span gets model, provider and summed usage', async () => {
  const recorder = spanRecorder();
  const model = scriptedModel([
    callTools(['call-1', 'weather', { city: 'Paris' }], ['call-2', 'weather', { city: 'Atlantis' }]),
    answer('Sunny in Paris.', usage(7, 3)),
  ]);
  manager = new SessionManager({
    runtime: createAiSdkRuntime({ model, tools: { weather: { tool: weather, readOnly: true } } }),
    store: new MemoryStore(),
    telemetry: recorder.telemetry,
  });
  const session = await manager.createSession();
  const { result } = await runTurn(manager, session.id, { messages: ['Weather?'] });
  expect(result.stopReason).toBe('end_turn');

  const spans = await recorder.spans();
  const turn = only(spans, 'invoke_agent');
  expect(turn.attributes).toMatchObject({
    'gen_ai.request.model': 'mock-model',
    'gen_ai.provider.name': 'mock',
    'gen_ai.response.model': 'mock-model',
    // The two model calls: usage(10, 5) for the tool-call step, usage(7, 3) for the answer.
    'gen_ai.usage.input_tokens': 17,
    'gen_ai.usage.output_tokens': 8,
  });
  const tools = childrenOf(spans, turn).filter((span) => span.name === 'execute_tool weather');
  expect(tools.map((span) => span.attributes)).toEqual([
    {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'weather',
      'gen_ai.tool.call.id': 'call-1',
      'gen_ai.tool.type': 'function',
      'gen_ai.tool.description': 'The weather in a city',
    },
    {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'weather',
      'gen_ai.tool.call.id': 'call-2',
      'gen_ai.tool.type': 'function',
      'gen_ai.tool.description': 'The weather in a city',
      'error.type': 'tool_error',
    },
  ]);
  for (const span of tools) expectInternal(span);
  expect(tools.map((span) => span.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.ERROR]);
  expect(tools[1]?.status.message).toBe('no such city');
  // The tool failed, not the turn.
  expect(turn.status.code).toBe(SpanStatusCode.UNSET);
});

test('a tool the human rejects runs in no execute_tool span; the approval wait is traced instead', async () => {
  const recorder = spanRecorder();
  const model = scriptedModel([
    callTools(['call-1', 'weather', { city: 'Paris' }]),
    answer('OK, I will not.'),
  ]);
  manager = new SessionManager({
    runtime: createAiSdkRuntime({ model, tools: { weather } }),
    store: new MemoryStore(),
    telemetry: recorder.telemetry,
  });
  const session = await manager.createSession();
  const current = manager;
  await runTurn(current, session.id, { messages: ['Weather?'] }, async (event) => {
    if (event.type === 'tool_call_confirmation')
      await current.resumeSession(session.id, { confirmation: 'reject', reason: 'not now' });
  });
  const spans = await recorder.spans();
  const turn = only(spans, 'invoke_agent');
  const names = childrenOf(spans, turn).map((span) => span.name);
  expect(names).toContain('await_confirmation weather');
  expect(names).not.toContain('execute_tool weather');
});

test('without telemetry the runtime gets no span and makes none', async () => {
  const recorder = spanRecorder();
  const model = scriptedModel([callTools(['call-1', 'weather', { city: 'Paris' }]), answer('Sunny.')]);
  const seen: unknown[] = [];
  manager = new SessionManager({
    runtime: createAiSdkRuntime({
      model,
      tools: { weather: { tool: weather, readOnly: true } },
      system: ({ turn }) => {
        seen.push(turn.span);
        return undefined;
      },
    }),
    store: new MemoryStore(),
  });
  const session = await manager.createSession();
  await runTurn(manager, session.id, { messages: ['Weather?'] });
  expect(seen).toEqual([undefined]);
  expect(await recorder.spans()).toEqual([]);
});
