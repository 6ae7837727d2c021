// The behaviour suite of the DurableEventLog contract (src/durable-event-log.ts): every
// implementation (Redis, PostgreSQL, file, a host's own) runs the same cases. Test functions are
// injected; nothing here imports a test framework.
import type { DurableEventLog } from '../durable-event-log.js';
import { AgentSessionsError, ErrorCode } from '../errors.js';
import type { SessionEvent } from '../events.js';
import { assert, assertEqual, describeError, fail } from './assert.js';

/** Options of {@link describeDurableEventLogConformance}. */
export interface DurableEventLogConformanceOptions {
  /** Registers one test: vitest/jest/node:test `test(name, fn)`. */
  test: (name: string, fn: () => Promise<void>) => unknown;
  /** Groups tests, e.g. vitest's `describe`. When omitted, names are prefixed instead. */
  describe?: (name: string, fn: () => void) => unknown;
  /**
   * A fresh, empty log for each test; `maxEvents` asks for retention by count (the retention
   * case runs only when {@link DurableEventLogConformanceOptions.retention} is set).
   */
  createLog: (options: { maxEvents?: number }) => DurableEventLog | Promise<DurableEventLog>;
  /** Called after each test with the log (remove its data). */
  destroyLog?: (log: DurableEventLog) => void | Promise<void>;
  /**
   * Retention by count: `exact` when the log keeps exactly `maxEvents` (a table), otherwise at
   * least `maxEvents` (Redis `MAXLEN ~`).
   */
  retention?: { exact: boolean };
  /** @default 'DurableEventLog conformance' */
  name?: string;
}

/** One timestamp for every event of a run: recent, so no retention by age removes them. */
const STAMP = new Date().toISOString();

/** An event of session `s` with a given seq. */
function event(seq: number, sessionId = 's'): SessionEvent {
  return {
    type: 'agent_choice',
    content: `delta ${seq}`,
    turnId: 't',
    sessionId,
    seq,
    timestamp: STAMP,
  } as SessionEvent;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);
const seqsOf = (events: readonly SessionEvent[]) => events.map((entry) => entry.seq);

async function codeOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    if (AgentSessionsError.isInstance(error)) return error.code;
    return fail(`expected an AgentSessionsError, got ${describeError(error)}`);
  }
  return 'resolved';
}

interface Case {
  name: string;
  needsRetention?: boolean;
  run(
    log: DurableEventLog,
    make: (options: { maxEvents?: number }) => Promise<DurableEventLog>,
    exact: boolean,
  ): Promise<void>;
}

