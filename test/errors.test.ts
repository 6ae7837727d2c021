import { describe, expect, test } from 'vitest';
import * as z from 'zod';
import {
  AgentSessionsError,
  ErrorCode,
  InvalidArgumentError,
  invalidArgument,
  MessageNotFoundError,
  SessionBusyError,
  SessionExistsError,
  SessionNotFoundError,
  StoreCorruptError,
  SubscriberLaggedError,
  toAgentSessionsError,
} from '../src/errors.js';

const CODES = [
  'SESSION_NOT_FOUND',
  'SESSION_EXISTS',
  'SESSION_BUSY',
  'SESSION_NOT_RUNNING',
  'MESSAGE_NOT_FOUND',
  'MODEL_SWITCHING_NOT_SUPPORTED',
  'SOURCE_NOT_FOUND',
  'SOURCE_UNAVAILABLE',
  'INVALID_ARGUMENT',
  'INVALID_WORKING_DIR',
  'QUEUE_FULL',
  'NOTHING_PENDING',
  'SUBSCRIBER_LAGGED',
  'STORE_CORRUPT',
  'STORE_LOCKED',
  'STORE_UNAVAILABLE',
  'RUNTIME_FAILED',
  'CLOSED',
  'TIMEOUT',
];

describe('ErrorCode', () => {
  test('holds exactly the documented codes, each mapped to itself', () => {
    expect(Object.keys(ErrorCode).sort()).toEqual([...CODES].sort());
    for (const [key, value] of Object.entries(ErrorCode)) expect(value).toBe(key);
  });
});

