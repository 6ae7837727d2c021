// The handler mounts unchanged in a framework: Hono's `app.mount` (tested with Hono's own
// `app.request`), under another basePath, and called directly as a web-standard function.
import { Hono } from 'hono';
import { describe, expect, test } from 'vitest';
import { createHttpHandler } from '../../src/http/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';

describe('mounting', () => {
  test('Hono app.mount serves the API under its prefix, SSE turns included', async () => {
    const scripted = new ScriptedRuntime();
    const manager = new SessionManager({ runtime: scripted.factory });
    const app = new Hono();
    app.get('/', (context) => context.text('the host’s own page'));
    app.mount('/agents', createHttpHandler(manager));
    expect(await (await app.request('/')).text()).toBe('the host’s own page');
    const created = await app.request('/agents/api/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Through Hono' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    scripted.reply('mounted');
    const turn = await app.request(`/agents/api/sessions/${id}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: ['hi'] }),
    });
    expect(turn.headers.get('content-type')).toContain('text/event-stream');
    const text = await turn.text();
    expect(text).toContain('event: agent_choice');
    expect(text).toContain('event: turn_result');
    expect((await app.request('/agents/health')).status).toBe(200);
    expect((await app.request('/agents/api/nowhere')).status).toBe(404);
    await manager.close();
  });

  test('basePath moves the API; the OpenAPI document follows it', async () => {
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    const handler = createHttpHandler(manager, { basePath: '/v1' });
    expect((await handler(new Request('http://host/v1/sessions'))).status).toBe(200);
    expect((await handler(new Request('http://host/api/sessions'))).status).toBe(404);
    const document = (await (await handler(new Request('http://host/v1/openapi.json'))).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(document.paths)).toContain('/v1/sessions/{id}/events');
    expect(() => createHttpHandler(manager, { basePath: 'no-slash' })).toThrow(TypeError);
    await manager.close();
  });
});
