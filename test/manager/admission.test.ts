// Turn admission (see src/manager/admission.ts): one turn per session at a time, decided before
// anything is written; `streaming` exactly while the busy lock is held; the rollback order; a
// cancel, a steer or a follow-up that arrives while admission runs; the BusyLock seam.
import { EventEmitter } from 'eventemitter3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AgentSessionsError, SessionBusyError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { Admission, type AdmissionOptions } from '../../src/manager/admission.js';
import type { BusyLease, BusyLock } from '../../src/manager/busy-lock.js';
import { EventLogs } from '../../src/manager/event-log.js';
import { LiveSession } from '../../src/manager/live-session.js';
import { RuntimePool } from '../../src/manager/runtime-pool.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { SessionRecords } from '../../src/manager/session-records.js';
import type { TurnStream } from '../../src/manager/types.js';
import type { Session } from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { BlockingStore } from '../../src/testing/blocking-store.js';
import { FailingStore, InjectedStoreError } from '../../src/testing/failing-store.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { expectCode, rejection } from '../helpers/assertions.js';
import { messageContents } from '../helpers/history.js';
import { closeManager, startManager } from '../helpers/manager.js';
import { sessionRecord } from '../helpers/sessions.js';
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

describe('admission order and rollback (FailingStore)', () => {
  let store: FailingStore;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(() => {
    store = new FailingStore(new MemoryStore());
    scripted = new ScriptedRuntime();
    manager = new SessionManager({ runtime: scripted.factory, store });
  });

  afterEach(async () => {
    await manager.close();
    scripted.assertConsumed();
  });

  /** The writes since `from`, each as `method:fields` (`appendItems` as `appendItems:messages`). */
  const writes = (from: number) =>
    store.calls.slice(from).flatMap((call) => {
      if (call.method === 'appendItems') return [`appendItems${call.failed ? '!' : ''}:messages`];
      if (call.method !== 'updateSession') return [];
      return [`updateSession${call.failed ? '!' : ''}:${Object.keys(call.args[1]).sort().join(',')}`];
    });

  test('a failed user-message write rolls back the agent switch, then the model override (reverse order)', async () => {
    const { id } = await manager.createSession({ agent: 'main', agentModelOverrides: { planner: 'old' } });
    const from = store.calls.length;
    store.failNext('appendItems');
    const error = await rejection(
      manager.runSession(id, { messages: ['hi'], agent: 'planner', model: 'acme/new' }),
    );
    expect(error).toBeInstanceOf(InjectedStoreError);
    expect(writes(from)).toEqual([
      'updateSession:agentModelOverrides,customModelsUsed',
      'updateSession:agent',
      'appendItems!:messages',
      'updateSession:agent',
      'updateSession:agentModelOverrides,customModelsUsed',
    ]);
    const session = await manager.getSession(id);
    expect(session.agent).toBe('main');
    expect(session.agentModelOverrides).toEqual({ planner: 'old' });
    expect(session.customModelsUsed).toEqual([]);
    expect(scripted.currentModel(id, 'planner')).toBe('old');
  });

  test('a rollback that fails is logged, the lock is still released and the next turn reads the store', async () => {
    const logged: unknown[] = [];
    await manager.close();
    manager = new SessionManager({
      runtime: scripted.factory,
      store,
      logger: { ...silentLogger, error: (message, context) => logged.push([message, context]) },
    });
    const { id } = await manager.createSession({ agent: 'main' });
    store.failNext('appendItems');
    // The agent switch is written, then its rollback fails too.
    store.failWhen('updateSession', ([, patch]) => 'agent' in patch && patch.agent === 'main');
    await rejection(manager.runSession(id, { messages: ['hi'], agent: 'planner' }));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject(['rolling back a refused turn failed', { sessionId: id }]);
    store.reset();
    scripted.reply('ok');
    await (await manager.runSession(id, { messages: ['again'] })).done;
    // Record and next turn agree with the store: the switch that could not be undone is in force.
    expect(scripted.turns[0]?.agent).toBe('planner');
  });
});

