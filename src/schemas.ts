/**
 * Records of agent-sessions as zod schemas, and the types inferred from them. The shapes are the
 * contract: hosts, stores and the import/export bundle all use them.
 *
 * Every record is plain JSON: no classes, no Dates (timestamps are ISO-8601 strings). These schemas
 * validate everything that comes from outside: a file, an import bundle, a host's call.
 */
import * as z from 'zod';
import { InvalidArgumentError, invalidArgument } from './errors.js';

/** A JSON value: what `attributes`, tool arguments and custom event data may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * True when `value` is a JSON value (finite numbers, plain objects and arrays, no cycles). An
 * object reached twice without a cycle (a shared sub-object) is fine: JSON writes it twice.
 * Iterative, so deep values cannot overflow the stack.
 */
export function isJsonValue(value: unknown): value is JsonValue {
  // Depth-first with explicit exit markers: `open` holds the objects on the current path (a cycle
  // is a reference back into it); `checked` holds finished objects, so shared ones are walked once.
  const exit = Symbol('exit');
  const stack: unknown[] = [value];
  const open = new Set<object>();
  const checked = new Set<object>();
  while (stack.length > 0) {
    const current = stack.pop();
    if (current === exit) {
      const finished = stack.pop() as object;
      open.delete(finished);
      checked.add(finished);
      continue;
    }
    if (current === null || typeof current === 'string' || typeof current === 'boolean') continue;
    if (typeof current === 'number') {
      if (!Number.isFinite(current)) return false;
      continue;
    }
    if (typeof current !== 'object') return false;
    if (checked.has(current)) continue;
    if (open.has(current)) return false;
    open.add(current);
    stack.push(current, exit);
    if (Array.isArray(current)) {
      for (let index = 0; index < current.length; index++) stack.push(current[index]);
      continue;
    }
    const proto = Object.getPrototypeOf(current);
    if (proto !== Object.prototype && proto !== null) return false;
    for (const key in current) {
      if (hasOwn.call(current, key)) stack.push((current as Record<string, unknown>)[key]);
    }
  }
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// zod's own z.record()/z.json() rebuild objects and drop an own "__proto__" key. These checks keep
// the value as given (stores copy it), so such keys are neither lost nor able to pollute prototypes.
/** A JSON value, kept as given. */
export const JsonValueSchema = z.custom<JsonValue>((value) => isJsonValue(value), {
  message: 'expected a JSON value',
});
/** A JSON object, kept as given. */
export const JsonObjectSchema = z.custom<JsonObject>((value) => isPlainObject(value) && isJsonValue(value), {
  message: 'expected a JSON object',
});
/** An object of strings, kept as given. */
export const StringRecordSchema = z.custom<Record<string, string>>(
  (value) => isPlainObject(value) && Object.values(value).every((entry) => typeof entry === 'string'),
  { message: 'expected an object of strings' },
);

/** The pattern every session id matches. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** A session id: a letter or digit, then up to 127 letters, digits, `_` or `-`. */
export const SessionIdSchema = z
  .string()
  .regex(SESSION_ID_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$');

/** An ISO-8601 timestamp (UTC `Z` or with an offset). */
export const TimestampSchema = z.iso.datetime({ offset: true });

const nonNegative = z.number().finite().nonnegative();

/**
 * Accumulated token usage and cost. `inputTokens` includes the cache-read and cache-write tokens,
 * `outputTokens` the reasoning tokens; the three details are optional (older records and runtimes
 * that do not report them leave them out).
 */
export const UsageSchema = z.object({
  inputTokens: nonNegative,
  outputTokens: nonNegative,
  cost: nonNegative,
  /** Input tokens read from the provider's prompt cache. */
  cacheReadTokens: nonNegative.optional(),
  /** Input tokens written to the provider's prompt cache. */
  cacheWriteTokens: nonNegative.optional(),
  /** Output tokens spent on reasoning. */
  reasoningTokens: nonNegative.optional(),
});
/** Accumulated token usage and cost of a session or message. */
export type Usage = z.infer<typeof UsageSchema>;

/** One part of multi-part message content. */
export const MessagePartSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({
    type: z.literal('image'),
    /** A URL of the image, or */
    url: z.string().optional(),
    /** the image itself, base64. */
    data: z.string().optional(),
    mimeType: z.string().optional(),
  }),
  z.object({
    type: z.literal('file'),
    /** A path or URI that names the file. */
    uri: z.string(),
    name: z.string().optional(),
    mimeType: z.string().optional(),
  }),
]);
/** One part of multi-part message content: text, an image (by URL or data) or a file reference. */
export type MessagePart = z.infer<typeof MessagePartSchema>;

