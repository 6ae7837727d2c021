// Small file-system helpers of FileStore: whole writes and reads at an offset, removal that
// tolerates a missing file, and directory syncs.
import callbackFs, { constants, promises as fs } from 'node:fs';

/** `O_NOFOLLOW` where the platform has it (a symlink in the last path component is refused). */
export const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** The errno code of a file-system error (`'ENOENT'`…), if it has one. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Removes a file; a missing one is fine. */
export async function unlinkIfExists(path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

/** Writes all of `buffer` at the handle's position (short writes are continued). */
export async function writeAll(handle: fs.FileHandle, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Writes all of `buffer` to the descriptor at its position (short writes are continued), with the
 * callback API: one request object per write, where a `FileHandle` write also builds a promise
 * chain and reference counting around it (about twice the main-thread time here). The caller keeps
 * the descriptor's `FileHandle` open until this settles.
 */
export function writeFd(fd: number, buffer: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let offset = 0;
    const next = (error: NodeJS.ErrnoException | null, written: number): void => {
      if (error) {
        reject(error);
        return;
      }
      offset += written;
      if (offset < buffer.length) callbackFs.write(fd, buffer, offset, buffer.length - offset, null, next);
      else resolve();
    };
    callbackFs.write(fd, buffer, 0, buffer.length, null, next);
  });
}

/** Reads `length` bytes at `position`, fewer when the file ends first. */
export async function readRange(handle: fs.FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let offset = 0;
  while (offset < length) {
    const { bytesRead } = await handle.read(buffer, offset, length - offset, position + offset);
    if (bytesRead === 0) break;
    offset += bytesRead;
  }
  return offset === length ? buffer : buffer.subarray(0, offset);
}

/** Syncs a directory, so a file created, renamed or removed in it survives a power loss. */
export async function syncDirectory(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await fs.open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
