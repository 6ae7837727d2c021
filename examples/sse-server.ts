/**
 * sse-server: a sketch of what a host builds around the manager — an HTTP API on `node:http` with
 * Server-Sent Events, and a client that disconnects and resumes with `Last-Event-ID`.
 *
 *   POST /sessions                       → 201 { id }
 *   POST /sessions/:id/run               { message }  → 202 { turnId } (409 SESSION_BUSY)
 *   GET  /sessions/:id/events            SSE; resumes after the `Last-Event-ID` header (or ?since=)
 *   POST /sessions/:id/confirmation      { confirmation, confirmationId?, reason? } → 204
 *   GET  /sessions/:id                   → the snapshot (session, streaming, pending, lastEventSeq…)
 *
 * Each SSE message carries the event's `seq` as its `id`, so a browser's EventSource resumes by
 * itself. No auth here; a real host adds it (and a body size limit).
 *
 * Run: npm run example -- sse-server
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AgentSessionsError,
  ErrorCode,
  type ResumeInput,
  type SessionEvent,
  SessionManager,
} from 'agent-sessions';
import { demoRuntime } from './shared/demo-runtime.js';

// ───────────────────────────────────────── the server

const manager = new SessionManager({ runtime: demoRuntime({ delayMs: 2 }) });

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.INVALID_ARGUMENT]: 400,
  [ErrorCode.SESSION_NOT_FOUND]: 404,
  [ErrorCode.SESSION_BUSY]: 409,
  [ErrorCode.NOTHING_PENDING]: 409,
  [ErrorCode.CLOSED]: 503,
};

function json(response: ServerResponse, status: number, body?: unknown): void {
  response.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
  response.end(body === undefined ? undefined : JSON.stringify(body));
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

async function streamEvents(request: IncomingMessage, response: ServerResponse, id: string, url: URL) {
  const header = request.headers['last-event-id'];
  const resumeFrom = typeof header === 'string' ? header : (url.searchParams.get('since') ?? undefined);
  const since = resumeFrom === undefined ? undefined : Number(resumeFrom);
  const closed = new AbortController();
  response.on('close', () => closed.abort());
  // streamEvents reports an unknown session on its first next(), which for a known session waits
  // for the next event: check first, so the client gets a 404 or its headers at once.
  await manager.getSessionSnapshot(id);
  const events = manager.streamEvents(id, {
    ...(since === undefined ? {} : { since }),
    signal: closed.signal,
  });
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  response.flushHeaders();
  try {
    for await (const event of events) {
      // `gap` has seq 0: it is not a position to resume from, so it carries no id.
      response.write(
        `${event.seq > 0 ? `id: ${event.seq}\n` : ''}event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`,
      );
    }
  } catch (error) {
    // The client left (our signal), the subscriber lagged, or the manager closed: end the response.
    if (!closed.signal.aborted)
      response.write(`event: error\ndata: ${JSON.stringify({ message: String(error) })}\n\n`);
  } finally {
    response.end();
  }
}

async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const [, collection, id, action] = url.pathname.split('/');
  if (collection !== 'sessions') return json(response, 404, { code: 'NOT_FOUND' });
  if (request.method === 'POST' && id === undefined) {
    return json(response, 201, { id: (await manager.createSession()).id });
  }
  if (id === undefined) return json(response, 404, { code: 'NOT_FOUND' });
  if (request.method === 'GET' && action === undefined)
    return json(response, 200, await manager.getSessionSnapshot(id));
  if (request.method === 'GET' && action === 'events') return streamEvents(request, response, id, url);
  if (request.method === 'POST' && action === 'run') {
    const body = await readJson(request);
    // onDetach 'continue': this handler does not read the TurnStream; the turn runs on into the
    // event log, which is what GET /events serves. Leaving the stream at once detaches it.
    const stream = await manager.runSession(
      id,
      { messages: [String(body.message)] },
      { onDetach: 'continue' },
    );
    await stream[Symbol.asyncIterator]().return?.();
    return json(response, 202, { turnId: stream.turnId });
  }
  if (request.method === 'POST' && action === 'confirmation') {
    const body = await readJson(request);
    await manager.resumeSession(id, body as unknown as ResumeInput);
    return json(response, 204);
  }
  return json(response, 404, { code: 'NOT_FOUND' });
}

const server = createServer((request, response) => {
  route(request, response).catch((error: unknown) => {
    const code = AgentSessionsError.isInstance(error) ? error.code : undefined;
    if (response.headersSent) response.end();
    else json(response, (code && STATUS[code]) ?? 500, { code: code ?? 'INTERNAL', message: String(error) });
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`listening on ${base}`);

// ───────────────────────────────────────── a client, with fetch

interface SseMessage {
  id?: string;
  event: string;
  data: SessionEvent;
}

/** Reads SSE messages from a fetch response until `stop` says so; then drops the connection. */
async function readEvents(response: Response, stop: (message: SseMessage) => boolean): Promise<SseMessage[]> {
  const messages: SseMessage[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return messages;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
        );
        const message: SseMessage = {
          event: fields.event ?? 'message',
          data: JSON.parse(fields.data ?? 'null') as SessionEvent,
        };
        if (fields.id !== undefined) message.id = fields.id;
        messages.push(message);
        if (stop(message)) return messages;
      }
    }
  } finally {
    await reader.cancel(); // disconnects: the server sees 'close' and unsubscribes
  }
}

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

