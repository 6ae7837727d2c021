// Records, assertions and data shared by the conformance groups.
import type { Message, Session, SessionItem, SessionPatch, SessionSummary } from '../../schemas.js';
import type { ListOptions, Page, Store } from '../../store.js';
import { compareListPosition } from '../../stores/paging.js';
import { assert, assertEqual, show } from '../assert.js';
import { sessionRecord } from '../records.js';

export const T0 = '2024-01-02T03:04:05.000Z';
export const T1 = '2024-01-02T03:04:06.000Z';

export function makeSession(id: string, overrides: Partial<Session> = {}): Session {
  return sessionRecord(id, overrides, T0);
}

export function makeMessage(id: string, overrides: Partial<Message> = {}): Message {
  return { id, role: 'user', content: `content of ${id}`, createdAt: T0, ...overrides };
}

export function messageItem(id: string, overrides: Partial<Message> = {}): SessionItem {
  return { kind: 'message', message: makeMessage(id, overrides) };
}

/** A session with every optional field set and one item of each kind. */
export function fullSession(id: string): Session {
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
    pendingApprovals: [
      {
        kind: 'confirmation',
        id: 'conf-1',
        turnId: 'turn-1',
        toolCall: { id: 'call-9', name: 'shell', arguments: '{"cmd":"rm -rf build"}' },
        readOnly: false,
        createdAt: '2025-01-02T03:04:05.000Z',
        answer: { approved: false, reason: 'not now' },
      },
      {
        kind: 'elicitation',
        id: 'elic-1',
        turnId: 'turn-1',
        message: 'Which branch?',
        schema: { type: 'object' },
        mode: 'form',
        createdAt: '2025-01-02T03:04:05.000Z',
      },
    ],
    eventSeqReserved: 4096,
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

export function withoutUpdatedAt(session: Session): Omit<Session, 'updatedAt'> {
  const { updatedAt: _updatedAt, ...rest } = session;
  return rest;
}

export function time(iso: string, what: string): number {
  const value = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
  assert(!Number.isNaN(value), `${what}: updatedAt ${show(iso)} is not an ISO-8601 timestamp`);
  return value;
}

/** Fails unless `updatedAt` was set by a write that started at `before` and replaced `previous`. */
export function assertWriteTime(
  session: Session,
  before: number,
  previous: string | undefined,
  what: string,
): void {
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

export function at(seconds: number): string {
  return new Date(Date.parse(T0) + seconds * 1000).toISOString();
}

/** Every summary of a listing, following `nextCursor` with the given options. */
export async function listAll(store: Store, options: ListOptions = {}): Promise<SessionSummary[]> {
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

export function ids(summaries: readonly { id: string }[]): string[] {
  return summaries.map((summary) => summary.id);
}

export function assertListingOrder(summaries: readonly SessionSummary[], what: string): void {
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

export function assertNoDuplicates(values: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const value of values) {
    assert(!seen.has(value), `${what}: ${show(value)} appears more than once`);
    seen.add(value);
  }
}

export function assertSameSet(actual: readonly string[], expected: readonly string[], what: string): void {
  assertEqual([...actual].sort(), [...expected].sort(), what);
}

export async function createMany(
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
export async function assertUnchanged(store: Store, before: Session, what: string): Promise<void> {
  assertEqual(await store.getSession(before.id), before, `${what}: a rejected write must change nothing`);
}

export function pristinePrototypes(what: string): void {
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
export const INVALID_IDS: readonly unknown[] = [
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

export const VALID_PATCHES: readonly SessionPatch[] = [
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
  {
    pendingApprovals: [
      {
        kind: 'confirmation',
        id: 'conf-2',
        turnId: 'turn-2',
        toolCall: { id: 'call-2', name: 'write', arguments: '{}' },
        createdAt: '2025-01-02T03:04:05.000Z',
      },
    ],
  },
  { eventSeqReserved: 8192 },
];

export const OPTIONAL_FIELDS = [
  'source',
  'agent',
  'workingDir',
  'owner',
  'parentId',
  'forkedFrom',
  'pendingApprovals',
  'eventSeqReserved',
] as const;
export const REQUIRED_PATCH_FIELDS = [
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

export const UNICODE_SAMPLES = {
  astral: '𝄞 music, 😀 emoji, 👩‍👩‍👧 family (ZWJ), 🇫🇷 flag, 𠜎 CJK ext B',
  combining: 'e\u0301 vs \u00e9, a\u0308\u0304, Z\u0351\u036b\u0343\u036a',
  rtl: 'مرحبا بالعالم — שלום עולם — \u202eright-to-left override\u202c',
  nul: 'before\u0000after\u0000',
  controls: '\u0001\u0008\t\n\r\u001f\u007f',
  separators: 'line\u2028separator\u2029paragraph',
  bom: '\ufeffbyte order mark',
  quotes: 'quotes " and \\ backslash and </script>',
};
export const UNICODE_TEXT = Object.values(UNICODE_SAMPLES).join(' | ');
