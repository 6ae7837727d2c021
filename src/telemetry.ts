/**
 * Telemetry: the tracing hooks the manager and runtimes call, with no tracing library behind them.
 *
 * The main entry never loads OpenTelemetry. A host that wants traces passes a {@link Telemetry} as
 * `new SessionManager({ telemetry })`; `openTelemetry()` from `agent-sessions/otel` makes one over
 * `@opentelemetry/api` (with a given tracer, or the globally registered tracer provider). Without
 * the option the manager does no tracing work at all.
 *
 * What the manager traces with it (names and attributes in `docs/operations.md`):
 * - one span per turn, `invoke_agent {agent}`, following the OpenTelemetry GenAI conventions;
 * - under it, a span per wait for a turn slot (`maxConcurrentTurns`), per wait for a human
 *   (a tool confirmation or an elicitation), and per store write made while the turn runs;
 * - the turn's span is handed to the runtime as `TurnContext.span`, so a runtime opens its own child
 *   spans (the AI SDK runtime opens `execute_tool {tool}` per tool call).
 *
 * An implementation:
 * - MUST NOT throw from any method; the manager guards every call anyway (a throw is logged at
 *   `warn` and skipped), so tracing never fails a turn;
 * - MUST skip attributes whose value is `undefined`;
 * - MUST make {@link TelemetrySpan.end} idempotent: only the first call counts.
 */

/** A value of a span attribute: what OpenTelemetry accepts. */
export type TelemetryAttributeValue =
  | string
  | number
  | boolean
  | readonly string[]
  | readonly number[]
  | readonly boolean[];

/** Span attributes by name; `undefined` values are skipped. */
export type TelemetryAttributes = Readonly<Record<string, TelemetryAttributeValue | undefined>>;

/** How a span ended. */
export interface TelemetrySpanOutcome {
  /**
   * The error the operation ended with: the span's status becomes ERROR, the error is recorded as
   * an exception, and `error.type` is set (see {@link TelemetrySpanOutcome.errorType}).
   */
  error?: unknown;
  /**
   * The `error.type` attribute. @default the error's `code` (an `AgentSessionsError`'s code), else
   * its `name`, else `'_OTHER'`
   */
  errorType?: string;
}

/** One open span. */
export interface TelemetrySpan {
  /** Adds attributes (`undefined` values are skipped); later values replace earlier ones. */
  setAttributes(attributes: TelemetryAttributes): void;
  /** Opens a child span of this one. */
  startChild(name: string, attributes?: TelemetryAttributes): TelemetrySpan;
  /**
   * Ends the span. With an error its status becomes ERROR; without one it is left unset, as the
   * OpenTelemetry conventions ask of instrumentation. Only the first call counts.
   */
  end(outcome?: TelemetrySpanOutcome): void;
}

/** Opens the manager's root spans (one per turn). See the module documentation for the contract. */
export interface Telemetry {
  /**
   * Opens a span: a child of the caller's active span when the implementation tracks one (an
   * OpenTelemetry context), else a root span.
   */
  startSpan(name: string, attributes?: TelemetryAttributes): TelemetrySpan;
}
