// Parity: the manager's behaviours that matter to a remote user, through the client → a real HTTP
// server on 127.0.0.1 → the manager (ScriptedRuntime). Real sockets, no mocked fetch.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AgentSessionsClient, AgentSessionsError, SessionBusyError } from '../../src/client/index.js';
import type { SessionEvent } from '../../src/events.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { step } from '../../src/testing/scripted-runtime.js';
import { startServer, type TestServer } from '../http/server.js';

let server: TestServer;
let client: AgentSessionsClient;
beforeEach(async () => {
  server = await startServer();
  client = server.client();
});
afterEach(() => server.close());

async function collect(iterable: AsyncIterable<SessionEvent>): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

const types = (events: SessionEvent[]) => events.map((event) => event.type);

describe('the client has every manager method', () => {
  test('each public SessionManager method has a client method of the same name', () => {
    const names = (prototype: object) =>
      Object.getOwnPropertyNames(prototype).filter((name) => name !== 'constructor' && !name.startsWith('#'));
    // releaseSession frees what one server process holds in memory (the ACP server calls it on
    // session/close): a host's concern, not a remote user's. streamEventBatches saves the wake-ups
    // of in-process readers; over HTTP every event is its own SSE message either way, and
    // streamEvents is the client's reader.
    const serverOnly = new Set(['releaseSession', 'streamEventBatches']);
    const missing = names(SessionManager.prototype).filter(
      (name) => !serverOnly.has(name) && !names(AgentSessionsClient.prototype).includes(name),
    );
    expect(missing).toEqual([]);
  });
});

describe('turns', () => {
  test('runSession streams the turn’s events and done resolves end_turn; the history is stored', async () => {
    server.scripted.reply('Hello there');
    const session = await client.createSession({ title: 'Greeting' });
    const stream = await client.runSession(session.id, { messages: ['hi'] });
    const events = await collect(stream);
    expect(types(events)).toEqual([
      'stream_started',
      'user_message',
      'session_title',
      'agent_choice',
      'agent_choice',
      'message_added',
      'stream_stopped',
    ]);
    expect(events.every((event) => event.turnId === stream.turnId)).toBe(true);
    expect(await stream.done).toEqual({ stopReason: 'end_turn', discarded: [] });
    const stored = await client.getSession(session.id);
    expect(stored.items.map((item) => (item.kind === 'message' ? item.message.content : item.kind))).toEqual([
      'hi',
      'Hello there',
    ]);
  });

  test('TurnStream.batches over HTTP carries the same events as iterating, in non-empty batches, and counts as the one read', async () => {
    server.scripted.reply('Hello there');
    const session = await client.createSession();
    const stream = await client.runSession(session.id, { messages: ['hi'] });
    const batches: SessionEvent[][] = [];
    for await (const batch of stream.batches()) batches.push([...batch]);
    expect(types(batches.flat())).toEqual([
      'stream_started',
      'user_message',
      'session_title',
      'agent_choice',
      'agent_choice',
      'message_added',
      'stream_stopped',
    ]);
    expect(batches.every((batch) => batch.length > 0)).toBe(true);
    expect(() => stream[Symbol.asyncIterator]()).toThrow(TypeError);
    expect((await stream.done).stopReason).toBe('end_turn');
  });

  test('a second run while busy rejects with SESSION_BUSY rebuilt as SessionBusyError', async () => {
    server.scripted.turn([step.hold('busy'), step.reply('ok')]);
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['first'] });
    const error = await client.runSession(id, { messages: ['second'] }).catch((caught: unknown) => caught);
    expect(AgentSessionsError.isInstance(error)).toBe(true);
    expect(error).toBeInstanceOf(SessionBusyError);
    expect(error).toMatchObject({ code: 'SESSION_BUSY', sessionId: id, turnId: stream.turnId });
    server.scripted.release('busy');
    expect((await stream.done).stopReason).toBe('end_turn');
  });

  test('cancel() ends the turn with cancelled; cancelTurn says whether one ran', async () => {
    server.scripted.turn([step.hold('forever')]);
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['go'] });
    await server.scripted.waitUntilHeld('forever');
    stream.cancel('stop it');
    expect((await stream.done).stopReason).toBe('cancelled');
    expect(await client.cancelTurn(id)).toBe(false);
    server.scripted.turn([step.hold('again')]);
    const second = await client.runSession(id, { messages: ['go'] });
    await server.scripted.waitUntilHeld('again');
    expect(await client.cancelTurn(id)).toBe(true);
    expect((await second.done).stopReason).toBe('cancelled');
  });

  test('breaking out of the loop cancels by default, and lets the turn run with onDetach: continue', async () => {
    server.scripted.turn([step.reply('a'), step.hold('h1'), step.reply('b')]);
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['go'] });
    for await (const event of stream) if (event.type === 'agent_choice') break;
    expect((await stream.done).stopReason).toBe('cancelled');
    server.scripted.turn([step.reply('a'), step.hold('h2'), step.reply('b')]);
    const kept = await client.runSession(id, { messages: ['go'] }, { onDetach: 'continue' });
    for await (const event of kept) if (event.type === 'agent_choice') break;
    await server.scripted.waitUntilHeld('h2');
    server.scripted.release('h2');
    expect((await kept.done).stopReason).toBe('end_turn');
  });

  test('an aborted signal cancels the turn', async () => {
    server.scripted.turn([step.hold('held')]);
    const { id } = await client.createSession();
    const controller = new AbortController();
    const stream = await client.runSession(id, { messages: ['go'] }, { signal: controller.signal });
    await server.scripted.waitUntilHeld('held');
    controller.abort();
    expect((await stream.done).stopReason).toBe('cancelled');
  });
});

