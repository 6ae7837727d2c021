// Tests of the conformance suite itself: it registers its tests through the injected functions,
// cleans up after each, and catches stores that break the contract.
import { describe, expect, test } from 'vitest';
import { AgentSessionsError, ErrorCode, SessionNotFoundError } from '../../src/errors.js';
import type { Message, Session, SessionItem, SessionPatch, SessionSummary } from '../../src/schemas.js';
import type { ListOptions, Page, Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { encodeCursor } from '../../src/stores/paging.js';
import {
  describeStoreConformance,
  type StoreConformanceOptions,
} from '../../src/testing/conformance/index.js';

interface Registered {
  name: string;
  fn: () => Promise<void>;
}

function collect(options: Omit<StoreConformanceOptions, 'test'>): Registered[] {
  const registered: Registered[] = [];
  describeStoreConformance({ ...options, test: (name, fn) => registered.push({ name, fn }) });
  return registered;
}

/** Runs every collected test; resolves to the names of those that failed, with their messages. */
async function failures(createStore: () => Store): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  for (const entry of collect({ createStore })) {
    try {
      await entry.fn();
    } catch (error) {
      failed.set(entry.name, error instanceof Error ? error.message : String(error));
    }
  }
  return failed;
}

/** A pass-through store that a broken variant overrides one method of. */
class Wrapper implements Store {
  readonly name = 'wrapper';
  readonly inner = new MemoryStore();
  createSession(session: Session): Promise<void> {
    return this.inner.createSession(session);
  }
  getSession(id: string): Promise<Session> {
    return this.inner.getSession(id);
  }
  listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    return this.inner.listSessions(options);
  }
  updateSession(id: string, patch: SessionPatch): Promise<void> {
    return this.inner.updateSession(id, patch);
  }
  appendItems(id: string, items: SessionItem[]): Promise<void> {
    return this.inner.appendItems(id, items);
  }
  updateMessage(id: string, messageId: string, message: Message): Promise<void> {
    return this.inner.updateMessage(id, messageId, message);
  }
  deleteSession(id: string): Promise<void> {
    return this.inner.deleteSession(id);
  }
}

const PREFIX = 'Store conformance: ';

describe('describeStoreConformance', () => {
  test('registers every test with a prefixed name when describe is omitted, and none for reopening', () => {
    const registered = collect({ createStore: () => new MemoryStore() });
    expect(registered.length).toBeGreaterThan(30);
    expect(registered.every((entry) => entry.name.startsWith(PREFIX))).toBe(true);
    expect(new Set(registered.map((entry) => entry.name)).size).toBe(registered.length);
    expect(registered.some((entry) => entry.name.includes('reopening'))).toBe(false);
  });

  test('groups the tests under describe with the given name', () => {
    const groups: string[] = [];
    const names: string[] = [];
    describeStoreConformance({
      name: 'My store',
      describe: (name, fn) => {
        groups.push(name);
        fn();
      },
      test: (name) => names.push(name),
      createStore: () => new MemoryStore(),
    });
    expect(groups).toEqual(['My store']);
    expect(names.length).toBeGreaterThan(30);
    expect(names.some((name) => name.startsWith(PREFIX))).toBe(false);
  });

  test('adds the reopen tests when reopenStore is given, and they pass when data persists', async () => {
    const registered = collect({ createStore: () => new MemoryStore(), reopenStore: (store) => store });
    const reopen = registered.filter((entry) => entry.name.includes('reopening'));
    expect(reopen.length).toBe(3);
    for (const entry of reopen) await entry.fn();
  });

  test('the reopen tests fail when reopening loses data', async () => {
    const registered = collect({
      createStore: () => new MemoryStore(),
      reopenStore: () => new MemoryStore(),
    });
    for (const entry of registered.filter((candidate) => candidate.name.includes('reopening'))) {
      await expect(entry.fn()).rejects.toThrow(/not found|after reopening/);
    }
  });

  test('passes destroyStore the last store instance, also when the test fails', async () => {
    const destroyed: Store[] = [];
    const reopened: Store[] = [];
    const registered = collect({
      createStore: () => new MemoryStore(),
      reopenStore: () => {
        const fresh = new MemoryStore();
        reopened.push(fresh);
        return fresh;
      },
      destroyStore: (store) => {
        destroyed.push(store);
      },
    });
    const entry = registered.find((candidate) => candidate.name.includes('after reopening, every session'));
    await expect(entry?.fn()).rejects.toThrow();
    expect(destroyed).toEqual([reopened[0]]);
  });

  test('a failing test reports its own error, not a failing destroyStore', async () => {
    const registered = collect({
      createStore: () => new MemoryStore(),
      reopenStore: () => new MemoryStore(),
      destroyStore: () => {
        throw new Error('cleanup failed');
      },
    });
    const reopen = registered.find((candidate) => candidate.name.includes('after reopening, every session'));
    await expect(reopen?.fn()).rejects.toThrow(/after reopening|not found/);
    const passing = registered.find((candidate) => candidate.name.includes('empty store'));
    await expect(passing?.fn()).rejects.toThrow('cleanup failed');
  });

  test('MemoryStore fails none of the tests', async () => {
    expect([...(await failures(() => new MemoryStore())).keys()]).toEqual([]);
  });
});

