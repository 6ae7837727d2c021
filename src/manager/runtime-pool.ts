import { AgentSessionsError, ErrorCode, toAgentSessionsError } from '../errors.js';
import { unrefTimer } from '../internal/abort.js';
import type { Logger } from '../logger.js';
import type { Runtime, RuntimeFactory } from '../runtime.js';
import type { Session } from '../schemas.js';
import { redactSourceRef } from '../sources/match.js';
import type { ResolvedSource, SourceResolver } from '../sources.js';
import type { SessionCache } from './session-records.js';

interface Entry {
  runtime: Runtime;
  /** The source key it was made from (undefined: none). */
  sourceKey: string | undefined;
  controller: AbortController;
  timer: ReturnType<typeof setTimeout> | undefined;
  inUse: number;
}

/**
 * Runtime lifecycle: one runtime per session, made by the factory on first use with the resolved
 * source and agent, cached, and closed on delete, on close, after `idleTtlMs` unused, or when the
 * session switches to another source. Sources are resolved here, when a runtime is made: a
 * session's `source` is stored as given and resolved only when a turn (or a model call) needs it.
 */
export class RuntimePool {
  readonly #entries = new Map<string, Entry>();
  readonly #factory: RuntimeFactory;
  readonly #sources: SourceResolver | undefined;
  readonly #idleTtlMs: number;
  readonly #logger: Logger;
  readonly #onIdleClose: (sessionId: string) => void;

  constructor(options: {
    factory: RuntimeFactory;
    /** Without one, sources are opaque: stored as given, never resolved, and runtimes get none. */
    sources?: SourceResolver | undefined;
    idleTtlMs: number;
    logger: Logger;
    /** Called after a runtime was closed for being idle. */
    onIdleClose: (sessionId: string) => void;
  }) {
    this.#factory = options.factory;
    this.#sources = options.sources;
    this.#idleTtlMs = options.idleTtlMs;
    this.#logger = options.logger;
    this.#onIdleClose = options.onIdleClose;
  }

  /** Whether sources are resolved (the manager has a {@link SourceResolver}). */
  get resolvesSources(): boolean {
    return this.#sources !== undefined;
  }

  /**
   * The session's runtime: the cached one, or one made now from the session's source (resolved
   * here: `SOURCE_NOT_FOUND`, `SOURCE_UNAVAILABLE`). With `switchTo`, that source is resolved and
   * the runtime remade if it came from another source. `agent` is the agent the factory is told.
   */
  async forSession(
    cache: SessionCache,
    options: { signal?: AbortSignal; switchTo?: string; agent?: string } = {},
  ): Promise<Runtime> {
    const sessionId = cache.meta.id;
    if (options.switchTo === undefined) {
      const cached = this.peek(sessionId, null);
      if (cached) return cached;
    }
    const ref = options.switchTo ?? cache.meta.source;
    const source = this.#sources && ref !== undefined ? await this.#resolve(ref, options.signal) : undefined;
    const session = cache.copy();
    if (options.agent !== undefined) session.agent = options.agent;
    return this.acquire(session, source);
  }

