// agent-sessions/otel: the manager's Telemetry over OpenTelemetry (`@opentelemetry/api`, an optional
// peer dependency of this entry only; the main entry never loads it).
//
// Why an entry of its own rather than a dynamic import from the main entry: the main entry loads
// in any runtime, synchronously, without optional packages, and knows nothing of OpenTelemetry. A
// host that wants traces already depends on `@opentelemetry/api`; importing `openTelemetry` from
// here is the one line that opts in, and from then on the globally registered tracer provider (or
// the tracer given) is used through the API's own global registry, which is the only reliable way
// to see a provider that was registered, or will be, by the host's SDK setup.
import {
  type Attributes,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { Telemetry, TelemetryAttributes, TelemetrySpan, TelemetrySpanOutcome } from '../telemetry.js';

/** The instrumentation scope name of the tracer `openTelemetry()` gets from a provider. */
export const TRACER_NAME = 'agent-sessions';

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** The tracer spans are made with. @default the tracer {@link TRACER_NAME} of `tracerProvider` */
  tracer?: Tracer;
  /**
   * The provider to get the tracer from, when no `tracer` is given.
   * @default the global tracer provider (`trace.getTracerProvider()`), including one registered later
   */
  tracerProvider?: TracerProvider;
}

/** Attributes without their `undefined` values. */
function attributesOf(attributes: TelemetryAttributes | undefined): Attributes | undefined {
  if (attributes === undefined) return undefined;
  const defined: Attributes = {};
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined) defined[key] = value as Attributes[string];
  }
  return defined;
}

/** `error.type`: the given type, else an error's `code` (our errors'), else its `name`, else `_OTHER`. */
function errorTypeOf(outcome: TelemetrySpanOutcome): string {
  if (outcome.errorType !== undefined) return outcome.errorType;
  const error = outcome.error as { code?: unknown; name?: unknown } | null | undefined;
  if (typeof error?.code === 'string' && error.code !== '') return error.code;
  if (typeof error?.name === 'string' && error.name !== '' && error.name !== 'Error') return error.name;
  return '_OTHER';
}

/** One OpenTelemetry span behind the {@link TelemetrySpan} interface. */
class OpenTelemetrySpan implements TelemetrySpan {
  readonly #tracer: Tracer;
  readonly #span: Span;
  #ended = false;

  constructor(tracer: Tracer, span: Span) {
    this.#tracer = tracer;
    this.#span = span;
  }

  setAttributes(attributes: TelemetryAttributes): void {
    if (this.#ended || !this.#span.isRecording()) return;
    const defined = attributesOf(attributes);
    if (defined) this.#span.setAttributes(defined);
  }

  startChild(name: string, attributes?: TelemetryAttributes): TelemetrySpan {
    return startSpan(this.#tracer, name, attributes, trace.setSpan(context.active(), this.#span));
  }

  end(outcome?: TelemetrySpanOutcome): void {
    if (this.#ended) return;
    this.#ended = true;
    const span = this.#span;
    if (outcome?.error !== undefined && span.isRecording()) {
      const error = outcome.error;
      span.setAttribute('error.type', errorTypeOf(outcome));
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    span.end();
  }
}

function startSpan(
  tracer: Tracer,
  name: string,
  attributes: TelemetryAttributes | undefined,
  parent: ReturnType<typeof context.active>,
): OpenTelemetrySpan {
  const defined = attributesOf(attributes);
  const span = tracer.startSpan(
    name,
    { kind: SpanKind.INTERNAL, ...(defined === undefined ? {} : { attributes: defined }) },
    parent,
  );
  return new OpenTelemetrySpan(tracer, span);
}

/**
 * The manager's {@link Telemetry} over OpenTelemetry: pass it as
 * `new SessionManager({ telemetry: openTelemetry() })`. Spans are made with `options.tracer`, else
 * with the tracer of `options.tracerProvider`, else with the globally registered provider's (a
 * provider registered after this call is used from then on; with none registered the spans are
 * OpenTelemetry's non-recording ones and cost next to nothing). A turn's span is a child of the
 * span active when the turn started (an HTTP request's, say), when the host registered a context
 * manager. Spans and attributes are listed in `docs/operations.md`.
 *
 * @example
 * ```ts
 * import { openTelemetry } from 'agent-sessions/otel';
 * const manager = new SessionManager({ runtime, telemetry: openTelemetry() });
 * ```
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Telemetry {
  const tracer =
    options.tracer ?? (options.tracerProvider ?? trace.getTracerProvider()).getTracer(TRACER_NAME);
  return {
    startSpan: (name, attributes) => startSpan(tracer, name, attributes, context.active()),
  };
}
