// The session lifecycle over ACP with the SDK's own client: initialize, new, list, load (replay),
// resume, close, delete, config options, and the protocol errors of each.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type McpServer, methods, RequestError, type SessionUpdate } from '@agentclientprotocol/sdk';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { chunkText, type Harness, startHarness } from './helpers.js';

let directory: string;
let harness: Harness;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'acp-sessions-'));
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

describe('initialize', () => {
  test('initialize advertises protocol 1, load, list/resume/close/delete and the prompt content we hold', async () => {
    harness = startHarness({ serve: { agentInfo: { name: 'test-agent', version: '1.2.3' } } });
    const response = await harness.agent.request(methods.agent.initialize, { protocolVersion: 1 });
    expect(response).toEqual({
      protocolVersion: 1,
      agentCapabilities: {
        loadSession: true,
        promptCapabilities: { image: true, audio: false, embeddedContext: false },
        mcpCapabilities: { http: false, sse: false },
        sessionCapabilities: { list: {}, resume: {}, close: {}, delete: {} },
      },
      authMethods: [],
      agentInfo: { name: 'test-agent', version: '1.2.3' },
    });
  });

  test('initialize answers protocol 1 to a client that asks for a newer version', async () => {
    harness = startHarness();
    const response = await harness.agent.request(methods.agent.initialize, { protocolVersion: 7 });
    expect(response.protocolVersion).toBe(1);
  });

  test('a session method before initialize is refused with -32600', async () => {
    harness = startHarness();
    const error = await rejection(
      harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }),
    );
    expect(error.code).toBe(-32600);
    expect(error.message).toMatch(/initialized before 'session\/new'/);
  });

  test('an unknown method is method-not-found (-32601)', async () => {
    harness = startHarness();
    await harness.initialize();
    const error = await rejection(harness.agent.request('session/teleport', { sessionId: 'x' }));
    expect(error.code).toBe(-32601);
  });

  test('authenticate with no auth configured is invalid params; with auth, sessions wait for it', async () => {
    harness = startHarness();
    await harness.initialize();
    expect(
      (await rejection(harness.agent.request(methods.agent.authenticate, { methodId: 'key' }))).code,
    ).toBe(-32602);
    await harness.close();

    const seen: string[] = [];
    harness = startHarness({
      serve: {
        auth: {
          methods: [{ id: 'key', name: 'API key' }],
          authenticate: async (methodId) => {
            seen.push(methodId);
          },
        },
      },
    });
    const init = await harness.initialize();
    expect((init as { authMethods: unknown }).authMethods).toEqual([{ id: 'key', name: 'API key' }]);
    const refused = await rejection(
      harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }),
    );
    expect(refused.code).toBe(-32000);
    await harness.agent.request(methods.agent.authenticate, { methodId: 'key' });
    expect(seen).toEqual(['key']);
    await harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] });
  });
});

test('a failing authentication is -32000 and leaves the connection unauthenticated', async () => {
  harness = startHarness({
    serve: {
      auth: {
        methods: [{ id: 'key', name: 'API key' }],
        authenticate: async () => {
          throw new Error('bad key');
        },
      },
    },
  });
  await harness.initialize();
  const error = await rejection(harness.agent.request(methods.agent.authenticate, { methodId: 'key' }));
  expect([error.code, error.message]).toEqual([-32000, 'Authentication required: bad key']);
  expect((await rejection(harness.agent.request(methods.agent.session.list, {}))).code).toBe(-32000);
});

