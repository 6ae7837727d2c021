/**
 * `FileEventLog`: a {@link DurableEventLog} in a directory, one append-only file of JSON lines per
 * session (`<directory>/<name>.jsonl`, `<name>` the id made safe for case-insensitive file
 * systems). For one process, like `FileStore` (whose `eventLog` option puts one in
 * `<store directory>/events`): it keeps events across restarts, so a client reconnecting after a
 * restart replays what it missed instead of getting a `gap`. Node only.
 *
 * - **Appends** of a session are serialised in this process; a batch is one write of its lines.
 *   The numbering check (`SESSION_BUSY` for a batch that does not start after the stored last seq)
 *   uses the last seq read from the file once and kept in memory.
 * - **Crash safety**: a batch is acknowledged once its lines are in the file (`fdatasync` with
 *   `durability: 'fsync'`). A crash mid-write leaves at most one torn trailing line, which is never
 *   an acknowledged event: reads ignore it and the next append cuts it off (logged).
 * - **Damage is reported**: a complete line that is not an event makes reads of that session reject
 *   with `STORE_CORRUPT` naming the file; nothing is deleted.
 * - **Retention**: when a file holds more than twice `maxEvents`, or its oldest event is older than
 *   `maxAgeMs`, it is rewritten (temporary file, then rename) with the newest `maxEvents` events
 *   that are younger than `maxAgeMs` (the last event is always kept).
 * - **Tail** by polling the file every `pollIntervalMs`; an append through this object wakes the
 *   tails of its session at once.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Mutex } from 'async-mutex';
import {
  assertIncreasingSeqs,
  type DurableEventLog,
  type DurableReplay,
  type DurableTailOptions,
} from '../../durable-event-log.js';
import { AgentSessionsError, ErrorCode, InvalidArgumentError, StoreCorruptError } from '../../errors.js';
import type { SessionEvent } from '../../events.js';
import { pollTail, TailWakers } from '../../internal/poll-tail.js';
import { type Logger, silentLogger } from '../../logger.js';

/** Options of {@link FileEventLog}. */
export interface FileEventLogOptions {
  /** The directory of the event files (created if missing); owned by this log. */
  directory: string;
  /** Events kept per session (at least; a file is trimmed once it holds twice as many). @default 10000 */
  maxEvents?: number;
  /** Events older than this are removed at the session's next trim. @default 86400000 (a day) */
  maxAgeMs?: number;
  /** `'fsync'`: an append resolves once its lines are on disk. @default 'buffered' */
  durability?: 'fsync' | 'buffered';
  /** How often a tail that found nothing new reads again. @default 100 */
  pollIntervalMs?: number;
  /** Receives warnings (a torn line cut off). */
  logger?: Logger;
}

/** What this process knows of one session's file. */
interface FileState {
  lastSeq: number;
  /** Complete lines in the file. */
  lines: number;
  /** Timestamp (ms) of the oldest event, NaN when none. */
  oldestMs: number;
}

/** A session's file name: the id, lower-cased, with a hash when lower-casing changed it. */
function fileName(sessionId: string): string {
  const lower = sessionId.toLowerCase();
  if (lower === sessionId) return `${sessionId}.jsonl`;
  return `${lower}.${createHash('sha256').update(sessionId).digest('hex').slice(0, 12)}.jsonl`;
}

/** Session events in files. See the module documentation. */
export class FileEventLog implements DurableEventLog {
  readonly directory: string;
  readonly #maxEvents: number;
  readonly #maxAgeMs: number;
  readonly #fsync: boolean;
  readonly #pollIntervalMs: number;
  readonly #logger: Logger;
  readonly #locks = new Map<string, Mutex>();
  readonly #states = new Map<string, FileState>();
  readonly #wakers = new TailWakers();
  #made: Promise<unknown> | undefined;

  constructor(options: FileEventLogOptions) {
    if (typeof options?.directory !== 'string' || options.directory.length === 0) {
      throw new InvalidArgumentError('invalid FileEventLog directory: expected a non-empty path');
    }
    this.directory = options.directory;
    this.#maxEvents = options.maxEvents ?? 10_000;
    this.#maxAgeMs = options.maxAgeMs ?? 86_400_000;
    this.#fsync = options.durability === 'fsync';
    this.#pollIntervalMs = options.pollIntervalMs ?? 100;
    this.#logger = options.logger ?? silentLogger;
    if (!Number.isSafeInteger(this.#maxEvents) || this.#maxEvents < 1) {
      throw new InvalidArgumentError(`invalid FileEventLog maxEvents: ${String(options.maxEvents)}`);
    }
  }

  #path(sessionId: string): string {
    return join(this.directory, fileName(sessionId));
  }

