// agent-sessions/store: everything for writing a store. A driver does raw persistence;
// `defineStore` makes it a Store that enforces the contract; the conformance groups check it.
// No static import of node:* modules (like the main entry).
export type { ListOptions, ListPosition, Page, Store } from '../store.js';
export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../store.js';
export {
  describeConcurrencyConformance,
  describeContentConformance,
  describeCrudConformance,
  describeListingConformance,
  describeReopenConformance,
  describeStoreConformance,
  describeSummaryConformance,
  type StoreConformanceOptions,
} from '../testing/conformance/index.js';
export { DefinedStore, defineStore, nextTimestamp } from './define-store.js';
export {
  type AppendBatchEntry,
  type BatchAppendDriver,
  type FencingDriver,
  type IncrementalDriver,
  isBatchAppendDriver,
  isFencingDriver,
  isIncrementalDriver,
  isListingDriver,
  isSummaryDriver,
  type ListingDriver,
  type StoreDriver,
  type SummaryDriver,
} from './driver.js';
export {
  compareListPosition,
  decodeCursor,
  encodeCursor,
  pageSortedSummaries,
  pageSummaries,
  validateListOptions,
} from './paging.js';
