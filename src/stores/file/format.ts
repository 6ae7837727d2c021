// FileStore's on-disk format: file names, the versioned records of a session log, the summary file
// codec, and replay (records → session). Nothing here touches the file system.
//
// Layout of a store directory:
//   <directory>/.lock/             the directory lock (src/internal/dir-lock.ts)
//   <directory>/sessions/<name>.log  one append-only log per session
//   <directory>/sessions/<name>.sum  a cache of the session's summary and the log offset it describes
//   <directory>/sessions/*.tmp       a file being written, renamed into place when complete
//
// A log is checksummed JSON lines (src/internal/record-lines.ts), one record per line. The first
// record is always the whole session as created; compaction rewrites a log as one such record.
// Later records are appends, metadata patches and message replacements, each with the `updatedAt`
// it set. Every record carries the format version it was written in:
// - version 2 (written now) is a JSON array `[2, tag, …]`, compact so that short messages cost
//   little more than their JSON:
//     [2,"s",<session>]                     the whole session
//     [2,"a",<at>,<item>,<item>,…]          an append; a message item is written as its message
//                                           (the object without `kind`), other items as they are
//     [2,"p",<at>,<set>,<unset>]            a metadata patch: fields set, optional fields removed
//     [2,"m",<at>,<message id>,<message>]   a message replacement
//   `<at>` is the timestamp in milliseconds since the epoch when it is an ISO string that number
//   gives back exactly, else the string itself.
// - version 1 is an object `{"v":1,"t":"session"|"append"|"patch"|"message",…}`;
// - version 0 (written before versions existed) is the same object without `v`.
// Logs of every version are read; a log can hold records of several versions (a v1 log takes v2
// appends).
import { StoreCorruptError } from '../../errors.js';
import type { DecodedLine, EncodedLine } from '../../internal/record-lines.js';
import { decodeLines, encodeLine, lineHasChecksum } from '../../internal/record-lines.js';
import {
  applyPatch,
  countMessages,
  type Message,
  OPTIONAL_SESSION_FIELDS,
  SESSION_PATCH_FIELDS,
  type Session,
  type SessionItem,
  type SessionPatch,
  SessionSchema,
  type SessionSummary,
  SessionSummarySchema,
} from '../../schemas.js';

/** The log format this code writes. Logs of this version or older are read. */
export const FORMAT_VERSION = 2;
/** The summary file format this code writes and reads (anything else is ignored and rebuilt). */
export const SUMMARY_VERSION = 1;

export const LOG = '.log';
export const SUMMARY = '.sum';
export const TEMP = '.tmp';
export const SESSIONS = 'sessions';
export const LOCK = '.lock';

/**
 * A record's timestamp as read: the ISO string, or (format version 2) milliseconds since the epoch,
 * turned into the string by {@link recordTime} only where it is used (a replay uses the last one).
 */
export type RecordTime = string | number;

/** A record of a session log, as written. */
export type LogRecord =
  | { v?: number; t: 'session'; session: Session }
  | { v?: number; t: 'append'; at: RecordTime; items: SessionItem[] }
  | { v?: number; t: 'patch'; at: RecordTime; set: SessionPatch; unset: string[] }
  | { v?: number; t: 'message'; at: RecordTime; id: string; message: Message };

/** The ISO string of a record's timestamp. */
export function recordTime(at: RecordTime): string {
  return typeof at === 'string' ? at : new Date(at).toISOString();
}

// On-disk names are case-folding safe: `abc` and `ABC` are different sessions, so a name is the
// lowercased id plus, when the id has capitals, `.` and a base-36 bit mask of their positions.
// Ids only hold [A-Za-z0-9_-], so names hold no separator, no `..` and never start with a dot.
/** The file name (without extension) of a session id. */
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

// ---------------------------------------------------------------------------------------------
// Records. Each is serialised at once, so a caller changing its objects later changes nothing.

/** The first record of a log: the whole session. */
export function sessionLine(session: Session): EncodedLine {
  return encodeLine(`[${FORMAT_VERSION},"s",${JSON.stringify(session)}]`);
}

/** `at` as written: milliseconds when they give the string back exactly, else the string. */
function encodeTime(at: string): string {
  const ms = Date.parse(at);
  return Number.isSafeInteger(ms) && new Date(ms).toISOString() === at ? String(ms) : JSON.stringify(at);
}

