/**
 * The wire shapes of `agent-sessions/http`: request bodies and queries (validated with these zod
 * schemas before the manager is called) and response bodies (documented in the OpenAPI document).
 * Built from the library's own record schemas, so the HTTP API and the records cannot drift.
 */
import * as z from 'zod';
import { StopReasonSchema } from '../events.js';
import {
  ExportBundleSchema,
  JsonObjectSchema,
  JsonValueSchema,
  MessagePartSchema,
  MessageRoleSchema,
  MessageSchema,
  PermissionsSchema,
  SafetyPolicySchema,
  SessionIdSchema,
  SessionItemSchema,
  SessionSchema,
  SessionSummarySchema,
  StringRecordSchema,
  TimestampSchema,
  TitleSourceSchema,
  ToolCallSchema,
  UsageSchema,
} from '../schemas.js';
import { MAX_LIST_LIMIT } from '../store.js';

const text = z.string().max(1_000_000);
const name = z.string().min(1).max(1024);

/** A message as a request gives it: a string (a user message) or a message whose missing `id`, `role` and `createdAt` are filled in. */
export const MessageInputSchema = z.union([
  text,
  z
    .object({
      id: z.string().min(1).max(256).optional(),
      role: MessageRoleSchema.optional(),
      content: text,
      parts: z.array(MessagePartSchema).optional(),
      toolCalls: z.array(ToolCallSchema).optional(),
      toolCallId: z.string().optional(),
      agent: z.string().optional(),
      model: z.string().optional(),
      usage: UsageSchema.optional(),
      createdAt: TimestampSchema.optional(),
    })
    .strict(),
]);

const messages = z.array(MessageInputSchema).min(1).max(100);

/** `POST /sessions`: the new session's fields; the server fills in the rest (and the owner). */
export const CreateSessionBodySchema = z
  .object({
    id: SessionIdSchema.optional(),
    title: z.string().max(10_000).optional(),
    titleSource: TitleSourceSchema.optional(),
    source: z.string().optional(),
    agent: z.string().optional(),
    workingDir: z.string().optional(),
    starred: z.boolean().optional(),
    safetyPolicy: SafetyPolicySchema.optional(),
    permissions: PermissionsSchema.optional(),
    agentModelOverrides: StringRecordSchema.optional(),
    attributes: JsonObjectSchema.optional(),
    items: z.array(SessionItemSchema).optional(),
  })
  .strict();

/** `POST /sessions/{id}/run`: the turn's messages and optional source, agent and model switches. */
export const RunBodySchema = z
  .object({ messages, source: name.optional(), agent: name.optional(), model: name.optional() })
  .strict();

/** `POST /sessions/{id}/agent/{agent}[/{agentName}]` (docker-agent's run route): the messages and a model. */
export const AgentRunBodySchema = z.object({ messages, model: name.optional() }).strict();

/** `POST /sessions/{id}/steer`. */
export const SteerBodySchema = z.object({ messages }).strict();

/** `POST /sessions/{id}/followup`; the key may also come as the `Idempotency-Key` header. */
export const FollowUpBodySchema = z.object({ messages, idempotencyKey: name.optional() }).strict();

/** `POST /sessions/{id}/resume`: the answer to a pending tool confirmation. */
export const ResumeBodySchema = z
  .object({
    confirmation: z.enum(['approve', 'approve-tool', 'approve-session', 'reject']),
    reason: z.string().max(10_000).optional(),
    toolName: name.optional(),
    confirmationId: name.optional(),
  })
  .strict();

/** `POST /sessions/{id}/elicitation`: the answer to a pending elicitation. */
export const ElicitationBodySchema = z
  .object({
    action: z.enum(['accept', 'decline', 'cancel']),
    content: JsonValueSchema.optional(),
    elicitationId: name.optional(),
  })
  .strict();

/** `POST /sessions/{id}/cancel` and `POST /sessions/{id}/turns/{turnId}/cancel`. */
export const CancelBodySchema = z.object({ reason: z.string().max(10_000).optional() }).strict();

/** `PATCH /sessions/{id}/title`. */
export const TitleBodySchema = z.object({ title: z.string().max(10_000) }).strict();
/** `PATCH /sessions/{id}/starred`. */
export const StarredBodySchema = z.object({ starred: z.boolean() }).strict();
/** `PATCH /sessions/{id}/permissions`. */
export const PermissionsBodySchema = z.object({ permissions: PermissionsSchema }).strict();
/** `PATCH /sessions/{id}/safety-policy`. */
export const SafetyPolicyBodySchema = z.object({ safetyPolicy: SafetyPolicySchema }).strict();
/** `PUT /sessions/{id}/model`: `null` (or no `model`) clears the override. */
export const ModelBodySchema = z.object({ model: name.nullable().optional() }).strict();

/** `POST /sessions/{id}/messages`. */
export const AddMessageBodySchema = z.object({ message: MessageInputSchema }).strict();
/** `PATCH /sessions/{id}/messages/{messageId}`: the new message (its id comes from the path). */
export const UpdateMessageBodySchema = z
  .object({ message: MessageSchema.omit({ id: true }).partial().extend({ content: text }).strict() })
  .strict();
/** `POST /sessions/{id}/summaries`. */
export const SummaryBodySchema = z
  .object({
    summary: text,
    firstKeptItem: z.number().int().nonnegative(),
    model: z.string().optional(),
    usage: UsageSchema.optional(),
    id: name.optional(),
    createdAt: TimestampSchema.optional(),
  })
  .strict();

/** `POST /sessions/{id}/fork`. */
export const ForkBodySchema = z
  .object({ beforeUserMessage: z.number().int().nonnegative().optional() })
  .strict();

