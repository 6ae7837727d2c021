// Tool authorisation rules (used by authorization.ts; docs/human-in-the-loop.md): pure matching of permission patterns and the decision rule the
// manager's `authorizeToolCall` applies. No I/O, no state beyond a cache of parsed patterns.
import type { Permissions, SafetyPolicy, ToolCall } from '../schemas.js';

/** The decision for one tool call, and why. */
export interface AuthorizationOutcome {
  /** `approve` runs the tool, `reject` refuses it, `ask` waits for the human. */
  decision: 'approve' | 'reject' | 'ask';
  /** Which rule decided, in words fit to show a user or to give the model as a rejection's reason. */
  reason: string;
  /** The permission pattern that decided, when one did. */
  matched?: string;
}

/** What {@link decideToolCall} decides on. */
export interface ToolCallDecisionInput {
  toolCall: Pick<ToolCall, 'name' | 'arguments'>;
  /** The runtime says the tool only reads: the default policy (`''`) approves it. */
  readOnly?: boolean;
  /** The runtime says the tool is safe: the `balanced` policy approves it. */
  safe?: boolean;
  permissions: Permissions;
  safetyPolicy: SafetyPolicy;
}

/**
 * Decides a tool call, in this order:
 * 1. a `deny` pattern matches → `reject`;
 * 2. an `allow` pattern matches → `approve`;
 * 3. an `ask` pattern matches → `ask`;
 * 4. otherwise the safety policy: `autonomous` approves, `restricted` rejects, `strict` asks,
 *    `balanced` approves a call marked `safe` and asks for the rest, `''` approves a call marked
 *    `readOnly` and asks for the rest.
 *
 * Within a list the first matching pattern is reported as `matched`. See {@link matchesPattern}
 * for the pattern syntax.
 */
export function decideToolCall(input: ToolCallDecisionInput): AuthorizationOutcome {
  const { toolCall, permissions } = input;
  const args = lazyArguments(toolCall.arguments);
  const denied = permissions.deny.find((pattern) => matchesParsed(pattern, toolCall.name, args));
  if (denied !== undefined) {
    return { decision: 'reject', reason: `denied by pattern ${JSON.stringify(denied)}`, matched: denied };
  }
  const allowed = permissions.allow.find((pattern) => matchesParsed(pattern, toolCall.name, args));
  if (allowed !== undefined) {
    return { decision: 'approve', reason: `allowed by pattern ${JSON.stringify(allowed)}`, matched: allowed };
  }
  const asked = permissions.ask.find((pattern) => matchesParsed(pattern, toolCall.name, args));
  if (asked !== undefined) {
    return {
      decision: 'ask',
      reason: `pattern ${JSON.stringify(asked)} requires confirmation`,
      matched: asked,
    };
  }
  switch (input.safetyPolicy) {
    case 'autonomous':
      return { decision: 'approve', reason: 'policy autonomous approves tool calls' };
    case 'restricted':
      return { decision: 'reject', reason: 'policy restricted rejects tool calls' };
    case 'strict':
      return { decision: 'ask', reason: 'policy strict asks before every tool call' };
    case 'balanced':
      return input.safe === true
        ? { decision: 'approve', reason: 'policy balanced approves tools marked safe' }
        : { decision: 'ask', reason: 'policy balanced asks before tools not marked safe' };
    default:
      return input.readOnly === true
        ? { decision: 'approve', reason: 'the default policy approves read-only tools' }
        : { decision: 'ask', reason: 'the default policy asks before tools that are not read-only' };
  }
}

