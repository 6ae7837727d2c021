// Bad input through real HTTP gets the documented status and a JSON error `{ code, message }`.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ERROR_STATUS, MAX_JSON_DEPTH } from '../../src/http/index.js';
import { ROUTES } from '../../src/http/routes.js';
import { startServer, type TestServer } from './server.js';

let server: TestServer;
let sessionId: string;
let otherUsersSession: string;
const TOKEN = 'right-token-0123456789';

beforeAll(async () => {
  server = await startServer({
    http: {
      maxBodyBytes: 4096,
      authenticate: (request) => {
        const user = request.headers.get('x-user');
        return user ? { id: user } : undefined;
      },
      token: TOKEN,
    },
  });
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const mine = await fetch(`${server.api}/sessions`, {
    method: 'POST',
    headers: { ...headers, 'x-user': 'ada' },
  });
  sessionId = ((await mine.json()) as { id: string }).id;
  const theirs = await fetch(`${server.api}/sessions`, {
    method: 'POST',
    headers: { ...headers, 'x-user': 'bob' },
  });
  otherUsersSession = ((await theirs.json()) as { id: string }).id;
});

afterAll(() => server.close());

interface Case {
  name: string;
  method: string;
  path: string | (() => string);
  body?: string | (() => string | ReadableStream<Uint8Array>);
  headers?: Record<string, string>;
  /** Replace the default authorization and user headers. */
  auth?: Record<string, string>;
  status: number;
  code: string;
}

const json = { 'content-type': 'application/json' };

/** A body sent in chunks, without content-length. */
function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + 1000));
      offset += 1000;
    },
  });
}

