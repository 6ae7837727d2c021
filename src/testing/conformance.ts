/**
 * The Store conformance suite (SPEC §3): every store of agent-sessions passes it, and a third
 * party runs it on theirs. The test function is injected, so it runs under vitest, jest or
 * `node:test`; this module never imports a test framework.
 *
 * @example
 * ```ts
 * import { describe, test } from 'vitest';
 * import { describeStoreConformance } from 'agent-sessions/testing';
 *
 * describeStoreConformance({ test, describe, createStore: () => new MyStore() });
 * ```
 */
import { ErrorCode } from '../errors.js';
import {
  type Message,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
  SessionSummarySchema,
  toSummary,
} from '../schemas.js';
import { compareListPosition, type ListOptions, type Page, type Store } from '../store.js';
import { assert, assertEqual, assertRejectsWithCode, fail, show } from './assert.js';
import { recordFieldCases } from './conformance-record-fields.js';
import { sessionRecord } from './records.js';

/** Options of {@link describeStoreConformance}. */
export interface StoreConformanceOptions {
  /** Registers one test: vitest/jest/node:test `test(name, fn)`. */
  test: (name: string, fn: () => Promise<void>) => unknown;
  /** Groups tests, e.g. vitest's `describe`. When omitted, names are prefixed instead. */
  describe?: (name: string, fn: () => void) => unknown;
  /** A fresh, empty store for each test. */
  createStore: () => Store | Promise<Store>;
  /** Persistent stores: close this store and open the same data again (enables reopen tests). */
  reopenStore?: (store: Store) => Store | Promise<Store>;
  /**
   * Called after each test with the last store instance (close it, remove its files).
   * @default calls `store.close()` when the store has one
   */
  destroyStore?: (store: Store) => void | Promise<void>;
  /**
   * Label for the group (or the prefix of every test name when `describe` is omitted). The store's
   * own `name` is not known when tests are registered (no store is created before a test runs).
   * @default 'Store conformance'
   */
  name?: string;
}

/** What each conformance test gets: the current store, and a way to reopen it. */
interface Context {
  readonly store: Store;
  /** Reopens the store (only called when `reopenStore` is given). */
  reopen(): Promise<Store>;
}

interface Case {
  name: string;
  /** Runs only when the store can be reopened. */
  needsReopen?: boolean;
  run(context: Context): Promise<void>;
}

/**
 * Registers the Store conformance tests: CRUD and its errors, copy isolation, patch rules,
 * `updatedAt`, all-or-nothing appends, concurrency, listing order, filters and stable cursors,
 * large and unicode content, id validation, prototype-polluting keys and, when `reopenStore` is
 * given, persistence across a reopen.
 *
 * Each test creates a fresh store with `createStore` and hands the last instance to
 * `destroyStore` (or `close()`) afterwards, even when it fails. Failures throw plain `Error`s whose
 * messages say which rule was broken and where two values differ. The suite uses the real clock:
 * do not run it under fake timers.
 */
export function describeStoreConformance(options: StoreConformanceOptions): void {
  const label = options.name ?? 'Store conformance';
  const cases = conformanceCases().filter((entry) => !entry.needsReopen || options.reopenStore);
  const register = (prefix: string) => {
    for (const entry of cases) options.test(`${prefix}${entry.name}`, () => runCase(options, entry));
  };
  if (options.describe) options.describe(label, () => register(''));
  else register(`${label}: `);
}

async function runCase(options: StoreConformanceOptions, entry: Case): Promise<void> {
  let store = await options.createStore();
  const context: Context = {
    get store() {
      return store;
    },
    async reopen() {
      if (!options.reopenStore) return fail('reopen() called without a reopenStore option');
      store = await options.reopenStore(store);
      return store;
    },
  };
  let failure: { error: unknown } | undefined;
  try {
    await entry.run(context);
  } catch (error) {
    failure = { error };
  }
  try {
    if (options.destroyStore) await options.destroyStore(store);
    else await store.close?.();
  } catch (error) {
    // The test's own failure says more than a cleanup failure it may have caused.
    if (!failure) throw error;
  }
  if (failure) throw failure.error;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const T0 = '2024-01-02T03:04:05.000Z';
const T1 = '2024-01-02T03:04:06.000Z';

function makeSession(id: string, overrides: Partial<Session> = {}): Session {
  return sessionRecord(id, overrides, T0);
}

function makeMessage(id: string, overrides: Partial<Message> = {}): Message {
  return { id, role: 'user', content: `content of ${id}`, createdAt: T0, ...overrides };
}

function messageItem(id: string, overrides: Partial<Message> = {}): SessionItem {
  return { kind: 'message', message: makeMessage(id, overrides) };
}

/** A session with every optional field set and one item of each kind. */
function fullSession(id: string): Session {
  return makeSession(id, {
    title: 'A full session',
    titleSource: 'manual',
    source: 'https://hub.example/agents/coder',
    agent: 'coder',
    workingDir: '/work/project',
    owner: 'user-42',
    starred: true,
    usage: { inputTokens: 120, outputTokens: 45, cost: 0.0125 },
    safetyPolicy: 'balanced',
    permissions: { allow: ['read_*'], ask: ['shell:cmd=ls*'], deny: ['rm'] },
    agentModelOverrides: { coder: 'openai/gpt-5', default: 'anthropic/claude' },
    customModelsUsed: ['openai/gpt-5'],
    attributes: { team: 'core', nested: { list: [1, 'two', null, true, { deep: 2.5 }] }, empty: {} },
    parentId: 'parent-1',
    forkedFrom: { sessionId: 'parent-1', beforeUserMessage: 2 },
    items: [
      messageItem('m1', {
        content: 'hello',
        parts: [
          { type: 'text', text: 'hello' },
          { type: 'image', url: 'https://example.com/a.png', mimeType: 'image/png' },
          { type: 'file', uri: 'file:///work/a.txt', name: 'a.txt' },
        ],
      }),
      messageItem('m2', {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call-1', name: 'shell', arguments: '{"cmd":"ls"}' }],
        agent: 'coder',
        model: 'openai/gpt-5',
        usage: { inputTokens: 10, outputTokens: 5, cost: 0.001 },
      }),
      messageItem('m3', { role: 'tool', content: 'a.txt', toolCallId: 'call-1' }),
      {
        kind: 'summary',
        id: 'sum-1',
        summary: 'they listed files',
        firstKeptItem: 2,
        createdAt: T1,
        model: 'm',
        usage: { inputTokens: 1, outputTokens: 1, cost: 0 },
      },
      {
        kind: 'error',
        id: 'err-1',
        message: 'runtime failed',
        code: 'RUNTIME_FAILED',
        agent: 'coder',
        createdAt: T1,
      },
    ],
  });
}

function withoutUpdatedAt(session: Session): Omit<Session, 'updatedAt'> {
  const { updatedAt: _updatedAt, ...rest } = session;
  return rest;
}

function time(iso: string, what: string): number {
  const value = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
  assert(!Number.isNaN(value), `${what}: updatedAt ${show(iso)} is not an ISO-8601 timestamp`);
  return value;
}

/** Fails unless `updatedAt` was set by a write that started at `before` and replaced `previous`. */
function assertWriteTime(session: Session, before: number, previous: string | undefined, what: string): void {
  const written = time(session.updatedAt, what);
  assert(
    written >= before,
    `${what}: updatedAt must be set to the time of the write: ${session.updatedAt} is before the call started (${new Date(before).toISOString()})`,
  );
  if (previous !== undefined) {
    assert(
      written >= Date.parse(previous),
      `${what}: updatedAt went backwards from ${previous} to ${session.updatedAt}`,
    );
  }
}

function at(seconds: number): string {
  return new Date(Date.parse(T0) + seconds * 1000).toISOString();
}

/** Every summary of a listing, following `nextCursor` with the given options. */
async function listAll(store: Store, options: ListOptions = {}): Promise<SessionSummary[]> {
  const all: SessionSummary[] = [];
  let cursor: string | undefined;
  for (let pages = 0; ; pages++) {
    assert(pages < 10_000, 'listSessions kept returning nextCursor: paging does not end');
    const page: Page<SessionSummary> = await store.listSessions(
      cursor === undefined ? options : { ...options, cursor },
    );
    all.push(...page.sessions);
    if (page.nextCursor === undefined) return all;
    assert(page.sessions.length > 0, 'listSessions returned an empty page with a nextCursor');
    cursor = page.nextCursor;
  }
}

function ids(summaries: readonly { id: string }[]): string[] {
  return summaries.map((summary) => summary.id);
}

function assertListingOrder(summaries: readonly SessionSummary[], what: string): void {
  for (let index = 1; index < summaries.length; index++) {
    const previous = summaries[index - 1]!;
    const current = summaries[index]!;
    assert(
      compareListPosition(previous, current) < 0,
      `${what}: listing order must be newest updatedAt first, ties by id descending, but ${show({
        id: previous.id,
        updatedAt: previous.updatedAt,
      })} comes before ${show({ id: current.id, updatedAt: current.updatedAt })}`,
    );
  }
}

function assertNoDuplicates(values: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const value of values) {
    assert(!seen.has(value), `${what}: ${show(value)} appears more than once`);
    seen.add(value);
  }
}

