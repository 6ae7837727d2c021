// Property tests of every store: valid records round-trip, invalid ids are refused before any I/O,
// and hostile JSON keys neither pollute prototypes nor get lost. Add a store with one factory line.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import {
  applyPatch,
  type JsonObject,
  type JsonValue,
  type Message,
  parsePatch,
  type Session,
  type SessionItem,
  type SessionPatch,
  SessionSchema,
  toSummary,
  type Usage,
} from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { sessionRecord, withoutUpdatedAt } from '../helpers/sessions.js';

/** A store under test, and a way to tell whether a call touched its storage. */
interface Harness {
  store: Store;
  /** Runs `call` and reports whether it touched the store's storage (its map, its files). */
  touchesStorage(call: () => Promise<unknown>): Promise<boolean>;
  cleanup(): Promise<void>;
}

interface StoreFactory {
  name: string;
  create(): Promise<Harness>;
}

const MAP_METHODS = ['get', 'set', 'has', 'delete', 'values', 'keys', 'entries', 'forEach', 'clear'] as const;

const memoryFactory: StoreFactory = {
  name: 'MemoryStore',
  async create() {
    return {
      store: new MemoryStore(),
      // MemoryStore's storage is a Map: any Map operation during the call would be a read or
      // write. The rejection path settles in microtasks, so nothing else can run in between.
      async touchesStorage(call) {
        const spies = MAP_METHODS.map((method) => vi.spyOn(Map.prototype, method));
        try {
          await call().catch(() => {});
          return spies.some((spy) => spy.mock.calls.length > 0);
        } finally {
          for (const spy of spies) spy.mockRestore();
        }
      },
      async cleanup() {},
    };
  },
};

async function snapshotTree(directory: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (path: string) => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      const info = await stat(full);
      lines.push(`${full} ${info.size} ${info.mtimeMs}`);
      if (entry.isDirectory()) await walk(full);
    }
  };
  await walk(directory);
  return lines.sort();
}

/** FileStore, once its module exists: a fresh directory per store, buffered writes for speed. */
async function fileFactories(): Promise<StoreFactory[]> {
  if (!existsSync(new URL('../../src/stores/file/store.ts', import.meta.url))) return [];
  const { FileStore } = await import('../../src/stores/file/store.js');
  return [
    {
      name: 'FileStore',
      async create() {
        const parent = await mkdtemp(join(tmpdir(), 'agent-sessions-property-'));
        const directory = join(parent, 'store');
        const store = new FileStore({ directory, durability: 'buffered' });
        await store.listSessions({ limit: 1 }); // opens the store, so later snapshots compare like with like
        return {
          store,
          async touchesStorage(call) {
            const before = await snapshotTree(parent);
            await call().catch(() => {});
            return JSON.stringify(await snapshotTree(parent)) !== JSON.stringify(before);
          },
          async cleanup() {
            await store.close();
            await rm(parent, { recursive: true, force: true });
          },
        };
      },
    },
  ];
}

const factories: StoreFactory[] = [memoryFactory, ...(await fileFactories())];

const NUM_RUNS = 40;

// ---------------------------------------------------------------------------------------------
// Arbitraries of valid records

// Any code point but lone surrogates. fast-check's own `unit: codePointArb` spends seconds building
// its tables on first use; this is as wide and instant.
const codePointArb = fc
  .integer({ min: 0, max: 0x10ffff })
  .map((code) => String.fromCodePoint(code >= 0xd800 && code <= 0xdfff ? code + 0x800 : code));
const idArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/);
const textArb = fc.oneof(
  fc.string({ unit: codePointArb, maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '\u0000', 'e\u0301', '𝄞😀', 'שלום', '{"__proto__":{"polluted":true}}'),
);
const nonEmptyTextArb = textArb.filter((text) => text.length > 0);
const timestampArb = fc
  .date({
    min: new Date('1970-01-01T00:00:00.000Z'),
    max: new Date('2999-12-31T23:59:59.999Z'),
    noInvalidDate: true,
  })
  .map((date) => date.toISOString());
const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'polluted'];
const keyArb = fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 }));

/** JSON values whose objects may hold `__proto__` and `constructor` keys, as JSON.parse makes them. */
const jsonValueArb: fc.Arbitrary<JsonValue> = fc
  .letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer(),
      textArb,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(keyArb, tie('value'), { maxKeys: 4 }),
    ),
  }))
  .value.map((value) => JSON.parse(JSON.stringify(value)) as JsonValue);
