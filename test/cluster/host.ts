// One instance of a host, for the three-process acceptance test (test/cluster/acceptance.test.ts):
// a SessionManager on the shared PostgresStore (schema CLUSTER_SCHEMA), RedisLeaseLock,
// RedisEventStream, RedisCommandBus and a Keyv on Redis for follow-up keys (prefix CLUSTER_PREFIX),
// running a ScriptedRuntime. The driver controls it over HTTP on 127.0.0.1 (the port is printed as
// `ready <port>` on stdout): POST / with one JSON command, answered with one JSON result.
import { createServer } from 'node:http';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { createClient } from 'redis';
import { AgentSessionsError } from '../../src/errors.js';
import type { SessionEvent } from '../../src/events.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import type { TurnStream } from '../../src/manager/types.js';
import { PostgresStore } from '../../src/postgres/store.js';
import { RedisCommandBus } from '../../src/redis/command-bus.js';
import { RedisEventStream } from '../../src/redis/event-stream.js';
import { RedisLeaseLock } from '../../src/redis/lease-lock.js';
import { ScriptedRuntime, type ScriptStep, step } from '../../src/testing/scripted-runtime.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const schema = process.env.CLUSTER_SCHEMA!;
const prefix = process.env.CLUSTER_PREFIX!;
const ttlMs = Number(process.env.CLUSTER_TTL_MS ?? 2000);

/** Redis commands this host sent (each is one round trip, or part of a pipeline). */
let redisCommands = 0;
const NOT_COMMANDS = new Set([
  'on',
  'off',
  'once',
  'connect',
  'close',
  'destroy',
  'duplicate',
  'quit',
  'disconnect',
]);

/** A connected client whose commands are counted (for the cluster benchmark). */
async function connect() {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string' || NOT_COMMANDS.has(property))
        return value;
      return (...args: unknown[]) => {
        redisCommands++;
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

const client = await connect();
const subscriber = await connect();
const scripted = new ScriptedRuntime();
const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: `${prefix}keys` });
keyv.on('error', () => {});
const manager = new SessionManager({
  runtime: scripted.factory,
  store: new PostgresStore({ connectionString: DATABASE_URL, schema, poolOptions: { max: 8 } }),
  busyLock: new RedisLeaseLock({ client, prefix, ttlMs }),
  eventLog: new RedisEventStream({ client, prefix, blockMs: 200, connectBlocking: connect }),
  commandBus: new RedisCommandBus({ publisher: client, subscriber, prefix, timeoutMs: 5000 }),
  idempotencyStore: keyv,
});

/** A turn as the driver describes it. */
type TurnScript =
  | { kind: 'reply'; text: string }
  | { kind: 'hold'; hold: string; text: string }
  | { kind: 'stream'; chunks: number; hold: string; text: string }
  | { kind: 'confirm'; chunks: number; tool: string; text: string }
  | { kind: 'burst'; chunks: number; text: string }
  | { kind: 'timed'; chunks: number; text: string };

/** Now, in ms since the epoch with sub-ms precision: comparable between processes of one machine. */
const now = () => performance.timeOrigin + performance.now();

function scriptTurn(id: string, script: TurnScript): void {
  if (script.kind === 'timed') {
    // Each chunk carries the time it was yielded, for the latency to a remote subscriber.
    scripted.turn(
      async function* () {
        for (let index = 0; index < script.chunks; index++) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          yield { type: 'agent_choice' as const, content: `t:${now()}` };
        }
        yield step.reply(script.text);
      },
      { sessionId: id },
    );
    return;
  }
  scripted.turn(stepsOf(script), { sessionId: id });
}

function stepsOf(script: Exclude<TurnScript, { kind: 'timed' }>): ScriptStep[] {
  const chunks = (count: number, from: number) =>
    Array.from({ length: count }, (_, index) => ({
      type: 'agent_choice' as const,
      content: `c${from + index} `,
    }));
  switch (script.kind) {
    case 'reply':
      return [step.reply(script.text)];
    case 'hold':
      return [step.hold(script.hold), step.reply(script.text)];
    case 'stream':
      return [
        ...chunks(script.chunks, 0),
        step.hold(script.hold),
        ...chunks(script.chunks, script.chunks),
        step.reply(script.text),
      ];
    case 'burst':
      return [...chunks(script.chunks, 0), step.reply(script.text)];
    case 'confirm':
      return [
        ...chunks(script.chunks, 0),
        step.authorize({ name: script.tool, arguments: { path: 'x' } }),
        step.reply(script.text),
      ];
  }
}

interface Run {
  stream: TurnStream;
  events: Array<{ seq: number; type: string }>;
  done: Promise<{ stopReason: string; events: Array<{ seq: number; type: string }> }>;
}
const runs = new Map<string, Run>();
const subscriptions = new Map<
  string,
  { events: SessionEvent[]; controller: AbortController; ended: boolean; error?: string }
>();

function start(id: string, stream: TurnStream): void {
  const events: Run['events'] = [];
  const done = (async () => {
    for await (const event of stream) events.push({ seq: event.seq, type: event.type });
    const result = await stream.done;
    return { stopReason: result.stopReason, events };
  })();
  done.catch(() => {});
  runs.set(id, { stream, events, done });
}

