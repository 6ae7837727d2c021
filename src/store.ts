/**
 * The Store contract (SPEC §3): where sessions live.
 *
 * A store MUST:
 * - validate ids with {@link assertSessionId} before any I/O (`INVALID_ARGUMENT`);
 * - reject `createSession` of a taken id with `SESSION_EXISTS`, and every call naming an unknown
 *   session with `SESSION_NOT_FOUND` (`updateMessage` of an unknown message: `MESSAGE_NOT_FOUND`);
 * - keep `createdAt` and `updatedAt` exactly as given on `createSession` (the manager stamps new
 *   sessions; an import keeps the exported ones, so export then import is deep-equal), and set
 *   `updatedAt` on every later write (patch, append, message update) with {@link nextTimestamp}:
 *   the current time, never earlier than the value it replaces;
 * - never return memory it keeps or was given: callers may mutate what they pass and receive;
 * - change only the fields a patch names ({@link SessionPatch}) and never items through a patch;
 * - append all of `items` or none of them, in order, and serialise concurrent writes to one
 *   session so none is lost or applied twice;
 * - list newest `updatedAt` first, ties broken by id (descending), filters before paging, with an
 *   opaque cursor that encodes a position (`updatedAt`, id) rather than an offset: a session that does
 *   not change while a client pages appears exactly once. A malformed cursor is `INVALID_ARGUMENT`.
 *   `nextCursor` is absent on the last page. Listing MUST NOT read items.
 *
 * A store SHOULD report damaged data as `STORE_CORRUPT` naming the record, keeping other sessions
 * usable. `describeStoreConformance` from `agent-sessions/testing` checks all of this.
 *
 * Optional capabilities (detected, each with a fallback in the manager) may be added later, such as
 * durable event persistence for replay across restarts.
 */
import { InvalidArgumentError } from './errors.js';
import type { Message, Session, SessionItem, SessionPatch, SessionSummary } from './schemas.js';

/** Options of {@link Store.listSessions}. */
export interface ListOptions {
  /** Page size, 1 to {@link MAX_LIST_LIMIT}. @default 100 */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Only sessions with exactly this working dir. */
  workingDir?: string;
  /** Only starred (`true`) or unstarred (`false`) sessions. */
  starred?: boolean;
  /** Only sessions owned by exactly this principal (`Session.owner`). */
  owner?: string;
}

/** One page of a listing. */
export interface Page<T> {
  sessions: T[];
  /** Absent on the last page. */
  nextCursor?: string;
}

/** The default page size. */
export const DEFAULT_LIST_LIMIT = 100;
/** The largest page size. */
export const MAX_LIST_LIMIT = 1000;

/** Where sessions live. See the module documentation for the contract. */
export interface Store {
  /** A short name for logs, e.g. `'memory'` or `'file'`. */
  readonly name: string;
  /** Persists a new session exactly as given, timestamps included. `SESSION_EXISTS` if the id is taken. */
  createSession(session: Session): Promise<void>;
  /** The whole session, items included. `SESSION_NOT_FOUND`. */
  getSession(id: string): Promise<Session>;
  /**
   * Optional: the session's summary (what a listing returns for it), without reading its items.
   * `SESSION_NOT_FOUND` for an unknown id. The manager uses it for existence checks (steering,
   * `streamEvents`, imports); without it, it falls back to {@link Store.getSession}.
   */
  getSummary?(id: string): Promise<SessionSummary>;
  /** Summaries, newest first. */
  listSessions(options?: ListOptions): Promise<Page<SessionSummary>>;
  /** Changes the metadata fields the patch names; never items. `SESSION_NOT_FOUND`. */
  updateSession(id: string, patch: SessionPatch): Promise<void>;
  /** Appends items at the end, all or nothing, in order. `SESSION_NOT_FOUND`. */
  appendItems(id: string, items: SessionItem[]): Promise<void>;
  /** Replaces the message with id `messageId`. `SESSION_NOT_FOUND`, `MESSAGE_NOT_FOUND`. */
  updateMessage(id: string, messageId: string, message: Message): Promise<void>;
  /** Removes a session. `SESSION_NOT_FOUND`. */
  deleteSession(id: string): Promise<void>;
  /** Releases resources (files, locks, connections). */
  close?(): Promise<void>;
}

/** A listing position: what a cursor encodes. */
export interface ListPosition {
  updatedAt: string;
  id: string;
}

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

/**
 * The timestamp for a write that replaces `previous`: now, or 1 ms after `previous` if the clock
 * has not moved past it, so `updatedAt` never goes backwards and every write moves a session.
 */
export function nextTimestamp(previous?: string): string {
  const now = Date.now();
  const before = previous === undefined ? Number.NaN : Date.parse(previous);
  return new Date(Number.isNaN(before) || now > before ? now : before + 1).toISOString();
}
