// Conformance group: CRUD
import { ErrorCode } from '../../errors.js';
import type { Message, Session, SessionItem, SessionPatch } from '../../schemas.js';
import { assert, assertEqual, assertRejectsWithCode, show } from '../assert.js';
import {
  assertSameSet,
  assertUnchanged,
  assertWriteTime,
  fullSession,
  INVALID_IDS,
  ids,
  listAll,
  makeMessage,
  makeSession,
  messageItem,
  OPTIONAL_FIELDS,
  REQUIRED_PATCH_FIELDS,
  T0,
  T1,
  VALID_PATCHES,
  withoutUpdatedAt,
} from './fixtures.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/**
 * Registers the CRUD tests of the Store conformance suite: createSession, getSession, updateSession, appendItems, updateMessage and deleteSession: their results, errors, validation, copy isolation, patch rules, `updatedAt`, all-or-nothing appends and id validation.
 * Runnable alone; `describeStoreConformance` runs it with every other group.
 */
export function describeCrudConformance(options: StoreConformanceOptions): void {
  registerCases(options, options.name ?? 'Store conformance: CRUD', crudCases());
}

/** The CRUD cases, in the order they are registered. */
/** The cases of this group. */
export function crudCases(): Case[] {
  return [
    ...lifecycleCases(),
    ...isolationCases(),
    ...patchCases(),
    ...appendCases(),
    ...messageCases(),
    ...idCases(),
  ];
}

