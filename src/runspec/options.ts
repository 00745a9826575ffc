import type { ConsensusOptions, PortfolioAllocatorOptions, RiskManagerOptions } from '../decision/index.js';
import { type Bar, type DataGap, type GapOptions, findGaps } from '../market/index.js';
import type { EndOfDataRule, PortfolioOptions, RatioConvention, Sizer } from '../portfolio/index.js';
import type { Strategy } from '../strategy/index.js';
import type { PaperVenueOptions } from '../venue/index.js';

/**
 * What a run trades, and how: the data, fresh strategies, the decision stages and the account. A spec
 * file becomes one (`runOptionsFromSpec`); `tradeswarm backtest` runs it in-process, and
 * `tradeswarm run` deploys its strategies to agents and keeps its account at the control plane.
 */
export interface RunOptions {
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
  /** How Sharpe and Sortino are computed; the risk-free rate is annual, as a fraction. @default arithmetic, 0 */
  statistics?: { convention?: RatioConvention; riskFreeRatePerYear?: number };
  /**
   * Strategies (by name) whose entries are sized again at the fill price, with this sizer (a spec's
   * `sizing.sizeAt: fill-price`; see `TradingSession`). @default none
   */
  fillPriceSizing?: Readonly<Record<string, Sizer>>;
  /** Run name: the `swarm` part of every client order id. @default 'backtest' in a backtest */
  swarm?: string;
  /**
   * Fits each bar's intents of all strategies into the account (weights, budgets, netting) before
   * the risk manager sees them; the runner supplies the strategies. @default none
   */
  allocator?: Omit<PortfolioAllocatorOptions, 'strategies'>;
  /** Filters each bar's intents (limits, drawdown kill switch) before they reach the venue. @default none */
  risk?: RiskManagerOptions;
  /** Strategies vote on each new risk in a symbol they trade, before the allocator. @default none */
  consensus?: ConsensusOptions;
  /**
   * Holes in the data: found as `findGaps` finds them, reported (in the report's `gaps` and as
   * warnings), and with `flatten: true` closed across; `false`: not looked for.
   * @default reported, positions carried across
   */
  gaps?: RunGapOptions | false;
}

/** How a run treats holes in its data. */
export interface RunGapOptions extends GapOptions {
  /**
   * Close each position at the close of its symbol's last bar before a gap, and cancel the symbol's
   * open orders there, instead of holding them across the hole.
   * @default false
   */
  flatten?: boolean;
}

/**
 * The gaps of a run's data and whether to close positions across them, as the backtest and the swarm
 * both give them to their trading session; `undefined` when `options.gaps` is `false`.
 * @throws InvalidInputError naming `threshold` or `minimumDays` when one is out of range.
 */
export function runGaps(options: Pick<RunOptions, 'bars' | 'gaps'>): { readonly found: readonly DataGap[]; readonly flatten: boolean } | undefined {
  if (options.gaps === false) return undefined;
  const { flatten = false, ...find } = options.gaps ?? {};
  return { found: findGaps(options.bars, find), flatten };
}
