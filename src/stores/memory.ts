import {
  invalidArgument,
  MessageNotFoundError,
  SessionExistsError,
  SessionNotFoundError,
} from '../errors.js';
import { cloneRecord } from '../internal/clone.js';
import {
  applyPatch,
  assertSessionId,
  countMessages,
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
import {
  compareListPosition,
  type ListOptions,
  nextTimestamp,
  type Page,
  pageSortedSummaries,
  type Store,
  validateListOptions,
} from '../store.js';

interface Entry {
  session: Session;
  messageCount: number;
}

function copySummary(summary: SessionSummary): SessionSummary {
  return { ...summary, usage: { ...summary.usage } };
}

/**
 * A store in memory. It copies on the way in and out and validates like a persistent store, so
 * code tested against it behaves the same on {@link FileStore} or a database.
 */
export class MemoryStore implements Store {
  readonly name = 'memory';
  readonly #sessions = new Map<string, Entry>();
  /** Summaries in listing order, rebuilt on the first listing after a write. */
  #sorted: SessionSummary[] | undefined;

  async createSession(session: Session): Promise<void> {
    assertSessionId((session as Partial<Session> | undefined)?.id);
    const parsed = parseSession(session);
    if (this.#sessions.has(parsed.id)) {
      throw new SessionExistsError(parsed.id);
    }
    const stored = cloneRecord(parsed);
    this.#sessions.set(stored.id, { session: stored, messageCount: countMessages(stored.items) });
    this.#sorted = undefined;
  }

  async getSession(id: string): Promise<Session> {
    return cloneRecord(this.#entry(id).session);
  }

  async listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    validateListOptions(options);
    this.#sorted ??= [...this.#sessions.values()]
      .map((entry) => toSummary(entry.session, entry.messageCount))
      .sort(compareListPosition);
    const page = pageSortedSummaries(this.#sorted, options);
    return { ...page, sessions: page.sessions.map(copySummary) };
  }

  async updateSession(id: string, patch: SessionPatch): Promise<void> {
    const entry = this.#entry(id);
    const parsed = parsePatch(patch);
    applyPatch(entry.session, cloneRecord(parsed));
    entry.session.updatedAt = nextTimestamp(entry.session.updatedAt);
    this.#sorted = undefined;
  }

  async appendItems(id: string, items: SessionItem[]): Promise<void> {
    const entry = this.#entry(id);
    const result = SessionItemSchema.array().safeParse(items);
    if (!result.success) throw invalidArgument('session items', result.error);
    const copies = cloneRecord(result.data);
    entry.session.items.push(...copies);
    entry.messageCount += countMessages(copies);
    entry.session.updatedAt = nextTimestamp(entry.session.updatedAt);
    this.#sorted = undefined;
  }

  async updateMessage(id: string, messageId: string, message: Message): Promise<void> {
    const entry = this.#entry(id);
    const result = MessageSchema.safeParse(message);
    if (!result.success) throw invalidArgument('message', result.error);
    const index = entry.session.items.findIndex(
      (item) => item.kind === 'message' && item.message.id === messageId,
    );
    if (index < 0) {
      throw new MessageNotFoundError(id, messageId);
    }
    entry.session.items[index] = { kind: 'message', message: cloneRecord(result.data) };
    entry.session.updatedAt = nextTimestamp(entry.session.updatedAt);
    this.#sorted = undefined;
  }

  async deleteSession(id: string): Promise<void> {
    this.#entry(id);
    this.#sessions.delete(id);
    this.#sorted = undefined;
  }

  async close(): Promise<void> {}

  #entry(id: string): Entry {
    assertSessionId(id);
    const entry = this.#sessions.get(id);
    if (!entry) throw new SessionNotFoundError(id);
    return entry;
  }
}