describe('session/new', () => {
  test('session/new creates a session in cwd and returns the model config option', async () => {
    harness = startHarness();
    await harness.initialize();
    const response = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    const session = await harness.manager.getSession(response.sessionId);
    expect(session.workingDir).toBe(directory);
    expect(response.configOptions).toEqual([
      {
        type: 'select',
        id: 'model',
        name: 'Model',
        category: 'model',
        description: 'The model of agent default',
        currentValue: 'default',
        options: [
          { value: 'default', name: 'Default' },
          { value: 'test/small', name: 'Small' },
          { value: 'test/large', name: 'Large' },
        ],
      },
    ]);
    expect(harness.served.openSessions()).toEqual([response.sessionId]);
  });

  test.each([
    ['a relative cwd', 'relative/dir'],
    ['a cwd that does not exist', '/no/such/dir/anywhere'],
  ])('session/new with %s is invalid params and creates nothing', async (_, cwd) => {
    harness = startHarness();
    await harness.initialize();
    const error = await rejection(harness.agent.request(methods.agent.session.new, { cwd, mcpServers: [] }));
    expect(error.code).toBe(-32602);
    expect((error.data as { code: string }).code).toBe('INVALID_WORKING_DIR');
    expect((await harness.manager.listSessions()).sessions).toEqual([]);
  });

  test('session/new outside the workingDirRoot is invalid params', async () => {
    harness = startHarness({ manager: { workingDirRoot: join(directory, 'root') } });
    await harness.initialize();
    const error = await rejection(
      harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }),
    );
    expect(error.code).toBe(-32602);
  });

  test('sessionTemplate and onSessionOpened see the request (MCP servers included)', async () => {
    const opened: unknown[] = [];
    harness = startHarness({
      serve: {
        sessionTemplate: () => ({ title: 'From the host', safetyPolicy: 'strict' }),
        onSessionOpened: (event) => {
          opened.push(event);
        },
      },
    });
    await harness.initialize();
    const mcpServers: McpServer[] = [{ name: 'files', command: '/bin/files', args: [], env: [] }];
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers,
    });
    const session = await harness.manager.getSession(sessionId);
    expect([session.title, session.safetyPolicy]).toEqual(['From the host', 'strict']);
    expect(opened).toEqual([{ method: 'new', sessionId, cwd: directory, mcpServers }]);
  });
});

describe('session/new rollback', () => {
  test('session/new whose onSessionOpened fails is an error and leaves no session behind', async () => {
    harness = startHarness({
      serve: {
        onSessionOpened: () => {
          throw new Error('the MCP servers could not be started');
        },
      },
    });
    await harness.initialize();
    const error = await rejection(
      harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }),
    );
    expect(error.code).toBe(-32603);
    expect((await harness.manager.listSessions()).sessions).toEqual([]);
    expect(harness.served.openSessions()).toEqual([]);
  });
});

