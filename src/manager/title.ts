// Session titles (SPEC §6 "Titles"): the heuristic title set when a turn starts on an untitled
// session, and the clean-up of what a title generator returns.
import { InvalidArgumentError } from '../errors.js';

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
