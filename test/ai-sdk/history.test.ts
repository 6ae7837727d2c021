// History conversion (toModelMessages) rule by rule, and the round trip: a history stored by the
// AI SDK runtime on a FileStore, reloaded by a new process-like manager, converts to exactly what
// was sent to the model before.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamText, tool } from 'ai';
import { afterEach, describe, expect, test } from 'vitest';
import * as z from 'zod';
import {
  createAiSdkRuntime,
  fromModelMessages,
  INTERRUPTED_TOOL_RESULT,
  toModelMessages,
} from '../../src/ai-sdk/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { Message, SessionItem } from '../../src/schemas.js';
import { FileStore } from '../../src/stores/file/store.js';
import { answer, finish, reasoning, runTurn, scriptedModel, shape, step, text, toolCall } from './helpers.js';

const T = '2025-01-01T00:00:00.000Z';
let serial = 0;
function message(fields: Partial<Message> & Pick<Message, 'role'>): SessionItem {
  return { kind: 'message', message: { id: `m${++serial}`, content: '', createdAt: T, ...fields } };
}
const user = (content: string, fields: Partial<Message> = {}) =>
  message({ role: 'user', content, ...fields });
const assistant = (content: string, fields: Partial<Message> = {}) =>
  message({ role: 'assistant', content, ...fields });
const result = (toolCallId: string, content: string, fields: Partial<Message> = {}) =>
  message({ role: 'tool', content, toolCallId, ...fields });
const call = (id: string, name: string, args: string) => ({ id, name, arguments: args });

