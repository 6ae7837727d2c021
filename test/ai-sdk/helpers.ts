// Scripted model calls for the AI SDK runtime tests, on the SDK's own MockLanguageModelV3 and
// simulateReadableStream: each call of the model takes the next script entry, and every call's
// options (the prompt it was sent) are recorded by the mock.
import { simulateReadableStream } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import type { SessionEvent, SessionEventOf } from '../../src/events.js';
import type { SessionManager } from '../../src/manager/session-manager.js';
import type { RunInput, TurnResult, TurnStream } from '../../src/manager/types.js';
import type { Session } from '../../src/schemas.js';

/** The options of one model call (the provider's view: prompt, tools, abort signal). */
export type LanguageModelV3CallOptions = Parameters<MockLanguageModelV3['doStream']>[0];
type StreamOf<T> = T extends ReadableStream<infer C> ? C : never;
/** One part of a model's stream, as a provider sends it. */
export type Chunk = StreamOf<Awaited<ReturnType<MockLanguageModelV3['doStream']>>['stream']>;

/** Usage of a mock step. */
export function usage(
  input: number,
  output: number,
  details: { cacheRead?: number; cacheWrite?: number; reasoning?: number } = {},
): Extract<Chunk, { type: 'finish' }>['usage'] {
  const cacheRead = details.cacheRead;
  const cacheWrite = details.cacheWrite;
  return {
    inputTokens: {
      total: input,
      noCache: input - (cacheRead ?? 0) - (cacheWrite ?? 0),
      cacheRead,
      cacheWrite,
    },
    outputTokens: { total: output, text: output - (details.reasoning ?? 0), reasoning: details.reasoning },
  };
}

type FinishReason = Extract<Chunk, { type: 'finish' }>['finishReason']['unified'];

export function finish(reason: FinishReason = 'stop', used = usage(10, 5)): Chunk {
  return { type: 'finish', finishReason: { unified: reason, raw: reason }, usage: used };
}

/** Chunks of a streamed text answer, one delta per word. */
export function text(answer: string, id = 'text-1'): Chunk[] {
  const words = answer.match(/\S+\s*/g) ?? [];
  return [
    { type: 'text-start', id },
    ...words.map((word): Chunk => ({ type: 'text-delta', id, delta: word })),
    { type: 'text-end', id },
  ];
}

export function reasoning(thought: string, id = 'reasoning-1'): Chunk[] {
  return [
    { type: 'reasoning-start', id },
    { type: 'reasoning-delta', id, delta: thought },
    { type: 'reasoning-end', id },
  ];
}

/** Chunks of a streamed tool call: input in two deltas, then the call. */
export function toolCall(id: string, toolName: string, input: unknown): Chunk[] {
  const json = JSON.stringify(input);
  const half = Math.floor(json.length / 2);
  return [
    { type: 'tool-input-start', id, toolName },
    { type: 'tool-input-delta', id, delta: json.slice(0, half) },
    { type: 'tool-input-delta', id, delta: json.slice(half) },
    { type: 'tool-input-end', id },
    { type: 'tool-call', toolCallId: id, toolName, input: json },
  ];
}

/** One step: its chunks as the mock model streams them (no delays). */
export function step(...chunks: (Chunk | Chunk[])[]): Chunk[] {
  const flat = chunks.flat();
  return flat.some((chunk) => chunk.type === 'finish') ? flat : [...flat, finish()];
}

export const answer = (words: string, used = usage(10, 5)) => step(text(words), finish('stop', used));
export const callTools = (...calls: Array<[id: string, name: string, input: unknown]>) =>
  step(...calls.map(([id, name, input]) => toolCall(id, name, input)), finish('tool-calls'));

/** A script entry: chunks, or a function that makes the stream (to hang, fail or look at the call). */
export type ScriptEntry =
  | Chunk[]
  | ((options: LanguageModelV3CallOptions) => ReadableStream<Chunk> | Promise<ReadableStream<Chunk>>);

/** A MockLanguageModelV3 whose calls take the script's entries in order. */
export function scriptedModel(script: ScriptEntry[], modelId = 'mock-model'): MockLanguageModelV3 {
  let index = 0;
  return new MockLanguageModelV3({
    provider: 'mock',
    modelId,
    // The provider takes every URL itself: the SDK never downloads one (tests make no network calls).
    supportedUrls: { '*/*': [/^https?:\/\//] },
    doStream: async (options) => {
      const entry = script[index++];
      if (entry === undefined)
        throw new Error(`model ${modelId} was called more often than scripted (${index})`);
      const stream =
        typeof entry === 'function'
          ? await entry(options)
          : simulateReadableStream({ chunks: entry, initialDelayInMs: null, chunkDelayInMs: null });
      return { stream };
    },
  });
}

/**
 * A stream that sends `chunks`, then waits until the call's abort signal fires (as a provider's
 * HTTP response does), then errors with the signal's reason.
 */
export function hangingStream(
  chunks: Chunk[],
  options: LanguageModelV3CallOptions,
  onWaiting?: () => void,
): ReadableStream<Chunk> {
  return new ReadableStream<Chunk>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      onWaiting?.();
      const signal = options.abortSignal;
      signal?.addEventListener('abort', () => controller.error(signal.reason), { once: true });
    },
  });
}

export function ofType<T extends SessionEvent['type']>(events: SessionEvent[], type: T): SessionEventOf<T>[] {
  return events.filter((event): event is SessionEventOf<T> => event.type === type);
}

/** A promise and its resolver. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** The prompt a recorded call sent, without provider options (as the stored history converts). */
export function promptOf(model: MockLanguageModelV3, call: number): unknown {
  const options = model.doStreamCalls[call];
  if (!options) throw new Error(`no call ${call}`);
  return options.prompt;
}

/** Runs a turn to its end, answering each event with `onEvent`; resolves to its events and result. */
export async function runTurn(
  manager: SessionManager,
  sessionId: string,
  input: RunInput,
  onEvent: (event: SessionEvent, stream: TurnStream) => Promise<void> | void = () => {},
): Promise<{ events: SessionEvent[]; result: TurnResult }> {
  const stream = await manager.runSession(sessionId, input);
  const events: SessionEvent[] = [];
  for await (const event of stream) {
    events.push(event);
    await onEvent(event, stream);
  }
  return { events, result: await stream.done };
}

/** The stored history as `role[+toolCalls]` labels. */
export function shape(session: Session): string[] {
  return session.items.map((item) =>
    item.kind === 'message'
      ? `${item.message.role}${item.message.toolCalls ? '+calls' : ''}${item.message.isError ? '!' : ''}`
      : item.kind,
  );
}
