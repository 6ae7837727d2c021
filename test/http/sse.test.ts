// The SSE routes: framing, retry and heartbeat, resume positions, a slow reader's bound, and what a
// dropped connection does to the turn.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { createHttpHandler } from '../../src/http/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { readMessages, startServer, type TestServer } from './server.js';

let server: TestServer | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await server?.close();
  server = undefined;
});

const run = (api: string, id: string, messages: string[], signal?: AbortSignal) =>
  fetch(`${api}/sessions/${id}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages }),
    ...(signal ? { signal } : {}),
  });

async function readChunks(body: ReadableStream<Uint8Array>, count: number): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (let index = 0; index < count; index++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

describe('framing', () => {
  test('POST /run streams id/event/data per event, retry once, then turn_result; with the SSE headers', async () => {
    server = await startServer({ http: { retryMs: 1234 } });
    server.scripted.reply('Hello there');
    const { id } = await server.manager.createSession();
    const response = await run(server.api, id, ['hi']);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    expect(response.headers.get('cache-control')).toContain('no-cache');
    const turnId = response.headers.get('agent-sessions-turn-id');
    expect(turnId).toMatch(/^turn_/);
    const text = await response.text();
    expect(text.startsWith('retry: 1234\n\n')).toBe(true);
    expect(text.match(/^retry:/gm)).toHaveLength(1);
    const blocks = text.trim().split('\n\n').slice(1);
    const events = blocks.slice(0, -1).map((block) => {
      const [idLine, eventLine, dataLine] = block.split('\n');
      const data = JSON.parse(dataLine!.slice('data: '.length));
      expect(idLine).toBe(`id: ${data.seq}`);
      expect(eventLine).toBe(`event: ${data.type}`);
      expect(data.turnId).toBe(turnId);
      return data as { type: string; seq: number };
    });
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
    expect(events.map((event) => event.type)).toContain('agent_choice');
    expect(events.at(-1)!.type).toBe('stream_stopped');
    expect(blocks.at(-1)).toBe('event: turn_result\ndata: {"stopReason":"end_turn","discarded":[]}');
  });

  test('a gap is sent without an id (its seq 0 is not a position)', async () => {
    server = await startServer();
    server.scripted.reply('done');
    const { id } = await server.manager.createSession();
    await (await run(server.api, id, ['hi'])).text();
    const response = await fetch(`${server.api}/sessions/${id}/events?since=999`);
    const messages = await readMessages(response, (message) => message.event === 'stream_stopped');
    expect(messages[0]).toMatchObject({ event: 'gap' });
    expect(messages[0]!.id).toBeUndefined();
    expect(JSON.parse(messages[0]!.data)).toMatchObject({ type: 'gap', reason: 'reset', seq: 0 });
    expect(messages[1]).toMatchObject({ id: '1', event: 'stream_started' });
  });
});

describe('heartbeat', () => {
  test('a `: ping` comment every heartbeatMs (15 s by default) while nothing happens', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    const { id } = await manager.createSession();
    const handler = createHttpHandler(manager);
    const response = await handler(new Request(`http://test/api/sessions/${id}/events`));
    const body = response.body!;
    expect(await readChunks(body, 1)).toBe('retry: 2000\n\n');
    vi.advanceTimersByTime(14_999);
    const reader = body.getReader();
    const next = reader.read();
    vi.advanceTimersByTime(1);
    expect(new TextDecoder().decode((await next).value)).toBe(': ping\n\n');
    const again = reader.read();
    vi.advanceTimersByTime(15_000);
    expect(new TextDecoder().decode((await again).value)).toBe(': ping\n\n');
    await reader.cancel();
    await manager.close();
  });

  test('heartbeatMs is configurable, and 0 turns it off', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    const { id } = await manager.createSession();
    const fast = await createHttpHandler(manager, { heartbeatMs: 1_000 })(
      new Request(`http://test/api/sessions/${id}/events`),
    );
    const reader = fast.body!.getReader();
    await reader.read(); // retry
    const ping = reader.read();
    vi.advanceTimersByTime(1_000);
    expect(new TextDecoder().decode((await ping).value)).toBe(': ping\n\n');
    await reader.cancel();
    const silent = await createHttpHandler(manager, { heartbeatMs: 0 })(
      new Request(`http://test/api/sessions/${id}/events`),
    );
    expect(vi.getTimerCount()).toBe(0);
    await silent.body!.cancel();
    await manager.close();
  });
});

