import { InvalidInputError, toOptionalJsonNumber } from '../core/index.js';
import { type PriceIndicator, ema, prepareIndicatorState, saveIndicatorState, sma } from './indicators.js';
import { NO_SIGNALS, type Side, optionalSide, requireBars, requireSizer, requireSymbol, signalStrategy, strategyName } from './rules.js';
import type { RestorableStrategy } from './snapshot.js';
import type { ExitsOptions } from './exits.js';
import type { StrategySizer } from './strategy.js';

/** Options of {@link smaCrossover} and {@link emaCrossover}. */
export interface CrossoverOptions {
  symbol: string;
  /** Bars of the fast average; 1 means the price itself ("price over average"). */
  fastPeriod: number;
  /** Bars of the slow average; > fastPeriod. */
  slowPeriod: number;
  /** Units to buy (or sell short) on entry. */
  sizing: StrategySizer;
  /**
   * The sides it opens: `long` buys on a cross above and sells on a cross below; `short` sells short
   * on a cross below and buys back on a cross above; `both` is always in the market after its first
   * cross, reversing on each (close the holding, open the other side, same bar).
   * @default 'long'
   */
  side?: Side;
  /**
   * Stop-loss, take-profit and trailing stop attached to every entry, long or short (see `ExitsOptions`).
   * @default none
   */
  exits?: ExitsOptions;
  /** @default `<sma|ema>-crossover-<symbol>-<fast>-<slow>` */
  name?: string;
}

/** Options of {@link smaCrossover}. */
export type SmaCrossoverOptions = CrossoverOptions;
/** Options of {@link emaCrossover}. */
export type EmaCrossoverOptions = CrossoverOptions;

/**
 * SMA crossover on closes. With `d = sma(fast) − sma(slow)` at a bar and `d'` at the previous bar
 * (both defined), and `q = sizing.quantity(close, equity)` (no entry when that is 0):
 * - `d' <= 0 < d` (fast crosses above slow): with `side` `short` or `both` and short, a market buy
 *   of the whole position (`exit-short`); then, with `side` `long` or `both` and flat, a market buy
 *   of `q` units (`enter-long`).
 * - `d' >= 0 > d` (fast crosses below slow): with `side` `long` or `both` and long, a market sell
 *   of the whole position (`exit-long`); then, with `side` `short` or `both` and flat, a market sell
 *   of `q` units (`enter-short`).
 * The first bar with both averages defined (bar `slowPeriod − 1`) only sets `d'`: no trade.
 * `fastPeriod: 1` compares the close with its own slow average.
 * @throws InvalidInputError naming the field for a bad symbol, period or sizer.
 */
export function smaCrossover(options: SmaCrossoverOptions): RestorableStrategy {
  return crossover('sma', sma, options);
}

/**
 * EMA crossover on closes: the rule of {@link smaCrossover} with exponential averages
 * (`ema(period)`, seeded by the SMA of its first `period` closes, TA-Lib's convention) in place of
 * simple ones. Both averages are first defined at bar `slowPeriod − 1`, which only sets `d'`: no
 * trade. `fastPeriod: 1` compares the close with its own slow EMA ("price over EMA").
 * @throws InvalidInputError naming the field for a bad symbol, period or sizer.
 */
export function emaCrossover(options: EmaCrossoverOptions): RestorableStrategy {
  return crossover('ema', (period) => ema(period), options);
}

/** The crossover rule, shared by both averages. */
function crossover(kind: 'sma' | 'ema', average: (period: number) => PriceIndicator, options: CrossoverOptions): RestorableStrategy {
  const symbol = requireSymbol('symbol', options.symbol);
  const fastPeriod = requireBars('fastPeriod', options.fastPeriod);
  const slowPeriod = requireBars('slowPeriod', options.slowPeriod);
  if (slowPeriod <= fastPeriod) {
    throw new InvalidInputError('slowPeriod', `must be greater than fastPeriod (${fastPeriod}), got ${slowPeriod}`);
  }
  const sizing = requireSizer(options.sizing);
  const side = optionalSide(options.side);
  const exitsLong = side !== 'short';
  const exitsShort = side !== 'long';
  const fast = fastPeriod === 1 ? undefined : average(fastPeriod);
  const slow = average(slowPeriod);
  // d' (NaN before the first bar with both averages: a difference of finite averages is never NaN), in
  // an array: a number assigned to a variable the closures share is boxed anew on every bar.
  const previous = new Float64Array([Number.NaN]);
  return signalStrategy({
    name: strategyName(options.name, `${kind}-crossover-${symbol}-${fastPeriod}-${slowPeriod}`),
    symbol,
    sizing,
    side,
    exits: options.exits,
    // The first bar with both averages only sets d'.
    warmUp: { field: 'slowPeriod', value: slowPeriod, bars: slow.warmupBars + 1 },
    snapshotSpec: { type: `${kind}-crossover`, fastPeriod, slowPeriod },
    state: {
      save: () => ({
        fast: fast === undefined ? null : saveIndicatorState(fast),
        slow: saveIndicatorState(slow),
        previous: toOptionalJsonNumber(Number.isNaN(previous[0]) ? undefined : previous[0]),
      }),
      prepare: (state) => {
        const restoreFast = fast === undefined ? undefined : prepareIndicatorState(fast, state.object('fast'));
        const restoreSlow = prepareIndicatorState(slow, state.object('slow'));
        const savedPrevious = state.optionalNumber('previous');
        return () => {
          restoreFast?.();
          restoreSlow();
          previous[0] = savedPrevious ?? Number.NaN;
        };
      },
    },
    signals: (bar) => {
      const fastValue = fast ? fast.update(bar.close) : bar.close;
      const slowValue = slow.update(bar.close);
      if (fastValue === undefined || slowValue === undefined) return undefined;
      const difference = fastValue - slowValue;
      const before = previous[0] as number;
      previous[0] = difference;
      if (Number.isNaN(before)) return undefined;
      const crossesAbove = before <= 0 && difference > 0;
      const crossesBelow = before >= 0 && difference < 0;
      if (!crossesAbove && !crossesBelow) return NO_SIGNALS;
      return { enterLong: crossesAbove, exitLong: exitsLong && crossesBelow, enterShort: crossesBelow, exitShort: exitsShort && crossesAbove };
    },
  });
}
