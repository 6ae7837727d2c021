/**
 * Admission: whether a turn may start, and the writes that start it. A turn is created only after
 * all of this succeeded; until then nothing of it runs.
 *
 * In order:
 * 1. **Claim** the session among this process's callers, synchronously: if a turn runs, is being
 *    admitted, or a history edit holds the session, `SESSION_BUSY` (naming the turn). Of many
 *    concurrent calls exactly one gets past this point.
 * 2. **Lock**: take the {@link BusyLock} (which decides between processes; `SESSION_BUSY` if another
 *    holds it).
 * 3. **Validate** everything that can be refused, before any write: the session exists, the source
 *    resolves (`SOURCE_NOT_FOUND`, `SOURCE_UNAVAILABLE`), the runtime is made (`RUNTIME_FAILED`), a
 *    model override can be applied (`MODEL_SWITCHING_NOT_SUPPORTED`); an aborted signal rejects
 *    with its reason.
 * 4. **Write**, in order: the model override, the agent/source switch, the user messages.
 * 5. **Start** the {@link RunningTurn}, which from then on holds the lease until its last turn ended.
 *
 * If a step fails, the writes made are rolled back in reverse order, the lock is released, and the
 * call rejects with that step's error. A rollback that fails is logged and the session's cache is
 * dropped, so the next turn reads the store.
 *
 * While admission runs, the session counts as running for the others: `steerSession` and
 * `followUpSession` queue for it, and a cancel (`cancelTurn`, a signal, delete, close) is recorded on
 * the admission: if admission then succeeds, the turn starts cancelled (its first turn ends
 * `cancelled` at once and what was queued goes to `done.discarded`); if admission is refused, what
 * was queued meanwhile is not lost but runs at once as a turn of its own, its events going to the
 * event log.
 */
import type { EventEmitter } from 'eventemitter3';
import { AgentSessionsError, ErrorCode, SessionBusyError, toAgentSessionsError } from '../errors.js';
import { throwIfAborted, unrefTimer } from '../internal/abort.js';
import { newId } from '../internal/ids.js';
import type { Logger } from '../logger.js';
import type { Runtime, TurnResumption } from '../runtime.js';
import type { Message, SessionItem, SessionPatch } from '../schemas.js';
import type { Telemetry } from '../telemetry.js';
import type { BusyLease, BusyLock } from './busy-lock.js';
import type { EventSink } from './event-log.js';
import { repairHistory } from './history-repair.js';
import type { LiveSession } from './live-session.js';
import { alignModel, assertCanSwitchModels, DEFAULT_AGENT, switchModel } from './models.js';
import { RunningTurn } from './running-turn.js';
import type { RuntimePool } from './runtime-pool.js';
import type { TurnSlots } from './turn-slots.js';
import type { ManagerEvents, TitleGenerator } from './types.js';

/** A turn to admit. */
export interface AdmissionRequest {
  /** The turn's user messages, validated (empty only for a resumed turn). */
  messages: Message[];
  /** A turn that resumes requests answered after a restart: their calls stay open for the runtime. */
  resume?: TurnResumption;
  /** Switch the session to this agent source. */
  source?: string;
  /** Switch the session to this agent. */
  agent?: string;
  /** Set this model override before the turn. */
  model?: string;
  /** Aborting rejects the admission (before the user messages are written) or cancels the turn. */
  signal?: AbortSignal;
  onDetach: 'cancel' | 'continue';
  /** No one reads the TurnStream (a started follow-up). */
  detached: boolean;
}

