// Smoke test of the built package: every subpath loads with import() and require(), from the
// package's own name (resolved through "exports"), and errors are recognised across the two builds.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const subpaths = [
  'agent-sessions',
  'agent-sessions/file',
  'agent-sessions/store',
  'agent-sessions/testing',
  'agent-sessions/http',
  'agent-sessions/client',
  'agent-sessions/ai-sdk',
  'agent-sessions/acp',
  'agent-sessions/postgres',
  'agent-sessions/redis',
  'agent-sessions/otel',
];
const expected = {
  'agent-sessions': [
    'SessionManager',
    'MemoryStore',
    'AgentSessionsError',
    'stableSourceKey',
    'StaticSourceResolver',
    'RefreshingSourceResolver',
    'SessionSchema',
  ],
  'agent-sessions/file': ['FileStore', 'DirectorySourceResolver'],
  'agent-sessions/store': [
    'defineStore',
    'DefinedStore',
    'isIncrementalDriver',
    'isListingDriver',
    'isSummaryDriver',
    'encodeCursor',
    'decodeCursor',
    'pageSummaries',
    'pageSortedSummaries',
    'validateListOptions',
    'compareListPosition',
    'nextTimestamp',
    'describeStoreConformance',
    'describeCrudConformance',
    'describeListingConformance',
  ],
  'agent-sessions/http': ['createHttpHandler', 'toNodeListener', 'createOpenApiDocument', 'ERROR_STATUS'],
  'agent-sessions/client': ['AgentSessionsClient', 'HttpError', 'AgentSessionsError'],
  'agent-sessions/testing': [
    'ScriptedRuntime',
    'describeStoreConformance',
    'FailingStore',
    'BlockingStore',
    'InterceptingStore',
    'sessionRecord',
  ],
  'agent-sessions/ai-sdk': ['createAiSdkRuntime', 'AiSdkRuntime', 'toModelMessages', 'ModelCallError'],
  'agent-sessions/acp': ['serveAcp', 'TurnUpdates', 'replaySession', 'promptToMessage'],
  // Server entries: loaded only (no server is needed; their tests run against real servers).
  'agent-sessions/postgres': ['PostgresStore', 'PostgresEventLog', 'MigrationError', 'MIGRATIONS', 'migrate'],
  'agent-sessions/redis': ['RedisLeaseLock', 'LeaseLostError', 'RedisEventStream', 'RedisCommandBus'],
  'agent-sessions/otel': ['openTelemetry', 'TRACER_NAME'],
};

for (const subpath of subpaths) {
  const esm = await import(subpath);
  const cjs = require(subpath);
  for (const name of expected[subpath]) {
    assert.ok(name in esm, `${subpath} (ESM) exports ${name}`);
    assert.ok(name in cjs, `${subpath} (CJS) exports ${name}`);
  }
}

const esm = await import('agent-sessions');
const cjs = require('agent-sessions');
assert.notEqual(esm.AgentSessionsError, cjs.AgentSessionsError, 'two builds, two classes');
const fromCjs = new cjs.AgentSessionsError('CLOSED', 'closed');
const fromEsm = new esm.AgentSessionsError('CLOSED', 'closed');
assert.ok(esm.AgentSessionsError.isInstance(fromCjs), 'ESM isInstance recognises a CJS error');
assert.ok(cjs.AgentSessionsError.isInstance(fromEsm), 'CJS isInstance recognises an ESM error');