function assertSameSet(actual: readonly string[], expected: readonly string[], what: string): void {
  assertEqual([...actual].sort(), [...expected].sort(), what);
}

async function createMany(
  store: Store,
  count: number,
  prefix = 's',
  overrides?: (index: number) => Partial<Session>,
) {
  const created: string[] = [];
  for (let index = 0; index < count; index++) {
    const id = `${prefix}${String(index).padStart(3, '0')}`;
    await store.createSession(makeSession(id, overrides?.(index)));
    created.push(id);
  }
  return created;
}

/** Asserts that a failed write left the session exactly as it was (updatedAt included). */
async function assertUnchanged(store: Store, before: Session, what: string): Promise<void> {
  assertEqual(await store.getSession(before.id), before, `${what}: a rejected write must change nothing`);
}

function pristinePrototypes(what: string): void {
  const probe = {} as Record<string, unknown>;
  assert(
    probe.polluted === undefined && Object.keys(Object.prototype).length === 0,
    `${what}: Object.prototype was polluted`,
  );
  assert(
    (Object.prototype as unknown as Record<string, unknown>).polluted === undefined,
    `${what}: Object.prototype.polluted was set`,
  );
}

// Ids outside ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$, several of which would escape a directory.
const INVALID_IDS: readonly unknown[] = [
  '',
  ' ',
  '-leading-hyphen',
  '_leading-underscore',
  '.',
  '..',
  '../escape',
  '..\\escape',
  'a/b',
  'a\\b',
  '/absolute',
  'C:drive',
  'a.json',
  'has space',
  'tab\tid',
  'new\nline',
  'nul\u0000id',
  'é',
  'emoji😀',
  '%2e%2e',
  'a'.repeat(129),
  undefined,
  null,
  42,
  {},
  ['array'],
];

const VALID_PATCHES: readonly SessionPatch[] = [
  { title: 'a new title' },
  { titleSource: 'generated' },
  { source: 'coder' },
  { agent: 'reviewer' },
  { workingDir: '/elsewhere' },
  { owner: 'another-user' },
  { starred: false },
  { usage: { inputTokens: 1, outputTokens: 2, cost: 3 } },
  { safetyPolicy: 'autonomous' },
  { permissions: { allow: ['x'], ask: [], deny: ['y'] } },
  { agentModelOverrides: { reviewer: 'local/model' } },
  { customModelsUsed: ['a/b', 'c/d'] },
  { attributes: { replaced: true } },
  { parentId: 'other-parent' },
  { forkedFrom: { sessionId: 'other-parent' } },
];

const OPTIONAL_FIELDS = ['source', 'agent', 'workingDir', 'owner', 'parentId', 'forkedFrom'] as const;
const REQUIRED_PATCH_FIELDS = [
  'title',
  'titleSource',
  'starred',
  'usage',
  'safetyPolicy',
  'permissions',
  'agentModelOverrides',
  'customModelsUsed',
  'attributes',
] as const;

const UNICODE_SAMPLES = {
  astral: '𝄞 music, 😀 emoji, 👩‍👩‍👧 family (ZWJ), 🇫🇷 flag, 𠜎 CJK ext B',
  combining: 'e\u0301 vs \u00e9, a\u0308\u0304, Z\u0351\u036b\u0343\u036a',
  rtl: 'مرحبا بالعالم — שלום עולם — \u202eright-to-left override\u202c',
  nul: 'before\u0000after\u0000',
  controls: '\u0001\u0008\t\n\r\u001f\u007f',
  separators: 'line\u2028separator\u2029paragraph',
  bom: '\ufeffbyte order mark',
  quotes: 'quotes " and \\ backslash and </script>',
};
const UNICODE_TEXT = Object.values(UNICODE_SAMPLES).join(' | ');

// ---------------------------------------------------------------------------------------------
// The cases

function conformanceCases(): Case[] {
  return [
    ...crudCases(),
    ...isolationCases(),
    ...patchCases(),
    ...appendCases(),
    ...messageCases(),
    ...listingCases(),
    ...contentCases(),
    ...idCases(),
    ...reopenCases(),
    ...recordFieldCases(),
  ];
}

