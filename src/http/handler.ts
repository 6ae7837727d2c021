/**
 * `createHttpHandler(manager, options)`: every capability of a {@link SessionManager} as a
 * web-standard `(request: Request) => Promise<Response>`, which mounts unchanged in Node (through
 * {@link toNodeListener}), Hono (`app.mount`), Bun (`Bun.serve({ fetch })`) and Deno (`Deno.serve`).
 */
import { InvalidArgumentError, SessionNotFoundError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import type { SessionManager } from '../manager/session-manager.js';
import { assertSessionId, type Session } from '../schemas.js';
import { type AuthOptions, createAuthenticator, type Principal } from './auth.js';
import { DEFAULT_MAX_BODY_BYTES, parseQuery, readJsonBody } from './body.js';
import { type CorsOptions, corsHeaders, preflightResponse, validateCors } from './cors.js';
import { createOpenApiDocument } from './openapi.js';
import { ROUTES, type RouteContext, type RouteDefinition } from './routes.js';
import type { SseOptions } from './sse.js';
import { describeError, HttpErrorCode, HttpFailure } from './status.js';
import { TurnRegistry } from './turns.js';

/** A web-standard request handler. */
export type HttpHandler = (request: Request) => Promise<Response>;

/** Options of {@link createHttpHandler}. */
export interface HttpHandlerOptions extends AuthOptions {
  /** Where the API routes live; `/health` and `/ready` stay at the root. @default '/api' */
  basePath?: string;
  /** Cross-origin access. Off (no CORS headers) unless given. */
  cors?: CorsOptions;
  /** Largest accepted request body, in bytes (413 above). @default 1048576 */
  maxBodyBytes?: number;
  /** Interval of the SSE `: ping` comment; 0 disables it. @default 15000 */
  heartbeatMs?: number;
  /** The SSE `retry:` value (how long a browser's EventSource waits before reconnecting). @default 2000 */
  retryMs?: number;
  /** SSE messages held for a client that has not read them yet. @default 16 */
  sseHighWaterMark?: number;
  /**
   * What a dropped turn stream (`POST /run`) does to its turn: `'detach'` lets it run on (the client
   * resumes with `/turns/{turnId}/events`), `'cancel'` cancels it. @default 'detach'
   */
  onDisconnect?: 'detach' | 'cancel';
  /** Ended turn streams remembered for resumption. @default 256 */
  turnRetention?: number;
  /** Where unexpected errors are logged (their details never go into a response). */
  logger?: Logger;
}

interface CompiledRoute {
  route: RouteDefinition;
  segments: Array<{ literal: string } | { param: string }>;
}

const OWNER_CACHE_SIZE = 10_000;

function compile(route: RouteDefinition, basePath: string): CompiledRoute {
  const path = route.root ? route.path : `${basePath}${route.path}`;
  return {
    route,
    segments: path
      .split('/')
      .slice(1)
      .map((segment) => {
        const param = /^\{(\w+)\}$/.exec(segment)?.[1];
        return param === undefined ? { literal: segment } : { param };
      }),
  };
}

function match(compiled: CompiledRoute, parts: readonly string[]): Record<string, string> | undefined {
  if (compiled.segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, segment] of compiled.segments.entries()) {
    const part = parts[index]!;
    if ('literal' in segment) {
      if (segment.literal !== part) return undefined;
    } else {
      if (part === '') return undefined;
      params[segment.param] = part;
    }
  }
  return params;
}

function hasControlCharacter(value: string): boolean {
  for (let index = 0; index < value.length; index++) if (value.charCodeAt(index) < 0x20) return true;
  return false;
}

function decodeParams(raw: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      throw new InvalidArgumentError(`invalid ${name} in path: malformed percent-encoding`, {
        issues: [{ path: [name], message: 'malformed percent-encoding' }],
      });
    }
    if (name === 'id') assertSessionId(decoded);
    else if (decoded.length === 0 || decoded.length > 256 || hasControlCharacter(decoded)) {
      throw new InvalidArgumentError(`invalid ${name} in path`, {
        issues: [{ path: [name], message: 'expected 1 to 256 printable characters' }],
      });
    }
    params[name] = decoded;
  }
  return params;
}

function normalizeBasePath(basePath: string): string {
  if (basePath === '' || basePath === '/') return '';
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(basePath)) {
    throw new TypeError(`invalid basePath ${JSON.stringify(basePath)}: expected e.g. "/api"`);
  }
  return basePath;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses a request a browser marks as sent by another site (`Sec-Fetch-Site`, which browsers set
 * themselves and a proxy does not change) when it may change state and CORS does not allow its
 * origin. A page of another site may not read such a response, but without this the server would
 * still act on it: a form or a `no-cors` fetch with the user's cookies would run, cancel, toggle or
 * delete sessions for a host whose `authenticate` reads a cookie. Clients that are not browsers
 * send no `Sec-Fetch-Site` and are not concerned.
 */
function refuseForgedRequest(request: Request, cors: CorsOptions | undefined): void {
  if (SAFE_METHODS.has(request.method)) return;
  const site = request.headers.get('sec-fetch-site');
  if (site === null || site === 'same-origin' || site === 'none') return;
  if (corsHeaders(cors, request)['access-control-allow-origin'] !== undefined) return;
  throw new HttpFailure(
    HttpErrorCode.CROSS_SITE_REQUEST,
    'cross-site request refused: its origin is not allowed by the cors option',
  );
}

