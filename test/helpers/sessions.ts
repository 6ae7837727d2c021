// Session records for tests that write to a store or a runtime directly.
import type { Session } from '../../src/schemas.js';

/** The session without `updatedAt`, to compare records written at different times. */
export function withoutUpdatedAt(session: Session): Omit<Session, 'updatedAt'> {
  const { updatedAt: _updatedAt, ...rest } = session;
  return rest;
}