function crudCases(): Case[] {
  return [
    {
      name: 'createSession then getSession returns every field exactly as given, timestamps included',
      async run({ store }) {
        const session = fullSession('full-1');
        session.updatedAt = '2024-05-06T07:08:09.123Z';
        await store.createSession(session);
        assertEqual(await store.getSession('full-1'), session, 'getSession after createSession');
      },
    },
    {
      name: 'createSession rejects with SESSION_EXISTS for a taken id and keeps the first session',
      async run({ store }) {
        await store.createSession(makeSession('taken', { title: 'first' }));
        const first = await store.getSession('taken');
        await assertRejectsWithCode(
          () => store.createSession(makeSession('taken', { title: 'second' })),
          ErrorCode.SESSION_EXISTS,
          'createSession of a taken id',
        );
        await assertUnchanged(store, first, 'createSession of a taken id');
      },
    },
    {
      name: 'getSession rejects with SESSION_NOT_FOUND for an unknown id',
      async run({ store }) {
        await store.createSession(makeSession('known'));
        await assertRejectsWithCode(
          () => store.getSession('unknown'),
          ErrorCode.SESSION_NOT_FOUND,
          'getSession("unknown")',
        );
      },
    },
    {
      name: 'every write rejects with SESSION_NOT_FOUND for an unknown id and creates nothing',
      async run({ store }) {
        const calls: [string, () => Promise<unknown>][] = [
          ['updateSession', () => store.updateSession('unknown', { title: 'x' })],
          ['appendItems', () => store.appendItems('unknown', [messageItem('m1')])],
          ['updateMessage', () => store.updateMessage('unknown', 'm1', makeMessage('m1'))],
          ['deleteSession', () => store.deleteSession('unknown')],
        ];
        for (const [method, call] of calls) {
          await assertRejectsWithCode(call, ErrorCode.SESSION_NOT_FOUND, `${method} of an unknown session`);
        }
        assertEqual(ids(await listAll(store)), [], 'listSessions after writes to an unknown session');
      },
    },
    {
      name: 'deleteSession removes the session from getSession and listSessions; a second delete rejects with SESSION_NOT_FOUND',
      async run({ store }) {
        await store.createSession(makeSession('keep'));
        await store.createSession(fullSession('gone'));
        await store.deleteSession('gone');
        await assertRejectsWithCode(
          () => store.getSession('gone'),
          ErrorCode.SESSION_NOT_FOUND,
          'getSession after deleteSession',
        );
        await assertRejectsWithCode(
          () => store.deleteSession('gone'),
          ErrorCode.SESSION_NOT_FOUND,
          'a second deleteSession',
        );
        await assertRejectsWithCode(
          () => store.appendItems('gone', [messageItem('m9')]),
          ErrorCode.SESSION_NOT_FOUND,
          'appendItems after deleteSession',
        );
        assertEqual(ids(await listAll(store)), ['keep'], 'listSessions after deleteSession');
        assertEqual((await store.getSession('keep')).id, 'keep', 'the other session after deleteSession');
      },
    },
    {
      name: 'createSession after deleteSession makes a fresh session with the same id',
      async run({ store }) {
        await store.createSession(fullSession('reused'));
        await store.deleteSession('reused');
        const fresh = makeSession('reused', { title: 'fresh' });
        await store.createSession(fresh);
        const got = await store.getSession('reused');
        assertEqual(withoutUpdatedAt(got), withoutUpdatedAt(fresh), 'the re-created session');
        assertEqual(ids(await listAll(store)), ['reused'], 'listSessions after re-creating');
      },
    },
    {
      name: 'createSession rejects an invalid session with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        const base = makeSession('bad');
        const invalid: [string, unknown][] = [
          ['not an object', 'session'],
          ['null', null],
          ['missing title', (({ title: _title, ...rest }) => rest)(base)],
          ['missing items', (({ items: _items, ...rest }) => rest)(base)],
          ['unknown titleSource', { ...base, titleSource: 'magic' }],
          ['createdAt not ISO-8601', { ...base, createdAt: 'yesterday' }],
          ['starred not a boolean', { ...base, starred: 'yes' }],
          ['an empty owner', { ...base, owner: '' }],
          ['owner not a string', { ...base, owner: 7 }],
          ['negative usage', { ...base, usage: { inputTokens: -1, outputTokens: 0, cost: 0 } }],
          ['NaN cost', { ...base, usage: { inputTokens: 0, outputTokens: 0, cost: Number.NaN } }],
          ['unknown safetyPolicy', { ...base, safetyPolicy: 'yolo' }],
          ['permissions missing deny', { ...base, permissions: { allow: [], ask: [] } }],
          ['attributes an array', { ...base, attributes: [] }],
          ['attributes holding a Date', { ...base, attributes: { when: new Date(0) } }],
          ['attributes holding Infinity', { ...base, attributes: { n: Number.POSITIVE_INFINITY } }],
          ['attributes holding a function', { ...base, attributes: { f: () => 1 } }],
          ['agentModelOverrides with a number', { ...base, agentModelOverrides: { coder: 5 } }],
          ['invalid parentId', { ...base, parentId: '../escape' }],
          ['invalid forkedFrom.sessionId', { ...base, forkedFrom: { sessionId: 'a/b' } }],
          ['an item of unknown kind', { ...base, items: [{ kind: 'note', id: 'n1' }] }],
          [
            'a message without createdAt',
            { ...base, items: [{ kind: 'message', message: { id: 'm', role: 'user', content: '' } }] },
          ],
          [
            'a message with an unknown role',
            { ...base, items: [messageItem('m', { role: 'robot' as 'user' })] },
          ],
        ];
        for (const [what, session] of invalid) {
          await assertRejectsWithCode(
            () => store.createSession(session as Session),
            ErrorCode.INVALID_ARGUMENT,
            `createSession with ${what}`,
          );
        }
        await assertRejectsWithCode(
          () => store.getSession('bad'),
          ErrorCode.SESSION_NOT_FOUND,
          'getSession after rejected createSession calls',
        );
        assertEqual(ids(await listAll(store)), [], 'listSessions after rejected createSession calls');
      },
    },
    {
      name: 'concurrent createSession calls with one id: exactly one succeeds, the others reject with SESSION_EXISTS',
      async run({ store }) {
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, index) =>
            store.createSession(makeSession('contended', { title: `writer ${index}` })),
          ),
        );
        const fulfilled = results.filter((result) => result.status === 'fulfilled');
        assert(fulfilled.length === 1, `exactly one createSession must succeed, ${fulfilled.length} did`);
        for (const result of results) {
          if (result.status === 'rejected') {
            await assertRejectsWithCode(
              () => Promise.reject(result.reason),
              ErrorCode.SESSION_EXISTS,
              'a losing concurrent createSession',
            );
          }
        }
        const winner = results.findIndex((result) => result.status === 'fulfilled');
        assertEqual((await store.getSession('contended')).title, `writer ${winner}`, 'the stored session');
        assertEqual(ids(await listAll(store)), ['contended'], 'listSessions after concurrent creates');
      },
    },
  ];
}

function isolationCases(): Case[] {
  return [
    {
      name: 'createSession copies its input and leaves it unchanged',
      async run({ store }) {
        const session = fullSession('iso-create');
        const snapshot = structuredClone(session);
        await store.createSession(session);
        assertEqual(session, snapshot, 'createSession must not modify the session it was given');
        session.title = 'mutated';
        session.permissions.allow.push('mutated');
        session.attributes.team = 'mutated';
        session.items.push(messageItem('mutated'));
        const first = session.items[0];
        if (first?.kind === 'message') first.message.content = 'mutated';
        const got = await store.getSession('iso-create');
        assertEqual(
          withoutUpdatedAt(got),
          withoutUpdatedAt(snapshot),
          'the stored session after mutating the input',
        );
      },
    },
    {
      name: 'getSession returns a copy: mutating it changes nothing stored',
      async run({ store }) {
        await store.createSession(fullSession('iso-get'));
        const stored = await store.getSession('iso-get');
        const copy = await store.getSession('iso-get');
        assert(copy !== stored && copy.items !== stored.items, 'two getSession calls returned shared memory');
        copy.title = 'mutated';
        copy.usage.cost = 99;
        copy.items.length = 0;
        stored.attributes.nested = 'mutated';
        const first = stored.items[0];
        if (first?.kind === 'message') first.message.content = 'mutated';
        assertEqual(
          withoutUpdatedAt(await store.getSession('iso-get')),
          withoutUpdatedAt(fullSession('iso-get')),
          'the stored session after mutating what getSession returned',
        );
      },
    },
    {
      name: 'appendItems, updateMessage and updateSession copy their input',
      async run({ store }) {
        await store.createSession(makeSession('iso-write'));
        const items = [messageItem('m1'), messageItem('m2')];
        await store.appendItems('iso-write', items);
        items.push(messageItem('m3'));
        (items[0] as { message: Message }).message.content = 'mutated';
        const replacement = makeMessage('m2', {
          content: 'replaced',
          toolCalls: [{ id: 'c', name: 't', arguments: '{}' }],
        });
        await store.updateMessage('iso-write', 'm2', replacement);
        replacement.content = 'mutated';
        replacement.toolCalls?.push({ id: 'x', name: 'x', arguments: '' });
        const patch = { permissions: { allow: ['a'], ask: [], deny: [] }, attributes: { list: [1] } };
        await store.updateSession('iso-write', patch);
        patch.permissions.allow.push('mutated');
        patch.attributes.list.push(2);
        const got = await store.getSession('iso-write');
        assertEqual(
          got.items,
          [
            messageItem('m1'),
            messageItem('m2', { content: 'replaced', toolCalls: [{ id: 'c', name: 't', arguments: '{}' }] }),
          ],
          'items after mutating what appendItems and updateMessage were given',
        );
        assertEqual(
          got.permissions,
          { allow: ['a'], ask: [], deny: [] },
          'permissions after mutating the patch',
        );
        assertEqual(got.attributes, { list: [1] }, 'attributes after mutating the patch');
      },
    },
    {
      name: 'listSessions returns copies: mutating a summary changes nothing stored',
      async run({ store }) {
        await store.createSession(fullSession('iso-list'));
        const page = await store.listSessions();
        const summary = page.sessions[0];
        assert(summary, 'listSessions returned no session');
        summary.title = 'mutated';
        summary.usage.cost = 99;
        page.sessions.length = 0;
        const again = await store.listSessions();
        assertEqual(again.sessions[0]?.title, 'A full session', 'title after mutating a summary');
        assertEqual(again.sessions[0]?.usage, fullSession('x').usage, 'usage after mutating a summary');
        assertEqual(
          (await store.getSession('iso-list')).usage,
          fullSession('x').usage,
          'the session after mutating a summary',
        );
      },
    },
  ];
}