/** What {@link Admission} works with. */
export interface AdmissionOptions {
  lock: BusyLock;
  runtimes: RuntimePool;
  /** The session's event log (made if needed, numbering after `reserved`), handed to the turn. */
  eventLog(sessionId: string, reserved: number | undefined): EventSink & { readonly lastSeq: number };
  /** `CLOSED` once the manager closed; `SESSION_NOT_FOUND` for a session deleted by this manager. */
  assertUsable(sessionId: string): void;
  observer: EventEmitter<ManagerEvents>;
  titleGenerator: TitleGenerator | undefined;
  logger: Logger;
  /** Registers work that must end before `waitStopped` resolves. */
  track(sessionId: string, work: Promise<unknown>): void;
  /** Keep partial answers of cancelled and failed turns. @default true */
  keepPartialAnswers?: boolean;
  /** How long a turn start waits for the previous `run()` to return before replacing the runtime. @default 5000 */
  runtimeStopTimeoutMs?: number;
  /** The manager's turn slots (`maxConcurrentTurns`), handed to every turn. */
  slots?: TurnSlots;
  /** Traces turns, handed to every turn. */
  telemetry?: Telemetry;
  /**
   * Called once a turn's lease is taken, before validation: work of a shared deployment (refresh a
   * stale cache, start numbering events, serve commands). A rejection refuses the turn. The
   * function it resolves to runs when the turn lets the session go, before the lease is released.
   */
  onLease?(live: LiveSession, lease: BusyLease): Promise<(() => Promise<void>) | undefined>;
}

/** A runtime's `run()` of this process, until it has returned. */
interface RuntimeRun {
  runtime: Runtime;
  stopped: Promise<void>;
}

/**
 * An admission in progress: it names its future first turn (for `SESSION_BUSY`) and records a
 * cancel that arrives before the turn exists.
 */
class AdmissionTicket {
  readonly turnId = newId('turn');
  cancelled: { reason: unknown } | undefined;
  readonly #settled: Promise<RunningTurn | undefined>;
  #settle!: (turn: RunningTurn | undefined) => void;

  constructor() {
    this.#settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  /** The turn it became, or `undefined` when refused. */
  get settled(): Promise<RunningTurn | undefined> {
    return this.#settled;
  }

  cancel(reason: unknown): void {
    this.cancelled ??= { reason };
  }

  settle(turn: RunningTurn | undefined): void {
    this.#settle(turn);
  }
}

/** What holds a session in this process. */
type Occupant =
  | { kind: 'admitting'; ticket: AdmissionTicket }
  | { kind: 'running'; turn: RunningTurn }
  | { kind: 'editing' };

function turnIdOf(occupant: Occupant): string | undefined {
  if (occupant.kind === 'admitting') return occupant.ticket.turnId;
  if (occupant.kind === 'running') return occupant.turn.currentTurnId;
  return undefined;
}

/** Admits turns and history edits, one holder per session; see the module documentation. */
export class Admission {
  readonly #occupants = new Map<string, Occupant>();
  /** Releases of this process still running their `onLease` clean-up, per session. */
  readonly #releasing = new Map<string, Promise<void>>();
  /** The last `run()` started on each session's runtime, until it returned. */
  readonly #runs = new Map<string, RuntimeRun>();
  readonly #options: AdmissionOptions;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** The admitted turn of the session, if one runs. */
  running(sessionId: string): RunningTurn | undefined {
    const occupant = this.#occupants.get(sessionId);
    return occupant?.kind === 'running' ? occupant.turn : undefined;
  }

  /** A turn runs or is being admitted: steering and follow-ups queue for it. */
  isActive(sessionId: string): boolean {
    const kind = this.#occupants.get(sessionId)?.kind;
    return kind === 'admitting' || kind === 'running';
  }

  /** Anything holds the session: a turn, an admission, a history edit. */
  isOccupied(sessionId: string): boolean {
    return this.#occupants.has(sessionId);
  }

  /** Cancels the running turn, or records the cancel on an admission in progress; false when neither. */
  cancel(sessionId: string, reason: unknown): boolean {
    const occupant = this.#occupants.get(sessionId);
    if (occupant?.kind === 'admitting') occupant.ticket.cancel(reason);
    else if (occupant?.kind === 'running') occupant.turn.cancel(reason);
    else return false;
    return true;
  }

