// Tracing through agent-sessions/otel, recorded by the OpenTelemetry SDK's InMemorySpanExporter: the
// invoke_agent span of a turn (GenAI conventions), and its children for slot waits, human waits and
// store writes; nothing at all without telemetry.
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterEach, describe, expect, test } from 'vitest';
import type { SessionManager } from '../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../src/manager/types.js';
import { openTelemetry } from '../../src/otel/index.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { type ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { startManager } from '../helpers/manager.js';
import { childrenOf, expectInternal, only, spanRecorder } from '../helpers/spans.js';
import { collect } from '../helpers/stores.js';

let parts: { manager: SessionManager; scripted: ScriptedRuntime } | undefined;
afterEach(async () => {
  await parts?.manager.close();
  parts?.scripted.assertConsumed();
  parts = undefined;
  trace.disable();
  context.disable();
});

function start(options: Omit<SessionManagerOptions, 'runtime' | 'store'>) {
  parts = startManager(new MemoryStore(), options);
  return parts;
}

describe('turn spans', () => {
  test('a turn is one invoke_agent span with the GenAI attributes, usage and stop reason; its store writes are children', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: recorder.telemetry });
    const session = await manager.createSession({ agent: 'coder' });
    scripted.reply('Hello there', {
      usage: { inputTokens: 10, outputTokens: 5, cacheReadTokens: 2, model: 'model-2024' },
    });
    const stream = await manager.runSession(session.id, { messages: ['hi'], model: 'big' });
    await collect(stream);

    const spans = await recorder.spans();
    const turn = only(spans, 'invoke_agent coder');
    expectInternal(turn);
    expect(turn.parentSpanContext).toBeUndefined();
    expect(turn.attributes).toEqual({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.conversation.id': session.id,
      'gen_ai.agent.name': 'coder',
      'gen_ai.request.model': 'big',
      'gen_ai.response.model': 'model-2024',
      'gen_ai.usage.input_tokens': 10,
      'gen_ai.usage.output_tokens': 5,
      'gen_ai.usage.cache_read.input_tokens': 2,
      'agent_sessions.turn.id': stream.turnId,
      'agent_sessions.turn.stop_reason': 'end_turn',
    });
    expect(turn.status.code).toBe(SpanStatusCode.UNSET);

    // The assistant message and the usage were written while the turn ran.
    const writes = childrenOf(spans, turn);
    expect(writes.map((span) => span.name)).toEqual(
      expect.arrayContaining(['store.appendItems', 'store.updateSession']),
    );
    const append = writes.find((span) => span.name === 'store.appendItems');
    expect(append?.attributes).toEqual({
      'agent_sessions.store.name': 'memory',
      'agent_sessions.store.operation': 'appendItems',
      'agent_sessions.store.items': 1,
    });
    for (const write of writes) expectInternal(write);
    // Nothing outside the turn: every span is the turn's or one of its children.
    expect(spans).toHaveLength(writes.length + 1);
  });

  test('a session without an agent gives the span name invoke_agent and no gen_ai.agent.name', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: recorder.telemetry });
    const session = await manager.createSession();
    scripted.reply('ok');
    await collect(await manager.runSession(session.id, { messages: ['hi'] }));
    const turn = only(await recorder.spans(), 'invoke_agent');
    expect(turn.attributes['gen_ai.agent.name']).toBeUndefined();
    expect(turn.attributes['gen_ai.request.model']).toBeUndefined();
    expect(turn.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
  });

  test('a failed turn ends its span with status ERROR, error.type = the error code and the exception', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: recorder.telemetry });
    const session = await manager.createSession();
    scripted.turn(new Error('the model is down'));
    const stream = await manager.runSession(session.id, { messages: ['hi'] });
    await collect(stream);
    expect((await stream.done).stopReason).toBe('error');

    const turn = only(await recorder.spans(), 'invoke_agent');
    expect(turn.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: expect.stringContaining('the model is down'),
    });
    expect(turn.attributes['error.type']).toBe('RUNTIME_FAILED');
    expect(turn.attributes['agent_sessions.turn.stop_reason']).toBe('error');
    expect(turn.events.map((event) => event.name)).toEqual(['exception']);
  });

  test('a cancelled turn ends its span with stop reason cancelled and no error', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: recorder.telemetry });
    const session = await manager.createSession();
    scripted.turn([step.hold('h'), step.reply('never')]);
    const stream = await manager.runSession(session.id, { messages: ['hi'] });
    await scripted.waitUntilHeld('h');
    await manager.cancelTurn(session.id);
    await collect(stream);

    const turn = only(await recorder.spans(), 'invoke_agent');
    expect(turn.attributes['agent_sessions.turn.stop_reason']).toBe('cancelled');
    expect(turn.attributes['error.type']).toBeUndefined();
    expect(turn.status.code).toBe(SpanStatusCode.UNSET);
  });

  test('a failed store write is a child span with status ERROR and error.type from the store error', async () => {
    const recorder = spanRecorder();
    const failing = new FailingStore(new MemoryStore());
    parts = startManager(failing, { telemetry: recorder.telemetry });
    const { manager, scripted } = parts;
    const session = await manager.createSession();
    scripted.reply('Hello');
    const stream = await manager.runSession(session.id, { messages: ['hi'] });
    // Admission stored the user message; the assistant message's write fails.
    failing.failNext('appendItems');
    await collect(stream);
    expect((await stream.done).stopReason).toBe('error');
    const spans = await recorder.spans();
    const turn = only(spans, 'invoke_agent');
    const failed = childrenOf(spans, turn).filter((span) => span.status.code === SpanStatusCode.ERROR);
    expect(failed.map((span) => [span.name, span.attributes['error.type']])).toEqual([
      ['store.appendItems', 'STORE_UNAVAILABLE'],
    ]);
    expect(turn.attributes['error.type']).toBe('STORE_UNAVAILABLE');
  });
});