function patchCases(): Case[] {
  return [
    {
      name: 'updateSession changes only the field it names, for every patchable field',
      async run({ store }) {
        for (const [index, patch] of VALID_PATCHES.entries()) {
          const id = `patch-${index}`;
          await store.createSession(fullSession(id));
          const before = await store.getSession(id);
          const started = Date.now();
          await store.updateSession(id, structuredClone(patch));
          const after = await store.getSession(id);
          assertEqual(
            withoutUpdatedAt(after),
            withoutUpdatedAt({ ...before, ...patch } as Session),
            `updateSession(${show(patch)}) must change only that field`,
          );
          assertWriteTime(after, started, before.updatedAt, `updateSession(${show(patch)})`);
        }
      },
    },
    {
      name: 'updateSession naming an optional field with undefined removes it and nothing else',
      async run({ store }) {
        for (const field of OPTIONAL_FIELDS) {
          const id = `remove-${field}`;
          await store.createSession(fullSession(id));
          const before = await store.getSession(id);
          await store.updateSession(id, { [field]: undefined } as SessionPatch);
          const after = await store.getSession(id);
          assert(
            !Object.hasOwn(after, field),
            `updateSession({ ${field}: undefined }) must remove ${field}, got ${show(after[field])}`,
          );
          const expected: Record<string, unknown> = { ...before };
          delete expected[field];
          assertEqual(
            withoutUpdatedAt(after),
            withoutUpdatedAt(expected as Session),
            `updateSession({ ${field}: undefined })`,
          );
          const summary = (await store.listSessions()).sessions.find((entry) => entry.id === id);
          if (field === 'workingDir' || field === 'source' || field === 'owner') {
            assert(
              summary && !Object.hasOwn(summary, field),
              `the summary still has ${field} after it was removed`,
            );
          }
        }
      },
    },
    {
      name: 'updateSession rejects a required field set to undefined with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(fullSession('required'));
        const before = await store.getSession('required');
        for (const field of REQUIRED_PATCH_FIELDS) {
          await assertRejectsWithCode(
            () =>
              store.updateSession('required', { title: 'would change', [field]: undefined } as SessionPatch),
            ErrorCode.INVALID_ARGUMENT,
            `updateSession({ ${field}: undefined })`,
          );
        }
        await assertUnchanged(store, before, 'updateSession removing a required field');
      },
    },
    {
      name: 'updateSession rejects unknown, unpatchable and invalid fields with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(fullSession('strict'));
        const before = await store.getSession('strict');
        const invalid: unknown[] = [
          { title: 'would change', bogus: 1 },
          { items: [] },
          { id: 'other' },
          { createdAt: T1 },
          { updatedAt: T1 },
          { title: 'would change', starred: 'yes' },
          { title: 5 },
          { titleSource: 'magic' },
          { usage: { inputTokens: -1, outputTokens: 0, cost: 0 } },
          { safetyPolicy: 'yolo' },
          { permissions: { allow: 'all', ask: [], deny: [] } },
          { attributes: [1] },
          { attributes: { when: new Date(0) } },
          { agentModelOverrides: { coder: 1 } },
          { parentId: '../escape' },
          { forkedFrom: { sessionId: '' } },
          null,
          'title',
          [],
        ];
        for (const patch of invalid) {
          await assertRejectsWithCode(
            () => store.updateSession('strict', patch as SessionPatch),
            ErrorCode.INVALID_ARGUMENT,
            `updateSession(${show(patch)})`,
          );
        }
        await assertUnchanged(store, before, 'updateSession with invalid patches');
      },
    },
    {
      name: 'updateSession replaces a named object field as a whole',
      async run({ store }) {
        await store.createSession(fullSession('whole'));
        await store.updateSession('whole', { attributes: { only: 'this' }, agentModelOverrides: {} });
        const got = await store.getSession('whole');
        assertEqual(got.attributes, { only: 'this' }, 'attributes after a patch');
        assertEqual(got.agentModelOverrides, {}, 'agentModelOverrides after a patch');
      },
    },
    {
      name: 'every write sets updatedAt to the time of the write and never moves it backwards',
      async run({ store }) {
        await store.createSession(makeSession('clock', { updatedAt: '2001-01-01T00:00:00.000Z' }));
        let current = await store.getSession('clock');
        assertEqual(
          current.updatedAt,
          '2001-01-01T00:00:00.000Z',
          'createSession must keep the given updatedAt',
        );
        let started: number;
        const writes: [string, () => Promise<void>][] = [
          ['updateSession', () => store.updateSession('clock', { title: 't' })],
          ['appendItems', () => store.appendItems('clock', [messageItem('m1')])],
          ['updateMessage', () => store.updateMessage('clock', 'm1', makeMessage('m1', { content: 'new' }))],
        ];
        for (let round = 0; round < 3; round++) {
          for (const [method, write] of writes) {
            started = Date.now();
            await write();
            const next = await store.getSession('clock');
            assertWriteTime(next, started, current.updatedAt, method);
            current = next;
          }
        }
        const summary = (await store.listSessions()).sessions[0];
        assertEqual(summary?.updatedAt, current.updatedAt, 'the summary updatedAt');
        const future = '2999-01-01T00:00:00.000Z';
        await store.createSession(makeSession('future', { updatedAt: future, items: [messageItem('m1')] }));
        for (const [method, write] of [
          ['updateSession', () => store.updateSession('future', { starred: true })],
          ['appendItems', () => store.appendItems('future', [messageItem('m2')])],
          ['updateMessage', () => store.updateMessage('future', 'm1', makeMessage('m1'))],
        ] as const) {
          await write();
          const written = (await store.getSession('future')).updatedAt;
          assert(
            Date.parse(written) >= Date.parse(future),
            `${method} moved updatedAt backwards from ${future} to ${written}: it must never be earlier than the value it replaces`,
          );
        }
      },
    },
    {
      name: 'concurrent updateSession, appendItems and updateMessage calls on one session all take effect',
      async run({ store }) {
        await store.createSession(makeSession('racy', { items: [messageItem('m0')] }));
        await Promise.all([
          store.updateSession('racy', { title: 'titled' }),
          store.updateSession('racy', { starred: true }),
          store.appendItems('racy', [messageItem('m1')]),
          store.updateSession('racy', { usage: { inputTokens: 1, outputTokens: 2, cost: 3 } }),
          store.updateMessage('racy', 'm0', makeMessage('m0', { content: 'edited' })),
          store.updateSession('racy', { attributes: { a: 1 } }),
          store.appendItems('racy', [messageItem('m2')]),
        ]);
        const got = await store.getSession('racy');
        assertEqual(
          { title: got.title, starred: got.starred, usage: got.usage, attributes: got.attributes },
          {
            title: 'titled',
            starred: true,
            usage: { inputTokens: 1, outputTokens: 2, cost: 3 },
            attributes: { a: 1 },
          },
          'fields patched concurrently',
        );
        assertEqual(
          got.items,
          [messageItem('m0', { content: 'edited' }), messageItem('m1'), messageItem('m2')],
          'items written concurrently',
        );
      },
    },
  ];
}

