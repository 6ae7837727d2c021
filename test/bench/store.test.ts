// Runs bench/store's durable workloads with small counts, so the bench cannot rot.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { turnWorkload } from '../../bench/store.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-bench-store-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('bench/store', () => {
  test.each(['fsync', 'buffered'] as const)(
    "turnWorkload (%s) makes two durable commits per turn and counts the session's bytes against raw JSON",
    async (durability) => {
      const result = await turnWorkload(join(root, durability), durability, 5, 'hello');
      expect(result).toMatchObject({ turns: 5, commits: 10 });
      expect(result.ms).toBeGreaterThan(0);
      expect(result.rawBytes).toBeGreaterThan(0);
      // The items, a few bytes of framing each, the session record and the summary file.
      expect(result.bytes).toBeGreaterThan(result.rawBytes);
      expect(result.bytes).toBeLessThan(result.rawBytes + 2048);
    },
  );
});