const jsonObjectArb: fc.Arbitrary<JsonObject> = fc
  .dictionary(keyArb, jsonValueArb, { maxKeys: 5 })
  .map((value) => JSON.parse(JSON.stringify(value)) as JsonObject);

const numberArb = fc.double({ min: 0, max: 1e12, noNaN: true }).map((value) => value + 0); // no -0
const usageArb: fc.Arbitrary<Usage> = fc.record({
  inputTokens: fc.nat(),
  outputTokens: fc.nat(),
  cost: numberArb,
});

const partArb = fc.oneof(
  fc.record({ type: fc.constant('text' as const), text: textArb }),
  fc.record(
    { type: fc.constant('image' as const), url: textArb, data: textArb, mimeType: textArb },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    { type: fc.constant('file' as const), uri: textArb, name: textArb, mimeType: textArb },
    { requiredKeys: ['type', 'uri'] },
  ),
);

const messageArb: fc.Arbitrary<Message> = fc.record(
  {
    id: nonEmptyTextArb,
    role: fc.constantFrom('user', 'assistant', 'tool', 'system'),
    content: textArb,
    parts: fc.array(partArb, { maxLength: 3 }),
    toolCalls: fc.array(
      fc.record({
        id: nonEmptyTextArb,
        name: nonEmptyTextArb,
        arguments: jsonValueArb.map((value) => JSON.stringify(value)),
      }),
      { maxLength: 3 },
    ),
    toolCallId: textArb,
    agent: textArb,
    model: textArb,
    usage: usageArb,
    createdAt: timestampArb,
  },
  { requiredKeys: ['id', 'role', 'content', 'createdAt'] },
);

const sessionItemArb: fc.Arbitrary<SessionItem> = fc.oneof(
  messageArb.map((message) => ({ kind: 'message' as const, message })),
  fc.record(
    {
      kind: fc.constant('summary' as const),
      id: nonEmptyTextArb,
      summary: textArb,
      firstKeptItem: fc.nat(),
      createdAt: timestampArb,
      model: textArb,
      usage: usageArb,
    },
    { requiredKeys: ['kind', 'id', 'summary', 'firstKeptItem', 'createdAt'] },
  ),
  fc.record(
    {
      kind: fc.constant('error' as const),
      id: nonEmptyTextArb,
      message: textArb,
      code: textArb,
      agent: textArb,
      createdAt: timestampArb,
    },
    { requiredKeys: ['kind', 'id', 'message', 'createdAt'] },
  ),
);

const stringRecordArb = fc
  .dictionary(keyArb, textArb, { maxKeys: 4 })
  .map((value) => JSON.parse(JSON.stringify(value)) as Record<string, string>);

const metadataArbs = {
  title: textArb,
  titleSource: fc.constantFrom('none', 'heuristic', 'generated', 'manual'),
  source: textArb,
  agent: textArb,
  workingDir: textArb,
  starred: fc.boolean(),
  usage: usageArb,
  safetyPolicy: fc.constantFrom('', 'strict', 'balanced', 'restricted', 'autonomous'),
  permissions: fc.record({
    allow: fc.array(textArb, { maxLength: 3 }),
    ask: fc.array(textArb, { maxLength: 3 }),
    deny: fc.array(textArb, { maxLength: 3 }),
  }),
  agentModelOverrides: stringRecordArb,
  customModelsUsed: fc.array(textArb, { maxLength: 3 }),
  attributes: jsonObjectArb,
  parentId: idArb,
  forkedFrom: fc.record({ sessionId: idArb, beforeUserMessage: fc.nat() }, { requiredKeys: ['sessionId'] }),
} as const;

const sessionArb: fc.Arbitrary<Session> = fc.record(
  {
    id: idArb,
    createdAt: timestampArb,
    updatedAt: timestampArb,
    items: fc.array(sessionItemArb, { maxLength: 5 }),
    ...metadataArbs,
  },
  {
    requiredKeys: [
      'id',
      'createdAt',
      'updatedAt',
      'items',
      'title',
      'titleSource',
      'starred',
      'usage',
      'safetyPolicy',
      'permissions',
      'agentModelOverrides',
      'customModelsUsed',
      'attributes',
    ],
  },
) as fc.Arbitrary<Session>;

