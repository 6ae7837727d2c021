// Issue 10: runtime and record agree on the model override at every turn start, a failed rollback
// is reported as the rejection's cause, and a runtime made anew (after the idle timeout) gets the
// session's override.
import { afterEach, expect, test, vi } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { collect } from '../helpers/stores.js';

afterEach(() => {
  vi.useRealTimers();
});

function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const ignore = () => undefined;
  return { errors, debug: ignore, info: ignore, warn: ignore, error: (message) => errors.push(message) };
}

test('runSession whose rollback fails too rejects with the rollback error in its cause, logs it, and the next turn runs on the stored model', async () => {
  const store = new FailingStore(new MemoryStore());
  const scripted = new ScriptedRuntime();
  const logger = recordingLogger();
  const manager = new SessionManager({ runtime: scripted.factory, store, logger });
  const { id } = await manager.createSession();
  // The override is written, the user message fails, then the override's rollback fails.
  store.failNext('appendItems');
  let updates = 0;
  store.failWhen('updateSession', () => ++updates === 2);
  const error = await manager.runSession(id, { messages: ['refused'], model: 'fast' }).then(
    () => undefined,
    (rejected: unknown) => rejected,
  );
  store.reset();
  expect(AgentSessionsError.isInstance(error)).toBe(true);
  expect(error).toMatchObject({
    code: 'STORE_UNAVAILABLE',
    message: expect.stringContaining('rolling back'),
  });
  const cause = (error as Error).cause;
  expect(cause).toBeInstanceOf(AggregateError);
  expect((cause as AggregateError).errors.map((inner: Error) => inner.message)).toEqual([
    'injected failure: FailingStore.appendItems',
    'injected failure: FailingStore.updateSession',
  ]);
  expect(logger.errors).toContain('rolling back a refused turn failed');
  // The record kept the override; the runtime was set back: the next turn start sets it again.
  expect((await manager.getSession(id)).agentModelOverrides).toEqual({ default: 'fast' });
  expect(scripted.currentModel(id, 'default')).toBeUndefined();
  scripted.reply('ok');
  await collect(await manager.runSession(id, { messages: ['next'] }));
  expect(scripted.currentModel(id, 'default')).toBe('fast');
  await manager.close();
  scripted.assertConsumed();
});

test('setSessionModel whose write is applied but reported failed leaves the runtime on the stored model at the next turn', async () => {
  const store = new FailingStore(new MemoryStore());
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store });
  const { id } = await manager.createSession();
  store.failWhen(
    'updateSession',
    () => true,
    (call) => {
      void store.inner.updateSession(
        ...(call.args as [string, { agentModelOverrides: Record<string, string> }]),
      );
      return new Error('applied, then failed');
    },
  );
  await expect(manager.setSessionModel(id, 'fast')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  store.reset();
  expect(scripted.currentModel(id, 'default')).toBeUndefined();
  scripted.reply('ok');
  await collect(await manager.runSession(id, { messages: ['next'] }));
  expect((await manager.getSession(id)).agentModelOverrides).toEqual({ default: 'fast' });
  expect(scripted.currentModel(id, 'default')).toBe('fast');
  await manager.close();
});

test('a runtime remade after the idle timeout gets the session model override before its first turn', async () => {
  vi.useFakeTimers();
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({
    runtime: scripted.factory,
    store: new MemoryStore(),
    idleRuntimeTtlMs: 1_000,
  });
  const { id } = await manager.createSession();
  await manager.setSessionModel(id, 'fast');
  scripted.reply('first');
  await collect(await manager.runSession(id, { messages: ['one'] }));
  expect(scripted.setModelCalls.map((call) => call.modelRef)).toEqual(['fast']);
  await vi.advanceTimersByTimeAsync(1_500);
  expect(scripted.closeCalls.length).toBe(1);
  scripted.reply('second');
  await collect(await manager.runSession(id, { messages: ['two'] }));
  expect(scripted.inits.length).toBe(2);
  expect(scripted.setModelCalls.map((call) => call.modelRef)).toEqual(['fast', 'fast']);
  await manager.close();
  scripted.assertConsumed();
});
