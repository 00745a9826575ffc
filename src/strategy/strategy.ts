import { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { sma } from './indicators.js';

/** What a strategy knows about its account when it sees a bar. */
export interface StrategyContext {
  /** Signed units held in `bar.symbol` now (> 0 long, < 0 short, 0 flat). */
  readonly position: number;
  /** Account equity now (cash + positions at the latest marks), in cash units. */
  readonly equity: number;
  /** Index of the bar time step, 0-based, shared by every symbol's bar at that time. */
  readonly barIndex: number;
}

/**
 * An order a strategy wants, before it has an id. The runner (backtest engine or swarm agent) turns
 * it into a venue order with `clientOrderId({ swarm, role: strategy.name, barIndex, symbol, intent })`,
 * so a strategy may return at most one intent per (symbol, `intent`) per bar.
 */
export interface Intent {
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  /** Units; finite and > 0. */
  readonly quantity: number;
  readonly type: 'market' | 'limit' | 'stop';
  /** Required for (and only for) `limit`. */
  readonly limitPrice?: number;
  /** Required for (and only for) `stop`. */
  readonly stopPrice?: number;
  /** What the order is for, e.g. `enter-long`, `exit-long`; part of the client order id. */
  readonly intent: string;
}

/** Sizes an entry: units to buy at `price` with `equity` (the portfolio's `Sizer` fits). */
export interface StrategySizer {
  quantity(price: number, equity: number): number;
}

/**
 * One strategy code path for backtest and swarm (DESIGN decision 6): a pure-ish object fed bars in
 * time order that answers intents. It holds only its own indicator state; it never reads clocks,
 * randomness, the venue or the portfolio: everything it may use comes in `bar` and `context`. Feed
 * one instance one run (create a fresh instance for each run).
 */
export interface Strategy {
  /** The role name: unique within a run, part of every client order id. */
  readonly name: string;
  /**
   * Called once per bar of every symbol in the run, in time order (symbols at the same time in
   * alphabetical order); a strategy ignores symbols it does not trade.
   * @returns the orders to place, decided on this bar (empty for none).
   */
  onBar(bar: Bar, context: StrategyContext): readonly Intent[];
}

/** Options of {@link smaCrossover}. */
export interface SmaCrossoverOptions {
  symbol: string;
  /** Bars of the fast average; 1 means the price itself ("price over average"). */
  fastPeriod: number;
  /** Bars of the slow average; > fastPeriod. */
  slowPeriod: number;
  /** Units to buy on entry. */
  sizing: StrategySizer;
  /** @default `sma-crossover-<symbol>-<fast>-<slow>` */
  name?: string;
}

const NONE: readonly Intent[] = Object.freeze([]);

/**
 * Long-only SMA crossover on closes. With `d = sma(fast) − sma(slow)` at a bar and `d'` at the
 * previous bar (both defined):
 * - `d' <= 0 < d` (fast crosses above slow) and flat: a market buy of `sizing.quantity(close, equity)`
 *   units (none when that is 0), intent `enter-long`.
 * - `d' >= 0 > d` (fast crosses below slow) and long: a market sell of the whole position, intent `exit-long`.
 * The first bar with both averages defined (bar `slowPeriod − 1`) only sets `d'`: no trade.
 * `fastPeriod: 1` compares the close with its own slow average.
 * @throws InvalidInputError naming the field for a bad symbol, period or sizer.
 */
export function smaCrossover(options: SmaCrossoverOptions): Strategy {
  const { symbol, fastPeriod, slowPeriod, sizing } = options;
  if (typeof symbol !== 'string' || symbol.trim() === '') {
    throw new InvalidInputError('symbol', `must be a non-empty string, got ${JSON.stringify(symbol)}`);
  }
  for (const [field, value] of [['fastPeriod', fastPeriod], ['slowPeriod', slowPeriod]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new InvalidInputError(field, `must be a whole number of bars >= 1, got ${value}`);
  }
  if (slowPeriod <= fastPeriod) {
    throw new InvalidInputError('slowPeriod', `must be greater than fastPeriod (${fastPeriod}), got ${slowPeriod}`);
  }
  if (typeof sizing?.quantity !== 'function') throw new InvalidInputError('sizing', 'must be a sizer with quantity(price, equity)');
  const name = options.name ?? `sma-crossover-${symbol}-${fastPeriod}-${slowPeriod}`;
  const fast = fastPeriod === 1 ? undefined : sma(fastPeriod);
  const slow = sma(slowPeriod);
  let previous: number | undefined;

  return Object.freeze({
    name,
    onBar(bar: Bar, context: StrategyContext): readonly Intent[] {
      if (bar.symbol !== symbol) return NONE;
      const fastValue = fast ? fast.update(bar.close) : bar.close;
      const slowValue = slow.update(bar.close);
      if (fastValue === undefined || slowValue === undefined) return NONE;
      const difference = fastValue - slowValue;
      const before = previous;
      previous = difference;
      if (before === undefined) return NONE;
      if (before <= 0 && difference > 0 && context.position === 0) {
        const quantity = sizing.quantity(bar.close, context.equity);
        if (!(quantity > 0)) return NONE;
        return [{ symbol, side: 'buy', quantity, type: 'market', intent: 'enter-long' }];
      }
      if (before >= 0 && difference < 0 && context.position > 0) {
        return [{ symbol, side: 'sell', quantity: context.position, type: 'market', intent: 'exit-long' }];
      }
      return NONE;
    },
  });
}
