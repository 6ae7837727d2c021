// An ACP client from the SDK itself, connected in process to a served SessionManager, and a small
// runtime whose behaviour each prompt picks by its first word.
import {
  type ClientCapabilities,
  type ClientContext,
  client,
  methods,
  type RequestPermissionRequest,
  type RequestPermissionResponse,
  type SessionNotification,
  type SessionUpdate,
} from '@agentclientprotocol/sdk';
import { type AcpInProcessConnection, type ServeAcpOptions, serveAcp } from '../../src/acp/index.js';
import {
  SessionManager as Manager,
  type ModelChoice,
  type Runtime,
  type RuntimeEventInput,
  type SessionManager,
  type SessionManagerOptions,
  type TurnContext,
} from '../../src/index.js';

export const MODELS: ModelChoice[] = [
  { ref: 'test/small', name: 'Small' },
  { ref: 'test/large', name: 'Large' },
];

/** Resolves when the signal aborts (with its reason as a rejection). */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

function lastUserText(turn: TurnContext): string {
  for (let index = turn.session.items.length - 1; index >= 0; index--) {
    const item = turn.session.items[index];
    if (item?.kind === 'message' && item.message.role === 'user') return item.message.content;
  }
  return '';
}

/**
 * `plain …`: thinks, plans, streams "Hello there", reports usage. `silent …`: only a complete
 * message, nothing streamed. `tool …`: an assistant message with a `shell` call, asks for
 * authorisation, runs it. `wait …`: blocks until cancelled. `fail …`: throws. `refuse …`: ends with
 * `refusal`. `warn …`: a warning and an error event. `ask …`: an elicitation. Anything else: echoes.
 */
export class TestRuntime implements Runtime {
  readonly models = new Map<string, string | undefined>();
  toolRuns = 0;

  async *run(turn: TurnContext): AsyncIterable<RuntimeEventInput> {
    const text = lastUserText(turn);
    const command = text.split(/\s+/)[0] ?? '';
    switch (command) {
      case 'plain':
        yield { type: 'agent_choice_reasoning', content: 'Thinking.' };
        yield {
          type: 'plan_updated',
          entries: [
            { content: 'Greet', status: 'in_progress', priority: 'high' },
            { content: 'Wave', status: 'pending' },
          ],
        };
        yield { type: 'agent_choice', content: 'Hello' };
        yield { type: 'agent_choice', content: ' there' };
        yield { type: 'message_added', message: { role: 'assistant', content: 'Hello there' } };
        yield {
          type: 'token_usage',
          usage: { inputTokens: 10, outputTokens: 2, cost: 0.25, contextLength: 12, contextLimit: 1000 },
        };
        return;
      case 'silent':
        yield { type: 'message_added', message: { role: 'assistant', content: 'Not streamed.' } };
        return;
      case 'tool': {
        const toolCall = {
          id: `call_${turn.turnId}`,
          name: 'shell',
          arguments: JSON.stringify({ cmd: 'ls' }),
        };
        yield { type: 'message_added', message: { role: 'assistant', content: '', toolCalls: [toolCall] } };
        yield { type: 'tool_call', toolCall };
        const decision = await turn.authorizeToolCall({ toolCall });
        let result: string;
        if (decision.approved) {
          this.toolRuns++;
          yield { type: 'tool_call_output', toolCallId: toolCall.id, output: 'listing…' };
          result = 'a.txt b.txt';
          yield { type: 'tool_call_response', toolCallId: toolCall.id, response: result };
        } else {
          result = `rejected: ${decision.reason}`;
          yield { type: 'tool_call_response', toolCallId: toolCall.id, response: result, isError: true };
        }
        yield { type: 'message_added', message: { role: 'tool', content: result, toolCallId: toolCall.id } };
        yield { type: 'agent_choice', content: 'Done.' };
        yield { type: 'message_added', message: { role: 'assistant', content: 'Done.' } };
        return;
      }
      case 'wait':
        yield { type: 'agent_choice', content: 'Waiting' };
        await aborted(turn.signal);
        return;
      case 'warn':
        yield { type: 'warning', message: 'running low on tokens' };
        yield { type: 'error', message: 'a tool server is unreachable', code: 'MCP_DOWN' };
        yield { type: 'agent_choice', content: 'Still here.' };
        return;
      case 'ask': {
        const answer = await turn.elicit({
          message: 'Which email?',
          schema: { type: 'object', properties: { email: { type: 'string' } }, required: ['email'] },
        });
        const text =
          answer.action === 'accept' ? `accepted ${JSON.stringify(answer.content)}` : answer.action;
        yield { type: 'agent_choice', content: text };
        return;
      }
      case 'fail':
        throw new Error('the model is down');
      case 'refuse':
        yield { type: 'agent_choice', content: 'No.' };
        yield { type: 'message_added', message: { role: 'assistant', content: 'No.' } };
        yield { type: 'turn_end', reason: 'refusal' };
        return;
      default:
        yield { type: 'agent_choice', content: `Echo: ${text}` };
        yield { type: 'message_added', message: { role: 'assistant', content: `Echo: ${text}` } };
    }
  }

