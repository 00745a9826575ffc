import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import { type Bar, createSyntheticFeed, loadCsvBars } from '../market/index.js';
import { fixedQuantity, fractionOfEquity } from '../portfolio/index.js';
import { smaCrossover } from '../strategy/index.js';
import { clientOrderId } from '../venue/index.js';
import { CLOSES, DAY, OPENS, series } from '../../test/fixtures/bars.js';
import { type BacktestReport, runBacktest } from './index.js';

const strategy = (): ReturnType<typeof smaCrossover> =>
  smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(10), name: 'sma' });

describe('runBacktest, hand-checked', () => {
  it('next-open: buys 10 at bar 5 open 12.5, sells 10 at bar 7 open 7.5', () => {
    const { report, equityCurve } = runBacktest({ bars: series(OPENS, CLOSES), strategies: [strategy()], portfolio: { initialCash: 1000 }, swarm: 't' });
    expect(report.fills.map((f) => [f.side, f.quantity, f.price, f.timeMs / DAY])).toEqual([
      ['buy', 10, 12.5, 5],
      ['sell', 10, 7.5, 7],
    ]);
    expect(report.fills[0]?.clientOrderId).toBe(clientOrderId({ swarm: 't', role: 'sma', barIndex: 4, symbol: 'AAA', intent: 'enter-long' }));
    expect(report.fills[1]?.clientOrderId).toBe(clientOrderId({ swarm: 't', role: 'sma', barIndex: 6, symbol: 'AAA', intent: 'exit-long' }));
    // cash 1000 − 125 = 875 at bar 5; equity 875 + 130 = 1005, then 875 + 80 = 955; 875 + 75 = 950 at the end.
    expect(equityCurve.map((p) => p.equity)).toEqual([1000, 1000, 1000, 1000, 1000, 1005, 955, 950]);
    expect(report.finalCash).toBe(950);
    expect(report.finalEquity).toBe(950);
    expect(report.totalReturn).toBeCloseTo(-0.05, 12);
    expect(report.trades).toHaveLength(1);
    expect(report.trades[0]?.netPnl).toBe(-50);
    expect(report.winRate).toBe(0);
    expect(report.exposure).toBe(2 / 8);
    expect(report.maxDrawdown).toBeCloseTo((1005 - 950) / 1005, 12);
    expect(report.bars).toBe(8);
  });

  it('side both: each cross reverses; the two fills of a reversal (close the long, open the short) fill at the next open', () => {
    const both = smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, side: 'both', sizing: fixedQuantity(10), name: 'sma' });
    const { report, equityCurve } = runBacktest({ bars: series(OPENS, CLOSES), strategies: [both], portfolio: { initialCash: 1000 }, swarm: 't' });
    const id = (barIndex: number, intent: string): string => clientOrderId({ swarm: 't', role: 'sma', barIndex, symbol: 'AAA', intent });
    expect(report.fills.map((f) => [f.clientOrderId, f.side, f.quantity, f.price, f.timeMs / DAY])).toEqual([
      // bar 3 crosses below: short 10 at bar 4's open 11
      [id(3, 'enter-short'), 'sell', 10, 11, 4],
      // bar 4 crosses above: buy back 10, then buy 10 long, both at bar 5's open 12.5
      [id(4, 'exit-short'), 'buy', 10, 12.5, 5],
      [id(4, 'enter-long'), 'buy', 10, 12.5, 5],
      // bar 6 crosses below: sell the 10 held, then sell 10 short, both at bar 7's open 7.5
      [id(6, 'exit-long'), 'sell', 10, 7.5, 7],
      [id(6, 'enter-short'), 'sell', 10, 7.5, 7],
      // end of data: the short of 10 bought back at the last close 8
      [`end-of-data:AAA:${7 * DAY}`, 'buy', 10, 8, 7],
    ]);
    // cash 1000 + 110 = 1110 (short −10: equity 1110 − 120 = 990 at bar 4's close 12); 1110 − 250 = 860 (long 10:
    // 860 + 130 = 990, then 860 + 80 = 940); 860 + 150 = 1010 (short −10: 1010 − 80 = 930); bought back: 930.
    expect(equityCurve.map((p) => p.equity)).toEqual([1000, 1000, 1000, 1000, 990, 990, 940, 930]);
    expect(report.trades.map((t) => [t.direction, t.entryPrice, t.exitPrice, t.netPnl])).toEqual([
      ['short', 11, 12.5, -15],
      ['long', 12.5, 7.5, -50],
      ['short', 7.5, 8, -5],
    ]);
    expect(report.finalEquity).toBe(930);
  });

  it('sizeAt: sizing half the equity at the signal close buys 41 units; at the fill price, exactly one fewer (40)', () => {
    // Decided on bar 4 (close 12), filled at bar 5's open 12.5, with 1000 of equity (flat, all cash):
    // signal close: floor(0.5 × 1000 / 12) = floor(41.67) = 41; fill price: floor(0.5 × 1000 / 12.5) = 40.
    const half = (): ReturnType<typeof fractionOfEquity> => fractionOfEquity(0.5, { wholeUnits: true });
    const run = (fillPriceSizing?: Record<string, ReturnType<typeof fractionOfEquity>>): BacktestReport =>
      runBacktest({
        bars: series(OPENS, CLOSES),
        strategies: [smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: half(), name: 'sma' })],
        portfolio: { initialCash: 1000 },
        ...(fillPriceSizing === undefined ? {} : { fillPriceSizing }),
      }).report;
    const atClose = run();
    const atFill = run({ sma: half() });
    expect(atClose.fills.map((f) => [f.side, f.quantity, f.price])).toEqual([
      ['buy', 41, 12.5],
      ['sell', 41, 7.5],
    ]);
    expect(atFill.fills.map((f) => [f.side, f.quantity, f.price])).toEqual([
      ['buy', 40, 12.5],
      ['sell', 40, 7.5],
    ]);
    // 1000 − 41 × 12.5 + 41 × 7.5 = 795; 1000 − 40 × 12.5 + 40 × 7.5 = 800. The same order id: only its count changed.
    expect([atClose.finalEquity, atFill.finalEquity]).toEqual([795, 800]);
    expect(atFill.fills[0]?.clientOrderId).toBe(atClose.fills[0]?.clientOrderId);
  });

  it('sizeAt fill-price: equity at the fill bar\'s open, after slippage; nothing changes with close fills', () => {
    const half = fractionOfEquity(0.5, { wholeUnits: true });
    const strategies = (): Array<ReturnType<typeof smaCrossover>> => [smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: half, name: 'sma' })];
    // 100 bps of slippage: the buy fills at 12.5 × 1.01 = 12.625; floor(500 / 12.625) = floor(39.6) = 39.
    const slipped = runBacktest({ bars: series(OPENS, CLOSES), strategies: strategies(), portfolio: { initialCash: 1000 }, venue: { slippage: { model: 'bps', bps: 100 } }, fillPriceSizing: { sma: half } }).report;
    expect(slipped.fills[0]?.quantity).toBe(39);
    // Close fills: the fill price is the signal close 12, so the count stays 41.
    const closed = runBacktest({ bars: series(OPENS, CLOSES), strategies: strategies(), portfolio: { initialCash: 1000 }, venue: { fillAt: 'close' }, fillPriceSizing: { sma: half } }).report;
    expect(closed.fills[0]?.quantity).toBe(41);
  });

  it('tells each step\'s orders as the venue took them, through onOrders', () => {
    const told: Array<[number, string, string, number, string]> = [];
    const { report } = runBacktest({ bars: series(OPENS, CLOSES), strategies: [strategy()], portfolio: { initialCash: 1000 }, swarm: 't' }, {
      onOrders: (orders, barIndex) => told.push(...orders.map((order): [number, string, string, number, string] => [barIndex, order.clientOrderId, order.intent.side, order.intent.quantity, order.result.status])),
    });
    expect(told).toEqual([
      [4, report.fills[0]!.clientOrderId, 'buy', 10, 'accepted'],
      [6, report.fills[1]!.clientOrderId, 'sell', 10, 'accepted'],
    ]);
  });

  it('close: fills on the decision bar at its close (buy 12, sell 8), with per-share fees', () => {
    const { report } = runBacktest({
      bars: series(OPENS, CLOSES),
      strategies: [strategy()],
      venue: { fillAt: 'close', fees: { model: 'per-share', amountPerShare: 0.1 } },
      portfolio: { initialCash: 1000 },
    });
    expect(report.fills.map((f) => [f.side, f.price, f.fee, f.timeMs / DAY])).toEqual([
      ['buy', 12, 1, 4],
      ['sell', 8, 1, 6],
    ]);
    // 1000 − 120 − 1 + 80 − 1
    expect(report.finalEquity).toBe(958);
  });

  it('end of data: liquidates at the last close, or keeps the position marked at it', () => {
    const bars = series(OPENS.slice(0, 6), CLOSES.slice(0, 6));
    const liquidated = runBacktest({ bars, strategies: [strategy()], portfolio: { initialCash: 1000 } }).report;
    // buy 10 at bar 5 open 12.5, sold at bar 5 close 13 by the rule: 1000 − 125 + 130
    expect(liquidated.fills.map((f) => [f.side, f.price, f.clientOrderId])).toEqual([
      ['buy', 12.5, expect.any(String) as string],
      ['sell', 13, `end-of-data:AAA:${5 * DAY}`],
    ]);
    expect(liquidated.finalEquity).toBe(1005);
    expect(liquidated.openPositions).toEqual([]);
    const marked = runBacktest({ bars, strategies: [strategy()], portfolio: { initialCash: 1000 }, endOfData: 'mark-to-market' }).report;
    expect(marked.finalCash).toBe(875);
    expect(marked.finalEquity).toBe(1005);
    expect(marked.openPositions).toEqual([{ symbol: 'AAA', quantity: 10 }]);
    expect(marked.trades).toEqual([]);
  });

  it('rejects duplicate strategy names and unsorted bars, naming the field', () => {
    expect(() => runBacktest({ bars: series(OPENS, CLOSES), strategies: [strategy(), strategy()] })).toThrow(/strategies\[1\]\.name/);
    expect(() => runBacktest({ bars: series(OPENS, CLOSES).reverse(), strategies: [strategy()] })).toThrow(/bars\.AAA\[1\]\.timeMs/);
  });
});

