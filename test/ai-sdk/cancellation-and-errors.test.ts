// Cancelling an AI SDK turn in each phase (streaming text, a tool running, waiting for approval),
// and provider errors, through a real SessionManager with the SDK's MockLanguageModelV3.
import { APICallError, tool } from 'ai';
import { afterEach, describe, expect, test } from 'vitest';
import * as z from 'zod';
import { createAiSdkRuntime, ModelCallError } from '../../src/ai-sdk/index.js';
import { AgentSessionsError } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import {
  answer,
  callTools,
  deferred,
  finish,
  hangingStream,
  ofType,
  runTurn,
  type ScriptEntry,
  scriptedModel,
  shape,
  step,
  text,
} from './helpers.js';

let manager: SessionManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

async function start(script: ScriptEntry[], tools?: Parameters<typeof createAiSdkRuntime>[0]['tools']) {
  const model = scriptedModel(script);
  manager = new SessionManager({
    runtime: createAiSdkRuntime({ model, callSettings: { maxRetries: 0 }, ...(tools ? { tools } : {}) }),
    store: new MemoryStore(),
  });
  const session = await manager.createSession();
  return { model, manager, sessionId: session.id };
}

describe('cancellation', () => {
  test('while text streams: the model call is aborted and the turn ends cancelled', async () => {
    let callSignal: AbortSignal | undefined;
    const { manager, sessionId } = await start([
      (options) => {
        callSignal = options.abortSignal;
        return hangingStream(text('The beginning of a long'), options);
      },
    ]);
    const { events, result } = await runTurn(manager, sessionId, { messages: ['Go on'] }, (event, stream) => {
      if (event.type === 'agent_choice') stream.cancel();
    });
    expect(result.stopReason).toBe('cancelled');
    expect(callSignal?.aborted).toBe(true);
    expect(ofType(events, 'stream_stopped').map((event) => event.reason)).toEqual(['cancelled']);
    await manager.waitStopped(sessionId, { timeoutMs: 5_000 });
    // What was streamed is kept, marked interrupted (issue 10).
    const stored = await manager.getSession(sessionId);
    expect(shape(stored)).toEqual(['user', 'assistant']);
    expect(stored.items[1]).toMatchObject({ message: { interrupted: { reason: 'cancelled' } } });
  });

  test('while text streams from a provider that ignores the abort: the runtime stops reading at once', async () => {
    const { manager, sessionId } = await start([
      () =>
        new ReadableStream({
          start(controller) {
            for (const chunk of text('Words and then silence')) controller.enqueue(chunk);
            // Never closes, never errors, ignores the call's abort signal.
          },
        }),
    ]);
    const { result } = await runTurn(manager, sessionId, { messages: ['Go on'] }, (event, stream) => {
      if (event.type === 'agent_choice') stream.cancel();
    });
    expect(result.stopReason).toBe('cancelled');
    // The runtime's run() has returned (waitStopped rejects with TIMEOUT if it still waits for a chunk).
    await manager.waitStopped(sessionId, { timeoutMs: 10_000 });
  });

  test('while a tool runs: the turn ends at once even if the tool ignores its signal', async () => {
    const started = deferred();
    let toolSignal: AbortSignal | undefined;
    const stuck = tool({
      inputSchema: z.object({}),
      execute: async (_input, { abortSignal }) => {
        toolSignal = abortSignal;
        started.resolve();
        return new Promise<string>(() => {}); // never settles, ignores the signal
      },
    });
    const { manager, sessionId } = await start([callTools(['c1', 'stuck', {}])], {
      stuck: { tool: stuck, readOnly: true },
    });
    const stream = await manager.runSession(sessionId, { messages: ['Run it'] });
    const events = (async () => {
      const seen = [];
      for await (const event of stream) seen.push(event);
      return seen;
    })();
    await started.promise;
    stream.cancel();
    expect((await stream.done).stopReason).toBe('cancelled');
    expect(toolSignal?.aborted).toBe(true);
    const seen = await events;
    expect(ofType(seen, 'tool_call_response')).toEqual([]);
    await manager.waitStopped(sessionId, { timeoutMs: 5_000 });
    // The manager closed the call that never produced a result.
    const session = await manager.getSession(sessionId);
    expect(shape(session)).toEqual(['user', 'assistant+calls', 'tool!']);
    expect(session.items[2]).toMatchObject({
      message: { role: 'tool', toolCallId: 'c1', toolName: 'stuck', isError: true },
    });
  });

  test('while waiting for approval: the turn ends cancelled and the tool never runs', async () => {
    const ran: string[] = [];
    const weather = tool({
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        ran.push(city);
        return 'sunny';
      },
    });
    const { manager, sessionId, model } = await start([callTools(['c1', 'weather', { city: 'Paris' }])], {
      weather,
    });
    const { result } = await runTurn(manager, sessionId, { messages: ['Weather?'] }, (event, stream) => {
      if (event.type === 'tool_call_confirmation') stream.cancel();
    });
    expect(result.stopReason).toBe('cancelled');
    expect(ran).toEqual([]);
    expect(model.doStreamCalls).toHaveLength(1);
    expect((await manager.getSessionSnapshot(sessionId)).pending.confirmations).toEqual([]);
  });

  test('a cancelled session takes the next turn normally', async () => {
    const { manager, sessionId, model } = await start([
      (options) => hangingStream(text('Half an'), options),
      answer('A whole answer.'),
    ]);
    await runTurn(manager, sessionId, { messages: ['First'] }, (event, stream) => {
      if (event.type === 'agent_choice') stream.cancel();
    });
    const { result } = await runTurn(manager, sessionId, { messages: ['Second'] });
    expect(result.stopReason).toBe('end_turn');
    // The partial answer is kept: the next call does not start with two user messages in a row.
    expect(model.doStreamCalls[1]?.prompt.map((message) => message.role)).toEqual([
      'user',
      'assistant',
      'user',
    ]);
  });
});

