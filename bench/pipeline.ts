// bench/pipeline: what the manager's event pipeline costs over the runtime it drives.
//
// A plain runtime (an async generator, no ScriptedRuntime) yields 200 000 `agent_choice` events. In
// one run, interleaved repetition by repetition (median of 7 after a warm-up):
//   raw            `for await` over the runtime's `run()` alone;
//   stream         `runSession` on a MemoryStore, consumed through its TurnStream;
//   +1 sub         the same while 1 `streamEvents` subscriber reads concurrently (goal ≥ 0.45× raw);
//   +10 subs       the same with 10 subscribers;
//   +1 batch sub   the TurnStream read through `batches()` and 1 `streamEventBatches` subscriber
//                  (goal ≥ 0.55× raw);
//   +10 batch subs the same with 10 batch subscribers (goal ≥ 0.35× raw);
//   floor rows     the least these designs can cost here, in the same run: a bare loop over the same
//                  runtime that numbers each event into a 1024-event ring and hands it to 2 readers
//                  (a TurnStream and 1 subscriber) or 11, per event (an await per event per reader,
//                  of a pending promise when the reader waits: the least a per-event async iterator
//                  costs) or in batches (an await per batch, woken on the
//                  next turn of the event loop or at half the ring). No validation, no timestamps,
//                  no store, no partial answer: what no implementation of these readers can beat.
// Every consumer is checked to receive every event, in order, once. Each row also shows the ratio in
// CPU time, steadier on a loaded machine (the last row gives the load average during the run).
//
// Then the heap of 10 000 idle sessions that each ran one short turn (~10 events), measured with
// `gc()` (exposed through v8 flags), before and after the idle release of event logs and runtimes,
// with the MemoryStore's own growth (the turn's two messages) measured apart.
import { availableParallelism, loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RuntimeEvent, SessionEvent } from '../src/events.js';
import { SessionManager } from '../src/manager/session-manager.js';
import type { Runtime, TurnContext } from '../src/runtime.js';
import type { SessionItem } from '../src/schemas.js';
import { MemoryStore } from '../src/stores/memory.js';
import { type BenchRow, median, report } from './lib.js';

/** Events a turn of `events` deltas produces besides them: stream_started, user_message, session_title, stream_stopped. */
const TURN_OVERHEAD = 4;

/** A runtime yielding `events` text deltas per turn, each a fresh object as a real model adapter makes. */
export function deltaRuntime(events: number): Runtime {
  return {
    async *run(): AsyncGenerator<RuntimeEvent> {
      for (let index = 0; index < events; index++) yield { type: 'agent_choice', content: 'tok ' };
    },
  };
}

/** A runtime answering each turn with a short reply: 8 deltas and the assistant message. */
function replyRuntime(): Runtime {
  return {
    async *run(): AsyncGenerator<RuntimeEvent> {
      const words = ['Sure', ', ', 'here ', 'is ', 'a ', 'short ', 'answer', '.'];
      for (const word of words) yield { type: 'agent_choice', content: word };
      yield {
        type: 'message_added',
        message: {
          id: `msg-${Math.random().toString(36).slice(2)}`,
          role: 'assistant',
          content: words.join(''),
          createdAt: new Date().toISOString(),
        },
      };
    },
  };
}

async function consume(iterable: AsyncIterable<SessionEvent>, until?: string): Promise<number> {
  let count = 0;
  for await (const event of iterable) {
    count++;
    if (until !== undefined && event.type === until) break;
  }
  return count;
}

/** Reads batches; throws unless the seqs are consecutive. Returns the number of events. */
async function consumeBatches(
  iterable: AsyncIterable<readonly SessionEvent[]>,
  until?: string,
): Promise<number> {
  let count = 0;
  let last = -1;
  for await (const batch of iterable) {
    for (const event of batch) {
      if (last !== -1 && event.seq !== last + 1) throw new Error(`seq ${event.seq} after ${last}`);
      last = event.seq;
      count++;
      if (until !== undefined && event.type === until) return count;
    }
  }
  return count;
}

/**
 * The least a pipeline of `readers` readers can cost (see the floor rows above): a bare loop that
 * numbers events into a ring and wakes its readers, per event or in batches.
 */
interface FloorReader {
  cursor: number;
  wake: (() => void) | undefined;
  batch: boolean;
}

class FloorLog {
  readonly ring: { seq: number }[] = [];
  last = 0;
  ended = false;
  readonly #readers: FloorReader[] = [];
  readonly #perEvent: FloorReader[] = [];
  /** Some batch reader waits. */
  #batchWaiting = false;
  #wakeAt = Number.POSITIVE_INFINITY;
  #scheduled = false;

