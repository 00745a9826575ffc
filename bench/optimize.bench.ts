// Parameter search benchmark: backtests per second of `runSearch` (SMA crossover on AAPL daily bars,
// 5,402 bars a run) with one worker thread and with one per core, in the same run; the time to the
// first answer (threads starting, loading the code) is shown apart from the steady rate after it.
// `npx tsx bench/optimize.bench.ts [--quick]`; results in bench/results/optimize.json.
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileConstraint, parseParameter, runSearch } from '../src/backtest/index.js';
import { loadSpecBars, parseSpec, readSpecDocument } from '../src/runspec/index.js';
import { report, type BenchRow } from './lib/report.js';

const quick = process.argv.includes('--quick');
const SPEC = fileURLToPath(new URL('../examples/backtest-aapl.yaml', import.meta.url));

async function measure(workers: number): Promise<{ runs: number; totalMs: number; firstMs: number }> {
  const document = await readSpecDocument(SPEC);
  const bars = await loadSpecBars(parseSpec(document, SPEC), dirname(resolve(SPEC)));
  const parameters = [parseParameter(quick ? 'fastPeriod=10..50:10' : 'fastPeriod=5..50:5', 1), parseParameter('slowPeriod=60..200:20', 1)];
  const started = performance.now();
  let firstMs = 0;
  const result = await runSearch({
    document,
    source: SPEC,
    bars,
    parameters,
    constraints: [compileConstraint('fastPeriod < slowPeriod', parameters)],
    metric: 'sharpe',
    direction: 'maximize',
    workers,
    onProgress: (done) => {
      if (done === 1) firstMs = performance.now() - started;
    },
  });
  return { runs: result.runsDone, totalMs: performance.now() - started, firstMs };
}

async function main(): Promise<void> {
  const cores = availableParallelism();
  const one = await measure(1);
  const all = await measure(cores);
  // After the first answer: the steady rate, threads started.
  const steady = (m: { runs: number; totalMs: number; firstMs: number }): number => ((m.runs - 1) / (m.totalMs - m.firstMs)) * 1000;
  const rows: BenchRow[] = [
    { name: 'search, 1 worker: first answer', value: { amount: one.firstMs, unit: 'ms' } },
    { name: 'search, 1 worker: after it', value: { amount: steady(one), unit: 'backtests/s' } },
    { name: `search, ${cores} workers: first answer`, value: { amount: all.firstMs, unit: 'ms' } },
    { name: `search, ${cores} workers: after it`, value: { amount: steady(all), unit: 'backtests/s' }, ratio: { to: '1 worker', value: steady(all) / steady(one) } },
    { name: `search, ${cores} workers: whole`, value: { amount: (all.runs / all.totalMs) * 1000, unit: 'backtests/s' }, ratio: { to: '1 worker', value: one.totalMs / all.totalMs } },
  ];
  report('optimize', rows, { runs: one.runs, cores, note: 'AAPL daily, 5,402 bars a backtest; machine shared' });
}

await main();
