/**
 * ACP content blocks ⇄ our messages.
 *
 * A prompt becomes one user message. Text blocks, resource links and images are what our messages
 * can hold, so they are what the agent advertises (`promptCapabilities: { image: true }`); audio
 * and embedded resources are refused with `-32602` before anything is written.
 *
 * - `content` is the text a text-only runtime reads: the text blocks in order, with each resource
 *   link written as a Markdown link `[name](uri)` where it stood.
 * - `parts` (only when the prompt holds more than one text block) keeps every block in order:
 *   `text`, `file` (a resource link: `uri`, `name`, `mimeType`), `image` (`data`, `mimeType`, and
 *   `url` when the block had a `uri`). A replay turns them back into the same blocks.
 */
import type { ContentBlock } from '@agentclientprotocol/sdk';
import type { Message, MessagePart } from '../index.js';
import { invalidParams } from './protocol-errors.js';

/** A user message made from a prompt, ready for `runSession`. */
export interface PromptMessage {
  /** The message id (the caller's, so the turn's `user_message` can be recognised). */
  id: string;
  /** Always a user message. */
  role: 'user';
  /** The text: text blocks, and resource links as Markdown links. */
  content: string;
  /** Every block in order, when the prompt has more than one text block or any other block. */
  parts?: MessagePart[];
}

/** Converts a prompt's content blocks into one user message. `-32602` for what a message cannot hold. */
export function promptToMessage(prompt: readonly ContentBlock[], id: string): PromptMessage {
  if (prompt.length === 0) throw invalidParams('the prompt holds no content blocks');
  const parts: MessagePart[] = [];
  let content = '';
  prompt.forEach((block, index) => {
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: block.text });
        content += block.text;
        return;
      case 'resource_link': {
        const part: MessagePart = { type: 'file', uri: block.uri, name: block.name };
        if (typeof block.mimeType === 'string') part.mimeType = block.mimeType;
        parts.push(part);
        content += `[${block.title ?? block.name}](${block.uri})`;
        return;
      }
      case 'image': {
        const part: MessagePart = { type: 'image', data: block.data, mimeType: block.mimeType };
        if (typeof block.uri === 'string') part.url = block.uri;
        parts.push(part);
        return;
      }
      default:
        throw invalidParams(
          `prompt block ${index} has type ${JSON.stringify(block.type)}, which this agent does not accept (it advertises text, resource_link and image)`,
          { index, type: block.type },
        );
    }
  });
  const message: PromptMessage = { id, role: 'user', content };
  if (parts.some((part) => part.type !== 'text') || parts.length > 1) message.parts = parts;
  return message;
}

/** The content blocks of a stored message, in order: its parts when it has them, else its text. */
export function messageToBlocks(message: Pick<Message, 'content' | 'parts'>): ContentBlock[] {
  if (!message.parts || message.parts.length === 0) {
    return message.content === '' ? [] : [{ type: 'text', text: message.content }];
  }
  const blocks: ContentBlock[] = [];
  for (const part of message.parts) {
    switch (part.type) {
      case 'text':
        blocks.push({ type: 'text', text: part.text });
        break;
      case 'file':
        blocks.push({
          type: 'resource_link',
          uri: part.uri,
          name: part.name ?? part.uri,
          ...(part.mimeType === undefined ? {} : { mimeType: part.mimeType }),
        });
        break;
      case 'image':
        if (part.data !== undefined) {
          blocks.push({
            type: 'image',
            data: part.data,
            mimeType: part.mimeType ?? 'application/octet-stream',
            ...(part.url === undefined ? {} : { uri: part.url }),
          });
        } else if (part.url !== undefined) {
          // An image by URL only: ACP images carry their bytes, so it is shown as a link.
          blocks.push({
            type: 'resource_link',
            uri: part.url,
            name: part.url,
            ...(part.mimeType === undefined ? {} : { mimeType: part.mimeType }),
          });
        }
        break;
    }
  }
  return blocks;
}
