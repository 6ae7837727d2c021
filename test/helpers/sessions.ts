// Session records for tests that write to a store or a runtime directly.
import type { Session } from '../../src/schemas.js';
import { sessionRecord as publicSessionRecord } from '../../src/testing/records.js';

/** A valid, empty session record created and updated at `at`; `overrides` replace any field. */
export function sessionRecord(
  id: string,
  overrides: Partial<Session> = {},
  at = '2024-01-01T00:00:00.000Z',
): Session {
  return publicSessionRecord(id, overrides, at);
}

/** The session without `updatedAt`, to compare records written at different times. */
export function withoutUpdatedAt(session: Session): Omit<Session, 'updatedAt'> {
  const { updatedAt: _updatedAt, ...rest } = session;
  return rest;
}
