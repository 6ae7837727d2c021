// bench/http: what serving a turn over HTTP/SSE costs, against the in-process pipeline measured in
// the same run.
//
// A runtime yields a 10 000-event turn (`agent_choice` deltas). In one run, interleaved repetition by
// repetition (median of 5 after 2 warm-ups):
//   in-process          `runSession`, its TurnStream read in the same process (the baseline);
//   in-process ×100     the same while 100 `streamEvents` subscribers read it;
//   HTTP, 1 client      `POST /api/sessions/{id}/run` on 127.0.0.1, the SSE read by one fetch client
//                       with the client's own parser (agent-sessions/client) until `turn_result`;
//   HTTP, 100 clients   100 `GET /api/sessions/{id}/events` SSE readers on 127.0.0.1 while the turn
//                       runs (started with followUpSession, so nothing else reads it).
// Server and clients share this process and its 2 cores, so the HTTP rows pay for both sides.
// Every reader is checked to receive every event exactly once; the event log holds the whole turn
// (eventLogCapacity 20 000) so no reader lags.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readSse } from '../src/client/sse.js';
import { createHttpHandler, toNodeListener } from '../src/http/index.js';
import { SessionManager } from '../src/manager/session-manager.js';
import { MemoryStore } from '../src/stores/memory.js';
import { type BenchRow, median, report } from './lib.js';
import { deltaRuntime } from './pipeline.js';

const EVENTS = Number(process.env.HTTP_BENCH_EVENTS ?? 10_000);
/** stream_started, user_message, session_title, stream_stopped. */
const OVERHEAD = 4;

interface Harness {
  manager: SessionManager;
  server: Server;
  api: string;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const manager = new SessionManager({
    runtime: () => deltaRuntime(EVENTS),
    store: new MemoryStore(),
    eventLogCapacity: 2 * EVENTS,
  });
  const server = createServer(toNodeListener(createHttpHandler(manager)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    manager,
    server,
    api: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`,
    async close() {
      await manager.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function readEvents(response: Response, until: string): Promise<number> {
  let count = 0;
  let last = 0;
  for await (const message of readSse(response.body!)) {
    if (message.event === 'turn_result') return count;
    if (message.id === undefined) continue;
    const seq = Number(message.id);
    if (last !== 0 && seq !== last + 1) throw new Error(`a reader skipped from ${last} to ${seq}`);
    last = seq;
    count++;
    if (message.event === until) return count;
  }
  throw new Error(`the stream ended before ${until}`);
}

async function inProcess(h: Harness, subscribers: number): Promise<number> {
  const { id } = await h.manager.createSession();
  const { lastEventSeq } = await h.manager.getSessionSnapshot(id);
  const start = performance.now();
  const readers = Array.from({ length: subscribers }, async () => {
    let count = 0;
    for await (const event of h.manager.streamEvents(id, { since: lastEventSeq })) {
      count++;
      if (event.type === 'stream_stopped') break;
    }
    return count;
  });
  const stream = await h.manager.runSession(id, { messages: ['go'] });
  let count = 0;
  for await (const _event of stream) count++;
  const counts = [count, ...(await Promise.all(readers))];
  const ms = performance.now() - start;
  for (const value of counts)
    if (value !== EVENTS + OVERHEAD) throw new Error(`in-process reader got ${value}`);
  await h.manager.deleteSession(id);
  return ms;
}

async function httpOne(h: Harness): Promise<number> {
  const { id } = await h.manager.createSession();
  const start = performance.now();
  const response = await fetch(`${h.api}/sessions/${id}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: ['go'] }),
  });
  const count = await readEvents(response, 'turn_result');
  const ms = performance.now() - start;
  if (count !== EVENTS + OVERHEAD) throw new Error(`HTTP reader got ${count}`);
  await h.manager.deleteSession(id);
  return ms;
}

async function httpMany(h: Harness, clients: number): Promise<number> {
  const { id } = await h.manager.createSession();
  const { lastEventSeq } = await h.manager.getSessionSnapshot(id);
  const responses = await Promise.all(
    Array.from({ length: clients }, () => fetch(`${h.api}/sessions/${id}/events?since=${lastEventSeq}`)),
  );
  const start = performance.now();
  const readers = responses.map((response) => readEvents(response, 'stream_stopped'));
  await h.manager.followUpSession(id, ['go']);
  const counts = await Promise.all(readers);
  const ms = performance.now() - start;
  for (const value of counts) if (value !== EVENTS + OVERHEAD) throw new Error(`an SSE reader got ${value}`);
  await h.manager.waitStopped(id, { timeoutMs: 60_000 });
  await h.manager.deleteSession(id);
  return ms;
}

/** `npm run bench -- http`: prints the table and one BENCH_JSON line. */
export async function run(): Promise<void> {
  const h = await harness();
  const configs: Array<{ name: string; events: number; measure: () => Promise<number> }> = [
    { name: 'in-process: runSession → TurnStream', events: EVENTS, measure: () => inProcess(h, 0) },
    {
      name: 'in-process: + 100 streamEvents subscribers',
      events: EVENTS * 101,
      measure: () => inProcess(h, 100),
    },
    { name: 'HTTP: POST /run → 1 SSE client', events: EVENTS, measure: () => httpOne(h) },
    { name: 'HTTP: GET /events → 100 SSE clients', events: EVENTS * 100, measure: () => httpMany(h, 100) },
  ];
  const samples = configs.map(() => [] as number[]);
  try {
    for (let round = 0; round < 7; round++) {
      for (const [index, config] of configs.entries()) {
        const ms = await config.measure();
        if (round >= 2) samples[index]!.push(ms);
      }
    }
  } finally {
    await h.close();
  }
  const medians = samples.map((values) => median(values));
  const baseline = medians[0]!;
  const rows: BenchRow[] = configs.map((config, index) => {
    const ms = medians[index]!;
    const perSecond = config.events / (ms / 1000);
    return {
      name: `${config.name} (${EVENTS} events)`,
      ms,
      ...(index === 0 ? {} : { baselineMs: baseline }),
      note: `${Math.round(perSecond).toLocaleString('en-US')} events/s delivered${
        index === 0
          ? ''
          : ` (${((perSecond / (EVENTS / (baseline / 1000))) * 100).toFixed(0)}% of in-process)`
      }`,
    };
  });
  report('http', rows, {
    events: EVENTS,
    results: configs.map((config, index) => ({
      name: config.name,
      ms: medians[index],
      eventsPerSecond: config.events / (medians[index]! / 1000),
    })),
  });
}
