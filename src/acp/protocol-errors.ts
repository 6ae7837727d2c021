/**
 * Our errors as JSON-RPC errors. Every handler of the ACP agent throws only `RequestError`s, so a
 * client always gets a code it can branch on, and `data.code` names our {@link ErrorCode} when one
 * applies:
 *
 * | our error | JSON-RPC |
 * |---|---|
 * | `SESSION_NOT_FOUND` (or a session not open on this connection) | `-32002` Resource not found, `data.sessionId` |
 * | `INVALID_ARGUMENT`, `INVALID_WORKING_DIR` | `-32602` Invalid params |
 * | anything else | `-32603` Internal error, `data: { code, message }` |
 */
import { RequestError } from '@agentclientprotocol/sdk';
import { AgentSessionsError, ErrorCode } from '../index.js';

/** Converts anything thrown while handling a request into a {@link RequestError}. */
export function toRequestError(error: unknown, sessionId?: string): RequestError {
  if (error instanceof RequestError) return error;
  if (AgentSessionsError.isInstance(error)) {
    if (error.code === ErrorCode.SESSION_NOT_FOUND) {
      const id = (error as { sessionId?: unknown }).sessionId;
      return RequestError.sessionNotFound(typeof id === 'string' ? id : (sessionId ?? ''));
    }
    const data: Record<string, unknown> = { code: error.code, message: error.message };
    const issues = (error as { issues?: unknown }).issues;
    if (Array.isArray(issues))
      data.issues = issues.map((issue) => ({ ...issue, path: issue.path?.map(String) }));
    if (error.code === ErrorCode.INVALID_ARGUMENT || error.code === ErrorCode.INVALID_WORKING_DIR) {
      return RequestError.invalidParams(data, error.message);
    }
    return RequestError.internalError(data, error.message);
  }
  const message = error instanceof Error ? error.message : String(error);
  return RequestError.internalError({ message }, message);
}

/** `-32602` for a request whose params the SDK accepted but we cannot serve. */
export function invalidParams(message: string, data: Record<string, unknown> = {}): RequestError {
  return RequestError.invalidParams({ ...data, message }, message);
}
