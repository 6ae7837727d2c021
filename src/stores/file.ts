import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { constants, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  invalidArgument,
  MessageNotFoundError,
  SessionExistsError,
  SessionNotFoundError,
  StoreCorruptError,
} from '../errors.js';
import { acquireDirLock, type DirLock } from '../internal/dir-lock.js';
import {
  type DecodedLine,
  decodeLines,
  type EncodedLine,
  encodeLine,
  LineError,
  lineHasChecksum,
} from '../internal/record-lines.js';
import { type Logger, silentLogger } from '../logger.js';
import {
  applyPatch,
  assertSessionId,
  countMessages,
  type Message,
  MessageSchema,
  OPTIONAL_SESSION_FIELDS,
  parsePatch,
  parseSession,
  SESSION_PATCH_FIELDS,
  type Session,
  type SessionItem,
  SessionItemSchema,
  type SessionPatch,
  type SessionSummary,
  SessionSummarySchema,
  toSummary,
} from '../schemas.js';
import {
  decodeCursor,
  type ListOptions,
  nextTimestamp,
  type Page,
  pageSortedSummaries,
  type Store,
  validateListOptions,
} from '../store.js';

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

// Line records of a session log. The first line is always a whole session ('session'); compaction
// rewrites the log as one such line.
type LogRecord =
  | { t: 'session'; session: Session }
  | { t: 'append'; at: string; items: SessionItem[] }
  | { t: 'patch'; at: string; set: SessionPatch; unset: string[] }
  | { t: 'message'; at: string; id: string; message: Message };

// What the store keeps in memory per healthy session: its summary and where its log ends.
interface Entry {
  id: string;
  /** The encoded file name, without extension. */
  name: string;
  summary: SessionSummary;
  /** `Date.parse(summary.updatedAt)`, for sorting. */
  time: number;
  /** Bytes of acknowledged complete lines. Anything after this offset is ignored. */
  logSize: number;
  /** The last complete line, so a summary file can prove which log state it describes. */
  last: { crc: number; length: number };
  /** Bytes of patch and message-update lines, which compaction would drop. */
  overwriteBytes: number;
  /** The log size the summary file on disk describes (-1: none). */
  summarized: number;
  /** The file holds bytes after `logSize` (a torn tail or a failed write) to cut before appending. */
  dirtyTail: boolean;
}

const LOG = '.log';
const SUMMARY = '.sum';
const TEMP = '.tmp';
const SESSIONS = 'sessions';
const LOCK = '.lock';
// A summary file is rewritten once its log has grown this much, which bounds what an open after a
// crash must read to rebuild the summary: the log tail after the offset the summary describes.
const SUMMARY_EVERY_BYTES = 256 * 1024;
// Compaction rewrites a log whose patch and message-update lines exceed this and half its size.
const COMPACT_MIN_BYTES = 1024 * 1024;
const OPEN_CONCURRENCY = 32;
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const SUMMARY_FIELDS = ['title', 'starred', 'workingDir', 'source', 'owner', 'usage'] as const;

// On-disk names are case-folding safe: `abc` and `ABC` are different sessions, so a name is the
// lowercased id plus, when the id has capitals, `.` and a base-36 bit mask of their positions.
// Ids only hold [A-Za-z0-9_-], so names hold no separator, no `..` and never start with a dot.
export function encodeSessionName(id: string): string {
  let mask = 0n;
  for (let index = 0; index < id.length; index++) {
    const code = id.charCodeAt(index);
    if (code >= 65 && code <= 90) mask |= 1n << BigInt(index);
  }
  const lower = id.toLowerCase();
  return mask === 0n ? lower : `${lower}.${mask.toString(36)}`;
}

