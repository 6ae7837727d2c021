// The client's event streams against the handler in-process (its fetch calls the handler): a
// reader that lags reconnects by itself from its last seq, and a silent connection counts as dropped.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsClient, type ConnectionChange } from '../../src/client/index.js';
import type { SessionEvent } from '../../src/events.js';
import { createHttpHandler } from '../../src/http/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('client event streams', () => {
  test('a reader that falls behind gets lagged, reconnects from its last seq, and sees the gap', async () => {
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({ runtime: scripted.factory, eventLogCapacity: 8 });
    const handler = createHttpHandler(manager, { sseHighWaterMark: 1 });
    const client = new AgentSessionsClient({
      baseUrl: 'http://in-process/api',
      fetch: async (input, init) => handler(new Request(input, init)),
      reconnect: { initialDelayMs: 1 },
    });
    const { id } = await manager.createSession();
    scripted.reply('warm-up');
    await (await manager.runSession(id, { messages: ['first'] })).done;
    scripted.reply('', { deltas: Array.from({ length: 30 }, (_, index) => `w${index} `) });
    const changes: ConnectionChange['state'][] = [];
    const events: SessionEvent[] = [];
    for await (const event of client.streamEvents(id, {
      since: 0,
      onConnectionChange: (change) => changes.push(change.state),
    })) {
      events.push(event);
      if (events.length === 1) {
        // Stop reading while the whole turn runs: the server-side reader falls behind by more
        // than the log keeps.
        await manager.followUpSession(id, ['go']);
        await manager.waitStopped(id, { timeoutMs: 5_000 });
      }
      if (event.type === 'stream_stopped' && events.length > 10) break;
    }
    const gap = events.find((event) => event.type === 'gap');
    expect(gap).toMatchObject({ reason: 'dropped' });
    expect(changes).toEqual([]); // a lag reconnects at once, without a backoff
    const seqs = events.filter((event) => event.seq > 0).map((event) => event.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs); // in order, no duplicates
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(events.at(-1)!.type).toBe('stream_stopped');
    await manager.close();
  });

  test('a connection dropped right after a gap resumes after the gap: the caller sees it once', async () => {
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({ runtime: scripted.factory, eventLogCapacity: 8 });
    const handler = createHttpHandler(manager);
    const { id } = await manager.createSession();
    scripted.reply('', { deltas: Array.from({ length: 20 }, (_, index) => `w${index} `) });
    await (await manager.runSession(id, { messages: ['go'] })).done;
    const positions: Array<string | null> = [];
    const client = new AgentSessionsClient({
      baseUrl: 'http://in-process/api',
      fetch: async (input, init) => {
        const request = new Request(input, init);
        positions.push(request.headers.get('last-event-id'));
        const response = await handler(request);
        if (positions.length > 1) return response;
        // The first connection drops just after the gap message, before any event behind it.
        let text = '';
        const decoder = new TextDecoder();
        const cut = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            text += decoder.decode(chunk, { stream: true });
            const gap = text.indexOf('event: gap\n');
            const end = gap < 0 ? -1 : text.indexOf('\n\n', gap);
            if (end < 0) return;
            controller.enqueue(new TextEncoder().encode(text.slice(0, end + 2)));
            controller.terminate();
          },
        });
        return new Response(response.body!.pipeThrough(cut), response);
      },
      reconnect: { initialDelayMs: 1 },
    });
    const events: SessionEvent[] = [];
    for await (const event of client.streamEvents(id, { since: 0 })) {
      events.push(event);
      if (event.type === 'stream_stopped') break;
    }
    const gaps = events.filter((event) => event.type === 'gap');
    expect(gaps).toHaveLength(1);
    const nextSeq = (gaps[0] as Extract<SessionEvent, { type: 'gap' }>).nextSeq;
    expect(positions).toEqual(['0', String(nextSeq - 1)]);
    expect(events[1]!.seq).toBe(nextSeq);
    await manager.close();
  });

  test('a connection silent for idleTimeoutMs counts as dropped and is reopened', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let opened = 0;
    const silent: typeof fetch = async (_input, init) => {
      opened++;
      const signal = init?.signal;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('retry: 1000\n\n'));
          signal?.addEventListener('abort', () => controller.error(signal.reason), { once: true });
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    };
    const client = new AgentSessionsClient({
      baseUrl: 'http://silent/api',
      fetch: silent,
      reconnect: { idleTimeoutMs: 45_000, initialDelayMs: 100 },
    });
    const changes: ConnectionChange[] = [];
    const controller = new AbortController();
    const next = client
      .streamEvents('ses_a', {
        signal: controller.signal,
        onConnectionChange: (change) => changes.push(change),
      })
      [Symbol.asyncIterator]()
      .next();
    next.catch(() => {});
    await vi.advanceTimersByTimeAsync(0);
    expect(opened).toBe(1);
    await vi.advanceTimersByTimeAsync(44_999);
    expect(changes.map((change) => String((change as { error?: Error }).error?.message))).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(changes[0]).toMatchObject({ state: 'reconnecting', delayMs: 100 });
    await vi.advanceTimersByTimeAsync(100);
    expect(opened).toBe(2);
    controller.abort(new Error('done'));
    await expect(next).rejects.toThrow('done');
  });
});
