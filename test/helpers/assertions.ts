// Assertions and promise utilities shared by the test files.
import { expect } from 'vitest';
import { AgentSessionsError, type InvalidArgumentError } from '../../src/errors.js';

/** Resolves with what `promise` rejected with; rejects when it resolves instead. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Asserts `error` is an error of this library with `code`. */
export function expectCode(error: unknown, code: string): void {
  expect(AgentSessionsError.isInstance(error), String(error)).toBe(true);
  expect((error as AgentSessionsError).code).toBe(code);
}

/** Asserts `promise` rejects with an error of this library with `code`, and returns that error. */
export async function expectRejectsWithCode(
  promise: Promise<unknown>,
  code: string,
): Promise<AgentSessionsError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(AgentSessionsError.isInstance(caught), `expected ${code}, got ${String(caught)}`).toBe(true);
  expect((caught as AgentSessionsError).code).toBe(code);
  return caught as AgentSessionsError;
}

/** Asserts `call` throws INVALID_ARGUMENT synchronously, and returns the error. */
export function expectInvalidArgument(call: () => unknown): InvalidArgumentError {
  let thrown: unknown;
  try {
    call();
  } catch (error) {
    thrown = error;
  }
  expect(
    AgentSessionsError.hasCode(thrown, 'INVALID_ARGUMENT'),
    `expected INVALID_ARGUMENT, got ${String(thrown)}`,
  ).toBe(true);
  return thrown as InvalidArgumentError;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A promise with its settle functions, for a test to settle when it chooses. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((done, fail) => {
    resolve = done;
    reject = fail;
  });
  return { promise, resolve, reject };
}
