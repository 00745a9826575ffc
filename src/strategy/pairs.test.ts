import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { flatBar } from '../../test/fixtures/bars.js';
import { type Closes, rows, runSteps } from './harness.js';
import { type PairsOptions, pairs } from './pairs.js';
import type { StrategySizer } from './strategy.js';

/** Steps with A = `a[i]`, B = `b[i]` under the given symbol names. */
function steps(a: readonly number[], b: readonly number[], symbolA = 'AAA', symbolB = 'BBB'): Closes[] {
  return a.map((close, i) => ({ [symbolA]: close, [symbolB]: b[i] as number }));
}

describe('pairs with a fixed hedge ratio (2), lookback 3, entry 1, exit 0.5', () => {
  // B is constant 10, so the spread s = A − 2·B is A − 20: 0, 1, −1, −3, 0, 2, 3, 2.
  // z over the last 3 spreads (population sd):
  //   bar 2 [0,1,−1]: −1.225 < −1 → long spread (buy A, sell B)
  //   bar 3 [1,−1,−3]: −1.225, hold
  //   bar 4 [−1,−3,0]: +1.069 > −0.5 → exit; > 1 → short spread on the same bar
  //   bar 5 [−3,0,2]: +1.136, bar 6 [0,2,3]: +1.069, hold
  //   bar 7 [2,3,2]: −0.707 < 0.5 → exit; not < −1 → stay flat
  const A = [20, 21, 19, 17, 20, 22, 23, 22];
  const B = A.map(() => 10);
  const options: PairsOptions = { symbolA: 'AAA', symbolB: 'BBB', lookback: 3, hedgeRatio: 2, entryZ: 1, exitZ: 0.5, sizing: fixedQuantity(5) };
  const expected: Array<[number, string, string, number, string]> = [
    [2, 'enter-long-spread', 'buy', 5, 'AAA'],
    [2, 'enter-long-spread', 'sell', 10, 'BBB'],
    [4, 'exit-long-spread', 'sell', 5, 'AAA'],
    [4, 'exit-long-spread', 'buy', 10, 'BBB'],
    [4, 'enter-short-spread', 'sell', 5, 'AAA'],
    [4, 'enter-short-spread', 'buy', 10, 'BBB'],
    [7, 'exit-short-spread', 'buy', 5, 'AAA'],
    [7, 'exit-short-spread', 'sell', 10, 'BBB'],
  ];

  it('enters, flips and exits with both legs on the same bar, B = 2 × A units', () => {
    expect(rows(runSteps(pairs(options), steps(A, B)))).toEqual(expected);
  });

  it('acts on whichever leg arrives second (here A, named ZZZ, after B)', () => {
    const strategy = pairs({ ...options, symbolA: 'ZZZ' });
    const intents = runSteps(strategy, steps(A, B, 'ZZZ'));
    expect(rows(intents)).toEqual(expected.map(([bar, intent, side, quantity, symbol]) => [bar, intent, side, quantity, symbol === 'AAA' ? 'ZZZ' : symbol]));
    // Both legs' intents come from one onBar call: on bar 2 that is ZZZ's bar (B's bar gave none).
    const onB = strategy.onBar(flatBar('BBB', 8, 10), { position: 0, equity: 1, barIndex: 8, positionOf: () => 0 });
    expect(onB).toEqual([]);
  });

  it('waits for both legs: a time step with only one symbol is not acted on, and a lone leg does not count', () => {
    const gappy = steps(A, B);
    gappy[2] = { AAA: 19 }; // B missing on bar 2: no z on bar 2; the window is filled by bars 0, 1, 3
    const intents = rows(runSteps(pairs(options), gappy));
    // bar 3: window [0, 1, −3] → z = −1.38 → long spread
    expect(intents[0]).toEqual([3, 'enter-long-spread', 'buy', 5, 'AAA']);
  });

  it('does not trade during warm-up (fewer than lookback paired steps), whatever the deviation', () => {
    expect(runSteps(pairs({ ...options, lookback: 4 }), steps([20, 21, 1], [10, 10, 10]))).toEqual([]);
  });

  it('closes whatever each leg holds, also a lone leg', () => {
    // Held: 3 A long and no B (say the B order was refused); bar 4's z = +1.069 exits the long spread.
    const intents = rows(runSteps(pairs(options), steps(A.slice(0, 5), B.slice(0, 5)), { positions: { AAA: 3 } }));
    expect(intents.slice(0, 1)).toEqual([[4, 'exit-long-spread', 'sell', 3, 'AAA']]);
  });

  it('needs positionOf in the context', () => {
    const strategy = pairs(options);
    strategy.onBar(flatBar('AAA', 0, 20), { position: 0, equity: 1, barIndex: 0 });
    strategy.onBar(flatBar('BBB', 0, 10), { position: 0, equity: 1, barIndex: 0 });
    strategy.onBar(flatBar('AAA', 1, 21), { position: 0, equity: 1, barIndex: 1 });
    strategy.onBar(flatBar('BBB', 1, 10), { position: 0, equity: 1, barIndex: 1 });
    strategy.onBar(flatBar('AAA', 2, 19), { position: 0, equity: 1, barIndex: 2 });
    expect(() => strategy.onBar(flatBar('BBB', 2, 10), { position: 0, equity: 1, barIndex: 2 })).toThrow(
      expect.objectContaining({ field: 'context.positionOf' }) as InvalidInputError,
    );
  });
});

