// FileStore's recovery: opening a store directory (the lock, what a crash left) and rebuilding
// each session's summary from its summary file and the log after it, or from the whole log.
//
// Damage is reported, never repaired here: a session whose files do not hold what the store wrote
// is STORE_CORRUPT (or STORE_UNAVAILABLE when the file system refuses to read it), logged, and left
// on disk exactly as found. What a crash of this store can leave is told apart from damage with what
// the store itself wrote:
// - a create writes its log under a temporary name and links it into place whole, so a create that
//   never finished leaves only a `.tmp` file (removed here), never a log;
// - a write that never finished leaves a torn tail (see `judgeTail`), cut before the next write;
// - every write moves `updatedAt` forward, and a summary file records the state it describes: a log
//   that replays to an older state than its summary file lost acknowledged writes.
import type { Dirent, Stats } from 'node:fs';
import { constants, promises as fs, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { AgentSessionsError, ErrorCode, StoreCorruptError } from '../../errors.js';
import { acquireDirLock, type DirLock } from '../../internal/dir-lock.js';
import { errnoCode, NOFOLLOW, readRange, syncDirectory } from '../../internal/files.js';
import {
  type DecodedLine,
  LineError,
  LineTooLongError,
  lineHasChecksum,
  scanLines,
} from '../../internal/record-lines.js';
import type { Logger } from '../../logger.js';
import { countMessages, toSummary } from '../../schemas.js';
import {
  applyToSummary,
  decodeSessionName,
  decodeSummaryFile,
  judgeTail,
  LOCK,
  LOG,
  readRecord,
  SUMMARY,
  type SummaryState,
  TEMP,
} from './format.js';

const OPEN_CONCURRENCY = 32;
const NONBLOCK = constants.O_NONBLOCK ?? 0;
// A summary file holds one summary (a title, a few fields); anything larger was not written by us.
const MAX_SUMMARY_FILE_BYTES = 16 * 1024 * 1024;

/** What the store keeps in memory per healthy session: its summary and where its log ends. */
export interface Entry extends SummaryState {
  id: string;
  /** The encoded file name, without extension. */
  name: string;
  /** `Date.parse(summary.updatedAt)`, for sorting. */
  time: number;
  /** The log size the summary file on disk describes (-1: none). */
  summarized: number;
  /** The file holds a torn tail after `logSize` (an unfinished write) to cut before appending. */
  dirtyTail: boolean;
  /** The bytes of this store's write in progress, or of its last write that failed. */
  attempted?: Buffer | undefined;
}

/** Limits of reading. */
export interface ReadLimits {
  /** The longest record read, in bytes. */
  maxLineBytes: number;
  /** Bytes read from a file at a time. */
  chunkBytes: number;
}

/** The paths of one store directory. */
export class StorePaths {
  /** The store's directory. */
  readonly directory: string;
  /** `<directory>/sessions`. */
  readonly sessions: string;
  constructor(directory: string, sessions: string) {
    this.directory = directory;
    this.sessions = sessions;
  }
  /** A session's log. */
  log(name: string): string {
    return join(this.sessions, name + LOG);
  }
  /** A session's summary file. */
  summary(name: string): string {
    return join(this.sessions, name + SUMMARY);
  }
  /** A fresh temporary file for a session. */
  temp(name: string, random: string): string {
    return join(this.sessions, `${name}.${random}${TEMP}`);
  }
}

/** `STORE_UNAVAILABLE` for a file the file system would not let us use. */
export function unavailable(path: string, detail: string, cause?: unknown): AgentSessionsError {
  return new AgentSessionsError(ErrorCode.STORE_UNAVAILABLE, `store file ${JSON.stringify(path)} ${detail}`, {
    cause,
  });
}

function kindOf(stat: Stats | Dirent): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isSymbolicLink()) return 'a symlink';
  if (stat.isBlockDevice() || stat.isCharacterDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * A file error as the typed error of the session it belongs to: `STORE_CORRUPT` for something
 * that is not what the store wrote, `STORE_UNAVAILABLE` for the file system refusing (permissions,
 * I/O errors, too many open files), undefined for an error that is not about the file.
 */
export function toSessionError(error: unknown, path: string): AgentSessionsError | undefined {
  if (AgentSessionsError.isInstance(error)) return error;
  if (error instanceof LineError) return new StoreCorruptError(path, error.message, { cause: error });
  if (error instanceof LineTooLongError) {
    return unavailable(path, `holds ${error.message}, more than this store reads`, error);
  }
  const code = errnoCode(error);
  switch (code) {
    case undefined:
      return undefined;
    case 'ELOOP':
      return new StoreCorruptError(path, 'a symlink is where a store file should be', { cause: error });
    case 'EISDIR':
      return new StoreCorruptError(path, 'a directory is where a store file should be', { cause: error });
    case 'ENXIO':
    case 'ENODEV':
      return new StoreCorruptError(path, 'not a regular file', { cause: error });
    case 'ENOTDIR':
      return new StoreCorruptError(path, 'a file is where a directory should be', { cause: error });
    case 'EACCES':
    case 'EPERM':
      return unavailable(path, `cannot be used: permission denied (${code})`, error);
    default:
      return unavailable(path, `cannot be used: ${code}`, error);
  }
}

/**
 * Opens a store file that must be a regular file of this store: never following a symlink, never
 * blocking (a FIFO or a device opens at once and is refused), refusing a file with more than one
 * hard link (it may be a file outside the store). Errors are typed ({@link toSessionError}); a
 * missing file rejects with the `ENOENT` error itself.
 */
export async function openRegular(
  path: string,
  flags: number,
): Promise<{ handle: fs.FileHandle; stat: Stats }> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, flags | NOFOLLOW | NONBLOCK);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw error;
    throw toSessionError(error, path) ?? error;
  }
  try {
    // fstat of an open descriptor is one cheap system call: made synchronously, it saves a trip
    // through the thread pool on every write.
    const stat = fstatSync(handle.fd);
    if (!stat.isFile()) throw new StoreCorruptError(path, `${kindOf(stat)} is where a store file should be`);
    if (stat.nlink > 1) {
      throw new StoreCorruptError(
        path,
        `the file has ${stat.nlink} hard links: it may be shared with a file outside the store, so it is not used`,
      );
    }
    return { handle, stat };
  } catch (error) {
    await handle.close().catch(() => {});
    throw toSessionError(error, path) ?? error;
  }
}