function lifecycleCases(): Case[] {
  return [
    {
      name: 'createSession then getSession returns every field exactly as given, timestamps included',
      async run({ store }) {
        const session = fullSession('full-1');
        session.updatedAt = '2024-05-06T07:08:09.123Z';
        await store.createSession(session);
        assertEqual(await store.getSession('full-1'), session, 'getSession after createSession');
      },
    },
    {
      name: 'createSession rejects with SESSION_EXISTS for a taken id and keeps the first session',
      async run({ store }) {
        await store.createSession(makeSession('taken', { title: 'first' }));
        const first = await store.getSession('taken');
        await assertRejectsWithCode(
          () => store.createSession(makeSession('taken', { title: 'second' })),
          ErrorCode.SESSION_EXISTS,
          'createSession of a taken id',
        );
        await assertUnchanged(store, first, 'createSession of a taken id');
      },
    },
    {
      name: 'getSession rejects with SESSION_NOT_FOUND for an unknown id',
      async run({ store }) {
        await store.createSession(makeSession('known'));
        await assertRejectsWithCode(
          () => store.getSession('unknown'),
          ErrorCode.SESSION_NOT_FOUND,
          'getSession("unknown")',
        );
      },
    },
    {
      name: 'every write rejects with SESSION_NOT_FOUND for an unknown id and creates nothing',
      async run({ store }) {
        const calls: [string, () => Promise<unknown>][] = [
          ['updateSession', () => store.updateSession('unknown', { title: 'x' })],
          ['appendItems', () => store.appendItems('unknown', [messageItem('m1')])],
          ['updateMessage', () => store.updateMessage('unknown', 'm1', makeMessage('m1'))],
          ['deleteSession', () => store.deleteSession('unknown')],
        ];
        for (const [method, call] of calls) {
          await assertRejectsWithCode(call, ErrorCode.SESSION_NOT_FOUND, `${method} of an unknown session`);
        }
        assertEqual(ids(await listAll(store)), [], 'listSessions after writes to an unknown session');
      },
    },
    {
      name: 'deleteSession removes the session from getSession and listSessions; a second delete rejects with SESSION_NOT_FOUND',
      async run({ store }) {
        await store.createSession(makeSession('keep'));
        await store.createSession(fullSession('gone'));
        await store.deleteSession('gone');
        await assertRejectsWithCode(
          () => store.getSession('gone'),
          ErrorCode.SESSION_NOT_FOUND,
          'getSession after deleteSession',
        );
        await assertRejectsWithCode(
          () => store.deleteSession('gone'),
          ErrorCode.SESSION_NOT_FOUND,
          'a second deleteSession',
        );
        await assertRejectsWithCode(
          () => store.appendItems('gone', [messageItem('m9')]),
          ErrorCode.SESSION_NOT_FOUND,
          'appendItems after deleteSession',
        );
        assertEqual(ids(await listAll(store)), ['keep'], 'listSessions after deleteSession');
        assertEqual((await store.getSession('keep')).id, 'keep', 'the other session after deleteSession');
      },
    },
    {
      name: 'createSession after deleteSession makes a fresh session with the same id',
      async run({ store }) {
        await store.createSession(fullSession('reused'));
        await store.deleteSession('reused');
        const fresh = makeSession('reused', { title: 'fresh' });
        await store.createSession(fresh);
        const got = await store.getSession('reused');
        assertEqual(withoutUpdatedAt(got), withoutUpdatedAt(fresh), 'the re-created session');
        assertEqual(ids(await listAll(store)), ['reused'], 'listSessions after re-creating');
      },
    },
    {
      name: 'createSession rejects an invalid session with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        const base = makeSession('bad');
        const invalid: [string, unknown][] = [
          ['not an object', 'session'],
          ['null', null],
          ['missing title', (({ title: _title, ...rest }) => rest)(base)],
          ['missing items', (({ items: _items, ...rest }) => rest)(base)],
          ['unknown titleSource', { ...base, titleSource: 'magic' }],
          ['createdAt not ISO-8601', { ...base, createdAt: 'yesterday' }],
          ['starred not a boolean', { ...base, starred: 'yes' }],
          ['an empty owner', { ...base, owner: '' }],
          ['owner not a string', { ...base, owner: 7 }],
          ['negative usage', { ...base, usage: { inputTokens: -1, outputTokens: 0, cost: 0 } }],
          ['NaN cost', { ...base, usage: { inputTokens: 0, outputTokens: 0, cost: Number.NaN } }],
          ['unknown safetyPolicy', { ...base, safetyPolicy: 'yolo' }],
          ['permissions missing deny', { ...base, permissions: { allow: [], ask: [] } }],
          ['attributes an array', { ...base, attributes: [] }],
          ['attributes holding a Date', { ...base, attributes: { when: new Date(0) } }],
          ['attributes holding Infinity', { ...base, attributes: { n: Number.POSITIVE_INFINITY } }],
          ['attributes holding a function', { ...base, attributes: { f: () => 1 } }],
          ['agentModelOverrides with a number', { ...base, agentModelOverrides: { coder: 5 } }],
          ['invalid parentId', { ...base, parentId: '../escape' }],
          ['invalid forkedFrom.sessionId', { ...base, forkedFrom: { sessionId: 'a/b' } }],
          ['an item of unknown kind', { ...base, items: [{ kind: 'note', id: 'n1' }] }],
          [
            'a message without createdAt',
            { ...base, items: [{ kind: 'message', message: { id: 'm', role: 'user', content: '' } }] },
          ],
          [
            'a message with an unknown role',
            { ...base, items: [messageItem('m', { role: 'robot' as 'user' })] },
          ],
        ];
        for (const [what, session] of invalid) {
          await assertRejectsWithCode(
            () => store.createSession(session as Session),
            ErrorCode.INVALID_ARGUMENT,
            `createSession with ${what}`,
          );
        }
        await assertRejectsWithCode(
          () => store.getSession('bad'),
          ErrorCode.SESSION_NOT_FOUND,
          'getSession after rejected createSession calls',
        );
        assertEqual(ids(await listAll(store)), [], 'listSessions after rejected createSession calls');
      },
    },
  ];
}

