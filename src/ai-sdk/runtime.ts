/**
 * The tool loop: a {@link Runtime} over the AI SDK that drives one `streamText` call per step.
 *
 * A turn runs: history → model call (streamed) → the assistant message persisted → each tool call
 * authorised by `turn.authorizeToolCall`, run (or its rejection recorded), its result persisted →
 * steered messages taken → the next model call … until the model answers without tool calls
 * (`end_turn`), hits its output limit (`max_tokens`), is filtered (`refusal`), or the step limit is
 * reached (`max_turn_requests`). The SDK's own multi-step loop (`stopWhen`, tools with `execute`)
 * is not used: approval has to happen between the model's tool call and its execution, in our
 * manager, where a human may take minutes to answer.
 */
import {
  type AssistantModelMessage,
  asSchema,
  type CallSettings,
  type LanguageModel,
  type ModelMessage,
  streamText,
  type ToolChoice,
  type ToolSet,
} from 'ai';
import { InvalidArgumentError } from '../errors.js';
import type { RuntimeEventInput } from '../events.js';
import { newId } from '../internal/ids.js';
import type { Logger } from '../logger.js';
import { Attr } from '../manager/turn-tracing.js';
import type {
  ModelChoice,
  Runtime,
  RuntimeFactory,
  RuntimeInit,
  ToolDecision,
  TurnContext,
  TurnResumption,
} from '../runtime.js';
import type { Message, SessionItem, ToolCall } from '../schemas.js';
import type { ResolvedSource } from '../sources.js';
import { ModelCallError } from './errors.js';
import {
  convertItems,
  INTERRUPTED_TOOL_RESULT,
  parseArguments,
  type ToModelMessagesOptions,
} from './history.js';
import { type StepToolCall, streamStep } from './stream.js';
import {
  type AiSdkTools,
  modelToolSet,
  runTool,
  type ToolEntry,
  type ToolOutcome,
  toolEntries,
} from './tools.js';
import { type PriceTable, toMessageUsage, toTokenUsage } from './usage.js';

/** A selectable model with what the runtime reports about it. */
export interface ModelEntry {
  /** The AI SDK model (`openai('gpt-4o')`, a gateway id string, a `MockLanguageModelV3`…). */
  model: LanguageModel;
  /** A human-readable name for `availableModels`. */
  name?: string;
  /** The model's context window in tokens, reported as `contextLimit` with each step's usage. */
  contextLimit?: number;
}

/** What a system prompt function gets. */
export interface SystemPromptContext {
  /** The turn being answered (its session is frozen: read it, never change it). */
  turn: TurnContext;
  /** The agent in force (`'default'` when the session has none). */
  agent: string;
  /** The ref of the model this turn uses. */
  model: string;
  /** The resolved agent source the runtime was made for, if any. */
  source?: ResolvedSource;
}

/** What the per-step message hook gets. */
export interface PrepareMessagesContext {
  /** The messages this step would send: the whole visible history and this turn so far. */
  messages: ModelMessage[];
  /** The step: 0 for the turn's first model call. */
  step: number;
  /** The ref of the model this step calls. */
  model: string;
  /** The turn being answered. */
  turn: TurnContext;
}

