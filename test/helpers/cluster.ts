// Several SessionManagers in one test process, the way instances of a host share state: one
// PostgresStore schema, one Redis key prefix (RedisLeaseLock, RedisEventStream, RedisCommandBus),
// one ScriptedRuntime factory (whichever instance runs a turn takes the next scripted one).
import pg from 'pg';
import { createClient } from 'redis';
import { afterEach } from 'vitest';
import type { DurableEventLog } from '../../src/durable-event-log.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { SessionManagerOptions } from '../../src/manager/types.js';
import { PostgresStore } from '../../src/postgres/store.js';
import { RedisCommandBus } from '../../src/redis/command-bus.js';
import { RedisEventStream } from '../../src/redis/event-stream.js';
import { RedisLeaseLock } from '../../src/redis/lease-lock.js';
import { ScriptedRuntime } from '../../src/testing/scripted-runtime.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from './servers.js';

type Client = ReturnType<typeof createClient>;

export interface Instance {
  manager: SessionManager;
  store: PostgresStore;
  events: DurableEventLog;
  bus: RedisCommandBus;
  lock: RedisLeaseLock;
  /** Redis connection of the instance's lock, log and bus (closing it is losing Redis). */
  client: Client;
}

export interface ClusterOptions {
  /** Which durable log each instance uses. @default 'redis' */
  eventLog?: 'redis' | 'postgres';
  /** Retention of the durable log (Redis: at least this many). */
  maxEvents?: number;
  /** Wraps each instance's durable log (fault injection). */
  wrapLog?: (log: DurableEventLog, index: number) => DurableEventLog;
  manager?: Partial<SessionManagerOptions>;
  lock?: { ttlMs?: number; renewEveryMs?: number };
}

/** Registers the cleanup and returns `cluster(n)`, which starts n instances on fresh state. */
export function useCluster() {
  const clients: Client[] = [];
  const managers: SessionManager[] = [];
  const buses: RedisCommandBus[] = [];
  const schemas: string[] = [];
  const prefixes: string[] = [];
  const runtimes: ScriptedRuntime[] = [];

  async function connect(): Promise<Client> {
    const client = createClient({ url: REDIS_URL });
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    for (const manager of managers.splice(0)) await manager.close().catch(() => {});
    for (const bus of buses.splice(0)) await bus.close();
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
    const redis = await connect();
    for (const prefix of prefixes.splice(0)) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(keys);
    }
    for (const client of clients.splice(0)) if (client.isOpen) await client.close().catch(() => {});
    for (const scripted of runtimes.splice(0)) scripted.assertConsumed();
  });

  async function cluster(count: number, options: ClusterOptions = {}) {
    const schema = uniqueName('cluster');
    const prefix = `${uniqueName('cluster')}:`;
    schemas.push(schema);
    prefixes.push(prefix);
    const scripted = new ScriptedRuntime();
    runtimes.push(scripted);

    async function start(index: number): Promise<Instance> {
      const client = await connect();
      const subscriber = await connect();
      const store = new PostgresStore({
        connectionString: DATABASE_URL,
        schema,
        poolOptions: { max: 4 },
        ...(options.eventLog === 'postgres'
          ? {
              eventLog: {
                pollIntervalMs: 20,
                ...(options.maxEvents === undefined ? {} : { maxEvents: options.maxEvents }),
              },
            }
          : {}),
      });
      const base: DurableEventLog =
        options.eventLog === 'postgres'
          ? store.eventLog!
          : new RedisEventStream({
              client,
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
      const events = options.wrapLog ? options.wrapLog(base, index) : base;
      const lock = new RedisLeaseLock({ client, prefix, ...options.lock });
      const bus = new RedisCommandBus({ publisher: client, subscriber, prefix, timeoutMs: 5000 });
      buses.push(bus);
      const manager = new SessionManager({
        runtime: scripted.factory,
        store,
        busyLock: lock,
        eventLog: events,
        commandBus: bus,
        ...options.manager,
      });
      managers.push(manager);
      return { manager, store, events, bus, lock, client };
    }

    const instances: Instance[] = [];
    for (let index = 0; index < count; index++) instances.push(await start(index));
    return { instances, scripted, start: () => start(instances.length) };
  }

  return { cluster, connect };
}

/** Calls `attempt` until it returns a value (the condition, not a guessed delay, ends the wait). */
export async function eventually<T>(attempt: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
