/**
 * History conversion: a session's stored items → the AI SDK's `ModelMessage[]`.
 *
 * The rules, in the order they apply:
 * - The last summary item replaces every item before its `firstKeptItem`: it becomes the first
 *   message (a user message holding the summary), then the kept items follow. Error items (failed
 *   turns) are never sent.
 * - A user message with `parts` is sent as those parts (text, image, file); when the parts hold no
 *   text part, `content` goes first as the text. Without parts, `content` is the message.
 * - An assistant message becomes its reasoning, its text, its images and files, then its tool calls
 *   (`arguments` parsed as JSON; unparsable arguments are sent as `{}`, as the AI SDK does).
 * - Consecutive tool messages become one tool message; each result carries its tool's name (the
 *   stored `toolName`, else the name of its call) and is an `error-text` output when `isError`.
 * - The history the model gets is always valid: a tool call without a stored result gets an error
 *   result saying it was interrupted, placed right after its call, and a result whose call is not in
 *   the history (a summary replaced it) is left out — providers reject both.
 */
import type {
  AssistantContent,
  AssistantModelMessage,
  FilePart,
  ImagePart,
  ModelMessage,
  TextPart,
  ToolCallPart,
  ToolModelMessage,
  ToolResultPart,
  UserContent,
} from 'ai';
import type { Message, MessagePart, Session, SessionItem, SummaryItem } from '../schemas.js';

/** A file part of a stored message. */
export type FileMessagePart = Extract<MessagePart, { type: 'file' }>;

/** Options of {@link toModelMessages}. */
export interface ToModelMessagesOptions {
  /**
   * Turns a stored file part into what the model gets. The default sends `http:`, `https:` and
   * `data:` URIs as a file the SDK fetches (or the provider reads), and names anything else (a local
   * path) in a text part: reading local files is the host's decision.
   */
  convertFile?: (part: FileMessagePart) => FilePart | TextPart;
  /** The text of the message that stands in for a summary. @default `Summary of the earlier conversation:\n\n${summary}` */
  summaryText?: (summary: SummaryItem) => string;
}

/** The result sent for a tool call that has no stored result. */
export const INTERRUPTED_TOOL_RESULT = 'The tool call was interrupted before it produced a result.';

const URL_SCHEMES = new Set(['http:', 'https:', 'data:']);

function defaultConvertFile(part: FileMessagePart): FilePart | TextPart {
  let scheme: string | undefined;
  try {
    scheme = new URL(part.uri).protocol;
  } catch {
    scheme = undefined;
  }
  if (scheme !== undefined && URL_SCHEMES.has(scheme)) {
    return {
      type: 'file',
      data: part.uri,
      mediaType: part.mimeType ?? 'application/octet-stream',
      ...(part.name === undefined ? {} : { filename: part.name }),
    };
  }
  return { type: 'text', text: `[file ${part.name ?? part.uri}: ${part.uri}]` };
}

function defaultSummaryText(summary: SummaryItem): string {
  return `Summary of the earlier conversation:\n\n${summary.summary}`;
}

/** The items the model gets: those a summary does not replace, with the summary first. */
function visibleItems(items: readonly SessionItem[]): { summary?: SummaryItem; items: SessionItem[] } {
  let summary: SummaryItem | undefined;
  for (const item of items) if (item.kind === 'summary') summary = item;
  const start = summary === undefined ? 0 : Math.min(summary.firstKeptItem, items.length);
  const kept = items.slice(start).filter((item) => item.kind === 'message');
  return summary === undefined ? { items: kept } : { summary, items: kept };
}

function imagePart(part: Extract<MessagePart, { type: 'image' }>): ImagePart | undefined {
  const image = part.url ?? part.data;
  if (image === undefined) return undefined;
  return { type: 'image', image, ...(part.mimeType === undefined ? {} : { mediaType: part.mimeType }) };
}

function userContent(message: Message, options: ToModelMessagesOptions): UserContent {
  const parts = message.parts;
  if (parts === undefined || parts.length === 0) return message.content;
  const convertFile = options.convertFile ?? defaultConvertFile;
  const content: Array<TextPart | ImagePart | FilePart> = [];
  if (!parts.some((part) => part.type === 'text') && message.content !== '') {
    content.push({ type: 'text', text: message.content });
  }
  for (const part of parts) {
    if (part.type === 'text') content.push({ type: 'text', text: part.text });
    else if (part.type === 'image') {
      const image = imagePart(part);
      if (image) content.push(image);
    } else content.push(convertFile(part));
  }
  return content;
}

/** Parses a tool call's JSON arguments; unparsable arguments become `{}` (what the AI SDK sends). */
export function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text === '' ? '{}' : text);
  } catch {
    return {};
  }
}

