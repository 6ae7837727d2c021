/**
 * Errors over HTTP: one table from error code to status, and the JSON body every error response has.
 *
 * Every error response is `application/json` with `{ code, message, details? }`: `code` is an
 * {@link ErrorCode} of the library or one of the {@link HttpErrorCode}s that only the HTTP layer
 * raises. `message` is the library's message (which names what failed and never holds secrets);
 * errors that are not the library's are answered `INTERNAL` with a fixed message, never a stack.
 */
import { AgentSessionsError, ErrorCode, InvalidArgumentError } from '../errors.js';

/** Codes only the HTTP layer raises (the rest are the library's {@link ErrorCode}s). */
export const HttpErrorCode = {
  /** No credentials, or wrong ones. Sent with `WWW-Authenticate: Bearer`. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /**
   * A browser's cross-site request (`Sec-Fetch-Site`) that would change state, from an origin the
   * `cors` option does not allow: a forged request (CSRF), refused before authentication.
   */
  CROSS_SITE_REQUEST: 'CROSS_SITE_REQUEST',
  /** No route has this path. */
  NOT_FOUND: 'NOT_FOUND',
  /** The path exists but not for this method. Sent with `Allow`. */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** The body is larger than `maxBodyBytes`. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** A body that is not `application/json` where JSON is expected. */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** The turn is not (or no longer) known to this server, e.g. after a restart. */
  TURN_NOT_FOUND: 'TURN_NOT_FOUND',
  /** Anything unexpected. The message says nothing more; the host's logger has the error. */
  INTERNAL: 'INTERNAL',
} as const;

/** The union of {@link HttpErrorCode}s. */
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

/** Every code an error response may carry. */
export type WireErrorCode = ErrorCode | HttpErrorCode;

/** The body of every error response. */
export interface ErrorBody {
  /** What went wrong: branch on this. */
  code: WireErrorCode;
  /** What failed and which id, for people; never a stack or a secret. */
  message: string;
  /** Typed extras: `issues` for `INVALID_ARGUMENT`, `sessionId`/`turnId` for `SESSION_BUSY`, … */
  details?: Record<string, unknown>;
}

/**
 * The status of each code. One table, documented in docs/http.md; a test checks every code of the
 * library is here.
 */
export const ERROR_STATUS: Readonly<Record<WireErrorCode, number>> = {
  [ErrorCode.INVALID_ARGUMENT]: 400,
  [ErrorCode.INVALID_WORKING_DIR]: 400,
  [HttpErrorCode.UNAUTHORIZED]: 401,
  [HttpErrorCode.CROSS_SITE_REQUEST]: 403,
  [ErrorCode.SESSION_NOT_FOUND]: 404,
  [ErrorCode.MESSAGE_NOT_FOUND]: 404,
  [HttpErrorCode.NOT_FOUND]: 404,
  [HttpErrorCode.TURN_NOT_FOUND]: 404,
  [HttpErrorCode.METHOD_NOT_ALLOWED]: 405,
  [ErrorCode.SESSION_EXISTS]: 409,
  [ErrorCode.SESSION_BUSY]: 409,
  [ErrorCode.SESSION_NOT_RUNNING]: 409,
  [ErrorCode.NOTHING_PENDING]: 409,
  [ErrorCode.SUBSCRIBER_LAGGED]: 409,
  [HttpErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [HttpErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.MODEL_SWITCHING_NOT_SUPPORTED]: 422,
  [ErrorCode.SOURCE_NOT_FOUND]: 422,
  [ErrorCode.QUEUE_FULL]: 429,
  [ErrorCode.STORE_CORRUPT]: 500,
  [HttpErrorCode.INTERNAL]: 500,
  [ErrorCode.RUNTIME_FAILED]: 502,
  [ErrorCode.SOURCE_UNAVAILABLE]: 503,
  [ErrorCode.STORE_LOCKED]: 503,
  [ErrorCode.STORE_UNAVAILABLE]: 503,
  [ErrorCode.CLOSED]: 503,
  [ErrorCode.TIMEOUT]: 504,
};

/** Seconds a client should wait before retrying a `QUEUE_FULL` (sent as `Retry-After`). */
export const QUEUE_FULL_RETRY_AFTER_SECONDS = 1;

/** An error the HTTP layer raises itself (routing, auth, bodies). */
export class HttpFailure extends Error {
  /** The wire code. */
  readonly code: HttpErrorCode;
  /** Extra response headers (`Allow`, `WWW-Authenticate`). */
  readonly headers: Record<string, string>;
  constructor(code: HttpErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpFailure';
    this.code = code;
    this.headers = headers;
  }
}

/**
 * Codes whose message carries what a backend said (a driver's or the file system's error text:
 * paths, hosts, user names), not only the library's words. Answered with a fixed message per code
 * (the code and typed details stay) and logged like `INTERNAL`.
 */
const OPAQUE_MESSAGES: Partial<Record<WireErrorCode, string>> = {
  [ErrorCode.STORE_UNAVAILABLE]: 'the session store is unavailable',
  [ErrorCode.STORE_CORRUPT]: 'a stored record is damaged',
};

/** The typed fields of the library's error subclasses, for `details`. */
function detailsOf(error: AgentSessionsError): Record<string, unknown> | undefined {
  if (error instanceof InvalidArgumentError || error.code === ErrorCode.INVALID_ARGUMENT) {
    const issues = (error as Partial<InvalidArgumentError>).issues ?? [];
    return { issues: issues.map((issue) => ({ ...issue, path: issue.path.map(pathPart) })) };
  }
  const fields: Record<string, unknown> = {};
  const source = error as unknown as Record<string, unknown>;
  for (const key of ['sessionId', 'turnId', 'lastSeq'] as const) {
    const value = source[key];
    if (typeof value === 'string' || typeof value === 'number') fields[key] = value;
  }
  return Object.keys(fields).length > 0 ? fields : undefined;
}

function pathPart(part: PropertyKey): string | number {
  return typeof part === 'number' ? part : String(part);
}

/** What an error response says: the status, the body and extra headers. */
export interface ErrorResponseParts {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** The response does not say what happened (`INTERNAL`, a store's failure): log the error. */
  opaque: boolean;
}

/**
 * Maps anything thrown into a status and a body. Errors of the library keep their code and message;
 * everything else is `INTERNAL` (the caller logs it), so no stack or foreign message leaks out.
 */
export function describeError(error: unknown): ErrorResponseParts {
  if (error instanceof HttpFailure) {
    return {
      status: ERROR_STATUS[error.code],
      body: { code: error.code, message: error.message },
      headers: error.headers,
      opaque: false,
    };
  }
  if (AgentSessionsError.isInstance(error)) {
    const details = detailsOf(error);
    const headers: Record<string, string> =
      error.code === ErrorCode.QUEUE_FULL ? { 'retry-after': String(QUEUE_FULL_RETRY_AFTER_SECONDS) } : {};
    const opaque = OPAQUE_MESSAGES[error.code];
    return {
      status: ERROR_STATUS[error.code] ?? 500,
      body: {
        code: error.code,
        message: opaque ?? error.message,
        ...(details === undefined ? {} : { details }),
      },
      headers,
      opaque: opaque !== undefined,
    };
  }
  return {
    status: 500,
    body: { code: HttpErrorCode.INTERNAL, message: 'internal error' },
    headers: {},
    opaque: true,
  };
}
