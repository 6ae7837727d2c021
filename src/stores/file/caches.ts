// What FileStore keeps between calls, each bounded: open append handles (so a write is one trip
// through the thread pool, not four) and decoded sessions (so a read does not decode the log
// again). FileStore holds an exclusive lock on its directory, so what it wrote is exactly what is
// on disk: both are dropped whenever a log is replaced, removed, repaired or found damaged.
import type { promises as fs } from 'node:fs';
import type { Session } from '../../schemas.js';

/** Sessions remembered as decoded once (ids only), for {@link SessionCache.decodedBefore}. */
const DECODED_IDS = 1024;

/** An open log handle for appends, and whether a write is using it. */
export interface AppendHandle {
  readonly handle: fs.FileHandle;
  busy: boolean;
  /** Dropped while busy: closed when released. */
  dropped: boolean;
}

/** Open append handles by session id, at most `max` (least recently used closed first). */
export class AppendHandles {
  readonly #max: number;
  readonly #open = new Map<string, AppendHandle>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#open.size;
  }

  /** The session's handle, marked busy and most recently used; undefined when none is open. */
  take(id: string): AppendHandle | undefined {
    const slot = this.#open.get(id);
    if (!slot) return undefined;
    this.#open.delete(id);
    this.#open.set(id, slot);
    slot.busy = true;
    return slot;
  }

  /** Keeps a newly opened handle (busy), closing the least recently used idle ones past the bound. */
  add(id: string, handle: fs.FileHandle): AppendHandle {
    this.drop(id);
    const slot: AppendHandle = { handle, busy: true, dropped: false };
    this.#open.set(id, slot);
    for (const [key, other] of this.#open) {
      if (this.#open.size <= this.#max) break;
      if (other.busy) continue;
      this.#open.delete(key);
      close(other);
    }
    return slot;
  }

  /** Ends a write's use of a handle. */
  release(slot: AppendHandle): void {
    slot.busy = false;
    if (slot.dropped) close(slot);
  }

  /** Forgets the session's handle and closes it (once released, if a write is using it). */
  drop(id: string): void {
    const slot = this.#open.get(id);
    if (!slot) return;
    this.#open.delete(id);
    slot.dropped = true;
    if (!slot.busy) close(slot);
  }

  /** Closes every handle. */
  async closeAll(): Promise<void> {
    const slots = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(slots.map((slot) => slot.handle.close().catch(() => {})));
  }
}

function close(slot: AppendHandle): void {
  slot.dropped = true;
  slot.handle.close().catch(() => {});
}

/**
 * Decoded sessions by id, as they are on disk, bounded by the log bytes they were decoded from
 * (least recently used evicted first). What is kept here is never handed out: readers get copies.
 */
export class SessionCache {
  readonly #maxBytes: number;
  readonly #sessions = new Map<string, { session: Session; bytes: number }>();
  /** Ids of sessions decoded once and not kept (at most DECODED_IDS, oldest forgotten first). */
  readonly #decoded = new Set<string>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Log bytes of the sessions kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Sessions kept. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The session kept for `id`, now the most recently used. */
  get(id: string): Session | undefined {
    const kept = this.#sessions.get(id);
    if (!kept) return undefined;
    this.#sessions.delete(id);
    this.#sessions.set(id, kept);
    return kept.session;
  }

  /** The session kept for `id`, its place unchanged (for changing it after a write). */
  peek(id: string): Session | undefined {
    return this.#sessions.get(id)?.session;
  }

  /**
   * Whether the session was decoded before without being kept: the first decode of a session is
   * handed out as it is (one read costs no copy), the second one is kept.
   */
  decodedBefore(id: string): boolean {
    if (this.#decoded.delete(id)) return true;
    if (this.#maxBytes === 0) return false;
    this.#decoded.add(id);
    if (this.#decoded.size > DECODED_IDS) this.#decoded.delete(this.#decoded.values().next().value as string);
    return false;
  }

  /** Keeps `session`, decoded from `bytes` of log; false (and nothing kept) when it is too large. */
  set(id: string, session: Session, bytes: number): boolean {
    this.delete(id);
    if (bytes > this.#maxBytes) return false;
    this.#sessions.set(id, { session, bytes });
    this.#bytes += bytes;
    this.#evict(id);
    return true;
  }

  /** Records that the session kept for `id` now stands for `bytes` of log. */
  resize(id: string, bytes: number): void {
    const kept = this.#sessions.get(id);
    if (!kept) return;
    if (bytes > this.#maxBytes) {
      this.delete(id);
      return;
    }
    this.#bytes += bytes - kept.bytes;
    kept.bytes = bytes;
    this.#evict(id);
  }

  delete(id: string): void {
    this.#decoded.delete(id);
    const kept = this.#sessions.get(id);
    if (!kept) return;
    this.#sessions.delete(id);
    this.#bytes -= kept.bytes;
  }

  clear(): void {
    this.#decoded.clear();
    this.#sessions.clear();
    this.#bytes = 0;
  }

  #evict(keep: string): void {
    for (const [id, kept] of this.#sessions) {
      if (this.#bytes <= this.#maxBytes) return;
      if (id === keep) continue;
      this.#sessions.delete(id);
      this.#bytes -= kept.bytes;
    }
  }
}
