// agent-sessions/client: a SessionManager's methods over HTTP, for browsers and Node (fetch only).

export {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  SessionBusyError,
  SessionNotFoundError,
  SubscriberLaggedError,
} from '../errors.js';
export type { SessionEvent, SessionEventOf, SessionEventType } from '../events.js';
export type {
  AvailableModels,
  MessageInput,
  ResumeElicitationInput,
  ResumeInput,
  RunInput,
  SessionSnapshot,
  TurnResult,
  TurnStream,
} from '../manager/types.js';
export type {
  ExportBundle,
  Message,
  Permissions,
  SafetyPolicy,
  Session,
  SessionSummary,
  SummaryItem,
} from '../schemas.js';
export type { ListOptions, Page } from '../store.js';
export {
  AgentSessionsClient,
  type AgentSessionsClientOptions,
  type ConnectionChange,
  type ReconnectOptions,
  type RemoteRunOptions,
  type StreamEventsOptions,
} from './client.js';
export { errorFromWire, HttpError, type HttpErrorCode } from './errors.js';
export { readSse, type SseMessage } from './sse.js';
