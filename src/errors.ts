/**
 * Errors of agent-sessions.
 *
 * Every error the library raises on purpose is an {@link AgentSessionsError} with a string `code`
 * from {@link ErrorCode}. Errors from outside (the file system, zod, a runtime, a store) are
 * normalised at the boundary and kept as `cause`. Use {@link AgentSessionsError.isInstance} rather
 * than `instanceof`: it also recognises errors from the other module format (ESM vs CJS) of this
 * package, which are different classes at run time.
 *
 * Messages name what failed and which id; they never contain message content or secrets.
 *
 * An aborted `signal` rejects with the signal's own `reason`, never with one of these errors.
 */

/**
 * Every error code the library uses.
 *
 * `STORE_UNAVAILABLE` is a store that failed for a reason of its own (a full disk, an I/O error, a
 * permission error, a lost database connection): the data is not known to be damaged, and the
 * same call may succeed later. The store's error is the `cause`.
 */
export const ErrorCode = {
  SESSION_NOT_FOUND: 'SESSION_NOT_FOUND',
  SESSION_EXISTS: 'SESSION_EXISTS',
  SESSION_BUSY: 'SESSION_BUSY',
  SESSION_NOT_RUNNING: 'SESSION_NOT_RUNNING',
  MESSAGE_NOT_FOUND: 'MESSAGE_NOT_FOUND',
  MODEL_SWITCHING_NOT_SUPPORTED: 'MODEL_SWITCHING_NOT_SUPPORTED',
  SOURCE_NOT_FOUND: 'SOURCE_NOT_FOUND',
  SOURCE_UNAVAILABLE: 'SOURCE_UNAVAILABLE',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  INVALID_WORKING_DIR: 'INVALID_WORKING_DIR',
  QUEUE_FULL: 'QUEUE_FULL',
  NOTHING_PENDING: 'NOTHING_PENDING',
  SUBSCRIBER_LAGGED: 'SUBSCRIBER_LAGGED',
  STORE_CORRUPT: 'STORE_CORRUPT',
  STORE_LOCKED: 'STORE_LOCKED',
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  RUNTIME_FAILED: 'RUNTIME_FAILED',
  CLOSED: 'CLOSED',
  TIMEOUT: 'TIMEOUT',
} as const;

/** The union of every error code. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const baseBrand = Symbol.for('agent-sessions.error');

/** The brand of one error class: a global symbol, so both builds (ESM and CJS) share it. */
function brandFor(className: string): symbol {
  return Symbol.for(`agent-sessions.error.${className}`);
}

function hasBrand(error: unknown, brand: symbol): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[brand] === true;
}

function setBrand(target: object, brand: symbol): void {
  Object.defineProperty(target, brand, { value: true });
}

/** Options common to every error of the library. */
export interface AgentSessionsErrorOptions {
  /** The error from outside that caused this one. */
  cause?: unknown;
}

/**
 * The base class of every error the library raises on purpose.
 *
 * Each subclass has a brand of its own, so `SessionNotFoundError.isInstance(error)` is true only
 * for that class (and its subclasses), whichever build created the error; the base brand is shared
 * by all of them. `name` is the class's own name, also in bundled code where classes are renamed.
 */
export class AgentSessionsError extends Error {
  /** What went wrong, as one of {@link ErrorCode}: branch on this, not on the message. */
  readonly code: ErrorCode;
  /** The error from outside (file system, zod, runtime, store) this one wraps, when there is one. */
  declare readonly cause?: unknown;

  constructor(code: ErrorCode, message: string, options: AgentSessionsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // The library's own classes set their name explicitly (bundlers rename classes: `_AgentSessionsError`);
    // a host's subclass keeps its own class name.
    this.name = new.target === AgentSessionsError ? 'AgentSessionsError' : new.target.name;
    this.code = code;
    setBrand(this, baseBrand);
  }

  /** True for an error of this library, whichever build (ESM or CJS) created it. */
  static isInstance(error: unknown): error is AgentSessionsError {
    return hasBrand(error, baseBrand);
  }

