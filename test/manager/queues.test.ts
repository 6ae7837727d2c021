// What waits for a session's turns (see src/manager/queues.ts): bounded queues, idempotency keys,
// and the order in which waiting messages become turns.
import { describe, expect, test } from 'vitest';
import { BoundedQueue, IdempotencyKeys, TurnQueues } from '../../src/manager/queues.js';
import type { Message } from '../../src/schemas.js';
import { expectCode } from '../helpers/assertions.js';

const message = (content: string): Message => ({
  id: `m-${content}`,
  role: 'user',
  content,
  createdAt: '2024-01-01T00:00:00.000Z',
});

describe('BoundedQueue', () => {
  test('push adds all items or none: past capacity it throws QUEUE_FULL and keeps what it had', () => {
    const queue = new BoundedQueue<number>(3, 'test');
    queue.push('s', [1, 2]);
    let thrown: unknown;
    try {
      queue.push('s', [3, 4]);
    } catch (error) {
      thrown = error;
    }
    expectCode(thrown, 'QUEUE_FULL');
    expect(queue.peek()).toEqual([1, 2]);
    queue.push('s', [3]);
    expect(queue.drain()).toEqual([1, 2, 3]);
    expect(queue.length).toBe(0);
  });
});

describe('IdempotencyKeys', () => {
  test('claim is false for a key seen before; past capacity the oldest key is forgotten', () => {
    const keys = new IdempotencyKeys(2);
    expect(keys.claim('a')).toBe(true);
    expect(keys.claim('a')).toBe(false);
    expect(keys.claim('b')).toBe(true);
    expect(keys.claim('c')).toBe(true);
    expect(keys.size).toBe(2);
    expect(keys.claim('a')).toBe(true);
    keys.release('a');
    expect(keys.claim('a')).toBe(true);
  });
});

describe('TurnQueues', () => {
  const capacities = { steer: 5, followUp: 5, keys: 5 };

  test('next returns every steered message as one turn first, then the follow-ups one by one, in order', () => {
    const queues = new TurnQueues(capacities);
    queues.followUps.push('s', [
      { messages: [message('f1')] },
      { messages: [message('f2')], idempotencyKey: 'k' },
    ]);
    queues.steer.push('s', [message('s1'), message('s2')]);
    expect(queues.waiting).toBe(true);
    expect(queues.next()?.messages.map((m) => m.content)).toEqual(['s1', 's2']);
    expect(queues.next()?.messages.map((m) => m.content)).toEqual(['f1']);
    expect(queues.next()).toEqual({ messages: [message('f2')], idempotencyKey: 'k' });
    expect(queues.next()).toBeUndefined();
    expect(queues.waiting).toBe(false);
  });

  test('discard empties both queues into one list and frees the follow-ups keys, keeping others', () => {
    const queues = new TurnQueues(capacities);
    queues.keys.claim('delivered');
    queues.keys.claim('queued');
    queues.followUps.push('s', [{ messages: [message('f')], idempotencyKey: 'queued' }]);
    queues.steer.push('s', [message('s')]);
    expect(queues.discard().map((m) => m.content)).toEqual(['s', 'f']);
    expect(queues.waiting).toBe(false);
    expect(queues.keys.claim('queued')).toBe(true);
    expect(queues.keys.claim('delivered')).toBe(false);
    expect(queues.empty).toBe(false);
  });

  test('empty is true only with nothing queued and no key remembered', () => {
    const queues = new TurnQueues(capacities);
    expect(queues.empty).toBe(true);
    queues.keys.claim('k');
    expect(queues.empty).toBe(false);
    queues.keys.release('k');
    queues.steer.push('s', [message('x')]);
    expect(queues.empty).toBe(false);
  });
});
