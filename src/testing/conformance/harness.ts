// How conformance tests are registered and run: the options every group takes, and one test's
// life (a fresh store, the case, cleanup even when the case failed).
import type { Store } from '../../store.js';
import { fail } from '../assert.js';

/** Options of `describeStoreConformance` and of each conformance group. */
export interface StoreConformanceOptions {
  /** Registers one test: vitest/jest/node:test `test(name, fn)`. */
  test: (name: string, fn: () => Promise<void>) => unknown;
  /** Groups tests, e.g. vitest's `describe`. When omitted, names are prefixed instead. */
  describe?: (name: string, fn: () => void) => unknown;
  /** A fresh, empty store for each test. */
  createStore: () => Store | Promise<Store>;
  /** Persistent stores: close this store and open the same data again (enables reopen tests). */
  reopenStore?: (store: Store) => Store | Promise<Store>;
  /**
   * Called after each test with the last store instance (close it, remove its files).
   * @default calls `store.close()` when the store has one
   */
  destroyStore?: (store: Store) => void | Promise<void>;
  /**
   * Label for the group (or the prefix of every test name when `describe` is omitted). The store's
   * own `name` is not known when tests are registered (no store is created before a test runs).
   * @default 'Store conformance' (each group alone: 'Store conformance: <group>')
   */
  name?: string;
  /**
   * The optional Store members the store has, whose groups `describeStoreConformance` runs.
   * Every store made by `defineStore` has them all; a hand-written store without `getSummary`
   * passes `{ getSummary: false }`.
   * @default { getSummary: true }
   */
  capabilities?: { getSummary?: boolean };
}

/** What each conformance test gets: the current store, and a way to reopen it. */
export interface Context {
  readonly store: Store;
  /** Reopens the store (only called when `reopenStore` is given). */
  reopen(): Promise<Store>;
}

/** One conformance test. */
export interface Case {
  name: string;
  /** Runs only when the store can be reopened. */
  needsReopen?: boolean;
  run(context: Context): Promise<void>;
}

/** Registers `cases` under `label` (a describe block, or a prefix of each name). */
export function registerCases(options: StoreConformanceOptions, label: string, cases: readonly Case[]): void {
  const runnable = cases.filter((entry) => !entry.needsReopen || options.reopenStore);
  const register = (prefix: string) => {
    for (const entry of runnable) options.test(`${prefix}${entry.name}`, () => runCase(options, entry));
  };
  if (options.describe) options.describe(label, () => register(''));
  else register(`${label}: `);
}

async function runCase(options: StoreConformanceOptions, entry: Case): Promise<void> {
  let store = await options.createStore();
  const context: Context = {
    get store() {
      return store;
    },
    async reopen() {
      if (!options.reopenStore) return fail('reopen() called without a reopenStore option');
      store = await options.reopenStore(store);
      return store;
    },
  };
  let failure: { error: unknown } | undefined;
  try {
    await entry.run(context);
  } catch (error) {
    failure = { error };
  }
  try {
    if (options.destroyStore) await options.destroyStore(store);
    else await store.close?.();
  } catch (error) {
    // The test's own failure says more than a cleanup failure it may have caused.
    if (!failure) throw error;
  }
  if (failure) throw failure.error;
}