/** An item as written: a message item as its message (it has no `kind`), any other item whole. */
function encodeItem(item: SessionItem): string {
  return item.kind === 'message' && !Object.hasOwn(item.message, 'kind')
    ? JSON.stringify(item.message)
    : JSON.stringify(item);
}

/** An append record. */
export function appendLine(at: string, items: readonly SessionItem[]): EncodedLine {
  let json = `[${FORMAT_VERSION},"a",${encodeTime(at)}`;
  for (const item of items) json += `,${encodeItem(item)}`;
  return encodeLine(`${json}]`);
}

/** The parts of a patch record: the fields set, and the optional fields removed. */
export function splitPatch(patch: SessionPatch): { set: Record<string, unknown>; unset: string[] } {
  const set: Record<string, unknown> = {};
  const unset: string[] = [];
  for (const key of SESSION_PATCH_FIELDS) {
    if (!Object.hasOwn(patch, key)) continue;
    const value = patch[key];
    if (value === undefined) {
      if (OPTIONAL_SESSION_FIELDS.has(key)) unset.push(key);
    } else set[key] = value;
  }
  return { set, unset };
}

/** A patch record. */
export function patchLine(at: string, set: Record<string, unknown>, unset: readonly string[]): EncodedLine {
  return encodeLine(
    `[${FORMAT_VERSION},"p",${encodeTime(at)},${JSON.stringify(set)},${JSON.stringify(unset)}]`,
  );
}

/** A message replacement record. */
export function messageLine(at: string, messageId: string, message: Message): EncodedLine {
  return encodeLine(
    `[${FORMAT_VERSION},"m",${encodeTime(at)},${JSON.stringify(messageId)},${JSON.stringify(message)}]`,
  );
}

// ---------------------------------------------------------------------------------------------
// Reading records back. A line whose checksum matched is byte for byte what this store wrote, so its
// JSON was validated before it was written; what is checked here is the version and that the
// records fit together (and the shapes this code relies on, so damage never surfaces as a
// TypeError).

function fail(path: string, line: DecodedLine, what: string): never {
  throw new StoreCorruptError(path, `${what} at byte ${line.start}`);
}

const SessionMetadataSchema = SessionSchema.omit({ items: true });

function itemsAreSound(items: unknown): items is SessionItem[] {
  if (!Array.isArray(items)) return false;
  for (const item of items) {
    if (typeof item !== 'object' || item === null || typeof (item as { kind?: unknown }).kind !== 'string') {
      return false;
    }
    if ((item as { kind: string }).kind === 'message') {
      const message = (item as { message?: unknown }).message;
      if (
        typeof message !== 'object' ||
        message === null ||
        typeof (message as { id?: unknown }).id !== 'string'
      ) {
        return false;
      }
    }
  }
  return true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// The largest time a Date holds, in milliseconds either side of the epoch.
const MAX_TIME = 8.64e15;

function decodeTime(value: unknown, path: string, line: DecodedLine): RecordTime {
  if (typeof value === 'string') return value;
  if (Number.isSafeInteger(value) && Math.abs(value as number) <= MAX_TIME) return value as number;
  return fail(path, line, 'a record with an invalid timestamp');
}

function decodeItem(value: unknown, path: string, line: DecodedLine): SessionItem {
  if (!isObject(value)) fail(path, line, 'an item that is not an object');
  if (typeof value.kind === 'string') return value as unknown as SessionItem;
  if (typeof value.id !== 'string') fail(path, line, 'a message without an id');
  return { kind: 'message', message: value as unknown as Message };
}

// A record of format version 2: `[2, tag, …]` (see the top of this file).
function readCompactRecord(values: unknown[], line: DecodedLine, path: string): LogRecord {
  const version = values[0];
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 2) {
    fail(path, line, 'a record that is not an object');
  }
  if (version > FORMAT_VERSION) {
    fail(
      path,
      line,
      `a record of format version ${version}, newer than this library reads (${FORMAT_VERSION})`,
    );
  }
  switch (values[1]) {
    case 's': {
      const session = values[2] as Partial<Session> | undefined;
      if (values.length !== 3 || !isObject(session) || !itemsAreSound(session.items)) {
        fail(path, line, 'a session record without a session');
      }
      if (!SessionMetadataSchema.safeParse({ ...session, items: undefined }).success) {
        fail(path, line, 'a session record whose session is not valid');
      }
      return { v: version, t: 'session', session: session as Session };
    }
    case 'a': {
      const at = decodeTime(values[2], path, line);
      const items: SessionItem[] = new Array(values.length - 3);
      for (let index = 3; index < values.length; index++) {
        items[index - 3] = decodeItem(values[index], path, line);
      }
      return { v: version, t: 'append', at, items };
    }
    case 'p': {
      const [, , time, set, unset] = values;
      if (
        values.length !== 5 ||
        !isObject(set) ||
        !Array.isArray(unset) ||
        !unset.every((key) => typeof key === 'string')
      ) {
        fail(path, line, 'a malformed patch');
      }
      return { v: version, t: 'patch', at: decodeTime(time, path, line), set, unset };
    }
    case 'm': {
      const [, , time, id, message] = values;
      if (values.length !== 5 || typeof id !== 'string' || !isObject(message)) {
        fail(path, line, 'a malformed message update');
      }
      return { v: version, t: 'message', at: decodeTime(time, path, line), id, message: message as Message };
    }
    default:
      return fail(path, line, 'an unexpected record');
  }
}