  append(event: { seq: number }): void {
    const seq = ++this.last;
    event.seq = seq;
    if (this.ring.length < 1024) this.ring.push(event);
    else this.ring[(seq - 1) % 1024] = event;
    for (const reader of this.#perEvent) if (reader.wake !== undefined) this.#wake(reader);
    if (this.#batchWaiting) {
      if (seq >= this.#wakeAt) this.#wakeBatches();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#wakeBatches();
        });
      }
    }
  }

  end(): void {
    this.ended = true;
    for (const reader of this.#readers) this.#wake(reader);
  }

  #wake(reader: FloorReader): void {
    const wake = reader.wake;
    reader.wake = undefined;
    wake?.();
  }

  #wakeBatches(): void {
    this.#wakeAt = Number.POSITIVE_INFINITY;
    this.#batchWaiting = false;
    for (const reader of this.#readers) if (reader.batch && reader.cursor <= this.last) this.#wake(reader);
  }

  /**
   * Counts what a reader receives: per event, one await per event (of a pending promise when it
   * waits for it); in batches, one await per batch.
   */
  async read(batch: boolean): Promise<number> {
    const reader: FloorReader = { cursor: this.last + 1, wake: undefined, batch };
    this.#readers.push(reader);
    if (!batch) this.#perEvent.push(reader);
    let count = 0;
    for (;;) {
      if (reader.cursor <= this.last) {
        if (batch) {
          const taken: { seq: number }[] = [];
          for (; reader.cursor <= this.last; reader.cursor++)
            taken.push(this.ring[(reader.cursor - 1) % 1024]!);
          count += taken.length;
        } else {
          const event = this.ring[(reader.cursor++ - 1) % 1024]!;
          if (event.seq > 0) count++;
          // An async iterator's next() is awaited even when its event is already there.
          await undefined;
        }
        continue;
      }
      if (this.ended) return count;
      await new Promise<void>((resolve) => {
        reader.wake = resolve;
        if (batch) {
          this.#batchWaiting = true;
          this.#wakeAt = Math.min(this.#wakeAt, reader.cursor + 512);
        }
      });
    }
  }
}

/** The floor of `readers` readers over the runtime (see {@link FloorLog}). */
async function timeFloor(events: number, readers: number, batch: boolean): Promise<Timing> {
  const runtime = deltaRuntime(events);
  const stop = startTiming();
  const log = new FloorLog();
  const counts = Array.from({ length: readers }, () => log.read(batch));
  for await (const event of runtime.run({} as TurnContext)) {
    const value = event as { type: string; content?: string };
    log.append({ type: value.type, content: value.content, seq: 0 } as { seq: number });
  }
  log.end();
  const received = await Promise.all(counts);
  const timing = stop();
  for (const count of received) {
    if (count !== events) throw new Error(`floor: a reader got ${count} events, expected ${events}`);
  }
  return timing;
}

/** Wall-clock and CPU milliseconds of one measurement. */
interface Timing {
  ms: number;
  /** User + system CPU time of the process (all its threads, the GC's included). */
  cpuMs: number;
}

/** Starts a {@link Timing}; call the result to stop it. */
function startTiming(): () => Timing {
  const cpu = process.cpuUsage();
  const start = performance.now();
  return () => {
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    return { ms, cpuMs: (used.user + used.system) / 1000 };
  };
}

/** A raw `for await` over the runtime. */
async function timeRaw(events: number): Promise<Timing> {
  const runtime = deltaRuntime(events);
  const stop = startTiming();
  let count = 0;
  for await (const _event of runtime.run({} as TurnContext)) count++;
  const timing = stop();
  if (count !== events) throw new Error(`raw: got ${count} events, expected ${events}`);
  return timing;
}

/**
 * Milliseconds of one turn through `runSession`, read through its TurnStream and by `subscribers`
 * streamEvents readers (per event, or with `batches` through `TurnStream.batches()` and
 * `streamEventBatches`).
 */
async function timeManager(events: number, subscribers: number, batches = false): Promise<Timing> {
  const manager = new SessionManager({ runtime: () => deltaRuntime(events), store: new MemoryStore() });
  try {
    const { id } = await manager.createSession();
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    const expected = events + TURN_OVERHEAD;
    const stop = startTiming();
    const readers = Array.from({ length: subscribers }, () =>
      batches
        ? consumeBatches(manager.streamEventBatches(id, { since: lastEventSeq }), 'stream_stopped')
        : consume(manager.streamEvents(id, { since: lastEventSeq }), 'stream_stopped'),
    );
    const stream = await manager.runSession(id, { messages: ['go'] });
    const counts = await Promise.all([
      batches ? consumeBatches(stream.batches()) : consume(stream),
      ...readers,
    ]);
    const timing = stop();
    const result = await stream.done;
    if (result.stopReason !== 'end_turn') throw new Error(`turn stopped with ${result.stopReason}`);
    for (const count of counts) {
      if (count !== expected) throw new Error(`a reader got ${count} events, expected ${expected}`);
    }
    return timing;
  } finally {
    await manager.close();
  }
}

