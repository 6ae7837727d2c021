/**
 * custom-store: a third-party Store written from scratch, checked by the conformance suite.
 *
 * `KeyValueStore` keeps sessions in a key-value backend the way a Redis or SQL adapter would: each
 * session as JSON text under `session:<id>`, and its summary under `summary:<id>` so listings never
 * read items. The backend here is an async wrapper around a Map; swap it for a real client.
 *
 * `describeStoreConformance` registers its tests through the `test` function it is given, so it runs
 * under vitest, jest, node:test — or, as here, a ten-line runner that records pass and fail.
 *
 * Run: npm run example -- custom-store
 */
import {
  AgentSessionsError,
  applyPatch,
  assertSessionId,
  ErrorCode,
  invalidArgument,
  type ListOptions,
  type Message,
  MessageSchema,
  nextTimestamp,
  type Page,
  pageSummaries,
  parsePatch,
  parseSession,
  type Session,
  type SessionItem,
  SessionItemSchema,
  SessionNotFoundError,
  type SessionPatch,
  type SessionSummary,
  type Store,
  toSummary,
} from 'agent-sessions';
import { describeStoreConformance } from 'agent-sessions/testing';

/** The backend: async get/set/delete/scan of text values, like most key-value clients. */
class FakeKeyValueBackend {
  readonly #data = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.#data.get(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.#data.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.#data.delete(key);
  }
  async *scan(prefix: string): AsyncIterable<string> {
    for (const [key, value] of this.#data) if (key.startsWith(prefix)) yield value;
  }
}

export class KeyValueStore implements Store {
  readonly name = 'key-value';
  readonly #backend: FakeKeyValueBackend;
  /** Per-session chains: writes to one session run one at a time, in call order. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(backend = new FakeKeyValueBackend()) {
    this.#backend = backend;
  }

  async createSession(session: Session): Promise<void> {
    assertSessionId((session as Partial<Session> | undefined)?.id);
    const parsed = parseSession(session); // validates; createdAt and updatedAt are kept as given
    await this.#serial(parsed.id, async () => {
      if ((await this.#backend.get(`session:${parsed.id}`)) !== undefined) {
        throw new AgentSessionsError(
          ErrorCode.SESSION_EXISTS,
          `session ${JSON.stringify(parsed.id)} already exists`,
        );
      }
      await this.#save(parsed);
    });
  }

  async getSession(id: string): Promise<Session> {
    assertSessionId(id);
    return this.#load(id); // parsed from text: never shares memory with what is kept
  }

  async listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    const summaries: SessionSummary[] = [];
    for await (const text of this.#backend.scan('summary:'))
      summaries.push(JSON.parse(text) as SessionSummary);
    return pageSummaries(summaries, options); // filters, order, opaque position cursors, limits
  }

  async updateSession(id: string, patch: SessionPatch): Promise<void> {
    assertSessionId(id);
    const parsed = parsePatch(patch); // rejects unknown fields, items and undefined on required ones
    await this.#serial(id, async () => {
      const session = await this.#load(id);
      applyPatch(session, structuredClone(parsed));
      session.updatedAt = nextTimestamp(session.updatedAt);
      await this.#save(session);
    });
  }

  async appendItems(id: string, items: SessionItem[]): Promise<void> {
    assertSessionId(id);
    const result = SessionItemSchema.array().safeParse(items);
    if (!result.success) throw invalidArgument('session items', result.error); // all or nothing
    await this.#serial(id, async () => {
      const session = await this.#load(id);
      session.items.push(...structuredClone(result.data));
      session.updatedAt = nextTimestamp(session.updatedAt);
      await this.#save(session);
    });
  }

  async updateMessage(id: string, messageId: string, message: Message): Promise<void> {
    assertSessionId(id);
    const result = MessageSchema.safeParse(message);
    if (!result.success) throw invalidArgument('message', result.error);
    await this.#serial(id, async () => {
      const session = await this.#load(id);
      const index = session.items.findIndex(
        (item) => item.kind === 'message' && item.message.id === messageId,
      );
      if (index < 0) {
        throw new AgentSessionsError(
          ErrorCode.MESSAGE_NOT_FOUND,
          `message ${JSON.stringify(messageId)} not found in session ${JSON.stringify(id)}`,
        );
      }
      session.items[index] = { kind: 'message', message: structuredClone(result.data) };
      session.updatedAt = nextTimestamp(session.updatedAt);
      await this.#save(session);
    });
  }

  async deleteSession(id: string): Promise<void> {
    assertSessionId(id);
    await this.#serial(id, async () => {
      await this.#load(id); // SESSION_NOT_FOUND
      await this.#backend.delete(`session:${id}`);
      await this.#backend.delete(`summary:${id}`);
    });
  }

  async #load(id: string): Promise<Session> {
    const text = await this.#backend.get(`session:${id}`);
    if (text === undefined) throw new SessionNotFoundError(id);
    return JSON.parse(text) as Session;
  }

  async #save(session: Session): Promise<void> {
    await this.#backend.set(`session:${session.id}`, JSON.stringify(session));
    await this.#backend.set(`summary:${session.id}`, JSON.stringify(toSummary(session)));
  }

  #serial<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => {});
    this.#queues.set(id, tail);
    void tail.then(() => {
      if (this.#queues.get(id) === tail) this.#queues.delete(id);
    });
    return next;
  }
}

// ───────────────────────────────────────── run the conformance suite without a test framework

const tests: Array<{ name: string; fn: () => Promise<void> }> = [];
describeStoreConformance({
  name: 'KeyValueStore',
  test: (name, fn) => tests.push({ name, fn }),
  createStore: () => new KeyValueStore(),
});

const failed: string[] = [];
for (const { name, fn } of tests) {
  try {
    await fn();
  } catch (error) {
    failed.push(name);
    console.log(`✗ ${name}\n    ${error instanceof Error ? error.message : String(error)}`);
  }
}
console.log(`KeyValueStore: ${tests.length - failed.length} of ${tests.length} conformance tests passed`);
if (failed.length > 0) throw new Error(`${failed.length} conformance tests failed`);
