/**
 * Server-Sent Events: the framing, and a `Response` whose body is pulled from a source of messages.
 *
 * Framing of each {@link SessionEvent}: `id: <seq>` (left out for `gap`, whose seq 0 is not a
 * position), `event: <type>`, `data: <the event as JSON>`. The stream opens with `retry:` once and
 * carries a `: ping` comment every `heartbeatMs`. Besides session events, three control messages
 * may end a stream: `turn_result` (a turn stream ended: its `TurnResult`), `lagged` (this reader fell
 * `eventLogCapacity` behind: reconnect with `Last-Event-ID`/`since` = `lastSeq`) and `stream_error`
 * (`{ code, message }`, e.g. the session was deleted or the manager closed).
 *
 * Backpressure: the body is a pull-based `ReadableStream` with a small `highWaterMark`, so a message
 * is taken from the source only when the client has read the previous ones. A slow reader never
 * grows a buffer here: it falls behind in the session's event log, which ends it with `lagged`.
 */
import type { SessionEvent } from '../events.js';
import { unrefTimer } from '../internal/abort.js';

/** Names of the control messages that are not session events. */
export const SseControl = {
  TURN_RESULT: 'turn_result',
  LAGGED: 'lagged',
  STREAM_ERROR: 'stream_error',
} as const;

/** Formats one session event as an SSE message. */
export function formatEvent(event: SessionEvent): string {
  const id = event.seq > 0 ? `id: ${event.seq}\n` : '';
  return `${id}event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Formats a control message (no id: it is not a position in the log). */
export function formatControl(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Where an SSE body takes its messages from. */
export interface SseSource {
  /** The next message(s), already formatted; `null` ends the stream. */
  next(): Promise<string | null>;
  /** The client left (or the stream ended): release what the source holds. Called once. */
  close(reason: 'disconnected' | 'ended'): void;
}

/** Options of {@link sseResponse}. */
export interface SseOptions {
  /** Interval of the `: ping` comment; 0 disables it. */
  heartbeatMs: number;
  /** The `retry:` value sent once, first. */
  retryMs: number;
  /** Messages the body may hold that the client has not read yet. */
  highWaterMark: number;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

const encoder = new TextEncoder();

/** The headers of every SSE response. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/** A streaming `Response` pulling its messages from `source`. */
export function sseResponse(source: SseSource, options: SseOptions): Response {
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let closed = false;
  const finish = (reason: 'disconnected' | 'ended') => {
    if (closed) return;
    closed = true;
    if (heartbeat !== undefined) clearInterval(heartbeat);
    source.close(reason);
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(encoder.encode(`retry: ${options.retryMs}\n\n`));
        if (options.heartbeatMs > 0) {
          heartbeat = setInterval(() => {
            // A reader that is behind does not need a ping to keep the connection busy.
            if (!closed && (controller.desiredSize ?? 0) > 0)
              controller.enqueue(encoder.encode(': ping\n\n'));
          }, options.heartbeatMs);
          unrefTimer(heartbeat);
        }
      },
      async pull(controller) {
        let message: string | null;
        try {
          message = await source.next();
        } catch {
          message = null;
        }
        if (closed) return;
        if (message === null) {
          finish('ended');
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(message));
      },
      cancel() {
        finish('disconnected');
      },
    },
    { highWaterMark: options.highWaterMark },
  );
  return new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...options.headers } });
}