/** The id a file name encodes, or undefined if no id is encoded that way. */
export function decodeSessionName(name: string): string | undefined {
  const match = /^([a-z0-9][a-z0-9_-]{0,127})(?:\.([0-9a-z]+))?$/.exec(name);
  if (!match) return undefined;
  const lower = match[1]!;
  let mask = 0n;
  if (match[2] !== undefined) {
    for (const char of match[2]) mask = mask * 36n + BigInt(Number.parseInt(char, 36));
  }
  let id = '';
  for (let index = 0; index < lower.length; index++) {
    const char = lower[index]!;
    id += (mask >> BigInt(index)) & 1n ? char.toUpperCase() : char;
  }
  return encodeSessionName(id) === name ? id : undefined;
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

async function writeAll(handle: fs.FileHandle, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
    offset += bytesWritten;
  }
}

async function readRange(handle: fs.FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let offset = 0;
  while (offset < length) {
    const { bytesRead } = await handle.read(buffer, offset, length - offset, position + offset);
    if (bytesRead === 0) break;
    offset += bytesRead;
  }
  return offset === length ? buffer : buffer.subarray(0, offset);
}

function copySummary(summary: SessionSummary): SessionSummary {
  return { ...summary, usage: { ...summary.usage } };
}

// Listing order: newest first, then id descending (the order of compareListPosition).
function compareKeys(aTime: number, aId: string, bTime: number, bId: string): number {
  if (aTime !== bTime) return bTime - aTime;
  if (aId === bId) return 0;
  return aId < bId ? 1 : -1;
}

function applyToSummary(
  summary: SessionSummary,
  set: Record<string, unknown>,
  unset: readonly string[],
): void {
  const target = summary as Record<string, unknown>;
  for (const key of SUMMARY_FIELDS) {
    if (Object.hasOwn(set, key)) {
      const value = set[key];
      target[key] = key === 'usage' ? { ...(value as SessionSummary['usage']) } : value;
    }
  }
  for (const key of unset) if ((SUMMARY_FIELDS as readonly string[]).includes(key)) delete target[key];
}

/**
 * A {@link Store} in a directory of files, for one process at a time (SPEC §3). Node only.
 *
 * **Layout.** `<directory>/sessions/<name>.log` is one append-only log per session, one
 * checksummed JSON line per write: the first line holds the whole session as created; later
 * lines hold appended items, metadata patches and message replacements, each with the
 * `updatedAt` it set. `<name>` is the id made safe for case-insensitive file systems (`abc` is
 * `abc`, `ABC` is `abc.7`). `<name>.sum` caches the session's summary and the log offset it
 * describes; it is only a cache (rewritten every 256 KiB of log and on `close()`, never synced)
 * and a missing or stale one is rebuilt from the log. `<directory>/.lock/` holds the lock.
 *
 * **Costs.** `appendItems`, `updateSession` and `updateMessage` each append one line and, with
 * `durability: 'fsync'`, sync it once (`fdatasync`). `createSession` and `deleteSession` also
 * sync the directory. `getSession` reads one file. `updateMessage` reads the session's log to find
 * the message. When patch and message-update lines outweigh the rest of a log (and exceed 1 MiB)
 * the log is compacted: rewritten as one line to a temporary file, synced, renamed over the log.
 * Opening reads each session's summary file and the log after the offset it describes; listing
 * then works from memory and never reads items, whatever their number.
 *
 * **Crash safety.** A write is acknowledged only after its whole line is in the file. A process
 * killed at any instant leaves at most one torn trailing line (no final newline) in a log: it was
 * never acknowledged, is ignored when read, and cut off before the next write. A log with no
 * complete line is a create that never finished and is removed on open. What survives a power
 * loss depends on {@link FileStoreOptions.durability}.
 *
 * **Damage.** A complete line whose checksum does not match (damaged, or edited by hand), a log
 * whose records do not fit together, a symlink or anything other than a regular file where a log
 * should be: every call naming that session rejects with `STORE_CORRUPT` ({@link StoreCorruptError},
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
 * with `CLOSED`. Unexpected file-system failures (a full disk, permissions) reject with the
 * file-system error itself.
 */
