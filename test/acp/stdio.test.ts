// The example agent as an editor runs it: a child process speaking ACP over stdio, driven by the
// SDK's own client through ndJsonStream. Two processes in turn on one FileStore directory, so
// list and load also work after a restart.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  type ClientConnection,
  client,
  methods,
  ndJsonStream,
  RequestError,
  type RequestPermissionRequest,
  type RequestPermissionResponse,
  type SessionNotification,
  type SessionUpdate,
} from '@agentclientprotocol/sdk';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { FileStore } from '../../src/file.js';
import type { SessionItem } from '../../src/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Agent {
  child: ChildProcessWithoutNullStreams;
  connection: ClientConnection;
  notifications: SessionNotification[];
  permissions: RequestPermissionRequest[];
  answer: { current: (request: RequestPermissionRequest) => RequestPermissionResponse };
  stderr: () => string;
  exited: Promise<number | null>;
}

function spawnAgent(store: string): Agent {
  const child = spawn(
    process.execPath,
    // 2 ms between streamed words: a turn outlasts any scheduling hiccup between the two writes
    // of a prompt and its cancel, so the race below never depends on the machine's load.
    ['--import', 'tsx', 'examples/acp-agent.ts', '--store', store, '--delay-ms', '2'],
    { cwd: root, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolvePromise) => child.on('close', resolvePromise));
  const notifications: SessionNotification[] = [];
  const permissions: RequestPermissionRequest[] = [];
  const answer: Agent['answer'] = {
    current: () => ({ outcome: { outcome: 'selected', optionId: 'allow_once' } }),
  };
  const app = client({ name: 'stdio-test-client' })
    .onNotification(methods.client.session.update, ({ params }) => {
      notifications.push(params);
    })
    .onRequest(methods.client.session.requestPermission, ({ params }) => {
      permissions.push(params);
      return answer.current(params);
    });
  const stream = ndJsonStream(
    Writable.toWeb(child.stdin) as WritableStream<Uint8Array>,
    Readable.toWeb(child.stdout) as unknown as ReadableStream<Uint8Array>,
  );
  return {
    child,
    connection: app.connect(stream),
    notifications,
    permissions,
    answer,
    stderr: () => stderr,
    exited,
  };
}

/** Ends the connection (stdin closes) and waits for the agent to exit. */
async function stop(agent: Agent): Promise<number | null> {
  agent.connection.close();
  agent.child.stdin.end();
  return agent.exited;
}

/** A conversation as comparable steps: who said what, which tool calls, which results. */
type Step = [kind: string, ...values: unknown[]];

function storedSteps(items: SessionItem[]): Step[] {
  const steps: Step[] = [];
  for (const item of items) {
    if (item.kind !== 'message') continue;
    const { message } = item;
    if (message.role === 'user') steps.push(['user', message.id, message.content]);
    if (message.role === 'assistant') {
      if (message.content !== '') steps.push(['agent', message.id, message.content]);
      for (const call of message.toolCalls ?? [])
        steps.push(['tool_call', call.id, JSON.parse(call.arguments)]);
    }
    if (message.role === 'tool') steps.push(['tool_result', message.toolCallId, message.content]);
  }
  return steps;
}

function replayedSteps(updates: SessionUpdate[]): Step[] {
  const steps: Step[] = [];
  for (const update of updates) {
    if (update.sessionUpdate === 'user_message_chunk' || update.sessionUpdate === 'agent_message_chunk') {
      const kind = update.sessionUpdate === 'user_message_chunk' ? 'user' : 'agent';
      const text = update.content.type === 'text' ? update.content.text : '';
      const last = steps.at(-1);
      if (last?.[0] === kind && last[1] === update.messageId) last[2] = `${String(last[2])}${text}`;
      else steps.push([kind, update.messageId, text]);
    } else if (update.sessionUpdate === 'tool_call') {
      steps.push(['tool_call', update.toolCallId, update.rawInput]);
    } else if (update.sessionUpdate === 'tool_call_update') {
      steps.push(['tool_result', update.toolCallId, update.rawOutput]);
    }
  }
  return steps;
}

let directory: string;
let agents: Agent[] = [];

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'acp-stdio-'));
  agents = [];
});

afterEach(async () => {
  for (const agent of agents) {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    await agent.exited;
  }
  await rm(directory, { recursive: true, force: true });
});

