// Elicitation (src/manager/authorization.ts) through the manager: TurnContext.elicit, the
// elicitation_request event, resumeElicitation and getSessionSnapshot.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import type { SessionManager } from '../../src/manager/session-manager.js';
import type { TurnStream } from '../../src/manager/types.js';
import type { ElicitationResult, TurnContext } from '../../src/runtime.js';
import type { JsonValue } from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { type ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { expectRejectsWithCode } from '../helpers/assertions.js';
import { logUntil, readRest, readUntil } from '../helpers/history.js';
import { closeManager, startManager } from '../helpers/manager.js';
import { collect, storeFixtures } from '../helpers/stores.js';

describe.each(storeFixtures())('elicitation through the manager ($name)', (fixture) => {
  let store: Store;
  let scripted: ScriptedRuntime;
  let manager: SessionManager;

  beforeEach(async () => {
    ({ store, scripted, manager } = startManager(await fixture.create()));
  });

  afterEach(() => closeManager(fixture, { manager, scripted }));

  const schema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };

  test('elicit emits elicitation_request (form) to the stream and the event log, and the turn waits', async () => {
    const created = await manager.createSession();
    scripted.turn([step.elicit({ message: 'Your name?', schema }), step.reply('thanks')]);
    const stream = await manager.runSession(created.id, { messages: ['hi'] });
    const iterator = stream[Symbol.asyncIterator]();
    const request = (await readUntil(iterator, 'elicitation_request')).event;
    expect(request).toMatchObject({
      sessionId: created.id,
      turnId: stream.turnId,
      elicitationId: expect.any(String),
      message: 'Your name?',
      schema,
      mode: 'form',
    });
    expect(request).not.toHaveProperty('url');
    const logged = await logUntil(manager, created.id, (event) => event.type === 'elicitation_request');
    expect(logged.at(-1)).toEqual(request);

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
    expect(snapshot.lastEventSeq).toBe(request.seq);
    expect(scripted.turns[0]?.elicitations).toEqual([]);

    await manager.resumeElicitation(created.id, { action: 'accept', content: { name: 'Ada' } });
    expect((await next).value).toMatchObject({
      type: 'custom',
      name: 'elicitation_result',
      data: { action: 'accept', content: { name: 'Ada' } },
    });
    await readRest(iterator);
    expect((await stream.done).stopReason).toBe('end_turn');
  });

  test('elicit in url mode emits mode url with the url', async () => {
    const created = await manager.createSession();
    scripted.turn([step.elicit({ message: 'Sign in', mode: 'url', url: 'https://auth.example/login' })]);
    const stream = await manager.runSession(created.id, { messages: ['hi'] });
    const iterator = stream[Symbol.asyncIterator]();
    const request = (await readUntil(iterator, 'elicitation_request')).event;
    expect(request).toMatchObject({ message: 'Sign in', mode: 'url', url: 'https://auth.example/login' });
    expect(request).not.toHaveProperty('schema');
    await manager.resumeElicitation(created.id, { action: 'accept' });
    await readRest(iterator);
  });

  test.each<[string, Parameters<SessionManager['resumeElicitation']>[1], ElicitationResult]>([
    [
      'accept with content',
      { action: 'accept', content: { name: 'Ada', age: 36 } },
      { action: 'accept', content: { name: 'Ada', age: 36 } },
    ],
    ['accept without content', { action: 'accept' }, { action: 'accept' }],
    ['decline', { action: 'decline' }, { action: 'decline' }],
    ['cancel', { action: 'cancel' }, { action: 'cancel' }],
    ['decline ignores content', { action: 'decline', content: { x: 1 } }, { action: 'decline' }],
  ])('resumeElicitation %s: the runtime receives exactly that', async (_name, answer, received) => {
    const created = await manager.createSession();
    scripted.turn([step.elicit({ message: 'Your name?', schema })]);
    const stream = await manager.runSession(created.id, { messages: ['hi'] }, { onDetach: 'continue' });
    // Answered by another caller that only saw the event log.
    await logUntil(manager, created.id, (event) => event.type === 'elicitation_request');
    await manager.resumeElicitation(created.id, answer);
    await collect(stream);
    expect(scripted.turns[0]?.elicitations).toEqual([received]);
    expect(scripted.turns[0]?.elicitations[0]).toStrictEqual(received);
  });

  test('resumeElicitation rejects an unknown action with INVALID_ARGUMENT and the request stays pending', async () => {
    const created = await manager.createSession();
    scripted.turn([step.elicit({ message: 'ok?' })]);
    const stream = await manager.runSession(created.id, { messages: ['hi'] });
    const iterator = stream[Symbol.asyncIterator]();
    await readUntil(iterator, 'elicitation_request');
    await expectRejectsWithCode(
      manager.resumeElicitation(created.id, { action: 'approve' as 'accept' }),
      'INVALID_ARGUMENT',
    );
    expect((await manager.getSessionSnapshot(created.id)).pending.elicitations).toHaveLength(1);
    await manager.resumeElicitation(created.id, { action: 'decline' });
    await readRest(iterator);
    expect(scripted.turns[0]?.elicitations).toEqual([{ action: 'decline' }]);
  });

  test('resumeElicitation rejects with NOTHING_PENDING on an idle session', async () => {
    const created = await manager.createSession();
    await expectRejectsWithCode(
      manager.resumeElicitation(created.id, { action: 'accept' }),
      'NOTHING_PENDING',
    );
  });

  test('resumeElicitation rejects with SESSION_NOT_FOUND for an unknown session', async () => {
    await expectRejectsWithCode(
      manager.resumeElicitation('nobody', { action: 'accept' }),
      'SESSION_NOT_FOUND',
    );
  });

  test('confirmations and elicitations are answered separately: resumeSession does not answer an elicitation', async () => {
    const created = await manager.createSession();
    scripted.turn([step.elicit({ message: 'ok?' })]);
    const stream = await manager.runSession(created.id, { messages: ['hi'] });
    const iterator = stream[Symbol.asyncIterator]();
    await readUntil(iterator, 'elicitation_request');
    await expectRejectsWithCode(
      manager.resumeSession(created.id, { confirmation: 'approve' }),
      'NOTHING_PENDING',
    );
    await manager.resumeElicitation(created.id, { action: 'cancel' });
    await readRest(iterator);
  });

  test('resumeElicitation with several pending rejects without an id (INVALID_ARGUMENT) and answers the one named by id; the snapshot shows them', async () => {
    const created = await manager.createSession();
    scripted.turn(async function* (turn) {
      const answers = await Promise.all([
        turn.elicit({ message: 'first', schema }),
        turn.elicit({ message: 'second', mode: 'url', url: 'https://x.example/' }),
      ]);
      yield { type: 'custom', name: 'answers', data: answers as JsonValue };
    });
    const stream = await manager.runSession(created.id, { messages: ['hi'] });
    const iterator = stream[Symbol.asyncIterator]();
    const first = (await readUntil(iterator, 'elicitation_request')).event;
    const second = (await readUntil(iterator, 'elicitation_request')).event;

    const snapshot = await manager.getSessionSnapshot(created.id);
    expect(snapshot.pending.elicitations).toEqual([
      { elicitationId: first.elicitationId, turnId: stream.turnId, message: 'first', schema, mode: 'form' },
      {
        elicitationId: second.elicitationId,
        turnId: stream.turnId,
        message: 'second',
        mode: 'url',
        url: 'https://x.example/',
      },
    ]);
    expect(snapshot.pending.confirmations).toEqual([]);

    await expectRejectsWithCode(
      manager.resumeElicitation(created.id, { action: 'accept' }),
      'INVALID_ARGUMENT',
    );
    await expectRejectsWithCode(
      manager.resumeElicitation(created.id, { action: 'accept', elicitationId: 'elic-nope' }),
      'NOTHING_PENDING',
    );
    await manager.resumeElicitation(created.id, { action: 'decline', elicitationId: second.elicitationId });
    expect(
      (await manager.getSessionSnapshot(created.id)).pending.elicitations.map((e) => e.elicitationId),
    ).toEqual([first.elicitationId]);
    await manager.resumeElicitation(created.id, { action: 'accept', content: { name: 'Ada' } });
    const rest = await readRest(iterator);
    expect(rest).toContainEqual(
      expect.objectContaining({
        type: 'custom',
        name: 'answers',
        data: [{ action: 'accept', content: { name: 'Ada' } }, { action: 'decline' }],
      }),
    );
    expect((await manager.getSessionSnapshot(created.id)).pending.elicitations).toEqual([]);
  });

  test('elicit called after the turn ended rejects at once and leaves nothing pending', async () => {
    const created = await manager.createSession();
    let kept: TurnContext | undefined;
    scripted.turn(function* (turn) {
      kept = turn;
      yield { type: 'agent_choice', content: 'bye' };
    });
    await collect(await manager.runSession(created.id, { messages: ['hi'] }));
    await expect((kept as TurnContext).elicit({ message: 'too late?' })).rejects.toBeDefined();
    const snapshot = await manager.getSessionSnapshot(created.id);
    expect(snapshot.pending.elicitations).toEqual([]);
    await expectRejectsWithCode(
      manager.resumeElicitation(created.id, { action: 'accept' }),
      'NOTHING_PENDING',
    );
  });

  test.each<[string, Record<string, unknown>]>([
    ['a non-string message', { message: 5 }],
    ['an unknown mode', { message: 'm', mode: 'popup' }],
    ['url mode without a url', { message: 'm', mode: 'url' }],
  ])('elicit rejects %s with INVALID_ARGUMENT and emits nothing', async (_name, request) => {
    const created = await manager.createSession();
    const errors: unknown[] = [];
    scripted.turn(async function* (turn) {
      try {
        await turn.elicit(request as unknown as Parameters<TurnContext['elicit']>[0]);
      } catch (error) {
        errors.push(error);
      }
      yield { type: 'agent_choice', content: 'ok' };
    });
    const events = await collect(await manager.runSession(created.id, { messages: ['hi'] }));
    expect(AgentSessionsError.hasCode(errors[0], 'INVALID_ARGUMENT')).toBe(true);
    expect(events.filter((event) => event.type === 'elicitation_request')).toEqual([]);
    expect((await manager.getSessionSnapshot(created.id)).pending.elicitations).toEqual([]);
  });

  describe('cancelling a turn that waits for an elicitation', () => {
    type Canceller = {
      name: string;
      deletes?: boolean;
      cancel(context: { id: string; stream: TurnStream; controller: AbortController }): Promise<unknown>;
    };
    const cancellers: Canceller[] = [
      {
        name: 'cancelTurn',
        async cancel({ id }) {
          const reason = new Error('stop from cancelTurn');
          await manager.cancelTurn(id, reason);
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
        deletes: true,
        async cancel({ id }) {
          await manager.deleteSession(id);
          return undefined;
        },
      },
    ];

    test.each(cancellers)(
      '$name settles the wait at once: elicit rejects, the signal aborts, the turn ends cancelled',
      async (canceller) => {
        const created = await manager.createSession();
        const settled: unknown[] = [];
        scripted.turn(async function* (turn) {
          yield { type: 'agent_choice', content: 'asking' };
          try {
            await turn.elicit({ message: 'ok?' });
          } catch (error) {
            settled.push(error);
            throw error;
          }
        });
        const controller = new AbortController();
        const stream = await manager.runSession(
          created.id,
          { messages: ['hi'] },
          { signal: controller.signal, onDetach: 'continue' },
        );
        await logUntil(manager, created.id, (event) => event.type === 'elicitation_request');
        const reason = await canceller.cancel({ id: created.id, stream, controller });
        expect((await stream.done).stopReason).toBe('cancelled');
        expect(settled).toHaveLength(1);
        if (reason !== undefined) expect(settled[0]).toBe(reason);
        expect(scripted.turns[0]?.signal.aborted).toBe(true);
        if (canceller.deletes) {
          await expectRejectsWithCode(
            manager.resumeElicitation(created.id, { action: 'accept' }),
            'SESSION_NOT_FOUND',
          );
          return;
        }
        await expectRejectsWithCode(
          manager.resumeElicitation(created.id, { action: 'accept' }),
          'NOTHING_PENDING',
        );
        expect((await manager.getSessionSnapshot(created.id)).pending.elicitations).toEqual([]);
      },
    );
  });
});
