import { describe, expect, test } from 'vitest';
import { Channel } from '../../src/internal/channel.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => {
    settled = true;
  });
  for (let index = 0; index < 5; index++) await Promise.resolve();
  return settled;
}

describe('Channel.next', () => {
  test('next yields pushed values in order, then done once ended', async () => {
    const channel = new Channel<number>();
    const waiting = channel.next();
    channel.push(1);
    channel.push(2);
    channel.end();
    expect(await waiting).toEqual({ value: 1, done: false });
    expect(await channel.next()).toEqual({ value: 2, done: false });
    expect(await channel.next()).toEqual({ value: undefined, done: true });
  });

  test('detach drops what is buffered and settles a waiting next() as done', async () => {
    const channel = new Channel<number>();
    const waiting = channel.next();
    channel.detach();
    channel.push(1);
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(await channel.next()).toEqual({ value: undefined, done: true });
  });
});

describe('Channel.nextBatch', () => {
  test('nextBatch takes everything buffered at once', async () => {
    const channel = new Channel<number>();
    channel.push(1);
    channel.push(2);
    expect(await channel.next()).toEqual({ value: 1, done: false });
    channel.push(3);
    expect(await channel.nextBatch()).toEqual({ value: [2, 3], done: false });
  });

  test('a waiting nextBatch gets what is pushed within the task on the next turn, as one batch', async () => {
    const channel = new Channel<number>();
    const waiting = channel.nextBatch();
    channel.push(1);
    await Promise.resolve();
    channel.push(2);
    expect(await settledYet(waiting)).toBe(false);
    await nextTurn();
    expect(await waiting).toEqual({ value: [1, 2], done: false });
  });

  test('a waiting nextBatch is woken at once when maxBatch values are buffered', async () => {
    const channel = new Channel<number>(3);
    const waiting = channel.nextBatch();
    channel.push(1);
    channel.push(2);
    expect(await settledYet(waiting)).toBe(false);
    channel.push(3);
    expect(await settledYet(waiting)).toBe(true);
    expect(await waiting).toEqual({ value: [1, 2, 3], done: false });
  });

  test('end hands a waiting nextBatch what is buffered, then done; an error comes after the values', async () => {
    const channel = new Channel<number>();
    const waiting = channel.nextBatch();
    channel.push(1);
    channel.end();
    expect(await waiting).toEqual({ value: [1], done: false });
    expect(await channel.nextBatch()).toEqual({ value: undefined, done: true });

    const failing = new Channel<number>();
    failing.push(1);
    const error = new Error('boom');
    failing.end(error, true);
    expect(await failing.nextBatch()).toEqual({ value: [1], done: false });
    await expect(failing.nextBatch()).rejects.toBe(error);
    const idle = new Channel<number>();
    const pending = idle.nextBatch();
    idle.end(error, true);
    await expect(pending).rejects.toBe(error);
  });

  test('detach settles a waiting nextBatch as done', async () => {
    const channel = new Channel<number>();
    const waiting = channel.nextBatch();
    channel.push(1);
    channel.detach();
    expect(await waiting).toEqual({ value: undefined, done: true });
  });
});
