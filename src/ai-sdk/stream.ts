/**
 * Stream mapping: one model call's `fullStream` parts → runtime events, and what the step produced.
 *
 * | AI SDK part                         | runtime event                                           |
 * | ----------------------------------- | ------------------------------------------------------- |
 * | `text-delta`                        | `agent_choice`                                          |
 * | `reasoning-delta`                   | `agent_choice_reasoning`                                |
 * | `tool-input-start` / `-delta`       | `partial_tool_call` (arguments so far)                  |
 * | `tool-call`                         | `tool_call`                                             |
 * | `tool-result` / `tool-error` of a provider-executed tool | `tool_call_response`       |
 * | `source`                            | `custom` `{ name: 'source' }`                           |
 * | `start-step` warnings               | `warning`                                               |
 * | `abort`                             | rejects with the turn signal's reason (→ `cancelled`)   |
 * | `error`                             | rejects with a {@link ModelCallError} (→ `error`)       |
 *
 * The step's usage, finish reason and content are returned for the loop to persist.
 */
import type { AssistantModelMessage, FinishReason, LanguageModelUsage, StreamTextResult, ToolSet } from 'ai';
import type { RuntimeEventInput } from '../events.js';
import type { JsonObject, MessagePart, ToolCall } from '../schemas.js';
import { toModelCallError } from './errors.js';
import { textOf } from './records.js';

/** A tool call the model made in a step. */
export interface StepToolCall {
  toolCall: ToolCall;
  /** The input as the SDK parsed and validated it. */
  input: unknown;
  /** Why the call cannot run (unknown tool, input that does not match the schema). */
  invalid?: string;
}

/** What one model call produced. */
export interface StepResult {
  text: string;
  reasoning: string;
  /** Files (and images) the model generated. */
  parts: MessagePart[];
  /** Calls for this runtime to run (provider-executed ones are not here). */
  toolCalls: StepToolCall[];
  finishReason: FinishReason;
  usage: LanguageModelUsage | undefined;
  /** The assistant message as the SDK reported it (with provider metadata), for the next steps. */
  response: AssistantModelMessage | undefined;
}

type Warning = { type: string; feature?: string; details?: string; message?: string };

function warningText(warning: Warning): string {
  if (warning.type === 'other') return warning.message ?? 'the provider reported a warning';
  const what = warning.type === 'compatibility' ? 'runs in a compatibility mode' : 'is not supported';
  return `${warning.feature ?? 'a feature'} ${what}${warning.details ? `: ${warning.details}` : ''}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : textOf(error);
}

/** A source part as JSON (provider metadata left out). */
function sourceData(part: Record<string, unknown>): JsonObject {
  const data: JsonObject = {};
  for (const key of ['sourceType', 'id', 'url', 'title', 'mediaType', 'filename']) {
    const value = part[key];
    if (typeof value === 'string') data[key] = value;
  }
  return data;
}

/**
 * Reads one step's stream, yielding runtime events as parts arrive, and returns what the step
 * produced. Rejects with the signal's reason when the call was aborted, and with a
 * {@link ModelCallError} when the provider failed.
 */
export async function* streamStep(
  result: StreamTextResult<ToolSet, never>,
  options: { modelRef: string; signal: AbortSignal },
): AsyncGenerator<RuntimeEventInput, StepResult> {
  const { modelRef, signal } = options;
  let text = '';
  let reasoning = '';
  const parts: MessagePart[] = [];
  const toolCalls: StepToolCall[] = [];
  const partial = new Map<string, ToolCall>();
  const invalid = new Map<string, string>();
  let finishReason: FinishReason | undefined;
  let usage: LanguageModelUsage | undefined;
  try {
    for await (const part of result.fullStream) {
      switch (part.type) {
        case 'start-step':
          for (const warning of part.warnings as Warning[]) {
            yield { type: 'warning', message: `model ${modelRef}: ${warningText(warning)}` };
          }
          break;
        case 'text-delta':
          if (part.text === '') break;
          text += part.text;
          yield { type: 'agent_choice', content: part.text };
          break;
        case 'reasoning-delta':
          if (part.text === '') break;
          reasoning += part.text;
          yield { type: 'agent_choice_reasoning', content: part.text };
          break;
        case 'tool-input-start': {
          const toolCall = { id: part.id, name: part.toolName, arguments: '' };
          partial.set(part.id, toolCall);
          yield { type: 'partial_tool_call', toolCall: { ...toolCall } };
          break;
        }
        case 'tool-input-delta': {
          const toolCall = partial.get(part.id);
          if (!toolCall || part.delta === '') break;
          toolCall.arguments += part.delta;
          yield { type: 'partial_tool_call', toolCall: { ...toolCall } };
          break;
        }
        case 'tool-call': {
          const raw = partial.get(part.toolCallId)?.arguments;
          // What runs is the validated input, so that is what the record keeps; an invalid call
          // keeps the model's raw text.
          const argumentsText = part.invalid
            ? (raw ?? (typeof part.input === 'string' ? part.input : textOf(part.input ?? {})))
            : textOf(part.input ?? {});
          const toolCall: ToolCall = { id: part.toolCallId, name: part.toolName, arguments: argumentsText };
          yield { type: 'tool_call', toolCall };
          if (part.providerExecuted) break;
          toolCalls.push({
            toolCall,
            input: part.input,
            ...(part.invalid ? { invalid: errorText(part.error ?? 'invalid tool call') } : {}),
          });
          break;
        }
        case 'tool-result':
          if (part.preliminary) break;
          yield { type: 'tool_call_response', toolCallId: part.toolCallId, response: textOf(part.output) };
          break;
        case 'tool-error':
          if (part.providerExecuted) {
            yield {
              type: 'tool_call_response',
              toolCallId: part.toolCallId,
              response: errorText(part.error),
              isError: true,
            };
          } else {
            invalid.set(
              part.toolCallId,
              textOf(part.error instanceof Error ? part.error.message : part.error),
            );
          }
          break;
        case 'file': {
          const { base64, mediaType } = part.file;
          parts.push(
            mediaType.startsWith('image/')
              ? { type: 'image', data: base64, mimeType: mediaType }
              : { type: 'file', uri: `data:${mediaType};base64,${base64}`, mimeType: mediaType },
          );
          break;
        }
        case 'source':
          yield {
            type: 'custom',
            name: 'source',
            data: sourceData(part as unknown as Record<string, unknown>),
          };
          break;
        case 'finish-step':
          finishReason = part.finishReason;
          usage = part.usage;
          break;
        case 'abort':
          throw signal.aborted ? signal.reason : new DOMException('the model call was aborted', 'AbortError');
        case 'error':
          if (signal.aborted) throw signal.reason;
          throw toModelCallError(modelRef, part.error);
        default:
          break;
      }
    }
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw toModelCallError(modelRef, error);
  }
  if (signal.aborted) throw signal.reason;
  for (const call of toolCalls) {
    const reason = invalid.get(call.toolCall.id);
    if (reason !== undefined && call.invalid === undefined) call.invalid = reason;
  }
  let response: AssistantModelMessage | undefined;
  try {
    const messages = (await result.response).messages;
    response = messages.find((message): message is AssistantModelMessage => message.role === 'assistant');
  } catch {
    response = undefined;
  }
  return {
    text,
    reasoning,
    parts,
    toolCalls,
    finishReason: finishReason ?? 'other',
    usage,
    response,
  };
}
