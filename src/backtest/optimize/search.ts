import { availableParallelism } from 'node:os';
import { InvalidInputError } from '../../core/index.js';
import type { Bar } from '../../market/index.js';
import { type Trade, performanceStats } from '../../portfolio/index.js';
import { type Spec, SpecError, parseSpec } from '../../runspec/index.js';
import { packBars } from './bars.js';
import type { Constraint } from './constraint.js';
import { type FoldResult, type Metric, type ParameterValue, type RunStatistics, type SearchResult, type SearchRow, type StepRange, WalkForwardMode } from '../../search/index.js';
import { type Combination, type Parameter, describeCombination, expandGrid, gridSize, withCombination } from './grid.js';
import { WorkerPool } from './pool.js';
import { type RunAnswer, type RunJob, statisticsOf, timeStepsOf, valuesOf } from './runs.js';

/** One walk-forward fold's parts. */
export interface FoldRanges {
  readonly inSample: StepRange;
  readonly outOfSample: StepRange;
}

/**
 * Splits `steps` time steps into `folds` walk-forward folds. The steps are cut into `folds + 1`
 * consecutive parts of equal count (part j starts at step `floor(j × steps / (folds + 1))`); fold k
 * (1 … folds) tests on part k, after searching on part k − 1 (`rolling`) or parts 0 … k − 1
 * (`anchored`).
 * @throws InvalidInputError naming `--walk-forward` when a part would have fewer than 2 steps.
 */
export function walkForwardFolds(times: readonly number[], folds: number, mode: WalkForwardMode): FoldRanges[] {
  const steps = times.length;
  if (!Number.isInteger(folds) || folds < 1) throw new InvalidInputError('--walk-forward', `must be a whole number of folds >= 1, got ${folds}`);
  const parts = folds + 1;
  if (Math.floor(steps / parts) < 2) {
    throw new InvalidInputError('--walk-forward', `${folds} folds cut the data's ${steps} time steps into ${parts} parts of fewer than 2 steps; use fewer folds or more data`);
  }
  const bound = (j: number): number => Math.floor((j * steps) / parts);
  const range = (from: number, to: number): StepRange => ({ from, to, firstTimeMs: times[from] as number, lastTimeMs: times[to - 1] as number });
  return Array.from({ length: folds }, (_, i) => {
    const k = i + 1;
    return { inSample: range(mode === WalkForwardMode.anchored ? 0 : bound(k - 1), bound(k)), outOfSample: range(bound(k), bound(k + 1)) };
  });
}

