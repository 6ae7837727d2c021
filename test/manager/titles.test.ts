// Session titles (see src/manager/titles.ts): the heuristic title and the clean-up of generated
// ones, then titles during turns: the heuristic title, the title generator beside the turn (30 s
// limit, manual edits win, failures never fail the turn) and re-emitting at every turn.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { SessionEvent } from '../../src/events.js';
import { SessionManager } from '../../src/manager/session-manager.js';
import { firstLine, heuristicTitle } from '../../src/manager/titles.js';
import type { TitleGenerator } from '../../src/manager/types.js';
import { ScriptedRuntime, step } from '../../src/testing/scripted-runtime.js';
import { deferred } from '../helpers/assertions.js';
import { collect, type StoreFixture, storeFixtures } from '../helpers/stores.js';

/** Lets every pending microtask (and macrotask-free chain) run: nothing here does I/O. */
async function settle(): Promise<void> {
  for (let round = 0; round < 5; round++) await new Promise((resolve) => setImmediate(resolve));
}

const titles = (events: SessionEvent[]) =>
  events.flatMap((event) => (event.type === 'session_title' ? [event.title] : []));

/** The next event of the session's log after `since`. */
async function nextEvent(manager: SessionManager, id: string, since: number): Promise<SessionEvent> {
  const iterator = manager.streamEvents(id, { since })[Symbol.asyncIterator]();
  const result = await iterator.next();
  await iterator.return?.();
  if (result.done) throw new Error('log ended');
  return result.value;
}

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