describe('what arrives while admission runs (BlockingStore)', () => {
  let blocking: BlockingStore;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(() => {
    blocking = new BlockingStore(new MemoryStore());
    scripted = new ScriptedRuntime();
    manager = new SessionManager({ runtime: scripted.factory, store: blocking });
  });

  afterEach(async () => {
    blocking.releaseAll();
    await manager.close();
    scripted.assertConsumed();
  });

  test('cancelTurn during admission returns true; the admitted turn then ends cancelled before the runtime runs and queued messages go to discarded', async () => {
    const { id } = await manager.createSession();
    blocking.block('appendItems');
    const running = manager.runSession(id, { messages: ['go'] });
    await blocking.waitForBlocked('appendItems');
    await manager.steerSession(id, ['steered']);
    expect(await manager.followUpSession(id, ['later'], { idempotencyKey: 'k' })).toEqual({
      status: 'queued',
    });
    expect(await manager.cancelTurn(id, new Error('stop'))).toBe(true);
    blocking.unblock('appendItems');
    blocking.release('appendItems');
    const stream = await running;
    const events = await collect(stream);
    const result = await stream.done;
    expect(result.stopReason).toBe('cancelled');
    expect(result.discarded.map((message) => message.content)).toEqual(['steered', 'later']);
    expect(scripted.turns).toHaveLength(0);
    expect(events.at(-1)).toMatchObject({
      type: 'stream_stopped',
      reason: 'cancelled',
      turnId: stream.turnId,
    });
    expect(messageContents(await manager.getSession(id))).toEqual(['user:go']);
    // The discarded follow-up's key was freed.
    scripted.reply('delivered');
    expect(await manager.followUpSession(id, ['later'], { idempotencyKey: 'k' })).toEqual({
      status: 'started',
    });
    await manager.waitStopped(id, { timeoutMs: 10_000 });
  });

  test('SESSION_BUSY during admission names the turn the admission will start', async () => {
    const { id } = await manager.createSession();
    scripted.reply('ok');
    blocking.block('appendItems');
    const running = manager.runSession(id, { messages: ['go'] });
    await blocking.waitForBlocked('appendItems');
    const error = await rejection(manager.runSession(id, { messages: ['other'] }));
    expect(error).toBeInstanceOf(SessionBusyError);
    blocking.unblock('appendItems');
    blocking.release('appendItems');
    const stream = await running;
    expect((error as SessionBusyError).turnId).toBe(stream.turnId);
    await stream.done;
  });

  test('a cancel during an admission that is then refused does not drop what was queued: it runs as its own turn', async () => {
    const { id } = await manager.createSession();
    blocking.block('appendItems');
    const running = manager.runSession(id, { messages: ['refused'] });
    await blocking.waitForBlocked('appendItems');
    expect(await manager.followUpSession(id, ['queued'])).toEqual({ status: 'queued' });
    expect(await manager.cancelTurn(id)).toBe(true);
    blocking.rejectBlocked('appendItems', new Error('disk full'));
    blocking.unblock('appendItems');
    scripted.reply('answer');
    await expect(running).rejects.toThrow('disk full');
    await manager.waitStopped(id, { timeoutMs: 10_000 });
    expect(messageContents(await manager.getSession(id))).toEqual(['user:queued', 'assistant:answer']);
  });
});

describe('Admission with another BusyLock', () => {
  /** A lock that records its leases and can be told to refuse, like a lease held by another process. */
  class RecordingLock implements BusyLock {
    refuse = false;
    readonly leases: Array<BusyLease & { released: number }> = [];
    async acquire(sessionId: string): Promise<BusyLease | undefined> {
      if (this.refuse) return undefined;
      const lease = {
        sessionId,
        token: this.leases.length + 1,
        released: 0,
        release: async () => {
          lease.released++;
        },
      };
      this.leases.push(lease);
      return lease;
    }
  }

  async function setup() {
    const store = new MemoryStore();
    await store.createSession(sessionRecord('s1'));
    const scripted = new ScriptedRuntime();
    const lock = new RecordingLock();
    const logs = new EventLogs();
    const records = new SessionRecords(store);
    const options: AdmissionOptions = {
      lock,
      runtimes: new RuntimePool({
        factory: scripted.factory,
        idleTtlMs: 0,
        logger: silentLogger,
        onIdleClose: () => {},
      }),
      eventLog: (id) => logs.getOrCreate(id),
      assertUsable: () => {},
      observer: new EventEmitter(),
      titleGenerator: undefined,
      logger: silentLogger,
      track: () => {},
    };
    const admission = new Admission(options);
    const live = new LiveSession(records.open('s1'), { steer: 5, followUp: 5, keys: 5 });
    return { store, scripted, lock, admission, live };
  }

  test('a lock held elsewhere refuses the turn with SESSION_BUSY before anything is written', async () => {
    const { store, scripted, lock, admission, live } = await setup();
    lock.refuse = true;
    const before = await store.getSession('s1');
    const error = await rejection(
      admission.admit(live, { messages: [], onDetach: 'cancel', detached: false, model: 'm' }),
    );
    expectCode(error, 'SESSION_BUSY');
    expect(await store.getSession('s1')).toEqual(before);
    expect(scripted.inits).toHaveLength(0);
    expect(admission.isOccupied('s1')).toBe(false);
  });

  test('the lease is held while the turn runs and released exactly once before done resolves', async () => {
    const { scripted, lock, admission, live } = await setup();
    scripted.turn([step.hold('h'), step.reply('ok')]);
    const message = { id: 'm1', role: 'user' as const, content: 'go', createdAt: new Date().toISOString() };
    const turn = await admission.admit(live, { messages: [message], onDetach: 'cancel', detached: false });
    expect(admission.running('s1')).toBe(turn);
    await scripted.waitUntilHeld('h');
    expect(lock.leases).toHaveLength(1);
    expect(lock.leases[0]?.released).toBe(0);
    let releasedBeforeDone = -1;
    const reading = collect(turn.stream);
    scripted.release('h');
    await turn.stream.done.then(() => {
      releasedBeforeDone = lock.leases[0]?.released ?? -1;
    });
    await reading;
    expect(releasedBeforeDone).toBe(1);
    expect(admission.isOccupied('s1')).toBe(false);
    scripted.assertConsumed();
  });

  test('a history edit holds a lease for its write only', async () => {
    const { lock, admission, live } = await setup();
    const result = await admission.whileIdle(live, async () => {
      expect(admission.isOccupied('s1')).toBe(true);
      return 'written';
    });
    expect(result).toBe('written');
    expect(lock.leases.map((lease) => lease.released)).toEqual([1]);
    expect(admission.isOccupied('s1')).toBe(false);
  });
});
