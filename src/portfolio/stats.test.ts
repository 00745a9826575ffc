import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { type EquityPoint, type Trade, performanceStats } from './index.js';

function curve(equities: readonly number[], openPositions: readonly number[] = []): EquityPoint[] {
  return equities.map((equity, i) => ({
    timeMs: i, cash: equity, equity, realisedPnl: 0, unrealisedPnl: 0, grossExposure: 0, openPositions: openPositions[i] ?? 0,
  }));
}

function trade(netPnl: number): Trade {
  return {
    symbol: 'AAA', direction: 'long', quantity: 1, entryTimeMs: 0, exitTimeMs: 1, entryPrice: 100, exitPrice: 100 + netPnl,
    grossPnl: netPnl, fees: 0, netPnl, returnFraction: netPnl / 100, fillCount: 2,
  };
}

describe('performanceStats', () => {
  /*
   * Equity 100, 110, 99, 108.9, 119.79 → returns r = 0.1, −0.1, 0.1, 0.1 (n = 4); periodsPerYear = 4, √4 = 2.
   * mean = 0.2 / 4 = 0.05; deviations 0.05, −0.15, 0.05, 0.05; Σ dev² = 3 × 0.0025 + 0.0225 = 0.03;
   * sample variance = 0.03 / 3 = 0.01 → s = 0.1; Sharpe = 0.05 / 0.1 × 2 = 1.
   * Downside (target 0): Σ min(0, r)² = 0.01; DD = √(0.01 / 4) = 0.05; Sortino = 0.05 / 0.05 × 2 = 2.
   * Total return = 119.79 / 100 − 1 = 0.1979; annualised over 4 periods with 4 per year = 0.1979.
   * Drawdown: peak 110 (index 1), trough 99 → 11 / 110 = 0.1; back above 110 at index 4 → 3 periods.
   * Trades net 10, −5, 20, 0 → win rate 2 / 4 = 0.5, profit factor 30 / 5 = 6.
   * Open positions 0, 1, 1, 0, 0 → exposure 2 / 5 = 0.4.
   */
  const equities = [100, 110, 99, 108.9, 119.79];
  const trades = [trade(10), trade(-5), trade(20), trade(0)];

  it('matches the hand-computed numbers', () => {
    const stats = performanceStats(curve(equities, [0, 1, 1, 0, 0]), trades, { periodsPerYear: 4 });
    expect(stats.initialEquity).toBe(100);
    expect(stats.finalEquity).toBe(119.79);
    expect(stats.periods).toBe(4);
    expect(stats.totalReturn).toBeCloseTo(0.1979, 12);
    expect(stats.annualisedReturn).toBeCloseTo(0.1979, 12);
    expect(stats.sharpe).toBeCloseTo(1, 12);
    expect(stats.sortino).toBeCloseTo(2, 12);
    expect(stats.maxDrawdown).toBeCloseTo(0.1, 12);
    expect(stats.maxDrawdownDurationPeriods).toBe(3);
    expect(stats.tradeCount).toBe(4);
    expect(stats.winRate).toBe(0.5);
    expect(stats.profitFactor).toBe(6);
    expect(stats.exposure).toBe(0.4);
  });

  it('subtracts a simple per-period risk-free rate', () => {
    // rf = 0.04 / 4 = 0.01 → excess 0.09, −0.11, 0.09, 0.09: mean 0.04, s still 0.1 → Sharpe 0.04 / 0.1 × 2 = 0.8.
    // DD = √(0.11² / 4) = 0.055 → Sortino = 0.04 / 0.055 × 2 = 16 / 11.
    const stats = performanceStats(curve(equities), [], { periodsPerYear: 4, riskFreeRatePerYear: 0.04 });
    expect(stats.sharpe).toBeCloseTo(0.8, 12);
    expect(stats.sortino).toBeCloseTo(16 / 11, 12);
  });

  it('geometric convention: compounded annual return over compounded annual volatility, and over annualised downside', () => {
    // Same equities: A = 1.1979^(4/4) − 1 = 0.1979 (g = 1.1979^(1/4) − 1, so (1 + g)² = √1.1979 = 1.09448618).
    // V² = (s² + (1 + g)²)^4 − (1 + g)^8 = (0.01 + 1.09448618)^4 − 1.1979² = 1.48813094 − 1.43496441 = 0.05316653
    // → V = 0.23057868; Sharpe = 0.1979 / 0.23057868 = 0.85827536.
    // Downside (target 0) √(0.1² / 4) × √4 = 0.1 → Sortino = 0.1979 / 0.1 = 1.979.
    const stats = performanceStats(curve(equities), [], { periodsPerYear: 4, convention: 'geometric' });
    expect(stats.convention).toBe('geometric');
    expect(stats.sharpe).toBeCloseTo(0.85827536, 8);
    expect(stats.sortino).toBeCloseTo(1.979, 12);
    // A 4 % annual risk-free rate comes off the annual return: (0.1979 − 0.04) / V and (0.1979 − 0.04) / 0.1.
    const withRate = performanceStats(curve(equities), [], { periodsPerYear: 4, convention: 'geometric', riskFreeRatePerYear: 0.04 });
    expect(withRate.sharpe).toBeCloseTo(0.1579 / 0.23057868, 8);
    expect(withRate.sortino).toBeCloseTo(1.579, 12);
    // The default is the arithmetic convention, and says so.
    expect(performanceStats(curve(equities), [], { periodsPerYear: 4 }).convention).toBe('arithmetic');
  });

  it('geometric convention: null where a ratio is undefined', () => {
    // Returns 0.1, 0.1: no deviation, no period below 0.
    expect(performanceStats(curve([100, 110, 121]), [], { periodsPerYear: 252, convention: 'geometric' })).toMatchObject({ sharpe: null, sortino: null });
    // A wiped-out account has no compounded return.
    expect(performanceStats(curve([100, 50, 0]), [], { periodsPerYear: 252, convention: 'geometric' })).toMatchObject({ sharpe: null, sortino: null });
    expect(() => performanceStats(curve([100]), [], { periodsPerYear: 1, convention: 'log' as never })).toThrow(expect.objectContaining({ field: 'convention' }) as Error);
  });

  it('counts an unrecovered drawdown to the end and annualises geometrically', () => {
    // 100, 110, 99, 108.9: still below 110 at the end → 2 periods; (1.089)^(4/3) − 1.
    const stats = performanceStats(curve([100, 110, 99, 108.9]), [], { periodsPerYear: 4 });
    expect(stats.maxDrawdownDurationPeriods).toBe(2);
    expect(stats.annualisedReturn).toBeCloseTo(Math.pow(1.089, 4 / 3) - 1, 12);
    // returns 0.1, −0.1, 0.1: Sharpe = (1/30) / (2√3/30) × 2 = 1/√3; Sortino = (1/30) / √(0.01/3) × 2 = 2/√3.
    expect(stats.sharpe).toBeCloseTo(1 / Math.sqrt(3), 12);
    expect(stats.sortino).toBeCloseTo(2 / Math.sqrt(3), 12);
  });

  it('gives null where a ratio is undefined', () => {
    const flat = performanceStats(curve([100, 100, 100]), [trade(5)], { periodsPerYear: 252 });
    expect(flat).toMatchObject({
      totalReturn: 0, sharpe: null, sortino: null, maxDrawdown: 0, maxDrawdownDurationPeriods: 0, winRate: 1, profitFactor: null, exposure: 0,
    });
    const single = performanceStats(curve([100]), [], { periodsPerYear: 252 });
    expect(single).toMatchObject({ periods: 0, annualisedReturn: null, sharpe: null, sortino: null, winRate: null });
  });

  it('rejects bad input, naming the field', () => {
    expect(() => performanceStats([], [], { periodsPerYear: 252 })).toThrow(expect.objectContaining({ field: 'equityCurve' }) as Error);
    expect(() => performanceStats(curve([100]), [], { periodsPerYear: 0 })).toThrow(InvalidInputError);
    expect(() => performanceStats(curve([100, 0, 10]), [], { periodsPerYear: 1 })).toThrow(
      expect.objectContaining({ field: 'equityCurve[1].equity' }) as Error,
    );
    // It says why such a curve happens and what to do.
    expect(() => performanceStats(curve([100, -5, 10]), [], { periodsPerYear: 1 })).toThrow(/got -5: the portfolio was worth nothing or less at that mark .*; trade smaller sizes or a shorter period$/);
  });
});
