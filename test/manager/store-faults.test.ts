// Issue 10, problem 3: store faults. Every error out of a public method is an AgentSessionsError,
// also from a hand-written store that throws plain errors; a write that fails leaves the record
// and the runtime agreeing at the next turn start.
import { expect, test } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { collect } from '../helpers/stores.js';

/** A hand-written store (not made by defineStore) whose chosen method throws a plain Error once. */
function handWritten(inner: Store, failing: Set<keyof Store>): Store {
  const fail = <T>(name: keyof Store, run: () => Promise<T>): Promise<T> => {
    if (failing.delete(name)) return Promise.reject(new Error(`disk on fire (${String(name)})`));
    return run();
  };
  return {
    name: 'hand-written',
    createSession: (session) => fail('createSession', () => inner.createSession(session)),
    getSession: (id) => fail('getSession', () => inner.getSession(id)),
    listSessions: (options) => fail('listSessions', () => inner.listSessions(options)),
    updateSession: (id, patch) => fail('updateSession', () => inner.updateSession(id, patch)),
    appendItems: (id, items) => fail('appendItems', () => inner.appendItems(id, items)),
    updateMessage: (id, messageId, message) =>
      fail('updateMessage', () => inner.updateMessage(id, messageId, message)),
    deleteSession: (id) => fail('deleteSession', () => inner.deleteSession(id)),
  };
}

test.each<[keyof Store, (manager: SessionManager, id: string) => Promise<unknown>]>([
  ['createSession', (manager) => manager.createSession()],
  ['getSession', (manager, id) => manager.getSession(id)],
  ['listSessions', (manager) => manager.listSessions()],
  ['updateSession', (manager, id) => manager.setSessionStarred(id, true)],
  ['appendItems', (manager, id) => manager.runSession(id, { messages: ['hi'] })],
  ['appendItems', (manager, id) => manager.addMessage(id, 'note')],
  ['deleteSession', (manager, id) => manager.deleteSession(id)],
])(
  'a plain Error thrown by %s of a hand-written store reaches the caller as STORE_UNAVAILABLE',
  async (method, call) => {
    const failing = new Set<keyof Store>();
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({
      runtime: scripted.factory,
      store: handWritten(new MemoryStore(), failing),
    });
    const { id } = await manager.createSession();
    failing.add(method);
    const error = await call(manager, id).then(
      () => undefined,
      (rejected: unknown) => rejected,
    );
    expect(AgentSessionsError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'STORE_UNAVAILABLE',
      cause: expect.objectContaining({ message: expect.stringContaining('disk on fire') }),
    });
    await manager.close();
  },
);

test('a failed user-message write rejects runSession with a typed error and the next turn runs normally', async () => {
  const failing = new Set<keyof Store>();
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({
    runtime: scripted.factory,
    store: handWritten(new MemoryStore(), failing),
  });
  const { id } = await manager.createSession();
  failing.add('appendItems');
  await expect(manager.runSession(id, { messages: ['lost'] })).rejects.toMatchObject({
    code: 'STORE_UNAVAILABLE',
  });
  expect((await manager.getSession(id)).items).toEqual([]);
  scripted.reply('ok');
  await collect(await manager.runSession(id, { messages: ['kept'] }));
  expect(scripted.turns[0]?.messages.map((message) => message.content)).toEqual(['kept']);
  scripted.assertConsumed();
  await manager.close();
});
