// The façade's one guard (see src/manager/session-manager.ts): every call on a session checks the
// manager is open and the id is valid before anything reaches a store or a runtime.
import { afterEach, describe, expect, test } from 'vitest';
import { SessionManager } from '../../../src/manager/session-manager.js';
import { MemoryStore } from '../../../src/stores/memory.js';
import { FailingStore } from '../../../src/testing/failing-store.js';
import { ScriptedRuntime } from '../../../src/testing/scripted-runtime.js';
import { expectCode, rejection } from '../../helpers/assertions.js';

type Call = (manager: SessionManager, id: string) => Promise<unknown>;

const sessionCalls: Array<[string, Call]> = [
  ['getSession', (manager, id) => manager.getSession(id)],
  ['runSession', (manager, id) => manager.runSession(id, { messages: ['hi'] })],
  ['cancelTurn', (manager, id) => manager.cancelTurn(id)],
  ['steerSession', (manager, id) => manager.steerSession(id, ['hi'])],
  ['followUpSession', (manager, id) => manager.followUpSession(id, ['hi'])],
  ['resumeSession', (manager, id) => manager.resumeSession(id, { confirmation: 'approve' })],
  ['resumeElicitation', (manager, id) => manager.resumeElicitation(id, { action: 'accept' })],
  ['getSessionSnapshot', (manager, id) => manager.getSessionSnapshot(id)],
  ['setSessionModel', (manager, id) => manager.setSessionModel(id, 'm')],
  ['getAvailableModels', (manager, id) => manager.getAvailableModels(id)],
  ['updateSessionTitle', (manager, id) => manager.updateSessionTitle(id, 't')],
  ['setSessionStarred', (manager, id) => manager.setSessionStarred(id, true)],
  [
    'updateSessionPermissions',
    (manager, id) => manager.updateSessionPermissions(id, { allow: [], ask: [], deny: [] }),
  ],
  ['setSessionSafetyPolicy', (manager, id) => manager.setSessionSafetyPolicy(id, 'strict')],
  ['toggleToolApproval', (manager, id) => manager.toggleToolApproval(id)],
  ['addMessage', (manager, id) => manager.addMessage(id, 'hi')],
  ['updateMessage', (manager, id) => manager.updateMessage(id, 'm1', { content: 'x' })],
  ['addSummary', (manager, id) => manager.addSummary(id, { summary: 's', firstKeptItem: 0 })],
  ['forkSession', (manager, id) => manager.forkSession(id)],
  ['deleteSession', (manager, id) => manager.deleteSession(id)],
  ['streamEvents', (manager, id) => manager.streamEvents(id)[Symbol.asyncIterator]().next()],
];

const otherCalls: Array<[string, (manager: SessionManager) => Promise<unknown>]> = [
  ['createSession', (manager) => manager.createSession()],
  ['listSessions', (manager) => manager.listSessions()],
  ['exportSessions', (manager) => manager.exportSessions([])],
  [
    'importSessions',
    (manager) =>
      manager.importSessions(
        { version: 1, exportedAt: new Date().toISOString(), sessions: [] },
        {
          onConflict: 'error',
        },
      ),
  ],
  ['deleteSessions', (manager) => manager.deleteSessions([])],
];

describe('SessionManager guard', () => {
  let manager: SessionManager;
  let store: FailingStore;

  afterEach(async () => {
    await manager.close();
  });

  function start() {
    store = new FailingStore(new MemoryStore());
    manager = new SessionManager({ runtime: new ScriptedRuntime().factory, store });
  }

  test.each(sessionCalls)(
    '%s rejects an invalid session id with INVALID_ARGUMENT before any store call',
    async (_, call) => {
      start();
      expectCode(await rejection(call(manager, 'not a valid id!')), 'INVALID_ARGUMENT');
      expect(store.calls).toEqual([]);
    },
  );

  test.each(sessionCalls)('%s rejects with CLOSED after close()', async (_, call) => {
    start();
    const { id } = await manager.createSession();
    await manager.close();
    store.calls.length = 0;
    expectCode(await rejection(call(manager, id)), 'CLOSED');
    expect(store.calls).toEqual([]);
  });

  test.each(otherCalls)('%s rejects with CLOSED after close()', async (_, call) => {
    start();
    await manager.close();
    store.calls.length = 0;
    expectCode(await rejection(call(manager)), 'CLOSED');
    expect(store.calls).toEqual([]);
  });
});
