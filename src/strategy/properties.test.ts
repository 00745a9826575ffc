// Seeded property tests (DESIGN Conventions): the same input gives the same output, and positions
// follow each strategy's rule. Each property runs over many seeds of the project's Rng (pure-rand).
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import { fixedQuantity, fractionOfEquity } from '../portfolio/index.js';
import { crossVenueArbitrage } from './arbitrage.js';
import { emaCrossover, smaCrossover } from './crossover.js';
import { type Closes, runSteps } from './harness.js';
import { meanReversion } from './mean-reversion.js';
import { momentumStrategy } from './momentum.js';
import { pairs } from './pairs.js';
import { SIDES } from './rules.js';
import type { Strategy } from './strategy.js';

const SEEDS = Array.from({ length: 60 }, (_, i) => i + 1);

/** Two correlated random walks, AAA and BBB, for `count` steps. */
function randomSteps(rng: Rng, count: number): Closes[] {
  let a = 100;
  let b = 50;
  return Array.from({ length: count }, () => {
    const common = rng.normal(0, 0.01);
    a *= Math.exp(common + rng.normal(0, 0.01));
    b *= Math.exp(common + rng.normal(0, 0.01));
    return { AAA: a, BBB: b };
  });
}

const BUILDERS: ReadonlyArray<[string, (rng: Rng) => Strategy, { longOnly: boolean; twoLegs: boolean }]> = [
  ['sma', (rng) => smaCrossover({ symbol: 'AAA', fastPeriod: rng.int(1, 5), slowPeriod: rng.int(6, 20), sizing: fixedQuantity(rng.int(1, 9)) }), { longOnly: true, twoLegs: false }],
  ['ema', (rng) => emaCrossover({ symbol: 'BBB', fastPeriod: rng.int(1, 5), slowPeriod: rng.int(6, 20), sizing: fixedQuantity(rng.int(1, 9)) }), { longOnly: true, twoLegs: false }],
  [
    'sma short or both',
    (rng) => smaCrossover({ symbol: 'AAA', fastPeriod: rng.int(1, 5), slowPeriod: rng.int(6, 20), side: rng.pick(['short', 'both'] as const), sizing: fixedQuantity(rng.int(1, 9)) }),
    { longOnly: false, twoLegs: false },
  ],
  [
    'momentum',
    (rng) => momentumStrategy({ symbol: 'AAA', lookback: rng.int(1, 15), entryThreshold: 0.02, exitThreshold: -0.01 * rng.int(0, 2), side: rng.pick(SIDES), sizing: fractionOfEquity(0.3, { wholeUnits: true }) }),
    { longOnly: false, twoLegs: false },
  ],
  ['momentum long-only', (rng) => momentumStrategy({ symbol: 'AAA', lookback: rng.int(1, 15), entryThreshold: 0.01, exitThreshold: 0, sizing: fixedQuantity(3) }), { longOnly: true, twoLegs: false }],
  ['bollinger', (rng) => meanReversion({ indicator: 'bollinger', symbol: 'BBB', period: rng.int(5, 20), stdDevs: 1 + rng.next(), side: rng.pick(SIDES), sizing: fixedQuantity(2) }), { longOnly: false, twoLegs: false }],
  ['rsi long-only', (rng) => meanReversion({ indicator: 'rsi', symbol: 'AAA', period: rng.int(2, 14), sizing: fixedQuantity(2) }), { longOnly: true, twoLegs: false }],
  [
    'pairs',
    (rng) => pairs({ symbolA: 'AAA', symbolB: 'BBB', lookback: rng.int(5, 30), entryZ: 1.5, exitZ: 0.3, sizing: fractionOfEquity(0.5, { wholeUnits: false }), ...(rng.next() < 0.5 ? { hedgeRatio: 2 } : {}) }),
    { longOnly: false, twoLegs: true },
  ],
  ['arbitrage', () => crossVenueArbitrage({ symbolA: 'AAA', symbolB: 'BBB', minEdgeBps: 0, exitEdgeBps: -100_000, sizing: fixedQuantity(1) }), { longOnly: false, twoLegs: true }],
];

describe('strategies (seeded)', () => {
  it.each(BUILDERS)('%s: same input, same output; positions follow its rule', (_name, build, traits) => {
    let trades = 0;
    for (const seed of SEEDS) {
      const steps = randomSteps(Rng.seeded(seed), 300);
      const first = runSteps(build(Rng.seeded(seed)), steps);
      expect(runSteps(build(Rng.seeded(seed)), steps)).toEqual(first);
      trades += first.length;
      // Replaying the intents (filled at once): never short when long-only, never added to, legs opposite.
      const positions = new Map<string, number>();
      for (const [, intent] of first) {
        const before = positions.get(intent.symbol) ?? 0;
        const after = before + (intent.side === 'buy' ? intent.quantity : -intent.quantity);
        positions.set(intent.symbol, after);
        if (traits.longOnly) expect(after).toBeGreaterThanOrEqual(0);
        if (intent.intent.startsWith('enter')) expect(before).toBe(0);
        else expect(after).toBe(0);
      }
      if (traits.twoLegs) {
        const a = positions.get('AAA') ?? 0;
        const b = positions.get('BBB') ?? 0;
        expect(a === 0 && b === 0 ? 0 : Math.sign(a) * Math.sign(b)).not.toBe(1);
      }
    }
    expect(trades).toBeGreaterThan(0);
  });
});
