/**
 * History valid by construction: the check and repair the manager runs whenever it loads a
 * session's history for a turn, before any runtime sees it.
 *
 * The invariant: every tool call of an assistant message has a `role: 'tool'` result, and no user
 * message comes between a call and its result. A turn that ends closes its own calls; what breaks
 * the invariant is what happens between processes or writes: a crash while a call ran or waited
 * for approval, or a failed closing write. The repair appends, for each call without a result, a
 * result saying the call was interrupted (`isError: true`, with the tool's name), persisted before
 * the turn's own writes, so the turn's user message comes after it. Calls a resumed turn answers
 * (`keep`) stay open: the runtime answers them.
 *
 * Stale persisted approvals (whose turn is gone and which a new turn makes moot) are cleared in
 * the same step. Damaged data is never deleted: a history written by an older version with a user
 * message between a call and its result is left as it is (its calls get their results at the end).
 */
import { newId } from '../internal/ids.js';
import type { Logger } from '../logger.js';
import type { Message, SessionItem } from '../schemas.js';
import type { SessionCache, SessionRecord } from './session-records.js';

/** A `role: 'tool'` result saying the call did not run, and why. */
export function notRunResult(toolCallId: string, toolName: string, why: string): Message {
  return {
    id: newId('msg'),
    role: 'tool',
    toolCallId,
    toolName,
    isError: true,
    content: `Tool call ${JSON.stringify(toolName)} did not run: ${why}`,
    createdAt: new Date().toISOString(),
  };
}

/** The tool calls of `items` without a result (id → tool name), in call order. */
export function openToolCallsOf(items: readonly SessionItem[]): Map<string, string> {
  const open = new Map<string, string>();
  for (const item of items) {
    if (item.kind !== 'message') continue;
    const message = item.message;
    if (message.role === 'assistant')
      for (const call of message.toolCalls ?? []) open.set(call.id, call.name);
    else if (message.role === 'tool' && message.toolCallId !== undefined) open.delete(message.toolCallId);
  }
  return open;
}

/** What {@link repairHistory} needs. */
export interface RepairOptions {
  record: SessionRecord;
  cache: SessionCache;
  /** Calls a resumed turn answers: left open. */
  keep?: ReadonlySet<string>;
  logger: Logger;
}

/**
 * Closes every tool call of the cached history that has no result (except `keep`) with a persisted
 * "interrupted" result. Resolves to the results written (none when the history was valid). A write
 * that fails rejects: the caller refuses or fails the turn, and the next load repairs again.
 */
export async function repairHistory(options: RepairOptions): Promise<Message[]> {
  const { record, cache, keep, logger } = options;
  const open = cache.openToolCalls();
  if (open.size === 0) return [];
  const repaired: Message[] = [];
  for (const [toolCallId, name] of open) {
    if (keep?.has(toolCallId)) continue;
    repaired.push(
      notRunResult(
        toolCallId,
        name,
        'the turn that called it was interrupted (a crash, a restart or a failed write) before it produced a result.',
      ),
    );
  }
  if (repaired.length === 0) return [];
  logger.warn('repairing a history with tool calls without results', {
    sessionId: record.id,
    toolCallIds: repaired.map((message) => message.toolCallId),
  });
  await record.append(repaired.map((message) => ({ kind: 'message', message })));
  return repaired;
}
