import { InvalidInputError } from '../core/index.js';
import type { EquityPoint, EquityValues } from './curve.js';
import type { Trade } from './portfolio.js';

/**
 * How Sharpe and Sortino are computed (formulas in {@link performanceStats}):
 * - `arithmetic`: the mean of the periodic excess returns over their deviation, × √periodsPerYear.
 * - `geometric`: the compounded annual return less the risk-free rate, over the compounded annual
 *   volatility (Sharpe) or the annualised downside deviation (Sortino), the convention backtesting.py
 *   documents.
 */
export const RatioConvention = { arithmetic: 'arithmetic', geometric: 'geometric' } as const;
export type RatioConvention = (typeof RatioConvention)[keyof typeof RatioConvention];

/** Options of {@link performanceStats}. */
export interface PerformanceStatsOptions {
  /** Equity points in a year: 252 for daily bars, 252 × 390 for US-equity minutes. */
  periodsPerYear: number;
  /** Annual risk-free rate as a fraction (0.02 = 2 %). @default 0 */
  riskFreeRatePerYear?: number;
  /** How Sharpe and Sortino are computed. @default 'arithmetic' */
  convention?: RatioConvention;
}

/** Performance of one run. Ratios that are undefined for the data (division by zero) are `null`. */
export interface PerformanceStats {
  readonly initialEquity: number;
  readonly finalEquity: number;
  /** Return periods: equity points − 1. */
  readonly periods: number;
  /** `finalEquity / initialEquity − 1`. */
  readonly totalReturn: number;
  /** Geometric: `(1 + totalReturn)^(periodsPerYear / periods) − 1`; `null` with no periods or a wiped-out account. */
  readonly annualisedReturn: number | null;
  /** The convention of `sharpe` and `sortino`. */
  readonly convention: RatioConvention;
  /** In the convention's formula; `null` with fewer than 2 returns, zero deviation, or (geometric) a wiped-out account. */
  readonly sharpe: number | null;
  /** In the convention's formula; `null` with no returns, no period below target, or (geometric) a wiped-out account. */
  readonly sortino: number | null;
  /** Largest fall from a running peak, as a fraction of that peak (0.25 = 25 %); 0 when never below a peak. */
  readonly maxDrawdown: number;
  /** Longest stretch, in periods, from a peak to the first point back at or above it (or to the end). */
  readonly maxDrawdownDurationPeriods: number;
  readonly tradeCount: number;
  /** Trades with `netPnl > 0` / trades; `null` with no trades. */
  readonly winRate: number | null;
  /** `Σ winning netPnl / |Σ losing netPnl|`; `null` when there are no losing trades. */
  readonly profitFactor: number | null;
  /** Fraction of equity points with at least one open position. */
  readonly exposure: number;
}

/**
 * Statistics of an equity curve (one point per period, as recorded by `Portfolio.markToMarket`)
 * and the closed trades.
 *
 * With equity points `E_0 … E_n`: period returns `r_i = E_i / E_{i−1} − 1` (i = 1…n); per-period
 * risk-free rate `rf = riskFreeRatePerYear / periodsPerYear` (simple, not compounded); excess
 * returns `e_i = r_i − rf`.
 * - Sharpe = `mean(e) / s × √periodsPerYear`, `s` the **sample** standard deviation
 *   `√(Σ (e_i − mean(e))² / (n − 1))`.
 * - Sortino = `mean(e) / DD × √periodsPerYear`, downside deviation with target `rf` (0 by default)
 *   `DD = √(Σ min(0, e_i)² / n)`: every period counts in the denominator `n`, not only losing ones.
 *   (These two are the `arithmetic` convention, the default.)
 * - With `convention: 'geometric'`, `P = periodsPerYear`, `RF = riskFreeRatePerYear`:
 *   geometric mean return `g = (E_n / E_0)^(1/n) − 1`; annual return `A = (1 + g)^P − 1`; annual
 *   volatility `V = √((s_r² + (1 + g)²)^P − (1 + g)^(2P))`, `s_r²` the sample variance of the
 *   returns `r_i`; Sharpe = `(A − RF) / V`; Sortino = `(A − RF) / (√(Σ min(0, r_i)² / n) × √P)`
 *   (downside target 0).
 * - Max drawdown = `max_i (P_i − E_i) / P_i`, `P_i = max_{j ≤ i} E_j`.
 * @throws InvalidInputError when `periodsPerYear` is not > 0, the rate is not finite, the convention
 *   is unknown, the curve is empty, or an equity value is not finite and > 0 where a return needs it.
 */
