// Requests waiting for a human (see src/manager/pending.ts): each settles exactly once.
import { describe, expect, test } from 'vitest';
import { PendingRequests } from '../../src/manager/pending.js';
import { expectCode, rejection } from '../helpers/assertions.js';

describe('PendingRequests', () => {
  test('take removes the entry so a second answer finds nothing pending; restore puts it back', async () => {
    const pending = new PendingRequests<string, number>('thing');
    const answer = pending.add('a', 't1', 'info', new AbortController().signal);
    const entry = pending.take('s', undefined);
    expect(pending.entries()).toEqual([]);
    expect(pending.size).toBe(1);
    let thrown: unknown;
    try {
      pending.take('s', 'a');
    } catch (error) {
      thrown = error;
    }
    expectCode(thrown, 'NOTHING_PENDING');
    pending.restore(entry);
    expect(pending.entries().map((each) => each.id)).toEqual(['a']);
    pending.take('s', 'a').resolve(7);
    expect(await answer).toBe(7);
    expect(pending.size).toBe(0);
  });

  test('select without an id refuses when several wait (INVALID_ARGUMENT) and when none waits (NOTHING_PENDING)', () => {
    const pending = new PendingRequests<string, number>('thing');
    const signal = new AbortController().signal;
    let thrown: unknown;
    try {
      pending.select('s', undefined);
    } catch (error) {
      thrown = error;
    }
    expectCode(thrown, 'NOTHING_PENDING');
    void pending.add('a', 't', 'x', signal).catch(() => {});
    void pending.add('b', 't', 'y', signal).catch(() => {});
    try {
      pending.select('s', undefined);
    } catch (error) {
      thrown = error;
    }
    expectCode(thrown, 'INVALID_ARGUMENT');
    expect(pending.select('s', 'b').info).toBe('y');
    pending.rejectAll(new Error('done'));
    expect(pending.size).toBe(0);
  });

  test('an aborted signal rejects the wait with its reason; rejectTurn rejects only that turn, taken entries included', async () => {
    const pending = new PendingRequests<string, number>('thing');
    const controller = new AbortController();
    const one = pending.add('a', 't1', 'x', controller.signal);
    const other = pending.add('b', 't2', 'y', new AbortController().signal);
    const taken = pending.add('c', 't2', 'z', new AbortController().signal);
    pending.take('s', 'c');
    const reason = new Error('cancelled');
    controller.abort(reason);
    expect(await rejection(one)).toBe(reason);
    const ended = new Error('turn ended');
    pending.rejectTurn('t2', ended);
    expect(await rejection(other)).toBe(ended);
    expect(await rejection(taken)).toBe(ended);
    expect(pending.size).toBe(0);
    expect(await rejection(pending.add('d', 't3', 'w', AbortSignal.abort(reason)))).toBe(reason);
  });
});
