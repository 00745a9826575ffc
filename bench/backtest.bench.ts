// Backtest benchmark: in-process bars per second for one SMA(50/200) crossover, next to a bare loop
// that only feeds the same closes to the two SMA indicators (baseline, same run); see lib/backtest.ts.
// `npx tsx bench/backtest.bench.ts [--quick]`; results in bench/results/backtest.json.
import { SMA_DATASETS, measureSmaBacktest, missingFiles } from './lib/backtest.js';
import { report, type BenchRow } from './lib/report.js';

const quick = process.argv.includes('--quick');
const TARGET_BARS = quick ? 200_000 : 1_000_000;
const ROUNDS = quick ? 1 : 3;

async function main(): Promise<void> {
  const missing = missingFiles(SMA_DATASETS);
  if (missing.length > 0) throw new Error(`${missing.join(', ')} is missing; the benchmark needs ../shared/data`);
  const rows: BenchRow[] = [];
  const runs: Record<string, unknown>[] = [];
  for (const dataset of SMA_DATASETS) {
    const measured = await measureSmaBacktest(dataset, { bars: TARGET_BARS, rounds: ROUNDS, targetText: '> 1,000,000 bars/s' });
    rows.push(...measured.rows);
    runs.push(measured.run);
  }
  report('backtest', rows, { runs, note: 'best of the rounds; one process, same bars for baseline and backtest' });
}

await main();
