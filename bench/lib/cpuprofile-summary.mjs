// Where a CPU profile's time went, by package, dist/ folder or native activity (self time of the
// sampled frames): `node bench/lib/cpuprofile-summary.mjs FILE.cpuprofile [ROWS]`. For the profiles
// bench/restart-builds.bench.ts writes with --profile-dir (a `serve` start): `node-internal` is mostly
// Node's module loader, `wasm://…` PGlite's WebAssembly, `dist:market` the synthetic market.
import { readFileSync } from 'node:fs';
import process from 'node:process';

const [file, rows = '25'] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node bench/lib/cpuprofile-summary.mjs FILE.cpuprofile [ROWS]\n');
  process.exit(1);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
/** What a frame counts as: its package, its dist/ or src/ folder, Node's own code, or the native activity. */
const groupOf = ({ url, functionName }) => {
  if (url === '') return `(${functionName || 'native'})`;
  const found = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url) ?? /(dist|src)\/([^/]+)/.exec(url);
  if (found !== null) return url.includes('node_modules/') ? `pkg:${found[1]}` : `${found[1]}:${found[2]}`;
  return url.startsWith('node:') ? 'node-internal' : url;
};
const self = new Map();
let totalUs = 0;
profile.samples.forEach((id, i) => {
  const group = groupOf(nodes.get(id).callFrame);
  self.set(group, (self.get(group) ?? 0) + profile.timeDeltas[i]);
  totalUs += profile.timeDeltas[i];
});
process.stdout.write(`${(totalUs / 1000).toFixed(0)} ms sampled\n`);
for (const [group, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(rows))) process.stdout.write(`${(us / 1000).toFixed(1).padStart(9)} ms  ${group}\n`);
