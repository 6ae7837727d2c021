// Issue 10: streamEvents refuses an unknown session at once, without waiting for an event.
import { expect, test } from 'vitest';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';

test('streamEvents(ready) rejects with SESSION_NOT_FOUND for an unknown session, and the first next() too', async () => {
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store: new MemoryStore() });
  const stream = manager.streamEvents('missing');
  await expect(stream.ready).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  await expect(stream[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  await manager.close();
});

test('streamEvents(ready) resolves for an idle existing session while its first next() still waits for an event', async () => {
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store: new MemoryStore() });
  const { id } = await manager.createSession();
  const controller = new AbortController();
  const stream = manager.streamEvents(id, { signal: controller.signal });
  await expect(stream.ready).resolves.toBeUndefined();
  const iterator = stream[Symbol.asyncIterator]();
  let settled = false;
  const first = iterator.next().then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let index = 0; index < 10; index++) await new Promise((resolve) => setImmediate(resolve));
  expect(settled).toBe(false);
  controller.abort();
  await first;
  await iterator.return?.();
  await manager.close();
});

test('streamEvents(ready) rejects for a session deleted by this manager', async () => {
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store: new MemoryStore() });
  const { id } = await manager.createSession();
  await manager.deleteSession(id);
  await expect(manager.streamEvents(id).ready).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  await manager.close();
});
