// What the manager holds in memory for one session, grouped by owner: the record handle
// (session-records.ts), the queues of steered messages and follow-ups (queues.ts) and the requests
// waiting for a human (authorization.ts). Each part is changed only through its own module; the
// manager drops a LiveSession that holds nothing a later call needs.
import { cloneRecord } from '../internal/clone.js';
import { SessionApprovals } from './authorization.js';
import { TurnQueues } from './queues.js';
import type { SessionRecord } from './session-records.js';
import type { SessionSnapshot } from './types.js';

/** One session's in-memory state. */
export class LiveSession {
  readonly id: string;
  readonly record: SessionRecord;
  readonly queues: TurnQueues;
  readonly approvals = new SessionApprovals();
  /** Made on first use: most sessions never need a signal, and an AbortSignal costs ~700 bytes. */
  #controller: AbortController | undefined;
  #ended = false;
  #endReason: unknown;

  constructor(record: SessionRecord, capacities: { steer: number; followUp: number; keys: number }) {
    this.id = record.id;
    this.record = record;
    this.queues = new TurnQueues(capacities);
  }

  /** Aborted when the session is deleted or the manager closes: work that outlives a turn stops. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#ended) this.#controller.abort(this.#endReason);
    }
    return this.#controller.signal;
  }

  /** The session was deleted or the manager closed: this state is no longer the session's. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Ends this state (delete, close). */
  end(reason: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endReason = reason;
    this.#controller?.abort(reason);
  }

  /** Holds nothing a later call needs (no metadata write in flight, empty queues and approvals). */
  get idle(): boolean {
    return !this.record.busy && this.queues.empty && this.approvals.empty;
  }

  /** What waits for a human or a turn, as a snapshot shows it (copies). */
  waiting(): Pick<SessionSnapshot, 'pending' | 'queues'> {
    const { confirmations, elicitations } = this.approvals;
    return {
      pending: {
        confirmations: confirmations.entries().map((entry) => ({
          confirmationId: entry.id,
          turnId: entry.turnId,
          toolCall: cloneRecord(entry.info.toolCall),
        })),
        elicitations: elicitations.entries().map((entry) => ({
          elicitationId: entry.id,
          turnId: entry.turnId,
          ...cloneRecord(entry.info),
        })),
      },
      queues: {
        steer: cloneRecord([...this.queues.steer.peek()]),
        followUp: cloneRecord(this.queues.followUps.peek().map((followUp) => followUp.messages)),
      },
    };
  }
}