export class FileStore implements Store {
  readonly name = 'file';
  readonly #directory: string;
  readonly #sessionsDir: string;
  readonly #sync: boolean;
  readonly #logger: Logger;
  readonly #compactMinBytes: number;
  readonly #summaryEveryBytes: number;
  readonly #entries = new Map<string, Entry>();
  readonly #damaged = new Map<string, StoreCorruptError>();
  readonly #queues = new Map<string, Promise<void>>();
  /** Summaries in listing order, rebuilt on the first listing after a write. */
  #sorted: SessionSummary[] | undefined;
  #opening: Promise<void> | undefined;
  #lock: DirLock | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

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
    this.#directory = resolve(options.directory);
    this.#sessionsDir = join(this.#directory, SESSIONS);
    this.#sync = durability === 'fsync';
    this.#logger = options.logger ?? silentLogger;
    this.#compactMinBytes = options.tuning?.compactMinBytes ?? COMPACT_MIN_BYTES;
    this.#summaryEveryBytes = options.tuning?.summaryEveryBytes ?? SUMMARY_EVERY_BYTES;
  }

  /** The directory this store owns. */
  get directory(): string {
    return this.#directory;
  }

  /**
   * Opens the store now rather than on the first call: takes the directory lock and reads the
   * summaries. Idempotent. Rejects with `STORE_LOCKED` when another store holds the directory (a
   * later call tries again), `CLOSED` after {@link FileStore.close}.
   */
  async open(): Promise<void> {
    this.#assertOpen();
    await this.#ready();
  }

  async createSession(session: Session): Promise<void> {
    this.#assertOpen();
    assertSessionId((session as Partial<Session> | undefined)?.id);
    const parsed = parseSession(session);
    // Serialised now, so a caller mutating its object after the call changes nothing.
    const stored = parsed;
    const json = JSON.stringify({ t: 'session', session: stored });
    const summary = toSummary(stored, countMessages(stored.items));
    return this.#serial(parsed.id, async () => {
      const id = parsed.id;
      const damaged = this.#damaged.get(id);
      if (damaged) throw damaged;
      if (this.#entries.has(id)) {
        throw new SessionExistsError(id);
      }
      const name = encodeSessionName(id);
      const path = this.#logPath(name);
      await unlinkIfExists(this.#summaryPath(name));
      const line = encodeLine(json);
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
      if (this.#sync) await this.#syncDirectory(this.#sessionsDir);
      this.#setEntry({
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
    });
  }

  async getSession(id: string): Promise<Session> {
    this.#assertOpen();
    assertSessionId(id);
    return this.#serial(id, async () => this.#load(this.#entry(id)));
  }

  async listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    this.#assertOpen();
    // Validated before the store is opened: a bad limit or cursor touches nothing.
    validateListOptions(options);
    if (options?.cursor !== undefined) decodeCursor(options.cursor);
    await this.#ready();
    this.#sorted ??= [...this.#entries.values()]
      .sort((a, b) => compareKeys(a.time, a.id, b.time, b.id))
      .map((entry) => entry.summary);
    const page = pageSortedSummaries(this.#sorted, options);
    return { ...page, sessions: page.sessions.map(copySummary) };
  }

  async updateSession(id: string, patch: SessionPatch): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    const parsed = parsePatch(patch);
    const set: Record<string, unknown> = {};
    const unset: string[] = [];
    for (const key of SESSION_PATCH_FIELDS) {
      if (!Object.hasOwn(parsed, key)) continue;
      const value = parsed[key];
      if (value === undefined) {
        if (OPTIONAL_SESSION_FIELDS.has(key)) unset.push(key);
      } else set[key] = value;
    }
    const setJson = JSON.stringify(set);
    const unsetJson = JSON.stringify(unset);
    const summarySet = JSON.parse(setJson) as Record<string, unknown>;
    return this.#serial(id, async () => {
      const entry = this.#entry(id);
      const at = nextTimestamp(entry.summary.updatedAt);
      await this.#append(
        entry,
        `{"t":"patch","at":${JSON.stringify(at)},"set":${setJson},"unset":${unsetJson}}`,
        true,
      );
      applyToSummary(entry.summary, summarySet, unset);
      this.#touch(entry, at);
      await this.#maintain(entry);
    });
  }

  async appendItems(id: string, items: SessionItem[]): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    const result = SessionItemSchema.array().safeParse(items);
    if (!result.success) throw invalidArgument('session items', result.error);
    const itemsJson = JSON.stringify(result.data);
    const messages = countMessages(result.data);
    return this.#serial(id, async () => {
      const entry = this.#entry(id);
      const at = nextTimestamp(entry.summary.updatedAt);
      await this.#append(entry, `{"t":"append","at":${JSON.stringify(at)},"items":${itemsJson}}`, false);
      entry.summary.messageCount += messages;
      this.#touch(entry, at);
      await this.#maintain(entry);
    });
  }

  async updateMessage(id: string, messageId: string, message: Message): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    const result = MessageSchema.safeParse(message);
    if (!result.success) throw invalidArgument('message', result.error);
    const messageJson = JSON.stringify(result.data);
    return this.#serial(id, async () => {
      const entry = this.#entry(id);
      const session = await this.#load(entry);
      if (!session.items.some((item) => item.kind === 'message' && item.message.id === messageId)) {
        throw new MessageNotFoundError(id, messageId);
      }
      const at = nextTimestamp(entry.summary.updatedAt);
      await this.#append(
        entry,
        `{"t":"message","at":${JSON.stringify(at)},"id":${JSON.stringify(String(messageId))},"message":${messageJson}}`,
        true,
      );
      this.#touch(entry, at);
      await this.#maintain(entry);
    });
  }

  async deleteSession(id: string): Promise<void> {
    this.#assertOpen();
    assertSessionId(id);
    return this.#serial(id, async () => {
      const damaged = this.#damaged.get(id);
      if (!damaged && !this.#entries.has(id)) throw new SessionNotFoundError(id);
      const name = encodeSessionName(id);
      // The log is the record: once it is gone (and the directory synced) the session is gone.
      await unlinkIfExists(this.#logPath(name));
      if (this.#sync) await this.#syncDirectory(this.#sessionsDir);
      this.#damaged.delete(id);
      if (this.#entries.delete(id)) this.#sorted = undefined;
      await unlinkIfExists(this.#summaryPath(name));
    });
  }

  /**
   * Waits for pending calls, writes summary files, releases the directory lock. Later calls reject
   * with `CLOSED`. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = this.#shutdown();
    }
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    // A call made just before close() may not have started opening yet; it opens the store (and
    // takes the lock) when it runs, so let it run before looking for a lock to release.
    while (this.#queues.size > 0) await Promise.all(this.#queues.values());
    try {
      await this.#opening;
    } catch {
      return;
    }
    if (!this.#lock) return;
    try {
      while (this.#queues.size > 0) await Promise.all(this.#queues.values());
      const stale = [...this.#entries.values()].filter((entry) => entry.summarized !== entry.logSize);
      await this.#pool(stale, (entry) =>
        this.#writeSummary(entry).catch((error: unknown) => {
          this.#logger.warn('file store: could not write a summary file', { sessionId: entry.id, error });
        }),
      );
    } finally {
      await this.#lock.release();
      this.#lock = undefined;
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentSessionsError(ErrorCode.CLOSED, 'the file store is closed');
  }

  #ready(): Promise<void> {
    if (!this.#opening) {
      const opening = this.#open();
      this.#opening = opening;
      // A failed open (STORE_LOCKED) is tried again by the next call.
      opening.catch(() => {
        if (this.#opening === opening) this.#opening = undefined;
      });
    }
    return this.#opening;
  }

  // Runs `task` after every earlier task of the same session; different sessions run concurrently.
  #serial<T>(id: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(id) ?? Promise.resolve();
    const run = previous.then(async () => {
      await this.#ready();
      return task();
    });
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#queues.set(id, tail);
    void tail.then(() => {
      if (this.#queues.get(id) === tail) this.#queues.delete(id);
    });
    return run;
  }

  #entry(id: string): Entry {
    const damaged = this.#damaged.get(id);
    if (damaged) throw damaged;
    const entry = this.#entries.get(id);
    if (!entry) throw new SessionNotFoundError(id);
    return entry;
  }

  #setEntry(entry: Entry): void {
    this.#entries.set(entry.id, entry);
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

  #logPath(name: string): string {
    return join(this.#sessionsDir, name + LOG);
  }

  #summaryPath(name: string): string {
    return join(this.#sessionsDir, name + SUMMARY);
  }

  #tempPath(name: string): string {
    return join(this.#sessionsDir, `${name}.${randomBytes(6).toString('hex')}${TEMP}`);
  }

  async #syncDirectory(path: string): Promise<void> {
    if (process.platform === 'win32') return;
    const handle = await fs.open(path, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async #append(entry: Entry, json: string, overwrite: boolean): Promise<EncodedLine> {
    const line = encodeLine(json);
    const path = this.#logPath(entry.name);
    const handle = await this.#openLog(path, constants.O_WRONLY | constants.O_APPEND);
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
    return line;
  }

  async #openLog(path: string, flags: number): Promise<fs.FileHandle> {
    try {
      return await fs.open(path, flags | NOFOLLOW);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ELOOP' || code === 'ENOENT' || code === 'EISDIR') {
        throw new StoreCorruptError(path, code === 'ENOENT' ? 'the file is missing' : 'not a regular file', {
          cause: error,
        });
      }
      throw error;
    }
  }

  // After a write: compact a log full of overwritten records, refresh a summary file gone stale.
  async #maintain(entry: Entry): Promise<void> {
    try {
      if (entry.overwriteBytes > this.#compactMinBytes && entry.overwriteBytes * 2 > entry.logSize) {
        await this.#compact(entry);
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

  async #compact(entry: Entry): Promise<void> {
    const session = await this.#load(entry);
    const line = encodeLine(JSON.stringify({ t: 'session', session }));
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
    await fs.rename(temp, this.#logPath(entry.name));
    if (this.#sync) await this.#syncDirectory(this.#sessionsDir);
    entry.logSize = line.length;
    entry.last = { crc: line.crc, length: line.length };
    entry.overwriteBytes = 0;
    entry.dirtyTail = false;
    await this.#writeSummary(entry);
  }

  // Reads and replays a session's log up to its acknowledged size.
  async #load(entry: Entry): Promise<Session> {
    const path = this.#logPath(entry.name);
    let buffer: Buffer;
    try {
      const handle = await this.#openLog(path, constants.O_RDONLY);
      try {
        buffer = await readRange(handle, 0, entry.logSize);
      } finally {
        await handle.close().catch(() => {});
      }
      if (buffer.length < entry.logSize) throw new StoreCorruptError(path, 'the file was truncated');
      const { lines } = decodeLines(buffer);
      return replay(lines, path);
    } catch (error) {
      const corrupt = toCorrupt(error, path);
      if (!corrupt) throw error;
      this.#markDamaged(entry.id, corrupt);
      throw corrupt;
    }
  }

  async #writeSummary(entry: Entry): Promise<void> {
    const record = {
      v: 1,
      logSize: entry.logSize,
      lastCrc: entry.last.crc,
      lastLength: entry.last.length,
      overwriteBytes: entry.overwriteBytes,
      summary: entry.summary,
    };
    const line = encodeLine(JSON.stringify(record));
    const temp = this.#tempPath(entry.name);
    // Not synced: the summary is a cache, checked against the log when read.
    await fs.writeFile(temp, line.text, {
      flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
      mode: 0o600,
    });
    try {
      await fs.rename(temp, this.#summaryPath(entry.name));
    } catch (error) {
      await fs.unlink(temp).catch(() => {});
      throw error;
    }
    entry.summarized = record.logSize;
  }

  async #pool<T>(values: readonly T[], work: (value: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < values.length) await work(values[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, values.length) }, worker));
  }

  async #open(): Promise<void> {
    await fs.mkdir(this.#directory, { recursive: true });
    const lock = await acquireDirLock(join(this.#directory, LOCK));
    try {
      await fs.mkdir(this.#sessionsDir, { recursive: true });
      const stat = await fs.lstat(this.#sessionsDir);
      if (!stat.isDirectory()) throw new StoreCorruptError(this.#sessionsDir, 'not a directory');
      if (this.#sync) await this.#syncDirectory(this.#directory);
      const logs: Dirent[] = [];
      const summaries = new Set<string>();
      const names = new Set<string>();
      for (const dirent of await fs.readdir(this.#sessionsDir, { withFileTypes: true })) {
        const file = dirent.name;
        if (file.endsWith(TEMP)) {
          // A temporary file left by a crash: it never replaced anything.
          await unlinkIfExists(join(this.#sessionsDir, file));
        } else if (file.endsWith(SUMMARY)) {
          summaries.add(file.slice(0, -SUMMARY.length));
        } else if (file.endsWith(LOG)) {
          logs.push(dirent);
          names.add(file.slice(0, -LOG.length));
        }
      }
      this.#entries.clear();
      this.#damaged.clear();
      this.#sorted = undefined;
      await this.#pool(logs, async (dirent) => {
        const name = dirent.name.slice(0, -LOG.length);
        const id = decodeSessionName(name);
        if (id === undefined) {
          this.#logger.warn('file store: ignoring a file that names no session', { file: dirent.name });
          return;
        }
        const path = this.#logPath(name);
        if (!dirent.isFile()) {
          this.#markDamaged(id, new StoreCorruptError(path, 'not a regular file'));
          return;
        }
        try {
          const entry = await this.#recover(id, name, summaries.has(name));
          if (entry) this.#entries.set(id, entry);
        } catch (error) {
          const corrupt = toCorrupt(error, path);
          if (!corrupt) throw error;
          this.#markDamaged(id, corrupt);
        }
      });
      for (const name of summaries) {
        if (!names.has(name)) await unlinkIfExists(this.#summaryPath(name));
      }
      this.#lock = lock;
    } catch (error) {
      await lock.release().catch(() => {});
      throw error;
    }
  }

  // Rebuilds a session's entry from its summary file and the log after it, or from the whole log.
  // Undefined when the log holds no complete line: a create that never finished.
  async #recover(id: string, name: string, hasSummary: boolean): Promise<Entry | undefined> {
    const path = this.#logPath(name);
    const handle = await this.#openLog(path, constants.O_RDONLY);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new StoreCorruptError(path, 'not a regular file');
      const size = stat.size;
      const cached = hasSummary ? await this.#readSummary(id, name) : undefined;
      if (cached && cached.logSize <= size && cached.lastLength <= cached.logSize) {
        const from = cached.logSize - cached.lastLength;
        const buffer = await readRange(handle, from, size - from);
        if (lineHasChecksum(buffer.subarray(0, cached.lastLength), cached.lastCrc)) {
          const entry: Entry = {
            id,
            name,
            summary: cached.summary,
            time: Date.parse(cached.summary.updatedAt),
            logSize: cached.logSize,
            last: { crc: cached.lastCrc, length: cached.lastLength },
            overwriteBytes: cached.overwriteBytes,
            summarized: cached.logSize,
            dirtyTail: false,
          };
          const { lines, end } = decodeLines(buffer.subarray(cached.lastLength), cached.logSize);
          for (const line of lines) applyToEntry(entry, line, path);
          entry.dirtyTail = end < size;
          return entry;
        }
        this.#logger.debug('file store: stale summary file, reading the whole log', { sessionId: id });
      }
      const buffer = await readRange(handle, 0, size);
      const { lines, end } = decodeLines(buffer);
      const first = lines[0];
      if (!first) {
        await unlinkIfExists(path);
        await unlinkIfExists(this.#summaryPath(name));
        return undefined;
      }
      const record = first.value as LogRecord;
      if (record.t !== 'session' || record.session?.id !== id) {
        throw new StoreCorruptError(path, 'the first line is not this session');
      }
      const session = record.session;
      const summary = toSummary(session, countMessages(session.items));
      const entry: Entry = {
        id,
        name,
        summary,
        time: Date.parse(summary.updatedAt),
        logSize: first.end,
        last: { crc: first.crc, length: first.end - first.start },
        overwriteBytes: 0,
        summarized: -1,
        dirtyTail: false,
      };
      for (const line of lines.slice(1)) applyToEntry(entry, line, path);
      entry.dirtyTail = end < size;
      return entry;
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async #readSummary(
    id: string,
    name: string,
  ): Promise<
    | {
        logSize: number;
        lastCrc: number;
        lastLength: number;
        overwriteBytes: number;
        summary: SessionSummary;
      }
    | undefined
  > {
    try {
      const buffer = await fs.readFile(this.#summaryPath(name), { flag: constants.O_RDONLY | NOFOLLOW });
      const { lines } = decodeLines(buffer);
      const value = lines[0]?.value as Record<string, unknown> | undefined;
      if (lines.length !== 1 || !value || value.v !== 1) return undefined;
      const numbers = ['logSize', 'lastCrc', 'lastLength', 'overwriteBytes'].every(
        (key) => Number.isSafeInteger(value[key]) && (value[key] as number) >= 0,
      );
      const summary = SessionSummarySchema.safeParse(value.summary);
      if (!numbers || !summary.success || summary.data.id !== id) return undefined;
      return {
        logSize: value.logSize as number,
        lastCrc: value.lastCrc as number,
        lastLength: value.lastLength as number,
        overwriteBytes: value.overwriteBytes as number,
        summary: summary.data,
      };
    } catch (error) {
      // Missing, damaged, a symlink: the log is the record, so rebuild from it.
      this.#logger.debug('file store: unreadable summary file, reading the whole log', {
        sessionId: id,
        error: errnoCode(error) ?? String(error),
      });
      return undefined;
    }
  }
}

// True when `buffer` is exactly one complete line with this checksum: the line a summary file says
// its log offset ends with. A summary that fails this describes another state of the log.
function toCorrupt(error: unknown, path: string): StoreCorruptError | undefined {
  if (error instanceof StoreCorruptError) return error;
  if (error instanceof LineError) return new StoreCorruptError(path, error.message, { cause: error });
  return undefined;
}

// Applies one log line to a summary entry (open): only what listings need.
function applyToEntry(entry: Entry, line: DecodedLine, path: string): void {
  const record = line.value as LogRecord;
  switch (record.t) {
    case 'append':
      entry.summary.messageCount += countMessages(record.items);
      break;
    case 'patch':
      applyToSummary(entry.summary, record.set as Record<string, unknown>, record.unset);
      entry.overwriteBytes += line.end - line.start;
      break;
    case 'message':
      entry.overwriteBytes += line.end - line.start;
      break;
    default:
      throw new StoreCorruptError(path, `unexpected record at byte ${line.start}`);
  }
  entry.summary.updatedAt = record.at;
  entry.time = Date.parse(record.at);
  entry.logSize = line.end;
  entry.last = { crc: line.crc, length: line.end - line.start };
}

// Rebuilds a session from its log lines. The lines' checksums matched, so their JSON is what this
// store validated and wrote; only how the records fit together is checked here.
function replay(lines: readonly DecodedLine[], path: string): Session {
  const first = lines[0]?.value as LogRecord | undefined;
  if (first?.t !== 'session') throw new StoreCorruptError(path, 'the first line is not a session');
  const session = first.session;
  const items = session.items;
  for (let index = 1; index < lines.length; index++) {
    const record = lines[index]!.value as LogRecord;
    switch (record.t) {
      case 'append':
        for (const item of record.items) items.push(item);
        break;
      case 'patch':
        applyPatch(session, record.set);
        for (const key of record.unset) {
          if (OPTIONAL_SESSION_FIELDS.has(key)) delete (session as Record<string, unknown>)[key];
        }
        break;
      case 'message': {
        const at = items.findIndex((item) => item.kind === 'message' && item.message.id === record.id);
        if (at < 0)
          throw new StoreCorruptError(path, `update of unknown message at byte ${lines[index]!.start}`);
        items[at] = { kind: 'message', message: record.message };
        break;
      }
      default:
        throw new StoreCorruptError(path, `unexpected record at byte ${lines[index]!.start}`);
    }
    session.updatedAt = record.at;
  }
  return session;
}
