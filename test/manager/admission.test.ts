// Turn admission (SPEC §6 runSession, getSessionSnapshot): one turn per session at a time, decided
// before anything is written, and `streaming` exactly while the busy lock is held.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AgentSessionsError, SessionBusyError } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { TurnStream } from '../../src/manager/types.js';
import type { Session } from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { BlockingStore } from '../../src/testing/blocking-store.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { closeManager, startManager } from '../helpers/manager.js';
import { collect, storeFixtures } from '../helpers/stores.js';

const userContents = (session: Session) =>
  session.items.flatMap((item) =>
    item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
  );

describe.each(storeFixtures())('turn admission ($name)', (fixture) => {
  let store: Store;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(async () => {
    ({ store, scripted, manager } = startManager(await fixture.create()));
  });

  afterEach(() => closeManager(fixture, { manager, scripted }));

  test('1000 concurrent runSession calls on one session: exactly one resolves, every other rejects with SESSION_BUSY, only the winner is stored', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('winner'), step.reply('done')]);
    const results = await Promise.allSettled(
      Array.from({ length: 1000 }, (_, index) => manager.runSession(created.id, { messages: [`m${index}`] })),
    );
    const fulfilled = results.filter(
      (result): result is PromiseFulfilledResult<TurnStream> => result.status === 'fulfilled',
    );
    const rejected = results.filter(
      (result): result is PromiseRejectedResult => result.status === 'rejected',
    );
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(999);
    for (const { reason } of rejected) {
      expect(AgentSessionsError.hasCode(reason, 'SESSION_BUSY'), String(reason)).toBe(true);
      expect(reason).toBeInstanceOf(SessionBusyError);
      expect((reason as SessionBusyError).sessionId).toBe(created.id);
    }
    const winner = fulfilled[0]?.value as TurnStream;
    const winnerIndex = results.findIndex((result) => result.status === 'fulfilled');
    await scripted.waitUntilHeld('winner');
    // While the winner runs, history holds only its user message.
    expect(userContents(await store.getSession(created.id))).toEqual([`m${winnerIndex}`]);
    scripted.release('winner');
    await collect(winner);
    expect((await winner.done).stopReason).toBe('end_turn');
    expect(scripted.turns).toHaveLength(1);
    expect(userContents(await store.getSession(created.id))).toEqual([`m${winnerIndex}`]);
  });

  test('runSession rejects with SESSION_BUSY naming the running turn', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('h')]);
    const stream = await manager.runSession(created.id, { messages: ['first'] });
    await scripted.waitUntilHeld('h');
    const error = await manager
      .runSession(created.id, { messages: ['second'] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SessionBusyError);
    expect((error as SessionBusyError).turnId).toBe(stream.turnId);
    scripted.release('h');
    await collect(stream);
    expect(userContents(await store.getSession(created.id))).toEqual(['first']);
  });

  test('runSession rejects with SESSION_BUSY while a follow-up started turn runs, and the follow-up was admitted', async () => {
    const created = await manager.createSession();
    scripted.turn([step.hold('h')]);
    expect(await manager.followUpSession(created.id, ['follow'])).toEqual({ status: 'started' });
    await expect(manager.runSession(created.id, { messages: ['run'] })).rejects.toBeInstanceOf(
      SessionBusyError,
    );
    await scripted.waitUntilHeld('h');
    scripted.release('h');
    await manager.waitStopped(created.id, { timeoutMs: 10_000 });
    expect(userContents(await store.getSession(created.id))).toEqual(['follow']);
  });

  test('getSessionSnapshot().streaming is true from when runSession resolves until the lock is released, false after the stream is drained', async () => {
    const created = await manager.createSession();
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(false);
    scripted.turn([step.hold('h'), step.reply('done')]);
    scripted.reply('again');
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    // Right after admission, whether or not the runtime has been called yet.
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(true);
    await scripted.waitUntilHeld('h');
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(true);
    scripted.release('h');
    await collect(stream);
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(false);
    // The lock was released before the last next() resolved: the drained caller can run again at once.
    const next = await manager.runSession(created.id, { messages: ['again'] });
    await collect(next);
  });
});

describe.each(storeFixtures())('turn admission with writes in flight ($name)', (fixture) => {
  let blocking: BlockingStore;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(async () => {
    blocking = new BlockingStore(await fixture.create());
    scripted = new ScriptedRuntime();
    manager = new SessionManager({ runtime: scripted.factory, store: blocking });
  });

  afterEach(async () => {
    blocking.releaseAll();
    await manager.close();
    await fixture.cleanup();
    scripted.assertConsumed();
  });

  test('getSessionSnapshot().streaming is false while runSession is still writing the user messages', async () => {
    const created = await manager.createSession();
    scripted.reply('done');
    blocking.block('appendItems');
    const running = manager.runSession(created.id, { messages: ['go'] });
    await blocking.waitForBlocked('appendItems');
    expect((await manager.getSessionSnapshot(created.id)).streaming).toBe(false);
    // But the lock is held: a second caller is refused.
    await expect(manager.runSession(created.id, { messages: ['other'] })).rejects.toBeInstanceOf(
      SessionBusyError,
    );
    blocking.release('appendItems');
    const stream = await running;
    await collect(stream);
    expect(userContents(await blocking.getSession(created.id))).toEqual(['go']);
  });
});
