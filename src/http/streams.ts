/**
 * What the SSE routes carry: a session's event log (`/events`) and one turn stream
 * (`/run`, `/turns/{turnId}/events`), both read from the manager's event log, so a slow client is
 * bounded by `eventLogCapacity` and ends with `lagged` instead of growing a buffer.
 */
import { AgentSessionsError, ErrorCode, type SubscriberLaggedError } from '../errors.js';
import type { SessionEvent } from '../events.js';
import type { SessionManager } from '../manager/session-manager.js';
import type { TurnResult } from '../manager/types.js';
import { formatControl, formatEvent, SseControl, type SseSource } from './sse.js';
import { describeError } from './status.js';
import type { TurnEntry } from './turns.js';

/** A turn's result as JSON: the error as `{ code, message, details? }`. */
export function serializeTurnResult(result: TurnResult): Record<string, unknown> {
  return {
    stopReason: result.stopReason,
    ...(result.error === undefined ? {} : { error: describeError(result.error).body }),
    discarded: result.discarded,
  };
}

function endMessage(error: unknown, lastSeq: number): string {
  if (AgentSessionsError.hasCode(error, ErrorCode.SUBSCRIBER_LAGGED)) {
    return formatControl(SseControl.LAGGED, {
      lastSeq: Math.max(lastSeq, (error as SubscriberLaggedError).lastSeq),
    });
  }
  return formatControl(SseControl.STREAM_ERROR, describeError(error).body);
}

/** Events per SSE chunk at most: a burst is written in a few chunks rather than one per event. */
const BATCH_EVENTS = 64;
/** Characters per SSE chunk at most. */
const BATCH_CHARS = 64 * 1024;

const NOT_READY = Symbol('not ready');

/**
 * An event iterator that can also say, without waiting, whether its next event is already there:
 * what lets a burst of events go out as one chunk while a lone event is sent at once.
 */
class Prefetch {
  readonly #iterator: AsyncIterator<SessionEvent>;
  #pending: Promise<IteratorResult<SessionEvent>> | undefined;

  constructor(iterator: AsyncIterator<SessionEvent>) {
    this.#iterator = iterator;
  }

  /** The next result, waiting for it. The promise is kept until taken, so nothing is lost. */
  peek(): Promise<IteratorResult<SessionEvent>> {
    if (!this.#pending) {
      this.#pending = this.#iterator.next();
      // Observed here: a source closed while this waits must not leave an unhandled rejection.
      this.#pending.catch(() => {});
    }
    return this.#pending;
  }

  /** Takes the result `peek` promised. */
  async take(): Promise<IteratorResult<SessionEvent>> {
    const result = await this.peek();
    this.#pending = undefined;
    return result;
  }

  /** The next result if it is already there, else `undefined` (it stays pending for later). */
  async ready(): Promise<IteratorResult<SessionEvent> | undefined> {
    const next = this.peek();
    const winner = await Promise.race([next, Promise.resolve(NOT_READY)]);
    if (winner === NOT_READY) return undefined;
    this.#pending = undefined;
    return winner;
  }

  close(): void {
    this.#iterator.return?.().catch(() => {});
  }
}

/** The session's event log after `since`, live, until `session_exited`. */
export function sessionEventSource(
  manager: SessionManager,
  sessionId: string,
  since: number | undefined,
): SseSource {
  const controller = new AbortController();
  const events = new Prefetch(
    manager
      .streamEvents(sessionId, { ...(since === undefined ? {} : { since }), signal: controller.signal })
      [Symbol.asyncIterator](),
  );
  let ended = false;
  let lastSeq = since ?? 0;
  const format = (event: SessionEvent) => {
    if (event.seq > 0) lastSeq = event.seq;
    return formatEvent(event);
  };
  return {
    async next() {
      if (ended) return null;
      let text = '';
      try {
        const first = await events.take();
        if (first.done) {
          ended = true;
          return null;
        }
        text = format(first.value);
        for (let count = 1; count < BATCH_EVENTS && text.length < BATCH_CHARS; count++) {
          const more = await events.ready();
          if (!more) break;
          if (more.done) {
            ended = true;
            break;
          }
          text += format(more.value);
        }
        return text;
      } catch (error) {
        ended = true;
        if (controller.signal.aborted) return text === '' ? null : text;
        return text + endMessage(error, lastSeq);
      }
    },
    close() {
      ended = true;
      controller.abort(new Error('the SSE client disconnected'));
      events.close();
    },
  };
}

/**
 * One turn stream: the log's events after `since` up to the stream's last event, then
 * `turn_result`. A `gap` moves the position to its `nextSeq` (what it skipped is gone).
 */
export function turnEventSource(
  manager: SessionManager,
  entry: TurnEntry,
  since: number,
  onDisconnect: 'detach' | 'cancel',
): SseSource {
  const controller = new AbortController();
  const events = new Prefetch(
    manager.streamEvents(entry.sessionId, { since, signal: controller.signal })[Symbol.asyncIterator](),
  );
  let ended = false;
  /** The log ended (session deleted, manager closed): only the result is left to send. */
  let exhausted = false;
  let lastSeq = since;
  const finished = () => entry.result !== undefined && lastSeq >= entry.finalSeq;
  const result = () => {
    ended = true;
    return formatControl(SseControl.TURN_RESULT, serializeTurnResult(entry.result!));
  };
  /** Formats an event of the turn, or returns undefined for one past its end. */
  const format = (event: SessionEvent): string | undefined => {
    if (entry.result && event.seq > entry.finalSeq) {
      lastSeq = entry.finalSeq;
      return undefined;
    }
    if (event.type === 'gap') lastSeq = Math.max(lastSeq, event.nextSeq - 1);
    else lastSeq = event.seq;
    return formatEvent(event);
  };
  return {
    async next() {
      if (ended) return null;
      let text = '';
      try {
        for (;;) {
          if (finished()) return result();
          if (exhausted) {
            await entry.done;
            return result();
          }
          if (!entry.result) {
            const first = await Promise.race([events.peek(), entry.done.then(() => undefined)]);
            if (first === undefined) continue;
          }
          const next = await events.take();
          if (next.done) {
            exhausted = true;
            continue;
          }
          const formatted = format(next.value);
          if (formatted === undefined) continue;
          text = formatted;
          break;
        }
        for (let count = 1; count < BATCH_EVENTS && text.length < BATCH_CHARS && !finished(); count++) {
          const more = await events.ready();
          if (!more) break;
          if (more.done) {
            exhausted = true;
            break;
          }
          const formatted = format(more.value);
          if (formatted === undefined) break;
          text += formatted;
        }
        return text;
      } catch (error) {
        ended = true;
        if (controller.signal.aborted) return text === '' ? null : text;
        return text + endMessage(error, lastSeq);
      }
    },
    close(reason) {
      const wasEnded = ended;
      ended = true;
      controller.abort(new Error('the SSE client disconnected'));
      events.close();
      if (reason === 'disconnected' && !wasEnded && onDisconnect === 'cancel' && !entry.result) {
        entry.stream.cancel(new Error('the HTTP client disconnected'));
      }
    },
  };
}
