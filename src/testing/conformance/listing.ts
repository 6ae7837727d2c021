// Conformance group: listing and cursors
import { ErrorCode } from '../../errors.js';
import { type SessionSummary, SessionSummarySchema, toSummary } from '../../schemas.js';
import type { ListOptions, Page } from '../../store.js';
import { assert, assertEqual, assertRejectsWithCode, show } from '../assert.js';
import {
  assertListingOrder,
  assertNoDuplicates,
  assertSameSet,
  at,
  createMany,
  fullSession,
  ids,
  listAll,
  makeMessage,
  makeSession,
  messageItem,
  T1,
} from './fixtures.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/**
 * Registers the listing and cursors tests of the Store conformance suite: listSessions: order, summaries without items, paging with limits and stable position cursors while sessions change, filters before paging, and the errors of bad options.
 * Runnable alone; `describeStoreConformance` runs it with every other group.
 */
export function describeListingConformance(options: StoreConformanceOptions): void {
  registerCases(options, options.name ?? 'Store conformance: listing and cursors', listingCases());
}

/** The cases of this group. */
export function listingCases(): Case[] {
  return [
    {
      name: 'listSessions on an empty store returns no sessions and no nextCursor',
      async run({ store }) {
        const page = await store.listSessions();
        assertEqual(page.sessions, [], 'sessions of an empty store');
        assert(
          !Object.hasOwn(page, 'nextCursor'),
          `nextCursor must be absent on the last page, got ${show(page.nextCursor)}`,
        );
      },
    },
    {
      name: 'listSessions returns summaries matching the sessions, never their items',
      async run({ store }) {
        await store.createSession(fullSession('sum-full'));
        await store.createSession(makeSession('sum-empty'));
        await store.appendItems('sum-full', [
          messageItem('extra'),
          { kind: 'error', id: 'e9', message: 'x', createdAt: T1 },
        ]);
        const summaries = await listAll(store);
        assertSameSet(ids(summaries), ['sum-full', 'sum-empty'], 'listed ids');
        for (const summary of summaries) {
          assert(!Object.hasOwn(summary, 'items'), `the summary of ${summary.id} holds items`);
          const parsed = SessionSummarySchema.strict().safeParse(summary);
          assert(
            parsed.success,
            `the summary of ${summary.id} is not a SessionSummary: ${parsed.success ? '' : show(parsed.error.issues)}`,
          );
          assertEqual(summary, toSummary(await store.getSession(summary.id)), `the summary of ${summary.id}`);
        }
        assertEqual(
          summaries.find((summary) => summary.id === 'sum-full')?.messageCount,
          4,
          'messageCount of a session with 4 messages, a summary and 2 errors',
        );
      },
    },
    {
      name: 'listSessions orders newest updatedAt first, ties broken by id descending; a write moves a session to the front',
      async run({ store }) {
        // Created out of order; several share an updatedAt, one differs only by its offset notation.
        const layout: [string, string][] = [
          ['tie-b', at(10)],
          ['old', at(1)],
          ['tie-a', at(10)],
          ['newest', at(20)],
          ['tie-c', at(10)],
          ['Tie-z', at(10)],
          ['offset', '2024-01-02T05:04:15+02:00'],
          ['mid', at(5)],
        ];
        await Promise.all(
          layout.map(([id, updatedAt]) => store.createSession(makeSession(id, { updatedAt }))),
        );
        const expected = ['newest', 'tie-c', 'tie-b', 'tie-a', 'offset', 'Tie-z', 'mid', 'old'];
        assertEqual(ids(await listAll(store)), expected, 'listing order');
        for (const limit of [1, 2, 3]) {
          assertEqual(ids(await listAll(store, { limit })), expected, `listing order in pages of ${limit}`);
        }
        await store.updateSession('mid', { title: 'touched' });
        assertEqual(ids(await listAll(store)).slice(0, 2), ['mid', 'newest'], 'order after updateSession');
        await store.appendItems('old', [messageItem('m')]);
        const afterAppend = await listAll(store);
        assertEqual(afterAppend[0]?.id, 'old', 'a session written last must list first after appendItems');
        assertListingOrder(afterAppend, 'after two writes');
        await store.createSession(makeSession('z-msg', { items: [messageItem('m0')], updatedAt: at(0) }));
        await store.updateMessage('z-msg', 'm0', makeMessage('m0', { content: 'edited' }));
        assertEqual(
          (await listAll(store))[0]?.id,
          'z-msg',
          'a session written last must list first after updateMessage',
        );
      },
    },
    {
      name: 'listSessions pages with limit and nextCursor: each session once, no nextCursor on the last page',
      async run({ store }) {
        const created = await createMany(store, 7);
        const expected = ids(await listAll(store, { limit: 1000 }));
        assertSameSet(expected, created, 'one page of every session');
        for (const limit of [1, 2, 3, 7, 8]) {
          const pages: string[][] = [];
          let cursor: string | undefined;
          do {
            const page = await store.listSessions(cursor === undefined ? { limit } : { limit, cursor });
            assert(
              page.sessions.length <= limit,
              `a page of limit ${limit} has ${page.sessions.length} sessions`,
            );
            pages.push(ids(page.sessions));
            cursor = page.nextCursor;
            if (cursor === undefined) {
              assert(
                !Object.hasOwn(page, 'nextCursor'),
                'nextCursor must be absent (not undefined) on the last page',
              );
            } else
              assert(
                page.sessions.length === limit,
                `a page before the last one holds fewer than ${limit} sessions`,
              );
            assert(pages.length <= 8, `limit ${limit}: paging does not end`);
          } while (cursor !== undefined);
          assertEqual(pages.flat(), expected, `pages of limit ${limit} joined`);
          assertEqual(pages.length, Math.ceil(7 / limit), `number of pages of limit ${limit}`);
        }
      },
    },
    {
      name: 'listSessions without a limit returns pages of at most 100',
      async run({ store }) {
        await Promise.all(
          Array.from({ length: 101 }, (_, index) => store.createSession(makeSession(`many-${index}`))),
        );
        const first = await store.listSessions();
        assertEqual(first.sessions.length, 100, 'sessions on the first default page');
        assert(first.nextCursor !== undefined, 'the first of two default pages needs a nextCursor');
        const second = await store.listSessions({ cursor: first.nextCursor });
        assertEqual(second.sessions.length, 1, 'sessions on the second default page');
        assertSameSet(
          [...ids(first.sessions), ...ids(second.sessions)],
          Array.from({ length: 101 }, (_, index) => `many-${index}`),
          'two default pages',
        );
      },
    },
    {
      name: 'listSessions cursors stay stable while sessions are written, created and deleted between pages',
      async run({ store }) {
        // Past timestamps with ties, so every write while paging moves a session ahead of all of them.
        const created = await createMany(store, 20, 'page-', (index) => ({ updatedAt: at(index % 7) }));
        let oldcomer: string | undefined;
        const seen: string[] = [];
        const touched = new Set<string>();
        const deleted = new Set<string>();
        const added: string[] = [];
        let cursor: string | undefined;
        for (let pageNumber = 0; ; pageNumber++) {
          assert(pageNumber < 30, 'paging does not end');
          const page: Page<SessionSummary> = await store.listSessions(
            cursor === undefined ? { limit: 3 } : { limit: 3, cursor },
          );
          seen.push(...ids(page.sessions));
          cursor = page.nextCursor;
          if (cursor === undefined) break;
          // Between pages: touch a session already seen and one not yet seen, add one, and delete
          // the session the cursor points at.
          const unseen = created.filter((id) => !seen.includes(id) && !touched.has(id) && !deleted.has(id));
          const seenUntouched = seen.filter(
            (id) => created.includes(id) && !touched.has(id) && !deleted.has(id),
          );
          const victims = [seenUntouched[0], unseen[unseen.length - 1]].filter((id) => id !== undefined);
          for (const id of victims) {
            await store.updateSession(id, { title: `touched on page ${pageNumber}` });
            touched.add(id);
          }
          const fresh = `page-new-${pageNumber}`;
          await store.createSession(makeSession(fresh, { updatedAt: new Date().toISOString() }));
          added.push(fresh);
          if (pageNumber === 1) {
            // Created while paging but older than every position: later pages must include it.
            oldcomer = 'page-oldcomer';
            await store.createSession(makeSession(oldcomer, { updatedAt: '2000-01-01T00:00:00.000Z' }));
          }
          const last = page.sessions[page.sessions.length - 1]!.id;
          if (!touched.has(last) && pageNumber % 2 === 0) {
            await store.deleteSession(last);
            deleted.add(last);
          }
        }
        assertNoDuplicates(seen, 'sessions seen while paging');
        for (const id of created) {
          if (touched.has(id) || deleted.has(id)) continue;
          assert(seen.includes(id), `unchanged session ${id} was skipped while paging`);
        }
        for (const id of added) {
          assert(!seen.includes(id), `session ${id}, created while paging, was listed after the cursor`);
        }
        assert(
          oldcomer !== undefined && seen.includes(oldcomer),
          'a session created while paging with a position after the cursor was not listed',
        );
        const fresh = ids(await listAll(store, { limit: 4 }));
        const front = fresh.slice(0, touched.size + added.length);
        assertSameSet(
          front,
          [...touched, ...added],
          'a fresh listing must start with the sessions written while paging',
        );
        assertSameSet(
          fresh,
          [...created.filter((id) => !deleted.has(id)), ...added, oldcomer],
          'a fresh listing after paging',
        );
      },
    },
    {
      name: 'listSessions applies the workingDir, starred and owner filters before paging',
      async run({ store }) {
        await createMany(store, 12, 'filter-', (index) => ({
          starred: index % 3 === 0,
          ...(index % 2 === 0 ? { workingDir: '/work/a' } : index % 4 === 1 ? { workingDir: '/work/b' } : {}),
          ...(index % 4 < 2 ? { owner: 'alice' } : index % 4 === 2 ? { owner: 'bob' } : {}),
        }));
        const all = await listAll(store, { limit: 1000 });
        const cases: [string, ListOptions, (summary: SessionSummary) => boolean][] = [
          ['starred: true', { starred: true }, (summary) => summary.starred],
          ['starred: false', { starred: false }, (summary) => !summary.starred],
          ['workingDir /work/a', { workingDir: '/work/a' }, (summary) => summary.workingDir === '/work/a'],
          ['workingDir /work/b', { workingDir: '/work/b' }, (summary) => summary.workingDir === '/work/b'],
          ['workingDir /work/none', { workingDir: '/work/none' }, () => false],
          ['owner alice', { owner: 'alice' }, (summary) => summary.owner === 'alice'],
          ['owner bob', { owner: 'bob' }, (summary) => summary.owner === 'bob'],
          ['owner nobody', { owner: 'nobody' }, () => false],
          [
            'owner alice and starred',
            { owner: 'alice', starred: true },
            (summary) => summary.owner === 'alice' && summary.starred,
          ],
          [
            'workingDir /work/a and starred',
            { workingDir: '/work/a', starred: true },
            (summary) => summary.workingDir === '/work/a' && summary.starred,
          ],
        ];
        for (const [what, filter, predicate] of cases) {
          const expected = ids(all.filter(predicate));
          for (const limit of [1, 2, 100]) {
            const listed = await listAll(store, { ...filter, limit });
            assertEqual(ids(listed), expected, `listSessions({ ${what}, limit: ${limit} })`);
          }
          const firstPage = await store.listSessions({ ...filter, limit: 1 });
          assertEqual(
            firstPage.sessions.length,
            Math.min(1, expected.length),
            `first page of ${what} with limit 1`,
          );
        }
      },
    },
    {
      name: 'listSessions rejects an empty or non-string owner filter with INVALID_ARGUMENT',
      async run({ store }) {
        await store.createSession(makeSession('owned', { owner: 'alice' }));
        for (const owner of ['', 7, null]) {
          await assertRejectsWithCode(
            () => store.listSessions({ owner: owner as string }),
            ErrorCode.INVALID_ARGUMENT,
            `listSessions({ owner: ${show(owner)} })`,
          );
        }
      },
    },
    {
      name: 'listSessions rejects limits outside 1..1000 and non-integers with INVALID_ARGUMENT',
      async run({ store }) {
        await store.createSession(makeSession('limits'));
        for (const limit of [0, -1, 1.5, 1001, Number.NaN, Number.POSITIVE_INFINITY, '5']) {
          await assertRejectsWithCode(
            () => store.listSessions({ limit: limit as number }),
            ErrorCode.INVALID_ARGUMENT,
            `listSessions({ limit: ${show(limit)} })`,
          );
        }
        assertEqual((await store.listSessions({ limit: 1 })).sessions.length, 1, 'limit 1');
        assertEqual((await store.listSessions({ limit: 1000 })).sessions.length, 1, 'limit 1000');
      },
    },
    {
      name: 'listSessions rejects malformed cursors with INVALID_ARGUMENT',
      async run({ store }) {
        await createMany(store, 3, 'cursor-');
        const valid = (await store.listSessions({ limit: 1 })).nextCursor;
        assert(valid !== undefined, 'expected a nextCursor with 3 sessions and limit 1');
        const malformed = [
          '',
          'not a cursor',
          '!!!!',
          '%%%',
          btoa('hello'),
          btoa('[1,2]'),
          btoa('{"updatedAt":5}'),
          btoa('["not a date","x"]'),
          `${valid}!`,
          'x'.repeat(5000),
        ];
        for (const cursor of malformed) {
          await assertRejectsWithCode(
            () => store.listSessions({ cursor }),
            ErrorCode.INVALID_ARGUMENT,
            `listSessions({ cursor: ${show(cursor, 40)} })`,
          );
        }
      },
    },
  ];
}