function withoutTime(report: BacktestReport): Omit<BacktestReport, 'elapsedMs'> {
  const { elapsedMs: _elapsedMs, ...rest } = report;
  return rest;
}

describe('runBacktest, determinism and invariants', () => {
  it('gives the same report for the same input (seeded synthetic, two symbols)', () => {
    const run = (): BacktestReport => {
      const market = createSyntheticFeed({ symbols: ['AAA', 'BBB'], barCount: 2000 }).generate(Rng.seeded(7));
      const bars = new Map([...market.bars].filter(([symbol]) => symbol === 'AAA' || symbol === 'BBB'));
      const strategies = ['AAA', 'BBB'].map((symbol) =>
        smaCrossover({ symbol, fastPeriod: 5, slowPeriod: 20, sizing: fractionOfEquity(0.4, { wholeUnits: false }) }),
      );
      return runBacktest({ bars, strategies, venue: { slippage: { model: 'bps', bps: 2 } }, portfolio: { longOnly: true } }).report;
    };
    const first = run();
    expect(first.trades.length).toBeGreaterThan(10);
    expect(withoutTime(run())).toEqual(withoutTime(first));
  });

  const AAPL = new URL('../../../shared/data/daily/AAPL.csv', import.meta.url);
  const folder = fileURLToPath(new URL('.', AAPL));
  const present = existsSync(AAPL);
  if (!present && process.env.CI === 'true') {
    it('needs the shared data under CI', () => {
      throw new Error(`${folder} has no AAPL.csv; CI must provide ../shared/data`);
    });
  }
  if (!present) console.warn(`skipping the AAPL backtest: ${folder} has no AAPL.csv`);

  it.skipIf(!present)('SMA(50/200) over the real AAPL daily bars keeps its invariants', async () => {
    const bars = await loadCsvBars(AAPL, 'AAPL');
    const run = (endOfData: 'liquidate-at-close' | 'mark-to-market'): ReturnType<typeof runBacktest> =>
      runBacktest({
        bars: new Map([['AAPL', bars]]),
        strategies: [smaCrossover({ symbol: 'AAPL', fastPeriod: 50, slowPeriod: 200, sizing: fractionOfEquity(0.95, { wholeUnits: true }) })],
        venue: { fees: { model: 'per-share', amountPerShare: 0.005, minimumPerOrder: 1 } },
        portfolio: { longOnly: true },
        endOfData,
      });
    const { report, equityCurve } = run('mark-to-market');
    expect(report.bars).toBe(bars.length);
    expect(report.trades.length).toBeGreaterThan(0);
    expect(report.rejections).toEqual([]);
    // No negative position at any fill; cash is initial cash plus fill flows.
    let position = 0;
    let cash = report.initialCash;
    for (const fill of report.fills) {
      position += fill.side === 'buy' ? fill.quantity : -fill.quantity;
      cash -= (fill.side === 'buy' ? fill.quantity : -fill.quantity) * fill.price + fill.fee;
      expect(position).toBeGreaterThanOrEqual(0);
    }
    expect(report.finalCash).toBeCloseTo(cash, 6);
    // equity = cash + positions at the last close
    const held = report.openPositions[0]?.quantity ?? 0;
    expect(held).toBe(position);
    expect(report.finalEquity).toBeCloseTo(report.finalCash + held * (bars.at(-1) as Bar).close, 6);
    expect(equityCurve).toHaveLength(bars.length);
    const liquidated = run('liquidate-at-close').report;
    expect(liquidated.openPositions).toEqual([]);
    expect(liquidated.finalEquity).toBeCloseTo(liquidated.finalCash, 9);
  });
});