/** A tool call an assistant message makes; `arguments` is JSON text. */
export const ToolCallSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
});
/** A tool call an assistant message makes; `arguments` is JSON text. */
export type ToolCall = z.infer<typeof ToolCallSchema>;

/** Roles a message may have. */
export const MessageRoleSchema = z.enum(['user', 'assistant', 'tool', 'system']);
/** A message's role: `'user' | 'assistant' | 'tool' | 'system'`. */
export type MessageRole = z.infer<typeof MessageRoleSchema>;

/** A chat message. */
export const MessageSchema = z.object({
  id: z.string().min(1),
  role: MessageRoleSchema,
  content: z.string(),
  parts: z.array(MessagePartSchema).optional(),
  toolCalls: z.array(ToolCallSchema).optional(),
  /** On `role: 'tool'` messages: the call this is the result of. */
  toolCallId: z.string().optional(),
  /** On `role: 'tool'` messages: the name of the tool called (providers need it with the result). */
  toolName: z.string().optional(),
  /** On `role: 'tool'` messages: the result is an error (the tool failed or did not run). */
  isError: z.boolean().optional(),
  /** On `role: 'assistant'` messages: the model's reasoning text, when the runtime keeps it. */
  reasoning: z.string().optional(),
  /**
   * On `role: 'assistant'` messages: a partial answer, kept when its turn was cancelled before the
   * answer was complete (the text streamed so far), with the turn's stop reason.
   */
  interrupted: z.object({ reason: z.enum(['cancelled', 'error']) }).optional(),
  agent: z.string().optional(),
  model: z.string().optional(),
  usage: UsageSchema.optional(),
  createdAt: TimestampSchema,
});
/** A chat message (see {@link MessageSchema}). */
export type Message = z.infer<typeof MessageSchema>;

/** A compaction summary replacing the items before `firstKeptItem` when history is sent to a model. */
export const SummaryItemSchema = z.object({
  kind: z.literal('summary'),
  id: z.string().min(1),
  summary: z.string(),
  /** Index of the first item the summary does not replace. */
  firstKeptItem: z.number().int().nonnegative(),
  createdAt: TimestampSchema,
  model: z.string().optional(),
  usage: UsageSchema.optional(),
});
/** A compaction summary in history: it replaces the items before `firstKeptItem` when history is sent to a model. */
export type SummaryItem = z.infer<typeof SummaryItemSchema>;

/** An error recorded in history (a failed turn). */
export const ErrorItemSchema = z.object({
  kind: z.literal('error'),
  id: z.string().min(1),
  message: z.string(),
  code: z.string().optional(),
  agent: z.string().optional(),
  createdAt: TimestampSchema,
});
/** An error recorded in history (a turn that failed). */
export type ErrorItem = z.infer<typeof ErrorItemSchema>;

/** A message in history. */
export const MessageItemSchema = z.object({ kind: z.literal('message'), message: MessageSchema });
/** A message in history. */
export type MessageItem = z.infer<typeof MessageItemSchema>;

/** One entry of a session's ordered history. */
export const SessionItemSchema = z.discriminatedUnion('kind', [
  MessageItemSchema,
  SummaryItemSchema,
  ErrorItemSchema,
]);
/** One entry of a session's ordered history, discriminated on `kind`. */
export type SessionItem = z.infer<typeof SessionItemSchema>;

/** How a session got its title. */
export const TitleSourceSchema = z.enum(['none', 'heuristic', 'generated', 'manual']);
/** How a session got its title: `'none' | 'heuristic' | 'generated' | 'manual'`. */
export type TitleSource = z.infer<typeof TitleSourceSchema>;

/** Safety policies for tool calls (see tool authorisation). `''` is the default policy. */
export const SafetyPolicySchema = z.enum(['', 'strict', 'balanced', 'restricted', 'autonomous']);
/** A session's policy for tool calls (see tool authorisation); `''` is the default. */
export type SafetyPolicy = z.infer<typeof SafetyPolicySchema>;

/** Tool permission patterns. */
export const PermissionsSchema = z.object({
  allow: z.array(z.string()),
  ask: z.array(z.string()),
  deny: z.array(z.string()),
});
/** Tool permission patterns: `deny` first, then `allow`, then `ask`, then the policy decides. */
export type Permissions = z.infer<typeof PermissionsSchema>;

/** Where a fork came from. */
export const ForkedFromSchema = z.object({
  sessionId: SessionIdSchema,
  /** The 0-based index among the parent's user messages before which the fork was cut (omitted: all items). */
  beforeUserMessage: z.number().int().nonnegative().optional(),
});
/** Where a fork came from: the parent session and the user message it was cut before. */
export type ForkedFrom = z.infer<typeof ForkedFromSchema>;

