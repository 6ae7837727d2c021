// Issue 10, problem 2: event numbers are never reused across restarts. A session's numbering goes
// on after the high-water mark the previous process persisted, so a reconnecting client with a
// position from before any restart gets a `gap` `reset`, never another turn's events.
import { afterEach, expect, test } from 'vitest';
import type { SessionEvent } from '../../src/events.js';
import { SEQ_BLOCK } from '../../src/manager/seq-reservation.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { collect } from '../helpers/stores.js';

const managers: SessionManager[] = [];
afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.close();
});

async function firstEvents(manager: SessionManager, id: string, since: number, count: number) {
  const iterator = manager.streamEvents(id, { since })[Symbol.asyncIterator]();
  const events: SessionEvent[] = [];
  for (let index = 0; index < count; index++) events.push((await iterator.next()).value as SessionEvent);
  await iterator.return?.();
  return events;
}

test('across five restarts no seq is reused, and every old position gets gap reset before the new events', async () => {
  const store = new MemoryStore();
  const scripted = new ScriptedRuntime();
  const seen = new Map<number, string>(); // seq → the turn whose event it numbered
  const positions: number[] = [];
  let id = '';
  for (let restart = 0; restart < 5; restart++) {
    const manager = new SessionManager({ runtime: scripted.factory, store });
    if (restart === 0) id = (await manager.createSession()).id;
    // Old positions first: the log of this process is new.
    for (const since of positions) {
      scripted.reply(`turn after restart ${restart}`);
      const stream = await manager.runSession(id, { messages: [`probe ${restart}/${since}`] });
      const [gap, first] = await firstEvents(manager, id, since, 2);
      await collect(stream);
      expect(gap).toMatchObject({ type: 'gap', reason: 'reset' });
      // What follows the gap is this process's own numbering, never an older event's number.
      expect(seen.has(first?.seq ?? -1)).toBe(false);
      break;
    }
    scripted.reply(`answer ${restart}`);
    const events = await collect(await manager.runSession(id, { messages: [`question ${restart}`] }));
    for (const event of events) {
      expect(seen.get(event.seq), `seq ${event.seq} numbered two events`).toBeUndefined();
      seen.set(event.seq, event.turnId ?? '');
    }
    positions.push(events.at(-1)?.seq ?? 0);
    await manager.close();
  }
  scripted.assertConsumed();
  // One reservation write per process here: far fewer writes than events.
  const session = await store.getSession(id);
  expect(session.eventSeqReserved).toBeGreaterThanOrEqual(Math.max(...seen.keys()));
  expect(session.eventSeqReserved).toBeLessThanOrEqual(6 * SEQ_BLOCK);
});

test('a subscriber from the same process keeps a gapless numbering while the mark moves ahead mid-turn', async () => {
  const store = new MemoryStore();
  const scripted = new ScriptedRuntime();
  const manager = new SessionManager({ runtime: scripted.factory, store, eventLogCapacity: 8192 });
  managers.push(manager);
  const { id } = await manager.createSession();
  const words = Array.from({ length: SEQ_BLOCK }, (_, index) => `w${index} `);
  scripted.reply(words.join(''), { deltas: words });
  const events = await collect(await manager.runSession(id, { messages: ['long'] }));
  expect(events.map((event, index) => event.seq - index)).toEqual(events.map(() => 1));
  const reserved = (await store.getSession(id)).eventSeqReserved ?? 0;
  expect(reserved).toBeGreaterThan(events.at(-1)?.seq ?? 0);
});
