// The web chat's page: plain TypeScript on agent-sessions/client, bundled for the browser by the
// example's server. It reads like code against the in-process manager.
import { AgentSessionsClient, type SessionEvent, type SessionSnapshot } from 'agent-sessions/client';

const client = new AgentSessionsClient({
  baseUrl: '/api',
  reconnect: { initialDelayMs: 200, maxDelayMs: 2_000 },
});

const $ = <T extends HTMLElement>(id: string) => document.querySelector<T>(`[data-testid="${id}"]`)!;
const messages = $('messages');
const approvals = $('approvals');
const input = $<HTMLInputElement>('input');
const status = $('status');

let current: string | undefined;
let subscription: AbortController | undefined;
let answer: HTMLElement | undefined;

function setStatus(state: 'connected' | 'reconnecting' | 'idle', text: string = state): void {
  status.dataset.state = state;
  status.textContent = text;
}

function bubble(role: 'user' | 'assistant' | 'note', text: string): HTMLElement {
  const element = document.createElement('div');
  element.className = `bubble ${role}`;
  element.dataset.role = role;
  element.textContent = text;
  messages.append(element);
  messages.scrollTop = messages.scrollHeight;
  return element;
}

async function refreshList(): Promise<void> {
  const { sessions } = await client.listSessions({ limit: 50 });
  const list = $('sessions');
  list.replaceChildren(
    ...sessions.map((summary) => {
      const item = document.createElement('li');
      item.textContent = summary.title || 'New chat';
      item.className = summary.id === current ? 'current' : '';
      item.onclick = () => void open(summary.id);
      return item;
    }),
  );
}

function askApproval(event: Extract<SessionEvent, { type: 'tool_call_confirmation' }>): void {
  const card = document.createElement('div');
  card.className = 'approval';
  card.dataset.testid = 'approval';
  card.textContent = `The agent wants to run ${event.toolCall.name} ${event.toolCall.arguments}`;
  for (const [label, confirmation] of [
    ['Approve', 'approve'],
    ['Reject', 'reject'],
  ] as const) {
    const button = document.createElement('button');
    button.textContent = label;
    button.dataset.testid = confirmation;
    button.onclick = async () => {
      card.remove();
      await client.resumeSession(event.sessionId, {
        confirmation,
        confirmationId: event.confirmationId,
        ...(confirmation === 'reject' ? { reason: 'the user said no' } : {}),
      });
      bubble('note', `${confirmation === 'approve' ? '✔ approved' : '✘ rejected'} ${event.toolCall.name}`);
    };
    card.append(button);
  }
  approvals.append(card);
}

function show(event: SessionEvent): void {
  switch (event.type) {
    case 'user_message':
      bubble('user', event.message.content);
      answer = undefined;
      break;
    case 'agent_choice':
      answer ??= bubble('assistant', '');
      answer.textContent += event.content;
      messages.scrollTop = messages.scrollHeight;
      break;
    case 'tool_call_confirmation':
      askApproval(event);
      break;
    case 'tool_call_response':
      bubble('note', `tool: ${event.response}`);
      answer = undefined;
      break;
    case 'session_title':
      $('title').textContent = event.title;
      void refreshList();
      break;
    case 'stream_stopped':
      answer = undefined;
      if (event.reason !== 'end_turn') bubble('note', `(turn ${event.reason})`);
      break;
  }
}

function render(snapshot: SessionSnapshot): void {
  messages.replaceChildren();
  approvals.replaceChildren();
  answer = undefined;
  $('title').textContent = snapshot.session.title || 'New chat';
  for (const item of snapshot.session.items) {
    if (item.kind !== 'message') continue;
    const { role, content } = item.message;
    if (role === 'user') bubble('user', content);
    else if (role === 'assistant' && content !== '') bubble('assistant', content);
    else if (role === 'tool') bubble('note', `tool: ${content}`);
  }
  for (const pending of snapshot.pending.confirmations) {
    askApproval({
      type: 'tool_call_confirmation',
      sessionId: snapshot.session.id,
      turnId: pending.turnId,
      toolCall: pending.toolCall,
      confirmationId: pending.confirmationId,
      seq: 0,
      timestamp: '',
    });
  }
}

/** Shows a session: its snapshot, then its live events from exactly where the snapshot ended. */
async function open(id: string): Promise<void> {
  subscription?.abort();
  const controller = new AbortController();
  subscription = controller;
  current = id;
  let snapshot = await client.getSessionSnapshot(id);
  // Another session was chosen while this snapshot was on its way: it must not be drawn over it.
  if (controller.signal.aborted) return;
  render(snapshot);
  void refreshList();
  setStatus('connected');
  try {
    for await (const event of client.streamEvents(id, {
      since: snapshot.lastEventSeq,
      signal: controller.signal,
      onConnectionChange: (change) =>
        change.state === 'connected' ? setStatus('connected') : setStatus('reconnecting', 'reconnecting…'),
    })) {
      if (event.type === 'gap') {
        // Events were lost (the server restarted): the store has the history, so reload it.
        snapshot = await client.getSessionSnapshot(id);
        if (controller.signal.aborted) return;
        render(snapshot);
        setStatus('connected', 'connected (reloaded)');
        continue;
      }
      show(event);
    }
  } catch (error) {
    if (!controller.signal.aborted) bubble('note', `(disconnected: ${(error as Error).message})`);
  }
}

$('new-session').onclick = async () => {
  const session = await client.createSession();
  await refreshList();
  void open(session.id);
};

$('composer').onsubmit = async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!current || text === '') return;
  input.value = '';
  // Starts a turn when idle, queues it behind the running one otherwise; the key makes a retry safe.
  await client.followUpSession(current, [text], { idempotencyKey: crypto.randomUUID() });
};

$('steer').onclick = async () => {
  const text = input.value.trim();
  if (!current || text === '') return;
  input.value = '';
  await client
    .steerSession(current, [text])
    .catch((error: Error) => bubble('note', `(steer: ${error.message})`));
};

void refreshList();
