/**
 * web-chat: a small web page on `agent-sessions/http` and `agent-sessions/client`: a session list,
 * streamed answers, approve/reject buttons for tool calls, steer and follow-up, and a page that
 * recovers by itself when the server restarts (sessions live in a FileStore).
 *
 * Run: npm run example -- web-chat   (then open the URL it prints; Ctrl-C stops it)
 * Environment: PORT (default 5173; 0 picks a free one), DATA_DIR (default: a folder in the OS temp
 * dir, kept across restarts), DELAY_MS (pause between streamed words, default 40).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SessionManager } from 'agent-sessions';
import { FileStore } from 'agent-sessions/file';
import { createHttpHandler, toNodeListener } from 'agent-sessions/http';
import { build } from 'esbuild';
import { demoRuntime } from '../shared/demo-runtime.js';

const here = dirname(fileURLToPath(import.meta.url));

// The page's script, bundled once at start (the client is plain TypeScript that runs in browsers).
const bundle = await build({
  entryPoints: [join(here, 'page.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  tsconfig: join(here, '..', '..', 'tsconfig.json'),
});
const script = bundle.outputFiles[0]!.text;
const html = readFileSync(join(here, 'index.html'), 'utf8');

// ───────────────────────────────────────── the host: a manager, the handler, two static files

const manager = new SessionManager({
  runtime: demoRuntime({ delayMs: Number(process.env.DELAY_MS ?? 40) }),
  store: new FileStore({ directory: process.env.DATA_DIR ?? join(tmpdir(), 'agent-sessions-web-chat') }),
});
const api = toNodeListener(createHttpHandler(manager));
const server = createServer((request, response) => {
  if (request.method === 'GET' && (request.url === '/' || request.url === '/page.js')) {
    const page = request.url === '/';
    response.writeHead(200, {
      'content-type': page ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8',
      'cache-control': 'no-store',
    });
    response.end(page ? html : script);
    return;
  }
  api(request, response);
});
await new Promise<void>((resolve) => server.listen(Number(process.env.PORT ?? 5173), '127.0.0.1', resolve));
console.log(`web-chat: http://127.0.0.1:${(server.address() as AddressInfo).port}/`);

async function stop(): Promise<void> {
  server.closeAllConnections();
  server.close();
  await manager.close();
  process.exit(0);
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
