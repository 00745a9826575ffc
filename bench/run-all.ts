// `npm run bench`: runs every benchmark under bench/ one after another (each prints its table and
// writes bench/results/<name>.json). Pass --quick for fewer rounds.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const benches = readdirSync(here).filter((name) => name.endsWith('.bench.ts')).sort();
let failed = 0;
for (const bench of benches) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(here, bench), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    process.stderr.write(`${bench} failed with exit code ${result.status}\n`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
