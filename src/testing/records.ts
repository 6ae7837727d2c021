import type { Session } from '../schemas.js';

/**
 * A valid session record with empty defaults (no title, no items, zero usage, default policy, no
 * permissions), created and updated at `at`; `overrides` replace any field. For tests and tools
 * that write to a store directly (the manager's `createSession` makes records for everyone else).
 *
 * @example
 * ```ts
 * await store.createSession(sessionRecord('s1', { title: 'first', starred: true }));
 * ```
 */
export function sessionRecord(
  id: string,
  overrides: Partial<Session> = {},
  at = new Date().toISOString(),
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
