import { describe, expect, test } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import { StaticSourceResolver } from '../../src/sources/static.js';

describe('StaticSourceResolver', () => {
  test('resolve returns the exact key and its definition', async () => {
    const definition = { model: 'm' };
    const sources = new StaticSourceResolver({ coder: definition, reviewer: {} });
    const resolved = await sources.resolve('coder');
    expect(resolved).toEqual({ key: 'coder', definition });
    expect(resolved.definition).toBe(definition);
  });

  test('resolve rejects with SOURCE_NOT_FOUND naming an unknown reference', async () => {
    const sources = new StaticSourceResolver({ coder: {} });
    await expect(sources.resolve('reviewer')).rejects.toSatisfy(
      (error) =>
        AgentSessionsError.hasCode(error, 'SOURCE_NOT_FOUND') && error.message.includes('"reviewer"'),
    );
  });

  test('resolve rejects with SOURCE_NOT_FOUND for inherited names such as toString', async () => {
    const sources = new StaticSourceResolver({ coder: {} });
    await expect(sources.resolve('toString')).rejects.toSatisfy((error) =>
      AgentSessionsError.hasCode(error, 'SOURCE_NOT_FOUND'),
    );
  });

  test('a session key with an old tag resolves to the catalogue entry with the same stable key', async () => {
    const sources = new StaticSourceResolver({ 'https://hub.example/agents/coder?tag=v3': { version: 3 } });
    await expect(sources.resolve('https://hub.example/agents/coder?tag=v2')).resolves.toEqual({
      key: 'https://hub.example/agents/coder?tag=v3',
      definition: { version: 3 },
    });
  });

  test('a session key with an old tag is refused when two catalogue entries share its stable key', async () => {
    const sources = new StaticSourceResolver({
      'https://hub.example/agents/coder?tag=v3': {},
      'https://hub.example/agents/coder?tag=v4': {},
    });
    const error = await sources
      .resolve('https://hub.example/agents/coder?tag=v2')
      .catch((caught: unknown) => caught);
    expect(AgentSessionsError.hasCode(error, 'SOURCE_NOT_FOUND')).toBe(true);
    // Both candidates are counted; their queries are not shown (they may carry tokens).
    expect((error as Error).message).toContain('ambiguous: it matches 2 sources');
    expect((error as Error).message).not.toContain('tag=');
  });

  test('resolve rejects with the reason of an aborted signal', async () => {
    const reason = new Error('aborted');
    await expect(
      new StaticSourceResolver({ coder: {} }).resolve('coder', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
  });

  test('list returns every key in order', async () => {
    await expect(new StaticSourceResolver({ b: 1, a: 2 }).list()).resolves.toEqual([
      { key: 'b' },
      { key: 'a' },
    ]);
  });

  test('the resolver does not see changes made to the record after construction', async () => {
    const record: Record<string, unknown> = { coder: 1 };
    const sources = new StaticSourceResolver(record);
    record.reviewer = 2;
    await expect(sources.list()).resolves.toEqual([{ key: 'coder' }]);
  });

  test('the constructor throws INVALID_ARGUMENT for a value that is not a record', () => {
    expect(() => new StaticSourceResolver(null as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
