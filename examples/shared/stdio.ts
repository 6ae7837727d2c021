/**
 * The process's stdout and stdin as web streams of bytes, which is what ACP's `ndJsonStream`
 * takes.
 */
import { Readable, Writable } from 'node:stream';

/** stdout as a WritableStream and stdin as a ReadableStream of bytes. */
export function stdioStreams(): { output: WritableStream<Uint8Array>; input: ReadableStream<Uint8Array> } {
  return {
    output: Writable.toWeb(process.stdout) as WritableStream<Uint8Array>,
    input: Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
  };
}
