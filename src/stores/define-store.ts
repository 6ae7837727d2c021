// The one wrapper every store goes through: a driver (src/stores/driver.ts) does raw persistence,
// `defineStore` makes it a `Store` and owns the policy of the Store contract (src/store.ts) once.
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  invalidArgument,
  MessageNotFoundError,
  SessionExistsError,
  SessionNotFoundError,
} from '../errors.js';
import { cloneRecord } from '../internal/clone.js';
import {
  applyPatch,
  assertSessionId,
  type Message,
  MessageSchema,
  parsePatch,
  parseSession,
  type Session,
  type SessionItem,
  SessionItemSchema,
  type SessionPatch,
  type SessionSummary,
  toSummary,
} from '../schemas.js';
import type { ListOptions, Page, Store } from '../store.js';
import {
  type AppendBatchEntry,
  type BatchAppendDriver,
  type FencingDriver,
  type IncrementalDriver,
  isBatchAppendDriver,
  isFencingDriver,
  isIncrementalDriver,
  isListingDriver,
  isSummaryDriver,
  type StoreDriver,
} from './driver.js';
import { decodeCursor, pageSummaries, validateListOptions } from './paging.js';

/**
 * The timestamp for a write that replaces `previous`: now, or 1 ms after `previous` if the clock
 * has not moved past it, so `updatedAt` never goes backwards and every write moves a session.
 */
export function nextTimestamp(previous?: string): string {
  const now = Date.now();
  const before = previous === undefined ? Number.NaN : Date.parse(previous);
  return new Date(Number.isNaN(before) || now > before ? now : before + 1).toISOString();
}

// Built once: a zod schema built per call costs more than validating a few items with it.
const SessionItemsSchema = SessionItemSchema.array();

