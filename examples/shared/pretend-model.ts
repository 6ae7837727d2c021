/**
 * A pretend language model for the demo and the examples: the AI SDK's own `MockLanguageModelV3`,
 * streaming with `simulateReadableStream`, that reads the prompt it is sent and answers like a
 * small tool-using model would — offline, deterministic, no API key:
 *
 * - it thinks out loud (reasoning), then streams its answer word by word;
 * - asked about the weather, it calls the first tool it is offered with `{ city }` (the demo's
 *   `get_weather`, {@link pretendTools}); given the
 *   result, it answers with it (or says why it could not check, when the call was rejected);
 * - messages steered in after a tool result are acknowledged in the same answer;
 * - anything else it repeats back.
 *
 * With `createAiSdkRuntime({ models: pretendModels() , tools: pretendTools })` the whole AI SDK
 * runtime runs for real: streaming, approvals, steering, usage, cancellation.
 */
import { simulateReadableStream, tool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import * as z from 'zod';

type CallOptions = Parameters<MockLanguageModelV3['doStream']>[0];
type Prompt = CallOptions['prompt'];
type Chunk =
  Awaited<ReturnType<MockLanguageModelV3['doStream']>>['stream'] extends ReadableStream<infer C> ? C : never;

/** Options of {@link pretendModel}. */
export interface PretendModelOptions {
  /** The model id it reports. @default 'pretend-1' */
  modelId?: string;
  /** Pause between streamed words, in milliseconds (0: none). @default 0 */
  delayMs?: number;
}

/** What the pretend weather tool answers, by city. */
export function pretendWeather(city: string): string {
  return `Sunny and 21 °C in ${city}.`;
}

/**
 * The pretend weather tool: an AI SDK tool whose `execute` reports progress (the SDK's preliminary
 * results) before its answer. Not marked read-only, so the default policy asks a human first.
 */
export const pretendTools = {
  get_weather: tool({
    description: 'The current weather in a city',
    inputSchema: z.object({ city: z.string() }),
    async *execute({ city }) {
      yield 'looking at the sky…';
      yield pretendWeather(city);
    },
  }),
};

function textOf(content: Prompt[number]['content']): string {
  if (typeof content === 'string') return content;
  return content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}

function cityIn(text: string): string {
  return /\bin ([A-Z][a-zA-Z]+)/.exec(text)?.[1] ?? 'Paris';
}

function words(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [];
}

/** What the pretend model does for a prompt: call the tool, or answer with some text. */
function decide(prompt: Prompt): { thought: string; answer?: string; call?: { city: string } } {
  // Trailing user messages after tool results are steered messages of the same turn.
  let end = prompt.length;
  const steered: string[] = [];
  while (end > 0 && prompt[end - 1]?.role === 'user') steered.unshift(textOf(prompt[--end]!.content));
  const before = prompt[end - 1];
  if (before?.role === 'tool') {
    const parts: string[] = [];
    for (const part of before.content) {
      if (part.type !== 'tool-result') continue;
      const output = part.output;
      if (output.type === 'text') parts.push(`The weather tool says: ${output.value}`);
      else if (output.type === 'error-text') parts.push(`I could not check the weather (${output.value}).`);
    }
    for (const extra of steered) parts.push(`You also said “${extra}” — noted.`);
    return { thought: 'I have the tool result. ', answer: parts.join(' ') };
  }
  const question = steered.at(-1) ?? '';
  if (/weather/i.test(question)) {
    return { thought: `The user wrote “${question}”. I will look it up.`, call: { city: cityIn(question) } };
  }
  const answer = /^(hi|hello|hey)\b/i.test(question)
    ? 'Hello! I am a pretend model behind the AI SDK runtime: I stream words, think out loud and call a tool.'
    : `You said: “${question}”. I am only a pretend model, so I repeat what I hear.`;
  return { thought: `The user wrote “${question}”. `, answer };
}

/** A pretend model: a `MockLanguageModelV3` that answers the prompt it is sent (see the module). */
export function pretendModel(options: PretendModelOptions = {}): MockLanguageModelV3 {
  const delay = options.delayMs ?? 0;
  return new MockLanguageModelV3({
    provider: 'pretend',
    modelId: options.modelId ?? 'pretend-1',
    doStream: async ({ prompt, tools }) => {
      const plan = decide(prompt);
      // It calls the first tool it is offered (the demo's get_weather, an example's weather…).
      const toolName = tools?.find((entry) => entry.type === 'function')?.name ?? 'get_weather';
      const chunks: Chunk[] = [{ type: 'reasoning-start', id: 'r' }];
      for (const word of words(plan.thought)) chunks.push({ type: 'reasoning-delta', id: 'r', delta: word });
      chunks.push({ type: 'reasoning-end', id: 'r' });
      let output = words(plan.thought).length;
      if (plan.call) {
        const input = JSON.stringify(plan.call);
        const id = `call_${crypto.randomUUID()}`;
        chunks.push(
          { type: 'tool-input-start', id, toolName },
          { type: 'tool-input-delta', id, delta: input },
          { type: 'tool-input-end', id },
          { type: 'tool-call', toolCallId: id, toolName, input },
        );
        output += 8;
      } else {
        chunks.push({ type: 'text-start', id: 't' });
        for (const word of words(plan.answer ?? ''))
          chunks.push({ type: 'text-delta', id: 't', delta: word });
        chunks.push({ type: 'text-end', id: 't' });
        output += words(plan.answer ?? '').length;
      }
      const input = prompt.reduce((sum, message) => sum + words(JSON.stringify(message.content)).length, 0);
      chunks.push({
        type: 'finish',
        finishReason: { unified: plan.call ? 'tool-calls' : 'stop', raw: undefined },
        usage: {
          inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
          outputTokens: { total: output, text: output, reasoning: undefined },
        },
      });
      return {
        stream: simulateReadableStream({
          chunks,
          initialDelayInMs: delay === 0 ? null : delay,
          chunkDelayInMs: delay === 0 ? null : delay,
        }),
      };
    },
  });
}

/** Two pretend models to switch between (`setSessionModel`). */
export function pretendModels(options: Omit<PretendModelOptions, 'modelId'> = {}) {
  return {
    'pretend/quick': { model: pretendModel({ ...options, modelId: 'pretend-quick' }), name: 'Pretend Quick' },
    'pretend/thorough': {
      model: pretendModel({ ...options, modelId: 'pretend-thorough' }),
      name: 'Pretend Thorough',
    },
  };
}
