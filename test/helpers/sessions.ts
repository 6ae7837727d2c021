// Session records for tests that write to a store or a runtime directly.
import type { Session } from '../../src/schemas.js';

/** A valid, empty session record created and updated at `at`; `overrides` replace any field. */
export function sessionRecord(
  id: string,
  overrides: Partial<Session> = {},
  at = '2024-01-01T00:00:00.000Z',
): Session {
  return {
    id,
    title: '',
    titleSource: 'none',
    createdAt: at,
    updatedAt: at,
    starred: false,
    items: [],
    usage: { inputTokens: 0, outputTokens: 0, cost: 0 },
    safetyPolicy: '',
    permissions: { allow: [], ask: [], deny: [] },
    agentModelOverrides: {},
    customModelsUsed: [],
    attributes: {},
    ...overrides,
  };
}

/** The session without `updatedAt`, to compare records written at different times. */
export function withoutUpdatedAt(session: Session): Omit<Session, 'updatedAt'> {
  const { updatedAt: _updatedAt, ...rest } = session;
  return rest;
}
