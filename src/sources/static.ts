import { InvalidArgumentError } from '../errors.js';
import type { ResolvedSource, ResolveOptions, SourceInfo, SourceResolver } from '../sources.js';
import { matchSourceKey } from './match.js';

/**
 * A resolver over a fixed set of agent definitions, keyed by source key: the simplest way to give
 * a `SessionManager` its agents, and a convenient one in tests.
 *
 * Resolution follows the SourceResolver contract (src/sources.ts): an exact key wins; otherwise the single key with the same
 * {@link stableSourceKey} (so a session that stored `https://hub.example/agents/coder?tag=v2`
 * still finds `https://hub.example/agents/coder?tag=v3`); none or several is `SOURCE_NOT_FOUND`.
 *
 * The record's own enumerable entries are read once, at construction: later changes to the object
 * are not seen. Definitions are handed out as they were given (not copied), since they are opaque
 * and may hold functions or class instances; a runtime factory should not mutate them.
 *
 * @example
 * ```ts
 * const sources = new StaticSourceResolver({ coder: { model: 'gpt-5', instructions: '…' } });
 * const manager = new SessionManager({ runtime, sources });
 * ```
 */
export class StaticSourceResolver implements SourceResolver {
  readonly #definitions: ReadonlyMap<string, unknown>;

  /**
   * @param record - Agent definitions by source key.
   * @throws InvalidArgumentError when `record` is not an object.
   */
  constructor(record: Readonly<Record<string, unknown>>) {
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new InvalidArgumentError('StaticSourceResolver expects a record of agent definitions by key');
    }
    // A Map rather than the object: lookups must not reach `toString` or other inherited names.
    this.#definitions = new Map(Object.entries(record));
  }

  /**
   * Resolves `ref` to its key and definition.
   *
   * @throws AgentSessionsError `SOURCE_NOT_FOUND` when no key, or more than one, matches.
   * @throws the signal's reason when `options.signal` is already aborted.
   */
  async resolve(ref: string, options: ResolveOptions = {}): Promise<ResolvedSource> {
    options.signal?.throwIfAborted();
    const key = matchSourceKey(ref, this.#definitions.keys());
    return { key, definition: this.#definitions.get(key) };
  }

  /** Lists every key, in the record's order. */
  async list(): Promise<SourceInfo[]> {
    return [...this.#definitions.keys()].map((key) => ({ key }));
  }
}
