// maxConcurrentTurns over HTTP and the client: a waiting turn's stream carries turn_queued, and
// GET /sessions/{id}/status shows queued (as docs/openapi.json's SessionSnapshot declares).
import { afterEach, expect, test } from 'vitest';
import { step } from '../../src/testing/scripted-runtime.js';
import { startServer, type TestServer } from './server.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

test('a turn waiting for a slot streams turn_queued through the client, and the status route shows queued', async () => {
  server = await startServer({ manager: { maxConcurrentTurns: 1 } });
  const { manager, scripted } = server;
  const client = server.client();
  const first = await manager.createSession();
  const second = await manager.createSession();
  scripted.turn([step.hold('a'), step.reply('a')], { sessionId: first.id });
  scripted.reply('b', { sessionId: second.id });
  const running = await manager.runSession(first.id, { messages: ['a'] });
  await scripted.waitUntilHeld('a');

  const stream = await client.runSession(second.id, { messages: ['b'] });
  const iterator = stream[Symbol.asyncIterator]();
  const queued = (await iterator.next()).value;
  expect(queued).toMatchObject({ type: 'turn_queued', position: 1, sessionId: second.id });

  const status = await fetch(`${server.api}/sessions/${second.id}/status`);
  expect(status.status).toBe(200);
  const body = (await status.json()) as { streaming: boolean; queued?: unknown };
  expect(body.streaming).toBe(true);
  expect(body.queued).toEqual({ turnId: queued?.turnId, since: expect.any(String), position: 1 });
  expect((await client.getSessionSnapshot(second.id)).queued).toMatchObject({ position: 1 });

  scripted.release('a');
  for await (const _event of running);
  const types: string[] = [];
  for (let next = await iterator.next(); !next.done; next = await iterator.next())
    types.push(next.value.type);
  expect(types[0]).toBe('stream_started');
  expect(types.at(-1)).toBe('stream_stopped');
  expect((await client.getSessionSnapshot(second.id)).queued).toBeUndefined();
});
