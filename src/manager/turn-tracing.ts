/**
 * Tracing of a turn, when the manager has `telemetry` (see `src/telemetry.ts`): the turn's
 * `invoke_agent` span after the OpenTelemetry GenAI conventions, and the helpers that open its
 * child spans (a wait for a turn slot, a wait for a human, a store write). Attribute names are
 * plain strings: the GenAI conventions are experimental, and a library of semantic-convention
 * constants would be one more dependency for a dozen names.
 */
import type { StopReason, TokenUsage } from '../events.js';
import type { Logger } from '../logger.js';
import type { Telemetry, TelemetryAttributes, TelemetrySpan } from '../telemetry.js';

/** The attribute names used, in one place. */
export const Attr = {
  operationName: 'gen_ai.operation.name',
  conversationId: 'gen_ai.conversation.id',
  agentName: 'gen_ai.agent.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  providerName: 'gen_ai.provider.name',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  cacheReadTokens: 'gen_ai.usage.cache_read.input_tokens',
  cacheWriteTokens: 'gen_ai.usage.cache_creation.input_tokens',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolType: 'gen_ai.tool.type',
  errorType: 'error.type',
  turnId: 'agent_sessions.turn.id',
  stopReason: 'agent_sessions.turn.stop_reason',
  queuePosition: 'agent_sessions.queue.position',
  confirmationId: 'agent_sessions.confirmation.id',
  elicitationId: 'agent_sessions.elicitation.id',
  humanAnswer: 'agent_sessions.human.answer',
  storeName: 'agent_sessions.store.name',
  storeOperation: 'agent_sessions.store.operation',
  storeItems: 'agent_sessions.store.items',
} as const;

/** What a turn span is opened with. */
export interface TurnTraceInput {
  sessionId: string;
  turnId: string;
  /** The session's agent, when it has one. */
  agent?: string;
  /** The model override in force, when there is one. */
  model?: string;
}

/** The `invoke_agent` span of one turn, with the usage it adds up. */
export class TurnTrace {
  readonly span: TelemetrySpan;
  #inputTokens = 0;
  #outputTokens = 0;
  #cacheReadTokens: number | undefined;
  #cacheWriteTokens: number | undefined;
  #responseModel: string | undefined;
  #usage = false;

  constructor(telemetry: Telemetry, input: TurnTraceInput) {
    this.span = telemetry.startSpan(
      input.agent === undefined ? 'invoke_agent' : `invoke_agent ${input.agent}`,
      {
        [Attr.operationName]: 'invoke_agent',
        [Attr.conversationId]: input.sessionId,
        [Attr.agentName]: input.agent,
        [Attr.requestModel]: input.model,
        [Attr.turnId]: input.turnId,
      },
    );
  }

  /** Adds one model call's usage to the turn's totals. */
  addUsage(usage: TokenUsage): void {
    this.#usage = true;
    this.#inputTokens += usage.inputTokens;
    this.#outputTokens += usage.outputTokens;
    if (usage.cacheReadTokens !== undefined)
      this.#cacheReadTokens = (this.#cacheReadTokens ?? 0) + usage.cacheReadTokens;
    if (usage.cacheWriteTokens !== undefined)
      this.#cacheWriteTokens = (this.#cacheWriteTokens ?? 0) + usage.cacheWriteTokens;
    if (usage.model !== undefined) this.#responseModel = usage.model;
  }

  /** Ends the span with the turn's stop reason, usage, and error (status ERROR, `error.type`). */
  end(reason: StopReason, error?: unknown): void {
    this.span.setAttributes({
      [Attr.stopReason]: reason,
      ...(this.#usage
        ? {
            [Attr.inputTokens]: this.#inputTokens,
            [Attr.outputTokens]: this.#outputTokens,
            [Attr.cacheReadTokens]: this.#cacheReadTokens,
            [Attr.cacheWriteTokens]: this.#cacheWriteTokens,
            [Attr.responseModel]: this.#responseModel,
          }
        : {}),
    });
    this.span.end(error === undefined ? undefined : { error });
  }
}

/**
 * Runs `work` in a child span of `parent` (no span without a parent) and ends it with the work's
 * outcome. The common case, no telemetry, costs one comparison.
 */
export function traced<T>(
  parent: TelemetrySpan | undefined,
  name: string,
  attributes: TelemetryAttributes,
  work: () => Promise<T>,
): Promise<T> {
  if (parent === undefined) return work();
  const span = parent.startChild(name, attributes);
  return work().then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      span.end({ error });
      throw error;
    },
  );
}

const NOOP_SPAN: TelemetrySpan = Object.freeze({
  setAttributes(): void {},
  startChild(): TelemetrySpan {
    return NOOP_SPAN;
  },
  end(): void {},
});

/**
 * The host's {@link Telemetry} with every call guarded: a method that throws (the contract says it
 * must not) is logged at `warn` and treated as a no-op, so tracing never fails a turn. A span whose
 * opening threw is replaced by a span that does nothing.
 */
export function guardTelemetry(telemetry: Telemetry, logger: Logger): Telemetry {
  const failed = (what: string, error: unknown): void => {
    logger.warn(`telemetry ${what} threw; tracing skipped it`, { error });
  };
  const guardSpan = (span: TelemetrySpan): TelemetrySpan => ({
    setAttributes(attributes) {
      try {
        span.setAttributes(attributes);
      } catch (error) {
        failed('setAttributes', error);
      }
    },
    startChild(name, attributes) {
      try {
        return guardSpan(span.startChild(name, attributes));
      } catch (error) {
        failed('startChild', error);
        return NOOP_SPAN;
      }
    },
    end(outcome) {
      try {
        span.end(outcome);
      } catch (error) {
        failed('end', error);
      }
    },
  });
  return {
    startSpan(name, attributes) {
      try {
        return guardSpan(telemetry.startSpan(name, attributes));
      } catch (error) {
        failed('startSpan', error);
        return NOOP_SPAN;
      }
    },
  };
}
