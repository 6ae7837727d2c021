/**
 * Events: what a runtime yields and what the manager emits.
 *
 * A runtime yields {@link RuntimeEvent}s. The manager validates each one (an invalid event ends the
 * turn as if the runtime had thrown), adds `sessionId`, `turnId`, `seq` and `timestamp`, and emits it
 * as a {@link SessionEvent}, together with events of its own ({@link ManagerEventPayloads}). The
 * contract every consumer can rely on:
 *
 * - **One log per session.** Every emitted event goes to the session's event log, whose `seq`
 *   starts at 1 and grows by one per event (across turns); `gap` alone has `seq: 0`. A TurnStream
 *   and `streamEvents` carry the same events with the same seqs.
 * - **A turn's shape.** `stream_started`, then the turn's `user_message`s, `session_title`, the
 *   runtime's events, and last `stream_stopped { reason }` (after an `error` event when the turn
 *   failed). A turn that waits for a slot (`maxConcurrentTurns`) announces it with `turn_queued`
 *   first. Steered and follow-up messages are `user_message`s of the turn that takes them.
 * - **Store first, then emit.** An event that announces something persisted (`message_added`,
 *   `user_message`, `token_usage`, `session_title`) is emitted only after the store accepted the
 *   write, in the order the runtime produced it; the runtime's next event waits for that write. An
 *   event whose write failed is never emitted (the turn ends with `error`). A client that reloads the
 *   session after an event therefore always finds what the event announced.
 * - **Terminal events.** `session_exited { reason }` (delete or close) is the last event of a log and
 *   has a seq; `gap` is delivered only by `streamEvents`, first, when events the subscriber asked for
 *   are no longer kept (`'dropped'`) or its position is beyond the log (`'reset'`, e.g. from before a
 *   restart).
 * - Events are shared between subscribers: treat them as read-only.
 *
 * Narrow on `type`:
 *
 * ```ts
 * for await (const event of stream) {
 *   if (event.type === 'agent_choice') process.stdout.write(event.content);
 * }
 * ```
 *
 * More in `docs/events-and-replay.md`.
 */
import * as z from 'zod';
import { newId } from './internal/ids.js';
import type { Message, ToolCall } from './schemas.js';
import { JsonValueSchema, MessageSchema, TimestampSchema, ToolCallSchema } from './schemas.js';

/** Why a turn stopped. The first five are ACP's. */
export const StopReasonSchema = z.enum([
  'end_turn',
  'max_tokens',
  'max_turn_requests',
  'refusal',
  'cancelled',
  'error',
]);
/** Why a turn stopped: `'end_turn' | 'max_tokens' | 'max_turn_requests' | 'refusal' | 'cancelled' | 'error'`. */
export type StopReason = z.infer<typeof StopReasonSchema>;

/** Token usage reported by a runtime for one model call. */
export const TokenUsageSchema = z.object({
  inputTokens: z.number().finite().nonnegative(),
  outputTokens: z.number().finite().nonnegative(),
  cost: z.number().finite().nonnegative().optional(),
  /** Input tokens read from the prompt cache (included in `inputTokens`). */
  cacheReadTokens: z.number().finite().nonnegative().optional(),
  /** Input tokens written to the prompt cache (included in `inputTokens`). */
  cacheWriteTokens: z.number().finite().nonnegative().optional(),
  /** Output tokens spent on reasoning (included in `outputTokens`). */
  reasoningTokens: z.number().finite().nonnegative().optional(),
  contextLength: z.number().finite().nonnegative().optional(),
  contextLimit: z.number().finite().nonnegative().optional(),
  model: z.string().optional(),
});
/** Token usage a runtime reports for one model call (`token_usage`). */
export type TokenUsage = z.infer<typeof TokenUsageSchema>;

/** One entry of an agent's plan. */
export const PlanEntrySchema = z.object({
  content: z.string(),
  status: z.enum(['pending', 'in_progress', 'completed']),
  priority: z.enum(['high', 'medium', 'low']).optional(),
});
/** One entry of an agent's plan (`plan_updated`). */
export type PlanEntry = z.infer<typeof PlanEntrySchema>;

/**
 * A complete message as a runtime reports it: like {@link MessageSchema}, but `id` and `createdAt`
 * may be omitted and the manager fills them in.
 */
export const RuntimeMessageSchema = MessageSchema.extend({
  id: z
    .string()
    .min(1)
    .default(() => newId('msg')),
  createdAt: TimestampSchema.default(() => new Date().toISOString()),
});

/** Every event a runtime may yield, as a zod schema the manager validates with. */
export const RuntimeEventSchema = z.discriminatedUnion('type', [
  /** A text delta of the answer. */
  z.object({ type: z.literal('agent_choice'), content: z.string() }),
  /** A text delta of the model's reasoning. */
  z.object({ type: z.literal('agent_choice_reasoning'), content: z.string() }),
  /** A tool call still being generated (arguments may be incomplete). */
  z.object({ type: z.literal('partial_tool_call'), toolCall: ToolCallSchema }),
  /** A complete tool call about to run. */
  z.object({ type: z.literal('tool_call'), toolCall: ToolCallSchema }),
  /** Progress output of a running tool (transient). */
  z.object({ type: z.literal('tool_call_output'), toolCallId: z.string(), output: z.string() }),
  /** The result of a tool call. */
  z.object({
    type: z.literal('tool_call_response'),
    toolCallId: z.string(),
    response: z.string(),
    isError: z.boolean().optional(),
  }),
  /** A complete assistant or tool message: the manager persists it. */
  z.object({ type: z.literal('message_added'), message: RuntimeMessageSchema }),
  /** Usage of one model call: the manager adds it to the session's usage. */
  z.object({ type: z.literal('token_usage'), usage: TokenUsageSchema }),
  /** The agent's plan changed. */
  z.object({ type: z.literal('plan_updated'), entries: z.array(PlanEntrySchema) }),
  z.object({ type: z.literal('warning'), message: z.string() }),
  /** An error the runtime reports without ending the turn. */
  z.object({ type: z.literal('error'), message: z.string(), code: z.string().optional() }),
  /** Anything else a runtime wants clients to see. */
  z.object({ type: z.literal('custom'), name: z.string().min(1), data: JsonValueSchema.optional() }),
  /** The last event of a turn that ends for another reason than a normal end. */
  z.object({
    type: z.literal('turn_end'),
    reason: z.enum(['end_turn', 'max_tokens', 'max_turn_requests', 'refusal']),
  }),
]);