describe('pairs with the rolling OLS hedge ratio', () => {
  // B = 1, 2, 3, 4 and A = 2·B + e with e = 1, −1, −1, 1 (orthogonal to B's deviations), so the OLS
  // of A on B over the 4 steps has slope exactly 2 and residuals e: mean 0, sd 1, current z = +1.
  const A = [3, 3, 5, 9];
  const B = [1, 2, 3, 4];

  it('estimates the hedge ratio (2) and sizes both legs on closeA + 2 × closeB', () => {
    const calls: Array<[number, number]> = [];
    const sizing: StrategySizer = {
      quantity: (price, equity) => {
        calls.push([price, equity]);
        return 4;
      },
    };
    const strategy = pairs({ symbolA: 'AAA', symbolB: 'BBB', lookback: 4, entryZ: 0.9, exitZ: 0.2, sizing });
    expect(rows(runSteps(strategy, steps(A, B), { equity: 5000 }))).toEqual([
      [3, 'enter-short-spread', 'sell', 4, 'AAA'],
      [3, 'enter-short-spread', 'buy', 8, 'BBB'],
    ]);
    expect(calls).toEqual([[9 + 2 * 4, 5000]]);
    expect(strategy.name).toBe('pairs-AAA-BBB-4');
    expect(strategy.symbols).toEqual(['AAA', 'BBB']);
  });

  it('does not enter with a negative hedge ratio', () => {
    // A falls as B rises: slope −2; residuals as above, z = +1 > 0.9, but no entry.
    const falling = B.map((b, i) => 20 - 2 * b + ([1, -1, -1, 1][i] as number));
    expect(runSteps(pairs({ symbolA: 'AAA', symbolB: 'BBB', lookback: 4, entryZ: 0.9, exitZ: 0.2, sizing: fixedQuantity(1) }), steps(falling, B))).toEqual([]);
  });

  it('rounds the B leg down with wholeUnits', () => {
    // fixed ratio 1.5, 3 units of A → 4.5 units of B → 4
    const base = { symbolA: 'AAA', symbolB: 'BBB', lookback: 3, hedgeRatio: 1.5, entryZ: 1, exitZ: 0.5, sizing: fixedQuantity(3) };
    const a = [15, 16, 14];
    const b = [10, 10, 10];
    expect(rows(runSteps(pairs({ ...base, wholeUnits: true }), steps(a, b)))[1]).toEqual([2, 'enter-long-spread', 'sell', 4, 'BBB']);
    expect(rows(runSteps(pairs(base), steps(a, b)))[1]).toEqual([2, 'enter-long-spread', 'sell', 4.5, 'BBB']);
  });
});

describe('pairs options', () => {
  const base: PairsOptions = { symbolA: 'AAA', symbolB: 'BBB', lookback: 20, entryZ: 2, exitZ: 0.5, sizing: fixedQuantity(1) };
  it.each<[Partial<PairsOptions>, string]>([
    [{ entryZ: 0.5 }, 'entryZ: must be > exitZ (0.5), got 0.5'],
    [
      { lookback: 5, entryZ: 2.5 },
      'entryZ: must be < √(lookback − 1) = √4 ≈ 2.000: no spread of a window of 5 steps is further than that many standard deviations from their mean, so the strategy could never enter, got 2.5',
    ],
    [{ exitZ: -1 }, 'exitZ: must be >= 0, got -1'],
    [{ lookback: 1 }, 'lookback: must be a whole number of bars >= 2, got 1'],
    [{ hedgeRatio: 0 }, 'hedgeRatio: must be > 0, got 0'],
    [{ symbolB: 'AAA' }, 'symbolB: must differ from symbolA (AAA), got AAA'],
    [{ symbolA: '' }, 'symbolA: must be a non-empty string'],
    [{ wholeUnits: 1 as unknown as boolean }, 'wholeUnits: must be true or false'],
  ])('rejects %o', (options, message) => {
    expect(() => pairs({ ...base, ...options })).toThrow(InvalidInputError);
    expect(() => pairs({ ...base, ...options })).toThrow(message);
  });
});
