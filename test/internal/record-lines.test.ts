import { describe, expect, test } from 'vitest';
import { decodeLines, encodeLine, lineHasChecksum } from '../../src/internal/record-lines.js';

const line = (json: string) => {
  const encoded = encodeLine(json);
  return { buffer: Buffer.from(encoded.text), crc: encoded.crc };
};

describe('lineHasChecksum', () => {
  test('accepts exactly one line this encoding wrote, with its checksum', () => {
    const { buffer, crc } = line(JSON.stringify({ t: 'append', text: 'héllo 🙂' }));
    expect(lineHasChecksum(buffer, crc)).toBe(true);
    expect(decodeLines(buffer).lines[0]?.crc).toBe(crc);
  });

  test.each([
    ['a flipped byte in the JSON', (buffer: Buffer) => Buffer.from(buffer).fill(0x41, 12, 13)],
    ['a missing newline', (buffer: Buffer) => buffer.subarray(0, buffer.length - 1)],
    ['a second line appended', (buffer: Buffer) => Buffer.concat([buffer, buffer])],
    ['a damaged prefix', (buffer: Buffer) => Buffer.from(buffer).fill(0x7a, 0, 1)],
    ['too short to be a line', () => Buffer.from('1234\n')],
  ])('rejects %s', (_, damage) => {
    const { buffer, crc } = line('{"t":"patch","set":{}}');
    expect(lineHasChecksum(damage(buffer), crc)).toBe(false);
  });

  test('rejects a sound line whose checksum is not the expected one', () => {
    const { buffer, crc } = line('{"a":1}');
    expect(lineHasChecksum(buffer, (crc + 1) >>> 0)).toBe(false);
  });
});