test('with a context manager, a turn span is a child of the span active when runSession was called, follow-ups included', async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const recorder = spanRecorder();
  const { manager, scripted } = start({ telemetry: recorder.telemetry });
  const session = await manager.createSession();
  scripted.turn([step.hold('h'), step.reply('one')]).reply('two');
  const tracer = recorder.provider.getTracer('host');
  const request = tracer.startSpan('POST /sessions/{id}/turns');
  const stream = await context.with(trace.setSpan(context.active(), request), () =>
    manager.runSession(session.id, { messages: ['hi'] }),
  );
  await scripted.waitUntilHeld('h');
  await manager.followUpSession(session.id, ['and then']);
  scripted.release('h');
  await collect(stream);
  request.end();

  const spans = await recorder.spans();
  const host = only(spans, 'POST /sessions/{id}/turns');
  const turns = spans.filter((span) => span.name === 'invoke_agent');
  expect(turns).toHaveLength(2);
  for (const turn of turns) {
    expect(turn.parentSpanContext?.spanId).toBe(host.spanContext().spanId);
    expect(turn.spanContext().traceId).toBe(host.spanContext().traceId);
  }
});

describe('waits', () => {
  test('a tool confirmation is an await_confirmation child span that ends with the answer', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: recorder.telemetry });
    const session = await manager.createSession();
    scripted.turn([
      step.authorize({ id: 'call-1', name: 'shell', arguments: { cmd: 'ls' } }),
      step.authorize({ id: 'call-2', name: 'shell', arguments: { cmd: 'rm' } }),
      step.reply('done'),
    ]);
    const stream = await manager.runSession(session.id, { messages: ['hi'] });
    for await (const event of stream) {
      if (event.type !== 'tool_call_confirmation') continue;
      await manager.resumeSession(session.id, {
        confirmation: event.toolCall.id === 'call-1' ? 'approve' : 'reject',
      });
    }
    const spans = await recorder.spans();
    const turn = only(spans, 'invoke_agent');
    const waits = childrenOf(spans, turn).filter((span) => span.name === 'await_confirmation shell');
    expect(waits.map((span) => span.attributes)).toEqual([
      {
        'agent_sessions.confirmation.id': expect.any(String),
        'gen_ai.tool.name': 'shell',
        'gen_ai.tool.call.id': 'call-1',
        'agent_sessions.human.answer': 'approved',
      },
      {
        'agent_sessions.confirmation.id': expect.any(String),
        'gen_ai.tool.name': 'shell',
        'gen_ai.tool.call.id': 'call-2',
        'agent_sessions.human.answer': 'rejected',
      },
    ]);
    // The wait's span ended when the human answered, before the turn's span. The SimpleSpanProcessor
    // exports each span as it ends, so the exporter's order is the order of the end() calls (span
    // clocks are anchored per trace and may disagree by microseconds, so times are not compared).
    for (const wait of waits) expect(spans.indexOf(wait)).toBeLessThan(spans.indexOf(turn));
  });

  test('an elicitation is an await_elicitation child span; a wait cut short by a cancel ends with answer cancelled and no error', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: recorder.telemetry });
    const session = await manager.createSession();
    scripted.turn([
      step.elicit({ message: 'Which city?' }),
      step.elicit({ message: 'Sure?' }),
      step.reply('x'),
    ]);
    const stream = await manager.runSession(session.id, { messages: ['hi'] });
    let asked = 0;
    for await (const event of stream) {
      if (event.type !== 'elicitation_request') continue;
      asked++;
      if (asked === 1)
        await manager.resumeElicitation(session.id, { action: 'accept', content: { city: 'Oslo' } });
      else await manager.cancelTurn(session.id);
    }
    const spans = await recorder.spans();
    const turn = only(spans, 'invoke_agent');
    const waits = childrenOf(spans, turn).filter((span) => span.name === 'await_elicitation');
    expect(waits.map((span) => span.attributes['agent_sessions.human.answer'])).toEqual([
      'accept',
      'cancelled',
    ]);
    expect(waits.map((span) => span.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
    expect(waits[0]?.attributes['agent_sessions.elicitation.id']).toEqual(expect.any(String));
  });

  test('a turn that waits for a slot (maxConcurrentTurns) has an await_turn_slot child span with its position', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: recorder.telemetry, maxConcurrentTurns: 1 });
    const first = await manager.createSession();
    const second = await manager.createSession();
    scripted.turn([step.hold('a'), step.reply('a')], { sessionId: first.id });
    scripted.reply('b', { sessionId: second.id });
    const running = await manager.runSession(first.id, { messages: ['a'] });
    await scripted.waitUntilHeld('a');
    const waiting = await manager.runSession(second.id, { messages: ['b'] });
    const iterator = waiting[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: 'turn_queued' });
    scripted.release('a');
    await collect(running);
    for (let next = await iterator.next(); !next.done; next = await iterator.next());

    const spans = await recorder.spans();
    const turns = spans.filter((span) => span.name === 'invoke_agent');
    const waited = turns.find((span) => span.attributes['gen_ai.conversation.id'] === second.id)!;
    const slot = only(childrenOf(spans, waited), 'await_turn_slot');
    expect(slot.attributes).toEqual({ 'agent_sessions.queue.position': 1 });
    const ran = turns.find((span) => span.attributes['gen_ai.conversation.id'] === first.id)!;
    expect(childrenOf(spans, ran).some((span) => span.name === 'await_turn_slot')).toBe(false);
  });
});

