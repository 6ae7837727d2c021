/**
 * Errors on the client side: a server's `{ code, message, details? }` rebuilt as the library's own
 * error (same code, same class where one adds typed fields), or as an {@link HttpError} for what
 * only HTTP can fail with (auth, routing, the network).
 */
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  SessionBusyError,
  SessionNotFoundError,
  SubscriberLaggedError,
  type ValidationIssue,
} from '../errors.js';

/** Codes of {@link HttpError}: the HTTP layer's own, plus failures to reach the server at all. */
export type HttpErrorCode =
  | 'UNAUTHORIZED'
  | 'CROSS_SITE_REQUEST'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'TURN_NOT_FOUND'
  | 'INTERNAL'
  | 'NETWORK_ERROR'
  | 'INVALID_RESPONSE';

const brand = Symbol.for('agent-sessions.http-error');

/** An error of the HTTP exchange rather than of the session manager. */
export class HttpError extends Error {
  /** What went wrong. */
  readonly code: HttpErrorCode | (string & {});
  /** The response status (0 when no response came). */
  readonly status: number;
  /** The server's `details`, if any. */
  readonly details: Record<string, unknown> | undefined;
  constructor(
    code: HttpErrorCode | (string & {}),
    message: string,
    options: { status?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 0;
    this.details = options.details;
    Object.defineProperty(this, brand, { value: true });
  }

  /** True for an {@link HttpError}, whichever build created it. */
  static isInstance(error: unknown): error is HttpError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[brand] === true;
  }
}

const LIBRARY_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

interface WireError {
  code?: unknown;
  message?: unknown;
  details?: unknown;
}

/** Rebuilds the error a server answered with `status` and `body`. */
export function errorFromWire(body: unknown, status: number): AgentSessionsError | HttpError {
  const wire = (typeof body === 'object' && body !== null ? body : {}) as WireError;
  const code = typeof wire.code === 'string' ? wire.code : undefined;
  const message = typeof wire.message === 'string' ? wire.message : `HTTP ${status}`;
  const details =
    typeof wire.details === 'object' && wire.details !== null
      ? (wire.details as Record<string, unknown>)
      : undefined;
  if (code === undefined) {
    return new HttpError(status >= 500 ? 'INTERNAL' : 'INVALID_RESPONSE', message, { status });
  }
  if (!LIBRARY_CODES.has(code))
    return new HttpError(code, message, { status, ...(details ? { details } : {}) });
  const sessionId = typeof details?.sessionId === 'string' ? details.sessionId : undefined;
  switch (code) {
    case ErrorCode.INVALID_ARGUMENT:
      return new InvalidArgumentError(message, {
        issues: Array.isArray(details?.issues) ? (details.issues as ValidationIssue[]) : [],
      });
    case ErrorCode.SESSION_NOT_FOUND:
      if (sessionId !== undefined) return new SessionNotFoundError(sessionId);
      break;
    case ErrorCode.SESSION_BUSY:
      if (sessionId !== undefined) {
        return new SessionBusyError(
          sessionId,
          typeof details?.turnId === 'string' ? details.turnId : undefined,
        );
      }
      break;
    case ErrorCode.SUBSCRIBER_LAGGED:
      if (sessionId !== undefined && typeof details?.lastSeq === 'number') {
        return new SubscriberLaggedError(sessionId, details.lastSeq);
      }
      break;
  }
  return new AgentSessionsError(code as ErrorCode, message);
}
