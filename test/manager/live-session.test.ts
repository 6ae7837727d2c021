// A session's in-memory state (see src/manager/live-session.ts).
import { describe, expect, test } from 'vitest';
import { LiveSession } from '../../src/manager/live-session.js';
import { SessionRecords } from '../../src/manager/session-records.js';
import { MemoryStore } from '../../src/stores/memory.js';

const capacities = { steer: 2, followUp: 2, keys: 2 };
const live = () => new LiveSession(new SessionRecords(new MemoryStore()).open('s1'), capacities);

describe('LiveSession', () => {
  test('end aborts the signal with the reason, whether the signal was asked for before or after', () => {
    const early = live();
    const signal = early.signal;
    const reason = new Error('deleted');
    early.end(reason);
    expect(early.ended).toBe(true);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    const late = live();
    late.end(reason);
    expect(late.signal.aborted).toBe(true);
    expect(late.signal.reason).toBe(reason);
    late.end(new Error('again'));
    expect(late.signal.reason).toBe(reason);
  });

  test('idle is false while anything a later call needs is held', () => {
    const session = live();
    expect(session.idle).toBe(true);
    session.queues.keys.claim('k');
    expect(session.idle).toBe(false);
    session.queues.keys.release('k');
    session.approvals.previousPolicy = 'strict';
    expect(session.idle).toBe(false);
    session.approvals.previousPolicy = undefined;
    expect(session.idle).toBe(true);
  });

  test('waiting shows copies of what is queued and pending', () => {
    const session = live();
    const message = { id: 'm', role: 'user' as const, content: 'x', createdAt: '2024-01-01T00:00:00.000Z' };
    session.queues.steer.push('s1', [message]);
    const shown = session.waiting();
    expect(shown).toEqual({
      pending: { confirmations: [], elicitations: [] },
      queues: { steer: [message], followUp: [] },
    });
    expect(shown.queues.steer[0]).not.toBe(message);
  });
});