const cases: Case[] = [
  {
    name: 'replay returns the events after since in seq order, at most limit',
    async run(log) {
      await log.append(
        's',
        range(1, 5).map((seq) => event(seq)),
      );
      await log.append(
        's',
        range(6, 8).map((seq) => event(seq)),
      );
      assertEqual(seqsOf((await log.replay('s', 0)).events), range(1, 8), 'replay from 0');
      const after = await log.replay('s', 3, 2);
      assertEqual(seqsOf(after.events), [4, 5], 'replay after 3, limit 2');
      assertEqual(after.dropped, false, 'nothing was dropped');
      assertEqual((await log.replay('s', 0)).events[0], event(1), 'an event reads back as written');
    },
  },
  {
    name: 'lastSeq is 0 for an unknown session, then the greatest stored seq; seqs may skip numbers',
    async run(log) {
      assertEqual(await log.lastSeq('s'), 0, 'lastSeq of an unknown session');
      await log.append('s', [event(1), event(2)]);
      await log.append('s', [event(7), event(9)]);
      assertEqual(await log.lastSeq('s'), 9, 'lastSeq');
      assertEqual(seqsOf((await log.replay('s', 2)).events), [7, 9], 'replay across skipped numbers');
      assertEqual(await log.lastSeq('other'), 0, 'sessions are separate');
    },
  },
  {
    name: 'append refuses a batch that does not start after the stored last seq, storing none of it (SESSION_BUSY)',
    async run(log) {
      await log.append('s', [event(1), event(2), event(3)]);
      assertEqual(
        await codeOf(() => log.append('s', [event(3), event(4)])),
        ErrorCode.SESSION_BUSY,
        'seq 3 again',
      );
      assertEqual(await codeOf(() => log.append('s', [event(2)])), ErrorCode.SESSION_BUSY, 'an older seq');
      assertEqual(seqsOf((await log.replay('s', 0)).events), [1, 2, 3], 'nothing of the refused batches');
      await log.append('s', [event(4)]);
      assertEqual(await log.lastSeq('s'), 4, 'the next seq is accepted');
    },
  },
  {
    name: 'append refuses seqs that are not increasing positive integers (INVALID_ARGUMENT)',
    async run(log) {
      for (const batch of [[event(2), event(1)], [event(1), event(1)], [event(0)], [event(1.5)]]) {
        assertEqual(
          await codeOf(() => log.append('s', batch)),
          ErrorCode.INVALID_ARGUMENT,
          `seqs ${seqsOf(batch)}`,
        );
      }
      assertEqual(await log.lastSeq('s'), 0, 'nothing stored');
    },
  },
  {
    name: 'tail yields the stored events after since, then those appended later, each once, until the signal aborts',
    async run(log) {
      await log.append(
        's',
        range(1, 3).map((seq) => event(seq)),
      );
      const controller = new AbortController();
      const iterator = log.tail('s', 1, { signal: controller.signal })[Symbol.asyncIterator]();
      const seen: number[] = [];
      for (let index = 0; index < 2; index++) seen.push(((await iterator.next()).value as SessionEvent).seq);
      const pending = iterator.next();
      await log.append('s', [event(4), event(5)]);
      seen.push(((await pending).value as SessionEvent).seq);
      seen.push(((await iterator.next()).value as SessionEvent).seq);
      assertEqual(seen, [2, 3, 4, 5], 'tailed seqs');
      const waiting = iterator.next();
      const reason = new Error('stop tailing');
      controller.abort(reason);
      let caught: unknown;
      try {
        await waiting;
      } catch (error) {
        caught = error;
      }
      assert(caught === reason, `the tail rejects with the signal's reason, got ${describeError(caught)}`);
    },
  },
  {
    name: 'tail from an empty session waits for its first event; another session’s events are not delivered',
    async run(log) {
      const controller = new AbortController();
      const iterator = log.tail('s', 0, { signal: controller.signal })[Symbol.asyncIterator]();
      const pending = iterator.next();
      await log.append('other', [event(1, 'other')]);
      await log.append('s', [event(1)]);
      const first = (await pending).value as SessionEvent;
      assertEqual([first.sessionId, first.seq], ['s', 1], 'the first event of s');
      await iterator.return?.();
      controller.abort();
    },
  },
  {
    name: 'retention by count: old events are removed, replay says dropped, the last events stay',
    needsRetention: true,
    async run(_log, make, exact) {
      const log = await make({ maxEvents: 10 });
      for (let start = 1; start <= 500; start += 50) {
        await log.append(
          's',
          range(start, start + 49).map((seq) => event(seq)),
        );
      }
      const all = await log.replay('s', 0, 1000);
      assert(all.dropped, 'replay from 0 reports dropped events');
      const kept = seqsOf(all.events);
      assert(kept.length >= 10 && kept.length < 500, `kept ${kept.length} events`);
      if (exact) assertEqual(kept.length, 10, 'events kept');
      assertEqual(kept, range(501 - kept.length, 500), 'the newest events are kept, in order');
      assertEqual((await log.replay('s', 499)).dropped, false, 'nothing after 499 was dropped');
      assertEqual(await log.lastSeq('s'), 500, 'lastSeq');
    },
  },
  {
    // The manager ends a deleted session's log with a tombstone at the greatest safe integer.
    name: 'an event at seq Number.MAX_SAFE_INTEGER is stored exactly, tailed, and refuses every later append until delete',
    async run(log) {
      const top = Number.MAX_SAFE_INTEGER;
      await log.append('s', [event(3)]);
      await log.append('s', [event(top)]);
      assertEqual(await log.lastSeq('s'), top, 'lastSeq');
      assertEqual(seqsOf((await log.replay('s', 3)).events), [top], 'replay');
      const controller = new AbortController();
      const tailed: number[] = [];
      for await (const entry of log.tail('s', 3, { signal: controller.signal })) {
        tailed.push(entry.seq);
        break;
      }
      assertEqual(tailed, [top], 'tail');
      assertEqual(await codeOf(() => log.append('s', [event(4)])), ErrorCode.SESSION_BUSY, 'a later append');
      if (log.delete === undefined) return;
      await log.delete('s');
      await log.append('s', [event(1)]);
      assertEqual(await log.lastSeq('s'), 1, 'numbering starts again after delete');
    },
  },
  {
    name: 'delete removes the session’s events',
    async run(log) {
      if (log.delete === undefined) return;
      await log.append('s', [event(1)]);
      await log.append('other', [event(1, 'other')]);
      await log.delete('s');
      assertEqual((await log.replay('s', 0)).events, [], 'the deleted session');
      assertEqual(seqsOf((await log.replay('other', 0)).events), [1], 'another session');
    },
  },
];

/**
 * Registers the {@link DurableEventLog} behaviour suite: numbering once, replay, a live tail, and
 * retention. Pass `retention` for a log that trims by count.
 */
export function describeDurableEventLogConformance(options: DurableEventLogConformanceOptions): void {
  const label = options.name ?? 'DurableEventLog conformance';
  const register = (prefix: string) => {
    for (const entry of cases) {
      if (entry.needsRetention && options.retention === undefined) continue;
      options.test(`${prefix}${entry.name}`, async () => {
        const made: DurableEventLog[] = [];
        const make = async (logOptions: { maxEvents?: number }) => {
          const log = await options.createLog(logOptions);
          made.push(log);
          return log;
        };
        try {
          await entry.run(await make({}), make, options.retention?.exact ?? false);
        } finally {
          for (const log of made) await options.destroyLog?.(log);
        }
      });
    }
  };
  if (options.describe) options.describe(label, () => register(''));
  else register(`${label}: `);
}
