/**
 * acp-agent: a SessionManager served to an editor (Zed, or any Agent Client Protocol client) over
 * stdio. The editor starts this program, writes JSON-RPC to its stdin and reads its stdout; every
 * log line goes to stderr, since stdout belongs to the protocol.
 *
 * It runs the offline demo runtime (no model, no API key): it streams words, thinks out loud, and
 * asks for permission before its pretend `get_weather` tool ("What is the weather in Oslo?").
 * With `--store DIR` sessions live in a FileStore, so `session/list` and `session/load` find them
 * after the editor restarts the agent; without it they live in memory.
 *
 * Run: npm run --silent acp-agent -- --store ~/.agent-sessions-acp
 * (`--silent` keeps npm's banner off stdout.) docs/acp.md has the editor configuration.
 */
import { parseArgs } from 'node:util';
import { ndJsonStream } from '@agentclientprotocol/sdk';
import { type Logger, MemoryStore, SessionManager } from 'agent-sessions';
import { serveAcp } from 'agent-sessions/acp';
import { FileStore } from 'agent-sessions/file';
import { demoRuntime } from './shared/demo-runtime.js';
import { stdioStreams } from './shared/stdio.js';

const { values } = parseArgs({
  // `npm run example -- acp-agent` passes the example's name along.
  allowPositionals: true,
  options: {
    store: { type: 'string' },
    'delay-ms': { type: 'string', default: '30' },
    verbose: { type: 'boolean', default: false },
  },
});

const logger: Logger = {
  debug: (message, fields) => values.verbose && console.error('acp-agent debug:', message, fields ?? ''),
  info: (message, fields) => console.error('acp-agent:', message, fields ?? ''),
  warn: (message, fields) => console.error('acp-agent warning:', message, fields ?? ''),
  error: (message, fields) => console.error('acp-agent error:', message, fields ?? ''),
};

const store = values.store ? new FileStore({ directory: values.store }) : new MemoryStore();
const manager = new SessionManager({
  runtime: demoRuntime({ delayMs: Number(values['delay-ms']) }),
  store,
  logger,
});

const { output, input } = stdioStreams();
const served = serveAcp(manager, ndJsonStream(output, input), {
  agentInfo: { name: 'agent-sessions-demo', title: 'agent-sessions demo', version: '0.1.0' },
  logger,
  // The demo runtime reports no context window; a real runtime's usage does.
  contextWindow: 128_000,
});
console.error(`acp-agent: serving on stdio, sessions in ${values.store ?? 'memory'}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void served.close());
}

await served.closed;
const sessions = (await manager.listSessions({ limit: 1000 })).sessions.length;
await manager.close();
console.error(`acp-agent: the client disconnected; ${sessions} session(s) kept; bye`);
