import { describe, expect, it } from 'vitest';
import type { InvalidInputError } from '../core/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { closesOf, rows, runSteps } from './harness.js';
import { type MomentumOptions, momentumStrategy } from './momentum.js';

// ROC(2) of these closes, from bar 2: 0, 0.12, 0.15, 0.0714, −0.0435, −0.1667, −0.1364, 0, 0.1053
const CLOSES = [100, 100, 100, 112, 115, 120, 110, 100, 95, 100, 105];
const base = { symbol: 'AAA', lookback: 2, entryThreshold: 0.1, exitThreshold: 0, sizing: fixedQuantity(10) };

describe('momentumStrategy', () => {
  it.each<[string, Partial<MomentumOptions>, Array<[number, string, string, number, string]>]>([
    [
      'long only: enters when ROC > 0.1 (bar 3), exits when ROC < 0 (bar 6), re-enters at 0.105 (bar 10)',
      {},
      [
        [3, 'enter-long', 'buy', 10, 'AAA'],
        [6, 'exit-long', 'sell', 10, 'AAA'],
        [10, 'enter-long', 'buy', 10, 'AAA'],
      ],
    ],
    [
      'with shorts: enters short at ROC −0.167 < −0.1 (bar 7), covers at ROC 0.105 > 0 and goes long on the same bar (bar 10)',
      { side: 'both' },
      [
        [3, 'enter-long', 'buy', 10, 'AAA'],
        [6, 'exit-long', 'sell', 10, 'AAA'],
        [7, 'enter-short', 'sell', 10, 'AAA'],
        [10, 'exit-short', 'buy', 10, 'AAA'],
        [10, 'enter-long', 'buy', 10, 'AAA'],
      ],
    ],
    [
      'an exit threshold equal to the entry: holds while ROC stays above 0.1, exits at 0.071 (bar 5)',
      { exitThreshold: 0.1 },
      [
        [3, 'enter-long', 'buy', 10, 'AAA'],
        [5, 'exit-long', 'sell', 10, 'AAA'],
        [10, 'enter-long', 'buy', 10, 'AAA'],
      ],
    ],
  ])('%s', (_name, options, expected) => {
    expect(rows(runSteps(momentumStrategy({ ...base, ...options }), closesOf('AAA', CLOSES)))).toEqual(expected);
  });

  it('does not trade during warm-up: ROC(2) first exists on bar 2, ROC(3) on bar 3', () => {
    expect(rows(runSteps(momentumStrategy(base), closesOf('AAA', [100, 200, 300])))).toEqual([[2, 'enter-long', 'buy', 10, 'AAA']]);
    expect(runSteps(momentumStrategy({ ...base, lookback: 3 }), closesOf('AAA', [100, 200, 300]))).toEqual([]);
  });

  it('exits what is held, whatever its size, and ignores other symbols', () => {
    const intents = runSteps(momentumStrategy(base), [{ AAA: 100, BBB: 1 }, { AAA: 100, BBB: 2 }, { AAA: 90, BBB: 3 }], { positions: { AAA: 7 } });
    expect(rows(intents)).toEqual([[2, 'exit-long', 'sell', 7, 'AAA']]);
    expect(momentumStrategy(base).name).toBe('momentum-AAA-2');
  });

  it.each([
    [{ lookback: 0 }, 'lookback'],
    [{ entryThreshold: Number.NaN }, 'entryThreshold'],
    [{ exitThreshold: 0.2 }, 'exitThreshold'],
    [{ side: 'yes' }, 'side'],
    [{ sizing: undefined }, 'sizing'],
  ])('rejects %o naming %s', (options, field) => {
    expect(() => momentumStrategy({ ...base, ...options } as MomentumOptions)).toThrow(expect.objectContaining({ field }) as InvalidInputError);
  });

  it('says what is allowed', () => {
    expect(() => momentumStrategy({ ...base, exitThreshold: 0.2 })).toThrow('exitThreshold: must be <= entryThreshold (0.1), got 0.2');
  });
});