/** What {@link openDirectory} found. */
export interface OpenedDirectory {
  lock: DirLock;
  entries: Map<string, Entry>;
  /** Sessions that cannot be used, with why (`STORE_CORRUPT` or `STORE_UNAVAILABLE`). */
  damaged: Map<string, AgentSessionsError>;
}

async function pool<T>(values: readonly T[], work: (value: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < values.length) await work(values[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, values.length) }, worker));
}

async function ensureDirectory(path: string): Promise<void> {
  try {
    await fs.mkdir(path, { recursive: true });
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new StoreCorruptError(path, 'not a directory', { cause: error });
    }
    throw error;
  }
  // mkdir accepts an existing symlink to a directory; files written through it would land outside.
  if (!(await fs.lstat(path)).isDirectory()) throw new StoreCorruptError(path, 'not a directory');
}

/** Logs a damaged session once, naming the file and what is wrong. */
export function reportDamage(logger: Logger, id: string, error: AgentSessionsError): void {
  logger.warn('file store: session cannot be used; it is left on disk as found and skipped by listings', {
    sessionId: id,
    code: error.code,
    path: (error as { path?: unknown }).path,
    error: error.message,
  });
}

/**
 * Takes the directory lock, removes what a crash of this store left (its temporary files, summary
 * files without a log) and recovers every session. A session that cannot be recovered is reported
 * for itself; the open fails only when the directory itself cannot be used. Releases the lock when
 * it fails.
 */
export async function openDirectory(
  paths: StorePaths,
  options: { sync: boolean; logger: Logger; limits: ReadLimits },
): Promise<OpenedDirectory> {
  await ensureDirectory(paths.directory);
  const lock = await acquireDirLock(join(paths.directory, LOCK));
  try {
    await ensureDirectory(paths.sessions);
    if (options.sync) await syncDirectory(paths.directory);
    const logs: Dirent[] = [];
    const summaries = new Map<string, Dirent>();
    const names = new Set<string>();
    for (const dirent of await fs.readdir(paths.sessions, { withFileTypes: true })) {
      const file = dirent.name;
      if (file.endsWith(TEMP)) {
        // A temporary file this store left in a crash (a create, a compaction, a summary rewrite that
        // never finished): it never replaced anything. Anything else with that name is not ours.
        if (dirent.isFile()) await removeQuietly(join(paths.sessions, file), options.logger);
        else options.logger.warn('file store: ignoring an entry that is not a file', { file });
      } else if (file.endsWith(SUMMARY)) {
        summaries.set(file.slice(0, -SUMMARY.length), dirent);
      } else if (file.endsWith(LOG)) {
        logs.push(dirent);
        names.add(file.slice(0, -LOG.length));
      }
    }
    const entries = new Map<string, Entry>();
    const damaged = new Map<string, AgentSessionsError>();
    await pool(logs, async (dirent) => {
      const name = dirent.name.slice(0, -LOG.length);
      const id = decodeSessionName(name);
      if (id === undefined) {
        options.logger.warn('file store: ignoring a file that names no session', { file: dirent.name });
        return;
      }
      const path = paths.log(name);
      try {
        if (!dirent.isFile()) {
          throw new StoreCorruptError(path, `${kindOf(dirent)} is where the log should be`);
        }
        const entry = await recoverSession(paths, id, name, options.logger, options.limits);
        if (entry) entries.set(id, entry);
      } catch (error) {
        const typed =
          toSessionError(error, path) ??
          new StoreCorruptError(path, `could not be read: ${String(error)}`, { cause: error });
        damaged.set(id, typed);
        reportDamage(options.logger, id, typed);
      }
    });
    for (const [name, dirent] of summaries) {
      // A summary file is a cache: one whose log is gone (a delete that stopped half-way) is removed.
      if (!names.has(name) && (dirent.isFile() || dirent.isSymbolicLink())) {
        await removeQuietly(paths.summary(name), options.logger);
      }
    }
    return { lock, entries, damaged };
  } catch (error) {
    await lock.release().catch(() => {});
    throw error;
  }
}

