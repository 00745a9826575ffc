// What one `child_process.spawn` holds the event loop of the process that calls it, against that
// process's size. Node (libuv) starts a child with fork(), which copies the caller's page tables while
// its thread waits, so the call takes longer the more memory the caller maps. The local cloud spawns a
// process for every sandbox it starts and every command run in one; embedded in `tradeswarm serve`
// (a few hundred MB), each of those calls stops serve's API, bus and deployments for as long as it
// takes. The baseline is the same call from this process as it starts (tens of MB); the other rows
// spawn after it filled its heap with small objects, as serve's is.
// `npm run bench:spawn [-- --quick]`; results in bench/results/spawn.json. Timing never fails it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { report, type BenchRow } from './lib/report.js';
import { summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const SPAWNS = quick ? 20 : 60;
/** Heap filled before each later row, MB (about; RSS is what the rows report). */
const STAGES_MB = [0, 250, 500] as const;

function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

/** The duration of each `spawn('/bin/true')` call (the part that blocks), one child at a time. */
async function spawnCalls(count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    const child = spawn('/bin/true', { stdio: 'ignore' });
    samples.push(performance.now() - started);
    await once(child, 'exit');
  }
  return samples;
}

/** Keeps about `mb` MB of small objects alive (strings and numbers in objects, as a heap of state is). */
function fill(kept: object[], mb: number): void {
  const perObject = 64;
  for (let index = 0; index < (mb * 1024 * 1024) / perObject; index++) kept.push({ index, name: `item-${index}` });
}

async function main(): Promise<void> {
  const kept: object[] = [];
  const rows: BenchRow[] = [];
  const stages: Array<{ rssMb: number; p50Ms: number }> = [];
  let filled = 0;
  let baseline: ReturnType<typeof summarize> | undefined;
  for (const stage of STAGES_MB) {
    fill(kept, stage - filled);
    filled = stage;
    await spawnCalls(3);
    const summary = summarize(await spawnCalls(SPAWNS));
    const rss = rssMb();
    stages.push({ rssMb: Math.round(rss), p50Ms: summary.p50 });
    if (baseline === undefined) {
      baseline = summary;
      rows.push({ name: `spawn('/bin/true') from a process of ${Math.round(rss)} MB RSS (baseline)`, summary });
    } else {
      rows.push({ name: `spawn('/bin/true') from a process of ${Math.round(rss)} MB RSS`, summary, ratio: { to: 'baseline p50', value: summary.p50 / baseline.p50 } });
    }
  }
  report('spawn', rows, {
    spawns: SPAWNS,
    stages,
    kept: kept.length,
    note: 'duration of the synchronous spawn() call (fork and exec of the child), one child at a time, after 3 untimed ones; the caller is this bench process with its heap filled to each stage',
  });
}

await main();