function appendCases(): Case[] {
  return [
    {
      name: 'appendItems appends in order after the existing items, across calls and kinds',
      async run({ store }) {
        const initial = [messageItem('m0')];
        await store.createSession(makeSession('append', { items: initial }));
        const first: SessionItem[] = [
          messageItem('m1'),
          { kind: 'summary', id: 's1', summary: 'so far', firstKeptItem: 1, createdAt: T1 },
        ];
        const second: SessionItem[] = [
          { kind: 'error', id: 'e1', message: 'failed', createdAt: T1 },
          messageItem('m2', { role: 'assistant' }),
        ];
        await store.appendItems('append', first);
        await store.appendItems('append', second);
        assertEqual(
          (await store.getSession('append')).items,
          [...initial, ...first, ...second],
          'items after two appends',
        );
        const summary = (await store.listSessions()).sessions[0];
        assertEqual(summary?.messageCount, 3, 'messageCount counts message items only');
      },
    },
    {
      name: 'appendItems with one invalid item rejects with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(makeSession('atomic', { items: [messageItem('m0')] }));
        const before = await store.getSession('atomic');
        const bad = { kind: 'message', message: { id: 'bad', role: 'user', content: 1, createdAt: T0 } };
        const batches: [string, unknown][] = [
          ['invalid first', [bad, messageItem('m1'), messageItem('m2')]],
          ['invalid middle', [messageItem('m1'), bad, messageItem('m2')]],
          ['invalid last', [messageItem('m1'), messageItem('m2'), bad]],
          ['unknown kind', [messageItem('m1'), { kind: 'note', id: 'n' }]],
          [
            'summary with a negative firstKeptItem',
            [{ kind: 'summary', id: 's', summary: '', firstKeptItem: -1, createdAt: T0 }],
          ],
          ['error item without createdAt', [{ kind: 'error', id: 'e', message: 'x' }]],
          ['a null item', [messageItem('m1'), null]],
          ['not an array', messageItem('m1')],
        ];
        for (const [what, items] of batches) {
          await assertRejectsWithCode(
            () => store.appendItems('atomic', items as SessionItem[]),
            ErrorCode.INVALID_ARGUMENT,
            `appendItems with ${what}`,
          );
        }
        await assertUnchanged(store, before, 'appendItems with an invalid item');
      },
    },
    {
      name: '100 concurrent appendItems calls to one session all land, each batch once and in one piece',
      async run({ store }) {
        await store.createSession(makeSession('burst'));
        await Promise.all(
          Array.from({ length: 100 }, (_, index) =>
            store.appendItems('burst', [messageItem(`b${index}-first`), messageItem(`b${index}-second`)]),
          ),
        );
        const items = (await store.getSession('burst')).items;
        assert(items.length === 200, `expected 200 items after 100 appends of 2, got ${items.length}`);
        const messageIds = items.map((item) =>
          item.kind === 'message' ? item.message.id : `${item.kind}:${item.id}`,
        );
        assertNoDuplicates(messageIds, 'items after concurrent appends');
        for (let index = 0; index < items.length; index += 2) {
          const first = messageIds[index]!;
          assert(
            first.endsWith('-first') && messageIds[index + 1] === first.replace(/-first$/, '-second'),
            `a batch was split or reordered by concurrent appends at index ${index}: ${show(messageIds.slice(index, index + 2))}`,
          );
        }
        assertEqual(
          (await store.listSessions()).sessions[0]?.messageCount,
          200,
          'messageCount after concurrent appends',
        );
      },
    },
  ];
}

function messageCases(): Case[] {
  return [
    {
      name: 'updateMessage replaces the message in place and keeps every other item',
      async run({ store }) {
        const items = [messageItem('m1'), messageItem('m2', { role: 'assistant' }), messageItem('m3')];
        await store.createSession(makeSession('edit', { items }));
        const replacement = makeMessage('m2', {
          role: 'assistant',
          content: 'edited',
          toolCalls: [{ id: 'c1', name: 'shell', arguments: '{"cmd":"pwd"}' }],
          usage: { inputTokens: 3, outputTokens: 4, cost: 0 },
        });
        await store.updateMessage('edit', 'm2', replacement);
        assertEqual(
          (await store.getSession('edit')).items,
          [items[0], { kind: 'message', message: replacement }, items[2]],
          'items after updateMessage',
        );
      },
    },
    {
      name: 'updateMessage rejects with MESSAGE_NOT_FOUND for an unknown message id, also when only a non-message item has it',
      async run({ store }) {
        await store.createSession(
          makeSession('edit-missing', {
            items: [
              messageItem('m1'),
              { kind: 'summary', id: 'sum', summary: 's', firstKeptItem: 0, createdAt: T0 },
              { kind: 'error', id: 'err', message: 'e', createdAt: T0 },
            ],
          }),
        );
        const before = await store.getSession('edit-missing');
        for (const messageId of ['m2', 'sum', 'err']) {
          await assertRejectsWithCode(
            () => store.updateMessage('edit-missing', messageId, makeMessage(messageId)),
            ErrorCode.MESSAGE_NOT_FOUND,
            `updateMessage of message ${show(messageId)}`,
          );
        }
        await assertUnchanged(store, before, 'updateMessage of an unknown message');
      },
    },
    {
      name: 'updateMessage rejects an invalid message with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(makeSession('edit-invalid', { items: [messageItem('m1')] }));
        const before = await store.getSession('edit-invalid');
        const invalid: unknown[] = [
          { ...makeMessage('m1'), role: 'robot' },
          { ...makeMessage('m1'), content: null },
          { ...makeMessage('m1'), createdAt: 'now' },
          { ...makeMessage('m1'), toolCalls: [{ id: 'c', name: 'x', arguments: {} }] },
          { id: 'm1', role: 'user', content: 'no createdAt' },
          null,
        ];
        for (const message of invalid) {
          await assertRejectsWithCode(
            () => store.updateMessage('edit-invalid', 'm1', message as Message),
            ErrorCode.INVALID_ARGUMENT,
            `updateMessage with ${show(message)}`,
          );
        }
        await assertUnchanged(store, before, 'updateMessage with an invalid message');
      },
    },
  ];
}