describe('humans in the loop', () => {
  test('a tool confirmation is answered with resumeSession (approve, then reject with a reason)', async () => {
    server.scripted.turn([step.authorize({ name: 'shell', arguments: { cmd: 'ls' } }), step.reply('done')]);
    server.scripted.turn([step.authorize({ name: 'shell', arguments: { cmd: 'rm' } }), step.reply('done')]);
    const { id } = await client.createSession();
    for (const answer of ['approve', 'reject'] as const) {
      const stream = await client.runSession(id, { messages: ['go'] });
      for await (const event of stream) {
        if (event.type === 'tool_call_confirmation') {
          expect((await client.getSessionSnapshot(id)).pending.confirmations).toHaveLength(1);
          await client.resumeSession(id, { confirmation: answer, reason: 'not that one' });
        }
      }
      expect((await stream.done).stopReason).toBe('end_turn');
    }
    expect(server.scripted.turns.map((turn) => turn.decisions[0])).toEqual([
      { approved: true },
      { approved: false, reason: 'not that one' },
    ]);
    await expect(client.resumeSession(id, { confirmation: 'approve' })).rejects.toMatchObject({
      code: 'NOTHING_PENDING',
    });
  });

  test('approve-tool persists the permission', async () => {
    server.scripted.turn([step.authorize({ name: 'search' }), step.reply('ok')]);
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['go'] });
    for await (const event of stream) {
      if (event.type === 'tool_call_confirmation')
        await client.resumeSession(id, { confirmation: 'approve-tool' });
    }
    expect((await client.getSession(id)).permissions.allow).toEqual(['search']);
  });

  test('an elicitation is answered with resumeElicitation', async () => {
    server.scripted.turn([step.elicit({ message: 'Email?' }), step.reply('thanks')]);
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['sign me up'] });
    for await (const event of stream) {
      if (event.type === 'elicitation_request') {
        expect(event.message).toBe('Email?');
        await client.resumeElicitation(id, { action: 'accept', content: { email: 'ada@example.com' } });
      }
    }
    expect(server.scripted.turns[0]!.elicitations).toEqual([
      { action: 'accept', content: { email: 'ada@example.com' } },
    ]);
  });
});