function isolationCases(): Case[] {
  return [
    {
      name: 'createSession copies its input and leaves it unchanged',
      async run({ store }) {
        const session = fullSession('iso-create');
        const snapshot = structuredClone(session);
        await store.createSession(session);
        assertEqual(session, snapshot, 'createSession must not modify the session it was given');
        session.title = 'mutated';
        session.permissions.allow.push('mutated');
        session.attributes.team = 'mutated';
        session.items.push(messageItem('mutated'));
        const first = session.items[0];
        if (first?.kind === 'message') first.message.content = 'mutated';
        const got = await store.getSession('iso-create');
        assertEqual(
          withoutUpdatedAt(got),
          withoutUpdatedAt(snapshot),
          'the stored session after mutating the input',
        );
      },
    },
    {
      name: 'getSession returns a copy: mutating it changes nothing stored',
      async run({ store }) {
        await store.createSession(fullSession('iso-get'));
        const stored = await store.getSession('iso-get');
        const copy = await store.getSession('iso-get');
        assert(copy !== stored && copy.items !== stored.items, 'two getSession calls returned shared memory');
        copy.title = 'mutated';
        copy.usage.cost = 99;
        copy.items.length = 0;
        stored.attributes.nested = 'mutated';
        const first = stored.items[0];
        if (first?.kind === 'message') first.message.content = 'mutated';
        assertEqual(
          withoutUpdatedAt(await store.getSession('iso-get')),
          withoutUpdatedAt(fullSession('iso-get')),
          'the stored session after mutating what getSession returned',
        );
      },
    },
    {
      name: 'appendItems, updateMessage and updateSession copy their input',
      async run({ store }) {
        await store.createSession(makeSession('iso-write'));
        const items = [messageItem('m1'), messageItem('m2')];
        await store.appendItems('iso-write', items);
        items.push(messageItem('m3'));
        (items[0] as { message: Message }).message.content = 'mutated';
        const replacement = makeMessage('m2', {
          content: 'replaced',
          toolCalls: [{ id: 'c', name: 't', arguments: '{}' }],
        });
        await store.updateMessage('iso-write', 'm2', replacement);
        replacement.content = 'mutated';
        replacement.toolCalls?.push({ id: 'x', name: 'x', arguments: '' });
        const patch = { permissions: { allow: ['a'], ask: [], deny: [] }, attributes: { list: [1] } };
        await store.updateSession('iso-write', patch);
        patch.permissions.allow.push('mutated');
        patch.attributes.list.push(2);
        const got = await store.getSession('iso-write');
        assertEqual(
          got.items,
          [
            messageItem('m1'),
            messageItem('m2', { content: 'replaced', toolCalls: [{ id: 'c', name: 't', arguments: '{}' }] }),
          ],
          'items after mutating what appendItems and updateMessage were given',
        );
        assertEqual(
          got.permissions,
          { allow: ['a'], ask: [], deny: [] },
          'permissions after mutating the patch',
        );
        assertEqual(got.attributes, { list: [1] }, 'attributes after mutating the patch');
      },
    },
    {
      name: 'listSessions returns copies: mutating a summary changes nothing stored',
      async run({ store }) {
        await store.createSession(fullSession('iso-list'));
        const page = await store.listSessions();
        const summary = page.sessions[0];
        assert(summary, 'listSessions returned no session');
        summary.title = 'mutated';
        summary.usage.cost = 99;
        page.sessions.length = 0;
        const again = await store.listSessions();
        assertEqual(again.sessions[0]?.title, 'A full session', 'title after mutating a summary');
        assertEqual(again.sessions[0]?.usage, fullSession('x').usage, 'usage after mutating a summary');
        assertEqual(
          (await store.getSession('iso-list')).usage,
          fullSession('x').usage,
          'the session after mutating a summary',
        );
      },
    },
  ];
}