  /** True when `error` is an error of this library with the given code. */
  static hasCode<C extends ErrorCode>(error: unknown, code: C): error is AgentSessionsError & { code: C } {
    return AgentSessionsError.isInstance(error) && error.code === code;
  }
}

/** One problem found while validating input, in the shape zod reports it. */
export interface ValidationIssue {
  path: PropertyKey[];
  message: string;
  code?: string;
}

const invalidArgumentBrand = brandFor('InvalidArgumentError');

/** `INVALID_ARGUMENT`: input failed validation. `issues` lists what was wrong (zod's issues when zod found it). */
export class InvalidArgumentError extends AgentSessionsError {
  /** Each problem found: where (`path`) and what (`message`). */
  readonly issues: ValidationIssue[];
  constructor(message: string, options: AgentSessionsErrorOptions & { issues?: ValidationIssue[] } = {}) {
    super(ErrorCode.INVALID_ARGUMENT, message, options);
    if (new.target === InvalidArgumentError) this.name = 'InvalidArgumentError';
    this.issues = options.issues ?? [];
    setBrand(this, invalidArgumentBrand);
  }

  /** True for an {@link InvalidArgumentError} from either build. */
  static override isInstance(error: unknown): error is InvalidArgumentError {
    return hasBrand(error, invalidArgumentBrand);
  }
}

const sessionNotFoundBrand = brandFor('SessionNotFoundError');

/** `SESSION_NOT_FOUND`: no session has this id. */
export class SessionNotFoundError extends AgentSessionsError {
  /** The id that was not found. */
  readonly sessionId: string;
  constructor(sessionId: string, options: AgentSessionsErrorOptions = {}) {
    super(ErrorCode.SESSION_NOT_FOUND, `session ${JSON.stringify(sessionId)} not found`, options);
    if (new.target === SessionNotFoundError) this.name = 'SessionNotFoundError';
    this.sessionId = sessionId;
    setBrand(this, sessionNotFoundBrand);
  }

  /** True for a {@link SessionNotFoundError} from either build. */
  static override isInstance(error: unknown): error is SessionNotFoundError {
    return hasBrand(error, sessionNotFoundBrand);
  }
}

const sessionExistsBrand = brandFor('SessionExistsError');

/** `SESSION_EXISTS`: a session with this id exists already. */
export class SessionExistsError extends AgentSessionsError {
  /** The taken id. */
  readonly sessionId: string;
  constructor(sessionId: string, options: AgentSessionsErrorOptions = {}) {
    super(ErrorCode.SESSION_EXISTS, `session ${JSON.stringify(sessionId)} already exists`, options);
    if (new.target === SessionExistsError) this.name = 'SessionExistsError';
    this.sessionId = sessionId;
    setBrand(this, sessionExistsBrand);
  }

  /** True for a {@link SessionExistsError} from either build. */
  static override isInstance(error: unknown): error is SessionExistsError {
    return hasBrand(error, sessionExistsBrand);
  }
}

const messageNotFoundBrand = brandFor('MessageNotFoundError');

/** `MESSAGE_NOT_FOUND`: the session holds no message with this id. */
export class MessageNotFoundError extends AgentSessionsError {
  /** The session that was searched. */
  readonly sessionId: string;
  /** The message id that was not found. */
  readonly messageId: string;
  constructor(sessionId: string, messageId: string, options: AgentSessionsErrorOptions = {}) {
    super(
      ErrorCode.MESSAGE_NOT_FOUND,
      `message ${JSON.stringify(messageId)} not found in session ${JSON.stringify(sessionId)}`,
      options,
    );
    if (new.target === MessageNotFoundError) this.name = 'MessageNotFoundError';
    this.sessionId = sessionId;
    this.messageId = messageId;
    setBrand(this, messageNotFoundBrand);
  }

  /** True for a {@link MessageNotFoundError} from either build. */
  static override isInstance(error: unknown): error is MessageNotFoundError {
    return hasBrand(error, messageNotFoundBrand);
  }
}

