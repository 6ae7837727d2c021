import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { RefreshingSourceResolver, type SourceLoader } from '../../src/sources/refreshing.js';
import { StaticSourceResolver } from '../../src/sources/static.js';
import { type Deferred, deferred } from '../helpers/assertions.js';

/** A loader whose every call waits for the test to settle it. */
function controlledLoader() {
  const calls: Deferred<Record<string, unknown>>[] = [];
  const signals: AbortSignal[] = [];
  const load: SourceLoader = ({ signal }) => {
    const call = deferred<Record<string, unknown>>();
    calls.push(call);
    signals.push(signal);
    return call.promise;
  };
  return { load, calls, signals };
}

function recordingLogger(): Logger & {
  warnings: Array<{ message: string; fields?: Record<string, unknown> }>;
} {
  const warnings: Array<{ message: string; fields?: Record<string, unknown> }> = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn(message, fields) {
      warnings.push({ message, ...(fields ? { fields } : {}) });
    },
    error() {},
  };
}

async function settled<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown; pending: boolean }> {
  const state: { value?: T; error?: unknown; pending: boolean } = { pending: true };
  promise.then(
    (value) => Object.assign(state, { value, pending: false }),
    (error: unknown) => Object.assign(state, { error, pending: false }),
  );
  await vi.advanceTimersByTimeAsync(0);
  return state;
}

let resolvers: RefreshingSourceResolver[] = [];
function create(...args: ConstructorParameters<typeof RefreshingSourceResolver>): RefreshingSourceResolver {
  const resolver = new RefreshingSourceResolver(...args);
  resolvers.push(resolver);
  return resolver;
}

beforeEach(() => {
  vi.useFakeTimers();
  resolvers = [];
});

afterEach(async () => {
  for (const resolver of resolvers) await resolver.close();
  vi.useRealTimers();
});

