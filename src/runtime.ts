/**
 * The Runtime contract: the agent loop that answers a turn.
 *
 * The host gives the manager a {@link RuntimeFactory}. The manager calls it once per session, when a
 * turn (or a model call) first needs the runtime, with a copy of the session, the resolved source
 * (when the manager has a `SourceResolver` and the session a `source`) and the agent in force. It
 * caches the runtime and closes it when the session is deleted, the manager closes, the session
 * switches to another source, or it has been idle `idleRuntimeTtlMs`; the factory's `signal` is
 * aborted then. A factory that throws refuses the turn with `RUNTIME_FAILED` before anything is
 * written.
 *
 * A runtime MUST:
 * - yield runtime events ({@link RuntimeEventInput}) from `run(turn)`; ending the iterable ends the
 *   turn (`end_turn`, unless the last event is `turn_end` with `max_tokens`, `max_turn_requests` or
 *   `refusal`); throwing ends it with an `error` event and stop reason `error`. An event that fails
 *   validation ends the turn the same way and is never stored or emitted;
 * - report each complete assistant or tool message with `message_added` (the manager persists it
 *   as it arrives, filling in a missing `id` or `createdAt`, and emits it once stored) and each
 *   model call's usage with `token_usage` (added to the session's `usage`);
 * - stop promptly when `turn.signal` aborts (cancel, delete, close); the manager does not wait for
 *   a runtime that ignores it before it reports the turn `cancelled`, but `waitStopped` does;
 * - treat `turn.session` as read-only: it is deeply frozen and shared between turns, never copied,
 *   so handing a runtime a long history costs nothing per turn.
 *
 * A runtime SHOULD:
 * - ask `turn.authorizeToolCall` before running a tool, and pass a rejection's reason to the model;
 *   the wait rejects when the turn is cancelled;
 * - call `turn.takeSteering()` at safe points (after tool results) and add what it returns to the
 *   conversation; messages it never takes run as the next turn;
 * - implement `setModel` and `availableModels` if it can switch models; without `setModel`, model
 *   overrides are refused with `MODEL_SWITCHING_NOT_SUPPORTED`;
 * - answer `close()` by releasing what it holds; a failing close is logged, never thrown.
 *
 * When a turn ends `cancelled` or `error` (or any way) after an assistant message with `toolCalls`
 * was stored, the manager appends, before `stream_stopped`, a `role: 'tool'` message for each call
 * without a result, saying it did not run. Whenever it loads a history for a turn it checks the same
 * invariant (every tool call has a result, no user message between a call and its result) and
 * repairs what a crash or a failed write left, persisted: a runtime never sees an invalid history.
 *
 * **Resuming after a restart.** A tool call waiting for confirmation is persisted with the session.
 * When the process that ran the turn is gone and the human answers, the manager starts a turn with
 * no user message and `turn.resume` set: the history ends with the assistant message whose calls
 * have no result, and `resume.decisions` holds the answer for each. A runtime that declares
 * {@link Runtime.canResume} MUST run the approved calls (without asking again), record the rejected
 * ones as results carrying the reason, and continue its loop. For a runtime without it the manager
 * records each call as not run, with the reason, and starts no turn.
 * The guide is `docs/writing-a-runtime.md`.
 */
import type { RuntimeEventInput } from './events.js';
import type { Message, Session, ToolCall } from './schemas.js';
import type { ResolvedSource } from './sources.js';
import type { TelemetrySpan } from './telemetry.js';

/** What the factory gets to make a session's runtime. */
export interface RuntimeInit {
  /** A copy of the session. */
  session: Session;
  /** The resolved agent source; undefined when the manager has no SourceResolver or the session no source. */
  source?: ResolvedSource;
  /** The agent in force. */
  agent?: string;
  /** Aborted when the runtime should shut down (delete, close, idle). */
  signal: AbortSignal;
}

/** A model a runtime can switch to. */
export interface ModelChoice {
  /** The model ref passed to `setModel`. */
  ref: string;
  /** A human-readable name. */
  name?: string;
  /** Set by `getAvailableModels`: whether this is the model in force. */
  current?: boolean;
}

/** A decision about a tool call. */
export type ToolDecision = { approved: true } | { approved: false; reason: string };

