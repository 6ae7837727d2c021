import { describe, expect, test } from 'vitest';
import {
  applyPatch,
  assertSessionId,
  countMessages,
  ExportBundleSchema,
  emptyUsage,
  isJsonValue,
  JsonObjectSchema,
  MessageSchema,
  OPTIONAL_SESSION_FIELDS,
  parsePatch,
  parseSession,
  SESSION_PATCH_FIELDS,
  type Session,
  SessionIdSchema,
  type SessionItem,
  SessionItemSchema,
  SessionPatchSchema,
  SessionSchema,
  SessionSummarySchema,
  StringRecordSchema,
  TimestampSchema,
  toSummary,
} from '../src/schemas.js';
import { expectInvalidArgument } from './helpers/assertions.js';
import { sessionRecord } from './helpers/sessions.js';

const T0 = '2024-01-02T03:04:05.000Z';

const session = (overrides: Partial<Session> = {}): Session => sessionRecord('s1', overrides, T0);

const message = { id: 'm1', role: 'user', content: 'hi', createdAt: T0 } as const;
const items: SessionItem[] = [
  { kind: 'message', message },
  { kind: 'summary', id: 'sum', summary: 's', firstKeptItem: 1, createdAt: T0 },
  { kind: 'message', message: { ...message, id: 'm2', role: 'assistant' } },
  { kind: 'error', id: 'e', message: 'failed', createdAt: T0 },
];

describe('SessionIdSchema and assertSessionId', () => {
  test.each(['a', '0', 'Z9', 'a-b_c', 'A'.repeat(128), '01J0ABCDEF'])('accept %j', (id) => {
    expect(SessionIdSchema.safeParse(id).success).toBe(true);
    expect(() => assertSessionId(id)).not.toThrow();
  });

  test.each(['', '-a', '_a', '.a', 'a.b', 'a/b', '../a', 'a b', 'é', 'a\u0000', 'A'.repeat(129)])(
    'reject %j',
    (id) => {
      expect(SessionIdSchema.safeParse(id).success).toBe(false);
      const error = expectInvalidArgument(() => assertSessionId(id));
      expect(error.issues).toEqual([expect.objectContaining({ path: ['id'] })]);
    },
  );

  test.each([undefined, null, 1, {}, ['a']])('assertSessionId rejects the non-string %j', (id) => {
    expectInvalidArgument(() => assertSessionId(id));
  });

  test('assertSessionId cuts a long id in its message', () => {
    const error = expectInvalidArgument(() => assertSessionId('/'.repeat(10_000)));
    expect(error.message.length).toBeLessThan(300);
  });
});

describe('TimestampSchema', () => {
  test.each(['2024-01-02T03:04:05Z', '2024-01-02T03:04:05.123Z', '2024-01-02T03:04:05+02:00', T0])(
    'accept %j',
    (value) => {
      expect(TimestampSchema.safeParse(value).success).toBe(true);
    },
  );
  test.each(['2024-01-02', 'yesterday', '2024-13-02T03:04:05Z', '', 1704164645000])('reject %j', (value) => {
    expect(TimestampSchema.safeParse(value).success).toBe(false);
  });
});

