/**
 * Tools: the host's AI SDK `tool()` definitions, offered to the model without their `execute` (so
 * the SDK never runs one on its own), and run here — only after `turn.authorizeToolCall` approved
 * the call. A tool's output becomes the stored result's text; an error it throws becomes a result
 * with `isError`; the values an `execute` that is an async generator yields before its last one
 * (the SDK's preliminary results) are its progress, reported as `tool_call_output`.
 */
import type { ModelMessage, Tool, ToolSet } from 'ai';
import type { RuntimeEventInput } from '../events.js';
import { abortable } from '../internal/abort.js';
import { type ToolResultRecord, textOf, toolResultRecord } from './records.js';

/** A tool with the flags our policies read. */
export interface ToolEntry {
  /** An AI SDK tool (`tool({ description, inputSchema, execute })`). */
  tool: Tool;
  /** The tool only reads: the default policy runs it without asking. */
  readOnly?: boolean;
  /** The tool is safe: the `balanced` policy runs it without asking. */
  safe?: boolean;
}

/** Tools by name: an AI SDK tool, or a {@link ToolEntry} that marks it `readOnly` or `safe`. */
export type AiSdkTools = Readonly<Record<string, Tool | ToolEntry>>;

function isEntry(value: Tool | ToolEntry): value is ToolEntry {
  return typeof value === 'object' && value !== null && 'tool' in value && !('inputSchema' in value);
}

/** The tools normalised to entries. */
export function toolEntries(tools: AiSdkTools | undefined): Map<string, ToolEntry> {
  const entries = new Map<string, ToolEntry>();
  for (const [name, value] of Object.entries(tools ?? {})) {
    entries.set(name, isEntry(value) ? value : { tool: value });
  }
  return entries;
}

/**
 * The tool set the model is offered: each tool without `execute` and `needsApproval`, so the SDK
 * stops after the model's tool calls and this runtime decides what runs.
 */
export function modelToolSet(entries: ReadonlyMap<string, ToolEntry>): ToolSet {
  const set: ToolSet = {};
  for (const [name, entry] of entries) {
    const {
      execute: _execute,
      needsApproval: _needsApproval,
      ...rest
    } = entry.tool as Tool & {
      execute?: unknown;
      needsApproval?: unknown;
    };
    set[name] = rest as Tool;
  }
  return set;
}

/** A tool's result as stored: the text the model reads, images or files, and whether it failed. */
export type ToolOutcome = ToolResultRecord;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** What running a tool needs. */
export interface ToolRun {
  name: string;
  tool: Tool;
  toolCallId: string;
  input: unknown;
  /** The messages of the model call that asked for the tool (what the SDK passes a tool). */
  messages: ModelMessage[];
  signal: AbortSignal;
  /** The host's context, handed to the tool as `experimental_context`. */
  context?: unknown;
}

/**
 * Runs an approved tool call: yields its progress as `tool_call_output` and returns its outcome.
 * A tool that throws gives an error outcome; an abort rejects with the signal's reason at once, even
 * when the tool ignores its signal.
 */
export async function* runTool(run: ToolRun): AsyncGenerator<RuntimeEventInput, ToolOutcome> {
  const { tool, toolCallId, input, signal } = run;
  if (typeof tool.execute !== 'function') {
    return {
      content: `Tool ${JSON.stringify(run.name)} cannot run here: it has no execute function.`,
      isError: true,
    };
  }
  // A turn cancelled before the tool started (while its approval or input check resolved): it
  // must not run at all.
  signal.throwIfAborted();
  let output: unknown;
  try {
    const returned = tool.execute(input, {
      toolCallId,
      messages: run.messages,
      abortSignal: signal,
      ...(run.context === undefined ? {} : { experimental_context: run.context }),
    });
    if (isAsyncIterable(returned)) {
      const iterator = returned[Symbol.asyncIterator]();
      let previous: { value: unknown } | undefined;
      try {
        while (true) {
          const next = await abortable(iterator.next(), signal);
          if (next.done) break;
          // Every value but the last is preliminary: progress the client sees, not the result.
          if (previous !== undefined) {
            yield { type: 'tool_call_output', toolCallId, output: textOf(previous.value) };
          }
          previous = { value: next.value };
        }
      } finally {
        if (signal.aborted) void Promise.resolve(iterator.return?.()).catch(() => {});
      }
      output = previous?.value;
    } else {
      output = await abortable(Promise.resolve(returned), signal);
    }
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    return { content: error instanceof Error ? error.message : textOf(error), isError: true };
  }
  if (tool.toModelOutput) {
    try {
      return toolResultRecord(await tool.toModelOutput({ toolCallId, input, output }));
    } catch (error) {
      return {
        content: `The tool's output could not be converted: ${error instanceof Error ? error.message : textOf(error)}`,
        isError: true,
      };
    }
  }
  return { content: textOf(output), isError: false };
}