  #lock(sessionId: string): Mutex {
    let lock = this.#locks.get(sessionId);
    if (lock === undefined) {
      lock = new Mutex();
      this.#locks.set(sessionId, lock);
    }
    return lock;
  }

  /** Reads a session's file: the events of its complete lines, and whether a torn line follows. */
  async #read(sessionId: string): Promise<{ events: SessionEvent[]; tornBytes: number; size: number }> {
    const path = this.#path(sessionId);
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], tornBytes: 0, size: 0 };
      throw unavailable('read events', error);
    }
    const end = text.lastIndexOf('\n') + 1;
    const events: SessionEvent[] = [];
    let start = 0;
    let line = 0;
    while (start < end) {
      const next = text.indexOf('\n', start);
      line++;
      const body = text.slice(start, next);
      start = next + 1;
      let event: SessionEvent;
      try {
        event = JSON.parse(body) as SessionEvent;
      } catch (error) {
        throw new StoreCorruptError(path, `line ${line} is not an event`, { cause: error });
      }
      if (typeof event?.seq !== 'number') throw new StoreCorruptError(path, `line ${line} has no seq`);
      events.push(event);
    }
    return { events, tornBytes: Buffer.byteLength(text.slice(end)), size: Buffer.byteLength(text) };
  }

  async #state(sessionId: string): Promise<FileState> {
    const known = this.#states.get(sessionId);
    if (known !== undefined) return known;
    const { events } = await this.#read(sessionId);
    const state: FileState = {
      lastSeq: events[events.length - 1]?.seq ?? 0,
      lines: events.length,
      oldestMs: events.length > 0 ? Date.parse(events[0]!.timestamp) : Number.NaN,
    };
    this.#states.set(sessionId, state);
    return state;
  }

  async append(sessionId: string, events: readonly SessionEvent[]): Promise<void> {
    if (events.length === 0) return;
    const batchLast = assertIncreasingSeqs(events);
    await this.#lock(sessionId).runExclusive(async () => {
      this.#made ??= fs.mkdir(this.directory, { recursive: true }).catch((error: unknown) => {
        this.#made = undefined;
        throw unavailable('create its directory', error);
      });
      await this.#made;
      const state = await this.#state(sessionId);
      if (events[0]!.seq <= state.lastSeq) {
        throw new AgentSessionsError(
          ErrorCode.SESSION_BUSY,
          `the event log of session ${sessionId} already holds seq ${state.lastSeq}: event ${events[0]!.seq} was numbered elsewhere`,
        );
      }
      const path = this.#path(sessionId);
      const text = events.map((event) => `${JSON.stringify(event)}\n`).join('');
      let handle: fs.FileHandle | undefined;
      try {
        handle = await fs.open(path, 'a+');
        const { size } = await handle.stat();
        if (size > 0) {
          // A torn trailing line (a crash mid-write) was never acknowledged: cut it off first.
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, size - 1);
          if (last[0] !== 0x0a) {
            const { tornBytes } = await this.#read(sessionId);
            this.#logger.warn('event log: cutting off a torn trailing line', { sessionId, path, tornBytes });
            await handle.truncate(size - tornBytes);
          }
        }
        await handle.appendFile(text, 'utf8');
        if (this.#fsync) await handle.datasync();
      } catch (error) {
        this.#states.delete(sessionId); // unsure what is in the file now: read it again next time
        throw unavailable('append events', error);
      } finally {
        await handle?.close().catch(() => {});
      }
      if (state.lines === 0) state.oldestMs = Date.parse(events[0]!.timestamp);
      state.lastSeq = batchLast;
      state.lines += events.length;
      if (state.lines > 2 * this.#maxEvents || Date.now() - state.oldestMs > this.#maxAgeMs) {
        await this.#trim(sessionId, state);
      }
    });
    this.#wakers.wake(sessionId);
  }

  /** Rewrites the file with what retention keeps (see the module documentation). */
  async #trim(sessionId: string, state: FileState): Promise<void> {
    const { events } = await this.#read(sessionId);
    const oldest = Date.now() - this.#maxAgeMs;
    const kept = events
      .slice(-this.#maxEvents)
      .filter((event, index, list) => index === list.length - 1 || Date.parse(event.timestamp) >= oldest);
    const path = this.#path(sessionId);
    const temporary = `${path}.${process.pid}.tmp`;
    try {
      await fs.writeFile(temporary, kept.map((event) => `${JSON.stringify(event)}\n`).join(''), {
        flush: this.#fsync,
      });
      await fs.rename(temporary, path);
    } catch (error) {
      await fs.rm(temporary, { force: true }).catch(() => {});
      throw unavailable('trim events', error);
    }
    state.lines = kept.length;
    state.oldestMs = kept.length > 0 ? Date.parse(kept[0]!.timestamp) : Number.NaN;
  }

  async replay(sessionId: string, since = 0, limit = 1000): Promise<DurableReplay> {
    const { events } = await this.#read(sessionId);
    const after = events.filter((event) => event.seq > since).slice(0, limit);
    const oldest = events[0]?.seq;
    return { events: after, dropped: oldest !== undefined && oldest > since + 1 };
  }

  async lastSeq(sessionId: string): Promise<number> {
    return this.#lock(sessionId).runExclusive(async () => (await this.#state(sessionId)).lastSeq);
  }

  async delete(sessionId: string): Promise<void> {
    await this.#lock(sessionId).runExclusive(async () => {
      try {
        await fs.rm(this.#path(sessionId), { force: true });
      } catch (error) {
        throw unavailable('delete events', error);
      }
      this.#states.delete(sessionId);
    });
    this.#locks.delete(sessionId);
  }

  tail(sessionId: string, since: number, options: DurableTailOptions = {}): AsyncGenerator<SessionEvent> {
    return pollTail((after, limit) => this.replay(sessionId, after, limit), since, {
      signal: options.signal,
      intervalMs: this.#pollIntervalMs,
      onWake: this.#wakers.onWake(sessionId),
    });
  }
}

function unavailable(what: string, error: unknown): AgentSessionsError {
  if (AgentSessionsError.isInstance(error)) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new AgentSessionsError(
    ErrorCode.STORE_UNAVAILABLE,
    `the file event log could not ${what}: ${detail}`,
    {
      cause: error,
    },
  );
}
