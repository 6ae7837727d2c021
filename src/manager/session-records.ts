/**
 * Session records: the only part of the manager that talks to the {@link Store}.
 *
 * Besides passing calls through, it keeps two things per session:
 * - a **cache** ({@link SessionCache}) of the record while the session has a runtime: metadata as
 *   last written and the history as frozen items, so a turn hands its runtime the whole history by
 *   copying references, never by reading the store again;
 * - a **metadata mutex**, which serialises read-modify-write of metadata (permissions, policy,
 *   model overrides, titles), so an edit made during a turn is never lost to it.
 *
 * Rules every write follows, in this one place:
 * - **Store first, then cache.** The cache changes only after the store accepted the write, so it
 *   never holds what the store refused.
 * - **Store first, then emit.** A caller that announces a persisted change with an event
 *   (`message_added`, `user_message`, `token_usage`, `session_title`) emits it only after the write
 *   here resolved; an event for a write that failed is never emitted.
 * - **Unsure means reload.** When a write's outcome is unknown (a rollback or a turn's history write
 *   failed), the caller {@link SessionRecord.forget}s the cache and the next use reads the store.
 */
import { Mutex } from 'async-mutex';
import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { TokenUsage } from '../events.js';
import { cloneRecord } from '../internal/clone.js';
import { deepFreeze } from '../internal/freeze.js';
import {
  applyPatch,
  type Message,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
} from '../schemas.js';
import type { ListOptions, Page, Store } from '../store.js';
import type { TelemetrySpan } from '../telemetry.js';
import { Attr, traced } from './turn-tracing.js';

/** A session's metadata: the record without its items. */
export type SessionMetadata = Omit<Session, 'items'>;

/**
 * The manager's copy of one session: metadata as last written, and the history as frozen items, so
 * each turn hands the runtime a frozen snapshot by copying references only. Read-only to everyone
 * but {@link SessionRecord}, which changes it after each successful write.
 */
export class SessionCache {
  #meta: SessionMetadata;
  readonly #items: SessionItem[];
  /** Tool calls without a result among the items checked so far (id → tool name), in call order. */
  readonly #open = new Map<string, string>();
  /** Items checked by {@link openToolCalls}: the check is incremental, so each item is read once. */
  #checked = 0;
  /** Calls that were open when a user message followed them (a history providers reject). */
  #misordered = 0;

  constructor(session: Session) {
    const { items, ...meta } = session;
    this.#meta = meta;
    for (const item of items) deepFreeze(item);
    this.#items = items;
  }

  /** The metadata as last written. Do not change it: write through {@link SessionRecord}. */
  get meta(): Readonly<SessionMetadata> {
    return this.#meta;
  }

  /** The history, frozen items in order. */
  get items(): readonly SessionItem[] {
    return this.#items;
  }