describe('steering and follow-ups', () => {
  test('steered messages reach the running turn', async () => {
    server.scripted.turn([step.hold('working'), step.takeSteering(), step.reply('ok')]);
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['go'] });
    await server.scripted.waitUntilHeld('working');
    await client.steerSession(id, ['also this']);
    server.scripted.release('working');
    await collect(stream);
    expect(server.scripted.turns[0]!.steered[0]!.map((message) => message.content)).toEqual(['also this']);
    await expect(client.steerSession(id, ['late'])).rejects.toMatchObject({ code: 'SESSION_NOT_RUNNING' });
  });

  test('follow-ups with keys queue behind the turn, run in the same stream, and a repeated key is a duplicate', async () => {
    server.scripted.turn([step.hold('first'), step.reply('one')]);
    server.scripted.reply('two');
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['go'] });
    await server.scripted.waitUntilHeld('first');
    expect(await client.followUpSession(id, ['next'], { idempotencyKey: 'k' })).toEqual({ status: 'queued' });
    expect(await client.followUpSession(id, ['next'], { idempotencyKey: 'k' })).toEqual({
      status: 'duplicate',
    });
    expect((await client.getSessionSnapshot(id)).queues.followUp).toHaveLength(1);
    server.scripted.release('first');
    const events = await collect(stream);
    expect(events.filter((event) => event.type === 'stream_stopped')).toHaveLength(2);
    expect(new Set(events.map((event) => event.turnId)).size).toBe(2);
    expect((await stream.done).stopReason).toBe('end_turn');
  });

  test('a follow-up on an idle session starts a turn whose events streamEvents carries', async () => {
    server.scripted.reply('started by a follow-up');
    const { id } = await client.createSession();
    const { lastEventSeq } = await client.getSessionSnapshot(id);
    const reading = (async () => {
      const events: SessionEvent[] = [];
      for await (const event of client.streamEvents(id, { since: lastEventSeq })) {
        events.push(event);
        if (event.type === 'stream_stopped') break;
      }
      return events;
    })();
    expect(await client.followUpSession(id, ['hello'])).toEqual({ status: 'started' });
    expect(types(await reading)).toContain('agent_choice');
  });
});

describe('replay after a dropped connection', () => {
  test('a turn stream reconnects with its last seq: every event once, in order, and done', async () => {
    server.scripted.turn([step.reply('before the drop'), step.hold('drop'), step.reply('after the drop')]);
    const { id } = await client.createSession();
    const changes: string[] = [];
    const stream = await client.runSession(
      id,
      { messages: ['go'] },
      { onConnectionChange: (change) => changes.push(change.state) },
    );
    const events: SessionEvent[] = [];
    let dropped = false;
    for await (const event of stream) {
      events.push(event);
      if (event.type === 'message_added' && !dropped) {
        dropped = true;
        await server.scripted.waitUntilHeld('drop');
        server.dropConnections();
        server.scripted.release('drop');
      }
    }
    const seqs = events.map((event) => event.seq);
    expect(seqs).toEqual(seqs.map((_, index) => index + 1));
    expect(types(events).filter((type) => type === 'message_added')).toHaveLength(2);
    expect((await stream.done).stopReason).toBe('end_turn');
    expect(changes).toEqual(['reconnecting', 'connected']);
  });

  test('streamEvents reconnects with its last seq after a drop', async () => {
    server.scripted.turn([step.reply('one'), step.hold('drop'), step.reply('two')]);
    const { id } = await client.createSession();
    const stream = await client.runSession(id, { messages: ['go'] }, { onDetach: 'continue' });
    const events: SessionEvent[] = [];
    let dropped = false;
    const changes: string[] = [];
    for await (const event of client.streamEvents(id, {
      since: 0,
      onConnectionChange: (change) => changes.push(change.state),
    })) {
      events.push(event);
      if (event.type === 'message_added' && !dropped) {
        dropped = true;
        await server.scripted.waitUntilHeld('drop');
        server.dropConnections();
        server.scripted.release('drop');
      }
      if (event.type === 'stream_stopped') break;
    }
    const seqs = events.map((event) => event.seq);
    expect(seqs).toEqual(seqs.map((_, index) => index + 1));
    expect(types(events).filter((type) => type === 'message_added')).toHaveLength(2);
    expect(changes).toEqual(['reconnecting', 'connected']);
    await stream.done;
  });
});

