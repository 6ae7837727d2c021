// A live tail over a log that can only be read (PostgreSQL, a file): replay after the last seen seq,
// and when nothing new came, wait `intervalMs` (or until `wake` is called) and read again.
import type { DurableReplay } from '../durable-event-log.js';
import type { SessionEvent } from '../events.js';
import { unrefTimer } from './abort.js';

/** Options of {@link pollTail}. */
export interface PollTailOptions {
  signal?: AbortSignal | undefined;
  /** Wait between reads that found nothing. */
  intervalMs: number;
  /** Events read per replay. */
  batch?: number;
  /** Lets the log wake its waiting tails at once (an append in this process). Returns an unsubscribe. */
  onWake?: (wake: () => void) => () => void;
}

/** The events after `since`, then new ones as `replay` finds them. See the module comment. */
export async function* pollTail(
  replay: (since: number, limit: number) => Promise<DurableReplay>,
  since: number,
  options: PollTailOptions,
): AsyncGenerator<SessionEvent> {
  const { signal, intervalMs } = options;
  const batch = options.batch ?? 500;
  signal?.throwIfAborted();
  let last = since;
  let wake: (() => void) | undefined;
  let woken = false;
  const unsubscribe = options.onWake?.(() => {
    woken = true;
    wake?.();
  });
  try {
    for (;;) {
      woken = false;
      const { events } = await replay(last, batch);
      signal?.throwIfAborted();
      for (const event of events) {
        if (event.seq <= last) continue;
        last = event.seq;
        yield event;
      }
      if (events.length >= batch || woken) continue;
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          wake = undefined;
          resolve();
        };
        const onAbort = () => {
          clearTimeout(timer);
          wake = undefined;
          reject(signal?.reason);
        };
        const timer = setTimeout(done, intervalMs);
        unrefTimer(timer);
        wake = done;
        signal?.addEventListener('abort', onAbort, { once: true });
        if (signal?.aborted) onAbort();
      });
    }
  } finally {
    unsubscribe?.();
  }
}

/**
 * The tails of one log waiting in this process, by session: an append through the log calls
 * {@link TailWakers.wake} so they read at once instead of at their next poll.
 */
export class TailWakers {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** The `onWake` option of {@link pollTail} for a tail of `sessionId`. */
  onWake(sessionId: string): (wake: () => void) => () => void {
    return (wake) => {
      let set = this.#waiting.get(sessionId);
      if (set === undefined) {
        set = new Set();
        this.#waiting.set(sessionId, set);
      }
      set.add(wake);
      return () => {
        set.delete(wake);
        if (set.size === 0 && this.#waiting.get(sessionId) === set) this.#waiting.delete(sessionId);
      };
    };
  }

  /** Wakes every tail of `sessionId` waiting in this process. */
  wake(sessionId: string): void {
    for (const wake of this.#waiting.get(sessionId) ?? []) wake();
  }
}