/** One configuration of {@link measurePipeline}. */
export interface PipelineResult {
  name: string;
  /** Median milliseconds. */
  ms: number;
  eventsPerSecond: number;
  /** Speed relative to raw in the same run (1 = as fast as raw). */
  ratio: number;
  /**
   * The same ratio in CPU time (raw's CPU ms ÷ this one's): steadier than `ratio` on a loaded
   * machine, where waiting for a core inflates wall-clock times; it counts the GC's helper threads.
   */
  cpuRatio: number;
  /** The goal for `ratio`, when the configuration has one. */
  goal?: number;
}

/**
 * Measures raw, TurnStream, and TurnStream with 1 and 10 subscribers, per event and in batches,
 * interleaved per repetition. Throws if any reader misses or duplicates an event (or a subscriber
 * lags).
 */
export async function measurePipeline(
  options: { events?: number; repetitions?: number; warmups?: number } = {},
): Promise<PipelineResult[]> {
  const events = options.events ?? 200_000;
  const repetitions = options.repetitions ?? 7;
  const warmups = options.warmups ?? 3; // V8 reaches steady state after a few 200k-event turns
  const configs: Array<{ name: string; goal?: number; measure: () => Promise<Timing> }> = [
    { name: 'raw for await', measure: () => timeRaw(events) },
    { name: 'runSession → TurnStream', measure: () => timeManager(events, 0) },
    { name: '+ 1 streamEvents subscriber', goal: 0.45, measure: () => timeManager(events, 1) },
    { name: '+ 10 streamEvents subscribers', measure: () => timeManager(events, 10) },
    {
      name: 'batches: TurnStream + 1 streamEventBatches subscriber',
      goal: 0.55,
      measure: () => timeManager(events, 1, true),
    },
    {
      name: 'batches: TurnStream + 10 streamEventBatches subscribers',
      goal: 0.35,
      measure: () => timeManager(events, 10, true),
    },
    { name: 'floor: bare loop + 2 per-event readers', measure: () => timeFloor(events, 2, false) },
    { name: 'floor: bare loop + 11 per-event readers', measure: () => timeFloor(events, 11, false) },
    { name: 'floor: bare loop + 2 batch readers', measure: () => timeFloor(events, 2, true) },
    { name: 'floor: bare loop + 11 batch readers', measure: () => timeFloor(events, 11, true) },
  ];
  const samples = configs.map(() => [] as Timing[]);
  // The order rotates each round: in a fixed order each configuration would always inherit the
  // garbage (and the collection it brings) of the same predecessor, raw the heaviest one's.
  for (let round = 0; round < warmups + repetitions; round++) {
    for (let step = 0; step < configs.length; step++) {
      const index = (step + round) % configs.length;
      const config = configs[index]!;
      const timing = await config.measure();
      if (round >= warmups) samples[index]!.push(timing);
    }
  }
  const medians = samples.map((values) => median(values.map((timing) => timing.ms)));
  const cpuMedians = samples.map((values) => median(values.map((timing) => timing.cpuMs)));
  const raw = medians[0]!;
  return configs.map((config, index) => ({
    name: config.name,
    ms: medians[index]!,
    eventsPerSecond: events / (medians[index]! / 1000),
    ratio: raw / medians[index]!,
    cpuRatio: cpuMedians[0]! / cpuMedians[index]!,
    ...(config.goal === undefined ? {} : { goal: config.goal }),
  }));
}

