// FileStore's recovery: opening a store directory (the lock, leftovers of a crash) and rebuilding
// each session's summary from its summary file and the log after it, or from the whole log.
import type { Dirent } from 'node:fs';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { StoreCorruptError } from '../../errors.js';
import { acquireDirLock, type DirLock } from '../../internal/dir-lock.js';
import { errnoCode, NOFOLLOW, readRange, syncDirectory, unlinkIfExists } from '../../internal/files.js';
import { decodeLines, LineError, lineHasChecksum } from '../../internal/record-lines.js';
import type { Logger } from '../../logger.js';
import { countMessages, toSummary } from '../../schemas.js';
import {
  applyToSummary,
  decodeSessionName,
  decodeSummaryFile,
  LOCK,
  LOG,
  readRecord,
  SUMMARY,
  type SummaryState,
  TEMP,
} from './format.js';

const OPEN_CONCURRENCY = 32;

/** What the store keeps in memory per healthy session: its summary and where its log ends. */
export interface Entry extends SummaryState {
  id: string;
  /** The encoded file name, without extension. */
  name: string;
  /** `Date.parse(summary.updatedAt)`, for sorting. */
  time: number;
  /** The log size the summary file on disk describes (-1: none). */
  summarized: number;
  /** The file holds bytes after `logSize` (a torn tail or a failed write) to cut before appending. */
  dirtyTail: boolean;
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

/** A damaged file's error as `STORE_CORRUPT`, or undefined for an error of another kind. */
export function toCorrupt(error: unknown, path: string): StoreCorruptError | undefined {
  if (StoreCorruptError.isInstance(error)) return error;
  if (error instanceof LineError) return new StoreCorruptError(path, error.message, { cause: error });
  return undefined;
}

/** Opens a session log without following a symlink; a missing file or a non-file is `STORE_CORRUPT`. */
export async function openLog(path: string, flags: number): Promise<fs.FileHandle> {
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

/** What {@link openDirectory} found. */
export interface OpenedDirectory {
  lock: DirLock;
  entries: Map<string, Entry>;
  damaged: Map<string, StoreCorruptError>;
}

async function pool<T>(values: readonly T[], work: (value: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < values.length) await work(values[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, values.length) }, worker));
}

/**
 * Takes the directory lock, removes what a crash left (temporary files, summaries without a log,
 * logs of creates that never finished) and recovers every session. Releases the lock when it fails.
 */
export async function openDirectory(
  paths: StorePaths,
  options: { sync: boolean; logger: Logger },
): Promise<OpenedDirectory> {
  await fs.mkdir(paths.directory, { recursive: true });
  const lock = await acquireDirLock(join(paths.directory, LOCK));
  try {
    await fs.mkdir(paths.sessions, { recursive: true });
    const stat = await fs.lstat(paths.sessions);
    if (!stat.isDirectory()) throw new StoreCorruptError(paths.sessions, 'not a directory');
    if (options.sync) await syncDirectory(paths.directory);
    const logs: Dirent[] = [];
    const summaries = new Set<string>();
    const names = new Set<string>();
    for (const dirent of await fs.readdir(paths.sessions, { withFileTypes: true })) {
      const file = dirent.name;
      if (file.endsWith(TEMP)) {
        // A temporary file left by a crash: it never replaced anything.
        await unlinkIfExists(join(paths.sessions, file));
      } else if (file.endsWith(SUMMARY)) {
        summaries.add(file.slice(0, -SUMMARY.length));
      } else if (file.endsWith(LOG)) {
        logs.push(dirent);
        names.add(file.slice(0, -LOG.length));
      }
    }
    const entries = new Map<string, Entry>();
    const damaged = new Map<string, StoreCorruptError>();
    const markDamaged = (id: string, error: StoreCorruptError) => {
      damaged.set(id, error);
      options.logger.warn('file store: damaged session skipped by listings', {
        sessionId: id,
        path: error.path,
        error: error.message,
      });
    };
    await pool(logs, async (dirent) => {
      const name = dirent.name.slice(0, -LOG.length);
      const id = decodeSessionName(name);
      if (id === undefined) {
        options.logger.warn('file store: ignoring a file that names no session', { file: dirent.name });
        return;
      }
      const path = paths.log(name);
      if (!dirent.isFile()) {
        markDamaged(id, new StoreCorruptError(path, 'not a regular file'));
        return;
      }
      try {
        const entry = await recoverSession(paths, id, name, summaries.has(name), options.logger);
        if (entry) entries.set(id, entry);
      } catch (error) {
        const corrupt = toCorrupt(error, path);
        if (!corrupt) throw error;
        markDamaged(id, corrupt);
      }
    });
    for (const name of summaries) {
      if (!names.has(name)) await unlinkIfExists(paths.summary(name));
    }
    return { lock, entries, damaged };
  } catch (error) {
    await lock.release().catch(() => {});
    throw error;
  }
}

