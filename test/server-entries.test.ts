// pg, redis, keyv and @opentelemetry are loaded only by the entries that need them: nothing the
// main entry (or the other entries) imports at run time may load them, or a host without them could
// not import the library. Type-only imports are erased and do not count (the main entry's options name `Keyv`).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Module specifiers a source file loads at run time (type-only imports and exports left out). */
function runtimeSpecifiers(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of source.matchAll(
    /(?:^|\s)(import|export)\s+(type\s+)?([^'";]*?)\s*from\s+['"]([^'"]+)['"]/g,
  )) {
    if (match[2] !== undefined) continue;
    const names = match[3] ?? '';
    // `import { type A, type B } from` loads nothing either.
    const braces = /^\{([^}]*)\}$/.exec(names.trim());
    if (
      braces &&
      braces[1]!.split(',').every((name) => name.trim() === '' || name.trim().startsWith('type '))
    )
      continue;
    found.push(match[4]!);
  }
  for (const match of source.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(match[1]!);
  return found;
}

function reachedFrom(entry: string): { packages: Set<string>; files: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [resolve(root, entry)];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of runtimeSpecifiers(file)) {
      if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier);
    }
  }
  return { packages, files };
}

const serverPackage = (name: string) =>
  name === 'pg' ||
  name === 'redis' ||
  name === 'keyv' ||
  name.startsWith('@redis/') ||
  name.startsWith('@keyv/');

test.each([
  'src/index.ts',
  'src/file.ts',
  'src/stores/index.ts',
  'src/testing/index.ts',
  'src/http/index.ts',
  'src/client/index.ts',
  'src/acp/index.ts',
  'src/ai-sdk/index.ts',
])('%s loads no server client (pg, redis, keyv) and nothing of the server entries', (entry) => {
  const { packages, files } = reachedFrom(entry);
  expect([...packages].filter(serverPackage)).toEqual([]);
  expect(
    [...files].filter((file) => file.includes('/src/postgres/') || file.includes('/src/redis/')),
  ).toEqual([]);
});

test('the postgres entry loads pg (the walk sees run-time imports at all)', () => {
  expect(reachedFrom('src/postgres/index.ts').packages.has('pg')).toBe(true);
});

test('a type-only import is not a run-time import', () => {
  expect(runtimeSpecifiers(resolve(root, 'src/manager/shared-keys.ts'))).not.toContain('keyv');
  expect(runtimeSpecifiers(resolve(root, 'src/manager/shared-keys.ts'))).toContain('../errors.js');
});

// OpenTelemetry is an optional peer of agent-sessions/otel only: the manager traces through the
// main entry's Telemetry interface, which imports nothing.
test.each([
  'src/index.ts',
  'src/file.ts',
  'src/stores/index.ts',
  'src/testing/index.ts',
  'src/http/index.ts',
  'src/client/index.ts',
  'src/acp/index.ts',
  'src/ai-sdk/index.ts',
  'src/postgres/index.ts',
  'src/redis/index.ts',
])('%s loads nothing of OpenTelemetry and nothing of the otel entry', (entry) => {
  const { packages, files } = reachedFrom(entry);
  expect([...packages].filter((name) => name.startsWith('@opentelemetry/'))).toEqual([]);
  expect([...files].filter((file) => file.includes('/src/otel/'))).toEqual([]);
});

test('the otel entry loads @opentelemetry/api', () => {
  expect(reachedFrom('src/otel/index.ts').packages.has('@opentelemetry/api')).toBe(true);
});