/** An answer to an elicitation. */
export type ElicitationResult = { action: 'accept'; content?: unknown } | { action: 'decline' | 'cancel' };

/** A request to authorise a tool call. */
export interface ToolAuthorizationRequest {
  toolCall: ToolCall;
  /** The tool only reads: the default policy approves it without asking. */
  readOnly?: boolean;
  /** The tool is safe: the `balanced` policy approves it without asking. */
  safe?: boolean;
}

/** A request for input from the human. */
export interface ElicitationRequest {
  message: string;
  /** A JSON schema of the expected content (form mode). */
  schema?: unknown;
  /** @default 'form' */
  mode?: 'form' | 'url';
  /** The URL to open (url mode). */
  url?: string;
}

/** A decision about one tool call that waited for approval when the turn that asked was gone. */
export interface ToolCallDecision {
  /** The call, as stored in the history's assistant message. */
  toolCall: ToolCall;
  /** The human's answer. */
  decision: ToolDecision;
}

/** An answer to an elicitation whose turn was gone when it was answered. */
export interface ElicitationAnswer {
  /** The elicitation's id. */
  elicitationId: string;
  /** What was asked. */
  request: ElicitationRequest;
  /** The human's answer. */
  result: ElicitationResult;
}

/**
 * What a resumed turn carries (see "Resuming after a restart" in the module documentation): the
 * answers to the requests the previous process left waiting.
 */
export interface TurnResumption {
  /** A decision per call of the history's last assistant message that waited for approval. */
  decisions: ToolCallDecision[];
  /** Answers to elicitations of the turn that was gone (absent when none). */
  elicitations?: ElicitationAnswer[];
}

/** What a runtime gets for one turn. */
export interface TurnContext {
  sessionId: string;
  turnId: string;
  /** Deeply frozen snapshot including this turn's user messages: shared, never copied. */
  session: Readonly<Session>;
  agent?: string;
  /** The model override in force, if any. */
  model?: string;
  /** Aborted on cancel, delete or close. */
  signal: AbortSignal;
  /**
   * Drains messages steered into this turn. Call it at safe points (after tool results); each
   * returned message is persisted and emitted as `user_message`. While an assistant message of this
   * turn has tool calls without a stored `role: 'tool'` result, it returns `[]` and the messages
   * stay queued (a user message between a call and its result is a history providers reject);
   * messages no call takes run as the next turn.
   */
  takeSteering(): Message[];
  /** Decides a tool call (deny → allow → ask → policy); may wait for a human. Rejects if the turn is cancelled. */
  authorizeToolCall(request: ToolAuthorizationRequest): Promise<ToolDecision>;
  /** Asks the human for input and waits for the answer. Rejects if the turn is cancelled. */
  elicit(request: ElicitationRequest): Promise<ElicitationResult>;
  /**
   * Set on a turn that resumes requests answered after a restart (only for a runtime with
   * {@link Runtime.canResume}); such a turn has no new user message.
   */
  resume?: TurnResumption;
  /**
   * The turn's `invoke_agent` span, when the manager has `telemetry`: open child spans of your own
   * with `span.startChild(name, attributes)` (the AI SDK runtime opens `execute_tool {tool}` per
   * tool call), and add what only the runtime knows with `span.setAttributes` (such as
   * `gen_ai.request.model` and `gen_ai.provider.name`). Undefined without telemetry.
   */
  span?: TelemetrySpan;
}

/** The agent loop of one session. */
export interface Runtime {
  /**
   * The runtime can resume a turn from `turn.resume` (tool calls approved or rejected after a
   * restart). Without it, the manager records such calls as not run. @default false
   */
  readonly canResume?: boolean;
  /** Runs one turn. */
  run(turn: TurnContext): AsyncIterable<RuntimeEventInput>;
  /** Switches (or with `undefined`, clears) the model of an agent. */
  setModel?(agent: string, modelRef: string | undefined): Promise<void>;
  /** The models an agent can use. */
  availableModels?(agent: string): Promise<ModelChoice[]>;
  /** Releases resources. */
  close?(): Promise<void>;
}

/** Makes a session's runtime. */
export type RuntimeFactory = (init: RuntimeInit) => Runtime | Promise<Runtime>;