function listingCases(): Case[] {
  return [
    {
      name: 'listSessions on an empty store returns no sessions and no nextCursor',
      async run({ store }) {
        const page = await store.listSessions();
        assertEqual(page.sessions, [], 'sessions of an empty store');
        assert(
          !Object.hasOwn(page, 'nextCursor'),
          `nextCursor must be absent on the last page, got ${show(page.nextCursor)}`,
        );
      },
    },
    {
      name: 'listSessions returns summaries matching the sessions, never their items',
      async run({ store }) {
        await store.createSession(fullSession('sum-full'));
        await store.createSession(makeSession('sum-empty'));
        await store.appendItems('sum-full', [
          messageItem('extra'),
          { kind: 'error', id: 'e9', message: 'x', createdAt: T1 },
        ]);
        const summaries = await listAll(store);
        assertSameSet(ids(summaries), ['sum-full', 'sum-empty'], 'listed ids');
        for (const summary of summaries) {
          assert(!Object.hasOwn(summary, 'items'), `the summary of ${summary.id} holds items`);
          const parsed = SessionSummarySchema.strict().safeParse(summary);
          assert(
            parsed.success,
            `the summary of ${summary.id} is not a SessionSummary: ${parsed.success ? '' : show(parsed.error.issues)}`,
          );
          assertEqual(summary, toSummary(await store.getSession(summary.id)), `the summary of ${summary.id}`);
        }
        assertEqual(
          summaries.find((summary) => summary.id === 'sum-full')?.messageCount,
          4,
          'messageCount of a session with 4 messages, a summary and 2 errors',
        );
      },
    },
    {
      name: 'listSessions orders newest updatedAt first, ties broken by id descending; a write moves a session to the front',
      async run({ store }) {
        // Created out of order; several share an updatedAt, one differs only by its offset notation.
        const layout: [string, string][] = [
          ['tie-b', at(10)],
          ['old', at(1)],
          ['tie-a', at(10)],
          ['newest', at(20)],
          ['tie-c', at(10)],
          ['Tie-z', at(10)],
          ['offset', '2024-01-02T05:04:15+02:00'],
          ['mid', at(5)],
        ];
        await Promise.all(
          layout.map(([id, updatedAt]) => store.createSession(makeSession(id, { updatedAt }))),
        );
        const expected = ['newest', 'tie-c', 'tie-b', 'tie-a', 'offset', 'Tie-z', 'mid', 'old'];
        assertEqual(ids(await listAll(store)), expected, 'listing order');
        for (const limit of [1, 2, 3]) {
          assertEqual(ids(await listAll(store, { limit })), expected, `listing order in pages of ${limit}`);
        }
        await store.updateSession('mid', { title: 'touched' });
        assertEqual(ids(await listAll(store)).slice(0, 2), ['mid', 'newest'], 'order after updateSession');
        await store.appendItems('old', [messageItem('m')]);
        const afterAppend = await listAll(store);
        assertEqual(afterAppend[0]?.id, 'old', 'a session written last must list first after appendItems');
        assertListingOrder(afterAppend, 'after two writes');
        await store.createSession(makeSession('z-msg', { items: [messageItem('m0')], updatedAt: at(0) }));
        await store.updateMessage('z-msg', 'm0', makeMessage('m0', { content: 'edited' }));
        assertEqual(
          (await listAll(store))[0]?.id,
          'z-msg',
          'a session written last must list first after updateMessage',
        );
      },
    },
    {
      name: 'listSessions pages with limit and nextCursor: each session once, no nextCursor on the last page',
      async run({ store }) {
        const created = await createMany(store, 7);
        const expected = ids(await listAll(store, { limit: 1000 }));
        assertSameSet(expected, created, 'one page of every session');
        for (const limit of [1, 2, 3, 7, 8]) {
          const pages: string[][] = [];
          let cursor: string | undefined;
          do {
            const page = await store.listSessions(cursor === undefined ? { limit } : { limit, cursor });
            assert(
              page.sessions.length <= limit,
              `a page of limit ${limit} has ${page.sessions.length} sessions`,
            );
            pages.push(ids(page.sessions));
            cursor = page.nextCursor;
            if (cursor === undefined) {
              assert(
                !Object.hasOwn(page, 'nextCursor'),
                'nextCursor must be absent (not undefined) on the last page',
              );
            } else
              assert(
                page.sessions.length === limit,
                `a page before the last one holds fewer than ${limit} sessions`,
              );
            assert(pages.length <= 8, `limit ${limit}: paging does not end`);
          } while (cursor !== undefined);
          assertEqual(pages.flat(), expected, `pages of limit ${limit} joined`);
          assertEqual(pages.length, Math.ceil(7 / limit), `number of pages of limit ${limit}`);
        }
      },
    },
    {
      name: 'listSessions without a limit returns pages of at most 100',
      async run({ store }) {
        await Promise.all(
          Array.from({ length: 101 }, (_, index) => store.createSession(makeSession(`many-${index}`))),
        );
        const first = await store.listSessions();
        assertEqual(first.sessions.length, 100, 'sessions on the first default page');
        assert(first.nextCursor !== undefined, 'the first of two default pages needs a nextCursor');
        const second = await store.listSessions({ cursor: first.nextCursor });
        assertEqual(second.sessions.length, 1, 'sessions on the second default page');
        assertSameSet(
          [...ids(first.sessions), ...ids(second.sessions)],
          Array.from({ length: 101 }, (_, index) => `many-${index}`),
          'two default pages',
        );
      },
    },
    {
      name: 'listSessions cursors stay stable while sessions are written, created and deleted between pages',
      async run({ store }) {
        // Past timestamps with ties, so every write while paging moves a session ahead of all of them.
        const created = await createMany(store, 20, 'page-', (index) => ({ updatedAt: at(index % 7) }));
        let oldcomer: string | undefined;
        const seen: string[] = [];
        const touched = new Set<string>();
        const deleted = new Set<string>();
        const added: string[] = [];
        let cursor: string | undefined;
        for (let pageNumber = 0; ; pageNumber++) {
          assert(pageNumber < 30, 'paging does not end');
          const page: Page<SessionSummary> = await store.listSessions(
            cursor === undefined ? { limit: 3 } : { limit: 3, cursor },
          );
          seen.push(...ids(page.sessions));
          cursor = page.nextCursor;
          if (cursor === undefined) break;
          // Between pages: touch a session already seen and one not yet seen, add one, and delete
          // the session the cursor points at.
          const unseen = created.filter((id) => !seen.includes(id) && !touched.has(id) && !deleted.has(id));
          const seenUntouched = seen.filter(
            (id) => created.includes(id) && !touched.has(id) && !deleted.has(id),
          );
          const victims = [seenUntouched[0], unseen[unseen.length - 1]].filter((id) => id !== undefined);
          for (const id of victims) {
            await store.updateSession(id, { title: `touched on page ${pageNumber}` });
            touched.add(id);
          }
          const fresh = `page-new-${pageNumber}`;
          await store.createSession(makeSession(fresh, { updatedAt: new Date().toISOString() }));
          added.push(fresh);
          if (pageNumber === 1) {
            // Created while paging but older than every position: later pages must include it.
            oldcomer = 'page-oldcomer';
            await store.createSession(makeSession(oldcomer, { updatedAt: '2000-01-01T00:00:00.000Z' }));
          }
          const last = page.sessions[page.sessions.length - 1]!.id;
          if (!touched.has(last) && pageNumber % 2 === 0) {
            await store.deleteSession(last);
            deleted.add(last);
          }
        }
        assertNoDuplicates(seen, 'sessions seen while paging');
        for (const id of created) {
          if (touched.has(id) || deleted.has(id)) continue;
          assert(seen.includes(id), `unchanged session ${id} was skipped while paging`);
        }
        for (const id of added) {
          assert(!seen.includes(id), `session ${id}, created while paging, was listed after the cursor`);
        }
        assert(
          oldcomer !== undefined && seen.includes(oldcomer),
          'a session created while paging with a position after the cursor was not listed',
        );
        const fresh = ids(await listAll(store, { limit: 4 }));
        const front = fresh.slice(0, touched.size + added.length);
        assertSameSet(
          front,
          [...touched, ...added],
          'a fresh listing must start with the sessions written while paging',
        );
        assertSameSet(
          fresh,
          [...created.filter((id) => !deleted.has(id)), ...added, oldcomer],
          'a fresh listing after paging',
        );
      },
    },
    {
      name: 'listSessions applies the workingDir, starred and owner filters before paging',
      async run({ store }) {
        await createMany(store, 12, 'filter-', (index) => ({
          starred: index % 3 === 0,
          ...(index % 2 === 0 ? { workingDir: '/work/a' } : index % 4 === 1 ? { workingDir: '/work/b' } : {}),
          ...(index % 4 < 2 ? { owner: 'alice' } : index % 4 === 2 ? { owner: 'bob' } : {}),
        }));
        const all = await listAll(store, { limit: 1000 });
        const cases: [string, ListOptions, (summary: SessionSummary) => boolean][] = [
          ['starred: true', { starred: true }, (summary) => summary.starred],
          ['starred: false', { starred: false }, (summary) => !summary.starred],
          ['workingDir /work/a', { workingDir: '/work/a' }, (summary) => summary.workingDir === '/work/a'],
          ['workingDir /work/b', { workingDir: '/work/b' }, (summary) => summary.workingDir === '/work/b'],
          ['workingDir /work/none', { workingDir: '/work/none' }, () => false],
          ['owner alice', { owner: 'alice' }, (summary) => summary.owner === 'alice'],
          ['owner bob', { owner: 'bob' }, (summary) => summary.owner === 'bob'],
          ['owner nobody', { owner: 'nobody' }, () => false],
          [
            'owner alice and starred',
            { owner: 'alice', starred: true },
            (summary) => summary.owner === 'alice' && summary.starred,
          ],
          [
            'workingDir /work/a and starred',
            { workingDir: '/work/a', starred: true },
            (summary) => summary.workingDir === '/work/a' && summary.starred,
          ],
        ];
        for (const [what, filter, predicate] of cases) {
          const expected = ids(all.filter(predicate));
          for (const limit of [1, 2, 100]) {
            const listed = await listAll(store, { ...filter, limit });
            assertEqual(ids(listed), expected, `listSessions({ ${what}, limit: ${limit} })`);
          }
          const firstPage = await store.listSessions({ ...filter, limit: 1 });
          assertEqual(
            firstPage.sessions.length,
            Math.min(1, expected.length),
            `first page of ${what} with limit 1`,
          );
        }
      },
    },
    {
      name: 'listSessions rejects an empty or non-string owner filter with INVALID_ARGUMENT',
      async run({ store }) {
        await store.createSession(makeSession('owned', { owner: 'alice' }));
        for (const owner of ['', 7, null]) {
          await assertRejectsWithCode(
            () => store.listSessions({ owner: owner as string }),
            ErrorCode.INVALID_ARGUMENT,
            `listSessions({ owner: ${show(owner)} })`,
          );
        }
      },
    },
    {
      name: 'listSessions rejects limits outside 1..1000 and non-integers with INVALID_ARGUMENT',
      async run({ store }) {
        await store.createSession(makeSession('limits'));
        for (const limit of [0, -1, 1.5, 1001, Number.NaN, Number.POSITIVE_INFINITY, '5']) {
          await assertRejectsWithCode(
            () => store.listSessions({ limit: limit as number }),
            ErrorCode.INVALID_ARGUMENT,
            `listSessions({ limit: ${show(limit)} })`,
          );
        }
        assertEqual((await store.listSessions({ limit: 1 })).sessions.length, 1, 'limit 1');
        assertEqual((await store.listSessions({ limit: 1000 })).sessions.length, 1, 'limit 1000');
      },
    },
    {
      name: 'listSessions rejects malformed cursors with INVALID_ARGUMENT',
      async run({ store }) {
        await createMany(store, 3, 'cursor-');
        const valid = (await store.listSessions({ limit: 1 })).nextCursor;
        assert(valid !== undefined, 'expected a nextCursor with 3 sessions and limit 1');
        const malformed = [
          '',
          'not a cursor',
          '!!!!',
          '%%%',
          btoa('hello'),
          btoa('[1,2]'),
          btoa('{"updatedAt":5}'),
          btoa('["not a date","x"]'),
          `${valid}!`,
          'x'.repeat(5000),
        ];
        for (const cursor of malformed) {
          await assertRejectsWithCode(
            () => store.listSessions({ cursor }),
            ErrorCode.INVALID_ARGUMENT,
            `listSessions({ cursor: ${show(cursor, 40)} })`,
          );
        }
      },
    },
  ];
}

