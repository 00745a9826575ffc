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
import type { Strategy } from '../strategy/index.js';
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
}

/** A rejected order: what was asked and why the venue refused. */
export interface BacktestRejection {
  readonly clientOrderId: string;
  readonly barIndex: number;
  readonly reason: string;
  readonly message: string;
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
 * 3. Each strategy (in the given order) sees each bar with `{ position, equity, barIndex: i }`; each
 *    intent becomes an order with `clientOrderId({ swarm, role: strategy.name, barIndex: i, symbol,
 *    intent })` and is submitted with `nowBar = bar_t`.
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
    for (const strategy of strategies) {
      for (const bar of step) {
        const intents = strategy.onBar(bar, { position: portfolio.quantity(bar.symbol), equity, barIndex });
        for (const intent of intents) {
          const id = clientOrderId({ swarm, role: strategy.name, barIndex, symbol: intent.symbol, intent: intent.intent });
          const order: OrderRequest = {
            clientOrderId: id,
            symbol: intent.symbol,
            side: intent.side,
            quantity: intent.quantity,
            type: intent.type,
            ...(intent.limitPrice === undefined ? {} : { limitPrice: intent.limitPrice }),
            ...(intent.stopPrice === undefined ? {} : { stopPrice: intent.stopPrice }),
          };
          const result = venue.submit(order, bar);
          if (result.status === 'rejected' || result.status === 'duplicate') {
            rejections.push({ clientOrderId: id, barIndex, reason: result.reason ?? result.status, message: result.message ?? 'the id was already used on this bar' });
          }
        }
      }
    }
  };

  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as Bar[];
    if (closeFills) {
      decideStep(step, i, markStep(step));
      fillStep(step);
      markStep(step);
    } else {
      fillStep(step);
      decideStep(step, i, markStep(step));
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
    elapsedMs: performance.now() - started,
  });
  return { report, equityCurve: curve };
}
