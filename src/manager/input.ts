// Validation of what callers pass in: messages, options and optional strings. Nothing here writes;
// everything throws INVALID_ARGUMENT before the manager touches a store or a runtime.
import { InvalidArgumentError, invalidArgument } from '../errors.js';
import { throwIfAborted } from '../internal/abort.js';
import { newId } from '../internal/ids.js';
import {
  assertSessionId,
  emptyUsage,
  type Message,
  MessageSchema,
  parseSession,
  type Session,
  type SummaryItem,
  SummaryItemSchema,
} from '../schemas.js';
import type { AdmissionRequest } from './admission.js';
import type { InputLimits, RunInput, RunOptions, SessionTemplate } from './types.js';

/** The defaults of {@link InputLimits}. */
export const DEFAULT_INPUT_LIMITS: Readonly<InputLimits> = Object.freeze({
  maxMessageBytes: 1_048_576,
  maxMessagesPerCall: 100,
  maxTitleLength: 1_000,
  maxAttributesBytes: 65_536,
  maxAttributesDepth: 256,
});

/** The manager's limits: the defaults, with each given value checked (a positive integer). */
export function inputLimits(given: Partial<InputLimits> | undefined): InputLimits {
  const limits = { ...DEFAULT_INPUT_LIMITS };
  for (const key of Object.keys(DEFAULT_INPUT_LIMITS) as (keyof InputLimits)[]) {
    limits[key] = positiveInteger(given?.[key], DEFAULT_INPUT_LIMITS[key], `limits.${key}`);
  }
  return limits;
}

