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

/** The session's event log after `since`, live, until `session_exited`. */
export function sessionEventSource(
  manager: SessionManager,
  sessionId: string,
  since: number | undefined,
): SseSource {
  const controller = new AbortController();
  const iterator = manager
    .streamEvents(sessionId, { ...(since === undefined ? {} : { since }), signal: controller.signal })
    [Symbol.asyncIterator]();
  let ended = false;
  let lastSeq = since ?? 0;
  return {
    async next() {
      if (ended) return null;
      try {
        const result = await iterator.next();
        if (result.done) {
          ended = true;
          return null;
        }
        if (result.value.seq > 0) lastSeq = result.value.seq;
        return formatEvent(result.value);
      } catch (error) {
        ended = true;
        return controller.signal.aborted ? null : endMessage(error, lastSeq);
      }
    },
    close() {
      ended = true;
      controller.abort(new Error('the SSE client disconnected'));
      iterator.return?.().catch(() => {});
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
  const iterator = manager
    .streamEvents(entry.sessionId, { since, signal: controller.signal })
    [Symbol.asyncIterator]();
  let ended = false;
  let lastSeq = since;
  let pending: Promise<IteratorResult<SessionEvent>> | undefined;
  const result = () => {
    ended = true;
    return formatControl(SseControl.TURN_RESULT, serializeTurnResult(entry.result!));
  };
  return {
    async next() {
      if (ended) return null;
      try {
        for (;;) {
          if (entry.result && lastSeq >= entry.finalSeq) return result();
          if (!pending) {
            pending = iterator.next();
            // Observed here: a source closed while this waits must not leave an unhandled rejection.
            pending.catch(() => {});
          }
          if (!entry.result) {
            const first = await Promise.race([pending, entry.done.then(() => undefined)]);
            if (first === undefined) continue;
          }
          const next = await pending;
          pending = undefined;
          if (next.done) {
            // The session was deleted or the manager closed: the turn ended too.
            await entry.done;
            return result();
          }
          const event = next.value;
          if (event.type === 'gap') lastSeq = Math.max(lastSeq, event.nextSeq - 1);
          else lastSeq = event.seq;
          if (entry.result && event.seq > entry.finalSeq) return result();
          return formatEvent(event);
        }
      } catch (error) {
        ended = true;
        return controller.signal.aborted ? null : endMessage(error, lastSeq);
      }
    },
    close(reason) {
      const wasEnded = ended;
      ended = true;
      controller.abort(new Error('the SSE client disconnected'));
      iterator.return?.().catch(() => {});
      if (reason === 'disconnected' && !wasEnded && onDisconnect === 'cancel' && !entry.result) {
        entry.stream.cancel(new Error('the HTTP client disconnected'));
      }
    },
  };
}
