/**
 * custom-runtime: the shape of an LLM-backed Runtime. The model is fake (so this runs offline),
 * but the loop is the one a real runtime runs against a chat-completions API:
 *
 *   history → model call (streamed) → text deltas and tool calls → authorise each call → run it →
 *   take steered messages → call the model again with the results … until it answers without tools.
 *
 * It shows: streaming deltas, tool calls through `turn.authorizeToolCall`, usage per model call,
 * cancellation through `turn.signal` (passed down to the model call), a step limit
 * (`turn_end: max_turn_requests`), and `setModel` / `availableModels`.
 *
 * Run: npm run example -- custom-runtime
 */
import assert from 'node:assert/strict';
import {
  type ModelChoice,
  type Runtime,
  type RuntimeEventInput,
  type RuntimeFactory,
  SessionManager,
  type ToolCall,
  type TurnContext,
} from 'agent-sessions';

// ───────────────────────────────────────── a fake chat model (stands in for an SDK client)

type ChatMessage = {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
};
type Chunk =
  | { type: 'text'; delta: string }
  | { type: 'tool_call'; id: string; name: string; argumentsDelta: string }
  | { type: 'finish'; usage: { input: number; output: number } };

interface ChatModel {
  stream(request: { model: string; messages: ChatMessage[]; signal: AbortSignal }): AsyncIterable<Chunk>;
}

/** Asks for the clock once, then answers with its result. "Slow" prompts stream slowly. */
const fakeModel: ChatModel = {
  async *stream({ model, messages, signal }) {
    const last = messages.at(-1);
    const slow = messages.some((message) => message.role === 'user' && /slow/i.test(message.content));
    const reply =
      last?.role === 'tool'
        ? `(${model}) It is ${last.content}.`
        : last?.role === 'user' && /time/i.test(last.content)
          ? undefined
          : `(${model}) ${slow ? 'Let me think about that for a long, long while… '.repeat(20) : 'Hello!'}`;
    if (reply === undefined) {
      yield { type: 'tool_call', id: 'call_1', name: 'clock', argumentsDelta: '{"zone":' };
      yield { type: 'tool_call', id: 'call_1', name: 'clock', argumentsDelta: '"UTC"}' };
    } else {
      for (const word of reply.split(/(?<= )/)) {
        // A real client passes `signal` to fetch; aborting it rejects the pending read.
        await new Promise((resolve) => setTimeout(resolve, slow ? 5 : 0));
        signal.throwIfAborted();
        yield { type: 'text', delta: word };
      }
    }
    yield { type: 'finish', usage: { input: 10 * messages.length, output: 7 } };
  },
};

// ───────────────────────────────────────── tools

const tools: Record<string, { readOnly: boolean; run(args: Record<string, unknown>): Promise<string> }> = {
  clock: { readOnly: true, run: async (args) => `12:00 in ${String(args.zone)}` },
};

// ───────────────────────────────────────── the runtime

const MODELS: ModelChoice[] = [
  { ref: 'fake/small', name: 'Fake small' },
  { ref: 'fake/large', name: 'Fake large' },
];
const MAX_MODEL_CALLS = 8;

/** The session's history as the model's messages (the session is frozen and shared: read, never copy). */
function toChat(turn: TurnContext): ChatMessage[] {
  const chat: ChatMessage[] = [{ role: 'system', content: 'You are a helpful agent.' }];
  for (const item of turn.session.items) {
    if (item.kind !== 'message') continue;
    const { role, content, toolCalls, toolCallId } = item.message;
    chat.push({ role, content, ...(toolCalls ? { toolCalls } : {}), ...(toolCallId ? { toolCallId } : {}) });
  }
  return chat;
}

class ChatRuntime implements Runtime {
  readonly #model: ChatModel;
  /** The model per agent; `setModel` changes it, the manager persists the choice. */
  readonly #models = new Map<string, string>();

  constructor(model: ChatModel) {
    this.#model = model;
  }

