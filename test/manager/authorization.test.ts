// Tool authorisation (see src/manager/authorization.ts): the module on its own (parking a call,
// answering it, deciding pending calls again when permissions or policy change), then through the
// manager (TurnContext.authorizeToolCall, resumeSession, setSessionSafetyPolicy,
// toggleToolApproval, updateSessionPermissions).
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import type { SessionEvent, SessionEventOf } from '../../src/events.js';
import {
  answerConfirmation,
  authorizeToolCall,
  parseResumeInput,
  SessionApprovals,
  type SessionScope,
  setPermissions,
  setSafetyPolicy,
  type TurnScope,
  toggleToolApproval,
} from '../../src/manager/authorization.js';
import type { EventInput } from '../../src/manager/event-log.js';
import type { SessionManager } from '../../src/manager/session-manager.js';
import { SessionRecords } from '../../src/manager/session-records.js';
import type { TurnStream } from '../../src/manager/types.js';
import type { ToolDecision, TurnContext } from '../../src/runtime.js';
import type { Permissions, SafetyPolicy } from '../../src/schemas.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { FailingStore } from '../../src/testing/failing-store.js';
import { type ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { expectRejectsWithCode, rejection } from '../helpers/assertions.js';
import { assertHistoryValid, logUntil, readRest, readUntil, types } from '../helpers/history.js';
import { closeManager, startManager } from '../helpers/manager.js';
import { sessionRecord } from '../helpers/sessions.js';
import { collect, storeFixtures } from '../helpers/stores.js';

const noPermissions: Permissions = { allow: [], ask: [], deny: [] };

describe('authorization module', () => {
  async function setup(safetyPolicy: SafetyPolicy = 'strict') {
    const store = new FailingStore(new MemoryStore());
    await store.createSession(sessionRecord('s1', { safetyPolicy }));
    const record = new SessionRecords(store).open('s1');
    await record.load(); // a running turn holds the cache
    const approvals = new SessionApprovals();
    const emitted: EventInput[] = [];
    const controller = new AbortController();
    const turn: TurnScope = {
      turnId: 't1',
      signal: controller.signal,
      approvals,
      metadata: () => {
        const metadata = record.cached?.meta;
        if (!metadata) throw new Error('the turn holds the cache');
        return metadata;
      },
      emit: (event) => emitted.push(event),
    };
    const session: SessionScope = { sessionId: 's1', approvals, record, assertExists: async () => {} };
    return { store, record, approvals, emitted, controller, turn, session };
  }
  const call = (name: string) => ({ toolCall: { id: `call-${name}`, name, arguments: '{}' } });

  test('a call that needs asking is parked, announced with tool_call_confirmation and answered once', async () => {
    const { approvals, emitted, turn, session } = await setup();
    const decision = authorizeToolCall(turn, call('shell'));
    expect(approvals.confirmations.size).toBe(1);
    expect(emitted).toEqual([
      expect.objectContaining({
        type: 'tool_call_confirmation',
        turnId: 't1',
        toolCall: call('shell').toolCall,
      }),
    ]);
    await answerConfirmation(session, parseResumeInput({ confirmation: 'reject', reason: 'no' }));
    expect(await decision).toEqual({ approved: false, reason: 'no' });
    expect(approvals.confirmations.size).toBe(0);
    await expectRejectsWithCode(answerConfirmation(session, { confirmation: 'approve' }), 'NOTHING_PENDING');
  });

  test('a parked call rejects with the turn signal reason when the turn is cancelled', async () => {
    const { approvals, controller, turn } = await setup();
    const decision = authorizeToolCall(turn, call('shell'));
    const reason = new Error('cancelled');
    controller.abort(reason);
    expect(await rejection(decision)).toBe(reason);
    expect(approvals.confirmations.size).toBe(0);
  });

  test('setPermissions allowing the tool approves the pending call; a deny pattern leaves it for the human', async () => {
    const { turn, session, approvals } = await setup();
    const shell = authorizeToolCall(turn, call('shell'));
    const read = authorizeToolCall(turn, call('read'));
    await setPermissions(session, { allow: [], ask: [], deny: ['read'] });
    expect(approvals.confirmations.size).toBe(2);
    await setPermissions(session, { allow: ['shell'], ask: [], deny: ['read'] });
    expect(await shell).toEqual({ approved: true });
    expect(approvals.confirmations.entries().map((entry) => entry.info.toolCall.name)).toEqual(['read']);
    approvals.rejectAll(new Error('done'));
    await rejection(read);
  });

  test('setSafetyPolicy autonomous approves every pending call; restricted rejects none of them', async () => {
    const { turn, session, approvals } = await setup();
    const pending = [authorizeToolCall(turn, call('a')), authorizeToolCall(turn, call('b'))];
    await setSafetyPolicy(session, 'restricted');
    expect(approvals.confirmations.size).toBe(2);
    await setSafetyPolicy(session, 'autonomous');
    expect(await Promise.all(pending)).toEqual([{ approved: true }, { approved: true }]);
  });

  test('toggleToolApproval remembers the policy, approves pending calls, and restores the policy', async () => {
    const { turn, session, record } = await setup('balanced');
    const pending = authorizeToolCall(turn, call('shell'));
    expect(await toggleToolApproval(session)).toBe('autonomous');
    expect(await pending).toEqual({ approved: true });
    expect(await toggleToolApproval(session)).toBe('balanced');
    expect(record.cached?.meta.safetyPolicy).toBe('balanced');
  });

  test('approve-tool persists the pattern before the runtime hears the answer, and puts the call back when that write fails', async () => {
    const { turn, session, store, approvals, record } = await setup();
    const decision = authorizeToolCall(turn, call('shell'));
    store.failNext('updateSession');
    await rejection(answerConfirmation(session, parseResumeInput({ confirmation: 'approve-tool' })));
    expect(approvals.confirmations.size).toBe(1);
    await answerConfirmation(session, parseResumeInput({ confirmation: 'approve-tool', toolName: 'sh*' }));
    expect(await decision).toEqual({ approved: true });
    expect(record.cached?.meta.permissions.allow).toEqual(['sh*']);
    expect((await store.getSession('s1')).permissions.allow).toEqual(['sh*']);
  });
});

describe.each(storeFixtures())('tool authorisation through the manager ($name)', (fixture) => {
  let store: FailingStore;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(async () => {
    ({ store, scripted, manager } = startManager(new FailingStore(await fixture.create())));
  });

  afterEach(() => closeManager(fixture, { manager, scripted }));

  async function session(safetyPolicy: SafetyPolicy = '', permissions: Permissions = noPermissions) {
    return manager.createSession({ safetyPolicy, permissions });
  }

  describe('the decision order deny → allow → ask → policy', () => {
    type Case = {
      name: string;
      policy: SafetyPolicy;
      permissions?: Partial<Permissions>;
      tool: string;
      args?: Record<string, string>;
      readOnly?: boolean;
      safe?: boolean;
      expected: 'approve' | 'reject' | 'ask';
    };
    const cases: Case[] = [
      // Policies alone.
      { name: 'autonomous approves', policy: 'autonomous', tool: 'shell', expected: 'approve' },
      { name: 'restricted rejects', policy: 'restricted', tool: 'shell', expected: 'reject' },
      {
        name: 'restricted rejects even readOnly + safe',
        policy: 'restricted',
        tool: 'read',
        readOnly: true,
        safe: true,
        expected: 'reject',
      },
      { name: 'strict asks', policy: 'strict', tool: 'shell', expected: 'ask' },
      {
        name: 'strict asks even readOnly + safe',
        policy: 'strict',
        tool: 'read',
        readOnly: true,
        safe: true,
        expected: 'ask',
      },
      { name: 'balanced approves safe', policy: 'balanced', tool: 'fmt', safe: true, expected: 'approve' },
      { name: 'balanced asks for not safe', policy: 'balanced', tool: 'shell', expected: 'ask' },
      {
        name: 'balanced asks for readOnly but not safe',
        policy: 'balanced',
        tool: 'read',
        readOnly: true,
        expected: 'ask',
      },
      { name: "'' approves readOnly", policy: '', tool: 'read', readOnly: true, expected: 'approve' },
      { name: "'' asks for not readOnly", policy: '', tool: 'shell', expected: 'ask' },
      { name: "'' asks for safe but not readOnly", policy: '', tool: 'fmt', safe: true, expected: 'ask' },
      // The order of the lists.
      {
        name: 'deny beats allow',
        policy: 'autonomous',
        permissions: { deny: ['shell'], allow: ['shell'] },
        tool: 'shell',
        expected: 'reject',
      },
      {
        name: 'deny beats the autonomous policy',
        policy: 'autonomous',
        permissions: { deny: ['shell'] },
        tool: 'shell',
        expected: 'reject',
      },
      {
        name: 'allow beats ask',
        policy: 'strict',
        permissions: { allow: ['shell'], ask: ['shell'] },
        tool: 'shell',
        expected: 'approve',
      },
      {
        name: 'allow beats the restricted policy',
        policy: 'restricted',
        permissions: { allow: ['shell'] },
        tool: 'shell',
        expected: 'approve',
      },
      {
        name: 'ask beats the autonomous policy',
        policy: 'autonomous',
        permissions: { ask: ['shell'] },
        tool: 'shell',
        expected: 'ask',
      },
      {
        name: 'ask beats readOnly under the default policy',
        policy: '',
        permissions: { ask: ['read'] },
        tool: 'read',
        readOnly: true,
        expected: 'ask',
      },
      {
        name: 'ask beats the restricted policy',
        policy: 'restricted',
        permissions: { ask: ['shell'] },
        tool: 'shell',
        expected: 'ask',
      },
      // Tool globs.
      {
        name: 'mcp:github:* allows a github tool',
        policy: 'strict',
        permissions: { allow: ['mcp:github:*'] },
        tool: 'mcp:github:create_issue',
        expected: 'approve',
      },
      {
        name: 'mcp:github:* does not allow a gitlab tool',
        policy: 'strict',
        permissions: { allow: ['mcp:github:*'] },
        tool: 'mcp:gitlab:create_issue',
        expected: 'ask',
      },
      {
        name: 'a pattern is case-sensitive',
        policy: 'strict',
        permissions: { allow: ['Shell'] },
        tool: 'shell',
        expected: 'ask',
      },
      {
        name: 'a pattern is anchored',
        policy: 'strict',
        permissions: { allow: ['shell'] },
        tool: 'shell_exec',
        expected: 'ask',
      },
      // Argument conditions.
      {
        name: 'shell:cmd=ls* allows ls -la',
        policy: 'strict',
        permissions: { allow: ['shell:cmd=ls*'] },
        tool: 'shell',
        args: { cmd: 'ls -la' },
        expected: 'approve',
      },
      {
        name: 'shell:cmd=ls* does not allow rm',
        policy: 'strict',
        permissions: { allow: ['shell:cmd=ls*'] },
        tool: 'shell',
        args: { cmd: 'rm -rf /' },
        expected: 'ask',
      },
      {
        name: 'shell:cmd=ls* does not match a call without cmd',
        policy: 'strict',
        permissions: { allow: ['shell:cmd=ls*'] },
        tool: 'shell',
        expected: 'ask',
      },
      {
        name: 'shell:cmd=rm* denies rm under autonomous',
        policy: 'autonomous',
        permissions: { deny: ['shell:cmd=rm*'] },
        tool: 'shell',
        args: { cmd: 'rm -rf /' },
        expected: 'reject',
      },
      {
        name: 'shell:cmd=rm* lets ls through under autonomous',
        policy: 'autonomous',
        permissions: { deny: ['shell:cmd=rm*'] },
        tool: 'shell',
        args: { cmd: 'ls' },
        expected: 'approve',
      },
    ];

    test.each(cases)('authorizeToolCall: $name → $expected', async (entry) => {
      const created = await session(entry.policy, { ...noPermissions, ...entry.permissions });
      const toolCall = { id: 'call-1', name: entry.tool, arguments: JSON.stringify(entry.args ?? {}) };
      scripted.turn([
        step.authorize(toolCall, {
          ...(entry.readOnly === undefined ? {} : { readOnly: entry.readOnly }),
          ...(entry.safe === undefined ? {} : { safe: entry.safe }),
        }),
      ]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      const events: SessionEvent[] = [];
      if (entry.expected === 'ask') {
        const { events: before, event } = await readUntil(iterator, 'tool_call_confirmation');
        events.push(...before);
        expect(event.toolCall).toEqual(toolCall);
        await manager.resumeSession(created.id, { confirmation: 'approve' });
      }
      events.push(...(await readRest(iterator)));
      const confirmations = events.filter((event) => event.type === 'tool_call_confirmation');
      expect(confirmations).toHaveLength(entry.expected === 'ask' ? 1 : 0);
      const decisions = scripted.turns[0]?.decisions ?? [];
      expect(decisions).toHaveLength(1);
      if (entry.expected === 'reject') {
        expect(decisions[0]).toMatchObject({ approved: false, reason: expect.any(String) });
        expect((decisions[0] as { reason: string }).reason.length).toBeGreaterThan(0);
      } else {
        expect(decisions[0]).toEqual({ approved: true });
      }
      expect((await stream.done).stopReason).toBe('end_turn');
      assertHistoryValid(await store.getSession(created.id));
    });
  });

  test('authorizeToolCall that asks emits tool_call_confirmation to the stream and the event log, and the turn waits', async () => {
    const created = await session('strict');
    const toolCall = { id: 'call-1', name: 'shell', arguments: '{"cmd":"ls"}' };
    scripted.turn([step.authorize(toolCall), step.reply('done')]);
    const stream = await manager.runSession(created.id, { messages: ['go'] });
    const iterator = stream[Symbol.asyncIterator]();
    const { event } = await readUntil(iterator, 'tool_call_confirmation');
    expect(event).toMatchObject({
      type: 'tool_call_confirmation',
      sessionId: created.id,
      turnId: stream.turnId,
      toolCall,
      confirmationId: expect.any(String),
    });
    expect(event.confirmationId.length).toBeGreaterThan(0);

    const logged = await logUntil(manager, created.id, (entry) => entry.type === 'tool_call_confirmation');
    expect(logged.at(-1)).toEqual(event);

    // Nothing follows until the confirmation is answered: the next read stays open across store I/O.
    let nextSettled = false;
    const next = iterator.next().then((result) => {
      nextSettled = true;
      return result;
    });
    const snapshot = await manager.getSessionSnapshot(created.id);
    await store.getSession(created.id);
    // Flush every pending microtask: a turn that did not wait would have emitted by now.
    await new Promise((resolve) => setImmediate(resolve));
    expect(nextSettled).toBe(false);
    expect(snapshot.lastEventSeq).toBe(event.seq);
    expect(scripted.turns[0]?.decisions).toEqual([]);

    await manager.resumeSession(created.id, { confirmation: 'approve' });
    const after = await next;
    expect(after.done).toBe(false);
    expect(after.value?.type).toBe('tool_call_response');
    const rest = await readRest(iterator);
    expect(types(rest)).toContain('stream_stopped');
    expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
  });

  describe('resumeSession from another caller (no reference to the stream)', () => {
    /** Starts a strict-policy turn and waits, through the event log only, for its confirmation. */
    async function askedTurn(steps: Parameters<ScriptedRuntime['turn']>[0], policy: SafetyPolicy = 'strict') {
      const created = await session(policy);
      scripted.turn(steps);
      const stream = await manager.runSession(created.id, { messages: ['go'] }, { onDetach: 'continue' });
      const logged = await logUntil(manager, created.id, (event) => event.type === 'tool_call_confirmation');
      const confirmation = logged.at(-1) as SessionEventOf<'tool_call_confirmation'>;
      return { id: created.id, stream, confirmation };
    }

    async function finish(stream: TurnStream) {
      const events = await collect(stream);
      return { events, result: await stream.done };
    }

    test('resumeSession approve lets the call run', async () => {
      const { id, stream } = await askedTurn([step.authorize({ name: 'shell' }, { result: 'listed' })]);
      await manager.resumeSession(id, { confirmation: 'approve' });
      const { events, result } = await finish(stream);
      expect(result.stopReason).toBe('end_turn');
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'tool_call_response', response: 'listed' }),
      );
      // approve changes nothing persistent.
      const stored = await store.getSession(id);
      expect(stored.permissions).toEqual(noPermissions);
      expect(stored.safetyPolicy).toBe('strict');
      assertHistoryValid(stored);
    });

    test('resumeSession approve-tool persists the tool in permissions.allow and the next call of it does not ask', async () => {
      const { id, stream } = await askedTurn([
        step.authorize({ name: 'shell', arguments: { cmd: 'ls' } }),
        step.authorize({ name: 'shell', arguments: { cmd: 'pwd' } }),
      ]);
      await manager.resumeSession(id, { confirmation: 'approve-tool' });
      const { events, result } = await finish(stream);
      expect(result.stopReason).toBe('end_turn');
      // Only the first call asked (the stream holds the whole turn, read from its start).
      expect(events.filter((event) => event.type === 'tool_call_confirmation')).toHaveLength(1);
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }, { approved: true }]);
      const stored = await store.getSession(id);
      expect(stored.permissions.allow).toEqual(['shell']);
      expect(stored.safetyPolicy).toBe('strict');
      assertHistoryValid(stored);
    });

    test('resumeSession approve-tool twice (two pending calls of one tool) adds the tool to allow only once', async () => {
      const created = await session('strict');
      const a = { id: 'call-a', name: 'shell', arguments: '{}' };
      const b = { id: 'call-b', name: 'shell', arguments: '{}' };
      scripted.turn(async function* (turn) {
        const decisions = await Promise.all([
          turn.authorizeToolCall({ toolCall: a }),
          turn.authorizeToolCall({ toolCall: b }),
        ]);
        yield { type: 'custom', name: 'decisions', data: decisions };
      });
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      const first = await readUntil(iterator, 'tool_call_confirmation');
      const second = await readUntil(iterator, 'tool_call_confirmation');
      await Promise.all([
        manager.resumeSession(created.id, {
          confirmation: 'approve-tool',
          confirmationId: first.event.confirmationId,
        }),
        manager.resumeSession(created.id, {
          confirmation: 'approve-tool',
          confirmationId: second.event.confirmationId,
        }),
      ]);
      const rest = await readRest(iterator);
      expect(rest).toContainEqual(
        expect.objectContaining({ type: 'custom', data: [{ approved: true }, { approved: true }] }),
      );
      expect((await store.getSession(created.id)).permissions.allow).toEqual(['shell']);
    });

    test('resumeSession approve-tool with toolName persists that pattern instead of the tool name', async () => {
      const { id, stream } = await askedTurn([
        step.authorize({ name: 'mcp:github:create_issue' }),
        step.authorize({ name: 'mcp:github:list_issues' }),
      ]);
      await manager.resumeSession(id, { confirmation: 'approve-tool', toolName: 'mcp:github:*' });
      const { events } = await finish(stream);
      // Only the first call asked (the stream holds the whole turn, read from its start).
      expect(events.filter((event) => event.type === 'tool_call_confirmation')).toHaveLength(1);
      expect((await store.getSession(id)).permissions.allow).toEqual(['mcp:github:*']);
    });

    test('resumeSession approve-session persists policy autonomous and later calls do not ask', async () => {
      const { id, stream } = await askedTurn([
        step.authorize({ name: 'shell' }),
        step.authorize({ name: 'write_file' }),
        step.authorize({ name: 'deploy' }),
      ]);
      await manager.resumeSession(id, { confirmation: 'approve-session' });
      const { events, result } = await finish(stream);
      expect(result.stopReason).toBe('end_turn');
      // Only the first call asked (the stream holds the whole turn, read from its start).
      expect(events.filter((event) => event.type === 'tool_call_confirmation')).toHaveLength(1);
      expect(scripted.turns[0]?.decisions).toEqual([
        { approved: true },
        { approved: true },
        { approved: true },
      ]);
      const stored = await store.getSession(id);
      expect(stored.safetyPolicy).toBe('autonomous');
      expect(stored.permissions).toEqual(noPermissions);
    });

    test('resumeSession approve-session also approves the other pending confirmations of the turn', async () => {
      const created = await session('strict');
      scripted.turn(async function* (turn) {
        const decisions = await Promise.all([
          turn.authorizeToolCall({ toolCall: { id: 'a', name: 'shell', arguments: '{}' } }),
          turn.authorizeToolCall({ toolCall: { id: 'b', name: 'deploy', arguments: '{}' } }),
        ]);
        yield { type: 'custom', name: 'decisions', data: decisions };
      });
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      const first = await readUntil(iterator, 'tool_call_confirmation');
      await readUntil(iterator, 'tool_call_confirmation');
      await manager.resumeSession(created.id, {
        confirmation: 'approve-session',
        confirmationId: first.event.confirmationId,
      });
      const rest = await readRest(iterator);
      expect(rest).toContainEqual(
        expect.objectContaining({ type: 'custom', data: [{ approved: true }, { approved: true }] }),
      );
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toEqual([]);
    });

    test('resumeSession reject gives the runtime approved:false with the given reason', async () => {
      const { id, stream } = await askedTurn([step.authorize({ id: 'call-1', name: 'rm' })]);
      await manager.resumeSession(id, { confirmation: 'reject', reason: 'never delete files' });
      const { events, result } = await finish(stream);
      expect(result.stopReason).toBe('end_turn');
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: false, reason: 'never delete files' }]);
      expect(events).toContainEqual(
        expect.objectContaining({
          type: 'tool_call_response',
          toolCallId: 'call-1',
          response: 'never delete files',
          isError: true,
        }),
      );
      assertHistoryValid(await store.getSession(id));
    });

    test('resumeSession reject without a reason gives the runtime a non-empty reason', async () => {
      const { id, stream } = await askedTurn([step.authorize({ name: 'rm' })]);
      await manager.resumeSession(id, { confirmation: 'reject' });
      await finish(stream);
      const decision = scripted.turns[0]?.decisions[0] as Extract<ToolDecision, { approved: false }>;
      expect(decision.approved).toBe(false);
      expect(decision.reason.length).toBeGreaterThan(0);
    });
  });

  describe('resumeSession errors', () => {
    test('resumeSession rejects an unknown confirmation value with INVALID_ARGUMENT and the call stays pending', async () => {
      const created = await session('strict');
      scripted.turn([step.authorize({ name: 'shell' })]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      await readUntil(iterator, 'tool_call_confirmation');
      await expectRejectsWithCode(
        manager.resumeSession(created.id, { confirmation: 'yes' as 'approve' }),
        'INVALID_ARGUMENT',
      );
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toHaveLength(1);
      await manager.resumeSession(created.id, { confirmation: 'approve' });
      await readRest(iterator);
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
    });

    test('resumeSession rejects with NOTHING_PENDING on an idle session', async () => {
      const created = await session();
      await expectRejectsWithCode(
        manager.resumeSession(created.id, { confirmation: 'approve' }),
        'NOTHING_PENDING',
      );
    });

    test('resumeSession rejects with NOTHING_PENDING while a turn runs without a pending confirmation', async () => {
      const created = await session('strict');
      scripted.turn([step.hold('running')]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('running');
      await expectRejectsWithCode(
        manager.resumeSession(created.id, { confirmation: 'approve' }),
        'NOTHING_PENDING',
      );
      scripted.release('running');
      await collect(stream);
    });

    test('resumeSession rejects with NOTHING_PENDING for an unknown confirmationId', async () => {
      const created = await session('strict');
      scripted.turn([step.authorize({ name: 'shell' })]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      await readUntil(iterator, 'tool_call_confirmation');
      await expectRejectsWithCode(
        manager.resumeSession(created.id, { confirmation: 'approve', confirmationId: 'conf-nope' }),
        'NOTHING_PENDING',
      );
      await manager.resumeSession(created.id, { confirmation: 'approve' });
      await readRest(iterator);
    });

    test('resumeSession rejects with SESSION_NOT_FOUND for an unknown session', async () => {
      await expectRejectsWithCode(
        manager.resumeSession('nobody', { confirmation: 'approve' }),
        'SESSION_NOT_FOUND',
      );
    });

    test('resumeSession with several pending rejects without an id (INVALID_ARGUMENT) and answers the one named by id', async () => {
      const created = await session('strict');
      const a = { id: 'call-a', name: 'shell', arguments: '{"cmd":"ls"}' };
      const b = { id: 'call-b', name: 'rm', arguments: '{"path":"/"}' };
      scripted.turn(async function* (turn) {
        const decisions = await Promise.all([
          turn.authorizeToolCall({ toolCall: a }),
          turn.authorizeToolCall({ toolCall: b }),
        ]);
        yield { type: 'custom', name: 'decisions', data: decisions };
      });
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      const first = (await readUntil(iterator, 'tool_call_confirmation')).event;
      const second = (await readUntil(iterator, 'tool_call_confirmation')).event;
      expect(first.confirmationId).not.toBe(second.confirmationId);

      // A reconnecting client sees both in the snapshot, with what it needs to answer them.
      const snapshot = await manager.getSessionSnapshot(created.id);
      expect(snapshot.pending.confirmations).toEqual([
        { confirmationId: first.confirmationId, turnId: stream.turnId, toolCall: a },
        { confirmationId: second.confirmationId, turnId: stream.turnId, toolCall: b },
      ]);

      await expectRejectsWithCode(
        manager.resumeSession(created.id, { confirmation: 'approve' }),
        'INVALID_ARGUMENT',
      );
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toHaveLength(2);

      await manager.resumeSession(created.id, {
        confirmation: 'reject',
        reason: 'not that one',
        confirmationId: second.confirmationId,
      });
      const remaining = (await manager.getSessionSnapshot(created.id)).pending.confirmations;
      expect(remaining.map((entry) => entry.confirmationId)).toEqual([first.confirmationId]);
      // One left: no id needed now.
      await manager.resumeSession(created.id, { confirmation: 'approve' });
      const rest = await readRest(iterator);
      expect(rest).toContainEqual(
        expect.objectContaining({
          type: 'custom',
          data: [{ approved: true }, { approved: false, reason: 'not that one' }],
        }),
      );
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toEqual([]);
    });

    test('resumeSession answering the same confirmation twice rejects the second with NOTHING_PENDING', async () => {
      const created = await session('strict');
      scripted.turn([step.authorize({ name: 'shell' }), step.hold('after')]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      const { event } = await readUntil(iterator, 'tool_call_confirmation');
      const answers = await Promise.allSettled([
        manager.resumeSession(created.id, { confirmation: 'approve', confirmationId: event.confirmationId }),
        manager.resumeSession(created.id, { confirmation: 'reject', confirmationId: event.confirmationId }),
      ]);
      expect(answers[0].status).toBe('fulfilled');
      expect(answers[1].status).toBe('rejected');
      expect((answers[1] as PromiseRejectedResult).reason.code).toBe('NOTHING_PENDING');
      await scripted.waitUntilHeld('after');
      scripted.release('after');
      await readRest(iterator);
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
    });
  });

  describe('cancelling a turn that waits for a confirmation', () => {
    type Canceller = {
      name: string;
      /** What a late resumeSession rejects with when the cancel also ended the session or manager. */
      ends?: string;
      /** Cancels; returns the reason the wait must reject with, when the caller chose one. */
      cancel(context: { id: string; stream: TurnStream; controller: AbortController }): Promise<unknown>;
    };
    const cancellers: Canceller[] = [
      {
        name: 'cancelTurn',
        async cancel({ id }) {
          const reason = new Error('stop from cancelTurn');
          expect(await manager.cancelTurn(id, reason)).toBe(true);
          return reason;
        },
      },
      {
        name: 'stream.cancel',
        async cancel({ stream }) {
          const reason = new Error('stop from stream.cancel');
          stream.cancel(reason);
          return reason;
        },
      },
      {
        name: 'the run signal',
        async cancel({ controller }) {
          const reason = new Error('stop from the signal');
          controller.abort(reason);
          return reason;
        },
      },
      {
        name: 'deleteSession',
        ends: 'SESSION_NOT_FOUND',
        async cancel({ id }) {
          await manager.deleteSession(id);
          return undefined;
        },
      },
      {
        name: 'close',
        ends: 'CLOSED',
        async cancel() {
          await manager.close();
          return undefined;
        },
      },
    ];

    test.each(cancellers)(
      '$name settles the pending wait at once and the turn ends cancelled',
      async (canceller) => {
        const created = await session('strict');
        const settled: Array<{ error: unknown }> = [];
        scripted.turn(async function* (turn) {
          yield {
            type: 'message_added',
            message: {
              id: 'm-a',
              role: 'assistant',
              content: '',
              toolCalls: [{ id: 'call-1', name: 'shell', arguments: '{}' }],
              createdAt: new Date().toISOString(),
            },
          };
          try {
            await turn.authorizeToolCall({ toolCall: { id: 'call-1', name: 'shell', arguments: '{}' } });
          } catch (error) {
            settled.push({ error });
            throw error;
          }
        });
        const controller = new AbortController();
        const stream = await manager.runSession(
          created.id,
          { messages: ['go'] },
          { signal: controller.signal, onDetach: 'continue' },
        );
        await logUntil(manager, created.id, (event) => event.type === 'tool_call_confirmation');
        const reason = await canceller.cancel({ id: created.id, stream, controller });
        const result = await stream.done;
        expect(result.stopReason).toBe('cancelled');
        expect(settled).toHaveLength(1);
        if (reason !== undefined) expect(settled[0]?.error).toBe(reason);
        const record = scripted.turns[0];
        expect(record?.signal.aborted).toBe(true);
        expect(record?.aborted).toBe(true);
        if (canceller.ends !== undefined) {
          await expectRejectsWithCode(
            manager.resumeSession(created.id, { confirmation: 'approve' }),
            canceller.ends,
          );
          return;
        }
        await expectRejectsWithCode(
          manager.resumeSession(created.id, { confirmation: 'approve' }),
          'NOTHING_PENDING',
        );
        expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toEqual([]);
        assertHistoryValid(await store.getSession(created.id));
      },
    );
  });

  describe('policy and permission edits', () => {
    test('setSessionSafetyPolicy rejects an unknown policy with INVALID_ARGUMENT and keeps the stored one', async () => {
      const created = await session('balanced');
      await expectRejectsWithCode(
        manager.setSessionSafetyPolicy(created.id, 'yolo' as SafetyPolicy),
        'INVALID_ARGUMENT',
      );
      expect((await store.getSession(created.id)).safetyPolicy).toBe('balanced');
    });

    test.each<SafetyPolicy>(['', 'strict', 'balanced', 'restricted', 'autonomous'])(
      'setSessionSafetyPolicy(%j) persists the policy',
      async (policy) => {
        const created = await session(policy === 'strict' ? 'balanced' : 'strict');
        await manager.setSessionSafetyPolicy(created.id, policy);
        expect((await store.getSession(created.id)).safetyPolicy).toBe(policy);
      },
    );

    test.each<[SafetyPolicy]>([[''], ['balanced'], ['strict'], ['restricted']])(
      'toggleToolApproval round-trips %j → autonomous → %j, persisted each time',
      async (initial) => {
        const created = await session(initial);
        expect(await manager.toggleToolApproval(created.id)).toBe('autonomous');
        expect((await store.getSession(created.id)).safetyPolicy).toBe('autonomous');
        expect(await manager.toggleToolApproval(created.id)).toBe(initial);
        expect((await store.getSession(created.id)).safetyPolicy).toBe(initial);
        expect(await manager.toggleToolApproval(created.id)).toBe('autonomous');
      },
    );

    test("toggleToolApproval on an autonomous session with nothing remembered restores ''", async () => {
      const created = await session('autonomous');
      expect(await manager.toggleToolApproval(created.id)).toBe('');
      expect((await store.getSession(created.id)).safetyPolicy).toBe('');
    });

    test('toggleToolApproval to autonomous approves a pending confirmation', async () => {
      const created = await session('strict');
      scripted.turn([step.authorize({ name: 'shell' })]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      await readUntil(iterator, 'tool_call_confirmation');
      expect(await manager.toggleToolApproval(created.id)).toBe('autonomous');
      await readRest(iterator);
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
    });

    test('updateSessionPermissions during a turn is used by the next authorisation of that turn', async () => {
      const created = await session('strict');
      scripted.turn([
        step.authorize({ name: 'shell' }, { messages: false }),
        step.hold('between'),
        step.authorize({ name: 'shell' }, { messages: false }),
        step.authorize({ name: 'rm' }, { messages: false }),
      ]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      await readUntil(iterator, 'tool_call_confirmation');
      await manager.resumeSession(created.id, { confirmation: 'approve' });
      await scripted.waitUntilHeld('between');
      await manager.updateSessionPermissions(created.id, { allow: ['shell'], ask: [], deny: ['rm'] });
      scripted.release('between');
      const rest = await readRest(iterator);
      expect(rest.filter((event) => event.type === 'tool_call_confirmation')).toHaveLength(0);
      expect(scripted.turns[0]?.decisions).toEqual([
        { approved: true },
        { approved: true },
        { approved: false, reason: expect.stringContaining('rm') },
      ]);
      expect((await store.getSession(created.id)).permissions).toEqual({
        allow: ['shell'],
        ask: [],
        deny: ['rm'],
      });
    });

    test('setSessionSafetyPolicy during a turn is used by the next authorisation of that turn', async () => {
      const created = await session('autonomous');
      scripted.turn([
        step.authorize({ name: 'shell' }, { messages: false }),
        step.hold('between'),
        step.authorize({ name: 'shell' }, { messages: false }),
      ]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await scripted.waitUntilHeld('between');
      await manager.setSessionSafetyPolicy(created.id, 'restricted');
      scripted.release('between');
      await collect(stream);
      expect(scripted.turns[0]?.decisions).toEqual([
        { approved: true },
        { approved: false, reason: expect.any(String) },
      ]);
    });

    test('updateSessionPermissions rejects invalid permissions with INVALID_ARGUMENT', async () => {
      const created = await session();
      await expectRejectsWithCode(
        manager.updateSessionPermissions(created.id, { allow: 'shell' } as unknown as Permissions),
        'INVALID_ARGUMENT',
      );
      expect((await store.getSession(created.id)).permissions).toEqual(noPermissions);
    });
  });

  describe('robustness a host can rely on', () => {
    test.each<[string, Record<string, unknown>]>([
      ['a non-string reason', { confirmation: 'reject', reason: 5 }],
      ['an empty toolName', { confirmation: 'approve-tool', toolName: '' }],
      ['a non-string confirmationId', { confirmation: 'approve', confirmationId: 7 }],
      ['a missing confirmation', {}],
    ])('resumeSession rejects %s with INVALID_ARGUMENT and the call stays pending', async (_name, input) => {
      const created = await session('strict');
      scripted.turn([step.authorize({ name: 'shell' })]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      await readUntil(iterator, 'tool_call_confirmation');
      await expectRejectsWithCode(
        manager.resumeSession(created.id, input as unknown as Parameters<SessionManager['resumeSession']>[1]),
        'INVALID_ARGUMENT',
      );
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toHaveLength(1);
      await manager.resumeSession(created.id, { confirmation: 'approve' });
      await readRest(iterator);
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
    });

    test.each<['approve-tool' | 'approve-session']>([['approve-tool'], ['approve-session']])(
      'resumeSession %s whose store write fails rejects, leaves the confirmation pending, and a retry answers it',
      async (confirmation) => {
        const created = await session('strict');
        scripted.turn([step.authorize({ name: 'shell' })]);
        const stream = await manager.runSession(created.id, { messages: ['go'] });
        const iterator = stream[Symbol.asyncIterator]();
        const { event } = await readUntil(iterator, 'tool_call_confirmation');
        store.failNext('updateSession');
        await expectRejectsWithCode(manager.resumeSession(created.id, { confirmation }), 'STORE_UNAVAILABLE');
        const pending = (await manager.getSessionSnapshot(created.id)).pending.confirmations;
        expect(pending.map((entry) => entry.confirmationId)).toEqual([event.confirmationId]);
        expect(scripted.turns[0]?.decisions).toEqual([]);
        const stored = await store.getSession(created.id);
        expect(stored.permissions).toEqual(noPermissions);
        expect(stored.safetyPolicy).toBe('strict');
        await manager.resumeSession(created.id, { confirmation, confirmationId: event.confirmationId });
        await readRest(iterator);
        expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
      },
    );

    test('authorizeToolCall called after the turn ended rejects at once and leaves nothing pending', async () => {
      const created = await session('strict');
      let kept: TurnContext | undefined;
      scripted.turn(function* (turn) {
        kept = turn;
        yield { type: 'agent_choice', content: 'bye' };
      });
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await collect(stream);
      const late = (kept as TurnContext).authorizeToolCall({
        toolCall: { id: 'late', name: 'shell', arguments: '{}' },
      });
      await expect(late).rejects.toBeDefined();
      const snapshot = await manager.getSessionSnapshot(created.id);
      expect(snapshot.pending.confirmations).toEqual([]);
      // Nothing was emitted for the ended turn after its stream_stopped.
      const logged = await logUntil(manager, created.id, (event) => event.seq === snapshot.lastEventSeq);
      expect(logged.at(-1)?.type).toBe('stream_stopped');
    });

    test('a turn that fails while a confirmation is pending settles it: the snapshot drops it and resumeSession gets NOTHING_PENDING', async () => {
      const created = await session('strict');
      const settled: unknown[] = [];
      scripted.turn(async function* (turn) {
        const waiting = turn.authorizeToolCall({ toolCall: { id: 'c1', name: 'shell', arguments: '{}' } });
        waiting.catch((error: unknown) => settled.push(error));
        yield { type: 'agent_choice', content: 'thinking' };
        await Promise.resolve();
        throw new Error('model crashed');
      });
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      await collect(stream);
      expect((await stream.done).stopReason).toBe('error');
      expect(settled).toHaveLength(1);
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toEqual([]);
      await expectRejectsWithCode(
        manager.resumeSession(created.id, { confirmation: 'approve' }),
        'NOTHING_PENDING',
      );
    });

    test('authorizeToolCall rejects an invalid tool call with INVALID_ARGUMENT and emits nothing', async () => {
      const created = await session('strict');
      const errors: unknown[] = [];
      scripted.turn(async function* (turn) {
        try {
          await turn.authorizeToolCall({ toolCall: { id: '', name: 'shell', arguments: '{}' } });
        } catch (error) {
          errors.push(error);
        }
        yield { type: 'agent_choice', content: 'ok' };
      });
      const events = await collect(await manager.runSession(created.id, { messages: ['go'] }));
      expect(AgentSessionsError.hasCode(errors[0], 'INVALID_ARGUMENT')).toBe(true);
      expect(events.filter((event) => event.type === 'tool_call_confirmation')).toEqual([]);
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toEqual([]);
    });

    test.each<[string, (id: string) => Promise<unknown>]>([
      ['setSessionSafetyPolicy autonomous', (id) => manager.setSessionSafetyPolicy(id, 'autonomous')],
      [
        'updateSessionPermissions allowing the tool',
        (id) => manager.updateSessionPermissions(id, { allow: ['shell'], ask: [], deny: [] }),
      ],
    ])('%s approves a pending confirmation the new rules approve without asking', async (_name, change) => {
      const created = await session('strict');
      scripted.turn([step.authorize({ name: 'shell' })]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      await readUntil(iterator, 'tool_call_confirmation');
      await change(created.id);
      await readRest(iterator);
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: true }]);
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toEqual([]);
    });

    test('updateSessionPermissions adding a deny pattern leaves a pending confirmation for the human', async () => {
      const created = await session('strict');
      scripted.turn([step.authorize({ name: 'shell' })]);
      const stream = await manager.runSession(created.id, { messages: ['go'] });
      const iterator = stream[Symbol.asyncIterator]();
      await readUntil(iterator, 'tool_call_confirmation');
      await manager.updateSessionPermissions(created.id, { allow: [], ask: [], deny: ['shell'] });
      expect((await manager.getSessionSnapshot(created.id)).pending.confirmations).toHaveLength(1);
      await manager.resumeSession(created.id, { confirmation: 'reject', reason: 'denied now' });
      await readRest(iterator);
      expect(scripted.turns[0]?.decisions).toEqual([{ approved: false, reason: 'denied now' }]);
    });
  });
});