/**
 * A request that waits for a human, persisted with the session so it outlives the process: a tool
 * call waiting for confirmation, or an elicitation. `answer` is set once it was answered after the
 * turn that asked was gone (a restart); the manager then hands the answers to a resumed turn.
 */
export const PendingApprovalSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('confirmation'),
    /** The confirmation id (`resumeSession`'s `confirmationId`). */
    id: z.string().min(1),
    /** The turn that asked. */
    turnId: z.string().min(1),
    toolCall: ToolCallSchema,
    readOnly: z.boolean().optional(),
    safe: z.boolean().optional(),
    /** When it was asked. */
    createdAt: TimestampSchema,
    /** The decision, once answered after a restart (before the resumed turn ran). */
    answer: z
      .union([
        z.object({ approved: z.literal(true) }),
        z.object({ approved: z.literal(false), reason: z.string() }),
      ])
      .optional(),
  }),
  z.object({
    kind: z.literal('elicitation'),
    /** The elicitation id (`resumeElicitation`'s `elicitationId`). */
    id: z.string().min(1),
    turnId: z.string().min(1),
    message: z.string(),
    schema: z.unknown().optional(),
    mode: z.enum(['form', 'url']),
    url: z.string().optional(),
    createdAt: TimestampSchema,
    /** The answer, once answered after a restart (before the resumed turn ran). */
    answer: z
      .union([
        z.object({ action: z.literal('accept'), content: z.unknown().optional() }),
        z.object({ action: z.enum(['decline', 'cancel']) }),
      ])
      .optional(),
  }),
]);
/** A request that waits for a human, persisted with the session (see {@link PendingApprovalSchema}). */
export type PendingApproval = z.infer<typeof PendingApprovalSchema>;

const sessionMetadataShape = {
  title: z.string(),
  titleSource: TitleSourceSchema,
  /** The agent source key the session runs from. */
  source: z.string().optional(),
  /** The current agent's name. */
  agent: z.string().optional(),
  workingDir: z.string().optional(),
  /**
   * The principal that owns the session (a user or tenant id chosen by the host). Hosts that serve
   * several users filter listings by it (`ListOptions.owner`); absent for sessions without one.
   */
  owner: z.string().min(1).max(256).optional(),
  starred: z.boolean(),
  usage: UsageSchema,
  safetyPolicy: SafetyPolicySchema,
  permissions: PermissionsSchema,
  /** Agent name → model ref. */
  agentModelOverrides: StringRecordSchema,
  /** Custom model refs used in this session. */
  customModelsUsed: z.array(z.string()),
  /** Host metadata. */
  attributes: JsonObjectSchema,
  parentId: SessionIdSchema.optional(),
  forkedFrom: ForkedFromSchema.optional(),
  /**
   * Requests of a turn that wait for a human (tool confirmations, elicitations), persisted so a
   * restart keeps them: the snapshot lists them and `resumeSession`/`resumeElicitation` answer
   * them. Absent when nothing waits.
   */
  pendingApprovals: z.array(PendingApprovalSchema).optional(),
  /**
   * The highest event `seq` the manager may have handed out for this session (a reserved
   * high-water mark): a new process numbers the session's events after it, so a seq is never
   * reused across restarts. Absent for sessions that never ran a turn.
   */
  eventSeqReserved: z.number().int().nonnegative().optional(),
};

/** A whole session record. */
export const SessionSchema = z.object({
  id: SessionIdSchema,
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  ...sessionMetadataShape,
  items: z.array(SessionItemSchema),
});
/** A whole session record: metadata and the ordered `items` (see {@link SessionSchema}). */
export type Session = z.infer<typeof SessionSchema>;

/**
 * A metadata patch: changes only the fields it names. A named optional field whose value is
 * `undefined` is removed. Items, `id`, `createdAt` and `updatedAt` are never patched.
 */
export const SessionPatchSchema = z
  .object({
    title: sessionMetadataShape.title,
    titleSource: sessionMetadataShape.titleSource,
    source: sessionMetadataShape.source,
    agent: sessionMetadataShape.agent,
    workingDir: sessionMetadataShape.workingDir,
    owner: sessionMetadataShape.owner,
    starred: sessionMetadataShape.starred,
    usage: sessionMetadataShape.usage,
    safetyPolicy: sessionMetadataShape.safetyPolicy,
    permissions: sessionMetadataShape.permissions,
    agentModelOverrides: sessionMetadataShape.agentModelOverrides,
    customModelsUsed: sessionMetadataShape.customModelsUsed,
    attributes: sessionMetadataShape.attributes,
    parentId: sessionMetadataShape.parentId,
    forkedFrom: sessionMetadataShape.forkedFrom,
    pendingApprovals: sessionMetadataShape.pendingApprovals,
    eventSeqReserved: sessionMetadataShape.eventSeqReserved,
  })
  .partial()
  .strict();
