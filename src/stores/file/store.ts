// FileStore's operations: the driver behind `defineStore` that writes and reads session logs. The
// wrapper (src/stores/define-store.ts) serialises calls per session, validates and stamps; this
// file turns each call into log records, keeps the summaries, compacts and rewrites summary files.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, StoreCorruptError } from '../../errors.js';
import type { DirLock } from '../../internal/dir-lock.js';
import {
  errnoCode,
  NOFOLLOW,
  readRange,
  syncDirectory,
  unlinkIfExists,
  writeAll,
} from '../../internal/files.js';
import { decodeLines, type EncodedLine } from '../../internal/record-lines.js';
import { type Logger, silentLogger } from '../../logger.js';
import {
  countMessages,
  type Message,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
} from '../../schemas.js';
import type { ListOptions, Page } from '../../store.js';
import { DefinedStore } from '../define-store.js';
import type { IncrementalDriver, ListingDriver } from '../driver.js';
import { compareListPosition, pageSortedSummaries } from '../paging.js';
import {
  appendLine,
  encodeSessionName,
  encodeSummaryFile,
  messageLine,
  patchLine,
  patchSummary,
  replay,
  SESSIONS,
  sessionLine,
  splitPatch,
} from './format.js';
import { type Entry, openDirectory, openLog, StorePaths, toCorrupt } from './recovery.js';

/** How hard {@link FileStore} works to keep a resolved write. */
export type FileStoreDurability = 'fsync' | 'buffered';

/** Options of {@link FileStore}. */
export interface FileStoreOptions {
  /** The directory the store owns (created if missing). Nothing outside it is read or written. */
  directory: string;
  /**
   * - `'fsync'`: a write resolves only after its data is on disk (file data synced, and the
   *   directory synced when a file is created, renamed or deleted). Every resolved write survives
   *   a process crash (`kill -9`) and a power loss or kernel crash.
   * - `'buffered'`: a write resolves once the operating system has it. Every resolved write
   *   survives a process crash, not a power loss (the last few seconds of writes may be lost, and
   *   a file written at that moment may come back damaged).
   * @default 'fsync'
   */
  durability?: FileStoreDurability;
  /** Receives warnings (a damaged session skipped by a listing) and debug notes. Silent by default. */
  logger?: Logger;
  /** @internal Thresholds, lowered by tests to exercise compaction and summary rewrites. */
  tuning?: { compactMinBytes?: number; summaryEveryBytes?: number };
}

// A summary file is rewritten once its log has grown this much, which bounds what an open after a
// crash must read to rebuild the summary: the log tail after the offset the summary describes.
const SUMMARY_EVERY_BYTES = 256 * 1024;
// Compaction rewrites a log whose patch and message-update lines exceed this and half its size.
const COMPACT_MIN_BYTES = 1024 * 1024;
const OPEN_CONCURRENCY = 32;

class FileDriver implements IncrementalDriver, ListingDriver {
  readonly name = 'file';
  // Every session read is parsed from its log: nothing returned is kept.
  readonly freshReads = true;
  readonly paths: StorePaths;
  readonly #sync: boolean;
  readonly #logger: Logger;
  readonly #compactMinBytes: number;
  readonly #summaryEveryBytes: number;
  #entries = new Map<string, Entry>();
  #damaged = new Map<string, StoreCorruptError>();
  /** Summaries in listing order, rebuilt on the first listing after a write. */
  #sorted: SessionSummary[] | undefined;
  #opening: Promise<void> | undefined;
  #lock: DirLock | undefined;

  constructor(options: FileStoreOptions) {
    if (typeof options?.directory !== 'string' || options.directory.length === 0) {
      throw new InvalidArgumentError('invalid FileStore directory: expected a non-empty path', {
        issues: [{ path: ['directory'], message: 'expected a non-empty string' }],
      });
    }
    const durability = options.durability ?? 'fsync';
    if (durability !== 'fsync' && durability !== 'buffered') {
      throw new InvalidArgumentError(`invalid FileStore durability ${JSON.stringify(durability)}`, {
        issues: [{ path: ['durability'], message: "expected 'fsync' or 'buffered'" }],
      });
    }
    const directory = resolve(options.directory);
    this.paths = new StorePaths(directory, join(directory, SESSIONS));
    this.#sync = durability === 'fsync';
    this.#logger = options.logger ?? silentLogger;
    this.#compactMinBytes = options.tuning?.compactMinBytes ?? COMPACT_MIN_BYTES;
    this.#summaryEveryBytes = options.tuning?.summaryEveryBytes ?? SUMMARY_EVERY_BYTES;
  }