describe('record schemas', () => {
  const valid: [string, { safeParse(value: unknown): { success: boolean } }, unknown][] = [
    ['a minimal message', MessageSchema, message],
    [
      'a full message',
      MessageSchema,
      {
        ...message,
        role: 'assistant',
        parts: [
          { type: 'text', text: 't' },
          { type: 'image', data: 'AAAA', mimeType: 'image/png' },
          { type: 'file', uri: 'file:///a' },
        ],
        toolCalls: [{ id: 'c', name: 'shell', arguments: '{}' }],
        toolCallId: 'c0',
        agent: 'a',
        model: 'm',
        usage: { inputTokens: 1, outputTokens: 2, cost: 0.5 },
      },
    ],
    ['a message item', SessionItemSchema, items[0]],
    ['a summary item', SessionItemSchema, items[1]],
    ['an error item', SessionItemSchema, { ...items[3], code: 'X', agent: 'a' }],
    ['a minimal session', SessionSchema, session()],
    [
      'a full session',
      SessionSchema,
      session({
        title: 't',
        titleSource: 'manual',
        source: 'coder',
        agent: 'coder',
        workingDir: '/w',
        starred: true,
        safetyPolicy: 'autonomous',
        agentModelOverrides: { coder: 'a/b' },
        customModelsUsed: ['a/b'],
        attributes: { nested: [1, { a: null }] },
        parentId: 'p',
        forkedFrom: { sessionId: 'p', beforeUserMessage: 0 },
        items,
      }),
    ],
    [
      'a summary',
      SessionSummarySchema,
      {
        id: 's',
        title: '',
        createdAt: T0,
        updatedAt: T0,
        starred: false,
        messageCount: 0,
        usage: emptyUsage(),
      },
    ],
    ['an export bundle', ExportBundleSchema, { version: 1, exportedAt: T0, sessions: [session()] }],
  ];
  test.each(valid)('accept %s', (_what, schema, value) => {
    expect(schema.safeParse(value).success).toBe(true);
  });

  const invalid: [string, { safeParse(value: unknown): { success: boolean } }, unknown][] = [
    ['a message with an empty id', MessageSchema, { ...message, id: '' }],
    ['a message with an unknown role', MessageSchema, { ...message, role: 'robot' }],
    ['a message without createdAt', MessageSchema, { id: 'm', role: 'user', content: '' }],
    ['a message with content null', MessageSchema, { ...message, content: null }],
    [
      'a message with object tool arguments',
      MessageSchema,
      { ...message, toolCalls: [{ id: 'c', name: 'n', arguments: {} }] },
    ],
    ['a message with an unknown part type', MessageSchema, { ...message, parts: [{ type: 'video' }] }],
    ['a file part without uri', MessageSchema, { ...message, parts: [{ type: 'file' }] }],
    [
      'a message with negative usage',
      MessageSchema,
      { ...message, usage: { inputTokens: -1, outputTokens: 0, cost: 0 } },
    ],
    [
      'a message with infinite cost',
      MessageSchema,
      { ...message, usage: { inputTokens: 0, outputTokens: 0, cost: Infinity } },
    ],
    ['an item of unknown kind', SessionItemSchema, { kind: 'note', id: 'n' }],
    ['a summary with a fractional firstKeptItem', SessionItemSchema, { ...items[1], firstKeptItem: 1.5 }],
    ['an error item without message', SessionItemSchema, { kind: 'error', id: 'e', createdAt: T0 }],
    ['a session with an invalid id', SessionSchema, session({ id: 'a/b' })],
    ['a session with an unknown titleSource', SessionSchema, { ...session(), titleSource: 'magic' }],
    ['a session with an unknown safetyPolicy', SessionSchema, { ...session(), safetyPolicy: 'yolo' }],
    ['a session with attributes an array', SessionSchema, { ...session(), attributes: [] }],
    ['a session with a Date in attributes', SessionSchema, { ...session(), attributes: { d: new Date() } }],
    ['a session with a number override', SessionSchema, { ...session(), agentModelOverrides: { a: 1 } }],
    ['a session with an invalid parentId', SessionSchema, session({ parentId: '..' })],
    ['a session with an invalid fork source', SessionSchema, session({ forkedFrom: { sessionId: '' } })],
    ['a session without items', SessionSchema, (({ items: _items, ...rest }) => rest)(session())],
    [
      'a summary with a negative messageCount',
      SessionSummarySchema,
      {
        id: 's',
        title: '',
        createdAt: T0,
        updatedAt: T0,
        starred: false,
        messageCount: -1,
        usage: emptyUsage(),
      },
    ],
    ['an export bundle of version 2', ExportBundleSchema, { version: 2, exportedAt: T0, sessions: [] }],
  ];
  test.each(invalid)('reject %s', (_what, schema, value) => {
    expect(schema.safeParse(value).success).toBe(false);
  });

  test('JSON fields are kept as given, own "__proto__" keys included', () => {
    const attributes = JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}');
    const overrides = JSON.parse('{"__proto__":"a/b"}');
    const parsed = parseSession(session({ attributes, agentModelOverrides: overrides }));
    expect(parsed.attributes).toBe(attributes);
    expect(Object.keys(parsed.attributes)).toEqual(['__proto__', 'constructor']);
    expect(parsed.agentModelOverrides).toBe(overrides);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('JsonObjectSchema and StringRecordSchema accept null-prototype objects and reject class instances', () => {
    const bare = Object.assign(Object.create(null), { a: 'b' });
    expect(JsonObjectSchema.safeParse(bare).success).toBe(true);
    expect(StringRecordSchema.safeParse(bare).success).toBe(true);
    expect(JsonObjectSchema.safeParse(new (class Thing {})()).success).toBe(false);
    expect(StringRecordSchema.safeParse(new Map()).success).toBe(false);
    expect(StringRecordSchema.safeParse(['a']).success).toBe(false);
  });

  test('parseSession rejects with INVALID_ARGUMENT carrying the zod issues', () => {
    const error = expectInvalidArgument(() => parseSession({ ...session(), starred: 'yes' }));
    expect(error.issues).toEqual([expect.objectContaining({ path: ['starred'] })]);
    expect(error.message).toContain('starred');
  });
});

describe('parsePatch', () => {
  test('returns a valid patch as given', () => {
    const patch = { title: 't', source: undefined, attributes: { a: 1 } };
    expect(parsePatch(patch)).toBe(patch);
  });

  test('accepts every patchable field, and only those', () => {
    expect(SESSION_PATCH_FIELDS.sort()).toEqual(
      [
        'agent',
        'agentModelOverrides',
        'attributes',
        'customModelsUsed',
        'eventSeqReserved',
        'forkedFrom',
        'owner',
        'parentId',
        'pendingApprovals',
        'permissions',
        'safetyPolicy',
        'source',
        'starred',
        'title',
        'titleSource',
        'usage',
        'workingDir',
      ].sort(),
    );
    expect(SessionPatchSchema.safeParse({}).success).toBe(true);
  });

  test.each([...OPTIONAL_SESSION_FIELDS])('accepts the optional field %s named with undefined', (field) => {
    expect(() => parsePatch({ [field]: undefined })).not.toThrow();
  });

  test.each(SESSION_PATCH_FIELDS.filter((field) => !OPTIONAL_SESSION_FIELDS.has(field)))(
    'rejects the required field %s named with undefined',
    (field) => {
      const error = expectInvalidArgument(() => parsePatch({ [field]: undefined }));
      expect(error.issues).toEqual([expect.objectContaining({ path: [field] })]);
      expect(error.message).toContain(field);
    },
  );

  test.each([
    ['an unknown field', { bogus: 1 }],
    ['items', { items: [] }],
    ['id', { id: 'x' }],
    ['createdAt', { createdAt: T0 }],
    ['updatedAt', { updatedAt: T0 }],
    ['a wrong type', { starred: 'yes' }],
    ['an invalid parentId', { parentId: 'a/b' }],
    ['attributes that are not JSON', { attributes: { f: () => 1 } }],
    ['null', null],
    ['a string', 'title'],
    ['an array', []],
  ])('rejects %s', (_what, patch) => {
    expectInvalidArgument(() => parsePatch(patch));
  });
});

describe('applyPatch', () => {
  test('changes only the named fields and never items', () => {
    const target = session({ title: 'old', starred: false, items, source: 'coder' });
    applyPatch(target, { title: 'new', usage: { inputTokens: 1, outputTokens: 1, cost: 1 } });
    expect(target).toEqual(
      session({
        title: 'new',
        starred: false,
        items,
        source: 'coder',
        usage: { inputTokens: 1, outputTokens: 1, cost: 1 },
      }),
    );
  });

  test('removes an optional field named with undefined', () => {
    const target = session({ source: 'coder', workingDir: '/w', forkedFrom: { sessionId: 'p' } });
    applyPatch(target, { source: undefined, forkedFrom: undefined });
    expect(Object.hasOwn(target, 'source')).toBe(false);
    expect(Object.hasOwn(target, 'forkedFrom')).toBe(false);
    expect(target.workingDir).toBe('/w');
  });

  test('ignores fields that are not patchable and required fields named with undefined', () => {
    const target = session({ title: 'kept' });
    applyPatch(target, { title: undefined, items: [], id: 'other' } as never);
    expect(target).toEqual(session({ title: 'kept' }));
  });

  test('replaces object fields as a whole', () => {
    const target = session({ attributes: { a: 1, b: 2 } });
    applyPatch(target, { attributes: { c: 3 } });
    expect(target.attributes).toEqual({ c: 3 });
  });
});

describe('toSummary and countMessages', () => {
  test('countMessages counts message items only', () => {
    expect(countMessages(items)).toBe(2);
    expect(countMessages([])).toBe(0);
  });

  test('toSummary reports the listed fields, never items, and copies usage', () => {
    const full = session({
      title: 't',
      starred: true,
      workingDir: '/w',
      source: 'coder',
      agent: 'a',
      items,
      usage: { inputTokens: 1, outputTokens: 2, cost: 3 },
    });
    const summary = toSummary(full);
    expect(summary).toStrictEqual({
      id: 's1',
      title: 't',
      createdAt: T0,
      updatedAt: T0,
      starred: true,
      workingDir: '/w',
      source: 'coder',
      messageCount: 2,
      usage: { inputTokens: 1, outputTokens: 2, cost: 3 },
    });
    expect(summary.usage).not.toBe(full.usage);
    expect(SessionSummarySchema.strict().safeParse(summary).success).toBe(true);
  });

  test('toSummary leaves out absent optional fields and takes a given messageCount', () => {
    const summary = toSummary(session({ items }), 7);
    expect(Object.keys(summary)).not.toContain('workingDir');
    expect(Object.keys(summary)).not.toContain('source');
    expect(summary.messageCount).toBe(7);
  });

  test('emptyUsage returns a fresh zero record each time', () => {
    expect(emptyUsage()).toEqual({ inputTokens: 0, outputTokens: 0, cost: 0 });
    expect(emptyUsage()).not.toBe(emptyUsage());
  });
});

describe('isJsonValue', () => {
  class Point {
    x = 1;
  }
  test.each([
    ['null', null],
    ['a string', 'text\u0000'],
    ['a number', 1.5],
    ['negative zero', -0],
    ['a boolean', false],
    ['an empty array', []],
    ['a nested object', { a: [1, { b: null }], c: 'd' }],
    ['a null-prototype object', Object.assign(Object.create(null), { a: 1 })],
    ['an own "__proto__" key', JSON.parse('{"__proto__":{"a":1}}')],
  ])('accepts %s', (_what, value) => {
    expect(isJsonValue(value)).toBe(true);
  });

  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const cyclicArray: unknown[] = [1];
  cyclicArray.push([cyclicArray]);
  test.each([
    ['undefined', undefined],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', { n: Number.NEGATIVE_INFINITY }],
    ['a bigint', 1n],
    ['a symbol', Symbol('s')],
    ['a function', () => 1],
    ['a Date', new Date()],
    ['a Map', new Map()],
    ['a class instance', new Point()],
    ['a nested class instance', { a: [new Point()] }],
    ['an undefined property', { a: undefined }],
    ['an array hole', new Array(3).fill(1, 0, 1)],
    ['a cyclic object', cyclic],
    ['a cyclic array', cyclicArray],
  ])('rejects %s', (_what, value) => {
    expect(isJsonValue(value)).toBe(false);
  });

  test('accepts an object shared by two parents (not a cycle)', () => {
    const shared = { x: [1, 2] };
    expect(isJsonValue({ a: shared, b: shared, list: [shared, shared] })).toBe(true);
  });

  test('checks a heavily shared value in linear time', () => {
    // 60 levels, each referencing the previous one twice: 2^60 paths, 60 objects.
    let value: unknown = { leaf: true };
    for (let level = 0; level < 60; level++) value = { left: value, right: value };
    expect(isJsonValue(value)).toBe(true);
  });

  test('handles values nested 100 000 deep without overflowing the stack', () => {
    let deepArray: unknown = 'bottom';
    let deepObject: unknown = null;
    for (let level = 0; level < 100_000; level++) {
      deepArray = [deepArray];
      deepObject = { next: deepObject };
    }
    expect(isJsonValue(deepArray)).toBe(true);
    expect(isJsonValue(deepObject)).toBe(true);
    let deepCycle: Record<string, unknown> = {};
    const top = deepCycle;
    for (let level = 0; level < 100_000; level++) {
      const next = {};
      deepCycle.next = next;
      deepCycle = next;
    }
    deepCycle.back = top;
    expect(isJsonValue(top)).toBe(false);
  });
});
