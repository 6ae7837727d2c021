import type { EventEmitter } from 'eventemitter3';
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  invalidArgument,
  toAgentSessionsError,
} from '../errors.js';
import { type RuntimeEvent, RuntimeEventSchema, type SessionEvent, type StopReason } from '../events.js';
import { Channel } from '../internal/channel.js';
import { newId } from '../internal/ids.js';
import type { Logger } from '../logger.js';
import type {
  ElicitationRequest,
  ElicitationResult,
  Runtime,
  ToolAuthorizationRequest,
  ToolDecision,
  TurnContext,
} from '../runtime.js';
import { type Message, type SessionItem, ToolCallSchema } from '../schemas.js';
import type { Store } from '../store.js';
import type { EventInput, EventLog } from './event-log.js';
import { decideToolCall } from './permissions.js';
import type { SessionCache, SessionState } from './session-state.js';
import { heuristicTitle } from './title.js';
import { generateTitle } from './titles.js';
import type { ManagerEvents, TitleGenerator, TurnResult, TurnStream } from './types.js';

/** What a run needs from the manager. */
export interface RunHost {
  readonly store: Store;
  readonly logger: Logger;
  readonly events: EventEmitter<ManagerEvents>;
  readonly titleGenerator: TitleGenerator | undefined;
  /** The session's cache, loading it from the store when the manager has none. */
  loadCache(state: SessionState): Promise<SessionCache>;
  /** Registers work that must end before `waitStopped` resolves. */
  track(sessionId: string, work: Promise<unknown>): void;
  /** The runtime was released by a run (idle clock). */
  releaseRuntime(sessionId: string): void;
}

/** One turn's input. */
export interface TurnInput {
  turnId: string;
  messages: Message[];
  /** The messages are in the store already (the first turn's were written at admission). */
  persisted: boolean;
  idempotencyKey?: string;
}

interface TurnOutcome {
  reason: StopReason;
  error?: AgentSessionsError;
}

/** The reason a cancelled turn's signal carries when the caller gave none. */
export function cancellation(message: string): Error {
  return new DOMException(message, 'AbortError');
}

const endReasons = new Set(['end_turn', 'max_tokens', 'max_turn_requests', 'refusal']);

/**
 * Validates a runtime event and tags it with its turn. Text deltas, by far the most frequent, take a
 * hand-written path; the rest go through the zod schema. Anything invalid is a runtime failure.
 */