/** Throws a TypeError for a numeric option that is not an integer within its range. */
function checkCount(name: string, value: number | undefined, minimum: number): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new TypeError(`invalid ${name} ${String(value)}: expected an integer ≥ ${minimum}`);
  }
}

/** Options a careless host could get wrong in ways that would hang or flood, refused at once. */
function checkOptions(options: HttpHandlerOptions): void {
  checkCount('maxBodyBytes', options.maxBodyBytes, 1);
  // A negative interval would fire every millisecond; a negative retention would never stop trimming.
  checkCount('heartbeatMs', options.heartbeatMs, 0);
  checkCount('retryMs', options.retryMs, 0);
  checkCount('sseHighWaterMark', options.sseHighWaterMark, 1);
  checkCount('turnRetention', options.turnRetention, 0);
  if (
    options.onDisconnect !== undefined &&
    options.onDisconnect !== 'detach' &&
    options.onDisconnect !== 'cancel'
  ) {
    throw new TypeError(
      `invalid onDisconnect ${JSON.stringify(options.onDisconnect)}: expected "detach" or "cancel"`,
    );
  }
}

function errorResponse(error: unknown, logger: Logger, request: Request): Response {
  const { status, body, headers, opaque } = describeError(error);
  if (opaque) {
    logger.error('agent-sessions/http: unexpected error', {
      error,
      method: request.method,
      url: request.url,
    });
  }
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

/**
 * Makes the handler. Routes are documented in docs/http.md and in the OpenAPI document it serves
 * at `<basePath>/openapi.json`.
 */
export function createHttpHandler(manager: SessionManager, options: HttpHandlerOptions = {}): HttpHandler {
  checkOptions(options);
  const basePath = normalizeBasePath(options.basePath ?? '/api');
  const routes = ROUTES.map((route) => compile(route, basePath));
  const authenticate = createAuthenticator(options);
  validateCors(options.cors);
  const logger = options.logger ?? silentLogger;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const turns = new TurnRegistry(options.turnRetention ?? 256);
  const sse: SseOptions = {
    heartbeatMs: options.heartbeatMs ?? 15_000,
    retryMs: options.retryMs ?? 2_000,
    highWaterMark: options.sseHighWaterMark ?? 16,
  };
  const onDisconnect = options.onDisconnect ?? 'detach';
  let document: unknown;
  const openapi = () => {
    document ??= createOpenApiDocument({ basePath: basePath === '' ? '' : basePath });
    return document;
  };

  // Session id → owner (null: none). Owners never change; a deleted session is forgotten.
  const owners = new Map<string, string | null>();
  manager.events.on('session_deleted', ({ sessionId }) => owners.delete(sessionId));
  const remember = (id: string, owner: string | undefined) => {
    if (owners.size >= OWNER_CACHE_SIZE) owners.delete(owners.keys().next().value!);
    owners.set(id, owner ?? null);
  };
  const accessFor = (principal: Principal | undefined) => async (id: string) => {
    assertSessionId(id);
    if (principal === undefined) return;
    let owner = owners.get(id);
    if (owner === undefined) {
      const session = (await manager.getSession(id)) as Session & { owner?: string };
      owner = session.owner ?? null;
      remember(id, session.owner);
    }
    if (owner !== principal.id) throw new SessionNotFoundError(id);
  };

  async function dispatch(request: Request, url: URL): Promise<Response> {
    let pathname = url.pathname;
    if (pathname.length > 1 && pathname.endsWith('/')) pathname = pathname.slice(0, -1);
    const parts = pathname.split('/').slice(1);
    const candidates: Array<{ compiled: CompiledRoute; raw: Record<string, string> }> = [];
    for (const compiled of routes) {
      const raw = match(compiled, parts);
      if (raw) candidates.push({ compiled, raw });
    }
    if (candidates.length === 0) {
      throw new HttpFailure(
        HttpErrorCode.NOT_FOUND,
        `no route for ${JSON.stringify(pathname.slice(0, 200))}`,
      );
    }
    const methods = [...new Set(candidates.map((candidate) => candidate.compiled.route.method))];
    if (
      options.cors &&
      request.method === 'OPTIONS' &&
      request.headers.has('access-control-request-method')
    ) {
      return preflightResponse(options.cors, request, methods);
    }
    refuseForgedRequest(request, options.cors);
    const chosen = candidates.find((candidate) => candidate.compiled.route.method === request.method);
    if (!chosen) {
      throw new HttpFailure(
        HttpErrorCode.METHOD_NOT_ALLOWED,
        `${request.method.slice(0, 20)} is not allowed here; allowed: ${methods.join(', ')}`,
        { allow: methods.join(', ') },
      );
    }
    const route = chosen.compiled.route;
    const principal = route.public ? undefined : await authenticate(request);
    const params = decodeParams(chosen.raw);
    const access = accessFor(principal);
    if (params.id !== undefined) await access(params.id);
    const query = route.query ? parseQuery(url, route.query) : {};
    const body = route.body
      ? await readJsonBody(request, route.body, { limit, optional: route.bodyOptional === true })
      : undefined;
    const context: RouteContext = {
      manager,
      request,
      url,
      params,
      query,
      body,
      principal,
      turns,
      sse,
      onDisconnect,
      access,
      remember,
      openapi,
      logger,
    };
    return route.handle(context);
  }

  return async (request) => {
    let response: Response;
    try {
      response = await dispatch(request, new URL(request.url));
    } catch (error) {
      response = errorResponse(error, logger, request);
    }
    for (const [name, value] of Object.entries(corsHeaders(options.cors, request))) {
      if (!response.headers.has(name)) response.headers.set(name, value);
    }
    return response;
  };
}