/** Options of {@link runSearch}. */
export interface SearchOptions {
  /** The spec as read (`readSpecDocument`), before any parameter is set. */
  readonly document: unknown;
  /** The spec's file name, for errors. */
  readonly source: string;
  /** The data, loaded once (`loadSpecBars`). */
  readonly bars: ReadonlyMap<string, readonly Bar[]>;
  readonly parameters: readonly Parameter[];
  /** Combinations any of these refuse are left out. @default none */
  readonly constraints?: readonly Constraint[];
  readonly metric: Metric;
  readonly direction: 'maximize' | 'minimize';
  /** Worker threads. @default os.availableParallelism() */
  readonly workers?: number;
  /** Most backtests a search may run (the grid's combinations × (1 + folds) + folds). @default 10,000 */
  readonly maxRuns?: number;
  readonly walkForward?: { readonly folds: number; readonly mode: WalkForwardMode };
  /** Stops the search: what finished is reported. */
  readonly signal?: AbortSignal;
  /** Called after each finished run and once before the first. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** @default 10,000 runs. */
export const DEFAULT_MAX_RUNS = 10_000;

/**
 * Backtests every combination of the parameters (those the constraints keep) on all the data, and
 * with `walkForward`, searches each fold's in-sample part and runs its best combination on the
 * out-of-sample part. Runs go to worker threads that share the bars; results are ordered by the grid.
 * @throws InvalidInputError naming the flag: no combination left, a grid over `maxRuns`, workers < 1.
 * @throws SpecError for the first combination the spec's validation refuses (its values and field).
 * @throws SearchRunError for a run that fails, with its combination.
 */
export async function runSearch(options: SearchOptions): Promise<SearchResult> {
  const { parameters, metric, direction } = options;
  const constraints = options.constraints ?? [];
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) throw new InvalidInputError('--workers', `must be a whole number >= 1, got ${workers}`);
  const combinations = expandGrid(parameters).filter((combination) => constraints.every((constraint) => constraint.accepts(combination)));
  if (combinations.length === 0) {
    throw new InvalidInputError('--constraint', `no combination of the ${gridSize(parameters)} in the grid meets ${constraints.map((c) => JSON.stringify(c.text)).join(' and ')}; loosen the constraints or widen the --param ranges`);
  }
  const times = timeStepsOf(options.bars);
  const folds = options.walkForward === undefined ? [] : walkForwardFolds(times, options.walkForward.folds, options.walkForward.mode);
  const runs = combinations.length * (1 + folds.length) + folds.length;
  const maxRuns = options.maxRuns ?? DEFAULT_MAX_RUNS;
  if (runs > maxRuns) {
    const detail = folds.length === 0 ? '' : ` (on all the data and in each of ${folds.length} folds, plus one run per fold out of sample)`;
    throw new InvalidInputError('--max-runs', `the search needs ${runs} backtests of ${combinations.length} combinations${detail}, over the limit of ${maxRuns}; narrow the --param ranges, add a --constraint or raise --max-runs`);
  }
  for (const combination of combinations) specOfCombination(options.document, options.source, parameters, combination);

  const pool = new WorkerPool(Math.min(workers, runs), { document: options.document, source: options.source, parameters, bars: packBars(options.bars) });
  try {
    let done = 0;
    options.onProgress?.(0, runs);
    const onAnswer = (): void => {
      done += 1;
      options.onProgress?.(done, runs);
    };
    const describe = (job: RunJob): string => describeCombination(parameters, job.combination);
    // Jobs 0 … n − 1: all the data; then fold by fold, in-sample, the same combinations.
    const everything = { from: 0, to: times.length };
    const searchJobs: RunJob[] = [everything, ...folds.map((fold) => fold.inSample)].flatMap((range, r) =>
      combinations.map((combination, c) => ({ id: r * combinations.length + c, combination, from: range.from, to: range.to, warmUp: false, keepCurve: false })),
    );
    const searched = await pool.run(searchJobs, describe, { ...(options.signal === undefined ? {} : { signal: options.signal }), onAnswer });
    const statisticsAt = (range: number): Array<RunStatistics | null> => combinations.map((_, c) => searched.answers.get(range * combinations.length + c)?.statistics ?? null);
    const rowsOf = (statistics: ReadonlyArray<RunStatistics | null>): SearchRow[] => {
      const ranks = rank(statistics, metric, direction);
      return combinations.map((combination, c) => ({ rank: ranks[c] ?? null, parameters: named(parameters, combination), statistics: statistics[c] ?? null }));
    };
    const rows = rowsOf(statisticsAt(0));
    const bests = folds.map((_, f) => rowsOf(statisticsAt(f + 1)).findIndex((row) => row.rank === 1));

    let tested: ReadonlyMap<number, RunAnswer> = new Map();
    let stopped = searched.stopped;
    if (!stopped && folds.length > 0) {
      const testJobs: RunJob[] = folds.map((fold, f) => ({ id: f, combination: combinations[bests[f] as number] as Combination, from: fold.outOfSample.from, to: fold.outOfSample.to, warmUp: true, keepCurve: true }));
      const outcome = await pool.run(testJobs, describe, { ...(options.signal === undefined ? {} : { signal: options.signal }), onAnswer });
      tested = outcome.answers;
      stopped = outcome.stopped;
    }
    const foldResults: FoldResult[] = folds.map((fold, f) => {
      const best = bests[f] as number;
      const answer = tested.get(f);
      return {
        fold: f + 1,
        inSample: { ...fold.inSample, best: best < 0 ? null : { ...(rowsOf(statisticsAt(f + 1))[best] as SearchRow) } },
        outOfSample: { ...fold.outOfSample, warmUpSteps: answer?.warmUpSteps ?? 0, statistics: answer?.statistics ?? null },
      };
    });
    const walkForward =
      options.walkForward === undefined
        ? null
        : {
            mode: options.walkForward.mode,
            folds: foldResults,
            outOfSample: tested.size === folds.length ? joinedStatistics(folds.map((_, f) => tested.get(f) as RunAnswer), withCombination(options.document, parameters, combinations[bests[0] as number] as Combination), options.source) : null,
          };
    return {
      metric,
      direction,
      parameters: parameters.map(({ name, values }) => ({ name, values })),
      constraints: constraints.map((constraint) => constraint.text),
      gridSize: gridSize(parameters),
      combinations: combinations.length,
      timeSteps: times.length,
      rows,
      walkForward,
      runsDone: done,
      runs,
      stopped,
    };
  } finally {
    await pool.close();
  }
}

