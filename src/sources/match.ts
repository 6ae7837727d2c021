// The resolution rule shared by every resolver of this package (SPEC §7), and small helpers they
// share. Not exported from the package.
import { AgentSessionsError, ErrorCode } from '../errors.js';
import { stableSourceKey } from './key.js';

/**
 * Picks the key `ref` resolves to among `keys`: `ref` itself when it is one of them; otherwise the
 * single key whose stable form ({@link stableSourceKey}) equals `ref`'s.
 *
 * @throws AgentSessionsError `SOURCE_NOT_FOUND` naming `ref` when no key matches, or naming `ref`
 * and the candidates when several do: a reference is never resolved by guessing.
 */
export function matchSourceKey(ref: string, keys: Iterable<string>): string {
  const wanted = stableSourceKey(ref);
  const candidates: string[] = [];
  for (const key of keys) {
    if (key === ref) return key;
    if (stableSourceKey(key) === wanted) candidates.push(key);
  }
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) throw sourceNotFound(ref);
  throw new AgentSessionsError(
    ErrorCode.SOURCE_NOT_FOUND,
    `source ${JSON.stringify(ref)} is ambiguous: it matches ${candidates
      .map((candidate) => JSON.stringify(candidate))
      .join(', ')}`,
  );
}

/** `SOURCE_NOT_FOUND` for `ref`, with an optional explanation. */
export function sourceNotFound(ref: string, detail?: string): AgentSessionsError {
  return new AgentSessionsError(
    ErrorCode.SOURCE_NOT_FOUND,
    `source ${JSON.stringify(ref)} not found${detail ? `: ${detail}` : ''}`,
  );
}

/**
 * Waits for `promise`, but rejects with `signal.reason` as soon as `signal` aborts (at once if it
 * already has). The promise itself keeps running; its outcome is then ignored.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    // The abandoned promise may still reject: observe it so it is not reported as unhandled.
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
