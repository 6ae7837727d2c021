export * from './errors.js';
export * from './events.js';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export type {
  ElicitationRequest,
  ElicitationResult,
  ModelChoice,
  Runtime,
  RuntimeFactory,
  RuntimeInit,
  ToolAuthorizationRequest,
  ToolDecision,
  TurnContext,
} from './runtime.js';
export * from './schemas.js';
export type { ResolvedSource, ResolveOptions, SourceInfo, SourceResolver } from './sources.js';
export type { ListOptions, Page, Store } from './store.js';
export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './store.js';
export { MemoryStore } from './stores/memory.js';