describe('resume positions', () => {
  test('Last-Event-ID wins over ?since, and both resume right after that seq', async () => {
    server = await startServer();
    server.scripted.reply('one two three');
    const { id } = await server.manager.createSession();
    await (await run(server.api, id, ['hi'])).text();
    const bySince = await readMessages(
      await fetch(`${server.api}/sessions/${id}/events?since=3`),
      (message) => message.event === 'stream_stopped',
    );
    expect(bySince[0]!.id).toBe('4');
    const byHeader = await readMessages(
      await fetch(`${server.api}/sessions/${id}/events?since=1`, { headers: { 'last-event-id': '5' } }),
      (message) => message.event === 'stream_stopped',
    );
    expect(byHeader[0]!.id).toBe('6');
  });

  test('a turn stream resumes at /turns/{turnId}/events after Last-Event-ID and ends with turn_result', async () => {
    server = await startServer();
    server.scripted.turn([step.reply('part one'), step.hold('middle'), step.reply('part two')]);
    const { id } = await server.manager.createSession();
    const controller = new AbortController();
    const response = await run(server.api, id, ['hi'], controller.signal);
    const turnId = response.headers.get('agent-sessions-turn-id')!;
    const before = await readMessages(response, (message) => message.event === 'message_added');
    controller.abort(); // the connection drops while the turn runs on (detached)
    const lastId = before.at(-1)!.id!;
    server.scripted.release('middle');
    const rest = await readMessages(
      await fetch(`${server.api}/sessions/${id}/turns/${turnId}/events`, {
        headers: { 'last-event-id': lastId },
      }),
    );
    expect(rest[0]!.id).toBe(String(Number(lastId) + 1));
    expect(rest.at(-1)!.event).toBe('turn_result');
    const seqs = [...before, ...rest.slice(0, -1)].map((message) => Number(message.id));
    expect(seqs).toEqual(seqs.map((_, index) => index + 1));
    // Resuming after the end gives just the result.
    const after = await readMessages(
      await fetch(`${server.api}/sessions/${id}/turns/${turnId}/events?since=${seqs.at(-1)}`),
    );
    expect(after.map((message) => message.event)).toEqual(['turn_result']);
  });

  test('a turn stream resumed from before the turn began carries only that turn’s events', async () => {
    server = await startServer();
    server.scripted.reply('the first turn');
    server.scripted.reply('the second turn');
    const { id } = await server.manager.createSession();
    const first = await readMessages(await run(server.api, id, ['one']));
    const response = await run(server.api, id, ['two']);
    const turnId = response.headers.get('agent-sessions-turn-id')!;
    const whole = await readMessages(response);
    for (const query of ['?since=0', '']) {
      const resumed = await readMessages(
        await fetch(`${server.api}/sessions/${id}/turns/${turnId}/events${query}`, {
          headers: query === '' ? { 'last-event-id': '1' } : {},
        }),
      );
      expect(resumed).toEqual(whole);
    }
    const firstSeqOfSecond = Number(whole[0]!.id);
    expect(firstSeqOfSecond).toBeGreaterThan(Number(first.at(-2)!.id));
  });
});

describe('a slow reader', () => {
  test('is bounded: it ends with `lagged` and its lastSeq instead of buffering, and resumes from there', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({ runtime: scripted.factory, eventLogCapacity: 8 });
    const { id } = await manager.createSession();
    const handler = createHttpHandler(manager, { sseHighWaterMark: 2 });
    const response = await handler(new Request(`http://test/api/sessions/${id}/events?since=0`));
    scripted.reply('', { deltas: Array.from({ length: 40 }, (_, index) => `w${index} `) });
    const stream = await manager.runSession(id, { messages: ['go'] });
    for await (const _event of stream) {
      // the in-process reader keeps up; the HTTP reader reads nothing meanwhile
    }
    const messages = await readMessages(response);
    const lagged = messages.at(-1)!;
    expect(lagged.event).toBe('lagged');
    const events = messages.filter((message) => message.id !== undefined);
    expect(events.length).toBeLessThanOrEqual(2 + 8); // the body's high-water mark, then the log's capacity
    const { lastSeq } = JSON.parse(lagged.data) as { lastSeq: number };
    expect(lastSeq).toBe(Number(events.at(-1)!.id));
    const again = await handler(
      new Request(`http://test/api/sessions/${id}/events`, { headers: { 'last-event-id': String(lastSeq) } }),
    );
    const resumed = await readMessages(again, (message) => message.event === 'stream_stopped');
    expect(resumed[0]).toMatchObject({ event: 'gap' });
    expect(JSON.parse(resumed[0]!.data)).toMatchObject({ reason: 'dropped' });
    expect(resumed.at(-1)!.event).toBe('stream_stopped');
    await manager.close();
  });
});

describe('client disconnects', () => {
  test('detach by default: the turn keeps running to end_turn', async () => {
    server = await startServer();
    server.scripted.turn([step.hold('after-first'), step.reply('finished')]);
    const { id } = await server.manager.createSession();
    const controller = new AbortController();
    const response = await run(server.api, id, ['hi'], controller.signal);
    await readMessages(response, (message) => message.event === 'user_message');
    controller.abort();
    await server.scripted.waitUntilHeld('after-first');
    server.scripted.release('after-first');
    await server.manager.waitStopped(id, { timeoutMs: 5_000 });
    expect(server.scripted.turns[0]!.outcome).toBe('completed');
    expect(server.scripted.turns[0]!.aborted).toBe(false);
  });

  test('onDisconnect: "cancel" cancels the turn when its stream drops', async () => {
    server = await startServer({ http: { onDisconnect: 'cancel' } });
    server.scripted.turn([step.hold('forever'), step.reply('never')]);
    const { id } = await server.manager.createSession();
    const controller = new AbortController();
    const response = await run(server.api, id, ['hi'], controller.signal);
    await readMessages(response, (message) => message.event === 'user_message');
    await server.scripted.waitUntilHeld('forever');
    controller.abort();
    await vi.waitFor(() => expect(server!.scripted.turns[0]!.aborted).toBe(true));
    await server.manager.waitStopped(id, { timeoutMs: 5_000 });
  });

  test('/events ends with session_exited when the session is deleted', async () => {
    server = await startServer();
    const { id } = await server.manager.createSession();
    const response = await fetch(`${server.api}/sessions/${id}/events`);
    const reading = readMessages(response);
    await server.manager.deleteSession(id);
    const messages = await reading;
    expect(messages.at(-1)).toMatchObject({ event: 'session_exited' });
  });
});
