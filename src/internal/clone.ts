// Deep copies of plain JSON records. structuredClone keeps own "__proto__" keys as data and shares
// nothing with its input.
export function cloneRecord<T>(value: T): T {
  return structuredClone(value);
}
