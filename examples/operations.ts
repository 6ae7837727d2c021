/**
 * operations: a global turn limit and OpenTelemetry traces. Three sessions ask for a turn at once on
 * a manager that runs at most two: the third waits in line (`turn_queued`, and `queued` in its
 * snapshot) and starts when a slot frees. Every turn is traced; the spans go to the OpenTelemetry
 * SDK's in-memory exporter and are printed as a tree.
 *
 * Run: npm run example -- operations
 */
import assert from 'node:assert/strict';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type Runtime, type SessionEvent, SessionManager } from 'agent-sessions';
import { openTelemetry } from 'agent-sessions/otel';

// A pretend model call per turn: it waits until the example lets it answer.
class ModelCall {
  started!: () => void;
  answer!: () => void;
  readonly running = new Promise<void>((resolve) => {
    this.started = resolve;
  });
  readonly answered = new Promise<void>((resolve) => {
    this.answer = resolve;
  });
}
const calls = new Map<string, ModelCall>();
function call(sessionId: string): ModelCall {
  let model = calls.get(sessionId);
  if (!model) {
    model = new ModelCall();
    calls.set(sessionId, model);
  }
  return model;
}
const runtime: Runtime = {
  async *run(turn) {
    const model = call(turn.sessionId);
    model.started();
    await model.answered;
    yield { type: 'agent_choice', content: 'Done.' };
    yield { type: 'message_added', message: { role: 'assistant', content: 'Done.' } };
    yield { type: 'token_usage', usage: { inputTokens: 12, outputTokens: 3, model: 'pretend-model' } };
  },
};

// In production the host's OpenTelemetry setup registers a global tracer provider (with an OTLP
// exporter, say) and `openTelemetry()` uses it. Here an in-memory exporter shows what was traced.
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

const manager = new SessionManager({
  runtime: () => runtime,
  maxConcurrentTurns: 2,
  telemetry: openTelemetry({ tracerProvider }),
});

const sessions = [
  await manager.createSession({ title: 'first' }),
  await manager.createSession({ title: 'second' }),
  await manager.createSession({ title: 'third', agent: 'researcher' }),
];
const streams: AsyncIterator<SessionEvent>[] = [];
for (const session of sessions) {
  const stream = await manager.runSession(session.id, { messages: [`Hello from ${session.title}`] });
  streams.push(stream[Symbol.asyncIterator]());
}
const next = async (index: number): Promise<SessionEvent> => {
  const step = await streams[index]!.next();
  assert.ok(!step.done);
  return step.value;
};

// Two turns run; the third waits for a slot.
const queued = await next(2);
assert.equal(queued.type, 'turn_queued');
console.log(`third: ${queued.type}, position ${queued.type === 'turn_queued' ? queued.position : '?'}`);
const snapshot = await manager.getSessionSnapshot(sessions[2]!.id);
console.log(
  `third's snapshot: streaming ${snapshot.streaming}, queued at position ${snapshot.queued?.position}`,
);

// The first turn answers and ends: its slot goes to the third.
await call(sessions[0]!.id).running;
call(sessions[0]!.id).answer();
while (!(await streams[0]!.next()).done);
console.log(`first ended; third: ${(await next(2)).type}`);

for (const index of [1, 2]) {
  await call(sessions[index]!.id).running;
  call(sessions[index]!.id).answer();
  while (!(await streams[index]!.next()).done);
}
await manager.close();

// The traces: one invoke_agent span per turn, its waits and store writes below it.
const spans = exporter.getFinishedSpans();
const children = (parent: ReadableSpan | undefined) =>
  spans.filter((span) => span.parentSpanContext?.spanId === parent?.spanContext().spanId);
function print(span: ReadableSpan, depth: number): void {
  const shown = ['gen_ai.conversation.id', 'gen_ai.usage.input_tokens', 'agent_sessions.queue.position']
    .filter((key) => span.attributes[key] !== undefined)
    .map((key) => `${key}=${String(span.attributes[key])}`);
  console.log(`${'  '.repeat(depth)}${span.name}${shown.length > 0 ? `  ${shown.join(' ')}` : ''}`);
  for (const child of children(span)) print(child, depth + 1);
}
for (const root of children(undefined)) print(root, 0);
assert.equal(spans.filter((span) => span.name.startsWith('invoke_agent')).length, 3);
assert.equal(spans.filter((span) => span.name === 'await_turn_slot').length, 1);