function codeOf(error: unknown): string {
  return AgentSessionsError.isInstance(error) ? error.code : `untyped: ${String(error)}`;
}

type Command = Record<string, unknown> & { op: string };

async function handle(command: Command): Promise<unknown> {
  const id = command.id as string;
  switch (command.op) {
    case 'create':
      return { id: (await manager.createSession()).id };
    case 'script':
      scriptTurn(id, command.turn as TurnScript);
      return {};
    case 'runMany': {
      // `count` concurrent runSession calls; the one that starts keeps running here.
      const results = await Promise.allSettled(
        Array.from({ length: command.count as number }, (_, index) =>
          manager.runSession(id, { messages: [`${command.label as string}-${index}`] }),
        ),
      );
      const outcomes = results.map((result, index) => {
        if (result.status === 'rejected') return codeOf(result.reason);
        start(id, result.value);
        return `started:${command.label as string}-${index}`;
      });
      return { outcomes };
    }
    case 'run': {
      try {
        start(id, await manager.runSession(id, { messages: [command.text as string] }));
        return { status: 'started' };
      } catch (error) {
        return { status: codeOf(error) };
      }
    }
    case 'benchRun': {
      // `turns` turns, one after the other, on each of `ids` (all sessions at once); every turn
      // streams `chunks` deltas. Resolves to the events the turns' callers received.
      const ids = command.ids as string[];
      const turns = command.turns as number;
      let events = 0;
      await Promise.all(
        ids.map(async (session) => {
          for (let turn = 0; turn < turns; turn++) {
            scriptTurn(session, { kind: 'burst', chunks: command.chunks as number, text: 'ok' });
            const stream = await manager.runSession(session, { messages: [`turn ${turn}`] });
            for await (const _event of stream) events++;
          }
        }),
      );
      return { events };
    }
    case 'redisCommands':
      return { count: redisCommands };
    case 'waitHeld':
      await scripted.waitUntilHeld(command.hold as string);
      return {};
    case 'release':
      return { released: scripted.release(command.hold as string) };
    case 'done': {
      const run = runs.get(id);
      if (!run) return { error: 'no run' };
      return await run.done;
    }
    case 'events':
      return { events: runs.get(id)?.events ?? [] };
    case 'followUp':
      try {
        return await manager.followUpSession(id, [command.text as string], {
          idempotencyKey: command.key as string,
        });
      } catch (error) {
        return { status: codeOf(error) };
      }
    case 'cancel':
      return { cancelled: await manager.cancelTurn(id) };
    case 'approve':
      await manager.resumeSession(id, { confirmation: 'approve' });
      return {};
    case 'pending': {
      const snapshot = await manager.getSessionSnapshot(id);
      return { confirmations: snapshot.pending.confirmations.map((pending) => pending.toolCall.name) };
    }
    case 'history': {
      const session = await manager.getSession(id);
      return { items: session.items };
    }
    case 'subscribe': {
      const controller = new AbortController();
      const subscription = { events: [] as SessionEvent[], controller, ended: false } as {
        events: SessionEvent[];
        controller: AbortController;
        ended: boolean;
        error?: string;
      };
      subscriptions.set(command.name as string, subscription);
      const stream = manager.streamEvents(id, {
        ...(command.since === undefined ? {} : { since: command.since as number }),
        signal: controller.signal,
      });
      await stream.ready;
      void (async () => {
        try {
          for await (const event of stream)
            subscription.events.push({ ...event, receivedAt: now() } as unknown as SessionEvent);
        } catch (error) {
          if (!controller.signal.aborted) subscription.error = codeOf(error);
        } finally {
          subscription.ended = true;
        }
      })();
      return {};
    }
    case 'received': {
      const subscription = subscriptions.get(command.name as string);
      if (!subscription) return { error: 'no subscription' };
      return {
        events: subscription.events.map((event) => ({
          seq: event.seq,
          type: event.type,
          ...(event.type === 'gap' ? { nextSeq: (event as { nextSeq?: number }).nextSeq } : {}),
        })),
        ended: subscription.ended,
        error: subscription.error,
      };
    }
    case 'latencies': {
      // For each timed delta received: how long after its yield (on any host) it arrived here.
      const subscription = subscriptions.get(command.name as string);
      return {
        latencies: (subscription?.events ?? []).flatMap((event) =>
          event.type === 'agent_choice' && event.content.startsWith('t:')
            ? [(event as SessionEvent & { receivedAt: number }).receivedAt - Number(event.content.slice(2))]
            : [],
        ),
      };
    }
    case 'unsubscribe':
      subscriptions.get(command.name as string)?.controller.abort();
      return {};
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const server = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk: Buffer) => {
    body += chunk.toString();
  });
  request.on('end', () => {
    handle(JSON.parse(body) as Command).then(
      (result) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(result));
      },
      (error: unknown) => {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: String(error), code: codeOf(error) }));
      },
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : 0}\n`);
});

async function shutdown(): Promise<void> {
  server.close();
  await manager.close().catch(() => {});
  await keyv.disconnect().catch(() => {});
  await Promise.all([client.close().catch(() => {}), subscriber.close().catch(() => {})]);
  process.exit(0);
}

process.on('SIGTERM', () => void shutdown());