  /** Opens the store once: takes the lock and recovers every session. A failed open is retried by the next call. */
  ready(): Promise<void> {
    if (!this.#opening) {
      const opening = openDirectory(this.paths, { sync: this.#sync, logger: this.#logger }).then((opened) => {
        this.#entries = opened.entries;
        this.#damaged = opened.damaged;
        this.#sorted = undefined;
        this.#lock = opened.lock;
      });
      this.#opening = opening;
      opening.catch(() => {
        if (this.#opening === opening) this.#opening = undefined;
      });
    }
    return this.#opening;
  }

  async read(id: string): Promise<Session | undefined> {
    await this.ready();
    const entry = this.#entry(id);
    return entry && this.#load(entry);
  }

  async readSummary(id: string): Promise<SessionSummary | undefined> {
    await this.ready();
    return this.#entry(id)?.summary;
  }

  async summaries(): Promise<Iterable<SessionSummary>> {
    await this.ready();
    return [...this.#entries.values()].map((entry) => entry.summary);
  }

  async list(options: ListOptions): Promise<Page<SessionSummary>> {
    await this.ready();
    this.#sorted ??= [...this.#entries.values()]
      .sort((a, b) => (a.time !== b.time ? b.time - a.time : compareListPosition(a.summary, b.summary)))
      .map((entry) => entry.summary);
    return pageSortedSummaries(this.#sorted, options);
  }

  async write(session: Session, summary: SessionSummary): Promise<void> {
    await this.ready();
    const existing = this.#entry(session.id);
    const line = sessionLine(session);
    if (existing) {
      // A whole-session write of a stored session (not made by defineStore for this driver, whose
      // writes are incremental): the log is replaced by one record, like a compaction.
      await this.#replaceLog(existing, line);
      existing.summary = summary;
      existing.overwriteBytes = 0;
      this.#touch(existing, session.updatedAt);
      await this.#writeSummary(existing);
      return;
    }
    await this.#create(session.id, line, summary);
  }

  async append(id: string, items: SessionItem[], updatedAt: string): Promise<boolean> {
    await this.ready();
    const entry = this.#entry(id);
    if (!entry) return false;
    await this.#append(entry, appendLine(updatedAt, items), false);
    entry.summary.messageCount += countMessages(items);
    this.#touch(entry, updatedAt);
    await this.#maintain(entry);
    return true;
  }

  async patch(id: string, patch: SessionPatch, updatedAt: string): Promise<boolean> {
    await this.ready();
    const entry = this.#entry(id);
    if (!entry) return false;
    const { set, unset } = splitPatch(patch);
    await this.#append(entry, patchLine(updatedAt, set, unset), true);
    patchSummary(entry.summary, set, unset);
    this.#touch(entry, updatedAt);
    await this.#maintain(entry);
    return true;
  }

  async replaceMessage(
    id: string,
    messageId: string,
    message: Message,
    updatedAt: string,
  ): Promise<true | 'session' | 'message'> {
    await this.ready();
    const entry = this.#entry(id);
    if (!entry) return 'session';
    const line = messageLine(updatedAt, messageId, message);
    const session = await this.#load(entry);
    if (!session.items.some((item) => item.kind === 'message' && item.message.id === messageId)) {
      return 'message';
    }
    await this.#append(entry, line, true);
    this.#touch(entry, updatedAt);
    await this.#maintain(entry);
    return true;
  }

  async remove(id: string): Promise<boolean> {
    await this.ready();
    const damaged = this.#damaged.get(id);
    if (!damaged && !this.#entries.has(id)) return false;
    const name = encodeSessionName(id);
    // The log is the record: once it is gone (and the directory synced) the session is gone.
    await unlinkIfExists(this.paths.log(name));
    if (this.#sync) await syncDirectory(this.paths.sessions);
    this.#damaged.delete(id);
    if (this.#entries.delete(id)) this.#sorted = undefined;
    await unlinkIfExists(this.paths.summary(name));
    return true;
  }

  async close(): Promise<void> {
    try {
      await this.#opening;
    } catch {
      return;
    }
    const lock = this.#lock;
    if (!lock) return;
    try {
      const stale = [...this.#entries.values()].filter((entry) => entry.summarized !== entry.logSize);
      await pool(stale, (entry) =>
        this.#writeSummary(entry).catch((error: unknown) => {
          this.#logger.warn('file store: could not write a summary file', { sessionId: entry.id, error });
        }),
      );
    } finally {
      await lock.release();
      this.#lock = undefined;
    }
  }

  // The entry of a healthy session, undefined for an unknown one; a damaged one throws STORE_CORRUPT.
  #entry(id: string): Entry | undefined {
    const damaged = this.#damaged.get(id);
    if (damaged) throw damaged;
    return this.#entries.get(id);
  }

  async #create(id: string, line: EncodedLine, summary: SessionSummary): Promise<void> {
    const name = encodeSessionName(id);
    const path = this.paths.log(name);
    await unlinkIfExists(this.paths.summary(name));
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
        0o600,
      );
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') {
        throw new StoreCorruptError(path, 'an unexpected file is in the way', { cause: error });
      }
      throw error;
    }
    try {
      await writeAll(handle, Buffer.from(line.text));
      if (this.#sync) await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => {});
      await fs.unlink(path).catch(() => {});
      throw error;
    }
    await handle.close().catch(() => {});
    if (this.#sync) await syncDirectory(this.paths.sessions);
    this.#entries.set(id, {
      id,
      name,
      summary,
      time: Date.parse(summary.updatedAt),
      logSize: line.length,
      last: { crc: line.crc, length: line.length },
      overwriteBytes: 0,
      summarized: -1,
      dirtyTail: false,
    });
    this.#sorted = undefined;
  }

