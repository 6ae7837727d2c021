// The AI SDK is an optional peer of `agent-sessions/ai-sdk` only: nothing the main entry (or the
// other entries) imports may load `ai`, or a host without it could not import the library.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Every module specifier a source file imports or re-exports, statically or dynamically. */
function specifiers(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of source.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g))
    found.push(match[1]!);
  for (const match of source.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(match[1]!);
  return found;
}

/** The bare (package) imports reachable from an entry, following relative imports. */
function packagesReachedFrom(entry: string): { packages: Set<string>; files: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [resolve(root, entry)];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of specifiers(file)) {
      if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier);
    }
  }
  return { packages, files };
}

test.each(['src/index.ts', 'src/file.ts', 'src/testing/index.ts', 'src/acp/index.ts'])(
  '%s never reaches the AI SDK',
  (entry) => {
    const { packages, files } = packagesReachedFrom(entry);
    expect(
      [...packages].filter((name) => name === 'ai' || name.startsWith('ai/') || name.startsWith('@ai-sdk/')),
    ).toEqual([]);
    expect([...files].filter((file) => file.includes('/src/ai-sdk/'))).toEqual([]);
  },
);

test('the ai-sdk entry imports the AI SDK (the walk sees imports at all)', () => {
  expect(packagesReachedFrom('src/ai-sdk/index.ts').packages.has('ai')).toBe(true);
});
