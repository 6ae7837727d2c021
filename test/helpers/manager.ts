// The usual manager under test: a ScriptedRuntime and a SessionManager over a fixture's store.
import { afterEach, expect, vi } from 'vitest';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../src/manager/types.js';
import type { Store } from '../../src/store.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime, type ScriptedRuntimeOptions } from '../../src/testing/scripted-runtime.js';
import type { StoreFixture } from './stores.js';

export interface ManagerParts<S extends Store> {
  store: S;
  scripted: ScriptedRuntime;
  manager: SessionManager;
}

/** A new ScriptedRuntime and a SessionManager running it on `store`, with `options` added. */
export function startManager<S extends Store>(
  store: S,
  options: Omit<SessionManagerOptions, 'runtime' | 'store'> = {},
): ManagerParts<S> {
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store, ...options });
  return { store, scripted, manager };
}

/** Closes the manager, removes the fixture's stores, then checks the script was used up. */
export async function closeManager(
  fixture: StoreFixture,
  { manager, scripted }: Pick<ManagerParts<Store>, 'manager' | 'scripted'>,
): Promise<void> {
  await manager.close();
  await fixture.cleanup();
  scripted.assertConsumed();
}

/** Options of the setup {@link useScriptedManagers} returns. */
export type ScriptedManagerOptions = Partial<SessionManagerOptions> & {
  /** Options of the ScriptedRuntime. */
  scripted?: ScriptedRuntimeOptions;
  /** Hand the manager a FailingStore around the fixture's store (it is returned either way). */
  failing?: boolean;
};

/**
 * Registers an `afterEach` that closes every manager made, cleans the fixture and checks every
 * script was used up. Returns `setup` (a new ScriptedRuntime and SessionManager on a fresh store of
 * the fixture) and the lists the cleanup reads, for a test that makes its own manager or runtime.
 */
export function useScriptedManagers(fixture: StoreFixture) {
  const managers: SessionManager[] = [];
  const runtimes: ScriptedRuntime[] = [];

  afterEach(async () => {
    vi.useRealTimers();
    for (const manager of managers.splice(0)) await manager.close();
    await fixture.cleanup();
    for (const scripted of runtimes.splice(0)) scripted.assertConsumed();
  });

  async function setup(options: ScriptedManagerOptions = {}) {
    const { scripted: scriptedOptions, failing, ...rest } = options;
    const scripted = new ScriptedRuntime(scriptedOptions);
    runtimes.push(scripted);
    const inner = await fixture.create();
    const failingStore = new FailingStore(inner);
    const store: Store = failing ? failingStore : inner;
    const manager = new SessionManager({ runtime: scripted.factory, store, ...rest });
    managers.push(manager);
    return { manager, scripted, store, inner, failingStore };
  }
  return { setup, managers, runtimes };
}

/**
 * Records what must not change when a call is refused (the record, the event log's last seq and
 * the runtime's turns) and returns a check that it did not.
 */
export async function observeUnchanged(
  manager: SessionManager,
  store: Store,
  scripted: ScriptedRuntime,
  id: string,
): Promise<() => Promise<void>> {
  const before = {
    session: await store.getSession(id),
    lastEventSeq: (await manager.getSessionSnapshot(id)).lastEventSeq,
    turns: scripted.turns.length,
  };
  return async () => {
    expect(await store.getSession(id)).toEqual(before.session);
    expect((await manager.getSessionSnapshot(id)).lastEventSeq).toBe(before.lastEventSeq);
    expect(scripted.turns.length).toBe(before.turns);
  };
}