/** A `gc()` function: the global one under `--expose-gc`, else one exposed through v8 flags. */
export function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapUsed(gc: () => void): number {
  for (let pass = 0; pass < 3; pass++) gc();
  return process.memoryUsage().heapUsed;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Heap bytes per idle session. */
export interface IdleSessionsResult {
  sessions: number;
  /** What the manager and store hold per session after one turn, before any idle release. */
  afterTurnBytes: number;
  /** The same once event logs were released and runtimes (with the cached history) closed. */
  afterReleaseBytes: number;
  /** The MemoryStore's own growth per session for the turn's two messages (included in the above). */
  storeItemsBytes: number;
  /** Events in the turn each session ran. */
  eventsPerTurn: number;
}

/** Heap bytes per session that the MemoryStore adds for one short turn's writes, made directly. */
async function measureStoreShare(sessions: number, gc: () => void): Promise<number> {
  const control = new MemoryStore();
  const controlManager = new SessionManager({ runtime: replyRuntime, store: control });
  const controlIds: string[] = [];
  for (let index = 0; index < sessions; index++) controlIds.push((await controlManager.createSession()).id);
  const controlBefore = heapUsed(gc);
  for (const id of controlIds) {
    const now = new Date().toISOString();
    const items: SessionItem[] = [
      { kind: 'message', message: { id: `u-${id}`, role: 'user', content: 'hello', createdAt: now } },
      {
        kind: 'message',
        message: {
          id: `a-${id}`,
          role: 'assistant',
          content: 'Sure, here is a short answer.',
          createdAt: now,
        },
      },
    ];
    await control.appendItems(id, items);
    await control.updateSession(id, { title: 'hello', titleSource: 'heuristic' });
  }
  const controlAfter = heapUsed(gc);
  await controlManager.close();
  return (controlAfter - controlBefore) / sessions;
}

/**
 * Creates `sessions` sessions, runs one short turn in each, and measures the heap after the turns
 * and after the idle release (`releaseAfterMs` for both event logs and runtimes).
 */
export async function measureIdleSessions(
  options: { sessions?: number; releaseAfterMs?: number; gc?: () => void } = {},
): Promise<IdleSessionsResult> {
  const sessions = options.sessions ?? 10_000;
  const releaseAfterMs = options.releaseAfterMs ?? 300;
  const gc = options.gc ?? exposeGc();

  // In its own call, so nothing of it is still reachable from this frame when the manager is measured.
  const storeItemsBytes = await measureStoreShare(sessions, gc);

  const manager = new SessionManager({
    runtime: replyRuntime,
    store: new MemoryStore(),
    eventLogReleaseAfterMs: releaseAfterMs,
    idleRuntimeTtlMs: releaseAfterMs,
  });
  try {
    const ids: string[] = [];
    for (let index = 0; index < sessions; index++) ids.push((await manager.createSession()).id);
    const before = heapUsed(gc);
    let eventsPerTurn = 0;
    for (const id of ids) {
      const stream = await manager.runSession(id, { messages: ['hello'] });
      eventsPerTurn = await consume(stream);
    }
    const afterTurn = heapUsed(gc);
    // Timers are only served once the turn loop above yields to the event loop, all at once: leave
    // them several rounds of `releaseAfterMs` (log idle checks re-arm) plus slack for 10 000 closes.
    await sleep(releaseAfterMs * 4 + 2_000);
    const afterRelease = heapUsed(gc);
    return {
      sessions,
      afterTurnBytes: (afterTurn - before) / sessions,
      afterReleaseBytes: (afterRelease - before) / sessions,
      storeItemsBytes,
      eventsPerTurn,
    };
  } finally {
    await manager.close();
  }
}

/** `npm run bench -- pipeline`: prints the table and one BENCH_JSON line. */
export async function run(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const events = Number(process.env.PIPELINE_EVENTS ?? 200_000);
  const pipeline = await measurePipeline({ events });
  const raw = pipeline[0]!;
  const rows: BenchRow[] = pipeline.map((result, index) => ({
    name: `${result.name} (${events} events)`,
    ms: result.ms,
    ...(index === 0 ? {} : { baselineMs: raw.ms }),
    ...(result.goal === undefined
      ? {}
      : { goal: `≥ ${result.goal}× raw`, pass: result.ratio >= result.goal }),
    note: `${Math.round(result.eventsPerSecond).toLocaleString('en-US')} events/s, CPU-time ratio ${result.cpuRatio.toFixed(2)}`,
  }));
  const idle = await measureIdleSessions();
  const kb = (bytes: number) => `${Math.round(bytes).toLocaleString('en-US')} B/session`;
  rows.push(
    {
      name: `heap: ${idle.sessions} idle sessions after 1 turn (${idle.eventsPerTurn} events)`,
      ms: 0,
      note: kb(idle.afterTurnBytes),
    },
    { name: 'heap: the same after idle release', ms: 0, note: kb(idle.afterReleaseBytes) },
    { name: "heap: of which MemoryStore's 2 messages", ms: 0, note: kb(idle.storeItemsBytes) },
    {
      name: 'heap: manager per idle session after release',
      ms: 0,
      note: kb(idle.afterReleaseBytes - idle.storeItemsBytes),
    },
  );
  const loadAfter = loadavg()[0]!;
  rows.push({
    name: 'machine load (1-minute average) before and after',
    ms: 0,
    note: `${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)} on ${availableParallelism()} cores`,
  });
  report('pipeline', rows, {
    load: { before: loadBefore, after: loadAfter, cores: availableParallelism() },
    events,
    pipeline: pipeline.map(({ name, ms, eventsPerSecond, ratio, cpuRatio, goal }) => ({
      name,
      ms,
      eventsPerSecond,
      ratio,
      cpuRatio,
      ...(goal === undefined ? {} : { goal }),
    })),
    idle,
  });
}
