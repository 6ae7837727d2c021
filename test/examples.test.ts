// Runs every example and the demo as a newcomer would (`npm run example -- NAME`, `npm run demo`),
// in a child process, so none can rot: each must exit 0 and print what it is there to show.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: root,
      // No provider key: examples that can use a real model run offline (tests reach no network).
      env: { ...process.env, CI: 'true', NO_COLOR: '1', OPENAI_API_KEY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

// What each example must print: proof that it did its job, not just that it did not crash.
const expectations: Record<string, RegExp[]> = {
  'ai-sdk-agent': [
    /OPENAI_API_KEY is not set: running with a pretend model/,
    /\[approve\] weather\(\{"city":"Paris"\}\)/,
    /The weather tool says: Sunny and 21 °C in Paris\./,
    /\(end_turn\)/,
  ],
  'basic-chat': [/agent: You said: Hello!/, /"Hello!" holds 4 items/],
  'file-store': [/second store refused: STORE_LOCKED/, /after reopening: 1 session, "Kept on disk", 2 items/],
  'custom-runtime': [/\[tool\] clock/, /models: .*fake\/large \(current\)/, /→ cancelled/],
  'custom-store': [/KeyValueStore: (\d+) of \1 conformance tests passed/],
  'human-approval': [
    /tool result: The tool did not run: not today/,
    /denied by pattern/,
    /signed up as ada@example.com/,
  ],
  'steering-and-follow-ups': [
    /then the retry: duplicate/,
    /discarded: This one never runs\./,
    /idle follow-up: started/,
  ],
  operations: [
    /third: turn_queued, position 1/,
    /queued at position 1/,
    /first ended; third: stream_started/,
    /invoke_agent researcher .*\n {2}await_turn_slot {2}agent_sessions\.queue\.position=1/,
  ],
  'sse-server': [/409 SESSION_BUSY/, /none lost, none repeated/, /without the token → 401/, /server closed/],
  // Without a client (stdin is empty) the agent starts, sees the end of its input and exits;
  // test/acp/stdio.test.ts drives it as an editor does.
  'acp-agent': [
    /acp-agent: serving on stdio, sessions in memory/,
    /the client disconnected; 0 session\(s\) kept; bye/,
  ],
};

const examples = readdirSync(resolve(root, 'examples'))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => name.slice(0, -3))
  .sort();

// Every run starts at once (each is a separate process) and each test waits for its own.
const runs = new Map<string, ReturnType<typeof run>>();
function once(key: string, args: string[]): ReturnType<typeof run> {
  let pending = runs.get(key);
  if (!pending) {
    pending = run(args);
    runs.set(key, pending);
  }
  return pending;
}

describe('examples', { timeout: 90_000 }, () => {
  beforeAll(() => {
    for (const name of examples) void once(name, ['scripts/example.ts', name]);
    void once('demo', ['scripts/demo.ts']);
  });

  test('every example has expectations here', () => {
    expect(examples).toEqual(Object.keys(expectations).sort());
  });

  test.each(examples)('npm run example -- %s exits 0 and prints what it shows', async (name) => {
    const { code, output } = await once(name, ['scripts/example.ts', name]);
    expect(output).not.toMatch(/failed/i);
    expect(code, output).toBe(0);
    for (const pattern of expectations[name] ?? []) expect(output).toMatch(pattern);
  });

  test('npm run example -- an unknown name exits 2 and lists the examples', async () => {
    const { code, output } = await run(['scripts/example.ts', 'no-such-example']);
    expect(code).toBe(2);
    expect(output).toContain('basic-chat');
  });

  test('npm run demo without a terminal passes every check and exits 0', async () => {
    const { code, output } = await once('demo', ['scripts/demo.ts']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/All \d+ checks passed\./);
    expect(output).not.toMatch(/✗/);
  });
});

// Docs quote examples instead of pasting code that can drift: a block marked
// `<!-- excerpt: FILE -->` must appear verbatim in FILE, and every relative link must resolve.
const pages = ['README.md', ...readdirSync(resolve(root, 'docs')).map((name) => `docs/${name}`)].filter(
  (page) => page.endsWith('.md'),
);

describe('docs', () => {
  test.each(pages)('%s quotes its examples verbatim', (page) => {
    const text = readFileSync(resolve(root, page), 'utf8');
    for (const match of text.matchAll(/<!-- excerpt: (\S+) -->\n```ts\n([\s\S]*?)```/g)) {
      const [, file, excerpt] = match as unknown as [string, string, string];
      expect(readFileSync(resolve(root, file), 'utf8'), `${page} quotes ${file}`).toContain(excerpt);
    }
  });

  test.each(pages)('%s links only to files that exist', (page) => {
    const text = readFileSync(resolve(root, page), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      expect(existsSync(resolve(root, dirname(page), target!)), `${page} links to ${target}`).toBe(true);
    }
  });

  test('docs/runtimes.md quotes the AI SDK agent: the twenty lines a host starts from', () => {
    expect(readFileSync(resolve(root, 'docs/runtimes.md'), 'utf8')).toContain(
      '<!-- excerpt: examples/ai-sdk-agent.ts -->',
    );
  });

  test('at least the README quotes basic-chat', () => {
    expect(readFileSync(resolve(root, 'README.md'), 'utf8')).toContain(
      '<!-- excerpt: examples/basic-chat.ts -->',
    );
  });
});
