/**
 * The model choice as an ACP config option (category `model`), backed by `getAvailableModels` and
 * `setSessionModel`. The option's values are the runtime's model refs and the custom refs the
 * session used; `default` (no override: the runtime's own choice) is listed first unless the
 * runtime has a model with that ref.
 */
import type { SessionConfigOption } from '@agentclientprotocol/sdk';
import type { AvailableModels } from '../index.js';

/** The config option id of the model choice. */
export const MODEL_CONFIG_ID = 'model';
/** The value meaning "no override: the runtime's default model". */
export const DEFAULT_MODEL_VALUE = 'default';

/** The config options of a session: the model choice, when the runtime offers any model. */
export function configOptions(available: AvailableModels): SessionConfigOption[] {
  if (available.models.length === 0) return [];
  const options = available.models.map((model) => ({ value: model.ref, name: model.name ?? model.ref }));
  if (!options.some((option) => option.value === DEFAULT_MODEL_VALUE)) {
    options.unshift({ value: DEFAULT_MODEL_VALUE, name: 'Default' });
  }
  // An override set elsewhere to a ref the runtime does not list is still what is in force.
  if (available.current !== undefined && !options.some((option) => option.value === available.current)) {
    options.push({ value: available.current, name: available.current });
  }
  return [
    {
      type: 'select',
      id: MODEL_CONFIG_ID,
      name: 'Model',
      category: 'model',
      description: `The model of agent ${available.agent}`,
      currentValue: available.current ?? DEFAULT_MODEL_VALUE,
      options,
    },
  ];
}

/** The model ref a chosen value stands for (`undefined`: clear the override). */
export function modelRefOf(value: string, available: AvailableModels): string | undefined {
  if (value === DEFAULT_MODEL_VALUE && !available.models.some((model) => model.ref === value))
    return undefined;
  return value;
}
