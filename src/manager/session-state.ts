import { Mutex } from 'async-mutex';
import { deepFreeze } from '../internal/freeze.js';
import type { ElicitationResult, ToolDecision } from '../runtime.js';
import type { Message, SafetyPolicy, Session, SessionItem, ToolCall } from '../schemas.js';
import { PendingRequests } from './pending.js';
import { BoundedQueue, type FollowUp, IdempotencyKeys } from './queues.js';
import type { ActiveRun } from './turn-runner.js';

/** What the snapshot shows of a pending elicitation. */
export interface ElicitationInfo {
  message: string;
  schema?: unknown;
  mode: 'form' | 'url';
  url?: string;
}

/**
 * The manager's copy of a session: metadata as last written, and the history as frozen items, so
 * each turn hands the runtime a frozen snapshot by copying references only.
 */
export class SessionCache {
  meta: Omit<Session, 'items'>;
  readonly items: SessionItem[];

  constructor(session: Session) {
    const { items, ...meta } = session;
    this.meta = meta;
    for (const item of items) deepFreeze(item);
    this.items = items;
  }

  /** Adds items the store accepted (they are frozen: callers must not mutate them afterwards). */
  push(items: SessionItem[]): void {
    for (const item of items) this.items.push(deepFreeze(item));
  }

  replaceMessage(messageId: string, message: Message): void {
    const index = this.items.findIndex((item) => item.kind === 'message' && item.message.id === messageId);
    if (index >= 0) this.items[index] = deepFreeze({ kind: 'message', message });
  }

  /** A deeply frozen session sharing the cached items (the array of references is new). */
  snapshot(): Readonly<Session> {
    // Frozen at run time; typed as the mutable record so runtimes can pass it where a Session is expected.
    const items = Object.freeze(this.items.slice()) as SessionItem[];
    return Object.freeze({ ...deepFreeze(structuredClone(this.meta)), items });
  }

  /** A mutable deep copy. */
  copy(): Session {
    return structuredClone({ ...this.meta, items: this.items });
  }
}

/** Everything the manager keeps per session in memory. */
export class SessionState {
  readonly id: string;
  /** The busy lock: held from admission until a TurnStream's last turn ended. */
  readonly busy = new Mutex();
  /** Serialises read-modify-write of metadata (permissions, policy, models, usage, titles). */
  readonly metadata = new Mutex();
  run: ActiveRun | undefined;
  readonly steer: BoundedQueue<Message>;
  readonly followUps: BoundedQueue<FollowUp>;
  readonly keys: IdempotencyKeys;
  readonly confirmations = new PendingRequests<
    { toolCall: ToolCall; readOnly?: boolean; safe?: boolean },
    ToolDecision
  >('tool confirmation');
  readonly elicitations = new PendingRequests<ElicitationInfo, ElicitationResult>('elicitation');
  cache: SessionCache | undefined;
  /** Counts metadata writes made without the cache, so a cache load that raced one reads again. */
  metadataWrites = 0;
  /** The policy `toggleToolApproval` restores. */
  previousPolicy: SafetyPolicy | undefined;
  /** Aborted on delete and close: stops background work such as title generation. */
  readonly controller = new AbortController();

  constructor(id: string, capacities: { steer: number; followUp: number; keys: number }) {
    this.id = id;
    this.steer = new BoundedQueue(capacities.steer, 'steering');
    this.followUps = new BoundedQueue(capacities.followUp, 'follow-up');
    this.keys = new IdempotencyKeys(capacities.keys);
  }

  /** Nothing in memory that a later call needs: the state can be dropped. */
  get idle(): boolean {
    return (
      this.run === undefined &&
      !this.busy.isLocked() &&
      !this.metadata.isLocked() &&
      this.steer.length === 0 &&
      this.followUps.length === 0 &&
      this.confirmations.size === 0 &&
      this.elicitations.size === 0 &&
      this.keys.size === 0 &&
      this.previousPolicy === undefined
    );
  }
}
