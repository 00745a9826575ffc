import { getAverage, getStandardDeviation } from 'trading-signals';
import { InvalidInputError, toJsonNumbers } from '../core/index.js';
import { optionalBoolean, requireBars, requireNonNegative, requirePositive, requireReachableBand, requireSizer, requireSymbol, strategyName } from './rules.js';
import type { RestorableStrategy } from './snapshot.js';
import type { StrategySizer } from './strategy.js';
import { requireDistinctLegs, twoLegStrategy } from './two-leg.js';

/** Options of {@link pairs}. */
export interface PairsOptions {
  /** The dependent leg: the OLS regresses A on B. */
  symbolA: string;
  symbolB: string;
  /** Time steps (with bars of both symbols) of the regression and of the z-score; >= 2. */
  lookback: number;
  /** A fixed hedge ratio (units of B per unit of A), > 0, instead of the rolling OLS slope. */
  hedgeRatio?: number;
  /** Enter when |z| > entryZ; > exitZ. */
  entryZ: number;
  /** Exit when the z-score is back within exitZ of 0 (or beyond it); >= 0. */
  exitZ: number;
  /** Sizes one unit of A plus its hedge (`closeA + hedgeRatio × closeB`): the gross notional of both legs. */
  sizing: StrategySizer;
  /** Round the B leg (`hedgeRatio × units of A`) down to whole units. @default false */
  wholeUnits?: boolean;
  /** @default `pairs-<symbolA>-<symbolB>-<lookback>` */
  name?: string;
}

/**
 * Statistical-arbitrage pairs trading on closes. At each time step where both symbols have a bar
 * (it acts on the second of the two to arrive), over the last `lookback` such steps `(a_i, b_i)`,
 * the current one included (no trade before `lookback` of them):
 * - hedge ratio `h` = `hedgeRatio`, or the OLS slope of a on b: `Σ(a−ā)(b−b̄) / Σ(b−b̄)²`;
 * - spread `s_i = a_i − h·b_i` (with the current `h`), `z = (s_now − mean(s)) / sd(s)` (population
 *   standard deviation); no trade when `sd(s) = 0` or every `b_i` is equal.
 * Then (long spread = long A, short B):
 * - long spread and `z > −exitZ`: close both legs; short spread and `z < exitZ`: close both legs
 *   (intents `exit-long-spread` / `exit-short-spread`). So |z| < exitZ exits, and so does a jump past it.
 * - then, if flat and `h > 0`: `z < −entryZ` (A cheap) buys A and sells B (`enter-long-spread`);
 *   `z > entryZ` sells A and buys B (`enter-short-spread`). Quantities: `qA` from `sizing` on
 *   `closeA + h·closeB`, `qB = h·qA`. Both legs' intents are returned on the same bar.
 * @throws InvalidInputError naming the field for a bad symbol, lookback, threshold, hedge ratio or sizer.
 */
export function pairs(options: PairsOptions): RestorableStrategy {
  const symbolA = requireSymbol('symbolA', options.symbolA);
  const symbolB = requireSymbol('symbolB', options.symbolB);
  requireDistinctLegs(symbolA, symbolB);
  const lookback = requireBars('lookback', options.lookback, 2);
  const fixedRatio = options.hedgeRatio === undefined ? undefined : requirePositive('hedgeRatio', options.hedgeRatio);
  const exitZ = requireNonNegative('exitZ', options.exitZ);
  const entryZ = requireReachableBand('entryZ', requirePositive('entryZ', options.entryZ), 'lookback', lookback, { one: 'spread', many: 'steps' });
  if (entryZ <= exitZ) throw new InvalidInputError('entryZ', `must be > exitZ (${exitZ}), got ${entryZ}`);
  const sizing = requireSizer(options.sizing);
  const wholeUnits = optionalBoolean('wholeUnits', options.wholeUnits, false);
  const windowA: number[] = [];
  const windowB: number[] = [];
  return twoLegStrategy({
    name: strategyName(options.name, `pairs-${symbolA}-${symbolB}-${lookback}`),
    symbolA,
    symbolB,
    sizing,
    wholeUnits,
    warmUp: { field: 'lookback', value: lookback, bars: lookback },
    snapshotSpec: { type: 'pairs', lookback },
    state: {
      save: () => ({ closesA: toJsonNumbers(windowA), closesB: toJsonNumbers(windowB) }),
      prepare: (state) => {
        const closesA = state.numbers('closesA', { max: lookback });
        const closesB = state.numbers('closesB', { min: closesA.length, max: closesA.length });
        return () => {
          windowA.splice(0, windowA.length, ...closesA);
          windowB.splice(0, windowB.length, ...closesB);
        };
      },
    },
    signals: (closeA, closeB) => {
      windowA.push(closeA);
      windowB.push(closeB);
      if (windowA.length > lookback) {
        windowA.shift();
        windowB.shift();
      }
      if (windowA.length < lookback) return undefined;
      const hedgeRatio = fixedRatio ?? olsSlope(windowA, windowB);
      if (hedgeRatio === undefined) return undefined;
      const spreads = windowA.map((a, i) => a - hedgeRatio * (windowB[i] as number));
      const mean = getAverage(spreads);
      const deviation = getStandardDeviation(spreads, mean);
      if (!(deviation > 0)) return undefined;
      const z = ((spreads.at(-1) as number) - mean) / deviation;
      return { hedgeRatio, signals: { enterLong: z < -entryZ, exitLong: z > -exitZ, enterShort: z > entryZ, exitShort: z < exitZ } };
    },
  });
}

/** Slope of the least-squares line of `y` on `x`; `undefined` when `x` does not vary. */
function olsSlope(y: readonly number[], x: readonly number[]): number | undefined {
  const meanX = getAverage(x as number[]);
  const meanY = getAverage(y as number[]);
  let covariance = 0;
  let variance = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = (x[i] as number) - meanX;
    covariance += dx * ((y[i] as number) - meanY);
    variance += dx * dx;
  }
  return variance > 0 ? covariance / variance : undefined;
}