function tooLarge(what: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid ${what}: ${message}`, { issues: [{ path: [what], message }] });
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/**
 * The nesting depth of a JSON value (a scalar is 0), counted without recursion so a value nested
 * thousands deep cannot overflow the stack; stops counting past `limit`.
 */
export function jsonDepth(value: unknown, limit = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== 'object' || current === null) continue;
    const inner = depth + 1;
    if (inner > deepest) deepest = inner;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(current) ? current : Object.values(current)) stack.push([child, inner]);
  }
  return deepest;
}

/** `INVALID_ARGUMENT` unless `attributes` fits the depth and size limits (checked before any write). */
export function assertAttributes(attributes: unknown, limits: InputLimits, what = 'attributes'): void {
  if (attributes === undefined) return;
  if (jsonDepth(attributes, limits.maxAttributesDepth) > limits.maxAttributesDepth) {
    throw tooLarge(what, `nested deeper than ${limits.maxAttributesDepth} levels`);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(attributes);
  } catch (error) {
    throw new InvalidArgumentError(`invalid ${what}: not serialisable as JSON`, {
      issues: [{ path: [what], message: 'expected a JSON object' }],
      cause: error,
    });
  }
  if (text !== undefined && byteLength(text) > limits.maxAttributesBytes) {
    throw tooLarge(what, `larger than ${limits.maxAttributesBytes} bytes as JSON`);
  }
}

/** `INVALID_ARGUMENT` unless `title` is within `maxTitleLength` characters. */
export function assertTitle(title: unknown, limits: InputLimits, what = 'title'): void {
  if (typeof title === 'string' && title.length > limits.maxTitleLength) {
    throw tooLarge(what, `longer than ${limits.maxTitleLength} characters`);
  }
}

/** What {@link normalizeMessages} allows. */
export interface MessageRules {
  limits?: InputLimits;
  /**
   * Only user input: `role` must be `'user'` (or left out), and the fields of assistant and tool
   * messages (`toolCalls`, `toolCallId`, `toolName`, `isError`, `reasoning`) are refused, as are
   * empty and whitespace-only messages.
   */
  userOnly?: boolean;
}

const NON_USER_FIELDS = ['toolCalls', 'toolCallId', 'toolName', 'isError', 'reasoning'] as const;

/**
 * Turns caller input into validated messages: a string is a user message; a missing `id`, `role`
 * (`'user'`) or `createdAt` is filled in. An empty list is refused, and with `rules`, a list longer
 * than `maxMessagesPerCall`, a message larger than `maxMessageBytes`, and (with `userOnly`)
 * anything but non-empty user input. Nothing is written.
 */
export function normalizeMessages(inputs: unknown, what = 'messages', rules: MessageRules = {}): Message[] {
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new InvalidArgumentError(`invalid ${what}: expected a non-empty list of messages`, {
      issues: [{ path: [what], message: 'expected a non-empty list' }],
    });
  }
  if (rules.limits !== undefined && inputs.length > rules.limits.maxMessagesPerCall) {
    throw tooLarge(what, `more than ${rules.limits.maxMessagesPerCall} messages in one call`);
  }
  const now = new Date().toISOString();
  return inputs.map((input, index) => normalizeMessage(input, now, `${what}[${index}]`, rules));
}

/** Normalises one message input (see {@link normalizeMessages}). */
export function normalizeMessage(
  input: unknown,
  now = new Date().toISOString(),
  what = 'message',
  rules: MessageRules = {},
): Message {
  const candidate =
    typeof input === 'string'
      ? { content: input }
      : typeof input === 'object' && input !== null
        ? (input as Partial<Message>)
        : undefined;
  if (!candidate) {
    throw new InvalidArgumentError(`invalid ${what}: expected a string or a message object`, {
      issues: [{ path: [what], message: 'expected a string or a message object' }],
    });
  }
  const result = MessageSchema.safeParse({
    ...candidate,
    id: candidate.id ?? newId('msg'),
    role: candidate.role ?? 'user',
    createdAt: candidate.createdAt ?? now,
  });
  if (!result.success) throw invalidArgument(what, result.error);
  const message = result.data;
  if (rules.userOnly) {
    if (message.role !== 'user') {
      throw new InvalidArgumentError(
        `invalid ${what}: only user messages can be sent (role ${JSON.stringify(message.role)}); add other messages with addMessage`,
        { issues: [{ path: [what, 'role'], message: 'expected "user"' }] },
      );
    }
    for (const field of NON_USER_FIELDS) {
      if (message[field] !== undefined) {
        throw new InvalidArgumentError(`invalid ${what}: a user message cannot have ${field}`, {
          issues: [{ path: [what, field], message: 'not allowed on a user message' }],
        });
      }
    }
    const hasParts = (message.parts ?? []).some((part) => part.type !== 'text' || part.text.trim() !== '');
    if (message.content.trim() === '' && !hasParts) {
      throw new InvalidArgumentError(`invalid ${what}: the message is empty`, {
        issues: [{ path: [what, 'content'], message: 'expected text that is not only whitespace' }],
      });
    }
  }
  if (rules.limits !== undefined) {
    const limit = rules.limits.maxMessageBytes;
    // A UTF-16 unit is at most 3 UTF-8 bytes: short messages need no encoding.
    const parts = message.parts === undefined ? '' : JSON.stringify(message.parts);
    const size =
      (message.content.length + parts.length) * 3 <= limit
        ? 0
        : byteLength(message.content) + byteLength(parts);
    if (size > limit) {
      throw tooLarge(what, `larger than ${rules.limits.maxMessageBytes} bytes`);
    }
  }
  return message;
}

/** `value`, or `fallback` when undefined; anything but a positive integer is `INVALID_ARGUMENT`. */
export function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`invalid option ${name}: expected a positive integer`, {
      issues: [{ path: [name], message: 'expected a positive integer' }],
    });
  }
  return value;
}

/** `value` when it is a non-empty string, `undefined` when undefined; else `INVALID_ARGUMENT`. */
export function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`invalid ${name}: expected a non-empty string`, {
      issues: [{ path: [name], message: 'expected a non-empty string' }],
    });
  }
  return value;
}

/**
 * `INVALID_ARGUMENT` unless `template` is an object whose `id`, if any, is a valid session id, and
 * whose title and attributes fit the limits.
 */
export function assertTemplate(
  template: unknown,
  limits: InputLimits = DEFAULT_INPUT_LIMITS,
): asserts template is SessionTemplate {
  if (typeof template !== 'object' || template === null) {
    throw new InvalidArgumentError('invalid session template: expected an object', {
      issues: [{ path: [], message: 'expected an object' }],
    });
  }
  const { id, title, attributes } = template as SessionTemplate;
  if (id !== undefined) assertSessionId(id);
  assertTitle(title, limits);
  assertAttributes(attributes, limits);
}

/**
 * A new, validated session record from a template: a generated id when none is given, defaults for
 * every field left out, both timestamps now. A template title sets `titleSource: 'manual'`.
 */
export function sessionFromTemplate(template: SessionTemplate): Session {
  const now = new Date().toISOString();
  const title = template.title ?? '';
  return parseSession({
    ...template,
    id: template.id ?? newId('ses'),
    title,
    titleSource: title !== '' ? 'manual' : (template.titleSource ?? 'none'),
    starred: template.starred ?? false,
    items: template.items ?? [],
    usage: template.usage ?? emptyUsage(),
    safetyPolicy: template.safetyPolicy ?? '',
    permissions: template.permissions ?? { allow: [], ask: [], deny: [] },
    agentModelOverrides: template.agentModelOverrides ?? {},
    customModelsUsed: template.customModelsUsed ?? [],
    attributes: template.attributes ?? {},
    createdAt: now,
    updatedAt: now,
  });
}

/** `runSession`'s input and options as an admission request; an aborted signal throws its reason. */
export function parseRunInput(
  input: RunInput,
  options: RunOptions,
  limits: InputLimits = DEFAULT_INPUT_LIMITS,
): AdmissionRequest {
  const messages = normalizeMessages(input?.messages, 'messages', { limits, userOnly: true });
  const source = optionalString(input.source, 'source');
  const agent = optionalString(input.agent, 'agent');
  const model = optionalString(input.model, 'model');
  const onDetach = options.onDetach ?? 'cancel';
  if (onDetach !== 'cancel' && onDetach !== 'continue') {
    throw new InvalidArgumentError('invalid onDetach: expected "cancel" or "continue"', {
      issues: [{ path: ['onDetach'], message: 'expected "cancel" or "continue"' }],
    });
  }
  throwIfAborted(options.signal);
  return {
    messages,
    ...(source === undefined ? {} : { source }),
    ...(agent === undefined ? {} : { agent }),
    ...(model === undefined ? {} : { model }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onDetach,
    detached: false,
  };
}

/** A compaction summary item from `addSummary`'s input: `id` and `createdAt` filled in, validated. */
export function summaryItem(
  summary: Omit<SummaryItem, 'kind' | 'id' | 'createdAt'> & Partial<Pick<SummaryItem, 'id' | 'createdAt'>>,
): SummaryItem {
  const parsed = SummaryItemSchema.safeParse({
    ...summary,
    kind: 'summary' as const,
    id: summary?.id ?? newId('sum'),
    createdAt: summary?.createdAt ?? new Date().toISOString(),
  });
  if (!parsed.success) throw invalidArgument('summary', parsed.error);
  return parsed.data;
}

/** `value` when it is a number of at least 0; else `INVALID_ARGUMENT`. */
export function nonNegativeNumber(value: unknown, name: string): number {
  if (typeof value !== 'number' || !(value >= 0)) {
    throw new InvalidArgumentError(`invalid ${name}: expected a non-negative number`, {
      issues: [{ path: [name], message: 'expected a non-negative number' }],
    });
  }
  return value;
}