const cases: Case[] = [
  {
    name: 'malformed JSON',
    method: 'POST',
    path: '/sessions',
    body: '{"title": ',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a JSON array instead of an object',
    method: 'POST',
    path: '/sessions',
    body: '[]',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a wrong type (title: 42)',
    method: 'POST',
    path: '/sessions',
    body: '{"title":42}',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'an unknown field',
    method: 'POST',
    path: '/sessions',
    body: '{"owner":"mallory"}',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'run without messages',
    method: 'POST',
    path: () => `/sessions/${sessionId}/run`,
    body: '{"messages":[]}',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'run with a number as message',
    method: 'POST',
    path: () => `/sessions/${sessionId}/run`,
    body: '{"messages":[1]}',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'resume with an unknown confirmation',
    method: 'POST',
    path: () => `/sessions/${sessionId}/resume`,
    body: '{"confirmation":"maybe"}',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'resume with nothing pending',
    method: 'POST',
    path: () => `/sessions/${sessionId}/resume`,
    body: '{"confirmation":"approve"}',
    headers: json,
    status: 409,
    code: 'NOTHING_PENDING',
  },
  {
    name: 'steer an idle session',
    method: 'POST',
    path: () => `/sessions/${sessionId}/steer`,
    body: '{"messages":["x"]}',
    headers: json,
    status: 409,
    code: 'SESSION_NOT_RUNNING',
  },
  {
    name: 'a missing required body',
    method: 'PATCH',
    path: () => `/sessions/${sessionId}/title`,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a huge body',
    method: 'POST',
    path: '/sessions',
    body: () => JSON.stringify({ title: 'x'.repeat(10_000) }),
    headers: json,
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a huge body without content-length (chunked)',
    method: 'POST',
    path: '/sessions',
    body: () => chunked(JSON.stringify({ title: 'x'.repeat(10_000) })),
    headers: json,
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a form body',
    method: 'POST',
    path: '/sessions',
    body: 'title=x',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'JSON without a content type',
    method: 'POST',
    path: '/sessions',
    body: '{}',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'JSON nested deeper than MAX_JSON_DEPTH',
    method: 'POST',
    path: '/sessions',
    // 2 levels of object, then 255 arrays: one level more than the limit.
    body: `{"attributes":{"a":${'['.repeat(255)}${']'.repeat(255)}}}`,
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  { name: 'an unknown route', method: 'GET', path: '/nothing-here', status: 404, code: 'NOT_FOUND' },
  {
    name: 'an unknown route under a session',
    method: 'GET',
    path: () => `/sessions/${sessionId}/nothing`,
    status: 404,
    code: 'NOT_FOUND',
  },
  { name: 'a wrong method', method: 'PUT', path: '/sessions', status: 405, code: 'METHOD_NOT_ALLOWED' },
  {
    name: 'a wrong method on a session',
    method: 'POST',
    path: () => `/sessions/${sessionId}`,
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  {
    name: 'no token',
    method: 'GET',
    path: '/sessions',
    auth: { 'x-user': 'ada' },
    status: 401,
    code: 'UNAUTHORIZED',
  },
  {
    name: 'a wrong token of the same length',
    method: 'GET',
    path: '/sessions',
    auth: { authorization: `Bearer ${'x'.repeat(TOKEN.length)}`, 'x-user': 'ada' },
    status: 401,
    code: 'UNAUTHORIZED',
  },
  {
    name: 'a shorter token (a prefix)',
    method: 'GET',
    path: '/sessions',
    auth: { authorization: `Bearer ${TOKEN.slice(0, -1)}`, 'x-user': 'ada' },
    status: 401,
    code: 'UNAUTHORIZED',
  },
  {
    name: 'a longer token',
    method: 'GET',
    path: '/sessions',
    auth: { authorization: `Bearer ${TOKEN}x`, 'x-user': 'ada' },
    status: 401,
    code: 'UNAUTHORIZED',
  },
  {
    name: 'the token in another scheme',
    method: 'GET',
    path: '/sessions',
    auth: { authorization: `Basic ${TOKEN}`, 'x-user': 'ada' },
    status: 401,
    code: 'UNAUTHORIZED',
  },
  {
    name: 'a right token but no principal',
    method: 'GET',
    path: '/sessions',
    auth: { authorization: `Bearer ${TOKEN}` },
    status: 401,
    code: 'UNAUTHORIZED',
  },
  {
    name: 'another owner’s session',
    method: 'GET',
    path: () => `/sessions/${otherUsersSession}`,
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  {
    name: 'another owner’s session events',
    method: 'GET',
    path: () => `/sessions/${otherUsersSession}/events`,
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  {
    name: 'deleting another owner’s session',
    method: 'DELETE',
    path: () => `/sessions/${otherUsersSession}`,
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  {
    name: 'running another owner’s session',
    method: 'POST',
    path: () => `/sessions/${otherUsersSession}/run`,
    body: '{"messages":["hi"]}',
    headers: json,
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  {
    name: 'an unknown session',
    method: 'GET',
    path: '/sessions/ses_unknown',
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  {
    name: 'a traversal id',
    method: 'GET',
    path: '/sessions/..%2F..%2Fetc%2Fpasswd',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'an encoded NUL in an id',
    method: 'GET',
    path: '/sessions/abc%00def',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'malformed percent-encoding',
    method: 'GET',
    path: '/sessions/%E0%A4%A',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'an over-long id',
    method: 'GET',
    path: `/sessions/${'a'.repeat(300)}`,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a unicode id',
    method: 'GET',
    path: '/sessions/s%C3%A9ance',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'an unknown query parameter',
    method: 'GET',
    path: '/sessions?evil=1',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a non-numeric limit',
    method: 'GET',
    path: '/sessions?limit=ten',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a malformed cursor',
    method: 'GET',
    path: '/sessions?cursor=!!',
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a non-numeric Last-Event-ID',
    method: 'GET',
    path: () => `/sessions/${sessionId}/events`,
    headers: { 'last-event-id': 'abc' },
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'an unknown turn',
    method: 'GET',
    path: () => `/sessions/${sessionId}/turns/turn_nope/events`,
    status: 404,
    code: 'TURN_NOT_FOUND',
  },
  {
    name: 'a fork out of range',
    method: 'POST',
    path: () => `/sessions/${sessionId}/fork`,
    body: '{"beforeUserMessage":5}',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
  {
    name: 'a model of the wrong type',
    method: 'PUT',
    path: () => `/sessions/${sessionId}/model`,
    body: '{"model":42}',
    headers: json,
    status: 400,
    code: 'INVALID_ARGUMENT',
  },
];

describe('bad input over HTTP', () => {
  test.each(cases)('$name → $status $code', async (entry) => {
    const path = typeof entry.path === 'function' ? entry.path() : entry.path;
    const body = typeof entry.body === 'function' ? entry.body() : entry.body;
    const response = await fetch(`${server.api}${path}`, {
      method: entry.method,
      headers: { ...(entry.auth ?? { authorization: `Bearer ${TOKEN}`, 'x-user': 'ada' }), ...entry.headers },
      ...(body === undefined ? {} : { body, duplex: 'half' }),
    } as RequestInit);
    expect(response.status).toBe(entry.status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const error = (await response.json()) as { code: string; message: string };
    expect(error.code).toBe(entry.code);
    expect(typeof error.message).toBe('string');
    expect(JSON.stringify(error)).not.toMatch(/\n\s+at /); // no stack trace
    expect(ERROR_STATUS[entry.code as keyof typeof ERROR_STATUS]).toBe(entry.status);
    if (entry.status === 405) expect(response.headers.get('allow')).toMatch(/[A-Z]/);
    if (entry.status === 401) expect(response.headers.get('www-authenticate')).toBe('Bearer');
  });
});

describe('owner isolation', () => {
  const byId = ROUTES.filter((route) => route.path.includes('{id}'));
  const as = (user: string) => ({ authorization: `Bearer ${TOKEN}`, 'x-user': user, ...json });

  test.each(byId.map((route) => [route.method, route.path] as const))(
    '%s %s on another owner’s session is 404 SESSION_NOT_FOUND and changes nothing',
    async (method, template) => {
      const before = await server.manager.getSession(otherUsersSession);
      const path = template
        .replace('{id}', otherUsersSession)
        .replace('{turnId}', 'turn_x')
        .replace('{messageId}', 'msg_x')
        .replace('{agent}', 'default')
        .replace('{agentName}', 'main');
      const response = await fetch(`${server.api}${path}`, {
        method,
        headers: as('ada'),
        ...(method === 'GET' || method === 'DELETE' ? {} : { body: '{}' }),
      });
      expect(response.status).toBe(404);
      expect(((await response.json()) as { code: string }).code).toBe('SESSION_NOT_FOUND');
      expect(await server.manager.getSession(otherUsersSession)).toEqual(before);
    },
  );

  test('batch export and delete refuse, and import cannot replace, another owner’s session', async () => {
    const exported = await fetch(`${server.api}/sessions/batch/export`, {
      method: 'POST',
      headers: as('ada'),
      body: JSON.stringify({ ids: [otherUsersSession] }),
    });
    expect(exported.status).toBe(404);
    const deleted = await fetch(`${server.api}/sessions/batch/delete`, {
      method: 'POST',
      headers: as('ada'),
      body: JSON.stringify({ ids: [otherUsersSession] }),
    });
    expect(await deleted.json()).toMatchObject({
      deleted: [],
      failed: [{ id: otherUsersSession, error: { code: 'SESSION_NOT_FOUND' } }],
    });
    const bundle = await server.manager.exportSessions([otherUsersSession]);
    const imported = await fetch(`${server.api}/sessions/import`, {
      method: 'POST',
      headers: as('ada'),
      body: JSON.stringify({ bundle, onConflict: 'replace' }),
    });
    expect(imported.status).toBe(409);
    expect((await server.manager.getSession(otherUsersSession)).owner).toBe('bob');
    const listed = await fetch(`${server.api}/sessions`, { headers: as('ada') });
    const ids = ((await listed.json()) as { sessions: Array<{ id: string }> }).sessions.map(
      (entry) => entry.id,
    );
    expect(ids).not.toContain(otherUsersSession);
  });
});

test('brackets inside JSON strings do not count as nesting', async () => {
  expect(MAX_JSON_DEPTH).toBe(256);
  const title = `${'[{'.repeat(400)}"\\`;
  // Exactly the limit is fine: 2 levels of object, then 254 arrays.
  const deep = JSON.parse(`${'['.repeat(254)}1${']'.repeat(254)}`);
  const response = await fetch(`${server.api}/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'x-user': 'ada', ...json },
    body: JSON.stringify({ title, attributes: { deep } }),
  });
  expect(response.status).toBe(201);
  expect(((await response.json()) as { title: string }).title).toBe(title);
});
