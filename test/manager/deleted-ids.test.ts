// Issue 10: deleted ids are remembered only while work of the deleted session may still run.
import { expect, test } from 'vitest';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';

test('a session deleted here and then restored in the store by another process runs turns again once its work ended', async () => {
  const store = new MemoryStore();
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store });
  const session = await manager.createSession({ title: 'kept elsewhere' });
  await manager.deleteSession(session.id);
  await expect(manager.getSession(session.id)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  // Another instance (an import, a restore) writes the same session again, straight to the store.
  await store.createSession(session);
  await manager.waitStopped(session.id, { timeoutMs: 1_000 });
  await new Promise((resolve) => setImmediate(resolve));
  await expect(manager.getSession(session.id)).resolves.toMatchObject({ title: 'kept elsewhere' });
  scripted.reply('welcome back');
  const stream = await manager.runSession(session.id, { messages: ['hello again'] });
  await expect(stream.done).resolves.toMatchObject({ stopReason: 'end_turn' });
  await manager.close();
  scripted.assertConsumed();
});

test('a deleted session stays refused while its turn is still winding down', async () => {
  const store = new MemoryStore();
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store });
  const session = await manager.createSession();
  scripted.turn([step.hold('h'), step.reply('late')]);
  const stream = await manager.runSession(session.id, { messages: ['hi'] }, { onDetach: 'continue' });
  await scripted.waitUntilHeld('h');
  await manager.deleteSession(session.id);
  await expect(manager.runSession(session.id, { messages: ['again'] })).rejects.toMatchObject({
    code: 'SESSION_NOT_FOUND',
  });
  await stream.done;
  await manager.close();
});
