// Tiny assertions for the testing entry, which must not import vitest, jest or node:assert (it runs
// under any test framework and in any JS runtime). Failures throw plain Errors with readable
// messages that show where two values first differ.
import { AgentSessionsError, type ErrorCode } from '../errors.js';

/** Throws an assertion error with `message`. */
export function fail(message: string): never {
  const error = new Error(message);
  error.name = 'AssertionError';
  throw error;
}

/** Fails with `message` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}

/** A short, printable rendering of a value for failure messages (long strings are cut). */
export function show(value: unknown, max = 160): string {
  let text: string;
  if (value === undefined) text = 'undefined';
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (typeof value === 'function') text = '[function]';
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

function pathKey(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) && key !== '__proto__' ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function definedKeys(value: object): string[] {
  return Object.keys(value).filter((key) => (value as Record<string, unknown>)[key] !== undefined);
}

/**
 * Where `actual` and `expected` first differ under JSON semantics, or `undefined` when they are
 * equal: a property whose value is `undefined` counts as absent, prototypes are ignored, and
 * numbers compare with `===` (so `-0` equals `0`, as after a JSON round trip). Own `__proto__`
 * keys are compared like any other key.
 */
export function findDifference(actual: unknown, expected: unknown, path = '$'): string | undefined {
  if (actual === expected) return undefined;
  if (typeof actual !== 'object' || typeof expected !== 'object' || actual === null || expected === null) {
    return `at ${path}: expected ${show(expected)}, got ${show(actual)}`;
  }
  if (Array.isArray(actual) !== Array.isArray(expected)) {
    return `at ${path}: expected ${Array.isArray(expected) ? 'an array' : 'an object'}, got ${show(actual)}`;
  }
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length) {
      return `at ${path}: expected an array of length ${expected.length}, got length ${actual.length}`;
    }
    for (let index = 0; index < actual.length; index++) {
      const difference = findDifference(actual[index], expected[index], `${path}[${index}]`);
      if (difference) return difference;
    }
    return undefined;
  }
  const actualKeys = definedKeys(actual);
  const expectedKeys = definedKeys(expected);
  for (const key of expectedKeys) {
    if (!actualKeys.includes(key))
      return `at ${path}${pathKey(key)}: missing (expected ${show(expected[key as keyof typeof expected])})`;
  }
  for (const key of actualKeys) {
    if (!expectedKeys.includes(key))
      return `at ${path}${pathKey(key)}: unexpected ${show(actual[key as keyof typeof actual])}`;
  }
  for (const key of expectedKeys) {
    const difference = findDifference(
      (actual as Record<string, unknown>)[key],
      (expected as Record<string, unknown>)[key],
      `${path}${pathKey(key)}`,
    );
    if (difference) return difference;
  }
  return undefined;
}

/** Fails unless `actual` deep-equals `expected` (see {@link findDifference}). */
export function assertEqual(actual: unknown, expected: unknown, message: string): void {
  const difference = findDifference(actual, expected);
  if (!difference) return;
  const expectedText = show(expected, 400);
  const actualText = show(actual, 400);
  // Whole values help when they are short (a list of ids); a 1 MiB record would drown the message.
  const whole =
    expectedText.length + actualText.length <= 600
      ? `\n  expected: ${expectedText}\n  actual:   ${actualText}`
      : '';
  fail(`${message}: ${difference}${whole}`);
}

/**
 * Awaits `call()` and fails unless it rejects with an agent-sessions error of `code` (checked with
 * `AgentSessionsError.isInstance`, so errors of another build of the package count). A call that
 * throws synchronously instead of returning a rejected promise fails too. Returns the error.
 */
export async function assertRejectsWithCode(
  call: () => Promise<unknown>,
  code: ErrorCode,
  message: string,
): Promise<AgentSessionsError> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    return fail(
      `${message}: expected a promise rejecting with ${code}, but the call threw synchronously: ${describeError(error)}`,
    );
  }
  if (!promise || typeof (promise as { then?: unknown }).then !== 'function') {
    return fail(`${message}: expected a promise rejecting with ${code}, got ${show(promise)}`);
  }
  try {
    await promise;
  } catch (error) {
    if (AgentSessionsError.isInstance(error) && error.code === code) return error;
    return fail(`${message}: expected a rejection with ${code}, got ${describeError(error)}`);
  }
  return fail(`${message}: expected a rejection with ${code}, but it resolved`);
}

/** A one-line description of an error for failure messages. */
export function describeError(error: unknown): string {
  if (AgentSessionsError.isInstance(error)) return `${error.name} ${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return show(error);
}
