// The server suites' fallback when a server is unreachable: loud locally, a failure in CI.
import { describe, expect, test } from 'vitest';
import { type Register, whenServer } from './helpers/servers.js';

function record(ci: boolean, available: boolean) {
  const registered: { name: string; body: Parameters<Register>[1] }[] = [];
  let suiteRegistered = false;
  whenServer(
    available ? { available: true } : { available: false, reason: 'connect ECONNREFUSED 127.0.0.1:5432' },
    'PostgresStore suites',
    () => {
      suiteRegistered = true;
    },
    { ci, test: (name, body) => registered.push({ name, body }) },
  );
  return { registered, suiteRegistered };
}

describe('whenServer', () => {
  test('registers the suite itself when the server answered', () => {
    const { registered, suiteRegistered } = record(true, true);
    expect(suiteRegistered).toBe(true);
    expect(registered).toEqual([]);
  });

  test('without CI, one test named NOT RUN with the reason, which skips with the reason', () => {
    const { registered, suiteRegistered } = record(false, false);
    expect(suiteRegistered).toBe(false);
    expect(registered).toHaveLength(1);
    expect(registered[0]!.name).toBe(
      'NOT RUN: PostgresStore suites — server unreachable (connect ECONNREFUSED 127.0.0.1:5432)',
    );
    const notes: (string | undefined)[] = [];
    registered[0]!.body({ skip: (note) => notes.push(note) });
    expect(notes).toEqual(['server unreachable: connect ECONNREFUSED 127.0.0.1:5432']);
  });

  test('with CI=true, the NOT RUN test fails naming the server', () => {
    const { registered } = record(true, false);
    const skipped: unknown[] = [];
    expect(() => registered[0]!.body({ skip: (note) => skipped.push(note) })).toThrow(
      /PostgresStore suites needs its server under CI=true.*ECONNREFUSED/,
    );
    expect(skipped).toEqual([]);
  });
});
