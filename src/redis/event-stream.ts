/**
 * A session's durable event log in a Redis Stream: a {@link DurableEventLog} (contract in
 * `src/durable-event-log.ts`) that shares events between instances. Hand it to every instance's
 * `SessionManager` as `eventLog`.
 *
 * - **Numbering once.** An event's stream id is derived from its seq (`<seq>-0`), and an append is
 *   one script that refuses a batch whose first seq is not after the stream's last: two instances
 *   can never store two events under one seq, and replay is the same from every instance.
 * - **Batches.** {@link RedisEventStream.append} writes any number of events in one round trip
 *   (one `EVAL`), so streaming deltas costs well under one round trip per event when batched.
 * - **Replay** is `XRANGE` after `since`; the answer says whether events after `since` were trimmed
 *   already (`dropped`), so a caller can report a `gap` rather than a wrong event.
 * - **Tail** is a loop of blocking `XREAD`s on a connection of its own (a blocking read holds its
 *   connection), ended by the signal or by breaking out of the loop.
 * - **Retention**: `MAXLEN ~ maxEvents` on every append (approximate: at least `maxEvents` are
 *   kept), and the whole stream expires `idleTtlMs` after its last append (retention by age:
 *   stream ids are derived from seqs, not times, so there is no per-event age). After expiry
 *   {@link RedisEventStream.lastSeq} is 0: the manager then numbers on from the session's persisted
 *   reservation, so numbers are still never reused.
 */
import { assertIncreasingSeqs, type DurableEventLog, type DurableReplay } from '../durable-event-log.js';
import { AgentSessionsError, ErrorCode, StoreCorruptError } from '../errors.js';
import type { SessionEvent } from '../events.js';

/** A Redis connection as the event stream uses it (a node-redis v5 client has this). */
export interface RedisCommandClient {
  sendCommand(args: string[]): Promise<unknown>;
}

/** Options of {@link RedisEventStream}. */
export interface RedisEventStreamOptions {
  /** The connection for appends and replays (shared; never closed by the stream). */
  client: RedisCommandClient;
  /**
   * Opens a connection for one tail's blocking reads; the tail destroys it when it ends. Without it,
   * {@link RedisEventStream.tail} is not available.
   */
  connectBlocking?: () => Promise<RedisCommandClient & { destroy(): void }>;
  /** Prefix of every key. @default 'agent-sessions:' */
  prefix?: string;
  /** Events kept per session, at least (trimmed with `MAXLEN ~`). @default 10000 */
  maxEvents?: number;
  /** A session's stream expires this long after its last append. @default 86400000 (a day) */
  idleTtlMs?: number;
  /** How long one blocking read waits before it checks the signal again. @default 5000 */
  blockMs?: number;
}

/** What {@link RedisEventStream.replay} read (a {@link DurableReplay}). */
export type ReplayResult = DurableReplay;

// KEYS[1] stream; ARGV[1] maxlen, ARGV[2] idle ttl ms, then seq, json pairs (seqs increasing).
// Returns 0, or the stream's last seq when the batch does not start after it (nothing written).
const APPEND = `local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if top[1] then last = tonumber(string.match(top[1][1], '^(%d+)')) end
if tonumber(ARGV[3]) <= last then return last end
for index = 3, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[index] .. '-0', 'e', ARGV[index + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0`;

function seqOf(id: unknown): number {
  return typeof id === 'string' ? Number.parseInt(id, 10) : Number.NaN;
}

function unavailable(what: string, error: unknown): AgentSessionsError {
  if (AgentSessionsError.isInstance(error)) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new AgentSessionsError(
    ErrorCode.STORE_UNAVAILABLE,
    `the redis event stream could not ${what}: ${detail}`,
    {
      cause: error,
    },
  );
}

/** Parses the entries of an XRANGE / XREAD reply: `[[id, [field, value, …]], …]`. */
function parseEntries(entries: unknown, key = 'stream'): { seq: number; event: SessionEvent }[] {
  if (!Array.isArray(entries)) return [];
  const parsed: { seq: number; event: SessionEvent }[] = [];
  for (const entry of entries) {
    const [id, fields] = entry as [unknown, unknown[]];
    const index = Array.isArray(fields) ? fields.indexOf('e') : -1;
    const text = index >= 0 ? fields[index + 1] : undefined;
    if (typeof text !== 'string') continue;
    let event: SessionEvent;
    try {
      event = JSON.parse(text) as SessionEvent;
    } catch (error) {
      throw new StoreCorruptError(`${key}#${String(id)}`, 'the event is not JSON', { cause: error });
    }
    parsed.push({ seq: seqOf(id), event });
  }
  return parsed;
}

/** Durable, shared event logs of sessions in Redis Streams. See the module documentation. */
export class RedisEventStream implements DurableEventLog {
  readonly #client: RedisCommandClient;
  readonly #connectBlocking: RedisEventStreamOptions['connectBlocking'];
  readonly #prefix: string;
  readonly #maxEvents: number;
  readonly #idleTtlMs: number;
  readonly #blockMs: number;

