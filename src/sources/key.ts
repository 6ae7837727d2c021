/**
 * The stable form of an agent source key (docs/sources.md), used to find a source again after its query
 * string changed (`https://hub.example/agents/coder?tag=v2` → `https://hub.example/agents/coder`).
 *
 * - The key is URL-decoded. Decoding repeats until nothing changes, so a key encoded twice (as a
 *   key that went through a URL path parameter and a query string may be) gives the same result
 *   as one encoded once, and the function is idempotent.
 * - If the decoded key is an `http://` or `https://` URL, the query, the fragment and any user
 *   name or password are dropped: the result is the scheme, host (with a non-default port) and
 *   path, in the URL parser's normal form (lower-case scheme and host, dot segments resolved).
 * - Anything else (a name such as `coder`, a file path, an OCI reference such as
 *   `docker.io/org/agent:v1`) is returned unchanged, as it was given (not decoded).
 * - When decoding or parsing fails (malformed percent-encoding, an invalid host…), the key is
 *   returned unchanged.
 *
 * Never throws, and `stableSourceKey(stableSourceKey(k)) === stableSourceKey(k)` for every string.
 *
 * @param key - An agent source key or reference.
 * @returns The key's stable form.
 */
export function stableSourceKey(key: string): string {
  const decoded = decodeFully(key);
  if (decoded === undefined || !/^https?:\/\//i.test(decoded)) return key;
  // Cutting the query and fragment off the text before parsing, rather than reading the parsed
  // pathname of the whole URL, matters for idempotence: the parser trims trailing spaces only at the
  // end of its input, so `https://h/a ?x` must be parsed as `https://h/a` to give the same result as
  // its own output would.
  const end = decoded.search(/[?#]/);
  let url: URL;
  try {
    url = new URL(end === -1 ? decoded : decoded.slice(0, end));
  } catch {
    return key;
  }
  return `${url.protocol}//${url.host}${url.pathname}`;
}

// Decoding until a fixed point leaves no `%` in the result (a `%` either starts a valid escape or
// makes decodeURIComponent throw), so the URL parser's own re-encoding is decoded back to the same
// text on a second call: this is what makes stableSourceKey idempotent. Each successful step
// shortens the string, so the loop ends.
function decodeFully(key: string): string | undefined {
  let current = key;
  for (;;) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return undefined;
    }
    if (next === current) return current;
    current = next;
  }
}
