// Completes package-lock.json with the other platforms' optional binaries (rollup's, biome's…).
//
// Why: npm 11 writes a lock entry for every platform variant of an optional dependency from the
// registry's metadata, and `npm ci` refuses a lock that lacks one ("Missing: @rollup/rollup-darwin-
// x64@ from lock file"). A registry mirror that carries only this machine's platform (as ours
// does) answers 404 for the others, so `npm install` leaves them out. This adds each missing
// variant with its pinned version and its os/cpu/libc, taken from the registry when it answers and
// otherwise from the package's name; `npm ci` then skips the variants of other platforms.
//
// Run after `npm install` changes the lock: `node scripts/complete-lock.mjs`, then `npm ci` to check.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;

const CPUS = ['arm64', 'arm', 'x64', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x'];
const OSES = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'sunos', 'win32', 'aix'];

function fromRegistry(name, version) {
  try {
    const json = execFileSync('npm', ['view', `${name}@${version}`, 'os', 'cpu', 'libc', '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const view = JSON.parse(json || 'null');
    return view && (view.os || view.cpu) ? view : undefined;
  } catch {
    return undefined;
  }
}

function fromName(name) {
  const parts = name.split('/').at(-1).split('-');
  const os = OSES.find((candidate) => parts.includes(candidate));
  const cpu = CPUS.find((candidate) => parts.includes(candidate));
  if (!os || !cpu) throw new Error(`cannot tell the platform of ${name}: add its entry by hand`);
  const libc =
    os !== 'linux'
      ? undefined
      : parts.some((part) => part.startsWith('musl'))
        ? 'musl'
        : parts.some((part) => part.startsWith('gnu'))
          ? 'glibc'
          : undefined;
  return { os: [os], cpu: [cpu], ...(libc ? { libc: [libc] } : {}) };
}

let added = 0;
for (const [location, meta] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const nested = `${location ? `${location}/` : ''}node_modules/${name}`;
    if (packages[`node_modules/${name}`] || packages[nested]) continue;
    const platform = fromRegistry(name, version) ?? fromName(name);
    packages[`node_modules/${name}`] = {
      version,
      cpu: [platform.cpu].flat(),
      ...(meta.dev ? { dev: true } : {}),
      ...(platform.libc ? { libc: [platform.libc].flat() } : {}),
      optional: true,
      os: [platform.os].flat(),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lock: added ${added} optional platform entries`);
