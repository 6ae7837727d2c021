/**
 * human-approval: the human in the loop. A runtime asks `turn.authorizeToolCall` before running a
 * tool; the manager decides from the session's permissions and safety policy and, when it must ask,
 * emits `tool_call_confirmation` and waits for `resumeSession`. Elicitations (`turn.elicit`) work
 * the same way with `elicitation_request` and `resumeElicitation`.
 *
 * The order of the decision: a `deny` pattern → rejected; an `allow` pattern → approved; an `ask`
 * pattern → ask; else the policy ('' asks unless the tool is read-only; 'autonomous' approves …).
 *
 * Run: npm run example -- human-approval
 */
import assert from 'node:assert/strict';
import { type SessionEvent, SessionManager, type TurnStream } from 'agent-sessions';
import { demoRuntime } from './shared/demo-runtime.js';

const manager = new SessionManager({ runtime: demoRuntime() });
const { id } = await manager.createSession();

/** Runs a turn and answers each question the way `answer` says; returns the events. */
async function turn(text: string, answer: (event: SessionEvent) => Promise<void>): Promise<SessionEvent[]> {
  const stream: TurnStream = await manager.runSession(id, { messages: [text] });
  const events: SessionEvent[] = [];
  for await (const event of stream) {
    events.push(event);
    if (event.type === 'tool_call_confirmation' || event.type === 'elicitation_request') await answer(event);
    if (event.type === 'tool_call_response') console.log(`  tool result: ${event.response}`);
  }
  const answerText = events
    .flatMap((event) => (event.type === 'agent_choice' ? [event.content] : []))
    .join('');
  console.log(`  agent: ${answerText}`);
  return events;
}

const asked = (events: SessionEvent[]) =>
  events.filter((event) => event.type === 'tool_call_confirmation').length;

// 1. The default policy asks; we reject with a reason the model gets to see.
console.log('1. reject:');
const rejected = await turn('What is the weather in Oslo?', async (event) => {
  if (event.type !== 'tool_call_confirmation') return;
  console.log(`  asked to approve ${event.toolCall.name}(${event.toolCall.arguments})`);
  await manager.resumeSession(id, { confirmation: 'reject', reason: 'not today' });
});
assert.equal(asked(rejected), 1);

// 2. 'approve-tool' approves and remembers: get_weather is always allowed in this session (persisted).
console.log('2. approve and always allow this tool:');
await turn('And the weather in Rome?', async (event) => {
  if (event.type !== 'tool_call_confirmation') return;
  await manager.resumeSession(id, { confirmation: 'approve-tool', confirmationId: event.confirmationId });
});
console.log(`  permissions: ${JSON.stringify((await manager.getSession(id)).permissions)}`);

// 3. Now nobody is asked.
console.log('3. allowed by pattern:');
const allowed = await turn('Weather in Lisbon, please.', async () => assert.fail('nobody should be asked'));
assert.equal(asked(allowed), 0);

// 4. A deny pattern wins over allow; patterns may test arguments (`tool:arg=glob`).
console.log('4. denied by pattern:');
await manager.updateSessionPermissions(id, {
  allow: ['get_weather'],
  ask: [],
  deny: ['get_weather:city=Mos*'],
});
const denied = await turn('What is the weather in Moscow?', async () =>
  assert.fail('nobody should be asked'),
);
assert.ok(denied.some((event) => event.type === 'tool_call_response' && event.isError));

// 5. The same loop answers elicitations: the runtime asks for a value, the host supplies it.
console.log('5. elicitation:');
await turn('Sign me up for the newsletter.', async (event) => {
  if (event.type !== 'elicitation_request') return;
  console.log(`  asked: ${event.message}`);
  await manager.resumeElicitation(id, { action: 'accept', content: { email: 'ada@example.com' } });
});

// A snapshot shows what is pending, for a client that reconnects in the middle of a question.
const snapshot = await manager.getSessionSnapshot(id);
assert.deepEqual(snapshot.pending, { confirmations: [], elicitations: [] });
await manager.close();
