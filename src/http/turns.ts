/**
 * Turns started over HTTP: each one's `TurnStream` is drained here (so it never buffers), and how it
 * ended is remembered for a while, so a client whose connection dropped reconnects to the rest of
 * its turn and its result (`GET /sessions/{id}/turns/{turnId}/events`).
 */
import type { TurnResult, TurnStream } from '../manager/types.js';

/** One turn stream started over HTTP. */
export interface TurnEntry {
  readonly sessionId: string;
  readonly turnId: string;
  readonly stream: TurnStream;
  /** The seq of the stream's first event (`undefined` if it had none). */
  readonly firstSeq: Promise<number | undefined>;
  /** Resolves once the stream ended; `result` and `finalSeq` are set then. */
  readonly done: Promise<void>;
  /** The seq of the stream's last event, once it ended. */
  finalSeq: number;
  result: TurnResult | undefined;
}

/** Remembers turns started over HTTP: running ones, and the last `retention` that ended. */
export class TurnRegistry {
  readonly #entries = new Map<string, TurnEntry>();
  readonly #ended: string[] = [];
  readonly #retention: number;

  constructor(retention: number) {
    this.#retention = retention;
  }

  /** Starts draining `stream` and remembers it. */
  start(sessionId: string, stream: TurnStream): TurnEntry {
    let resolveFirst!: (seq: number | undefined) => void;
    let resolveDone!: () => void;
    const entry: TurnEntry = {
      sessionId,
      turnId: stream.turnId,
      stream,
      firstSeq: new Promise((resolve) => {
        resolveFirst = resolve;
      }),
      done: new Promise((resolve) => {
        resolveDone = resolve;
      }),
      finalSeq: 0,
      result: undefined,
    };
    const key = `${sessionId}/${stream.turnId}`;
    this.#entries.set(key, entry);
    const drain = async () => {
      let last = 0;
      try {
        for await (const event of stream) {
          if (last === 0) resolveFirst(event.seq);
          last = event.seq;
        }
      } catch {
        // A TurnStream ends without throwing; `done` has the outcome either way.
      }
      entry.result = await stream.done;
      entry.finalSeq = last;
      resolveFirst(undefined);
      resolveDone();
      this.#retire(key);
    };
    void drain();
    return entry;
  }

  /** The turn, running or recently ended. */
  get(sessionId: string, turnId: string): TurnEntry | undefined {
    return this.#entries.get(`${sessionId}/${turnId}`);
  }

  #retire(key: string): void {
    this.#ended.push(key);
    while (this.#ended.length > this.#retention) this.#entries.delete(this.#ended.shift()!);
  }
}