/** The record of a decoded line, checked for its version and the shape replay relies on. */
export function readRecord(line: DecodedLine, path: string): LogRecord {
  if (Array.isArray(line.value)) return readCompactRecord(line.value, line, path);
  const record = line.value as Partial<Record<string, unknown>> | null;
  if (typeof record !== 'object' || record === null) {
    fail(path, line, 'a record that is not an object');
  }
  const version = record.v ?? 0;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
    fail(path, line, 'a record with an invalid format version');
  }
  if (version > FORMAT_VERSION) {
    fail(
      path,
      line,
      `a record of format version ${version}, newer than this library reads (${FORMAT_VERSION})`,
    );
  }
  // Versions 2 and later are arrays: an object claiming one was not written by this code.
  if (version > 1) fail(path, line, `an object record claiming format version ${version}`);
  switch (record.t) {
    case 'session': {
      const session = record.session as Partial<Session> | undefined;
      if (typeof session !== 'object' || session === null || !itemsAreSound(session.items)) {
        fail(path, line, 'a session record without a session');
      }
      // The metadata is small: checked whole, so a summary built from it is always valid.
      if (!SessionMetadataSchema.safeParse({ ...session, items: undefined }).success) {
        fail(path, line, 'a session record whose session is not valid');
      }
      break;
    }
    case 'append':
      if (typeof record.at !== 'string' || !Array.isArray(record.items))
        fail(path, line, 'a malformed append');
      break;
    case 'patch':
      if (
        typeof record.at !== 'string' ||
        typeof record.set !== 'object' ||
        record.set === null ||
        Array.isArray(record.set) ||
        !Array.isArray(record.unset) ||
        !record.unset.every((key) => typeof key === 'string')
      ) {
        fail(path, line, 'a malformed patch');
      }
      break;
    case 'message':
      if (
        typeof record.at !== 'string' ||
        typeof record.id !== 'string' ||
        typeof record.message !== 'object' ||
        record.message === null
      ) {
        fail(path, line, 'a malformed message update');
      }
      break;
    default:
      fail(path, line, 'an unexpected record');
  }
  return record as LogRecord;
}

/**
 * Rebuilds a session from its log lines, fed in file order (a scan hands them over chunk by chunk,
 * so the log is never one buffer or one string).
 */
export class Replay {
  readonly #path: string;
  readonly #id: string;
  #session: Session | undefined;
  /** The timestamp of the last record after the first. */
  #at: RecordTime | undefined;

  constructor(path: string, id: string) {
    this.#path = path;
    this.#id = id;
  }

  /** Applies the next lines of the log. */
  add(lines: readonly DecodedLine[]): void {
    for (const line of lines) this.#apply(line);
  }

  /** The session the lines make. `STORE_CORRUPT` when there was no line. */
  session(): Session {
    if (!this.#session) throw new StoreCorruptError(this.#path, 'the log holds no complete record');
    // Every record after the first sets updatedAt: only the last one's is turned into a string.
    if (this.#at !== undefined) this.#session.updatedAt = recordTime(this.#at);
    this.#at = undefined;
    return this.#session;
  }

  #apply(line: DecodedLine): void {
    const path = this.#path;
    const record = readRecord(line, path);
    const session = this.#session;
    if (!session) {
      if (record.t !== 'session' || record.session.id !== this.#id) {
        throw new StoreCorruptError(path, 'the first record is not this session');
      }
      this.#session = record.session;
      return;
    }
    const items = session.items;
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
        if (at < 0) fail(path, line, 'an update of an unknown message');
        items[at] = { kind: 'message', message: record.message };
        break;
      }
      case 'session':
        fail(path, line, 'a second session record');
    }
    this.#at = record.at;
  }
}