async function removeQuietly(path: string, logger: Logger): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT')
      logger.warn('file store: could not remove a leftover file', { path, error });
  }
}

/**
 * Rebuilds a session's entry from its summary file and the log after it, or from the whole log
 * (streamed, so a log of any size is summarised in bounded memory). Undefined when the log has
 * vanished. Rejects with `STORE_CORRUPT` or `STORE_UNAVAILABLE` for this session, changing nothing.
 */
export async function recoverSession(
  paths: StorePaths,
  id: string,
  name: string,
  logger: Logger,
  limits: ReadLimits,
): Promise<Entry | undefined> {
  const path = paths.log(name);
  let opened: { handle: fs.FileHandle; stat: Stats };
  try {
    opened = await openRegular(path, constants.O_RDONLY);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const { handle, stat } = opened;
  try {
    const size = stat.size;
    const cached = await readSummaryFile(paths, id, name, logger);
    let entry: Entry | undefined;
    let from = 0;
    if (cached && cached.logSize <= size && cached.last.length <= cached.logSize) {
      const last = await readRange(handle, cached.logSize - cached.last.length, cached.last.length);
      if (lineHasChecksum(last, cached.last.crc)) {
        entry = { ...cached, id, name, time: 0, summarized: cached.logSize, dirtyTail: false };
        from = cached.logSize;
      } else {
        logger.debug('file store: summary file does not match the log, reading the whole log', {
          sessionId: id,
        });
      }
    }
    const scan = new SummaryScan(path, id, name, entry);
    const { end, tail } = await scanLines(handle, from, size, (lines) => scan.add(lines), limits);
    const tailKind = judgeTail(tail, end, path);
    const recovered = scan.entry(cached !== undefined);
    if (
      cached &&
      from === 0 &&
      Date.parse(recovered.summary.updatedAt) < Date.parse(cached.summary.updatedAt)
    ) {
      throw new StoreCorruptError(
        path,
        `the log ends at an older state (updatedAt ${recovered.summary.updatedAt}, ${end} bytes) than its summary file recorded (updatedAt ${cached.summary.updatedAt}, ${cached.logSize} bytes): acknowledged writes are missing`,
      );
    }
    if (tailKind === 'torn') {
      recovered.dirtyTail = true;
      logger.debug('file store: ignoring the torn tail of a write that never finished', {
        sessionId: id,
        bytes: tail.length,
      });
    }
    recovered.time = Date.parse(recovered.summary.updatedAt);
    return recovered;
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Builds a session's summary state from log lines: from the first record, or after a summary file. */
class SummaryScan {
  readonly #path: string;
  readonly #id: string;
  readonly #name: string;
  #entry: Entry | undefined;

  constructor(path: string, id: string, name: string, entry: Entry | undefined) {
    this.#path = path;
    this.#id = id;
    this.#name = name;
    this.#entry = entry;
  }

  add(lines: readonly DecodedLine[]): void {
    for (const line of lines) {
      const entry = this.#entry;
      if (entry) {
        applyToSummary(entry, line, this.#path);
        continue;
      }
      const record = readRecord(line, this.#path);
      if (record.t !== 'session' || record.session.id !== this.#id) {
        throw new StoreCorruptError(this.#path, 'the first record is not this session');
      }
      const session = record.session;
      this.#entry = {
        id: this.#id,
        name: this.#name,
        summary: toSummary(session, countMessages(session.items)),
        time: 0,
        logSize: line.end,
        last: { crc: line.crc, length: line.end - line.start },
        overwriteBytes: 0,
        summarized: -1,
        dirtyTail: false,
      };
    }
  }

  entry(hadSummary: boolean): Entry {
    if (!this.#entry) {
      throw new StoreCorruptError(
        this.#path,
        hadSummary
          ? 'the log holds no complete record, but its summary file says the session was written'
          : 'the log holds no complete record',
      );
    }
    return this.#entry;
  }
}

/**
 * A session's summary file, or undefined when it is missing or not usable (not a regular file,
 * shared, damaged, of another version): the log is the record, so the summary is rebuilt from it.
 */
export async function readSummaryFile(
  paths: StorePaths,
  id: string,
  name: string,
  logger: Logger,
): Promise<SummaryState | undefined> {
  const path = paths.summary(name);
  try {
    const { handle, stat } = await openRegular(path, constants.O_RDONLY);
    try {
      if (stat.size > MAX_SUMMARY_FILE_BYTES) return undefined;
      return decodeSummaryFile(await readRange(handle, 0, stat.size), id);
    } finally {
      await handle.close().catch(() => {});
    }
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') {
      logger.debug('file store: unusable summary file, reading the whole log', {
        sessionId: id,
        error: AgentSessionsError.isInstance(error) ? error.message : (errnoCode(error) ?? String(error)),
      });
    }
    return undefined;
  }
}
