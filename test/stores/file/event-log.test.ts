// FileEventLog: the DurableEventLog behaviour suite, then what is special to files (a torn line
// after a crash, a damaged line reported, retention by age) and FileStore's eventLog option: a
// manager restarted on the same directory replays the events of before the restart.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { DurableEventLog } from '../../../src/durable-event-log.js';
import { ErrorCode } from '../../../src/errors.js';
import type { SessionEvent } from '../../../src/events.js';
import { SessionManager } from '../../../src/manager/session-manager.js';
import { FileEventLog } from '../../../src/stores/file/event-log.js';
import { FileStore } from '../../../src/stores/file/store.js';
import { describeDurableEventLogConformance } from '../../../src/testing/durable-event-log.js';
import { ScriptedRuntime, step } from '../../../src/testing/scripted-runtime.js';

const directories: string[] = [];

async function freshDirectory(): Promise<string> {
  const directory = await fs.mkdtemp(join(tmpdir(), 'file-event-log-'));
  directories.push(directory);
  return directory;
}

afterEach(async () => {
  for (const directory of directories.splice(0)) await fs.rm(directory, { recursive: true, force: true });
});

function event(seq: number, timestamp = new Date().toISOString()): SessionEvent {
  return {
    type: 'agent_choice',
    content: `d${seq}`,
    turnId: 't',
    sessionId: 's',
    seq,
    timestamp,
  } as SessionEvent;
}

describeDurableEventLogConformance({
  test,
  describe,
  name: 'FileEventLog: DurableEventLog conformance',
  retention: { exact: true },
  createLog: async ({ maxEvents }): Promise<DurableEventLog> =>
    new FileEventLog({
      directory: await freshDirectory(),
      pollIntervalMs: 10,
      ...(maxEvents === undefined ? {} : { maxEvents }),
    }),
});

describe('FileEventLog', () => {
  test('a torn trailing line is ignored by reads and cut off by the next append', async () => {
    const directory = await freshDirectory();
    const log = new FileEventLog({ directory });
    await log.append('s', [event(1), event(2)]);
    await fs.appendFile(join(directory, 's.jsonl'), '{"type":"agent_ch');
    const reopened = new FileEventLog({ directory });
    expect((await reopened.replay('s')).events.map((entry) => entry.seq)).toEqual([1, 2]);
    expect(await reopened.lastSeq('s')).toBe(2);
    await reopened.append('s', [event(3)]);
    expect((await reopened.replay('s')).events.map((entry) => entry.seq)).toEqual([1, 2, 3]);
    expect((await fs.readFile(join(directory, 's.jsonl'), 'utf8')).split('\n')).toHaveLength(4);
  });

  test('a complete line that is not an event is STORE_CORRUPT, and the file is left as it is', async () => {
    const directory = await freshDirectory();
    const log = new FileEventLog({ directory });
    await log.append('s', [event(1)]);
    await fs.appendFile(join(directory, 's.jsonl'), 'not json\n');
    const before = await fs.readFile(join(directory, 's.jsonl'), 'utf8');
    await expect(new FileEventLog({ directory }).replay('s')).rejects.toMatchObject({
      code: ErrorCode.STORE_CORRUPT,
    });
    expect(await fs.readFile(join(directory, 's.jsonl'), 'utf8')).toBe(before);
  });

  test('retention by age: events older than maxAgeMs go at the next append, the newest stays', async () => {
    const directory = await freshDirectory();
    const log = new FileEventLog({ directory, maxAgeMs: 60_000 });
    const old = new Date(Date.now() - 120_000).toISOString();
    await log.append('s', [event(1, old), event(2, old)]);
    await log.append('s', [event(3)]);
    const replay = await log.replay('s');
    expect(replay.events.map((entry) => entry.seq)).toEqual([3]);
    expect(replay.dropped).toBe(true);
  });

  test('ids that differ only in case get files of their own', async () => {
    const log = new FileEventLog({ directory: await freshDirectory() });
    await log.append('abc', [{ ...event(1), sessionId: 'abc' } as SessionEvent]);
    await log.append('ABC', [
      { ...event(1), sessionId: 'ABC' } as SessionEvent,
      { ...event(2), sessionId: 'ABC' } as SessionEvent,
    ]);
    expect(await log.lastSeq('abc')).toBe(1);
    expect(await log.lastSeq('ABC')).toBe(2);
  });
});

describe('FileStore with eventLog: true', () => {
  test('a manager restarted on the same directory replays the events of before the restart, and numbers on', async () => {
    const directory = await freshDirectory();
    const scripted = new ScriptedRuntime();
    scripted.turn([step.reply('one two')]);
    scripted.turn([step.reply('three')]);
    const first = new SessionManager({
      runtime: scripted.factory,
      store: new FileStore({ directory, eventLog: true }),
    });
    const session = await first.createSession();
    const before: SessionEvent[] = [];
    for await (const entry of await first.runSession(session.id, { messages: ['hi'] })) before.push(entry);
    await first.waitStopped(session.id, { timeoutMs: 5000 });
    await first.close();

    const second = new SessionManager({
      runtime: scripted.factory,
      store: new FileStore({ directory, eventLog: true }),
    });
    try {
      const replayed: SessionEvent[] = [];
      for await (const entry of second.streamEvents(session.id, { since: 0 })) {
        replayed.push(entry);
        if (entry.seq === before.length) break;
      }
      expect(replayed).toEqual(before);
      const after: SessionEvent[] = [];
      for await (const entry of await second.runSession(session.id, { messages: ['more'] }))
        after.push(entry);
      expect(after[0]?.seq).toBe(before.length + 1);
      expect((await second.getSessionSnapshot(session.id)).lastEventSeq).toBe(before.length + after.length);
    } finally {
      await second.close();
    }
    scripted.assertConsumed();
  });
});