function patchCases(): Case[] {
  return [
    {
      name: 'updateSession changes only the field it names, for every patchable field',
      async run({ store }) {
        for (const [index, patch] of VALID_PATCHES.entries()) {
          const id = `patch-${index}`;
          await store.createSession(fullSession(id));
          const before = await store.getSession(id);
          const started = Date.now();
          await store.updateSession(id, structuredClone(patch));
          const after = await store.getSession(id);
          assertEqual(
            withoutUpdatedAt(after),
            withoutUpdatedAt({ ...before, ...patch } as Session),
            `updateSession(${show(patch)}) must change only that field`,
          );
          assertWriteTime(after, started, before.updatedAt, `updateSession(${show(patch)})`);
        }
      },
    },
    {
      name: 'updateSession naming an optional field with undefined removes it and nothing else',
      async run({ store }) {
        for (const field of OPTIONAL_FIELDS) {
          const id = `remove-${field}`;
          await store.createSession(fullSession(id));
          const before = await store.getSession(id);
          await store.updateSession(id, { [field]: undefined } as SessionPatch);
          const after = await store.getSession(id);
          assert(
            !Object.hasOwn(after, field),
            `updateSession({ ${field}: undefined }) must remove ${field}, got ${show(after[field])}`,
          );
          const expected: Record<string, unknown> = { ...before };
          delete expected[field];
          assertEqual(
            withoutUpdatedAt(after),
            withoutUpdatedAt(expected as Session),
            `updateSession({ ${field}: undefined })`,
          );
          const summary = (await store.listSessions()).sessions.find((entry) => entry.id === id);
          if (field === 'workingDir' || field === 'source' || field === 'owner') {
            assert(
              summary && !Object.hasOwn(summary, field),
              `the summary still has ${field} after it was removed`,
            );
          }
        }
      },
    },
    {
      name: 'updateSession rejects a required field set to undefined with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(fullSession('required'));
        const before = await store.getSession('required');
        for (const field of REQUIRED_PATCH_FIELDS) {
          await assertRejectsWithCode(
            () =>
              store.updateSession('required', { title: 'would change', [field]: undefined } as SessionPatch),
            ErrorCode.INVALID_ARGUMENT,
            `updateSession({ ${field}: undefined })`,
          );
        }
        await assertUnchanged(store, before, 'updateSession removing a required field');
      },
    },
    {
      name: 'updateSession rejects unknown, unpatchable and invalid fields with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(fullSession('strict'));
        const before = await store.getSession('strict');
        const invalid: unknown[] = [
          { title: 'would change', bogus: 1 },
          { items: [] },
          { id: 'other' },
          { createdAt: T1 },
          { updatedAt: T1 },
          { title: 'would change', starred: 'yes' },
          { title: 5 },
          { titleSource: 'magic' },
          { usage: { inputTokens: -1, outputTokens: 0, cost: 0 } },
          { safetyPolicy: 'yolo' },
          { permissions: { allow: 'all', ask: [], deny: [] } },
          { attributes: [1] },
          { attributes: { when: new Date(0) } },
          { agentModelOverrides: { coder: 1 } },
          { parentId: '../escape' },
          { forkedFrom: { sessionId: '' } },
          null,
          'title',
          [],
        ];
        for (const patch of invalid) {
          await assertRejectsWithCode(
            () => store.updateSession('strict', patch as SessionPatch),
            ErrorCode.INVALID_ARGUMENT,
            `updateSession(${show(patch)})`,
          );
        }
        await assertUnchanged(store, before, 'updateSession with invalid patches');
      },
    },
    {
      name: 'updateSession replaces a named object field as a whole',
      async run({ store }) {
        await store.createSession(fullSession('whole'));
        await store.updateSession('whole', { attributes: { only: 'this' }, agentModelOverrides: {} });
        const got = await store.getSession('whole');
        assertEqual(got.attributes, { only: 'this' }, 'attributes after a patch');
        assertEqual(got.agentModelOverrides, {}, 'agentModelOverrides after a patch');
      },
    },
    {
      name: 'every write sets updatedAt to the time of the write and never moves it backwards',
      async run({ store }) {
        await store.createSession(
          makeSession('clock', { updatedAt: '2001-01-01T00:00:00.000Z', items: [messageItem('m1')] }),
        );
        let appended = 0;
        let current = await store.getSession('clock');
        assertEqual(
          current.updatedAt,
          '2001-01-01T00:00:00.000Z',
          'createSession must keep the given updatedAt',
        );
        let started: number;
        const writes: [string, () => Promise<void>][] = [
          ['updateSession', () => store.updateSession('clock', { title: 't' })],
          // A new id each time: appends are idempotent, a repeated id stores (and writes) nothing.
          ['appendItems', () => store.appendItems('clock', [messageItem(`appended-${++appended}`)])],
          ['updateMessage', () => store.updateMessage('clock', 'm1', makeMessage('m1', { content: 'new' }))],
        ];
        for (let round = 0; round < 3; round++) {
          for (const [method, write] of writes) {
            started = Date.now();
            await write();
            const next = await store.getSession('clock');
            assertWriteTime(next, started, current.updatedAt, method);
            current = next;
          }
        }
        const summary = (await store.listSessions()).sessions[0];
        assertEqual(summary?.updatedAt, current.updatedAt, 'the summary updatedAt');
        const future = '2999-01-01T00:00:00.000Z';
        await store.createSession(makeSession('future', { updatedAt: future, items: [messageItem('m1')] }));
        for (const [method, write] of [
          ['updateSession', () => store.updateSession('future', { starred: true })],
          ['appendItems', () => store.appendItems('future', [messageItem('m2')])],
          ['updateMessage', () => store.updateMessage('future', 'm1', makeMessage('m1'))],
        ] as const) {
          await write();
          const written = (await store.getSession('future')).updatedAt;
          assert(
            Date.parse(written) >= Date.parse(future),
            `${method} moved updatedAt backwards from ${future} to ${written}: it must never be earlier than the value it replaces`,
          );
        }
      },
    },
  ];
}