describe('AgentSessionsError', () => {
  test('carries code, message and name, and is an Error', () => {
    const error = new AgentSessionsError('CLOSED', 'manager closed');
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('CLOSED');
    expect(error.message).toBe('manager closed');
    expect(error.name).toBe('AgentSessionsError');
    expect(error.stack).toContain('manager closed');
  });

  test('keeps cause only when there is one', () => {
    const cause = new Error('EIO');
    expect(new AgentSessionsError('STORE_CORRUPT', 'x', { cause }).cause).toBe(cause);
    expect(Object.hasOwn(new AgentSessionsError('STORE_CORRUPT', 'x'), 'cause')).toBe(false);
  });

  test.each([
    ['InvalidArgumentError', new InvalidArgumentError('bad')],
    ['SessionNotFoundError', new SessionNotFoundError('s1')],
    ['SessionExistsError', new SessionExistsError('s1')],
    ['MessageNotFoundError', new MessageNotFoundError('s1', 'm1')],
    ['SessionBusyError', new SessionBusyError('s1', 't1')],
    ['StoreCorruptError', new StoreCorruptError('/d/s1.jsonl', 'truncated line')],
    ['SubscriberLaggedError', new SubscriberLaggedError('s1', 7)],
  ])('%s sets name to its class name and is recognised by isInstance', (name, error) => {
    expect(error.name).toBe(name);
    expect(error).toBeInstanceOf(AgentSessionsError);
    expect(AgentSessionsError.isInstance(error)).toBe(true);
  });

  const classes = [
    ['InvalidArgumentError', InvalidArgumentError, () => new InvalidArgumentError('bad')],
    ['SessionNotFoundError', SessionNotFoundError, () => new SessionNotFoundError('s1')],
    ['SessionExistsError', SessionExistsError, () => new SessionExistsError('s1')],
    ['MessageNotFoundError', MessageNotFoundError, () => new MessageNotFoundError('s1', 'm1')],
    ['SessionBusyError', SessionBusyError, () => new SessionBusyError('s1', 't1')],
    ['StoreCorruptError', StoreCorruptError, () => new StoreCorruptError('/d/x', 'bad')],
    ['SubscriberLaggedError', SubscriberLaggedError, () => new SubscriberLaggedError('s1', 1)],
  ] as const;

  test.each(classes)(
    '%s.isInstance is true for its own class only, never for a sibling or the base',
    (_name, Class, make) => {
      const own = make();
      expect(Class.isInstance(own)).toBe(true);
      expect(Class.isInstance(new AgentSessionsError('CLOSED', 'closed'))).toBe(false);
      for (const [, Other, makeOther] of classes) {
        if (Other === Class) continue;
        expect(Class.isInstance(makeOther())).toBe(false);
        expect(Other.isInstance(own)).toBe(false);
      }
    },
  );

  test('a class brand survives another copy of the class (the other build) and implies the base brand', () => {
    class OtherCopy extends Error {
      readonly code = 'SESSION_NOT_FOUND';
      readonly sessionId = 's1';
      constructor() {
        super('not found');
        Object.defineProperty(this, Symbol.for('agent-sessions.error'), { value: true });
        Object.defineProperty(this, Symbol.for('agent-sessions.error.SessionNotFoundError'), { value: true });
      }
    }
    const foreign = new OtherCopy();
    expect(SessionNotFoundError.isInstance(foreign)).toBe(true);
    expect(StoreCorruptError.isInstance(foreign)).toBe(false);
    expect(AgentSessionsError.isInstance(foreign)).toBe(true);
  });

  test('a subclass of a library class keeps the parent brand and gets its own name', () => {
    class NotFoundHere extends SessionNotFoundError {}
    const error = new NotFoundHere('s1');
    expect(error.name).toBe('NotFoundHere');
    expect(SessionNotFoundError.isInstance(error)).toBe(true);
  });

  test('a subclass defined by a user gets its own name', () => {
    class CustomError extends AgentSessionsError {}
    expect(new CustomError('TIMEOUT', 'slow').name).toBe('CustomError');
  });

  test('isInstance recognises an error made by another copy of the class through the shared brand', () => {
    // What the other build (CJS vs ESM) creates: a different class with the same global brand.
    class OtherCopy extends Error {
      readonly code = 'SESSION_BUSY';
      constructor() {
        super('busy');
        Object.defineProperty(this, Symbol.for('agent-sessions.error'), { value: true });
      }
    }
    const foreign = new OtherCopy();
    expect(foreign).not.toBeInstanceOf(AgentSessionsError);
    expect(AgentSessionsError.isInstance(foreign)).toBe(true);
    expect(AgentSessionsError.hasCode(foreign, 'SESSION_BUSY')).toBe(true);
  });

  test.each([
    ['a plain Error', new Error('x')],
    ['an object with a code', { code: 'SESSION_BUSY', message: 'x' }],
    ['an object with a truthy non-true brand', { [Symbol.for('agent-sessions.error')]: 1 }],
    ['an object with a local symbol of the same name', { [Symbol('agent-sessions.error')]: true }],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'SESSION_BUSY'],
  ])('isInstance is false for %s', (_what, value) => {
    expect(AgentSessionsError.isInstance(value)).toBe(false);
  });

  test('the brand is not enumerable, so it does not show in JSON or spreads', () => {
    const error = new AgentSessionsError('TIMEOUT', 'slow');
    expect(Object.getOwnPropertySymbols({ ...error })).toEqual([]);
    expect(JSON.stringify(error)).not.toContain('agent-sessions');
  });

  test('hasCode checks the code', () => {
    const error = new SessionNotFoundError('s1');
    expect(AgentSessionsError.hasCode(error, 'SESSION_NOT_FOUND')).toBe(true);
    expect(AgentSessionsError.hasCode(error, 'SESSION_EXISTS')).toBe(false);
    expect(AgentSessionsError.hasCode(new Error('SESSION_NOT_FOUND'), 'SESSION_NOT_FOUND')).toBe(false);
  });
});

