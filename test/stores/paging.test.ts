import fc from 'fast-check';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import type { SessionSummary } from '../../src/schemas.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../../src/store.js';
import { nextTimestamp } from '../../src/stores/define-store.js';
import {
  compareListPosition,
  decodeCursor,
  encodeCursor,
  pageSummaries,
  validateListOptions,
} from '../../src/stores/paging.js';
import { expectInvalidArgument } from '../helpers/assertions.js';

// Any code point but lone surrogates. fast-check's own `unit: codePointArb` spends seconds building
// its tables on first use; this is as wide and instant.
const codePointArb = fc
  .integer({ min: 0, max: 0x10ffff })
  .map((code) => String.fromCodePoint(code >= 0xd800 && code <= 0xdfff ? code + 0x800 : code));
const timestampArb = fc
  .date({
    min: new Date('1970-01-01T00:00:00.000Z'),
    max: new Date('2999-12-31T23:59:59.999Z'),
    noInvalidDate: true,
  })
  .map((date) => date.toISOString());

function summary(id: string, updatedAt: string, extra: Partial<SessionSummary> = {}): SessionSummary {
  return {
    id,
    title: '',
    createdAt: updatedAt,
    updatedAt,
    starred: false,
    messageCount: 0,
    usage: { inputTokens: 0, outputTokens: 0, cost: 0 },
    ...extra,
  };
}

function at(seconds: number): string {
  return new Date(Date.UTC(2024, 0, 1) + seconds * 1000).toISOString();
}

