/**
 * Model switching: a session's model override per agent, applied to the runtime and persisted in
 * `agentModelOverrides` (refs with `/` also in `customModelsUsed`), so runtime and record agree
 * after a failure of either step; and the list of models a session can switch to.
 *
 * Order of a switch: the runtime first (`setModel`), then the record. If the record write fails,
 * the runtime is set back to the previous model. The undo a switch returns takes back only that
 * switch: a model set meanwhile for the same agent is kept.
 */
import { AgentSessionsError, ErrorCode, toAgentSessionsError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelChoice, Runtime } from '../runtime.js';
import type { SessionPatch } from '../schemas.js';
import type { SessionCache, SessionRecord } from './session-records.js';
import type { AvailableModels } from './types.js';

/**
 * The override of `agent`, read as an own property only: agent names such as `constructor` or
 * `__proto__` must not read what every object inherits.
 */
export function overrideOf(overrides: Readonly<Record<string, string>>, agent: string): string | undefined {
  return Object.hasOwn(overrides, agent) ? overrides[agent] : undefined;
}

/** Sets an own property, even one named `__proto__` (a plain assignment would set the prototype). */
function setOwn(target: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * The model each runtime was last set to, per agent, as far as this process knows: a runtime with
 * no entry for an agent runs its default model (a new runtime), and an entry is dropped when the
 * outcome of a `setModel` call is unknown (it threw).
 */
const appliedModels = new WeakMap<Runtime, Map<string, string | undefined>>();

function noteApplied(runtime: Runtime, agent: string, ref: string | undefined): void {
  const applied = appliedModels.get(runtime) ?? new Map<string, string | undefined>();
  applied.set(agent, ref);
  appliedModels.set(runtime, applied);
}

/**
 * Makes the runtime run the record's override of `agent`, at a turn start: a runtime made anew
 * (first use, after the idle timeout, after a restart) gets the session's override, and one left
 * on another model by a failed write or rollback is set back to what the record says. Calls
 * `setModel` only when the runtime is not known to run that model already. `RUNTIME_FAILED`.
 */
export async function alignModel(cache: SessionCache, runtime: Runtime, agent: string): Promise<void> {
  if (typeof runtime.setModel !== 'function') return;
  const wanted = overrideOf(cache.meta.agentModelOverrides, agent);
  const applied = appliedModels.get(runtime);
  if (applied?.has(agent) ? applied.get(agent) === wanted : wanted === undefined) return;
  try {
    await runtime.setModel(agent, wanted);
  } catch (error) {
    appliedModels.get(runtime)?.delete(agent);
    throw toAgentSessionsError(
      error,
      ErrorCode.RUNTIME_FAILED,
      `the runtime could not switch ${agent} to the session's model ${String(wanted)}`,
    );
  }
  noteApplied(runtime, agent, wanted);
}

/** The agent name overrides are stored under when the session has no agent. */
export const DEFAULT_AGENT = 'default';

/** `MODEL_SWITCHING_NOT_SUPPORTED` unless the runtime has `setModel`. */
export function assertCanSwitchModels(runtime: Runtime, sessionId: string): void {
  if (typeof runtime.setModel !== 'function') {
    throw new AgentSessionsError(
      ErrorCode.MODEL_SWITCHING_NOT_SUPPORTED,
      `the runtime of session ${JSON.stringify(sessionId)} cannot switch models`,
    );
  }
}

/**
 * Switches `agent` to `ref` (or clears its override) on the runtime, then in the record. Call it
 * inside {@link SessionRecord.exclusive}: it rewrites the whole overrides map. Resolves to the undo
 * (to be called inside `exclusive` as well).
 */
export async function switchModel(
  record: SessionRecord,
  cache: SessionCache,
  runtime: Runtime,
  agent: string,
  ref: string | undefined,
  logger: Logger,
): Promise<() => Promise<void>> {
  assertCanSwitchModels(runtime, record.id);
  const overrides = cache.meta.agentModelOverrides;
  const previous = overrideOf(overrides, agent);
  try {
    await runtime.setModel?.(agent, ref);
  } catch (error) {
    appliedModels.get(runtime)?.delete(agent);
    throw toAgentSessionsError(
      error,
      ErrorCode.RUNTIME_FAILED,
      `the runtime could not switch ${agent} to ${String(ref)}`,
    );
  }
  const nextOverrides = { ...overrides };
  if (ref === undefined) delete nextOverrides[agent];
  else setOwn(nextOverrides, agent, ref);
  const patch: SessionPatch = { agentModelOverrides: nextOverrides };
  if (ref?.includes('/') && !cache.meta.customModelsUsed.includes(ref)) {
    patch.customModelsUsed = [...cache.meta.customModelsUsed, ref];
  }
  noteApplied(runtime, agent, ref);
  const restoreRuntime = async () => {
    try {
      await runtime.setModel?.(agent, previous);
      noteApplied(runtime, agent, previous);
    } catch (error) {
      appliedModels.get(runtime)?.delete(agent);
      logger.error('restoring the runtime model failed', { sessionId: record.id, agent, error });
    }
  };
  try {
    await record.patch(patch);
  } catch (error) {
    // The write may have been applied: the next turn start reads the record again and sets the
    // runtime to what it says (alignModel).
    record.forget();
    await restoreRuntime();
    throw error;
  }
  return async () => {
    // Only this call's change is undone: a model set meanwhile (by setSessionModel) is kept.
    if (overrideOf(cache.meta.agentModelOverrides, agent) !== ref) return;
    await restoreRuntime();
    const restoredOverrides: Record<string, string> = { ...cache.meta.agentModelOverrides };
    if (previous === undefined) delete restoredOverrides[agent];
    else setOwn(restoredOverrides, agent, previous);
    const restored: SessionPatch = { agentModelOverrides: restoredOverrides };
    if (patch.customModelsUsed) {
      restored.customModelsUsed = cache.meta.customModelsUsed.filter((used) => used !== ref);
    }
    await record.patch(restored);
  };
}

/** The runtime's models for the agent in force, each marked `current`, then the custom refs used. */
export async function availableModels(cache: SessionCache, runtime: Runtime): Promise<AvailableModels> {
  const agent = cache.meta.agent ?? DEFAULT_AGENT;
  const current = overrideOf(cache.meta.agentModelOverrides, agent);
  let listed: ModelChoice[] = [];
  if (runtime.availableModels) {
    try {
      listed = await runtime.availableModels(agent);
    } catch (error) {
      throw toAgentSessionsError(
        error,
        ErrorCode.RUNTIME_FAILED,
        `runtime could not list models for ${agent}`,
      );
    }
  }
  const models = listed.map((choice) => ({ ...choice, current: choice.ref === current }));
  for (const ref of cache.meta.customModelsUsed) {
    if (!models.some((choice) => choice.ref === ref)) models.push({ ref, current: ref === current });
  }
  return { agent, ...(current === undefined ? {} : { current }), models };
}