/**
 * Judges the bytes after a log's last complete line. A process killed mid-write leaves a prefix of
 * one line: no newline, starting with the 8 hex digits and the space of its checksum (or a prefix of
 * those). Such a torn tail was never acknowledged: `'torn'`. Anything else was not left by a crash
 * of this store and is `STORE_CORRUPT`: bytes that do not start like a record, or a whole record
 * whose final newline was damaged (a crash cuts a line short, it never writes a wrong byte).
 */
export function judgeTail(tail: Buffer, end: number, path: string): 'none' | 'torn' {
  if (tail.length === 0) return 'none';
  const prefix = Math.min(tail.length, 9);
  for (let index = 0; index < prefix; index++) {
    const byte = tail[index]!;
    const expected =
      index === 8 ? byte === 0x20 : (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66);
    if (!expected) {
      throw new StoreCorruptError(path, `${tail.length} bytes after byte ${end} are not a record`);
    }
  }
  if (tail.length >= 10) {
    const repaired = Buffer.from(tail);
    repaired[repaired.length - 1] = 0x0a;
    const crc = Number.parseInt(tail.subarray(0, 8).toString('latin1'), 16);
    if (lineHasChecksum(repaired, crc)) {
      throw new StoreCorruptError(path, `the final newline of the record at byte ${end} is damaged`);
    }
  }
  return 'torn';
}

// ---------------------------------------------------------------------------------------------
// Summaries: what listings need, kept per session in memory and cached in `<name>.sum`.

/** The summary fields a patch can change. */
const SUMMARY_FIELDS = ['title', 'starred', 'workingDir', 'source', 'owner', 'usage'] as const;

/** Applies a patch's `set` and `unset` to a summary. */
export function patchSummary(
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

/** The state of a log that a summary describes: how far it reaches and the line it ends with. */
export interface LogPosition {
  /** Bytes of complete, acknowledged lines. */
  logSize: number;
  /** The checksum and length of the last of them, so a summary can prove which log state it describes. */
  last: { crc: number; length: number };
  /** Bytes of patch and message lines, which compaction would drop. */
  overwriteBytes: number;
}

/** A session summary and the log state it was taken at. */
export interface SummaryState extends LogPosition {
  summary: SessionSummary;
}

/** Applies one log record after the first to a summary state (what listings need). */
export function applyToSummary(state: SummaryState, line: DecodedLine, path: string): void {
  const record = readRecord(line, path);
  switch (record.t) {
    case 'append':
      state.summary.messageCount += countMessages(record.items);
      break;
    case 'patch':
      patchSummary(state.summary, record.set as Record<string, unknown>, record.unset);
      state.overwriteBytes += line.end - line.start;
      break;
    case 'message':
      state.overwriteBytes += line.end - line.start;
      break;
    case 'session':
      fail(path, line, 'a second session record');
  }
  state.summary.updatedAt = recordTime(record.at);
  state.logSize = line.end;
  state.last = { crc: line.crc, length: line.end - line.start };
}

/** The text of a summary file. */
export function encodeSummaryFile(state: SummaryState): string {
  return encodeLine(
    JSON.stringify({
      v: SUMMARY_VERSION,
      logSize: state.logSize,
      lastCrc: state.last.crc,
      lastLength: state.last.length,
      overwriteBytes: state.overwriteBytes,
      summary: state.summary,
    }),
  ).text;
}

/** Reads a summary file of session `id`; undefined when it is not one this code wrote for it. */
export function decodeSummaryFile(buffer: Buffer, id: string): SummaryState | undefined {
  let value: Record<string, unknown> | undefined;
  try {
    const { lines } = decodeLines(buffer);
    if (lines.length !== 1) return undefined;
    value = lines[0]!.value as Record<string, unknown> | undefined;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || value.v !== SUMMARY_VERSION) return undefined;
  const record = value;
  const numbers = ['logSize', 'lastCrc', 'lastLength', 'overwriteBytes'].every(
    (key) => Number.isSafeInteger(record[key]) && (record[key] as number) >= 0,
  );
  const summary = SessionSummarySchema.safeParse(record.summary);
  if (!numbers || !summary.success || summary.data.id !== id) return undefined;
  return {
    logSize: record.logSize as number,
    last: { crc: record.lastCrc as number, length: record.lastLength as number },
    overwriteBytes: record.overwriteBytes as number,
    summary: summary.data,
  };
}
