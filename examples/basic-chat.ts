/**
 * basic-chat: the smallest whole program. A runtime that echoes, a manager with the default
 * in-memory store, two turns streamed to the terminal, then the stored history.
 *
 * Run: npm run example -- basic-chat
 */
import assert from 'node:assert/strict';
import { type Runtime, SessionManager } from 'agent-sessions';

// A Runtime answers a turn by yielding events. A real one calls a model; this one echoes.
const echo: Runtime = {
  async *run(turn) {
    const last = turn.session.items.at(-1);
    const answer = `You said: ${last?.kind === 'message' ? last.message.content : ''}`;
    for (const word of answer.split(/(?<= )/)) yield { type: 'agent_choice', content: word };
    // The complete message: the manager stores it (and fills in its id and createdAt).
    yield { type: 'message_added', message: { role: 'assistant', content: answer } };
  },
};

const manager = new SessionManager({ runtime: () => echo });
const session = await manager.createSession();

for (const text of ['Hello!', 'How are you?']) {
  const stream = await manager.runSession(session.id, { messages: [text] });
  for await (const event of stream) {
    if (event.type === 'user_message') process.stdout.write(`you:   ${event.message.content}\nagent: `);
    if (event.type === 'agent_choice') process.stdout.write(event.content);
  }
  const { stopReason } = await stream.done;
  console.log(`  (${stopReason})`);
}

const { items, title } = await manager.getSession(session.id);
console.log(`\n"${title}" holds ${items.length} items`);
await manager.close();

assert.equal(items.length, 4);