const sessionBusyBrand = brandFor('SessionBusyError');

/** `SESSION_BUSY`: a turn is already running in this session. */
export class SessionBusyError extends AgentSessionsError {
  /** The busy session. */
  readonly sessionId: string;
  /** The turn that holds the session. */
  readonly turnId: string | undefined;
  constructor(sessionId: string, turnId: string | undefined, options: AgentSessionsErrorOptions = {}) {
    super(
      ErrorCode.SESSION_BUSY,
      `session ${JSON.stringify(sessionId)} is busy${turnId ? ` running turn ${turnId}` : ''}`,
      options,
    );
    if (new.target === SessionBusyError) this.name = 'SessionBusyError';
    this.sessionId = sessionId;
    this.turnId = turnId;
    setBrand(this, sessionBusyBrand);
  }

  /** True for a {@link SessionBusyError} from either build. */
  static override isInstance(error: unknown): error is SessionBusyError {
    return hasBrand(error, sessionBusyBrand);
  }
}

const storeCorruptBrand = brandFor('StoreCorruptError');

/** `STORE_CORRUPT`: a stored file or record could not be read back. `path` names it. */
export class StoreCorruptError extends AgentSessionsError {
  /** The damaged file (file stores) or key (other stores). */
  readonly path: string;
  constructor(path: string, detail: string, options: AgentSessionsErrorOptions = {}) {
    super(ErrorCode.STORE_CORRUPT, `store record ${JSON.stringify(path)} is damaged: ${detail}`, options);
    if (new.target === StoreCorruptError) this.name = 'StoreCorruptError';
    this.path = path;
    setBrand(this, storeCorruptBrand);
  }

  /** True for a {@link StoreCorruptError} from either build. */
  static override isInstance(error: unknown): error is StoreCorruptError {
    return hasBrand(error, storeCorruptBrand);
  }
}

const subscriberLaggedBrand = brandFor('SubscriberLaggedError');

/** `SUBSCRIBER_LAGGED`: an event subscriber fell too far behind; reconnect with `since: lastSeq`. */
export class SubscriberLaggedError extends AgentSessionsError {
  /** The session whose events the subscriber read. */
  readonly sessionId: string;
  /** The seq of the last event this subscriber received (0 if none). */
  readonly lastSeq: number;
  constructor(sessionId: string, lastSeq: number) {
    super(
      ErrorCode.SUBSCRIBER_LAGGED,
      `event subscriber of session ${JSON.stringify(sessionId)} fell behind after seq ${lastSeq}; reconnect with since: ${lastSeq}`,
    );
    if (new.target === SubscriberLaggedError) this.name = 'SubscriberLaggedError';
    this.sessionId = sessionId;
    this.lastSeq = lastSeq;
    setBrand(this, subscriberLaggedBrand);
  }

  /** True for a {@link SubscriberLaggedError} from either build. */
  static override isInstance(error: unknown): error is SubscriberLaggedError {
    return hasBrand(error, subscriberLaggedBrand);
  }
}

/** Normalises a zod error into {@link InvalidArgumentError}. */
export function invalidArgument(
  what: string,
  error?: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string; code?: string }> },
): InvalidArgumentError {
  const issues: ValidationIssue[] = (error?.issues ?? []).map((issue) => ({
    path: [...issue.path],
    message: issue.message,
    ...(issue.code === undefined ? {} : { code: issue.code }),
  }));
  const first = issues[0];
  const detail = first
    ? `: ${first.path.length > 0 ? `${first.path.map(String).join('.')}: ` : ''}${first.message}`
    : '';
  return new InvalidArgumentError(`invalid ${what}${detail}`, { issues, cause: error });
}

/** Wraps anything thrown by a plug-in (runtime, store, resolver) as a library error, keeping it as `cause`. */
export function toAgentSessionsError(error: unknown, code: ErrorCode, message: string): AgentSessionsError {
  if (AgentSessionsError.isInstance(error)) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new AgentSessionsError(code, `${message}: ${detail}`, { cause: error });
}
