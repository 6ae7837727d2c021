/**
 * The Store conformance suite: every store of agent-sessions passes it, and a third party runs it on
 * theirs. The contract it checks is the TSDoc of `Store` (src/store.ts). The test function is
 * injected, so it runs under vitest, jest or `node:test`; this module never imports a test
 * framework.
 *
 * Each group is exported and runnable alone (as `@keyv/test-suite` exports its groups):
 * {@link describeCrudConformance}, {@link describeListingConformance},
 * {@link describeConcurrencyConformance}, {@link describeContentConformance},
 * {@link describeReopenConformance}, {@link describeRecordFieldConformance} (the optional fields
 * model runtimes write: `toolName`, `isError`, `reasoning`, cache and reasoning tokens), and one group per optional capability
 * ({@link describeSummaryConformance}). {@link describeStoreConformance} runs them all.
 *
 * @example
 * ```ts
 * import { describe, test } from 'vitest';
 * import { describeStoreConformance } from 'agent-sessions/testing';
 *
 * describeStoreConformance({ test, describe, createStore: () => new MyStore() });
 * ```
 */
import { concurrencyCases, describeConcurrencyConformance } from './concurrency.js';
import { contentCases, describeContentConformance } from './content.js';
import { crudCases, describeCrudConformance } from './crud.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';
import { describeIdempotencyConformance, idempotencyCases } from './idempotency.js';
import { describeListingConformance, listingCases } from './listing.js';
import { describeRecordFieldConformance, recordFieldCases } from './record-fields.js';
import { describeReopenConformance, reopenCases } from './reopen.js';
import { describeSummaryConformance, summaryCases } from './summaries.js';

export {
  describeConcurrencyConformance,
  describeContentConformance,
  describeCrudConformance,
  describeIdempotencyConformance,
  describeListingConformance,
  describeRecordFieldConformance,
  describeReopenConformance,
  describeSummaryConformance,
  type StoreConformanceOptions,
};

/**
 * Registers the whole Store conformance suite: every group above, the reopen group when
 * `reopenStore` is given, and the group of each optional member the store has (see
 * {@link StoreConformanceOptions.capabilities}).
 *
 * Each test creates a fresh store with `createStore` and hands the last instance to
 * `destroyStore` (or `close()`) afterwards, even when it fails. Failures throw plain `Error`s whose
 * messages say which rule was broken and where two values differ. The suite uses the real clock:
 * do not run it under fake timers.
 */
export function describeStoreConformance(options: StoreConformanceOptions): void {
  const cases: Case[] = [
    ...crudCases(),
    ...listingCases(),
    ...concurrencyCases(),
    ...contentCases(),
    ...reopenCases(),
    ...recordFieldCases(),
    ...idempotencyCases(),
    ...(options.capabilities?.getSummary === false ? [] : summaryCases()),
  ];
  registerCases(options, options.name ?? 'Store conformance', cases);
}