/**
 * Rebuilds a session's entry from its summary file and the log after it, or from the whole log.
 * Undefined when the log holds no complete line: a create that never finished (removed).
 */
export async function recoverSession(
  paths: StorePaths,
  id: string,
  name: string,
  hasSummary: boolean,
  logger: Logger,
): Promise<Entry | undefined> {
  const path = paths.log(name);
  const handle = await openLog(path, constants.O_RDONLY);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new StoreCorruptError(path, 'not a regular file');
    const size = stat.size;
    const cached = hasSummary ? await readSummaryFile(paths, id, name, logger) : undefined;
    if (cached && cached.logSize <= size && cached.last.length <= cached.logSize) {
      const from = cached.logSize - cached.last.length;
      const buffer = await readRange(handle, from, size - from);
      if (lineHasChecksum(buffer.subarray(0, cached.last.length), cached.last.crc)) {
        const entry: Entry = {
          ...cached,
          id,
          name,
          time: 0,
          summarized: cached.logSize,
          dirtyTail: false,
        };
        const { lines, end } = decodeLines(buffer.subarray(cached.last.length), cached.logSize);
        for (const line of lines) applyToSummary(entry, line, path);
        entry.time = Date.parse(entry.summary.updatedAt);
        entry.dirtyTail = end < size;
        return entry;
      }
      logger.debug('file store: stale summary file, reading the whole log', { sessionId: id });
    }
    const buffer = await readRange(handle, 0, size);
    const { lines, end } = decodeLines(buffer);
    const first = lines[0];
    if (!first) {
      await unlinkIfExists(path);
      await unlinkIfExists(paths.summary(name));
      return undefined;
    }
    const record = readRecord(first, path);
    if (record.t !== 'session' || record.session.id !== id) {
      throw new StoreCorruptError(path, 'the first line is not this session');
    }
    const session = record.session;
    const entry: Entry = {
      id,
      name,
      summary: toSummary(session, countMessages(session.items)),
      time: 0,
      logSize: first.end,
      last: { crc: first.crc, length: first.end - first.start },
      overwriteBytes: 0,
      summarized: -1,
      dirtyTail: false,
    };
    for (const line of lines.slice(1)) applyToSummary(entry, line, path);
    entry.time = Date.parse(entry.summary.updatedAt);
    entry.dirtyTail = end < size;
    return entry;
  } finally {
    await handle.close().catch(() => {});
  }
}

/** A session's summary file, or undefined when it is missing or not usable (the log is the record). */
export async function readSummaryFile(
  paths: StorePaths,
  id: string,
  name: string,
  logger: Logger,
): Promise<SummaryState | undefined> {
  try {
    const buffer = await fs.readFile(paths.summary(name), { flag: constants.O_RDONLY | NOFOLLOW });
    return decodeSummaryFile(buffer, id);
  } catch (error) {
    // Missing, damaged, a symlink: the log is the record, so rebuild from it.
    logger.debug('file store: unreadable summary file, reading the whole log', {
      sessionId: id,
      error: errnoCode(error) ?? String(error),
    });
    return undefined;
  }
}
