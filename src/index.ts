// agent-sessions: the main entry. No static import of node:* modules: it loads in any JS runtime
// with web-standard APIs. Node-only parts are in `agent-sessions/file`; what a store author needs
// (defineStore, drivers, paging helpers, the conformance groups) is in `agent-sessions/store`.
export { type Command, type CommandBus, InProcessCommandBus } from './command-bus.js';
export {
  type DurableEventLog,
  type DurableReplay,
  type DurableTailOptions,
  type EventLogCapable,
  eventLogOf,
  isDurableEventLog,
} from './durable-event-log.js';
export * from './errors.js';
export * from './events.js';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export {
  type BusyLease,
  type BusyLock,
  type FencingStore,
  InProcessBusyLock,
  isFencingStore,
  LeaseLostError,
} from './manager/busy-lock.js';
export { SessionManager } from './manager/session-manager.js';
export type {
  AvailableModels,
  Confirmation,
  FollowUpOptions,
  ImportOptions,
  InputLimits,
  ManagerEvents,
  MessageInput,
  PendingConfirmation,
  PendingElicitation,
  QueuedTurn,
  ResumeElicitationInput,
  ResumeInput,
  RunInput,
  RunOptions,
  SessionEventBatchStream,
  SessionEventStream,
  SessionManagerOptions,
  SessionSnapshot,
  SessionTemplate,
  TitleGenerator,
  TurnResult,
  TurnStream,
} from './manager/types.js';
export type {
  ElicitationAnswer,
  ElicitationRequest,
  ElicitationResult,
  ModelChoice,
  Runtime,
  RuntimeFactory,
  RuntimeInit,
  ToolAuthorizationRequest,
  ToolCallDecision,
  ToolDecision,
  TurnContext,
  TurnResumption,
} from './runtime.js';
export * from './schemas.js';
export { stableSourceKey } from './sources/key.js';
export type { ListableSourceResolver, RefreshingSourceOptions, SourceLoader } from './sources/refreshing.js';
export { RefreshingSourceResolver } from './sources/refreshing.js';
export { StaticSourceResolver } from './sources/static.js';
export type { ResolvedSource, ResolveOptions, SourceInfo, SourceResolver } from './sources.js';
export type { ListOptions, ListPosition, Page, Store } from './store.js';
export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './store.js';
export { MemoryStore } from './stores/memory.js';
export type {
  Telemetry,
  TelemetryAttributes,
  TelemetryAttributeValue,
  TelemetrySpan,
  TelemetrySpanOutcome,
} from './telemetry.js';
