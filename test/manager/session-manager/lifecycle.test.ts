// Session lifecycle through the façade: createSession validation, delete, waitStopped, close.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ErrorCode } from '../../../src/errors.js';
import type { SessionEvent } from '../../../src/events.js';
import { SessionManager } from '../../../src/manager/session-manager.js';
import { FailingStore } from '../../../src/testing/failing-store.js';
import { ScriptedRuntime, step } from '../../../src/testing/scripted-runtime.js';
import { deferred, expectCode, rejection } from '../../helpers/assertions.js';
import { collect, type StoreFixture, storeFixtures } from '../../helpers/stores.js';

describe.each(storeFixtures())('SessionManager lifecycle ($name)', (fixture: StoreFixture) => {
  const managers: SessionManager[] = [];
  const runtimes: ScriptedRuntime[] = [];
  let directory: string;

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'agent-sessions-lifecycle-'));
  });

  afterEach(async () => {
    for (const manager of managers.splice(0)) await manager.close();
    await fixture.cleanup();
    await rm(directory, { recursive: true, force: true });
    for (const scripted of runtimes.splice(0)) scripted.assertConsumed();
  });

  async function setup(options: { workingDirRoot?: string } = {}) {
    const scripted = new ScriptedRuntime();
    runtimes.push(scripted);
    const store = new FailingStore(await fixture.create());
    const manager = new SessionManager({ runtime: scripted.factory, store, ...options });
    managers.push(manager);
    return { manager, scripted, store };
  }

  describe('createSession', () => {
    test('createSession persists defaults and resolves to the stored session', async () => {
      const { manager } = await setup();
      const session = await manager.createSession();
      expect(session).toMatchObject({
        title: '',
        titleSource: 'none',
        starred: false,
        items: [],
        usage: { inputTokens: 0, outputTokens: 0, cost: 0 },
        safetyPolicy: '',
        permissions: { allow: [], ask: [], deny: [] },
        agentModelOverrides: {},
        customModelsUsed: [],
        attributes: {},
      });
      expect(await manager.getSession(session.id)).toEqual(session);
    });

    test.each(['', 'has space', '-leading', 'x'.repeat(129), '../escape'])(
      'createSession rejects the id %j with INVALID_ARGUMENT',
      async (id) => {
        const { manager, store } = await setup();
        expectCode(await rejection(manager.createSession({ id })), ErrorCode.INVALID_ARGUMENT);
        expect(store.callsOf('createSession')).toHaveLength(0);
      },
    );

    test('createSession rejects a taken id with SESSION_EXISTS', async () => {
      const { manager } = await setup();
      await manager.createSession({ id: 'taken' });
      expectCode(await rejection(manager.createSession({ id: 'taken' })), ErrorCode.SESSION_EXISTS);
    });

    test.each([
      ['relative', () => 'relative/dir'],
      ['with ..', (root: string) => `${root}/inside/../inside`],
      ['missing', (root: string) => join(root, 'missing')],
      ['a file', (root: string) => join(root, 'file.txt')],
      ['outside the root', (_root: string, outside: string) => outside],
      ['a symlink out of the root', (root: string) => join(root, 'escape')],
      ['under a symlink out of the root', (root: string) => join(root, 'escape', 'nested')],
    ])('createSession rejects a working dir %s with INVALID_WORKING_DIR before writing', async (_, path) => {
      const root = join(directory, 'root');
      const outside = join(directory, 'outside');
      await mkdir(join(root, 'inside'), { recursive: true });
      await mkdir(join(outside, 'nested'), { recursive: true });
      await writeFile(join(root, 'file.txt'), 'x');
      await symlink(outside, join(root, 'escape'));
      const { manager, store } = await setup({ workingDirRoot: root });
      expectCode(
        await rejection(manager.createSession({ workingDir: path(root, outside) })),
        ErrorCode.INVALID_WORKING_DIR,
      );
      expect(store.callsOf('createSession')).toHaveLength(0);
    });

    test('createSession accepts a working dir inside the root (directly or through an inner symlink)', async () => {
      const root = join(directory, 'root');
      await mkdir(join(root, 'project', 'src'), { recursive: true });
      await symlink(join(root, 'project'), join(root, 'link'));
      const { manager } = await setup({ workingDirRoot: root });
      const direct = await manager.createSession({ workingDir: join(root, 'project') });
      const linked = await manager.createSession({ workingDir: join(root, 'link', 'src') });
      expect(direct.workingDir).toBe(join(root, 'project'));
      expect(linked.workingDir).toBe(join(root, 'link', 'src'));
      expect((await manager.listSessions({ workingDir: join(root, 'project') })).sessions).toHaveLength(1);
    });

    test('createSession without workingDirRoot accepts any existing absolute directory', async () => {
      const { manager } = await setup();
      const session = await manager.createSession({ workingDir: directory });
      expect(session.workingDir).toBe(directory);
    });
  });

  describe('deleteSession, deleteSessions, waitStopped, close', () => {
    test('deleteSession cancels the turn, ends subscribers with session_exited, closes the runtime; a late event changes nothing', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      const reached = deferred();
      const gate = deferred();
      scripted.turn(async function* () {
        yield step.reply('partial');
        reached.resolve();
        await gate.promise; // ignores ctx.signal
        yield {
          type: 'message_added',
          message: { id: 'late', role: 'assistant', content: 'late', createdAt: new Date().toISOString() },
        };
      });
      const stream = await manager.runSession(id, { messages: ['go'] });
      const subscriber = collect(manager.streamEvents(id));
      await reached.promise;
      await manager.deleteSession(id);
      expect((await stream.done).stopReason).toBe('cancelled');
      const events: SessionEvent[] = await subscriber;
      expect(events.at(-1)).toMatchObject({ type: 'session_exited', reason: 'deleted' });
      expect(scripted.runtimes[0]?.closed).toBe(true);
      expectCode(await rejection(manager.getSession(id)), ErrorCode.SESSION_NOT_FOUND);
      gate.resolve();
      await manager.waitStopped(id, { timeoutMs: 10_000 });
      expectCode(await rejection(manager.getSession(id)), ErrorCode.SESSION_NOT_FOUND);
      expectCode(await rejection(manager.getSessionSnapshot(id)), ErrorCode.SESSION_NOT_FOUND);
      const late = manager.streamEvents(id)[Symbol.asyncIterator]();
      expectCode(await rejection(late.next()), ErrorCode.SESSION_NOT_FOUND);
      expect((await manager.listSessions()).sessions).toEqual([]);
      expectCode(
        await rejection(manager.runSession(id, { messages: ['again'] })),
        ErrorCode.SESSION_NOT_FOUND,
      );
    });

    test('deleteSession rejects an unknown id with SESSION_NOT_FOUND', async () => {
      const { manager } = await setup();
      expectCode(await rejection(manager.deleteSession('missing')), ErrorCode.SESSION_NOT_FOUND);
    });

    test('deleteSessions reports deleted and failed ids and never rejects', async () => {
      const { manager } = await setup();
      const one = await manager.createSession();
      const two = await manager.createSession();
      const result = await manager.deleteSessions([one.id, 'missing', 'bad id!', two.id]);
      expect(result.deleted).toEqual([one.id, two.id]);
      expect(result.failed.map((failure) => [failure.id, failure.error.code])).toEqual([
        ['missing', ErrorCode.SESSION_NOT_FOUND],
        ['bad id!', ErrorCode.INVALID_ARGUMENT],
      ]);
      expect((await manager.listSessions()).sessions).toEqual([]);
    });

    test('waitStopped resolves at once for an idle session and after a cancelled turn has stopped', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession();
      await manager.waitStopped(id, { timeoutMs: 10_000 });
      scripted.turn([step.hold('h'), step.reply('never')]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      await scripted.waitUntilHeld('h');
      expect(await manager.cancelTurn(id)).toBe(true);
      await manager.waitStopped(id, { timeoutMs: 10_000 });
      expect(scripted.turns[0]?.outcome).not.toBe('running');
      expect((await stream.done).stopReason).toBe('cancelled');
      expectCode(await rejection(manager.waitStopped(id, { timeoutMs: -1 })), ErrorCode.INVALID_ARGUMENT);
    });

    test('close cancels turns, ends subscribers, closes runtimes and the store; later calls reject with CLOSED', async () => {
      const { manager, scripted, store } = await setup();
      const { id } = await manager.createSession();
      scripted.turn([step.hold('h'), step.reply('never')]);
      const stream = await manager.runSession(id, { messages: ['go'] });
      const subscriber = collect(manager.streamEvents(id));
      await scripted.waitUntilHeld('h');
      await manager.close();
      expect((await stream.done).stopReason).toBe('cancelled');
      expect((await subscriber).at(-1)).toMatchObject({ type: 'session_exited', reason: 'closed' });
      expect(scripted.runtimes[0]?.closed).toBe(true);
      expect(store.callsOf('close')).toHaveLength(1);
      await manager.close();
      expect(store.callsOf('close')).toHaveLength(1);
      const calls: Array<() => Promise<unknown>> = [
        () => manager.createSession(),
        () => manager.getSession(id),
        () => manager.listSessions(),
        () => manager.runSession(id, { messages: ['x'] }),
        () => manager.deleteSession(id),
        () => manager.setSessionStarred(id, true),
        () => manager.forkSession(id),
        () => manager.exportSessions([id]),
        () => manager.cancelTurn(id),
      ];
      for (const call of calls) expectCode(await rejection(call()), ErrorCode.CLOSED);
      expectCode(await rejection(manager.streamEvents(id)[Symbol.asyncIterator]().next()), ErrorCode.CLOSED);
    });
  });
});