function contentCases(): Case[] {
  return [
    {
      name: 'a 1 MiB message and a 1 MiB attribute round-trip unchanged',
      async run({ store }) {
        const big = `${'x'.repeat(1024 * 1024 - 3)}end`;
        const bigUnicode = '😀é'.repeat(256 * 1024);
        await store.createSession(makeSession('large', { attributes: { blob: big } }));
        await store.appendItems('large', [messageItem('big', { content: bigUnicode }), messageItem('small')]);
        await store.updateMessage('large', 'small', makeMessage('small', { content: big }));
        const got = await store.getSession('large');
        assert(got.attributes.blob === big, 'a 1 MiB attribute did not round-trip');
        const [first, second] = got.items;
        assert(
          first?.kind === 'message' && first.message.content === bigUnicode,
          'a 1 MiB unicode message did not round-trip',
        );
        assert(
          second?.kind === 'message' && second.message.content === big,
          'a 1 MiB message written by updateMessage did not round-trip',
        );
      },
    },
    {
      name: 'unicode strings (astral, combining marks, RTL, NUL, controls) round-trip unchanged',
      async run({ store }) {
        const session = fullSession('unicode');
        session.title = UNICODE_TEXT;
        session.workingDir = `/work/${UNICODE_SAMPLES.astral}/${UNICODE_SAMPLES.rtl}`;
        session.attributes = {
          ...UNICODE_SAMPLES,
          [UNICODE_SAMPLES.astral]: UNICODE_SAMPLES.nul,
          [UNICODE_SAMPLES.nul]: 1,
        };
        session.items = [
          messageItem('m1', {
            content: UNICODE_TEXT,
            toolCalls: [{ id: 'c1', name: 'write', arguments: JSON.stringify({ text: UNICODE_TEXT }) }],
          }),
        ];
        await store.createSession(session);
        await store.appendItems('unicode', [messageItem('m2', { content: UNICODE_SAMPLES.nul })]);
        const got = await store.getSession('unicode');
        assertEqual(
          withoutUpdatedAt(got),
          withoutUpdatedAt({
            ...session,
            items: [...session.items, messageItem('m2', { content: UNICODE_SAMPLES.nul })],
          }),
          'a unicode session',
        );
        for (const [what, text] of Object.entries(UNICODE_SAMPLES)) {
          assert(
            got.attributes[what] === text,
            `${what} text did not round-trip: ${show(got.attributes[what])}`,
          );
        }
        const listed = await store.listSessions({ workingDir: session.workingDir });
        assertEqual(ids(listed.sessions), ['unicode'], 'listSessions filtered by a unicode workingDir');
        assertEqual(listed.sessions[0]?.title, UNICODE_TEXT, 'a unicode title in a summary');
      },
    },
    {
      name: '__proto__ and constructor keys in attributes and overrides survive and pollute nothing',
      async run({ store }) {
        const hostile = JSON.parse(
          '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"},"nested":{"__proto__":{"polluted":"yes"}}}',
        );
        const overrides = JSON.parse('{"__proto__":"evil/model","constructor":"x/y"}');
        await store.createSession(
          makeSession('proto', { attributes: hostile, agentModelOverrides: overrides }),
        );
        pristinePrototypes('after createSession');
        const got = await store.getSession('proto');
        pristinePrototypes('after getSession');
        assert(Object.hasOwn(got.attributes, '__proto__'), 'the own "__proto__" key of attributes was lost');
        assert(
          Object.hasOwn(got.attributes.nested as object, '__proto__'),
          'a nested own "__proto__" key was lost',
        );
        assertEqual(got.attributes, hostile, 'attributes with __proto__ and constructor keys');
        assertEqual(
          got.agentModelOverrides,
          overrides,
          'agentModelOverrides with __proto__ and constructor keys',
        );
        assert(
          Object.getPrototypeOf(got.attributes) === Object.prototype ||
            Object.getPrototypeOf(got.attributes) === null,
          'attributes came back with a foreign prototype',
        );
        await store.updateSession('proto', {
          attributes: JSON.parse('{"__proto__":{"again":1},"constructor":2}'),
        });
        await store.appendItems('proto', [
          messageItem('m1', {
            content: '{"__proto__":{"polluted":"yes"}}',
            toolCalls: [{ id: 'c', name: 'constructor', arguments: '{"__proto__":{"polluted":"yes"}}' }],
          }),
        ]);
        const patched = await store.getSession('proto');
        pristinePrototypes('after updateSession and appendItems');
        assertEqual(
          patched.attributes,
          JSON.parse('{"__proto__":{"again":1},"constructor":2}'),
          'patched attributes',
        );
        assert(Object.hasOwn(patched.attributes, '__proto__'), 'the patched own "__proto__" key was lost');
        assertEqual(
          patched.items[0],
          messageItem('m1', {
            content: '{"__proto__":{"polluted":"yes"}}',
            toolCalls: [{ id: 'c', name: 'constructor', arguments: '{"__proto__":{"polluted":"yes"}}' }],
          }),
          'a message with __proto__ text',
        );
      },
    },
  ];
}

