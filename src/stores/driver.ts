/**
 * Store drivers: what a store author writes. A driver does raw persistence only; `defineStore`
 * (src/stores/define-store.ts) wraps it into the {@link Store} the manager takes and enforces the
 * whole Store contract once: ids before I/O, validation, copies in and out, per-session
 * serialisation, `updatedAt` stamping, the named errors and error normalisation.
 *
 * **The required part** ({@link StoreDriver}) is four methods: `read`, `write`, `remove` and
 * `summaries`. A driver with only these works everywhere: `defineStore` does every write as read,
 * change, write under its per-session queue, and pages listings over `summaries()`.
 *
 * **What `defineStore` guarantees a driver:**
 * - every id is valid (`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`) and every record has passed the zod
 *   schemas before the driver sees it;
 * - calls naming one session never overlap: the next starts after the previous settled, in call
 *   order (`summaries` and `list` are not serialised);
 * - what the driver is given is its own: a copy nobody else holds, which it may keep;
 * - no call arrives after `close()` was called.
 *
 * **What a driver MUST do:**
 * - `read` returns what the last `write` stored (and what later incremental writes changed),
 *   with every field as written; `undefined` for an unknown id;
 * - `write` stores the whole session, replacing any stored one, atomically (after a crash, the old
 *   record or the new one, never a mix);
 * - keep each session's summary readable without reading its items (a summary field of the row, a
 *   second key, an index), so listings and {@link SummaryDriver.readSummary} never read items;
 * - throw for a failure of its own (`defineStore` turns anything that is not an
 *   `AgentSessionsError` into `STORE_UNAVAILABLE` with the error as `cause`), and throw
 *   `STORE_CORRUPT` (`StoreCorruptError`) naming the key or file for data it cannot read back.
 *
 * **Optional capabilities** are sub-interfaces, declared simply by having their methods and
 * detected with the type guards below, each with the fallback named on it:
 * - {@link SummaryDriver} (`readSummary`): existence checks and patch stamping read no items;
 * - {@link IncrementalDriver} (`append`, `patch`, `replaceMessage`): writes that do not rewrite
 *   the whole session (an append-only log, an `INSERT` of item rows);
 * - {@link BatchAppendDriver} (`appendMany`): appends queued for one session written together
 *   (group commit: one write and one sync for all of them);
 * - {@link ListingDriver} (`list`): a page straight from an index or a query.
 * Future capabilities (durable events for replay across restarts, idempotent item writes) are added
 * the same way: one sub-interface, one guard, one conformance group, and a fallback in the core.
 */
import type { Message, Session, SessionItem, SessionPatch, SessionSummary } from '../schemas.js';
import type { ListOptions, Page } from '../store.js';

/** The required part of a store driver: raw persistence of whole sessions. See the module docs. */
export interface StoreDriver {
  /** A short name for logs, e.g. `'memory'`, `'file'` or `'redis'`. */
  readonly name: string;
  /**
   * True when every value the driver returns is newly made for that call (parsed from storage) and
   * shared with nothing: `defineStore` then skips its copy on the way out.
   * @default false
   */
  readonly freshReads?: boolean;
  /** The stored session, or `undefined` when no session has this id. */
  read(id: string): Promise<Session | undefined>;
  /**
   * Stores `session` under its id, replacing any stored one; `summary` is its summary, to keep
   * beside it for listings. Called for a create (after `defineStore` checked the id is free) and
   * for every write of a driver without {@link IncrementalDriver}.
   */
  write(session: Session, summary: SessionSummary): Promise<void>;
  /** Removes a session (also a damaged one); `false` when no session has this id. */
  remove(id: string): Promise<boolean>;
  /** The summary of every stored session, in any order. Never reads items. */
  summaries(): Promise<Iterable<SessionSummary>> | AsyncIterable<SessionSummary>;
  /** Releases resources (files, locks, connections). `defineStore` waits for pending calls first. */
  close?(): Promise<void>;
}

/**
 * Capability: summaries by id. Without it, `getSummary` reads the whole session and summarises it.
 */
export interface SummaryDriver extends StoreDriver {
  /** The session's summary without reading its items, or `undefined` when no session has this id. */
  readSummary(id: string): Promise<SessionSummary | undefined>;
}

/**
 * Capability: writes that change a session in place. Without it, each write reads the whole
 * session, changes it and writes it back whole. `updatedAt` is the timestamp `defineStore` chose
 * for the write; the driver stores it as the session's `updatedAt` (and in its summary).
 */
