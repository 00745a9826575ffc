import { describe, expect, it } from 'vitest';
import { EquityRecorder } from './curve.js';
import { createPortfolio, performanceStats } from './index.js';

/** Records `count` points at times 0, 1, …; the values are derived from the time so they can be checked. */
function recorded(count: number): EquityRecorder {
  const recorder = new EquityRecorder();
  for (let t = 0; t < count; t++) recorder.record(t, 1000 - t, 1000 + t / 3, -t, t / 7, 2 * t, t % 3);
  return recorder;
}

describe('EquityRecorder and EquitySeries', () => {
  it('keeps every field of every point, across storage chunks', () => {
    const series = recorded(10_000).series();
    expect(series.length).toBe(10_000);
    for (const t of [0, 1, 4095, 4096, 8191, 8192, 9999]) {
      expect(series.point(t)).toEqual({ timeMs: t, cash: 1000 - t, equity: 1000 + t / 3, realisedPnl: -t, unrealisedPnl: t / 7, grossExposure: 2 * t, openPositions: t % 3 });
      expect(series.equityAt(t)).toBe(1000 + t / 3);
      expect(series.openPositionsAt(t)).toBe(t % 3);
    }
    expect(series.toArray().map((point) => point.timeMs)).toEqual(Array.from({ length: 10_000 }, (_, t) => t));
    expect(() => series.point(10_000)).toThrow(RangeError);
  });

  it('replaces the last point when recorded again at its time', () => {
    const recorder = new EquityRecorder();
    expect(recorder.lastTimeMs).toBeUndefined();
    recorder.record(5, 1, 2, 3, 4, 5, 1);
    recorder.record(5, 10, 20, 30, 40, 50, 0);
    expect(recorder.lastTimeMs).toBe(5);
    expect(recorder.series().toArray()).toEqual([{ timeMs: 5, cash: 10, equity: 20, realisedPnl: 30, unrealisedPnl: 40, grossExposure: 50, openPositions: 0 }]);
    expect(recorder.lastPoint()).toEqual({ timeMs: 5, cash: 10, equity: 20, realisedPnl: 30, unrealisedPnl: 40, grossExposure: 50, openPositions: 0 });
  });

  it('gives series that later records do not change, including a replaced last point', () => {
    for (const count of [3, 4096, 4097]) {
      const recorder = recorded(count);
      const before = recorder.series();
      const points = before.toArray();
      recorder.record(count - 1, -1, -1, -1, -1, -1, -1);
      recorder.record(count, -2, -2, -2, -2, -2, -2);
      expect(before.toArray()).toEqual(points);
      const after = recorder.series();
      expect(after.length).toBe(count + 1);
      expect(after.point(count - 1).equity).toBe(-1);
    }
  });
});

describe('EquityRecorder segments (cash, realised PnL and open positions kept once per run of points)', () => {
  it('reads back every field when they change only now and then, in order and out of order, and after replaced points', () => {
    const recorder = new EquityRecorder();
    const expected: ReturnType<EquityRecorder['lastPoint']>[] = [];
    for (let t = 0; t < 9000; t++) {
      // Cash and open positions change every 700 points, realised PnL every 1,100: runs of points that share them.
      const point = { timeMs: t, cash: 1000 + Math.floor(t / 700), equity: 1000 + t / 3, realisedPnl: -Math.floor(t / 1100), unrealisedPnl: t / 7, grossExposure: 2 * t, openPositions: Math.floor(t / 700) % 2 };
      recorder.record(t, point.cash, point.equity, point.realisedPnl, point.unrealisedPnl, point.grossExposure, point.openPositions);
      if (t % 700 === 0) {
        // Recorded again at its time: first as the point before it (merging into its run), then as itself.
        const before = expected.at(-1) ?? point;
        recorder.record(t, before.cash, point.equity, before.realisedPnl, point.unrealisedPnl, point.grossExposure, before.openPositions);
        expect(recorder.lastPoint()).toEqual({ ...point, cash: before.cash, realisedPnl: before.realisedPnl, openPositions: before.openPositions });
        recorder.record(t, point.cash, point.equity, point.realisedPnl, point.unrealisedPnl, point.grossExposure, point.openPositions);
      }
      expected.push(point);
      expect(recorder.lastPoint()).toEqual(point);
    }
    const series = recorder.series();
    expect(series.toArray()).toEqual(expected);
    for (const t of [8999, 0, 4200, 699, 700, 701, 1099, 1100, 3, 8400]) {
      expect(series.point(t)).toEqual(expected[t]);
      expect(series.openPositionsAt(t)).toBe(expected[t]?.openPositions);
    }
  });

  it('keeps 0 and −0 apart, as recorded', () => {
    const recorder = new EquityRecorder();
    recorder.record(0, 0, 0, 0, 0, 0, 0);
    recorder.record(1, -0, 0, -0, 0, 0, 0);
    expect(Object.is(recorder.series().point(1).cash, -0)).toBe(true);
    expect(Object.is(recorder.series().point(0).realisedPnl, 0)).toBe(true);
  });
});

describe('Portfolio equity series', () => {
  it('is what markToMarket records, and mark answers the equity markToMarket would', () => {
    const marked = createPortfolio({ initialCash: 1000 });
    const fast = createPortfolio({ initialCash: 1000 });
    for (const portfolio of [marked, fast]) portfolio.apply({ clientOrderId: 'a', symbol: 'AAA', side: 'buy', quantity: 3, price: 10, fee: 0.5, timeMs: 0 });
    const closes = [10.1, 9.7, 12.3, 12.3, 8.9];
    closes.forEach((close, t) => {
      const point = marked.markToMarket(t, { AAA: close });
      expect(fast.mark(t, [{ symbol: 'AAA', timeMs: t, open: close, high: close, low: close, close, volume: 1 }])).toBe(point.equity);
    });
    expect(fast.equityCurve()).toEqual(marked.equityCurve());
    expect(marked.equitySeries().toArray()).toEqual(marked.equityCurve());
  });

  it('gives performanceStats the same statistics as the points themselves', () => {
    const portfolio = createPortfolio({ initialCash: 1000 });
    portfolio.apply({ clientOrderId: 'a', symbol: 'AAA', side: 'buy', quantity: 3, price: 10, fee: 0, timeMs: 0 });
    for (let t = 0; t < 500; t++) portfolio.markToMarket(t, { AAA: 10 + Math.sin(t / 9) * 3 + t / 100 });
    const options = { periodsPerYear: 252, riskFreeRatePerYear: 0.02 };
    expect(performanceStats(portfolio.equitySeries(), portfolio.trades(), options)).toEqual(performanceStats(portfolio.equityCurve(), portfolio.trades(), options));
  });
});
