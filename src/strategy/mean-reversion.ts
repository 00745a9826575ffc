import { InvalidInputError } from '../core/index.js';
import { bollinger, rsi } from './indicators.js';
import {
  type Side,
  type Signals,
  optionalSide,
  requireBars,
  requireFinite,
  requirePositive,
  requireReachableBand,
  requireSizer,
  requireSymbol,
  signalStrategy,
  strategyName,
} from './rules.js';
import { type RestorableStrategy, indicatorsState } from './snapshot.js';
import type { ExitsOptions } from './exits.js';
import type { StrategySizer } from './strategy.js';

/** The indicators {@link meanReversion} can read. */
export const MeanReversionIndicator = { bollinger: 'bollinger', rsi: 'rsi' } as const;
export type MeanReversionIndicator = (typeof MeanReversionIndicator)[keyof typeof MeanReversionIndicator];

interface MeanReversionCommonOptions {
  symbol: string;
  /** The sides it opens: `long`, `short` (the mirror rule only) or `both`. @default 'long' */
  side?: Side;
  /**
   * Stop-loss, take-profit and trailing stop attached to every entry, long or short (see `ExitsOptions`).
   * @default none
   */
  exits?: ExitsOptions;
  /** Units to buy (or sell short) on entry. */
  sizing: StrategySizer;
  /** @default `mean-reversion-<indicator>-<symbol>-<period>` */
  name?: string;
}

/** Options of {@link meanReversion} on Bollinger bands. */
export interface BollingerReversionOptions extends MeanReversionCommonOptions {
  indicator: 'bollinger';
  /** Bars of the middle band (an SMA) and of the standard deviation; >= 2. @default 20 */
  period?: number;
  /** Band width in population standard deviations; > 0. @default 2 */
  stdDevs?: number;
}

/** Options of {@link meanReversion} on the RSI. */
export interface RsiReversionOptions extends MeanReversionCommonOptions {
  indicator: 'rsi';
  /** Bars of the RSI (Wilder). @default 14 */
  period?: number;
  /** Enter long below this RSI level; in (0, exitLevel), and < 50 when it trades short. @default 30 */
  oversold?: number;
  /** Exit a long above this RSI level; in (oversold, 100). @default 50 */
  exitLevel?: number;
}

/** Options of {@link meanReversion}. */
export type MeanReversionOptions = BollingerReversionOptions | RsiReversionOptions;

/**
 * Mean reversion on closes, reading one of two indicators. Levels, not crossings; no trade while
 * the indicator warms up.
 *
 * `indicator: 'bollinger'` (bands of `period` bars, `stdDevs` population standard deviations; first
 * defined at bar `period − 1`):
 * - long and `close >= middle`: exit (`exit-long`); short and `close <= middle`: exit (`exit-short`).
 * - then, if flat: `close < lower` enters long (`enter-long`, `side` `long` or `both`); with `side`
 *   `short` or `both`, `close > upper` enters short (`enter-short`).
 *
 * `indicator: 'rsi'` (Wilder RSI of `period` bars; first defined at bar `period`):
 * - long and `RSI > exitLevel`: exit; short and `RSI < 100 − exitLevel`: exit.
 * - then, if flat: `RSI < oversold` enters long (`side` `long` or `both`); with `side` `short` or
 *   `both`, `RSI > 100 − oversold` enters short.
 *
 * Exits sell (or buy back) the whole position at market; entries trade
 * `sizing.quantity(close, equity)` units at market (none when that is not > 0).
 * @throws InvalidInputError naming the field for a bad symbol, indicator, period, level or sizer.
 */
export function meanReversion(options: MeanReversionOptions): RestorableStrategy {
  const symbol = requireSymbol('symbol', options.symbol);
  const side = optionalSide(options.side);
  const sizing = requireSizer(options.sizing);
  const indicator: unknown = options.indicator;
  if (indicator === MeanReversionIndicator.bollinger) {
    const bands = options as BollingerReversionOptions;
    const period = requireBars('period', bands.period ?? 20, 2);
    const stdDevs = requireReachableBand('stdDevs', requirePositive('stdDevs', bands.stdDevs ?? 2), 'period', period, { one: 'close', many: 'bars' });
    const indicatorState = bollinger(period, stdDevs);
    return signalStrategy({
      name: strategyName(options.name, `mean-reversion-bollinger-${symbol}-${period}`),
      symbol,
      sizing,
      side,
      exits: options.exits,
      warmUp: { field: 'period', value: period, bars: indicatorState.warmupBars },
      snapshotSpec: { type: 'mean-reversion', indicator: 'bollinger', period, stdDevs },
      state: indicatorsState({ bands: indicatorState }),
      signals: (bar): Signals | undefined => {
        const value = indicatorState.update(bar.close);
        if (value === undefined) return undefined;
        const close = bar.close;
        return { enterLong: close < value.lower, exitLong: close >= value.middle, enterShort: close > value.upper, exitShort: close <= value.middle };
      },
    });
  }
  if (indicator === MeanReversionIndicator.rsi) {
    const levels = options as RsiReversionOptions;
    const period = requireBars('period', levels.period ?? 14);
    const oversold = requireFinite('oversold', levels.oversold ?? 30);
    const exitLevel = requireFinite('exitLevel', levels.exitLevel ?? 50);
    if (oversold <= 0) throw new InvalidInputError('oversold', `must be > 0, got ${oversold}`);
    if (exitLevel >= 100) throw new InvalidInputError('exitLevel', `must be < 100, got ${exitLevel}`);
    if (oversold >= exitLevel) throw new InvalidInputError('oversold', `must be < exitLevel (${exitLevel}), got ${oversold}`);
    if (side !== 'long' && oversold >= 50) {
      throw new InvalidInputError('oversold', `must be < 50 with side '${side}' (the short entry is above 100 − oversold), got ${oversold}`);
    }
    const indicatorState = rsi(period);
    const overbought = 100 - oversold;
    const exitShortLevel = 100 - exitLevel;
    return signalStrategy({
      name: strategyName(options.name, `mean-reversion-rsi-${symbol}-${period}`),
      symbol,
      sizing,
      side,
      exits: options.exits,
      warmUp: { field: 'period', value: period, bars: indicatorState.warmupBars },
      snapshotSpec: { type: 'mean-reversion', indicator: 'rsi', period },
      state: indicatorsState({ rsi: indicatorState }),
      signals: (bar): Signals | undefined => {
        const value = indicatorState.update(bar.close);
        if (value === undefined) return undefined;
        return { enterLong: value < oversold, exitLong: value > exitLevel, enterShort: value > overbought, exitShort: value < exitShortLevel };
      },
    });
  }
  throw new InvalidInputError('indicator', `must be one of 'bollinger', 'rsi', got ${JSON.stringify(indicator)}`);
}
