import { describe, expect, it } from 'vitest';
import type { InvalidInputError } from '../core/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { closesOf, rows, runSteps } from './harness.js';
import { type MeanReversionOptions, meanReversion } from './mean-reversion.js';
import type { Side } from './rules.js';

const sizing = fixedQuantity(5);

describe('meanReversion on Bollinger bands (period 3, 1 standard deviation)', () => {
  // bands from bar 2 (middle, lower, upper):
  //   bar 3 [10,10,7]: 9, 7.586, 10.414 → close 7 < lower: enter long
  //   bar 4 [10,7,10]: 9 → close 10 >= middle: exit long
  //   bar 6 [10,11,13]: 11.333, 10.086, 12.581 → close 13 > upper: enter short (when allowed)
  //   bar 7 [11,13,10]: 11.333, 10.086 → close 10 <= middle: cover; 10 < lower: enter long
  //   bar 8 [13,10,9]: middle 10.667 → close 9 below the middle: hold the long
  const CLOSES = [10, 10, 10, 7, 10, 11, 13, 10, 9];
  const base = { indicator: 'bollinger', symbol: 'AAA', period: 3, stdDevs: 1, sizing } as const;

  it.each<[string, Side, Array<[number, string, string, number, string]>]>([
    [
      'long only',
      'long',
      [
        [3, 'enter-long', 'buy', 5, 'AAA'],
        [4, 'exit-long', 'sell', 5, 'AAA'],
        [7, 'enter-long', 'buy', 5, 'AAA'],
      ],
    ],
    [
      'with shorts',
      'both',
      [
        [3, 'enter-long', 'buy', 5, 'AAA'],
        [4, 'exit-long', 'sell', 5, 'AAA'],
        [6, 'enter-short', 'sell', 5, 'AAA'],
        [7, 'exit-short', 'buy', 5, 'AAA'],
        [7, 'enter-long', 'buy', 5, 'AAA'],
      ],
    ],
  ])('%s', (_name, side, expected) => {
    expect(rows(runSteps(meanReversion({ ...base, side }), closesOf('AAA', CLOSES)))).toEqual(expected);
  });

  it('does not trade before the bands exist (bar period − 1)', () => {
    expect(runSteps(meanReversion({ ...base, period: 4 }), closesOf('AAA', [10, 1, 30]))).toEqual([]);
    expect(meanReversion(base).name).toBe('mean-reversion-bollinger-AAA-3');
  });

  it('defaults to 20 bars and 2 standard deviations', () => {
    const closes = [...Array.from({ length: 19 }, (_, i) => 100 + (i % 2)), 90];
    // Bars 0..18 alternate 100/101, bar 19 is 90: over those 20, middle 99.95, sd 2.334, lower 95.28 > 90.
    expect(rows(runSteps(meanReversion({ indicator: 'bollinger', symbol: 'AAA', sizing }), closesOf('AAA', closes)))).toEqual([[19, 'enter-long', 'buy', 5, 'AAA']]);
    expect(runSteps(meanReversion({ indicator: 'bollinger', symbol: 'AAA', sizing }), closesOf('AAA', closes.slice(0, 19)))).toEqual([]);
  });
});

describe('meanReversion on the RSI (period 2)', () => {
  // Wilder RSI(2) from bar 2: 50, 25, 12.5, 56.25, 85.42, 91.25, 26.84
  const CLOSES = [10, 11, 10, 9, 8, 9, 11, 12, 9];
  const base = { indicator: 'rsi', symbol: 'AAA', period: 2, sizing } as const;

  it.each<[string, Partial<MeanReversionOptions>, Array<[number, string, string, number, string]>]>([
    [
      'defaults 30/50: enters at 25 (bar 3), exits at 56.25 (bar 5), enters at 26.84 (bar 8)',
      {},
      [
        [3, 'enter-long', 'buy', 5, 'AAA'],
        [5, 'exit-long', 'sell', 5, 'AAA'],
        [8, 'enter-long', 'buy', 5, 'AAA'],
      ],
    ],
    [
      'with shorts: 85.42 > 70 shorts (bar 6), 26.84 < 50 covers and 26.84 < 30 goes long (bar 8)',
      { side: 'both' },
      [
        [3, 'enter-long', 'buy', 5, 'AAA'],
        [5, 'exit-long', 'sell', 5, 'AAA'],
        [6, 'enter-short', 'sell', 5, 'AAA'],
        [8, 'exit-short', 'buy', 5, 'AAA'],
        [8, 'enter-long', 'buy', 5, 'AAA'],
      ],
    ],
    [
      'levels 20/60: enters only at 12.5 (bar 4), exits at 85.42 (bar 6)',
      { oversold: 20, exitLevel: 60 },
      [
        [4, 'enter-long', 'buy', 5, 'AAA'],
        [6, 'exit-long', 'sell', 5, 'AAA'],
      ],
    ],
  ])('%s', (_name, options, expected) => {
    expect(rows(runSteps(meanReversion({ ...base, ...options }), closesOf('AAA', CLOSES)))).toEqual(expected);
  });

  it('does not trade before the RSI exists (bar period)', () => {
    // A crash on bar 1 would read oversold, but RSI(2) starts on bar 2.
    expect(runSteps(meanReversion(base), closesOf('AAA', [10, 1]))).toEqual([]);
    expect(meanReversion(base).name).toBe('mean-reversion-rsi-AAA-2');
  });
});

describe('meanReversion options', () => {
  it.each<[Record<string, unknown>, string, string]>([
    [{ indicator: 'macd' }, 'indicator', "indicator: must be one of 'bollinger', 'rsi', got \"macd\""],
    [{ indicator: 'bollinger', period: 1 }, 'period', 'period: must be a whole number of bars >= 2, got 1'],
    [{ indicator: 'bollinger', stdDevs: 0 }, 'stdDevs', 'stdDevs: must be > 0, got 0'],
    [
      { indicator: 'bollinger', period: 5, stdDevs: 2 },
      'stdDevs',
      'stdDevs: must be < √(period − 1) = √4 ≈ 2.000: no close of a window of 5 bars is further than that many standard deviations from their mean, so the strategy could never enter, got 2',
    ],
    [{ indicator: 'rsi', oversold: 50, exitLevel: 50 }, 'oversold', 'oversold: must be < exitLevel (50), got 50'],
    [{ indicator: 'rsi', oversold: 0 }, 'oversold', 'oversold: must be > 0, got 0'],
    [{ indicator: 'rsi', exitLevel: 100 }, 'exitLevel', 'exitLevel: must be < 100, got 100'],
    [{ indicator: 'rsi', oversold: 55, exitLevel: 60, side: 'both' }, 'oversold', "oversold: must be < 50 with side 'both'"],
    [{ indicator: 'rsi', symbol: ' ' }, 'symbol', 'symbol: must be a non-empty string'],
  ])('rejects %o naming %s', (options, field, message) => {
    const build = (): unknown => meanReversion({ symbol: 'AAA', sizing, ...options } as unknown as MeanReversionOptions);
    expect(build).toThrow(expect.objectContaining({ field }) as InvalidInputError);
    expect(build).toThrow(message);
  });
});
