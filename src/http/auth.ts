/**
 * Authentication of requests: bearer tokens compared in constant time, or a host's own
 * `authenticate(request)` returning a principal.
 */
import { HttpErrorCode, HttpFailure } from './status.js';

/** Who a request comes from. Sessions created by a principal are owned by its `id`. */
export interface Principal {
  /** A stable id (a user id, a tenant id): stored as the session's `owner`. */
  id: string;
}

/** How requests are authenticated. */
export interface AuthOptions {
  /**
   * Accepted bearer tokens (`Authorization: Bearer <token>`). Several may be given, for rotation.
   * Requests with any accepted token are let in without a principal (no ownership).
   */
  token?: string | readonly string[];
  /**
   * The host's own authentication: resolve to the request's principal, or `undefined` (or `null`)
   * to refuse it with 401. Thrown errors are answered 500 and logged. Runs after a `token` check.
   */
  authenticate?: (request: Request) => Principal | undefined | null | Promise<Principal | undefined | null>;
}

const encoder = new TextEncoder();

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(value)));
}

/**
 * Compares two secrets in time independent of where they differ and of their lengths: both are
 * hashed (SHA-256) first, and the two 32-byte digests are compared whole, without an early exit.
 */
export async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const [left, right] = await Promise.all([digest(a), digest(b)]);
  let difference = 0;
  for (let index = 0; index < left.length; index++) difference |= left[index]! ^ right[index]!;
  return difference === 0;
}

/** The token of an `Authorization: Bearer …` header (scheme case-insensitive), else `''`. */
export function bearerToken(request: Request): string {
  const header = request.headers.get('authorization') ?? '';
  const match = /^Bearer[ \t]+(\S(?:.*\S)?)[ \t]*$/i.exec(header);
  return match?.[1] ?? '';
}

const unauthorized = (message: string) =>
  new HttpFailure(HttpErrorCode.UNAUTHORIZED, message, { 'www-authenticate': 'Bearer' });

/**
 * Makes the request's authenticator. Without options, every request is let in with no principal.
 * With tokens, the presented token is compared against every accepted one (no short cut, so the
 * time taken does not tell which or how many matched).
 */
export function createAuthenticator(
  options: AuthOptions = {},
): (request: Request) => Promise<Principal | undefined> {
  const tokens =
    options.token === undefined
      ? []
      : typeof options.token === 'string'
        ? [options.token]
        : [...options.token];
  for (const token of tokens) {
    if (typeof token !== 'string' || token.length === 0)
      throw new TypeError('auth tokens must be non-empty strings');
  }
  const authenticate = options.authenticate;
  return async (request) => {
    if (tokens.length > 0) {
      const presented = bearerToken(request);
      let matched = false;
      for (const token of tokens) matched = (await timingSafeEqual(presented, token)) || matched;
      if (!matched || presented === '') throw unauthorized('missing or invalid bearer token');
    }
    if (!authenticate) return undefined;
    const principal = await authenticate(request);
    if (principal === undefined || principal === null) throw unauthorized('authentication required');
    if (typeof principal.id !== 'string' || principal.id.length === 0) {
      throw new TypeError('authenticate() must resolve to a principal with a non-empty string id');
    }
    return principal;
  };
}
