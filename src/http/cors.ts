/** CORS: off unless the host configures it. */

/** Which cross-origin callers may use the API. */
export interface CorsOptions {
  /** Allowed origins: `'*'`, a list of exact origins, or a predicate. */
  origin: '*' | readonly string[] | ((origin: string) => boolean);
  /**
   * Send `Access-Control-Allow-Credentials: true`. Refused with `origin: '*'` (a TypeError at
   * construction): that would let every web site send credentialed requests. @default false
   */
  credentials?: boolean;
  /** Seconds a browser may cache a preflight answer. @default 600 */
  maxAge?: number;
}

const ALLOWED_HEADERS = 'authorization, content-type, idempotency-key, last-event-id';
const EXPOSED_HEADERS = 'agent-sessions-turn-id, retry-after, location';

/** Throws a TypeError for options that cannot be honoured safely. */
export function validateCors(options: CorsOptions | undefined): void {
  if (options === undefined) return;
  const origin = options.origin;
  if (origin !== '*' && typeof origin !== 'function' && !Array.isArray(origin)) {
    throw new TypeError("cors.origin must be '*', a list of origins or a function");
  }
  if (origin === '*' && options.credentials) {
    throw new TypeError(
      "cors: credentials cannot be allowed for origin '*' (every site could send credentialed requests); list the origins",
    );
  }
}

/** The CORS headers for a request's origin, or none when it is not allowed (or CORS is off). */
export function corsHeaders(options: CorsOptions | undefined, request: Request): Record<string, string> {
  const origin = request.headers.get('origin');
  if (!options || origin === null) return {};
  const allowed =
    options.origin === '*'
      ? true
      : typeof options.origin === 'function'
        ? options.origin(origin)
        : options.origin.includes(origin);
  if (!allowed) return {};
  const wildcard = options.origin === '*';
  return {
    'access-control-allow-origin': wildcard ? '*' : origin,
    'access-control-expose-headers': EXPOSED_HEADERS,
    ...(wildcard ? {} : { vary: 'origin' }),
    ...(options.credentials ? { 'access-control-allow-credentials': 'true' } : {}),
  };
}

/** The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`). */
export function preflightResponse(
  options: CorsOptions,
  request: Request,
  methods: readonly string[],
): Response {
  const headers = corsHeaders(options, request);
  if (headers['access-control-allow-origin'] !== undefined) {
    headers['access-control-allow-methods'] = methods.join(', ');
    headers['access-control-allow-headers'] = ALLOWED_HEADERS;
    headers['access-control-max-age'] = String(options.maxAge ?? 600);
  }
  return new Response(null, { status: 204, headers });
}
