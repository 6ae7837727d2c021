// agent-sessions/acp: any SessionManager served as an Agent Client Protocol (v1) agent, on the
// official SDK (`@agentclientprotocol/sdk`, an optional peer dependency of this entry only).
export { configOptions, DEFAULT_MODEL_VALUE, MODEL_CONFIG_ID } from './config-options.js';
export { messageToBlocks, type PromptMessage, promptToMessage } from './content.js';
export { permissionOptions, permissionRequest } from './permissions.js';
export { toRequestError } from './protocol-errors.js';
export { type ReplayCapabilities, replaySession } from './replay.js';
export {
  type AcpAgentConnection,
  type AcpAuthOptions,
  type AcpInProcessConnection,
  type AcpSessionOpened,
  type ServeAcpOptions,
  serveAcp,
} from './server.js';
export type { DescribeToolCall, ToolCallDescription } from './tool-calls.js';
export { TurnUpdates, type TurnUpdatesOptions } from './turn-updates.js';
