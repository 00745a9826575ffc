import { InvalidInputError } from '../core/index.js';
import { type AllocationSummary, type ConsensusTallySummary, DecisionPipeline, type RiskStateSummary } from '../decision/index.js';
import { type Bar, Timeline } from '../market/index.js';
import type { EquityPoint } from '../portfolio/index.js';
import { type RunOptions, type RunWarning, runGaps, warmUpWarnings } from '../runspec/index.js';
import { collectIntents } from '../strategy/index.js';
import { type SessionReport, type SubmittedOrder, TradingSession } from '../trading/index.js';

/** The outcome of {@link runBacktest}. Same options (and fresh strategies) give the same report but `elapsedMs`. */
export interface BacktestReport extends SessionReport {
  /** Bars processed (all symbols). */
  readonly bars: number;
  /** Bar time steps (distinct times). */
  readonly timeSteps: number;
  /** `null` without a risk manager. */
  readonly riskState: RiskStateSummary | null;
  /** `null` without an allocator. */
  readonly allocation: AllocationSummary | null;
  /** Votes held and agreed; `null` without consensus. */
  readonly consensus: ConsensusTallySummary | null;
  /** Why the run trades less than its options say (a warm-up longer than the data); empty when nothing is wrong. */
  readonly warnings: readonly RunWarning[];
  /** Wall time of the bar loop and settlement, in ms; the one field that varies between runs. */
  readonly elapsedMs: number;
}

/** What {@link runBacktest} tells as it runs. */
export interface BacktestHooks {
  /** Each time step's orders, as the venue took them (with its answer), in submission order; not called for a step without any. */
  readonly onOrders?: (orders: readonly SubmittedOrder[], barIndex: number) => void;
}

/** The equity curve is kept out of the report (a million points); ask for it with this. */
export interface BacktestResult {
  readonly report: BacktestReport;
  readonly equityCurve: readonly EquityPoint[];
}

/**
 * Runs strategies over bars in-process on the same venue and portfolio code a swarm uses.
 *
 * ## Bar loop, per bar time t (index i), symbols in alphabetical order
 * With `fillAt: 'next-open'` (default), following the venue's contract (orders decided on bar t fill
 * from bar t+1):
 * 1. `venue.onBar(bar_t)` for each symbol: orders decided on earlier bars fill (at bar t's open);
 *    each fill is applied to the portfolio at once.
 * 2. The portfolio is marked to market at t with the closes of the bars at t.
 * 3. Each strategy (in the given order) sees each bar with `{ position, equity, barIndex: i,
 *    positionOf }`; each intent becomes an order with `clientOrderId({ swarm, role: strategy.name,
 *    barIndex: i, symbol, intent })` and is submitted with `nowBar = bar_t`.
 *    With an `allocator` or `risk`, the step's intents of all strategies are first collected, then
 *    passed through the allocator (`allocate` with the equity of the mark, the filled positions and
 *    the latest closes of every symbol), then the risk manager (`review`, with the peak of the
 *    equity marks so far); only what survives is submitted, in that order. The risk manager reviews
 *    every time step, with or without intents, so its state follows the drawdown; its refusals are
 *    reported as rejections with source `risk`.
 * With `fillAt: 'close'` steps run 2, 3, 1, 2 (orders must reach the venue before the bar that fills
 * them, at its close).
 * Before the first bar, a warm-up longer than the data (a strategy that cannot decide once, an
 * inverse-volatility allocator that stays equal) becomes a warning in the report; the run goes on.
 * Holes in the data (`options.gaps`) are reported in `gaps`; with `flatten`, positions are closed
 * at the close of the last bar before each (see `TradingSession`).
 * After the last bar, the end-of-data rule settles open positions (liquidation fills pay the venue's
 * fee model) and records the last equity point; orders still open are dropped.
 * @throws InvalidInputError naming the field for bad bars, options or duplicate strategy names.
 * @throws ShortSellingNotAllowedError (from the portfolio) when `longOnly` and a fill would go short.
 */
export function runBacktest(options: RunOptions, hooks: BacktestHooks = {}): BacktestResult {
  const started = performance.now();
  const swarm = options.swarm ?? 'backtest';
  const names = new Set<string>();
  options.strategies.forEach((strategy, i) => {
    if (names.has(strategy.name)) throw new InvalidInputError(`strategies[${i}].name`, `${JSON.stringify(strategy.name)} is used twice; names must be unique`);
    names.add(strategy.name);
  });
  const timeline = new Timeline(options.bars);
  const gaps = runGaps(options);
  const session = new TradingSession({
    swarm,
    symbols: timeline.symbols,
    ...(options.venue === undefined ? {} : { venue: options.venue }),
    ...(options.portfolio === undefined ? {} : { portfolio: options.portfolio }),
    ...(options.endOfData === undefined ? {} : { endOfData: options.endOfData }),
    ...(options.periodsPerYear === undefined ? {} : { periodsPerYear: options.periodsPerYear }),
    ...(options.statistics === undefined ? {} : { statistics: options.statistics }),
    ...(options.fillPriceSizing === undefined ? {} : { fillPriceSizing: options.fillPriceSizing }),
    ...(gaps === undefined ? {} : { gaps }),
  });
  const strategies = options.strategies;
  const pipeline = new DecisionPipeline({
    strategies: strategies.map((strategy) => ({ name: strategy.name, symbols: strategy.symbols ?? [] })),
    ...(options.allocator === undefined ? {} : { allocator: options.allocator }),
    ...(options.risk === undefined ? {} : { risk: options.risk }),
    ...(options.consensus === undefined ? {} : { consensus: options.consensus }),
  });
  const warnings = warmUpWarnings(strategies, options.allocator, (symbol) => timeline.barsOf(symbol));

  // One array for every step, refilled by the timeline: nothing the loop calls keeps a step.
  const step: Bar[] = [];
  let timeSteps = 0;
  while (timeline.next(step)) {
    const i = timeSteps++;
    const account = session.open(step);
    const decision = pipeline.decide(step, collectIntents(strategies, step, account, i), account, i);
    session.reject(decision.rejected, i);
    const submitted = session.submit(decision.approved, i, step);
    if (submitted.length > 0) hooks.onOrders?.(submitted, i);
    session.close(step);
  }
  const settled = session.settle();
  const summary = pipeline.summary();
  const report: BacktestReport = Object.freeze({
    ...settled.report,
    bars: timeline.count,
    timeSteps,
    riskState: summary.riskState,
    allocation: summary.allocation,
    consensus: summary.consensus,
    warnings: Object.freeze(warnings),
    elapsedMs: performance.now() - started,
  });
  const series = settled.equitySeries;
  let curve: readonly EquityPoint[] | undefined;
  return {
    report,
    // Built on first read: a million point objects cost more than the bar loop that recorded them.
    get equityCurve() {
      return (curve ??= series.toArray());
    },
  };
}
