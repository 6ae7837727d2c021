// The runtime side of resuming tool calls after a restart: a history left by a process that died
// while two calls waited for approval is reloaded from a FileStore, and a turn that carries the
// decisions (`turn.resume`, the seam the manager will fill once approvals are persisted) runs the
// approved call once, records the rejected one, and continues the loop. The manager does not hand
// decisions yet, so this drives `run()` directly with the TurnContext the manager would build.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tool } from 'ai';
import { afterEach, expect, test } from 'vitest';
import * as z from 'zod';
import { AiSdkRuntime, INTERRUPTED_TOOL_RESULT, type ResumableTurnContext } from '../../src/ai-sdk/index.js';
import type { RuntimeEventInput } from '../../src/events.js';
import type { Session, ToolCall } from '../../src/schemas.js';
import { FileStore } from '../../src/stores/file/store.js';
import { sessionRecord } from '../../src/testing/records.js';
import { answer, scriptedModel } from './helpers.js';

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

function turnFor(session: Session, resume: ResumableTurnContext['resume']): ResumableTurnContext {
  const controller = new AbortController();
  return {
    sessionId: session.id,
    turnId: 'turn_resume',
    session,
    signal: controller.signal,
    takeSteering: () => [],
    authorizeToolCall: () => Promise.reject(new Error('a resumed call must not be asked again')),
    elicit: () => Promise.reject(new Error('no elicitation expected')),
    ...(resume === undefined ? {} : { resume }),
  };
}

test('a resumed turn runs the approved call once, records the rejected one (and one without a decision) and continues', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-ai-sdk-resume-'));
  directories.push(directory);
  const paris: ToolCall = { id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' };
  const oslo: ToolCall = { id: 'c2', name: 'weather', arguments: '{"city":"Oslo"}' };
  const rome: ToolCall = { id: 'c3', name: 'weather', arguments: '{"city":"Rome"}' };
  const T = '2025-01-01T00:00:00.000Z';

  // The first process stored the call, then died while both calls waited for a human.
  const before = new FileStore({ directory });
  await before.createSession(
    sessionRecord(
      'resumed',
      {
        items: [
          { kind: 'message', message: { id: 'u1', role: 'user', content: 'Paris and Oslo?', createdAt: T } },
          {
            kind: 'message',
            message: {
              id: 'a1',
              role: 'assistant',
              content: '',
              toolCalls: [paris, oslo, rome],
              createdAt: T,
            },
          },
        ],
      },
      T,
    ),
  );
  await before.close();

  // A new process: reload, and answer with the decisions the manager will hand over.
  const store = new FileStore({ directory });
  const session = await store.getSession('resumed');
  const ran: string[] = [];
  const weather = tool({
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      ran.push(city);
      return `Sunny in ${city}`;
    },
  });
  const model = scriptedModel([answer('Paris is sunny; I did not check Oslo.')]);
  const runtime = new AiSdkRuntime({ model, tools: { weather } });
  const events: RuntimeEventInput[] = [];
  for await (const event of runtime.run(
    turnFor(session, {
      decisions: [
        { toolCall: paris, decision: { approved: true } },
        { toolCall: oslo, decision: { approved: false, reason: 'the human said no' } },
      ],
    }),
  )) {
    events.push(event);
  }
  await store.close();

  expect(ran).toEqual(['Paris']);
  const results = events.flatMap((event) =>
    event.type === 'tool_call_response' ? [[event.toolCallId, event.response, event.isError ?? false]] : [],
  );
  expect(results).toEqual([
    ['c1', 'Sunny in Paris', false],
    ['c2', 'The tool did not run: the human said no', true],
    ['c3', INTERRUPTED_TOOL_RESULT, true],
  ]);
  const added = events.flatMap((event) => (event.type === 'message_added' ? [event.message] : []));
  expect(added.map((message) => [message.role, message.toolCallId, message.toolName])).toEqual([
    ['tool', 'c1', 'weather'],
    ['tool', 'c2', 'weather'],
    ['tool', 'c3', 'weather'],
    ['assistant', undefined, undefined],
  ]);
  expect(model.doStreamCalls).toHaveLength(1);
  expect(model.doStreamCalls[0]?.prompt.at(-1)).toMatchObject({
    role: 'tool',
    content: [
      { toolCallId: 'c1', output: { type: 'text', value: 'Sunny in Paris' } },
      { toolCallId: 'c2', output: { type: 'error-text', value: 'The tool did not run: the human said no' } },
      { toolCallId: 'c3', output: { type: 'error-text', value: INTERRUPTED_TOOL_RESULT } },
    ],
  });
});

test('without decisions a pending call is sent as interrupted and nothing runs', async () => {
  const session = sessionRecord('pending', {
    items: [
      {
        kind: 'message',
        message: { id: 'u1', role: 'user', content: 'Paris?', createdAt: '2025-01-01T00:00:00Z' },
      },
      {
        kind: 'message',
        message: {
          id: 'a1',
          role: 'assistant',
          content: '',
          toolCalls: [{ id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' }],
          createdAt: '2025-01-01T00:00:00Z',
        },
      },
    ],
  });
  const ran: string[] = [];
  const weather = tool({
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      ran.push(city);
      return 'sunny';
    },
  });
  const model = scriptedModel([answer('It was interrupted.')]);
  const runtime = new AiSdkRuntime({ model, tools: { weather } });
  for await (const _event of runtime.run(turnFor(session, undefined))) {
    // drain
  }
  expect(ran).toEqual([]);
  expect(model.doStreamCalls[0]?.prompt.at(-1)).toMatchObject({
    role: 'tool',
    content: [{ toolCallId: 'c1', output: { type: 'error-text' } }],
  });
});