describe('session/list', () => {
  test('session/list pages with the cursor and filters by cwd', async () => {
    harness = startHarness({ serve: { listPageSize: 2 } });
    await harness.initialize();
    const other = await mkdtemp(join(tmpdir(), 'acp-other-'));
    try {
      const ids: string[] = [];
      for (let index = 0; index < 3; index++) {
        ids.push(
          (await harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }))
            .sessionId,
        );
      }
      const elsewhere = (
        await harness.agent.request(methods.agent.session.new, { cwd: other, mcpServers: [] })
      ).sessionId;
      // Sessions made without a working dir are not ACP sessions and are not listed.
      await harness.manager.createSession();

      const first = await harness.agent.request(methods.agent.session.list, { cwd: directory });
      expect(first.sessions).toHaveLength(2);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = await harness.agent.request(methods.agent.session.list, {
        cwd: directory,
        cursor: first.nextCursor ?? null,
      });
      expect(second.nextCursor ?? undefined).toBeUndefined();
      const listed = [...first.sessions, ...second.sessions];
      expect(listed.map((info) => info.sessionId).sort()).toEqual([...ids].sort());
      expect(listed.every((info) => info.cwd === directory && typeof info.updatedAt === 'string')).toBe(true);

      const all: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await harness.agent.request(
          methods.agent.session.list,
          cursor === undefined ? {} : { cursor },
        );
        all.push(...page.sessions.map((info) => info.sessionId));
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      expect(all.sort()).toEqual([...ids, elsewhere].sort());
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  test('session/list with a malformed cursor or a relative cwd is invalid params', async () => {
    harness = startHarness();
    await harness.initialize();
    expect((await rejection(harness.agent.request(methods.agent.session.list, { cursor: '%%%' }))).code).toBe(
      -32602,
    );
    expect((await rejection(harness.agent.request(methods.agent.session.list, { cwd: 'here' }))).code).toBe(
      -32602,
    );
  });
});

describe('session/load', () => {
  test('session/load replays the stored history item by item before it responds, after a restart', async () => {
    harness = startHarness();
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    await harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'plain hi' }],
    });
    await harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [
        { type: 'text', text: 'tool see ' },
        { type: 'resource_link', uri: 'file:///a.txt', name: 'a.txt' },
      ],
    });
    const stored = await harness.manager.getSession(sessionId);
    // A new connection (an editor restarted) loads it from the store.
    const exported = await harness.manager.exportSessions([sessionId]);
    await harness.close();
    harness = startHarness();
    await harness.manager.importSessions(exported, { onConflict: 'error' });
    await harness.initialize();

    const loading = harness.agent.request(methods.agent.session.load, {
      sessionId,
      cwd: directory,
      mcpServers: [],
    });
    const response = await loading;
    const updates = harness.updatesOf(sessionId);
    expect(response.configOptions).toHaveLength(1);

    const expected: SessionUpdate[] = [];
    for (const item of stored.items) {
      if (item.kind !== 'message') continue;
      const { message } = item;
      if (message.role === 'user') {
        const blocks = message.parts
          ? message.parts.map((part) =>
              part.type === 'text'
                ? { type: 'text' as const, text: part.text }
                : { type: 'resource_link' as const, uri: (part as { uri: string }).uri, name: 'a.txt' },
            )
          : [{ type: 'text' as const, text: message.content }];
        for (const content of blocks)
          expected.push({ sessionUpdate: 'user_message_chunk', content, messageId: message.id });
      } else if (message.role === 'assistant') {
        if (message.content !== '') {
          expected.push({
            sessionUpdate: 'agent_message_chunk',
            content: { type: 'text', text: message.content },
            messageId: message.id,
          });
        }
        for (const call of message.toolCalls ?? []) {
          expected.push({
            sessionUpdate: 'tool_call',
            toolCallId: call.id,
            title: call.name,
            kind: 'other',
            status: 'pending',
            rawInput: JSON.parse(call.arguments),
          });
        }
      } else if (message.role === 'tool') {
        expected.push({
          sessionUpdate: 'tool_call_update',
          toolCallId: message.toolCallId!,
          status: 'completed',
          content: [{ type: 'content', content: { type: 'text', text: message.content } }],
          rawOutput: message.content,
        });
      }
    }
    expected.push({ sessionUpdate: 'session_info_update', title: stored.title, updatedAt: stored.updatedAt });
    expect(updates).toEqual(expected);
    expect(chunkText(updates, 'user_message_chunk')).toBe('plain hitool see ');
  });

  test('session/load of an unknown session is -32002 with the session id', async () => {
    harness = startHarness();
    await harness.initialize();
    const error = await rejection(
      harness.agent.request(methods.agent.session.load, {
        sessionId: 'ses_nope',
        cwd: directory,
        mcpServers: [],
      }),
    );
    expect(error.code).toBe(-32002);
    expect(error.data).toEqual({ sessionId: 'ses_nope' });
  });

  test('session/load with another cwd than the session’s is invalid params and opens nothing', async () => {
    harness = startHarness();
    await harness.initialize();
    const session = await harness.manager.createSession({ workingDir: directory });
    const error = await rejection(
      harness.agent.request(methods.agent.session.load, {
        sessionId: session.id,
        cwd: '/elsewhere',
        mcpServers: [],
      }),
    );
    expect(error.code).toBe(-32602);
    expect(harness.served.openSessions()).toEqual([]);
  });
});

describe('session/resume, close, delete', () => {
  test('session/resume opens a stored session without replaying anything', async () => {
    harness = startHarness();
    await harness.initialize();
    const session = await harness.manager.createSession({ workingDir: directory });
    await harness.manager.addMessage(session.id, 'from elsewhere');
    const response = await harness.agent.request(methods.agent.session.resume, {
      sessionId: session.id,
      cwd: directory,
    });
    expect(response.configOptions).toHaveLength(1);
    expect(harness.notifications).toEqual([]);
    const prompt = await harness.agent.request(methods.agent.session.prompt, {
      sessionId: session.id,
      prompt: [{ type: 'text', text: 'again' }],
    });
    expect(prompt.stopReason).toBe('end_turn');
  });

  test('session/resume of an unknown session is -32002', async () => {
    harness = startHarness();
    await harness.initialize();
    const error = await rejection(
      harness.agent.request(methods.agent.session.resume, { sessionId: 'ses_gone', cwd: directory }),
    );
    expect(error.code).toBe(-32002);
  });

  test('session/close cancels the running prompt, keeps the history loadable, and the session is closed here', async () => {
    harness = startHarness();
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    const running = harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'wait for it' }],
    });
    await expect.poll(() => chunkText(harness.updatesOf(sessionId), 'agent_message_chunk')).toBe('Waiting');
    await harness.agent.request(methods.agent.session.close, { sessionId });
    expect((await running).stopReason).toBe('cancelled');
    expect(harness.served.openSessions()).toEqual([]);
    expect((await harness.manager.getSessionSnapshot(sessionId)).streaming).toBe(false);
    const error = await rejection(
      harness.agent.request(methods.agent.session.prompt, {
        sessionId,
        prompt: [{ type: 'text', text: 'hi' }],
      }),
    );
    expect(error.code).toBe(-32002);
    await harness.agent.request(methods.agent.session.load, { sessionId, cwd: directory, mcpServers: [] });
    expect(chunkText(harness.updatesOf(sessionId), 'user_message_chunk')).toBe('wait for it');
  });

  test('session/delete removes the session from the store and from this connection', async () => {
    harness = startHarness();
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    await harness.agent.request(methods.agent.session.delete, { sessionId });
    await expect(harness.manager.getSession(sessionId)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    expect(harness.served.openSessions()).toEqual([]);
    expect((await harness.agent.request(methods.agent.session.list, {})).sessions).toEqual([]);
  });

  test('session/close and session/delete of unknown ids answer -32002, which the SDK client treats as done', async () => {
    harness = startHarness();
    await harness.initialize();
    // The SDK's client turns -32002 into an empty result for close and delete (idempotent end state).
    await expect(harness.agent.request(methods.agent.session.close, { sessionId: 'ses_x' })).resolves.toEqual(
      {},
    );
    await expect(
      harness.agent.request(methods.agent.session.delete, { sessionId: 'ses_x' }),
    ).resolves.toEqual({});
  });
});

