// Validation of what callers pass in: messages, options and optional strings. Nothing here writes;
// everything throws INVALID_ARGUMENT before the manager touches a store or a runtime.
import { InvalidArgumentError, invalidArgument } from '../errors.js';
import { newId } from '../internal/ids.js';
import {
  assertSessionId,
  emptyUsage,
  type Message,
  MessageSchema,
  parseSession,
  type Session,
} from '../schemas.js';
import type { SessionTemplate } from './types.js';

/**
 * Turns caller input into validated messages: a string is a user message; a missing `id`, `role`
 * (`'user'`) or `createdAt` is filled in. An empty list is refused. Nothing is written.
 */
export function normalizeMessages(inputs: unknown, what = 'messages'): Message[] {
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new InvalidArgumentError(`invalid ${what}: expected a non-empty list of messages`, {
      issues: [{ path: [what], message: 'expected a non-empty list' }],
    });
  }
  const now = new Date().toISOString();
  return inputs.map((input, index) => normalizeMessage(input, now, `${what}[${index}]`));
}

/** Normalises one message input (see {@link normalizeMessages}). */
export function normalizeMessage(input: unknown, now = new Date().toISOString(), what = 'message'): Message {
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
  return result.data;
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

/** `INVALID_ARGUMENT` unless `template` is an object whose `id`, if any, is a valid session id. */
export function assertTemplate(template: unknown): asserts template is SessionTemplate {
  if (typeof template !== 'object' || template === null) {
    throw new InvalidArgumentError('invalid session template: expected an object', {
      issues: [{ path: [], message: 'expected an object' }],
    });
  }
  const id = (template as SessionTemplate).id;
  if (id !== undefined) assertSessionId(id);
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
