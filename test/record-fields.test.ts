// The optional record fields model runtimes need (a tool result's toolName and isError, an
// assistant message's reasoning, cache and reasoning token counts in usage): valid when present,
// not required, and carried whole through export and import. Store conformance covers the stores.
import { describe, expect, test } from 'vitest';
import { TokenUsageSchema } from '../src/events.js';
import { SessionManager } from '../src/manager/session-manager.js';
import { MessageSchema, parseSession, type Session, UsageSchema } from '../src/schemas.js';
import { MemoryStore } from '../src/stores/memory.js';
import { sessionRecord } from '../src/testing/records.js';

const T = '2025-02-03T04:05:06.000Z';
const usage = {
  inputTokens: 100,
  outputTokens: 20,
  cost: 0.5,
  cacheReadTokens: 60,
  cacheWriteTokens: 10,
  reasoningTokens: 5,
};

function withNewFields(id: string): Session {
  return sessionRecord(
    id,
    {
      usage: { ...usage },
      items: [
        { kind: 'message', message: { id: 'u', role: 'user', content: 'go', createdAt: T } },
        {
          kind: 'message',
          message: {
            id: 'a',
            role: 'assistant',
            content: '',
            reasoning: 'one call',
            toolCalls: [{ id: 'c', name: 'shell', arguments: '{}' }],
            usage: { ...usage },
            createdAt: T,
          },
        },
        {
          kind: 'message',
          message: {
            id: 't',
            role: 'tool',
            content: 'boom',
            toolCallId: 'c',
            toolName: 'shell',
            isError: true,
            createdAt: T,
          },
        },
      ],
    },
    T,
  );
}

describe('optional record fields', () => {
  test('a record with them parses to itself, and one without them stays without them', () => {
    expect(parseSession(withNewFields('s1'))).toEqual(withNewFields('s1'));
    const old = sessionRecord(
      'old',
      {
        items: [
          {
            kind: 'message',
            message: { id: 't', role: 'tool', content: 'ok', toolCallId: 'c', createdAt: T },
          },
        ],
      },
      T,
    );
    const parsed = parseSession(old);
    expect(parsed).toEqual(old);
    expect('toolName' in (parsed.items[0] as { message: object }).message).toBe(false);
    expect(Object.keys(parsed.usage).sort()).toEqual(['cost', 'inputTokens', 'outputTokens']);
  });

  test.each([
    ['a negative cacheReadTokens', () => UsageSchema.safeParse({ ...usage, cacheReadTokens: -1 })],
    [
      'a non-finite reasoningTokens',
      () => TokenUsageSchema.safeParse({ inputTokens: 1, outputTokens: 1, reasoningTokens: Infinity }),
    ],
    [
      'a string isError',
      () => MessageSchema.safeParse({ id: 'm', role: 'tool', content: '', isError: 'yes', createdAt: T }),
    ],
    [
      'an empty-object toolName',
      () => MessageSchema.safeParse({ id: 'm', role: 'tool', content: '', toolName: {}, createdAt: T }),
    ],
  ])('%s is refused', (_name, parse) => {
    expect(parse().success).toBe(false);
  });

  test('export then import keeps them, deep-equal', async () => {
    const from = new SessionManager({ runtime: () => ({ async *run() {} }), store: new MemoryStore() });
    const to = new SessionManager({ runtime: () => ({ async *run() {} }), store: new MemoryStore() });
    try {
      await from.importSessions(
        { version: 1, exportedAt: T, sessions: [withNewFields('s1')] },
        { onConflict: 'error' },
      );
      const bundle = await from.exportSessions(['s1']);
      await to.importSessions(JSON.parse(JSON.stringify(bundle)), { onConflict: 'error' });
      expect(await to.getSession('s1')).toEqual(withNewFields('s1'));
    } finally {
      await from.close();
      await to.close();
    }
  });
});
