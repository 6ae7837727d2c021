// Issue 14, item 5: the multi-instance acceptance test. Three host processes (test/cluster/host.ts:
// a SessionManager each on one PostgresStore schema, RedisLeaseLock, RedisEventStream,
// RedisCommandBus and a Keyv on Redis) driven by this test over HTTP on 127.0.0.1. The short form
// (one round) runs in `npm test`; `npm run test:cluster` repeats the SIGKILL round CLUSTER_ROUNDS
// times (≥ 50) with kills at random moments of a turn.
import pg from 'pg';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SessionItem } from '../../src/schemas.js';
import {
  DATABASE_URL,
  probePostgres,
  probeRedis,
  REDIS_URL,
  uniqueName,
  whenServer,
} from '../helpers/servers.js';
import { type HostProcess, spawnHost } from './host-process.js';

const TTL_MS = 2000;
const rounds = Number(process.env.CLUSTER_ROUNDS ?? 1);

const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const available = postgres.available ? redis : postgres;

type Host = HostProcess;

const schema = uniqueName('accept');
const prefix = `${uniqueName('accept')}:`;
const hosts: Host[] = [];

async function startHost(name: string): Promise<Host> {
  const host = await spawnHost({ name, schema, prefix, ttlMs: TTL_MS });
  hosts.push(host);
  return host;
}

async function stopHost(host: Host): Promise<void> {
  if (host.child.exitCode === null && host.child.signalCode === null) host.child.kill('SIGTERM');
  await host.exited;
}

/** Every tool call has a result, and no user message comes between a call and its result. */
function historyViolations(items: readonly SessionItem[]): string[] {
  const violations: string[] = [];
  const open = new Set<string>();
  for (const item of items) {
    if (item.kind !== 'message') continue;
    const message = item.message;
    if (message.role === 'user' && open.size > 0)
      violations.push('user message between a call and its result');
    if (message.role === 'assistant') for (const call of message.toolCalls ?? []) open.add(call.id);
    if (message.role === 'tool' && message.toolCallId !== undefined) open.delete(message.toolCallId);
  }
  if (open.size > 0) violations.push(`tool calls without a result: ${[...open].join(',')}`);
  const ids = items.flatMap((item) => (item.kind === 'message' ? [item.message.id] : []));
  if (new Set(ids).size !== ids.length) violations.push('a message stored twice');
  return violations;
}

const userTexts = (items: readonly SessionItem[]) =>
  items.flatMap((item) =>
    item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
  );

type Received = {
  events: Array<{ seq: number; type: string; nextSeq?: number }>;
  ended: boolean;
  error?: string;
};