describe('subclasses', () => {
  test('SessionBusyError names the session and the running turn', () => {
    const error = new SessionBusyError('s1', 'turn-9');
    expect(error).toMatchObject({ code: 'SESSION_BUSY', sessionId: 's1', turnId: 'turn-9' });
    expect(error.message).toBe('session "s1" is busy running turn turn-9');
  });

  test('SessionBusyError without a turn id says so in its message', () => {
    const error = new SessionBusyError('s1', undefined);
    expect(error.turnId).toBeUndefined();
    expect(error.message).toBe('session "s1" is busy');
  });

  test('SessionExistsError names the session', () => {
    const error = new SessionExistsError('s1');
    expect(error).toMatchObject({ code: 'SESSION_EXISTS', sessionId: 's1' });
    expect(error.message).toBe('session "s1" already exists');
  });

  test('MessageNotFoundError names the session and the message', () => {
    const error = new MessageNotFoundError('s1', 'm1');
    expect(error).toMatchObject({ code: 'MESSAGE_NOT_FOUND', sessionId: 's1', messageId: 'm1' });
    expect(error.message).toBe('message "m1" not found in session "s1"');
  });

  test('SessionNotFoundError names the session', () => {
    const error = new SessionNotFoundError('s1');
    expect(error).toMatchObject({ code: 'SESSION_NOT_FOUND', sessionId: 's1' });
    expect(error.message).toContain('"s1"');
  });

  test('StoreCorruptError names the damaged record and keeps the cause', () => {
    const cause = new SyntaxError('Unexpected end of JSON input');
    const error = new StoreCorruptError('/data/s1.jsonl', 'line 3 is not JSON', { cause });
    expect(error).toMatchObject({ code: 'STORE_CORRUPT', path: '/data/s1.jsonl', cause });
    expect(error.message).toContain('/data/s1.jsonl');
    expect(error.message).toContain('line 3 is not JSON');
  });

  test('SubscriberLaggedError says where to reconnect', () => {
    const error = new SubscriberLaggedError('s1', 41);
    expect(error).toMatchObject({ code: 'SUBSCRIBER_LAGGED', sessionId: 's1', lastSeq: 41 });
    expect(error.message).toContain('since: 41');
  });

  test('InvalidArgumentError has no issues unless given', () => {
    expect(new InvalidArgumentError('bad').issues).toEqual([]);
    expect(new InvalidArgumentError('bad', { issues: [{ path: ['a'], message: 'm' }] }).issues).toEqual([
      { path: ['a'], message: 'm' },
    ]);
  });
});

describe('invalidArgument', () => {
  test('carries the zod issues, names the first in its message and keeps the zod error as cause', () => {
    const result = z.object({ limit: z.number(), nested: z.object({ name: z.string() }) }).safeParse({
      limit: 'x',
      nested: { name: 1 },
    });
    expect(result.success).toBe(false);
    if (result.success) return;
    const error = invalidArgument('list options', result.error);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.cause).toBe(result.error);
    expect(error.issues).toEqual([
      expect.objectContaining({ path: ['limit'], code: 'invalid_type', message: expect.any(String) }),
      expect.objectContaining({ path: ['nested', 'name'], code: 'invalid_type' }),
    ]);
    expect(error.message).toMatch(/^invalid list options: limit: /);
  });

  test('copies the issue paths, so later changes to the zod error do not leak in', () => {
    const path: PropertyKey[] = ['a'];
    const error = invalidArgument('thing', { issues: [{ path, message: 'm' }] });
    path.push('b');
    expect(error.issues[0]?.path).toEqual(['a']);
    expect(Object.hasOwn(error.issues[0]!, 'code')).toBe(false);
  });

  test('without issues says only what was invalid', () => {
    const error = invalidArgument('cursor');
    expect(error.message).toBe('invalid cursor');
    expect(error.issues).toEqual([]);
  });

  test('a root-level issue has no path in the message', () => {
    expect(invalidArgument('patch', { issues: [{ path: [], message: 'expected an object' }] }).message).toBe(
      'invalid patch: expected an object',
    );
  });
});

describe('toAgentSessionsError', () => {
  test('returns an error of the library unchanged', () => {
    const error = new SessionNotFoundError('s1');
    expect(toAgentSessionsError(error, 'RUNTIME_FAILED', 'runtime failed')).toBe(error);
  });

  test('wraps a foreign error with the code, its message and the original as cause', () => {
    const cause = new TypeError('boom');
    const error = toAgentSessionsError(cause, 'RUNTIME_FAILED', 'runtime failed');
    expect(error).toMatchObject({ code: 'RUNTIME_FAILED', message: 'runtime failed: boom', cause });
  });

  test('wraps a thrown non-error value', () => {
    const error = toAgentSessionsError('just a string', 'SOURCE_UNAVAILABLE', 'source failed');
    expect(error).toMatchObject({
      code: 'SOURCE_UNAVAILABLE',
      message: 'source failed: just a string',
      cause: 'just a string',
    });
  });
});