try {
  const { id } = (await (await post('/sessions', {})).json()) as { id: string };
  const events = `/sessions/${id}/events`;

  // Subscribe first, then start the turn: nothing is missed.
  const live = await fetch(`${base}${events}`);
  const { turnId } = (await (
    await post(`/sessions/${id}/run`, { message: 'What is the weather in Paris?' })
  ).json()) as { turnId: string };
  console.log(`turn ${turnId} started`);
  const busy = await post(`/sessions/${id}/run`, { message: 'me too' });
  console.log(`a second run while busy → ${busy.status} ${((await busy.json()) as { code: string }).code}`);

  let words = 0;
  const part1 = await readEvents(live, (message) => {
    if (message.event === 'tool_call_confirmation') {
      console.log(
        `confirmation asked for ${(message.data as { toolCall: { name: string } }).toolCall.name}: approving`,
      );
      void post(`/sessions/${id}/confirmation`, { confirmation: 'approve' });
    }
    return message.event === 'agent_choice' && ++words === 3; // then the connection drops
  });
  const lastEventId = part1.at(-1)!.id!;
  console.log(`client disconnected after id ${lastEventId} (${part1.length} events)`);

  // Reconnect like EventSource does: Last-Event-ID = the last id received.
  const resumed = await fetch(`${base}${events}`, { headers: { 'last-event-id': lastEventId } });
  const part2 = await readEvents(resumed, (message) => message.event === 'stream_stopped');
  console.log(`resumed: ${part2.length} more events, up to ${part2.at(-1)!.event}`);

  const seqs = [...part1, ...part2].map((message) => Number(message.id));
  assert.deepEqual(
    seqs,
    seqs.map((_, index) => index + 1),
    'every event exactly once, in order',
  );
  console.log(`seqs 1…${seqs.length}: none lost, none repeated`);

  const snapshot = (await (await fetch(`${base}/sessions/${id}`)).json()) as {
    lastEventSeq: number;
    session: { items: unknown[] };
  };
  console.log(`snapshot: lastEventSeq ${snapshot.lastEventSeq}, ${snapshot.session.items.length} items`);
  assert.equal(snapshot.lastEventSeq, seqs.length);
  const missing = await fetch(`${base}/sessions/nope/events`);
  assert.equal(missing.status, 404);
} finally {
  await manager.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  console.log('server closed');
}
