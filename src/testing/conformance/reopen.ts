// Conformance group: reopen
import { ErrorCode } from '../../errors.js';
import type { Session } from '../../schemas.js';
import { assert, assertEqual, assertRejectsWithCode } from '../assert.js';
import {
  assertWriteTime,
  fullSession,
  ids,
  listAll,
  makeMessage,
  makeSession,
  messageItem,
  UNICODE_TEXT,
} from './fixtures.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/**
 * Registers the reopen tests of the Store conformance suite: persistence: what was written before closing and reopening the store is there after, and writes continue. Needs `reopenStore`.
 * Runnable alone; `describeStoreConformance` runs it with every other group.
 */
export function describeReopenConformance(
  options: StoreConformanceOptions & { reopenStore: NonNullable<StoreConformanceOptions['reopenStore']> },
): void {
  registerCases(options, options.name ?? 'Store conformance: reopen', reopenCases());
}

/** The cases of this group. */
export function reopenCases(): Case[] {
  return [
    {
      name: 'after reopening, every session, item, patch and deletion written before is there',
      needsReopen: true,
      async run(context) {
        let store = context.store;
        await store.createSession(fullSession('kept'));
        await store.createSession(makeSession('patched', { workingDir: '/w', source: 'coder' }));
        await store.createSession(makeSession('removed'));
        await store.createSession(
          makeSession('unicode', { title: UNICODE_TEXT, attributes: JSON.parse('{"__proto__":{"x":1}}') }),
        );
        await store.updateSession('patched', { title: 'patched', starred: true, workingDir: undefined });
        await store.appendItems('kept', [
          messageItem('late', { content: 'y'.repeat(1024 * 1024) }),
          messageItem('edit'),
        ]);
        await store.updateMessage('kept', 'edit', makeMessage('edit', { content: UNICODE_TEXT }));
        await store.deleteSession('removed');
        const expected = new Map<string, Session>();
        for (const id of ['kept', 'patched', 'unicode']) expected.set(id, await store.getSession(id));
        const listing = await listAll(store, { limit: 1 });
        const firstPage = await store.listSessions({ limit: 1 });

        store = await context.reopen();
        for (const [id, session] of expected) {
          assertEqual(await store.getSession(id), session, `session ${id} after reopening`);
        }
        assert(
          !Object.hasOwn(await store.getSession('patched'), 'workingDir'),
          'a removed field came back after reopening',
        );
        await assertRejectsWithCode(
          () => store.getSession('removed'),
          ErrorCode.SESSION_NOT_FOUND,
          'a deleted session after reopening',
        );
        assertEqual(await listAll(store, { limit: 1 }), listing, 'the listing after reopening');
        const rest = await store.listSessions({ cursor: firstPage.nextCursor!, limit: 1000 });
        assertEqual(
          rest.sessions,
          listing.slice(1),
          'the rest of a listing from a cursor made before reopening',
        );
        await assertRejectsWithCode(
          () => store.createSession(makeSession('kept')),
          ErrorCode.SESSION_EXISTS,
          'createSession of an id taken before reopening',
        );
      },
    },
    {
      name: 'after reopening, writes work and updatedAt keeps moving forward',
      needsReopen: true,
      async run(context) {
        let store = context.store;
        await store.createSession(makeSession('continued', { items: [messageItem('m1')] }));
        await store.appendItems('continued', [messageItem('m2')]);
        const before = await store.getSession('continued');
        store = await context.reopen();
        const started = Date.now();
        await store.appendItems('continued', [messageItem('m3')]);
        await store.updateSession('continued', { title: 'after reopen' });
        const after = await store.getSession('continued');
        assertWriteTime(after, started, before.updatedAt, 'a write after reopening');
        assertEqual(
          ids(after.items.map((item) => (item.kind === 'message' ? item.message : { id: item.id }))),
          ['m1', 'm2', 'm3'],
          'items after reopening and appending',
        );
        store = await context.reopen();
        assertEqual(await store.getSession('continued'), after, 'the session after a second reopen');
      },
    },
  ];
}
