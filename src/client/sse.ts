/** A Server-Sent Events parser over a fetch body (the parts of the format the server uses, done fully). */

/** One SSE message. */
export interface SseMessage {
  /** The `id:` field, when the message had one. */
  id: string | undefined;
  /** The `event:` field (`'message'` when absent). */
  event: string;
  /** The `data:` lines, joined with `\n`. */
  data: string;
}

/**
 * Reads SSE messages from a byte stream. `onActivity` is called on every chunk (comments
 * included), so a caller can tell a silent connection from a slow one. Cancels the body when the
 * consumer leaves the loop.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  onActivity: () => void = () => {},
): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  let hasData = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onActivity();
      buffer += decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const end = buffer.indexOf('\n', start);
        if (end < 0) break;
        let line = buffer.slice(start, end);
        start = end + 1;
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (hasData) yield { id, event: event || 'message', data: data.join('\n') };
          id = undefined;
          event = '';
          data = [];
          hasData = false;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') {
          data.push(value);
          hasData = true;
        } else if (field === 'event') event = value;
        else if (field === 'id') id = value;
      }
      buffer = buffer.slice(start);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