const OPTIONAL = ['source', 'agent', 'workingDir', 'parentId', 'forkedFrom'] as const;
/** Valid patches: named fields with valid values, and optional fields named with `undefined`. */
const patchArb: fc.Arbitrary<SessionPatch> = fc
  .tuple(fc.record(metadataArbs, { requiredKeys: [] }), fc.subarray([...OPTIONAL]))
  .map(([set, removed]) => {
    const patch: Record<string, unknown> = { ...set };
    for (const key of removed) patch[key] = undefined;
    return patch as SessionPatch;
  });

/** Anything but a valid session id: near misses, path tricks, and non-strings. */
const invalidIdArb: fc.Arbitrary<unknown> = fc.oneof(
  fc
    .string({ unit: codePointArb, maxLength: 140 })
    .filter((text) => !/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(text)),
  fc
    .tuple(idArb, fc.constantFrom('/', '\\', '.', '..', ' ', '\u0000', '%2e', ':', 'é', '\n'), idArb)
    .map(([a, bad, b]) => `${a}${bad}${b}`),
  fc.tuple(fc.constantFrom('-', '_', '.', '/', '../'), idArb).map(([bad, rest]) => `${bad}${rest}`),
  fc.integer({ min: 129, max: 300 }).map((length) => 'a'.repeat(length)),
  fc.constantFrom(undefined, null, 0, 1, true, {}, [], ['a']),
);

const validSession = (id: string): Session =>
  sessionRecord(id, {
    items: [
      {
        kind: 'message',
        message: { id: 'm1', role: 'user', content: 'hi', createdAt: '2024-01-01T00:00:00.000Z' },
      },
    ],
  });

function assertPristinePrototypes(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
}

// ---------------------------------------------------------------------------------------------

test('the arbitraries produce records that the schemas accept', () => {
  fc.assert(
    fc.property(sessionArb, patchArb, (session, patch) => {
      expect(SessionSchema.safeParse(session).success).toBe(true);
      expect(parsePatch(patch)).toBe(patch);
    }),
    { numRuns: 200 },
  );
});

