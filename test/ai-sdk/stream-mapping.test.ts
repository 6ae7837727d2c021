// The parts of the SDK's stream that are neither text nor client tools: provider warnings,
// sources, generated files and provider-executed tools, through a real SessionManager.
import { afterEach, expect, onTestFinished, test } from 'vitest';
import { createAiSdkRuntime } from '../../src/ai-sdk/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { finish, ofType, runTurn, scriptedModel, shape, step, text } from './helpers.js';

let manager: SessionManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

async function turnOf(chunks: ReturnType<typeof step>) {
  const model = scriptedModel([chunks]);
  manager = new SessionManager({ runtime: createAiSdkRuntime({ model }) });
  const { id } = await manager.createSession();
  const turn = await runTurn(manager, id, { messages: ['go'] });
  return { ...turn, session: await manager.getSession(id), model };
}

test('provider warnings become warning events (the host silences the SDK printing them too)', async () => {
  // The SDK prints provider warnings itself unless this global says otherwise; a library must not
  // change a global of its host, so the host does (docs/runtimes.md says so).
  const global = globalThis as { AI_SDK_LOG_WARNINGS?: unknown };
  const before = global.AI_SDK_LOG_WARNINGS;
  global.AI_SDK_LOG_WARNINGS = false;
  onTestFinished(() => {
    global.AI_SDK_LOG_WARNINGS = before;
  });
  const { events } = await turnOf(
    step(
      {
        type: 'stream-start',
        warnings: [
          { type: 'unsupported', feature: 'topK', details: 'this model ignores it' },
          { type: 'other', message: 'the prompt was long' },
        ],
      },
      text('ok'),
    ),
  );
  expect(ofType(events, 'warning').map((event) => event.message)).toEqual([
    'model mock-model: topK is not supported: this model ignores it',
    'model mock-model: the prompt was long',
  ]);
});

test('a source becomes a custom "source" event with its JSON fields', async () => {
  const { events } = await turnOf(
    step(
      { type: 'source', sourceType: 'url', id: 'src-1', url: 'https://example.com/a', title: 'A page' },
      text('See the source.'),
    ),
  );
  expect(ofType(events, 'custom')).toMatchObject([
    {
      name: 'source',
      data: { sourceType: 'url', id: 'src-1', url: 'https://example.com/a', title: 'A page' },
    },
  ]);
});

test('generated files are stored as parts of the assistant message and sent back as files', async () => {
  const model = scriptedModel([
    step(
      text('Here is a picture.'),
      { type: 'file', mediaType: 'image/png', data: 'iVBORw0KGgo=' },
      { type: 'file', mediaType: 'text/csv', data: 'YSxi' },
      finish('stop'),
    ),
    step(text('ok'), finish('stop')),
  ]);
  manager = new SessionManager({ runtime: createAiSdkRuntime({ model }) });
  const { id } = await manager.createSession();
  await runTurn(manager, id, { messages: ['Draw'] });
  const session = await manager.getSession(id);
  expect(session.items[1]).toMatchObject({
    message: {
      content: 'Here is a picture.',
      parts: [
        { type: 'image', data: 'iVBORw0KGgo=', mimeType: 'image/png' },
        { type: 'file', uri: 'data:text/csv;base64,YSxi', mimeType: 'text/csv' },
      ],
    },
  });
  await runTurn(manager, id, { messages: ['Thanks'] });
  expect(model.doStreamCalls[1]?.prompt[1]).toMatchObject({
    role: 'assistant',
    content: [
      { type: 'text', text: 'Here is a picture.' },
      { type: 'file', mediaType: 'image/png' },
      { type: 'file', mediaType: 'text/csv' },
    ],
  });
});

test('a provider-executed tool is shown as tool_call and tool_call_response, and not stored as a call', async () => {
  const { events, session, result } = await turnOf(
    step(
      {
        type: 'tool-call',
        toolCallId: 'ws-1',
        toolName: 'web_search',
        input: '{"query":"x"}',
        providerExecuted: true,
      },
      { type: 'tool-result', toolCallId: 'ws-1', toolName: 'web_search', result: { hits: 3 } },
      text('Found 3.'),
      finish('stop'),
    ),
  );
  expect(result.stopReason).toBe('end_turn');
  expect(ofType(events, 'tool_call').map((event) => event.toolCall.id)).toEqual(['ws-1']);
  expect(ofType(events, 'tool_call_response').map((event) => [event.toolCallId, event.response])).toEqual([
    ['ws-1', '{"hits":3}'],
  ]);
  expect(shape(session)).toEqual(['user', 'assistant']);
});
