import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { stableSourceKey } from '../../src/sources/key.js';

describe('stableSourceKey', () => {
  test.each([
    [
      'drops the query of an https URL',
      'https://hub.example/agents/coder?tag=v2',
      'https://hub.example/agents/coder',
    ],
    ['drops the fragment', 'https://hub.example/agents/coder#readme', 'https://hub.example/agents/coder'],
    ['drops query and fragment', 'http://hub.example/a?x=1#y', 'http://hub.example/a'],
    ['keeps a non-default port', 'https://hub.example:8443/a?x=1', 'https://hub.example:8443/a'],
    ['drops a default port', 'https://hub.example:443/a', 'https://hub.example/a'],
    ['drops user name and password', 'https://user:secret@hub.example/a?t=1', 'https://hub.example/a'],
    ['lower-cases scheme and host', 'HTTPS://Hub.Example/Agents/Coder', 'https://hub.example/Agents/Coder'],
    ['gives a bare host a root path', 'https://hub.example?x=1', 'https://hub.example/'],
    [
      'decodes a URL-encoded key',
      'https%3A%2F%2Fhub.example%2Fagents%2Fcoder%3Ftag%3Dv2',
      'https://hub.example/agents/coder',
    ],
    [
      'decodes a key encoded twice',
      'https%253A%252F%252Fhub.example%252Fcoder%253Ftag%253Dv2',
      'https://hub.example/coder',
    ],
    ['keeps a name unchanged', 'coder', 'coder'],
    ['keeps a relative file path unchanged', './agents/coder.yaml', './agents/coder.yaml'],
    ['keeps an absolute file path unchanged', '/srv/agents/coder.yaml', '/srv/agents/coder.yaml'],
    ['keeps an OCI reference unchanged', 'docker.io/org/agent:v1', 'docker.io/org/agent:v1'],
    ['keeps a name with a question mark unchanged', 'coder?tag=v2', 'coder?tag=v2'],
    ['keeps an encoded non-URL key as given', 'my%20agent', 'my%20agent'],
    ['keeps other schemes unchanged', 'ftp://hub.example/a?x=1', 'ftp://hub.example/a?x=1'],
    [
      'keeps a key with malformed percent-encoding unchanged',
      'https://hub.example/100%?x=1',
      'https://hub.example/100%?x=1',
    ],
    [
      'keeps a key with invalid UTF-8 escapes unchanged',
      'https://hub.example/%FF?x=1',
      'https://hub.example/%FF?x=1',
    ],
    ['keeps an unparseable URL unchanged', 'https://exa mple.com/a?x=1', 'https://exa mple.com/a?x=1'],
    ['keeps a URL without a host unchanged', 'https://?x=1', 'https://?x=1'],
    ['keeps the empty string', '', ''],
    // The parser trims trailing spaces of its input only: cutting the query first keeps this stable.
    ['drops a space before the query', 'https://h/a %3Fx', 'https://h/a'],
  ])('%s', (_name, key, expected) => {
    expect(stableSourceKey(key)).toBe(expected);
  });

  test('stableSourceKey gives the same key for two tags of one hub agent', () => {
    expect(stableSourceKey('https://hub.example/agents/coder?tag=v2')).toBe(
      stableSourceKey('https://hub.example/agents/coder?tag=v3'),
    );
  });

  const keys = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    fc.webUrl({ withQueryParameters: true }).map((url) => encodeURIComponent(url)),
    fc
      .tuple(fc.constantFrom('https://', 'http://', 'HTTP://'), fc.string({ unit: 'binary' }))
      .map(([scheme, rest]) => scheme + rest),
    fc
      .tuple(
        fc.constantFrom('https://h/', 'http://u:p@h:81/', 'https://h'),
        fc.array(
          fc.constantFrom(
            '%',
            '25',
            '3F',
            '23',
            '2F',
            '2E',
            '5C',
            '20',
            '\t',
            '\\',
            '\x01',
            '\uD800',
            'a',
            'é',
            '?',
            '#',
            ' ',
            '.',
            '..',
            '/',
            '@',
            ':',
          ),
        ),
      )
      .map(([prefix, parts]) => prefix + parts.join('')),
  );

  test('stableSourceKey is idempotent and never throws', () => {
    fc.assert(
      fc.property(keys, (key) => {
        const once = stableSourceKey(key);
        expect(stableSourceKey(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });
});
