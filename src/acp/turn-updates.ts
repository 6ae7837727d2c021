/**
 * A running turn's events as `session/update`s, in order. One {@link TurnUpdates} per prompt: it
 * remembers which tool calls the editor has seen and whether the answer was streamed, so every
 * event becomes zero or more updates without duplicates.
 *
 * | our event | update |
 * |---|---|
 * | `agent_choice` | `agent_message_chunk` |
 * | `agent_choice_reasoning` | `agent_thought_chunk` |
 * | `message_added` (assistant) | its tool calls as `tool_call` (`pending`) when not yet shown; its text as `agent_message_chunk` only when nothing was streamed |
 * | `message_added` (tool) | `tool_call_update` when no `tool_call_response` came: `failed` when the turn then stops `cancelled` or `error` (the manager's "did not run" results), else `completed` |
 * | `partial_tool_call`, `tool_call` | `tool_call` the first time, then `tool_call_update` (`rawInput`) |
 * | `tool_call_output` | `tool_call_update` `in_progress` with the output so far |
 * | `tool_call_response` | `tool_call_update` `completed` or `failed`, `rawOutput` and content |
 * | `plan_updated` | `plan` (priority `medium` when the runtime gave none) |
 * | `session_title` | `session_info_update` |
 * | `token_usage` | `usage_update` when the context window is known |
 * | `user_message` not from this prompt (steered, queued elsewhere) | `user_message_chunk`s |
 * | `warning`, `error` | `notice` when the client advertised `session.notices` |
 *
 * `tool_call_confirmation` and `elicitation_request` are requests, handled by the server.
 */
import type { SessionUpdate } from '@agentclientprotocol/sdk';
import type { Message, SessionEvent, ToolCall } from '../index.js';
import { messageToBlocks } from './content.js';
import { type DescribeToolCall, pendingToolCall, rawInput } from './tool-calls.js';

/** What a {@link TurnUpdates} needs from the server. */
export interface TurnUpdatesOptions {
  /** Ids of this prompt's own user messages: the client shows those itself. */
  promptMessageIds: ReadonlySet<string>;
  /** The session's cost before this turn, for `usage_update.cost`. */
  costBefore: number;
  /** Unit of costs. @default 'USD' */
  costCurrency: string;
  /** Context window size to report when a runtime's usage does not say. */
  contextWindow: number | undefined;
  /** Whether the client advertised `session.notices`. */
  notices: boolean;
  /** How tool calls are shown (see `ServeAcpOptions.describeToolCall`). */
  describeToolCall: DescribeToolCall | undefined;
}

interface ToolState {
  output: string;
  finished: boolean;
}

/** Translates one turn's events into `session/update`s. */
export class TurnUpdates {
  readonly #options: TurnUpdatesOptions;
  readonly #tools = new Map<string, ToolState>();
  #streamedText = false;
  #cost: number;
  /** Tool results that came without a `tool_call_response`: their status waits for the next event. */
  #unanswered: Message[] = [];

  /** A translator for one prompt's turn. */
  constructor(options: TurnUpdatesOptions) {
    this.#options = options;
    this.#cost = options.costBefore;
  }

  /** The session's cost including this turn's usage so far. */
  get cost(): number {
    return this.#cost;
  }

  /** The updates one event becomes, in order (often none). */
  translate(event: SessionEvent): SessionUpdate[] {
    const stopped =
      event.type === 'stream_stopped' && (event.reason === 'cancelled' || event.reason === 'error');
    const held = this.flush(stopped ? 'failed' : 'completed');
    const own = this.#translate(event);
    return held.length === 0 ? own : [...held, ...own];
  }

  /** The held tool results, with `status`. */
  flush(status: 'completed' | 'failed' = 'completed'): SessionUpdate[] {
    const held = this.#unanswered;
    if (held.length === 0) return [];
    this.#unanswered = [];
    return held.map((message) => ({
      sessionUpdate: 'tool_call_update',
      toolCallId: message.toolCallId ?? '',
      status,
      content: [{ type: 'content', content: { type: 'text', text: message.content } }],
      rawOutput: message.content,
    }));
  }

