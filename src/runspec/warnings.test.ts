import { describe, expect, it } from 'vitest';
import { fixedQuantity } from '../portfolio/index.js';
import { type Strategy, crossVenueArbitrage, pairs, smaCrossover } from '../strategy/index.js';
import { warmUpWarnings } from './warnings.js';

const sizing = fixedQuantity(1);
const BARS: Record<string, number> = { KO: 200, PEP: 500, AAA: 50 };
const barsOf = (symbol: string): number => BARS[symbol] ?? 0;
const messages = (strategies: readonly Strategy[], allocator?: Parameters<typeof warmUpWarnings>[1]): string[] =>
  warmUpWarnings(strategies, allocator, barsOf).map((warning) => warning.message);

describe('warmUpWarnings', () => {
  it.each<[string, Strategy[], string[]]>([
    ['a warm-up that fits', [smaCrossover({ symbol: 'AAA', fastPeriod: 5, slowPeriod: 49, sizing })], []],
    [
      'one bar short',
      [smaCrossover({ symbol: 'AAA', fastPeriod: 5, slowPeriod: 50, sizing })],
      ['strategies[0] sma-crossover-AAA-5-50 cannot trade: slowPeriod 50 needs 51 bars of AAA before its first decision, and the data has 50; lower slowPeriod or use more data'],
    ],
    [
      'legs with different bar counts name the shorter',
      [pairs({ symbolA: 'PEP', symbolB: 'KO', lookback: 300, entryZ: 2, exitZ: 0.5, sizing })],
      ['strategies[0] pairs-PEP-KO-300 cannot trade: lookback 300 needs 300 bars of PEP and KO before its first decision, and the data has 200 of KO; lower lookback or use more data'],
    ],
    ['no warm-up (arbitrage), even on a symbol without bars', [crossVenueArbitrage({ symbolA: 'AAA', symbolB: 'ZZZ', minEdgeBps: 1, exitEdgeBps: 0, sizing })], []],
    ['a strategy that declares no symbols', [{ name: 'custom', warmUp: { field: 'period', value: 9, bars: 1e9 }, onBar: () => [] }], []],
  ])('%s', (_name, strategies, expected) => {
    expect(messages(strategies)).toEqual(expected);
  });

  it('an inverse-volatility allocator names the symbol with the fewest bars; other weightings have no warm-up', () => {
    const strategies = [smaCrossover({ symbol: 'PEP', fastPeriod: 5, slowPeriod: 20, sizing }), smaCrossover({ symbol: 'KO', fastPeriod: 5, slowPeriod: 20, sizing })];
    expect(messages(strategies, { weighting: 'inverse-volatility', lookbackBars: 250 })).toEqual([
      "allocator: lookbackBars 250 needs 251 bars of every strategy's symbols before inverse-volatility weights apply, and the data has 200 of KO; the weights stay equal for the whole run; lower lookbackBars or use more data",
    ]);
    expect(messages(strategies, { weighting: 'inverse-volatility', lookbackBars: 199 })).toEqual([]);
    expect(messages(strategies, { weighting: 'equal' })).toEqual([]);
  });
});