/**
 * Whether a permission pattern matches a tool call.
 *
 * A pattern is a tool-name glob followed by zero or more `:<arg>=<value glob>` conditions. Of the
 * `:`-separated segments, the first is always the tool-name glob's start; the first later segment
 * that contains `=` starts the conditions. So `mcp:github:*` is one tool glob, and
 * `shell:cmd=ls*` is tool `shell` with the condition `cmd=ls*`. Once conditions have started, a
 * segment with `=` starts the next condition (its key is the text before the first `=`), and a
 * segment without `=` continues the previous value: `fetch:url=https://example.com/*` is one
 * condition on `url`. (A value that must contain both `:` and a later `=` cannot be written
 * literally; cover that part with `*`.)
 *
 * Globs: `*` matches any run of characters, including none and including `:`; `?` matches exactly
 * one character (code point); every other character is literal. Matching is anchored (the whole
 * name or value) and case-sensitive.
 *
 * A condition holds when `arguments` is JSON text of an object with that key as an own top-level
 * property, and its value — a string as it is, anything else as `JSON.stringify` text — matches the
 * value glob. All conditions must hold. Unparseable arguments satisfy no condition (a pattern
 * without conditions still matches on the name alone).
 *
 * Never throws; runs in time proportional to the pattern length times the text length at worst.
 */
export function matchesPattern(pattern: string, toolCall: { name: string; arguments: string }): boolean {
  return matchesParsed(pattern, toolCall.name, lazyArguments(toolCall.arguments));
}

interface Condition {
  key: string;
  value: readonly string[];
}

interface ParsedPattern {
  name: readonly string[];
  conditions: readonly Condition[];
}

type ArgumentsReader = () => Record<string, unknown> | undefined;

const CACHE_LIMIT = 1024;
// Permission lists are small and reused on every tool call; parsing once per distinct pattern keeps
// matching cheap. The cache is bounded because patterns come from session records.
const parsedPatterns = new Map<string, ParsedPattern>();

function matchesParsed(pattern: string, name: string, readArguments: ArgumentsReader): boolean {
  if (typeof pattern !== 'string' || typeof name !== 'string') return false;
  const parsed = parsePattern(pattern);
  if (!globMatches(parsed.name, name)) return false;
  if (parsed.conditions.length === 0) return true;
  const args = readArguments();
  if (args === undefined) return false;
  return parsed.conditions.every((condition) => {
    if (!Object.hasOwn(args, condition.key)) return false;
    const value = args[condition.key];
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return globMatches(condition.value, text);
  });
}

function parsePattern(pattern: string): ParsedPattern {
  const cached = parsedPatterns.get(pattern);
  if (cached) return cached;
  const segments = pattern.split(':');
  let start = segments.findIndex((segment, index) => index > 0 && segment.includes('='));
  if (start === -1) start = segments.length;
  const conditions: { key: string; value: string }[] = [];
  for (const segment of segments.slice(start)) {
    const equals = segment.indexOf('=');
    const last = conditions[conditions.length - 1];
    if (equals === -1 && last) last.value += `:${segment}`;
    else conditions.push({ key: segment.slice(0, equals), value: segment.slice(equals + 1) });
  }
  const parsed: ParsedPattern = {
    name: Array.from(segments.slice(0, start).join(':')),
    conditions: conditions.map(({ key, value }) => ({ key, value: Array.from(value) })),
  };
  if (parsedPatterns.size >= CACHE_LIMIT) parsedPatterns.clear();
  parsedPatterns.set(pattern, parsed);
  return parsed;
}

// Arguments are parsed at most once per decision, and only when a pattern has conditions.
function lazyArguments(text: string): ArgumentsReader {
  let parsed: Record<string, unknown> | undefined;
  let done = false;
  return () => {
    if (!done) {
      done = true;
      try {
        const value: unknown = JSON.parse(text);
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          parsed = value as Record<string, unknown>;
        }
      } catch {
        parsed = undefined;
      }
    }
    return parsed;
  };
}

// Iterative wildcard matching with a single backtrack point (the last `*`): no regular expression
// is built from user input, so no pattern can backtrack catastrophically; worst case O(glob × text).
function globMatches(glob: readonly string[], input: string): boolean {
  const text = Array.from(input);
  let g = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    const token = glob[g];
    if (token === '*') {
      star = g;
      resume = t;
      g += 1;
    } else if (token !== undefined && (token === '?' || token === text[t])) {
      g += 1;
      t += 1;
    } else if (star !== -1) {
      g = star + 1;
      resume += 1;
      t = resume;
    } else {
      return false;
    }
  }
  while (glob[g] === '*') g += 1;
  return g === glob.length;
}
