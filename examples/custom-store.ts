/**
 * custom-store: a third-party store written as a driver, checked by the whole conformance suite.
 *
 * The driver keeps sessions in a key-value backend the way a Redis or SQL adapter would: each
 * session as JSON text under `session:<id>`, its summary under `summary:<id>` so listings and
 * existence checks never read items. It does raw persistence only: `defineStore` validates, copies,
 * serialises writes per session, stamps `updatedAt` and raises the named errors.
 *
 * Run: npm run example -- custom-store
 */
import type { Session, SessionSummary } from 'agent-sessions';
import { defineStore, type SummaryDriver } from 'agent-sessions/store';
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
  async delete(key: string): Promise<boolean> {
    return this.#data.delete(key);
  }
  async *scan(prefix: string): AsyncIterable<string> {
    for (const [key, value] of this.#data) if (key.startsWith(prefix)) yield value;
  }
}

/** The driver: four required methods, plus `readSummary` so existence checks read no items. */
export function keyValueDriver(backend = new FakeKeyValueBackend()): SummaryDriver {
  const parse = <T>(text: string | undefined) => (text === undefined ? undefined : (JSON.parse(text) as T));
  return {
    name: 'key-value',
    freshReads: true, // every read is parsed from text: shares nothing
    read: async (id) => parse<Session>(await backend.get(`session:${id}`)),
    readSummary: async (id) => parse<SessionSummary>(await backend.get(`summary:${id}`)),
    async write(session, summary) {
      await backend.set(`session:${session.id}`, JSON.stringify(session));
      await backend.set(`summary:${session.id}`, JSON.stringify(summary));
    },
    async remove(id) {
      await backend.delete(`summary:${id}`);
      return backend.delete(`session:${id}`);
    },
    async *summaries() {
      for await (const text of backend.scan('summary:')) yield JSON.parse(text) as SessionSummary;
    },
  };
}

// ───────────────────────────────────────── run the conformance suite without a test framework

const tests: Array<{ name: string; fn: () => Promise<void> }> = [];
describeStoreConformance({
  name: 'KeyValueStore',
  test: (name, fn) => tests.push({ name, fn }),
  createStore: () => defineStore(keyValueDriver()),
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
