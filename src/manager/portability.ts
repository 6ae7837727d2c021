/**
 * Sessions that leave or join a store whole: fork (a new session from a parent's history), export
 * (full records as a version-1 bundle) and import (a bundle back, ids and every field kept, so export
 * then import gives deep-equal sessions).
 *
 * - A fork holds the parent's items before its `beforeUserMessage`-th user message (0-based; all
 *   items when omitted), is titled `"<title> (fork N)"` with N one more than the highest fork number
 *   already used for that parent, and links the parent (`parentId`, `forkedFrom`). The parent is
 *   untouched.
 * - An import validates the whole bundle (and with `onConflict: 'error'` checks every id) before
 *   writing anything; `'skip'` keeps existing sessions, `'replace'` deletes them first (as
 *   `deleteSession` does: a running turn is cancelled).
 */
import { AgentSessionsError, ErrorCode, InvalidArgumentError, invalidArgument } from '../errors.js';
import { newId } from '../internal/ids.js';
import {
  assertSessionId,
  type ExportBundle,
  ExportBundleSchema,
  emptyUsage,
  type Session,
} from '../schemas.js';
import { assertAttributes, assertTitle } from './input.js';
import type { SessionRecords } from './session-records.js';
import type { ImportOptions, InputLimits } from './types.js';

/** What fork, export and import need from the manager. */
export interface PortabilityOptions {
  records: SessionRecords;
  /** A session was created (forked or imported): the manager announces it. */
  created(session: Session): void | Promise<void>;
  /** Deletes a session the way `deleteSession` does (for `onConflict: 'replace'`). */
  deleteSession(id: string): Promise<void>;
  /** Title and attributes limits, checked for every imported session before anything is written. */
  limits: InputLimits;
}

/** What {@link Portability.importSessions} resolves to. */
export interface ImportResult {
  imported: string[];
  skipped: string[];
  replaced: string[];
}

/** Fork, export and import; see the module documentation. */
export class Portability {
  readonly #options: PortabilityOptions;

  constructor(options: PortabilityOptions) {
    this.#options = options;
  }

