/**
 * steering-and-follow-ups: talking to an agent while it works.
 *
 * - `steerSession` adds messages to the *running* turn; the runtime takes them at a safe point with
 *   `turn.takeSteering()` (the demo runtime does so after its tool result).
 * - `followUpSession` queues messages that run as their *own* turn after the current one, in the
 *   same TurnStream; on an idle session it starts that turn at once. An idempotency key makes a
 *   retried delivery harmless.
 * - Cancelling drops what is queued; `done.discarded` hands it back (it was never stored).
 *
 * Run: npm run example -- steering-and-follow-ups
 */
import assert from 'node:assert/strict';
import { AgentSessionsError, ErrorCode, SessionManager } from 'agent-sessions';
import { demoRuntime } from './shared/demo-runtime.js';

const manager = new SessionManager({ runtime: demoRuntime() });
const { id } = await manager.createSession();

// Steering needs a running turn.
try {
  await manager.steerSession(id, ['too early']);
} catch (error) {
  assert.ok(AgentSessionsError.hasCode(error, ErrorCode.SESSION_NOT_RUNNING));
  console.log(`steer while idle → ${error.code}`);
}

// The weather question makes the turn wait for a tool approval: a moment when it is surely running.
const stream = await manager.runSession(id, { messages: ['What is the weather in Paris?'] });
for await (const event of stream) {
  if (event.type === 'tool_call_confirmation') {
    await manager.steerSession(id, ['Use Celsius.']);
    const first = await manager.followUpSession(id, ['Thanks!'], { idempotencyKey: 'client-42' });
    const retry = await manager.followUpSession(id, ['Thanks!'], { idempotencyKey: 'client-42' });
    await manager.followUpSession(id, ['Bye.']);
    console.log(`follow-ups: ${first.status}, then the retry: ${retry.status}`);
    const { queues } = await manager.getSessionSnapshot(id);
    console.log(`queued: ${queues.steer.length} steered, ${queues.followUp.length} follow-ups`);
    await manager.resumeSession(id, { confirmation: 'approve' });
  }
  if (event.type === 'user_message')
    console.log(`[${event.turnId?.slice(-4)}] you: ${event.message.content}`);
  if (event.type === 'message_added' && event.message.role === 'assistant' && event.message.content) {
    console.log(`[${event.turnId?.slice(-4)}] agent: ${event.message.content}`);
  }
}
const result = await stream.done;
console.log(`stream done: ${result.stopReason}`);

// Cancelling: the queued follow-up is dropped and handed back, never stored.
const second = await manager.runSession(id, { messages: ['Weather in Berlin?'] });
for await (const event of second) {
  if (event.type === 'tool_call_confirmation') {
    await manager.followUpSession(id, ['This one never runs.']);
    second.cancel();
  }
}
const cancelled = await second.done;
console.log(
  `cancelled: ${cancelled.stopReason}, discarded: ${cancelled.discarded.map((m) => m.content).join(', ')}`,
);

// On an idle session a follow-up starts a turn at once; its events go to the event log.
const since = (await manager.getSessionSnapshot(id)).lastEventSeq;
const started = await manager.followUpSession(id, ['Are you still there?']);
for await (const event of manager.streamEvents(id, { since })) {
  if (event.type === 'message_added') console.log(`(from the event log) agent: ${event.message.content}`);
  if (event.type === 'stream_stopped') break;
}
console.log(`idle follow-up: ${started.status}`);

const session = await manager.getSession(id);
await manager.close();

const userTexts = session.items.flatMap((item) =>
  item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
);
assert.deepEqual(userTexts, [
  'What is the weather in Paris?',
  'Use Celsius.',
  'Thanks!',
  'Bye.',
  'Weather in Berlin?',
  'Are you still there?',
]);
assert.equal(result.stopReason, 'end_turn');
assert.equal(cancelled.stopReason, 'cancelled');
assert.equal(started.status, 'started');
