/**
 * `npm run demo`: agent-sessions doing its main job, in a terminal, offline.
 *
 * A SessionManager over a FileStore in `.demo-data/` (wiped at start) and the AI SDK runtime
 * (`agent-sessions/ai-sdk`) over a pretend model: the SDK's own MockLanguageModelV3, which reads its
 * prompt and answers deterministically (examples/shared/pretend-model.ts). Everything but the model
 * is what a host runs in production. It walks through a session's life and checks every
 * step: it exits 0 only if each one did what it should, so it is also a test.
 *
 * On a terminal it streams slowly, shows a spinner and asks you to approve the tool call. Without
 * one (`CI=true`, piped output) it answers by itself and finishes in a second or two.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import {
  AgentSessionsError,
  type Confirmation,
  type SessionEvent,
  type SessionEventOf,
  SessionManager,
  type TurnResult,
} from 'agent-sessions';
import { createAiSdkRuntime } from 'agent-sessions/ai-sdk';
import { FileStore } from 'agent-sessions/file';
import { pretendModels, pretendTools, pretendWeather } from '../examples/shared/pretend-model.js';
import { colour, EventPrinter, isInteractive } from '../examples/shared/terminal.js';

const interactive = isInteractive();
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = resolve(root, '.demo-data');
const printer = new EventPrinter();
const runtime = createAiSdkRuntime({
  models: pretendModels({ delayMs: interactive ? 45 : 0 }),
  tools: pretendTools,
  system: 'You are the agent-sessions demo agent.',
});
let checks = 0;
let stepNumber = 0;

function step(title: string): void {
  stepNumber++;
  printer.line('');
  printer.line(colour.bold(colour.blue(`━━ ${stepNumber}. ${title}`)));
}

function note(text: string): void {
  printer.line(colour.dim(`  ${text}`));
}

/** One checked claim: printed with a tick, or the demo fails here. */
function check(condition: unknown, claim: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${claim}`);
  checks++;
  printer.line(`  ${colour.green('✓')} ${claim}`);
}

function checkEqual<T>(actual: T, expected: T, claim: string): void {
  assert.deepStrictEqual(actual, expected, `check failed: ${claim}`);
  checks++;
  printer.line(`  ${colour.green('✓')} ${claim}`);
}

/** Prints a TurnStream's events as they arrive; `onEvent` may act on them (answer, steer…). */
async function watch(
  events: AsyncIterable<SessionEvent>,
  onEvent: (event: SessionEvent) => Promise<void> | void = () => {},
): Promise<SessionEvent[]> {
  const seen: SessionEvent[] = [];
  for await (const event of events) {
    seen.push(event);
    printer.print(event);
    await onEvent(event);
  }
  printer.newline();
  return seen;
}

function ofType<T extends SessionEvent['type']>(events: SessionEvent[], type: T): SessionEventOf<T>[] {
  return events.filter((event): event is SessionEventOf<T> => event.type === type);
}

function text(events: SessionEvent[], turnId?: string): string {
  return ofType(events, 'agent_choice')
    .filter((event) => turnId === undefined || event.turnId === turnId)
    .map((event) => event.content)
    .join('');
}

async function askHuman(
  toolName: string,
  args: string,
): Promise<{ confirmation: Confirmation; reason?: string }> {
  if (!interactive) {
    note(`(no terminal: answering "y" for you)`);
    return { confirmation: 'approve' };
  }
  printer.spinner.stop();
  const readline = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await readline.question(
      `  ${colour.yellow('?')} Allow ${colour.bold(toolName)}(${args})? ${colour.dim('[Y]es / [n]o / [a]lways for this tool')} `,
    );
    const choice = answer.trim().toLowerCase();
    if (choice === 'n' || choice === 'no') return { confirmation: 'reject', reason: 'the human said no' };
    if (choice === 'a' || choice === 'always') return { confirmation: 'approve-tool' };
    return { confirmation: 'approve' };
  } finally {
    readline.close();
  }
}

/** Resolves when the manager reports the end of a turn of this session. */
function turnEnded(manager: SessionManager, sessionId: string): Promise<void> {
  return new Promise((resolve) => {
    const listener = (event: { sessionId: string }) => {
      if (event.sessionId !== sessionId) return;
      manager.events.off('turn_ended', listener);
      resolve();
    };
    manager.events.on('turn_ended', listener);
  });
}

async function main(): Promise<void> {
  printer.line(colour.bold('agent-sessions demo'));
  note(
    `store: FileStore in ${relative(process.cwd(), dataDir) || '.'}/ · runtime: the AI SDK runtime over a pretend model (offline)`,
  );
  note(
    interactive
      ? 'you will be asked to approve a tool call'
      : 'no terminal: every answer is given automatically',
  );
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });

  let manager = new SessionManager({ runtime, store: new FileStore({ directory: dataDir }) });
  try {
    // ─────────────────────────────────────────────────────────────── create
    step('Create a session');
    const created = await manager.createSession();
    const id = created.id;
    note(`session ${id}`);
    const listed = await manager.listSessions();
    check(
      listed.sessions.some((summary) => summary.id === id),
      'the session is stored and listed',
    );

    // ─────────────────────────────────────────────────────────────── a live turn
    step('Stream a turn live');
    const first = await manager.runSession(id, { messages: ['Hello there!'] });
    const firstEvents = await watch(first);
    const firstResult = await first.done;
    checkEqual(firstResult.stopReason, 'end_turn', 'the turn ended normally (end_turn)');
    let session = await manager.getSession(id);
    const firstAnswer = ofType(firstEvents, 'message_added').at(-1)?.message.content;
    check(text(firstEvents) === firstAnswer, 'the streamed words add up to the stored answer');
    checkEqual(
      session.items.map((item) => (item.kind === 'message' ? item.message.role : item.kind)),
      ['user', 'assistant'],
      'history holds the question and the answer',
    );
    check(
      session.title === 'Hello there!',
      `a title was set from the first message: ${JSON.stringify(session.title)}`,
    );
    check(session.usage.outputTokens > 0, `usage was recorded: ${session.usage.outputTokens} output tokens`);

    // ─────────────────────────────────────────────────────────────── tool, steer, follow-up
    step('A tool call waits for you; meanwhile, a steered message and a follow-up');
    note('The runtime wants to call get_weather. Under the default policy the manager asks first.');
    note('While it waits we steer ("Also, keep it short.") and queue a follow-up for later.');
    const second = await manager.runSession(id, { messages: ['What is the weather in Paris?'] });
    let decision: { confirmation: Confirmation; reason?: string } | undefined;
    const secondEvents = await watch(second, async (event) => {
      if (event.type !== 'tool_call_confirmation') return;
      await manager.steerSession(id, ['Also, keep it short.']);
      note('→ steered: "Also, keep it short." (the runtime takes it after the tool result)');
      const followUp = await manager.followUpSession(id, ['Thanks! That is all.']);
      note(`→ follow-up "Thanks! That is all." is ${followUp.status} (it runs as its own turn)`);
      checkEqual(followUp.status, 'queued', 'the follow-up is queued behind the running turn');
      const snapshot = await manager.getSessionSnapshot(id);
      checkEqual(
        [
          snapshot.pending.confirmations.length,
          snapshot.queues.steer.length,
          snapshot.queues.followUp.length,
        ],
        [1, 1, 1],
        'the snapshot shows 1 pending confirmation, 1 steered message, 1 queued follow-up',
      );
      decision = await askHuman(event.toolCall.name, event.toolCall.arguments);
      await manager.resumeSession(id, { ...decision, confirmationId: event.confirmationId });
      note(`→ answered: ${decision.confirmation}`);
    });
    const secondResult: TurnResult = await second.done;
    checkEqual(secondResult.stopReason, 'end_turn', 'the stream ended normally');
    checkEqual(secondResult.discarded, [], 'nothing was discarded');
    const turns = [...new Set(ofType(secondEvents, 'stream_started').map((event) => event.turnId))];
    checkEqual(turns.length, 2, 'one TurnStream carried two turns: the request and the follow-up');
    const [toolTurn, followUpTurn] = turns as [string, string];
    const approved = decision?.confirmation !== 'reject';
    const response = ofType(secondEvents, 'tool_call_response')[0];
    check(
      approved ? response?.response === pretendWeather('Paris') : response?.isError === true,
      approved ? 'the tool ran after approval' : 'the tool did not run: you rejected it',
    );
    if (approved) {
      check(
        ofType(secondEvents, 'tool_call_output').some((event) => event.toolCallId === response?.toolCallId),
        "the tool's progress streamed as tool_call_output",
      );
    }
    const steeredEvent = ofType(secondEvents, 'user_message').find(
      (e) => e.message.content === 'Also, keep it short.',
    );
    check(
      steeredEvent?.turnId === toolTurn,
      'the steered message was taken by the running turn (takeSteering)',
    );
    check(text(secondEvents, toolTurn).includes('Also, keep it short.'), 'and the answer responds to it');
    const followUpEvent = ofType(secondEvents, 'user_message').find(
      (e) => e.message.content === 'Thanks! That is all.',
    );
    check(followUpEvent?.turnId === followUpTurn, 'the follow-up ran as the next turn, in the same stream');
    session = await manager.getSession(id);
    checkEqual(
      session.items.map((item) =>
        item.kind === 'message'
          ? `${item.message.role}${item.message.toolCalls ? '+toolCalls' : ''}`
          : item.kind,
      ),
      ['user', 'assistant', 'user', 'assistant+toolCalls', 'tool', 'user', 'assistant', 'user', 'assistant'],
      'history is stored in order, the tool call with its result',
    );
    const storedResult = session.items.find(
      (item) => item.kind === 'message' && item.message.role === 'tool',
    );
    check(
      storedResult?.kind === 'message' && storedResult.message.toolName === 'get_weather',
      'the stored result names its tool, so the model gets it back after a reload',
    );
    if (decision?.confirmation === 'approve-tool') {
      check(
        session.permissions.allow.includes('get_weather'),
        'get_weather is now always allowed in this session',
      );
    }

    // ─────────────────────────────────────────────────────────────── disconnect and resume
    step('A client disconnects mid-turn and resumes from its last seq');
    const start = (await manager.getSessionSnapshot(id)).lastEventSeq;
    const ended = turnEnded(manager, id);
    const started = await manager.followUpSession(id, ['Tell me about lighthouses.']);
    checkEqual(started.status, 'started', 'a follow-up on an idle session starts a turn at once');
    const before: SessionEvent[] = [];
    for await (const event of manager.streamEvents(id, { since: start })) {
      before.push(event);
      printer.print(event);
      if (event.type === 'agent_choice') break; // the client goes away
    }
    const lastSeq = before.at(-1)!.seq;
    printer.newline();
    note(`✂ disconnected after seq ${lastSeq}; the turn runs on without the client`);
    await ended;
    note(`⟳ reconnecting with since: ${lastSeq}`);
    const after: SessionEvent[] = [];
    for await (const event of manager.streamEvents(id, { since: lastSeq })) {
      after.push(event);
      printer.print(event);
      if (event.type === 'stream_stopped') break;
    }
    printer.newline();
    const full: SessionEvent[] = [];
    for await (const event of manager.streamEvents(id, { since: start })) {
      full.push(event);
      if (event.type === 'stream_stopped') break;
    }
    check(
      after.length > 0 && ofType(after, 'gap').length === 0,
      `${after.length} events missed while away were replayed, no gap`,
    );
    checkEqual(
      [...before, ...after].map((event) => event.seq),
      full.map((event) => event.seq),
      `seqs before + after the disconnect equal the full log (${full[0]?.seq}…${full.at(-1)?.seq}), none lost or repeated`,
    );
    checkEqual(
      full.map((event, index) => event.seq - index),
      full.map(() => start + 1),
      'the log is gapless',
    );

    // ─────────────────────────────────────────────────────────────── restart
    step('Restart: close the manager, open the same folder again, continue');
    const beforeRestart = await manager.getSession(id);
    const seqBeforeRestart = (await manager.getSessionSnapshot(id)).lastEventSeq;
    await manager.close();
    note('manager closed (it closed the FileStore and released the directory lock)');
    manager = new SessionManager({ runtime, store: new FileStore({ directory: dataDir }) });
    note('new FileStore + new SessionManager on the same folder');
    const afterRestart = await manager.getSession(id);
    checkEqual(
      afterRestart,
      beforeRestart,
      `the session came back whole (${afterRestart.items.length} items)`,
    );
    checkEqual(
      (await manager.getSessionSnapshot(id)).lastEventSeq,
      0,
      'event logs live in memory: the new manager starts a fresh one',
    );
    const stale = manager.streamEvents(id, { since: seqBeforeRestart })[Symbol.asyncIterator]();
    const third = await manager.runSession(id, { messages: ['Hello again, after the restart.'] });
    await watch(third);
    checkEqual((await third.done).stopReason, 'end_turn', 'a new turn ran on the restored session');
    const firstAfterRestart = await stale.next();
    await stale.return?.();
    check(
      firstAfterRestart.value?.type === 'gap' && firstAfterRestart.value.reason === 'reset',
      `a client still holding seq ${seqBeforeRestart} gets a "gap" (reset) first, then the new events`,
    );
    checkEqual(
      (await manager.getSession(id)).items.length,
      beforeRestart.items.length + 2,
      'the new turn was added to the old history',
    );

    // ─────────────────────────────────────────────────────────────── fork
    step('Fork the conversation before the second question');
    const parent = await manager.getSession(id);
    const fork = await manager.forkSession(id, { beforeUserMessage: 1 });
    note(`fork ${fork.id}: ${JSON.stringify(fork.title)}`);
    checkEqual(fork.items, parent.items.slice(0, 2), 'the fork holds the first exchange only');
    checkEqual(fork.title, `${parent.title} (fork 1)`, 'it is titled after its parent');
    checkEqual(fork.forkedFrom, { sessionId: id, beforeUserMessage: 1 }, 'it remembers where it came from');
    checkEqual((await manager.getSession(id)).items, parent.items, 'the parent is untouched');

    // ─────────────────────────────────────────────────────────────── export
    step('Export both sessions');
    const bundle = await manager.exportSessions([id, fork.id]);
    const file = resolve(dataDir, 'export.json');
    await writeFile(file, `${JSON.stringify(bundle, null, 2)}\n`);
    note(`wrote ${relative(process.cwd(), file)} (${bundle.sessions.length} sessions)`);
    const elsewhere = new SessionManager({ runtime });
    try {
      await elsewhere.importSessions(bundle, { onConflict: 'error' });
      checkEqual(
        await Promise.all([id, fork.id].map((sessionId) => elsewhere.getSession(sessionId))),
        bundle.sessions,
        'imported into another manager, the sessions are identical',
      );
    } finally {
      await elsewhere.close();
    }
  } finally {
    await manager.close();
  }
  printer.line('');
  printer.line(colour.green(colour.bold(`All ${checks} checks passed.`)));
}

// Without a terminal nothing waits for a human, so a hang is a failure, not patience.
const watchdog = interactive
  ? undefined
  : setTimeout(() => {
      printer.line(colour.red('✗ the demo did not finish within 60 s'));
      process.exit(1);
    }, 60_000).unref();

try {
  await main();
  clearTimeout(watchdog);
} catch (error) {
  printer.newline();
  printer.line(colour.red(colour.bold(`✗ step ${stepNumber} failed`)));
  const code = AgentSessionsError.isInstance(error) ? ` [${error.code}]` : '';
  printer.line(colour.red(`${error instanceof Error ? error.message : String(error)}${code}`));
  if (error instanceof Error && error.stack) printer.line(colour.dim(error.stack));
  process.exit(1);
}