/** A runtime event as validated: what the manager emits (a `message_added` message has its `id` and `createdAt`). */
export type RuntimeEvent = z.output<typeof RuntimeEventSchema>;

/** What a runtime may yield: a {@link RuntimeEvent}, where a `message_added` message may omit `id` and `createdAt`. */
export type RuntimeEventInput = z.input<typeof RuntimeEventSchema>;

/** The `type`s of runtime events. */
export type RuntimeEventType = RuntimeEvent['type'];

/** The manager's own event payloads, by type. */
export interface ManagerEventPayloads {
  /**
   * The turn waits for one of the manager's `maxConcurrentTurns` slots; `position` is its place in
   * line (1: next). Emitted only when it has to wait, before its `stream_started` (which follows
   * once it has a slot, or at once when it is cancelled while waiting).
   */
  turn_queued: { position: number };
  /** A turn began. */
  stream_started: { agent?: string };
  /** A turn's input, or a steered or follow-up message when it is taken. */
  user_message: { message: Message };
  /** The session's title (set, generated, or re-emitted at the start of a turn). */
  session_title: { title: string };
  /** A tool call waits for `resumeSession`. */
  tool_call_confirmation: { toolCall: ToolCall; confirmationId: string };
  /** The runtime asks the human for input; answer with `resumeElicitation`. */
  elicitation_request: {
    elicitationId: string;
    message: string;
    schema?: unknown;
    mode: 'form' | 'url';
    url?: string;
  };
  /** A turn ended. */
  stream_stopped: { reason: StopReason };
  /**
   * Only on `streamEvents`, with `seq: 0`, first: events after the asked position are missing.
   * `dropped`: they fell out of the log. `reset`: the asked position is beyond the log's last seq
   * (it came from before a restart), so the whole kept log follows. `nextSeq` is the seq of the next
   * event the subscriber will receive.
   */
  gap: { reason: 'dropped' | 'reset'; nextSeq: number };
  /** Only on `streamEvents`, terminal: the session was deleted or the manager closed. */
  session_exited: { reason: 'deleted' | 'closed' };
}

/** Fields the manager adds to every event. */
export interface EventEnvelope {
  sessionId: string;
  /** The turn the event belongs to (absent on session-level events such as `session_exited`). */
  turnId?: string;
  /** Position in the session's event log, from 1 (`gap` has 0). */
  seq: number;
  /**
   * When the event was emitted, ISO-8601 (millisecond precision). The manager reads the clock once
   * for up to 16 events appended within one task of the event loop (a new task always reads it
   * afresh), so events a runtime yields in a burst without I/O may share a timestamp that is
   * earlier than the later ones by the time that burst took (microseconds for text deltas). A
   * timestamp is never later than its event, and timestamps never go backwards within a session
   * unless the system clock does.
   */
  timestamp: string;
}

type ManagerEventOf<T extends keyof ManagerEventPayloads> = { type: T } & ManagerEventPayloads[T] &
  EventEnvelope;
type ManagerEvent = { [T in keyof ManagerEventPayloads]: ManagerEventOf<T> }[keyof ManagerEventPayloads];

/** Every event the manager emits: a runtime event or one of its own, with the envelope. */
export type SessionEvent = (RuntimeEvent & EventEnvelope) | ManagerEvent;

/** The `type`s of session events. */
export type SessionEventType = SessionEvent['type'];

/** The session event of one type. */
export type SessionEventOf<T extends SessionEventType> = Extract<SessionEvent, { type: T }>;

/** A session event before the log assigns its `seq`. */
export type UnsequencedEvent = SessionEvent extends infer E
  ? E extends SessionEvent
    ? Omit<E, 'seq'>
    : never
  : never;

/** Type guard on an event's `type`. */
export function isEventType<T extends SessionEventType>(
  event: SessionEvent,
  type: T,
): event is SessionEventOf<T> {
  return event.type === type;
}

const RUNTIME_EVENT_TYPES: ReadonlySet<string> = new Set(
  RuntimeEventSchema.options.map((option) => option.shape.type.value),
);

/** True for events a runtime yields (as opposed to the manager's own). */
export function isRuntimeEvent(event: SessionEvent): event is RuntimeEvent & EventEnvelope {
  return RUNTIME_EVENT_TYPES.has(event.type);
}

/** Events that are transient (not worth storing for a later replay of a conversation). */
export function isTransientEvent(event: SessionEvent): boolean {
  return event.type === 'tool_call_output' || event.type === 'partial_tool_call' || event.type === 'gap';
}
