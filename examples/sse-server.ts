/**
 * sse-server: a whole HTTP + SSE host in a few lines — `createHttpHandler` serves every
 * SessionManager capability (routes in docs/http.md), `toNodeListener` mounts it on `node:http`.
 * The second half is a client that uses the API the way a remote UI would: it starts a turn,
 * approves a tool call, drops its connection mid-turn and resumes without losing an event.
 *
 * Run: npm run example -- sse-server
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SessionManager } from 'agent-sessions';
import { AgentSessionsClient } from 'agent-sessions/client';
import { createHttpHandler, toNodeListener } from 'agent-sessions/http';
import { demoRuntime } from './shared/demo-runtime.js';

// ───────────────────────────────────────── the server: this is all the host code

const manager = new SessionManager({ runtime: demoRuntime({ delayMs: 2 }) });
const handler = createHttpHandler(manager, { token: 'secret-token' });
const server = createServer(toNodeListener(handler));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`listening on ${base}/api`);

// ───────────────────────────────────────── a client

const client = new AgentSessionsClient({ baseUrl: `${base}/api`, token: 'secret-token' });
try {
  const session = await client.createSession({ title: 'Weather' });
  const stream = await client.runSession(session.id, { messages: ['What is the weather in Paris?'] });
  const busy = await client.runSession(session.id, { messages: ['me too'] }).catch((error) => error);
  console.log(`a second run while busy → 409 ${busy.code}`);

  // The session's event log, read by a second connection that approves the tool call and then
  // drops mid-turn.
  const seen: number[] = [];
  for await (const event of client.streamEvents(session.id, { since: 0 })) {
    seen.push(event.seq);
    if (event.type === 'tool_call_confirmation') {
      console.log(`confirmation asked for ${event.toolCall.name}: approving`);
      await client.resumeSession(session.id, { confirmation: 'approve' });
      break; // the connection drops here
    }
  }
  const lastSeq = seen.at(-1)!;
  console.log(`client disconnected after id ${lastSeq} (${seen.length} events)`);

  let answer = '';
  for await (const event of stream) if (event.type === 'agent_choice') answer += event.content;
  console.log(`turn ended: ${(await stream.done).stopReason}: ${answer}`);

  // Resume from the last seq received, like EventSource does with Last-Event-ID.
  for await (const event of client.streamEvents(session.id, { since: lastSeq })) {
    seen.push(event.seq);
    if (event.type === 'stream_stopped') break;
  }
  assert.deepEqual(
    seen,
    seen.map((_, index) => index + 1),
    'every event exactly once, in order',
  );
  console.log(`seqs 1…${seen.length}: none lost, none repeated`);

  const snapshot = await client.getSessionSnapshot(session.id);
  console.log(`snapshot: lastEventSeq ${snapshot.lastEventSeq}, ${snapshot.session.items.length} items`);
  const missing = await fetch(`${base}/api/sessions/nope/events`, {
    headers: { authorization: 'Bearer secret-token' },
  });
  assert.equal(missing.status, 404);
  const anonymous = await fetch(`${base}/api/sessions`);
  console.log(`without the token → ${anonymous.status}`);
} finally {
  client.close();
  await manager.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  console.log('server closed');
}
