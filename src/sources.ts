/**
 * The SourceResolver contract: turns an agent reference (`coder`, `./agents/coder.yaml`,
 * `https://hub.example/agents/coder?tag=v2`) into an agent definition for the runtime factory.
 *
 * A resolver MUST:
 * - reject an unknown reference with `SOURCE_NOT_FOUND` and a source it cannot reach now with
 *   `SOURCE_UNAVAILABLE`;
 * - resolve an exact key first; otherwise the single source whose {@link stableSourceKey} equals the
 *   requested one's; none or several is `SOURCE_NOT_FOUND`, never a guess;
 * - honour `signal`: an aborted signal rejects with its reason.
 */

/** A resolved agent source. */
export interface ResolvedSource {
  /** The key the source is known by (what a session stores in `source`). */
  key: string;
  /** The agent definition, opaque to the manager, handed to the runtime factory. */
  definition: unknown;
}

/** A source a resolver can list. */
export interface SourceInfo {
  key: string;
  /** A human-readable name or description. */
  name?: string;
}

/** Options of {@link SourceResolver.resolve}. */
export interface ResolveOptions {
  signal?: AbortSignal;
}

/** Resolves agent references. */
export interface SourceResolver {
  resolve(ref: string, options?: ResolveOptions): Promise<ResolvedSource>;
  list?(): Promise<SourceInfo[]>;
}