  #touch(entry: Entry, at: string): void {
    entry.summary.updatedAt = at;
    entry.time = Date.parse(at);
    this.#sorted = undefined;
  }

  #markDamaged(id: string, error: StoreCorruptError): void {
    if (this.#entries.delete(id)) this.#sorted = undefined;
    this.#damaged.set(id, error);
    this.#logger.warn('file store: damaged session skipped by listings', {
      sessionId: id,
      path: error.path,
      error: error.message,
    });
  }

  #tempPath(name: string): string {
    return this.paths.temp(name, randomBytes(6).toString('hex'));
  }

  async #append(entry: Entry, line: EncodedLine, overwrite: boolean): Promise<void> {
    const path = this.paths.log(entry.name);
    const handle = await openLog(path, constants.O_WRONLY | constants.O_APPEND);
    try {
      if (entry.dirtyTail) {
        await handle.truncate(entry.logSize);
        entry.dirtyTail = false;
      }
      // One write, so a crash leaves the line whole or torn (no newline), never two half-lines.
      entry.dirtyTail = true;
      await writeAll(handle, Buffer.from(line.text));
      if (this.#sync) await handle.datasync();
      entry.dirtyTail = false;
    } finally {
      await handle.close().catch(() => {});
    }
    entry.logSize += line.length;
    entry.last = { crc: line.crc, length: line.length };
    if (overwrite) entry.overwriteBytes += line.length;
  }

  // After a write: compact a log full of overwritten records, refresh a summary file gone stale.
  async #maintain(entry: Entry): Promise<void> {
    try {
      if (entry.overwriteBytes > this.#compactMinBytes && entry.overwriteBytes * 2 > entry.logSize) {
        await this.#replaceLog(entry, sessionLine(await this.#load(entry)));
        entry.overwriteBytes = 0;
        await this.#writeSummary(entry);
      } else if (entry.logSize - Math.max(entry.summarized, 0) > this.#summaryEveryBytes) {
        await this.#writeSummary(entry);
      }
    } catch (error) {
      // The write's line is already in the log and applied: rejecting now would report a write that
      // happened as failed, and a retry would apply it twice. Maintenance is tried after later writes.
      this.#logger.warn('file store: could not compact a log or write a summary file', {
        sessionId: entry.id,
        error,
      });
    }
  }

  // Replaces a log by one line: written to a temporary file, synced, renamed over the log.
  async #replaceLog(entry: Entry, line: EncodedLine): Promise<void> {
    const temp = this.#tempPath(entry.name);
    const handle = await fs.open(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
      0o600,
    );
    try {
      await writeAll(handle, Buffer.from(line.text));
      if (this.#sync) await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => {});
      await fs.unlink(temp).catch(() => {});
      throw error;
    }
    await handle.close().catch(() => {});
    await fs.rename(temp, this.paths.log(entry.name));
    if (this.#sync) await syncDirectory(this.paths.sessions);
    entry.logSize = line.length;
    entry.last = { crc: line.crc, length: line.length };
    entry.dirtyTail = false;
  }

  // Reads and replays a session's log up to its acknowledged size.
  async #load(entry: Entry): Promise<Session> {
    const path = this.paths.log(entry.name);
    try {
      const handle = await openLog(path, constants.O_RDONLY);
      let buffer: Buffer;
      try {
        buffer = await readRange(handle, 0, entry.logSize);
      } finally {
        await handle.close().catch(() => {});
      }
      if (buffer.length < entry.logSize) throw new StoreCorruptError(path, 'the file was truncated');
      const { lines } = decodeLines(buffer);
      return replay(lines, path, entry.id);
    } catch (error) {
      const corrupt = toCorrupt(error, path);
      if (!corrupt) throw error;
      this.#markDamaged(entry.id, corrupt);
      throw corrupt;
    }
  }

  async #writeSummary(entry: Entry): Promise<void> {
    const temp = this.#tempPath(entry.name);
    // Not synced: the summary is a cache, checked against the log when read.
    await fs.writeFile(temp, encodeSummaryFile(entry), {
      flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
      mode: 0o600,
    });
    try {
      await fs.rename(temp, this.paths.summary(entry.name));
    } catch (error) {
      await fs.unlink(temp).catch(() => {});
      throw error;
    }
    entry.summarized = entry.logSize;
  }
}

