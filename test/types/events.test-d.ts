// Type tests (vitest typecheck): what a user's editor sees. Narrowing a SessionEvent on `type`
// gives the payload of that type; guards narrow; streams yield SessionEvent; error codes are a union.

import {
  AgentSessionsError,
  type ErrorCode,
  isEventType,
  isRuntimeEvent,
  type Message,
  type RuntimeEvent,
  type SessionEvent,
  type SessionEventOf,
  type SessionEventStream,
  type SessionManager,
  type StopReason,
  type ToolCall,
  type TurnResult,
  type TurnStream,
} from 'agent-sessions';
import { describe, expectTypeOf, test } from 'vitest';

declare const event: SessionEvent;

describe('SessionEvent narrows on type', () => {
  test('agent_choice has content: string', () => {
    if (event.type === 'agent_choice') {
      expectTypeOf(event.content).toEqualTypeOf<string>();
      expectTypeOf(event).toHaveProperty('seq').toEqualTypeOf<number>();
      expectTypeOf(event).toHaveProperty('sessionId').toEqualTypeOf<string>();
      expectTypeOf(event).not.toHaveProperty('toolCall');
    }
  });

  test('turn_queued has position: number', () => {
    if (event.type === 'turn_queued') {
      expectTypeOf(event.position).toEqualTypeOf<number>();
      expectTypeOf(event).toHaveProperty('turnId');
    }
  });

  test('tool_call_confirmation has confirmationId and toolCall', () => {
    if (event.type === 'tool_call_confirmation') {
      expectTypeOf(event.confirmationId).toEqualTypeOf<string>();
      expectTypeOf(event.toolCall).toEqualTypeOf<ToolCall>();
    }
  });

  test('every payload of the contract is on its event', () => {
    if (event.type === 'stream_stopped') expectTypeOf(event.reason).toEqualTypeOf<StopReason>();
    if (event.type === 'user_message') expectTypeOf(event.message).toEqualTypeOf<Message>();
    if (event.type === 'message_added') expectTypeOf(event.message).toEqualTypeOf<Message>();
    if (event.type === 'tool_call_response') {
      expectTypeOf(event.response).toEqualTypeOf<string>();
      expectTypeOf(event.isError).toEqualTypeOf<boolean | undefined>();
    }
    if (event.type === 'elicitation_request') {
      expectTypeOf(event.elicitationId).toEqualTypeOf<string>();
      expectTypeOf(event.mode).toEqualTypeOf<'form' | 'url'>();
    }
    if (event.type === 'token_usage') expectTypeOf(event.usage.inputTokens).toEqualTypeOf<number>();
    if (event.type === 'gap') expectTypeOf(event.reason).toEqualTypeOf<'dropped' | 'reset'>();
    if (event.type === 'session_exited') expectTypeOf(event.reason).toEqualTypeOf<'deleted' | 'closed'>();
    if (event.type === 'session_title') expectTypeOf(event.title).toEqualTypeOf<string>();
  });

  test('a switch over type is exhaustive', () => {
    const describe = (value: SessionEvent): string => {
      switch (value.type) {
        case 'agent_choice':
        case 'agent_choice_reasoning':
          return value.content;
        default:
          return value.type;
      }
    };
    expectTypeOf(describe).returns.toEqualTypeOf<string>();
    expectTypeOf<SessionEvent['type']>().toExtend<string>();
    // @ts-expect-error 'agent_message' is not an event type
    expectTypeOf<SessionEventOf<'agent_message'>>().toBeNever();
  });
});

describe('guards narrow', () => {
  test('isEventType narrows to that event', () => {
    if (isEventType(event, 'tool_call_confirmation')) {
      expectTypeOf(event).toEqualTypeOf<SessionEventOf<'tool_call_confirmation'>>();
      expectTypeOf(event.confirmationId).toEqualTypeOf<string>();
    }
    if (isEventType(event, 'agent_choice')) expectTypeOf(event.content).toEqualTypeOf<string>();
    // @ts-expect-error not an event type
    isEventType(event, 'nope');
  });

  test('isRuntimeEvent narrows to runtime events', () => {
    if (isRuntimeEvent(event)) {
      expectTypeOf(event.type).toEqualTypeOf<RuntimeEvent['type']>();
      expectTypeOf(event).toHaveProperty('seq');
    }
  });
});

describe('streams yield SessionEvent', () => {
  test('TurnStream is an async iterable of SessionEvent with turnId, cancel and done', () => {
    expectTypeOf<TurnStream>().toExtend<AsyncIterable<SessionEvent>>();
    expectTypeOf<TurnStream['turnId']>().toEqualTypeOf<string>();
    expectTypeOf<TurnStream['done']>().toEqualTypeOf<Promise<TurnResult>>();
    expectTypeOf<TurnResult['stopReason']>().toEqualTypeOf<StopReason>();
    expectTypeOf<TurnStream['cancel']>().parameters.toEqualTypeOf<[reason?: unknown]>();
  });

  test('runSession resolves to a TurnStream; streamEvents is an async iterable of SessionEvent', () => {
    expectTypeOf<SessionManager['runSession']>().returns.resolves.toEqualTypeOf<TurnStream>();
    expectTypeOf<SessionManager['streamEvents']>().returns.toEqualTypeOf<SessionEventStream>();
    expectTypeOf<SessionEventStream>().toExtend<AsyncIterable<SessionEvent>>();
    expectTypeOf<SessionEventStream['ready']>().toEqualTypeOf<Promise<void>>();
  });

  test('a runtime event is not accepted where a session event is needed (it lacks the envelope)', () => {
    expectTypeOf<RuntimeEvent>().not.toExtend<SessionEvent>();
  });
});

describe('errors', () => {
  test('code is the ErrorCode union, and hasCode narrows it', () => {
    expectTypeOf<AgentSessionsError['code']>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<'SESSION_BUSY'>().toExtend<ErrorCode>();
    expectTypeOf<'NOT_A_CODE'>().not.toExtend<ErrorCode>();
    const error: unknown = undefined;
    if (AgentSessionsError.hasCode(error, 'SESSION_BUSY'))
      expectTypeOf(error.code).toEqualTypeOf<'SESSION_BUSY'>();
    if (AgentSessionsError.isInstance(error)) expectTypeOf(error).toEqualTypeOf<AgentSessionsError>();
  });
});
