import {
  applyPatch,
  countMessages,
  type Message,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
  toSummary,
} from '../schemas.js';
import type { ListOptions, Page } from '../store.js';
import { DefinedStore } from './define-store.js';
import type { IncrementalDriver, ListingDriver } from './driver.js';
import { compareListPosition, pageSortedSummaries } from './paging.js';

interface Entry {
  session: Session;
  summary: SessionSummary;
}

// The driver of MemoryStore: sessions in a Map, each with its summary kept up to date, and the
// summaries in listing order cached until the next write. What it is given is its own (the wrapper
// copies), and the wrapper copies what it returns.
class MemoryDriver implements IncrementalDriver, ListingDriver {
  readonly name = 'memory';
  readonly #sessions = new Map<string, Entry>();
  /** Summaries in listing order, rebuilt on the first listing after a write. */
  #sorted: SessionSummary[] | undefined;

  async read(id: string): Promise<Session | undefined> {
    return this.#sessions.get(id)?.session;
  }

  async readSummary(id: string): Promise<SessionSummary | undefined> {
    return this.#sessions.get(id)?.summary;
  }

  async write(session: Session, summary: SessionSummary): Promise<void> {
    this.#sessions.set(session.id, { session, summary });
    this.#sorted = undefined;
  }

  async remove(id: string): Promise<boolean> {
    const removed = this.#sessions.delete(id);
    if (removed) this.#sorted = undefined;
    return removed;
  }

  async summaries(): Promise<Iterable<SessionSummary>> {
    return [...this.#sessions.values()].map((entry) => entry.summary);
  }

  async list(options: ListOptions): Promise<Page<SessionSummary>> {
    this.#sorted ??= [...this.#sessions.values()].map((entry) => entry.summary).sort(compareListPosition);
    return pageSortedSummaries(this.#sorted, options);
  }

  async append(id: string, items: SessionItem[], updatedAt: string): Promise<boolean> {
    const entry = this.#sessions.get(id);
    if (!entry) return false;
    for (const item of items) entry.session.items.push(item);
    entry.summary.messageCount += countMessages(items);
    this.#touch(entry, updatedAt);
    return true;
  }

  async patch(id: string, patch: SessionPatch, updatedAt: string): Promise<boolean> {
    const entry = this.#sessions.get(id);
    if (!entry) return false;
    applyPatch(entry.session, patch);
    entry.summary = toSummary(entry.session, entry.summary.messageCount);
    this.#touch(entry, updatedAt);
    return true;
  }

  async replaceMessage(
    id: string,
    messageId: string,
    message: Message,
    updatedAt: string,
  ): Promise<true | 'session' | 'message'> {
    const entry = this.#sessions.get(id);
    if (!entry) return 'session';
    const items = entry.session.items;
    const index = items.findIndex((item) => item.kind === 'message' && item.message.id === messageId);
    if (index < 0) return 'message';
    items[index] = { kind: 'message', message };
    this.#touch(entry, updatedAt);
    return true;
  }

  #touch(entry: Entry, updatedAt: string): void {
    entry.session.updatedAt = updatedAt;
    entry.summary.updatedAt = updatedAt;
    this.#sorted = undefined;
  }
}

/**
 * A store in memory. It copies on the way in and out and validates like a persistent store (it is
 * a driver behind `defineStore`, like every store), so code tested against it behaves the same on
 * `FileStore` or a database. Nothing survives the process; `close()` releases nothing and the
 * store stays usable.
 */
export class MemoryStore extends DefinedStore {
  constructor() {
    super(new MemoryDriver());
  }
}
