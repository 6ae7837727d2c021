// createHttpHandler: the status table, auth, ownership, CORS, health and readiness, the OpenAPI
// document, and the routes that carry HTTP-specific behaviour (Idempotency-Key, Retry-After, wait).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import {
  createHttpHandler,
  createOpenApiDocument,
  ERROR_STATUS,
  HttpErrorCode,
  timingSafeEqual,
} from '../../src/http/index.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { startServer, type TestServer } from './server.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('the code → status table', () => {
  test('maps every ErrorCode of the library and every HTTP code', () => {
    for (const code of [...Object.values(ErrorCode), ...Object.values(HttpErrorCode)]) {
      expect(ERROR_STATUS[code], code).toBeGreaterThanOrEqual(400);
    }
    expect(ERROR_STATUS.SESSION_NOT_FOUND).toBe(404);
    expect(ERROR_STATUS.SESSION_BUSY).toBe(409);
    expect(ERROR_STATUS.QUEUE_FULL).toBe(429);
    expect(ERROR_STATUS.INVALID_ARGUMENT).toBe(400);
  });

  test('docs/http.md lists every route', async () => {
    const { ROUTES } = await import('../../src/http/routes.js');
    const page = readFileSync(resolve(root, 'docs/http.md'), 'utf8');
    for (const route of ROUTES) {
      const path = route.root ? route.path : `/api${route.path}`;
      const escaped = path.replace(/[{}.]/g, (character) => `\\${character}`);
      expect(page, `${route.method} ${path}`).toMatch(
        new RegExp(`\\| ${route.method}\\s+\\| \`${escaped}\`\\s+\\|`),
      );
    }
  });

  test('docs/http.md documents every code with its status', () => {
    const page = readFileSync(resolve(root, 'docs/http.md'), 'utf8');
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(page, code).toMatch(new RegExp(`\\| \`${code}\`\\s+\\| ${status} `));
    }
  });
});

