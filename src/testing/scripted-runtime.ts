/**
 * `ScriptedRuntime`: a deterministic fake {@link Runtime} for tests (the Runtime contract: src/runtime.ts).
 *
 * A test scripts what the agent does, turn by turn, hands `scripted.factory` to the manager, and then
 * asserts what the manager gave the agent (inits, turn contexts, tool decisions, elicitation answers,
 * steered messages, model switches, closes). It never imports a test framework and uses no timers:
 * every wait is on a promise that the test or the manager settles.
 */
import type { RuntimeEvent, TokenUsage } from '../events.js';
import { newId } from '../internal/ids.js';
import type {
  ElicitationRequest,
  ElicitationResult,
  ModelChoice,
  Runtime,
  RuntimeInit,
  ToolAuthorizationRequest,
  ToolDecision,
  TurnContext,
} from '../runtime.js';
import type { JsonObject, JsonValue, Message, Session, ToolCall } from '../schemas.js';

const SCRIPT_STEP: unique symbol = Symbol.for('agent-sessions.ScriptStep');

interface StepBrand {
  /** Marks a directive, so it is never mistaken for (or yielded as) a runtime event. */
  readonly [SCRIPT_STEP]: true;
}

/** Pauses the turn until {@link ScriptedRuntime.release}. */
export interface HoldStep extends StepBrand {
  readonly kind: 'hold';
  /** `undefined` for an unnamed hold. */
  readonly name: string | undefined;
}

/** Options of {@link step.authorize}. */
export interface AuthorizeStepOptions {
  /** Passed to `authorizeToolCall` as is. */
  readOnly?: boolean;
  /** Passed to `authorizeToolCall` as is. */
  safe?: boolean;
  /**
   * The tool's result when the call is approved.
   * @default 'ok'
   */
  result?: string;
  /**
   * Whether to yield the `message_added` pair (the assistant message with `toolCalls` before the
   * authorisation, the `role: 'tool'` message after) that keeps the stored history valid.
   * @default true
   */
  messages?: boolean;
}

/** Asks the manager to authorise a tool call, then reports the tool's result. */
export interface AuthorizeStep extends StepBrand {
  readonly kind: 'authorize';
  /** The complete call (an id is generated when the script gives none). */
  readonly toolCall: ToolCall;
  readonly options: Readonly<AuthorizeStepOptions>;
}

/** Asks the human for input through `ctx.elicit`. */
export interface ElicitStep extends StepBrand {
  readonly kind: 'elicit';
  readonly request: ElicitationRequest;
}

/** Drains steered messages through `ctx.takeSteering()`. */
export interface TakeSteeringStep extends StepBrand {
  readonly kind: 'take_steering';
}

/** Makes `run()` throw. */
export interface FailStep extends StepBrand {
  readonly kind: 'fail';
  readonly error: unknown;
}

/** Options of {@link step.reply} and {@link ScriptedRuntime.reply}. */
export interface ReplyOptions {
  /**
   * The `agent_choice` deltas to stream. They are yielded as given (they need not add up to the
   * text); by default the text is split after each run of whitespace ("Hello there" → "Hello ",
   * "there"). An empty text yields no delta.
   */
  deltas?: readonly string[];
  /** When given, a `token_usage` event with it follows the message. */
  usage?: TokenUsage;
  /** Fields merged over the generated assistant message (`id`, `createdAt`, `agent`, …). */
  message?: Partial<Message>;
}

/** Streams a text answer and adds it as an assistant message. */
export interface ReplyStep extends StepBrand {
  readonly kind: 'reply';
  readonly text: string;
  readonly options: Readonly<ReplyOptions>;
}

/** Yields a value as is, even if it is not a valid event (for tests of the manager's validation). */
export interface RawStep extends StepBrand {
  readonly kind: 'raw';
  readonly value: unknown;
}

/** A scripted directive: everything in a script that is not a plain runtime event. */
export type ScriptDirective =
  | HoldStep
  | AuthorizeStep
  | ElicitStep
  | TakeSteeringStep
  | FailStep
  | ReplyStep
  | RawStep;

/** One entry of a scripted turn: a runtime event, yielded as is, or a {@link ScriptDirective}. */
export type ScriptStep = RuntimeEvent | ScriptDirective;