/** Options of {@link createAiSdkRuntime}. Give `model`, or `models` (with an optional `defaultModel`). */
export interface AiSdkRuntimeOptions {
  /** The model, when there is one. Its ref (for prices and `turn_end` usage) is its model id. */
  model?: LanguageModel;
  /**
   * Selectable models by ref (`setSessionModel(id, ref)`, `getAvailableModels`): an AI SDK model,
   * or a {@link ModelEntry} with a name and context limit.
   */
  models?: Readonly<Record<string, LanguageModel | ModelEntry>>;
  /** The ref used when no override is in force. @default the first key of `models` */
  defaultModel?: string;
  /**
   * Resolves refs that are not in `models` (for example with the SDK's provider registry:
   * `(ref) => registry.languageModel(ref)`); return undefined for a ref you refuse. Without it,
   * only the refs of `models` can be selected.
   */
  resolveModel?: (ref: string) => LanguageModel | undefined;
  /** The system prompt: a string, or a function of the turn (may be async; undefined for none). */
  system?: string | ((context: SystemPromptContext) => string | undefined | Promise<string | undefined>);
  /** The tools: AI SDK `tool()` definitions by name, or `{ tool, readOnly, safe }` to mark them for our policies. */
  tools?: AiSdkTools;
  /** How many model calls one turn may make before it ends with `max_turn_requests`. @default 20 */
  maxSteps?: number;
  /** Passed to every model call as `providerOptions` (`{ openai: { … } }`, `{ anthropic: { … } }`). */
  providerOptions?: Parameters<typeof streamText>[0]['providerOptions'];
  /** Passed to every model call: `temperature`, `maxOutputTokens`, `maxRetries`, `headers`, `seed`… */
  callSettings?: Omit<CallSettings, 'abortSignal'>;
  /** Passed to every model call. @default 'auto' */
  toolChoice?: ToolChoice<ToolSet>;
  /**
   * Shapes the messages of each model call: trim to a context window, insert a summary, add
   * retrieved context. Runs before every step; what it returns is sent (not stored).
   */
  prepareMessages?: (context: PrepareMessagesContext) => ModelMessage[] | Promise<ModelMessage[]>;
  /** Prices by model ref, for the `cost` of each step's usage. No price, no cost: none is built in. */
  prices?: PriceTable;
  /** How history is converted (files, summaries): see {@link toModelMessages}. */
  history?: ToModelMessagesOptions;
  /**
   * Makes what every tool's `execute` gets as `experimental_context`, once per turn: hand tools the
   * turn's `elicit` to ask the human, or your own services. Tools get no context without it.
   *
   * @example
   * ```ts
   * toolContext: (turn) => ({ elicit: turn.elicit, sessionId: turn.sessionId })
   * ```
   */
  toolContext?: (turn: TurnContext) => unknown;
  /** Where the runtime logs (model errors at `debug`: they also end the turn). Nothing is printed by default. */
  logger?: Logger;
}

/**
 * Decisions about tool calls that were waiting for approval when the process stopped: the core
 * {@link TurnResumption} (`turn.resume`), kept under this name for code written against it.
 */
export type ToolCallResumption = TurnResumption;

/** A turn that may carry resumption decisions: the core {@link TurnContext} (kept as an alias). */
export type ResumableTurnContext = TurnContext;

const DEFAULT_MAX_STEPS = 20;

interface SelectableModel {
  ref: string;
  model: LanguageModel;
  name?: string;
  contextLimit?: number;
}

function isModelEntry(value: LanguageModel | ModelEntry): value is ModelEntry {
  return (
    typeof value === 'object' && value !== null && 'model' in value && !('specificationVersion' in value)
  );
}

function refOf(model: LanguageModel): string {
  return typeof model === 'string' ? model : model.modelId;
}

/**
 * `gen_ai.provider.name` of a model: the provider id's first part (`openai.chat` → `openai`), or
 * for a gateway id string the part before its `/`.
 */
function providerOf(model: LanguageModel): string | undefined {
  const provider =
    typeof model === 'string' ? (model.includes('/') ? model.split('/')[0] : undefined) : model.provider;
  return provider === undefined || provider === '' ? undefined : provider.split('.')[0];
}

