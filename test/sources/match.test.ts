import { describe, expect, test } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import { abortable } from '../../src/internal/abort.js';
import { matchSourceKey, redactSourceRef } from '../../src/sources/match.js';

function notFound(run: () => unknown): AgentSessionsError {
  try {
    run();
  } catch (error) {
    if (AgentSessionsError.hasCode(error, 'SOURCE_NOT_FOUND')) return error;
    throw error;
  }
  throw new Error('expected SOURCE_NOT_FOUND');
}

describe('matchSourceKey', () => {
  test('matchSourceKey returns the exact key even when others share its stable key', () => {
    const keys = ['https://hub.example/coder?tag=v1', 'https://hub.example/coder?tag=v2'];
    expect(matchSourceKey('https://hub.example/coder?tag=v2', keys)).toBe('https://hub.example/coder?tag=v2');
  });

  test('matchSourceKey returns the single key with the same stable key', () => {
    expect(
      matchSourceKey('https://hub.example/coder?tag=v2', ['coder', 'https://hub.example/coder?tag=v3']),
    ).toBe('https://hub.example/coder?tag=v3');
  });

  test('matchSourceKey matches an encoded reference to its decoded key', () => {
    expect(
      matchSourceKey('https%3A%2F%2Fhub.example%2Fcoder%3Ftag%3Dv1', ['https://hub.example/coder']),
    ).toBe('https://hub.example/coder');
  });

  test('matchSourceKey rejects with SOURCE_NOT_FOUND naming the reference when nothing matches', () => {
    const error = notFound(() => matchSourceKey('reviewer', ['coder']));
    expect(error.message).toContain('"reviewer"');
  });

  test('matchSourceKey rejects with SOURCE_NOT_FOUND naming every candidate (query and fragment redacted) when several match', () => {
    const error = notFound(() =>
      matchSourceKey('https://hub.example/coder?tag=v9', [
        'https://hub.example/coder?tag=v1',
        'https://hub.example/coder#x',
        'other',
      ]),
    );
    expect(error.message).toContain('ambiguous');
    expect(error.message).toContain('2 sources');
    expect(error.message).toContain('"https://hub.example/coder?…"');
    expect(error.message).toContain('"https://hub.example/coder#…"');
    expect(error.message).not.toContain('"other"');
  });

  test("source errors never show a URL ref's query, fragment or user info (they may carry secrets)", () => {
    const secretRef = 'https://user:pass@hub.example/coder?token=s3cret#frag';
    const messages = [
      notFound(() => matchSourceKey(secretRef, ['elsewhere'])).message,
      notFound(() => matchSourceKey(secretRef, [`${secretRef}&a=1`, `${secretRef}&b=2`])).message,
    ];
    for (const message of messages) {
      expect(message).toContain('https://hub.example/coder?…');
      for (const secret of ['s3cret', 'token', 'user', 'pass', 'frag']) expect(message).not.toContain(secret);
    }
    expect(redactSourceRef('coder')).toBe('coder');
    expect(redactSourceRef('./agents/coder.yaml')).toBe('./agents/coder.yaml');
  });

  test('matchSourceKey does not match names by stable key beyond equality', () => {
    notFound(() => matchSourceKey('coder', ['Coder', 'coder.yaml']));
  });
});

describe('abortable', () => {
  test('abortable rejects with the reason of an already aborted signal', async () => {
    const reason = new Error('stop');
    await expect(abortable(Promise.resolve(1), AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  test('abortable rejects with the reason when the signal aborts while waiting', async () => {
    const controller = new AbortController();
    const waiting = abortable(new Promise<never>(() => {}), controller.signal);
    const reason = new Error('later');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });

  test('abortable passes the value through without a signal or when not aborted', async () => {
    await expect(abortable(Promise.resolve(1), undefined)).resolves.toBe(1);
    await expect(abortable(Promise.resolve(2), new AbortController().signal)).resolves.toBe(2);
    await expect(abortable(Promise.reject(new Error('x')), new AbortController().signal)).rejects.toThrow(
      'x',
    );
  });
});
