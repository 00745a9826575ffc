import { describe, expect, it } from 'vitest';
import { type Bar, findGaps } from '../market/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import { TradingSession } from './session.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2023, 0, 2);
const bar = (day: number, open: number, high: number, low: number, close: number): Bar => ({ symbol: 'X', timeMs: T0 + day * DAY, open, high, low, close, volume: 1000 });
/** Five daily bars (Monday to Friday), 24 days without any, then two more: a gap after day 4. */
const BARS: readonly Bar[] = [
  bar(0, 10, 11, 9, 10),
  bar(1, 10.5, 12, 10, 11.5),
  bar(2, 11.6, 12.5, 11, 12),
  bar(3, 12, 13, 11.5, 12.5),
  bar(4, 12.4, 13, 12, 12.6),
  bar(28, 15, 16, 14, 15.5),
  bar(29, 15.5, 16, 15, 15.8),
];
const buy = (quantity: number, intent: StrategyIntent['intent']): StrategyIntent => ({ strategy: 's', symbol: 'X', side: 'buy', quantity, type: 'market', intent });

/** Buys 10 on day 0 (filled at day 1's open) and 5 more on day 4, the last bar before the gap. */
function run(flatten: boolean): ReturnType<TradingSession['settle']>['report'] {
  const session = new TradingSession({ swarm: 't', symbols: ['X'], venue: { fees: { model: 'fixed', amountPerOrder: 1 } }, gaps: { found: findGaps(BARS), flatten } });
  BARS.forEach((step, i) => {
    session.open([step]);
    if (i === 0) session.submit([buy(10, 'enter-long')], i, [step]);
    if (i === 4) session.submit([buy(5, 'scale-in')], i, [step]);
    session.close([step]);
  });
  return session.settle({ endOfData: 'mark-to-market' }).report;
}

describe('TradingSession across a gap in the data', () => {
  it('with flatten: closes the position at the close of the last bar before the gap and cancels the order decided there (checked by hand)', () => {
    const report = run(true);
    expect(report.gaps).toEqual([{ symbol: 'X', lastBeforeMs: T0 + 4 * DAY, firstAfterMs: T0 + 28 * DAY, durationMs: 24 * DAY, usualIntervalMs: DAY, flattened: 10, cancelledOrders: 1 }]);
    expect(report.fills).toEqual([
      { clientOrderId: expect.stringMatching(/^t:s:0:X:/) as unknown, symbol: 'X', side: 'buy', quantity: 10, price: 10.5, fee: 1, timeMs: T0 + DAY },
      { clientOrderId: `gap:X:${T0 + 4 * DAY}`, symbol: 'X', side: 'sell', quantity: 10, price: 12.6, fee: 1, timeMs: T0 + 4 * DAY },
    ]);
    // 100,000 − 10 × 10.50 − 1 + 10 × 12.60 − 1: the order for 5 never filled after the gap.
    expect(report.finalCash).toBeCloseTo(100_019, 9);
    expect(report.openPositions).toEqual([]);
    expect(report.trades).toHaveLength(1);
  });

  it('without flatten: reports the gap and holds across it; the order decided before it fills at the first open after it', () => {
    const report = run(false);
    expect(report.gaps).toEqual([{ symbol: 'X', lastBeforeMs: T0 + 4 * DAY, firstAfterMs: T0 + 28 * DAY, durationMs: 24 * DAY, usualIntervalMs: DAY, flattened: null, cancelledOrders: null }]);
    expect(report.fills.map((fill) => [fill.side, fill.quantity, fill.price, fill.timeMs])).toEqual([
      ['buy', 10, 10.5, T0 + DAY],
      ['buy', 5, 15, T0 + 28 * DAY],
    ]);
    expect(report.openPositions).toEqual([{ symbol: 'X', quantity: 15 }]);
  });

  it('with no gaps given, reports none', () => {
    const session = new TradingSession({ swarm: 't', symbols: ['X'] });
    session.open([BARS[0] as Bar]);
    expect(session.settle().report.gaps).toEqual([]);
  });
});
