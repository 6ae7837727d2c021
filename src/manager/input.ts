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
import type { RunInput, RunOptions, SessionTemplate } from './types.js';

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

/** `runSession`'s input and options as an admission request; an aborted signal throws its reason. */
export function parseRunInput(input: RunInput, options: RunOptions): AdmissionRequest {
  const messages = normalizeMessages(input?.messages);
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
