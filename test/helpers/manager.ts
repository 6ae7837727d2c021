// The usual manager under test: a ScriptedRuntime and a SessionManager over a fixture's store.
import { SessionManager } from '../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../src/manager/types.js';
import type { Store } from '../../src/store.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
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