describe('when tracing is off', () => {
  test('a manager without telemetry makes no span, even with a global tracer provider registered', async () => {
    const recorder = spanRecorder();
    trace.setGlobalTracerProvider(recorder.provider);
    const { manager, scripted } = start({});
    const session = await manager.createSession();
    scripted.turn([
      step.authorize({ name: 'shell' }),
      step.reply('ok', { usage: { inputTokens: 1, outputTokens: 1 } }),
    ]);
    const stream = await manager.runSession(session.id, { messages: ['hi'] });
    for await (const event of stream) {
      if (event.type === 'tool_call_confirmation')
        await manager.resumeSession(session.id, { confirmation: 'approve' });
    }
    expect((await stream.done).stopReason).toBe('end_turn');
    expect(await recorder.spans()).toEqual([]);
  });

  test('openTelemetry() uses the global tracer provider: no span before one is registered, spans once it is', async () => {
    const recorder = spanRecorder();
    const { manager, scripted } = start({ telemetry: openTelemetry() });
    const session = await manager.createSession();
    scripted.reply('one').reply('two');
    await collect(await manager.runSession(session.id, { messages: ['first'] }));
    expect(await recorder.spans()).toEqual([]);

    trace.setGlobalTracerProvider(recorder.provider);
    await collect(await manager.runSession(session.id, { messages: ['second'] }));
    const turn = only(await recorder.spans(), 'invoke_agent');
    expect(turn.instrumentationScope.name).toBe('agent-sessions');
    expect(turn.attributes['gen_ai.conversation.id']).toBe(session.id);
  });

  test('a telemetry that throws (against its contract) never fails a turn: each failure is logged and skipped', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (message: string) => warnings.push(message) };
    const boom = (): never => {
      throw new Error('exporter broke');
    };
    const span = { setAttributes: boom, startChild: boom, end: boom };
    const throwing = { startSpan: () => span };
    const { manager, scripted } = start({ telemetry: throwing, logger });
    const session = await manager.createSession({ agent: 'coder' });
    scripted.reply('still answered', { usage: { inputTokens: 1, outputTokens: 1 } });
    const stream = await manager.runSession(session.id, { messages: ['hi'] });
    await collect(stream);
    expect((await stream.done).stopReason).toBe('end_turn');
    expect(JSON.stringify(await manager.getSession(session.id))).toContain('still answered');
    expect(warnings).toEqual(
      expect.arrayContaining([expect.stringMatching(/^telemetry (startChild|setAttributes|end) threw/)]),
    );

    // A startSpan that throws gives a span that does nothing.
    await manager.close();
    const second = start({ telemetry: { startSpan: boom }, logger });
    const other = await second.manager.createSession();
    second.scripted.reply('again');
    const again = await second.manager.runSession(other.id, { messages: ['hi'] });
    await collect(again);
    expect((await again.done).stopReason).toBe('end_turn');
    expect(warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^telemetry startSpan threw/)]));
  });

  test('new SessionManager rejects a telemetry without startSpan with INVALID_ARGUMENT', () => {
    expect(() => start({ telemetry: {} as never })).toThrowError(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    parts = undefined;
  });
});
