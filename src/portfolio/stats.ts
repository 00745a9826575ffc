import { InvalidInputError } from '../core/index.js';
import type { EquityPoint, Trade } from './portfolio.js';

/** Options of {@link performanceStats}. */
export interface PerformanceStatsOptions {
  /** Equity points in a year: 252 for daily bars, 252 × 390 for US-equity minutes. */
  periodsPerYear: number;
  /** Annual risk-free rate as a fraction (0.02 = 2 %). @default 0 */
  riskFreeRatePerYear?: number;
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
  /** `mean(e) / sampleStdDev(e) × √periodsPerYear`; `null` with fewer than 2 returns or zero deviation. */
  readonly sharpe: number | null;
  /** `mean(e) / downsideDeviation × √periodsPerYear`; `null` with no returns or no period below target. */
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
 * - Max drawdown = `max_i (P_i − E_i) / P_i`, `P_i = max_{j ≤ i} E_j`.
 * @throws InvalidInputError when `periodsPerYear` is not > 0, the rate is not finite, the curve is
 *   empty, or an equity value is not finite and > 0 where a return needs it.
 */
export function performanceStats(
  equityCurve: readonly EquityPoint[],
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
  const first = equityCurve[0];
  const last = equityCurve.at(-1);
  if (first === undefined || last === undefined) {
    throw new InvalidInputError('equityCurve', 'must hold at least one point; mark the portfolio to market at least once');
  }
  const equities = equityCurve.map((point) => point.equity);
  equities.slice(0, -1).forEach((equity, i) => {
    if (!Number.isFinite(equity) || equity <= 0) {
      throw new InvalidInputError(`equityCurve[${i}].equity`, `must be a finite number > 0 to compute a return, got ${equity}`);
    }
  });

  const periods = equities.length - 1;
  const riskFreePerPeriod = riskFreeRatePerYear / periodsPerYear;
  const excess: number[] = [];
  for (let i = 1; i < equities.length; i++) {
    excess.push((equities[i] as number) / (equities[i - 1] as number) - 1 - riskFreePerPeriod);
  }

  const totalReturn = last.equity / first.equity - 1;
  const annualisedReturn =
    periods === 0 || 1 + totalReturn < 0 ? null : Math.pow(1 + totalReturn, periodsPerYear / periods) - 1;

  const scale = Math.sqrt(periodsPerYear);
  const meanExcess = excess.length === 0 ? 0 : sum(excess) / excess.length;
  let sharpe: number | null = null;
  if (excess.length >= 2) {
    const deviation = Math.sqrt(sum(excess.map((e) => (e - meanExcess) ** 2)) / (excess.length - 1));
    if (deviation > 0) sharpe = (meanExcess / deviation) * scale;
  }
  let sortino: number | null = null;
  if (excess.length >= 1) {
    const downside = Math.sqrt(sum(excess.map((e) => Math.min(0, e) ** 2)) / excess.length);
    if (downside > 0) sortino = (meanExcess / downside) * scale;
  }

  const drawdown = maxDrawdownOf(equities);
  const wins = trades.filter((trade) => trade.netPnl > 0);
  const losses = trades.filter((trade) => trade.netPnl < 0);
  const grossLoss = -sum(losses.map((trade) => trade.netPnl));
  const invested = equityCurve.filter((point) => point.openPositions > 0).length;

  return Object.freeze({
    initialEquity: first.equity,
    finalEquity: last.equity,
    periods,
    totalReturn,
    annualisedReturn,
    sharpe,
    sortino,
    maxDrawdown: drawdown.fraction,
    maxDrawdownDurationPeriods: drawdown.durationPeriods,
    tradeCount: trades.length,
    winRate: trades.length === 0 ? null : wins.length / trades.length,
    profitFactor: grossLoss === 0 ? null : sum(wins.map((trade) => trade.netPnl)) / grossLoss,
    exposure: invested / equityCurve.length,
  });
}

function maxDrawdownOf(equities: readonly number[]): { fraction: number; durationPeriods: number } {
  let peak = -Infinity;
  let peakIndex = 0;
  let fraction = 0;
  let durationPeriods = 0;
  equities.forEach((equity, i) => {
    if (equity >= peak) {
      // A recovery ends the stretch at this point; `i − peakIndex` is its length (0 at a new high).
      if (i > 0 && (equities[i - 1] as number) < peak) durationPeriods = Math.max(durationPeriods, i - peakIndex);
      peak = equity;
      peakIndex = i;
      return;
    }
    fraction = Math.max(fraction, (peak - equity) / peak);
    durationPeriods = Math.max(durationPeriods, i - peakIndex);
  });
  return { fraction, durationPeriods };
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
