/**
 * A small deterministic Runtime for the demo and the examples: no model, no network, no API key.
 *
 * It behaves like an LLM-backed agent would, with canned words:
 * - it thinks out loud (`agent_choice_reasoning`), then streams its answer word by word
 *   (`agent_choice`), then reports the whole answer (`message_added`) and its usage (`token_usage`);
 * - when the user mentions the weather, it calls a pretend `get_weather` tool. The tool is not
 *   marked read-only, so under the default policy the manager asks a human first
 *   (`tool_call_confirmation`, answered with `resumeSession`);
 * - after the tool result (a safe point) it takes steered messages with `turn.takeSteering()` and
 *   answers them in the same turn;
 * - when the user says "sign me up", it asks the human for an email address with `turn.elicit`;
 * - it stops as soon as `turn.signal` aborts, and it can switch between two pretend models.
 *
 * The words are deterministic; only ids and timestamps differ between runs.
 */
import type {
  ModelChoice,
  Runtime,
  RuntimeEventInput,
  RuntimeFactory,
  RuntimeInit,
  ToolCall,
  TurnContext,
} from 'agent-sessions';

/** Options of {@link demoRuntime}. */
export interface DemoRuntimeOptions {
  /** Pause between streamed words, in milliseconds (0 streams as fast as possible). @default 0 */
  delayMs?: number;
}

/** The models {@link DemoRuntime} pretends to have. */
export const DEMO_MODELS: readonly ModelChoice[] = [
  { ref: 'demo/quick', name: 'Demo Quick' },
  { ref: 'demo/thorough', name: 'Demo Thorough' },
];

/** What the pretend weather tool answers, by city. */
export function pretendWeather(city: string): string {
  return `Sunny and 21 °C in ${city}.`;
}

/** A {@link RuntimeFactory} making one {@link DemoRuntime} per session. */
export function demoRuntime(options: DemoRuntimeOptions = {}): RuntimeFactory {
  return (init) => new DemoRuntime(init, options);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function words(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [];
}

/** The last user message of the history: the one this turn answers. */
function lastUserText(turn: TurnContext): string {
  for (let index = turn.session.items.length - 1; index >= 0; index--) {
    const item = turn.session.items[index];
    if (item?.kind === 'message' && item.message.role === 'user') return item.message.content;
  }
  return '';
}

function cityIn(text: string): string {
  return /\bin ([A-Z][a-zA-Z]+)/.exec(text)?.[1] ?? 'Paris';
}

/** The agent loop of one session. */
export class DemoRuntime implements Runtime {
  readonly #delayMs: number;
  /** Model per agent, set by `setModel`. */
  readonly #models = new Map<string, string>();

  constructor(_init: RuntimeInit, options: DemoRuntimeOptions = {}) {
    this.#delayMs = options.delayMs ?? 0;
  }

  async *run(turn: TurnContext): AsyncIterable<RuntimeEventInput> {
    const model = turn.model ?? this.#models.get(turn.agent ?? 'default') ?? DEMO_MODELS[0]!.ref;
    const prompt = lastUserText(turn);
    let outputWords = 0;

    yield* this.#stream('agent_choice_reasoning', `The user wrote “${prompt}”. `, turn.signal);

    const parts: string[] = [];
    if (/weather/i.test(prompt)) {
      const toolCall: ToolCall = {
        id: `call_${crypto.randomUUID()}`,
        name: 'get_weather',
        arguments: JSON.stringify({ city: cityIn(prompt) }),
      };
      yield* this.#stream('agent_choice_reasoning', 'I will look it up with get_weather.', turn.signal);
      // The call is part of the history: an assistant message with toolCalls, then its result.
      yield {
        type: 'message_added',
        message: { role: 'assistant', content: '', toolCalls: [toolCall], model },
      };
      yield { type: 'tool_call', toolCall };
      const decision = await turn.authorizeToolCall({ toolCall });
      let result: string;
      if (decision.approved) {
        yield { type: 'tool_call_output', toolCallId: toolCall.id, output: 'looking at the sky…' };
        await sleep(this.#delayMs * 5, turn.signal);
        result = pretendWeather(cityIn(prompt));
        yield { type: 'tool_call_response', toolCallId: toolCall.id, response: result };
        parts.push(`The weather tool says: ${result}`);
      } else {
        result = `The tool did not run: ${decision.reason}`;
        yield { type: 'tool_call_response', toolCallId: toolCall.id, response: result, isError: true };
        parts.push(`I could not check the weather (${decision.reason}).`);
      }
      yield {
        type: 'message_added',
        message: {
          role: 'tool',
          content: result,
          toolCallId: toolCall.id,
          toolName: toolCall.name,
          ...(decision.approved ? {} : { isError: true }),
        },
      };
    } else if (/sign me up/i.test(prompt)) {
      const answer = await turn.elicit({
        message: 'Which email address should I use?',
        schema: { type: 'object', properties: { email: { type: 'string' } }, required: ['email'] },
      });
      const email =
        answer.action === 'accept' && typeof (answer.content as { email?: unknown })?.email === 'string'
          ? (answer.content as { email: string }).email
          : undefined;
      parts.push(email ? `You are signed up as ${email}.` : 'All right, I did not sign you up.');
    } else if (/^(hi|hello|hey)\b/i.test(prompt)) {
      parts.push('Hello! I am the demo agent: I stream words, think out loud and call a pretend tool.');
    } else {
      parts.push(`You said: “${prompt}”. I am only a demo, so I repeat what I hear.`);
    }

    // A safe point: the tool results are in. Steered messages join this turn's answer.
    const steered = turn.takeSteering();
    for (const extra of steered) parts.push(`You also said “${extra.content}” — noted.`);

    const answer = parts.join(' ');
    for (const word of words(answer)) {
      await sleep(this.#delayMs, turn.signal);
      outputWords++;
      yield { type: 'agent_choice', content: word };
    }
    yield { type: 'message_added', message: { role: 'assistant', content: answer, model } };
    yield {
      type: 'token_usage',
      usage: {
        inputTokens: 12 * turn.session.items.length + words(prompt).length,
        outputTokens: outputWords,
        cost: outputWords * 0.00001,
        model,
      },
    };
  }

  async setModel(agent: string, modelRef: string | undefined): Promise<void> {
    if (modelRef !== undefined && !DEMO_MODELS.some((model) => model.ref === modelRef)) {
      throw new Error(`unknown model ${modelRef}`);
    }
    if (modelRef === undefined) this.#models.delete(agent);
    else this.#models.set(agent, modelRef);
  }

  async availableModels(): Promise<ModelChoice[]> {
    return DEMO_MODELS.map((model) => ({ ...model }));
  }

  async *#stream(
    type: 'agent_choice' | 'agent_choice_reasoning',
    text: string,
    signal: AbortSignal,
  ): AsyncIterable<RuntimeEventInput> {
    for (const word of words(text)) {
      await sleep(this.#delayMs, signal);
      yield { type, content: word };
    }
  }
}