/**
 * The spec with a combination's values, validated as `tradeswarm backtest` validates a spec.
 * @throws SpecError naming the spec with the combination (`spec.yaml with fastPeriod=50 slowPeriod=20`), each field at fault, and `--constraint` as a way out.
 */
export function specOfCombination(document: unknown, source: string, parameters: readonly Parameter[], combination: Combination): Spec {
  try {
    return parseSpec(withCombination(document, parameters, combination), `${source} with ${describeCombination(parameters, combination)}`);
  } catch (error) {
    if (!(error instanceof SpecError)) throw error;
    throw new SpecError(error.source, error.problems.map((problem) => ({ ...problem, allowed: `${problem.allowed} (or leave such combinations out with --constraint)` })), { cause: error });
  }
}

function named(parameters: readonly Parameter[], combination: Combination): Record<string, ParameterValue> {
  return Object.fromEntries(parameters.map((parameter, i) => [parameter.name, combination[i] as ParameterValue]));
}

/**
 * Ranks by the metric (ties and `null` values: grid order; `null` after every number; runs not
 * finished get no rank).
 */
function rank(statistics: ReadonlyArray<RunStatistics | null>, metric: Metric, direction: 'maximize' | 'minimize'): Array<number | undefined> {
  const sign = direction === 'maximize' ? -1 : 1;
  const order = statistics
    .map((stats, index) => ({ index, stats }))
    .filter((entry): entry is { index: number; stats: RunStatistics } => entry.stats !== null)
    .sort((a, b) => {
      const x = a.stats[metric];
      const y = b.stats[metric];
      if (x === null || y === null) return x === y ? a.index - b.index : x === null ? 1 : -1;
      return x === y ? a.index - b.index : sign * (x - y);
    });
  const ranks = new Array<number | undefined>(statistics.length);
  order.forEach((entry, position) => {
    ranks[entry.index] = position + 1;
  });
  return ranks;
}

/**
 * The out-of-sample parts as one run: each part's equity scaled to start where the previous part
 * ended (its returns compounded on), the repeated point dropped; trades of all parts.
 */
function joinedStatistics(parts: readonly RunAnswer[], document: unknown, source: string): RunStatistics {
  const equity: number[] = [];
  const openPositions: number[] = [];
  const trades: Trade[] = [];
  for (const part of parts) {
    const curve = part.curve;
    if (curve === undefined) continue;
    const scale = equity.length === 0 ? 1 : (equity[equity.length - 1] as number) / (curve.equity[0] as number);
    curve.equity.forEach((value, i) => {
      if (i === 0 && equity.length > 0) return;
      equity.push(value * scale);
      openPositions.push(curve.openPositions[i] as number);
    });
    trades.push(...curve.trades);
  }
  // The statistics conventions of the first fold's spec (a search that varies them joins unlike parts).
  const spec = parseSpec(document, source);
  return statisticsOf(performanceStats(valuesOf(equity, openPositions), trades, { periodsPerYear: spec.periodsPerYear, ...spec.statistics }));
}
