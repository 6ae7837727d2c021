// Validation of caller input (see src/manager/input.ts): nothing is written before it passes.
import { describe, expect, test } from 'vitest';
import {
  assertTemplate,
  nonNegativeNumber,
  normalizeMessages,
  optionalString,
  parseRunInput,
  positiveInteger,
  sessionFromTemplate,
  summaryItem,
} from '../../src/manager/input.js';
import { expectInvalidArgument } from '../helpers/assertions.js';

describe('normalizeMessages', () => {
  test('a string becomes a user message; missing id and createdAt are filled in, given ones kept', () => {
    const [plain, object] = normalizeMessages(['hi', { content: 'there', id: 'mine', role: 'system' }]);
    expect(plain).toMatchObject({ role: 'user', content: 'hi' });
    expect(plain?.id).toMatch(/^msg_/);
    expect(Number.isNaN(Date.parse(plain?.createdAt ?? ''))).toBe(false);
    expect(object).toMatchObject({ id: 'mine', role: 'system', content: 'there' });
  });

  test.each([[[]], [undefined], ['text'], [[42]], [[{ role: 'user' }]], [[{ content: 'x', role: 'robot' }]]])(
    'normalizeMessages(%j) throws INVALID_ARGUMENT',
    (input) => {
      expectInvalidArgument(() => normalizeMessages(input));
    },
  );
});

describe('option helpers', () => {
  test('positiveInteger returns the fallback for undefined and refuses anything but a positive integer', () => {
    expect(positiveInteger(undefined, 7, 'x')).toBe(7);
    expect(positiveInteger(3, 7, 'x')).toBe(3);
    for (const bad of [0, -1, 1.5, Number.NaN]) expectInvalidArgument(() => positiveInteger(bad, 7, 'x'));
  });

  test('optionalString passes undefined and non-empty strings and refuses the rest', () => {
    expect(optionalString(undefined, 'x')).toBeUndefined();
    expect(optionalString('a', 'x')).toBe('a');
    for (const bad of ['', 1, null, {}]) expectInvalidArgument(() => optionalString(bad, 'x'));
  });
});

describe('session templates', () => {
  test('assertTemplate refuses a non-object and an invalid id', () => {
    expectInvalidArgument(() => assertTemplate(null));
    expectInvalidArgument(() => assertTemplate('x'));
    expectInvalidArgument(() => assertTemplate({ id: 'bad id' }));
    assertTemplate({ id: 'good-id' });
  });

  test('sessionFromTemplate fills defaults, generates an id, and a title makes titleSource manual', () => {
    const session = sessionFromTemplate({ title: 'Hello' });
    expect(session.id).toMatch(/^ses_/);
    expect(session).toMatchObject({
      title: 'Hello',
      titleSource: 'manual',
      starred: false,
      items: [],
      usage: { inputTokens: 0, outputTokens: 0, cost: 0 },
      safetyPolicy: '',
      permissions: { allow: [], ask: [], deny: [] },
      agentModelOverrides: {},
      customModelsUsed: [],
      attributes: {},
    });
    expect(session.createdAt).toBe(session.updatedAt);
    expect(sessionFromTemplate({}).titleSource).toBe('none');
  });
});

describe('runSession input', () => {
  test('parseRunInput keeps only the given options and defaults onDetach to cancel', () => {
    const request = parseRunInput({ messages: ['hi'], agent: 'planner' }, {});
    expect(request).toMatchObject({ agent: 'planner', onDetach: 'cancel', detached: false });
    expect(Object.keys(request).sort()).toEqual(['agent', 'detached', 'messages', 'onDetach']);
  });

  test('parseRunInput refuses an unknown onDetach and an empty model, and throws the reason of an aborted signal', () => {
    // biome-ignore lint/suspicious/noExplicitAny: invalid input on purpose
    expectInvalidArgument(() => parseRunInput({ messages: ['hi'] }, { onDetach: 'wander' as any }));
    expectInvalidArgument(() => parseRunInput({ messages: ['hi'], model: '' }, {}));
    const reason = new Error('gone');
    expect(() => parseRunInput({ messages: ['hi'] }, { signal: AbortSignal.abort(reason) })).toThrow(reason);
  });

  test('summaryItem fills id and createdAt and validates; nonNegativeNumber refuses negatives and NaN', () => {
    const item = summaryItem({ summary: 's', firstKeptItem: 0 });
    expect(item).toMatchObject({ kind: 'summary', summary: 's', firstKeptItem: 0 });
    expect(item.id).toMatch(/^sum_/);
    // biome-ignore lint/suspicious/noExplicitAny: invalid input on purpose
    expectInvalidArgument(() => summaryItem({ summary: 42 } as any));
    expect(nonNegativeNumber(0, 'x')).toBe(0);
    for (const bad of [-1, Number.NaN, '5']) expectInvalidArgument(() => nonNegativeNumber(bad, 'x'));
  });
});
