import { describe, expect, it } from 'vitest';
import type { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { type Intent, smaCrossover } from './index.js';

function bars(closes: readonly number[]): Bar[] {
  return closes.map((close, i) => ({ symbol: 'AAA', timeMs: i * 86_400_000, open: close, high: close, low: close, close, volume: 1000 }));
}

/** Feeds the series, filling every intent at once, and returns the bar index of each intent. */
function run(closes: readonly number[], fastPeriod: number, slowPeriod: number): Array<[number, Intent]> {
  const strategy = smaCrossover({ symbol: 'AAA', fastPeriod, slowPeriod, sizing: fixedQuantity(10) });
  let position = 0;
  const out: Array<[number, Intent]> = [];
  bars(closes).forEach((bar, barIndex) => {
    for (const intent of strategy.onBar(bar, { position, equity: 10_000, barIndex })) {
      out.push([barIndex, intent]);
      position += intent.side === 'buy' ? intent.quantity : -intent.quantity;
    }
  });
  return out;
}

describe('smaCrossover', () => {
  it('price over average (fast 1, slow 3): enters on bar 4, exits on bar 6', () => {
    // slow SMA(3) from bar 2: 10, 9.67, 10.33, 11.33, 11, 9.67; close − sma: 0, −0.67, +1.67, +1.67, −3, −1.67
    expect(run([10, 10, 10, 9, 12, 13, 8, 8], 1, 3)).toEqual([
      [4, { symbol: 'AAA', side: 'buy', quantity: 10, type: 'market', intent: 'enter-long' }],
      [6, { symbol: 'AAA', side: 'sell', quantity: 10, type: 'market', intent: 'exit-long' }],
    ]);
  });

  it('fast 2 over slow 4: enters and exits on the crossing bars only', () => {
    // sma2 − sma4 from bar 3: 0, −0.25 (bar 4), +0.75 (bar 5), +1.75 (bar 6), −1.25 (bar 7)
    // closes:                 0   1   2   3   4  5   6   7
    expect(run([10, 10, 10, 10, 9, 14, 12, 6], 2, 4).map(([index, intent]) => [index, intent.intent])).toEqual([
      [5, 'enter-long'],
      [7, 'exit-long'],
    ]);
  });

  it('ignores other symbols and does not enter when already long or exit when flat', () => {
    const strategy = smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 2, sizing: fixedQuantity(1) });
    const series = bars([10, 9, 11, 8]);
    expect(strategy.onBar({ ...series[0]!, symbol: 'BBB' }, { position: 0, equity: 1, barIndex: 0 })).toEqual([]);
    const seen = series.map((bar, barIndex) => strategy.onBar(bar, { position: 5, equity: 1, barIndex }).map((i) => i.intent));
    // bar 2 crosses above while long: no entry; bar 3 crosses below while long: exit of the 5 held.
    expect(seen).toEqual([[], [], [], ['exit-long']]);
  });

  it.each([
    [{ fastPeriod: 0, slowPeriod: 3 }, 'fastPeriod'],
    [{ fastPeriod: 3, slowPeriod: 3 }, 'slowPeriod'],
    [{ fastPeriod: 2, slowPeriod: 2.5 }, 'slowPeriod'],
  ])('rejects %o naming %s', (periods, field) => {
    expect(() => smaCrossover({ symbol: 'AAA', sizing: fixedQuantity(1), ...periods })).toThrow(
      expect.objectContaining({ field }) as InvalidInputError,
    );
  });
});