/** A tool call as a script may write it: `id` is generated and `arguments` defaults to `'{}'`. */
export interface ToolCallInput {
  id?: string;
  name: string;
  /** JSON text, or an object that is serialised with `JSON.stringify`. @default '{}' */
  arguments?: string | JsonObject;
}

function brand<T extends object>(value: T): T & StepBrand {
  return Object.freeze({ ...value, [SCRIPT_STEP]: true as const });
}

/** True for a {@link ScriptDirective} made by {@link step}. */
export function isScriptDirective(value: unknown): value is ScriptDirective {
  return typeof value === 'object' && value !== null && (value as Partial<StepBrand>)[SCRIPT_STEP] === true;
}

/**
 * Constructors of the {@link ScriptDirective}s a scripted turn may hold besides runtime events.
 *
 * ```ts
 * scripted.turn([
 *   step.authorize({ name: 'shell', arguments: { cmd: 'ls' } }, { readOnly: true }),
 *   step.hold('after-tool'),
 *   step.takeSteering(),
 *   step.reply('Done.'),
 * ]);
 * ```
 */
export const step = {
  /**
   * Pauses the turn until {@link ScriptedRuntime.release} releases it; {@link ScriptedRuntime.waitUntilHeld}
   * resolves when the turn gets here. If the turn's `signal` aborts while held, `run()` throws
   * `signal.reason` (like a real runtime whose request was aborted).
   */
  hold(name?: string): HoldStep {
    return brand({ kind: 'hold' as const, name });
  },

  /**
   * A tool call that asks for authorisation. The turn yields, in order:
   * 1. `message_added` with an assistant message `{ content: '', toolCalls: [toolCall] }`;
   * 2. `tool_call`;
   * then awaits `ctx.authorizeToolCall({ toolCall, readOnly?, safe? })` (recorded in
   * {@link TurnRecord.decisions}; a rejection of the wait, e.g. on cancel, is thrown out of `run()`), then:
   * 3. `tool_call_response`: approved → `options.result` (default `'ok'`); rejected → the reason with
   *    `isError: true`;
   * 4. `message_added` with a `role: 'tool'` message carrying `toolCallId` and the same text.
   *
   * `options.messages: false` leaves out 1 and 4.
   */
  authorize(toolCall: ToolCallInput, options: AuthorizeStepOptions = {}): AuthorizeStep {
    const complete: ToolCall = {
      id: toolCall.id ?? newId('call'),
      name: toolCall.name,
      arguments:
        toolCall.arguments === undefined
          ? '{}'
          : typeof toolCall.arguments === 'string'
            ? toolCall.arguments
            : JSON.stringify(toolCall.arguments),
    };
    return brand({ kind: 'authorize' as const, toolCall: complete, options: { ...options } });
  },

  /**
   * Awaits `ctx.elicit(request)`, records the answer in {@link TurnRecord.elicitations} and yields
   * `custom` `{ name: 'elicitation_result', data: answer }` (the answer as given: content that is
   * not JSON makes that event invalid).
   */
  elicit(request: ElicitationRequest): ElicitStep {
    return brand({ kind: 'elicit' as const, request });
  },

  /**
   * Calls `ctx.takeSteering()`, records what it returned in {@link TurnRecord.steered} and yields
   * `custom` `{ name: 'steering_taken', data: { count } }`.
   */
  takeSteering(): TakeSteeringStep {
    return brand({ kind: 'take_steering' as const });
  },

  /** Throws `error` out of `run()` at this point. */
  fail(error: unknown): FailStep {
    return brand({ kind: 'fail' as const, error });
  },

  /**
   * Yields `agent_choice` deltas of `text`, then `message_added` with a complete assistant message
   * (id and `createdAt` generated when the step runs), then `token_usage` if `options.usage` is given.
   */
  reply(text: string, options: ReplyOptions = {}): ReplyStep {
    return brand({ kind: 'reply' as const, text, options: { ...options } });
  },

  /** Yields `value` unchanged, valid or not: the manager validates runtime events, the script does not. */
  raw(value: unknown): RawStep {
    return brand({ kind: 'raw' as const, value });
  },
};

/** A turn written as a function of its context; it may yield runtime events and directives alike. */
export type ScriptedTurnFunction = (turn: TurnContext) => AsyncIterable<ScriptStep> | Iterable<ScriptStep>;