describe.each(factories)('$name', (factory) => {
  let harnesses: Harness[] = [];
  const open = async () => {
    const harness = await factory.create();
    harnesses.push(harness);
    return harness;
  };
  afterEach(async () => {
    const opened = harnesses;
    harnesses = [];
    for (const harness of opened) await harness.cleanup();
    assertPristinePrototypes();
  });

  test('any valid session round-trips through createSession and getSession, and lists as its summary', async () => {
    await fc.assert(
      fc.asyncProperty(sessionArb, async (session) => {
        const { store } = await open();
        await store.createSession(structuredClone(session));
        const got = await store.getSession(session.id);
        expect(withoutUpdatedAt(got)).toEqual(withoutUpdatedAt(session));
        const [summary] = (await store.listSessions()).sessions;
        expect(summary).toEqual(toSummary(got));
        assertPristinePrototypes();
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('any valid items round-trip through appendItems and updateMessage, in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(sessionItemArb, { maxLength: 4 }), { maxLength: 4 }),
        messageArb,
        async (batches, replacement) => {
          const { store } = await open();
          const session = validSession('items');
          await store.createSession(session);
          for (const batch of batches) await store.appendItems('items', structuredClone(batch));
          await store.updateMessage('items', 'm1', structuredClone(replacement));
          const got = await store.getSession('items');
          // Appends are idempotent: an item whose id is already stored is not stored again.
          const seen = new Set(
            session.items.map((item) => (item.kind === 'message' ? item.message.id : item.id)),
          );
          const expected = batches.flat().filter((item) => {
            const key = item.kind === 'message' ? item.message.id : item.id;
            if (seen.has(key)) return false;
            seen.add(key);
            return true;
          });
          expect(got.items).toEqual([{ kind: 'message', message: replacement }, ...expected]);
          assertPristinePrototypes();
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  test('any valid patch changes exactly the fields it names', async () => {
    await fc.assert(
      fc.asyncProperty(sessionArb, patchArb, async (session, patch) => {
        const { store } = await open();
        await store.createSession(structuredClone(session));
        await store.updateSession(session.id, structuredClone(patch));
        const expected = structuredClone(session);
        applyPatch(expected, patch);
        const got = await store.getSession(session.id);
        expect(withoutUpdatedAt(got)).toEqual(withoutUpdatedAt(expected));
        for (const key of OPTIONAL) {
          if (Object.hasOwn(patch, key) && patch[key] === undefined)
            expect(Object.hasOwn(got, key)).toBe(false);
        }
        assertPristinePrototypes();
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('any invalid id is refused with INVALID_ARGUMENT before the store touches its storage', async () => {
    const harness = await open();
    await harness.store.createSession(validSession('existing'));
    const calls: [string, (id: string) => Promise<unknown>][] = [
      ['createSession', (id) => harness.store.createSession(validSession(id))],
      ['getSession', (id) => harness.store.getSession(id)],
      ['updateSession', (id) => harness.store.updateSession(id, { title: 'x' })],
      ['appendItems', (id) => harness.store.appendItems(id, validSession('x').items)],
      [
        'updateMessage',
        (id) =>
          harness.store.updateMessage(id, 'm1', {
            id: 'm1',
            role: 'user',
            content: '',
            createdAt: '2024-01-01T00:00:00Z',
          }),
      ],
      ['deleteSession', (id) => harness.store.deleteSession(id)],
    ];
    await fc.assert(
      fc.asyncProperty(invalidIdArb, fc.constantFrom(...calls), async (id, [method, call]) => {
        let error: unknown;
        const touched = await harness.touchesStorage(async () => {
          try {
            await call(id as string);
          } catch (caught) {
            error = caught;
          }
        });
        expect(
          AgentSessionsError.hasCode(error, 'INVALID_ARGUMENT'),
          `${method}(${JSON.stringify(id)})`,
        ).toBe(true);
        expect(touched, `${method}(${JSON.stringify(id)}) touched storage`).toBe(false);
      }),
      { numRuns: NUM_RUNS * 3 },
    );
    expect((await harness.store.listSessions()).sessions.map((summary) => summary.id)).toEqual(['existing']);
  });

  test('the storage probe sees a valid call touch storage', async () => {
    // Proves the probe above can fail: the same calls with a valid id do reach storage.
    const harness = await open();
    expect(await harness.touchesStorage(() => harness.store.createSession(validSession('probe')))).toBe(true);
    expect(await harness.touchesStorage(() => harness.store.deleteSession('probe'))).toBe(true);
  });

  test('__proto__ and constructor keys in attributes, overrides and message text survive and pollute nothing', async () => {
    const hostileObjectArb = fc
      .record({
        key: fc.constantFrom('__proto__', 'constructor', 'prototype'),
        inner: fc.constantFrom('polluted', 'prototype', '__proto__'),
        value: jsonValueArb,
      })
      .map(
        ({ key, inner, value }) =>
          JSON.parse(
            `{${JSON.stringify(key)}:{${JSON.stringify(inner)}:${JSON.stringify(value)}}}`,
          ) as JsonObject,
      );
    await fc.assert(
      fc.asyncProperty(hostileObjectArb, hostileObjectArb, async (attributes, nested) => {
        const { store } = await open();
        const overrides = JSON.parse('{"__proto__":"evil/model","constructor":"x/y"}') as Record<
          string,
          string
        >;
        const text = JSON.stringify(nested);
        const session: Session = {
          ...validSession('hostile'),
          attributes: { ...attributes, nested },
          agentModelOverrides: overrides,
        };
        await store.createSession(structuredClone(session));
        await store.appendItems('hostile', [
          {
            kind: 'message',
            message: {
              id: 'm2',
              role: 'assistant',
              content: text,
              toolCalls: [{ id: 'c', name: '__proto__', arguments: text }],
              createdAt: '2024-01-01T00:00:00.000Z',
            },
          },
        ]);
        await store.updateSession('hostile', { attributes: structuredClone(nested) });
        const got = await store.getSession('hostile');
        assertPristinePrototypes();
        expect(got.attributes).toEqual(nested);
        expect(Object.keys(got.attributes)).toEqual(Object.keys(nested));
        expect(got.agentModelOverrides).toEqual(overrides);
        expect(Object.hasOwn(got.agentModelOverrides, '__proto__')).toBe(true);
        const message = got.items[1];
        expect(message?.kind === 'message' && message.message.content).toBe(text);
        expect(message?.kind === 'message' && message.message.toolCalls?.[0]?.arguments).toBe(text);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
