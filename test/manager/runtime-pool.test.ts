// Runtime lifecycle (see src/manager/runtime-pool.ts): one runtime per session, made with the
// resolved source and agent, cached across turns, closed on delete, on close and when idle.
import { describe, expect, test, vi } from 'vitest';
import { StaticSourceResolver } from '../../src/sources/static.js';
import { step } from '../../src/testing/scripted-runtime.js';
import { useScriptedManagers } from '../helpers/manager.js';
import { type StoreFixture, storeFixtures } from '../helpers/stores.js';

describe.each(storeFixtures())('runtime pool ($name)', (fixture: StoreFixture) => {
  const { setup } = useScriptedManagers(fixture);

  describe('runtime lifecycle', () => {
    test('the factory is called once per session with the resolved source and agent, and cached across turns', async () => {
      const definition = { prompt: 'You code.' };
      const { manager, scripted } = await setup({ sources: new StaticSourceResolver({ coder: definition }) });
      const { id } = await manager.createSession({ source: 'coder', agent: 'main' });
      const other = await manager.createSession({ source: 'coder' });
      scripted.reply('1').reply('2').reply('3');
      await (await manager.runSession(id, { messages: ['a'] })).done;
      await (await manager.runSession(id, { messages: ['b'] })).done;
      await (await manager.runSession(other.id, { messages: ['c'] })).done;
      expect(scripted.inits).toHaveLength(2);
      expect(scripted.inits[0]?.source).toEqual({ key: 'coder', definition });
      expect(scripted.inits[0]?.agent).toBe('main');
      expect(scripted.inits[0]?.session.id).toBe(id);
      expect(scripted.inits[1]?.session.id).toBe(other.id);
      expect(scripted.turnsOf(id).map((turn) => turn.runtime)).toEqual([
        scripted.runtimes[0],
        scripted.runtimes[0],
      ]);
    });

    test('the runtime gets no source when the manager has no resolver', async () => {
      const { manager, scripted } = await setup();
      const { id } = await manager.createSession({ source: 'anything' });
      scripted.reply('ok');
      await (await manager.runSession(id, { messages: ['a'] })).done;
      expect(scripted.inits[0]).not.toHaveProperty('source');
    });

    test('the runtime is closed by deleteSession and by close()', async () => {
      const { manager, scripted } = await setup();
      const one = await manager.createSession();
      const two = await manager.createSession();
      scripted.reply('1').reply('2');
      await (await manager.runSession(one.id, { messages: ['a'] })).done;
      await (await manager.runSession(two.id, { messages: ['b'] })).done;
      await manager.deleteSession(one.id);
      expect(scripted.runtimes.map((runtime) => runtime.closed)).toEqual([true, false]);
      await manager.close();
      expect(scripted.runtimes.map((runtime) => runtime.closed)).toEqual([true, true]);
    });

    test('the runtime is closed after idleRuntimeTtlMs idle and the next turn makes a new one', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const { manager, scripted } = await setup({ idleRuntimeTtlMs: 60_000 });
      const { id } = await manager.createSession();
      scripted.turn([step.hold('h'), step.reply('1')]).reply('2');
      const stream = await manager.runSession(id, { messages: ['a'] });
      await scripted.waitUntilHeld('h');
      await vi.advanceTimersByTimeAsync(120_000);
      expect(scripted.runtimes[0]?.closed).toBe(false); // never closed while a turn runs
      scripted.release('h');
      await stream.done;
      await vi.advanceTimersByTimeAsync(59_999);
      expect(scripted.runtimes[0]?.closed).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(scripted.runtimes[0]?.closed).toBe(true);
      await (await manager.runSession(id, { messages: ['b'] })).done;
      expect(scripted.runtimes).toHaveLength(2);
      expect(scripted.turns[1]?.runtime).toBe(scripted.runtimes[1]);
      expect(scripted.turns[1]?.messages.map((message) => message.content)).toEqual(['a', '1', 'b']);
    });

    test('a runtime made outside a turn (getAvailableModels) is also closed after idleRuntimeTtlMs', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const { manager, scripted } = await setup({ idleRuntimeTtlMs: 60_000, scripted: { models: [] } });
      const { id } = await manager.createSession();
      await manager.getAvailableModels(id);
      expect(scripted.runtimes).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(scripted.runtimes[0]?.closed).toBe(true);
    });
  });
});
