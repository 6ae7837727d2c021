// Fork, export and import through the manager (see src/manager/portability.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { DEFAULT_INPUT_LIMITS } from '../../src/manager/input.js';
import { Portability } from '../../src/manager/portability.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { SessionRecords } from '../../src/manager/session-records.js';
import type { ExportBundle, Session } from '../../src/schemas.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { expectCode, expectRejectsWithCode, rejection } from '../helpers/assertions.js';
import { sessionRecord } from '../helpers/sessions.js';
import { type StoreFixture, storeFixtures } from '../helpers/stores.js';

const contents = (session: Session) =>
  session.items.map((item) =>
    item.kind === 'message' ? `${item.message.role}:${item.message.content}` : item.kind,
  );

describe.each(storeFixtures())('portability ($name)', (fixture: StoreFixture) => {
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
      // Reads only: the existence checks (summaries) and nothing written.
      expect(
        store.calls.filter((call) => call.method !== 'getSession' && call.method !== 'getSummary'),
      ).toEqual([]);
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
});

describe('Portability', () => {
  /** A MemoryStore that counts whole-session reads per id. */
  class CountingStore extends MemoryStore {
    readonly reads: string[] = [];
    override async getSession(id: string): Promise<Session> {
      this.reads.push(id);
      return super.getSession(id);
    }
  }

  async function setup() {
    const store = new CountingStore();
    const created: string[] = [];
    const deleted: string[] = [];
    const portability = new Portability({
      records: new SessionRecords(store),
      created: (session) => {
        created.push(session.id);
      },
      limits: DEFAULT_INPUT_LIMITS,
      deleteSession: async (id) => {
        deleted.push(id);
        await store.deleteSession(id);
      },
    });
    return { store, created, deleted, portability };
  }

  test('fork numbering reads only the fork candidates from the highest number down, until one of this parent', async () => {
    const { store, portability, created } = await setup();
    await store.createSession(sessionRecord('parent', { title: 'Chat' }));
    await store.createSession(sessionRecord('other', { title: 'Chat' }));
    for (const [id, number, parentId] of [
      ['f1', 1, 'parent'],
      ['f2', 2, 'parent'],
      ['f3', 3, 'parent'],
      ['o4', 4, 'other'],
      ['o5', 5, 'other'],
    ] as const) {
      await store.createSession(sessionRecord(id, { title: `Chat (fork ${number})`, parentId }));
    }
    await store.createSession(sessionRecord('unrelated', { title: 'Notes' }));
    store.reads.length = 0;
    const fork = await portability.fork('parent');
    expect(fork.title).toBe('Chat (fork 4)');
    // The parent, then o5, o4 (another parent's) and f3, which decides; f1, f2 and the rest unread.
    expect(store.reads).toEqual(['parent', 'o5', 'o4', 'f3']);
    expect(created).toEqual([fork.id]);
  });

  test('fork of a parent without forks is number 1 and reads nothing but the parent', async () => {
    const { store, portability } = await setup();
    await store.createSession(sessionRecord('parent', { title: '' }));
    store.reads.length = 0;
    expect((await portability.fork('parent')).title).toBe('Untitled (fork 1)');
    expect(store.reads).toEqual(['parent']);
  });

  test("importSessions with 'replace' deletes through the manager before creating; 'error' checks every id first", async () => {
    const { store, portability, deleted, created } = await setup();
    await store.createSession(sessionRecord('a', { title: 'old' }));
    const bundle = {
      version: 1 as const,
      exportedAt: new Date().toISOString(),
      sessions: [sessionRecord('a', { title: 'new' }), sessionRecord('b')],
    };
    await expectRejectsWithCode(
      portability.importSessions(bundle, { onConflict: 'error' }),
      'SESSION_EXISTS',
    );
    expect(created).toEqual([]);
    expect(await portability.importSessions(bundle, { onConflict: 'replace' })).toEqual({
      imported: ['a', 'b'],
      skipped: [],
      replaced: ['a'],
    });
    expect(deleted).toEqual(['a']);
    expect((await store.getSession('a')).title).toBe('new');
  });
});
