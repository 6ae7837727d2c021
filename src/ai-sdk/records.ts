/**
 * History conversion the other way: the AI SDK's model messages (what `streamText` reports in
 * `response.messages`, or what a host built) → our message records, ready to yield as
 * `message_added`. {@link toModelMessages} turns them back into the same model messages (provider
 * metadata aside, which records do not keep).
 */
import type { DataContent, FilePart, ImagePart, ModelMessage, TextPart, ToolResultPart } from 'ai';
import { newId } from '../internal/ids.js';
import type { Message, MessagePart, ToolCall } from '../schemas.js';

/** Text of a value for a model or a progress line: strings as they are, anything else as JSON. */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A tool result as stored: the text the model reads, images or files, and whether it failed. */
export interface ToolResultRecord {
  content: string;
  isError: boolean;
  parts?: MessagePart[];
}

function dataUri(mediaType: string, base64: string): string {
  return `data:${mediaType};base64,${base64}`;
}

/** A tool result's model output (`text`, `json`, `error-*`, `execution-denied`, `content`) as stored. */
export function toolResultRecord(output: ToolResultPart['output']): ToolResultRecord {
  switch (output.type) {
    case 'text':
      return { content: output.value, isError: false };
    case 'json':
      return { content: textOf(output.value), isError: false };
    case 'error-text':
      return { content: output.value, isError: true };
    case 'error-json':
      return { content: textOf(output.value), isError: true };
    case 'execution-denied':
      return { content: `The tool did not run: ${output.reason ?? 'denied'}`, isError: true };
    case 'content': {
      const texts: string[] = [];
      const parts: MessagePart[] = [];
      for (const part of output.value) {
        if (part.type === 'text') texts.push(part.text);
        else if (part.type === 'image-data' || part.type === 'media')
          parts.push({ type: 'image', data: part.data, mimeType: part.mediaType });
        else if (part.type === 'image-url') parts.push({ type: 'image', url: part.url });
        else if (part.type === 'file-data')
          parts.push({
            type: 'file',
            uri: dataUri(part.mediaType, part.data),
            mimeType: part.mediaType,
            ...(part.filename === undefined ? {} : { name: part.filename }),
          });
        else if (part.type === 'file-url')
          parts.push({
            type: 'file',
            uri: part.url,
            ...(part.mediaType === undefined ? {} : { mimeType: part.mediaType }),
          });
      }
      return { content: texts.join('\n'), isError: false, ...(parts.length > 0 ? { parts } : {}) };
    }
  }
}

function base64Of(bytes: Uint8Array): string {
  let binary = '';
  for (let index = 0; index < bytes.length; index += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(index, index + 0x8000));
  }
  return btoa(binary);
}

/** Binary data or a URL as a string: a URL as its text, bytes as base64. */
function dataText(data: DataContent | URL): { url: string } | { base64: string } {
  if (data instanceof URL) return { url: data.href };
  if (typeof data === 'string') {
    // The SDK reads a string that parses as a URL as one, and anything else as base64.
    try {
      new URL(data);
      return { url: data };
    } catch {
      return { base64: data };
    }
  }
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  return { base64: base64Of(bytes) };
}

function imageRecord(part: ImagePart): MessagePart {
  const data = dataText(part.image);
  return {
    type: 'image',
    ...('url' in data ? { url: data.url } : { data: data.base64 }),
    ...(part.mediaType === undefined ? {} : { mimeType: part.mediaType }),
  };
}

function fileRecord(part: FilePart): MessagePart {
  const data = dataText(part.data);
  if (part.mediaType.startsWith('image/') && 'base64' in data) {
    return { type: 'image', data: data.base64, mimeType: part.mediaType };
  }
  return {
    type: 'file',
    uri: 'url' in data ? data.url : dataUri(part.mediaType, data.base64),
    mimeType: part.mediaType,
    ...(part.filename === undefined ? {} : { name: part.filename }),
  };
}

/** Options of {@link fromModelMessages}. */
export interface FromModelMessagesOptions {
  /** Set on the assistant messages. */
  model?: string;
  /** Set on the assistant messages. */
  agent?: string;
  /** The time of every message. @default now */
  createdAt?: string;
}

/**
 * Converts model messages to message records: an assistant message becomes one record (text as
 * `content`, reasoning as `reasoning`, files as `parts`, client tool calls as `toolCalls`); each
 * tool result becomes a `role: 'tool'` record with `toolCallId`, `toolName` and `isError`; user and
 * system messages become records of their role. Provider-executed tool calls and results, and
 * approval parts, are left out (see docs/runtimes.md). Ids are new; nothing is stored.
 *
 * @example
 * ```ts
 * const result = streamText({ model, messages: toModelMessages(turn.session) });
 * // … stream it …
 * for (const message of fromModelMessages((await result.response).messages)) {
 *   yield { type: 'message_added', message };
 * }
 * ```
 */
export function fromModelMessages(
  messages: readonly ModelMessage[],
  options: FromModelMessagesOptions = {},
): Message[] {
  const createdAt = options.createdAt ?? new Date().toISOString();
  const records: Message[] = [];
  const base = () => ({ id: newId('msg'), createdAt });
  for (const message of messages) {
    if (message.role === 'system') {
      records.push({ ...base(), role: 'system', content: message.content });
    } else if (message.role === 'user') {
      if (typeof message.content === 'string') {
        records.push({ ...base(), role: 'user', content: message.content });
        continue;
      }
      const parts = message.content.map(
        (part: TextPart | ImagePart | FilePart): MessagePart =>
          part.type === 'text'
            ? { type: 'text', text: part.text }
            : part.type === 'image'
              ? imageRecord(part)
              : fileRecord(part),
      );
      const text = message.content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('');
      records.push({ ...base(), role: 'user', content: text, parts });
    } else if (message.role === 'assistant') {
      const content =
        typeof message.content === 'string'
          ? [{ type: 'text' as const, text: message.content }]
          : message.content;
      let text = '';
      let reasoning = '';
      const parts: MessagePart[] = [];
      const toolCalls: ToolCall[] = [];
      for (const part of content) {
        if (part.type === 'text') text += part.text;
        else if (part.type === 'reasoning') reasoning += part.text;
        else if (part.type === 'file') parts.push(fileRecord(part));
        else if (part.type === 'tool-call' && !part.providerExecuted) {
          toolCalls.push({ id: part.toolCallId, name: part.toolName, arguments: textOf(part.input ?? {}) });
        }
      }
      if (text === '' && reasoning === '' && parts.length === 0 && toolCalls.length === 0) continue;
      records.push({
        ...base(),
        role: 'assistant',
        content: text,
        ...(reasoning === '' ? {} : { reasoning }),
        ...(parts.length === 0 ? {} : { parts }),
        ...(toolCalls.length === 0 ? {} : { toolCalls }),
        ...(options.agent === undefined ? {} : { agent: options.agent }),
        ...(options.model === undefined ? {} : { model: options.model }),
      });
    } else {
      for (const part of message.content) {
        if (part.type !== 'tool-result') continue;
        const result = toolResultRecord(part.output);
        records.push({
          ...base(),
          role: 'tool',
          content: result.content,
          ...(result.parts === undefined ? {} : { parts: result.parts }),
          toolCallId: part.toolCallId,
          toolName: part.toolName,
          ...(result.isError ? { isError: true } : {}),
        });
      }
    }
  }
  return records;
}
