import { describe, expect, test } from 'vitest';
import {
  decodeLines,
  encodeLine,
  LineTooLongError,
  lineHasChecksum,
  scanLines,
} from '../../src/internal/record-lines.js';

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

describe('scanLines', () => {
  const lines = Array.from(
    { length: 50 },
    (_, index) => encodeLine(JSON.stringify({ n: index, text: 'é'.repeat(index) })).text,
  );
  const file = Buffer.from(lines.join(''));
  const source = (bytes: Buffer) => ({
    async read(buffer: Buffer, offset: number, length: number, position: number) {
      const chunk = bytes.subarray(position, position + length);
      chunk.copy(buffer, offset);
      return { bytesRead: chunk.length };
    },
  });

  test.each([1, 7, 64, 1 << 20])(
    'decodes every line in order whatever the chunk size (%i bytes)',
    async (chunkBytes) => {
      const seen: unknown[] = [];
      const end = await scanLines(
        source(file),
        0,
        file.length,
        (batch) => seen.push(...batch.map((line) => line.value)),
        {
          chunkBytes,
          maxLineBytes: 1 << 20,
        },
      );
      expect(seen).toEqual(Array.from({ length: 50 }, (_, index) => ({ n: index, text: 'é'.repeat(index) })));
      expect(end).toEqual({ end: file.length, tail: Buffer.alloc(0) });
    },
  );

  test('returns the bytes after the last complete line as the tail', async () => {
    const torn = Buffer.concat([file, Buffer.from('0badc0de {"n":')]);
    const { end, tail } = await scanLines(source(torn), 0, torn.length, () => {}, {
      chunkBytes: 5,
      maxLineBytes: 1 << 20,
    });
    expect(end).toBe(file.length);
    expect(tail.toString()).toBe('0badc0de {"n":');
  });

  test('throws LineError at a damaged line, or stops there with stopAtError', async () => {
    const damaged = Buffer.from(file);
    const third = Buffer.byteLength(lines[0]!) + Buffer.byteLength(lines[1]!);
    damaged[third + 12] = 0x21;
    await expect(
      scanLines(source(damaged), 0, damaged.length, () => {}, { maxLineBytes: 1 << 20 }),
    ).rejects.toThrow(`checksum mismatch at byte ${third}`);
    const kept: number[] = [];
    const stopped = await scanLines(
      source(damaged),
      0,
      damaged.length,
      (batch) => kept.push(...batch.map((line) => line.end)),
      {
        chunkBytes: 3,
        maxLineBytes: 1 << 20,
        stopAtError: true,
      },
    );
    expect(stopped.end).toBe(third);
    expect(stopped.error?.offset).toBe(third);
    expect(kept.at(-1)).toBe(third);
  });

  test('throws LineTooLongError for a line longer than the limit, naming where it starts', async () => {
    const error = await scanLines(source(file), 0, file.length, () => {}, {
      chunkBytes: 16,
      maxLineBytes: 40,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LineTooLongError);
    expect(error).toMatchObject({ limit: 40 });
  });
});
