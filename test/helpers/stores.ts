// Store factories for manager tests: every manager behaviour is tested on MemoryStore and on a
// FileStore in a fresh temporary directory.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../../src/store.js';
import { FileStore } from '../../src/stores/file/store.js';
import { MemoryStore } from '../../src/stores/memory.js';

export interface StoreFixture {
  name: string;
  /** A fresh, empty store. */
  create(): Promise<Store>;
  /** Closes `store` and opens the same data again (a restart); MemoryStore keeps the instance. */
  reopen(store: Store): Promise<Store>;
  /** Removes what `create` made. */
  cleanup(): Promise<void>;
}

function memoryFixture(): StoreFixture {
  return {
    name: 'MemoryStore',
    async create() {
      return new MemoryStore();
    },
    async reopen(store) {
      return store;
    },
    async cleanup() {},
  };
}

function fileFixture(): StoreFixture {
  const directories: string[] = [];
  return {
    name: 'FileStore',
    async create() {
      const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-manager-'));
      directories.push(directory);
      return new FileStore({ directory, durability: 'buffered' });
    },
    async reopen(store) {
      await store.close?.();
      return new FileStore({ directory: (store as FileStore).directory, durability: 'buffered' });
    },
    async cleanup() {
      await Promise.all(
        directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })),
      );
    },
  };
}

/** One fixture per store; use with `describe.each(storeFixtures())('… ($name)', …)`. */
export function storeFixtures(): StoreFixture[] {
  return [memoryFixture(), fileFixture()];
}

/** Collects a stream's events. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const events: T[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}
