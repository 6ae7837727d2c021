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
export function decodeLines(buffer: Buffer, base = 0): { lines: DecodedLine[]; end: number } {
  const lines: DecodedLine[] = [];
  // Decoded once: one string per line from the buffer would cost more than the parsing. The k-th
  // '\n' of the bytes is the k-th '\n' of the text (UTF-8 never uses 0x0a inside a character), so
  // the checksum runs on the bytes and JSON.parse on the text of the same line.
  const text = buffer.toString('utf8');
  let start = 0;
  let textStart = 0;
  for (;;) {
    const newline = buffer.indexOf(NEWLINE, start);
    if (newline < 0) break;
    const textNewline = text.indexOf('\n', textStart);
    const offset = base + start;
    const expected = newline - start < 10 ? -1 : readPrefix(buffer, start);
    if (expected < 0) throw new LineError(offset, 'malformed line');
    const crc = crc32(buffer.subarray(start + 9, newline));
    if (crc !== expected) throw new LineError(offset, 'checksum mismatch');
    let value: unknown;
    try {
      value = JSON.parse(text.slice(textStart + 9, textNewline));
    } catch {
      throw new LineError(offset, 'invalid JSON');
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