/** A metadata patch: only the fields it names change; a named optional field set to `undefined` is removed. */
export type SessionPatch = z.infer<typeof SessionPatchSchema>;

/** The fields a patch may name. */
export const SESSION_PATCH_FIELDS = Object.keys(SessionPatchSchema.shape) as (keyof SessionPatch)[];

/** The optional fields, which a patch removes by naming them with `undefined`. */
export const OPTIONAL_SESSION_FIELDS: ReadonlySet<string> = new Set([
  'source',
  'agent',
  'workingDir',
  'owner',
  'parentId',
  'forkedFrom',
  'pendingApprovals',
  'eventSeqReserved',
]);

/** What listings return: never the items. */
export const SessionSummarySchema = z.object({
  id: SessionIdSchema,
  title: z.string(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  starred: z.boolean(),
  workingDir: z.string().optional(),
  source: z.string().optional(),
  owner: z.string().optional(),
  messageCount: z.number().int().nonnegative(),
  usage: UsageSchema,
});
/** What listings return for a session: never its items. */
export type SessionSummary = z.infer<typeof SessionSummarySchema>;

/** An export bundle (`exportSessions` / `importSessions`). */
export const ExportBundleSchema = z.object({
  version: z.literal(1),
  exportedAt: TimestampSchema,
  sessions: z.array(SessionSchema),
});
/** What `exportSessions` returns and `importSessions` takes: full session records, version 1. */
export type ExportBundle = z.infer<typeof ExportBundleSchema>;

/** A zero usage record. */
export function emptyUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cost: 0 };
}

/** Counts the message items of a session (what `SessionSummary.messageCount` reports). */
export function countMessages(items: readonly SessionItem[]): number {
  let count = 0;
  for (const item of items) if (item.kind === 'message') count++;
  return count;
}

/** The summary of a session. */
export function toSummary(session: Session, messageCount = countMessages(session.items)): SessionSummary {
  const summary: SessionSummary = {
    id: session.id,
    title: session.title,
    createdAt: session.createdAt,
    updatedAt: session.updatedAt,
    starred: session.starred,
    messageCount,
    usage: { ...session.usage },
  };
  if (session.workingDir !== undefined) summary.workingDir = session.workingDir;
  if (session.source !== undefined) summary.source = session.source;
  if (session.owner !== undefined) summary.owner = session.owner;
  return summary;
}

/**
 * Applies a patch to a session in place: only named fields change; a named optional field set to
 * `undefined` is removed. The caller validated the patch and owns `session`.
 */
export function applyPatch(session: Session, patch: SessionPatch): void {
  const target = session as Record<string, unknown>;
  for (const key of SESSION_PATCH_FIELDS) {
    if (!hasOwn.call(patch, key)) continue;
    const value = patch[key];
    if (value === undefined) {
      if (OPTIONAL_SESSION_FIELDS.has(key)) delete target[key];
    } else target[key] = value;
  }
}

/**
 * Validates a patch from outside: every named field valid, no unknown field, and `undefined` only
 * on optional fields. Returns the patch as given (values are not copied).
 */
export function parsePatch(patch: unknown): SessionPatch {
  const result = SessionPatchSchema.safeParse(patch);
  if (!result.success) throw invalidArgument('session patch', result.error);
  for (const key of Object.keys(patch as object)) {
    if ((patch as Record<string, unknown>)[key] === undefined && !OPTIONAL_SESSION_FIELDS.has(key)) {
      throw new InvalidArgumentError(`invalid session patch: ${key} cannot be removed`, {
        issues: [{ path: [key], message: 'required field cannot be undefined' }],
      });
    }
  }
  return patch as SessionPatch;
}

/** Validates a whole session from outside. */
export function parseSession(session: unknown): Session {
  const result = SessionSchema.safeParse(session);
  if (!result.success) throw invalidArgument('session', result.error);
  return result.data;
}

/** Validates a session id before any I/O. */
export function assertSessionId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !SESSION_ID_PATTERN.test(id)) {
    throw new InvalidArgumentError(`invalid session id ${JSON.stringify(String(id).slice(0, 200))}`, {
      issues: [{ path: ['id'], message: 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$' }],
    });
  }
}
