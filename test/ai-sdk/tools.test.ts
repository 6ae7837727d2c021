// runTool: an approved call's execution, its progress and its outcome, under cancellation.
import { tool } from 'ai';
import { describe, expect, test } from 'vitest';
import * as z from 'zod';
import { runTool } from '../../src/ai-sdk/tools.js';

async function drain(generator: AsyncGenerator<unknown, unknown>): Promise<unknown> {
  for (;;) {
    const next = await generator.next();
    if (next.done) return next.value;
  }
}

describe('runTool', () => {
  test('with the turn already cancelled, the tool never runs and the call rejects with the reason', async () => {
    let runs = 0;
    const sleepy = tool({
      inputSchema: z.object({}),
      execute: (_input, { abortSignal }) => {
        runs++;
        // A tool that honours its signal rejects at once: that rejection must not go unobserved.
        return new Promise((_resolve, reject) => {
          if (abortSignal?.aborted) reject(abortSignal.reason);
          abortSignal?.addEventListener('abort', () => reject(abortSignal.reason), { once: true });
        });
      },
    });
    const controller = new AbortController();
    const reason = new Error('cancelled before the tool ran');
    controller.abort(reason);
    const run = runTool({
      name: 'sleepy',
      tool: sleepy,
      toolCallId: 'call_1',
      input: {},
      messages: [],
      signal: controller.signal,
    });
    await expect(drain(run)).rejects.toBe(reason);
    expect(runs).toBe(0);
  });

  test('a cancel while the tool runs rejects at once with the reason, and its late rejection is observed', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    let rejectLater!: (error: unknown) => void;
    const stubborn = tool({
      inputSchema: z.object({}),
      // Ignores its signal, fails later.
      execute: () =>
        new Promise((_resolve, reject) => {
          rejectLater = reject;
          started();
        }),
    });
    const controller = new AbortController();
    const outcome = drain(
      runTool({
        name: 'stubborn',
        tool: stubborn,
        toolCallId: 'call_2',
        input: {},
        messages: [],
        signal: controller.signal,
      }),
    );
    await running;
    const reason = new Error('cancelled mid-tool');
    controller.abort(reason);
    await expect(outcome).rejects.toBe(reason);
    rejectLater(new Error('failed after the cancel'));
  });
});