async function pool<T>(values: readonly T[], work: (value: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < values.length) await work(values[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, values.length) }, worker));
}

/**
 * A {@link Store} in a directory of files, for one process at a time. Node only. A driver behind
 * `defineStore`, so every rule of the Store contract (src/store.ts) holds.
 *
 * **Layout.** `<directory>/sessions/<name>.log` is one append-only log per session, one
 * checksummed, versioned JSON record per line (src/stores/file/format.ts): the first holds the
 * whole session as created; later ones hold appended items, metadata patches and message
 * replacements, each with the `updatedAt` it set. `<name>` is the id made safe for
 * case-insensitive file systems (`abc` is `abc`, `ABC` is `abc.7`). `<name>.sum` caches the
 * session's summary and the log offset it describes; it is only a cache (rewritten every 256 KiB of
 * log and on `close()`, never synced) and a missing or stale one is rebuilt from the log.
 * `<directory>/.lock/` holds the lock.
 *
 * **Costs.** `appendItems`, `updateSession` and `updateMessage` each append one line and, with
 * `durability: 'fsync'`, sync it once (`fdatasync`). `createSession` and `deleteSession` also
 * sync the directory. `getSession` reads one file; `getSummary` and listings read none.
 * `updateMessage` reads the session's log to find the message. When patch and message-update lines
 * outweigh the rest of a log (and exceed 1 MiB) the log is compacted: rewritten as one line to a
 * temporary file, synced, renamed over the log. Opening reads each session's summary file and the
 * log after the offset it describes; listing then works from memory and never reads items.
 *
 * **Crash safety.** A write is acknowledged only after its whole line is in the file. A process
 * killed at any instant leaves at most one torn trailing line (no final newline) in a log: it was
 * never acknowledged, is ignored when read, and cut off before the next write. A log with no
 * complete line is a create that never finished and is removed on open. What survives a power
 * loss depends on {@link FileStoreOptions.durability}.
 *
 * **Damage.** A complete line whose checksum does not match (damaged, or edited by hand), a log
 * whose records do not fit together, a symlink or anything other than a regular file where a log
 * should be: every call naming that session rejects with `STORE_CORRUPT` (`StoreCorruptError`,
 * `path` naming the file), except `deleteSession`, which removes it. Other sessions keep working.
 * Listings skip a damaged session and log a warning once. Damage in the middle of a log is found
 * when the session is read; from then on listings skip it.
 *
 * **Paths.** Ids are validated before any I/O and encoded into names of `[a-z0-9_.-]` inside the
 * directory. Files are opened with `O_NOFOLLOW` (where the platform has it) and created with
 * `O_EXCL`: a symlink planted in the directory is never followed.
 *
 * **Two processes.** The store takes an exclusive lock on the directory when it opens (on the
 * first call, or {@link FileStore.open}); a second store on the same directory, in this process or
 * another, rejects with `STORE_LOCKED` until the first one is closed or its process has died. A
 * lock left by a killed process is taken over safely, also when several processes race for it. A
 * lock held from another host (network file system) counts as held.
 *
 * **Concurrency.** Writes to one session are applied one at a time in call order; different
 * sessions do not wait for each other.
 *
 * `close()` waits for pending calls, writes summary files and releases the lock; later calls reject
 * with `CLOSED`. Unexpected file-system failures (a full disk, permissions) reject with
 * `STORE_UNAVAILABLE`, the file-system error as `cause`.
 */
export class FileStore extends DefinedStore {
  readonly #files: FileDriver;

  constructor(options: FileStoreOptions) {
    const driver = new FileDriver(options);
    super(driver);
    this.#files = driver;
  }

  /** The directory this store owns. */
  get directory(): string {
    return this.#files.paths.directory;
  }

  /**
   * Opens the store now rather than on the first call: takes the directory lock and reads the
   * summaries. Idempotent. Rejects with `STORE_LOCKED` when another store holds the directory (a
   * later call tries again), `CLOSED` after {@link FileStore.close}.
   */
  async open(): Promise<void> {
    this.assertOpen();
    try {
      await this.#files.ready();
    } catch (error) {
      throw this.normalizeError(error, 'open');
    }
  }
}