  /** A new session holding the items before the `beforeUserMessage`-th user message. */
  async fork(id: string, options: { beforeUserMessage?: number } = {}): Promise<Session> {
    const { records } = this.#options;
    const parent = await records.get(id);
    let items = parent.items;
    const cut = options?.beforeUserMessage;
    if (cut !== undefined) {
      const userIndexes: number[] = [];
      parent.items.forEach((item, index) => {
        if (item.kind === 'message' && item.message.role === 'user') userIndexes.push(index);
      });
      if (!Number.isInteger(cut) || cut < 0 || cut >= userIndexes.length) {
        throw new InvalidArgumentError(
          `invalid beforeUserMessage ${String(cut)}: session ${JSON.stringify(id)} has ${userIndexes.length} user messages`,
          {
            issues: [
              {
                path: ['beforeUserMessage'],
                message: `expected an integer from 0 to ${userIndexes.length - 1}`,
              },
            ],
          },
        );
      }
      items = parent.items.slice(0, userIndexes[cut]);
    }
    const base = parent.title === '' ? 'Untitled' : parent.title;
    const number = 1 + (await this.#highestForkNumber(base, id));
    const now = new Date().toISOString();
    // What waits for a human and the event numbering belong to the parent, not to the fork.
    const { pendingApprovals: _pending, eventSeqReserved: _reserved, ...inherited } = parent;
    const fork: Session = {
      ...inherited,
      id: newId('ses'),
      title: `${base} (fork ${number})`,
      titleSource: 'manual',
      starred: false,
      items,
      usage: emptyUsage(),
      createdAt: now,
      updatedAt: now,
      parentId: id,
      forkedFrom: { sessionId: id, ...(cut === undefined ? {} : { beforeUserMessage: cut }) },
    };
    await records.create(fork);
    await this.#options.created(fork);
    return fork;
  }

  /** Full records of the sessions, as a version-1 bundle. `SESSION_NOT_FOUND` for any unknown id. */
  async exportSessions(ids: string[]): Promise<ExportBundle> {
    if (!Array.isArray(ids)) {
      throw new InvalidArgumentError('invalid ids: expected an array', {
        issues: [{ path: ['ids'], message: 'expected an array' }],
      });
    }
    for (const id of ids) assertSessionId(id);
    const { records } = this.#options;
    const sessions = await Promise.all(ids.map((id) => records.get(id)));
    return { version: 1, exportedAt: new Date().toISOString(), sessions };
  }

  /** Imports a bundle; see the module documentation. */
  async importSessions(bundle: ExportBundle, options: ImportOptions): Promise<ImportResult> {
    const onConflict = options?.onConflict;
    if (onConflict !== 'error' && onConflict !== 'skip' && onConflict !== 'replace') {
      throw new InvalidArgumentError('invalid onConflict: expected "error", "skip" or "replace"', {
        issues: [{ path: ['onConflict'], message: 'expected "error", "skip" or "replace"' }],
      });
    }
    // Depth first: a value nested thousands deep must be refused before anything walks it recursively.
    const candidates = (bundle as { sessions?: unknown } | undefined)?.sessions;
    if (Array.isArray(candidates)) {
      candidates.forEach((session: { title?: unknown; attributes?: unknown } | undefined, index) => {
        assertAttributes(session?.attributes, this.#options.limits, `sessions[${index}].attributes`);
        assertTitle(session?.title, this.#options.limits, `sessions[${index}].title`);
      });
    }
    const parsed = ExportBundleSchema.safeParse(bundle);
    if (!parsed.success) throw invalidArgument('import bundle', parsed.error);
    const sessions = parsed.data.sessions;
    const seen = new Set<string>();
    for (const session of sessions) {
      if (seen.has(session.id)) {
        throw new InvalidArgumentError(
          `invalid import bundle: session ${JSON.stringify(session.id)} appears twice`,
          { issues: [{ path: ['sessions'], message: `duplicate id ${session.id}` }] },
        );
      }
      seen.add(session.id);
    }
    const { records } = this.#options;
    const exists = await Promise.all(sessions.map((session) => records.exists(session.id)));
    if (onConflict === 'error') {
      const taken = sessions.filter((_, index) => exists[index]).map((session) => session.id);
      if (taken.length > 0) {
        throw new AgentSessionsError(
          ErrorCode.SESSION_EXISTS,
          `import refused: sessions already exist: ${taken.join(', ')}`,
        );
      }
    }
    const result: ImportResult = { imported: [], skipped: [], replaced: [] };
    for (const [index, session] of sessions.entries()) {
      if (exists[index]) {
        if (onConflict === 'skip') {
          result.skipped.push(session.id);
          continue;
        }
        await this.#options.deleteSession(session.id);
        result.replaced.push(session.id);
      }
      await records.create(session);
      result.imported.push(session.id);
      await this.#options.created(session);
    }
    return result;
  }

  /**
   * The highest N among titles `"<base> (fork N)"` already used by forks of `parentId`. Listings
   * carry no `parentId`, so the candidates are found by title and read from the highest number
   * down; the first that is a fork of this parent decides (typically one read).
   */
  async #highestForkNumber(base: string, parentId: string): Promise<number> {
    const { records } = this.#options;
    const prefix = `${base} (fork `;
    const candidates: Array<{ number: number; id: string }> = [];
    let cursor: string | undefined;
    do {
      const page = await records.list({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      for (const summary of page.sessions) {
        if (!summary.title.startsWith(prefix) || !summary.title.endsWith(')')) continue;
        const number = Number(summary.title.slice(prefix.length, -1));
        if (Number.isInteger(number) && number > 0) candidates.push({ number, id: summary.id });
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    candidates.sort((a, b) => b.number - a.number);
    for (const candidate of candidates) {
      const session = await records.get(candidate.id).catch(() => undefined);
      if (session?.parentId === parentId) return candidate.number;
    }
    return 0;
  }
}