describe('session/set_config_option', () => {
  test('choosing a model sets the session model and returns every option; default clears it', async () => {
    harness = startHarness();
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    const response = await harness.agent.request(methods.agent.session.setConfigOption, {
      sessionId,
      configId: 'model',
      value: 'test/large',
    });
    expect(response.configOptions[0]).toMatchObject({ id: 'model', currentValue: 'test/large' });
    expect((await harness.manager.getSession(sessionId)).agentModelOverrides).toEqual({
      default: 'test/large',
    });
    expect(harness.runtimes[0]?.models.get('default')).toBe('test/large');

    await harness.agent.request(methods.agent.session.setConfigOption, {
      sessionId,
      configId: 'model',
      value: 'default',
    });
    expect((await harness.manager.getSession(sessionId)).agentModelOverrides).toEqual({});
  });

  test.each([
    ['an unknown config id', { configId: 'temperature', value: 'hot' }, -32602],
    ['a model the runtime does not have', { configId: 'model', value: 'other/model' }, -32602],
    ['a boolean for the model', { configId: 'model', type: 'boolean' as const, value: true }, -32602],
  ])('set_config_option with %s is refused', async (_, params, code) => {
    harness = startHarness();
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    const error = await rejection(
      harness.agent.request(methods.agent.session.setConfigOption, { sessionId, ...params } as never),
    );
    expect(error.code).toBe(code);
    expect((await harness.manager.getSession(sessionId)).agentModelOverrides).toEqual({});
  });

  test('set_config_option on a session not open on this connection is -32002', async () => {
    harness = startHarness();
    await harness.initialize();
    const session = await harness.manager.createSession({ workingDir: directory });
    const error = await rejection(
      harness.agent.request(methods.agent.session.setConfigOption, {
        sessionId: session.id,
        configId: 'model',
        value: 'test/small',
      }),
    );
    expect(error.code).toBe(-32002);
  });

  test('a model switched elsewhere reaches the client as config_option_update', async () => {
    harness = startHarness();
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    await harness.manager.setSessionModel(sessionId, 'test/small');
    await harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'hello' }],
    });
    const updates = harness
      .updatesOf(sessionId)
      .filter((update) => update.sessionUpdate === 'config_option_update');
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ configOptions: [{ id: 'model', currentValue: 'test/small' }] });
    // Nothing changed since: the next prompt sends no update.
    await harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'again' }],
    });
    expect(
      harness.updatesOf(sessionId).filter((update) => update.sessionUpdate === 'config_option_update'),
    ).toHaveLength(1);
  });
});