describe('RefreshingSourceResolver', () => {
  test('the constructor starts the first load at once and returns before it ends', () => {
    const { load, calls } = controlledLoader();
    create(load, { refreshIntervalMs: 1000 });
    expect(calls).toHaveLength(1);
  });

  test('resolve waits for the first load, then resolves from it', async () => {
    const { load, calls } = controlledLoader();
    const sources = create(load, { refreshIntervalMs: 1000 });
    const reading = settled(sources.resolve('coder'));
    expect((await reading).pending).toBe(true);
    calls[0]!.resolve({ coder: { v: 1 } });
    await expect(sources.resolve('coder')).resolves.toEqual({ key: 'coder', definition: { v: 1 } });
    expect(await reading).toMatchObject({ pending: false, value: { key: 'coder', definition: { v: 1 } } });
  });

  test('list waits for the first load and lists its keys', async () => {
    const { load, calls } = controlledLoader();
    const sources = create(load, { refreshIntervalMs: 1000 });
    const listing = sources.list();
    calls[0]!.resolve({ coder: 1, reviewer: 2 });
    await expect(listing).resolves.toEqual([{ key: 'coder' }, { key: 'reviewer' }]);
  });

  test('resolve serves cached data without calling the loader again', async () => {
    const load = vi.fn<SourceLoader>(async () => ({ coder: 1 }));
    const sources = create(load, { refreshIntervalMs: 1000 });
    await sources.resolve('coder');
    await sources.resolve('coder');
    await sources.list();
    expect(load).toHaveBeenCalledTimes(1);
  });

  test('resolve does not wait for a refresh in progress', async () => {
    const { load, calls } = controlledLoader();
    const sources = create(load, { refreshIntervalMs: 1000 });
    calls[0]!.resolve({ coder: 1 });
    await sources.resolve('coder');
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(2);
    await expect(sources.resolve('coder')).resolves.toEqual({ key: 'coder', definition: 1 });
  });

  test('a refresh that succeeds replaces the data', async () => {
    let version = 1;
    const load = vi.fn<SourceLoader>(async () => (version === 1 ? { coder: 1 } : { reviewer: 2 }));
    const sources = create(load, { refreshIntervalMs: 1000 });
    await expect(sources.resolve('coder')).resolves.toMatchObject({ definition: 1 });
    version = 2;
    await vi.advanceTimersByTimeAsync(999);
    expect(load).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(load).toHaveBeenCalledTimes(2);
    await expect(sources.resolve('reviewer')).resolves.toMatchObject({ definition: 2 });
    await expect(sources.resolve('coder')).rejects.toSatisfy((error) =>
      AgentSessionsError.hasCode(error, 'SOURCE_NOT_FOUND'),
    );
  });

  test('a refresh that fails keeps the last good data and logs a warning', async () => {
    const logger = recordingLogger();
    const failure = new Error('hub down');
    const load = vi.fn<SourceLoader>(async () => ({ coder: 1 }));
    const sources = create(load, { refreshIntervalMs: 1000, logger });
    await sources.resolve('coder');
    load.mockRejectedValueOnce(failure);
    await vi.advanceTimersByTimeAsync(1000);
    expect(load).toHaveBeenCalledTimes(2);
    await expect(sources.resolve('coder')).resolves.toEqual({ key: 'coder', definition: 1 });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.message).toContain('keeping the last loaded sources');
    expect(logger.warnings[0]?.fields?.error).toBe(failure);
  });

  test('a refresh after a failed one tries again and can succeed', async () => {
    const load = vi.fn<SourceLoader>(async () => ({ coder: 1 }));
    const sources = create(load, { refreshIntervalMs: 1000 });
    await sources.resolve('coder');
    load.mockRejectedValueOnce(new Error('down')).mockResolvedValueOnce({ coder: 3 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(load).toHaveBeenCalledTimes(3);
    await expect(sources.resolve('coder')).resolves.toMatchObject({ definition: 3 });
  });

  test('a loader that resolves to something other than a record fails the load', async () => {
    const logger = recordingLogger();
    const load = vi.fn<SourceLoader>(async () => ({ coder: 1 }));
    const sources = create(load, { refreshIntervalMs: 1000, logger });
    await sources.resolve('coder');
    load.mockResolvedValueOnce(null as never);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(sources.resolve('coder')).resolves.toMatchObject({ definition: 1 });
    expect(logger.warnings).toHaveLength(1);
  });

  test('resolve rejects with SOURCE_UNAVAILABLE keeping the cause when the first load failed', async () => {
    const failure = new Error('hub down');
    const logger = recordingLogger();
    const sources = create(async () => Promise.reject(failure), { refreshIntervalMs: 1000, logger });
    const error = await sources.resolve('coder').catch((caught: unknown) => caught);
    expect(AgentSessionsError.hasCode(error, 'SOURCE_UNAVAILABLE')).toBe(true);
    expect((error as AgentSessionsError).cause).toBe(failure);
    await expect(sources.list()).rejects.toSatisfy((caught) =>
      AgentSessionsError.hasCode(caught, 'SOURCE_UNAVAILABLE'),
    );
    expect(logger.warnings.map((warning) => warning.message)).toEqual(['loading agent sources failed']);
  });

  test('after a failed first load the next refresh tries again', async () => {
    const load = vi
      .fn<SourceLoader>()
      .mockRejectedValueOnce(new Error('down'))
      .mockResolvedValue({ coder: 1 });
    const sources = create(load, { refreshIntervalMs: 1000 });
    await expect(sources.resolve('coder')).rejects.toSatisfy((error) =>
      AgentSessionsError.hasCode(error, 'SOURCE_UNAVAILABLE'),
    );
    expect(load).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(load).toHaveBeenCalledTimes(2);
    await expect(sources.resolve('coder')).resolves.toMatchObject({ definition: 1 });
  });

  test('with an interval of 0 it loads exactly once', async () => {
    const load = vi.fn<SourceLoader>(async () => ({ coder: 1 }));
    const sources = create(load, { refreshIntervalMs: 0 });
    await sources.resolve('coder');
    await vi.advanceTimersByTimeAsync(24 * 60 * 60 * 1000);
    await sources.resolve('coder');
    expect(load).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('with an interval of 0 a read after a failed first load loads again', async () => {
    const load = vi
      .fn<SourceLoader>()
      .mockRejectedValueOnce(new Error('down'))
      .mockResolvedValue({ coder: 1 });
    const sources = create(load, { refreshIntervalMs: 0 });
    await expect(sources.resolve('coder')).rejects.toSatisfy((error) =>
      AgentSessionsError.hasCode(error, 'SOURCE_UNAVAILABLE'),
    );
    await expect(sources.resolve('coder')).resolves.toMatchObject({ definition: 1 });
    await sources.resolve('coder');
    expect(load).toHaveBeenCalledTimes(2);
  });

  test('loads never overlap: the next starts an interval after the previous ends', async () => {
    const { load, calls } = controlledLoader();
    create(load, { refreshIntervalMs: 1000 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toHaveLength(1);
    calls[0]!.resolve({});
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(2);
  });

  test('close stops refreshing', async () => {
    const load = vi.fn<SourceLoader>(async () => ({ coder: 1 }));
    const sources = create(load, { refreshIntervalMs: 1000 });
    await sources.resolve('coder');
    await sources.close();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(load).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
    await expect(sources.resolve('coder')).resolves.toMatchObject({ definition: 1 });
  });

  test('close aborts a load in progress and waiting reads reject with SOURCE_UNAVAILABLE', async () => {
    const { load, calls, signals } = controlledLoader();
    const sources = create(load, { refreshIntervalMs: 1000 });
    const reading = sources.resolve('coder').catch((caught: unknown) => caught);
    signals[0]!.addEventListener('abort', () => calls[0]!.reject(signals[0]!.reason));
    await sources.close();
    expect(signals[0]!.aborted).toBe(true);
    expect(AgentSessionsError.hasCode(signals[0]!.reason, 'CLOSED')).toBe(true);
    expect(AgentSessionsError.hasCode(await reading, 'SOURCE_UNAVAILABLE')).toBe(true);
  });

  test('close does not wait for a loader that ignores its signal, and no load follows it', async () => {
    const { load, calls } = controlledLoader();
    const sources = create(load, { refreshIntervalMs: 1000 });
    expect((await settled(sources.close())).pending).toBe(false);
    calls[0]!.resolve({ coder: 1 });
    await expect(sources.resolve('coder')).resolves.toMatchObject({ definition: 1 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toHaveLength(1);
  });

  test('the refresh timer is unref-ed so it never keeps the process alive', async () => {
    vi.useRealTimers();
    const unref = vi.fn();
    const original = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      callback: () => void,
      delay?: number,
    ) => {
      const timer = original(callback, delay);
      const realUnref = timer.unref.bind(timer);
      timer.unref = () => {
        unref();
        return realUnref();
      };
      return timer;
    }) as typeof setTimeout);
    try {
      const sources = create(async () => ({ coder: 1 }), { refreshIntervalMs: 60_000 });
      await sources.resolve('coder');
      await new Promise<void>((resolve) => queueMicrotask(resolve));
      expect(unref).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  test('resolve rejects with the reason of a signal that aborts while waiting for the first load', async () => {
    const { load } = controlledLoader();
    const sources = create(load, { refreshIntervalMs: 1000 });
    const controller = new AbortController();
    const reading = sources.resolve('coder', { signal: controller.signal });
    const reason = new Error('gave up');
    controller.abort(reason);
    await expect(reading).rejects.toBe(reason);
    await expect(sources.resolve('coder', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  test('a session key with an old tag resolves to the catalogue entry with the same stable key', async () => {
    const sources = create(async () => ({ 'https://hub.example/agents/coder?tag=v3': { v: 3 } }), {
      refreshIntervalMs: 0,
    });
    await expect(sources.resolve('https://hub.example/agents/coder?tag=v2')).resolves.toEqual({
      key: 'https://hub.example/agents/coder?tag=v3',
      definition: { v: 3 },
    });
  });

  test('a session key with an old tag is refused when two catalogue entries share its stable key', async () => {
    const sources = create(
      async () => ({
        'https://hub.example/agents/coder?tag=v3': {},
        'https://hub.example/agents/coder?tag=v4': {},
      }),
      { refreshIntervalMs: 0 },
    );
    await expect(sources.resolve('https://hub.example/agents/coder?tag=v2')).rejects.toSatisfy(
      (error) => AgentSessionsError.hasCode(error, 'SOURCE_NOT_FOUND') && error.message.includes('ambiguous'),
    );
  });

  test('an inner resolver is loaded through list and resolve, and cached', async () => {
    const inner = new StaticSourceResolver({ coder: { v: 1 }, reviewer: { v: 2 } });
    const list = vi.spyOn(inner, 'list');
    const resolve = vi.spyOn(inner, 'resolve');
    const sources = create(inner, { refreshIntervalMs: 1000 });
    await expect(sources.resolve('reviewer')).resolves.toEqual({ key: 'reviewer', definition: { v: 2 } });
    await sources.resolve('coder');
    expect(list).toHaveBeenCalledTimes(1);
    expect(resolve).toHaveBeenCalledTimes(2);
  });

  test('an inner resolver key that is not found when resolved is left out and logged', async () => {
    const logger = recordingLogger();
    const inner = new StaticSourceResolver({ coder: 1 });
    vi.spyOn(inner, 'list').mockResolvedValue([{ key: 'coder' }, { key: 'gone' }]);
    const sources = create(inner, { refreshIntervalMs: 0, logger });
    await expect(sources.list()).resolves.toEqual([{ key: 'coder' }]);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.fields?.key).toBe('gone');
  });

  test('an inner resolver failure other than SOURCE_NOT_FOUND fails the load', async () => {
    const inner = new StaticSourceResolver({ coder: 1 });
    const failure = new Error('disk');
    vi.spyOn(inner, 'resolve').mockRejectedValue(failure);
    const sources = create(inner, { refreshIntervalMs: 0 });
    const error = await sources.resolve('coder').catch((caught: unknown) => caught);
    expect((error as AgentSessionsError).cause).toBe(failure);
  });

  test.each([
    ['a negative interval', -1],
    ['NaN', Number.NaN],
    ['an interval above 2^31 - 1', 2 ** 31],
    ['a missing interval', undefined],
  ])('the constructor throws INVALID_ARGUMENT for %s', (_name, refreshIntervalMs) => {
    expect(
      () =>
        new RefreshingSourceResolver(async () => ({}), { refreshIntervalMs: refreshIntervalMs as number }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('the constructor throws INVALID_ARGUMENT for a source that is neither a loader nor a listing resolver', () => {
    expect(
      () =>
        new RefreshingSourceResolver({ resolve: async () => ({ key: '', definition: 1 }) } as never, {
          refreshIntervalMs: 0,
        }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
