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
// counts as alive (it must be removed by hand).
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AgentSessionsError, ErrorCode, StoreCorruptError } from '../errors.js';

interface Claim {
  pid: number;
  host: string;
  /** Process start time (Linux: jiffies after boot from /proc), to detect a reused pid. */
  start?: string;
}

const CLAIM_SUFFIX = '.claim';
const ATTEMPTS = 6;

async function processStart(pid: number): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

async function isAlive(claim: Claim): Promise<boolean> {
  if (claim.host !== hostname()) return true;
  try {
    process.kill(claim.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (claim.start === undefined) return true;
  const start = await processStart(claim.pid);
  return start === undefined || start === claim.start;
}

async function readClaim(path: string): Promise<Claim | 'damaged' | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, {
      encoding: 'utf8',
      flag: constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0),
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
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
  release(): Promise<void>;
}

/**
 * Takes the lock on `lockDir` (created if missing), or rejects with `STORE_LOCKED` naming the
 * holder's pid when another live process holds it, `STORE_CORRUPT` when `lockDir` is not a
 * directory (a symlink is never followed).
 */
export async function acquireDirLock(lockDir: string): Promise<DirLock> {
  await fs.mkdir(lockDir, { recursive: true });
  // mkdir accepts an existing symlink to a directory; claims written through it would land outside.
  if (!(await fs.lstat(lockDir)).isDirectory()) throw new StoreCorruptError(lockDir, 'not a directory');
  const token = `${process.pid}-${randomBytes(8).toString('hex')}`;
  const mine = join(lockDir, `${token}${CLAIM_SUFFIX}`);
  const pending = join(lockDir, `${token}.tmp`);
  const claim: Claim = { pid: process.pid, host: hostname() };
  const start = await processStart(process.pid);
  if (start !== undefined) claim.start = start;
  let holder: Claim | undefined;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // Renamed into place whole, so no other process ever reads a half-written claim.
    await fs.writeFile(pending, JSON.stringify(claim), { flag: 'wx', mode: 0o600 });
    await fs.rename(pending, mine);
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
      await removeIfExists(mine).catch(() => {});
      throw error;
    }
    if (holder === undefined) {
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          await removeIfExists(mine);
        },
      };
    }
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
