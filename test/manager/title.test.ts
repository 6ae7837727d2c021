import { describe, expect, test } from 'vitest';
import { firstLine, heuristicTitle } from '../../src/manager/titles.js';

describe('heuristicTitle', () => {
  test.each([
    ['a short line is kept', 'Fix the login bug', 50, 'Fix the login bug'],
    ['blank input gives an empty title', '', 50, ''],
    ['whitespace-only input gives an empty title', ' \n\t\r\n  ', 50, ''],
    [
      'the first non-empty line is used',
      '\n\n  Refactor the parser  \nwith more detail',
      50,
      'Refactor the parser',
    ],
    ['CRLF line breaks split lines', 'First line\r\nSecond line', 50, 'First line'],
    ['a lone CR splits lines', 'First line\rSecond line', 50, 'First line'],
    ['a Unicode line separator splits lines', 'First\u2028Second', 50, 'First'],
    ['whitespace runs collapse to one space', 'Fix\t the   login\u00a0\u00a0bug', 50, 'Fix the login bug'],
    ['a line exactly maxLength long is kept', 'abcde fghij', 11, 'abcde fghij'],
    [
      'a long line is cut at a word boundary with an ellipsis',
      'Please refactor the session manager module today',
      20,
      'Please refactor the…',
    ],
    ['the cut never ends inside a word', 'alpha beta gamma delta', 13, 'alpha beta…'],
    ['a cut right after a whole word keeps it', 'alpha beta gamma', 11, 'alpha beta…'],
    ['a single overlong word is cut hard', 'supercalifragilisticexpialidocious', 10, 'supercali…'],
    [
      'an overlong first word in a sentence is cut hard',
      'supercalifragilisticexpialidocious is long',
      10,
      'supercali…',
    ],
    ['an astral character is never split', '😀😀😀😀😀😀', 4, '😀😀😀…'],
    ['length counts astral characters as one', '😀😀😀😀', 4, '😀😀😀😀'],
    ['an astral character at the boundary is kept whole', 'ab 😀😀 cd ef', 6, 'ab 😀😀…'],
    ['maxLength 1 leaves only the ellipsis', 'hello world', 1, '…'],
  ])('heuristicTitle: %s', (_name, text, maxLength, expected) => {
    const title = heuristicTitle(text, maxLength);
    expect(title).toBe(expected);
    expect(Array.from(title).length).toBeLessThanOrEqual(maxLength);
  });

  test('heuristicTitle shortens to 50 characters by default', () => {
    const text = 'word '.repeat(40);
    const title = heuristicTitle(text);
    expect(Array.from(title).length).toBeLessThanOrEqual(50);
    expect(title.endsWith('word…')).toBe(true);
  });

  test('heuristicTitle never leaves a lone surrogate', () => {
    for (let maxLength = 1; maxLength <= 12; maxLength += 1) {
      const title = heuristicTitle('a😀b😀c😀d😀e😀f😀g😀', maxLength);
      // A lone surrogate does not survive a UTF-8 round trip.
      expect(new TextDecoder().decode(new TextEncoder().encode(title))).toBe(title);
    }
  });

  test.each([0, -1, 2.5, Number.NaN])(
    'heuristicTitle throws INVALID_ARGUMENT for maxLength %s',
    (maxLength) => {
      expect(() => heuristicTitle('hello', maxLength)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    },
  );
});

describe('firstLine', () => {
  test.each([
    ['a single line', 'Session title', 'Session title'],
    ['leading blank lines and surrounding spaces', '\n  \n  Session title  \nExplanation', 'Session title'],
    ['CRLF text', '\r\nTitle\r\nMore', 'Title'],
    ['inner whitespace is kept', 'A  title', 'A  title'],
    ['empty text', '', ''],
    ['only blank lines', '\n \n\t', ''],
  ])('firstLine: %s', (_name, text, expected) => {
    expect(firstLine(text)).toBe(expected);
  });

  test('firstLine returns an empty string for a value that is not a string', () => {
    expect(firstLine(undefined as never)).toBe('');
  });
});
