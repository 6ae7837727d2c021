// Deep freezing of records handed to runtimes: once per item, so sharing costs nothing later.

/** Freezes `value` and everything reachable from it; returns it. Already frozen parts are skipped. */
export function deepFreeze<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (typeof current !== 'object' || current === null || Object.isFrozen(current)) continue;
    Object.freeze(current);
    for (const key of Object.keys(current)) stack.push((current as Record<string, unknown>)[key]);
  }
  return value;
}