function assistantContent(message: Message, options: ToModelMessagesOptions): AssistantContent | undefined {
  const content: Exclude<AssistantContent, string> = [];
  if (message.reasoning !== undefined && message.reasoning !== '') {
    content.push({ type: 'reasoning', text: message.reasoning });
  }
  const textInParts = message.parts?.some((part) => part.type === 'text') ?? false;
  if (!textInParts && message.content !== '') content.push({ type: 'text', text: message.content });
  const convertFile = options.convertFile ?? defaultConvertFile;
  for (const part of message.parts ?? []) {
    if (part.type === 'text') content.push({ type: 'text', text: part.text });
    else if (part.type === 'image') {
      // An assistant message holds files, not images: an image is a file with its media type.
      const data = part.url ?? part.data;
      if (data !== undefined) content.push({ type: 'file', data, mediaType: part.mimeType ?? 'image/*' });
    } else content.push(convertFile(part));
  }
  for (const call of message.toolCalls ?? []) {
    const part: ToolCallPart = {
      type: 'tool-call',
      toolCallId: call.id,
      toolName: call.name,
      input: parseArguments(call.arguments),
    };
    content.push(part);
  }
  if (content.length === 0) return undefined;
  const only = content[0];
  if (content.length === 1 && only?.type === 'text') return only.text;
  return content;
}

function toolOutput(message: Message): ToolResultPart['output'] {
  const images = (message.parts ?? []).filter((part) => part.type !== 'text');
  if (images.length === 0) {
    return message.isError
      ? { type: 'error-text', value: message.content }
      : { type: 'text', value: message.content };
  }
  // A result with images or files: the text, then each part the model can take as content.
  const value: Extract<ToolResultPart['output'], { type: 'content' }>['value'] = [];
  if (message.content !== '') value.push({ type: 'text', text: message.content });
  for (const part of message.parts ?? []) {
    if (part.type === 'text') value.push({ type: 'text', text: part.text });
    else if (part.type === 'image') {
      if (part.data !== undefined)
        value.push({ type: 'image-data', data: part.data, mediaType: part.mimeType ?? 'image/png' });
      else if (part.url !== undefined) value.push({ type: 'image-url', url: part.url });
    } else {
      const inline = /^data:([^;,]+);base64,(.*)$/s.exec(part.uri);
      if (inline) {
        value.push({
          type: 'file-data',
          data: inline[2]!,
          mediaType: inline[1]!,
          ...(part.name === undefined ? {} : { filename: part.name }),
        });
      } else {
        value.push({
          type: 'file-url',
          url: part.uri,
          ...(part.mimeType ? { mediaType: part.mimeType } : {}),
        });
      }
    }
  }
  return { type: 'content', value };
}

/**
 * Converts a session's history to the AI SDK's model messages (see the module's rules). Pure and
 * deterministic: the same items always give the same messages, so a history converted, stored,
 * reloaded and converted again gives what was sent before.
 *
 * @example
 * ```ts
 * const result = streamText({ model, messages: toModelMessages(await manager.getSession(id)) });
 * ```
 */
export function toModelMessages(
  session: Pick<Session, 'items'> | Readonly<Pick<Session, 'items'>>,
  options: ToModelMessagesOptions = {},
): ModelMessage[] {
  return convertItems(session.items, options);
}

/**
 * {@link toModelMessages} over items, where `native` holds, by message id, the assistant messages
 * as the SDK reported them in this process (with the provider's metadata, such as reasoning
 * signatures, which the stored record does not keep): those are sent as reported.
 * @internal
 */
export function convertItems(
  allItems: readonly SessionItem[],
  options: ToModelMessagesOptions = {},
  native?: ReadonlyMap<string, AssistantModelMessage>,
): ModelMessage[] {
  const { summary, items } = visibleItems(allItems);
  const messages: ModelMessage[] = [];
  if (summary) messages.push({ role: 'user', content: (options.summaryText ?? defaultSummaryText)(summary) });

  /** Calls of the last assistant message still waiting for their result, by id → tool name. */
  let open = new Map<string, string>();
  /** The tool message being built for the results of the last assistant message. */
  let results: ToolModelMessage | undefined;
  const answered = new Set<string>();

  const closeOpenCalls = () => {
    for (const [toolCallId, toolName] of open) {
      results ??= pushResults();
      results.content.push({
        type: 'tool-result',
        toolCallId,
        toolName,
        output: { type: 'error-text', value: INTERRUPTED_TOOL_RESULT },
      });
      answered.add(toolCallId);
    }
    open = new Map();
    results = undefined;
  };
  const pushResults = (): ToolModelMessage => {
    const message: ToolModelMessage = { role: 'tool', content: [] };
    messages.push(message);
    return message;
  };

  for (const item of items) {
    if (item.kind !== 'message') continue;
    const message = item.message;
    if (message.role === 'tool') {
      const toolCallId = message.toolCallId;
      // A result without a call in this history (or a second result for one) is left out.
      if (toolCallId === undefined || !open.has(toolCallId) || answered.has(toolCallId)) continue;
      const toolName = message.toolName ?? open.get(toolCallId) ?? 'unknown';
      open.delete(toolCallId);
      answered.add(toolCallId);
      results ??= pushResults();
      results.content.push({ type: 'tool-result', toolCallId, toolName, output: toolOutput(message) });
      continue;
    }
    closeOpenCalls();
    if (message.role === 'user') {
      messages.push({ role: 'user', content: userContent(message, options) });
    } else if (message.role === 'system') {
      messages.push({ role: 'system', content: message.content });
    } else {
      const reported = native?.get(message.id);
      if (reported) messages.push(reported);
      else {
        const content = assistantContent(message, options);
        if (content === undefined) continue;
        messages.push({ role: 'assistant', content });
      }
      for (const call of message.toolCalls ?? []) open.set(call.id, call.name);
    }
  }
  closeOpenCalls();
  return messages;
}
