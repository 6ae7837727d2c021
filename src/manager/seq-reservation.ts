/**
 * Event numbers that are never reused across restarts.
 *
 * A session's event log lives in the process's memory, so a new process would number from 1 again
 * and a client reconnecting with a position from before the restart would get another turn's
 * events as if they were the ones it missed. Instead, the session record keeps a reserved
 * high-water mark (`Session.eventSeqReserved`): the manager writes it *ahead* of the events it
 * numbers, a block of {@link SEQ_BLOCK} at a time, and a log made in a new process numbers after
 * it, with every older position answered by a `gap` `reset` (see `EventLogs.getOrCreate`).
 *
 * The mark is moved before a turn starts when fewer than {@link SEQ_MARGIN} numbers are left, and
 * in the background during a turn when it crosses that margin: one write per few thousand events.
 * The guarantee holds as long as such a write lands before the turn emits the remaining margin
 * (2 048 events); a process that dies with a write failed or in flight can at worst reuse numbers
 * of its own last block, never of an earlier process's.
 */
import type { SessionRecord } from './session-records.js';

/** Numbers reserved by one write. */
export const SEQ_BLOCK = 4096;
/** The mark moves ahead when fewer numbers than this are left. */
export const SEQ_MARGIN = 2048;

/** True when the numbering at `lastSeq` needs the mark moved ahead. */
export function needsReservation(record: SessionRecord, lastSeq: number): boolean {
  return lastSeq >= reservationDueAt(record);
}

/**
 * The first seq at which {@link needsReservation} holds, given the record's current mark: fewer
 * than `SEQ_MARGIN` numbers are left from there (`lastSeq + SEQ_MARGIN > reserved`).
 */
export function reservationDueAt(record: SessionRecord): number {
  return (record.cached?.meta.eventSeqReserved ?? 0) - SEQ_MARGIN + 1;
}

/** Moves the persisted mark to `lastSeq + SEQ_BLOCK` when fewer than `SEQ_MARGIN` numbers are left. */
export async function reserveEventSeqs(record: SessionRecord, lastSeq: number): Promise<void> {
  if (!needsReservation(record, lastSeq)) return;
  await record.exclusive(async () => {
    if (!needsReservation(record, lastSeq)) return;
    await record.patch({ eventSeqReserved: lastSeq + SEQ_BLOCK });
  });
}