  #translate(event: SessionEvent): SessionUpdate[] {
    switch (event.type) {
      case 'agent_choice':
        if (event.content === '') return [];
        this.#streamedText = true;
        return [{ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: event.content } }];
      case 'agent_choice_reasoning':
        if (event.content === '') return [];
        return [{ sessionUpdate: 'agent_thought_chunk', content: { type: 'text', text: event.content } }];
      case 'user_message':
        if (this.#options.promptMessageIds.has(event.message.id)) return [];
        return messageToBlocks(event.message).map((content) => ({
          sessionUpdate: 'user_message_chunk',
          content,
          messageId: event.message.id,
        }));
      case 'message_added':
        return this.#messageAdded(event.message);
      case 'partial_tool_call':
      case 'tool_call':
        return [this.#announce(event.toolCall, true)];
      case 'tool_call_output': {
        const state = this.#state(event.toolCallId);
        state.output += event.output;
        return [
          {
            sessionUpdate: 'tool_call_update',
            toolCallId: event.toolCallId,
            status: 'in_progress',
            content: [{ type: 'content', content: { type: 'text', text: state.output } }],
          },
        ];
      }
      case 'tool_call_response': {
        const state = this.#state(event.toolCallId);
        state.finished = true;
        return [
          {
            sessionUpdate: 'tool_call_update',
            toolCallId: event.toolCallId,
            status: event.isError ? 'failed' : 'completed',
            content: [{ type: 'content', content: { type: 'text', text: event.response } }],
            rawOutput: event.response,
          },
        ];
      }
      case 'plan_updated':
        return [
          {
            sessionUpdate: 'plan',
            entries: event.entries.map((entry) => ({
              content: entry.content,
              status: entry.status,
              priority: entry.priority ?? 'medium',
            })),
          },
        ];
      case 'session_title':
        return [{ sessionUpdate: 'session_info_update', title: event.title === '' ? null : event.title }];
      case 'token_usage': {
        const { usage } = event;
        if (usage.cost !== undefined) this.#cost += usage.cost;
        const size = usage.contextLimit ?? this.#options.contextWindow;
        if (size === undefined) return [];
        return [
          {
            sessionUpdate: 'usage_update',
            used: usage.contextLength ?? usage.inputTokens + usage.outputTokens,
            size,
            ...(usage.cost === undefined
              ? {}
              : { cost: { amount: this.#cost, currency: this.#options.costCurrency } }),
          },
        ];
      }
      case 'warning':
      case 'error':
        if (!this.#options.notices) return [];
        return [
          {
            sessionUpdate: 'notice',
            severity: event.type,
            title: event.type === 'warning' ? 'Warning' : 'Error',
            description: event.message,
          },
        ];
      default:
        return [];
    }
  }

  /** A tool call the editor must know before a permission request names it. */
  ensureAnnounced(toolCall: ToolCall): SessionUpdate[] {
    return this.#tools.has(toolCall.id) ? [] : [this.#announce(toolCall, false)];
  }

  #messageAdded(message: Message): SessionUpdate[] {
    const updates: SessionUpdate[] = [];
    if (message.role === 'assistant') {
      if (!this.#streamedText) {
        for (const content of messageToBlocks(message)) {
          updates.push({ sessionUpdate: 'agent_message_chunk', content, messageId: message.id });
        }
      }
      this.#streamedText = false;
      for (const toolCall of message.toolCalls ?? []) {
        if (!this.#tools.has(toolCall.id)) updates.push(this.#announce(toolCall, false));
      }
    } else if (message.role === 'tool' && message.toolCallId !== undefined) {
      const state = this.#tools.get(message.toolCallId);
      if (!state?.finished) {
        this.#state(message.toolCallId).finished = true;
        this.#unanswered.push(message);
      }
    }
    return updates;
  }

  #announce(toolCall: ToolCall, updateIfKnown: boolean): SessionUpdate {
    const known = this.#tools.has(toolCall.id);
    this.#state(toolCall.id);
    if (known && updateIfKnown) {
      return { sessionUpdate: 'tool_call_update', toolCallId: toolCall.id, rawInput: rawInput(toolCall) };
    }
    return { sessionUpdate: 'tool_call', ...pendingToolCall(toolCall, this.#options.describeToolCall) };
  }

  #state(toolCallId: string): ToolState {
    let state = this.#tools.get(toolCallId);
    if (!state) {
      state = { output: '', finished: false };
      this.#tools.set(toolCallId, state);
    }
    return state;
  }
}