function parseRuntimeEvent(value: unknown, turnId: string): RuntimeEvent & { turnId: string } {
  if (typeof value === 'object' && value !== null) {
    const candidate = value as { type?: unknown; content?: unknown };
    if (
      (candidate.type === 'agent_choice' || candidate.type === 'agent_choice_reasoning') &&
      typeof candidate.content === 'string'
    ) {
      // One literal with turnId: a spread copy plus an added key makes V8 give each event its own
      // shape, and every later property access on it a slow lookup (10× the cost of the pipeline).
      // The envelope fields are declared up front (undefined) so the log completes the event
      // without changing its hidden class.
      return {
        type: candidate.type,
        content: candidate.content,
        turnId,
        sessionId: undefined,
        seq: undefined,
        timestamp: undefined,
      } as unknown as RuntimeEvent & { turnId: string };
    }
  }
  const result = RuntimeEventSchema.safeParse(value);
  if (!result.success) {
    const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
    throw new AgentSessionsError(
      ErrorCode.RUNTIME_FAILED,
      `runtime yielded an invalid event${typeof type === 'string' ? ` of type ${JSON.stringify(type)}` : ''}: ${result.error.issues[0]?.message ?? 'invalid'}`,
      { cause: result.error },
    );
  }
  return { ...result.data, turnId };
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/**
 * One TurnStream: the session's busy lock, a first turn, then the steered messages no turn took and
 * the queued follow-ups, each as its own turn. Events go to the event log and, while someone reads,
 * to the stream. The lock is released before the stream ends, so a reader that drained it can
 * start the next turn at once.
 */
export class ActiveRun {
  readonly firstTurnId: string;
  readonly stream: TurnStream;
  /** Admission (validation and the first writes) succeeded and the turn loop runs. */
  admitted = false;
  currentTurnId: string;

  readonly #host: RunHost;
  readonly #state: SessionState;
  readonly #log: EventLog;
  readonly #release: () => void;
  readonly #onDetach: 'cancel' | 'continue';
  readonly #channel = new Channel<SessionEvent>();
  readonly #done = deferred<TurnResult>();
  readonly #disposeSignal: () => void;
  #runtime: Runtime | undefined;
  #cancelled = false;
  #cancelReason: unknown;
  #ended = false;
  #turnController: AbortController | undefined;
  #discarded: Message[] = [];

  constructor(options: {
    host: RunHost;
    state: SessionState;
    log: EventLog;
    release: () => void;
    onDetach?: 'cancel' | 'continue';
    signal?: AbortSignal;
    detached?: boolean;
  }) {
    this.#host = options.host;
    this.#state = options.state;
    this.#log = options.log;
    this.#release = options.release;
    this.#onDetach = options.onDetach ?? 'cancel';
    this.firstTurnId = newId('turn');
    this.currentTurnId = this.firstTurnId;
    if (options.detached) this.#channel.detach();
    const signal = options.signal;
    if (signal) {
      const onAbort = () => this.cancel(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#disposeSignal = () => signal.removeEventListener('abort', onAbort);
    } else {
      this.#disposeSignal = () => {};
    }
    const channel = this.#channel;
    const run = this;
    this.stream = {
      turnId: this.firstTurnId,
      done: this.#done.promise,
      cancel: (reason?: unknown) => run.cancel(reason),
      [Symbol.asyncIterator](): AsyncIterator<SessionEvent> {
        return {
          next: () => channel.next(),
          return: async () => {
            run.#detach();
            return { value: undefined, done: true };
          },
        };
      },
    };
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Starts the turn loop after a successful admission. */
  start(runtime: Runtime, first: TurnInput): void {
    this.admitted = true;
    // Cancelled while being admitted: the caller reads `done`, so what was queued is reported there.
    if (this.#cancelled) this.#discardQueued();
    this.#runtime = runtime;
    void this.#drive(first);
  }

  /**
   * Admission failed: nothing started. Releases the lock and settles `done` (no one holds the stream).
   */
  abandon(): void {
    this.#ended = true;
    this.#disposeSignal();
    this.#state.run = undefined;
    this.#release();
    this.#channel.end();
    this.#done.resolve({ stopReason: 'error', discarded: [] });
  }

  /** Cancels the running turn and drops the queued steering and follow-ups. */
  cancel(reason?: unknown): void {
    if (this.#cancelled || this.#ended) return;
    this.#cancelled = true;
    this.#cancelReason = reason ?? cancellation('the turn was cancelled');
    // Before admission no turn started and nobody will read `done`: what others queued meanwhile is
    // kept, and the manager runs it when it refuses this admission.
    if (this.admitted) this.#discardQueued();
    this.#turnController?.abort(this.#cancelReason);
  }

  /** Moves queued steering and follow-ups into `discarded` (never persisted) and frees their keys. */
  #discardQueued(): void {
    const state = this.#state;
    this.#discarded.push(...state.steer.drain());
    for (const followUp of state.followUps.drain()) {
      if (followUp.idempotencyKey !== undefined) state.keys.release(followUp.idempotencyKey);
      this.#discarded.push(...followUp.messages);
    }
  }

  #detach(): void {
    if (this.#onDetach === 'cancel') this.cancel(cancellation('the reader left the turn stream'));
    this.#channel.detach();
  }

  #emit(input: EventInput): SessionEvent | undefined {
    const event = this.#log.append(input);
    if (event) this.#channel.push(event);
    return event;
  }

  async #drive(first: TurnInput): Promise<void> {
    let outcome: TurnOutcome = { reason: 'end_turn' };
    let input: TurnInput | undefined = first;
    try {
      while (input) {
        outcome = await this.#runTurn(input);
        if (this.#cancelled) break;
        input = this.#nextInput();
      }
    } catch (error) {
      this.#host.logger.error('turn loop failed', { sessionId: this.#state.id, error });
      outcome = {
        reason: 'error',
        error: toAgentSessionsError(error, ErrorCode.RUNTIME_FAILED, 'turn loop failed'),
      };
    } finally {
      if (this.#cancelled) {
        outcome = { reason: 'cancelled' };
        // Queued while the cancelled turn wound down: no turn of this run will take them, and left
        // in the queues they would wait, unseen, for whatever turn comes next.
        this.#discardQueued();
      }
      this.#ended = true;
      this.#disposeSignal();
      this.#host.releaseRuntime(this.#state.id);
      this.#state.run = undefined;
      this.#release();
      this.#channel.end();
      this.#done.resolve({
        stopReason: outcome.reason,
        ...(outcome.error === undefined ? {} : { error: outcome.error }),
        discarded: this.#discarded,
      });
    }
  }

  /** Steered messages no turn took run first, then follow-ups in order. */
  #nextInput(): TurnInput | undefined {
    const steered = this.#state.steer.drain();
    if (steered.length > 0) return { turnId: newId('turn'), messages: steered, persisted: false };
    const followUp = this.#state.followUps.shift();
    if (!followUp) return undefined;
    return {
      turnId: newId('turn'),
      messages: followUp.messages,
      persisted: false,
      ...(followUp.idempotencyKey === undefined ? {} : { idempotencyKey: followUp.idempotencyKey }),
    };
  }

  async #runTurn(input: TurnInput): Promise<TurnOutcome> {
    const host = this.#host;
    const state = this.#state;
    const sessionId = state.id;
    const turnId = input.turnId;
    this.currentTurnId = turnId;
    const controller = new AbortController();
    this.#turnController = controller;
    if (this.#cancelled) controller.abort(this.#cancelReason);
    const signal = controller.signal;

    let cache: SessionCache;
    try {
      cache = await host.loadCache(state);
    } catch (error) {
      return this.#failBeforeStart(input, error);
    }
    const agent = cache.meta.agent;
    host.events.emit('turn_started', { sessionId, turnId });
    this.#emit({ type: 'stream_started', turnId, ...(agent === undefined ? {} : { agent }) });

    if (!input.persisted) {
      const items: SessionItem[] = input.messages.map((message) => ({ kind: 'message', message }));
      try {
        await host.store.appendItems(sessionId, items);
        cache.push(items);
      } catch (error) {
        if (input.idempotencyKey !== undefined) state.keys.release(input.idempotencyKey);
        const failure = toAgentSessionsError(
          error,
          ErrorCode.RUNTIME_FAILED,
          `turn ${turnId} could not store its messages`,
        );
        return this.#stop(turnId, { reason: 'error', error: failure });
      }
    }
    for (const message of input.messages) this.#emit({ type: 'user_message', turnId, message });
    await this.#titleAtTurnStart(cache, turnId);

    if (signal.aborted) return this.#stop(turnId, { reason: 'cancelled' });
    return this.#consume(cache, turnId, controller);
  }

  #failBeforeStart(input: TurnInput, error: unknown): TurnOutcome {
    if (input.idempotencyKey !== undefined) this.#state.keys.release(input.idempotencyKey);
    const failure = toAgentSessionsError(
      error,
      ErrorCode.RUNTIME_FAILED,
      `turn ${input.turnId} could not start`,
    );
    this.#host.events.emit('turn_started', { sessionId: this.#state.id, turnId: input.turnId });
    this.#emit({ type: 'stream_started', turnId: input.turnId });
    return this.#stop(input.turnId, { reason: 'error', error: failure });
  }

  /** Emits the error (if any) and `stream_stopped` of a turn that ends. */
  #stop(turnId: string, outcome: TurnOutcome): TurnOutcome {
    if (outcome.error) {
      this.#emit({ type: 'error', turnId, message: outcome.error.message, code: outcome.error.code });
    }
    this.#emit({ type: 'stream_stopped', turnId, reason: outcome.reason });
    this.#host.events.emit('turn_ended', {
      sessionId: this.#state.id,
      turnId,
      stopReason: outcome.reason,
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    });
    return outcome;
  }

  async #titleAtTurnStart(cache: SessionCache, turnId: string): Promise<void> {
    const host = this.#host;
    const state = this.#state;
    if (cache.meta.title !== '') {
      this.#emit({ type: 'session_title', turnId, title: cache.meta.title });
      return;
    }
    if (cache.meta.titleSource === 'manual') return;
    const userTexts = cache.items.flatMap((item) =>
      item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
    );
    const title = heuristicTitle(userTexts[0] ?? '');
    if (title !== '') {
      try {
        await state.metadata.runExclusive(async () => {
          if (cache.meta.title !== '' || cache.meta.titleSource === 'manual') return;
          await host.store.updateSession(state.id, { title, titleSource: 'heuristic' });
          cache.meta.title = title;
          cache.meta.titleSource = 'heuristic';
          this.#emit({ type: 'session_title', turnId, title });
        });
      } catch (error) {
        host.logger.warn('storing the heuristic title failed', { sessionId: state.id, error });
      }
    }
    const generator = host.titleGenerator;
    if (!generator) return;
    const work = (async () => {
      const generated = await generateTitle(
        generator,
        userTexts.slice(0, 3),
        state.controller.signal,
        host.logger,
        state.id,
      );
      if (generated === undefined || state.controller.signal.aborted) return;
      await state.metadata.runExclusive(async () => {
        const current = state.cache ?? (await host.loadCache(state));
        if (current.meta.titleSource === 'manual') return;
        await host.store.updateSession(state.id, { title: generated, titleSource: 'generated' });
        current.meta.title = generated;
        current.meta.titleSource = 'generated';
        // To the stream as well while it is open: a reader of the turn sees the title it asked for.
        this.#emit({ type: 'session_title', turnId, title: generated });
      });
    })();
    // Not tracked by waitStopped: the generator runs beside the turn and may outlive it.
    work.catch((error: unknown) =>
      host.logger.warn('storing the generated title failed', { sessionId: state.id, error }),
    );
  }

  /** Drives the runtime for one turn and finishes it. */
  async #consume(cache: SessionCache, turnId: string, controller: AbortController): Promise<TurnOutcome> {
    const host = this.#host;
    const state = this.#state;
    const sessionId = state.id;
    const signal = controller.signal;
    const runtime = this.#runtime as Runtime;
    const openToolCalls = new Map<string, string>();
    let finished = false;
    const settled = deferred<TurnOutcome>();
    const settle = (outcome: TurnOutcome) => {
      if (finished) return;
      finished = true;
      settled.resolve(outcome);
    };
    const onAbort = () => settle({ reason: 'cancelled' });
    signal.addEventListener('abort', onAbort, { once: true });

    // Writes made outside the event loop's own awaits (steering, usage) keep their order in a chain.
    let writes: Promise<void> = Promise.resolve();
    let writeError: AgentSessionsError | undefined;
    const enqueueWrite = (write: () => Promise<void>): Promise<void> => {
      const next = writes.then(write).catch((error: unknown) => {
        writeError ??= toAgentSessionsError(
          error,
          ErrorCode.RUNTIME_FAILED,
          `turn ${turnId} could not store its history`,
        );
        settle({ reason: 'error', error: writeError });
      });
      writes = next;
      return next;
    };

    const model = cache.meta.agentModelOverrides[cache.meta.agent ?? 'default'];
    const context: TurnContext = {
      sessionId,
      turnId,
      session: cache.snapshot(),
      ...(cache.meta.agent === undefined ? {} : { agent: cache.meta.agent }),
      ...(model === undefined ? {} : { model }),
      signal,
      takeSteering: () => {
        // A user message between an assistant's tool calls and their results makes a history that
        // model providers reject: steering waits until every call of the turn has its result.
        if (finished || openToolCalls.size > 0) return [];
        const messages = state.steer.drain();
        if (messages.length === 0) return [];
        const items: SessionItem[] = messages.map((message) => ({ kind: 'message', message }));
        cache.push(items);
        for (const message of messages) this.#emit({ type: 'user_message', turnId, message });
        void enqueueWrite(() => host.store.appendItems(sessionId, items));
        return messages;
      },
      // A runtime that kept the context past the end of its turn gets a rejection, never a wait
      // that no one can answer (the turn's pending requests were settled when it ended).
      authorizeToolCall: (request) =>
        finished && !signal.aborted
          ? Promise.reject(cancellation(`turn ${turnId} ended`))
          : this.#authorize(cache, turnId, signal, request),
      elicit: (request) =>
        finished && !signal.aborted
          ? Promise.reject(cancellation(`turn ${turnId} ended`))
          : this.#elicit(turnId, signal, request),
    };

    let pendingEnd: StopReason | undefined;
    const consumer = (async () => {
      let iterator: AsyncIterator<unknown> | undefined;
      let exhausted = false;
      try {
        iterator = runtime.run(context)[Symbol.asyncIterator]();
        while (!finished) {
          const step = await iterator.next();
          if (finished) break;
          if (step.done) {
            exhausted = true;
            settle({ reason: pendingEnd ?? 'end_turn' });
            break;
          }
          const event = parseRuntimeEvent(step.value, turnId);
          switch (event.type) {
            case 'message_added': {
              const message = event.message;
              const item: SessionItem = { kind: 'message', message };
              // The bookkeeping follows the write itself, not the turn: a write that lands after a
              // cancel is in the store, so its tool calls must still be closed (or counted as answered).
              await enqueueWrite(async () => {
                await host.store.appendItems(sessionId, [item]);
                cache.push([item]);
                if (message.role === 'assistant')
                  for (const call of message.toolCalls ?? []) openToolCalls.set(call.id, call.name);
                if (message.role === 'tool' && message.toolCallId !== undefined)
                  openToolCalls.delete(message.toolCallId);
              });
              if (finished) break;
              this.#emit(event);
              break;
            }
            case 'token_usage': {
              const usage = cache.meta.usage;
              const total = {
                inputTokens: usage.inputTokens + event.usage.inputTokens,
                outputTokens: usage.outputTokens + event.usage.outputTokens,
                cost: usage.cost + (event.usage.cost ?? 0),
              };
              cache.meta.usage = total;
              void enqueueWrite(() => host.store.updateSession(sessionId, { usage: { ...total } }));
              this.#emit(event);
              break;
            }
            case 'turn_end':
              if (!endReasons.has(event.reason)) break;
              pendingEnd = event.reason;
              this.#emit(event);
              settle({ reason: event.reason });
              break;
            default:
              this.#emit(event);
          }
        }
      } catch (error) {
        if (!finished) {
          settle(
            signal.aborted
              ? { reason: 'cancelled' }
              : {
                  reason: 'error',
                  error: toAgentSessionsError(
                    error,
                    ErrorCode.RUNTIME_FAILED,
                    `runtime failed in session ${JSON.stringify(sessionId)} turn ${turnId}`,
                  ),
                },
          );
        }
      } finally {
        if (iterator && !exhausted && typeof iterator.return === 'function') {
          try {
            await iterator.return();
          } catch (error) {
            host.logger.debug('runtime iterator return failed', { sessionId, turnId, error });
          }
        }
      }
    })();
    host.track(sessionId, consumer);

    let outcome = await settled.promise;
    signal.removeEventListener('abort', onAbort);
    await writes;
    if (writeError && outcome.reason !== 'cancelled') outcome = { reason: 'error', error: writeError };

    // A turn that waited for a human and ended anyway: the waits are settled now.
    const ended = cancellation(`turn ${turnId} ended`);
    state.confirmations.rejectTurn(turnId, ended);
    state.elicitations.rejectTurn(turnId, ended);

    const closing: SessionItem[] = [];
    if (outcome.error) {
      closing.push({
        kind: 'error',
        id: newId('err'),
        message: outcome.error.message,
        code: outcome.error.code,
        ...(cache.meta.agent === undefined ? {} : { agent: cache.meta.agent }),
        createdAt: new Date().toISOString(),
      });
    }
    const missing: Message[] = [...openToolCalls].map(([toolCallId, name]) => ({
      id: newId('msg'),
      role: 'tool',
      toolCallId,
      content: `Tool call ${JSON.stringify(name)} did not run: the turn ${
        outcome.reason === 'cancelled' ? 'was cancelled' : outcome.reason === 'error' ? 'failed' : 'ended'
      } before it produced a result.`,
      createdAt: new Date().toISOString(),
    }));
    for (const message of missing) closing.push({ kind: 'message', message });
    if (closing.length > 0) {
      try {
        await host.store.appendItems(sessionId, closing);
        cache.push(closing);
        for (const message of missing) this.#emit({ type: 'message_added', turnId, message });
      } catch (error) {
        state.cache = undefined;
        host.logger.error('closing a turn in history failed', { sessionId, turnId, error });
      }
    }
    if (writeError) state.cache = undefined;
    return this.#stop(turnId, outcome);
  }

  async #authorize(
    cache: SessionCache,
    turnId: string,
    signal: AbortSignal,
    request: ToolAuthorizationRequest,
  ): Promise<ToolDecision> {
    const parsed = ToolCallSchema.safeParse(request?.toolCall);
    if (!parsed.success) throw invalidArgument('tool call', parsed.error);
    if (signal.aborted) throw signal.reason;
    const toolCall = parsed.data;
    const flags = {
      ...(request.readOnly === undefined ? {} : { readOnly: request.readOnly }),
      ...(request.safe === undefined ? {} : { safe: request.safe }),
    };
    const outcome = decideToolCall({
      toolCall,
      ...flags,
      permissions: cache.meta.permissions,
      safetyPolicy: cache.meta.safetyPolicy,
    });
    if (outcome.decision === 'approve') return { approved: true };
    if (outcome.decision === 'reject') return { approved: false, reason: outcome.reason };
    const confirmationId = newId('conf');
    const answer = this.#state.confirmations.add(confirmationId, turnId, { toolCall, ...flags }, signal);
    this.#emit({ type: 'tool_call_confirmation', turnId, toolCall, confirmationId });
    return answer;
  }

  async #elicit(
    turnId: string,
    signal: AbortSignal,
    request: ElicitationRequest,
  ): Promise<ElicitationResult> {
    if (typeof request?.message !== 'string') {
      throw new InvalidArgumentError('invalid elicitation: message must be a string', {
        issues: [{ path: ['message'], message: 'expected a string' }],
      });
    }
    const mode = request.mode ?? 'form';
    if (mode !== 'form' && mode !== 'url') {
      throw new InvalidArgumentError('invalid elicitation: mode must be "form" or "url"', {
        issues: [{ path: ['mode'], message: 'expected "form" or "url"' }],
      });
    }
    if (mode === 'url' && typeof request.url !== 'string') {
      throw new InvalidArgumentError('invalid elicitation: url mode needs a url', {
        issues: [{ path: ['url'], message: 'expected a string' }],
      });
    }
    if (signal.aborted) throw signal.reason;
    const elicitationId = newId('elic');
    const info = {
      message: request.message,
      mode,
      ...(request.schema === undefined ? {} : { schema: request.schema }),
      ...(request.url === undefined ? {} : { url: request.url }),
    } as const;
    const answer = this.#state.elicitations.add(elicitationId, turnId, info, signal);
    this.#emit({ type: 'elicitation_request', turnId, elicitationId, ...info });
    return answer;
  }
}