describe('bearer tokens', () => {
  test('timingSafeEqual is true exactly for equal strings, whatever their lengths', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.string(), async (a, b) => {
        expect(await timingSafeEqual(a, b)).toBe(a === b);
        expect(await timingSafeEqual(a, a)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  test('timingSafeEqual compares digests, so equal-length and different-length mismatches are both false', async () => {
    expect(await timingSafeEqual('secret-a', 'secret-b')).toBe(false);
    expect(await timingSafeEqual('secret', 'secret-longer')).toBe(false);
    expect(await timingSafeEqual('', 'x')).toBe(false);
  });

  test('any of several tokens is accepted (rotation), the scheme is case-insensitive, others get 401', async () => {
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    const handler = createHttpHandler(manager, { token: ['old-token', 'new-token'] });
    const call = (authorization?: string) =>
      handler(new Request('http://test/api/ping', authorization ? { headers: { authorization } } : {}));
    expect((await call('Bearer old-token')).status).toBe(200);
    expect((await call('bearer new-token')).status).toBe(200);
    expect((await call('Bearer new-tokeN')).status).toBe(401);
    expect((await call('Bearer')).status).toBe(401);
    expect((await call()).status).toBe(401);
    await manager.close();
  });

  test('health and readiness need no token; everything under /api does', async () => {
    server = await startServer({ http: { token: 't0ken' } });
    expect((await fetch(`${server.origin}/health`)).status).toBe(200);
    expect((await fetch(`${server.origin}/ready`)).status).toBe(200);
    expect((await fetch(`${server.api}/openapi.json`)).status).toBe(401);
  });

  test.each([
    ['turnRetention', -1],
    ['heartbeatMs', -5],
    ['heartbeatMs', 0.5],
    ['retryMs', Number.NaN],
    ['sseHighWaterMark', 0],
    ['maxBodyBytes', 0],
    ['onDisconnect', 'abort'],
  ] as const)(
    '%s %s is refused at construction (it would hang, flood or refuse everything)',
    (name, value) => {
      const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
      expect(() => createHttpHandler(manager, { [name]: value })).toThrow(new RegExp(`invalid ${name}`));
    },
  );

  test('an empty token is refused at construction', () => {
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    expect(() => createHttpHandler(manager, { token: '' })).toThrow(TypeError);
  });
});

describe('ownership', () => {
  test('sessions are owned by the principal: listings are filtered, another user’s session is 404', async () => {
    server = await startServer({
      http: { authenticate: (request) => ({ id: request.headers.get('x-user') ?? 'anonymous' }) },
    });
    const ada = server.client({ headers: { 'x-user': 'ada' } });
    const bob = server.client({ headers: { 'x-user': 'bob' } });
    const mine = await ada.createSession({ title: 'Ada’s' });
    await bob.createSession({ title: 'Bob’s' });
    expect(mine.owner).toBe('ada');
    expect((await ada.listSessions()).sessions.map((summary) => summary.title)).toEqual(['Ada’s']);
    await expect(bob.getSession(mine.id)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    await expect(bob.deleteSession(mine.id)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    const fork = await ada.forkSession(mine.id);
    expect(fork.owner).toBe('ada');
    const batch = await bob.deleteSessions([mine.id]);
    expect(batch.failed.map((failure) => failure.error.code)).toEqual(['SESSION_NOT_FOUND']);
    expect(await ada.getSession(mine.id)).toMatchObject({ title: 'Ada’s' });
    const bundle = await ada.exportSessions([mine.id]);
    await expect(bob.importSessions(bundle, { onConflict: 'replace' })).rejects.toMatchObject({
      code: 'SESSION_EXISTS',
    });
  });

  test('authenticate() resolving to nothing is 401', async () => {
    server = await startServer({ http: { authenticate: () => undefined } });
    const response = await fetch(`${server.api}/sessions`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: 'UNAUTHORIZED' });
  });
});

describe('CORS', () => {
  test('is off by default: no CORS headers and preflights are 405', async () => {
    server = await startServer();
    const response = await fetch(`${server.api}/sessions`, { headers: { origin: 'https://app.example' } });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${server.api}/sessions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(405);
  });

  test('credentials with origin "*" are refused at construction; with listed origins the origin is echoed', async () => {
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    expect(() => createHttpHandler(manager, { cors: { origin: '*', credentials: true } })).toThrow(
      /credentials/,
    );
    const handler = createHttpHandler(manager, {
      cors: { origin: ['https://app.example'], credentials: true },
    });
    const response = await handler(
      new Request('http://localhost/health', { headers: { origin: 'https://app.example' } }),
    );
    expect(response.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(response.headers.get('access-control-allow-credentials')).toBe('true');
    const stranger = await handler(
      new Request('http://localhost/health', { headers: { origin: 'https://evil.example' } }),
    );
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
    expect(stranger.headers.get('access-control-allow-credentials')).toBeNull();
    await manager.close();
  });

  test('configured origins get CORS headers and preflight answers; others do not', async () => {
    server = await startServer({ http: { cors: { origin: ['https://app.example'] }, token: 'tok' } });
    const preflight = await fetch(`${server.api}/sessions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const allowed = await fetch(`${server.api}/sessions`, {
      headers: { origin: 'https://app.example', authorization: 'Bearer tok' },
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const other = await fetch(`${server.api}/sessions`, {
      headers: { origin: 'https://evil.example', authorization: 'Bearer tok' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('forged cross-site requests', () => {
  // A host that authenticates with a session cookie, as a browser app would.
  const cookieAuth = (request: Request) =>
    request.headers.get('cookie') === 'sid=ada' ? { id: 'ada' } : undefined;
  const forged = (url: string, extra: Record<string, string> = {}) =>
    new Request(url, {
      method: 'POST',
      // What a form on another site sends, with the user's cookie.
      headers: {
        cookie: 'sid=ada',
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
        ...extra,
      },
    });

  test('a cross-site form POST with the user’s cookie is 403 CROSS_SITE_REQUEST and changes nothing', async () => {
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    const handler = createHttpHandler(manager, { authenticate: cookieAuth });
    const { id } = await manager.createSession({ owner: 'ada' });
    const response = await handler(forged(`http://test/api/sessions/${id}/tools/toggle`));
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 'CROSS_SITE_REQUEST' });
    expect((await manager.getSession(id)).safetyPolicy).not.toBe('autonomous');
    const cancelling = await handler(
      forged(`http://test/api/sessions/${id}/cancel`, { 'content-type': 'text/plain' }),
    );
    expect(cancelling.status).toBe(403);
    await manager.close();
  });

  test('same-origin requests, cross-site reads, origins CORS allows and non-browser clients pass', async () => {
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    const handler = createHttpHandler(manager, {
      authenticate: cookieAuth,
      cors: { origin: ['https://app.example'], credentials: true },
    });
    const { id } = await manager.createSession({ owner: 'ada' });
    const toggle = `http://test/api/sessions/${id}/tools/toggle`;
    for (const headers of [
      { 'sec-fetch-site': 'same-origin', origin: 'http://test' },
      { 'sec-fetch-site': 'same-site', origin: 'https://app.example' },
      { 'sec-fetch-site': 'cross-site', origin: 'https://app.example' },
    ]) {
      expect((await handler(forged(toggle, headers))).status).toBe(200);
    }
    const curl = new Request(toggle, { method: 'POST', headers: { cookie: 'sid=ada' } });
    expect((await handler(curl)).status).toBe(200);
    const read = new Request(`http://test/api/sessions/${id}`, {
      headers: { cookie: 'sid=ada', 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
    });
    expect((await handler(read)).status).toBe(200);
    await manager.close();
  });
});

describe('health and readiness', () => {
  test('/ready is 503 with the store’s error when the store fails, 200 again when it recovers', async () => {
    const store = new FailingStore(new MemoryStore());
    server = await startServer({ manager: { store } });
    store.failNext('listSessions');
    const failing = await fetch(`${server.origin}/ready`);
    expect(failing.status).toBe(503);
    expect(await failing.json()).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((await fetch(`${server.origin}/ready`)).status).toBe(200);
    expect(await (await fetch(`${server.origin}/health`)).json()).toEqual({ status: 'ok' });
  });

  test('/ready is 503 CLOSED once the manager closed', async () => {
    server = await startServer();
    await server.manager.close();
    const response = await fetch(`${server.origin}/ready`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: 'CLOSED' });
  });
});

describe('OpenAPI', () => {
  test('docs/openapi.json is the generated document (regenerate with `npm run openapi`)', () => {
    const committed = JSON.parse(readFileSync(resolve(root, 'docs/openapi.json'), 'utf8'));
    expect(committed).toEqual(createOpenApiDocument());
  });

  test('the handler serves it, and it documents every route with its body schema', async () => {
    server = await startServer();
    const document = (await (await fetch(`${server.api}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toContain('/api/sessions/{id}/run');
    expect(document.paths['/api/sessions/{id}/followup']!.post!.requestBody).toBeDefined();
    expect(Object.keys(document.components.schemas.RunBody!.properties!)).toEqual([
      'messages',
      'source',
      'agent',
      'model',
    ]);
    expect(document.components.schemas.Session!.properties!.owner).toBeDefined();
  });
});

describe('routes', () => {
  test('a follow-up’s Idempotency-Key header delivers once: 202 started, then 200 duplicate', async () => {
    server = await startServer();
    server.scripted.reply('one');
    const client = server.client();
    const { id } = await client.createSession();
    const url = `${server.api}/sessions/${id}/followup`;
    const first = await post(url, { messages: ['hi'] }, { 'idempotency-key': 'k1' });
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ status: 'started' });
    const again = await post(url, { messages: ['hi'] }, { 'idempotency-key': 'k1' });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ status: 'duplicate' });
    await server.manager.waitStopped(id, { timeoutMs: 5_000 });
  });

  test('a full steer queue is 429 QUEUE_FULL with Retry-After', async () => {
    server = await startServer({ manager: { steerCapacity: 1 } });
    server.scripted.turn([step.hold('busy'), step.takeSteering(), step.reply('ok')]);
    const client = server.client();
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['go'] });
    await server.scripted.waitUntilHeld('busy');
    await client.steerSession(id, ['first']);
    const full = await post(`${server.api}/sessions/${id}/steer`, { messages: ['second'] });
    expect(full.status).toBe(429);
    expect(full.headers.get('retry-after')).toBe('1');
    expect(await full.json()).toMatchObject({ code: 'QUEUE_FULL' });
    server.scripted.release('busy');
    expect((await stream.done).stopReason).toBe('end_turn');
  });

  test('DELETE ?wait=true waits for the cancelled turn; 202 when the timeout runs out first', async () => {
    server = await startServer();
    let finish!: () => void;
    const stuck = new Promise<void>((resolvePromise) => {
      finish = resolvePromise;
    });
    // A runtime that ignores its signal for a while after a cancel, as a slow real one would.
    server.scripted.turn(async function* () {
      yield step.hold('running');
      await stuck;
    });
    const client = server.client();
    const { id } = await client.createSession();
    await client.runSession(id, { messages: ['go'] }, { onDetach: 'continue' });
    await server.scripted.waitUntilHeld('running');
    server.scripted.release('running');
    const response = await fetch(`${server.api}/sessions/${id}?wait=true&timeout=50`, { method: 'DELETE' });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ deleted: true, stopped: false });
    finish();
    const { id: other } = await client.createSession();
    const quick = await fetch(`${server.api}/sessions/${other}?wait=true`, { method: 'DELETE' });
    expect(quick.status).toBe(200);
    expect(await quick.json()).toEqual({ deleted: true, stopped: true });
  });

  test('an unexpected error is 500 INTERNAL without its message, and goes to the logger', async () => {
    const logged: unknown[] = [];
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory });
    const handler = createHttpHandler(manager, {
      authenticate: () => {
        throw new Error('database password is hunter2');
      },
      logger: { debug() {}, info() {}, warn() {}, error: (_message, fields) => logged.push(fields?.error) },
    });
    const response = await handler(new Request('http://test/api/sessions'));
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ code: 'INTERNAL', message: 'internal error' });
    expect(text).not.toContain('hunter2');
    expect(logged).toHaveLength(1);
    await manager.close();
  });

  test('a store failure keeps its code and status but not the backend’s words, which go to the logger', async () => {
    const logged: unknown[] = [];
    const store = new FailingStore(new MemoryStore());
    const manager = new SessionManager({ runtime: new ScriptedRuntime().factory, store });
    const handler = createHttpHandler(manager, {
      logger: { debug() {}, info() {}, warn() {}, error: (_message, fields) => logged.push(fields?.error) },
    });
    const { id } = await manager.createSession();
    // What a store makes of a driver's error (defineStore's normalisation): the driver's text inside.
    const failure = (code: typeof ErrorCode.STORE_UNAVAILABLE | typeof ErrorCode.STORE_CORRUPT) =>
      new AgentSessionsError(
        code,
        `the postgres store could not read session: password authentication failed for user "app" at 10.1.2.3 (/srv/secrets)`,
      );
    for (const [code, status] of [
      [ErrorCode.STORE_UNAVAILABLE, 503],
      [ErrorCode.STORE_CORRUPT, 500],
    ] as const) {
      store.failNext('getSession', failure(code));
      const response = await handler(new Request(`http://test/api/sessions/${id}`));
      expect(response.status).toBe(status);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ code });
      expect(text).not.toMatch(/10\.1\.2\.3|authentication|secrets/);
    }
    expect(logged).toHaveLength(2);
    store.failNext('listSessions', failure(ErrorCode.STORE_UNAVAILABLE));
    const ready = await handler(new Request('http://test/ready'));
    expect(ready.status).toBe(503);
    expect(await ready.text()).not.toContain('10.1.2.3');
    expect(logged).toHaveLength(3);
    await manager.close();
  });
});
