import { AgentSessionsError, ErrorCode, InvalidArgumentError } from '../errors.js';
import { abortable, unrefTimer } from '../internal/abort.js';
import { type Logger, silentLogger } from '../logger.js';
import type { ResolvedSource, ResolveOptions, SourceInfo, SourceResolver } from '../sources.js';
import { matchSourceKey } from './match.js';

/**
 * Loads every agent definition at once, by source key. It is given a signal that aborts when the
 * resolver is closed.
 */
export type SourceLoader = (options: { signal: AbortSignal }) => Promise<Readonly<Record<string, unknown>>>;

/** A resolver that can list its sources, which {@link RefreshingSourceResolver} can cache. */
export interface ListableSourceResolver extends SourceResolver {
  list(): Promise<SourceInfo[]>;
}

/** Options of {@link RefreshingSourceResolver}. */
export interface RefreshingSourceOptions {
  /**
   * How long to wait after a load ends before the next one starts, in milliseconds. `0` loads once
   * (and, only while no load has ever succeeded, tries again on the next read). At most 2^31 - 1.
   */
  refreshIntervalMs: number;
  /** Told (at `warn`) when a load fails or a listed source cannot be resolved. @default silent */
  logger?: Logger;
}

/** The longest delay `setTimeout` accepts. */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

/**
 * A resolver that keeps every agent definition in memory and reloads them all periodically
 * (the SourceResolver contract in src/sources.ts): built for a catalogue that is slow or remote, or a directory that should not be read
 * on every turn.
 *
 * It loads from either
 * - a {@link SourceLoader}, a function resolving to a record of definitions by key; or
 * - a {@link ListableSourceResolver}: each load calls its `list()` and then `resolve(key)` for each
 *   listed key, one after the other. A listed key that then resolves to `SOURCE_NOT_FOUND` (it was
 *   removed meanwhile, or is ambiguous) is left out and logged; any other failure fails the load.
 *
 * Behaviour:
 * - The constructor returns at once; the first load starts immediately. Reads (`resolve`, `list`)
 *   made before it ends wait for it.
 * - Afterwards reads are served from memory and never wait for, or call, the loader.
 * - `refreshIntervalMs` after a load ends, the next starts (loads never overlap). A load that fails
 *   keeps the last good data and is logged; one that succeeds replaces all the data at once.
 * - While no load has succeeded yet, reads reject with `SOURCE_UNAVAILABLE` whose `cause` is the
 *   last load's error; the next scheduled load tries again (with an interval of `0`, the next read
 *   does).
 * - Resolution follows the contract (src/sources.ts) on the cached keys: the exact key, else the single key with the same
 *   {@link stableSourceKey}; none or several is `SOURCE_NOT_FOUND`.
 * - {@link close} stops refreshing and aborts a load in progress; cached data keeps being served.
 *   Timers are `unref`'d: the resolver never keeps a process alive.
 *
 * @example
 * ```ts
 * const sources = new RefreshingSourceResolver(
 *   async ({ signal }) => (await fetch('https://hub.example/agents.json', { signal })).json(),
 *   { refreshIntervalMs: 60_000 },
 * );
 * ```
 */
export class RefreshingSourceResolver implements SourceResolver {
  readonly #load: (signal: AbortSignal) => Promise<Map<string, unknown>>;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly #controller = new AbortController();
  #data: Map<string, unknown> | undefined;
  #lastError: unknown;
  #loading: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Starts the first load.
   *
   * @throws InvalidArgumentError when `source` is neither a function nor a resolver with `list()`,
   * or `refreshIntervalMs` is not a number from 0 to 2^31 - 1.
   */
  constructor(source: SourceLoader | ListableSourceResolver, options: RefreshingSourceOptions) {
    const intervalMs = options?.refreshIntervalMs;
    if (typeof intervalMs !== 'number' || !(intervalMs >= 0 && intervalMs <= MAX_INTERVAL_MS)) {
      throw new InvalidArgumentError(
        `refreshIntervalMs must be a number from 0 to ${MAX_INTERVAL_MS}, got ${String(intervalMs)}`,
      );
    }
    this.#intervalMs = intervalMs;
    this.#logger = options.logger ?? silentLogger;
    if (typeof source === 'function') {
      this.#load = async (signal) => toMap(await source({ signal }));
    } else if (
      typeof source === 'object' &&
      source !== null &&
      typeof source.resolve === 'function' &&
      typeof source.list === 'function'
    ) {
      this.#load = (signal) => loadAll(source, signal, this.#logger);
    } else {
      throw new InvalidArgumentError(
        'RefreshingSourceResolver needs a loader function or a source resolver with list()',
      );
    }
    this.#startLoad();
  }

