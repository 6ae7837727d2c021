// Agent sources with the manager (src/manager/runtime-pool.ts, docs/sources.md): resolution when a turn starts, keys that survive a
// restart and a changed query string, ambiguity, switching source per turn, resolver failures.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { type AgentSessionsError, ErrorCode } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { DirectorySourceResolver } from '../../src/sources/directory.js';
import { StaticSourceResolver } from '../../src/sources/static.js';
import type { SourceResolver } from '../../src/sources.js';
import type { Store } from '../../src/store.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { expectCode, rejection } from '../helpers/assertions.js';
import { withoutUpdatedAt } from '../helpers/sessions.js';
import { type StoreFixture, storeFixtures } from '../helpers/stores.js';

const CODER_V2 = 'https://hub.example/agents/coder?tag=v2';
const CODER_V3 = 'https://hub.example/agents/coder?tag=v3';
const CODER_V4 = 'https://hub.example/agents/coder?tag=v4';

describe.each(storeFixtures())('SessionManager sources ($name)', (fixture: StoreFixture) => {
  const managers: SessionManager[] = [];
  const runtimes: ScriptedRuntime[] = [];
  const directories: string[] = [];

  afterEach(async () => {
    for (const manager of managers.splice(0)) await manager.close();
    await fixture.cleanup();
    await Promise.all(directories.splice(0).map((path) => rm(path, { recursive: true, force: true })));
    for (const scripted of runtimes.splice(0)) scripted.assertConsumed();
  });

  async function setup(sources: SourceResolver | undefined, store?: Store) {
    const scripted = new ScriptedRuntime();
    runtimes.push(scripted);
    const failing = new FailingStore(store ?? (await fixture.create()));
    const manager = new SessionManager({
      runtime: scripted.factory,
      store: failing,
      ...(sources === undefined ? {} : { sources }),
    });
    managers.push(manager);
    return { manager, scripted, store: failing };
  }

  test('a session keeps resolving after a restart when the catalogue only has another query string', async () => {
    const first = await setup(new StaticSourceResolver({ [CODER_V2]: { version: 2 } }));
    const { id } = await first.manager.createSession({ source: CODER_V2 });
    first.scripted.reply('from v2');
    await (await first.manager.runSession(id, { messages: ['a'] })).done;
    expect(first.scripted.inits[0]?.source).toEqual({ key: CODER_V2, definition: { version: 2 } });
    await first.manager.close();

    const inner = first.store.inner;
    const reopened = fixture.name === 'MemoryStore' ? inner : await fixture.reopen(inner);
    const second = await setup(new StaticSourceResolver({ [CODER_V3]: { version: 3 } }), reopened);
    second.scripted.reply('from v3');
    const stream = await second.manager.runSession(id, { messages: ['b'] });
    expect((await stream.done).stopReason).toBe('end_turn');
    expect(second.scripted.inits[0]?.source).toEqual({ key: CODER_V3, definition: { version: 3 } });
    expect(second.scripted.turns[0]?.messages.map((message) => message.content)).toEqual([
      'a',
      'from v2',
      'b',
    ]);
    // The stored key is what the session was created with; it keeps matching by its stable key.
    expect((await second.manager.getSession(id)).source).toBe(CODER_V2);
  });

  test('runSession rejects with SOURCE_NOT_FOUND before writing anything when the source is ambiguous', async () => {
    const { manager, scripted, store } = await setup(
      new StaticSourceResolver({ [CODER_V3]: { version: 3 }, [CODER_V4]: { version: 4 } }),
    );
    const { id } = await manager.createSession({ source: CODER_V2 });
    const before = await store.inner.getSession(id);
    store.calls.length = 0;
    expectCode(
      await rejection(manager.runSession(id, { messages: ['a'], model: 'acme/x' })),
      ErrorCode.SOURCE_NOT_FOUND,
    );
    expect(store.calls.filter((call) => call.method !== 'getSession')).toEqual([]);
    expect(await store.inner.getSession(id)).toEqual(before);
    expect(scripted.inits).toHaveLength(0);
    expect((await manager.getSessionSnapshot(id)).lastEventSeq).toBe(0);
  });

  test('runSession({ source }) makes a runtime from the new definition, closes the old one and stores the key', async () => {
    const reviewerKey = 'https://hub.example/agents/reviewer?tag=v1';
    const { manager, scripted } = await setup(
      new StaticSourceResolver({ coder: { role: 'coder' }, [reviewerKey]: { role: 'reviewer' } }),
    );
    const { id } = await manager.createSession({ source: 'coder' });
    scripted.reply('1').reply('2').reply('3');
    await (await manager.runSession(id, { messages: ['a'] })).done;
    await (
      await manager.runSession(id, {
        messages: ['b'],
        source: 'https://hub.example/agents/reviewer?tag=v9',
      })
    ).done;
    expect(scripted.inits.map((init) => init.source)).toEqual([
      { key: 'coder', definition: { role: 'coder' } },
      { key: reviewerKey, definition: { role: 'reviewer' } },
    ]);
    expect(scripted.runtimes.map((runtime) => runtime.closed)).toEqual([true, false]);
    expect(scripted.turns[1]?.runtime).toBe(scripted.runtimes[1]);
    expect((await manager.getSession(id)).source).toBe(reviewerKey);
    // The next turn without a source stays on the new runtime.
    await (await manager.runSession(id, { messages: ['c'] })).done;
    expect(scripted.runtimes).toHaveLength(2);
    expect(scripted.turns[2]?.runtime).toBe(scripted.runtimes[1]);
  });

  test('runSession({ source }) that is refused leaves the stored source, and the next turn runs from it', async () => {
    const { manager, scripted, store } = await setup(
      new StaticSourceResolver({ coder: { role: 'coder' }, reviewer: { role: 'reviewer' } }),
    );
    const { id } = await manager.createSession({ source: 'coder' });
    scripted.reply('1');
    await (await manager.runSession(id, { messages: ['a'] })).done;
    expectCode(
      await rejection(manager.runSession(id, { messages: ['b'], source: 'ghost' })),
      ErrorCode.SOURCE_NOT_FOUND,
    );
    const before = await store.inner.getSession(id);
    store.failNext('appendItems');
    await rejection(manager.runSession(id, { messages: ['b'], source: 'reviewer' }));
    expect(withoutUpdatedAt(await store.inner.getSession(id))).toEqual(withoutUpdatedAt(before));
    scripted.reply('2');
    await (await manager.runSession(id, { messages: ['c'] })).done;
    const last = scripted.turns.at(-1);
    expect(last?.runtime.init.source).toEqual({ key: 'coder', definition: { role: 'coder' } });
    expect(scripted.runtimes.filter((runtime) => !runtime.closed)).toEqual([last?.runtime]);
    expect((await manager.getSession(id)).source).toBe('coder');
  });

  test('without a resolver, runSession({ source }) stores the source as given and the runtime gets none', async () => {
    const { manager, scripted } = await setup(undefined);
    const { id } = await manager.createSession();
    scripted.reply('1');
    await (await manager.runSession(id, { messages: ['a'], source: './agents/coder.yaml' })).done;
    expect((await manager.getSession(id)).source).toBe('./agents/coder.yaml');
    expect(scripted.inits[0]).not.toHaveProperty('source');
  });

  test('a resolver that fails makes runSession reject with SOURCE_UNAVAILABLE (cause kept) before writing', async () => {
    const cause = new Error('hub unreachable');
    const { manager, scripted, store } = await setup({
      resolve: async () => {
        throw cause;
      },
    });
    const { id } = await manager.createSession({ source: 'coder' });
    const before = await store.inner.getSession(id);
    const error = await rejection(manager.runSession(id, { messages: ['a'] }));
    expectCode(error, ErrorCode.SOURCE_UNAVAILABLE);
    expect((error as AgentSessionsError).cause).toBe(cause);
    expect(await store.inner.getSession(id)).toEqual(before);
    expect(scripted.inits).toHaveLength(0);
  });

  test('aborting the signal while the source resolves rejects runSession with its reason and writes nothing', async () => {
    let started!: () => void;
    const resolving = new Promise<void>((resolve) => {
      started = resolve;
    });
    const { manager, scripted, store } = await setup({
      resolve: (_ref, options) =>
        new Promise((_resolve, reject) => {
          started();
          options?.signal?.addEventListener('abort', () => reject(options.signal?.reason), { once: true });
        }),
    });
    const { id } = await manager.createSession({ source: 'coder' });
    const before = await store.inner.getSession(id);
    const controller = new AbortController();
    const running = rejection(manager.runSession(id, { messages: ['a'] }, { signal: controller.signal }));
    await resolving;
    const reason = new Error('user left');
    controller.abort(reason);
    expect(await running).toBe(reason);
    expect(await store.inner.getSession(id)).toEqual(before);
    expect(scripted.inits).toHaveLength(0);
    expect((await manager.getSessionSnapshot(id)).streaming).toBe(false);
  });

  test('a DirectorySourceResolver hands the runtime the file content as the definition', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-sources-'));
    directories.push(directory);
    await writeFile(join(directory, 'coder.json'), JSON.stringify({ instructions: 'write code' }));
    const { manager, scripted } = await setup(new DirectorySourceResolver({ directory }));
    const { id } = await manager.createSession({ source: 'coder' });
    scripted.reply('ok');
    await (await manager.runSession(id, { messages: ['a'] })).done;
    expect(scripted.inits[0]?.source).toEqual({ key: 'coder', definition: { instructions: 'write code' } });
  });
});
