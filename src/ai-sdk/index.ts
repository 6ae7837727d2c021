// agent-sessions/ai-sdk: a Runtime over the Vercel AI SDK (`ai@6`, an optional peer dependency of
// this entry only; the main entry never loads it).
export { ModelCallError, toModelCallError } from './errors.js';
export {
  type FileMessagePart,
  INTERRUPTED_TOOL_RESULT,
  type ToModelMessagesOptions,
  toModelMessages,
} from './history.js';
export {
  type FromModelMessagesOptions,
  fromModelMessages,
  type ToolResultRecord,
  toolResultRecord,
} from './records.js';
export {
  AiSdkRuntime,
  type AiSdkRuntimeOptions,
  createAiSdkRuntime,
  type ModelEntry,
  type PrepareMessagesContext,
  type ResumableTurnContext,
  type SystemPromptContext,
  type ToolCallResumption,
} from './runtime.js';
export type { AiSdkTools, ToolEntry } from './tools.js';
export { costOf, type ModelPrice, type PriceTable } from './usage.js';
