// Checksummed JSON lines: `<crc32 as 8 hex digits> <json>\n`.
//
// The checksum is what lets the file store load fast and still treat its files as input from
// outside. Every record is validated with zod before it is written; a line whose CRC-32 matches is
// byte-for-byte what this store wrote, so its JSON is trusted without validating it again (zod over
// every item roughly doubles the cost of a load). A line whose CRC does not match was damaged or
// edited by hand and is reported as STORE_CORRUPT. The CRC detects accidents (torn or flipped
// bytes, an editor touching the file); it is not a security boundary: whoever can write the
// directory can make the store return anything anyway.
//
// A line is complete only with its final '\n'. JSON text never holds a raw newline, and a record is
// written with one write, so a process killed mid-write leaves at most one trailing line without
// '\n': the torn tail, which was never acknowledged and is ignored.
import { crc32 } from 'node:zlib';

const NEWLINE = 0x0a;
/** The most bytes of whole lines decoded into one string (a longer line is decoded alone). */
export const DECODE_PIECE_BYTES = 64 * 1024;
const SPACE = 0x20;

/** One encoded line and what is needed to recognise it later. */
export interface EncodedLine {
  text: string;
  /** Its length in bytes, newline included. */
  length: number;
  crc: number;
}

/** Encodes a record already serialised as JSON. */
export function encodeLine(json: string): EncodedLine {
  const crc = crc32(json);
  const text = `${crc.toString(16).padStart(8, '0')} ${json}\n`;
  return { text, length: Buffer.byteLength(text), crc };
}

/** A complete line found in a buffer. */
export interface DecodedLine {
  /** Offset of the line's first byte. */
  start: number;
  /** Offset just after its '\n'. */
  end: number;
  crc: number;
  value: unknown;
}

/** Why a complete line could not be decoded. */
export class LineError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(`${message} at byte ${offset}`);
    this.offset = offset;
  }
}

/**
 * Decodes the complete lines of `buffer` (`base` is the file offset of `buffer[0]`). Throws
 * {@link LineError} on a complete line that is not what this store wrote. Returns the lines and
 * the file offset where the complete lines end (anything after it is a torn tail).
 */
export function decodeLines(
  buffer: Buffer,
  base = 0,
  options: { stopAtError?: boolean } = {},
): { lines: DecodedLine[]; end: number; error?: LineError } {
  const lines: DecodedLine[] = [];
  // Decoded a piece at a time: one string per line would cost more than the parsing, and one string
  // for a whole chunk decodes many times slower once it passes ~128 KiB. A piece is whole lines of
  // at most DECODE_PIECE_BYTES (or one longer line). The k-th '\n' of a piece's bytes is the k-th
  // '\n' of its text (UTF-8 never uses 0x0a inside a character), so the checksum runs on the bytes
  // and JSON.parse on the text of the same line.
  let text = '';
  let pieceEnd = 0;
  let start = 0;
  let textStart = 0;
  for (;;) {
    const newline = buffer.indexOf(NEWLINE, start);
    if (newline < 0) break;
    if (start >= pieceEnd) {
      let last = buffer.lastIndexOf(NEWLINE, Math.min(buffer.length - 1, start + DECODE_PIECE_BYTES - 1));
      if (last < newline) last = newline;
      pieceEnd = last + 1;
      text = buffer.toString('utf8', start, pieceEnd);
      textStart = 0;
    }
    const textNewline = text.indexOf('\n', textStart);
    const offset = base + start;
    const expected = newline - start < 10 ? -1 : readPrefix(buffer, start);
    let problem: string | undefined;
    let crc = 0;
    let value: unknown;
    if (expected < 0) problem = 'malformed line';
    else {
      crc = crc32(buffer.subarray(start + 9, newline));
      if (crc !== expected) problem = 'checksum mismatch';
      else {
        try {
          value = JSON.parse(text.slice(textStart + 9, textNewline));
        } catch {
          problem = 'invalid JSON';
        }
      }
    }
    if (problem !== undefined) {
      const error = new LineError(offset, problem);
      if (options.stopAtError) return { lines, end: offset, error };
      throw error;
    }
    lines.push({ start: offset, end: base + newline + 1, crc, value });
    start = newline + 1;
    textStart = textNewline + 1;
  }
  return { lines, end: base + start };
}

