// In-process backtest throughput, shared by bench/backtest.bench.ts and bench/swarm.bench.ts: bars per
// second of one SMA(50/200) crossover through runBacktest, next to a bare loop that only feeds the same
// closes to the two SMA indicators (the baseline, measured in the same run on the same bars).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runBacktest } from '../../src/backtest/index.js';
import { type Bar, loadCsvBars } from '../../src/market/index.js';
import { fractionOfEquity } from '../../src/portfolio/index.js';
import { sma, smaCrossover } from '../../src/strategy/index.js';
import type { BenchRow } from './report.js';

/** The shared market data (`../shared/data/` next to the repository; see its SOURCES.md). */
export const DATA_DIR = new URL('../../../shared/data/', import.meta.url);

/** The target for in-process backtests. */
export const TARGET_BARS_PER_SECOND = 1_000_000;

/** A CSV file of bars and how to read it. */
export interface SmaDataset {
  readonly label: string;
  readonly file: URL;
  readonly symbol: string;
  readonly periodsPerYear: number;
}

/** 20 years of AAPL daily bars and the SPY minute bars, each replayed to the requested length. */
export const SMA_DATASETS: readonly SmaDataset[] = [
  { label: 'AAPL daily (20 years, replayed)', file: new URL('daily/AAPL.csv', DATA_DIR), symbol: 'AAPL', periodsPerYear: 252 },
  { label: 'SPY minute (replayed)', file: new URL('minute/SPY_minute.csv', DATA_DIR), symbol: 'SPY', periodsPerYear: 252 * 390 },
];

/** The files of `datasets` that are not there, as paths. */
export function missingFiles(datasets: readonly SmaDataset[]): string[] {
  return datasets.filter((dataset) => !existsSync(dataset.file)).map((dataset) => fileURLToPath(dataset.file));
}

/** `bars` repeated end to end, each copy shifted in time past the previous, until `count` bars. */
export function replay(bars: readonly Bar[], count: number): Bar[] {
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

/** The baseline: the same closes through sma(50) and sma(200), counting crossings, nothing else. */
export function bareSmaLoop(bars: readonly Bar[]): number {
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

/** How {@link measureSmaBacktest} runs. */
export interface SmaBacktestOptions {
  /** Replay the file's bars to this many. */
  readonly bars: number;
  /** Timed runs of each side; the best one counts. */
  readonly rounds: number;
  /** The target's text in the table. */
  readonly targetText: string;
  /** Prefix of the row names (a section name). */
  readonly prefix?: string;
}

/**
 * Loads `dataset`, replays it to `options.bars` bars and times, best of `options.rounds`, the bare
 * SMA loop (baseline row) and runBacktest with one SMA(50/200) crossover (row with ratio and target).
 * @returns the two rows and what the JSON should keep about the run.
 */
export async function measureSmaBacktest(dataset: SmaDataset, options: SmaBacktestOptions): Promise<{ rows: BenchRow[]; run: Record<string, unknown> }> {
  const { symbol, periodsPerYear } = dataset;
  const source = await loadCsvBars(dataset.file, symbol);
  const bars = replay(source, options.bars);
  const baseMs: number[] = [];
  const runMs: number[] = [];
  let trades = 0;
  bareSmaLoop(bars.slice(0, 50_000));
  for (let round = 0; round < options.rounds; round++) {
    let started = performance.now();
    bareSmaLoop(bars);
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
  const baseRate = (bars.length / Math.min(...baseMs)) * 1000;
  const runRate = (bars.length / Math.min(...runMs)) * 1000;
  const name = `${options.prefix ?? ''}${dataset.label}`;
  const rows: BenchRow[] = [
    { name: `${name}: bare sma(50)+sma(200) loop (baseline)`, value: { amount: baseRate, unit: 'bars/s' } },
    {
      name: `${name}: runBacktest, SMA(50/200) crossover`,
      value: { amount: runRate, unit: 'bars/s' },
      ratio: { to: 'baseline', value: runRate / baseRate },
      target: { text: options.targetText, met: runRate > TARGET_BARS_PER_SECOND },
    },
  ];
  return { rows, run: { label: dataset.label, sourceBars: source.length, replayedBars: bars.length, rounds: options.rounds, trades, baselineMs: baseMs, backtestMs: runMs } };
}
