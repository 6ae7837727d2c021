/**
 * How our tool calls look in ACP: a title, a kind, and the raw input parsed from the call's JSON
 * arguments (the arguments as given when they are not JSON).
 */
import type { ToolCall as AcpToolCall, ToolCallLocation, ToolKind } from '@agentclientprotocol/sdk';
import type { ToolCall } from '../index.js';

/** What an editor shows for a tool call. Hosts may override it with `describeToolCall`. */
export interface ToolCallDescription {
  /** A human-readable title. @default the tool's name */
  title?: string;
  /** The ACP tool kind (picks the editor's icon). @default 'other' */
  kind?: ToolKind;
  /** Files the call touches, for the editor's follow-along. */
  locations?: ToolCallLocation[];
}

/** Describes a tool call for the editor. */
export type DescribeToolCall = (toolCall: ToolCall) => ToolCallDescription;

/** The call's JSON arguments as a value, or the text as given when it is not JSON. */
export function rawInput(toolCall: Pick<ToolCall, 'arguments'>): unknown {
  if (toolCall.arguments.trim() === '') return {};
  try {
    return JSON.parse(toolCall.arguments) as unknown;
  } catch {
    return toolCall.arguments;
  }
}

/** The title, kind and locations of a tool call, with the defaults filled in. */
export function describe(
  toolCall: ToolCall,
  custom: DescribeToolCall | undefined,
): { title: string; kind: ToolKind; locations?: ToolCallLocation[] } {
  const description = custom?.(toolCall) ?? {};
  return {
    title: description.title ?? toolCall.name,
    kind: description.kind ?? 'other',
    ...(description.locations === undefined ? {} : { locations: description.locations }),
  };
}

/** A tool call as ACP first shows it (`tool_call`, a permission request): pending, described, raw input. */
export function pendingToolCall(toolCall: ToolCall, custom: DescribeToolCall | undefined): AcpToolCall {
  const { title, kind, locations } = describe(toolCall, custom);
  return {
    toolCallId: toolCall.id,
    title,
    kind,
    status: 'pending',
    rawInput: rawInput(toolCall),
    ...(locations === undefined ? {} : { locations }),
  };
}