/**
 * True when `buffer` is exactly one complete line whose checksum is `crc`: its prefix says so and
 * its bytes agree. No JSON is parsed: a matching checksum is what this store wrote.
 */
export function lineHasChecksum(buffer: Buffer, crc: number): boolean {
  const length = buffer.length;
  if (length < 10 || buffer[length - 1] !== NEWLINE || buffer.indexOf(NEWLINE) !== length - 1) return false;
  return readPrefix(buffer, 0) === crc && crc32(buffer.subarray(9, length - 1)) === crc;
}

/**
 * The checksum prefix of the line starting at `start`: 8 lowercase hex digits and a space, read from
 * the bytes (no substring, no regex per line). -1 when malformed.
 */
function readPrefix(buffer: Buffer, start: number): number {
  if (buffer[start + 8] !== SPACE) return -1;
  let value = 0;
  for (let index = start; index < start + 8; index++) {
    const byte = buffer[index]!;
    const digit =
      byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : byte >= 0x61 && byte <= 0x66 ? byte - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** The bytes read from a file at a time when scanning its lines. */
export const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** A line longer than a scan accepts (it could not be decoded as one string). */
export class LineTooLongError extends Error {
  /** The file offset where the line starts. */
  readonly offset: number;
  /** The limit it exceeds, in bytes. */
  readonly limit: number;
  constructor(offset: number, limit: number) {
    super(`a record at byte ${offset} is longer than ${limit} bytes`);
    this.offset = offset;
    this.limit = limit;
  }
}

/** Where a scan ended. */
export interface ScanEnd {
  /** The file offset just after the last complete line. */
  end: number;
  /** The bytes after it up to the end of the range (a torn tail, or damage): at most `maxLineBytes`. */
  tail: Buffer;
}

/** A source of bytes at an offset (a `FileHandle`'s `read`). */
export interface ByteSource {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/**
 * Decodes the complete lines of the byte range `[from, to)` of a file chunk by chunk, handing each
 * chunk's lines to `onLines`: the file is never held as one buffer or one string, so a log of any
 * size can be scanned (a summary rebuilt) in bounded memory. Throws {@link LineError} like
 * {@link decodeLines}, and {@link LineTooLongError} for a line (or a tail) longer than
 * `maxLineBytes`.
 */
export async function scanLines(
  source: ByteSource,
  from: number,
  to: number,
  onLines: (lines: DecodedLine[]) => void,
  options: { chunkBytes?: number; maxLineBytes: number; stopAtError?: boolean },
): Promise<ScanEnd & { error?: LineError }> {
  const chunkBytes = Math.max(1, options.chunkBytes ?? SCAN_CHUNK_BYTES);
  let carry: Buffer = Buffer.alloc(0);
  let carryStart = from;
  let position = from;
  while (position < to) {
    const length = Math.min(chunkBytes, to - position);
    const chunk = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await source.read(chunk, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    position += filled;
    const bytes =
      carry.length === 0 ? chunk.subarray(0, filled) : Buffer.concat([carry, chunk.subarray(0, filled)]);
    const lastNewline = bytes.lastIndexOf(NEWLINE);
    if (lastNewline >= 0) {
      const decoded = decodeLines(bytes.subarray(0, lastNewline + 1), carryStart, options);
      if (decoded.lines.length > 0) onLines(decoded.lines);
      if (decoded.error) return { end: decoded.end, tail: Buffer.alloc(0), error: decoded.error };
      carry = Buffer.from(bytes.subarray(lastNewline + 1));
      carryStart += lastNewline + 1;
    } else {
      carry = bytes;
    }
    if (carry.length > options.maxLineBytes) throw new LineTooLongError(carryStart, options.maxLineBytes);
    if (filled < length) break; // the file is shorter than the range
  }
  return { end: carryStart, tail: carry };
}
