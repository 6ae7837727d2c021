// Listing helpers for store authors (exported from `agent-sessions/store`): the listing order, the
// opaque position cursor, and paging over summaries. `defineStore` uses them for drivers that hand
// it summaries; a database driver does the same in its query language with `encodeCursor`,
// `decodeCursor` and `compareListPosition`.
import { InvalidArgumentError } from '../errors.js';
import type { SessionSummary } from '../schemas.js';
import {
  DEFAULT_LIST_LIMIT,
  type ListOptions,
  type ListPosition,
  MAX_LIST_LIMIT,
  type Page,
} from '../store.js';

/** Encodes a listing position as an opaque cursor. */
export function encodeCursor(position: ListPosition): string {
  const json = JSON.stringify([position.updatedAt, position.id]);
  let binary = '';
  for (const byte of new TextEncoder().encode(json)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** Decodes a cursor made by {@link encodeCursor}; anything else is `INVALID_ARGUMENT`. */
export function decodeCursor(cursor: string): ListPosition {
  const fail = () =>
    new InvalidArgumentError('invalid list cursor', {
      issues: [{ path: ['cursor'], message: 'malformed cursor' }],
    });
  if (
    typeof cursor !== 'string' ||
    cursor.length === 0 ||
    cursor.length > 1024 ||
    !/^[A-Za-z0-9_-]+$/.test(cursor)
  ) {
    throw fail();
  }
  try {
    const binary = atob(cursor.replaceAll('-', '+').replaceAll('_', '/'));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      !Number.isNaN(Date.parse(value[0]))
    ) {
      return { updatedAt: value[0], id: value[1] };
    }
  } catch {
    // fall through
  }
  throw fail();
}

/** Validates list options; returns the page size. */
export function validateListOptions(options: ListOptions = {}): number {
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new InvalidArgumentError(
      `invalid list limit ${String(limit)}: expected an integer from 1 to ${MAX_LIST_LIMIT}`,
      {
        issues: [{ path: ['limit'], message: `expected an integer from 1 to ${MAX_LIST_LIMIT}` }],
      },
    );
  }
  if (options.starred !== undefined && typeof options.starred !== 'boolean') {
    throw new InvalidArgumentError('invalid list filter starred: expected a boolean', {
      issues: [{ path: ['starred'], message: 'expected a boolean' }],
    });
  }
  if (options.owner !== undefined && (typeof options.owner !== 'string' || options.owner === '')) {
    throw new InvalidArgumentError('invalid list filter owner: expected a non-empty string', {
      issues: [{ path: ['owner'], message: 'expected a non-empty string' }],
    });
  }
  if (options.workingDir !== undefined && typeof options.workingDir !== 'string') {
    throw new InvalidArgumentError('invalid list filter workingDir: expected a string', {
      issues: [{ path: ['workingDir'], message: 'expected a string' }],
    });
  }
  return limit;
}

/**
 * Compares two listing positions in listing order: newest `updatedAt` first, then id descending.
 * Negative when `a` comes first.
 */
export function compareListPosition(a: ListPosition, b: ListPosition): number {
  const at = Date.parse(a.updatedAt);
  const bt = Date.parse(b.updatedAt);
  if (at !== bt) return bt - at;
  if (a.id === b.id) return 0;
  return a.id < b.id ? 1 : -1;
}

/**
 * Pages through summaries (any order) in listing order: filters, sorts, cuts after the cursor.
 * Stores that hold summaries in memory use this; others may do the same in their query language.
 */
export function pageSummaries(
  all: Iterable<SessionSummary>,
  options: ListOptions = {},
): Page<SessionSummary> {
  validateListOptions(options);
  return pageSortedSummaries([...all].sort(compareListPosition), options);
}

/**
 * Like {@link pageSummaries} over summaries already in listing order: the cursor's position is
 * found by binary search, so a page costs O(log n + page) however many sessions there are. The
 * returned summaries are the given objects: copy them if the caller must not share them.
 */
export function pageSortedSummaries(
  sorted: readonly SessionSummary[],
  options: ListOptions = {},
): Page<SessionSummary> {
  const limit = validateListOptions(options);
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  let index = 0;
  if (after) {
    let high = sorted.length;
    while (index < high) {
      const middle = (index + high) >>> 1;
      if (compareListPosition(sorted[middle]!, after) <= 0) index = middle + 1;
      else high = middle;
    }
  }
  const sessions: SessionSummary[] = [];
  let more = false;
  for (; index < sorted.length; index++) {
    const summary = sorted[index]!;
    if (options.workingDir !== undefined && summary.workingDir !== options.workingDir) continue;
    if (options.starred !== undefined && summary.starred !== options.starred) continue;
    if (options.owner !== undefined && summary.owner !== options.owner) continue;
    if (sessions.length === limit) {
      more = true;
      break;
    }
    sessions.push(summary);
  }
  const page: Page<SessionSummary> = { sessions };
  const last = sessions[sessions.length - 1];
  if (more && last) page.nextCursor = encodeCursor(last);
  return page;
}
