// Deep copies of plain JSON records. structuredClone keeps own "__proto__" keys as data and shares
// nothing with its input.
export function cloneRecord<T>(value: T): T {
  return structuredClone(value);
}

/**
 * A deep copy of a value that came from JSON (objects, arrays, strings, numbers, booleans, null):
 * several times faster than `structuredClone` on such values. An own `"__proto__"` key is copied
 * as data, never as a prototype.
 */
export function copyJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let index = 0; index < value.length; index++) out[index] = copyJson(value[index]);
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const copied = copyJson((value as Record<string, unknown>)[key]);
    if (key === '__proto__') {
      Object.defineProperty(out, key, {
        value: copied,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    } else out[key] = copied;
  }
  return out as T;
}
