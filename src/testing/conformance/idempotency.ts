// Conformance group: idempotent appends. An item already stored with the same id is not stored
// again, so a write retried after an error with an unknown outcome never duplicates history.
import type { SessionItem } from '../../schemas.js';
import { assertEqual } from '../assert.js';
import { makeSession, messageItem } from './fixtures.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/** Registers the tests of idempotent appends (part of the Store contract). */
export function describeIdempotencyConformance(options: StoreConformanceOptions): void {
  registerCases(options, options.name ?? 'Store conformance: idempotent appends', idempotencyCases());
}

const idsOf = (items: SessionItem[]) =>
  items.map((item) => (item.kind === 'message' ? item.message.id : item.id));

/** The cases of this group. */
export function idempotencyCases(): Case[] {
  return [
    {
      name: 'appending an item already stored (same id) stores it once',
      async run({ store }) {
        await store.createSession(makeSession('idem'));
        await store.appendItems('idem', [messageItem('m1'), messageItem('m2')]);
        await store.appendItems('idem', [messageItem('m1'), messageItem('m2')]);
        assertEqual(
          idsOf((await store.getSession('idem')).items),
          ['m1', 'm2'],
          'items after a repeated append',
        );
      },
    },
    {
      name: 'an append that repeats some ids stores only the new items, in order',
      async run({ store }) {
        await store.createSession(makeSession('idem-mix'));
        await store.appendItems('idem-mix', [messageItem('m1')]);
        await store.appendItems('idem-mix', [messageItem('m1'), messageItem('m2'), messageItem('m3')]);
        assertEqual(
          idsOf((await store.getSession('idem-mix')).items),
          ['m1', 'm2', 'm3'],
          'items after an append that repeats one id',
        );
        const summary = (await store.listSessions()).sessions.find((entry) => entry.id === 'idem-mix');
        assertEqual(summary?.messageCount, 3, 'messageCount after an append that repeats one id');
      },
    },
  ];
}
