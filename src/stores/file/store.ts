// FileStore's operations: the driver behind `defineStore` that writes and reads session logs. The
// wrapper (src/stores/define-store.ts) serialises calls per session, validates and stamps; this
// file turns each call into log records, keeps the summaries, compacts and rewrites summary files.
import { constants as bufferConstants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { constants, promises as fs, fstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  SessionNotFoundError,
  StoreCorruptError,
} from '../../errors.js';
import { copyJson } from '../../internal/clone.js';
import type { DirLock } from '../../internal/dir-lock.js';
import { errnoCode, NOFOLLOW, readRange, syncDirectory, writeAll, writeFd } from '../../internal/files.js';
import { type EncodedLine, SCAN_CHUNK_BYTES, scanLines } from '../../internal/record-lines.js';
import { type Logger, silentLogger } from '../../logger.js';
import {
  applyPatch,
  assertSessionId,
  countMessages,
  type Message,
  OPTIONAL_SESSION_FIELDS,
  type Session,
  type SessionItem,
  type SessionPatch,
  type SessionSummary,
} from '../../schemas.js';
import type { ListOptions, Page } from '../../store.js';
import { DefinedStore } from '../define-store.js';
import type { BatchAppendDriver, ListingDriver } from '../driver.js';
import { pageSortedSummaries } from '../paging.js';
import { type AppendHandle, AppendHandles, SessionCache } from './caches.js';
import { FileEventLog, type FileEventLogOptions } from './event-log.js';
import {
  appendLine,
  encodeSessionName,
  encodeSummaryFile,
  messageLine,
  patchLine,
  patchSummary,
  Replay,
  SESSIONS,
  sessionLine,
  splitPatch,
} from './format.js';
import {
  type Entry,
  openDirectory,
  openRegular,
  type ReadLimits,
  recoverSession,
  reportDamage,
  StorePaths,
  toSessionError,
  unavailable,
} from './recovery.js';

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
   *   a file written at that moment may come back damaged: reported as `STORE_CORRUPT`).
   * @default 'fsync'
   */
  durability?: FileStoreDurability;
  /**
   * The largest session log `getSession` reads, in bytes. A larger session rejects with
   * `STORE_UNAVAILABLE` naming this limit (it stays listed, and can be deleted or exported by a
   * store with a higher limit). No single record may exceed what fits in one string
   * (`buffer.constants.MAX_STRING_LENGTH`, about 512 MiB) whatever the limit.
   * @default 256 MiB
   */
  maxSessionBytes?: number;
  /**
   * How much decoded session data the store keeps between calls, counted in bytes of the logs it
   * was decoded from (in memory a session takes about 2 to 4 times its log). A session is kept once
   * it is written or read a second time; the least recently used go first, and a session whose log
   * is larger than this is never kept. `0` keeps nothing: every `getSession` decodes the log again.
   * @default 32 MiB
   */
  cacheBytes?: number;
  /** Receives warnings (a damaged session, a leftover file) and debug notes. Silent by default. */
  logger?: Logger;
  /**
   * Keep sessions' events in `<directory>/events` ({@link FileStore.eventLog}, a `FileEventLog`),
   * which a `SessionManager` on this store then uses: a client reconnecting after a restart
   * replays what it missed. `true`, or the log's options. Off by default (events in memory).
   */
  eventLog?: boolean | Omit<FileEventLogOptions, 'directory'>;
  /** @internal Thresholds, lowered by tests to exercise compaction, summary rewrites and streaming. */
  tuning?: { compactMinBytes?: number; summaryEveryBytes?: number; chunkBytes?: number };
}

/** Options of {@link FileStore.repairSession}. */
export interface RepairOptions {
  /**
   * What to keep: `'last-valid-record'` keeps the log up to the end of its last record that reads
   * back and fits the ones before it, and drops everything after.
   */
  truncateTo: 'last-valid-record';
}

/** What {@link FileStore.repairSession} did. */
export interface RepairReport {
  /** The repaired session. */
  sessionId: string;
  /** Bytes of the log kept. */
  keptBytes: number;
  /** Bytes dropped from the log (0: the log was sound, nothing was changed). */
  droppedBytes: number;
  /** Where the log was copied, untouched, before it was cut (absent when nothing was dropped). */
  backup?: string;
}

/** One session {@link FileStore.verify} found unusable. */
export interface DamagedSession {
  /** The session's id. */
  sessionId: string;
  /** `STORE_CORRUPT` (its files do not hold what the store wrote) or `STORE_UNAVAILABLE`. */
  code: ErrorCode;
  /** The file at fault. */
  path: string | undefined;
  /** What is wrong. */
  message: string;
}

/** What {@link FileStore.verify} found. */
export interface VerifyReport {
  /** How many sessions were checked. */
  checked: number;
  /** Every session that cannot be used, with why. */
  damaged: DamagedSession[];
}