/** Options of {@link ScriptedRuntime.turn}. */
export interface ScriptedTurnOptions {
  /** Script the turn for this session only. A session's own turns are taken before the shared queue. */
  sessionId?: string;
  /** How the turn is named in failures (e.g. by {@link ScriptedRuntime.assertConsumed}). */
  label?: string;
  /** For a failing turn (`turn(error)`): what it does before it throws. */
  before?: readonly ScriptStep[];
}

/** Options of {@link ScriptedRuntime.reply}. */
export interface ScriptedReplyOptions extends ReplyOptions {
  sessionId?: string;
  label?: string;
}

/** Options of {@link ScriptedRuntime}. */
export interface ScriptedRuntimeOptions {
  /**
   * What `availableModels(agent)` returns (a fresh copy per call), or a function of the agent. When
   * omitted, the runtimes have no `availableModels` method.
   */
  models?: readonly ModelChoice[] | ((agent: string) => readonly ModelChoice[]);
  /**
   * Whether the runtimes implement `setModel`. With `false` they have no `setModel` property at
   * all, so the manager refuses model overrides.
   * @default true
   */
  modelSwitching?: boolean;
}

/** The runtime made for one session by {@link ScriptedRuntime.factory}. */
export interface ScriptedSessionRuntime extends Runtime {
  /** Position among the runtimes the factory made, from 0. */
  readonly index: number;
  readonly sessionId: string;
  /** What the factory was given for this runtime. */
  readonly init: RuntimeInit;
  /** True once `close()` was called (even if it rejected). */
  readonly closed: boolean;
  close(): Promise<void>;
}

/** How a recorded turn ended; `running` until `run()`'s iterable finishes. */
export type TurnOutcome = 'running' | 'completed' | 'threw' | 'stopped';

/** What the manager handed the runtime for one `run()` call, and what came of it. */
export interface TurnRecord {
  readonly sessionId: string;
  readonly turnId: string;
  /** The run of this session, from 1 (counted across its runtimes). */
  readonly turnNumber: number;
  readonly agent: string | undefined;
  readonly model: string | undefined;
  /** The session's message items at turn start: a new array of the session's own (frozen) messages. */
  readonly messages: readonly Message[];
  /** The frozen session the manager passed (the same reference, never copied). */
  readonly session: Readonly<Session>;
  readonly signal: AbortSignal;
  readonly runtime: ScriptedSessionRuntime;
  /** The label of the scripted turn that ran, or `undefined` when none was scripted. */
  readonly label: string | undefined;
  /** Each `authorizeToolCall` answer, in order. */
  readonly decisions: readonly ToolDecision[];
  /** Each `elicit` answer, in order. */
  readonly elicitations: readonly ElicitationResult[];
  /** What each `takeSteering()` call returned, in order (empty arrays included). */
  readonly steered: readonly (readonly Message[])[];
  /** True when `signal` aborted while the turn ran (or was already aborted when it started). */
  readonly aborted: boolean;
  readonly outcome: TurnOutcome;
  /** What `run()` threw, when `outcome` is `threw`. */
  readonly error?: unknown;
}

/** A recorded `setModel` call. */
export interface SetModelCall {
  readonly sessionId: string;
  readonly agent: string;
  readonly modelRef: string | undefined;
  /** Set when the call rejected (see {@link ScriptedRuntime.failNextSetModel}). */
  readonly error?: unknown;
}

/** A recorded `availableModels` call. */
export interface AvailableModelsCall {
  readonly sessionId: string;
  readonly agent: string;
}

/** A recorded `close` call. */
export interface CloseCall {
  readonly sessionId: string;
  readonly runtime: ScriptedSessionRuntime;
  /** Set when the call rejected (see {@link ScriptedRuntime.failNextClose}). */
  readonly error?: unknown;
}

/** A turn currently paused at a {@link step.hold}. */
export interface HeldInfo {
  readonly name: string | undefined;
  readonly sessionId: string;
  readonly turnId: string;
}

/** Which holds {@link ScriptedRuntime.waitUntilHeld} and {@link ScriptedRuntime.release} mean. */
export interface HoldMatchOptions {
  /** Only holds of this session. */
  sessionId?: string;
}

type ScriptBody =
  | { kind: 'steps'; steps: readonly ScriptStep[] }
  | { kind: 'function'; run: ScriptedTurnFunction }
  | { kind: 'error'; error: unknown; before: readonly ScriptStep[] };