// One copy of every class per format: errors thrown through agent-sessions/file and
// agent-sessions/testing are instances of the main entry's classes (shared chunks), in ESM and CJS.
const { mkdtemp, rm } = await import('node:fs/promises');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');
for (const [format, load] of [
  ['ESM', (subpath) => import(subpath)],
  ['CJS', async (subpath) => require(subpath)],
]) {
  const main = await load('agent-sessions');
  const file = await load('agent-sessions/file');
  const testing = await load('agent-sessions/testing');
  const storeEntry = await load('agent-sessions/store');
  const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-smoke-'));
  try {
    const store = new file.FileStore({ directory });
    const notFound = await store.getSession('missing').catch((error) => error);
    assert.ok(
      notFound instanceof main.SessionNotFoundError,
      `${format}: FileStore error instanceof main class`,
    );
    assert.ok(
      notFound instanceof main.AgentSessionsError,
      `${format}: FileStore error instanceof base class`,
    );
    assert.ok(main.SessionNotFoundError.isInstance(notFound), `${format}: SessionNotFoundError.isInstance`);
    assert.ok(
      !main.StoreCorruptError.isInstance(notFound),
      `${format}: a sibling class's isInstance is false`,
    );
    assert.equal(notFound.name, 'SessionNotFoundError', `${format}: the error keeps its class name`);
    await store.close();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  const failing = new testing.FailingStore(new main.MemoryStore());
  failing.failNext('listSessions');
  const injected = await failing.listSessions().catch((error) => error);
  assert.ok(injected instanceof main.AgentSessionsError, `${format}: testing error instanceof main class`);
  assert.ok(injected instanceof testing.InjectedStoreError, `${format}: InjectedStoreError instanceof`);
  // A store defined through agent-sessions/store throws the main entry's classes too.
  const defined = storeEntry.defineStore({
    name: 'smoke',
    read: async () => undefined,
    write: async () => {},
    remove: async () => false,
    summaries: async () => [],
  });
  const missing = await defined.getSummary('nope').catch((error) => error);
  assert.ok(
    missing instanceof main.SessionNotFoundError,
    `${format}: defineStore error instanceof main class`,
  );
  assert.ok(!('nextTimestamp' in main), `${format}: store-author helpers are not in the main entry`);
  const base = new main.AgentSessionsError('CLOSED', 'closed');
  assert.equal(base.name, 'AgentSessionsError', `${format}: the base class is named AgentSessionsError`);
}

// A whole turn through each build.
for (const lib of [esm, cjs]) {
  const manager = new lib.SessionManager({
    runtime: () => ({
      async *run() {
        yield { type: 'agent_choice', content: 'ok' };
      },
    }),
  });
  const session = await manager.createSession();
  const stream = await manager.runSession(session.id, { messages: ['hello'] });
  const types = [];
  for await (const event of stream) types.push(event.type);
  assert.ok(
    types.includes('agent_choice') && types.at(-1) === 'stream_stopped',
    `turn events: ${types.join(',')}`,
  );
  await manager.close();
}
// The turn limit (p-queue, loaded with import() by both builds) and the traces of agent-sessions/otel,
// through each build: a second turn waits for the first, and both are traced.
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import(
  '@opentelemetry/sdk-trace-base'
);
for (const [lib, otel] of [
  [esm, await import('agent-sessions/otel')],
  [cjs, require('agent-sessions/otel')],
]) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let open;
  const gate = new Promise((resolve) => {
    open = resolve;
  });
  const manager = new lib.SessionManager({
    runtime: () => ({
      async *run() {
        await gate;
        yield { type: 'agent_choice', content: 'ok' };
      },
    }),
    maxConcurrentTurns: 1,
    telemetry: otel.openTelemetry({ tracerProvider: provider }),
  });
  const first = await manager.createSession();
  const second = await manager.createSession();
  const running = await manager.runSession(first.id, { messages: ['one'] });
  const waiting = await manager.runSession(second.id, { messages: ['two'] });
  const iterator = waiting[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value.type, 'turn_queued', 'the second turn waits');
  open();
  for await (const _event of running);
  for (let step = await iterator.next(); !step.done; step = await iterator.next());
  assert.equal((await waiting.done).stopReason, 'end_turn');
  await provider.forceFlush();
  const turns = exporter.getFinishedSpans().filter((span) => span.name === 'invoke_agent');
  assert.equal(turns.length, 2, 'two turn spans');
  await manager.close();
}
// The HTTP entry answers through each build, and the client's errors are the library's.
for (const [http, client] of [
  [await import('agent-sessions/http'), require('agent-sessions/client')],
  [require('agent-sessions/http'), await import('agent-sessions/client')],
]) {
  const manager = new esm.SessionManager({ runtime: () => ({ async *run() {} }) });
  const handler = http.createHttpHandler(manager);
  assert.equal((await handler(new Request('http://smoke/health'))).status, 200);
  const missing = await handler(new Request('http://smoke/api/sessions/ses_none'));
  const error = client.errorFromWire(await missing.json(), missing.status);
  assert.ok(esm.AgentSessionsError.isInstance(error) && error.code === 'SESSION_NOT_FOUND');
  await manager.close();
}

// A tool call and an answer through each build of the AI SDK runtime, on the SDK's mock model.
const { MockLanguageModelV3 } = await import('ai/test');
const { simulateReadableStream, tool, jsonSchema } = await import('ai');
const finish = (unified) => ({
  type: 'finish',
  finishReason: { unified, raw: unified },
  usage: {
    inputTokens: { total: 3, noCache: 3, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 2, text: 2, reasoning: undefined },
  },
});
for (const [lib, aiSdk] of [
  [esm, await import('agent-sessions/ai-sdk')],
  [cjs, require('agent-sessions/ai-sdk')],
]) {
  const steps = [
    [{ type: 'tool-call', toolCallId: 'c1', toolName: 'echo', input: '{"text":"hi"}' }, finish('tool-calls')],
    [
      { type: 'text-start', id: 't' },
      { type: 'text-delta', id: 't', delta: 'done' },
      { type: 'text-end', id: 't' },
      finish('stop'),
    ],
  ];
  const model = new MockLanguageModelV3({
    doStream: async () => ({
      stream: simulateReadableStream({ chunks: steps.shift(), chunkDelayInMs: null }),
    }),
  });
  const echo = tool({
    inputSchema: jsonSchema({ type: 'object', properties: { text: { type: 'string' } } }),
    execute: async ({ text }) => text,
  });
  const manager = new lib.SessionManager({
    runtime: aiSdk.createAiSdkRuntime({ model, tools: { echo: { tool: echo, readOnly: true } } }),
  });
  const session = await manager.createSession();
  const stream = await manager.runSession(session.id, { messages: ['hello'] });
  const types = [];
  for await (const event of stream) types.push(event.type);
  assert.equal((await stream.done).stopReason, 'end_turn', `ai-sdk turn events: ${types.join(',')}`);
  assert.ok(types.includes('tool_call_response') && types.includes('agent_choice'), types.join(','));
  await manager.close();
}
console.log(`smoke: ${subpaths.length} subpaths load through import and require`);
