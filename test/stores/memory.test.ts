import { describe, test } from 'vitest';
import { MemoryStore } from '../../src/stores/memory.js';
import { describeStoreConformance } from '../../src/testing/conformance.js';

describeStoreConformance({
  test,
  describe,
  name: 'MemoryStore conformance',
  createStore: () => new MemoryStore(),
});
