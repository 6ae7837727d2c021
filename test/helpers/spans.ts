// Spans recorded by the OpenTelemetry SDK's own in-memory exporter, for the tracing tests.
import { SpanKind } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { expect } from 'vitest';
import { openTelemetry } from '../../src/otel/index.js';

/** A provider exporting to memory, the manager's telemetry over it, and readers of what it recorded. */
export function spanRecorder() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const telemetry = openTelemetry({ tracer: provider.getTracer('test') });
  return {
    exporter,
    provider,
    telemetry,
    /** Every finished span, in the order they ended. */
    async spans(): Promise<ReadableSpan[]> {
      await provider.forceFlush();
      return exporter.getFinishedSpans();
    },
  };
}

/** The one span named `name` (fails when there is not exactly one). */
export function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((span) => span.name === name);
  expect(found.map((span) => span.name)).toEqual([name]);
  return found[0]!;
}

/** The spans whose parent is `parent`, by name. */
export function childrenOf(spans: readonly ReadableSpan[], parent: ReadableSpan): ReadableSpan[] {
  const { spanId, traceId } = parent.spanContext();
  return spans.filter(
    (span) => span.parentSpanContext?.spanId === spanId && span.spanContext().traceId === traceId,
  );
}

/** Checks a span is INTERNAL (every span of ours is). */
export function expectInternal(span: ReadableSpan): void {
  expect(span.kind).toBe(SpanKind.INTERNAL);
}
