// session/prompt over ACP with the SDK's own client: content blocks in, events out as updates,
// stop reasons, permissions, elicitations, queued prompts and cancellation.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ContentBlock, methods, RequestError, type SessionUpdate } from '@agentclientprotocol/sdk';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { chunkText, type Harness, startHarness } from './helpers.js';

let directory: string;
let harness: Harness;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'acp-prompt-'));
});

afterEach(async () => {
  await harness?.close();
  await rm(directory, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<RequestError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(RequestError);
    return error as RequestError;
  }
  throw new Error('expected the request to fail');
}

async function openSession(
  options: Parameters<typeof startHarness>[0] = {},
  capabilities: Parameters<Harness['initialize']>[0] = {},
): Promise<string> {
  harness = startHarness(options);
  await harness.initialize(capabilities);
  return (await harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }))
    .sessionId;
}

function prompt(sessionId: string, text: string | ContentBlock[]) {
  return harness.agent.request(methods.agent.session.prompt, {
    sessionId,
    prompt: typeof text === 'string' ? [{ type: 'text', text }] : text,
  });
}

function kinds(updates: SessionUpdate[]): string[] {
  return updates.map((update) => update.sessionUpdate);
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe('events as session/update', () => {
  test('a turn streams thoughts, the plan, the answer, usage and the title, and ends end_turn', async () => {
    const sessionId = await openSession();
    const response = await prompt(sessionId, 'plain hi');
    expect(response).toEqual({ stopReason: 'end_turn' });
    const updates = harness.updatesOf(sessionId);
    // The prompt itself is not echoed back: the client shows what it sent.
    expect(kinds(updates)).toEqual([
      'session_info_update',
      'agent_thought_chunk',
      'plan',
      'agent_message_chunk',
      'agent_message_chunk',
      'usage_update',
    ]);
    expect(updates[0]).toEqual({ sessionUpdate: 'session_info_update', title: 'plain hi' });
    expect(chunkText(updates, 'agent_thought_chunk')).toBe('Thinking.');
    expect(chunkText(updates, 'agent_message_chunk')).toBe('Hello there');
    expect(updates[2]).toEqual({
      sessionUpdate: 'plan',
      entries: [
        { content: 'Greet', status: 'in_progress', priority: 'high' },
        { content: 'Wave', status: 'pending', priority: 'medium' },
      ],
    });
    expect(updates[5]).toEqual({
      sessionUpdate: 'usage_update',
      used: 12,
      size: 1000,
      cost: { amount: 0.25, currency: 'USD' },
    });
  });

  test('usage_update carries the session’s cumulative cost across prompts', async () => {
    const sessionId = await openSession({ serve: { costCurrency: 'EUR' } });
    await prompt(sessionId, 'plain one');
    await prompt(sessionId, 'plain two');
    const usage = harness.updatesOf(sessionId).filter((update) => update.sessionUpdate === 'usage_update');
    expect(usage.map((update) => (update as { cost: unknown }).cost)).toEqual([
      { amount: 0.25, currency: 'EUR' },
      { amount: 0.5, currency: 'EUR' },
    ]);
  });

  test('an answer reported only as a complete message is sent as one agent_message_chunk', async () => {
    const sessionId = await openSession();
    await prompt(sessionId, 'silent please');
    expect(chunkText(harness.updatesOf(sessionId), 'agent_message_chunk')).toBe('Not streamed.');
  });

  test('warnings and errors are notices when the client shows notices, and nothing otherwise', async () => {
    let sessionId = await openSession({}, { session: { notices: {} } });
    await prompt(sessionId, 'warn me');
    expect(harness.updatesOf(sessionId).filter((update) => update.sessionUpdate === 'notice')).toEqual([
      {
        sessionUpdate: 'notice',
        severity: 'warning',
        title: 'Warning',
        description: 'running low on tokens',
      },
      {
        sessionUpdate: 'notice',
        severity: 'error',
        title: 'Error',
        description: 'a tool server is unreachable',
      },
    ]);
    await harness.close();
    sessionId = await openSession();
    await prompt(sessionId, 'warn me');
    expect(kinds(harness.updatesOf(sessionId))).not.toContain('notice');
  });

  test('a user message that did not come from this prompt (steered elsewhere) is a user_message_chunk', async () => {
    const sessionId = await openSession();
    const gate = deferred<void>();
    harness.answer.current = async () => {
      await gate.promise;
      return { outcome: { outcome: 'selected', optionId: 'allow_once' } };
    };
    const running = prompt(sessionId, 'tool go');
    await expect.poll(() => harness.permissionRequests.length).toBe(1);
    await harness.manager.steerSession(sessionId, ['and one more thing']);
    gate.resolve();
    expect((await running).stopReason).toBe('end_turn');
    const userChunks = harness
      .updatesOf(sessionId)
      .filter((update) => update.sessionUpdate === 'user_message_chunk');
    expect(userChunks).toEqual([
      expect.objectContaining({ content: { type: 'text', text: 'and one more thing' } }),
    ]);
  });
});

describe('stop reasons', () => {
  test('a runtime that refuses ends the prompt with refusal', async () => {
    const sessionId = await openSession();
    expect(await prompt(sessionId, 'refuse this')).toEqual({ stopReason: 'refusal' });
  });

  test('a failing turn is a JSON-RPC internal error naming our code, and the session stays usable', async () => {
    const sessionId = await openSession();
    const error = await rejection(prompt(sessionId, 'fail now'));
    expect(error.code).toBe(-32603);
    expect(error.data).toMatchObject({ code: 'RUNTIME_FAILED' });
    expect(await prompt(sessionId, 'hello')).toEqual({ stopReason: 'end_turn' });
  });
});

describe('content blocks', () => {
  test('text, a resource link and an image become one user message with parts in order', async () => {
    const sessionId = await openSession();
    await prompt(sessionId, [
      { type: 'text', text: 'Explain ' },
      { type: 'resource_link', uri: 'file:///src/a.ts', name: 'a.ts', mimeType: 'text/typescript' },
      { type: 'image', data: 'aGk=', mimeType: 'image/png' },
    ]);
    const first = (await harness.manager.getSession(sessionId)).items[0];
    expect(first).toMatchObject({
      kind: 'message',
      message: {
        role: 'user',
        content: 'Explain [a.ts](file:///src/a.ts)',
        parts: [
          { type: 'text', text: 'Explain ' },
          { type: 'file', uri: 'file:///src/a.ts', name: 'a.ts', mimeType: 'text/typescript' },
          { type: 'image', data: 'aGk=', mimeType: 'image/png' },
        ],
      },
    });
  });

  test.each<[string, ContentBlock[]]>([
    ['audio', [{ type: 'audio', data: 'AAAA', mimeType: 'audio/wav' }]],
    ['an embedded resource', [{ type: 'resource', resource: { uri: 'file:///a', text: 'secret' } }]],
    ['no blocks at all', []],
  ])('a prompt with %s is invalid params and stores nothing', async (_, blocks) => {
    const sessionId = await openSession();
    const error = await rejection(prompt(sessionId, blocks));
    expect(error.code).toBe(-32602);
    expect((await harness.manager.getSession(sessionId)).items).toEqual([]);
  });

  test('a block the protocol does not know is rejected by the SDK schema (-32602)', async () => {
    const sessionId = await openSession();
    const error = await rejection(
      prompt(sessionId, [{ type: 'video', url: 'x' } as unknown as ContentBlock]),
    );
    expect(error.code).toBe(-32602);
    expect((await harness.manager.getSession(sessionId)).items).toEqual([]);
  });

  test('a prompt to an unknown session, or one not opened on this connection, is -32002', async () => {
    const sessionId = await openSession();
    expect((await rejection(prompt('ses_unknown', 'hi'))).code).toBe(-32002);
    const elsewhere = await harness.manager.createSession({ workingDir: directory });
    const error = await rejection(prompt(elsewhere.id, 'hi'));
    expect([error.code, error.data]).toEqual([-32002, { sessionId: elsewhere.id }]);
    expect(await prompt(sessionId, 'hi')).toEqual({ stopReason: 'end_turn' });
  });
});

describe('permissions', () => {
  test('a confirmation becomes session/request_permission with the four option kinds; allow_once runs the tool once', async () => {
    const sessionId = await openSession();
    expect(await prompt(sessionId, 'tool one')).toEqual({ stopReason: 'end_turn' });
    const [request] = harness.permissionRequests;
    expect(request).toMatchObject({
      sessionId,
      toolCall: { title: 'shell', kind: 'other', status: 'pending', rawInput: { cmd: 'ls' } },
    });
    expect(request?.options.map((option) => [option.optionId, option.kind])).toEqual([
      ['allow_once', 'allow_once'],
      ['allow_always', 'allow_always'],
      ['reject_once', 'reject_once'],
      ['reject_always', 'reject_always'],
    ]);
    const updates = harness.updatesOf(sessionId);
    const toolUpdates = updates.filter(
      (update) => update.sessionUpdate === 'tool_call' || update.sessionUpdate === 'tool_call_update',
    );
    expect(
      toolUpdates.map((update) => [update.sessionUpdate, (update as { status?: string }).status]),
    ).toEqual([
      ['tool_call', 'pending'],
      ['tool_call_update', undefined],
      ['tool_call_update', 'in_progress'],
      ['tool_call_update', 'completed'],
    ]);
    expect(toolUpdates[0]).toMatchObject({ toolCallId: request?.toolCall.toolCallId });
    expect(toolUpdates.at(-1)).toMatchObject({ rawOutput: 'a.txt b.txt' });
    expect(harness.runtimes[0]?.toolRuns).toBe(1);
    expect((await harness.manager.getSession(sessionId)).permissions).toEqual({
      allow: [],
      ask: [],
      deny: [],
    });
    // Once only: the next call asks again.
    await prompt(sessionId, 'tool two');
    expect(harness.permissionRequests).toHaveLength(2);
  });

  test('allow_always approves and allows the tool in this session: the next call asks nobody', async () => {
    const sessionId = await openSession();
    harness.answer.current = () => ({ outcome: { outcome: 'selected', optionId: 'allow_always' } });
    await prompt(sessionId, 'tool one');
    expect((await harness.manager.getSession(sessionId)).permissions.allow).toEqual(['shell']);
    await prompt(sessionId, 'tool two');
    expect(harness.permissionRequests).toHaveLength(1);
    expect(harness.runtimes[0]?.toolRuns).toBe(2);
  });

  test('reject_once rejects this call only: the tool fails, the model is told, the next call asks again', async () => {
    const sessionId = await openSession();
    harness.answer.current = () => ({ outcome: { outcome: 'selected', optionId: 'reject_once' } });
    expect(await prompt(sessionId, 'tool one')).toEqual({ stopReason: 'end_turn' });
    const last = harness
      .updatesOf(sessionId)
      .filter((update) => update.sessionUpdate === 'tool_call_update')
      .at(-1);
    expect(last).toMatchObject({
      status: 'failed',
      rawOutput: 'rejected: The user rejected this tool call.',
    });
    expect(harness.runtimes[0]?.toolRuns).toBe(0);
    expect((await harness.manager.getSession(sessionId)).permissions).toEqual({
      allow: [],
      ask: [],
      deny: [],
    });
    await prompt(sessionId, 'tool two');
    expect(harness.permissionRequests).toHaveLength(2);
  });

  test('reject_always adds a deny rule for the tool: the next call is rejected without asking', async () => {
    const sessionId = await openSession();
    harness.answer.current = () => ({ outcome: { outcome: 'selected', optionId: 'reject_always' } });
    await prompt(sessionId, 'tool one');
    expect((await harness.manager.getSession(sessionId)).permissions.deny).toEqual(['shell']);
    await prompt(sessionId, 'tool two');
    expect(harness.permissionRequests).toHaveLength(1);
    expect(harness.runtimes[0]?.toolRuns).toBe(0);
    const failed = harness
      .updatesOf(sessionId)
      .filter((update) => update.sessionUpdate === 'tool_call_update' && update.status === 'failed');
    expect(failed).toHaveLength(2);
  });

  test('a cancelled permission outcome cancels the turn; the unrun call is failed and closed in history', async () => {
    const sessionId = await openSession();
    harness.answer.current = () => ({ outcome: { outcome: 'cancelled' } });
    expect(await prompt(sessionId, 'tool one')).toEqual({ stopReason: 'cancelled' });
    expect(harness.runtimes[0]?.toolRuns).toBe(0);
    const last = harness
      .updatesOf(sessionId)
      .filter((update) => update.sessionUpdate === 'tool_call_update')
      .at(-1);
    expect(last).toMatchObject({ status: 'failed' });
    const items = (await harness.manager.getSession(sessionId)).items;
    expect(items.at(-1)).toMatchObject({ kind: 'message', message: { role: 'tool' } });
  });

  test('an unknown option id rejects the call rather than approving it', async () => {
    const sessionId = await openSession();
    harness.answer.current = () => ({ outcome: { outcome: 'selected', optionId: 'yes-please' } });
    await prompt(sessionId, 'tool one');
    expect(harness.runtimes[0]?.toolRuns).toBe(0);
  });

  test('a client that fails the permission request gets the call rejected, and the turn goes on', async () => {
    const sessionId = await openSession();
    harness.answer.current = () => {
      throw RequestError.internalError({}, 'no UI');
    };
    expect(await prompt(sessionId, 'tool one')).toEqual({ stopReason: 'end_turn' });
    expect(harness.runtimes[0]?.toolRuns).toBe(0);
  });

  test('a client that never answers, then cancels: the request is withdrawn, the prompt ends cancelled, nothing stays stuck', async () => {
    const sessionId = await openSession();
    const withdrawn = deferred<unknown>();
    harness.answer.current = (_request, signal) =>
      new Promise(() => {
        signal.addEventListener('abort', () => withdrawn.resolve(signal.reason), { once: true });
      });
    const running = prompt(sessionId, 'tool one');
    await expect.poll(() => harness.permissionRequests.length).toBe(1);
    expect((await harness.manager.getSessionSnapshot(sessionId)).pending.confirmations).toHaveLength(1);
    await harness.agent.notify(methods.agent.session.cancel, { sessionId });
    expect(await running).toEqual({ stopReason: 'cancelled' });
    // The SDK sent $/cancel_request for the permission request: the client's handler was aborted.
    await withdrawn.promise;
    const snapshot = await harness.manager.getSessionSnapshot(sessionId);
    expect([snapshot.streaming, snapshot.pending.confirmations]).toEqual([false, []]);
    harness.answer.current = () => ({ outcome: { outcome: 'selected', optionId: 'allow_once' } });
    expect(await prompt(sessionId, 'tool again')).toEqual({ stopReason: 'end_turn' });
  });
});

describe('elicitations', () => {
  test('an elicitation becomes elicitation/create for a client with form support', async () => {
    harness = startHarness();
    const requests: unknown[] = [];
    // A second client app with an elicitation handler, on the same manager.
    const { client, methods: sdkMethods } = await import('@agentclientprotocol/sdk');
    const { serveAcp } = await import('../../src/acp/index.js');
    const app = client({ name: 'form-client' }).onRequest(
      sdkMethods.client.elicitation.create,
      ({ params }) => {
        requests.push(params);
        return { action: 'accept', content: { email: 'ada@example.com' } };
      },
    );
    const served = serveAcp(harness.manager, app);
    try {
      const agent = served.client.agent;
      await agent.request(sdkMethods.agent.initialize, {
        protocolVersion: 1,
        clientCapabilities: { elicitation: { form: {} } },
      });
      const session = await agent.buildSession(directory).start();
      await session.prompt('ask away');
      expect(requests).toEqual([
        expect.objectContaining({ mode: 'form', sessionId: session.sessionId, message: 'Which email?' }),
      ]);
      expect(await session.readText()).toBe('accepted {"email":"ada@example.com"}');
    } finally {
      await served.close();
    }
  });

  test('without elicitation support the elicitation is cancelled and the turn goes on', async () => {
    const sessionId = await openSession();
    expect(await prompt(sessionId, 'ask away')).toEqual({ stopReason: 'end_turn' });
    expect(chunkText(harness.updatesOf(sessionId), 'agent_message_chunk')).toBe('cancel');
  });
});

describe('prompts in one session', () => {
  test('a prompt that arrives while one runs waits and runs after it, each with its own response', async () => {
    const sessionId = await openSession();
    const gate = deferred<void>();
    harness.answer.current = async () => {
      await gate.promise;
      return { outcome: { outcome: 'selected', optionId: 'allow_once' } };
    };
    const first = prompt(sessionId, 'tool first');
    await expect.poll(() => harness.permissionRequests.length).toBe(1);
    const second = prompt(sessionId, 'then this');
    // Queued, not run: the session holds only the first prompt's messages so far.
    const before = await harness.manager.getSession(sessionId);
    expect(
      before.items.filter((item) => item.kind === 'message' && item.message.role === 'user').length,
    ).toBe(1);
    gate.resolve();
    expect(await first).toEqual({ stopReason: 'end_turn' });
    expect(await second).toEqual({ stopReason: 'end_turn' });
    const users = (await harness.manager.getSession(sessionId)).items.flatMap((item) =>
      item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
    );
    expect(users).toEqual(['tool first', 'then this']);
  });

  test('session/cancel cancels the running prompt and the prompts queued behind it; a later prompt runs', async () => {
    const sessionId = await openSession();
    const running = prompt(sessionId, 'wait here');
    const queued = prompt(sessionId, 'queued');
    await expect.poll(() => chunkText(harness.updatesOf(sessionId), 'agent_message_chunk')).toBe('Waiting');
    await harness.agent.notify(methods.agent.session.cancel, { sessionId });
    expect(await running).toEqual({ stopReason: 'cancelled' });
    expect(await queued).toEqual({ stopReason: 'cancelled' });
    expect(await prompt(sessionId, 'after')).toEqual({ stopReason: 'end_turn' });
    const users = (await harness.manager.getSession(sessionId)).items.flatMap((item) =>
      item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
    );
    expect(users).toEqual(['wait here', 'after']);
  });

  test('$/cancel_request for a prompt request cancels that prompt', async () => {
    const sessionId = await openSession();
    const controller = new AbortController();
    const running = harness.agent.request(
      methods.agent.session.prompt,
      { sessionId, prompt: [{ type: 'text', text: 'wait here' }] },
      { cancellationSignal: controller.signal },
    );
    await expect.poll(() => chunkText(harness.updatesOf(sessionId), 'agent_message_chunk')).toBe('Waiting');
    controller.abort();
    expect(await running).toEqual({ stopReason: 'cancelled' });
  });

  test('a cancel for another session leaves this one running', async () => {
    const sessionId = await openSession();
    const other = (await harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }))
      .sessionId;
    const running = prompt(sessionId, 'plain');
    await harness.agent.notify(methods.agent.session.cancel, { sessionId: other });
    expect(await running).toEqual({ stopReason: 'end_turn' });
  });
});
