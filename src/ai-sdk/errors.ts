/**
 * Errors of the AI SDK runtime: a failed model call, normalised from whatever the provider threw
 * (or reported as an `error` part of the stream) into an {@link AgentSessionsError}.
 */
import { APICallError, RetryError } from 'ai';
import { AgentSessionsError, ErrorCode } from '../errors.js';

// The library's brand scheme (`agent-sessions.error.<Class>`): recognised from either build.
const brand = Symbol.for('agent-sessions.error.ModelCallError');

/**
 * `RUNTIME_FAILED`: a model call failed (the provider refused it, the network failed, the retries
 * ran out). The turn ends with stop reason `error`; the message is the provider's, and the
 * original error is the `cause`.
 */
export class ModelCallError extends AgentSessionsError {
  /** The ref of the model that was called. */
  readonly modelRef: string;
  /** The HTTP status of the provider's answer, when there was one. */
  readonly statusCode: number | undefined;
  /** The provider says trying again may succeed (rate limits, overload). */
  readonly isRetryable: boolean;

  constructor(
    modelRef: string,
    detail: string,
    options: { cause?: unknown; statusCode?: number | undefined; isRetryable?: boolean } = {},
  ) {
    super(ErrorCode.RUNTIME_FAILED, `model ${JSON.stringify(modelRef)} failed: ${detail}`, {
      cause: options.cause,
    });
    if (new.target === ModelCallError) this.name = 'ModelCallError';
    this.modelRef = modelRef;
    this.statusCode = options.statusCode;
    this.isRetryable = options.isRetryable ?? false;
    Object.defineProperty(this, brand, { value: true });
  }

  /** True for a {@link ModelCallError}, whichever build (ESM or CJS) created it. */
  static override isInstance(error: unknown): error is ModelCallError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[brand] === true;
  }
}

/** Normalises what a model call threw or reported into a {@link ModelCallError}. */
export function toModelCallError(modelRef: string, error: unknown): ModelCallError {
  if (ModelCallError.isInstance(error)) return error;
  // After retries the SDK wraps the provider's errors: the last one says what went wrong.
  const last = RetryError.isInstance(error) ? error.lastError : error;
  if (APICallError.isInstance(last)) {
    return new ModelCallError(modelRef, last.message, {
      cause: error,
      statusCode: last.statusCode,
      isRetryable: last.isRetryable,
    });
  }
  const detail =
    last instanceof Error
      ? last.message
      : typeof last === 'string'
        ? last
        : (JSON.stringify(last) ?? 'unknown');
  return new ModelCallError(modelRef, detail, { cause: error });
}
