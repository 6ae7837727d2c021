import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    file: 'src/file.ts',
    store: 'src/stores/index.ts',
    testing: 'src/testing/index.ts',
    http: 'src/http/index.ts',
    client: 'src/client/index.ts',
    'ai-sdk': 'src/ai-sdk/index.ts',
    acp: 'src/acp/index.ts',
    postgres: 'src/postgres/index.ts',
    redis: 'src/redis/index.ts',
    otel: 'src/otel/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  // Shared chunks: one copy of every class (errors, schemas, stores) across the entry points of a
  // format, so `instanceof` holds for an error thrown through `agent-sessions/file` or `/testing`.
  splitting: true,
  treeshake: true,
});