  async setModel(agent: string, modelRef: string | undefined): Promise<void> {
    if (modelRef !== undefined && !MODELS.some((model) => model.ref === modelRef)) {
      throw new Error(`unknown model ${modelRef}`);
    }
    this.models.set(agent, modelRef);
  }

  async availableModels(): Promise<ModelChoice[]> {
    return MODELS.map((model) => ({ ...model }));
  }
}

export type PermissionAnswer = (
  request: RequestPermissionRequest,
  signal: AbortSignal,
) => RequestPermissionResponse | Promise<RequestPermissionResponse>;

export interface Harness {
  manager: SessionManager;
  runtimes: TestRuntime[];
  served: AcpInProcessConnection;
  agent: ClientContext;
  /** Every `session/update` the client received, in order. */
  notifications: SessionNotification[];
  /** Every permission request the client received. */
  permissionRequests: RequestPermissionRequest[];
  /** How the client answers permission requests; replace it per test. */
  answer: { current: PermissionAnswer };
  updatesOf(sessionId: string): SessionUpdate[];
  initialize(capabilities?: ClientCapabilities): Promise<unknown>;
  close(): Promise<void>;
}

/** A manager on a TestRuntime served to an SDK client app in process. */
export function startHarness(
  options: { manager?: Partial<SessionManagerOptions>; serve?: ServeAcpOptions } = {},
): Harness {
  const runtimes: TestRuntime[] = [];
  const manager = new Manager({
    runtime: () => {
      const runtime = new TestRuntime();
      runtimes.push(runtime);
      return runtime;
    },
    ...options.manager,
  });
  const notifications: SessionNotification[] = [];
  const permissionRequests: RequestPermissionRequest[] = [];
  const answer: { current: PermissionAnswer } = {
    current: () => ({ outcome: { outcome: 'selected', optionId: 'allow_once' } }),
  };
  const app = client({ name: 'test-client' })
    .onNotification(methods.client.session.update, ({ params }) => {
      notifications.push(params);
    })
    .onRequest(methods.client.session.requestPermission, ({ params, signal }) => {
      permissionRequests.push(params);
      return answer.current(params, signal);
    });
  const served = serveAcp(manager, app, options.serve);
  const agent = served.client.agent;
  return {
    manager,
    runtimes,
    served,
    agent,
    notifications,
    permissionRequests,
    answer,
    updatesOf: (sessionId) =>
      notifications.filter((notification) => notification.sessionId === sessionId).map((n) => n.update),
    initialize: (capabilities = {}) =>
      agent.request(methods.agent.initialize, { protocolVersion: 1, clientCapabilities: capabilities }),
    close: async () => {
      await served.close();
      await manager.close();
    },
  };
}

/** The text of the `*_chunk` updates of one kind, joined. */
export function chunkText(updates: SessionUpdate[], kind: SessionUpdate['sessionUpdate']): string {
  let text = '';
  for (const update of updates) {
    if (
      update.sessionUpdate === kind &&
      (update.sessionUpdate === 'agent_message_chunk' ||
        update.sessionUpdate === 'agent_thought_chunk' ||
        update.sessionUpdate === 'user_message_chunk') &&
      update.content.type === 'text'
    ) {
      text += update.content.text;
    }
  }
  return text;
}
