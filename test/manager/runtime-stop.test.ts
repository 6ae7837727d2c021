// Issue 10: a runtime that ignores its cancel signal never has two run() calls overlapping. The
// next turn waits until the previous run() returned, up to runtimeStopTimeoutMs; past it the stuck
// runtime is closed and replaced (logged).
import { afterEach, expect, test, vi } from 'vitest';
import type { Logger } from '../../src/logger.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { collect } from '../helpers/stores.js';

afterEach(() => {
  vi.useRealTimers();
});

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const ignore = () => undefined;
  return { warnings, debug: ignore, info: ignore, warn: (message) => warnings.push(message), error: ignore };
}

/** Scripts a turn whose run() streams one delta, then waits for `gate` whatever its signal says. */
function stuckTurn(scripted: ScriptedRuntime): { release: () => void; returned: () => boolean } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let returned = false;
  scripted.turn(async function* () {
    try {
      yield { type: 'agent_choice', content: 'partial' };
      await gate;
    } finally {
      returned = true;
    }
  });
  return { release, returned: () => returned };
}

async function startAndCancel(manager: SessionManager, id: string): Promise<void> {
  const stream = await manager.runSession(id, { messages: ['first'] });
  const iterator = stream[Symbol.asyncIterator]();
  for (;;) {
    const result = await iterator.next();
    if (result.done || result.value.type === 'agent_choice') break;
  }
  stream.cancel();
  await stream.done;
  await iterator.return?.();
}

test('runSession waits until the previous run() has returned before running the next turn', async () => {
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store: new MemoryStore() });
  const { id } = await manager.createSession();
  const stuck = stuckTurn(scripted);
  await startAndCancel(manager, id);
  expect(stuck.returned()).toBe(false);
  scripted.reply('second');
  const next = manager.runSession(id, { messages: ['second'] });
  for (let index = 0; index < 20; index++) await new Promise((resolve) => setImmediate(resolve));
  expect(scripted.turns.length).toBe(1);
  stuck.release();
  await collect(await next);
  expect(stuck.returned()).toBe(true);
  expect(scripted.turns.length).toBe(2);
  // The same runtime ran both turns, one after the other.
  expect(scripted.inits.length).toBe(1);
  await manager.close();
  scripted.assertConsumed();
});

test('past runtimeStopTimeoutMs the stuck runtime is closed and replaced, with a warning', async () => {
  vi.useFakeTimers();
  const scripted = new ScriptedRuntime();
  const logger = recordingLogger();
  const manager = new SessionManager({
    runtime: scripted.factory,
    store: new MemoryStore(),
    runtimeStopTimeoutMs: 2_000,
    logger,
  });
  const { id } = await manager.createSession();
  const stuck = stuckTurn(scripted);
  await startAndCancel(manager, id);
  scripted.reply('second');
  const next = manager.runSession(id, { messages: ['second'] });
  await vi.advanceTimersByTimeAsync(1_999);
  expect(scripted.inits.length).toBe(1);
  expect(scripted.closeCalls.length).toBe(0);
  await vi.advanceTimersByTimeAsync(1);
  const events = await collect(await next);
  expect(events.at(-1)).toMatchObject({ type: 'stream_stopped', reason: 'end_turn' });
  expect(scripted.closeCalls.length).toBe(1);
  expect(scripted.inits.length).toBe(2);
  expect(logger.warnings).toContain(
    'the previous run() did not return in time: closing and replacing the runtime',
  );
  stuck.release();
  await manager.close();
  scripted.assertConsumed();
});

test('runtimeStopTimeoutMs must be a positive integer', () => {
  const scripted = new ScriptedRuntime();
  expect(
    () =>
      new SessionManager({ runtime: scripted.factory, store: new MemoryStore(), runtimeStopTimeoutMs: 0 }),
  ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
});
