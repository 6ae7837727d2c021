/**
 * Store conformance cases for the optional record fields that model runtimes need: a tool result's
 * `toolName` and `isError`, an assistant message's `reasoning`, and the cache and reasoning token
 * counts of `usage` (on the session, a message and a summary). A store keeps each of them exactly as
 * given, and a record without them stays without them. Registered by `describeStoreConformance`.
 */
import type { Message, Session, SessionItem, Usage } from '../../schemas.js';
import { assert, assertEqual } from '../assert.js';
import { sessionRecord } from '../records.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/** Registers only the record-field group. */
export function describeRecordFieldConformance(options: StoreConformanceOptions): void {
  registerCases(
    options,
    options.name ?? 'Store conformance: record fields of model runtimes',
    recordFieldCases(),
  );
}

const T0 = '2024-03-04T05:06:07.000Z';

const detailedUsage: Usage = {
  inputTokens: 1200,
  outputTokens: 300,
  cost: 0.0042,
  cacheReadTokens: 1000,
  cacheWriteTokens: 150,
  reasoningTokens: 120,
};

function message(id: string, fields: Omit<Message, 'id' | 'createdAt'>): SessionItem {
  return { kind: 'message', message: { id, createdAt: T0, ...fields } };
}

/** A call, a failed result and a good result, with every new field set. */
function itemsWithNewFields(): SessionItem[] {
  return [
    message('u1', { role: 'user', content: 'list and read' }),
    message('a1', {
      role: 'assistant',
      content: '',
      reasoning: 'Two calls: ls, then cat.',
      toolCalls: [
        { id: 'call-ls', name: 'shell', arguments: '{"cmd":"ls"}' },
        { id: 'call-cat', name: 'read_file', arguments: '{"path":"a.txt"}' },
      ],
      model: 'fast',
      usage: { ...detailedUsage },
    }),
    message('t1', {
      role: 'tool',
      content: 'permission denied',
      toolCallId: 'call-ls',
      toolName: 'shell',
      isError: true,
    }),
    message('t2', {
      role: 'tool',
      content: 'hello',
      toolCallId: 'call-cat',
      toolName: 'read_file',
      isError: false,
    }),
    {
      kind: 'summary',
      id: 's1',
      summary: 'they read a.txt',
      firstKeptItem: 1,
      createdAt: T0,
      usage: { inputTokens: 10, outputTokens: 2, cost: 0, cacheReadTokens: 8 },
    },
  ];
}

function sessionWithNewFields(id: string): Session {
  return sessionRecord(id, { usage: { ...detailedUsage }, items: itemsWithNewFields() }, T0);
}

/** The conformance cases of the optional record fields. */
export function recordFieldCases(): Case[] {
  return [
    {
      name: 'tool-result toolName and isError, reasoning, and cache/reasoning token counts are kept on create',
      async run({ store }) {
        const session = sessionWithNewFields('fields-create');
        await store.createSession(session);
        const stored = await store.getSession('fields-create');
        assertEqual(stored.items, session.items, 'items with the optional fields after createSession');
        assertEqual(stored.usage, session.usage, 'session usage with cache and reasoning tokens');
      },
    },
    {
      name: 'appendItems keeps tool-result toolName and isError and message usage details',
      async run({ store }) {
        await store.createSession(sessionRecord('fields-append', {}, T0));
        const items = itemsWithNewFields();
        await store.appendItems('fields-append', items);
        await store.updateSession('fields-append', { usage: { ...detailedUsage } });
        const stored = await store.getSession('fields-append');
        assertEqual(stored.items, items, 'items with the optional fields after appendItems');
        assertEqual(stored.usage, detailedUsage, 'usage patched with cache and reasoning tokens');
        const page = await store.listSessions();
        const summary = page.sessions.find((entry) => entry.id === 'fields-append');
        assert(summary !== undefined, 'the session is listed');
        assertEqual(summary.usage, detailedUsage, 'the summary usage keeps cache and reasoning tokens');
      },
    },
    {
      name: 'records without the optional fields stay without them (no defaults added)',
      async run({ store }) {
        const items: SessionItem[] = [
          message('u1', { role: 'user', content: 'hi' }),
          message('a1', {
            role: 'assistant',
            content: '',
            toolCalls: [{ id: 'c1', name: 'shell', arguments: '{}' }],
          }),
          message('t1', { role: 'tool', content: 'ok', toolCallId: 'c1' }),
        ];
        await store.createSession(sessionRecord('fields-absent', { items }, T0));
        const stored = await store.getSession('fields-absent');
        assertEqual(stored.items, items, 'items without the optional fields');
        assertEqual(stored.usage, { inputTokens: 0, outputTokens: 0, cost: 0 }, 'usage without details');
      },
    },
    {
      name: 'after reopening, tool-result toolName and isError and usage details are still there',
      needsReopen: true,
      async run(context) {
        const session = sessionWithNewFields('fields-reopen');
        await context.store.createSession(session);
        const extra = message('t3', {
          role: 'tool',
          content: 'late',
          toolCallId: 'call-x',
          toolName: 'shell',
          isError: true,
        });
        await context.store.appendItems('fields-reopen', [extra]);
        const store = await context.reopen();
        const stored = await store.getSession('fields-reopen');
        assertEqual(stored.items, [...session.items, extra], 'items after reopening');
        assertEqual(stored.usage, session.usage, 'usage after reopening');
      },
    },
  ];
}
