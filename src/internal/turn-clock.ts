// The clock of the manager's event timestamps: one reading shared by the events of one task.
import { onNextTurn } from './next-turn.js';

/** Events that may share one reading of the clock. */
export const EVENTS_PER_READING = 16;

let readingMs = Number.NaN;
let readingIso = '';
/** Further events that may still take the current reading. */
let left = 0;
let expiryScheduled = false;

function expire(): void {
  expiryScheduled = false;
  left = 0;
}

/**
 * The current time as ISO-8601, read from `Date.now()` at most once per {@link EVENTS_PER_READING}
 * calls and never reused past the end of the task that read it (the reading expires on the next
 * turn of the event loop). A runtime streaming over the network gets a fresh reading for every
 * chunk it receives; one that yields many events without I/O shares a reading between at most 16
 * of them, which saves most of what reading the clock costs per event (about a tenth of the event
 * path). The price: a timestamp can be earlier than its event by the time the events sharing its
 * reading took to go through the log, normally microseconds.
 */
export function turnTimestamp(): string {
  if (left > 0) {
    left--;
    return readingIso;
  }
  const ms = Date.now();
  if (ms !== readingMs) {
    readingMs = ms;
    readingIso = new Date(ms).toISOString();
  }
  left = EVENTS_PER_READING - 1;
  if (!expiryScheduled) {
    expiryScheduled = true;
    onNextTurn(expire);
  }
  return readingIso;
}