describe('toModelMessages', () => {
  test('text messages become plain user and assistant messages; system messages stay system', () => {
    expect(
      toModelMessages({
        items: [message({ role: 'system', content: 'Be kind.' }), user('Hi'), assistant('Hello!')],
      }),
    ).toEqual([
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ]);
  });

  test('a user message with parts sends its images and files; content comes first when no part is text', () => {
    const items = [
      user('Look at these', {
        parts: [
          { type: 'image', url: 'https://example.com/cat.png', mimeType: 'image/png' },
          { type: 'image', data: 'iVBORw0KGgo=', mimeType: 'image/png' },
          {
            type: 'file',
            uri: 'https://example.com/report.pdf',
            name: 'report.pdf',
            mimeType: 'application/pdf',
          },
          { type: 'file', uri: '/home/ada/notes.txt', name: 'notes.txt' },
        ],
      }),
      user('ignored when parts hold text', { parts: [{ type: 'text', text: 'the text part' }] }),
    ];
    expect(toModelMessages({ items })).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look at these' },
          { type: 'image', image: 'https://example.com/cat.png', mediaType: 'image/png' },
          { type: 'image', image: 'iVBORw0KGgo=', mediaType: 'image/png' },
          {
            type: 'file',
            data: 'https://example.com/report.pdf',
            mediaType: 'application/pdf',
            filename: 'report.pdf',
          },
          { type: 'text', text: '[file notes.txt: /home/ada/notes.txt]' },
        ],
      },
      { role: 'user', content: [{ type: 'text', text: 'the text part' }] },
    ]);
    const custom = toModelMessages(
      { items: [items[0]!] },
      { convertFile: (part) => ({ type: 'file', data: `file://${part.uri}`, mediaType: 'text/plain' }) },
    );
    expect(custom[0]?.content).toContainEqual({
      type: 'file',
      data: 'file:///home/ada/notes.txt',
      mediaType: 'text/plain',
    });
  });

  test('an assistant message sends reasoning, text, then tool calls; unparsable arguments become {}', () => {
    const items = [
      user('go'),
      assistant('Checking.', {
        reasoning: 'I need two tools.',
        toolCalls: [call('c1', 'shell', '{"cmd":"ls"}'), call('c2', 'broken', '{"cmd":')],
      }),
      result('c1', 'a.txt', { toolName: 'shell' }),
      result('c2', 'bad input', { toolName: 'broken', isError: true }),
    ];
    expect(toModelMessages({ items }).slice(1)).toEqual([
      {
        role: 'assistant',
        content: [
          { type: 'reasoning', text: 'I need two tools.' },
          { type: 'text', text: 'Checking.' },
          { type: 'tool-call', toolCallId: 'c1', toolName: 'shell', input: { cmd: 'ls' } },
          { type: 'tool-call', toolCallId: 'c2', toolName: 'broken', input: {} },
        ],
      },
      {
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: 'c1',
            toolName: 'shell',
            output: { type: 'text', value: 'a.txt' },
          },
          {
            type: 'tool-result',
            toolCallId: 'c2',
            toolName: 'broken',
            output: { type: 'error-text', value: 'bad input' },
          },
        ],
      },
    ]);
  });

  test('a result without a stored toolName (older records) takes the name of its call', () => {
    const items = [user('go'), assistant('', { toolCalls: [call('c1', 'shell', '{}')] }), result('c1', 'ok')];
    expect(toModelMessages({ items })[2]).toEqual({
      role: 'tool',
      content: [
        { type: 'tool-result', toolCallId: 'c1', toolName: 'shell', output: { type: 'text', value: 'ok' } },
      ],
    });
  });

  test('a tool result with images is sent as content parts', () => {
    const items = [
      user('shoot'),
      assistant('', { toolCalls: [call('c1', 'screenshot', '{}')] }),
      result('c1', 'the screen', {
        toolName: 'screenshot',
        parts: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }],
      }),
    ];
    expect(toModelMessages({ items })[2]?.content).toEqual([
      {
        type: 'tool-result',
        toolCallId: 'c1',
        toolName: 'screenshot',
        output: {
          type: 'content',
          value: [
            { type: 'text', text: 'the screen' },
            { type: 'image-data', data: 'AAAA', mediaType: 'image/png' },
          ],
        },
      },
    ]);
  });

  test('the last summary replaces the items before its firstKeptItem; error items are never sent', () => {
    const items: SessionItem[] = [
      user('old question'),
      assistant('old answer'),
      { kind: 'summary', id: 's1', summary: 'first summary', firstKeptItem: 1, createdAt: T },
      user('newer question'),
      assistant('newer answer'),
      { kind: 'error', id: 'e1', message: 'a failed turn', createdAt: T },
      { kind: 'summary', id: 's2', summary: 'they talked twice', firstKeptItem: 3, createdAt: T },
      user('latest'),
    ];
    expect(toModelMessages({ items })).toEqual([
      { role: 'user', content: 'Summary of the earlier conversation:\n\nthey talked twice' },
      { role: 'user', content: 'newer question' },
      { role: 'assistant', content: 'newer answer' },
      { role: 'user', content: 'latest' },
    ]);
    expect(
      toModelMessages({ items }, { summaryText: (summary) => `<summary>${summary.summary}</summary>` })[0],
    ).toEqual({
      role: 'user',
      content: '<summary>they talked twice</summary>',
    });
  });

  test('a result whose call a summary replaced is left out (providers reject it)', () => {
    const items: SessionItem[] = [
      user('go'),
      assistant('', { toolCalls: [call('c1', 'shell', '{}')] }),
      result('c1', 'done', { toolName: 'shell' }),
      assistant('Done.'),
      { kind: 'summary', id: 's', summary: 'ran a shell command', firstKeptItem: 2, createdAt: T },
    ];
    expect(toModelMessages({ items }).map((entry) => entry.role)).toEqual(['user', 'assistant']);
  });

  test('a call without a result gets an interrupted error result, right after its call', () => {
    const items = [
      user('go'),
      assistant('', { toolCalls: [call('c1', 'shell', '{}'), call('c2', 'shell', '{}')] }),
      result('c1', 'ok', { toolName: 'shell' }),
      user('hello? (after a crash)'),
      assistant('', { toolCalls: [call('c3', 'read', '{}')] }),
    ];
    const messages = toModelMessages({ items });
    expect(messages.map((entry) => entry.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'user',
      'assistant',
      'tool',
    ]);
    expect(messages[2]?.content).toEqual([
      { type: 'tool-result', toolCallId: 'c1', toolName: 'shell', output: { type: 'text', value: 'ok' } },
      {
        type: 'tool-result',
        toolCallId: 'c2',
        toolName: 'shell',
        output: { type: 'error-text', value: INTERRUPTED_TOOL_RESULT },
      },
    ]);
    expect(messages[5]?.content).toEqual([
      {
        type: 'tool-result',
        toolCallId: 'c3',
        toolName: 'read',
        output: { type: 'error-text', value: INTERRUPTED_TOOL_RESULT },
      },
    ]);
  });

  test('an empty assistant message is left out', () => {
    expect(toModelMessages({ items: [user('hi'), assistant('')] })).toEqual([
      { role: 'user', content: 'hi' },
    ]);
  });
});