  /**
   * The tool calls of the history that have no `role: 'tool'` result (id → tool name, in call
   * order). Incremental: items already checked are not read again, so a turn start costs only what
   * was added since the last one.
   */
  openToolCalls(): ReadonlyMap<string, string> {
    const items = this.#items;
    for (; this.#checked < items.length; this.#checked++) {
      const item = items[this.#checked];
      if (item?.kind !== 'message') continue;
      const message = item.message;
      if (message.role === 'assistant') {
        for (const call of message.toolCalls ?? []) this.#open.set(call.id, call.name);
      } else if (message.role === 'tool') {
        if (message.toolCallId !== undefined) this.#open.delete(message.toolCallId);
      } else if (message.role === 'user' && this.#open.size > 0) {
        this.#misordered += this.#open.size;
      }
    }
    return this.#open;
  }

  /** How many calls a user message followed before their result (checked items only). */
  get misorderedToolCalls(): number {
    this.openToolCalls();
    return this.#misordered;
  }

  /** A deeply frozen session sharing the cached items (the array of references is new). */
  snapshot(): Readonly<Session> {
    // Frozen at run time; typed as the mutable record so runtimes can pass it where a Session is expected.
    const items = Object.freeze(this.#items.slice()) as SessionItem[];
    return Object.freeze({ ...deepFreeze(structuredClone(this.#meta)), items });
  }

  /** A mutable deep copy. */
  copy(): Session {
    return structuredClone({ ...this.#meta, items: this.#items });
  }

  /** @internal Applies a patch the store accepted. */
  applyPatch(patch: SessionPatch): void {
    applyPatch(this.#meta as Session, cloneRecord(patch));
  }

  /** @internal Adds items the store accepted; they are frozen, so callers must not change them afterwards. */
  push(items: readonly SessionItem[]): void {
    for (const item of items) this.#items.push(deepFreeze(item));
  }

  /** @internal Replaces a message the store replaced. */
  replaceMessage(messageId: string, message: Message): void {
    const index = this.#items.findIndex((item) => item.kind === 'message' && item.message.id === messageId);
    if (index >= 0) this.#items[index] = deepFreeze({ kind: 'message', message });
  }
}

/**
 * One session's record as the manager uses it: the cache, the metadata mutex, and every write that
 * goes through to the cache. Made by {@link SessionRecords.open}; the handle of a session the
 * manager no longer holds in memory is simply dropped.
 */
export class SessionRecord {
  readonly id: string;
  readonly #store: Store;
  readonly #metadata = new Mutex();
  #cache: SessionCache | undefined;
  /** Counts writes made without the cache, so a load that raced one reads again. */
  #writes = 0;
  /** The span of the turn running on this session: writes meanwhile are traced as its children. */
  #span: TelemetrySpan | undefined;

  constructor(id: string, store: Store) {
    this.id = id;
    this.#store = store;
  }

  /** The cache, if loaded. */
  get cached(): SessionCache | undefined {
    return this.#cache;
  }

  /** A metadata read-modify-write is in progress (the record must not be dropped meanwhile). */
  get busy(): boolean {
    return this.#metadata.isLocked();
  }

  /** The cache, loaded from the store when there is none. `SESSION_NOT_FOUND`. */
  async load(): Promise<SessionCache> {
    for (;;) {
      if (this.#cache) return this.#cache;
      const writes = this.#writes;
      const session = await this.#store.getSession(this.id);
      // A concurrent load may have finished first; keep one cache.
      if (this.#cache) return this.#cache;
      // A write ran meanwhile: the read may predate it, and a cache made from it would keep the old
      // value (a policy, permissions) for as long as the cache lives.
      if (writes !== this.#writes) continue;
      this.#cache = new SessionCache(session);
      return this.#cache;
    }
  }

  /**
   * Traces the writes made from now on as children of `span` (a turn's, while it runs; `undefined`
   * stops it). The session has one turn at a time, so a write meanwhile is the turn's or was made
   * while it ran.
   */
  traceWrites(span: TelemetrySpan | undefined): void {
    this.#span = span;
  }

  /** A store write, in a child span of the running turn's span when it is traced. */
  #write(operation: string, items: number | undefined, write: () => Promise<void>): Promise<void> {
    const span = this.#span;
    if (span === undefined) return write();
    return traced(
      span,
      `store.${operation}`,
      {
        [Attr.storeName]: this.#store.name,
        [Attr.storeOperation]: operation,
        [Attr.storeItems]: items,
      },
      write,
    );
  }

  /** Drops the cache: the next {@link load} reads the store (after a write with an unknown outcome). */
  forget(): void {
    this.#cache = undefined;
  }

  /**
   * Runs `work` holding the metadata mutex. For compound changes (a model switch changes the runtime
   * and the record, and must not interleave with another) that write with {@link patch}.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#metadata.runExclusive(work);
  }

  /**
   * Read-modify-write of metadata under the mutex: `change` sees the current metadata (the cache's,
   * or the store's when there is no cache) and returns a patch, or `undefined` for none. Resolves
   * to the patch written.
   */
  update(
    change: (current: Readonly<SessionMetadata>) => SessionPatch | undefined,
  ): Promise<SessionPatch | undefined> {
    return this.exclusive(async () => {
      const current = this.#cache?.meta ?? (await this.#store.getSession(this.id));
      const patch = change(current);
      if (!patch) return undefined;
      await this.patch(patch);
      return patch;
    });
  }

  /**
   * Writes a metadata patch, then applies it to the cache. Takes no lock: use it for fields no
   * read-modify-write touches (usage) or inside {@link exclusive}.
   */
  async patch(patch: SessionPatch): Promise<void> {
    this.#writes++;
    try {
      await this.#write('updateSession', undefined, () => this.#store.updateSession(this.id, patch));
    } finally {
      this.#writes++;
    }
    this.#cache?.applyPatch(patch);
  }

  /** Appends items to the history, then to the cache (where they are frozen). */
  async append(items: SessionItem[]): Promise<void> {
    await this.#write('appendItems', items.length, () => this.#store.appendItems(this.id, items));
    this.#cache?.push(items);
  }

  /** Replaces a message, then the cache's copy. `MESSAGE_NOT_FOUND`. */
  async replaceMessage(messageId: string, message: Message): Promise<void> {
    await this.#write('updateMessage', undefined, () =>
      this.#store.updateMessage(this.id, messageId, message),
    );
    this.#cache?.replaceMessage(messageId, cloneRecord(message));
  }

  /**
   * Adds one model call's usage to the session's and writes the total. Needs the cache (a turn
   * holds it); resolves to the new total.
   */
  async addUsage(usage: TokenUsage): Promise<Session['usage']> {
    const cache = await this.load();
    const before = cache.meta.usage;
    const total: Session['usage'] = {
      inputTokens: before.inputTokens + usage.inputTokens,
      outputTokens: before.outputTokens + usage.outputTokens,
      cost: before.cost + (usage.cost ?? 0),
    };
    // The optional details are summed only where either side has them, so records that never had
    // them stay without them.
    for (const key of ['cacheReadTokens', 'cacheWriteTokens', 'reasoningTokens'] as const) {
      if (before[key] !== undefined || usage[key] !== undefined) {
        total[key] = (before[key] ?? 0) + (usage[key] ?? 0);
      }
    }
    await this.patch({ usage: total });
    return total;
  }
}

/**
 * The store with every rejection an {@link AgentSessionsError}: a store made by `defineStore`
 * already normalises its errors, but a hand-written one may throw anything, and every error out of
 * a public method of the manager must be typed. Anything else becomes `STORE_UNAVAILABLE` with the
 * original as `cause`.
 */
export function withTypedErrors(store: Store): Store {
  const call =
    <A extends unknown[], R>(what: string, method: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await method.apply(store, args);
      } catch (error) {
        if (AgentSessionsError.isInstance(error)) throw error;
        const detail = error instanceof Error ? error.message : String(error);
        throw new AgentSessionsError(
          ErrorCode.STORE_UNAVAILABLE,
          `the ${store.name} store could not ${what}: ${detail}`,
          { cause: error },
        );
      }
    };
  const typed: Store = {
    name: store.name,
    createSession: call('create a session', store.createSession),
    getSession: call('read a session', store.getSession),
    listSessions: call('list sessions', store.listSessions),
    updateSession: call('update a session', store.updateSession),
    appendItems: call('append items', store.appendItems),
    updateMessage: call('update a message', store.updateMessage),
    deleteSession: call('delete a session', store.deleteSession),
  };
  if (typeof store.getSummary === 'function')
    typed.getSummary = call('read a session summary', store.getSummary);
  if (typeof store.close === 'function') typed.close = call('close', store.close);
  return typed;
}

/**
 * The store as the manager uses it: whole-session calls, record handles ({@link open}) for the
 * per-session cache and mutex, and a cheap existence check.
 */
export class SessionRecords {
  /** The store sessions live in, its errors typed ({@link withTypedErrors}). */
  readonly store: Store;

  constructor(store: Store) {
    this.store = withTypedErrors(store);
  }

  /** A handle on one session's record (no I/O). */
  open(id: string): SessionRecord {
    return new SessionRecord(id, this.store);
  }

  /** The whole session. `SESSION_NOT_FOUND`. */
  get(id: string): Promise<Session> {
    return this.store.getSession(id);
  }

  /** A page of summaries. */
  list(options?: ListOptions): Promise<Page<SessionSummary>> {
    return this.store.listSessions(options);
  }

  /** Persists a new session. `SESSION_EXISTS`. */
  create(session: Session): Promise<void> {
    return this.store.createSession(session);
  }

  /** Removes a session. `SESSION_NOT_FOUND`. */
  delete(id: string): Promise<void> {
    return this.store.deleteSession(id);
  }

  /**
   * Whether the session exists, without reading its items when the store has `getSummary`
   * (otherwise through `getSession`). Other store errors reject.
   */
  async exists(id: string): Promise<boolean> {
    try {
      if (typeof this.store.getSummary === 'function') await this.store.getSummary(id);
      else await this.store.getSession(id);
      return true;
    } catch (error) {
      if (AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_FOUND)) return false;
      throw error;
    }
  }

  /** Closes the store. */
  async close(): Promise<void> {
    await this.store.close?.();
  }
}