function appendCases(): Case[] {
  return [
    {
      name: 'appendItems appends in order after the existing items, across calls and kinds',
      async run({ store }) {
        const initial = [messageItem('m0')];
        await store.createSession(makeSession('append', { items: initial }));
        const first: SessionItem[] = [
          messageItem('m1'),
          { kind: 'summary', id: 's1', summary: 'so far', firstKeptItem: 1, createdAt: T1 },
        ];
        const second: SessionItem[] = [
          { kind: 'error', id: 'e1', message: 'failed', createdAt: T1 },
          messageItem('m2', { role: 'assistant' }),
        ];
        await store.appendItems('append', first);
        await store.appendItems('append', second);
        assertEqual(
          (await store.getSession('append')).items,
          [...initial, ...first, ...second],
          'items after two appends',
        );
        const summary = (await store.listSessions()).sessions[0];
        assertEqual(summary?.messageCount, 3, 'messageCount counts message items only');
      },
    },
    {
      name: 'appendItems with one invalid item rejects with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(makeSession('atomic', { items: [messageItem('m0')] }));
        const before = await store.getSession('atomic');
        const bad = { kind: 'message', message: { id: 'bad', role: 'user', content: 1, createdAt: T0 } };
        const batches: [string, unknown][] = [
          ['invalid first', [bad, messageItem('m1'), messageItem('m2')]],
          ['invalid middle', [messageItem('m1'), bad, messageItem('m2')]],
          ['invalid last', [messageItem('m1'), messageItem('m2'), bad]],
          ['unknown kind', [messageItem('m1'), { kind: 'note', id: 'n' }]],
          [
            'summary with a negative firstKeptItem',
            [{ kind: 'summary', id: 's', summary: '', firstKeptItem: -1, createdAt: T0 }],
          ],
          ['error item without createdAt', [{ kind: 'error', id: 'e', message: 'x' }]],
          ['a null item', [messageItem('m1'), null]],
          ['not an array', messageItem('m1')],
        ];
        for (const [what, items] of batches) {
          await assertRejectsWithCode(
            () => store.appendItems('atomic', items as SessionItem[]),
            ErrorCode.INVALID_ARGUMENT,
            `appendItems with ${what}`,
          );
        }
        await assertUnchanged(store, before, 'appendItems with an invalid item');
      },
    },
  ];
}

