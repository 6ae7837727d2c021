/**
 * `toNodeListener(handler)`: a web-standard handler as a `node:http` request listener, with
 * streaming both ways, backpressure (a slow client pauses the response body, which pauses the SSE
 * source) and client disconnects cancelling the response body. Types only from `node:http`: no
 * Node module is loaded, so the entry still imports nothing from `node:*` at run time.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpHandler } from './handler.js';

/**
 * The request's body as a web stream. Once the response is written, `discard()` drops whatever the
 * handler left unread (it answered 401 or 404 first, or the route takes no body): a paused request
 * would otherwise hold the keep-alive connection, and the client's next request on it would hang.
 */
function requestBody(request: IncomingMessage): { body: ReadableStream<Uint8Array>; discard(): void } {
  let done = false;
  const onData = (chunk: Uint8Array) => {
    if (done) return;
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controller.desiredSize ?? 0) <= 0) request.pause();
  };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(started) {
      controller = started;
      request.on('data', onData);
      request.on('end', () => {
        if (done) return;
        done = true;
        controller.close();
      });
      request.on('error', (error) => {
        if (done) return;
        done = true;
        controller.error(error);
      });
    },
    pull() {
      request.resume();
    },
    cancel() {
      done = true;
      request.resume(); // drain and drop the rest, so the connection can answer
    },
  });
  return {
    body,
    discard() {
      done = true;
      request.off('data', onData);
      if (!request.complete) request.resume();
    },
  };
}

const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The URL of a request target. An origin-form target (`/path?query`) is appended to the host as
 * given, never resolved against it: `//evil/api/sessions` stays that path (no route: 404) instead
 * of becoming `/api/sessions` on host `evil`, which a proxy filtering by path prefix would not
 * have expected. A Host header that is not a host is replaced, so it cannot add a path either.
 */
function requestUrl(target: string, host: string | undefined): URL {
  const origin = `http://${host !== undefined && HOST.test(host) ? host : 'localhost'}`;
  try {
    return target.startsWith('/') ? new URL(`${origin}${target}`) : new URL(target);
  } catch {
    return new URL('/', origin);
  }
}

/** The web `Request` for a Node request. */
export function toWebRequest(request: IncomingMessage, signal?: AbortSignal): Request {
  return webRequest(request, signal).request;
}

function webRequest(
  request: IncomingMessage,
  signal: AbortSignal | undefined,
): { request: Request; discard(): void } {
  const headers = new Headers();
  for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) {
    const name = request.rawHeaders[index]!;
    // HTTP/2 pseudo-headers are not headers of a web Request.
    if (!name.startsWith(':')) headers.append(name, request.rawHeaders[index + 1]!);
  }
  const url = requestUrl(request.url ?? '/', request.headers.host);
  const method = request.method ?? 'GET';
  const body = method !== 'GET' && method !== 'HEAD' ? requestBody(request) : undefined;
  return {
    request: new Request(url, {
      method,
      headers,
      ...(body ? { body: body.body, duplex: 'half' } : {}),
      ...(signal ? { signal } : {}),
    } as RequestInit),
    discard: () => body?.discard(),
  };
}

/** Writes a web `Response` to a Node response, honouring backpressure and disconnects. */
export async function writeWebResponse(response: Response, target: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const cookies = response.headers.getSetCookie?.() ?? [];
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  target.writeHead(response.status, headers);
  if (!response.body) {
    target.end();
    return;
  }
  target.flushHeaders();
  const reader = response.body.getReader();
  let closed = false;
  const onClose = () => {
    closed = true;
    reader.cancel().catch(() => {});
  };
  target.once('close', onClose);
  // The client may have left while the handler worked (a turn waits for its first event): no
  // 'close' will come any more, and a body never cancelled keeps its source (an SSE subscription,
  // a heartbeat timer) forever.
  if (target.destroyed) onClose();
  try {
    while (!closed) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!target.write(value)) {
        if (target.destroyed) break;
        await new Promise<void>((resolve) => {
          const settle = () => {
            target.off('drain', settle);
            target.off('close', settle);
            resolve();
          };
          target.on('drain', settle);
          target.on('close', settle);
        });
      }
    }
  } catch {
    // The body failed mid-way: the status is sent, so all that is left is to end the response.
  } finally {
    target.off('close', onClose);
    target.end();
  }
}

/**
 * Adapts a web-standard handler to `http.createServer(toNodeListener(handler))`. A client that
 * disconnects aborts the request's `signal` and cancels the response body (for SSE: detaches).
 */
export function toNodeListener(
  handler: HttpHandler,
): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    const controller = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) controller.abort(new Error('the client disconnected'));
    });
    const web = webRequest(request, controller.signal);
    response.once('finish', web.discard);
    handler(web.request)
      .then((webResponse) => writeWebResponse(webResponse, response))
      .catch(() => {
        if (!response.headersSent) {
          response.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
          response.end(JSON.stringify({ code: 'INTERNAL', message: 'internal error' }));
        } else response.end();
      });
  };
}
