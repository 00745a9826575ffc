import { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import {
  EndOfDataRule,
  type EquityPoint,
  type PortfolioOptions,
  type Trade,
  createPortfolio,
  performanceStats,
  settleEndOfData,
} from '../portfolio/index.js';
import {
  PortfolioAllocator,
  type PortfolioAllocatorOptions,
  RiskManager,
  type RiskManagerOptions,
  RiskState,
  type Intent,
  type Strategy,
  type StrategyIntent,
} from '../strategy/index.js';
import { type Fill, FillAt, type OrderRequest, PaperVenue, type PaperVenueOptions, clientOrderId, feeForFill } from '../venue/index.js';

/** Options of {@link runBacktest}. */
export interface BacktestOptions {
  /** Bars by symbol, or one list (any symbols); each symbol's bars in strictly ascending time. */
  bars: ReadonlyMap<string, readonly Bar[]> | readonly Bar[];
  /** Fresh strategy instances (their names must be unique); they are fed every bar. */
  strategies: readonly Strategy[];
  /** The paper venue's options except `symbols`, which are the data's. @default next-open fills, no slippage, no fees */
  venue?: Omit<PaperVenueOptions, 'symbols'>;
  /** @default { initialCash: 100_000, longOnly: false } */
  portfolio?: PortfolioOptions;
  /** What happens to positions still open after the last bar. @default 'liquidate-at-close' */
  endOfData?: EndOfDataRule;
  /** Equity points per year, for Sharpe and Sortino: 252 for daily bars. @default 252 */
  periodsPerYear?: number;
  /** Run name: the `swarm` part of every client order id. @default 'backtest' */
  swarm?: string;
  /**
   * Fits each bar's intents of all strategies into the account (weights, budgets, netting) before
   * the risk manager sees them; the engine supplies the strategies. @default none
   */
  allocator?: Omit<PortfolioAllocatorOptions, 'strategies'>;
  /** Filters each bar's intents (limits, drawdown kill switch) before they reach the venue. @default none */
  risk?: RiskManagerOptions;
}

/** A rejected order: what was asked and who refused it, why. */
export interface BacktestRejection {
  readonly clientOrderId: string;
  readonly barIndex: number;
  /** `venue`: the paper venue refused it; `risk`: the risk manager did, so it never reached the venue. */
  readonly source: 'venue' | 'risk';
  /** A stable code: the venue's `RejectReason` or the risk manager's `RiskRejectReason`. */
  readonly reason: string;
  readonly message: string;
}

/** How the risk manager's state went over the run (one review per bar time step). */
export interface RiskStateSummary {
  /** Time steps spent in each state (judged after that step's drawdown). */
  readonly barsInState: Readonly<Record<RiskState, number>>;
  /** Every state change, in order. */
  readonly transitions: ReadonlyArray<{ readonly barIndex: number; readonly from: RiskState; readonly to: RiskState; readonly drawdown: number }>;
  readonly finalState: RiskState;
  /** Intents the risk manager refused (also listed in `rejections` with source `risk`). */
  readonly rejected: number;
}

/** What the allocator changed over the run. */
export interface AllocationSummary {
  /** Intents cut (or dropped) to fit their strategy's budget. */
  readonly scaled: number;
  /** Intents cut or dropped by netting against opposite intents on the same symbol. */
  readonly netted: number;
}

/** The outcome of {@link runBacktest}. Same options (and fresh strategies) give the same report but `elapsedMs`. */
export interface BacktestReport {
  readonly swarm: string;
  /** Closed round trips, in closing order (end-of-data liquidations included). */
  readonly trades: readonly Trade[];
  /** Venue fills then end-of-data fills, in time order. */
  readonly fills: readonly Fill[];
  readonly rejections: readonly BacktestRejection[];
  readonly initialCash: number;
  readonly finalCash: number;
  readonly finalEquity: number;
  /** `finalEquity / initialCash − 1`. */
  readonly totalReturn: number;
  /** Annualised with `periodsPerYear`; `null` when undefined for the data. */
  readonly sharpe: number | null;
  readonly sortino: number | null;
  /** Fraction of the running peak (0.25 = 25 %). */
  readonly maxDrawdown: number;
  /** Winning trades / trades; `null` with no trades. */
  readonly winRate: number | null;
  /** Fraction of equity points with an open position. */
  readonly exposure: number;
  /** Open positions at the end (none after a liquidating rule). */
  readonly openPositions: ReadonlyArray<{ readonly symbol: string; readonly quantity: number }>;
  readonly endOfData: EndOfDataRule;
  /** Bars processed (all symbols). */
  readonly bars: number;
  /** Bar time steps (distinct times). */
  readonly timeSteps: number;
  /** `null` without a risk manager. */
  readonly riskState: RiskStateSummary | null;
  /** `null` without an allocator. */
  readonly allocation: AllocationSummary | null;
  /** Wall time of the bar loop and settlement, in ms; the one field that varies between runs. */
  readonly elapsedMs: number;
}

/** The equity curve is kept out of the report (a million points); ask for it with this. */
export interface BacktestResult {
  readonly report: BacktestReport;
  readonly equityCurve: readonly EquityPoint[];
}

/** Bars grouped by time: `steps[i]` holds the bars at the i-th distinct time, by symbol name. */
function groupByTime(input: BacktestOptions['bars']): { symbols: string[]; steps: Bar[][]; count: number } {
  const bySymbol = new Map<string, readonly Bar[]>();
  if (input instanceof Map) {
    for (const [symbol, bars] of input as ReadonlyMap<string, readonly Bar[]>) bySymbol.set(symbol, bars);
  } else {
    const lists = new Map<string, Bar[]>();
    for (const bar of input as readonly Bar[]) {
      const list = lists.get(bar.symbol);
      if (list) list.push(bar);
      else lists.set(bar.symbol, [bar]);
    }
    for (const [symbol, list] of lists) bySymbol.set(symbol, list);
  }
  const symbols = [...bySymbol.keys()].sort();
  if (symbols.length === 0) throw new InvalidInputError('bars', 'must hold at least one bar');
  let count = 0;
  for (const symbol of symbols) {
    const bars = bySymbol.get(symbol) as readonly Bar[];
    if (bars.length === 0) throw new InvalidInputError(`bars.${symbol}`, 'must hold at least one bar');
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i] as Bar;
      if (bar.symbol !== symbol) throw new InvalidInputError(`bars.${symbol}[${i}].symbol`, `is ${JSON.stringify(bar.symbol)}, expected ${symbol}`);
      if (i > 0 && bar.timeMs <= (bars[i - 1] as Bar).timeMs) {
        throw new InvalidInputError(`bars.${symbol}[${i}].timeMs`, `${bar.timeMs} is not after the previous bar; sort the bars by time`);
      }
    }
    count += bars.length;
  }
  if (symbols.length === 1) {
    const bars = bySymbol.get(symbols[0] as string) as readonly Bar[];
    return { symbols, steps: bars.map((bar) => [bar]), count };
  }
  // k-way merge by time; symbols at equal times in alphabetical order.
  const cursors = symbols.map(() => 0);
  const lists = symbols.map((symbol) => bySymbol.get(symbol) as readonly Bar[]);
  const steps: Bar[][] = [];
  for (;;) {
    let next = Infinity;
    lists.forEach((list, k) => {
      const bar = list[cursors[k] as number];
      if (bar && bar.timeMs < next) next = bar.timeMs;
    });
    if (next === Infinity) break;
    const step: Bar[] = [];
    lists.forEach((list, k) => {
      const bar = list[cursors[k] as number];
      if (bar && bar.timeMs === next) {
        step.push(bar);
        cursors[k] = (cursors[k] as number) + 1;
      }
    });
    steps.push(step);
  }
  return { symbols, steps, count };
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
 * After the last bar, the end-of-data rule settles open positions (liquidation fills pay the venue's
 * fee model) and records the last equity point; orders still open are dropped.
 * @throws InvalidInputError naming the field for bad bars, options or duplicate strategy names.
 * @throws ShortSellingNotAllowedError (from the portfolio) when `longOnly` and a fill would go short.
 */
