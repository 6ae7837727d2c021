// The bench entry: `npm run bench` runs every bench, `npm run bench -- store pipeline` only those.
//
// A bench is a module `bench/<name>.ts` that exports
//   export async function run(): Promise<void>
// and prints its own table and one `BENCH_JSON {"bench":"<name>",…}` line (see bench/lib.ts:
// time, median, withTempDir, report). It keeps its data in a fresh directory under os.tmpdir()
// and removes it. A failed goal is printed as FAIL, not thrown; a bench that throws makes this
// process exit non-zero. Add a bench by adding its file and its name to BENCHES.
const BENCHES = ['store', 'pipeline', 'http', 'cluster', 'peers'] as const;

interface BenchModule {
  run(): Promise<void>;
}

async function main(): Promise<void> {
  const asked = process.argv.slice(2).filter((argument) => argument !== '--');
  const names = asked.length > 0 ? asked : [...BENCHES];
  for (const name of names) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`bad bench name ${JSON.stringify(name)}`);
    let module: BenchModule;
    try {
      module = (await import(`./${name}.ts`)) as BenchModule;
    } catch (error) {
      // A bench listed in BENCHES but not written yet is skipped when all benches run.
      if (asked.length === 0 && (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
        console.log(`(bench ${name}: not present, skipped)`);
        continue;
      }
      throw error;
    }
    await module.run();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
