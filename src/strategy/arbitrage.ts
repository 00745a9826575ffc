import { InvalidInputError } from '../core/index.js';
import { requireFinite, requireNonNegative, requireSizer, requireSymbol, strategyName } from './rules.js';
import type { RestorableStrategy } from './snapshot.js';
import type { StrategySizer } from './strategy.js';
import { requireDistinctLegs, twoLegStrategy } from './two-leg.js';

/** Options of {@link crossVenueArbitrage}. */
export interface CrossVenueArbitrageOptions {
  /** The asset on one venue, e.g. `BTC@alpha`. */
  symbolA: string;
  /** The same asset on the other venue, e.g. `BTC@beta`. */
  symbolB: string;
  /** Edge (bps of the cheap price) required on top of fees to enter; >= 0. */
  minEdgeBps: number;
  /** Close when the edge of the held direction falls below this (bps; may be negative); < minEdgeBps. */
  exitEdgeBps: number;
  /** Fee per fill in bps of notional; a round trip is four fills (both legs in and out). @default 0 */
  feeBpsPerFill?: number;
  /** Sizes one unit on both venues (`closeA + closeB`): the gross notional of both legs. */
  sizing: StrategySizer;
  /** @default `arbitrage-<symbolA>-<symbolB>` */
  name?: string;
}

/**
 * Cross-venue arbitrage: the same asset quoted on two venues as two symbols. At each time step where
 * both have a bar (it acts on the second to arrive), with closes `a`, `b`:
 * - edge of buying A and selling B: `eAB = (b − a) / a × 10_000` bps; the reverse: `eBA = (a − b) / b × 10_000`.
 * - entry threshold `T = minEdgeBps + 4 × feeBpsPerFill` (the fees of the whole round trip).
 * - held long A / short B and `eAB < exitEdgeBps`: close both legs (`exit-long-spread`); held short
 *   A / long B and `eBA < exitEdgeBps`: close both (`exit-short-spread`).
 * - then, if flat: `eAB > T` buys A and sells B (`enter-long-spread`); else `eBA > T` sells A and
 *   buys B (`enter-short-spread`), the same units on both legs: `sizing.quantity(a + b, equity)`.
 * No warm-up: the first step with both bars can trade.
 * @throws InvalidInputError naming the field for a bad symbol, edge, fee or sizer.
 */
export function crossVenueArbitrage(options: CrossVenueArbitrageOptions): RestorableStrategy {
  const symbolA = requireSymbol('symbolA', options.symbolA);
  const symbolB = requireSymbol('symbolB', options.symbolB);
  requireDistinctLegs(symbolA, symbolB);
  const minEdgeBps = requireNonNegative('minEdgeBps', options.minEdgeBps);
  const exitEdgeBps = requireFinite('exitEdgeBps', options.exitEdgeBps);
  if (exitEdgeBps >= minEdgeBps) throw new InvalidInputError('exitEdgeBps', `must be < minEdgeBps (${minEdgeBps}), got ${exitEdgeBps}`);
  const feeBpsPerFill = requireNonNegative('feeBpsPerFill', options.feeBpsPerFill ?? 0);
  const sizing = requireSizer(options.sizing);
  const threshold = minEdgeBps + 4 * feeBpsPerFill;
  return twoLegStrategy({
    name: strategyName(options.name, `arbitrage-${symbolA}-${symbolB}`),
    symbolA,
    symbolB,
    sizing,
    wholeUnits: false,
    // It keeps nothing but the legs' last bars.
    snapshotSpec: { type: 'cross-venue-arbitrage' },
    signals: (a, b) => {
      const edgeAB = ((b - a) / a) * 10_000;
      const edgeBA = ((a - b) / b) * 10_000;
      return {
        hedgeRatio: 1,
        signals: { enterLong: edgeAB > threshold, exitLong: edgeAB < exitEdgeBps, enterShort: edgeBA > threshold, exitShort: edgeBA < exitEdgeBps },
      };
    },
  });
}
