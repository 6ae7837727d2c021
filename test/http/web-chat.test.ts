// End to end in a real browser: the web-chat example (`npm run example -- web-chat`) driven in
// headless Chromium (Debian's `chromium`, through playwright-core). Send a message, see the streamed
// answer, approve a tool call, kill the server mid-turn and start it again, see the page recover.
// Screenshots go to test-results/web-chat/ (gitignored). Without Chromium this test fails, loudly.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const output = join(root, 'test-results', 'web-chat');

function chromiumPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      'Chromium is missing: the web-chat browser test needs Debian’s chromium (apt-get install -y chromium); .ci/run installs it',
    );
  }
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolvePromise) => probe.listen(0, '127.0.0.1', resolvePromise));
  const address = probe.address();
  await new Promise((resolvePromise) => probe.close(resolvePromise));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Starts the example as `npm run example -- web-chat` does, and waits for the URL it prints. */
function startExample(port: number, dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/example.ts', 'web-chat'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, DELAY_MS: '60' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolvePromise, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /web-chat: (http:\/\/\S+)/.exec(output)?.[1];
      if (url) resolvePromise({ child, url });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`web-chat exited with ${code}: ${output}`)));
  });
}

function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    child.once('exit', () => resolvePromise());
    child.kill(signal);
  });
}

let context: BrowserContext;
let page: Page;
let server: ChildProcess;
let port: number;
const dataDir = mkdtempSync(join(tmpdir(), 'agent-sessions-web-chat-test-'));
const profile = mkdtempSync(join(tmpdir(), 'agent-sessions-chromium-'));

beforeAll(async () => {
  const executablePath = chromiumPath();
  mkdirSync(output, { recursive: true });
  port = await freePort();
  server = (await startExample(port, dataDir)).child;
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1000, height: 640 },
  });
  page = context.pages()[0] ?? (await context.newPage());
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (server) await kill(server, 'SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
});

const assistant = () => page.locator('[data-role="assistant"]');

describe('web-chat in headless Chromium', { timeout: 60_000 }, () => {
  test('streams an answer, asks for and takes an approval, and recovers after a server restart mid-turn', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByTestId('new-session').click();
    await expect.poll(() => page.getByTestId('status').getAttribute('data-state')).toBe('connected');

    // A tool call: the page shows approve/reject; approving lets the turn finish.
    await page.getByTestId('input').fill('What is the weather in Paris?');
    await page.getByTestId('send').click();
    await page.getByTestId('approve').waitFor({ timeout: 15_000 });
    // Steering while the turn waits: the agent takes it after the tool result, in the same answer.
    await page.getByTestId('input').fill('Should I take an umbrella?');
    await page.getByTestId('steer').click();
    await page.screenshot({ path: join(output, 'approval-asked.png') });
    await page.getByTestId('approve').click();
    await page.getByText('✔ approved get_weather').waitFor();
    await assistant().last().getByText('Sunny and 21 °C in Paris.').waitFor({ timeout: 15_000 });
    await assistant().last().getByText('You also said “Should I take an umbrella?” — noted.').waitFor();
    await page.locator('[data-role="user"]', { hasText: 'Should I take an umbrella?' }).waitFor();
    expect(await page.locator('[data-role="user"]').first().textContent()).toBe(
      'What is the weather in Paris?',
    );
    await expect
      .poll(() => page.getByTestId('sessions').textContent())
      .toContain('What is the weather in Paris?');
    await page.screenshot({ path: join(output, 'answer-and-approval.png') });

    // Streaming: the answer grows word by word.
    const answered = await assistant().count();
    await page
      .getByTestId('input')
      .fill('Please tell me a long story about the sea, the ships and the lighthouse keepers');
    await page.getByTestId('send').click();
    const story = assistant().nth(answered);
    await story.getByText('You said:').waitFor({ timeout: 15_000 });
    const early = (await story.textContent())!.length;
    await expect.poll(async () => (await story.textContent())!.length).toBeGreaterThan(early);

    // The server dies mid-turn (kill -9) and comes back on the same port and data directory.
    await kill(server, 'SIGKILL');
    await expect.poll(() => page.getByTestId('status').getAttribute('data-state')).toBe('reconnecting');
    server = (await startExample(port, dataDir)).child;
    await expect
      .poll(() => page.getByTestId('status').textContent(), { timeout: 20_000 })
      .toBe('connected (reloaded)');
    // The page reloaded the history from the store: both questions are there, the first answer too.
    await page.getByText('Sunny and 21 °C in Paris.').first().waitFor();
    expect(await page.locator('[data-role="user"]').count()).toBe(3);

    // And it works again.
    await page.getByTestId('input').fill('Hello again');
    await page.getByTestId('send').click();
    await assistant().last().getByText('I am the demo agent').waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(output, 'recovered.png') });
  });

  test('switching sessions quickly shows the last one chosen, even when an earlier one answers late', async () => {
    const { sessions } = (await (await fetch(`http://127.0.0.1:${port}/api/sessions`)).json()) as {
      sessions: Array<{ id: string; title: string }>;
    };
    const first = sessions.find((session) => session.title.startsWith('What is the weather'))!;
    let release!: () => void;
    const held = new Promise<void>((resolvePromise) => {
      release = resolvePromise;
    });
    // The first session's snapshot is slow to come back.
    await page.route(`**/api/sessions/${first.id}/status`, async (route) => {
      await held;
      await route.continue();
    });
    const slowSnapshot = page.waitForResponse(`**/api/sessions/${first.id}/status`);
    await page.getByTestId('sessions').getByText(first.title).click();
    await page.getByTestId('new-session').click();
    await expect.poll(() => page.getByTestId('title').textContent()).toBe('New chat');
    release();
    await slowSnapshot;
    await page.getByTestId('input').fill('Hello from the newest session');
    await page.getByTestId('send').click();
    await assistant().last().getByText('I am the demo agent').waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('title').textContent()).not.toContain('What is the weather');
    expect(await page.locator('[data-role="user"]').allTextContents()).toEqual([
      'Hello from the newest session',
    ]);
    await page.unroute(`**/api/sessions/${first.id}/status`);
  });
});
