// Running a callback on the next turn of the event loop, after the current task and its microtasks.

// Taken at load, so fake timers installed later (a host's tests) do not stall batch readers.
const immediate = typeof globalThis.setImmediate === 'function' ? globalThis.setImmediate : undefined;
const timeout = globalThis.setTimeout;

/**
 * Runs `callback` once the current task and every microtask it queued have run: `setImmediate`
 * where it exists (Node, Bun, Deno), else `setTimeout(0)`. Batch readers are woken through it, so
 * a producer that appends many events within one task wakes them once, with all of them.
 */
export function onNextTurn(callback: () => void): void {
  if (immediate !== undefined) immediate(callback);
  else timeout(callback, 0);
}