  async *run(turn: TurnContext): AsyncIterable<RuntimeEventInput> {
    const model = turn.model ?? this.#models.get(turn.agent ?? 'default') ?? MODELS[0]!.ref;
    const chat = toChat(turn);
    for (let call = 0; call < MAX_MODEL_CALLS; call++) {
      let text = '';
      const calls = new Map<string, ToolCall>();
      for await (const chunk of this.#model.stream({ model, messages: chat, signal: turn.signal })) {
        if (chunk.type === 'text') {
          text += chunk.delta;
          yield { type: 'agent_choice', content: chunk.delta };
        } else if (chunk.type === 'tool_call') {
          const toolCall = calls.get(chunk.id) ?? { id: chunk.id, name: chunk.name, arguments: '' };
          toolCall.arguments += chunk.argumentsDelta;
          calls.set(chunk.id, toolCall);
          yield { type: 'partial_tool_call', toolCall: { ...toolCall } };
        } else {
          yield {
            type: 'token_usage',
            usage: { inputTokens: chunk.usage.input, outputTokens: chunk.usage.output, model },
          };
        }
      }
      const toolCalls = [...calls.values()];
      // The manager fills in a message's id and createdAt when a runtime leaves them out.
      yield {
        type: 'message_added',
        message: { role: 'assistant', content: text, model, ...(toolCalls.length ? { toolCalls } : {}) },
      };
      chat.push({ role: 'assistant', content: text, toolCalls });
      if (toolCalls.length === 0) return; // answered: the turn ends with end_turn

      for (const toolCall of toolCalls) {
        yield { type: 'tool_call', toolCall };
        const tool = tools[toolCall.name];
        // The manager decides (permissions, policy) and may wait for a human.
        const decision = await turn.authorizeToolCall({ toolCall, readOnly: tool?.readOnly ?? false });
        let result: string;
        let isError = false;
        if (!tool) [result, isError] = [`unknown tool ${toolCall.name}`, true];
        else if (!decision.approved) [result, isError] = [`rejected: ${decision.reason}`, true];
        else result = await tool.run(JSON.parse(toolCall.arguments) as Record<string, unknown>);
        yield { type: 'tool_call_response', toolCallId: toolCall.id, response: result, isError };
        yield {
          type: 'message_added',
          // The tool's name and whether it failed are kept: the model needs both after a reload.
          message: {
            role: 'tool',
            content: result,
            toolCallId: toolCall.id,
            toolName: toolCall.name,
            isError,
          },
        };
        chat.push({ role: 'tool', content: result, toolCallId: toolCall.id });
      }
      // A safe point: tool results are in. Steered messages join the conversation now.
      for (const steered of turn.takeSteering()) chat.push({ role: 'user', content: steered.content });
    }
    yield { type: 'turn_end', reason: 'max_turn_requests' };
  }

  async setModel(agent: string, modelRef: string | undefined): Promise<void> {
    if (modelRef !== undefined && !MODELS.some((choice) => choice.ref === modelRef)) {
      throw new Error(`unknown model ${modelRef}`);
    }
    if (modelRef === undefined) this.#models.delete(agent);
    else this.#models.set(agent, modelRef);
  }

  async availableModels(): Promise<ModelChoice[]> {
    return MODELS.map((choice) => ({ ...choice }));
  }
}

// One runtime per session; `init` carries the session, the resolved source and a shutdown signal.
const factory: RuntimeFactory = () => new ChatRuntime(fakeModel);

// ───────────────────────────────────────── using it

const manager = new SessionManager({ runtime: factory });
const session = await manager.createSession();

// 1. A tool call: `clock` is read-only, so the default policy approves it without asking.
const first = await manager.runSession(session.id, { messages: ['What time is it?'] });
for await (const event of first) {
  if (event.type === 'agent_choice') process.stdout.write(event.content);
  if (event.type === 'tool_call') console.log(`[tool] ${event.toolCall.name}(${event.toolCall.arguments})`);
  if (event.type === 'tool_call_response') console.log(`[result] ${event.response}`);
}
console.log(`\n→ ${(await first.done).stopReason}`);

// 2. Switching models: the manager calls setModel and persists the choice per agent.
await manager.setSessionModel(session.id, 'fake/large');
const models = await manager.getAvailableModels(session.id);
console.log(
  `models: ${models.models.map((choice) => `${choice.ref}${choice.current ? ' (current)' : ''}`).join(', ')}`,
);

// 3. Cancellation: the manager aborts `turn.signal`; the model call stops mid-stream.
const second = await manager.runSession(session.id, { messages: ['Take it slow.'] });
let words = 0;
for await (const event of second) {
  if (event.type === 'agent_choice' && ++words === 5) second.cancel();
}
const cancelled = await second.done;
console.log(`cancelled after ${words} words → ${cancelled.stopReason}`);

const stored = await manager.getSession(session.id);
console.log(`usage: ${stored.usage.inputTokens} in, ${stored.usage.outputTokens} out`);
await manager.close();

assert.equal(cancelled.stopReason, 'cancelled');
assert.deepEqual(stored.agentModelOverrides, { default: 'fake/large' });
assert.deepEqual(
  stored.items.map((item) => (item.kind === 'message' ? item.message.role : item.kind)),
  // The cancelled turn's streamed words are kept as an interrupted assistant message.
  ['user', 'assistant', 'tool', 'assistant', 'user', 'assistant'],
);