describe('errors', () => {
  test('server errors come back as AgentSessionsError with the server’s code and typed fields', async () => {
    const unknown = await client.getSession('ses_missing').catch((error: unknown) => error);
    expect(AgentSessionsError.isInstance(unknown)).toBe(true);
    expect(unknown).toMatchObject({ code: 'SESSION_NOT_FOUND', sessionId: 'ses_missing' });
    const invalid = await client.runSession('ses_x', { messages: [] }).catch((error: unknown) => error);
    expect(invalid).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((invalid as { issues: unknown[] }).issues.length).toBeGreaterThan(0);
    await expect(client.forkSession('ses_missing')).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    await expect(client.streamEvents('ses_missing')[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      code: 'SESSION_NOT_FOUND',
    });
  });

  test('a model switch the runtime refuses is MODEL_SWITCHING_NOT_SUPPORTED or the runtime’s error', async () => {
    const { id } = await client.createSession();
    await client.setSessionModel(id, 'fake/small');
    const models = await client.getAvailableModels(id);
    expect(models).toMatchObject({ agent: 'default', current: 'fake/small' });
    expect(models.models.find((model) => model.ref === 'fake/small')?.current).toBe(true);
    await client.setSessionModel(id);
    expect((await client.getAvailableModels(id)).current).toBeUndefined();
  });
});

describe('settings, history, fork, export and import', () => {
  test('metadata edits, messages, summaries and a fork reach the store', async () => {
    const { id } = await client.createSession();
    await client.updateSessionTitle(id, 'Renamed');
    await client.setSessionStarred(id, true);
    await client.updateSessionPermissions(id, { allow: ['read*'], ask: [], deny: ['rm'] });
    await client.setSessionSafetyPolicy(id, 'strict');
    expect(await client.toggleToolApproval(id)).toBe('autonomous');
    expect(await client.toggleToolApproval(id)).toBe('strict');
    const message = await client.addMessage(id, 'a note');
    await client.updateMessage(id, message.id, { role: 'user', content: 'an edited note' });
    const summary = await client.addSummary(id, { summary: 'so far', firstKeptItem: 1 });
    expect(summary.kind).toBe('summary');
    const session = await client.getSession(id);
    expect(session).toMatchObject({
      title: 'Renamed',
      starred: true,
      safetyPolicy: 'strict',
      permissions: { allow: ['read*'], deny: ['rm'] },
    });
    expect(session.items[0]).toMatchObject({ kind: 'message', message: { content: 'an edited note' } });
    const fork = await client.forkSession(id, { beforeUserMessage: 0 });
    expect(fork).toMatchObject({ title: 'Renamed (fork 1)', parentId: id, items: [] });
    expect((await client.listSessions({ starred: true })).sessions.map((entry) => entry.id)).toEqual([id]);
  });

  test('export then import (replace) gives deep-equal sessions; deleteSessions reports per id', async () => {
    const first = await client.createSession({ title: 'One' });
    await client.addMessage(first.id, 'kept');
    const bundle = await client.exportSessions([first.id]);
    const before = await client.getSession(first.id);
    expect(await client.importSessions(bundle, { onConflict: 'replace' })).toEqual({
      imported: [first.id],
      skipped: [],
      replaced: [first.id],
    });
    expect(await client.getSession(first.id)).toEqual(before);
    const result = await client.deleteSessions([first.id, 'ses_missing']);
    expect(result.deleted).toEqual([first.id]);
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]!.error.code).toBe('SESSION_NOT_FOUND');
    await client.waitStopped(first.id, { timeoutMs: 1_000 });
  });
});