export interface IncrementalDriver extends SummaryDriver {
  /** Appends `items` after the existing ones, all or nothing. `false` when the session is unknown. */
  append(id: string, items: SessionItem[], updatedAt: string): Promise<boolean>;
  /**
   * Applies a validated patch: each named field is set, and a named optional field whose value is
   * `undefined` removed (see `applyPatch`). `false` when the session is unknown.
   */
  patch(id: string, patch: SessionPatch, updatedAt: string): Promise<boolean>;
  /**
   * Replaces the message item whose message id is `messageId`. `'session'` when the session is
   * unknown, `'message'` when it holds no such message (nothing written), `true` when replaced.
   */
  replaceMessage(
    id: string,
    messageId: string,
    message: Message,
    updatedAt: string,
  ): Promise<true | 'session' | 'message'>;
}

/** One append of a batch: its items and the `updatedAt` `defineStore` chose for it. */
export interface AppendBatchEntry {
  items: SessionItem[];
  updatedAt: string;
}

/**
 * Capability: group commit. `defineStore` hands the driver every `appendItems` call queued for a
 * session while the previous call ran (consecutive, nothing else queued between them), in call
 * order, each already stamped with a later `updatedAt` than the one before. The driver stores them
 * as it would store them one `append` after another (each all or nothing, in order, the session's
 * `updatedAt` becoming the last one's), but may share one write and one sync between them.
 * Resolving means every one of them is stored as durably as a single `append` would be; throwing
 * means none is acknowledged (each call of the batch rejects with the error; a driver removes what
 * it can of a failed write). `false` when the session is unknown. Without it, queued appends are
 * written one at a time.
 */
export interface BatchAppendDriver extends IncrementalDriver {
  appendMany(id: string, appends: readonly AppendBatchEntry[]): Promise<boolean>;
}

/**
 * Capability: fencing tokens checked by the driver (see `FencingStore` in
 * src/manager/busy-lock.ts). The incremental writes take the write's token as a last argument
 * (only a fenced view's writes have one): the driver MUST refuse such a write with
 * `LeaseLostError`, writing nothing, when the session's recorded fence is greater, and otherwise
 * record the token as the fence in the same transaction. A store made from it offers
 * `fencedView` and `raiseFence` to a subclass (as `PostgresStore` does).
 */
export interface FencingDriver extends IncrementalDriver {
  append(id: string, items: SessionItem[], updatedAt: string, fence?: number): Promise<boolean>;
  patch(id: string, patch: SessionPatch, updatedAt: string, fence?: number): Promise<boolean>;
  replaceMessage(
    id: string,
    messageId: string,
    message: Message,
    updatedAt: string,
    fence?: number,
  ): Promise<true | 'session' | 'message'>;
  /**
   * Records `token` as the session's fence when it is greater; rejects with `LeaseLostError` when
   * a greater one is recorded. Does nothing for an unknown session.
   */
  raiseFence(id: string, token: number): Promise<void>;
}

/**
 * Capability: listing pages itself (an index, a query, summaries kept sorted). `defineStore`
 * validates `options` first (limit, filters, cursor) and copies the page it returns. Without it,
 * every listing sorts `summaries()` and pages them (`pageSummaries`).
 */
export interface ListingDriver extends StoreDriver {
  /** One page in listing order (see the Store contract), after `options.cursor`, filters applied. */
  list(options: ListOptions): Promise<Page<SessionSummary>>;
}

function hasMethods(driver: StoreDriver, names: readonly string[]): boolean {
  return names.every((name) => typeof (driver as unknown as Record<string, unknown>)[name] === 'function');
}

/** True when the driver reads summaries by id ({@link SummaryDriver}). */
export function isSummaryDriver(driver: StoreDriver): driver is SummaryDriver {
  return hasMethods(driver, ['readSummary']);
}

/** True when the driver writes in place ({@link IncrementalDriver}). */
export function isIncrementalDriver(driver: StoreDriver): driver is IncrementalDriver {
  return hasMethods(driver, ['readSummary', 'append', 'patch', 'replaceMessage']);
}

/** True when the driver checks fencing tokens ({@link FencingDriver}). */
export function isFencingDriver(driver: StoreDriver): driver is FencingDriver {
  return isIncrementalDriver(driver) && hasMethods(driver, ['raiseFence']);
}

/** True when the driver writes queued appends together ({@link BatchAppendDriver}). */
export function isBatchAppendDriver(driver: StoreDriver): driver is BatchAppendDriver {
  return isIncrementalDriver(driver) && hasMethods(driver, ['appendMany']);
}

/** True when the driver pages listings itself ({@link ListingDriver}). */
export function isListingDriver(driver: StoreDriver): driver is ListingDriver {
  return hasMethods(driver, ['list']);
}