describe.each(storeFixtures())('SessionManager titles ($name)', (fixture: StoreFixture) => {
  const managers: SessionManager[] = [];
  const runtimes: ScriptedRuntime[] = [];

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });

  afterEach(async () => {
    vi.useRealTimers();
    for (const manager of managers.splice(0)) await manager.close();
    await fixture.cleanup();
    for (const scripted of runtimes.splice(0)) scripted.assertConsumed();
  });

  async function setup(titleGenerator?: TitleGenerator) {
    const scripted = new ScriptedRuntime();
    runtimes.push(scripted);
    const store = await fixture.create();
    const manager = new SessionManager({
      runtime: scripted.factory,
      store,
      ...(titleGenerator === undefined ? {} : { titleGenerator }),
    });
    managers.push(manager);
    return { manager, scripted, store };
  }

  test('a turn on an untitled session sets the heuristic title at once and emits session_title', async () => {
    const { manager, scripted } = await setup();
    const { id } = await manager.createSession();
    scripted.turn([step.hold('h'), step.reply('ok')]);
    const stream = await manager.runSession(id, { messages: ['Fix the flaky login test\nit fails on CI'] });
    await scripted.waitUntilHeld('h');
    expect(await manager.getSession(id)).toMatchObject({
      title: 'Fix the flaky login test',
      titleSource: 'heuristic',
    });
    scripted.release('h');
    const events = await collect(stream);
    expect(titles(events)).toEqual(['Fix the flaky login test']);
    expect(events.map((event) => event.type).indexOf('session_title')).toBe(2);
  });

  test('the title generator replaces the heuristic title with its first non-empty line (titleSource generated)', async () => {
    const pending = deferred<string>();
    const calls: string[][] = [];
    const { manager, scripted } = await setup(async ({ messages }) => {
      calls.push(messages);
      return pending.promise;
    });
    const { id } = await manager.createSession();
    scripted.reply('ok');
    const events = await collect(await manager.runSession(id, { messages: ['please refactor the parser'] }));
    expect(titles(events)).toEqual(['please refactor the parser']);
    expect(calls).toEqual([['please refactor the parser']]);
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    pending.resolve('\n  Parser refactor  \nBecause the user asked for it.');
    const event = await nextEvent(manager, id, lastEventSeq);
    expect(event).toMatchObject({ type: 'session_title', title: 'Parser refactor' });
    expect(await manager.getSession(id)).toMatchObject({
      title: 'Parser refactor',
      titleSource: 'generated',
    });
  });

  test('a generated title that arrives while the turn runs is also on the TurnStream', async () => {
    const pending = deferred<string>();
    const { manager, scripted } = await setup(() => pending.promise);
    const { id } = await manager.createSession();
    scripted.turn([step.hold('h'), step.reply('ok')]);
    const stream = await manager.runSession(id, { messages: ['first words'] });
    await scripted.waitUntilHeld('h');
    const { lastEventSeq } = await manager.getSessionSnapshot(id);
    pending.resolve('Generated');
    await nextEvent(manager, id, lastEventSeq);
    scripted.release('h');
    expect(titles(await collect(stream))).toEqual(['first words', 'Generated']);
  });

  test('a manual title set while the generator runs wins over the generated one', async () => {
    const pending = deferred<string>();
    const { manager, scripted } = await setup(() => pending.promise);
    const { id } = await manager.createSession();
    scripted.reply('ok');
    await (await manager.runSession(id, { messages: ['something'] })).done;
    await manager.updateSessionTitle(id, 'Mine');
    pending.resolve('Generated');
    await settle();
    expect(await manager.getSession(id)).toMatchObject({ title: 'Mine', titleSource: 'manual' });
  });

  test('a generator that never resolves is given up after 30 s: the heuristic title stays, the turn is unaffected', async () => {
    const pending = deferred<string>();
    let signal: AbortSignal | undefined;
    const { manager, scripted } = await setup((input) => {
      signal = input.signal;
      return pending.promise;
    });
    const { id } = await manager.createSession();
    scripted.reply('ok');
    const stream = await manager.runSession(id, { messages: ['slow title please'] });
    expect((await stream.done).stopReason).toBe('end_turn');
    await vi.advanceTimersByTimeAsync(29_999);
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(signal?.aborted).toBe(true);
    pending.resolve('Too late');
    await settle();
    expect(await manager.getSession(id)).toMatchObject({
      title: 'slow title please',
      titleSource: 'heuristic',
    });
  });

  test.each([
    ['rejects', () => Promise.reject(new Error('generator down'))],
    [
      'throws synchronously',
      () => {
        throw new Error('generator broken');
      },
    ],
    ['returns only blank lines', async () => '  \n\n '],
    ['returns a non-string', async () => 42 as unknown as string],
  ])('a generator that %s never fails the turn and leaves the heuristic title', async (_, generator) => {
    const { manager, scripted } = await setup(generator as TitleGenerator);
    const { id } = await manager.createSession();
    scripted.reply('ok');
    const stream = await manager.runSession(id, { messages: ['robust titles'] });
    expect((await stream.done).stopReason).toBe('end_turn');
    await settle();
    expect(await manager.getSession(id)).toMatchObject({ title: 'robust titles', titleSource: 'heuristic' });
  });

  test('an existing title is re-emitted at the start of every turn and the generator runs only once', async () => {
    const generator = vi.fn(async () => 'Generated once');
    const { manager, scripted } = await setup(generator);
    const { id } = await manager.createSession();
    scripted.reply('1').reply('2').reply('3');
    const first = await collect(await manager.runSession(id, { messages: ['opening line'] }));
    await settle();
    const second = await collect(await manager.runSession(id, { messages: ['next'] }));
    const third = await collect(await manager.runSession(id, { messages: ['last'] }));
    expect(titles(first)).toContain('opening line');
    expect(titles(second)).toEqual(['Generated once']);
    expect(titles(third)).toEqual(['Generated once']);
    expect(second[2]).toMatchObject({ type: 'session_title', title: 'Generated once' });
    expect(generator).toHaveBeenCalledTimes(1);
  });

  test('a template title sets titleSource manual, is re-emitted, and suppresses generation', async () => {
    const generator = vi.fn(async () => 'Generated');
    const { manager, scripted } = await setup(generator);
    const session = await manager.createSession({ title: 'Chosen' });
    expect(session.titleSource).toBe('manual');
    scripted.reply('ok');
    const events = await collect(await manager.runSession(session.id, { messages: ['hello there'] }));
    await settle();
    expect(titles(events)).toEqual(['Chosen']);
    expect(generator).not.toHaveBeenCalled();
    expect(await manager.getSession(session.id)).toMatchObject({ title: 'Chosen', titleSource: 'manual' });
  });
});