describe('history round trip', () => {
  const directories: string[] = [];
  afterEach(async () => {
    for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
  });

  test('convert → store → reload → convert gives the messages the model was sent', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-ai-sdk-'));
    directories.push(directory);
    const read = tool({
      inputSchema: z.object({ path: z.string() }),
      execute: async ({ path }) => {
        if (path === 'missing.txt') throw new Error('no such file');
        return `contents of ${path}`;
      },
    });
    const tools = { read: { tool: read, readOnly: true } };
    const model = scriptedModel([
      step(
        reasoning('Read both.'),
        text('Reading.'),
        toolCall('c1', 'read', { path: 'a.txt' }),
        toolCall('c2', 'read', { path: 'missing.txt' }),
        finish('tool-calls'),
      ),
      answer('a.txt says hello; missing.txt is missing.'),
    ]);
    let manager = new SessionManager({
      runtime: createAiSdkRuntime({ model, tools }),
      store: new FileStore({ directory }),
    });
    const { id } = await manager.createSession();
    await runTurn(manager, id, {
      messages: [
        {
          content: 'Read these',
          parts: [
            { type: 'text', text: 'Read these' },
            { type: 'image', url: 'https://example.com/list.png', mimeType: 'image/png' },
          ],
        },
      ],
    });
    const before = await manager.getSession(id);
    await manager.close();

    const next = scriptedModel([answer('You are welcome.')]);
    manager = new SessionManager({
      runtime: createAiSdkRuntime({ model: next, tools }),
      store: new FileStore({ directory }),
    });
    const after = await manager.getSession(id);
    expect(after).toEqual(before);
    expect(toModelMessages(after)).toEqual(toModelMessages(before));
    expect(shape(after)).toEqual(['user', 'assistant+calls', 'tool', 'tool!', 'assistant']);
    expect(after.items[2]).toMatchObject({ message: { toolName: 'read' } });
    expect(after.items[3]).toMatchObject({
      message: { toolName: 'read', isError: true, content: 'no such file' },
    });

    // What the reloaded history sends is what the first process sent live, plus the final answer.
    await runTurn(manager, id, { messages: ['One more thing'] });
    const live = model.doStreamCalls[1]?.prompt ?? [];
    const reloaded = next.doStreamCalls[0]?.prompt ?? [];
    expect(reloaded.slice(0, live.length)).toEqual(live);
    expect(reloaded[live.length]).toMatchObject({
      role: 'assistant',
      content: [{ type: 'text', text: 'a.txt says hello; missing.txt is missing.' }],
    });
    await manager.close();
  });
});

describe('fromModelMessages', () => {
  test('records made from model messages convert back to the same model messages', () => {
    const items = [
      user('Look', {
        parts: [
          { type: 'text', text: 'Look' },
          { type: 'image', url: 'https://example.com/cat.png', mimeType: 'image/png' },
          { type: 'image', data: 'iVBORw0KGgo=', mimeType: 'image/png' },
        ],
      }),
      assistant('Checking.', {
        reasoning: 'Two tools.',
        toolCalls: [call('c1', 'shell', '{"cmd":"ls"}'), call('c2', 'shot', '{}')],
      }),
      result('c1', 'permission denied', { toolName: 'shell', isError: true }),
      result('c2', 'the screen', {
        toolName: 'shot',
        parts: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }],
      }),
      assistant('Done.'),
    ];
    const messages = toModelMessages({ items });
    const records = fromModelMessages(messages, { model: 'm1', createdAt: T });
    expect(records.map((record) => record.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant']);
    expect(records[1]).toMatchObject({ reasoning: 'Two tools.', content: 'Checking.', model: 'm1' });
    expect(records[2]).toMatchObject({ toolCallId: 'c1', toolName: 'shell', isError: true });
    const again = toModelMessages({
      items: records.map((message) => ({ kind: 'message' as const, message })),
    });
    expect(again).toEqual(messages);
  });

  test("converts what streamText reports as its response: text, reasoning and the model's tool calls", async () => {
    const model = scriptedModel([
      step(
        reasoning('Let me look.'),
        text('Looking.'),
        toolCall('c1', 'weather', { city: 'Paris' }),
        finish('tool-calls'),
      ),
    ]);
    const result = streamText({
      model,
      prompt: 'Weather?',
      tools: { weather: tool({ inputSchema: z.object({ city: z.string() }) }) },
    });
    await result.consumeStream();
    const records = fromModelMessages((await result.response).messages, { model: 'mock', createdAt: T });
    expect(records).toEqual([
      {
        id: expect.any(String),
        role: 'assistant',
        content: 'Looking.',
        reasoning: 'Let me look.',
        toolCalls: [{ id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' }],
        model: 'mock',
        createdAt: T,
      },
    ]);
  });

  test('bytes become base64, provider-executed calls and empty messages are left out', () => {
    const records = fromModelMessages(
      [
        {
          role: 'user',
          content: [{ type: 'image', image: new Uint8Array([1, 2, 3]), mediaType: 'image/png' }],
        },
        {
          role: 'assistant',
          content: [
            {
              type: 'tool-call',
              toolCallId: 'ws',
              toolName: 'web_search',
              input: {},
              providerExecuted: true,
            },
          ],
        },
        { role: 'assistant', content: '' },
      ],
      { createdAt: T },
    );
    expect(records).toEqual([
      {
        id: expect.any(String),
        role: 'user',
        content: '',
        parts: [{ type: 'image', data: 'AQID', mimeType: 'image/png' }],
        createdAt: T,
      },
    ]);
  });
});
