// PostgresEventLog against the real server: numbered once, replay after since, retention reported
// as dropped, content exactly as appended.
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import type { DurableEventLog } from '../../src/durable-event-log.js';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import { PostgresEventLog } from '../../src/postgres/event-log.js';
import { describeDurableEventLogConformance } from '../../src/testing/durable-event-log.js';
import { DATABASE_URL, probePostgres, uniqueName, whenServer } from '../helpers/servers.js';

const probe = await probePostgres();
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
pool.on('error', () => {});
afterAll(() => pool.end());

function event(seq: number, content = `delta ${seq}`): SessionEvent {
  return {
    type: 'agent_choice',
    content,
    sessionId: 's',
    turnId: 't',
    seq,
    timestamp: '2026-01-01T00:00:00.000Z',
  } as SessionEvent;
}

async function withLog(work: (log: PostgresEventLog) => Promise<void>, maxEvents?: number): Promise<void> {
  const schema = uniqueName('events');
  try {
    await work(new PostgresEventLog({ pool, schema, ...(maxEvents === undefined ? {} : { maxEvents }) }));
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

whenServer(probe, 'PostgresEventLog suites', () => {
  const schemas = new WeakMap<DurableEventLog, string>();
  describeDurableEventLogConformance({
    test,
    describe,
    name: 'PostgresEventLog: DurableEventLog conformance',
    retention: { exact: true },
    createLog: ({ maxEvents }) => {
      const schema = uniqueName('events');
      const log = new PostgresEventLog({
        pool,
        schema,
        pollIntervalMs: 20,
        ...(maxEvents === undefined ? {} : { maxEvents }),
      });
      schemas.set(log, schema);
      return log;
    },
    destroyLog: async (log) => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schemas.get(log)}" CASCADE`);
    },
  });

  describe('PostgresEventLog', () => {
    test('append then replay returns the events after since, in order and exactly as appended', () =>
      withLog(async (log) => {
        const odd = event(3, 'nul \u0000 and 😀');
        await log.append('s', [event(1), event(2), odd]);
        await log.append('other', [event(1, 'another session')]);
        expect((await log.replay('s')).events).toEqual([event(1), event(2), odd]);
        expect(await log.replay('s', 1)).toEqual({ events: [event(2), odd], dropped: false });
        expect((await log.replay('s', 3)).events).toEqual([]);
      }));

    test('a batch holding a stored seq is refused whole with SESSION_BUSY', () =>
      withLog(async (log) => {
        await log.append('s', [event(1), event(2)]);
        const error = await log.append('s', [event(2, 'again'), event(3)]).catch((caught: unknown) => caught);
        expect(AgentSessionsError.hasCode(error, ErrorCode.SESSION_BUSY)).toBe(true);
        expect((await log.replay('s')).events.map((entry) => entry.seq)).toEqual([1, 2]);
        await expect(log.append('s', [event(4), event(4)])).rejects.toMatchObject({
          code: ErrorCode.INVALID_ARGUMENT,
        });
      }));

    test('retention keeps the last maxEvents; replay from before them says dropped', () =>
      withLog(async (log) => {
        for (let seq = 1; seq <= 50; seq += 10) {
          await log.append(
            's',
            Array.from({ length: 10 }, (_, index) => event(seq + index)),
          );
        }
        const old = await log.replay('s', 5);
        expect(old.dropped).toBe(true);
        expect(old.events.map((entry) => entry.seq)).toEqual(
          Array.from({ length: 20 }, (_, index) => 31 + index),
        );
        expect((await log.replay('s', 35)).dropped).toBe(false);
      }, 20));

    test('an unreachable server is STORE_UNAVAILABLE', async () => {
      const dead = new pg.Pool({
        connectionString: 'postgres://postgres@127.0.0.1:1/test',
        connectionTimeoutMillis: 2000,
      });
      const log = new PostgresEventLog({ pool: dead, schema: uniqueName('dead') });
      await expect(log.append('s', [event(1)])).rejects.toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE });
      await expect(log.replay('s')).rejects.toMatchObject({ code: ErrorCode.STORE_UNAVAILABLE });
      await dead.end();
    });
  });
});
