// A real HTTP server on 127.0.0.1 around createHttpHandler, for tests: real sockets, no mocked fetch.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { AgentSessionsClient, type AgentSessionsClientOptions } from '../../src/client/index.js';
import { createHttpHandler, type HttpHandlerOptions, toNodeListener } from '../../src/http/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../src/manager/types.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';

export interface TestServer {
  manager: SessionManager;
  scripted: ScriptedRuntime;
  server: Server;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `http://127.0.0.1:PORT/api` */
  api: string;
  /** Drops every open connection (as a network failure would). */
  dropConnections(): void;
  client(options?: Partial<AgentSessionsClientOptions>): AgentSessionsClient;
  close(): Promise<void>;
}

export async function startServer(
  options: { http?: HttpHandlerOptions; manager?: Omit<SessionManagerOptions, 'runtime'> } = {},
): Promise<TestServer> {
  const scripted = new ScriptedRuntime({ models: [{ ref: 'fake/small', name: 'Small' }] });
  const manager = new SessionManager({ runtime: scripted.factory, ...options.manager });
  const server = createServer(toNodeListener(createHttpHandler(manager, options.http)));
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: AgentSessionsClient[] = [];
  return {
    manager,
    scripted,
    server,
    origin,
    api: `${origin}/api`,
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    client(clientOptions = {}) {
      const client = new AgentSessionsClient({
        baseUrl: `${origin}/api`,
        reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
        ...clientOptions,
      });
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.close();
      await manager.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Reads SSE messages from a response body until `stop` says so. */
export async function readMessages(
  response: Response,
  stop: (message: { id?: string | undefined; event: string; data: string }) => boolean = () => false,
): Promise<Array<{ id?: string; event: string; data: string }>> {
  const { readSse } = await import('../../src/client/sse.js');
  const messages: Array<{ id?: string; event: string; data: string }> = [];
  for await (const message of readSse(response.body!)) {
    messages.push({
      ...(message.id === undefined ? {} : { id: message.id }),
      event: message.event,
      data: message.data,
    });
    if (stop(message)) break;
  }
  return messages;
}
