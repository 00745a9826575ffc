import { InvalidInputError } from '../core/index.js';
import { roc } from './indicators.js';
import { type Side, optionalSide, requireBars, requireFinite, requireSizer, requireSymbol, signalStrategy, strategyName } from './rules.js';
import { type RestorableStrategy, indicatorsState } from './snapshot.js';
import type { ExitsOptions } from './exits.js';
import type { StrategySizer } from './strategy.js';

/** Options of {@link momentumStrategy}. */
export interface MomentumOptions {
  symbol: string;
  /** Bars back for the rate of change. */
  lookback: number;
  /** Enter long when the rate of change (a fraction: 0.05 = 5 %) is above this. */
  entryThreshold: number;
  /** Exit a long when the rate of change is below this; <= entryThreshold. */
  exitThreshold: number;
  /** The sides it opens: `long`, `short` (the mirror rule only) or `both`. @default 'long' */
  side?: Side;
  /**
   * Stop-loss, take-profit and trailing stop attached to every entry, long or short (see `ExitsOptions`).
   * @default none
   */
  exits?: ExitsOptions;
  /** Units to buy (or sell short) on entry. */
  sizing: StrategySizer;
  /** @default `momentum-<symbol>-<lookback>` */
  name?: string;
}

/**
 * Time-series momentum on closes (named `momentumStrategy` because `momentum` is the MOM indicator). With `r = close / close[lookback bars ago] − 1` (the rate of
 * change, a fraction; first defined at bar `lookback`, no trade before), on each bar:
 * - long and `r < exitThreshold`: market sell of the whole position, intent `exit-long`.
 * - short and `r > −exitThreshold`: market buy of the whole position, intent `exit-short`.
 * - then, if flat: `r > entryThreshold` gives a market buy of `sizing.quantity(close, equity)`
 *   units, intent `enter-long` (with `side` `long` or `both`); otherwise, with `side` `short` or
 *   `both`, `r < −entryThreshold` gives a market sell of that many, intent `enter-short`.
 * The rule reads levels, not crossings: a flat strategy enters on the first bar above the threshold.
 * @throws InvalidInputError naming the field for a bad symbol, lookback, threshold or sizer, or
 *   when `exitThreshold > entryThreshold`.
 */
export function momentumStrategy(options: MomentumOptions): RestorableStrategy {
  const symbol = requireSymbol('symbol', options.symbol);
  const lookback = requireBars('lookback', options.lookback);
  const entryThreshold = requireFinite('entryThreshold', options.entryThreshold);
  const exitThreshold = requireFinite('exitThreshold', options.exitThreshold);
  if (exitThreshold > entryThreshold) {
    throw new InvalidInputError('exitThreshold', `must be <= entryThreshold (${entryThreshold}), got ${exitThreshold}`);
  }
  const side = optionalSide(options.side);
  const sizing = requireSizer(options.sizing);
  const rateOfChange = roc(lookback);
  return signalStrategy({
    name: strategyName(options.name, `momentum-${symbol}-${lookback}`),
    symbol,
    sizing,
    side,
    exits: options.exits,
    warmUp: { field: 'lookback', value: lookback, bars: rateOfChange.warmupBars },
    snapshotSpec: { type: 'momentum', lookback },
    state: indicatorsState({ rateOfChange }),
    signals: (bar) => {
      const r = rateOfChange.update(bar.close);
      if (r === undefined) return undefined;
      return { enterLong: r > entryThreshold, exitLong: r < exitThreshold, enterShort: r < -entryThreshold, exitShort: r > -exitThreshold };
    },
  });
}
