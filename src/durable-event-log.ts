/**
 * The durable event log: an optional capability that lets every instance of a host replay and tail
 * a session's events, whichever instance runs its turns (issue 14).
 *
 * Without one, a session's events live in the memory of the process that numbered them (the
 * in-memory ring of `manager/event-log.ts`, the default). With one — passed as
 * `SessionManagerOptions.eventLog`, or declared by the store as `store.eventLog` (see
 * {@link eventLogOf}) — the manager that holds a session's busy lease numbers its events and writes
 * them to the log in batches, and `streamEvents` on any instance replays from the log and then
 * tails it (see `docs/events-and-replay.md`).
 *
 * Implementations: `RedisEventStream` (`agent-sessions/redis`), `PostgresEventLog`
 * (`agent-sessions/postgres`, also `PostgresStore.eventLog`), `FileEventLog` (`agent-sessions/file`).
 * A shared behaviour suite is `durableEventLogTests` in `agent-sessions/testing`.
 *
 * The contract:
 * - {@link DurableEventLog.append} MUST store a batch whole or not at all, and MUST refuse (with
 *   `SESSION_BUSY`, storing nothing) a batch whose first `seq` is not greater than the last stored
 *   seq of the session: two writers never store two events under one seq. Seqs in a batch are
 *   increasing; they MAY skip numbers (numbers handed out but lost in a crash are never reused).
 *   `INVALID_ARGUMENT` for seqs that are not increasing positive integers.
 * - {@link DurableEventLog.replay} MUST return the retained events with `seq > since` in seq order,
 *   at most `limit`, and `dropped: true` when events after `since` were removed by retention.
 * - {@link DurableEventLog.tail} MUST yield every event with `seq > since` in seq order, each once,
 *   including those appended later (by any instance), until `signal` aborts (it then rejects with
 *   `signal.reason`) or the consumer stops iterating; it MUST release what it holds either way.
 *   Events already removed by retention are skipped: the consumer notices the jump in `seq`.
 * - {@link DurableEventLog.lastSeq} is the greatest seq ever stored for the session and still
 *   known (0 when none).
 * - Retention (how many events, how old) is the implementation's option; it SHOULD never remove
 *   the most recent event of a session.
 * - Failures of the backend are `STORE_UNAVAILABLE`; an event read back that cannot be parsed is
 *   `STORE_CORRUPT` (never skipped silently).
 */
import { AgentSessionsError, ErrorCode } from './errors.js';
import type { SessionEvent } from './events.js';

/** What {@link DurableEventLog.replay} read. */
export interface DurableReplay {
  /** The retained events after `since`, in seq order. */
  events: SessionEvent[];
  /** True when events after `since` were removed by retention: the reader reports a `gap`. */
  dropped: boolean;
}

/** Options of {@link DurableEventLog.tail}. */
export interface DurableTailOptions {
  /** Ends the tail: the pending `next()` rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** A durable, shared, numbered event log of sessions. See the module documentation for the contract. */
export interface DurableEventLog {
  /** Stores a batch of numbered events of one session, whole or not at all. */
  append(sessionId: string, events: readonly SessionEvent[]): Promise<void>;
  /** The retained events with `seq > since` (0: from the start), at most `limit`. */
  replay(sessionId: string, since?: number, limit?: number): Promise<DurableReplay>;
  /** Every event with `seq > since`, then live ones, until `signal` aborts or iteration stops. */
  tail(sessionId: string, since: number, options?: DurableTailOptions): AsyncIterable<SessionEvent>;
  /** The greatest seq stored for the session; 0 when none. */
  lastSeq(sessionId: string): Promise<number>;
  /** Optional: removes the session's events (the manager calls it when the session is deleted). */
  delete?(sessionId: string): Promise<void>;
}

/** A store that declares a durable event log of its own (`PostgresStore`, say). */
export interface EventLogCapable {
  readonly eventLog: DurableEventLog;
}

/** True for an object with the methods of a {@link DurableEventLog}. */
export function isDurableEventLog(value: unknown): value is DurableEventLog {
  if (typeof value !== 'object' || value === null) return false;
  const log = value as Partial<Record<keyof DurableEventLog, unknown>>;
  return (
    typeof log.append === 'function' &&
    typeof log.replay === 'function' &&
    typeof log.tail === 'function' &&
    typeof log.lastSeq === 'function'
  );
}

/**
 * The durable event log a store declares (its `eventLog` property, when that is a
 * {@link DurableEventLog}); `undefined` for a store without one, which keeps the in-memory default.
 */
export function eventLogOf(store: unknown): DurableEventLog | undefined {
  if (typeof store !== 'object' || store === null || !('eventLog' in store)) return undefined;
  const log = (store as { eventLog: unknown }).eventLog;
  return isDurableEventLog(log) ? log : undefined;
}

/**
 * What every {@link DurableEventLog.append} checks first: the batch's seqs are safe integers from 1,
 * strictly increasing (`INVALID_ARGUMENT` otherwise, before anything is written). Returns the
 * batch's last seq (0 for an empty batch). Internal to the log implementations; not exported from
 * the package.
 */
export function assertIncreasingSeqs(events: readonly SessionEvent[]): number {
  let previous = 0;
  for (const event of events) {
    if (!Number.isSafeInteger(event.seq) || event.seq <= previous) {
      throw new AgentSessionsError(
        ErrorCode.INVALID_ARGUMENT,
        'event seqs must be increasing integers from 1',
      );
    }
    previous = event.seq;
  }
  return previous;
}
