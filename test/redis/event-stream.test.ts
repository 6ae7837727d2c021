// RedisEventStream against a real Redis: seq-derived ids numbered once, replay, trimming reported,
// a live tail without gaps or duplicates, and one round trip per appended batch.
import { createClient } from 'redis';
import { afterEach, describe, expect, test } from 'vitest';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import { type RedisCommandClient, RedisEventStream } from '../../src/redis/event-stream.js';
import { describeDurableEventLogConformance } from '../../src/testing/durable-event-log.js';
import { probeRedis, REDIS_URL, uniqueName, whenServer } from '../helpers/servers.js';

type Client = ReturnType<typeof createClient>;
const probe = await probeRedis();
const clients: Client[] = [];
const prefixes: string[] = [];

async function connect(): Promise<Client> {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  return client;
}

afterEach(async () => {
  if (!probe.available) return;
  const admin = await connect();
  for (const prefix of prefixes.splice(0)) {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(keys);
  }
  for (const client of clients.splice(0)) if (client.isOpen) await client.close().catch(() => {});
});

function event(seq: number, text = `delta ${seq}`): SessionEvent {
  return {
    type: 'agent_choice',
    content: text,
    sessionId: 's',
    turnId: 't',
    seq,
    timestamp: '2026-01-01T00:00:00.000Z',
  } as SessionEvent;
}

async function streamOn(options: { maxEvents?: number; count?: { calls: number } } = {}) {
  const prefix = `${uniqueName('events')}:`;
  prefixes.push(prefix);
  const client = await connect();
  const counted: RedisCommandClient = {
    sendCommand: (args) => {
      if (options.count) options.count.calls++;
      return client.sendCommand(args);
    },
  };
  return new RedisEventStream({
    client: counted,
    prefix,
    blockMs: 200,
    ...(options.maxEvents === undefined ? {} : { maxEvents: options.maxEvents }),
    connectBlocking: async () => {
      const blocking = createClient({ url: REDIS_URL });
      blocking.on('error', () => {});
      await blocking.connect();
      return blocking;
    },
  });
}

whenServer(probe, 'RedisEventStream suites', () => {
  describeDurableEventLogConformance({
    test,
    describe,
    name: 'RedisEventStream: DurableEventLog conformance',
    retention: { exact: false },
    createLog: ({ maxEvents }) => streamOn(maxEvents === undefined ? {} : { maxEvents }),
  });

  describe('RedisEventStream', () => {
    test('append stores a batch in one round trip; replay returns the events after since, in order', async () => {
      const count = { calls: 0 };
      const stream = await streamOn({ count });
      await stream.append(
        's',
        Array.from({ length: 100 }, (_, index) => event(index + 1)),
      );
      expect(count.calls).toBe(1);
      const all = await stream.replay('s');
      expect(all.events.map((entry) => entry.seq)).toEqual(
        Array.from({ length: 100 }, (_, index) => index + 1),
      );
      expect(all.dropped).toBe(false);
      const after = await stream.replay('s', 95);
      expect(after.events.map((entry) => entry.seq)).toEqual([96, 97, 98, 99, 100]);
      expect(after.events[0]).toEqual(event(96));
    });

    test('two instances cannot store one seq: the later append is refused whole', async () => {
      const first = await streamOn();
      await first.append('s', [event(1), event(2)]);
      const error = await first.append('s', [event(2, 'other'), event(3)]).catch((caught: unknown) => caught);
      expect(AgentSessionsError.hasCode(error, ErrorCode.SESSION_BUSY)).toBe(true);
      expect((await first.replay('s')).events).toEqual([event(1), event(2)]);
      await expect(first.append('s', [event(3), event(3)])).rejects.toMatchObject({
        code: ErrorCode.INVALID_ARGUMENT,
      });
    });

    test('retention trims old events and replay from a trimmed position says dropped', async () => {
      const stream = await streamOn({ maxEvents: 10 });
      for (let seq = 1; seq <= 2000; seq += 100) {
        await stream.append(
          's',
          Array.from({ length: 100 }, (_, index) => event(seq + index)),
        );
      }
      const old = await stream.replay('s', 5, 5000);
      expect(old.dropped).toBe(true);
      expect(old.events.length).toBeLessThan(2000);
      expect(old.events.at(-1)?.seq).toBe(2000);
      const seqs = old.events.map((entry) => entry.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, index) => seqs[0]! + index));
    });

    test('tail replays after since, then delivers live appends gaplessly, and ends on abort', async () => {
      const stream = await streamOn();
      await stream.append('s', [event(1), event(2), event(3)]);
      const controller = new AbortController();
      const seen: number[] = [];
      const reading = (async () => {
        for await (const entry of stream.tail('s', 1, { signal: controller.signal })) {
          seen.push(entry.seq);
          if (entry.seq === 3) await stream.append('s', [event(4), event(5)]);
          if (entry.seq === 5) await stream.append('s', [event(6)]);
          if (entry.seq === 6) controller.abort(new Error('done reading'));
        }
      })();
      await expect(reading).rejects.toThrow('done reading');
      expect(seen).toEqual([2, 3, 4, 5, 6]);
    });

    test('breaking out of a tail destroys its blocking connection', async () => {
      const stream = await streamOn();
      await stream.append('s', [event(1)]);
      for await (const entry of stream.tail('s', 0)) {
        expect(entry.seq).toBe(1);
        break;
      }
      await stream.append('s', [event(2)]);
      expect((await stream.replay('s', 1)).events.map((entry) => entry.seq)).toEqual([2]);
    });
  });
});
