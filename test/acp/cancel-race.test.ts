// A session/cancel sent right after a session/prompt always ends that prompt `cancelled`, however
// fast the turn is: the cancel is applied in arrival order, before the SDK dispatches either
// message. `npm test` runs 500 back-to-back pairs; `npm run test:acp-race` runs 5000.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { methods } from '@agentclientprotocol/sdk';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { BlockingStore } from '../../src/testing/index.js';
import { type Harness, startHarness } from './helpers.js';

const RUNS = Number(process.env.ACP_RACE_RUNS ?? 500);

let directory: string;
let harness: Harness;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'acp-race-'));
});

afterEach(async () => {
  await harness?.close();
  await rm(directory, { recursive: true, force: true });
});

test(`a cancel sent right after a prompt ends it cancelled (${RUNS} runs, 0 lost)`, {
  timeout: 600_000,
}, async () => {
  harness = startHarness();
  await harness.initialize();
  const { sessionId } = await harness.agent.request(methods.agent.session.new, {
    cwd: directory,
    mcpServers: [],
  });
  const outcomes: Record<string, number> = {};
  for (let run = 0; run < RUNS; run++) {
    // Both go out back to back, with nothing awaited in between: the turn itself needs no I/O.
    const response = harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: `plain run ${run}` }],
    });
    void harness.agent.notify(methods.agent.session.cancel, { sessionId });
    const { stopReason } = await response;
    outcomes[stopReason] = (outcomes[stopReason] ?? 0) + 1;
  }
  expect(outcomes).toEqual({ cancelled: RUNS });
  // Nothing is left running or pending, and the session still answers.
  const snapshot = await harness.manager.getSessionSnapshot(sessionId);
  expect([snapshot.streaming, snapshot.pending.confirmations]).toEqual([false, []]);
  expect(
    (
      await harness.agent.request(methods.agent.session.prompt, {
        sessionId,
        prompt: [{ type: 'text', text: 'plain' }],
      })
    ).stopReason,
  ).toBe('end_turn');
});

test('a cancel that follows a prompt of another session does not touch this one', async () => {
  harness = startHarness();
  await harness.initialize();
  const first = (await harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }))
    .sessionId;
  const second = (await harness.agent.request(methods.agent.session.new, { cwd: directory, mcpServers: [] }))
    .sessionId;
  for (let run = 0; run < 20; run++) {
    const kept = harness.agent.request(methods.agent.session.prompt, {
      sessionId: first,
      prompt: [{ type: 'text', text: 'plain' }],
    });
    const cancelled = harness.agent.request(methods.agent.session.prompt, {
      sessionId: second,
      prompt: [{ type: 'text', text: 'plain' }],
    });
    void harness.agent.notify(methods.agent.session.cancel, { sessionId: second });
    expect([(await kept).stopReason, (await cancelled).stopReason]).toEqual(['end_turn', 'cancelled']);
  }
});

test('a prompt sent right after a cancel is not cancelled by it', async () => {
  harness = startHarness();
  await harness.initialize();
  const { sessionId } = await harness.agent.request(methods.agent.session.new, {
    cwd: directory,
    mcpServers: [],
  });
  for (let run = 0; run < 20; run++) {
    const before = harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'plain' }],
    });
    void harness.agent.notify(methods.agent.session.cancel, { sessionId });
    const after = harness.agent.request(methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'plain' }],
    });
    expect([(await before).stopReason, (await after).stopReason]).toEqual(['cancelled', 'end_turn']);
  }
});

test('a cancel that arrives while the prompt is being admitted (its user message in flight) ends it cancelled', async () => {
  const store = new BlockingStore(new MemoryStore());
  harness = startHarness({ manager: { store } });
  await harness.initialize();
  const { sessionId } = await harness.agent.request(methods.agent.session.new, {
    cwd: directory,
    mcpServers: [],
  });
  store.block('appendItems');
  const response = harness.agent.request(methods.agent.session.prompt, {
    sessionId,
    prompt: [{ type: 'text', text: 'plain' }],
  });
  await store.waitForBlocked('appendItems');
  await harness.agent.notify(methods.agent.session.cancel, { sessionId });
  // Answered in order after the cancel: by then the agent has seen the cancel.
  await harness.agent.request(methods.agent.session.list, {});
  store.release('appendItems');
  expect(await response).toEqual({ stopReason: 'cancelled' });
  const snapshot = await harness.manager.getSessionSnapshot(sessionId);
  expect(snapshot.streaming).toBe(false);
  // The runtime never answered: no assistant message was stored.
  expect(
    snapshot.session.items.some((item) => item.kind === 'message' && item.message.role === 'assistant'),
  ).toBe(false);
});
