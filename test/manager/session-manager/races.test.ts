// Regression tests for races and leaks found in review of the SessionManager core: concurrent model
// switches, a rollback beside a setSessionModel, a policy edit racing a cache load, memory kept by a
// refused call, and a repeated close().
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, test } from 'vitest';
import { ErrorCode } from '../../../src/errors.js';
import type { SessionManager } from '../../../src/manager/session-manager.js';
import type { Session } from '../../../src/schemas.js';
import { MemoryStore } from '../../../src/stores/memory.js';
import { BlockingStore } from '../../../src/testing/blocking-store.js';
import type { ScriptedRuntime } from '../../../src/testing/scripted-runtime.js';
import { type Deferred, deferred, expectRejectsWithCode } from '../../helpers/assertions.js';
import { startManager } from '../../helpers/manager.js';

/** Lets every pending microtask run (MemoryStore and ScriptedRuntime do no I/O). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** A MemoryStore whose next getSession reads at once but resolves only when the test says so. */
class LateReadStore extends MemoryStore {
  hold: { served: Deferred<void>; resume: Deferred<void> } | undefined;
  /** A weak reference to the items of every session read, to see whether the manager keeps them. */
  readonly reads: WeakRef<Session['items']>[] = [];

  override async getSession(id: string): Promise<Session> {
    const session = await super.getSession(id);
    this.reads.push(new WeakRef(session.items));
    const hold = this.hold;
    if (hold) {
      this.hold = undefined;
      hold.served.resolve();
      await hold.resume.promise;
    }
    return session;
  }
}

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
  test('setSessionSafetyPolicy that lands while a turn reads the session is seen by that turn and the next', async () => {
    const store = new LateReadStore();
    const parts = startManager(store);
    started.push(parts);
    const { manager, scripted } = parts;
    const { id } = await manager.createSession();
    const served = deferred();
    const resume = deferred();
    store.hold = { served, resume };
    scripted.reply('one').reply('two');
    const running = manager.runSession(id, { messages: ['first'] });
    await served.promise; // the turn read the session before the edit…
    await manager.setSessionSafetyPolicy(id, 'restricted');
    resume.resolve(); // …and gets the read after the edit was stored
    await (await running).done;
    await (await manager.runSession(id, { messages: ['second'] })).done;
    expect(scripted.turnsOf(id).map((turn) => turn.session.safetyPolicy)).toEqual([
      'restricted',
      'restricted',
    ]);
  });
  test.each([
    ['runSession', (manager: SessionManager, id: string) => manager.runSession(id, { messages: ['hi'] })],
    ['getAvailableModels', (manager: SessionManager, id: string) => manager.getAvailableModels(id)],
    ['setSessionModel', (manager: SessionManager, id: string) => manager.setSessionModel(id, 'm')],
  ])('%s refused by a failing runtime factory keeps no copy of the session in memory', async (_, call) => {
    const gc = exposeGc();
    const store = new LateReadStore();
    const parts = startManager(store);
    started.push(parts);
    const { manager, scripted } = parts;
    const { id } = await manager.createSession({ items: [{ kind: 'message', message: big() }] });
    scripted.failNextFactory(new Error('no runtime'));
    await expectRejectsWithCode(call(manager, id), ErrorCode.RUNTIME_FAILED);
    expect(store.reads.length).toBeGreaterThan(0);
    await settle();
    gc();
    expect(store.reads.every((ref) => ref.deref() === undefined)).toBe(true);
  });
  test('a second close() resolves only after the first closed the runtimes and the store', async () => {
    const store = new BlockingStore(new MemoryStore());
    const parts = startManager(store);
    const { manager, scripted } = parts;
    const { id } = await manager.createSession();
    scripted.reply('ok');
    await (await manager.runSession(id, { messages: ['hi'] })).done;
    store.block('close');
    const first = manager.close();
    let secondDone = false;
    const second = manager.close().then(() => {
      secondDone = true;
    });
    await store.waitForBlocked('close');
    await settle();
    expect(secondDone).toBe(false);
    store.release('close');
    await Promise.all([first, second]);
    expect(scripted.closed).toBe(1);
    scripted.assertConsumed();
  });
});

function big() {
  return {
    id: 'msg-big',
    role: 'user' as const,
    content: 'x'.repeat(1000),
    createdAt: new Date().toISOString(),
  };
}
