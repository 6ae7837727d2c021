/**
 * file-store: sessions that survive a restart. A FileStore keeps each session in an append-only,
 * checksummed log in a directory it owns, locks that directory against a second writer, and is
 * read back whole by the next process.
 *
 * Run: npm run example -- file-store
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentSessionsError, ErrorCode, SessionManager } from 'agent-sessions';
import { FileStore } from 'agent-sessions/file';
import { demoRuntime } from './shared/demo-runtime.js';

const directory = await mkdtemp(join(tmpdir(), 'agent-sessions-file-store-'));
const runtime = demoRuntime();

try {
  // 'fsync' (the default) survives a power loss; 'buffered' is faster and survives a crash (kill -9).
  const store = new FileStore({ directory, durability: 'fsync' });
  const manager = new SessionManager({ runtime, store });
  const session = await manager.createSession({ title: 'Kept on disk', attributes: { project: 'demo' } });
  const stream = await manager.runSession(session.id, { messages: ['Hello, disk!'] });
  for await (const _event of stream) {
    // Events are also in the session's event log; here we only need the turn to finish.
  }
  console.log(`turn ended: ${(await stream.done).stopReason}`);

  // One directory, one writer: a second store on it is refused while the first is open.
  const intruder = new FileStore({ directory });
  try {
    await intruder.open();
    assert.fail('a second FileStore opened a locked directory');
  } catch (error) {
    assert.ok(AgentSessionsError.hasCode(error, ErrorCode.STORE_LOCKED));
    console.log(`second store refused: ${error.code}`);
  }

  await manager.close(); // closes the store too, releasing the lock
  console.log(`files: ${(await readdir(join(directory, 'sessions'))).sort().join(', ')}`);

  // A new process (here: a new store and manager) finds everything where it was.
  const reopened = new SessionManager({ runtime, store: new FileStore({ directory }) });
  const page = await reopened.listSessions({ limit: 10 });
  const again = await reopened.getSession(session.id);
  console.log(
    `after reopening: ${page.sessions.length} session, "${again.title}", ${again.items.length} items`,
  );
  for (const item of again.items) {
    if (item.kind === 'message') console.log(`  ${item.message.role}: ${item.message.content}`);
  }
  assert.equal(page.sessions[0]?.messageCount, 2);
  assert.deepEqual(again.attributes, { project: 'demo' });
  await reopened.close();
} finally {
  await rm(directory, { recursive: true, force: true });
}
