/**
 * `npm run example -- NAME`: runs `examples/NAME.ts` (or `examples/NAME/index.ts`). Without a name,
 * lists the examples. An example is a plain script (top-level await): importing it runs it, and an
 * error it throws fails the run with exit code 1.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const examples = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'examples');

function list(): string[] {
  return readdirSync(examples, { withFileTypes: true })
    .flatMap((entry) => {
      if (entry.isFile() && entry.name.endsWith('.ts')) return [entry.name.slice(0, -3)];
      if (entry.isDirectory() && existsSync(join(examples, entry.name, 'index.ts'))) return [entry.name];
      return [];
    })
    .sort();
}

const name = process.argv[2];
if (name === undefined) {
  console.log(
    `usage: npm run example -- NAME\n\nexamples:\n${list()
      .map((entry) => `  ${entry}`)
      .join('\n')}`,
  );
  process.exit(0);
}
const file = [join(examples, `${name}.ts`), join(examples, name, 'index.ts')].find(
  (candidate) => /^[a-z0-9-]+$/.test(name) && existsSync(candidate),
);
if (file === undefined) {
  console.error(`no example named ${JSON.stringify(name)}; examples: ${list().join(', ')}`);
  process.exit(2);
}
try {
  await import(pathToFileURL(file).href);
} catch (error) {
  console.error(`example ${name} failed:`, error);
  process.exit(1);
}
