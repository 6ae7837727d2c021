// Issue 10, "a fault-injection suite": every store call a turn makes (cold cache and warm cache) is
// failed before it writes, after it writes (applied, then reported as failed), twice in a row, and
// from there on; after each case the invariants are checked. The short form runs in `npm test`;
// `npm run test:faults` (FAULT_GAPS) adds pairs of faults some calls apart.
//
// It runs on MemoryStore and on PostgresStore (issue 14: a real database, each run in its own
// schema; every case on fresh store objects over one pool, so a cold cache is a fresh store).
// The short form on PostgreSQL runs two of the scripts; the long form all of them.
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { AgentSessionsError } from '../../src/errors.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { PostgresStore } from '../../src/postgres/store.js';
import type { Session } from '../../src/schemas.js';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory.js';
import {
  InjectedStoreError,
  type StoreMethod,
  type StoreMethodArgs,
} from '../../src/testing/failing-store.js';
import { InterceptingStore } from '../../src/testing/intercepting-store.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { DATABASE_URL, probePostgres, uniqueName, whenServer } from '../helpers/servers.js';

/** Where a case's sessions live: a store, and a fresh store object on the same data (cold cache). */
interface Backend {
  create(): Store;
  reopen(previous: Store): Store;
}

const memory: Backend = {
  create: () => new MemoryStore(),
  // MemoryStore has nothing to close: the same object is the same data.
  reopen: (previous) => previous,
};

type Mode = 'before' | 'after' | 'twice' | 'always' | 'apart';
const MODES: readonly Exclude<Mode, 'apart'>[] = ['before', 'after', 'twice', 'always'];

/** Fails store calls by their position since {@link arm}: before or after forwarding them. */
class FaultStore extends InterceptingStore {
  calls: StoreMethod[] = [];
  #armed = false;
  #index = 0;
  #target = -1;
  #mode: Mode = 'before';
  #failures = 0;

  #second = -1;

  /** `apart`: calls `target` (applied, then failed) and `second` (failed before writing). */
  arm(target: number, mode: Mode, second = -1): void {
    this.#second = second;
    this.#armed = true;
    this.#index = 0;
    this.#target = target;
    this.#mode = mode;
    this.#failures = 0;
    this.calls = [];
  }

  disarm(): void {
    this.#armed = false;
  }

  get failures(): number {
    return this.#failures;
  }