export function performanceStats(
  equityCurve: readonly EquityPoint[] | EquityValues,
  trades: readonly Trade[],
  options: PerformanceStatsOptions,
): PerformanceStats {
  const { periodsPerYear } = options;
  const riskFreeRatePerYear = options.riskFreeRatePerYear ?? 0;
  if (!Number.isFinite(periodsPerYear) || periodsPerYear <= 0) {
    throw new InvalidInputError('periodsPerYear', `must be a finite number > 0, got ${periodsPerYear}`);
  }
  if (!Number.isFinite(riskFreeRatePerYear)) {
    throw new InvalidInputError('riskFreeRatePerYear', `must be a finite number, got ${riskFreeRatePerYear}`);
  }
  const convention = options.convention ?? RatioConvention.arithmetic;
  if (!Object.values(RatioConvention).includes(convention)) {
    throw new InvalidInputError('convention', `must be one of ${Object.values(RatioConvention).join(', ')}, got ${JSON.stringify(convention)}`);
  }
  const curve = valuesOf(equityCurve);
  const points = curve.length;
  if (points === 0) {
    throw new InvalidInputError('equityCurve', 'must hold at least one point; mark the portfolio to market at least once');
  }
  // Indexed loops over the curve itself rather than array methods or copies (a backtest's curve has a
  // point per bar, and a copy of a million equities is 8 MB of fresh memory, slower to get than the
  // values are to read again), fused where each sum still adds the same terms in the same order.
  const periods = points - 1;
  const riskFreePerPeriod = riskFreeRatePerYear / periodsPerYear;
  const drawdown = new DrawdownTracker();
  let excessSum = 0;
  let invested = 0;
  let previous = Number.NaN;
  for (let i = 0; i < points; i++) {
    const equity = curve.equityAt(i);
    if (i < periods && (!Number.isFinite(equity) || equity <= 0)) {
      throw new InvalidInputError(
        `equityCurve[${i}].equity`,
        `must be a finite number > 0 to compute a return, got ${equity}: the portfolio was worth nothing or less at that mark ` +
          '(it lost more than it held, as short or fixed-size positions can when prices move far); trade smaller sizes or a shorter period',
      );
    }
    drawdown.add(equity);
    if (curve.openPositionsAt(i) > 0) invested += 1;
    if (i > 0) excessSum += equity / previous - 1 - riskFreePerPeriod;
    previous = equity;
  }

  const initialEquity = curve.equityAt(0);
  const finalEquity = curve.equityAt(periods);
  const totalReturn = finalEquity / initialEquity - 1;
  const annualisedReturn =
    periods === 0 || 1 + totalReturn < 0 ? null : Math.pow(1 + totalReturn, periodsPerYear / periods) - 1;

  const scale = Math.sqrt(periodsPerYear);
  const meanExcess = periods === 0 ? 0 : excessSum / periods;
  let deviationSquares = 0;
  let downsideSquares = 0;
  for (let i = 1; i < points; i++) {
    // The excess return of the first pass, computed again from the same two equities.
    const e = curve.equityAt(i) / curve.equityAt(i - 1) - 1 - riskFreePerPeriod;
    deviationSquares += (e - meanExcess) ** 2;
    downsideSquares += Math.min(0, e) ** 2;
  }
  let sharpe: number | null = null;
  let sortino: number | null = null;
  if (convention === RatioConvention.arithmetic) {
    if (periods >= 2) {
      const deviation = Math.sqrt(deviationSquares / (periods - 1));
      if (deviation > 0) sharpe = (meanExcess / deviation) * scale;
    }
    if (periods >= 1) {
      const downside = Math.sqrt(downsideSquares / periods);
      if (downside > 0) sortino = (meanExcess / downside) * scale;
    }
  } else if (periods >= 1 && finalEquity > 0) {
    // The returns r_i differ from the excess returns by the per-period rate: their variance is the
    // same, but their downside (target 0) is summed from the returns themselves.
    const growth = Math.pow(finalEquity / initialEquity, 1 / periods);
    const annual = Math.pow(growth, periodsPerYear) - 1 - riskFreeRatePerYear;
    let rawDownsideSquares = 0;
    for (let i = 1; i < points; i++) rawDownsideSquares += Math.min(0, curve.equityAt(i) / curve.equityAt(i - 1) - 1) ** 2;
    if (periods >= 2) {
      const variance = deviationSquares / (periods - 1);
      const volatility = Math.sqrt(Math.pow(variance + growth * growth, periodsPerYear) - Math.pow(growth, 2 * periodsPerYear));
      if (volatility > 0) sharpe = annual / volatility;
    }
    const downside = Math.sqrt(rawDownsideSquares / periods) * scale;
    if (downside > 0) sortino = annual / downside;
  }

  const wins = trades.filter((trade) => trade.netPnl > 0);
  const losses = trades.filter((trade) => trade.netPnl < 0);
  const grossLoss = -sum(losses.map((trade) => trade.netPnl));

  return Object.freeze({
    initialEquity,
    finalEquity,
    periods,
    totalReturn,
    annualisedReturn,
    convention,
    sharpe,
    sortino,
    maxDrawdown: drawdown.fraction,
    maxDrawdownDurationPeriods: drawdown.durationPeriods,
    tradeCount: trades.length,
    winRate: trades.length === 0 ? null : wins.length / trades.length,
    profitFactor: grossLoss === 0 ? null : sum(wins.map((trade) => trade.netPnl)) / grossLoss,
    exposure: invested / points,
  });
}

/** An array of points read through {@link EquityValues}; a series is one already. */
function valuesOf(curve: readonly EquityPoint[] | EquityValues): EquityValues {
  if (!Array.isArray(curve)) return curve as EquityValues;
  const points = curve as readonly EquityPoint[];
  return {
    length: points.length,
    equityAt: (index) => (points[index] as EquityPoint).equity,
    openPositionsAt: (index) => (points[index] as EquityPoint).openPositions,
  };
}

/** The largest drawdown of equities fed in time order, and the longest stretch below a peak. */
class DrawdownTracker {
  fraction = 0;
  durationPeriods = 0;
  #peak = -Infinity;
  #peakIndex = 0;
  #index = 0;
  #previous = Number.NaN;

  add(equity: number): void {
    const i = this.#index++;
    const previous = this.#previous;
    this.#previous = equity;
    if (equity >= this.#peak) {
      // A recovery ends the stretch at this point; `i − peakIndex` is its length (0 at a new high).
      if (i > 0 && previous < this.#peak) this.durationPeriods = Math.max(this.durationPeriods, i - this.#peakIndex);
      this.#peak = equity;
      this.#peakIndex = i;
      return;
    }
    this.fraction = Math.max(this.fraction, (this.#peak - equity) / this.#peak);
    this.durationPeriods = Math.max(this.durationPeriods, i - this.#peakIndex);
  }
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
