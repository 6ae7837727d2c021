/**
 * A `tool_call_confirmation` as a `session/request_permission`. The four options map onto the
 * manager's answers:
 *
 * | option | kind | answer |
 * |---|---|---|
 * | `allow_once` | `allow_once` | `resumeSession({ confirmation: 'approve' })` |
 * | `allow_always` | `allow_always` | `resumeSession({ confirmation: 'approve-tool' })`: the tool is allowed in this session from now on |
 * | `reject_once` | `reject_once` | `resumeSession({ confirmation: 'reject' })` |
 * | `reject_always` | `reject_always` | a `deny` pattern for the tool (`updateSessionPermissions`), then `reject` |
 *
 * A `cancelled` outcome cancels the turn (the prompt ends `cancelled`).
 */
import type { PermissionOption, RequestPermissionRequest } from '@agentclientprotocol/sdk';
import type { ToolCall } from '../index.js';
import { type DescribeToolCall, pendingToolCall } from './tool-calls.js';

/** The options offered for a tool call; each option's id is its kind. */
export function permissionOptions(toolCall: Pick<ToolCall, 'name'>): PermissionOption[] {
  return [
    { optionId: 'allow_once', kind: 'allow_once', name: 'Allow once' },
    { optionId: 'allow_always', kind: 'allow_always', name: `Always allow ${toolCall.name}` },
    { optionId: 'reject_once', kind: 'reject_once', name: 'Reject' },
    { optionId: 'reject_always', kind: 'reject_always', name: `Always reject ${toolCall.name}` },
  ];
}

/** The `session/request_permission` params for a tool call waiting for confirmation. */
export function permissionRequest(
  sessionId: string,
  toolCall: ToolCall,
  describeToolCall: DescribeToolCall | undefined,
): RequestPermissionRequest {
  return {
    sessionId,
    toolCall: pendingToolCall(toolCall, describeToolCall),
    options: permissionOptions(toolCall),
  };
}
