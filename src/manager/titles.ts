import type { Logger } from '../logger.js';
import { firstLine } from './title.js';
import type { TitleGenerator } from './types.js';

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
