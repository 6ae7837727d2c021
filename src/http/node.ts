/**
 * `toNodeListener(handler)`: a web-standard handler as a `node:http` request listener, with
 * streaming both ways, backpressure (a slow client pauses the response body, which pauses the SSE
 * source) and client disconnects cancelling the response body. Types only from `node:http`: no
 * Node module is loaded, so the entry still imports nothing from `node:*` at run time.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpHandler } from './handler.js';

function requestBody(request: IncomingMessage): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      request.on('data', (chunk: Uint8Array) => {
        if (done) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) request.pause();
      });
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
}

/** The web `Request` for a Node request. */
export function toWebRequest(request: IncomingMessage, signal?: AbortSignal): Request {
  const headers = new Headers();
  for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) {
    const name = request.rawHeaders[index]!;
    // HTTP/2 pseudo-headers are not headers of a web Request.
    if (!name.startsWith(':')) headers.append(name, request.rawHeaders[index + 1]!);
  }
  let url: URL;
  try {
    url = new URL(request.url ?? '/', `http://${request.headers.host ?? 'localhost'}`);
  } catch {
    url = new URL(request.url ?? '/', 'http://localhost');
  }
  const method = request.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(url, {
    method,
    headers,
    ...(hasBody ? { body: requestBody(request), duplex: 'half' } : {}),
    ...(signal ? { signal } : {}),
  } as RequestInit);
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
  try {
    while (!closed) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!target.write(value)) {
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
    handler(toWebRequest(request, controller.signal))
      .then((webResponse) => writeWebResponse(webResponse, response))
      .catch(() => {
        if (!response.headersSent) {
          response.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
          response.end(JSON.stringify({ code: 'INTERNAL', message: 'internal error' }));
        } else response.end();
      });
  };
}
