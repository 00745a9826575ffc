import { describe, expect, it } from 'vitest';
import type { Bar } from '../market/index.js';
import { EndOfDataRule, type Portfolio, createPortfolio, settleEndOfData } from './index.js';

const DAY = 86_400_000;
const lastBars: Bar[] = [
  { symbol: 'AAA', timeMs: DAY, open: 104, high: 109, low: 103, close: 108, volume: 1_000 },
  { symbol: 'BBB', timeMs: DAY, open: 48, high: 49, low: 45, close: 46, volume: 1_000 },
];

/** Long 10 AAA at 100 and short 5 BBB at 50, no fees, marked at the last bar. */
function openBook(): Portfolio {
  const portfolio = createPortfolio({ initialCash: 10_000 });
  portfolio.apply({ clientOrderId: 'a', symbol: 'AAA', side: 'buy', quantity: 10, price: 100, fee: 0, timeMs: 0 });
  portfolio.apply({ clientOrderId: 'b', symbol: 'BBB', side: 'sell', quantity: 5, price: 50, fee: 0, timeMs: 0 });
  portfolio.markToMarket(0, { AAA: 100, BBB: 50 });
  portfolio.markToMarket(DAY, lastBars);
  return portfolio;
}

describe('settleEndOfData', () => {
  it('liquidates at the last open', () => {
    const portfolio = openBook();
    const settlement = settleEndOfData(portfolio, lastBars, { rule: EndOfDataRule.liquidateAtOpen });
    // AAA: 10 × (104 − 100) = 40; BBB: 5 × (50 − 48) = 10.
    expect(settlement.fills).toEqual([
      { clientOrderId: `end-of-data:AAA:${DAY}`, symbol: 'AAA', side: 'sell', quantity: 10, price: 104, fee: 0, timeMs: DAY },
      { clientOrderId: `end-of-data:BBB:${DAY}`, symbol: 'BBB', side: 'buy', quantity: 5, price: 48, fee: 0, timeMs: DAY },
    ]);
    expect(portfolio.equity).toBe(10_050);
    expect(portfolio.realisedPnl).toBe(50);
    expect(portfolio.openPositions()).toEqual([]);
    expect(portfolio.trades().map((trade) => [trade.symbol, trade.netPnl])).toEqual([['AAA', 40], ['BBB', 10]]);
    // The point already recorded at the last bar is replaced by the settled one.
    expect(portfolio.equityCurve()).toHaveLength(2);
    expect(settlement.finalPoint).toEqual({
      timeMs: DAY, cash: 10_050, equity: 10_050, realisedPnl: 50, unrealisedPnl: 0, grossExposure: 0, openPositions: 0,
    });
  });

  it('liquidates at the last close, charging the fee model', () => {
    const portfolio = openBook();
    settleEndOfData(portfolio, lastBars, { rule: 'liquidate-at-close', feeForFill: (quantity, price) => quantity * price * 0.001 });
    // AAA: 10 × (108 − 100) = 80, fee 1.08; BBB: 5 × (50 − 46) = 20, fee 0.23.
    expect(portfolio.equity).toBeCloseTo(10_100 - 1.31, 10);
    expect(portfolio.trades().map((trade) => trade.exitPrice)).toEqual([108, 46]);
    expect(portfolio.openPositions()).toEqual([]);
  });

  it('marks open positions to market at the last close by default', () => {
    const portfolio = openBook();
    const settlement = settleEndOfData(portfolio, lastBars);
    expect(settlement.rule).toBe('mark-to-market');
    expect(settlement.fills).toEqual([]);
    expect(portfolio.trades()).toEqual([]);
    expect(settlement.finalPoint).toEqual({
      timeMs: DAY, cash: 9_250, equity: 10_100, realisedPnl: 0, unrealisedPnl: 100, grossExposure: 1_310, openPositions: 2,
    });
  });

  it('refuses to settle a position that has no last bar, changing nothing', () => {
    const portfolio = openBook();
    expect(() => settleEndOfData(portfolio, [lastBars[0] as Bar], { rule: 'liquidate-at-close' })).toThrow(/no bar for BBB/);
    expect(portfolio.openPositions()).toHaveLength(2);
    expect(() => settleEndOfData(portfolio, lastBars, { rule: 'sell-everything' as EndOfDataRule })).toThrow(
      expect.objectContaining({ field: 'rule' }) as Error,
    );
  });
});
