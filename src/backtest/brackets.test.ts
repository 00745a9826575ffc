// Bracket exits through the whole backtest (strategy → session → venue → portfolio), hand-checked on
// the shared series of test/fixtures/bars.ts: SMA(1/3) decides enter-long on bar 4 (filled at bar 5's
// open 12.5) and exit-long on bar 6 (filled at bar 7's open 7.5). Bars: high/low span open and close.
import { describe, expect, it } from 'vitest';
import { fixedQuantity } from '../portfolio/index.js';
import { smaCrossover } from '../strategy/index.js';
import { clientOrderId } from '../venue/index.js';
import { CLOSES, DAY, OPENS, series } from '../../test/fixtures/bars.js';
import { runBacktest } from './index.js';

type Exits = NonNullable<Parameters<typeof smaCrossover>[0]['exits']>;

function run(exits: Exits, side: 'long' | 'short' | 'both' = 'long'): Array<[string, string, number, number, number]> {
  const strategy = smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(10), side, exits, name: 'sma' });
  const { report } = runBacktest({ bars: series(OPENS, CLOSES), strategies: [strategy], portfolio: { initialCash: 1000 }, swarm: 't' });
  const entry = (barIndex: number, intent: string): string => clientOrderId({ swarm: 't', role: 'sma', barIndex, symbol: 'AAA', intent });
  const names = new Map([4, 6, 3].flatMap((i) => ['enter-long', 'exit-long', 'enter-short', 'exit-short'].map((intent) => [entry(i, intent), `${intent}@${i}`] as const)));
  return report.fills.map((fill) => {
    const [id, kind] = [fill.clientOrderId.slice(0, fill.clientOrderId.lastIndexOf(':')), fill.clientOrderId.slice(fill.clientOrderId.lastIndexOf(':') + 1)];
    const label = names.get(fill.clientOrderId) ?? (names.has(id) ? `${names.get(id) as string}:${kind}` : fill.clientOrderId.replace(/:\d+$/, ''));
    return [label, fill.side, fill.quantity, fill.price, fill.timeMs / DAY];
  });
}

describe('bracket exits in a backtest, hand-checked', () => {
  it("fills a long's stop gapped through at the open: bar 6 opens at 9, below the stop 12.5 × 0.9 = 11.25", () => {
    expect(run({ stopLoss: { percent: 10 } })).toEqual([
      ['enter-long@4', 'buy', 10, 12.5, 5],
      // The strategy sees itself flat on bar 6, so its cross below decides nothing.
      ['enter-long@4:stop-loss', 'sell', 10, 9, 6],
    ]);
  });

  it('fills the take-profit on the entry bar, after the fill at its open: target 12.5 + 0.4 = 12.9, high 13', () => {
    expect(run({ takeProfit: { points: 0.4 }, stopLoss: { points: 1 } })).toEqual([
      ['enter-long@4', 'buy', 10, 12.5, 5],
      ['enter-long@4:take-profit', 'sell', 10, 12.9, 5],
    ]);
  });

  it("cancels the bracket when the strategy's own signal closes the position: bar 7's low 7.5 reaches the stop 12.5 − 5, unfilled", () => {
    expect(run({ stopLoss: { points: 5 } })).toEqual([
      ['enter-long@4', 'buy', 10, 12.5, 5],
      ['exit-long@6', 'sell', 10, 7.5, 7],
    ]);
  });

  it("fills a short's stop within a bar: short at bar 4's open 11, stop 11.5, bar 4's high 12", () => {
    expect(run({ stopLoss: { points: 0.5 } }, 'short')).toEqual([
      ['enter-short@3', 'sell', 10, 11, 4],
      ['enter-short@3:stop-loss', 'buy', 10, 11.5, 4],
      // Flat again: the cross below of bar 6 shorts once more, at bar 7's open 7.5, stop 8: bar 7's high 8 reaches it.
      ['enter-short@6', 'sell', 10, 7.5, 7],
      ['enter-short@6:stop-loss', 'buy', 10, 8, 7],
    ]);
  });

  it('on a reversal, cancels the old bracket and places the new one with the new entry', () => {
    // Short at 11 (bar 4) with stop 11 × 1.5 = 16.5 and target 11 × 0.5 = 5.5: neither reached. Bar 4 reverses:
    // the short's bracket is cancelled, the long (12.5 at bar 5) gets stop 6.25 and target 18.75.
    expect(run({ stopLoss: { percent: 50 }, takeProfit: { percent: 50 } }, 'both')).toEqual([
      ['enter-short@3', 'sell', 10, 11, 4],
      ['exit-short@4', 'buy', 10, 12.5, 5],
      ['enter-long@4', 'buy', 10, 12.5, 5],
      ['exit-long@6', 'sell', 10, 7.5, 7],
      ['enter-short@6', 'sell', 10, 7.5, 7],
      ['end-of-data:AAA', 'buy', 10, 8, 7],
    ]);
  });
});