  /** Cancels every turn and admission; resolves when they all ended. */
  async cancelAll(reason: unknown): Promise<void> {
    const ending: Promise<unknown>[] = [];
    for (const sessionId of [...this.#occupants.keys()]) {
      this.cancel(sessionId, reason);
      const ended = this.ended(sessionId);
      if (ended !== undefined) ending.push(ended);
    }
    await Promise.all(ending);
  }

  /**
   * Settles when the session's turn (or the admission in progress and the turn it becomes) ended:
   * `undefined` when neither runs. Never rejects.
   */
  ended(sessionId: string): Promise<unknown> | undefined {
    const occupant = this.#occupants.get(sessionId);
    if (occupant?.kind === 'admitting') return occupant.ticket.settled.then((turn) => turn?.stream.done);
    if (occupant?.kind === 'running') return occupant.turn.stream.done;
    return undefined;
  }

  /** Admits a turn (see the module documentation); resolves to it once it started. */
  async admit(live: LiveSession, request: AdmissionRequest): Promise<RunningTurn> {
    const id = live.id;
    const occupant = this.#occupants.get(id);
    if (occupant) throw new SessionBusyError(id, turnIdOf(occupant));
    const ticket = new AdmissionTicket();
    const admitting: Occupant = { kind: 'admitting', ticket };
    this.#occupants.set(id, admitting);
    const onAbort = () => ticket.cancel(request.signal?.reason);
    request.signal?.addEventListener('abort', onAbort, { once: true });
    let lease: BusyLease | undefined;
    let runtime: Runtime;
    let leased: (() => Promise<void>) | undefined;
    try {
      const releasing = this.#releasing.get(id);
      if (releasing !== undefined) await releasing;
      lease = await this.#options.lock.acquire(id);
      if (!lease) throw new SessionBusyError(id, undefined);
      leased = await this.#options.onLease?.(live, lease);
      runtime = await this.#prepare(live, request);
    } catch (error) {
      request.signal?.removeEventListener('abort', onAbort);
      ticket.settle(undefined);
      // Steering and follow-ups sent while this admission ran are admitted once the lock is free.
      await this.#release(live, lease, admitting, leased);
      throw error;
    }
    request.signal?.removeEventListener('abort', onAbort);
    const held = lease;
    this.#options.runtimes.hold(id);
    let running: Occupant | undefined;
    const turn = RunningTurn.start({
      sessionId: id,
      firstTurnId: ticket.turnId,
      messages: request.messages,
      runtime,
      record: live.record,
      queues: live.queues,
      approvals: live.approvals,
      events: this.#options.eventLog(id, live.record.cached?.meta.eventSeqReserved),
      observer: this.#options.observer,
      titleGenerator: this.#options.titleGenerator,
      sessionSignal: () => live.signal,
      logger: this.#options.logger,
      track: (work) => this.#options.track(id, work),
      onEnd: () => {
        this.#options.runtimes.releaseHold(id);
        void this.#release(live, held, running, leased);
      },
      onDetach: request.onDetach,
      ...(request.signal === undefined ? {} : { signal: request.signal }),
      detached: request.detached,
      ...(ticket.cancelled === undefined ? {} : { cancelled: ticket.cancelled }),
      ...(request.resume === undefined ? {} : { resume: request.resume }),
      keepPartialAnswers: this.#options.keepPartialAnswers ?? true,
      ...(this.#options.slots === undefined ? {} : { slots: this.#options.slots }),
      ...(this.#options.telemetry === undefined ? {} : { telemetry: this.#options.telemetry }),
      runStarted: (stopped) => {
        const run: RuntimeRun = { runtime, stopped };
        this.#runs.set(id, run);
        void stopped.finally(() => {
          if (this.#runs.get(id) === run) this.#runs.delete(id);
        });
      },
    });
    running = { kind: 'running', turn };
    this.#occupants.set(id, running);
    ticket.settle(turn);
    // A lease that can be lost (a shared lock): losing it cancels the turn; its writes are fenced.
    const lost = held.lost;
    if (lost) {
      const onLost = () => turn.cancel(lost.reason);
      if (lost.aborted) onLost();
      else {
        lost.addEventListener('abort', onLost, { once: true });
        const forget = () => lost.removeEventListener('abort', onLost);
        void turn.stream.done.then(forget, forget);
      }
    }
    return turn;
  }

  /**
   * Runs `work` holding the session's busy lock (history edits). `SESSION_BUSY` while a turn runs,
   * is admitted, or another edit holds it.
   */
  async whileIdle<T>(live: LiveSession, work: () => Promise<T>): Promise<T> {
    const sessionId = live.id;
    const occupant = this.#occupants.get(sessionId);
    if (occupant) throw new SessionBusyError(sessionId, turnIdOf(occupant));
    const editing: Occupant = { kind: 'editing' };
    this.#occupants.set(sessionId, editing);
    let lease: BusyLease | undefined;
    try {
      const releasing = this.#releasing.get(sessionId);
      if (releasing !== undefined) await releasing;
      lease = await this.#options.lock.acquire(sessionId);
      if (!lease) throw new SessionBusyError(sessionId, undefined);
      return await work();
    } finally {
      await this.#release(live, lease, editing);
    }
  }

  /**
   * Waits until the previous `run()` on the session's runtime has returned, so two never overlap
   * on one runtime (one that ignores its cancel signal may run on after its turn ended). Past
   * `runtimeStopTimeoutMs` the stuck runtime is closed (logged) and the turn gets a new one.
   */
  async #previousRunStopped(sessionId: string): Promise<void> {
    const run = this.#runs.get(sessionId);
    if (!run) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#options.runtimeStopTimeoutMs ?? 5_000);
      unrefTimer(timer);
    });
    const stuck = await Promise.race([run.stopped.then(() => false as const), timedOut]);
    clearTimeout(timer);
    if (!stuck) return;
    if (this.#runs.get(sessionId) === run) this.#runs.delete(sessionId);
    this.#options.logger.warn(
      'the previous run() did not return in time: closing and replacing the runtime',
      {
        sessionId,
        timeoutMs: this.#options.runtimeStopTimeoutMs ?? 5_000,
      },
    );
    if (this.#options.runtimes.peek(sessionId, null) === run.runtime)
      await this.#options.runtimes.close(sessionId);
  }

  /**
   * Steps 3 and 4 of admission: validation, then the writes, each undone on a later failure.
   * Resolves to the runtime the turn runs on.
   */
  async #prepare(live: LiveSession, request: AdmissionRequest): Promise<Runtime> {
    const { runtimes, logger } = this.#options;
    const id = live.id;
    const record = live.record;
    const signal = request.signal;
    const rollbacks: Array<() => Promise<void>> = [];
    try {
      this.#options.assertUsable(id);
      const cache = await record.load();
      throwIfAborted(signal);
      // Without a resolver a source is opaque: stored as given, never resolved.
      const switchingSource = request.source !== undefined && request.source !== cache.meta.source;
      const agent = request.agent ?? cache.meta.agent;
      await this.#previousRunStopped(id);
      const runtimeBefore = runtimes.peek(id, null);
      const runtime = await runtimes.forSession(cache, {
        ...(signal === undefined ? {} : { signal }),
        ...(switchingSource && runtimes.resolvesSources ? { switchTo: request.source } : {}),
        ...(agent === undefined ? {} : { agent }),
      });
      if (runtime !== runtimeBefore && switchingSource) {
        // Made for the new source: if the turn is refused, the stored source is the old one again.
        rollbacks.push(() => runtimes.close(id));
      }
      if (request.model !== undefined) assertCanSwitchModels(runtime, id);
      throwIfAborted(signal);
      // Runtime and record agree before anything else: a new runtime gets the session's override,
      // and one a failed write or rollback left on another model is set back.
      if (request.model === undefined) await alignModel(cache, runtime, agent ?? DEFAULT_AGENT);

      // 4.1 The model override, under the metadata lock like setSessionModel: both rewrite the map.
      const model = request.model;
      if (model !== undefined) {
        const undo = await record.exclusive(() =>
          switchModel(record, cache, runtime, agent ?? DEFAULT_AGENT, model, logger),
        );
        rollbacks.push(() => record.exclusive(undo));
      }
      // 4.2 The agent and source switch.
      const switchPatch: SessionPatch = {};
      if (request.agent !== undefined && request.agent !== cache.meta.agent)
        switchPatch.agent = request.agent;
      if (switchingSource) {
        const key = runtimes.resolvesSources ? runtimes.sourceKey(id) : undefined;
        switchPatch.source = key ?? request.source;
      }
      if (Object.keys(switchPatch).length > 0) {
        const previous: SessionPatch = {};
        if ('agent' in switchPatch) previous.agent = cache.meta.agent;
        if ('source' in switchPatch) previous.source = cache.meta.source;
        await record.patch(switchPatch);
        rollbacks.push(() => record.patch(previous));
      }
      // 4.3 The history made valid (see history-repair.ts): what a crash or a failed write left
      // open is closed before this turn's messages, and requests a restart left waiting are moot
      // now (a resumed turn takes them over; a new message moves on from them).
      throwIfAborted(signal);
      const keep = new Set((request.resume?.decisions ?? []).map(({ toolCall }) => toolCall.id));
      await repairHistory({ record, cache, keep, logger });
      const stalePending = cache.meta.pendingApprovals;
      if (stalePending !== undefined) {
        await record.exclusive(() => record.patch({ pendingApprovals: undefined }));
        rollbacks.push(() => record.exclusive(() => record.patch({ pendingApprovals: stalePending })));
      }
      // 4.4 The user messages: the last point where a refusal can still be undone.
      throwIfAborted(signal);
      if (request.messages.length > 0) {
        const items: SessionItem[] = request.messages.map((message) => ({ kind: 'message', message }));
        await record.append(items);
      }
      return runtime;
    } catch (error) {
      const rollbackErrors: unknown[] = [];
      for (const rollback of rollbacks.reverse()) {
        try {
          await rollback();
        } catch (rollbackError) {
          record.forget();
          rollbackErrors.push(rollbackError);
          logger.error('rolling back a refused turn failed', { sessionId: id, error: rollbackError });
        }
      }
      if (rollbackErrors.length === 0) throw error;
      throw rollbackFailed(error, rollbackErrors);
    }
  }

  /**
   * Gives up the session: starts releasing the lease, drops this process's claim if `occupant`
   * still holds it, and, once the lease is released, admits what waits in the queues (steering and
   * follow-ups sent to an admission that was then refused, or to a session a history edit held).
   */
  #release(
    live: LiveSession,
    lease: BusyLease | undefined,
    occupant: Occupant | undefined,
    beforeRelease?: () => Promise<void>,
  ): Promise<void> {
    const sessionId = live.id;
    // Called before the claim is dropped: the in-process lock is free again at once, so a caller
    // that sees the session idle can take it.
    const released = (async () => {
      // Only awaited when there is work: without it the lease is released synchronously, here.
      if (beforeRelease !== undefined) {
        try {
          await beforeRelease();
        } catch (error) {
          this.#options.logger.error('letting the session go failed', { sessionId, error });
        }
      }
      try {
        await lease?.release();
      } catch (error) {
        this.#options.logger.error('releasing the busy lock failed', { sessionId, error });
      }
    })();
    if (beforeRelease !== undefined) {
      // The lease is held a little longer (a flush): a turn or edit of this process waits for it
      // rather than being refused, as it would not be with the work done.
      this.#releasing.set(sessionId, released);
      void released.finally(() => {
        if (this.#releasing.get(sessionId) === released) this.#releasing.delete(sessionId);
      });
    }
    if (occupant !== undefined && this.#occupants.get(sessionId) === occupant)
      this.#occupants.delete(sessionId);
    if (live.queues.waiting)
      this.#options.track(
        sessionId,
        released.then(() => this.#runQueued(live)),
      );
    return released;
  }

  /** Admits what waits in the queues as a turn no one reads; its events go to the event log. */
  #runQueued(live: LiveSession): void {
    // Whoever holds the session now runs them: a turn drains the queues, and anything else admits
    // them when it lets go (see #release).
    if (live.ended || this.#occupants.has(live.id)) return;
    const next = live.queues.next();
    if (!next) return;
    const work = this.admit(live, { messages: next.messages, onDetach: 'continue', detached: true }).catch(
      (error: unknown) => {
        if (next.idempotencyKey !== undefined) live.queues.keys.release(next.idempotencyKey);
        this.#options.logger.error('starting queued messages failed', { sessionId: live.id, error });
      },
    );
    this.#options.track(live.id, work);
  }
}

/**
 * The refusal of a turn whose rollback failed too: the original error's code and message, and as
 * `cause` an `AggregateError` of the original error, then each rollback error, so a caller sees that
 * the session may keep part of the refused change.
 */
function rollbackFailed(error: unknown, rollbackErrors: unknown[]): AgentSessionsError {
  const original = toAgentSessionsError(error, ErrorCode.STORE_UNAVAILABLE, 'the turn was refused');
  return new AgentSessionsError(original.code, `${original.message} (rolling back also failed)`, {
    cause: new AggregateError([error, ...rollbackErrors], 'the turn was refused and rolling back failed'),
  });
}
