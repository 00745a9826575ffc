// Backtest benchmark: in-process bars per second for one SMA(50/200) crossover, next to a bare loop
// that only feeds the same closes to the two SMA indicators (baseline, same run).
// `npx tsx bench/backtest.bench.ts [--quick]`; results in bench/results/backtest.json.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runBacktest } from '../src/backtest/index.js';
import { type Bar, loadCsvBars } from '../src/market/index.js';
import { fractionOfEquity } from '../src/portfolio/index.js';
import { sma, smaCrossover } from '../src/strategy/index.js';
import { report, type BenchRow } from './lib/report.js';

const quick = process.argv.includes('--quick');
const TARGET_BARS = quick ? 200_000 : 1_000_000;
const ROUNDS = quick ? 1 : 3;
const TARGET_BARS_PER_SECOND = 1_000_000;
const DATA = new URL('../../shared/data/', import.meta.url);

/** `bars` repeated end to end, each copy shifted in time past the previous, until `count` bars. */
function replay(bars: readonly Bar[], count: number): Bar[] {
  const first = bars[0]!;
  const last = bars.at(-1)!;
  const step = bars.length > 1 ? bars[1]!.timeMs - first.timeMs : 60_000;
  const span = last.timeMs - first.timeMs + step;
  const out: Bar[] = [];
  for (let copy = 0; out.length < count; copy++) {
    for (const bar of bars) out.push({ ...bar, timeMs: bar.timeMs + copy * span });
  }
  return out;
}

function baseline(bars: readonly Bar[]): number {
  const fast = sma(50);
  const slow = sma(200);
  let crossings = 0;
  let previous: number | undefined;
  for (const bar of bars) {
    const f = fast.update(bar.close);
    const s = slow.update(bar.close);
    if (f === undefined || s === undefined) continue;
    const difference = f - s;
    if (previous !== undefined && Math.sign(previous) !== Math.sign(difference)) crossings++;
    previous = difference;
  }
  return crossings;
}

function best(samples: readonly number[]): number {
  return Math.min(...samples);
}

async function measure(label: string, file: URL, symbol: string, periodsPerYear: number, rows: BenchRow[]): Promise<Record<string, unknown>> {
  const source = await loadCsvBars(file, symbol);
  const bars = replay(source, TARGET_BARS);
  const baseMs: number[] = [];
  const runMs: number[] = [];
  let trades = 0;
  baseline(bars.slice(0, 50_000));
  for (let round = 0; round < ROUNDS; round++) {
    let started = performance.now();
    baseline(bars);
    baseMs.push(performance.now() - started);
    started = performance.now();
    const { report: result } = runBacktest({
      bars,
      strategies: [smaCrossover({ symbol, fastPeriod: 50, slowPeriod: 200, sizing: fractionOfEquity(0.95, { wholeUnits: true }) })],
      portfolio: { longOnly: true },
      periodsPerYear,
    });
    runMs.push(performance.now() - started);
    trades = result.trades.length;
  }
  const baseRate = (bars.length / best(baseMs)) * 1000;
  const runRate = (bars.length / best(runMs)) * 1000;
  rows.push({ name: `${label}: bare sma(50)+sma(200) loop (baseline)`, value: { amount: baseRate, unit: 'bars/s' } });
  rows.push({
    name: `${label}: runBacktest, SMA(50/200) crossover`,
    value: { amount: runRate, unit: 'bars/s' },
    ratio: { to: 'baseline', value: runRate / baseRate },
    target: { text: '> 1,000,000 bars/s', met: runRate > TARGET_BARS_PER_SECOND },
  });
  return { label, sourceBars: source.length, replayedBars: bars.length, rounds: ROUNDS, trades, baselineMs: baseMs, backtestMs: runMs };
}

async function main(): Promise<void> {
  const daily = new URL('daily/AAPL.csv', DATA);
  const minute = new URL('minute/SPY_minute.csv', DATA);
  for (const file of [daily, minute]) {
    if (!existsSync(file)) throw new Error(`${fileURLToPath(file)} is missing; the benchmark needs ../shared/data`);
  }
  const rows: BenchRow[] = [];
  const runs = [
    await measure('AAPL daily (20 years, replayed)', daily, 'AAPL', 252, rows),
    await measure('SPY minute (replayed)', minute, 'SPY', 252 * 390, rows),
  ];
  report('backtest', rows, { runs, note: 'best of the rounds; one process, same bars for baseline and backtest' });
}

await main();
