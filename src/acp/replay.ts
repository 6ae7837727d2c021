/**
 * `session/load` replays the stored history, item by item, as `session/update`s: it reads the
 * store, so it works after a restart and in another process.
 *
 * | stored item | updates |
 * |---|---|
 * | user message | `user_message_chunk` per content block (`messageId` = the message's id) |
 * | assistant message | `agent_message_chunk` per content block, then a `tool_call` (`pending`, `rawInput`) per tool call |
 * | tool message | `tool_call_update` `completed` with its text as content and `rawOutput` |
 * | system message | nothing (instructions, not conversation) |
 * | summary | `compaction_update` `completed` when the client advertised `session.compaction` |
 * | error | `notice` (severity `error`) when the client advertised `session.notices` |
 *
 * After the items, a `session_info_update` carries the title and `updatedAt`.
 */
import type { SessionUpdate } from '@agentclientprotocol/sdk';
import type { Session, SessionItem } from '../index.js';
import { messageToBlocks } from './content.js';
import { type DescribeToolCall, pendingToolCall } from './tool-calls.js';

/** What the client can show beyond the baseline. */
export interface ReplayCapabilities {
  /** The client advertised `session.notices`: error items are replayed as notices. */
  notices: boolean;
  /** The client advertised `session.compaction`: summaries are replayed as compactions. */
  compaction: boolean;
}

/**
 * The updates that replay one stored item, in order. `announced` collects the tool call ids shown
 * so far, so a result whose call is not in the history is shown on its own.
 */
export function replayItem(
  item: SessionItem,
  capabilities: ReplayCapabilities,
  describeToolCall: DescribeToolCall | undefined,
  announced: Set<string>,
): SessionUpdate[] {
  switch (item.kind) {
    case 'message': {
      const { message } = item;
      if (message.role === 'user') {
        return messageToBlocks(message).map((content) => ({
          sessionUpdate: 'user_message_chunk',
          content,
          messageId: message.id,
        }));
      }
      if (message.role === 'assistant') {
        const updates: SessionUpdate[] = messageToBlocks(message).map((content) => ({
          sessionUpdate: 'agent_message_chunk',
          content,
          messageId: message.id,
        }));
        for (const toolCall of message.toolCalls ?? []) {
          announced.add(toolCall.id);
          updates.push({ sessionUpdate: 'tool_call', ...pendingToolCall(toolCall, describeToolCall) });
        }
        return updates;
      }
      if (message.role === 'tool' && message.toolCallId !== undefined) {
        const content = [
          { type: 'content' as const, content: { type: 'text' as const, text: message.content } },
        ];
        if (!announced.has(message.toolCallId)) {
          // A result whose call is not in the kept history (e.g. imported): shown on its own.
          announced.add(message.toolCallId);
          return [
            {
              sessionUpdate: 'tool_call',
              toolCallId: message.toolCallId,
              title: 'Tool result',
              kind: 'other',
              status: 'completed',
              content,
              rawOutput: message.content,
            },
          ];
        }
        return [
          {
            sessionUpdate: 'tool_call_update',
            toolCallId: message.toolCallId,
            status: 'completed',
            content,
            rawOutput: message.content,
          },
        ];
      }
      return [];
    }
    case 'summary':
      if (!capabilities.compaction) return [];
      return [
        {
          sessionUpdate: 'compaction_update',
          compactionId: item.id,
          status: 'completed',
          summary: [{ type: 'text', text: item.summary }],
        },
      ];
    case 'error':
      if (!capabilities.notices) return [];
      return [{ sessionUpdate: 'notice', severity: 'error', title: 'Error', description: item.message }];
  }
}

/** Every update of a session's replay, in order. */
export function* replaySession(
  session: Session,
  capabilities: ReplayCapabilities,
  describeToolCall: DescribeToolCall | undefined,
): Generator<SessionUpdate> {
  const announced = new Set<string>();
  for (const item of session.items) yield* replayItem(item, capabilities, describeToolCall, announced);
  yield {
    sessionUpdate: 'session_info_update',
    title: session.title === '' ? null : session.title,
    updatedAt: session.updatedAt,
  };
}