// Each broken store violates one rule; the suite must catch it in the test named for that rule.
const broken: [string, string, () => Store][] = [
  [
    'a cursor that encodes an offset',
    'cursors stay stable',
    () =>
      new (class extends Wrapper {
        override async listSessions(options: ListOptions = {}) {
          const { cursor, limit = 100, ...filters } = options;
          const all = (await this.inner.listSessions({ ...filters, limit: 1000 })).sessions;
          const offset = cursor === undefined ? 0 : Number(atob(cursor));
          if (Number.isNaN(offset)) throw new AgentSessionsError(ErrorCode.INVALID_ARGUMENT, 'bad cursor');
          const sessions = all.slice(offset, offset + limit);
          return offset + limit < all.length
            ? { sessions, nextCursor: btoa(String(offset + limit)) }
            : { sessions };
        }
      })(),
  ],
  [
    'appends that are not all-or-nothing',
    'one invalid item',
    () =>
      new (class extends Wrapper {
        override async appendItems(id: string, items: SessionItem[]) {
          for (const item of items) await this.inner.appendItems(id, [item]);
        }
      })(),
  ],
  [
    'appends that read, modify and write without serialising',
    '100 concurrent appendItems',
    () =>
      new (class extends Wrapper {
        override async appendItems(id: string, items: SessionItem[]) {
          const session = await this.inner.getSession(id);
          await new Promise((resolve) => setImmediate(resolve));
          await this.inner.deleteSession(id).catch(() => {});
          await this.inner.createSession({ ...session, items: [...session.items, ...items] }).catch(() => {});
        }
      })(),
  ],
  [
    'getSession returning the same object twice',
    'getSession returns a copy',
    () =>
      new (class extends Wrapper {
        readonly #cache = new Map<string, Session>();
        override async getSession(id: string) {
          const cached = this.#cache.get(id) ?? (await this.inner.getSession(id));
          this.#cache.set(id, cached);
          return cached;
        }
      })(),
  ],
  [
    'a patch naming a field with undefined that is ignored',
    'removes it and nothing else',
    () =>
      new (class extends Wrapper {
        override updateSession(id: string, patch: SessionPatch) {
          return this.inner.updateSession(id, JSON.parse(JSON.stringify(patch)));
        }
      })(),
  ],
  [
    'a patch with unknown fields that are dropped instead of refused',
    'unknown, unpatchable and invalid fields',
    () =>
      new (class extends Wrapper {
        override updateSession(id: string, patch: SessionPatch) {
          const known = Object.fromEntries(
            Object.entries(patch ?? {}).filter(
              ([key]) => !['bogus', 'items', 'id', 'createdAt', 'updatedAt'].includes(key),
            ),
          );
          return this.inner.updateSession(id, known);
        }
      })(),
  ],
  [
    'createSession replacing a taken id',
    'SESSION_EXISTS for a taken id',
    () =>
      new (class extends Wrapper {
        override async createSession(session: Session) {
          await this.inner.deleteSession(session.id).catch(() => {});
          await this.inner.createSession(session);
        }
      })(),
  ],
  [
    'listings that include items',
    'never their items',
    () =>
      new (class extends Wrapper {
        override async listSessions(options?: ListOptions) {
          const page = await this.inner.listSessions(options);
          for (const summary of page.sessions) {
            Object.assign(summary, { items: (await this.inner.getSession(summary.id)).items });
          }
          return page;
        }
      })(),
  ],
  [
    'filters applied after paging',
    'filters before paging',
    () =>
      new (class extends Wrapper {
        override async listSessions(options: ListOptions = {}) {
          const { workingDir, starred, ...paging } = options;
          const page = await this.inner.listSessions(paging);
          page.sessions = page.sessions.filter(
            (summary) =>
              (workingDir === undefined || summary.workingDir === workingDir) &&
              (starred === undefined || summary.starred === starred),
          );
          return page;
        }
      })(),
  ],
  [
    'a nextCursor on the last page',
    'no nextCursor on the last page',
    () =>
      new (class extends Wrapper {
        override async listSessions(options?: ListOptions) {
          const page = await this.inner.listSessions(options);
          const last = page.sessions[page.sessions.length - 1];
          return last ? { ...page, nextCursor: encodeCursor(last) } : page;
        }
      })(),
  ],
  [
    'ties listed by id ascending',
    'ties broken by id descending',
    () =>
      new (class extends Wrapper {
        override async listSessions(options?: ListOptions) {
          const page = await this.inner.listSessions(options);
          page.sessions.sort(
            (a, b) => Date.parse(b.updatedAt) - Date.parse(a.updatedAt) || a.id.localeCompare(b.id),
          );
          return page;
        }
      })(),
  ],
  [
    'unknown ids answered with SESSION_NOT_FOUND instead of INVALID_ARGUMENT',
    'invalid session id',
    () =>
      new (class extends Wrapper {
        override async getSession(id: string) {
          try {
            return await this.inner.getSession(id);
          } catch (error) {
            throw AgentSessionsError.hasCode(error, 'INVALID_ARGUMENT')
              ? new SessionNotFoundError(id)
              : error;
          }
        }
      })(),
  ],
  [
    'writes that leave updatedAt alone',
    'updatedAt to the time of the write',
    () =>
      new (class extends Wrapper {
        override async updateSession(id: string, patch: SessionPatch) {
          const before = await this.inner.getSession(id);
          await this.inner.updateSession(id, patch);
          const after = await this.inner.getSession(id);
          await this.inner.deleteSession(id);
          await this.inner.createSession({ ...after, updatedAt: before.updatedAt });
        }
      })(),
  ],
  [
    'a store that loses the "__proto__" key of attributes',
    '__proto__ and constructor keys',
    () =>
      new (class extends Wrapper {
        override async getSession(id: string) {
          const session = await this.inner.getSession(id);
          // Assignment (unlike spreading) runs the __proto__ setter instead of copying the key.
          const attributes: Record<string, unknown> = {};
          for (const [key, value] of Object.entries(session.attributes)) attributes[key] = value;
          return { ...session, attributes } as Session;
        }
      })(),
  ],
];

describe('describeStoreConformance catches a store with', () => {
  test.each(broken)('%s (in "%s")', async (_what, failingTest, createStore) => {
    const failed = await failures(createStore);
    const names = [...failed.keys()].map((name) => name.slice(PREFIX.length));
    expect(names.filter((name) => name.includes(failingTest))).toHaveLength(1);
  });
});
