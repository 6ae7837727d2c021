import { AgentSessionsError, ErrorCode, InvalidArgumentError } from '../errors.js';

/** One request that waits for a human: a tool confirmation or an elicitation. */
export interface PendingEntry<Info, Answer> {
  id: string;
  turnId: string;
  info: Info;
  resolve(answer: Answer): void;
  reject(error: unknown): void;
}

/**
 * The requests of one session that wait for a human answer. A request settles exactly once: by an
 * answer, or by its turn's cancellation (which rejects the runtime's wait).
 */
export class PendingRequests<Info, Answer> {
  readonly #entries = new Map<string, PendingEntry<Info, Answer>>();
  /** Entries being answered (see {@link take}). */
  readonly #taken = new Map<string, PendingEntry<Info, Answer>>();
  readonly #kind: string;

  constructor(kind: string) {
    this.#kind = kind;
  }

  get size(): number {
    return this.#entries.size + this.#taken.size;
  }

  /** Registers a request; the promise settles with the answer, or rejects when the turn's signal aborts. */
  add(id: string, turnId: string, info: Info, signal: AbortSignal): Promise<Answer> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<Answer>((resolve, reject) => {
      const onAbort = () => {
        this.#entries.delete(id);
        this.#taken.delete(id);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#entries.set(id, {
        id,
        turnId,
        info,
        resolve: (answer) => {
          signal.removeEventListener('abort', onAbort);
          this.#entries.delete(id);
          this.#taken.delete(id);
          resolve(answer);
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          this.#entries.delete(id);
          this.#taken.delete(id);
          reject(error);
        },
      });
    });
  }

  /**
   * The entry an answer is for: the one with `id`, or the only one. `NOTHING_PENDING` when none
   * waits (or none with that id); `INVALID_ARGUMENT` when several wait and no id was given.
   */
  select(sessionId: string, id: string | undefined): PendingEntry<Info, Answer> {
    if (id !== undefined) {
      const entry = this.#entries.get(id);
      if (!entry) {
        throw new AgentSessionsError(
          ErrorCode.NOTHING_PENDING,
          `no pending ${this.#kind} ${JSON.stringify(id)} in session ${JSON.stringify(sessionId)}`,
        );
      }
      return entry;
    }
    if (this.#entries.size === 0) {
      throw new AgentSessionsError(
        ErrorCode.NOTHING_PENDING,
        `nothing pending: no ${this.#kind} waits in session ${JSON.stringify(sessionId)}`,
      );
    }
    if (this.#entries.size > 1) {
      throw new InvalidArgumentError(
        `${this.#entries.size} ${this.#kind}s are pending in session ${JSON.stringify(sessionId)}: name one by id`,
        { issues: [{ path: ['id'], message: 'required when several are pending' }] },
      );
    }
    return this.#entries.values().next().value as PendingEntry<Info, Answer>;
  }

  /**
   * Like {@link select}, and removes the entry so a concurrent answer finds nothing pending. Put it
   * back with {@link restore} when answering fails; its turn's cancellation still rejects it.
   */
  take(sessionId: string, id: string | undefined): PendingEntry<Info, Answer> {
    const entry = this.select(sessionId, id);
    this.#entries.delete(entry.id);
    this.#taken.set(entry.id, entry);
    return entry;
  }

  /** Returns a taken entry to the pending set (its answer could not be applied). */
  restore(entry: PendingEntry<Info, Answer>): void {
    if (this.#taken.delete(entry.id)) this.#entries.set(entry.id, entry);
  }

  /** Rejects the requests of one turn (it ended without them being answered). */
  rejectTurn(turnId: string, error: unknown): void {
    for (const entry of [...this.#entries.values(), ...this.#taken.values()]) {
      if (entry.turnId === turnId) entry.reject(error);
    }
  }

  entries(): PendingEntry<Info, Answer>[] {
    return [...this.#entries.values()];
  }

  /** Rejects every waiting request (delete, close). */
  rejectAll(error: unknown): void {
    for (const entry of [...this.#entries.values(), ...this.#taken.values()]) entry.reject(error);
  }
}
