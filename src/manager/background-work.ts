// Work of a session that may outlive the call that started it (a runtime still winding down after
// a cancel, queued messages being admitted), so `waitStopped` can wait for all of it.
import { AgentSessionsError, ErrorCode } from '../errors.js';

/** The session's work in flight, per session id. */
export class BackgroundWork {
  readonly #working = new Map<string, Set<Promise<unknown>>>();

  /** Registers `work` of a session until it settles. */
  track(sessionId: string, work: Promise<unknown>): void {
    let set = this.#working.get(sessionId);
    if (!set) {
      set = new Set();
      this.#working.set(sessionId, set);
    }
    set.add(work);
    const done = () => {
      set.delete(work);
      if (set.size === 0 && this.#working.get(sessionId) === set) this.#working.delete(sessionId);
    };
    work.then(done, done);
  }

  /** Resolves once no tracked work of the session is left (work tracked meanwhile included). */
  async settled(sessionId: string): Promise<void> {
    for (;;) {
      const working = [...(this.#working.get(sessionId) ?? [])];
      if (working.length === 0) return;
      await Promise.allSettled(working);
    }
  }

  /**
   * Resolves once `turn()` (what runs now, asked again after each wait) is `undefined` and no
   * tracked work of the session is left. `TIMEOUT` after `timeoutMs`.
   */
  async waitStopped(
    sessionId: string,
    turn: () => Promise<unknown> | undefined,
    timeoutMs: number,
  ): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const message = `session ${JSON.stringify(sessionId)} did not stop within ${timeoutMs} ms`;
        reject(new AgentSessionsError(ErrorCode.TIMEOUT, message));
      }, timeoutMs);
    });
    try {
      for (;;) {
        const running = turn();
        const working = [...(this.#working.get(sessionId) ?? [])];
        if (running === undefined && working.length === 0) return;
        await Promise.race([Promise.allSettled([running, ...working]), timeout]);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
