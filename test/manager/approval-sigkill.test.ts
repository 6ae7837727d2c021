// Issue 10, "Done when": a host process is killed (SIGKILL) while a tool call waits for
// confirmation; a new process on the same FileStore lists it, approves it, and the tool runs exactly
// once and the turn completes. Once with ScriptedRuntime, once with the AI SDK runtime on
// MockLanguageModelV3 (issue 12's resume after a restart, end to end).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';

const HOST = fileURLToPath(new URL('./fixtures/approval-host.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

function host(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', HOST, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const printed = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (stdout.includes(text)) resolve();
      };
      child.stdout.on('data', check);
      check();
      void exited.then(({ code }) => reject(new Error(`host exited (${code}) before "${text}": ${stderr}`)));
    });
  return { child, exited, printed, output: () => stdout, errors: () => stderr };
}

describe.each(['scripted', 'ai-sdk'])('an approval survives SIGKILL (%s runtime)', (kind) => {
  test('a new process approves the persisted confirmation: the tool runs exactly once and the turn completes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'agent-sessions-sigkill-'));
    roots.push(root);
    const directory = join(root, 'store');
    const toolLog = join(root, 'tool.log');

    const first = host([directory, kind, 'ask', toolLog]);
    await first.printed('pending');
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    const second = host([directory, kind, 'approve', toolLog]);
    const { code } = await second.exited;
    expect(code, second.errors()).toBe(0);
    const report = JSON.parse(second.output().trim()) as {
      stopReason: string;
      pending: string[];
      history: string[];
      pendingAfter: unknown[];
    };
    expect(report.pending).toEqual(['call-1']);
    expect(report.stopReason).toBe('end_turn');
    expect(report.history).toEqual([
      'user:Weather in Paris?',
      'assistant:',
      'tool:Sunny in Paris',
      'assistant:Paris is sunny.',
    ]);
    expect(report.pendingAfter).toEqual([]);
    const runs = (await readFile(toolLog, 'utf8').catch(() => '')).trim().split('\n');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatch(/ Paris$/);
  }, 30_000);
});