/** `POST /sessions/batch/delete` and `POST /sessions/batch/export`. */
export const IdsBodySchema = z.object({ ids: z.array(SessionIdSchema).max(MAX_LIST_LIMIT) }).strict();

/** `POST /sessions/import`. */
export const ImportBodySchema = z
  .object({ bundle: ExportBundleSchema, onConflict: z.enum(['error', 'skip', 'replace']) })
  .strict();

/** `POST /sessions/{id}/wait`. */
export const WaitBodySchema = z.object({ timeoutMs: z.number().int().min(0).max(300_000) }).strict();

// ───────────────────────────── queries (strings in, typed out)

const boolean = z.enum(['true', 'false']).transform((value) => value === 'true');
const seq = z
  .string()
  .regex(/^\d{1,15}$/, 'expected a non-negative integer')
  .transform(Number);

/** `GET /sessions`. */
export const ListQuerySchema = z
  .object({
    limit: z
      .string()
      .regex(/^\d{1,4}$/, 'expected an integer')
      .transform(Number)
      .pipe(z.number().int().min(1).max(MAX_LIST_LIMIT))
      .optional(),
    cursor: z.string().max(1024).optional(),
    workingDir: z.string().max(4096).optional(),
    starred: boolean.optional(),
  })
  .strict();

/** `GET /sessions/{id}/events` and `GET /sessions/{id}/turns/{turnId}/events`. */
export const EventsQuerySchema = z.object({ since: seq.optional() }).strict();

/** `DELETE /sessions/{id}`: `wait=true` waits (up to `timeout` ms) for a running turn to stop. */
export const DeleteQuerySchema = z
  .object({
    wait: boolean.optional(),
    timeout: z
      .string()
      .regex(/^\d{1,6}$/, 'expected milliseconds')
      .transform(Number)
      .pipe(z.number().int().max(300_000))
      .optional(),
  })
  .strict();

/** No query parameters. */
export const NoQuerySchema = z.object({}).strict();

// ───────────────────────────── responses

/** Every error response. */
export const ErrorBodySchema = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** A page of summaries. */
export const PageSchema = z.object({
  sessions: z.array(SessionSummarySchema),
  nextCursor: z.string().optional(),
});

/** `GET /sessions/{id}/status`: what a reconnecting client needs. */
export const SessionSnapshotSchema = z.object({
  session: SessionSchema,
  streaming: z.boolean(),
  agent: z.string().optional(),
  lastEventSeq: z.number().int().nonnegative(),
  pending: z.object({
    confirmations: z.array(
      z.object({ confirmationId: z.string(), turnId: z.string(), toolCall: ToolCallSchema }),
    ),
    elicitations: z.array(
      z.object({
        elicitationId: z.string(),
        turnId: z.string(),
        message: z.string(),
        schema: z.unknown().optional(),
        mode: z.enum(['form', 'url']),
        url: z.string().optional(),
      }),
    ),
  }),
  queues: z.object({ steer: z.array(MessageSchema), followUp: z.array(z.array(MessageSchema)) }),
  /** Present while the session's turn waits for a slot (`maxConcurrentTurns`). */
  queued: z
    .object({
      turnId: z.string(),
      since: z.string(),
      /** Place in line: 1 is the next turn to start. */
      position: z.number().int().positive(),
    })
    .optional(),
});

/** `GET /sessions/{id}/queue`. */
export const QueueStatusSchema = z.object({
  streaming: z.boolean(),
  steer: z.number().int().nonnegative(),
  followUp: z.number().int().nonnegative(),
  pendingConfirmations: z.number().int().nonnegative(),
  pendingElicitations: z.number().int().nonnegative(),
});

/** `GET /sessions/{id}/models`. */
export const AvailableModelsSchema = z.object({
  agent: z.string(),
  current: z.string().optional(),
  models: z.array(
    z.object({ ref: z.string(), name: z.string().optional(), current: z.boolean() }).passthrough(),
  ),
});

/** The SSE `turn_result` message: how the turn stream ended. */
export const TurnResultSchema = z.object({
  stopReason: StopReasonSchema,
  error: ErrorBodySchema.optional(),
  discarded: z.array(MessageSchema),
});

/** `POST /sessions/{id}/followup`. */
export const FollowUpResultSchema = z.object({ status: z.enum(['queued', 'started', 'duplicate']) });

/** `POST /sessions/batch/delete`. */
export const BatchDeleteResultSchema = z.object({
  deleted: z.array(z.string()),
  failed: z.array(z.object({ id: z.string(), error: ErrorBodySchema })),
});

/** `POST /sessions/import`. */
export const ImportResultSchema = z.object({
  imported: z.array(z.string()),
  skipped: z.array(z.string()),
  replaced: z.array(z.string()),
});

/** `DELETE /sessions/{id}`. */
export const DeleteResultSchema = z.object({
  deleted: z.literal(true),
  /** False when `wait=true` ran out before the turn stopped (status 202). */
  stopped: z.boolean(),
});

/** `POST /sessions/{id}/cancel`. */
export const CancelResultSchema = z.object({ cancelled: z.boolean() });

/** `POST /sessions/{id}/tools/toggle`. */
export const SafetyPolicyResultSchema = z.object({ safetyPolicy: SafetyPolicySchema });

/** `/health` and `/ready`. */
export const HealthSchema = z.object({ status: z.enum(['ok', 'ready']) });

/** The summary item a `POST /summaries` stored. */
export { SummaryItemSchema } from '../schemas.js';
/** A message as stored (responses of the message routes). */
export { ExportBundleSchema, MessageSchema, SessionSchema };

/** `PATCH /sessions/{id}/title`. */
export const TitleResultSchema = z.object({ id: SessionIdSchema, title: z.string() });