// A summary file is rewritten once its log has grown this much, which bounds what an open after a
// crash must read to rebuild the summary: the log tail after the offset the summary describes.
const SUMMARY_EVERY_BYTES = 256 * 1024;
// Compaction rewrites a log whose patch and message-update lines exceed this and half its size.
const COMPACT_MIN_BYTES = 1024 * 1024;
const OPEN_CONCURRENCY = 32;
const DEFAULT_MAX_SESSION_BYTES = 256 * 1024 * 1024;
const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;
// Append handles kept open: far below any file-descriptor limit, enough for the sessions in use.
const APPEND_HANDLES = 64;
// With 'fsync', logs are written with O_DSYNC: write and sync are one system call, one trip through
// the thread pool. Where the flag does not exist, each write is followed by fdatasync.
const DSYNC = constants.O_DSYNC ?? 0;
// One line is decoded as one string: with the chunk it is read with, it must fit.
const MAX_LINE_BYTES = bufferConstants.MAX_STRING_LENGTH - SCAN_CHUNK_BYTES;

class FileDriver implements BatchAppendDriver, ListingDriver {
  readonly name = 'file';
  // Every session read is a copy made for that call (of the decoded session kept, or just decoded).
  readonly freshReads = true;
  readonly paths: StorePaths;
  readonly #sync: boolean;
  readonly #logger: Logger;
  readonly #compactMinBytes: number;
  readonly #summaryEveryBytes: number;
  readonly #maxSessionBytes: number;
  readonly #limits: ReadLimits;
  #entries = new Map<string, Entry>();
  /** Sessions that cannot be used: STORE_CORRUPT until repaired or deleted, STORE_UNAVAILABLE retried. */
  #damaged = new Map<string, AgentSessionsError>();
  /** Summaries in listing order, rebuilt on the first listing after a write. */
  #sorted: SessionSummary[] | undefined;
  #opening: Promise<void> | undefined;
  /** Set once an open succeeded: the write path then skips waiting on {@link FileDriver.ready}. */
  #opened = false;
  #lock: DirLock | undefined;
  readonly #handles = new AppendHandles(APPEND_HANDLES);
  readonly #cache: SessionCache;
  /** Set once the directory lock was found gone: every later write is refused with it. */
  #lockLost: AgentSessionsError | undefined;

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
    const maxSessionBytes = options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES;
    if (!Number.isSafeInteger(maxSessionBytes) || maxSessionBytes < 1) {
      throw new InvalidArgumentError(`invalid FileStore maxSessionBytes ${String(maxSessionBytes)}`, {
        issues: [{ path: ['maxSessionBytes'], message: 'expected a positive integer' }],
      });
    }
    const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) {
      throw new InvalidArgumentError(`invalid FileStore cacheBytes ${String(cacheBytes)}`, {
        issues: [{ path: ['cacheBytes'], message: 'expected a non-negative integer' }],
      });
    }
    this.#cache = new SessionCache(cacheBytes);
    const directory = resolve(options.directory);
    this.paths = new StorePaths(directory, join(directory, SESSIONS));
    this.#sync = durability === 'fsync';
    this.#logger = options.logger ?? silentLogger;
    this.#compactMinBytes = options.tuning?.compactMinBytes ?? COMPACT_MIN_BYTES;
    this.#summaryEveryBytes = options.tuning?.summaryEveryBytes ?? SUMMARY_EVERY_BYTES;
    this.#maxSessionBytes = maxSessionBytes;
    this.#limits = {
      maxLineBytes: Math.min(MAX_LINE_BYTES, maxSessionBytes),
      chunkBytes: options.tuning?.chunkBytes ?? SCAN_CHUNK_BYTES,
    };
  }

  /** Opens the store once: takes the lock and recovers every session. A failed open is retried by the next call. */
  ready(): Promise<void> {
    if (!this.#opening) {
      const opening = openDirectory(this.paths, {
        sync: this.#sync,
        logger: this.#logger,
        limits: this.#limits,
      }).then((opened) => {
        this.#entries = opened.entries;
        this.#damaged = opened.damaged;
        this.#sorted = undefined;
        this.#lock = opened.lock;
        this.#opened = true;
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
    const entry = await this.#entry(id);
    if (!entry) return undefined;
    const { session, kept } = await this.#session(entry);
    return kept ? copyJson(session) : session;
  }

  async readSummary(id: string): Promise<SessionSummary | undefined> {
    if (!this.#opened) await this.ready();
    return (this.#damaged.size === 0 ? this.#entries.get(id) : await this.#entry(id))?.summary;
  }

  async summaries(): Promise<Iterable<SessionSummary>> {
    await this.ready();
    return [...this.#entries.values()].map((entry) => entry.summary);
  }

  async list(options: ListOptions): Promise<Page<SessionSummary>> {
    await this.ready();
    this.#sorted ??= [...this.#entries.values()]
      // Listing order (compareListPosition) on the parsed times kept in each entry: no date is parsed
      // per comparison.
      .sort((a, b) => (a.time !== b.time ? b.time - a.time : a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      .map((entry) => entry.summary);
    return pageSortedSummaries(this.#sorted, options);
  }

  async write(session: Session, summary: SessionSummary): Promise<void> {
    await this.ready();
    const existing = await this.#entry(session.id);
    const line = sessionLine(session);
    if (existing) {
      // A whole-session write of a stored session (not made by defineStore for this driver, whose
      // writes are incremental): the log is replaced by one record, like a compaction.
      await this.#replaceLog(existing, line);
      this.#cache.set(session.id, session, line.length);
      existing.summary = summary;
      existing.overwriteBytes = 0;
      this.#touch(existing, session.updatedAt);
      await this.#writeSummary(existing);
      return;
    }
    await this.#create(session.id, session, line, summary);
  }

  append(id: string, items: SessionItem[], updatedAt: string): Promise<boolean> {
    return this.appendMany(id, [{ items, updatedAt }]);
  }

  // Group commit: the appends are one record each, written with one write (and one sync).
  async appendMany(
    id: string,
    appends: readonly { items: SessionItem[]; updatedAt: string }[],
  ): Promise<boolean> {
    if (!this.#opened) await this.ready();
    // No damaged session: the entry is known without an await (#entry only awaits to retry one).
    const entry = this.#damaged.size === 0 ? this.#entries.get(id) : await this.#entry(id);
    if (!entry) return false;
    const last = appends.at(-1);
    if (!last) return true;
    await this.#append(
      entry,
      appends.map((append) => appendLine(append.updatedAt, append.items)),
      false,
    );
    const kept = this.#cache.peek(id);
    for (const append of appends) {
      entry.summary.messageCount += countMessages(append.items);
      if (kept) for (const item of append.items) kept.items.push(item);
    }
    if (kept) {
      kept.updatedAt = last.updatedAt;
      this.#cache.resize(id, entry.logSize);
    }
    this.#touch(entry, last.updatedAt);
    if (this.#needsMaintenance(entry)) await this.#maintain(entry);
    return true;
  }

  async patch(id: string, patch: SessionPatch, updatedAt: string): Promise<boolean> {
    await this.ready();
    const entry = await this.#entry(id);
    if (!entry) return false;
    const { set, unset } = splitPatch(patch);
    await this.#append(entry, [patchLine(updatedAt, set, unset)], true);
    patchSummary(entry.summary, set, unset);
    const kept = this.#cache.peek(id);
    if (kept) {
      applyPatch(kept, set);
      for (const key of unset) {
        if (OPTIONAL_SESSION_FIELDS.has(key)) delete (kept as Record<string, unknown>)[key];
      }
      kept.updatedAt = updatedAt;
      this.#cache.resize(id, entry.logSize);
    }
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
    const entry = await this.#entry(id);
    if (!entry) return 'session';
    const line = messageLine(updatedAt, messageId, message);
    const { session } = await this.#session(entry);
    const index = session.items.findIndex((item) => item.kind === 'message' && item.message.id === messageId);
    if (index < 0) return 'message';
    await this.#append(entry, [line], true);
    const kept = this.#cache.peek(id);
    if (kept) {
      kept.items[index] = { kind: 'message', message };
      kept.updatedAt = updatedAt;
      this.#cache.resize(id, entry.logSize);
    }
    this.#touch(entry, updatedAt);
    await this.#maintain(entry);
    return true;
  }

  async remove(id: string): Promise<boolean> {
    await this.ready();
    const damaged = this.#damaged.get(id);
    if (!damaged && !this.#entries.has(id)) return false;
    this.#assertLockHeld();
    this.#forget(id);
    const name = encodeSessionName(id);
    // The summary first: a delete that stops half-way leaves a log without a summary (the session,
    // whole), never a summary whose log is gone. What is not ours to remove is refused, not deleted.
    await this.#removeFile(this.paths.summary(name));
    // The log is the record: once it is gone (and the directory synced) the session is gone.
    await this.#removeFile(this.paths.log(name));
    if (this.#sync) await syncDirectory(this.paths.sessions);
    this.#damaged.delete(id);
    if (this.#entries.delete(id)) this.#sorted = undefined;
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
      if (lock.held()) {
        const stale = [...this.#entries.values()].filter((entry) => entry.summarized !== entry.logSize);
        await pool(stale, (entry) =>
          this.#writeSummary(entry).catch((error: unknown) => {
            this.#logger.warn('file store: could not write a summary file', { sessionId: entry.id, error });
          }),
        );
      }
    } finally {
      await this.#handles.closeAll();
      this.#cache.clear();
      await lock.release();
      this.#lock = undefined;
    }
  }

  /** Cuts a damaged log back to its last valid record, keeping a copy of the whole file. */
  async repair(id: string, options: RepairOptions): Promise<RepairReport> {
    if (options?.truncateTo !== 'last-valid-record') {
      throw new InvalidArgumentError(`invalid repair truncateTo ${JSON.stringify(options?.truncateTo)}`, {
        issues: [{ path: ['truncateTo'], message: "expected 'last-valid-record'" }],
      });
    }
    await this.ready();
    if (!this.#damaged.has(id) && !this.#entries.has(id)) throw new SessionNotFoundError(id);
    this.#assertLockHeld();
    this.#forget(id);
    const name = encodeSessionName(id);
    const path = this.paths.log(name);
    const { handle, stat } = await openRegular(path, constants.O_RDONLY).catch((error: unknown) => {
      throw toSessionError(error, path) ?? error;
    });
    let keep = 0;
    try {
      // The longest prefix of whole records that replay: everything up to the first record that does
      // not decode or does not fit the ones before it.
      const replay = new Replay(path, id);
      let stopped = false;
      try {
        await scanLines(
          handle,
          0,
          stat.size,
          (lines) => {
            for (const line of lines) {
              if (stopped) return;
              try {
                replay.add([line]);
                keep = line.end;
              } catch {
                stopped = true;
              }
            }
          },
          { ...this.#limits, stopAtError: true },
        );
      } catch {
        // A record too long to read ends the valid prefix where it starts.
      }
      if (keep === 0) {
        throw new StoreCorruptError(
          path,
          'no record of the log can be read back, so nothing can be kept: deleteSession removes the session',
        );
      }
      if (keep === stat.size && !this.#damaged.has(id)) {
        return { sessionId: id, keptBytes: keep, droppedBytes: 0 };
      }
      const stamp = new Date().toISOString().replaceAll(':', '-');
      const backup = join(
        this.paths.sessions,
        `${name}.damaged-${stamp}-${randomBytes(3).toString('hex')}.bak`,
      );
      await this.#copyRange(handle, 0, stat.size, backup);
      const temp = this.#tempPath(name);
      await this.#copyRange(handle, 0, keep, temp);
      this.#assertLockHeld();
      // The summary goes first: it may describe the bytes being dropped.
      await this.#removeFile(this.paths.summary(name));
      await fs.rename(temp, path);
      if (this.#sync) await syncDirectory(this.paths.sessions);
      const entry = await recoverSession(this.paths, id, name, this.#logger, this.#limits);
      this.#damaged.delete(id);
      if (entry) this.#entries.set(id, entry);
      this.#sorted = undefined;
      this.#logger.warn('file store: session repaired: its log was cut after its last valid record', {
        sessionId: id,
        keptBytes: keep,
        droppedBytes: stat.size - keep,
        backup,
      });
      return { sessionId: id, keptBytes: keep, droppedBytes: stat.size - keep, backup };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** The ids of every session on disk, healthy or not. */
  async sessionIds(): Promise<string[]> {
    await this.ready();
    return [...new Set([...this.#entries.keys(), ...this.#damaged.keys()])];
  }

  /** Reads one session's whole log; its problem, if it has one. */
  async check(id: string): Promise<DamagedSession | undefined> {
    await this.ready();
    try {
      // Read from disk, whatever is kept: verify checks the files.
      const entry = await this.#entry(id);
      if (entry) await this.#decode(entry);
      return undefined;
    } catch (error) {
      if (!AgentSessionsError.isInstance(error)) throw error;
      const path = (error as { path?: unknown }).path;
      return {
        sessionId: id,
        code: error.code,
        path: typeof path === 'string' ? path : undefined,
        message: error.message,
      };
    }
  }

  // The entry of a healthy session, undefined for an unknown one. A damaged one throws its error;
  // one the file system refused before is tried again (the operator may have fixed it).
  async #entry(id: string): Promise<Entry | undefined> {
    const damaged = this.#damaged.get(id);
    if (damaged) {
      if (damaged.code !== ErrorCode.STORE_UNAVAILABLE) throw damaged;
      const name = encodeSessionName(id);
      try {
        const entry = await recoverSession(this.paths, id, name, this.#logger, this.#limits);
        this.#damaged.delete(id);
        if (entry) {
          this.#entries.set(id, entry);
          this.#sorted = undefined;
        }
        return entry;
      } catch (error) {
        const typed = toSessionError(error, this.paths.log(name)) ?? damaged;
        this.#damaged.set(id, typed);
        throw typed;
      }
    }
    return this.#entries.get(id);
  }

  #assertLockHeld(): void {
    if (this.#lockLost) throw this.#lockLost;
    if (this.#lock && !this.#lock.held()) {
      this.#lockLost = new AgentSessionsError(
        ErrorCode.STORE_LOCKED,
        `the lock of ${JSON.stringify(this.paths.directory)} was removed or replaced while this store held it: writes are refused (close this store and open the directory again)`,
      );
      this.#logger.error('file store: lost the directory lock; refusing writes', {
        directory: this.paths.directory,
      });
      throw this.#lockLost;
    }
  }

  // A create writes the whole first record to a temporary file and links it into place, so a crash
  // leaves either the complete log or only a temporary file: never a log without its record.
  async #create(id: string, session: Session, line: EncodedLine, summary: SessionSummary): Promise<void> {
    this.#assertLockHeld();
    const name = encodeSessionName(id);
    const path = this.paths.log(name);
    const summaryPath = this.paths.summary(name);
    await this.#removeFile(summaryPath);
    const temp = this.#tempPath(name);
    const handle = await fs.open(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
      0o600,
    );
    try {
      await writeAll(handle, Buffer.from(line.text));
      if (this.#sync) await handle.datasync();
    } finally {
      await handle.close().catch(() => {});
    }
    try {
      this.#assertLockHeld();
      await fs.link(temp, path);
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') {
        throw new StoreCorruptError(path, 'an unexpected file is in the way', { cause: error });
      }
      throw error;
    } finally {
      await fs.unlink(temp).catch(() => {});
    }
    if (this.#sync) await syncDirectory(this.paths.sessions);
    this.#cache.set(id, session, line.length);
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

  // Removes a store file; a missing one is fine. A directory is removed only when empty: anything
  // in it is not the store's to delete.
  async #removeFile(path: string): Promise<void> {
    try {
      await fs.unlink(path);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return;
      if (code === 'EISDIR' || code === 'EPERM') {
        const stat = await fs.lstat(path).catch(() => undefined);
        if (stat?.isDirectory()) {
          try {
            await fs.rmdir(path);
            return;
          } catch (rmdirError) {
            throw new StoreCorruptError(
              path,
              'a directory that is not empty is where a store file should be: remove it by hand',
              { cause: rmdirError },
            );
          }
        }
      }
      throw toSessionError(error, path) ?? error;
    }
  }

  #touch(entry: Entry, at: string): void {
    entry.summary.updatedAt = at;
    entry.time = Date.parse(at);
    this.#sorted = undefined;
  }

  #markDamaged(id: string, error: AgentSessionsError): void {
    this.#forget(id);
    if (this.#entries.delete(id)) this.#sorted = undefined;
    this.#damaged.set(id, error);
    reportDamage(this.#logger, id, error);
  }

  // Drops what is kept of a session's log: its append handle and its decoded session.
  #forget(id: string): void {
    this.#handles.drop(id);
    this.#cache.delete(id);
  }

  #tempPath(name: string): string {
    return this.paths.temp(name, randomBytes(6).toString('hex'));
  }

  async #copyRange(handle: fs.FileHandle, from: number, to: number, target: string): Promise<void> {
    const out = await fs.open(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
      0o600,
    );
    try {
      for (let position = from; position < to; ) {
        const chunk = await readRange(handle, position, Math.min(this.#limits.chunkBytes, to - position));
        if (chunk.length === 0) break;
        await writeAll(out, chunk);
        position += chunk.length;
      }
      if (this.#sync) await out.datasync();
    } catch (error) {
      await out.close().catch(() => {});
      await fs.unlink(target).catch(() => {});
      throw error;
    }
    await out.close();
  }

  // Appends lines with one write, through the session's cached handle. The log must be exactly as
  // this store left it: a size other than the one it recorded means another writer (a process that
  // took the lock over) or damage, and nothing is written; a size other than expected after the
  // write means another writer wrote at the same time, and the write is not acknowledged. A write
  // that fails is cut off again, so the next one starts where the log ended.
  async #append(entry: Entry, lines: readonly EncodedLine[], overwrite: boolean): Promise<void> {
    this.#assertLockHeld();
    const path = this.paths.log(entry.name);
    const data = Buffer.from(lines.length === 1 ? lines[0]!.text : lines.map((line) => line.text).join(''));
    const { slot, size, opened } = await this.#appendHandle(entry, path);
    const handle = slot.handle;
    let written = false;
    try {
      if (size !== entry.logSize) await this.#reconcile(entry, handle, size, path);
      // Checked again only after an await that did I/O: a kept handle's path reaches here without one.
      if (opened || size !== entry.logSize) this.#assertLockHeld();
      // One write, so a crash leaves the lines whole and at most the last one torn (no newline).
      entry.dirtyTail = true;
      entry.attempted = data;
      await writeFd(handle.fd, data);
      if (this.#sync && DSYNC === 0) await handle.datasync();
      written = true;
      const after = fstatSync(handle.fd).size;
      if (after !== entry.logSize + data.length) {
        this.#markDamaged(
          entry.id,
          new AgentSessionsError(
            ErrorCode.STORE_UNAVAILABLE,
            `another process wrote to ${JSON.stringify(path)} at the same time; the session is read again on its next use`,
          ),
        );
        throw new AgentSessionsError(
          ErrorCode.STORE_LOCKED,
          `another process wrote to ${JSON.stringify(path)} at the same time: this write is not acknowledged`,
        );
      }
      entry.dirtyTail = false;
      entry.attempted = undefined;
    } catch (error) {
      if (!written && entry.attempted === data) {
        // Nothing of a failed write is acknowledged: what reached the file is cut off now (or, if
        // that fails too, before the next write, which recognises the bytes as its own).
        try {
          await handle.truncate(entry.logSize);
          entry.dirtyTail = false;
          entry.attempted = undefined;
        } catch {}
      }
      this.#handles.drop(entry.id);
      throw error;
    } finally {
      this.#handles.release(slot);
    }
    entry.logSize += data.length;
    const last = lines.at(-1)!;
    entry.last = { crc: last.crc, length: last.length };
    if (overwrite) entry.overwriteBytes += data.length;
  }

  // The session's append handle and the log's size. A kept handle is checked with one fstat: a log
  // removed or replaced since (no link left) is opened again by its path, and one given another
  // hard link is refused, as when it is opened.
  async #appendHandle(
    entry: Entry,
    path: string,
  ): Promise<{ slot: AppendHandle; size: number; opened: boolean }> {
    const kept = this.#handles.take(entry.id);
    if (kept) {
      const stat = fstatSync(kept.handle.fd);
      if (stat.nlink === 1) return { slot: kept, size: stat.size, opened: false };
      this.#handles.release(kept);
      this.#handles.drop(entry.id);
    }
    const { handle, stat } = await this.#openForWrite(entry, path);
    return { slot: this.#handles.add(entry.id, handle), size: stat.size, opened: true };
  }

  async #openForWrite(entry: Entry, path: string): Promise<{ handle: fs.FileHandle; stat: Stats }> {
    try {
      return await openRegular(path, constants.O_RDWR | constants.O_APPEND | (this.#sync ? DSYNC : 0));
    } catch (error) {
      const typed =
        errnoCode(error) === 'ENOENT'
          ? new StoreCorruptError(path, 'the log is missing', { cause: error })
          : (toSessionError(error, path) ?? error);
      if (StoreCorruptError.isInstance(typed)) this.#markDamaged(entry.id, typed);
      throw typed;
    }
  }

  // The log's size is not the one recorded: a torn tail of this store's own (cut), or bytes this
  // store did not write (refused, and the session read again on its next use).
  async #reconcile(entry: Entry, handle: fs.FileHandle, size: number, path: string): Promise<void> {
    if (size < entry.logSize) {
      const error = new StoreCorruptError(
        path,
        `the log shrank from ${entry.logSize} to ${size} bytes: data was lost`,
      );
      this.#markDamaged(entry.id, error);
      throw error;
    }
    if (entry.dirtyTail && size - entry.logSize <= this.#limits.maxLineBytes) {
      const tail = await readRange(handle, entry.logSize, size - entry.logSize);
      // A torn tail (a crash), or the start of this store's own failed write.
      const attempted = entry.attempted;
      const own =
        attempted !== undefined &&
        tail.length <= attempted.length &&
        tail.equals(attempted.subarray(0, tail.length));
      if (own || !tail.includes(0x0a)) {
        await handle.truncate(entry.logSize);
        entry.dirtyTail = false;
        entry.attempted = undefined;
        return;
      }
    }
    this.#markDamaged(
      entry.id,
      new AgentSessionsError(
        ErrorCode.STORE_UNAVAILABLE,
        `${JSON.stringify(path)} holds ${size - entry.logSize} bytes this store did not write; the session is read again on its next use`,
      ),
    );
    throw new AgentSessionsError(
      ErrorCode.STORE_LOCKED,
      `${JSON.stringify(path)} was written by another process: nothing was written (read the session again)`,
    );
  }

  /** Most of the log is records that later ones overwrote: compacting it pays. */
  #needsCompaction(entry: Entry): boolean {
    return entry.overwriteBytes > this.#compactMinBytes && entry.overwriteBytes * 2 > entry.logSize;
  }

  /** The summary file is more than `summaryEveryBytes` of log behind. */
  #summaryStale(entry: Entry): boolean {
    return entry.logSize - Math.max(entry.summarized, 0) > this.#summaryEveryBytes;
  }

  #needsMaintenance(entry: Entry): boolean {
    return this.#needsCompaction(entry) || this.#summaryStale(entry);
  }

  // After a write: compact a log full of overwritten records, refresh a summary file gone stale.
  async #maintain(entry: Entry): Promise<void> {
    try {
      if (this.#needsCompaction(entry)) {
        await this.#replaceLog(entry, sessionLine((await this.#session(entry)).session));
        entry.overwriteBytes = 0;
        await this.#writeSummary(entry);
      } else if (this.#summaryStale(entry)) {
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

  // Replaces a log by one line: written to a temporary file, synced, renamed over the log. The
  // summary file is removed first, so it never describes a log it was not written for.
  async #replaceLog(entry: Entry, line: EncodedLine): Promise<void> {
    this.#assertLockHeld();
    // The kept handle is of the log being replaced.
    this.#handles.drop(entry.id);
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
    try {
      const path = this.paths.log(entry.name);
      const current = await fs.lstat(path);
      const foreign = current.size < entry.logSize || (!entry.dirtyTail && current.size !== entry.logSize);
      if (!current.isFile() || foreign) {
        throw new AgentSessionsError(
          ErrorCode.STORE_LOCKED,
          `${JSON.stringify(path)} changed under this store`,
        );
      }
      this.#assertLockHeld();
      await this.#removeFile(this.paths.summary(entry.name));
      entry.summarized = -1;
      await fs.rename(temp, path);
    } catch (error) {
      await fs.unlink(temp).catch(() => {});
      throw error;
    }
    if (this.#sync) await syncDirectory(this.paths.sessions);
    entry.logSize = line.length;
    entry.last = { crc: line.crc, length: line.length };
    entry.dirtyTail = false;
  }

  // The session as its log holds it: the one kept (`kept`: not to be changed or handed out), or
  // decoded now. A session decoded for the first time is not kept, so a single read costs one
  // decode and no copy; read again, it is kept (when it fits the cache) and copied from then on.
  async #session(entry: Entry): Promise<{ session: Session; kept: boolean }> {
    const kept = this.#cache.get(entry.id);
    if (kept) return { session: kept, kept: true };
    const session = await this.#decode(entry);
    if (!this.#cache.decodedBefore(entry.id)) return { session, kept: false };
    return { session, kept: this.#cache.set(entry.id, session, entry.logSize) };
  }

  // Reads and replays a session's log up to its acknowledged size, record by record.
  async #decode(entry: Entry): Promise<Session> {
    const path = this.paths.log(entry.name);
    if (entry.logSize > this.#maxSessionBytes) {
      throw unavailable(
        path,
        `is ${entry.logSize} bytes, more than this store reads (maxSessionBytes: ${this.#maxSessionBytes})`,
      );
    }
    try {
      const { handle } = await openRegular(path, constants.O_RDONLY).catch((error: unknown) => {
        throw errnoCode(error) === 'ENOENT' ? new StoreCorruptError(path, 'the log is missing') : error;
      });
      try {
        const replay = new Replay(path, entry.id);
        const { end } = await scanLines(handle, 0, entry.logSize, (lines) => replay.add(lines), this.#limits);
        if (end < entry.logSize) {
          throw new StoreCorruptError(
            path,
            `the log ends at byte ${end}, before its ${entry.logSize} written bytes`,
          );
        }
        return replay.session();
      } finally {
        await handle.close().catch(() => {});
      }
    } catch (error) {
      const typed = toSessionError(error, path);
      if (!typed) throw error;
      if (StoreCorruptError.isInstance(typed)) this.#markDamaged(entry.id, typed);
      throw typed;
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
      this.#assertLockHeld();
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
 * **Costs.** `appendItems`, `updateSession` and `updateMessage` each append one line with one
 * `write` through an append handle kept open per session (at most 64, least recently used closed
 * first); with `durability: 'fsync'` the log is opened with `O_DSYNC`, so that write is also the
 * sync. `appendItems` calls to one session queued while an earlier write of it runs are written
 * together (group commit): one record each, one `write`, one sync, call order kept, each resolving
 * once all are durable and all rejecting if that write fails. `createSession` and `deleteSession`
 * also sync the directory. A session written, or read a second time, is kept decoded (bounded by
 * {@link FileStoreOptions.cacheBytes}), so `getSession` copies it instead of reading the log again;
 * otherwise it reads one file, streamed record by record. `getSummary` and listings read none. When
 * patch and message-update lines outweigh the rest of a log (and exceed 1 MiB) the log is
 * compacted: rewritten as one line to a temporary file, synced, renamed over the log. Opening reads
 * each session's summary file and the log after the offset it describes.
 *
 * **Crash safety.** A write is acknowledged only after its whole line is in the file. A process
 * killed at any instant leaves at most one torn trailing line (no final newline) in a log: it was
 * never acknowledged, is ignored when read, and cut off before the next write. A group-committed
 * write killed half-way leaves a prefix of its records, in call order, none of them acknowledged. A create is written
 * to a temporary file and linked into place whole, so a create that never finished leaves only a
 * temporary file, removed on open. What survives a power loss depends on
 * {@link FileStoreOptions.durability}.
 *
 * **Damage is reported, never repaired by itself.** A record whose checksum does not match, records
 * that do not fit together, bytes after the last record that a crash cannot leave, a log that
 * replays to an older state than its summary file recorded (acknowledged writes are missing), a
 * log without a complete record, a symlink, FIFO, socket, device or directory where a log should
 * be, a log with more than one hard link: every call naming that session rejects with
 * `STORE_CORRUPT` (`StoreCorruptError`, `path` naming the file, the message saying what is wrong),
 * the damage is logged as a warning, listings skip the session, and nothing on disk is changed.
 * A file the operating system refuses to read (permissions, I/O errors) is `STORE_UNAVAILABLE` for
 * that session, tried again on its next use. Every other session keeps working. To act on damage:
 * {@link FileStore.verify} reports every damaged session, {@link FileStore.repairSession} cuts a log
 * back to its last valid record (keeping a copy), `deleteSession` removes a session.
 *
 * **Paths.** Ids are validated before any I/O and encoded into names of `[a-z0-9_.-]` inside the
 * directory. Files are opened with `O_NOFOLLOW` and `O_NONBLOCK` and checked to be regular files
 * with one link before they are read or written, and created with `O_EXCL`: a symlink, FIFO or hard
 * link planted in the directory is never followed, never blocks, and never leads outside.
 *
 * **Two processes.** The store takes an exclusive lock on the directory when it opens (on the
 * first call, or {@link FileStore.open}); a second store on the same directory, in this process or
 * another, rejects with `STORE_LOCKED` until the first one is closed or its process has died (a
 * zombie counts as dead). A lock left by a killed process is taken over safely, also when several
 * processes race for it. A lock held from another host (network file system) counts as held.
 * Before each write the store checks that its claim on the lock is still there: once it was
 * removed or replaced, every write rejects with `STORE_LOCKED`. A log found longer than this store
 * wrote it (another process wrote to it) is not written to either (`STORE_LOCKED`; the session is
 * read again on its next use).
 *
 * **Concurrency.** Writes to one session are applied one at a time in call order; different
 * sessions do not wait for each other.
 *
 * `close()` waits for pending calls, writes summary files and releases the lock; later calls reject
 * with `CLOSED`. Unexpected file-system failures (a full disk, an I/O error) reject with
 * `STORE_UNAVAILABLE`, the file-system error as `cause`.
 */
export class FileStore extends DefinedStore {
  readonly #files: FileDriver;
  /** The durable event log the store declares when `eventLog` was set; a manager on it uses it. */
  readonly eventLog: FileEventLog | undefined;

  constructor(options: FileStoreOptions) {
    const driver = new FileDriver(options);
    super(driver);
    this.#files = driver;
    const eventLog = options.eventLog;
    this.eventLog =
      eventLog === undefined || eventLog === false
        ? undefined
        : new FileEventLog({
            ...(options.durability === undefined ? {} : { durability: options.durability }),
            ...(options.logger === undefined ? {} : { logger: options.logger }),
            ...(eventLog === true ? {} : eventLog),
            directory: join(driver.paths.directory, 'events'),
          });
  }

  /** The directory this store owns. */
  get directory(): string {
    return this.#files.paths.directory;
  }

  /**
   * Opens the store now rather than on the first call: takes the directory lock and reads the
   * summaries. Idempotent. Rejects with `STORE_LOCKED` when another store holds the directory (a
   * later call tries again), `CLOSED` after {@link FileStore.close}. A damaged session does not fail
   * the open: it is reported (logged, and by {@link FileStore.verify}) and its calls reject.
   */
  async open(): Promise<void> {
    this.assertOpen();
    try {
      await this.#files.ready();
    } catch (error) {
      throw this.normalizeError(error, 'open');
    }
  }

  /**
   * Reads every session's whole log and reports every session that cannot be used, with the file
   * and what is wrong. Changes nothing on disk (sessions found damaged are skipped by listings from
   * then on). Reads run one session at a time, each in that session's queue.
   */
  async verify(): Promise<VerifyReport> {
    this.assertOpen();
    let ids: string[];
    try {
      ids = await this.#files.sessionIds();
    } catch (error) {
      throw this.normalizeError(error, 'verify');
    }
    const damaged: DamagedSession[] = [];
    for (const id of ids) {
      const problem = await this.exclusive(id, 'verify a session', () => this.#files.check(id));
      if (problem) damaged.push(problem);
    }
    return { checked: ids.length, damaged };
  }

  /**
   * Repairs a damaged session by cutting its log back to what can be kept: with
   * `truncateTo: 'last-valid-record'`, everything after the last record that reads back and fits
   * the records before it is dropped. The whole log is first copied, untouched, to
   * `<name>.damaged-<time>-<random>.bak` beside it (named in the report). A sound log is left as it
   * is (`droppedBytes: 0`). Rejects with `SESSION_NOT_FOUND`, `STORE_CORRUPT` when no record can be
   * kept (delete the session instead) or the file is not a regular file, `STORE_LOCKED` when this
   * store lost its lock.
   */
  async repairSession(id: string, options: RepairOptions): Promise<RepairReport> {
    this.assertOpen();
    assertSessionId(id);
    return this.exclusive(id, 'repair a session', () => this.#files.repair(id, options));
  }
}
