import { InvalidInputError } from '../../core/index.js';
import type { Bar } from '../../market/index.js';
import { type EquityValues, type PerformanceStats, type Trade, performanceStats } from '../../portfolio/index.js';
import { parseSpec, runOptionsWithBars } from '../../runspec/index.js';
import { runBacktest } from '../engine.js';
import { METRICS, type Metric, type RunStatistics } from '../../search/index.js';
import { type Combination, type Parameter, withCombination } from './grid.js';

/**
 * Checks a `--maximize`/`--minimize` name.
 * @throws InvalidInputError naming the flag and listing the metrics.
 */
export function metricOf(name: string, flag: string): Metric {
  if ((METRICS as readonly string[]).includes(name)) return name as Metric;
  throw new InvalidInputError(flag, `${JSON.stringify(name)} is not a statistic of the report; use one of ${METRICS.join(', ')}`);
}

/** One backtest of a search: a combination on a range of the data's time steps. */
export interface RunJob {
  /** Unique within a search; answers carry it back. */
  readonly id: number;
  readonly combination: Combination;
  /** Time-step indexes of the data: `[from, to)`. */
  readonly from: number;
  readonly to: number;
  /**
   * Start the run up to the strategies' warm-up before `from` (their largest `warmUp.bars` − 1 time
   * steps, as far as the data goes back), so that they can decide on the first step of the range;
   * the statistics then start at the close of the step before `from`.
   */
  readonly warmUp: boolean;
  /** Send back the equity curve of the range and its trades (to join out-of-sample parts). */
  readonly keepCurve: boolean;
}

/** A finished {@link RunJob}. */
export interface RunAnswer {
  readonly id: number;
  readonly statistics: RunStatistics;
  /** Time steps run before `from` to warm the strategies up. */
  readonly warmUpSteps: number;
  readonly curve?: { readonly equity: readonly number[]; readonly openPositions: readonly number[]; readonly trades: readonly Trade[] };
}

/** What every run of a search shares: the spec document, its parameters and the data. */
export interface RunContext {
  readonly document: unknown;
  readonly source: string;
  readonly parameters: readonly Parameter[];
  readonly bars: ReadonlyMap<string, readonly Bar[]>;
  /** Distinct bar times of all symbols, ascending. */
  readonly times: readonly number[];
}

/** Distinct bar times of all symbols, ascending: the time steps a backtest walks. */
export function timeStepsOf(bars: ReadonlyMap<string, readonly Bar[]>): number[] {
  const times = new Set<number>();
  for (const list of bars.values()) for (const bar of list) times.add(bar.timeMs);
  return [...times].sort((a, b) => a - b);
}

/** Runs one backtest of a search, as `tradeswarm backtest` would run the combination's spec on that part of the data. */
export function runJob(context: RunContext, job: RunJob): RunAnswer {
  const spec = parseSpec(withCombination(context.document, context.parameters, job.combination), context.source);
  const options = runOptionsWithBars(spec, context.bars);
  const warmUpBars = job.warmUp ? Math.max(1, ...options.strategies.map((strategy) => strategy.warmUp?.bars ?? 1)) - 1 : 0;
  const start = Math.max(0, job.from - warmUpBars);
  const { times } = context;
  const bars = barsBetween(context.bars, times[start] as number, job.to < times.length ? (times[job.to] as number) : Infinity);
  const { report, equityCurve } = runBacktest({ ...options, bars });
  const warmUpSteps = job.from - start;
  if (warmUpSteps === 0 && !job.keepCurve) return { id: job.id, warmUpSteps, statistics: reportStatistics(report) };
  // From the last point before the range: its first return is the one of its first step.
  const firstInRange = equityCurve.findIndex((point) => point.timeMs >= (times[job.from] as number));
  const points = equityCurve.slice(Math.max(0, firstInRange - (warmUpSteps > 0 ? 1 : 0)));
  const equity = points.map((point) => point.equity);
  const openPositions = points.map((point) => point.openPositions);
  const stats = performanceStats(valuesOf(equity, openPositions), report.trades, { periodsPerYear: spec.periodsPerYear, ...spec.statistics });
  return {
    id: job.id,
    warmUpSteps,
    statistics: warmUpSteps === 0 ? reportStatistics(report) : statisticsOf(stats),
    ...(job.keepCurve ? { curve: { equity, openPositions, trades: report.trades } } : {}),
  };
}

/** Each symbol's bars with times in `[fromMs, toMs)`; symbols without any are left out. */
function barsBetween(bars: ReadonlyMap<string, readonly Bar[]>, fromMs: number, toMs: number): Map<string, readonly Bar[]> {
  const part = new Map<string, readonly Bar[]>();
  for (const [symbol, list] of bars) {
    const slice = list.slice(firstAtOrAfter(list, fromMs), firstAtOrAfter(list, toMs));
    if (slice.length > 0) part.set(symbol, slice);
  }
  return part;
}

function firstAtOrAfter(list: readonly Bar[], timeMs: number): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((list[middle] as Bar).timeMs < timeMs) low = middle + 1;
    else high = middle;
  }
  return low;
}

function reportStatistics(report: { totalReturn: number; sharpe: number | null; sortino: number | null; maxDrawdown: number; winRate: number | null; exposure: number; finalEquity: number; trades: readonly unknown[] }): RunStatistics {
  const { totalReturn, sharpe, sortino, maxDrawdown, winRate, exposure, finalEquity } = report;
  return { totalReturn, sharpe, sortino, maxDrawdown, winRate, exposure, finalEquity, trades: report.trades.length };
}

/** A search's statistics from {@link performanceStats}. */
export function statisticsOf(stats: PerformanceStats): RunStatistics {
  const { totalReturn, sharpe, sortino, maxDrawdown, winRate, exposure, finalEquity, tradeCount } = stats;
  return { totalReturn, sharpe, sortino, maxDrawdown, winRate, exposure, finalEquity, trades: tradeCount };
}

/** Equity values for {@link performanceStats} from plain arrays. */
export function valuesOf(equity: readonly number[], openPositions: readonly number[]): EquityValues {
  return { length: equity.length, equityAt: (i) => equity[i] as number, openPositionsAt: (i) => openPositions[i] as number };
}