describe('encodeCursor / decodeCursor', () => {
  test('round-trip any position (any id, any timestamp)', () => {
    fc.assert(
      fc.property(
        timestampArb,
        fc.oneof(
          fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/),
          fc.string({ unit: codePointArb, maxLength: 100 }),
        ),
        (updatedAt, id) => {
          const cursor = encodeCursor({ updatedAt, id });
          expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
          expect(decodeCursor(cursor)).toEqual({ updatedAt, id });
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a cursor is URL-safe and has no padding', () => {
    for (let length = 0; length < 6; length++) {
      const cursor = encodeCursor({ updatedAt: at(0), id: 'x'.repeat(length) });
      expect(encodeURIComponent(cursor)).toBe(cursor);
      expect(cursor).not.toContain('=');
    }
  });

  test.each([
    ['empty', ''],
    ['characters outside base64url', 'abc$def'],
    ['standard base64 with padding', btoa('["2024-01-01T00:00:00.000Z","a"]')],
    ['not JSON', btoa('hello').replace(/=+$/, '')],
    ['a JSON object', btoa('{"updatedAt":"2024-01-01T00:00:00.000Z","id":"a"}').replace(/=+$/, '')],
    ['one element', btoa('["2024-01-01T00:00:00.000Z"]').replace(/=+$/, '')],
    ['three elements', btoa('["2024-01-01T00:00:00.000Z","a","b"]').replace(/=+$/, '')],
    ['a number id', btoa('["2024-01-01T00:00:00.000Z",1]').replace(/=+$/, '')],
    ['an unparseable timestamp', btoa('["not a date","a"]').replace(/=+$/, '')],
    ['invalid UTF-8', btoa('["\xff\xfe","a"]').replace(/=+$/, '').replaceAll('+', '-').replaceAll('/', '_')],
    ['a length of 1 (mod 4)', 'abcde'],
    ['too long', 'a'.repeat(1025)],
  ])('decodeCursor rejects %s with INVALID_ARGUMENT', (_what, cursor) => {
    expectInvalidArgument(() => decodeCursor(cursor));
  });

  test.each([undefined, null, 5, {}])('decodeCursor rejects the non-string %j', (cursor) => {
    expectInvalidArgument(() => decodeCursor(cursor as unknown as string));
  });

  test('decodeCursor rejects arbitrary strings or decodes them to a valid position', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (cursor) => {
        try {
          const position = decodeCursor(cursor);
          expect(typeof position.id).toBe('string');
          expect(Number.isNaN(Date.parse(position.updatedAt))).toBe(false);
        } catch (error) {
          expect(AgentSessionsError.hasCode(error, 'INVALID_ARGUMENT')).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('compareListPosition', () => {
  test('newest updatedAt first, then id descending, comparing instants not strings', () => {
    expect(compareListPosition({ updatedAt: at(2), id: 'a' }, { updatedAt: at(1), id: 'z' })).toBeLessThan(0);
    expect(compareListPosition({ updatedAt: at(1), id: 'b' }, { updatedAt: at(1), id: 'a' })).toBeLessThan(0);
    expect(compareListPosition({ updatedAt: at(1), id: 'a' }, { updatedAt: at(1), id: 'b' })).toBeGreaterThan(
      0,
    );
    expect(compareListPosition({ updatedAt: at(1), id: 'a' }, { updatedAt: at(1), id: 'a' })).toBe(0);
    expect(
      compareListPosition(
        { updatedAt: '2024-01-01T02:00:00+02:00', id: 'a' },
        { updatedAt: '2024-01-01T00:00:00.000Z', id: 'a' },
      ),
    ).toBe(0);
  });
});

describe('validateListOptions', () => {
  test('returns the default limit, or the given one', () => {
    expect(validateListOptions()).toBe(DEFAULT_LIST_LIMIT);
    expect(validateListOptions({})).toBe(100);
    expect(validateListOptions({ limit: 1 })).toBe(1);
    expect(validateListOptions({ limit: MAX_LIST_LIMIT })).toBe(1000);
  });

  test.each([
    { limit: 0 },
    { limit: -1 },
    { limit: 1.5 },
    { limit: 1001 },
    { limit: Number.NaN },
    { limit: '10' },
    { starred: 'yes' },
    { workingDir: 5 },
  ])('rejects %j', (options) => {
    expectInvalidArgument(() => validateListOptions(options as never));
  });
});

describe('pageSummaries', () => {
  const all = [
    summary('a', at(1)),
    summary('b', at(3), { starred: true, workingDir: '/w' }),
    summary('c', at(2), { workingDir: '/w' }),
    summary('d', at(3)),
    summary('e', at(2), { starred: true }),
  ];
  const order = ['d', 'b', 'e', 'c', 'a'];

  test('sorts newest first, ties by id descending, without changing its input', () => {
    const input = [...all];
    expect(pageSummaries(input).sessions.map((entry) => entry.id)).toEqual(order);
    expect(input).toEqual(all);
  });

  test('pages with a cursor after the last entry; no nextCursor on the last page', () => {
    const first = pageSummaries(all, { limit: 2 });
    expect(first.sessions.map((entry) => entry.id)).toEqual(['d', 'b']);
    expect(decodeCursor(first.nextCursor!)).toEqual({ updatedAt: at(3), id: 'b' });
    const second = pageSummaries(all, { limit: 2, cursor: first.nextCursor! });
    expect(second.sessions.map((entry) => entry.id)).toEqual(['e', 'c']);
    const third = pageSummaries(all, { limit: 2, cursor: second.nextCursor! });
    expect(third.sessions.map((entry) => entry.id)).toEqual(['a']);
    expect(Object.hasOwn(third, 'nextCursor')).toBe(false);
  });

  test('a page that ends exactly at the last entry has no nextCursor', () => {
    const page = pageSummaries(all, { limit: 5 });
    expect(page.sessions).toHaveLength(5);
    expect(Object.hasOwn(page, 'nextCursor')).toBe(false);
    expect(pageSummaries([])).toEqual({ sessions: [] });
  });

  test('a cursor keeps its position when the entry it names is gone or moved', () => {
    const cursor = pageSummaries(all, { limit: 2 }).nextCursor!; // after b
    const changed = all
      .filter((entry) => entry.id !== 'b')
      .map((entry) => (entry.id === 'd' ? { ...entry, updatedAt: at(9) } : entry));
    changed.push(summary('new', at(10)));
    expect(pageSummaries(changed, { cursor }).sessions.map((entry) => entry.id)).toEqual(['e', 'c', 'a']);
  });

  test('filters before paging', () => {
    const starred = pageSummaries(all, { starred: true, limit: 1 });
    expect(starred.sessions.map((entry) => entry.id)).toEqual(['b']);
    expect(
      pageSummaries(all, { starred: true, limit: 1, cursor: starred.nextCursor! }).sessions.map(
        (entry) => entry.id,
      ),
    ).toEqual(['e']);
    expect(pageSummaries(all, { workingDir: '/w' }).sessions.map((entry) => entry.id)).toEqual(['b', 'c']);
    expect(pageSummaries(all, { starred: false }).sessions.map((entry) => entry.id)).toEqual(['d', 'c', 'a']);
    expect(
      pageSummaries(all, { workingDir: '/w', starred: false }).sessions.map((entry) => entry.id),
    ).toEqual(['c']);
  });

  test('paging through any set with any limit yields every entry once, in order', () => {
    const entryArb = fc.record({
      id: fc.string({ minLength: 1, maxLength: 3 }),
      seconds: fc.integer({ min: 0, max: 5 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(entryArb, { selector: (entry) => entry.id, maxLength: 30 }),
        fc.integer({ min: 1, max: 7 }),
        (entries, limit) => {
          const summaries = entries.map((entry) => summary(entry.id, at(entry.seconds)));
          const expected = [...summaries].sort(compareListPosition).map((entry) => entry.id);
          const seen: string[] = [];
          let cursor: string | undefined;
          do {
            const page = pageSummaries(summaries, cursor === undefined ? { limit } : { limit, cursor });
            expect(page.sessions.length).toBeLessThanOrEqual(limit);
            seen.push(...page.sessions.map((entry) => entry.id));
            cursor = page.nextCursor;
          } while (cursor !== undefined);
          expect(seen).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('rejects a malformed cursor and invalid options', () => {
    expectInvalidArgument(() => pageSummaries(all, { cursor: 'garbage!' }));
    expectInvalidArgument(() => pageSummaries(all, { limit: 0 }));
  });
});

describe('nextTimestamp', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('is the current time when there is no previous value or it is older', () => {
    vi.useFakeTimers({ now: Date.parse('2025-06-01T00:00:00.000Z') });
    expect(nextTimestamp()).toBe('2025-06-01T00:00:00.000Z');
    expect(nextTimestamp('2025-05-01T00:00:00.000Z')).toBe('2025-06-01T00:00:00.000Z');
  });

  test('is 1 ms after the previous value when the clock has not passed it', () => {
    vi.useFakeTimers({ now: Date.parse('2025-06-01T00:00:00.000Z') });
    expect(nextTimestamp('2025-06-01T00:00:00.000Z')).toBe('2025-06-01T00:00:00.001Z');
    expect(nextTimestamp('2030-01-01T00:00:00.000Z')).toBe('2030-01-01T00:00:00.001Z');
    expect(nextTimestamp('2025-06-01T02:00:00.000+02:00')).toBe('2025-06-01T00:00:00.001Z');
  });

  test('treats an unparseable previous value as absent', () => {
    vi.useFakeTimers({ now: Date.parse('2025-06-01T00:00:00.000Z') });
    expect(nextTimestamp('garbage')).toBe('2025-06-01T00:00:00.000Z');
  });

  test('strictly increases over any sequence of writes, even with a frozen or backward clock', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 50 }), (steps) => {
        vi.useFakeTimers({ now: Date.parse('2025-06-01T00:00:00.000Z') });
        let previous: string | undefined;
        for (const step of steps) {
          vi.setSystemTime(Date.now() + step);
          const next = nextTimestamp(previous);
          if (previous !== undefined) expect(Date.parse(next)).toBeGreaterThan(Date.parse(previous));
          expect(Date.parse(next)).toBeGreaterThanOrEqual(Date.now());
          previous = next;
        }
        vi.useRealTimers();
      }),
      { numRuns: 100 },
    );
  });
});
