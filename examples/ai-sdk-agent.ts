/**
 * ai-sdk-agent: a tool-using agent with human approval, on the Vercel AI SDK, in about twenty lines.
 *
 * With OPENAI_API_KEY set it talks to OpenAI (OPENAI_MODEL, default gpt-4o-mini) through
 * `@ai-sdk/openai`; any AI SDK provider works the same way. Without a key it says so and runs the
 * same agent against a pretend model (the SDK's own MockLanguageModelV3), offline.
 *
 * Run: npm run example -- ai-sdk-agent          (or: OPENAI_API_KEY=sk-… npm run example -- ai-sdk-agent)
 */
import { openai } from '@ai-sdk/openai';
import { SessionManager } from 'agent-sessions';
import { createAiSdkRuntime } from 'agent-sessions/ai-sdk';
import { type LanguageModel, tool } from 'ai';
import * as z from 'zod';
import { pretendModel } from './shared/pretend-model.js';

let model: LanguageModel;
if (process.env.OPENAI_API_KEY) {
  model = openai(process.env.OPENAI_MODEL ?? 'gpt-4o-mini');
} else {
  console.log('OPENAI_API_KEY is not set: running with a pretend model, offline.');
  console.log('Set it (and optionally OPENAI_MODEL) to talk to a real model.\n');
  model = pretendModel();
}

const weather = tool({
  description: 'The current weather in a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `Sunny and 21 °C in ${city}.`,
});

const manager = new SessionManager({
  runtime: createAiSdkRuntime({ model, system: 'You are a helpful assistant.', tools: { weather } }),
});
const session = await manager.createSession();
const stream = await manager.runSession(session.id, { messages: ['What is the weather in Paris?'] });

for await (const event of stream) {
  if (event.type === 'agent_choice') process.stdout.write(event.content);
  if (event.type === 'tool_call_confirmation') {
    // The tool runs only once a human (here: this script) approves the call.
    console.log(`[approve] ${event.toolCall.name}(${event.toolCall.arguments})`);
    await manager.resumeSession(session.id, { confirmation: 'approve' });
  }
  if (event.type === 'tool_call_response') console.log(`[result] ${event.response}`);
}
console.log(`\n(${(await stream.done).stopReason})`);

const { usage } = await manager.getSession(session.id);
console.log(`usage: ${usage.inputTokens} in, ${usage.outputTokens} out`);
await manager.close();