interface ScriptedTurn {
  body: ScriptBody;
  label: string;
  sessionId: string | undefined;
}

interface ActiveHold extends HeldInfo {
  release(): void;
}

interface HeldWaiter {
  name: string | undefined;
  sessionId: string | undefined;
  resolve(info: HeldInfo): void;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };
type MutableTurnRecord = Writable<Omit<TurnRecord, 'decisions' | 'elicitations' | 'steered'>> & {
  decisions: ToolDecision[];
  elicitations: ElicitationResult[];
  steered: Message[][];
};

function matches(hold: HeldInfo, name: string | undefined, sessionId: string | undefined): boolean {
  return (
    (name === undefined || hold.name === name) && (sessionId === undefined || hold.sessionId === sessionId)
  );
}

function describeHold(hold: HeldInfo): string {
  const name = hold.name === undefined ? 'unnamed hold' : `hold ${JSON.stringify(hold.name)}`;
  return `${name} in turn ${hold.turnId} of session ${hold.sessionId}`;
}

function describeBody(body: ScriptBody): string {
  switch (body.kind) {
    case 'steps': {
      const first = body.steps[0];
      if (body.steps.length === 1 && isScriptDirective(first) && first.kind === 'reply') {
        return `reply ${JSON.stringify(first.text.length > 40 ? `${first.text.slice(0, 40)}…` : first.text)}`;
      }
      return `${body.steps.length} step(s)`;
    }
    case 'function':
      return `function ${body.run.name || '(anonymous)'}`;
    case 'error':
      return `error ${body.error instanceof Error ? JSON.stringify(body.error.message) : String(body.error)}`;
  }
}

