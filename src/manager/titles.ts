/**
 * Session titles. When a turn starts:
 * - a session with a title has it re-emitted as `session_title`;
 * - an untitled session whose title was not set by hand gets a heuristic title at once (the first
 *   user line, shortened at a word; `titleSource: 'heuristic'`), stored, then emitted;
 * - with a {@link TitleGenerator}, the generator runs beside the turn (at most
 *   {@link TITLE_TIMEOUT_MS}); its first non-empty line replaces the heuristic title
 *   (`'generated'`) unless the title was set by hand meanwhile. A failing generator never fails
 *   the turn; it is logged.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { EventInput } from './event-log.js';
import type { SessionCache, SessionRecord } from './session-records.js';
import type { TitleGenerator } from './types.js';

const LINE_BREAK = /\r\n|[\n\r\u2028\u2029]/;
const ELLIPSIS = '…';

/**
 * A title made from a user message: its first non-empty line, with runs of whitespace collapsed to
 * one space, shortened to at most `maxLength` characters (code points, the `…` included). When it
 * must be cut, it is cut at the last word boundary that fits and `…` is appended; a first word too
 * long to fit is cut inside the word. A character outside the Basic Multilingual Plane (an emoji)
 * is never split.
 *
 * @param text - The first user message's text.
 * @param maxLength - The longest title, in code points. @default 50
 * @returns The title, or `''` when `text` has no non-blank line.
 * @throws InvalidArgumentError when `maxLength` is not an integer of at least 1.
 */
export function heuristicTitle(text: string, maxLength = 50): string {
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new InvalidArgumentError(`maxLength must be an integer of at least 1, got ${String(maxLength)}`);
  }
  const line = firstLine(text).replace(/\s+/g, ' ');
  const characters = Array.from(line);
  if (characters.length <= maxLength) return line;
  const budget = maxLength - 1;
  const head = characters.slice(0, budget);
  // Cut at a word boundary: either the character after the budget is a space (the head ends a
  // word), or the head is cut back to its last space.
  if (characters[budget] !== ' ') {
    const lastSpace = head.lastIndexOf(' ');
    if (lastSpace > 0) head.length = lastSpace;
  }
  const shortened = head.join('').trimEnd();
  return `${shortened}${ELLIPSIS}`;
}

/**
 * The first line of `text` that is not blank, trimmed; `''` when there is none. Used on a title
 * generator's output, which may add explanations or blank lines after the title.
 */
export function firstLine(text: string): string {
  if (typeof text !== 'string') return '';
  for (const line of text.split(LINE_BREAK)) {
    const trimmed = line.trim();
    if (trimmed !== '') return trimmed;
  }
  return '';
}

/** How long a title generator may take. */
export const TITLE_TIMEOUT_MS = 30_000;

/**
 * Runs the title generator with a time limit. Resolves to the first non-empty line of what it
 * returned, or undefined when it failed, timed out, was aborted or returned nothing: a failing
 * generator never fails a turn.
 */
export async function generateTitle(
  generator: TitleGenerator,
  messages: string[],
  signal: AbortSignal,
  logger: Logger,
  sessionId: string,
): Promise<string | undefined> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`title generator timed out after ${TITLE_TIMEOUT_MS} ms`);
        controller.abort(error);
        reject(error);
      }, TITLE_TIMEOUT_MS);
    });
    const aborted = new Promise<never>((_, reject) => {
      if (controller.signal.aborted) reject(controller.signal.reason);
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
    });
    // Only the race's winner is awaited: the losers must not surface as unhandled rejections.
    timeout.catch(() => {});
    aborted.catch(() => {});
    const generated = Promise.resolve().then(() => generator({ messages, signal: controller.signal }));
    const text = await Promise.race([generated, timeout, aborted]);
    generated.catch(() => {});
    const title = typeof text === 'string' ? firstLine(text) : '';
    return title === '' ? undefined : title;
  } catch (error) {
    logger.warn('title generation failed', { sessionId, error });
    return undefined;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/** What {@link titleAtTurnStart} needs of the turn. */
export interface TitleScope {
  record: SessionRecord;
  /** The cache the turn runs on. */
  cache: SessionCache;
  turnId: string;
  emit(event: EventInput): void;
  generator: TitleGenerator | undefined;
  /** Aborted when the session is deleted or the manager closes: the generator gives up. Asked only when a generator runs. */
  signal(): AbortSignal;
  logger: Logger;
}

/**
 * The title work of a turn start (see the module documentation). Resolves once the heuristic
 * title is stored and emitted; the generator, if any, goes on beside the turn.
 */
export async function titleAtTurnStart(scope: TitleScope): Promise<void> {
  const { record, cache, turnId, logger } = scope;
  if (cache.meta.title !== '') {
    scope.emit({ type: 'session_title', turnId, title: cache.meta.title });
    return;
  }
  if (cache.meta.titleSource === 'manual') return;
  const userTexts = cache.items.flatMap((item) =>
    item.kind === 'message' && item.message.role === 'user' ? [item.message.content] : [],
  );
  const title = heuristicTitle(userTexts[0] ?? '');
  if (title !== '') {
    try {
      const written = await record.update((current) =>
        current.title !== '' || current.titleSource === 'manual'
          ? undefined
          : { title, titleSource: 'heuristic' },
      );
      if (written) scope.emit({ type: 'session_title', turnId, title });
    } catch (error) {
      logger.warn('storing the heuristic title failed', { sessionId: record.id, error });
    }
  }
  const generator = scope.generator;
  if (!generator) return;
  const signal = scope.signal();
  const work = (async () => {
    const generated = await generateTitle(generator, userTexts.slice(0, 3), signal, logger, record.id);
    if (generated === undefined || signal.aborted) return;
    const written = await record.update((current) =>
      current.titleSource === 'manual' ? undefined : { title: generated, titleSource: 'generated' },
    );
    // To the stream as well while it is open: a reader of the turn sees the title it asked for.
    if (written) scope.emit({ type: 'session_title', turnId, title: generated });
  })();
  // Not tracked by waitStopped: the generator runs beside the turn and may outlive it.
  work.catch((error: unknown) =>
    logger.warn('storing the generated title failed', { sessionId: record.id, error }),
  );
}
