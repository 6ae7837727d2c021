// An exclusive lock on a directory, held by one process at a time, that a process killed with
// SIGKILL cannot leave stuck.
//
// Why not one lock file replaced on takeover: two processes that both judged the same lock stale
// would both remove "it" by name, and the slower one removes the fresh lock the faster one just
// made. Instead every opener creates its own claim file with a name nobody else ever uses, then
// looks at the others:
//   1. create `<lockDir>/<token>.claim` (O_EXCL) holding { pid, host, start };
//   2. list the claims; remove those whose owner is provably dead (same host, pid gone or started
//      at another time). A dead claim can be deleted by anyone: its name is never reused, so there
//      is no ABA race;
//   3. if another live claim remains, remove ours and back off; else we hold the lock.
// Safety: of two processes that both hold, the one that created its claim later listed after the
// other's claim existed and saw it alive, so it could not hold. Two contenders that see each other
// both back off and retry after a random delay; a holder's claim never goes away, so a contender
// gives up with STORE_LOCKED after a few tries. A claim from another host cannot be judged and
// counts as alive (it must be removed by hand); a zombie (exited, not yet reaped) counts as dead.
//
// Holding is checked, not assumed: the holder keeps its claim file open, and before each write
// batch the store asks `held()`, which is false once the claim has been removed or replaced (its
// inode has no link left) — an operator deleting `.lock`, or a takeover. A store that lost its
// claim refuses to write (STORE_LOCKED) instead of writing under a lock it no longer holds.
//
// Every claim file is opened with O_NONBLOCK and checked to be a regular file before it is read:
// a FIFO planted in the lock directory cannot block the process.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs, fstatSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AgentSessionsError, ErrorCode, StoreCorruptError } from '../errors.js';

/** What a claim file holds. */
export interface Claim {
  pid: number;
  host: string;
  /** Process start time (Linux: jiffies after boot from /proc), to detect a reused pid. */
  start?: string;
}

const CLAIM_SUFFIX = '.claim';
const ATTEMPTS = 6;
// A claim is a few dozen bytes; anything much larger was not written by a store.
const MAX_CLAIM_BYTES = 4096;
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const NONBLOCK = constants.O_NONBLOCK ?? 0;

/** A process's state letter and start time (Linux `/proc/<pid>/stat`), when they can be read. */
async function processInfo(pid: number): Promise<{ state: string; start: string } | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const start = fields[19];
    return state === undefined || start === undefined ? undefined : { state, start };
  } catch {
    return undefined;
  }
}

/** @internal Whether the process that wrote `claim` still runs (exported for tests). */
export async function isAlive(claim: Claim): Promise<boolean> {
  if (claim.host !== hostname()) return true;
  try {
    process.kill(claim.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const info = await processInfo(claim.pid);
  // A zombie has exited and will never write again; only its parent has not reaped it yet.
  if (info && (info.state === 'Z' || info.state === 'X')) return false;
  if (claim.start === undefined) return true;
  return info === undefined || info.start === claim.start;
}

async function readClaim(path: string): Promise<Claim | 'damaged' | undefined> {
  let text: string;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_RDONLY | NOFOLLOW | NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new StoreCorruptError(path, 'a symlink is where a lock claim should be');
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new StoreCorruptError(path, 'not a regular file where a lock claim should be');
    if (stat.size > MAX_CLAIM_BYTES) return 'damaged';
    text = (await handle.readFile()).toString('utf8');
  } finally {
    await handle.close().catch(() => {});
  }
  try {
    const value = JSON.parse(text) as Partial<Claim>;
    if (typeof value.pid === 'number' && typeof value.host === 'string') {
      return value.start === undefined
        ? { pid: value.pid, host: value.host }
        : { pid: value.pid, host: value.host, start: String(value.start) };
    }
  } catch {
    // Claims are renamed into place whole, so a damaged one is left over from a power loss.
  }
  return 'damaged';
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** A held lock. */
export interface DirLock {
  /**
   * True while this process's claim is still the one in the lock directory. False once it was
   * removed or replaced (an operator deleting the lock, another process taking over): from then on
   * this process must not write. Cheap (one `fstat` of the open claim), so it is asked before each
   * write batch.
   */
  held(): boolean;
  /** Removes the claim. Idempotent. */
  release(): Promise<void>;
}

/**
 * Takes the lock on `lockDir` (created if missing), or rejects with `STORE_LOCKED` naming the
 * holder's pid when another live process holds it, `STORE_CORRUPT` when `lockDir` is not a
 * directory (a symlink is never followed).
 */
export async function acquireDirLock(lockDir: string): Promise<DirLock> {
  try {
    await fs.mkdir(lockDir, { recursive: true });
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === 'EEXIST' ||
      (error as NodeJS.ErrnoException).code === 'ENOTDIR'
    ) {
      throw new StoreCorruptError(lockDir, 'not a directory', { cause: error });
    }
    throw error;
  }
  // mkdir accepts an existing symlink to a directory; claims written through it would land outside.
  if (!(await fs.lstat(lockDir)).isDirectory()) throw new StoreCorruptError(lockDir, 'not a directory');
  const token = `${process.pid}-${randomBytes(8).toString('hex')}`;
  const mine = join(lockDir, `${token}${CLAIM_SUFFIX}`);
  const pending = join(lockDir, `${token}.tmp`);
  const claim: Claim = { pid: process.pid, host: hostname() };
  const start = (await processInfo(process.pid))?.start;
  if (start !== undefined) claim.start = start;
  let holder: Claim | undefined;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // Renamed into place whole, so no other process ever reads a half-written claim. The handle
    // stays open while the lock is held: its link count says whether the claim is still there.
    const handle = await fs.open(
      pending,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
      0o600,
    );
    try {
      await handle.writeFile(JSON.stringify(claim));
      await fs.rename(pending, mine);
    } catch (error) {
      await handle.close().catch(() => {});
      await removeIfExists(pending).catch(() => {});
      throw error;
    }
    holder = undefined;
    try {
      for (const name of await fs.readdir(lockDir)) {
        const path = join(lockDir, name);
        if (path === mine || !name.endsWith(CLAIM_SUFFIX)) continue;
        const other = await readClaim(path);
        if (other === undefined) continue;
        if (other !== 'damaged' && (await isAlive(other))) {
          holder = other;
          break;
        }
        await removeIfExists(path);
      }
    } catch (error) {
      // Our claim names a live process: left behind, it would lock everyone out while we live.
      await handle.close().catch(() => {});
      await removeIfExists(mine).catch(() => {});
      throw error;
    }
    if (holder === undefined) {
      let released = false;
      return {
        held() {
          if (released) return false;
          try {
            return fstatSync(handle.fd).nlink > 0;
          } catch {
            return false;
          }
        },
        async release() {
          if (released) return;
          released = true;
          let stillOurs = false;
          try {
            stillOurs = fstatSync(handle.fd).nlink > 0;
          } catch {
            // The handle is unusable: leave the claim; a dead claim is taken over by the next opener.
          }
          await handle.close().catch(() => {});
          // A claim that is no longer ours (replaced) must not be removed: it may be another holder's.
          if (stillOurs) await removeIfExists(mine);
        },
      };
    }
    await handle.close().catch(() => {});
    await removeIfExists(mine);
    if (attempt < ATTEMPTS - 1) {
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * (attempt + 1)));
    }
  }
  throw new AgentSessionsError(
    ErrorCode.STORE_LOCKED,
    `directory ${JSON.stringify(lockDir)} is locked by process ${holder?.pid ?? 'unknown'} on ${holder?.host ?? 'this host'}`,
  );
}