function idCases(): Case[] {
  return [
    {
      name: 'every method rejects an invalid session id with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(fullSession('a'));
        const before = await store.getSession('a');
        for (const id of INVALID_IDS) {
          const bad = id as string;
          const calls: [string, () => Promise<unknown>][] = [
            ['createSession', () => store.createSession(makeSession(bad))],
            ['getSession', () => store.getSession(bad)],
            ['updateSession', () => store.updateSession(bad, { title: 'x' })],
            ['appendItems', () => store.appendItems(bad, [messageItem('m1')])],
            ['updateMessage', () => store.updateMessage(bad, 'm1', makeMessage('m1'))],
            ['deleteSession', () => store.deleteSession(bad)],
          ];
          for (const [method, call] of calls) {
            await assertRejectsWithCode(call, ErrorCode.INVALID_ARGUMENT, `${method}(${show(id, 40)})`);
          }
        }
        assertEqual(ids(await listAll(store)), ['a'], 'listSessions after calls with invalid ids');
        await assertUnchanged(store, before, 'calls with invalid ids');
      },
    },
    {
      name: 'edge-case valid ids work and are case-sensitive',
      async run({ store }) {
        const valid = [
          '0',
          'Z',
          'a'.repeat(128),
          'A_b-C',
          'x--__--y',
          'abc',
          'ABC',
          'aBc',
          'con',
          'nul',
          'aux',
        ];
        for (const id of valid) await store.createSession(makeSession(id, { title: `title of ${id}` }));
        for (const id of valid) {
          const got = await store.getSession(id);
          assertEqual(
            got.title,
            `title of ${id}`,
            `getSession(${show(id, 40)}) (ids differing only in case are different sessions)`,
          );
        }
        await store.appendItems('ABC', [messageItem('upper')]);
        assertEqual((await store.getSession('abc')).items, [], 'appending to "ABC" must not change "abc"');
        await store.deleteSession('aBc');
        assertSameSet(
          ids(await listAll(store)),
          valid.filter((id) => id !== 'aBc'),
          'listed ids',
        );
      },
    },
  ];
}

function reopenCases(): Case[] {
  return [
    {
      name: 'after reopening, every session, item, patch and deletion written before is there',
      needsReopen: true,
      async run(context) {
        let store = context.store;
        await store.createSession(fullSession('kept'));
        await store.createSession(makeSession('patched', { workingDir: '/w', source: 'coder' }));
        await store.createSession(makeSession('removed'));
        await store.createSession(
          makeSession('unicode', { title: UNICODE_TEXT, attributes: JSON.parse('{"__proto__":{"x":1}}') }),
        );
        await store.updateSession('patched', { title: 'patched', starred: true, workingDir: undefined });
        await store.appendItems('kept', [
          messageItem('late', { content: 'y'.repeat(1024 * 1024) }),
          messageItem('edit'),
        ]);
        await store.updateMessage('kept', 'edit', makeMessage('edit', { content: UNICODE_TEXT }));
        await store.deleteSession('removed');
        const expected = new Map<string, Session>();
        for (const id of ['kept', 'patched', 'unicode']) expected.set(id, await store.getSession(id));
        const listing = await listAll(store, { limit: 1 });
        const firstPage = await store.listSessions({ limit: 1 });

        store = await context.reopen();
        for (const [id, session] of expected) {
          assertEqual(await store.getSession(id), session, `session ${id} after reopening`);
        }
        assert(
          !Object.hasOwn(await store.getSession('patched'), 'workingDir'),
          'a removed field came back after reopening',
        );
        await assertRejectsWithCode(
          () => store.getSession('removed'),
          ErrorCode.SESSION_NOT_FOUND,
          'a deleted session after reopening',
        );
        assertEqual(await listAll(store, { limit: 1 }), listing, 'the listing after reopening');
        const rest = await store.listSessions({ cursor: firstPage.nextCursor!, limit: 1000 });
        assertEqual(
          rest.sessions,
          listing.slice(1),
          'the rest of a listing from a cursor made before reopening',
        );
        await assertRejectsWithCode(
          () => store.createSession(makeSession('kept')),
          ErrorCode.SESSION_EXISTS,
          'createSession of an id taken before reopening',
        );
      },
    },
    {
      name: 'after reopening, writes work and updatedAt keeps moving forward',
      needsReopen: true,
      async run(context) {
        let store = context.store;
        await store.createSession(makeSession('continued', { items: [messageItem('m1')] }));
        await store.appendItems('continued', [messageItem('m2')]);
        const before = await store.getSession('continued');
        store = await context.reopen();
        const started = Date.now();
        await store.appendItems('continued', [messageItem('m3')]);
        await store.updateSession('continued', { title: 'after reopen' });
        const after = await store.getSession('continued');
        assertWriteTime(after, started, before.updatedAt, 'a write after reopening');
        assertEqual(
          ids(after.items.map((item) => (item.kind === 'message' ? item.message : { id: item.id }))),
          ['m1', 'm2', 'm3'],
          'items after reopening and appending',
        );
        store = await context.reopen();
        assertEqual(await store.getSession('continued'), after, 'the session after a second reopen');
      },
    },
  ];
}
