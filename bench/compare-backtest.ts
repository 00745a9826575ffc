// Two builds of the backtest engine compared in one process, for a machine shared with other work,
// where the wall time of separate runs moves by 2x with the load: the million-bar SMA(50/200) backtest
// of bench/backtest.bench.ts, run by the code in `<old>/dist` and in `<new>/dist` alternately (pairs
// in ABBA order), each run timed by process CPU time (garbage collection threads included) and wall
// time. Reports each side's medians (every run in the JSON), the median of the per-pair ratios, and the reports'
// hashes (equal when the two builds trade alike). Build both first (`npm run build` in each checkout).
// `npm run bench:backtest-compare -- <old checkout> <new checkout> [--pairs N] [--dataset 0|1]` (not part of
// `npm run bench`, which takes no checkouts);
// results in bench/results/backtest-compare.json.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SMA_DATASETS, missingFiles, replay } from './lib/backtest.js';
import { report, type BenchRow } from './lib/report.js';

/** What one checkout's build offers the benchmark (the exports it uses, as in src/). */
interface Engine {
  runBacktest(options: unknown): { report: Record<string, unknown> };
  fractionOfEquity(fraction: number, options: { wholeUnits: boolean }): unknown;
  smaCrossover(options: Record<string, unknown>): unknown;
  loadCsvBars(file: URL, symbol: string): Promise<Array<{ readonly timeMs: number }>>;
}

async function engineAt(checkout: string): Promise<Engine> {
  const module = async (folder: string): Promise<Record<string, unknown>> => (await import(pathToFileURL(resolve(checkout, 'dist', folder, 'index.js')).href)) as Record<string, unknown>;
  const [backtest, portfolio, strategy, market] = await Promise.all([module('backtest'), module('portfolio'), module('strategy'), module('market')]);
  return { ...backtest, ...portfolio, ...strategy, ...market } as unknown as Engine;
}

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function main(): Promise<void> {
  const [oldCheckout, newCheckout] = process.argv.slice(2).filter((argument, i, all) => !argument.startsWith('--') && !all[i - 1]?.startsWith('--'));
  if (oldCheckout === undefined || newCheckout === undefined) throw new Error('usage: compare-backtest.ts <old checkout> <new checkout> [--pairs N] [--dataset 0|1]');
  const pairs = option('--pairs', 8);
  const dataset = SMA_DATASETS[option('--dataset', 0)];
  if (dataset === undefined) throw new Error(`--dataset must be 0 to ${SMA_DATASETS.length - 1}`);
  const missing = missingFiles([dataset]);
  if (missing.length > 0) throw new Error(`${missing.join(', ')} is missing; the benchmark needs ../shared/data`);
  const sides = { old: await engineAt(oldCheckout), new: await engineAt(newCheckout) };
  const bars = replay((await sides.new.loadCsvBars(dataset.file, dataset.symbol)) as never, 1_000_000);

  const run = (engine: Engine): { cpuMs: number; wallMs: number; hash: string } => {
    const strategy = engine.smaCrossover({ symbol: dataset.symbol, fastPeriod: 50, slowPeriod: 200, sizing: engine.fractionOfEquity(0.95, { wholeUnits: true }) });
    const cpu = process.cpuUsage();
    const started = performance.now();
    const { report: result } = engine.runBacktest({ bars, strategies: [strategy], portfolio: { longOnly: true }, periodsPerYear: dataset.periodsPerYear });
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    return { cpuMs: (used.user + used.system) / 1000, wallMs, hash: createHash('sha256').update(JSON.stringify({ ...result, elapsedMs: 0 })).digest('hex').slice(0, 16) };
  };
  // One run each to compile the code before timing.
  run(sides.old);
  run(sides.new);
  const timed = { old: [] as ReturnType<typeof run>[], new: [] as ReturnType<typeof run>[] };
  const cpuRatios: number[] = [];
  const wallRatios: number[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    const order = pair % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const);
    for (const side of order) timed[side].push(run(sides[side]));
    const [oldRun, newRun] = [timed.old.at(-1), timed.new.at(-1)] as [ReturnType<typeof run>, ReturnType<typeof run>];
    cpuRatios.push(newRun.cpuMs / oldRun.cpuMs);
    wallRatios.push(newRun.wallMs / oldRun.wallMs);
  }
  const rows: BenchRow[] = [];
  for (const side of ['old', 'new'] as const) {
    const runs = timed[side];
    rows.push({ name: `${dataset.label}: ${side} code, CPU time per run (median)`, value: { amount: median(runs.map((r) => r.cpuMs)), unit: 'ms' } });
    rows.push({ name: `${dataset.label}: ${side} code, bars per second of wall time (median)`, value: { amount: bars.length / (median(runs.map((r) => r.wallMs)) / 1000), unit: 'bars/s' } });
  }
  rows.push({ name: `${dataset.label}: new / old CPU time, median of ${pairs} pairs`, value: { amount: median(cpuRatios), unit: 'x' } });
  rows.push({ name: `${dataset.label}: new / old wall time, median of ${pairs} pairs`, value: { amount: median(wallRatios), unit: 'x' } });
  const hashes = { old: [...new Set(timed.old.map((r) => r.hash))], new: [...new Set(timed.new.map((r) => r.hash))] };
  report('backtest-compare', rows, {
    note: 'one process, pairs alternated (ABBA); CPU time of the process, garbage collection threads included',
    checkouts: { old: resolve(oldCheckout), new: resolve(newCheckout) },
    cpuMs: { old: timed.old.map((r) => r.cpuMs), new: timed.new.map((r) => r.cpuMs) },
    wallMs: { old: timed.old.map((r) => r.wallMs), new: timed.new.map((r) => r.wallMs) },
    cpuRatios,
    wallRatios,
    reportHashes: hashes,
    sameReports: hashes.old.length === 1 && hashes.new.length === 1 && hashes.old[0] === hashes.new[0],
  });
}

await main();
