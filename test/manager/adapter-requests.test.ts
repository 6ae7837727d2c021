// Small requests from the adapter engineers: releaseSession, the atomic permissions edit, and
// usage totals with the optional cache and reasoning counts.
import { afterEach, expect, test } from 'vitest';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { expectRejectsWithCode } from '../helpers/assertions.js';
import { collect } from '../helpers/stores.js';

const managers: SessionManager[] = [];
afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.close();
});

function start() {
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store: new MemoryStore() });
  managers.push(manager);
  return { scripted, manager };
}

test('releaseSession cancels the running turn, waits for it, closes the runtime and keeps the record', async () => {
  const { scripted, manager } = start();
  const { id } = await manager.createSession();
  scripted.turn([step.hold('h'), step.reply('never')]);
  const stream = await manager.runSession(id, { messages: ['go'] });
  await scripted.waitUntilHeld('h');
  await manager.releaseSession(id);
  expect((await stream.done).stopReason).toBe('cancelled');
  expect(scripted.runtimes[0]?.closed).toBe(true);
  expect((await manager.getSession(id)).items.length).toBeGreaterThan(0);
  scripted.reply('back');
  await collect(await manager.runSession(id, { messages: ['again'] }));
  expect(scripted.runtimes).toHaveLength(2);
  scripted.assertConsumed();
  await expectRejectsWithCode(manager.releaseSession('nope'), 'SESSION_NOT_FOUND');
});

test('updateSessionPermissions with a function is atomic: concurrent edits are all kept', async () => {
  const { manager } = start();
  const { id } = await manager.createSession();
  await Promise.all(
    ['a', 'b', 'c', 'd'].map((tool) =>
      manager.updateSessionPermissions(id, (current) => ({ ...current, deny: [...current.deny, tool] })),
    ),
  );
  expect((await manager.getSession(id)).permissions.deny.sort()).toEqual(['a', 'b', 'c', 'd']);
  await expectRejectsWithCode(
    manager.updateSessionPermissions(id, () => ({ allow: 'x' }) as never),
    'INVALID_ARGUMENT',
  );
});

test('token_usage sums cache and reasoning counts into the session total only where reported', async () => {
  const { scripted, manager } = start();
  const { id } = await manager.createSession();
  scripted.reply('one', { usage: { inputTokens: 10, outputTokens: 2 } });
  await collect(await manager.runSession(id, { messages: ['a'] }));
  expect((await manager.getSession(id)).usage).toEqual({ inputTokens: 10, outputTokens: 2, cost: 0 });
  scripted.reply('two', {
    usage: { inputTokens: 5, outputTokens: 3, cacheReadTokens: 4, reasoningTokens: 1 },
  });
  await collect(await manager.runSession(id, { messages: ['b'] }));
  scripted.reply('three', {
    usage: { inputTokens: 1, outputTokens: 1, cacheWriteTokens: 2, cacheReadTokens: 1 },
  });
  await collect(await manager.runSession(id, { messages: ['c'] }));
  expect((await manager.getSession(id)).usage).toEqual({
    inputTokens: 16,
    outputTokens: 6,
    cost: 0,
    cacheReadTokens: 5,
    cacheWriteTokens: 2,
    reasoningTokens: 1,
  });
});