describe('examples/acp-agent.ts over stdio', { timeout: 120_000 }, () => {
  test('initialize → new → prompt with permission → cancel race → list; restart → load (replay = stored history) → close → delete', async () => {
    const store = join(directory, 'store');
    const workspace = await mkdtemp(join(directory, 'workspace-'));

    // First process.
    const first = spawnAgent(store);
    agents.push(first);
    const agent = first.connection.agent;
    const init = await agent.request(methods.agent.initialize, { protocolVersion: 1 });
    expect(init.agentCapabilities?.loadSession).toBe(true);
    expect(init.agentCapabilities?.sessionCapabilities).toEqual({
      list: {},
      resume: {},
      close: {},
      delete: {},
    });
    const { sessionId, configOptions } = await agent.request(methods.agent.session.new, {
      cwd: workspace,
      mcpServers: [],
    });
    expect(configOptions?.[0]).toMatchObject({ id: 'model', category: 'model' });

    const weather = await agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'What is the weather in Oslo?' }],
    });
    expect(weather.stopReason).toBe('end_turn');
    expect(first.permissions).toHaveLength(1);
    expect(first.permissions[0]?.toolCall).toMatchObject({
      title: 'get_weather',
      rawInput: { city: 'Oslo' },
    });
    const updates = first.notifications.map((notification) => notification.update);
    expect(updates).toContainEqual(
      expect.objectContaining({
        sessionUpdate: 'tool_call_update',
        status: 'completed',
        rawOutput: 'Sunny and 21 °C in Oslo.',
      }),
    );

    // The cancel race, across a real pipe.
    for (let run = 0; run < 25; run++) {
      const response = agent.request(methods.agent.session.prompt, {
        sessionId,
        prompt: [{ type: 'text', text: `hello ${run}` }],
      });
      void agent.notify(methods.agent.session.cancel, { sessionId });
      expect((await response).stopReason).toBe('cancelled');
    }
    expect(
      (
        await agent.request(methods.agent.session.prompt, {
          sessionId,
          prompt: [{ type: 'text', text: 'hello' }],
        })
      ).stopReason,
    ).toBe('end_turn');

    const listed = await agent.request(methods.agent.session.list, { cwd: workspace });
    expect(listed.sessions.map((info) => [info.sessionId, info.cwd])).toEqual([[sessionId, workspace]]);
    expect(await stop(first)).toBe(0);
    expect(first.stderr()).toMatch(/the client disconnected; 1 session\(s\) kept/);

    // Between the two processes: the stored history.
    const files = new FileStore({ directory: store });
    const stored = await files.getSession(sessionId);
    await files.close();

    // Second process: the editor restarted.
    const second = spawnAgent(store);
    agents.push(second);
    const again = second.connection.agent;
    await again.request(methods.agent.initialize, { protocolVersion: 1 });
    const relisted = await again.request(methods.agent.session.list, {});
    expect(relisted.sessions.map((info) => info.sessionId)).toEqual([sessionId]);
    await again.request(methods.agent.session.load, { sessionId, cwd: workspace, mcpServers: [] });
    const replay = second.notifications.filter((n) => n.sessionId === sessionId).map((n) => n.update);
    expect(replayedSteps(replay)).toEqual(storedSteps(stored.items));
    // Cancelled prompts that were admitted before their cancel arrived are in the history too.
    const users = storedSteps(stored.items).filter(([kind]) => kind === 'user');
    expect([users[0]?.[2], users.at(-1)?.[2]]).toEqual(['What is the weather in Oslo?', 'hello']);
    expect(replay.at(-1)).toEqual({
      sessionUpdate: 'session_info_update',
      title: stored.title,
      updatedAt: stored.updatedAt,
    });

    await again.request(methods.agent.session.close, { sessionId });
    await expect(
      again.request(methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'hi' }] }),
    ).rejects.toMatchObject({ code: -32002 });
    await again.request(methods.agent.session.delete, { sessionId });
    expect((await again.request(methods.agent.session.list, {})).sessions).toEqual([]);
    await expect(
      again.request(methods.agent.session.load, { sessionId, cwd: workspace, mcpServers: [] }),
    ).rejects.toBeInstanceOf(RequestError);
    expect(await stop(second)).toBe(0);
    expect(second.stderr()).toMatch(/0 session\(s\) kept/);
  });

  test('malformed JSON-RPC bytes get the protocol’s errors and the agent keeps serving', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/acp-agent.ts', '--delay-ms', '0'], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolvePromise) => child.on('close', resolvePromise));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.resume();
    // Deliberately not JSON-RPC: raw bytes, the one place a hand-written peer is needed.
    child.stdin.write(
      [
        'this is not json',
        '[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}]',
        '42',
        '{"id":2,"method":"initialize"}',
        '{"jsonrpc":"2.0","id":3,"method":"session/new","params":{"cwd":"/tmp","mcpServers":[]}}',
        '{"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":"one"}}',
        '{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":1}}',
        '',
      ].join('\n'),
    );
    const lines = async (count: number) => {
      await expect
        .poll(() => output.split('\n').filter(Boolean).length, { timeout: 30_000 })
        .toBeGreaterThanOrEqual(count);
      return output
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { id: unknown; error?: { code: number }; result?: unknown });
    };
    const responses = await lines(7);
    child.stdin.end();
    expect(await exited).toBe(0);
    expect(responses.map((response) => [response.id, response.error?.code ?? 'ok'])).toEqual(
      [
        [null, -32700],
        [null, -32600],
        [null, -32600],
        [null, -32600],
        [3, -32600],
        [4, -32602],
        [5, 'ok'],
      ].slice(0, responses.length),
    );
    expect(responses).toHaveLength(7);
  });
});