  async #resolve(ref: string, signal: AbortSignal | undefined): Promise<ResolvedSource> {
    const sources = this.#sources as SourceResolver;
    try {
      return await sources.resolve(ref, signal === undefined ? {} : { signal });
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error;
      throw toAgentSessionsError(
        error,
        ErrorCode.SOURCE_UNAVAILABLE,
        `source ${JSON.stringify(redactSourceRef(ref))} could not be resolved`,
      );
    }
  }

  /** The source key the cached runtime was made from. */
  sourceKey(sessionId: string): string | undefined {
    return this.#entries.get(sessionId)?.sourceKey;
  }

  /** The cached runtime, if it was made from `sourceKey` (`null`: whatever its source). */
  peek(sessionId: string, sourceKey?: string | null): Runtime | undefined {
    const entry = this.#entries.get(sessionId);
    if (!entry) return undefined;
    if (sourceKey !== null && entry.sourceKey !== sourceKey) return undefined;
    return entry.runtime;
  }

  /**
   * The session's runtime, made from `source` when none is cached or the cached one came from
   * another source (which is closed first). The factory failing is `RUNTIME_FAILED`. `session` is
   * handed to the factory as is (`RuntimeInit.session`): pass a copy the runtime may keep.
   */
  async acquire(session: Session, source: ResolvedSource | undefined): Promise<Runtime> {
    const existing = this.#entries.get(session.id);
    if (existing && existing.sourceKey === source?.key) {
      // Restart the idle clock: a use outside a turn (models) must not leave it stopped for good.
      this.#armTimer(session.id, existing);
      return existing.runtime;
    }
    if (existing) await this.close(session.id);
    const controller = new AbortController();
    let runtime: Runtime;
    try {
      runtime = await this.#factory({
        session,
        ...(source === undefined ? {} : { source }),
        ...(session.agent === undefined ? {} : { agent: session.agent }),
        signal: controller.signal,
      });
    } catch (error) {
      throw toAgentSessionsError(
        error,
        ErrorCode.RUNTIME_FAILED,
        `runtime factory failed for session ${JSON.stringify(session.id)}`,
      );
    }
    if (typeof runtime?.run !== 'function') {
      throw new AgentSessionsError(
        ErrorCode.RUNTIME_FAILED,
        `runtime factory for session ${JSON.stringify(session.id)} returned no runtime with run()`,
      );
    }
    // A concurrent acquire may have won while the factory ran: keep the first, close ours.
    const raced = this.#entries.get(session.id);
    if (raced && raced.sourceKey === source?.key) {
      controller.abort();
      void this.#closeRuntime(session.id, runtime);
      return raced.runtime;
    }
    this.#entries.set(session.id, {
      runtime,
      sourceKey: source?.key,
      controller,
      timer: undefined,
      inUse: 0,
    });
    // Armed at once: a runtime made outside a turn (models) is closed when idle too; a turn's hold stops it.
    this.#armTimer(session.id, this.#entries.get(session.id) as Entry);
    return runtime;
  }

  /** Marks the runtime busy (a turn runs): it is not closed for idleness meanwhile. */
  hold(sessionId: string): void {
    const entry = this.#entries.get(sessionId);
    if (!entry) return;
    entry.inUse++;
    this.#clearTimer(entry);
  }

  /** The turn ended: the idle clock starts when nothing else holds it. */
  releaseHold(sessionId: string): void {
    const entry = this.#entries.get(sessionId);
    if (!entry) return;
    entry.inUse = Math.max(0, entry.inUse - 1);
    this.#armTimer(sessionId, entry);
  }

  /** Closes and forgets a session's runtime (errors are logged, never thrown). */
  async close(sessionId: string): Promise<void> {
    const entry = this.#entries.get(sessionId);
    if (!entry) return;
    this.#entries.delete(sessionId);
    this.#clearTimer(entry);
    entry.controller.abort(
      new AgentSessionsError(ErrorCode.CLOSED, `runtime of session ${sessionId} closed`),
    );
    await this.#closeRuntime(sessionId, entry.runtime);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#entries.keys()].map((id) => this.close(id)));
  }

  get size(): number {
    return this.#entries.size;
  }

  #armTimer(sessionId: string, entry: Entry): void {
    if (this.#idleTtlMs <= 0 || !Number.isFinite(this.#idleTtlMs) || entry.inUse > 0) return;
    this.#clearTimer(entry);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.#entries.get(sessionId) !== entry || entry.inUse > 0) return;
      void this.close(sessionId).then(() => this.#onIdleClose(sessionId));
    }, this.#idleTtlMs);
    unrefTimer(entry.timer);
  }

  #clearTimer(entry: Entry): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  async #closeRuntime(sessionId: string, runtime: Runtime): Promise<void> {
    try {
      await runtime.close?.();
    } catch (error) {
      this.#logger.warn('runtime close failed', { sessionId, error });
    }
  }
}