function messageCases(): Case[] {
  return [
    {
      name: 'updateMessage replaces the message in place and keeps every other item',
      async run({ store }) {
        const items = [messageItem('m1'), messageItem('m2', { role: 'assistant' }), messageItem('m3')];
        await store.createSession(makeSession('edit', { items }));
        const replacement = makeMessage('m2', {
          role: 'assistant',
          content: 'edited',
          toolCalls: [{ id: 'c1', name: 'shell', arguments: '{"cmd":"pwd"}' }],
          usage: { inputTokens: 3, outputTokens: 4, cost: 0 },
        });
        await store.updateMessage('edit', 'm2', replacement);
        assertEqual(
          (await store.getSession('edit')).items,
          [items[0], { kind: 'message', message: replacement }, items[2]],
          'items after updateMessage',
        );
      },
    },
    {
      name: 'updateMessage rejects with MESSAGE_NOT_FOUND for an unknown message id, also when only a non-message item has it',
      async run({ store }) {
        await store.createSession(
          makeSession('edit-missing', {
            items: [
              messageItem('m1'),
              { kind: 'summary', id: 'sum', summary: 's', firstKeptItem: 0, createdAt: T0 },
              { kind: 'error', id: 'err', message: 'e', createdAt: T0 },
            ],
          }),
        );
        const before = await store.getSession('edit-missing');
        for (const messageId of ['m2', 'sum', 'err']) {
          await assertRejectsWithCode(
            () => store.updateMessage('edit-missing', messageId, makeMessage(messageId)),
            ErrorCode.MESSAGE_NOT_FOUND,
            `updateMessage of message ${show(messageId)}`,
          );
        }
        await assertUnchanged(store, before, 'updateMessage of an unknown message');
      },
    },
    {
      name: 'updateMessage rejects an invalid message with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(makeSession('edit-invalid', { items: [messageItem('m1')] }));
        const before = await store.getSession('edit-invalid');
        const invalid: unknown[] = [
          { ...makeMessage('m1'), role: 'robot' },
          { ...makeMessage('m1'), content: null },
          { ...makeMessage('m1'), createdAt: 'now' },
          { ...makeMessage('m1'), toolCalls: [{ id: 'c', name: 'x', arguments: {} }] },
          { id: 'm1', role: 'user', content: 'no createdAt' },
          null,
        ];
        for (const message of invalid) {
          await assertRejectsWithCode(
            () => store.updateMessage('edit-invalid', 'm1', message as Message),
            ErrorCode.INVALID_ARGUMENT,
            `updateMessage with ${show(message)}`,
          );
        }
        await assertUnchanged(store, before, 'updateMessage with an invalid message');
      },
    },
  ];
}

function idCases(): Case[] {
  return [
    {
      name: 'every method rejects an invalid session id with INVALID_ARGUMENT and writes nothing',
      async run({ store }) {
        await store.createSession(fullSession('a'));
        const before = await store.getSession('a');
        for (const id of INVALID_IDS) {
          const bad = id as string;
          const calls: [string, () => Promise<unknown>][] = [
            ['createSession', () => store.createSession(makeSession(bad))],
            ['getSession', () => store.getSession(bad)],
            ['updateSession', () => store.updateSession(bad, { title: 'x' })],
            ['appendItems', () => store.appendItems(bad, [messageItem('m1')])],
            ['updateMessage', () => store.updateMessage(bad, 'm1', makeMessage('m1'))],
            ['deleteSession', () => store.deleteSession(bad)],
          ];
          for (const [method, call] of calls) {
            await assertRejectsWithCode(call, ErrorCode.INVALID_ARGUMENT, `${method}(${show(id, 40)})`);
          }
        }
        assertEqual(ids(await listAll(store)), ['a'], 'listSessions after calls with invalid ids');
        await assertUnchanged(store, before, 'calls with invalid ids');
      },
    },
    {
      name: 'edge-case valid ids work and are case-sensitive',
      async run({ store }) {
        const valid = [
          '0',
          'Z',
          'a'.repeat(128),
          'A_b-C',
          'x--__--y',
          'abc',
          'ABC',
          'aBc',
          'con',
          'nul',
          'aux',
        ];
        for (const id of valid) await store.createSession(makeSession(id, { title: `title of ${id}` }));
        for (const id of valid) {
          const got = await store.getSession(id);
          assertEqual(
            got.title,
            `title of ${id}`,
            `getSession(${show(id, 40)}) (ids differing only in case are different sessions)`,
          );
        }
        await store.appendItems('ABC', [messageItem('upper')]);
        assertEqual((await store.getSession('abc')).items, [], 'appending to "ABC" must not change "abc"');
        await store.deleteSession('aBc');
        assertSameSet(
          ids(await listAll(store)),
          valid.filter((id) => id !== 'aBc'),
          'listed ids',
        );
      },
    },
  ];
}
