// Session lifecycle (SPEC §6): createSession validation, fork, export/import, delete, waitStopped, close.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { ExportBundle, Session } from '../../src/schemas.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { deferred, expectCode, rejection } from '../helpers/assertions.js';
import { collect, type StoreFixture, storeFixtures } from '../helpers/stores.js';

const contents = (session: Session) =>
  session.items.map((item) =>
    item.kind === 'message' ? `${item.message.role}:${item.message.content}` : item.kind,
  );

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

  /** A session with three user turns: u0 a0 u1 a1 u2 a2. */
  async function conversation(manager: SessionManager, scripted: ScriptedRuntime, title = 'Chat') {
    const session = await manager.createSession({ title, attributes: { team: 'core' }, agent: 'main' });
    for (let turn = 0; turn < 3; turn++) {
      scripted.reply(`a${turn}`, { usage: { inputTokens: 1, outputTokens: 1 } });
      await (await manager.runSession(session.id, { messages: [`u${turn}`] })).done;
    }
    return manager.getSession(session.id);
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

  describe('forkSession', () => {
    test('forkSession keeps the items before the Nth user message, titles it and links the parent', async () => {
      const { manager, scripted } = await setup();
      const parent = await conversation(manager, scripted);
      const fork = await manager.forkSession(parent.id, { beforeUserMessage: 1 });
      expect(contents(fork)).toEqual(['user:u0', 'assistant:a0']);
      expect(fork).toMatchObject({
        title: 'Chat (fork 1)',
        parentId: parent.id,
        forkedFrom: { sessionId: parent.id, beforeUserMessage: 1 },
        agent: 'main',
        attributes: { team: 'core' },
      });
      expect(fork.id).not.toBe(parent.id);
      expect(await manager.getSession(fork.id)).toEqual(fork);
      const first = await manager.forkSession(parent.id, { beforeUserMessage: 0 });
      expect(first.items).toEqual([]);
    });

    test('forkSession without beforeUserMessage copies every item and leaves the parent untouched', async () => {
      const { manager, scripted } = await setup();
      const parent = await conversation(manager, scripted);
      const fork = await manager.forkSession(parent.id);
      expect(fork.items).toEqual(parent.items);
      expect(fork.forkedFrom).toEqual({ sessionId: parent.id });
      expect(await manager.getSession(parent.id)).toEqual(parent);
      // The fork is a session of its own: a turn on it leaves the parent alone.
      scripted.reply('fork answer');
      await (await manager.runSession(fork.id, { messages: ['in the fork'] })).done;
      expect(await manager.getSession(parent.id)).toEqual(parent);
      expect(contents(await manager.getSession(fork.id)).slice(-2)).toEqual([
        'user:in the fork',
        'assistant:fork answer',
      ]);
    });

    test.each([-1, 3, 1.5, Number.NaN])(
      'forkSession rejects beforeUserMessage %s with INVALID_ARGUMENT (3 user messages)',
      async (cut) => {
        const { manager, scripted, store } = await setup();
        const parent = await conversation(manager, scripted);
        const creates = store.callsOf('createSession').length;
        expectCode(
          await rejection(manager.forkSession(parent.id, { beforeUserMessage: cut })),
          ErrorCode.INVALID_ARGUMENT,
        );
        expect(store.callsOf('createSession')).toHaveLength(creates);
      },
    );

    test('forkSession rejects any beforeUserMessage on a session without user messages', async () => {
      const { manager } = await setup();
      const { id } = await manager.createSession();
      expectCode(
        await rejection(manager.forkSession(id, { beforeUserMessage: 0 })),
        ErrorCode.INVALID_ARGUMENT,
      );
      expectCode(await rejection(manager.forkSession('missing')), ErrorCode.SESSION_NOT_FOUND);
    });

    test('forkSession numbers forks 1 + the highest number used for that parent', async () => {
      const { manager, scripted } = await setup();
      const parent = await conversation(manager, scripted);
      const one = await manager.forkSession(parent.id);
      const two = await manager.forkSession(parent.id);
      expect([one.title, two.title]).toEqual(['Chat (fork 1)', 'Chat (fork 2)']);
      await manager.deleteSession(one.id);
      expect((await manager.forkSession(parent.id)).title).toBe('Chat (fork 3)');
      // Another session with the same title has forks of its own, numbered independently.
      const namesake = await manager.createSession({ title: 'Chat' });
      expect((await manager.forkSession(namesake.id)).title).toBe('Chat (fork 1)');
      expect((await manager.forkSession(parent.id)).title).toBe('Chat (fork 4)');
    });
  });

  describe('exportSessions and importSessions', () => {
    async function freshManager() {
      const scripted = new ScriptedRuntime();
      runtimes.push(scripted);
      const manager = new SessionManager({ runtime: scripted.factory, store: await fixture.create() });
      managers.push(manager);
      return manager;
    }

    test('exportSessions then importSessions into a fresh store gives deep-equal sessions', async () => {
      const { manager, scripted } = await setup();
      const parent = await conversation(manager, scripted);
      await manager.setSessionStarred(parent.id, true);
      const fork = await manager.forkSession(parent.id, { beforeUserMessage: 2 });
      const bundle = await manager.exportSessions([parent.id, fork.id]);
      expect(bundle.version).toBe(1);
      const exported = [await manager.getSession(parent.id), await manager.getSession(fork.id)];
      expect(bundle.sessions).toEqual(exported);
      const other = await freshManager();
      const result = await other.importSessions(structuredClone(bundle), { onConflict: 'error' });
      expect(result).toEqual({ imported: [parent.id, fork.id], skipped: [], replaced: [] });
      expect([await other.getSession(parent.id), await other.getSession(fork.id)]).toEqual(exported);
    });

    test('exportSessions rejects an unknown id with SESSION_NOT_FOUND', async () => {
      const { manager } = await setup();
      const { id } = await manager.createSession();
      expectCode(await rejection(manager.exportSessions([id, 'missing'])), ErrorCode.SESSION_NOT_FOUND);
    });

    async function conflictSetup() {
      const { manager, store } = await setup();
      const existing = await manager.createSession({ id: 'existing', title: 'Local' });
      const source = await freshManager();
      await source.createSession({ id: 'existing', title: 'Imported' });
      await source.createSession({ id: 'brand-new', title: 'New' });
      const bundle = await source.exportSessions(['brand-new', 'existing']);
      return { manager, store, existing, bundle };
    }

    test("importSessions with onConflict 'error' and one existing id writes nothing", async () => {
      const { manager, store, existing, bundle } = await conflictSetup();
      store.calls.length = 0;
      expectCode(
        await rejection(manager.importSessions(bundle, { onConflict: 'error' })),
        ErrorCode.SESSION_EXISTS,
      );
      expect(store.calls.filter((call) => call.method !== 'getSession')).toEqual([]);
      expect(await manager.getSession('existing')).toEqual(existing);
      expectCode(await rejection(manager.getSession('brand-new')), ErrorCode.SESSION_NOT_FOUND);
    });

    test("importSessions with onConflict 'skip' keeps the existing session and imports the rest", async () => {
      const { manager, existing, bundle } = await conflictSetup();
      expect(await manager.importSessions(bundle, { onConflict: 'skip' })).toEqual({
        imported: ['brand-new'],
        skipped: ['existing'],
        replaced: [],
      });
      expect(await manager.getSession('existing')).toEqual(existing);
      expect(await manager.getSession('brand-new')).toEqual(bundle.sessions[0]);
    });

    test("importSessions with onConflict 'replace' replaces the existing session, also for the next turn", async () => {
      const { manager, bundle } = await conflictSetup();
      const scripted = runtimes[0] as ScriptedRuntime;
      scripted.reply('local answer');
      await (await manager.runSession('existing', { messages: ['local question'] })).done;
      const imported = structuredClone(bundle);
      const replacement = imported.sessions[1] as Session;
      replacement.items = [
        {
          kind: 'message',
          message: { id: 'm1', role: 'user', content: 'imported question', createdAt: replacement.createdAt },
        },
      ];
      expect(await manager.importSessions(imported, { onConflict: 'replace' })).toEqual({
        imported: ['brand-new', 'existing'],
        skipped: [],
        replaced: ['existing'],
      });
      expect(await manager.getSession('existing')).toEqual(replacement);
      scripted.reply('ok');
      await (await manager.runSession('existing', { messages: ['next'] })).done;
      expect(scripted.turns.at(-1)?.messages.map((message) => message.content)).toEqual([
        'imported question',
        'next',
      ]);
    });

    test('importSessions with one invalid session in the bundle writes nothing', async () => {
      const { manager, store } = await setup();
      const source = await freshManager();
      await source.createSession({ id: 'good' });
      await source.createSession({ id: 'bad' });
      const bundle = await source.exportSessions(['good', 'bad']);
      (bundle.sessions[1] as { titleSource: string }).titleSource = 'invented';
      store.calls.length = 0;
      expectCode(
        await rejection(manager.importSessions(bundle, { onConflict: 'replace' })),
        ErrorCode.INVALID_ARGUMENT,
      );
      expect(store.calls).toEqual([]);
      const duplicated: ExportBundle = await source.exportSessions(['good', 'good']);
      expectCode(
        await rejection(manager.importSessions(duplicated, { onConflict: 'skip' })),
        ErrorCode.INVALID_ARGUMENT,
      );
      expectCode(
        // biome-ignore lint/suspicious/noExplicitAny: invalid input on purpose
        await rejection(manager.importSessions(duplicated, { onConflict: 'merge' as any })),
        ErrorCode.INVALID_ARGUMENT,
      );
      expect((await manager.listSessions()).sessions).toEqual([]);
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