describe('options', () => {
  test.each([0, 1001, 2.5])(
    'serveAcp refuses listPageSize %s with INVALID_ARGUMENT before connecting',
    async (size) => {
      const { client } = await import('@agentclientprotocol/sdk');
      const { serveAcp } = await import('../../src/acp/index.js');
      const { SessionManager } = await import('../../src/index.js');
      const manager = new SessionManager({ runtime: () => ({ async *run() {} }) });
      expect(() => serveAcp(manager, client(), { listPageSize: size })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      await manager.close();
    },
  );
});

describe('session/load of summaries and errors', () => {
  test('summaries replay as compaction_update and failed turns as notices when the client shows them', async () => {
    harness = startHarness();
    await harness.initialize({ session: { notices: {}, compaction: {} } });
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    await harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'hi' }],
    });
    await expect(
      harness.agent.request(methods.agent.session.prompt, {
        sessionId,
        prompt: [{ type: 'text', text: 'fail' }],
      }),
    ).rejects.toMatchObject({ code: -32603 });
    const summary = await harness.manager.addSummary(sessionId, {
      summary: 'They said hi.',
      firstKeptItem: 2,
    });
    harness.notifications.length = 0;
    await harness.agent.request(methods.agent.session.load, { sessionId, cwd: directory, mcpServers: [] });
    const updates = harness.updatesOf(sessionId);
    expect(updates.filter((update) => update.sessionUpdate === 'notice')).toEqual([
      {
        sessionUpdate: 'notice',
        severity: 'error',
        title: 'Error',
        description: expect.stringMatching(/model is down/),
      },
    ]);
    expect(updates.filter((update) => update.sessionUpdate === 'compaction_update')).toEqual([
      {
        sessionUpdate: 'compaction_update',
        compactionId: summary.id,
        status: 'completed',
        summary: [{ type: 'text', text: 'They said hi.' }],
      },
    ]);
  });

  test('without those client capabilities, summaries and errors are left out of the replay', async () => {
    harness = startHarness();
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    await expect(
      harness.agent.request(methods.agent.session.prompt, {
        sessionId,
        prompt: [{ type: 'text', text: 'fail' }],
      }),
    ).rejects.toMatchObject({ code: -32603 });
    await harness.manager.addSummary(sessionId, { summary: 'Nothing yet.', firstKeptItem: 0 });
    harness.notifications.length = 0;
    await harness.agent.request(methods.agent.session.load, { sessionId, cwd: directory, mcpServers: [] });
    expect(harness.updatesOf(sessionId).map((update) => update.sessionUpdate)).toEqual([
      'user_message_chunk',
      'session_info_update',
    ]);
  });

  test('describeToolCall sets the title, kind and locations the editor shows', async () => {
    harness = startHarness({
      serve: {
        describeToolCall: (toolCall) => ({
          title: `Run ${JSON.parse(toolCall.arguments).cmd}`,
          kind: 'execute',
          locations: [{ path: directory }],
        }),
      },
    });
    await harness.initialize();
    const { sessionId } = await harness.agent.request(methods.agent.session.new, {
      cwd: directory,
      mcpServers: [],
    });
    await harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'tool' }],
    });
    expect(harness.permissionRequests[0]?.toolCall).toMatchObject({
      title: 'Run ls',
      kind: 'execute',
      locations: [{ path: directory }],
    });
    expect(harness.updatesOf(sessionId).find((update) => update.sessionUpdate === 'tool_call')).toMatchObject(
      {
        title: 'Run ls',
        kind: 'execute',
      },
    );
  });
});

describe('owner', () => {
  test('a connection with an owner sees, loads, resumes and deletes only its own sessions', async () => {
    harness = startHarness({ serve: { owner: 'ada' } });
    await harness.initialize();
    const mine = (await harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }))
      .sessionId;
    expect((await harness.manager.getSession(mine)).owner).toBe('ada');
    const theirs = await harness.manager.createSession({ workingDir: directory, owner: 'bob' });
    await harness.manager.createSession({ workingDir: directory });

    const listed = await harness.agent.request(methods.agent.session.list, {});
    expect(listed.sessions.map((info) => info.sessionId)).toEqual([mine]);
    for (const request of [
      harness.agent.request(methods.agent.session.load, {
        sessionId: theirs.id,
        cwd: directory,
        mcpServers: [],
      }),
      harness.agent.request(methods.agent.session.resume, { sessionId: theirs.id, cwd: directory }),
    ]) {
      const error = await rejection(request);
      expect([error.code, error.data]).toEqual([-32002, { sessionId: theirs.id }]);
    }
    // The SDK client reads -32002 on delete as done; the session is still there.
    await harness.agent.request(methods.agent.session.delete, { sessionId: theirs.id });
    expect((await harness.manager.getSession(theirs.id)).owner).toBe('bob');
    expect(harness.notifications).toEqual([]);
  });

  test('serveAcp refuses an empty owner', async () => {
    const { client } = await import('@agentclientprotocol/sdk');
    const { serveAcp } = await import('../../src/acp/index.js');
    const { SessionManager } = await import('../../src/index.js');
    const manager = new SessionManager({ runtime: () => ({ async *run() {} }) });
    expect(() => serveAcp(manager, client(), { owner: '' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    await manager.close();
  });
});
