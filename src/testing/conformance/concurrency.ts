// Conformance group: concurrency
import { ErrorCode } from '../../errors.js';
import { assert, assertEqual, assertRejectsWithCode, show } from '../assert.js';
import { assertNoDuplicates, ids, listAll, makeMessage, makeSession, messageItem } from './fixtures.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/**
 * Registers the concurrency tests of the Store conformance suite: concurrent calls on one session: one create wins, concurrent writes all take effect once and in one piece.
 * Runnable alone; `describeStoreConformance` runs it with every other group.
 */
export function describeConcurrencyConformance(options: StoreConformanceOptions): void {
  registerCases(options, options.name ?? 'Store conformance: concurrency', concurrencyCases());
}

/** The cases of this group. */
export function concurrencyCases(): Case[] {
  return [
    {
      name: 'concurrent createSession calls with one id: exactly one succeeds, the others reject with SESSION_EXISTS',
      async run({ store }) {
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, index) =>
            store.createSession(makeSession('contended', { title: `writer ${index}` })),
          ),
        );
        const fulfilled = results.filter((result) => result.status === 'fulfilled');
        assert(fulfilled.length === 1, `exactly one createSession must succeed, ${fulfilled.length} did`);
        for (const result of results) {
          if (result.status === 'rejected') {
            await assertRejectsWithCode(
              () => Promise.reject(result.reason),
              ErrorCode.SESSION_EXISTS,
              'a losing concurrent createSession',
            );
          }
        }
        const winner = results.findIndex((result) => result.status === 'fulfilled');
        assertEqual((await store.getSession('contended')).title, `writer ${winner}`, 'the stored session');
        assertEqual(ids(await listAll(store)), ['contended'], 'listSessions after concurrent creates');
      },
    },
    {
      name: 'concurrent updateSession, appendItems and updateMessage calls on one session all take effect',
      async run({ store }) {
        await store.createSession(makeSession('racy', { items: [messageItem('m0')] }));
        await Promise.all([
          store.updateSession('racy', { title: 'titled' }),
          store.updateSession('racy', { starred: true }),
          store.appendItems('racy', [messageItem('m1')]),
          store.updateSession('racy', { usage: { inputTokens: 1, outputTokens: 2, cost: 3 } }),
          store.updateMessage('racy', 'm0', makeMessage('m0', { content: 'edited' })),
          store.updateSession('racy', { attributes: { a: 1 } }),
          store.appendItems('racy', [messageItem('m2')]),
        ]);
        const got = await store.getSession('racy');
        assertEqual(
          { title: got.title, starred: got.starred, usage: got.usage, attributes: got.attributes },
          {
            title: 'titled',
            starred: true,
            usage: { inputTokens: 1, outputTokens: 2, cost: 3 },
            attributes: { a: 1 },
          },
          'fields patched concurrently',
        );
        assertEqual(
          got.items,
          [messageItem('m0', { content: 'edited' }), messageItem('m1'), messageItem('m2')],
          'items written concurrently',
        );
      },
    },
    {
      name: '100 concurrent appendItems calls to one session all land, each batch once and in one piece',
      async run({ store }) {
        await store.createSession(makeSession('burst'));
        await Promise.all(
          Array.from({ length: 100 }, (_, index) =>
            store.appendItems('burst', [messageItem(`b${index}-first`), messageItem(`b${index}-second`)]),
          ),
        );
        const items = (await store.getSession('burst')).items;
        assert(items.length === 200, `expected 200 items after 100 appends of 2, got ${items.length}`);
        const messageIds = items.map((item) =>
          item.kind === 'message' ? item.message.id : `${item.kind}:${item.id}`,
        );
        assertNoDuplicates(messageIds, 'items after concurrent appends');
        for (let index = 0; index < items.length; index += 2) {
          const first = messageIds[index]!;
          assert(
            first.endsWith('-first') && messageIds[index + 1] === first.replace(/-first$/, '-second'),
            `a batch was split or reordered by concurrent appends at index ${index}: ${show(messageIds.slice(index, index + 2))}`,
          );
        }
        assertEqual(
          (await store.listSessions()).sessions[0]?.messageCount,
          200,
          'messageCount after concurrent appends',
        );
      },
    },
  ];
}