function splitDeltas(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/**
 * A deterministic fake {@link Runtime}: scripted turns in, recorded calls out.
 *
 * Turns are scripted in advance and taken first-in first-out by `run()`: a session's own turns
 * (`{ sessionId }`) before the shared queue. A turn is a list of {@link ScriptStep}s (runtime events
 * yielded in order, and {@link step} directives), a function of the {@link TurnContext}, or an error
 * that `run()` throws. Events are passed through as given, even invalid ones: the manager validates
 * what a runtime yields, and its tests rely on that. Between events the turn checks `ctx.signal`
 * and, once it is aborted, throws `signal.reason`.
 *
 * Every session gets its own runtime object from {@link factory}; they share the script and the
 * records. Everything unexpected fails loudly: a `run()` with no scripted turn throws (and is
 * reported again by {@link assertConsumed}, in case the manager swallowed it as an `error` event).
 *
 * ```ts
 * import { ScriptedRuntime, step } from 'agent-sessions/testing';
 *
 * const scripted = new ScriptedRuntime({ models: [{ ref: 'openai/gpt-5' }] });
 * const manager = new SessionManager({ runtime: scripted.factory });
 *
 * scripted.turn([step.authorize({ name: 'shell', arguments: { cmd: 'ls' } }), step.hold('tool-done')]);
 * scripted.reply('All done.', { usage: { inputTokens: 10, outputTokens: 3 } });
 *
 * const session = await manager.createSession();
 * const stream = await manager.runSession(session.id, { messages: ['list files'] });
 * const held = await scripted.waitUntilHeld('tool-done');
 * scripted.release('tool-done');
 * // … consume the stream, then:
 * expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
 * scripted.assertConsumed(); // e.g. in afterEach
 * ```
 */
export class ScriptedRuntime {
  /** Every `RuntimeInit` the factory was called with, in order (failed calls included), as given. */
  readonly inits: RuntimeInit[] = [];
  /** Every runtime the factory made, in order. */
  readonly runtimes: ScriptedSessionRuntime[] = [];
  /** One record per `run()` call, in order. */
  readonly turns: TurnRecord[] = [];
  /** Every `setModel` call, in order (failed calls included, with `error`). */
  readonly setModelCalls: SetModelCall[] = [];
  /** Every `availableModels` call, in order. */
  readonly availableModelsCalls: AvailableModelsCall[] = [];
  /** Every `close` call, in order (failed calls included, with `error`). */
  readonly closeCalls: CloseCall[] = [];

  readonly #models: ScriptedRuntimeOptions['models'];
  readonly #modelSwitching: boolean;
  readonly #shared: ScriptedTurn[] = [];
  readonly #perSession = new Map<string, ScriptedTurn[]>();
  readonly #turnCounts = new Map<string, number>();
  readonly #held: ActiveHold[] = [];
  #heldWaiters: HeldWaiter[] = [];
  readonly #factoryFailures: unknown[] = [];
  readonly #setModelFailures: unknown[] = [];
  readonly #closeFailures: unknown[] = [];
  readonly #unexpected: string[] = [];
  readonly #currentModels = new Map<string, string>();

  constructor(options: ScriptedRuntimeOptions = {}) {
    this.#models = options.models;
    this.#modelSwitching = options.modelSwitching ?? true;
  }

  /**
   * The {@link RuntimeFactory} to give the manager. Each call records its init and resolves to a new
   * {@link ScriptedSessionRuntime}, or rejects once per {@link failNextFactory}.
   */
  readonly factory = async (init: RuntimeInit): Promise<ScriptedSessionRuntime> => {
    this.inits.push(init);
    if (this.#factoryFailures.length > 0) throw this.#factoryFailures.shift();
    const runtime = this.#makeRuntime(init);
    this.runtimes.push(runtime);
    return runtime;
  };

  /** The number of runtimes whose `close()` was called. */
  get closed(): number {
    return this.runtimes.filter((runtime) => runtime.closed).length;
  }

  /** The number of scripted turns not taken yet (shared and per session). */
  get remaining(): number {
    let count = this.#shared.length;
    for (const queue of this.#perSession.values()) count += queue.length;
    return count;
  }

  /** The turns currently paused at a hold, oldest first. */
  get held(): HeldInfo[] {
    return this.#held.map(({ name, sessionId, turnId }) => ({ name, sessionId, turnId }));
  }

  /**
   * Scripts one turn, after those already scripted:
   * - an array of {@link ScriptStep}s, run in order;
   * - a function of the {@link TurnContext} returning an (async) iterable of steps, e.g. an async
   *   generator; its `ctx` records `authorizeToolCall`, `elicit` and `takeSteering` calls like the
   *   steps do;
   * - an error (anything not an array or a function): `run()` throws it, after running
   *   `options.before`.
   *
   * @returns this, to chain.
   * @throws TypeError when `options.before` is given for a turn that is not an error.
   */
  turn(
    script: readonly ScriptStep[] | ScriptedTurnFunction | Error,
    options: ScriptedTurnOptions = {},
  ): this {
    let body: ScriptBody;
    if (Array.isArray(script)) body = { kind: 'steps', steps: [...(script as readonly ScriptStep[])] };
    else if (typeof script === 'function') body = { kind: 'function', run: script as ScriptedTurnFunction };
    else body = { kind: 'error', error: script, before: [...(options.before ?? [])] };
    if (body.kind !== 'error' && options.before !== undefined) {
      throw new TypeError('ScriptedRuntime.turn: `before` applies only to a failing turn (an error)');
    }
    const scripted: ScriptedTurn = {
      body,
      label: options.label ?? describeBody(body),
      sessionId: options.sessionId,
    };
    if (options.sessionId === undefined) this.#shared.push(scripted);
    else {
      const queue = this.#perSession.get(options.sessionId);
      if (queue) queue.push(scripted);
      else this.#perSession.set(options.sessionId, [scripted]);
    }
    return this;
  }

  /**
   * Scripts a turn that answers `text`: see {@link step.reply}.
   * @returns this, to chain.
   */
  reply(text: string, options: ScriptedReplyOptions = {}): this {
    const { sessionId, label, ...replyOptions } = options;
    const turnOptions: ScriptedTurnOptions = {};
    if (sessionId !== undefined) turnOptions.sessionId = sessionId;
    if (label !== undefined) turnOptions.label = label;
    return this.turn([step.reply(text, replyOptions)], turnOptions);
  }

  /** Makes the next factory call reject with `error` (each call queues one failure). */
  failNextFactory(error: unknown): this {
    this.#factoryFailures.push(error);
    return this;
  }

  /** Makes the next `setModel` call, on any runtime, reject with `error` (each call queues one failure). */
  failNextSetModel(error: unknown): this {
    this.#setModelFailures.push(error);
    return this;
  }

  /**
   * Makes the next `close` call, on any runtime, reject with `error` (each call queues one failure).
   * The runtime still counts as closed.
   */
  failNextClose(error: unknown): this {
    this.#closeFailures.push(error);
    return this;
  }

  /** The model last set by a successful `setModel(agent, ref)` on a runtime of `sessionId`, if any. */
  currentModel(sessionId: string, agent: string): string | undefined {
    return this.#currentModels.get(JSON.stringify([sessionId, agent]));
  }

  /** The recorded turns of one session, in order. */
  turnsOf(sessionId: string): TurnRecord[] {
    return this.turns.filter((turn) => turn.sessionId === sessionId);
  }

  /**
   * Resolves when a turn is paused at a matching hold: at once (on a microtask) if one already is,
   * else when one gets there. Without `name`, any hold matches.
   */
  waitUntilHeld(name?: string, options: HoldMatchOptions = {}): Promise<HeldInfo> {
    const held = this.#held.find((hold) => matches(hold, name, options.sessionId));
    if (held) return Promise.resolve({ name: held.name, sessionId: held.sessionId, turnId: held.turnId });
    return new Promise((resolve) => {
      this.#heldWaiters.push({ name, sessionId: options.sessionId, resolve });
    });
  }

  /**
   * Lets every turn currently paused at a matching hold go on. Without `name`, every hold matches.
   * A release never carries over to a hold reached later: wait for it with {@link waitUntilHeld}.
   *
   * @returns how many turns were released.
   * @throws Error when no turn is paused at a matching hold.
   */
  release(name?: string, options: HoldMatchOptions = {}): number {
    const released = this.#held.filter((hold) => matches(hold, name, options.sessionId));
    if (released.length === 0) {
      const what = name === undefined ? 'any hold' : `hold ${JSON.stringify(name)}`;
      const where = options.sessionId === undefined ? '' : ` of session ${options.sessionId}`;
      const current = this.#held.length === 0 ? 'none' : this.#held.map(describeHold).join('; ');
      throw new Error(`ScriptedRuntime: release: no turn is paused at ${what}${where} (held: ${current})`);
    }
    for (const hold of released) hold.release();
    return released.length;
  }

  /**
   * Throws if the script was not played out exactly: scripted turns never taken, turns still paused
   * at a hold, queued failures never used, or `run()` calls that had no scripted turn (or ran on a
   * closed runtime). Call it at the end of a test, e.g. in `afterEach`.
   */
  assertConsumed(): void {
    const problems: string[] = [];
    const left = [...this.#shared, ...[...this.#perSession.values()].flat()];
    if (left.length > 0) {
      const list = left
        .map(
          (turn) =>
            `${turn.label} (${turn.sessionId === undefined ? 'any session' : `session ${turn.sessionId}`})`,
        )
        .join('; ');
      problems.push(`${left.length} scripted turn(s) not run: ${list}`);
    }
    if (this.#held.length > 0) problems.push(`still held: ${this.#held.map(describeHold).join('; ')}`);
    if (this.#factoryFailures.length > 0) {
      problems.push(`${this.#factoryFailures.length} failNextFactory failure(s) not used`);
    }
    if (this.#setModelFailures.length > 0) {
      problems.push(`${this.#setModelFailures.length} failNextSetModel failure(s) not used`);
    }
    if (this.#closeFailures.length > 0) {
      problems.push(`${this.#closeFailures.length} failNextClose failure(s) not used`);
    }
    problems.push(...this.#unexpected);
    if (problems.length > 0) {
      throw new Error(`ScriptedRuntime: script not consumed:\n- ${problems.join('\n- ')}`);
    }
  }

  #makeRuntime(init: RuntimeInit): ScriptedSessionRuntime {
    const sessionId = init.session.id;
    let closed = false;
    const runtime: Writable<Pick<ScriptedSessionRuntime, 'setModel' | 'availableModels'>> &
      Omit<ScriptedSessionRuntime, 'setModel' | 'availableModels'> = {
      index: this.runtimes.length,
      sessionId,
      init,
      get closed() {
        return closed;
      },
      run: (turn) => this.#run(runtime, turn),
      close: async () => {
        closed = true;
        if (this.#closeFailures.length > 0) {
          const error = this.#closeFailures.shift();
          this.closeCalls.push({ sessionId, runtime, error });
          throw error;
        }
        this.closeCalls.push({ sessionId, runtime });
      },
    };
    if (this.#modelSwitching) {
      runtime.setModel = async (agent, modelRef) => {
        if (this.#setModelFailures.length > 0) {
          const error = this.#setModelFailures.shift();
          this.setModelCalls.push({ sessionId, agent, modelRef, error });
          throw error;
        }
        this.setModelCalls.push({ sessionId, agent, modelRef });
        const key = JSON.stringify([sessionId, agent]);
        if (modelRef === undefined) this.#currentModels.delete(key);
        else this.#currentModels.set(key, modelRef);
      };
    }
    const models = this.#models;
    if (models !== undefined) {
      runtime.availableModels = async (agent) => {
        this.availableModelsCalls.push({ sessionId, agent });
        return structuredClone([...(typeof models === 'function' ? models(agent) : models)]);
      };
    }
    return runtime;
  }

  #run(runtime: ScriptedSessionRuntime, context: TurnContext): AsyncIterable<RuntimeEvent> {
    const turnNumber = (this.#turnCounts.get(context.sessionId) ?? 0) + 1;
    this.#turnCounts.set(context.sessionId, turnNumber);
    const record: MutableTurnRecord = {
      sessionId: context.sessionId,
      turnId: context.turnId,
      turnNumber,
      agent: context.agent,
      model: context.model,
      messages: context.session.items.flatMap((item) => (item.kind === 'message' ? [item.message] : [])),
      session: context.session,
      signal: context.signal,
      runtime,
      label: undefined,
      decisions: [],
      elicitations: [],
      steered: [],
      aborted: context.signal.aborted,
      outcome: 'running',
    };
    this.turns.push(record);

    let problem: string | undefined;
    let scripted: ScriptedTurn | undefined;
    if (runtime.closed) {
      problem = `ScriptedRuntime: turn ${turnNumber} of session ${context.sessionId} ran on a closed runtime`;
    } else {
      scripted = this.#take(context.sessionId);
      if (scripted === undefined) {
        problem = `ScriptedRuntime: unexpected turn ${turnNumber} of session ${context.sessionId}: no turn scripted`;
      }
    }
    if (problem !== undefined) this.#unexpected.push(problem);
    else record.label = scripted?.label;

    const onAbort = () => {
      record.aborted = true;
    };
    context.signal.addEventListener('abort', onAbort, { once: true });
    const recording = this.#recordingContext(context, record);
    const self = this;

    return {
      async *[Symbol.asyncIterator]() {
        let finished = false;
        try {
          if (problem !== undefined || scripted === undefined) throw new Error(problem);
          for await (const event of self.#play(scripted.body, recording)) {
            context.signal.throwIfAborted();
            yield event;
          }
          finished = true;
          record.outcome = 'completed';
        } catch (error) {
          finished = true;
          record.outcome = 'threw';
          record.error = error;
          throw error;
        } finally {
          // Reached without `finished` only when the consumer stopped iterating early.
          if (!finished) record.outcome = 'stopped';
          context.signal.removeEventListener('abort', onAbort);
        }
      },
    };
  }

  #take(sessionId: string): ScriptedTurn | undefined {
    const own = this.#perSession.get(sessionId);
    if (own !== undefined && own.length > 0) {
      const turn = own.shift();
      if (own.length === 0) this.#perSession.delete(sessionId);
      return turn;
    }
    return this.#shared.shift();
  }

  // The script sees this context, so calls made directly by a turn function are recorded too.
  #recordingContext(context: TurnContext, record: MutableTurnRecord): TurnContext {
    return {
      get sessionId() {
        return context.sessionId;
      },
      get turnId() {
        return context.turnId;
      },
      get session() {
        return context.session;
      },
      ...(context.agent === undefined ? {} : { agent: context.agent }),
      ...(context.model === undefined ? {} : { model: context.model }),
      get signal() {
        return context.signal;
      },
      takeSteering() {
        const taken = context.takeSteering();
        record.steered.push(taken);
        return taken;
      },
      async authorizeToolCall(request) {
        const decision = await context.authorizeToolCall(request);
        record.decisions.push(decision);
        return decision;
      },
      async elicit(request) {
        const result = await context.elicit(request);
        record.elicitations.push(result);
        return result;
      },
    };
  }

  async *#play(body: ScriptBody, context: TurnContext): AsyncGenerator<RuntimeEvent> {
    switch (body.kind) {
      case 'steps':
        yield* this.#playSteps(body.steps, context);
        return;
      case 'error':
        yield* this.#playSteps(body.before, context);
        throw body.error;
      case 'function': {
        const steps = body.run(context);
        if (
          steps === null ||
          typeof steps !== 'object' ||
          (!(Symbol.asyncIterator in steps) && !(Symbol.iterator in steps))
        ) {
          throw new TypeError('ScriptedRuntime: a turn function must return an iterable or async iterable');
        }
        yield* this.#playSteps(steps, context);
        return;
      }
    }
  }

  async *#playSteps(
    steps: AsyncIterable<ScriptStep> | Iterable<ScriptStep>,
    context: TurnContext,
  ): AsyncGenerator<RuntimeEvent> {
    for await (const item of steps) {
      context.signal.throwIfAborted();
      if (isScriptDirective(item)) yield* this.#perform(item, context);
      else yield item;
    }
  }

  async *#perform(directive: ScriptDirective, context: TurnContext): AsyncGenerator<RuntimeEvent> {
    switch (directive.kind) {
      case 'hold':
        await this.#hold(directive.name, context);
        return;
      case 'authorize': {
        const { toolCall, options } = directive;
        const messages = options.messages ?? true;
        if (messages) {
          yield {
            type: 'message_added',
            message: {
              id: newId('msg'),
              role: 'assistant',
              content: '',
              toolCalls: [toolCall],
              createdAt: new Date().toISOString(),
            },
          };
        }
        yield { type: 'tool_call', toolCall };
        const request: ToolAuthorizationRequest = { toolCall };
        if (options.readOnly !== undefined) request.readOnly = options.readOnly;
        if (options.safe !== undefined) request.safe = options.safe;
        const decision = await context.authorizeToolCall(request);
        const response = decision.approved ? (options.result ?? 'ok') : decision.reason;
        yield decision.approved
          ? { type: 'tool_call_response', toolCallId: toolCall.id, response }
          : { type: 'tool_call_response', toolCallId: toolCall.id, response, isError: true };
        if (messages) {
          yield {
            type: 'message_added',
            message: {
              id: newId('msg'),
              role: 'tool',
              content: response,
              toolCallId: toolCall.id,
              createdAt: new Date().toISOString(),
            },
          };
        }
        return;
      }
      case 'elicit': {
        const result = await context.elicit(directive.request);
        yield { type: 'custom', name: 'elicitation_result', data: result as JsonValue };
        return;
      }
      case 'take_steering': {
        const taken = context.takeSteering();
        yield { type: 'custom', name: 'steering_taken', data: { count: taken.length } };
        return;
      }
      case 'fail':
        throw directive.error;
      case 'reply': {
        const { text, options } = directive;
        for (const content of options.deltas ?? splitDeltas(text)) {
          context.signal.throwIfAborted();
          yield { type: 'agent_choice', content };
        }
        yield {
          type: 'message_added',
          message: {
            id: newId('msg'),
            role: 'assistant',
            content: text,
            createdAt: new Date().toISOString(),
            ...options.message,
          },
        };
        if (options.usage !== undefined) yield { type: 'token_usage', usage: options.usage };
        return;
      }
      case 'raw':
        yield directive.value as RuntimeEvent;
        return;
    }
  }

  #hold(name: string | undefined, context: TurnContext): Promise<void> {
    const { signal } = context;
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        signal.removeEventListener('abort', onAbort);
        const index = this.#held.indexOf(hold);
        if (index !== -1) this.#held.splice(index, 1);
      };
      const onAbort = () => {
        settle();
        reject(signal.reason);
      };
      const hold: ActiveHold = {
        name,
        sessionId: context.sessionId,
        turnId: context.turnId,
        release: () => {
          settle();
          resolve();
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#held.push(hold);
      const info: HeldInfo = { name, sessionId: hold.sessionId, turnId: hold.turnId };
      const waiting = this.#heldWaiters;
      this.#heldWaiters = waiting.filter((waiter) => !matches(info, waiter.name, waiter.sessionId));
      for (const waiter of waiting) if (matches(info, waiter.name, waiter.sessionId)) waiter.resolve(info);
    });
  }
}
