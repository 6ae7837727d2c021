// agent-sessions/testing: tools for testing stores, runtimes and hosts. Never imports a test
// framework: test functions are injected, and every wait is on a promise, not a timer.
export { BlockingStore } from './blocking-store.js';
export {
  describeConcurrencyConformance,
  describeContentConformance,
  describeCrudConformance,
  describeIdempotencyConformance,
  describeListingConformance,
  describeReopenConformance,
  describeStoreConformance,
  describeSummaryConformance,
  type StoreConformanceOptions,
} from './conformance/index.js';
export {
  type DurableEventLogConformanceOptions,
  describeDurableEventLogConformance,
} from './durable-event-log.js';
export {
  FailingStore,
  type FailureError,
  InjectedStoreError,
  type StoreCall,
  type StoreMethod,
  type StoreMethodArgs,
} from './failing-store.js';
export { InterceptingStore } from './intercepting-store.js';
export { sessionRecord } from './records.js';
export {
  type AuthorizeStep,
  type AuthorizeStepOptions,
  type AvailableModelsCall,
  type CloseCall,
  type ElicitStep,
  type FailStep,
  type HeldInfo,
  type HoldMatchOptions,
  type HoldStep,
  isScriptDirective,
  type RawStep,
  type ReplyOptions,
  type ReplyStep,
  type ResumeStep,
  type ResumeStepOptions,
  type ScriptDirective,
  type ScriptedReplyOptions,
  ScriptedRuntime,
  type ScriptedRuntimeOptions,
  type ScriptedSessionRuntime,
  type ScriptedTurnFunction,
  type ScriptedTurnOptions,
  type ScriptStep,
  type SetModelCall,
  step,
  type TakeSteeringStep,
  type ToolCallInput,
  type TurnOutcome,
  type TurnRecord,
} from './scripted-runtime.js';
