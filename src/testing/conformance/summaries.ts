// Conformance group: getSummary, the optional Store member every store made by defineStore has.
import { ErrorCode } from '../../errors.js';
import type { SessionSummary } from '../../schemas.js';
import type { Store } from '../../store.js';
import { assert, assertEqual, assertRejectsWithCode, fail, show } from '../assert.js';
import { fullSession, INVALID_IDS, listAll, makeMessage, makeSession, messageItem } from './fixtures.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/**
 * Registers the tests of `getSummary`: it returns exactly the summary listings show, follows every
 * write, returns copies, and rejects unknown and invalid ids. A store without `getSummary` fails
 * them (run `describeStoreConformance` with `capabilities: { getSummary: false }` instead).
 */
export function describeSummaryConformance(options: StoreConformanceOptions): void {
  registerCases(options, options.name ?? 'Store conformance: getSummary', summaryCases());
}

function summaryOf(store: Store): (id: string) => Promise<SessionSummary> {
  const getSummary = store.getSummary;
  if (typeof getSummary !== 'function') {
    return fail(
      `store ${show(store.name)} has no getSummary: implement it (every store made by defineStore has it) or run the suite with capabilities: { getSummary: false }`,
    );
  }
  return (id) => getSummary.call(store, id);
}

async function listed(store: Store, id: string): Promise<SessionSummary | undefined> {
  return (await listAll(store, { limit: 1000 })).find((summary) => summary.id === id);
}

/** The cases of this group. */
export function summaryCases(): Case[] {
  return [
    {
      name: 'getSummary returns the summary the listing shows, after every kind of write',
      async run({ store }) {
        const getSummary = summaryOf(store);
        await store.createSession(fullSession('summary'));
        await store.createSession(makeSession('other'));
        assertEqual(await getSummary('summary'), await listed(store, 'summary'), 'getSummary after create');
        const writes: [string, () => Promise<void>][] = [
          ['appendItems', () => store.appendItems('summary', [messageItem('late'), messageItem('later')])],
          [
            'updateSession',
            () => store.updateSession('summary', { title: 'retitled', workingDir: undefined }),
          ],
          [
            'updateMessage',
            () => store.updateMessage('summary', 'late', makeMessage('late', { content: 'x' })),
          ],
          [
            'updateSession of usage',
            () => store.updateSession('summary', { usage: { inputTokens: 9, outputTokens: 8, cost: 7 } }),
          ],
        ];
        for (const [what, write] of writes) {
          await write();
          const summary = await getSummary('summary');
          assertEqual(summary, await listed(store, 'summary'), `getSummary after ${what}`);
          assertEqual(
            summary.updatedAt,
            (await store.getSession('summary')).updatedAt,
            `updatedAt after ${what}`,
          );
        }
        const summary = await getSummary('summary');
        assert(!Object.hasOwn(summary, 'items'), 'getSummary returned items');
        assertEqual(summary.messageCount, 5, 'messageCount after appending 2 messages to a session of 3');
        assertEqual(summary.title, 'retitled', 'title after a patch');
        assert(!Object.hasOwn(summary, 'workingDir'), 'a removed workingDir is still in the summary');
      },
    },
    {
      name: 'getSummary returns a copy: mutating it changes nothing stored',
      async run({ store }) {
        const getSummary = summaryOf(store);
        await store.createSession(fullSession('copied'));
        const first = await getSummary('copied');
        first.title = 'mutated';
        first.usage.cost = 99;
        const again = await getSummary('copied');
        assertEqual(again.title, 'A full session', 'title after mutating a returned summary');
        assertEqual(again.usage, fullSession('x').usage, 'usage after mutating a returned summary');
      },
    },
    {
      name: 'getSummary rejects with SESSION_NOT_FOUND for an unknown or deleted id and INVALID_ARGUMENT for an invalid one',
      async run({ store }) {
        const getSummary = summaryOf(store);
        await store.createSession(makeSession('gone'));
        await store.deleteSession('gone');
        for (const id of ['unknown', 'gone']) {
          await assertRejectsWithCode(
            () => getSummary(id),
            ErrorCode.SESSION_NOT_FOUND,
            `getSummary(${show(id)})`,
          );
        }
        for (const id of INVALID_IDS) {
          await assertRejectsWithCode(
            () => getSummary(id as string),
            ErrorCode.INVALID_ARGUMENT,
            `getSummary(${show(id, 40)})`,
          );
        }
      },
    },
  ];
}
