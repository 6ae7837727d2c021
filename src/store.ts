/**
 * The Store contract: where sessions live. `SessionManager` calls a store for every read and
 * write of a session's record; nothing else is persisted.
 *
 * Most stores are not written against this interface directly: a store author writes a small
 * driver (raw persistence only) and `defineStore(driver)` from `agent-sessions/store` turns it into
 * a `Store` that enforces every rule below once. See docs/writing-a-store.md.
 *
 * A store MUST:
 * - validate ids (`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`, `assertSessionId`) before any I/O and
 *   reject anything else with `INVALID_ARGUMENT`; validate every record it is given with the zod
 *   schemas of `agent-sessions` and reject an invalid one with `INVALID_ARGUMENT`, writing nothing;
 * - reject `createSession` of a taken id with `SESSION_EXISTS` (`SessionExistsError`), every
 *   call naming an unknown session with `SESSION_NOT_FOUND` (`SessionNotFoundError`), and
 *   `updateMessage` of an unknown message with `MESSAGE_NOT_FOUND` (`MessageNotFoundError`);
 * - keep `createdAt` and `updatedAt` exactly as given on `createSession` (the manager stamps new
 *   sessions; an import keeps the exported ones, so export then import is deep-equal), and set
 *   `updatedAt` on every later write (patch, append, message update) to the current time, never
 *   earlier than the value it replaces (`nextTimestamp` from `agent-sessions/store`);
 * - never return memory it keeps or was given: callers may mutate what they pass and receive;
 * - change only the fields a patch names ({@link SessionPatch}: a named optional field whose value
 *   is `undefined` is removed) and never items through a patch;
 * - append all of `items` or none of them, in order, and serialise concurrent writes to one
 *   session so none is lost or applied twice; a call made after another call resolved sees its
 *   effect;
 * - list newest `updatedAt` first, ties broken by id (descending), filters before paging, with an
 *   opaque cursor that encodes a position (`updatedAt`, id) rather than an offset: a session that
 *   does not change while a client pages appears exactly once, one that changes moves to the front
 *   where the next fresh listing finds it. A malformed cursor or limit is `INVALID_ARGUMENT`.
 *   `nextCursor` is absent on the last page. Listing MUST NOT read items.
 * - reject only with `AgentSessionsError`s: a failure of its own (a full disk, a lost
 *   connection, a permission error) is `STORE_UNAVAILABLE` with the original error as `cause`.
 *
 * A store SHOULD report damaged data as `STORE_CORRUPT` (`StoreCorruptError`) naming the
 * file or key, keeping every other session usable, and never delete or cut damaged data by itself.
 *
 * Optional members: without {@link Store.getSummary} the manager checks existence with
 * `getSession`; {@link Store.close} is called by `manager.close()` when present. Optional capabilities of drivers (incremental writes, native listing; later durable
 * events and idempotent item writes) are declared by the driver and detected by `defineStore`.
 *
 * `describeStoreConformance` (from `agent-sessions/testing` or `agent-sessions/store`) checks all of
 * this, one exported group per area.
 */
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
  /** The page's entries, in listing order. */
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
   * The session's summary, without reading its items: the cheap existence check. `SESSION_NOT_FOUND`.
   * Optional so that stores written before it keep working; the manager falls back to
   * {@link Store.getSession}. Every store made by `defineStore` has it.
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
  /** Waits for pending calls and releases resources (files, locks, connections). */
  close?(): Promise<void>;
}

/** A listing position: what a cursor encodes. */
export interface ListPosition {
  /** The session's `updatedAt`. */
  updatedAt: string;
  /** The session's id. */
  id: string;
}
