// toNodeListener against real sockets: what a client that leaves early, or sends a body nobody
// reads, does to the response body and to the keep-alive connection.
import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { toNodeListener } from '../../src/http/index.js';
import { startServer, type TestServer } from './server.js';

let server: TestServer | undefined;
let plain: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  plain?.closeAllConnections();
  await new Promise((resolve) => (plain ? plain.close(resolve) : resolve(undefined)));
  plain = undefined;
});

function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** Sends a request and destroys it (the client leaves) once `seen` says the server has it. */
async function leaveEarly(
  port: number,
  seen: Promise<void>,
  path: string,
  method = 'GET',
  body?: string,
): Promise<void> {
  const request = httpRequest({
    port,
    host: '127.0.0.1',
    path,
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  request.on('error', () => {});
  request.end(body);
  await seen;
  request.destroy();
}

describe('toNodeListener', () => {
  test('a response ready after its client left has its body cancelled, not written into a dead socket', async () => {
    const ready = gate();
    const left = gate();
    const seen = gate();
    let cancelled = false;
    plain = createServer((request, response) => {
      seen.open();
      response.once('close', left.open);
      toNodeListener(async () => {
        await ready.wait;
        return new Response(
          new ReadableStream<Uint8Array>({
            pull: (controller) => controller.enqueue(new Uint8Array(64 * 1024)),
            cancel: () => {
              cancelled = true;
            },
          }),
          { headers: { 'content-type': 'text/event-stream' } },
        );
      })(request, response);
    });
    await new Promise<void>((resolve) => plain!.listen(0, '127.0.0.1', resolve));
    await leaveEarly((plain.address() as AddressInfo).port, seen.wait, '/');
    await left.wait;
    ready.open();
    await vi.waitFor(() => expect(cancelled).toBe(true));
  });

  test('a body the handler never read (401 first) does not stall the next request on that keep-alive connection', async () => {
    server = await startServer({ http: { token: 'secret' } });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const port = Number(new URL(server.origin).port);
    const send = (method: string, path: string, body?: string) =>
      new Promise<number>((resolve, reject) => {
        const request = httpRequest(
          {
            agent,
            port,
            host: '127.0.0.1',
            method,
            path,
            headers: body === undefined ? {} : { 'content-type': 'application/json' },
          },
          (response) => {
            response.resume();
            response.once('end', () => resolve(response.statusCode!));
          },
        );
        request.once('error', reject);
        request.end(body);
      });
    try {
      // Larger than a socket's buffers, so the unread rest really waits on the connection.
      const big = JSON.stringify({ title: 'x'.repeat(512 * 1024) });
      expect(await send('POST', '/api/sessions', big)).toBe(401);
      expect(await send('POST', '/api/nowhere', big)).toBe(404);
      expect(await send('GET', '/health')).toBe(200);
    } finally {
      agent.destroy();
    }
  });
});

describe('request targets', () => {
  const get = (port: number, path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      const request = httpRequest({ port, host: '127.0.0.1', path, headers }, (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode!));
      });
      request.once('error', reject);
      request.end();
    });

  test('a target starting with // is a path, not a host: no route answers it', async () => {
    server = await startServer({ http: { token: 'secret' } });
    const port = Number(new URL(server.origin).port);
    const authorized = { authorization: 'Bearer secret' };
    expect(await get(port, '/api/sessions', authorized)).toBe(200);
    expect(await get(port, '//evil/api/sessions', authorized)).toBe(404);
    expect(await get(port, '//evil/health')).toBe(404);
    expect(await get(port, '/health')).toBe(200);
  });

  test('a Host header that is not a host cannot move the path', async () => {
    server = await startServer();
    const port = Number(new URL(server.origin).port);
    expect(await get(port, '/health', { host: 'example.com/api' })).toBe(200);
    expect(await get(port, '/sessions', { host: 'example.com/api' })).toBe(404);
  });
});
