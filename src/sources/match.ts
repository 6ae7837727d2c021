// The resolution rule shared by every resolver of this package (src/sources.ts), and small helpers they
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
    `source ${JSON.stringify(redactSourceRef(ref))} is ambiguous: it matches ${candidates.length} sources (${candidates
      .map((candidate) => JSON.stringify(redactSourceRef(candidate)))
      .join(', ')})`,
  );
}

/** `SOURCE_NOT_FOUND` for `ref`, with an optional explanation. */
export function sourceNotFound(ref: string, detail?: string): AgentSessionsError {
  return new AgentSessionsError(
    ErrorCode.SOURCE_NOT_FOUND,
    `source ${JSON.stringify(redactSourceRef(ref))} not found${detail ? `: ${detail}` : ''}`,
  );
}

/**
 * A source ref as error messages show it: an http(s) URL without user info, and with its query and
 * fragment reduced to `?…` / `#…` (they may carry tokens); anything else as given.
 */
export function redactSourceRef(ref: string): string {
  if (!/^https?:\/\//i.test(ref)) return ref;
  try {
    const url = new URL(ref);
    return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?…' : ''}${url.hash ? '#…' : ''}`;
  } catch {
    return ref.replace(/[?#].*$/s, '?…');
  }
}