/** Polls `attempt` until it returns a value. */
async function until<T>(attempt: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Seqs strictly increasing; every jump is announced by a `gap` whose nextSeq covers it. */
function gapViolations(events: Received['events']): string[] {
  const violations: string[] = [];
  let last: number | undefined;
  let allowedUpTo = -1;
  for (const event of events) {
    if (event.type === 'gap') {
      allowedUpTo = event.nextSeq ?? Number.POSITIVE_INFINITY;
      continue;
    }
    if (last !== undefined && event.seq <= last) violations.push(`seq ${event.seq} after ${last}`);
    if (last !== undefined && event.seq !== last + 1 && event.seq > allowedUpTo)
      violations.push(`seq ${event.seq} after ${last} without a gap`);
    last = event.seq;
  }
  return violations;
}

whenServer(available, 'three-process cluster acceptance', () => {
  describe('three host processes on one PostgreSQL schema and one Redis prefix', () => {
    let a: Host;
    let b: Host;
    let c: Host;

    beforeAll(async () => {
      [a, b, c] = await Promise.all([startHost('A'), startHost('B'), startHost('C')]);
    }, 60_000);

    afterAll(async () => {
      await Promise.all(hosts.map(stopHost));
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
      const client = createClient({ url: REDIS_URL });
      client.on('error', () => {});
      await client.connect();
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(keys);
      await client.close();
    }, 60_000);

    test('1000 concurrent runSession calls on one session over three hosts: one turn runs, 999 SESSION_BUSY, history only the winner’s', async () => {
      const { id } = await a.rpc<{ id: string }>({ op: 'create' });
      for (const host of [a, b, c])
        await host.rpc({ op: 'script', id, turn: { kind: 'hold', hold: 'win', text: 'winner' } });
      const results = await Promise.all(
        [a, b, c].map((host, index) =>
          host.rpc<{ outcomes: string[] }>({
            op: 'runMany',
            id,
            count: index === 2 ? 334 : 333,
            label: host.name,
          }),
        ),
      );
      const outcomes = results.flatMap((result) => result.outcomes);
      expect(outcomes).toHaveLength(1000);
      const started = outcomes.filter((outcome) => outcome.startsWith('started:'));
      expect(started).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome === 'SESSION_BUSY')).toHaveLength(999);
      const winnerText = started[0]!.slice('started:'.length);
      const winner = [a, b, c].find((host) => winnerText.startsWith(`${host.name}-`))!;
      await winner.rpc({ op: 'waitHeld', hold: 'win' });
      await winner.rpc({ op: 'release', hold: 'win' });
      expect((await winner.rpc<{ stopReason: string }>({ op: 'done', id })).stopReason).toBe('end_turn');
      const { items } = await c.rpc<{ items: SessionItem[] }>({ op: 'history', id });
      expect(userTexts(items)).toEqual([winnerText]);
      expect(historyViolations(items)).toEqual([]);
    }, 60_000);

    test('a subscriber on B sees the turn running on A gapless, reconnects to C with its last seq and misses nothing', async () => {
      const { id } = await a.rpc<{ id: string }>({ op: 'create' });
      await a.rpc({ op: 'script', id, turn: { kind: 'stream', chunks: 10, hold: 'mid', text: 'streamed' } });
      await b.rpc({ op: 'subscribe', id, name: 'sub-b' });
      expect((await a.rpc<{ status: string }>({ op: 'run', id, text: 'stream please' })).status).toBe(
        'started',
      );
      await a.rpc({ op: 'waitHeld', hold: 'mid' });
      // B has everything up to the hold; it drops off mid-turn and resumes on C from its last seq.
      const onB = await until(async () => {
        const received = await b.rpc<Received>({ op: 'received', name: 'sub-b' });
        return received.events.filter((event) => event.type === 'agent_choice').length >= 10
          ? received
          : undefined;
      });
      await b.rpc({ op: 'unsubscribe', name: 'sub-b' });
      const lastSeq = onB.events.at(-1)!.seq;
      await c.rpc({ op: 'subscribe', id, name: 'sub-c', since: lastSeq });
      await a.rpc({ op: 'release', hold: 'mid' });
      const turn = await a.rpc<{ stopReason: string; events: Array<{ seq: number; type: string }> }>({
        op: 'done',
        id,
      });
      expect(turn.stopReason).toBe('end_turn');
      const lastOfTurn = turn.events.at(-1)!.seq;
      const onC = await until(async () => {
        const received = await c.rpc<Received>({ op: 'received', name: 'sub-c' });
        return received.events.some((event) => event.seq >= lastOfTurn) ? received : undefined;
      });
      await c.rpc({ op: 'unsubscribe', name: 'sub-c' });
      const seen = [...onB.events, ...onC.events].filter((event) => event.seq <= lastOfTurn);
      expect(seen.some((event) => event.type === 'gap')).toBe(false);
      // Every event of the turn, in order, once — and the subscribers saw the same events A's caller did.
      const turnSeqs = turn.events.map((event) => event.seq);
      expect(seen.map((event) => event.seq).filter((seq) => seq >= turnSeqs[0]!)).toEqual(turnSeqs);
      expect(seen.filter((event) => event.seq >= turnSeqs[0]!).map((event) => event.type)).toEqual(
        turn.events.map((event) => event.type),
      );
      expect(gapViolations(seen)).toEqual([]);
    }, 60_000);

    test('a confirmation raised on A is approved through C; a cancel sent to B ends A’s turn cancelled', async () => {
      const { id } = await a.rpc<{ id: string }>({ op: 'create' });
      await a.rpc({ op: 'script', id, turn: { kind: 'confirm', chunks: 2, tool: 'read', text: 'approved' } });
      expect((await a.rpc<{ status: string }>({ op: 'run', id, text: 'needs approval' })).status).toBe(
        'started',
      );
      await until(async () => {
        const pending = await c.rpc<{ confirmations: string[] }>({ op: 'pending', id });
        return pending.confirmations.length > 0 ? pending : undefined;
      });
      await c.rpc({ op: 'approve', id });
      const approved = await a.rpc<{ stopReason: string; events: Array<{ type: string }> }>({
        op: 'done',
        id,
      });
      expect(approved.stopReason).toBe('end_turn');
      expect(approved.events.some((event) => event.type === 'tool_call_response')).toBe(true);

      await a.rpc({ op: 'script', id, turn: { kind: 'hold', hold: 'cancel-me', text: 'never' } });
      expect((await a.rpc<{ status: string }>({ op: 'run', id, text: 'to cancel' })).status).toBe('started');
      await a.rpc({ op: 'waitHeld', hold: 'cancel-me' });
      expect((await b.rpc<{ cancelled: boolean }>({ op: 'cancel', id })).cancelled).toBe(true);
      expect((await a.rpc<{ stopReason: string }>({ op: 'done', id })).stopReason).toBe('cancelled');
      const { items } = await b.rpc<{ items: SessionItem[] }>({ op: 'history', id });
      expect(historyViolations(items)).toEqual([]);
    }, 60_000);

    test('a follow-up key used on A and again on B is delivered once', async () => {
      const { id } = await a.rpc<{ id: string }>({ op: 'create' });
      for (const host of [a, b])
        await host.rpc({ op: 'script', id, turn: { kind: 'reply', text: 'followed up' } });
      const first = await a.rpc<{ status: string }>({ op: 'followUp', id, text: 'once', key: 'k-1' });
      expect(first.status).toBe('started');
      await a.rpc({ op: 'done', id });
      const second = await b.rpc<{ status: string }>({ op: 'followUp', id, text: 'once', key: 'k-1' });
      expect(second.status).toBe('duplicate');
      const { items } = await c.rpc<{ items: SessionItem[] }>({ op: 'history', id });
      expect(userTexts(items)).toEqual(['once']);
    }, 60_000);

    // The SIGKILL round: a turn on a random host is killed at a random moment (while it streams,
    // while a confirmation waits, or before either); within the lease TTL another host runs the
    // session on a repaired history, and a subscriber on a third host got every persisted event or
    // an explicit gap.
    test(
      `SIGKILL of the host running a turn: another host runs the session within the lease TTL on a valid history; a subscriber misses nothing silently (${rounds} round${rounds === 1 ? '' : 's'})`,
      async () => {
        const cluster = [a, b, c];
        for (let round = 0; round < rounds; round++) {
          const victimIndex = round % 3;
          const victim = cluster[victimIndex]!;
          const rescuer = cluster[(victimIndex + 1) % 3]!;
          const watcher = cluster[(victimIndex + 2) % 3]!;
          const { id } = await rescuer.rpc<{ id: string }>({ op: 'create' });
          await victim.rpc({
            op: 'script',
            id,
            turn: { kind: 'confirm', chunks: 20, tool: 'write', text: 'lost' },
          });
          await rescuer.rpc({ op: 'script', id, turn: { kind: 'reply', text: 'after the crash' } });
          const name = `watch-${round}`;
          await watcher.rpc({ op: 'subscribe', id, name });
          expect(
            (await victim.rpc<{ status: string }>({ op: 'run', id, text: `doomed ${round}` })).status,
          ).toBe('started');
          // The first round kills while the confirmation waits (the tool call is persisted, open);
          // the others at a random moment of the turn.
          if (round === 0) {
            await until(async () => {
              const pending = await watcher.rpc<{ confirmations: string[] }>({ op: 'pending', id });
              return pending.confirmations.length > 0 ? pending : undefined;
            });
          } else {
            await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 60)));
          }
          victim.child.kill('SIGKILL');
          await victim.exited;
          const killedAt = performance.now();
          const rescued = await until(async () => {
            const result = await rescuer.rpc<{ status: string }>({ op: 'run', id, text: `rescue ${round}` });
            if (result.status === 'SESSION_BUSY') return undefined;
            return result;
          });
          const waitedMs = performance.now() - killedAt;
          expect(rescued.status).toBe('started');
          // Within the lease TTL (plus the polling and one round trip of slack on a loaded machine).
          expect(waitedMs).toBeLessThan(TTL_MS + 1500);
          const done = await rescuer.rpc<{ stopReason: string; events: Array<{ seq: number }> }>({
            op: 'done',
            id,
          });
          expect(done.stopReason).toBe('end_turn');
          const { items } = await watcher.rpc<{ items: SessionItem[] }>({ op: 'history', id });
          expect(historyViolations(items), JSON.stringify(items)).toEqual([]);
          expect(userTexts(items).at(-1)).toBe(`rescue ${round}`);
          if (round === 0) {
            // The open tool call was closed by the repair as not run.
            const results = items.flatMap((item) =>
              item.kind === 'message' && item.message.role === 'tool' ? [item.message] : [],
            );
            expect(results).toHaveLength(1);
            expect(results[0]!.isError).toBe(true);
          }
          const lastOfRescue = done.events.at(-1)!.seq;
          const watched = await until(async () => {
            const received = await watcher.rpc<Received>({ op: 'received', name });
            return received.events.some((event) => event.seq >= lastOfRescue) ? received : undefined;
          });
          await watcher.rpc({ op: 'unsubscribe', name });
          expect(gapViolations(watched.events)).toEqual([]);
          // The rescuing turn's events reached the watcher in full.
          const watchedSeqs = new Set(watched.events.map((event) => event.seq));
          for (const event of done.events) expect(watchedSeqs.has(event.seq)).toBe(true);
          cluster[victimIndex] = await startHost(victim.name);
        }
        [a, b, c] = cluster as [Host, Host, Host];
      },
      120_000 + rounds * 20_000,
    );
  });
});
