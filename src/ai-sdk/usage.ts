/**
 * Usage: the AI SDK's per-step `LanguageModelUsage` → our `token_usage` payload, with the cost
 * computed from the host's price table. No price is built in: prices change, and a made-up one is
 * worse than none. Without a price for the model, `cost` is left out.
 */
import type { LanguageModelUsage } from 'ai';
import type { TokenUsage } from '../events.js';
import type { Usage } from '../schemas.js';

/**
 * The price of one model, in your currency per million tokens. Cache reads and writes cost what
 * input costs unless priced on their own. Reasoning tokens are output tokens and cost what output
 * costs.
 */
export interface ModelPrice {
  /** Per million input tokens that did not come from the cache. */
  inputPerMillion: number;
  /** Per million output tokens (reasoning included). */
  outputPerMillion: number;
  /** Per million input tokens read from the cache. @default inputPerMillion */
  cacheReadPerMillion?: number;
  /** Per million input tokens written to the cache. @default inputPerMillion */
  cacheWritePerMillion?: number;
}

/** Prices by model ref (the keys of the runtime's `models`, or the model id of a single `model`). */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

/** The cost of a usage at a price; undefined without a price. */
export function costOf(usage: TokenUsage, price: ModelPrice | undefined): number | undefined {
  if (price === undefined) return undefined;
  const cacheRead = usage.cacheReadTokens ?? 0;
  const cacheWrite = usage.cacheWriteTokens ?? 0;
  const uncached = Math.max(0, usage.inputTokens - cacheRead - cacheWrite);
  const total =
    uncached * price.inputPerMillion +
    cacheRead * (price.cacheReadPerMillion ?? price.inputPerMillion) +
    cacheWrite * (price.cacheWritePerMillion ?? price.inputPerMillion) +
    usage.outputTokens * price.outputPerMillion;
  return total / 1_000_000;
}

function count(value: number | undefined): number | undefined {
  return value === undefined || !Number.isFinite(value) || value < 0 ? undefined : value;
}

/**
 * Maps one step's usage to a `token_usage` payload: `inputTokens` includes the cache reads and
 * writes, `outputTokens` the reasoning tokens (as the SDK counts them); details the provider did
 * not report are left out. `contextLength` is the input plus output of the step: what the context
 * holds after it.
 */
export function toTokenUsage(
  usage: LanguageModelUsage,
  model: { ref: string; price?: ModelPrice | undefined; contextLimit?: number | undefined },
): TokenUsage {
  const inputTokens = count(usage.inputTokens) ?? 0;
  const outputTokens = count(usage.outputTokens) ?? 0;
  const result: TokenUsage = { inputTokens, outputTokens, model: model.ref };
  const cacheRead = count(usage.inputTokenDetails?.cacheReadTokens ?? usage.cachedInputTokens);
  const cacheWrite = count(usage.inputTokenDetails?.cacheWriteTokens);
  const reasoning = count(usage.outputTokenDetails?.reasoningTokens ?? usage.reasoningTokens);
  if (cacheRead !== undefined) result.cacheReadTokens = cacheRead;
  if (cacheWrite !== undefined) result.cacheWriteTokens = cacheWrite;
  if (reasoning !== undefined) result.reasoningTokens = reasoning;
  const cost = costOf(result, model.price);
  if (cost !== undefined) result.cost = cost;
  result.contextLength = inputTokens + outputTokens;
  if (model.contextLimit !== undefined) result.contextLimit = model.contextLimit;
  return result;
}

/** A step's usage as a message's `usage` record (cost 0 when unpriced, as the session's usage counts it). */
export function toMessageUsage(usage: TokenUsage): Usage {
  const result: Usage = {
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    cost: usage.cost ?? 0,
  };
  if (usage.cacheReadTokens !== undefined) result.cacheReadTokens = usage.cacheReadTokens;
  if (usage.cacheWriteTokens !== undefined) result.cacheWriteTokens = usage.cacheWriteTokens;
  if (usage.reasoningTokens !== undefined) result.reasoningTokens = usage.reasoningTokens;
  return result;
}