/** An `appendItems` call waiting in a group of appends to one session (group commit). */
interface PendingAppend {
  items: SessionItem[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Appends to one session queued back to back, written together when their turn comes. */
interface AppendGroup {
  members: PendingAppend[];
  /** The session queue's tail once this group was queued: joinable while nothing came after it. */
  tail: Promise<void> | undefined;
  started: boolean;
}

/** Item ids remembered per session for idempotent appends. */
const RECENT_ITEM_IDS = 64;
/** Sessions whose recent item ids are remembered. */
const RECENT_SESSIONS = 1024;

/** The id an item is known by: its message's id, or its own. */
function itemId(item: SessionItem): string {
  return item.kind === 'message' ? item.message.id : item.id;
}

function copySummary(summary: SessionSummary): SessionSummary {
  return { ...summary, usage: { ...summary.usage } };
}

// zod rebuilds every object it parses with z.object/z.array, so a parsed item or message shares
// nothing with the caller's. The JSON-valued fields (attributes, agentModelOverrides) are checked
// in place and kept as given: those are copied here.
function ownSession(parsed: Session): Session {
  parsed.attributes = cloneRecord(parsed.attributes);
  parsed.agentModelOverrides = { ...parsed.agentModelOverrides };
  return parsed;
}

function ownPatch(patch: SessionPatch): SessionPatch {
  // structuredClone keeps keys named with `undefined` (a removal) and own "__proto__" keys.
  return cloneRecord(patch);
}

async function collect(
  source: Promise<Iterable<SessionSummary>> | AsyncIterable<SessionSummary>,
): Promise<SessionSummary[]> {
  if (Symbol.asyncIterator in source) {
    const all: SessionSummary[] = [];
    for await (const summary of source) all.push(summary);
    return all;
  }
  return [...(await source)];
}

/**
 * The {@link Store} made from a {@link StoreDriver}. Every call, in order:
 * 1. rejects with `CLOSED` after {@link DefinedStore.close} (drivers that have `close`);
 * 2. validates the id, the record and the list options (`INVALID_ARGUMENT`) before any I/O;
 * 3. copies what it was given, so the caller may change it at once;
 * 4. waits for earlier calls naming the same session (listings do not wait);
 * 5. calls the driver, stamping `updatedAt` with {@link nextTimestamp} on every write after
 *    create, and raising `SESSION_EXISTS`, `SESSION_NOT_FOUND` and `MESSAGE_NOT_FOUND`; an append
 *    skips items already stored with the same id (idempotent appends: checked against the stored
 *    items for whole-session drivers, and for incremental ones against the ids of this store's
 *    recent appends, reading the stored items after an append whose outcome was unknown);
 * 6. copies what it returns (unless the driver declares `freshReads`);
 * 7. turns any error that is not an `AgentSessionsError` into `STORE_UNAVAILABLE` with the
 *    driver's error as `cause`.
 *
 * Subclass it to add a store's own methods (as `FileStore` adds `open()`), or use
 * {@link defineStore}.
 */
export class DefinedStore<Driver extends StoreDriver = StoreDriver> implements Store {
  /** The driver's name. */
  readonly name: string;
  /** The driver this store wraps. Calls made on it directly bypass every rule of the wrapper. */
  protected readonly driver: Driver;
  readonly #queues = new Map<string, Promise<void>>();
  /** Ids of items recent appends stored, per session (most recently used session last). */
  readonly #recent = new Map<string, Set<string>>();
  /** Ids of items whose append failed with an unknown outcome, per session. */
  readonly #unsure = new Map<string, Set<string>>();
  readonly #incremental: IncrementalDriver | undefined;
  readonly #batch: BatchAppendDriver | undefined;
  /** Per session, the group of appends that has not started yet (drivers with `appendMany`). */
  readonly #groups = new Map<string, AppendGroup>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(driver: Driver) {
    this.driver = driver;
    this.name = driver.name;
    this.#incremental = isIncrementalDriver(driver) ? driver : undefined;
    this.#batch = isBatchAppendDriver(driver) ? driver : undefined;
  }

  async createSession(session: Session): Promise<void> {
    this.assertOpen();
    assertSessionId((session as Partial<Session> | undefined)?.id);
    const stored = ownSession(parseSession(session));
    const summary = toSummary(stored);
    const id = stored.id;
    return this.#serial(id, 'create a session', async () => {
      if ((await this.#summary(id)) !== undefined) throw new SessionExistsError(id);
      await this.driver.write(stored, summary);
    });
  }

  async getSession(id: string): Promise<Session> {
    this.assertOpen();
    assertSessionId(id);
    return this.#serial(id, 'read a session', async () => {
      const session = await this.driver.read(id);
      if (session === undefined) throw new SessionNotFoundError(id);
      return this.driver.freshReads ? session : cloneRecord(session);
    });
  }

  /** The session's summary, without reading its items (when the driver reads summaries by id). */
  async getSummary(id: string): Promise<SessionSummary> {
    this.assertOpen();
    assertSessionId(id);
    return this.#serial(id, 'read a session summary', async () => {
      const summary = await this.#summary(id);
      if (summary === undefined) throw new SessionNotFoundError(id);
      return copySummary(summary);
    });
  }

  async listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    this.assertOpen();
    validateListOptions(options);
    if (options?.cursor !== undefined) decodeCursor(options.cursor);
    try {
      const page = isListingDriver(this.driver)
        ? await this.driver.list(options ?? {})
        : pageSummaries(await collect(this.driver.summaries()), options);
      return { ...page, sessions: page.sessions.map(copySummary) };
    } catch (error) {
      throw this.normalizeError(error, 'list sessions');
    }
  }

  updateSession(id: string, patch: SessionPatch): Promise<void> {
    return this.#updateSession(id, patch, undefined);
  }

  async #updateSession(id: string, patch: SessionPatch, fence: number | undefined): Promise<void> {
    this.assertOpen();
    assertSessionId(id);
    const owned = ownPatch(parsePatch(patch));
    return this.#serial(id, 'update a session', async () => {
      const incremental = this.#incremental;
      if (incremental) {
        const at = await this.#stamp(incremental, id);
        const found =
          fence === undefined
            ? await incremental.patch(id, owned, at)
            : await this.#fencing().patch(id, owned, at, fence);
        if (!found) throw new SessionNotFoundError(id);
        return;
      }
      await this.#rewrite(id, (session) => applyPatch(session, owned));
    });
  }

  appendItems(id: string, items: SessionItem[]): Promise<void> {
    return this.#appendItems(id, items, undefined);
  }

  async #appendItems(id: string, items: SessionItem[], fence: number | undefined): Promise<void> {
    this.assertOpen();
    assertSessionId(id);
    const result = SessionItemsSchema.safeParse(items);
    if (!result.success) throw invalidArgument('session items', result.error);
    const owned = result.data;
    // A fenced append carries its own token, so it is never grouped with others.
    if (this.#batch && fence === undefined) return this.#appendInGroup(id, owned);
    return this.#serial(id, 'append items', async () => {
      const incremental = this.#incremental;
      if (incremental) {
        // Idempotent: an item already stored with the same id is not stored again. The ids of
        // recent appends are remembered; after an append whose outcome is unknown (the driver
        // threw), the next append that repeats one of its ids checks the stored items.
        let fresh = this.#withoutRecent(id, owned);
        const unsure = this.#unsure.get(id);
        if (unsure !== undefined && fresh.some((item) => unsure.has(itemId(item)))) {
          const stored = await this.driver.read(id);
          if (stored === undefined) throw new SessionNotFoundError(id);
          const ids = new Set(stored.items.map(itemId));
          fresh = fresh.filter((item) => !ids.has(itemId(item)));
          this.#unsure.delete(id);
        }
        if (fresh.length === 0) return;
        const at = await this.#stamp(incremental, id);
        try {
          const found =
            fence === undefined
              ? await incremental.append(id, fresh, at)
              : await this.#fencing().append(id, fresh, at, fence);
          if (!found) throw new SessionNotFoundError(id);
        } catch (error) {
          if (!AgentSessionsError.isInstance(error)) {
            const ids = this.#unsure.get(id) ?? new Set<string>();
            for (const item of fresh) ids.add(itemId(item));
            this.#unsure.set(id, ids);
          }
          throw error;
        }
        this.#remember(id, fresh);
        return;
      }
      await this.#rewrite(id, (session) => {
        const ids = new Set(session.items.map(itemId));
        for (const item of owned) {
          if (ids.has(itemId(item))) continue;
          ids.add(itemId(item));
          session.items.push(item);
        }
      });
    });
  }

  // Group commit: an append joins the group of appends queued for the session if that group has
  // not started and nothing else was queued after it, so call order is kept; otherwise it starts a
  // new group at the end of the session's queue. A group is written with one `appendMany`.
  #appendInGroup(id: string, items: SessionItem[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const member: PendingAppend = { items, resolve, reject };
      const open = this.#groups.get(id);
      if (open && !open.started && this.#queues.get(id) === open.tail) {
        open.members.push(member);
        return;
      }
      const group: AppendGroup = { members: [member], tail: undefined, started: false };
      this.#groups.set(id, group);
      group.tail = this.#enqueue(id, () => this.#writeGroup(id, group));
    });
  }

  // Writes a group's appends (never throws: each member settles with the outcome).
  async #writeGroup(id: string, group: AppendGroup): Promise<void> {
    group.started = true;
    if (this.#groups.get(id) === group) this.#groups.delete(id);
    const driver = this.#batch!;
    const members = group.members;
    const writes: { member: PendingAppend; fresh: SessionItem[] }[] = [];
    try {
      // Idempotent, as for single appends: items stored by recent appends (or by an earlier
      // append of this group) are skipped; after an append whose outcome is unknown, the stored
      // items are read once for the group.
      const seen = new Set<string>();
      let stored: Set<string> | undefined;
      for (const member of members) {
        let fresh = this.#withoutRecent(id, member.items).filter((item) => !seen.has(itemId(item)));
        const unsure = this.#unsure.get(id);
        if (unsure !== undefined && fresh.some((item) => unsure.has(itemId(item)))) {
          const session = await driver.read(id);
          if (session === undefined) throw new SessionNotFoundError(id);
          stored = new Set(session.items.map(itemId));
          this.#unsure.delete(id);
        }
        if (stored) {
          const known = stored;
          fresh = fresh.filter((item) => !known.has(itemId(item)));
        }
        for (const item of fresh) seen.add(itemId(item));
        if (fresh.length > 0) writes.push({ member, fresh });
      }
      if (writes.length > 0) {
        const appends: AppendBatchEntry[] = [];
        let at = await this.#stamp(driver, id);
        for (const { fresh } of writes) {
          if (appends.length > 0) at = nextTimestamp(at);
          appends.push({ items: fresh, updatedAt: at });
        }
        try {
          if (!(await driver.appendMany(id, appends))) throw new SessionNotFoundError(id);
        } catch (error) {
          if (!AgentSessionsError.isInstance(error)) {
            const ids = this.#unsure.get(id) ?? new Set<string>();
            for (const { fresh } of writes) for (const item of fresh) ids.add(itemId(item));
            this.#unsure.set(id, ids);
          }
          throw error;
        }
        for (const { fresh } of writes) this.#remember(id, fresh);
      }
    } catch (error) {
      const typed = this.normalizeError(error, 'append items');
      for (const member of members) member.reject(typed);
      return;
    }
    for (const member of members) member.resolve();
  }

  /** `items` without those a recent append of this store stored (by id). */
  #withoutRecent(id: string, items: SessionItem[]): SessionItem[] {
    const recent = this.#recent.get(id);
    const seen = new Set<string>();
    return items.filter((item) => {
      const key = itemId(item);
      if (recent?.has(key) || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  /** Remembers the ids of stored items, a bounded number per session and of sessions. */
  #remember(id: string, items: SessionItem[]): void {
    const recent = this.#recent.get(id) ?? new Set<string>();
    this.#recent.delete(id);
    this.#recent.set(id, recent);
    for (const item of items) {
      recent.add(itemId(item));
      if (recent.size > RECENT_ITEM_IDS) recent.delete(recent.values().next().value as string);
    }
    if (this.#recent.size > RECENT_SESSIONS) this.#recent.delete(this.#recent.keys().next().value as string);
  }

  updateMessage(id: string, messageId: string, message: Message): Promise<void> {
    return this.#updateMessage(id, messageId, message, undefined);
  }

  async #updateMessage(
    id: string,
    messageId: string,
    message: Message,
    fence: number | undefined,
  ): Promise<void> {
    this.assertOpen();
    assertSessionId(id);
    const result = MessageSchema.safeParse(message);
    if (!result.success) throw invalidArgument('message', result.error);
    const owned = result.data;
    const wanted = String(messageId);
    return this.#serial(id, 'update a message', async () => {
      const incremental = this.#incremental;
      if (incremental) {
        const at = await this.#stamp(incremental, id);
        const outcome =
          fence === undefined
            ? await incremental.replaceMessage(id, wanted, owned, at)
            : await this.#fencing().replaceMessage(id, wanted, owned, at, fence);
        if (outcome === 'session') throw new SessionNotFoundError(id);
        if (outcome === 'message') throw new MessageNotFoundError(id, wanted);
        return;
      }
      await this.#rewrite(id, (session) => {
        const index = session.items.findIndex(
          (item) => item.kind === 'message' && item.message.id === wanted,
        );
        if (index < 0) throw new MessageNotFoundError(id, wanted);
        session.items[index] = { kind: 'message', message: owned };
      });
    });
  }

  async deleteSession(id: string): Promise<void> {
    this.assertOpen();
    assertSessionId(id);
    return this.#serial(id, 'delete a session', async () => {
      this.#recent.delete(id);
      this.#unsure.delete(id);
      if (!(await this.driver.remove(id))) throw new SessionNotFoundError(id);
    });
  }

  /**
   * Waits for every pending call, then closes the driver. Later calls reject with `CLOSED` when
   * the driver has a `close` method (a store without one has nothing to release and stays usable).
   * Idempotent: a second call waits for the first.
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = this.driver.close !== undefined;
      this.#closing = this.#shutdown();
    }
    return this.#closing;
  }

  /**
   * Runs `task` in the queue of session `id`, after every earlier call naming it and before later
   * ones, normalising what it throws like every other call. For a subclass's own per-session
   * operations (`FileStore.repairSession`).
   */
  protected exclusive<T>(id: string, what: string, task: () => Promise<T>): Promise<T> {
    return this.#serial(id, what, task);
  }

  /**
   * For a subclass whose driver checks fencing tokens ({@link FencingDriver}): a view of this store
   * whose `updateSession`, `appendItems` and `updateMessage` of a session carry
   * `tokenOf(sessionId)` to the driver when it is defined. It shares this store's queues and state;
   * its `close()` closes this store. See `FencingStore` (src/manager/busy-lock.ts).
   */
  protected fencedView(tokenOf: (sessionId: string) => number | undefined): Store {
    this.#fencing();
    const view: Store = {
      name: this.name,
      createSession: (session) => this.createSession(session),
      getSession: (id) => this.getSession(id),
      getSummary: (id) => this.getSummary(id),
      listSessions: (options) => this.listSessions(options),
      updateSession: (id, patch) => this.#updateSession(id, patch, tokenOf(id)),
      appendItems: (id, items) => this.#appendItems(id, items, tokenOf(id)),
      updateMessage: (id, messageId, message) => this.#updateMessage(id, messageId, message, tokenOf(id)),
      deleteSession: (id) => this.deleteSession(id),
      close: () => this.close(),
    };
    return view;
  }

  /**
   * For a subclass whose driver checks fencing tokens: records `token` as the session's fence, in
   * the session's queue (see {@link FencingDriver.raiseFence}).
   */
  protected raiseFenceOf(id: string, token: number): Promise<void> {
    this.assertOpen();
    assertSessionId(id);
    if (!Number.isSafeInteger(token) || token <= 0) {
      throw new InvalidArgumentError(`invalid fencing token ${String(token)}: a positive integer`);
    }
    const driver = this.#fencing();
    return this.#serial(id, 'raise the fence of a session', () => driver.raiseFence(id, token));
  }

  #fencing(): FencingDriver {
    if (!isFencingDriver(this.driver)) {
      throw new AgentSessionsError(
        ErrorCode.INVALID_ARGUMENT,
        `the ${this.name} store does not check fencing tokens`,
      );
    }
    return this.driver;
  }

  /** Throws `CLOSED` once {@link DefinedStore.close} was called on a store whose driver closes. */
  protected assertOpen(): void {
    if (this.#closed) throw new AgentSessionsError(ErrorCode.CLOSED, `the ${this.name} store is closed`);
  }

  async #shutdown(): Promise<void> {
    while (this.#queues.size > 0) await Promise.all(this.#queues.values());
    try {
      await this.driver.close?.();
    } catch (error) {
      throw this.normalizeError(error, 'close');
    }
  }

  async #summary(id: string): Promise<SessionSummary | undefined> {
    if (isSummaryDriver(this.driver)) return this.driver.readSummary(id);
    const session = await this.driver.read(id);
    return session === undefined ? undefined : toSummary(session);
  }

  async #stamp(driver: IncrementalDriver, id: string): Promise<string> {
    const summary = await driver.readSummary(id);
    if (summary === undefined) throw new SessionNotFoundError(id);
    return nextTimestamp(summary.updatedAt);
  }

  // A write for drivers that store whole sessions: read, change a private copy, write it back.
  async #rewrite(id: string, change: (session: Session) => void): Promise<void> {
    const read = await this.driver.read(id);
    if (read === undefined) throw new SessionNotFoundError(id);
    const session = this.driver.freshReads ? read : cloneRecord(read);
    change(session);
    session.updatedAt = nextTimestamp(session.updatedAt);
    await this.driver.write(session, toSummary(session));
  }

  // Runs `task` after every earlier task naming the same session; different sessions run
  // concurrently. A failed task does not stop the ones after it.
  #serial<T>(id: string, what: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(id) ?? Promise.resolve();
    const run = previous.then(task).catch((error: unknown) => {
      throw this.normalizeError(error, what);
    });
    this.#setTail(
      id,
      run.then(
        () => {},
        () => {},
      ),
    );
    return run;
  }

  // Queues a task that never rejects (it settles its callers itself) in the session's queue, as
  // #serial does, with two promises fewer. Returns the queue's new tail.
  #enqueue(id: string, task: () => Promise<void>): Promise<void> {
    const previous = this.#queues.get(id) ?? Promise.resolve();
    const tail = previous.then(task);
    this.#setTail(id, tail);
    return tail;
  }

  /** Makes `tail` (a promise that never rejects) the end of the session's queue until it settles. */
  #setTail(id: string, tail: Promise<void>): void {
    this.#queues.set(id, tail);
    void tail.then(() => {
      if (this.#queues.get(id) === tail) this.#queues.delete(id);
    });
  }

  /**
   * A driver's error as the store rejects with it: an `AgentSessionsError` as is, anything else as
   * `STORE_UNAVAILABLE` naming what the store could not do, with the error as `cause`.
   */
  protected normalizeError(error: unknown, what: string): AgentSessionsError {
    if (AgentSessionsError.isInstance(error)) return error;
    const detail = error instanceof Error ? error.message : String(error);
    return new AgentSessionsError(
      ErrorCode.STORE_UNAVAILABLE,
      `the ${this.name} store could not ${what}: ${detail}`,
      { cause: error },
    );
  }
}

/**
 * Makes a {@link Store} from a driver: the store enforces the whole Store contract (validation,
 * copies, per-session serialisation, `updatedAt`, named errors, error normalisation) and detects
 * the driver's optional capabilities. See {@link DefinedStore} and docs/writing-a-store.md.
 *
 * @example
 * ```ts
 * const store = defineStore({
 *   name: 'map',
 *   async read(id) { return sessions.get(id); },
 *   async write(session) { sessions.set(session.id, session); },
 *   async remove(id) { return sessions.delete(id); },
 *   async summaries() { return [...sessions.values()].map((session) => toSummary(session)); },
 * });
 * ```
 */
export function defineStore<Driver extends StoreDriver>(driver: Driver): DefinedStore<Driver> {
  return new DefinedStore(driver);
}