  /**
   * Resolves `ref` from the cached definitions, waiting for the first load if it is still running.
   *
   * @throws AgentSessionsError `SOURCE_NOT_FOUND` when no key, or more than one, matches;
   * `SOURCE_UNAVAILABLE` (with the load's error as `cause`) while no load has succeeded.
   * @throws the signal's reason when `options.signal` aborts, also while waiting for the first load.
   */
  async resolve(ref: string, options: ResolveOptions = {}): Promise<ResolvedSource> {
    const data = await this.#current(options.signal);
    const key = matchSourceKey(ref, data.keys());
    return { key, definition: data.get(key) };
  }

  /**
   * Lists the cached keys, waiting for the first load if it is still running.
   *
   * @throws AgentSessionsError `SOURCE_UNAVAILABLE` while no load has succeeded.
   */
  async list(): Promise<SourceInfo[]> {
    const data = await this.#current(undefined);
    return [...data.keys()].map((key) => ({ key }));
  }

  /**
   * Stops refreshing and aborts a load in progress (its signal's reason is a `CLOSED` error). It does
   * not wait for that load to end: a loader that ignores its signal cannot hold it up. Cached data
   * keeps being served; what a load still running returns is kept too, but no further load starts.
   * Calling it again does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#controller.abort(new AgentSessionsError(ErrorCode.CLOSED, 'the source resolver was closed'));
  }

  async #current(signal: AbortSignal | undefined): Promise<Map<string, unknown>> {
    signal?.throwIfAborted();
    if (this.#data === undefined) {
      if (this.#loading === undefined && this.#intervalMs === 0 && !this.#closed) this.#startLoad();
      if (this.#loading !== undefined) await abortable(this.#loading, signal);
    }
    if (this.#data === undefined) {
      const error = this.#lastError;
      const detail = error instanceof Error ? error.message : String(error);
      throw new AgentSessionsError(
        ErrorCode.SOURCE_UNAVAILABLE,
        `agent sources could not be loaded: ${detail}`,
        {
          cause: error,
        },
      );
    }
    return this.#data;
  }

  #startLoad(): void {
    this.#loading = this.#runLoad().finally(() => {
      this.#loading = undefined;
      this.#schedule();
    });
  }

  // Never rejects: a failure is kept for readers and logged, and the next load tries again.
  async #runLoad(): Promise<void> {
    try {
      this.#data = await this.#load(this.#controller.signal);
      this.#lastError = undefined;
    } catch (error) {
      this.#lastError = error;
      if (this.#closed) return;
      this.#logger.warn(
        this.#data === undefined
          ? 'loading agent sources failed'
          : 'refreshing agent sources failed; keeping the last loaded sources',
        { error },
      );
    }
  }

  #schedule(): void {
    if (this.#closed || this.#intervalMs === 0) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#startLoad();
    }, this.#intervalMs);
    unrefTimer(timer);
    this.#timer = timer;
  }
}

function toMap(record: unknown): Map<string, unknown> {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new TypeError('the source loader did not resolve to a record of definitions by key');
  }
  return new Map(Object.entries(record));
}

async function loadAll(
  inner: ListableSourceResolver,
  signal: AbortSignal,
  logger: Logger,
): Promise<Map<string, unknown>> {
  const data = new Map<string, unknown>();
  for (const { key } of await inner.list()) {
    signal.throwIfAborted();
    try {
      data.set(key, (await inner.resolve(key, { signal })).definition);
    } catch (error) {
      if (!AgentSessionsError.hasCode(error, ErrorCode.SOURCE_NOT_FOUND)) throw error;
      logger.warn('a listed agent source could not be resolved; leaving it out', { key, error });
    }
  }
  return data;
}