  constructor(options: RedisEventStreamOptions) {
    this.#client = options.client;
    this.#connectBlocking = options.connectBlocking;
    this.#prefix = options.prefix ?? 'agent-sessions:';
    this.#maxEvents = options.maxEvents ?? 10_000;
    this.#idleTtlMs = options.idleTtlMs ?? 86_400_000;
    this.#blockMs = options.blockMs ?? 5000;
  }

  #key(sessionId: string): string {
    return `${this.#prefix}events:${sessionId}`;
  }

  /**
   * Appends events (seqs increasing, the first after every stored one) in one round trip.
   * `INVALID_ARGUMENT` when the seqs are not increasing; `SESSION_BUSY` when the stream already
   * holds the first seq (another instance numbered it): nothing is written then.
   */
  async append(sessionId: string, events: readonly SessionEvent[]): Promise<void> {
    if (events.length === 0) return;
    const values: string[] = [String(this.#maxEvents), String(this.#idleTtlMs)];
    assertIncreasingSeqs(events);
    for (const event of events) values.push(String(event.seq), JSON.stringify(event));
    let last: unknown;
    try {
      last = await this.#client.sendCommand(['EVAL', APPEND, '1', this.#key(sessionId), ...values]);
    } catch (error) {
      throw unavailable('append events', error);
    }
    if (Number(last) !== 0) {
      throw new AgentSessionsError(
        ErrorCode.SESSION_BUSY,
        `the event log of session ${sessionId} already holds seq ${String(last)}: event ${events[0]!.seq} was numbered elsewhere`,
      );
    }
  }

  /** The retained events after `since` (0: from the start), at most `limit`. */
  async replay(sessionId: string, since = 0, limit = 1000): Promise<ReplayResult> {
    let reply: unknown;
    try {
      const [entries, first] = (await Promise.all([
        this.#client.sendCommand([
          'XRANGE',
          this.#key(sessionId),
          `(${since}-0`,
          '+',
          'COUNT',
          String(limit),
        ]),
        this.#client.sendCommand(['XRANGE', this.#key(sessionId), '-', '+', 'COUNT', '1']),
      ])) as [unknown, unknown];
      reply = entries;
      const events = parseEntries(reply).map((entry) => entry.event);
      const oldest = parseEntries(first)[0]?.seq;
      const dropped = oldest !== undefined && oldest > since + 1;
      return { events, dropped };
    } catch (error) {
      throw unavailable('replay events', error);
    }
  }

  /** The seq of the last event of the session's stream; 0 when it has none (or expired). */
  async lastSeq(sessionId: string): Promise<number> {
    let reply: unknown;
    try {
      reply = await this.#client.sendCommand(['XREVRANGE', this.#key(sessionId), '+', '-', 'COUNT', '1']);
    } catch (error) {
      throw unavailable('read the last seq', error);
    }
    const id = Array.isArray(reply) ? (reply[0] as unknown[] | undefined)?.[0] : undefined;
    const seq = seqOf(id);
    return Number.isSafeInteger(seq) ? seq : 0;
  }

  /** Removes the session's stream. */
  async delete(sessionId: string): Promise<void> {
    try {
      await this.#client.sendCommand(['DEL', this.#key(sessionId)]);
    } catch (error) {
      throw unavailable('delete events', error);
    }
  }

  /**
   * The events after `since`, live: replays what is retained, then waits for new ones with
   * blocking reads on a connection of its own. Ends when `signal` aborts (rejecting with its
   * reason) or the loop breaks; either way the connection is destroyed.
   */
  async *tail(
    sessionId: string,
    since: number,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<SessionEvent> {
    const connect = this.#connectBlocking;
    if (!connect) throw new AgentSessionsError(ErrorCode.INVALID_ARGUMENT, 'tail needs connectBlocking');
    const signal = options.signal;
    signal?.throwIfAborted();
    let connection: (RedisCommandClient & { destroy(): void }) | undefined;
    let destroyed = false;
    // Once only: destroying a closed node-redis client throws.
    const destroy = () => {
      if (destroyed || !connection) return;
      destroyed = true;
      try {
        connection.destroy();
      } catch {
        // already closed
      }
    };
    const onAbort = destroy;
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      connection = await connect().catch((error: unknown) => {
        throw unavailable('open a connection for blocking reads', error);
      });
      let last = since;
      for (;;) {
        signal?.throwIfAborted();
        let reply: unknown;
        try {
          reply = await connection.sendCommand([
            'XREAD',
            'COUNT',
            '500',
            'BLOCK',
            String(this.#blockMs),
            'STREAMS',
            this.#key(sessionId),
            `${last}-0`,
          ]);
        } catch (error) {
          signal?.throwIfAborted();
          throw unavailable('read events', error);
        }
        if (!Array.isArray(reply)) continue;
        for (const stream of reply) {
          for (const { seq, event } of parseEntries((stream as unknown[])[1])) {
            if (seq <= last) continue;
            last = seq;
            yield event;
          }
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      destroy();
    }
  }
}
