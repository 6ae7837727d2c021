import fc from 'fast-check';
import { describe, expect, test, vi } from 'vitest';
import { type AuthorizationOutcome, decideToolCall, matchesPattern } from '../../src/manager/permissions.js';
import type { Permissions, SafetyPolicy } from '../../src/schemas.js';

function call(name: string, args: unknown = {}) {
  return { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) };
}

describe('matchesPattern', () => {
  test.each([
    // Tool-name globs
    ['an exact name', 'shell', call('shell'), true],
    ['a different name', 'shell', call('read_file'), false],
    ['a name prefix only (anchored at the end)', 'shell', call('shell_exec'), false],
    ['a name suffix only (anchored at the start)', 'shell', call('my_shell'), false],
    ['case-sensitively', 'Shell', call('shell'), false],
    ['* alone matches any name', '*', call('anything:at:all'), true],
    ['* matches a run of characters', 'read_*', call('read_file'), true],
    ['* matches the empty run', 'read_*', call('read_'), true],
    ['* matches across colons', 'mcp:*', call('mcp:github:list_issues'), true],
    ['a colon glob without = stays one tool glob', 'mcp:github:*', call('mcp:github:create_pr'), true],
    ['a colon glob rejects another server', 'mcp:github:*', call('mcp:gitlab:create_pr'), false],
    ['* in the middle', 'mcp:*:list', call('mcp:github:list'), true],
    ['several stars', '*a*b*', call('xxaxxbxx'), true],
    ['several stars in the wrong order', '*b*a', call('ab'), false],
    ['? matches exactly one character', 'read_?', call('read_x'), true],
    ['? does not match zero characters', 'read_?', call('read_'), false],
    ['? does not match two characters', 'read_?', call('read_xy'), false],
    ['? matches one astral character', 'say_?', call('say_😀'), true],
    ['. is literal', 'a.b', call('a.b'), true],
    ['. does not match any character', 'a.b', call('axb'), false],
    ['parentheses are literal', '(x)', call('(x)'), true],
    ['an unclosed bracket is literal', '[', call('['), true],
    ['a bracket is not a character class', '[ab]', call('a'), false],
    ['+ is literal', 'a+', call('aa'), false],
    ['^ and $ are literal', '^a$', call('^a$'), true],
    ['a backslash is literal', 'a\\*', call('a\\xyz'), true],
    ['| is literal', 'a|b', call('a'), false],
    ['{} are literal', 'a{2}', call('aa'), false],
    ['an empty pattern matches no name', '', call('shell'), false],
    // Conditions
    ['a condition on a string argument', 'shell:cmd=ls*', call('shell', { cmd: 'ls -la' }), true],
    ['a failing condition', 'shell:cmd=ls*', call('shell', { cmd: 'rm -rf /' }), false],
    ['a condition on the wrong tool', 'shell:cmd=ls*', call('bash', { cmd: 'ls' }), false],
    ['a condition anchored at both ends', 'shell:cmd=ls', call('shell', { cmd: 'ls -la' }), false],
    ['a condition whose key is missing', 'shell:cmd=*', call('shell', { command: 'ls' }), false],
    ['a condition on an inherited key', 'shell:toString=*', call('shell', {}), false],
    ['a condition on an own __proto__ key', 'shell:__proto__=x', call('shell', '{"__proto__":"x"}'), true],
    [
      'a condition on a nested key does not look inside objects',
      'shell:cmd=ls',
      call('shell', { opts: { cmd: 'ls' } }),
      false,
    ],
    ['a number argument as JSON text', 'read:limit=10', call('read', { limit: 10 }), true],
    ['a boolean argument as JSON text', 'read:force=true', call('read', { force: true }), true],
    ['null as JSON text', 'read:x=null', call('read', { x: null }), true],
    ['an object argument as JSON text', 'read:opts={"a":1}', call('read', { opts: { a: 1 } }), true],
    ['an array argument as JSON text', 'read:paths=["a"*', call('read', { paths: ['a', 'b'] }), true],
    ['a string is not quoted', 'read:path="a"', call('read', { path: 'a' }), false],
    [
      'all conditions must hold (both do)',
      'shell:cmd=git *:cwd=/repo*',
      call('shell', { cmd: 'git status', cwd: '/repo/x' }),
      true,
    ],
    [
      'all conditions must hold (one fails)',
      'shell:cmd=git *:cwd=/repo*',
      call('shell', { cmd: 'git status', cwd: '/etc' }),
      false,
    ],
    [
      'a value containing a colon',
      'fetch:url=https://example.com/*',
      call('fetch', { url: 'https://example.com/a' }),
      true,
    ],
    [
      'a value containing a colon rejects another host',
      'fetch:url=https://example.com/*',
      call('fetch', { url: 'https://evil.com/a' }),
      false,
    ],
    ['a value containing = after the first =', 'shell:cmd=a=b', call('shell', { cmd: 'a=b' }), true],
    ['an empty value glob matches the empty string', 'shell:cmd=', call('shell', { cmd: '' }), true],
    ['an empty value glob does not match text', 'shell:cmd=', call('shell', { cmd: 'x' }), false],
    ['an empty key', 'shell:=x', call('shell', '{"":"x"}'), true],
    [
      'a tool glob with a condition',
      'mcp:github:*:repo=acme/*',
      call('mcp:github:create_pr', { repo: 'acme/web' }),
      true,
    ],
    ['* in a value matches colons', 'shell:cmd=*', call('shell', { cmd: 'a:b:c' }), true],
    ['? in a value', 'shell:cmd=l?', call('shell', { cmd: 'ls' }), true],
    ['regex metacharacters in a value are literal', 'shell:cmd=a.c', call('shell', { cmd: 'abc' }), false],
    // Arguments that do not parse
    ['unparseable arguments match no condition', 'shell:cmd=*', call('shell', '{not json'), false],
    ['unparseable arguments still match a name-only pattern', 'shell', call('shell', '{not json'), true],
    ['array arguments match no condition', 'shell:0=a', call('shell', ['a']), false],
    ['null arguments match no condition', 'shell:cmd=*', call('shell', 'null'), false],
    ['string arguments match no condition', 'shell:cmd=*', call('shell', '"cmd"'), false],
    ['empty arguments match no condition', 'shell:cmd=*', call('shell', ''), false],
  ])('matchesPattern with %s', (_name, pattern, toolCall, expected) => {
    expect(matchesPattern(pattern, toolCall)).toBe(expected);
  });

  test('matchesPattern splits conditions only at the first later segment holding =', () => {
    // `a=b` in the first segment is part of the tool glob; the conditions start at `x=1`.
    expect(matchesPattern('a=b:c:x=1', call('a=b:c', { x: 1 }))).toBe(true);
    expect(matchesPattern('a=b:c:x=1', call('a=b:c', { x: 2 }))).toBe(false);
  });

  test('matchesPattern with a pattern equal to the tool name always matches', () => {
    const names = fc.string({ unit: 'grapheme', minLength: 1 }).filter(
      (name) =>
        !name
          .split(':')
          .slice(1)
          .some((segment) => segment.includes('=')),
    );
    fc.assert(
      fc.property(names, fc.string(), (name, args) => {
        expect(matchesPattern(name, { name, arguments: args })).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  test('matchesPattern never throws', () => {
    const patternText = fc.array(
      fc.constantFrom('*', '?', ':', '=', 'a', 'b', '.', '(', '[', '\\', '😀', 'é'),
      {
        maxLength: 12,
      },
    );
    fc.assert(
      fc.property(
        patternText.map((parts) => parts.join('')),
        fc.string({ unit: 'binary' }),
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.dictionary(fc.string(), fc.jsonValue()).map((value) => JSON.stringify(value)),
        ),
        (pattern, name, args) => {
          expect(typeof matchesPattern(pattern, { name, arguments: args })).toBe('boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('matchesPattern agrees with a reference regular expression on name globs', () => {
    const alphabet = fc.constantFrom('a', 'b', '*', '?');
    const toRegExp = (glob: string) =>
      new RegExp(`^${Array.from(glob, (c) => (c === '*' ? '.*' : c === '?' ? '.' : c)).join('')}$`, 'su');
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 8 }).map((parts) => parts.join('')),
        fc.array(fc.constantFrom('a', 'b'), { minLength: 1, maxLength: 10 }).map((parts) => parts.join('')),
        (glob, name) => {
          expect(matchesPattern(glob, call(name))).toBe(toRegExp(glob).test(name));
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('matchesPattern handles a backtracking-prone pattern on a long value quickly', () => {
    const pattern = `shell:cmd=${'*a'.repeat(30)}*b`;
    const value = 'a'.repeat(20_000);
    // Linear-with-backtrack-point matching does ~30 × 20 000 steps; a naive regex would not return,
    // and the test timeout would fail this test (no wall-clock bound here).
    expect(matchesPattern(pattern, call('shell', { cmd: value }))).toBe(false);
  });
});

describe('decideToolCall', () => {
  const none: Permissions = { allow: [], ask: [], deny: [] };
  const rm = call('shell', { cmd: 'rm -rf /tmp/x' });
  const ls = call('shell', { cmd: 'ls' });

  interface Row {
    name: string;
    toolCall?: { name: string; arguments: string };
    permissions?: Partial<Permissions>;
    safetyPolicy: SafetyPolicy;
    readOnly?: boolean;
    safe?: boolean;
    expected: AuthorizationOutcome;
  }

  test.each<Row>([
    {
      name: 'a deny pattern rejects, before allow and ask',
      permissions: { deny: ['shell:cmd=rm*'], allow: ['shell'], ask: ['shell'] },
      safetyPolicy: 'autonomous',
      expected: { decision: 'reject', reason: 'denied by pattern "shell:cmd=rm*"', matched: 'shell:cmd=rm*' },
    },
    {
      name: 'an allow pattern approves, before ask',
      permissions: { allow: ['shell'], ask: ['shell'] },
      safetyPolicy: 'restricted',
      expected: { decision: 'approve', reason: 'allowed by pattern "shell"', matched: 'shell' },
    },
    {
      name: 'an ask pattern asks, before the policy',
      permissions: { ask: ['sh*'] },
      safetyPolicy: 'autonomous',
      readOnly: true,
      safe: true,
      expected: { decision: 'ask', reason: 'pattern "sh*" requires confirmation', matched: 'sh*' },
    },
    {
      name: 'the first matching pattern of a list is reported',
      permissions: { deny: ['read', 'sh*', 'shell'] },
      safetyPolicy: '',
      expected: { decision: 'reject', reason: 'denied by pattern "sh*"', matched: 'sh*' },
    },
    {
      name: 'a deny pattern whose condition fails falls through to allow',
      toolCall: ls,
      permissions: { deny: ['shell:cmd=rm*'], allow: ['shell'] },
      safetyPolicy: 'restricted',
      expected: { decision: 'approve', reason: 'allowed by pattern "shell"', matched: 'shell' },
    },
    {
      name: 'patterns for other tools fall through to the policy',
      permissions: { deny: ['read*'], allow: ['write'], ask: ['mcp:*'] },
      safetyPolicy: 'autonomous',
      expected: { decision: 'approve', reason: 'policy autonomous approves tool calls' },
    },
    {
      name: 'autonomous approves',
      safetyPolicy: 'autonomous',
      expected: { decision: 'approve', reason: 'policy autonomous approves tool calls' },
    },
    {
      name: 'restricted rejects even read-only safe tools',
      safetyPolicy: 'restricted',
      readOnly: true,
      safe: true,
      expected: { decision: 'reject', reason: 'policy restricted rejects tool calls' },
    },
    {
      name: 'strict asks even for read-only safe tools',
      safetyPolicy: 'strict',
      readOnly: true,
      safe: true,
      expected: { decision: 'ask', reason: 'policy strict asks before every tool call' },
    },
    {
      name: 'balanced approves safe tools',
      safetyPolicy: 'balanced',
      safe: true,
      expected: { decision: 'approve', reason: 'policy balanced approves tools marked safe' },
    },
    {
      name: 'balanced asks for read-only tools not marked safe',
      safetyPolicy: 'balanced',
      readOnly: true,
      expected: { decision: 'ask', reason: 'policy balanced asks before tools not marked safe' },
    },
    {
      name: 'balanced asks when safe is false',
      safetyPolicy: 'balanced',
      safe: false,
      expected: { decision: 'ask', reason: 'policy balanced asks before tools not marked safe' },
    },
    {
      name: 'the default policy approves read-only tools',
      safetyPolicy: '',
      readOnly: true,
      expected: { decision: 'approve', reason: 'the default policy approves read-only tools' },
    },
    {
      name: 'the default policy asks for safe tools that are not read-only',
      safetyPolicy: '',
      safe: true,
      expected: { decision: 'ask', reason: 'the default policy asks before tools that are not read-only' },
    },
    {
      name: 'the default policy asks when nothing is marked',
      safetyPolicy: '',
      expected: { decision: 'ask', reason: 'the default policy asks before tools that are not read-only' },
    },
  ])(
    'decideToolCall: $name',
    ({ toolCall = rm, permissions = {}, safetyPolicy, readOnly, safe, expected }) => {
      const outcome = decideToolCall({
        toolCall,
        ...(readOnly === undefined ? {} : { readOnly }),
        ...(safe === undefined ? {} : { safe }),
        permissions: { ...none, ...permissions },
        safetyPolicy,
      });
      expect(outcome).toEqual(expected);
    },
  );

  test('decideToolCall parses the arguments at most once per decision', () => {
    const parse = vi.spyOn(JSON, 'parse');
    try {
      decideToolCall({
        toolCall: ls,
        permissions: {
          deny: ['shell:cmd=rm*', 'shell:cwd=/'],
          allow: ['shell:cmd=git*'],
          ask: ['shell:cmd=x*'],
        },
        safetyPolicy: '',
      });
      expect(parse).toHaveBeenCalledTimes(1);
    } finally {
      parse.mockRestore();
    }
  });

  test('decideToolCall does not parse the arguments when no pattern has conditions', () => {
    const parse = vi.spyOn(JSON, 'parse');
    try {
      decideToolCall({
        toolCall: ls,
        permissions: { deny: ['rm'], allow: ['shell'], ask: [] },
        safetyPolicy: '',
      });
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });
});
