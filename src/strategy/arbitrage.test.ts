import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { rows, runSteps } from './harness.js';
import { type CrossVenueArbitrageOptions, crossVenueArbitrage } from './arbitrage.js';

const base: CrossVenueArbitrageOptions = {
  symbolA: 'BTC@alpha',
  symbolB: 'BTC@beta',
  minEdgeBps: 10,
  exitEdgeBps: 2,
  feeBpsPerFill: 1,
  sizing: fixedQuantity(2),
};

describe('crossVenueArbitrage', () => {
  it('buys the cheap venue and sells the rich one when the gap beats 10 bps + 4 × 1 bp of fees, closes under 2 bps', () => {
    const alpha = [100, 100, 100, 100, 100.2, 100, 100];
    const beta = [100.1, 100.15, 100.05, 100.01, 100, 100.1, 100];
    // gap of beta over alpha (bps of the cheap price): 10 (< 14, no), 15 (enter), 5 (hold), 1 (< 2: exit),
    // alpha over beta: 20 (enter the other way), then beta over alpha 10 while short: alpha over beta is −10 < 2: exit.
    const intents = runSteps(
      crossVenueArbitrage(base),
      alpha.map((a, i) => ({ 'BTC@alpha': a, 'BTC@beta': beta[i] as number })),
    );
    expect(rows(intents)).toEqual([
      [1, 'enter-long-spread', 'buy', 2, 'BTC@alpha'],
      [1, 'enter-long-spread', 'sell', 2, 'BTC@beta'],
      [3, 'exit-long-spread', 'sell', 2, 'BTC@alpha'],
      [3, 'exit-long-spread', 'buy', 2, 'BTC@beta'],
      [4, 'enter-short-spread', 'sell', 2, 'BTC@alpha'],
      [4, 'enter-short-spread', 'buy', 2, 'BTC@beta'],
      [5, 'exit-short-spread', 'buy', 2, 'BTC@alpha'],
      [5, 'exit-short-spread', 'sell', 2, 'BTC@beta'],
    ]);
  });

  it('without fees a 10.5 bp gap is enough; sizes one unit of each leg (a + b)', () => {
    const prices: number[] = [];
    const strategy = crossVenueArbitrage({
      ...base,
      feeBpsPerFill: 0,
      sizing: {
        quantity: (price) => {
          prices.push(price);
          return 0.5;
        },
      },
    });
    expect(rows(runSteps(strategy, [{ 'BTC@alpha': 200, 'BTC@beta': 200.21 }]))).toEqual([
      [0, 'enter-long-spread', 'buy', 0.5, 'BTC@alpha'],
      [0, 'enter-long-spread', 'sell', 0.5, 'BTC@beta'],
    ]);
    expect(prices).toHaveLength(1);
    expect(prices[0]).toBeCloseTo(400.21, 9);
    expect(strategy.name).toBe('arbitrage-BTC@alpha-BTC@beta');
  });

  it('never acts on one venue alone', () => {
    expect(runSteps(crossVenueArbitrage(base), [{ 'BTC@alpha': 100 }, { 'BTC@beta': 110 }])).toEqual([]);
  });

  it.each<[Partial<CrossVenueArbitrageOptions>, string]>([
    [{ exitEdgeBps: 10 }, 'exitEdgeBps: must be < minEdgeBps (10), got 10'],
    [{ minEdgeBps: -1 }, 'minEdgeBps: must be >= 0, got -1'],
    [{ feeBpsPerFill: -1 }, 'feeBpsPerFill: must be >= 0, got -1'],
    [{ symbolB: 'BTC@alpha' }, 'symbolB: must differ from symbolA'],
  ])('rejects %o', (options, message) => {
    expect(() => crossVenueArbitrage({ ...base, ...options })).toThrow(InvalidInputError);
    expect(() => crossVenueArbitrage({ ...base, ...options })).toThrow(message);
  });
});
