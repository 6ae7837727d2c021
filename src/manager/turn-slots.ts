/**
 * The global turn limit (`maxConcurrentTurns`): at most that many turns of the manager run at once,
 * and the others wait for a slot in one first-in, first-out queue, `p-queue`'s.
 *
 * A turn asks for a slot after its record is loaded and its event numbers reserved, before
 * `stream_started`; it holds the slot until it stopped (each turn of a TurnStream — the first, a
 * steered one, a follow-up — asks anew, so a session with many follow-ups takes its place in line
 * between them). While it waits the turn holds its session's busy lock as a running one does, and
 * its cancellation (signal, `cancel()`, `cancelTurn`, delete, close) takes it out of the queue at
 * once: the wait rejects with the cancellation's reason.
 *
 * `p-queue` is ESM-only: it is loaded with a dynamic `import()` (kept as is in the CommonJS build,
 * where it works on every supported Node) when the first slot is asked for, so a manager without
 * the limit never loads it.
 */
import type PQueue from 'p-queue';

/** One turn waiting for a slot. */
export interface SlotWait {
  readonly turnId: string;
  /** ISO-8601: when the turn started waiting. */
  readonly since: string;
}

/** What a turn that asks for a slot is told. */
export interface SlotRequest {
  turnId: string;
  /** The turn's signal: aborting it while the turn waits takes it out of the queue. */
  signal: AbortSignal;
  /** Called synchronously when the turn has to wait, with its place in line (1: next). */
  onQueued(wait: SlotWait, position: number): void;
}

/** The slots of one manager. */
export class TurnSlots {
  readonly limit: number;
  /** Turns waiting, in the order they asked (the queue's own order). */
  readonly #waiting = new Set<SlotWait>();
  #queue: Promise<PQueue> | undefined;
  #running = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Turns waiting for a slot now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Turns holding a slot now. */
  get running(): number {
    return this.#running;
  }

  /** The place in line of a waiting turn (1: next), or `undefined` once it stopped waiting. */
  position(wait: SlotWait): number | undefined {
    let position = 0;
    for (const entry of this.#waiting) {
      position++;
      if (entry === wait) return position;
    }
    return undefined;
  }

  /**
   * Resolves, once the turn has a slot, to the function that gives it back (idempotent). Rejects
   * with the signal's reason when the signal aborts first.
   */
  async acquire(request: SlotRequest): Promise<() => void> {
    const { signal } = request;
    const queue = await this.#load();
    signal.throwIfAborted();
    // The queue sees its own signal, linked to the turn's only while the turn waits: p-queue also
    // ends a running task when its signal aborts, and a cancelled turn keeps its slot until it
    // stopped (its runtime may still be winding down).
    const waitController = new AbortController();
    const onAbort = () => waitController.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = false;
    let wait: SlotWait | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        queue
          .add(
            () => {
              started = true;
              signal.removeEventListener('abort', onAbort);
              this.#running++;
              resolve();
              return held;
            },
            { signal: waitController.signal },
          )
          .then(
            () => {
              this.#running--;
            },
            (error: unknown) => {
              if (started) this.#running--;
              reject(error);
            },
          );
        // p-queue starts a task synchronously when a slot is free: anything else waits in line.
        if (!started) {
          wait = { turnId: request.turnId, since: new Date().toISOString() };
          this.#waiting.add(wait);
          request.onQueued(wait, this.#waiting.size);
        }
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (wait) this.#waiting.delete(wait);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  }

  #load(): Promise<PQueue> {
    this.#queue ??= import('p-queue').then(({ default: Queue }) => new Queue({ concurrency: this.limit }));
    return this.#queue;
  }
}
