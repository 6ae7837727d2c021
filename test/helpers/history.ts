// Reading a session's events and checking its history, shared by the manager tests.
import { expect } from 'vitest';
import type { SessionEvent, SessionEventOf } from '../../src/events.js';
import type { SessionManager } from '../../src/manager/session-manager.js';
import type { Session } from '../../src/schemas.js';

/** Reads the stream until an event of `type` (inclusive); fails if the stream ends first. */
export async function readUntil<T extends SessionEvent['type']>(
  iterator: AsyncIterator<SessionEvent>,
  type: T,
): Promise<{ events: SessionEvent[]; event: SessionEventOf<T> }> {
  const events: SessionEvent[] = [];
  for (;;) {
    const result = await iterator.next();
    if (result.done) throw new Error(`the stream ended before a ${type} event`);
    events.push(result.value);
    if (result.value.type === type) return { events, event: result.value as SessionEventOf<T> };
  }
}

/** Reads the rest of a stream. */
export async function readRest(iterator: AsyncIterator<SessionEvent>): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for (;;) {
    const result = await iterator.next();
    if (result.done) return events;
    events.push(result.value);
  }
}

/** Reads the session's event log from the start until an event matches. */
export async function logUntil(
  manager: SessionManager,
  id: string,
  predicate: (event: SessionEvent) => boolean,
): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of manager.streamEvents(id)) {
    events.push(event);
    if (predicate(event)) break;
  }
  return events;
}

/** The events' types, in order. */
export const types = (events: SessionEvent[]) => events.map((event) => event.type);

/** `stream_started`/`stream_stopped`/`user_message` of each turn, in order, as short strings. */
export const outline = (events: SessionEvent[]) =>
  events.flatMap((event) => {
    if (event.type === 'stream_started') return [`start ${event.turnId}`];
    if (event.type === 'stream_stopped') return [`stop ${event.turnId} ${event.reason}`];
    if (event.type === 'user_message') return [`user ${event.turnId} ${event.message.content}`];
    return [];
  });

/** The session's messages as `role:content`, other items left out. */
export const messageContents = (session: Session) =>
  session.items.flatMap((item) =>
    item.kind === 'message' ? [`${item.message.role}:${item.message.content}`] : [],
  );

/** Every assistant tool call has a later `role: 'tool'` message with its id. */
export function assertHistoryValid(session: Session): void {
  const messages = session.items.flatMap((item) => (item.kind === 'message' ? [item.message] : []));
  messages.forEach((message, index) => {
    for (const call of message.role === 'assistant' ? (message.toolCalls ?? []) : []) {
      const answered = messages
        .slice(index + 1)
        .some((later) => later.role === 'tool' && later.toolCallId === call.id);
      expect(answered, `tool call ${call.id} (${call.name}) has no result in history`).toBe(true);
    }
  });
}
