// Regression tests for races and leaks found in review of the SessionManager core (SPEC §4–§6).
import { afterEach, describe, expect, test } from 'vitest';
import type { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { BlockingStore } from '../../src/testing/blocking-store.js';
import type { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { startManager } from '../helpers/manager.js';

/** Lets every pending microtask run (MemoryStore and ScriptedRuntime do no I/O). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('SessionManager review regressions', () => {
  const started: Array<{ manager: SessionManager; scripted: ScriptedRuntime }> = [];

  afterEach(async () => {
    for (const { manager, scripted } of started.splice(0)) {
      await manager.close();
      scripted.assertConsumed();
    }
  });

  test('runSession with a model and a concurrent setSessionModel for another agent lose neither override', async () => {
    const store = new BlockingStore(new MemoryStore());
    const parts = startManager(store);
    started.push(parts);
    const { manager, scripted } = parts;
    const { id } = await manager.createSession();
    store.block('updateSession');
    const setting = manager.setSessionModel(id, 'model-a');
    await store.waitForBlocked('updateSession');
    scripted.reply('ok');
    const running = manager.runSession(id, { messages: ['hi'], agent: 'b', model: 'model-b' });
    await settle();
    store.release('updateSession');
    await setting;
    await (await running).done;
    expect((await manager.getSession(id)).agentModelOverrides).toEqual({ default: 'model-a', b: 'model-b' });
    expect(scripted.currentModel(id, 'default')).toBe('model-a');
    expect(scripted.currentModel(id, 'b')).toBe('model-b');
  });

  test('runSession refused after its override rolls back only its own change, keeping a setSessionModel made meanwhile', async () => {
    const store = new BlockingStore(new MemoryStore());
    const parts = startManager(store);
    started.push(parts);
    const { manager, scripted } = parts;
    const { id } = await manager.createSession();
    store.block('appendItems');
    const running = manager.runSession(id, { messages: ['hi'], model: 'acme/one' });
    await store.waitForBlocked('appendItems');
    await manager.setSessionModel(id, 'acme/two');
    store.rejectBlocked('appendItems', new Error('disk full'));
    store.unblock('appendItems');
    await expect(running).rejects.toThrow('disk full');
    const session = await manager.getSession(id);
    expect(session.agentModelOverrides).toEqual({ default: 'acme/two' });
    expect(session.customModelsUsed).toEqual(['acme/one', 'acme/two']);
    expect(scripted.currentModel(id, 'default')).toBe('acme/two');
  });
});
