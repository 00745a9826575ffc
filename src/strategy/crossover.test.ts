import { describe, expect, it } from 'vitest';
import type { InvalidInputError } from '../core/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { flatBar } from '../../test/fixtures/bars.js';
import { closesOf, rows, runSteps } from './harness.js';
import { type CrossoverOptions, emaCrossover, smaCrossover } from './crossover.js';
import type { Intent, Strategy } from './strategy.js';

/** Feeds the series, filling every intent at once, and returns the bar index of each intent. */
function run(closes: readonly number[], fastPeriod: number, slowPeriod: number, build = smaCrossover): Array<[number, Intent]> {
  return runSteps(build({ symbol: 'AAA', fastPeriod, slowPeriod, sizing: fixedQuantity(10) }), closesOf('AAA', closes));
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
    expect(strategy.onBar(flatBar('BBB', 0, 10), { position: 0, equity: 1, barIndex: 0 })).toEqual([]);
    const seen = [10, 9, 11, 8].map((close, barIndex) => strategy.onBar(flatBar('AAA', barIndex, close), { position: 5, equity: 1, barIndex }).map((i) => i.intent));
    // bar 2 crosses above while long: no entry; bar 3 crosses below while long: exit of the 5 held.
    expect(seen).toEqual([[], [], [], ['exit-long']]);
  });

  // close − sma(3) from bar 2: 0, −0.67 (bar 3 crosses below), +1.67 (bar 4 crosses above), +1.67, −3 (bar 6 crosses below), −1.67
  it.each<[string, 'short' | 'both', string[]]>([
    ['short: sells short on a cross below, buys back on a cross above', 'short', ['3 enter-short sell 10', '4 exit-short buy 10', '6 enter-short sell 10']],
    [
      'both: always in the market after the first cross, each cross reverses with two orders (exit, then the opposite entry)',
      'both',
      ['3 enter-short sell 10', '4 exit-short buy 10', '4 enter-long buy 10', '6 exit-long sell 10', '6 enter-short sell 10'],
    ],
  ])('side %s', (_name, side, expected) => {
    const strategy = smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, side, sizing: fixedQuantity(10) });
    expect(rows(runSteps(strategy, closesOf('AAA', [10, 10, 10, 9, 12, 13, 8, 8]))).map((row) => row.slice(0, 4).join(' '))).toEqual(expected);
  });

  it('long (the default) leaves a short it did not open alone; short leaves a long alone', () => {
    const closes = [10, 9, 11, 8];
    const seen = (side: 'long' | 'short', position: number): string[][] => {
      const strategy = smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 2, side, sizing: fixedQuantity(1) });
      return closes.map((close, barIndex) => strategy.onBar(flatBar('AAA', barIndex, close), { position, equity: 1, barIndex }).map((i) => i.intent));
    };
    // bar 2 crosses above, bar 3 crosses below
    expect(seen('long', -5)).toEqual([[], [], [], []]);
    expect(seen('short', 5)).toEqual([[], [], [], []]);
    expect(seen('short', -5)).toEqual([[], [], ['exit-short'], []]);
  });

  it('declares its symbol and its default name', () => {
    const strategy = smaCrossover({ symbol: 'AAA', fastPeriod: 5, slowPeriod: 20, sizing: fixedQuantity(1) });
    expect([strategy.name, strategy.symbols]).toEqual(['sma-crossover-AAA-5-20', ['AAA']]);
  });
});

describe('emaCrossover', () => {
  it('price over EMA (fast 1, slow 3): the same rule, on the exponential average', () => {
    // EMA(3) (alpha 0.5, seeded by the SMA of bars 0..2 = 10) from bar 2: 10, 9.5, 10.75, 11.875, 9.9375
    // close − ema: 0, −0.5 (bar 3), +1.25 (bar 4: enter), +1.125, −1.9375 (bar 6: exit)
    expect(rows(run([10, 10, 10, 9, 12, 13, 8], 1, 3, emaCrossover))).toEqual([
      [4, 'enter-long', 'buy', 10, 'AAA'],
      [6, 'exit-long', 'sell', 10, 'AAA'],
    ]);
  });

  it('differs from the SMA where the averages differ: the EMA follows the recent rise and holds', () => {
    const closes = [10, 10, 10, 10.5, 11, 11.2, 10.95];
    // SMA(3) on bar 6 is 11.05 > 10.95: exit. EMA(3) on bar 6 is 10.93125 < 10.95: hold.
    expect(rows(run(closes, 1, 3, smaCrossover))).toEqual([
      [3, 'enter-long', 'buy', 10, 'AAA'],
      [6, 'exit-long', 'sell', 10, 'AAA'],
    ]);
    expect(rows(run(closes, 1, 3, emaCrossover))).toEqual([[3, 'enter-long', 'buy', 10, 'AAA']]);
    expect(emaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(1) }).name).toBe('ema-crossover-AAA-1-3');
  });
});

describe.each<[string, (options: CrossoverOptions) => Strategy]>([
  ['smaCrossover', smaCrossover],
  ['emaCrossover', emaCrossover],
])('%s (shared rule)', (_name, build) => {
  it('does not trade during warm-up: the first bar with both averages only sets the previous difference', () => {
    // A steady rise: close > average from the first defined bar (2) on, but no crossing is ever seen.
    expect(runSteps(build({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(1) }), closesOf('AAA', [1, 2, 3, 4, 5]))).toEqual([]);
  });

  it('enters nothing when the sizer answers 0', () => {
    expect(runSteps(build({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(0) }), closesOf('AAA', [10, 10, 10, 9, 12]))).toEqual([]);
  });

  it.each([
    [{ fastPeriod: 0, slowPeriod: 3 }, 'fastPeriod'],
    [{ fastPeriod: 3, slowPeriod: 3 }, 'slowPeriod'],
    [{ fastPeriod: 2, slowPeriod: 2.5 }, 'slowPeriod'],
    [{ fastPeriod: 2, slowPeriod: 3, symbol: '' }, 'symbol'],
    [{ fastPeriod: 2, slowPeriod: 3, sizing: {} }, 'sizing'],
    [{ fastPeriod: 2, slowPeriod: 3, name: '' }, 'name'],
    [{ fastPeriod: 2, slowPeriod: 3, side: 'sideways' }, 'side'],
  ])('rejects %o naming %s', (options, field) => {
    expect(() => build({ symbol: 'AAA', sizing: fixedQuantity(1), ...options } as CrossoverOptions)).toThrow(
      expect.objectContaining({ field }) as InvalidInputError,
    );
  });
});