function invalidOption(name: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid AI SDK runtime options: ${name} ${message}`, {
    issues: [{ path: [name], message }],
  });
}

/** Checks options once, when the factory is made: a mistake fails at startup, not in a turn. */
function validateOptions(options: AiSdkRuntimeOptions): Map<string, SelectableModel> {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'must be an object');
  const models = new Map<string, SelectableModel>();
  if (options.model !== undefined && options.models !== undefined) {
    throw invalidOption('model', 'and models cannot both be given');
  }
  if (options.model !== undefined) {
    models.set(refOf(options.model), { ref: refOf(options.model), model: options.model });
  }
  for (const [ref, value] of Object.entries(options.models ?? {})) {
    if (ref === '') throw invalidOption('models', 'cannot have an empty ref');
    const entry = isModelEntry(value) ? value : { model: value };
    models.set(ref, {
      ref,
      model: entry.model,
      ...(entry.name === undefined ? {} : { name: entry.name }),
      ...(entry.contextLimit === undefined ? {} : { contextLimit: entry.contextLimit }),
    });
  }
  if (models.size === 0) throw invalidOption('model', 'or models is required');
  if (options.defaultModel !== undefined && !models.has(options.defaultModel)) {
    throw invalidOption('defaultModel', `${JSON.stringify(options.defaultModel)} is not a key of models`);
  }
  const maxSteps = options.maxSteps;
  if (maxSteps !== undefined && (!Number.isInteger(maxSteps) || maxSteps < 1)) {
    throw invalidOption('maxSteps', 'must be a positive integer');
  }
  for (const [name, entry] of toolEntries(options.tools)) {
    if (typeof entry.tool !== 'object' || entry.tool === null || !('inputSchema' in entry.tool)) {
      throw invalidOption('tools', `${JSON.stringify(name)} is not an AI SDK tool (it has no inputSchema)`);
    }
  }
  return models;
}

/** A tool call of the history that has no result yet (the last assistant message's calls). */
function pendingToolCalls(items: readonly SessionItem[]): ToolCall[] {
  const answered = new Set<string>();
  for (let index = items.length - 1; index >= 0; index--) {
    const item = items[index];
    if (item?.kind !== 'message') continue;
    const message = item.message;
    if (message.role === 'tool') {
      if (message.toolCallId !== undefined) answered.add(message.toolCallId);
      continue;
    }
    if (message.role !== 'assistant') return [];
    return (message.toolCalls ?? []).filter((call) => !answered.has(call.id));
  }
  return [];
}

/**
 * The AI SDK runtime of one session. Most hosts use {@link createAiSdkRuntime}; construct this
 * directly in a factory of your own (for example one that picks tools from `init.source`).
 */
export class AiSdkRuntime implements Runtime {
  /** Runs the calls a resumed turn (`turn.resume`) approves and records the rejected ones. */
  readonly canResume = true;
  readonly #options: AiSdkRuntimeOptions;
  readonly #models: Map<string, SelectableModel>;
  readonly #defaultRef: string;
  readonly #tools: Map<string, ToolEntry>;
  readonly #toolSet: ToolSet;
  readonly #source: ResolvedSource | undefined;
  /** The model per agent, set by `setModel` (the manager also hands the override as `turn.model`). */
  readonly #selected = new Map<string, string>();

  /** Checks `options` (as {@link createAiSdkRuntime} does); `init` is what the manager's factory call got. */
  constructor(options: AiSdkRuntimeOptions, init?: RuntimeInit) {
    this.#models = validateOptions(options);
    this.#options = options;
    this.#defaultRef = options.defaultModel ?? [...this.#models.keys()][0]!;
    this.#tools = toolEntries(options.tools);
    this.#toolSet = modelToolSet(this.#tools);
    this.#source = init?.source;
  }

  /** Resolves a ref to its model; throws for a ref the runtime does not know. */
  #model(ref: string): SelectableModel {
    const known = this.#models.get(ref);
    if (known) return known;
    const resolved = this.#options.resolveModel?.(ref);
    if (resolved === undefined) {
      throw new InvalidArgumentError(
        `unknown model ${JSON.stringify(ref)}; available: ${[...this.#models.keys()].join(', ')}`,
        { issues: [{ path: ['modelRef'], message: 'not in models, and not accepted by resolveModel' }] },
      );
    }
    return { ref, model: resolved };
  }

  /**
   * Selects a model for an agent (`undefined`: back to the default). Rejects with
   * `INVALID_ARGUMENT` for a ref that is neither in `models` nor accepted by `resolveModel`, so the
   * manager refuses the switch and changes nothing.
   */
  async setModel(agent: string, modelRef: string | undefined): Promise<void> {
    if (modelRef === undefined) {
      this.#selected.delete(agent);
      return;
    }
    this.#model(modelRef);
    this.#selected.set(agent, modelRef);
  }

  /** The refs of `models` with their names (refs `resolveModel` accepts are not listable). */
  async availableModels(): Promise<ModelChoice[]> {
    return [...this.#models.values()].map((entry) => ({
      ref: entry.ref,
      ...(entry.name === undefined ? {} : { name: entry.name }),
    }));
  }

  /**
   * Runs one turn: the tool loop described in the module's header. Uses `turn.model`, else the
   * agent's `setModel` choice, else the default model; ends with `turn_end` when it stops for
   * another reason than an answer; rejects with the signal's reason when cancelled and with a
   * {@link ModelCallError} when the provider fails.
   */
  async *run(turn: ResumableTurnContext): AsyncIterable<RuntimeEventInput> {
    const agent = turn.agent ?? 'default';
    const selected = this.#model(turn.model ?? this.#selected.get(agent) ?? this.#defaultRef);
    const options = this.#options;
    const price = options.prices?.[selected.ref];
    const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
    turn.span?.setAttributes({
      [Attr.requestModel]: selected.ref,
      [Attr.providerName]: providerOf(selected.model),
    });
    // The turn's view of history: the session's items (shared, not copied) and what this turn adds.
    const items: SessionItem[] = [...turn.session.items];
    const native = new Map<string, AssistantModelMessage>();
    const system =
      typeof options.system === 'function'
        ? await options.system({
            turn,
            agent,
            model: selected.ref,
            ...(this.#source === undefined ? {} : { source: this.#source }),
          })
        : options.system;

    const toolContext = options.toolContext?.(turn);
    const record = (message: Message): RuntimeEventInput => {
      items.push({ kind: 'message', message });
      return { type: 'message_added', message };
    };

    if (turn.resume && turn.resume.decisions.length > 0) {
      const pending = pendingToolCalls(items);
      const messages = convertItems(items, options.history, native);
      for (const call of pending) {
        const answer = turn.resume.decisions.find((entry) => entry.toolCall.id === call.id);
        if (!answer) {
          // No decision for it: recorded as interrupted, so the stored history is valid again.
          yield* this.#result(call, { content: INTERRUPTED_TOOL_RESULT, isError: true }, record);
          continue;
        }
        const input = parseArguments(call.arguments);
        // Arguments read back from the record have not been through the tool's schema yet.
        yield* this.#answerToolCall(turn, { toolCall: call, input }, answer.decision, {
          messages,
          record,
          toolContext,
          validate: true,
        });
      }
      for (const message of turn.takeSteering()) items.push({ kind: 'message', message });
    }

    for (let step = 0; ; step++) {
      if (step >= maxSteps) {
        yield { type: 'turn_end', reason: 'max_turn_requests' };
        return;
      }
      turn.signal.throwIfAborted();
      let messages = convertItems(items, options.history, native);
      if (options.prepareMessages) {
        messages = await options.prepareMessages({ messages, step, model: selected.ref, turn });
      }
      const result = streamText({
        ...options.callSettings,
        model: selected.model,
        ...(system === undefined ? {} : { system }),
        messages,
        // Stored system messages are the host's own records, not user input.
        allowSystemInMessages: true,
        ...(this.#tools.size === 0 ? {} : { tools: this.#toolSet }),
        ...(options.toolChoice === undefined ? {} : { toolChoice: options.toolChoice }),
        ...(options.providerOptions === undefined ? {} : { providerOptions: options.providerOptions }),
        abortSignal: turn.signal,
        // The SDK prints stream errors unless told otherwise; they reach the turn as its error.
        onError: ({ error }) =>
          options.logger?.debug('AI SDK model call failed', { sessionId: turn.sessionId, error }),
      });
      const outcome = yield* streamStep(result, { modelRef: selected.ref, signal: turn.signal });

      const usage =
        outcome.usage === undefined
          ? undefined
          : toTokenUsage(outcome.usage, { ref: selected.ref, price, contextLimit: selected.contextLimit });
      if (usage) yield { type: 'token_usage', usage };

      const toolCalls = outcome.toolCalls.map((call) => call.toolCall);
      if (
        outcome.text !== '' ||
        outcome.reasoning !== '' ||
        outcome.parts.length > 0 ||
        toolCalls.length > 0
      ) {
        const message: Message = {
          id: newId('msg'),
          role: 'assistant',
          content: outcome.text,
          ...(outcome.reasoning === '' ? {} : { reasoning: outcome.reasoning }),
          ...(outcome.parts.length === 0 ? {} : { parts: outcome.parts }),
          ...(toolCalls.length === 0 ? {} : { toolCalls }),
          ...(turn.agent === undefined ? {} : { agent: turn.agent }),
          model: selected.ref,
          ...(usage === undefined ? {} : { usage: toMessageUsage(usage) }),
          createdAt: new Date().toISOString(),
        };
        if (outcome.response) native.set(message.id, outcome.response);
        yield record(message);
      }

      const stopped =
        outcome.finishReason === 'length'
          ? 'max_tokens'
          : outcome.finishReason === 'content-filter'
            ? 'refusal'
            : undefined;
      if (outcome.finishReason === 'error') {
        throw new ModelCallError(selected.ref, 'the response ended with finish reason "error"');
      }
      if (stopped !== undefined) {
        // A response cut off or filtered: its tool calls may be incomplete, so none runs.
        for (const call of outcome.toolCalls) {
          yield* this.#result(
            call.toolCall,
            {
              content: `The tool did not run: the response ${stopped === 'max_tokens' ? 'reached the output token limit' : 'was filtered'} before it was complete.`,
              isError: true,
            },
            record,
          );
        }
        yield { type: 'turn_end', reason: stopped };
        return;
      }
      if (outcome.toolCalls.length === 0) return;

      for (const call of outcome.toolCalls) {
        if (call.invalid !== undefined) {
          yield* this.#result(call.toolCall, { content: call.invalid, isError: true }, record);
          continue;
        }
        const entry = this.#tools.get(call.toolCall.name);
        const decision = await turn.authorizeToolCall({
          toolCall: call.toolCall,
          ...(entry?.readOnly === undefined ? {} : { readOnly: entry.readOnly }),
          ...(entry?.safe === undefined ? {} : { safe: entry.safe }),
        });
        yield* this.#answerToolCall(turn, call, decision, { messages, record, toolContext, validate: false });
      }
      // A safe point: every call has its result. Steered messages join the conversation.
      for (const message of turn.takeSteering()) items.push({ kind: 'message', message });
    }
  }

  /** Runs an approved call or records a rejected one. */
  async *#answerToolCall(
    turn: TurnContext,
    call: Pick<StepToolCall, 'toolCall' | 'input'>,
    decision: ToolDecision,
    context: {
      messages: ModelMessage[];
      record: (message: Message) => RuntimeEventInput;
      toolContext: unknown;
      /** Check the input against the tool's schema (arguments read back from a record). */
      validate: boolean;
    },
  ): AsyncGenerator<RuntimeEventInput, void> {
    const { toolCall } = call;
    const { messages, record, toolContext, validate } = context;
    if (!decision.approved) {
      yield* this.#result(
        toolCall,
        { content: `The tool did not run: ${decision.reason}`, isError: true },
        record,
      );
      return;
    }
    const entry = this.#tools.get(toolCall.name);
    if (!entry) {
      yield* this.#result(
        toolCall,
        { content: `Unknown tool ${JSON.stringify(toolCall.name)}.`, isError: true },
        record,
      );
      return;
    }
    const input = validate
      ? await this.#validInput(entry, call.input)
      : ({ valid: true, value: call.input } as const);
    if (!input.valid) {
      yield* this.#result(toolCall, { content: input.error, isError: true }, record);
      return;
    }
    // The `execute_tool` span of the GenAI conventions, under the turn's span (when traced). A turn
    // cancelled mid-tool ends it without an error, also when the manager closes this generator.
    const span = turn.span?.startChild(`execute_tool ${toolCall.name}`, {
      [Attr.operationName]: 'execute_tool',
      [Attr.toolName]: toolCall.name,
      [Attr.toolCallId]: toolCall.id,
      [Attr.toolType]: 'function',
      'gen_ai.tool.description': entry.tool.description,
    });
    let outcome: ToolOutcome | undefined;
    let failure: { error: unknown } | undefined;
    try {
      outcome = yield* runTool({
        name: toolCall.name,
        tool: entry.tool,
        toolCallId: toolCall.id,
        input: input.value,
        messages,
        signal: turn.signal,
        ...(toolContext === undefined ? {} : { context: toolContext }),
      });
    } catch (error) {
      if (!turn.signal.aborted) failure = { error };
      throw error;
    } finally {
      span?.end(
        failure ??
          (outcome?.isError ? { error: new Error(outcome.content), errorType: 'tool_error' } : undefined),
      );
    }
    yield* this.#result(toolCall, outcome, record);
  }

  /** Validates a call's input against its tool's schema (the SDK did it for calls it parsed). */
  async #validInput(
    entry: ToolEntry,
    input: unknown,
  ): Promise<{ valid: true; value: unknown } | { valid: false; error: string }> {
    const schema = asSchema(entry.tool.inputSchema);
    if (!schema.validate) return { valid: true, value: input };
    const result = await schema.validate(input);
    return result.success
      ? { valid: true, value: result.value }
      : { valid: false, error: `Invalid input for the tool: ${result.error.message}` };
  }

  /** Emits a tool call's result and persists it as a tool message. */
  async *#result(
    toolCall: ToolCall,
    outcome: ToolOutcome,
    record: (message: Message) => RuntimeEventInput,
  ): AsyncGenerator<RuntimeEventInput, void> {
    yield {
      type: 'tool_call_response',
      toolCallId: toolCall.id,
      response: outcome.content,
      ...(outcome.isError ? { isError: true } : {}),
    };
    yield record({
      id: newId('msg'),
      role: 'tool',
      content: outcome.content,
      ...(outcome.parts === undefined ? {} : { parts: outcome.parts }),
      toolCallId: toolCall.id,
      toolName: toolCall.name,
      ...(outcome.isError ? { isError: true } : {}),
      createdAt: new Date().toISOString(),
    });
  }
}

/**
 * Makes the runtime factory of an AI SDK agent: pass it to `new SessionManager({ runtime })`.
 * Options are checked at once (a missing model, an unknown `defaultModel`, a tool without a schema
 * throw `INVALID_ARGUMENT` here, not in a turn).
 *
 * @example
 * ```ts
 * const manager = new SessionManager({
 *   runtime: createAiSdkRuntime({ model: openai('gpt-4o-mini'), tools: { weather } }),
 * });
 * ```
 */
export function createAiSdkRuntime(options: AiSdkRuntimeOptions): RuntimeFactory {
  validateOptions(options);
  return (init) => new AiSdkRuntime(options, init);
}