export function runBacktest(options: BacktestOptions): BacktestResult {
  const started = performance.now();
  const swarm = options.swarm ?? 'backtest';
  if (typeof swarm !== 'string' || swarm.trim() === '') throw new InvalidInputError('swarm', `must be a non-empty string, got ${JSON.stringify(swarm)}`);
  const periodsPerYear = options.periodsPerYear ?? 252;
  const endOfData = options.endOfData ?? EndOfDataRule.liquidateAtClose;
  if (!Object.values(EndOfDataRule).includes(endOfData)) {
    throw new InvalidInputError('endOfData', `must be one of ${Object.values(EndOfDataRule).join(', ')}, got ${JSON.stringify(endOfData)}`);
  }
  const names = new Set<string>();
  options.strategies.forEach((strategy, i) => {
    if (names.has(strategy.name)) throw new InvalidInputError(`strategies[${i}].name`, `${JSON.stringify(strategy.name)} is used twice; names must be unique`);
    names.add(strategy.name);
  });
  const { symbols, steps, count } = groupByTime(options.bars);
  const venue = new PaperVenue({ ...options.venue, symbols });
  const portfolio = createPortfolio(options.portfolio);
  const strategies = options.strategies;
  const closeFills = venue.config.fillAt === FillAt.close;
  const fills: Fill[] = [];
  const rejections: BacktestRejection[] = [];
  const marks = new Map<string, number>();
  const allocator = options.allocator === undefined ? undefined : new PortfolioAllocator({ ...options.allocator, strategies });
  const risk = options.risk === undefined ? undefined : new RiskManager(options.risk);
  const filtering = allocator !== undefined || risk !== undefined;
  /** The latest close of every symbol seen, for the allocator and the risk manager. */
  const lastCloses = new Map<string, number>();
  const positionOf = (symbol: string): number => portfolio.quantity(symbol);
  let peakEquity = -Infinity;
  const barsInState: Record<RiskState, number> = { [RiskState.normal]: 0, [RiskState.reducing]: 0, [RiskState.halted]: 0 };
  const transitions: Array<{ barIndex: number; from: RiskState; to: RiskState; drawdown: number }> = [];
  const allocation = { scaled: 0, netted: 0 };
  let riskRejected = 0;

  const submit = (role: string, intent: Intent, barIndex: number, nowBar: Bar): void => {
    const id = clientOrderId({ swarm, role, barIndex, symbol: intent.symbol, intent: intent.intent });
    const order: OrderRequest = {
      clientOrderId: id,
      symbol: intent.symbol,
      side: intent.side,
      quantity: intent.quantity,
      type: intent.type,
      ...(intent.limitPrice === undefined ? {} : { limitPrice: intent.limitPrice }),
      ...(intent.stopPrice === undefined ? {} : { stopPrice: intent.stopPrice }),
    };
    const result = venue.submit(order, nowBar);
    if (result.status === 'rejected' || result.status === 'duplicate') {
      rejections.push({ clientOrderId: id, barIndex, source: 'venue', reason: result.reason ?? result.status, message: result.message ?? 'the id was already used on this bar' });
    }
  };

  const fillStep = (step: readonly Bar[]): void => {
    for (const bar of step) {
      const made = venue.onBar(bar);
      for (const fill of made) {
        portfolio.apply(fill);
        fills.push(fill);
      }
    }
  };
  const markStep = (step: readonly Bar[]): number => {
    if (step.length !== 1 || marks.size !== 1) marks.clear();
    for (const bar of step) marks.set(bar.symbol, bar.close);
    return portfolio.markToMarket((step[0] as Bar).timeMs, marks).equity;
  };
  /** `equity` is that of the mark taken just before: nothing trades between the mark and the decisions. */
  const decideStep = (step: readonly Bar[], barIndex: number, equity: number): void => {
    if (!filtering) {
      for (const strategy of strategies) {
        for (const bar of step) {
          const intents = strategy.onBar(bar, { position: portfolio.quantity(bar.symbol), equity, barIndex, positionOf });
          for (const intent of intents) submit(strategy.name, intent, barIndex, bar);
        }
      }
      return;
    }
    let pending: StrategyIntent[] = [];
    for (const strategy of strategies) {
      for (const bar of step) {
        const intents = strategy.onBar(bar, { position: portfolio.quantity(bar.symbol), equity, barIndex, positionOf });
        for (const intent of intents) pending.push({ ...intent, strategy: strategy.name });
      }
    }
    for (const bar of step) {
      lastCloses.set(bar.symbol, bar.close);
      allocator?.onBar(bar);
    }
    const positions = new Map(portfolio.openPositions().map(({ symbol, quantity }) => [symbol, quantity]));
    if (allocator !== undefined && pending.length > 0) {
      const result = allocator.allocate(pending, { equity, positions, prices: lastCloses });
      allocation.scaled += result.scaled.length;
      allocation.netted += result.netted.length;
      pending = result.intents;
    }
    if (risk !== undefined) {
      const review = risk.review(pending, { equity, peakEquity, positions, prices: lastCloses, barIndex });
      barsInState[review.state] += 1;
      if (review.state !== review.previousState) transitions.push({ barIndex, from: review.previousState, to: review.state, drawdown: review.drawdown });
      for (const { intent, reason, message } of review.rejected) {
        const id = clientOrderId({ swarm, role: intent.strategy, barIndex, symbol: intent.symbol, intent: intent.intent });
        rejections.push({ clientOrderId: id, barIndex, source: 'risk', reason, message });
      }
      riskRejected += review.rejected.length;
      pending = review.approved;
    }
    const nowBar = step[0] as Bar;
    for (const intent of pending) submit(intent.strategy, intent, barIndex, nowBar);
  };
  /** Marks the step and keeps the peak equity for the risk manager. */
  const markAndTrack = (step: readonly Bar[]): number => {
    const equity = markStep(step);
    if (equity > peakEquity) peakEquity = equity;
    return equity;
  };

  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as Bar[];
    if (closeFills) {
      decideStep(step, i, markAndTrack(step));
      fillStep(step);
      markAndTrack(step);
    } else {
      fillStep(step);
      decideStep(step, i, markAndTrack(step));
    }
  }

  const lastBars = symbols.map((symbol) => {
    for (let i = steps.length - 1; ; i--) {
      const bar = (steps[i] as Bar[]).find((candidate) => candidate.symbol === symbol);
      if (bar) return bar;
    }
  });
  const fees = venue.config.fees;
  const settlement = settleEndOfData(portfolio, lastBars, {
    rule: endOfData,
    feeForFill: (quantity, price) => feeForFill(fees, price, quantity, { fillCount: 0, rawTotal: 0, charged: 0 }).fee,
  });
  for (const fill of settlement.fills) fills.push(fill);

  const curve = portfolio.equityCurve();
  const trades = portfolio.trades();
  const stats = performanceStats(curve, trades, { periodsPerYear });
  const initialCash = portfolio.config.initialCash;
  const report: BacktestReport = Object.freeze({
    swarm,
    trades,
    fills,
    rejections,
    initialCash,
    finalCash: portfolio.cash,
    finalEquity: portfolio.equity,
    totalReturn: initialCash > 0 ? portfolio.equity / initialCash - 1 : 0,
    sharpe: stats.sharpe,
    sortino: stats.sortino,
    maxDrawdown: stats.maxDrawdown,
    winRate: stats.winRate,
    exposure: stats.exposure,
    openPositions: portfolio.openPositions().map(({ symbol, quantity }) => ({ symbol, quantity })),
    endOfData,
    bars: count,
    timeSteps: steps.length,
    riskState:
      risk === undefined
        ? null
        : { barsInState: Object.freeze({ ...barsInState }), transitions, finalState: risk.state, rejected: riskRejected },
    allocation: allocator === undefined ? null : { ...allocation },
    elapsedMs: performance.now() - started,
  });
  return { report, equityCurve: curve };
}
