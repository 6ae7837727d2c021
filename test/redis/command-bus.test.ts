// RedisCommandBus against a real Redis: a command sent from one instance reaches the one serving
// the session and comes back with its answer or the same error code.
import { createClient } from 'redis';
import { afterEach, describe, expect, test } from 'vitest';
import { AgentSessionsError, ErrorCode } from '../../src/errors.js';
import { RedisCommandBus } from '../../src/redis/command-bus.js';
import { probeRedis, REDIS_URL, uniqueName, whenServer } from '../helpers/servers.js';

type Client = ReturnType<typeof createClient>;
const probe = await probeRedis();
const clients: Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) if (client.isOpen) await client.close().catch(() => {});
});

async function connect(): Promise<Client> {
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  return client;
}

async function bus(prefix: string, timeoutMs?: number): Promise<RedisCommandBus> {
  return new RedisCommandBus({
    publisher: await connect(),
    subscriber: await connect(),
    prefix,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

whenServer(probe, 'RedisCommandBus suites', () => {
  describe('RedisCommandBus', () => {
    test('a command reaches the instance serving the session and its answer comes back', async () => {
      const prefix = `${uniqueName('bus')}:`;
      const running = await bus(prefix);
      const other = await bus(prefix);
      const received: unknown[] = [];
      const stop = await running.serve('s', async (command) => {
        received.push(command);
        return { cancelled: true };
      });
      expect(await other.send('s', { kind: 'cancel', value: { reason: 'user' } })).toEqual({
        cancelled: true,
      });
      expect(received).toEqual([{ kind: 'cancel', value: { reason: 'user' } }]);
      await stop();
      await Promise.all([running.close(), other.close()]);
    });

    test('the serving handler’s AgentSessionsError arrives with its code; other errors as RUNTIME_FAILED', async () => {
      const prefix = `${uniqueName('bus')}:`;
      const running = await bus(prefix);
      const other = await bus(prefix);
      await running.serve('s', async (command) => {
        if (command.kind === 'resume')
          throw new AgentSessionsError(ErrorCode.NOTHING_PENDING, 'nothing pending');
        throw new Error('boom');
      });
      const pending = await other.send('s', { kind: 'resume' }).catch((caught: unknown) => caught);
      expect(AgentSessionsError.hasCode(pending, ErrorCode.NOTHING_PENDING)).toBe(true);
      expect((pending as Error).message).toBe('nothing pending');
      const failed = await other.send('s', { kind: 'steer' }).catch((caught: unknown) => caught);
      expect(AgentSessionsError.hasCode(failed, ErrorCode.RUNTIME_FAILED)).toBe(true);
      await Promise.all([running.close(), other.close()]);
    });

    test('a session no instance serves is SESSION_NOT_RUNNING at once, also after serving stopped', async () => {
      const prefix = `${uniqueName('bus')}:`;
      const running = await bus(prefix);
      const other = await bus(prefix);
      await expect(other.send('s', { kind: 'cancel' })).rejects.toMatchObject({
        code: ErrorCode.SESSION_NOT_RUNNING,
      });
      const stop = await running.serve('s', async () => true);
      expect(await other.send('s', { kind: 'cancel' })).toBe(true);
      await stop();
      await expect(other.send('s', { kind: 'cancel' })).rejects.toMatchObject({
        code: ErrorCode.SESSION_NOT_RUNNING,
      });
      await Promise.all([running.close(), other.close()]);
    });

    test('no answer within timeoutMs is TIMEOUT; an aborted signal rejects with its reason', async () => {
      const prefix = `${uniqueName('bus')}:`;
      const running = await bus(prefix);
      const other = await bus(prefix, 200);
      await running.serve('s', () => new Promise(() => {}));
      await expect(other.send('s', { kind: 'cancel' })).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
      const controller = new AbortController();
      const sent = other.send('s', { kind: 'cancel' }, { signal: controller.signal });
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await expect(sent).rejects.toBe(reason);
      await Promise.all([running.close(), other.close()]);
    });
  });
});