  protected override async intercept<M extends StoreMethod, R>(
    method: M,
    _args: StoreMethodArgs[M],
    forward: () => Promise<R>,
  ): Promise<R> {
    if (!this.#armed) return forward();
    const index = this.#index++;
    this.calls.push(method);
    const hit =
      (this.#mode === 'always' && index >= this.#target) ||
      (this.#mode === 'twice' && (index === this.#target || index === this.#target + 1)) ||
      ((this.#mode === 'before' || this.#mode === 'after') && index === this.#target) ||
      (this.#mode === 'apart' && (index === this.#target || index === this.#second));
    if (!hit) return forward();
    this.#failures++;
    if (this.#mode === 'after' || (this.#mode === 'apart' && index === this.#target)) await forward();
    throw new InjectedStoreError(method);
  }
}

interface Script {
  name: string;
  /** Scripts the faulted turn on `scripted`; returns what to run and with which options. */
  setup(scripted: ScriptedRuntime): { model?: string };
  /** Called while the turn runs (steering); `ended` settles when the turn's stream was drained. */
  during?(
    manager: SessionManager,
    id: string,
    scripted: ScriptedRuntime,
    ended: Promise<unknown>,
  ): Promise<void>;
}

const usage = { inputTokens: 3, outputTokens: 5 };

const SCRIPTS: Script[] = [
  {
    name: 'reply with usage and a model override',
    setup(scripted) {
      scripted.reply('hello there', { usage });
      return { model: 'fast' };
    },
  },
  {
    name: 'an approved tool call',
    setup(scripted) {
      scripted.turn([
        step.authorize({ name: 'read', arguments: { path: 'a' } }, { safe: true }),
        step.reply('read it', { usage }),
      ]);
      return {};
    },
  },
  {
    name: 'two tool calls and a reply',
    setup(scripted) {
      scripted.turn([
        step.authorize({ name: 'read', arguments: { path: 'a' } }, { safe: true }),
        step.authorize({ name: 'read', arguments: { path: 'b' } }, { safe: true, result: 'B' }),
        step.reply('both', { usage }),
      ]);
      return { model: 'slow' };
    },
  },
  {
    name: 'steering taken mid-turn',
    setup(scripted) {
      scripted.turn([step.hold('steer'), step.takeSteering(), step.reply('steered', { usage })]);
      return {};
    },
    async during(manager, id, scripted, ended) {
      // The turn reaches its hold, or ends before it (a fault failed it earlier) — however slow the
      // store is.
      const held = await Promise.race([
        scripted.waitUntilHeld('steer').then(() => true),
        ended.then(
          () => false,
          () => false,
        ),
      ]);
      if (!held) return;
      await manager.steerSession(id, ['and also this']).catch(() => undefined);
      scripted.release('steer');
    },
  },
];

function violationsOf(session: Session, acknowledged: string[]): string[] {
  const violations: string[] = [];
  const messages = session.items.flatMap((item) => (item.kind === 'message' ? [item.message] : []));
  const open = new Set<string>();
  for (const message of messages) {
    if (message.role === 'user' && open.size > 0)
      violations.push('user message between a call and its result');
    if (message.role === 'assistant') for (const call of message.toolCalls ?? []) open.add(call.id);
    if (message.role === 'tool' && message.toolCallId !== undefined) open.delete(message.toolCallId);
  }
  if (open.size > 0) violations.push(`tool calls without a result: ${[...open].join(',')}`);
  for (const text of acknowledged) {
    const count = messages.filter((message) => message.role === 'user' && message.content === text).length;
    if (count !== 1) violations.push(`acknowledged message ${JSON.stringify(text)} stored ${count} times`);
  }
  const ids = messages.map((message) => message.id);
  if (new Set(ids).size !== ids.length) violations.push('a message id is stored twice');
  return violations;
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _event of stream) {
    // read to the end
  }
}

/** Runs one turn with a fault at store call `target`; returns the violations found. */
async function runCase(
  backend: Backend,
  script: Script,
  warm: boolean,
  target: number,
  mode: Mode,
  second = -1,
): Promise<{ violations: string[]; calls: number; failures: number }> {
  const inner = backend.create();
  let store = new FaultStore(inner);
  const violations: string[] = [];
  const acknowledged: string[] = [];
  let scripted = new ScriptedRuntime();
  let manager = new SessionManager({
    runtime: scripted.factory,
    store: store as Store,
    titleGenerator: async () => 'A title',
  });
  const { id } = await manager.createSession({ safetyPolicy: 'autonomous' });
  if (warm) {
    scripted.reply('warming up');
    await drain(await manager.runSession(id, { messages: ['warm'] }));
    acknowledged.push('warm');
  } else {
    await manager.close();
    store = new FaultStore(backend.reopen(inner));
    scripted = new ScriptedRuntime();
    manager = new SessionManager({
      runtime: scripted.factory,
      store: store as Store,
      titleGenerator: async () => 'A title',
    });
  }
  const { model } = script.setup(scripted);
  const typed = (error: unknown, where: string) => {
    if (!AgentSessionsError.isInstance(error)) violations.push(`${where}: untyped ${String(error)}`);
  };
  store.arm(target, mode, second);
  try {
    const stream = await manager.runSession(id, {
      messages: ['faulted'],
      ...(model === undefined ? {} : { model }),
    });
    acknowledged.push('faulted');
    const drained = drain(stream);
    await Promise.all([drained, script.during?.(manager, id, scripted, drained)]);
  } catch (error) {
    typed(error, 'faulted turn');
  }
  const calls = store.calls.length;
  const failures = store.failures;
  store.disarm();
  // The same manager admits another turn (no stuck busy lock), on a valid history. Scripted for
  // the session, so it runs before whatever the faulted turn left unused.
  scripted.reply('next', { sessionId: id });
  try {
    await drain(await manager.runSession(id, { messages: ['next'] }));
    acknowledged.push('next');
  } catch (error) {
    typed(error, 'next turn');
    violations.push(`next turn failed: ${String(error)}`);
  }
  const session = await manager.getSession(id);
  violations.push(...violationsOf(session, acknowledged));
  // Record and runtime agree on the model override at the next turn.
  const agent = session.agent ?? 'default';
  const recorded = session.agentModelOverrides[agent];
  if (scripted.currentModel(id, agent) !== recorded) {
    violations.push(
      `runtime model ${String(scripted.currentModel(id, agent))} but record ${String(recorded)}`,
    );
  }
  // The runtime saw a valid history at that next turn too.
  const seen = scripted.turnsOf(id).at(-1)?.messages ?? [];
  violations.push(
    ...violationsOf(
      { ...session, items: seen.map((message) => ({ kind: 'message', message })) } as Session,
      [],
    ),
  );
  await manager.close().catch((error: unknown) => typed(error, 'close'));
  return { violations, calls, failures };
}

/**
 * The long form (`npm run test:faults`) adds, for every pair of calls up to this far apart, an
 * applied-then-failed write followed by a failure before writing.
 */
const gaps = Number(process.env.FAULT_GAPS ?? 0);

async function runSuite(backend: Backend, scripts: readonly Script[]): Promise<void> {
  let cases = 0;
  let injected = 0;
  const found: string[] = [];
  for (const script of scripts) {
    for (const warm of [false, true]) {
      // How many store calls the turn makes without faults.
      const baseline = await runCase(backend, script, warm, Number.MAX_SAFE_INTEGER, 'before');
      cases++;
      found.push(...baseline.violations.map((violation) => `${script.name} baseline: ${violation}`));
      for (let target = 0; target < baseline.calls; target++) {
        const combinations: Array<[Mode, number]> = MODES.map((mode) => [mode, -1]);
        for (let gap = 2; gap <= gaps && target + gap < baseline.calls; gap++) {
          combinations.push(['apart', target + gap]);
        }
        for (const [mode, second] of combinations) {
          const result = await runCase(backend, script, warm, target, mode, second);
          cases++;
          injected += result.failures;
          found.push(
            ...result.violations.map(
              (violation) =>
                `${script.name} ${warm ? 'warm' : 'cold'} call ${target} ${mode} ${second}: ${violation}`,
            ),
          );
        }
      }
    }
  }
  expect(injected, 'faults were injected').toBeGreaterThan(cases / 2);
  expect(
    { violations: found.length, found: found.slice(0, 20) },
    `${cases} cases, ${injected} injected faults, ${found.length} violations`,
  ).toEqual({ violations: 0, found: [] });
}

test('fault injection: every store call of a turn, four fault modes, cold and warm cache, keeps every invariant', async () => {
  await runSuite(memory, SCRIPTS);
}, 120_000);

const postgres = await probePostgres();
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
admin.on('error', () => {});
afterAll(() => admin.end());

whenServer(postgres, 'fault injection on PostgresStore', () => {
  describe('PostgresStore', () => {
    test('fault injection on PostgresStore: every store call of a turn, four fault modes, cold and warm cache, keeps every invariant', async () => {
      const schema = uniqueName('faults');
      // Each case's stores share this pool (a store given a pool never ends it on close).
      const backend: Backend = {
        create: () => new PostgresStore({ pool: admin, schema }),
        reopen: () => new PostgresStore({ pool: admin, schema }),
      };
      try {
        await runSuite(
          backend,
          gaps > 0 ? SCRIPTS : SCRIPTS.filter((_, index) => index === 1 || index === 3),
        );
      } finally {
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      }
    }, 600_000);
  });
});