describe('provider errors', () => {
  test('an error part in the stream ends the turn with error and the provider message', async () => {
    const { manager, sessionId } = await start([
      step(text('Partial'), {
        type: 'error',
        error: new APICallError({
          message: 'Overloaded: try again later',
          url: 'https://api.example/v1/chat',
          requestBodyValues: {},
          statusCode: 529,
          isRetryable: true,
        }),
      }),
    ]);
    const { events, result } = await runTurn(manager, sessionId, { messages: ['Hi'] });
    expect(result.stopReason).toBe('error');
    expect(ModelCallError.isInstance(result.error)).toBe(true);
    expect(AgentSessionsError.hasCode(result.error, 'RUNTIME_FAILED')).toBe(true);
    const error = result.error as ModelCallError;
    expect(error.message).toBe('model "mock-model" failed: Overloaded: try again later');
    expect(error.statusCode).toBe(529);
    expect(error.isRetryable).toBe(true);
    expect(ofType(events, 'error').map((event) => [event.message, event.code])).toEqual([
      ['model "mock-model" failed: Overloaded: try again later', 'RUNTIME_FAILED'],
    ]);
    expect(shape(await manager.getSession(sessionId))).toEqual(['user', 'error']);
  });

  test('a model call that throws (after the retries) ends the turn with error and the provider message', async () => {
    const { manager, sessionId } = await start([
      () => {
        throw new APICallError({
          message: 'Invalid API key',
          url: 'https://api.example/v1/chat',
          requestBodyValues: {},
          statusCode: 401,
          isRetryable: false,
        });
      },
    ]);
    const { result } = await runTurn(manager, sessionId, { messages: ['Hi'] });
    expect(result.stopReason).toBe('error');
    expect((result.error as ModelCallError).statusCode).toBe(401);
    expect(result.error?.message).toBe('model "mock-model" failed: Invalid API key');
  });

  test('a response that finishes with reason "error" ends the turn with a ModelCallError', async () => {
    const { manager, sessionId } = await start([step(text('Half'), finish('error'))]);
    const { result } = await runTurn(manager, sessionId, { messages: ['Hi'] });
    expect(result.stopReason).toBe('error');
    expect(ModelCallError.isInstance(result.error)).toBe(true);
    expect(result.error?.message).toBe(
      'model "mock-model" failed: the response ended with finish reason "error"',
    );
    expect(shape(await manager.getSession(sessionId))).toEqual(['user', 'assistant', 'error']);
  });

  test('an error after a tool step keeps the stored steps and records the error', async () => {
    const weather = tool({ inputSchema: z.object({}), execute: async () => 'sunny' });
    const { manager, sessionId } = await start(
      [callTools(['c1', 'weather', {}]), step({ type: 'error', error: new Error('connection reset') })],
      { weather: { tool: weather, readOnly: true } },
    );
    const { result } = await runTurn(manager, sessionId, { messages: ['Weather?'] });
    expect(result.stopReason).toBe('error');
    expect(result.error?.message).toBe('model "mock-model" failed: connection reset');
    expect(shape(await manager.getSession(sessionId))).toEqual(['user', 'assistant+calls', 'tool', 'error']);
  });
});
