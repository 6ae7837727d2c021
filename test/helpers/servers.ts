// The real servers of the server test suites (PostgreSQL and Redis on 127.0.0.1, or DATABASE_URL
// and REDIS_URL), probed once per file. When one cannot be reached, its suites register a single
// test whose name says what was not run and why: skipped (vitest lists it as skipped, with the
// reason) on a developer's machine, a FAILURE when CI=true, where .ci/run starts both servers.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createClient } from 'redis';
import { test } from 'vitest';

/** The PostgreSQL the tests use. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The Redis the tests use. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether a server answered, and why not. */
export type Probe = { available: true } | { available: false; reason: string };

function reasonOf(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.map(reasonOf).join('; ');
  return error instanceof Error ? error.message || error.constructor.name : String(error);
}

/** Connects to PostgreSQL once and runs `SELECT 1`. */
export async function probePostgres(): Promise<Probe> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { available: true };
  } catch (error) {
    return { available: false, reason: `PostgreSQL at ${DATABASE_URL}: ${reasonOf(error)}` };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Connects to Redis once and sends PING. */
export async function probeRedis(): Promise<Probe> {
  const client = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 3000, reconnectStrategy: false },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return { available: true };
  } catch (error) {
    return { available: false, reason: `Redis at ${REDIS_URL}: ${reasonOf(error)}` };
  } finally {
    if (client.isOpen) await client.close().catch(() => {});
  }
}

/** How {@link whenServer} registers its test (vitest's `test`, or a recorder in its own test). */
export type Register = (name: string, body: (context: { skip(note?: string): void }) => void) => unknown;

/**
 * Registers the suite when the server answered; otherwise one test named after what was not run:
 * it fails when `ci` (CI=true) and is skipped, with the reason, elsewhere.
 */
export function whenServer(
  probe: Probe,
  suite: string,
  register: () => void,
  options: { test?: Register; ci?: boolean } = {},
): void {
  if (probe.available) {
    register();
    return;
  }
  const reason = probe.reason;
  const ci = options.ci ?? process.env.CI === 'true';
  const registerTest: Register = options.test ?? test;
  registerTest(`NOT RUN: ${suite} — server unreachable (${reason})`, (context) => {
    if (ci) throw new Error(`${suite} needs its server under CI=true (.ci/run starts it): ${reason}`);
    context.skip(`server unreachable: ${reason}`);
  });
}

/** A fresh name for a schema or key prefix of one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}
