import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { flatBar } from '../../test/fixtures/bars.js';
import type { StrategyIntent } from '../strategy/index.js';
import { type AllocationContext, PortfolioAllocator, type PortfolioAllocatorOptions, allocate, createPortfolioAllocator } from './allocator.js';

function intent(strategy: string, symbol: string, side: 'buy' | 'sell', quantity: number, label = 'enter'): StrategyIntent {
  return { strategy, symbol, side, quantity, type: 'market', intent: label };
}

/** `strategy side quantity symbol` of each intent. */
function lines(intents: readonly StrategyIntent[]): string[] {
  return intents.map((i) => `${i.strategy} ${i.side} ${i.quantity} ${i.symbol}`);
}

const PRICES = { AAA: 100, BBB: 50 };
const EQUAL: AllocationContext = { equity: 100_000, positions: {}, prices: PRICES, weights: { S1: 0.5, S2: 0.5 } };

describe('allocate: budgets', () => {
  it('scales a strategy down to its share (60 000 asked, 50 000 allowed) and leaves one within it alone', () => {
    const result = allocate([intent('S1', 'AAA', 'buy', 600), intent('S2', 'BBB', 'buy', 400)], EQUAL);
    expect(lines(result.intents)).toEqual(['S1 buy 500 AAA', 'S2 buy 400 BBB']);
    expect(result.scaled).toEqual([{ strategy: 'S1', symbol: 'AAA', intent: 'enter', from: 600, to: 500 }]);
    expect(result.budgets).toEqual(new Map([['S1', 50_000], ['S2', 50_000]]));
  });

  it('scales every opening intent of a strategy by one factor, so a pair keeps its hedge ratio', () => {
    // 40 000 of AAA + 40 000 of BBB against 50 000: factor 0.625
    const result = allocate([intent('S1', 'AAA', 'buy', 400), intent('S1', 'BBB', 'sell', 800)], EQUAL);
    expect(lines(result.intents)).toEqual(['S1 buy 250 AAA', 'S1 sell 500 BBB']);
  });

  it('never cuts a reducing part: an exit passes whole, an entry after it is scaled', () => {
    const result = allocate([intent('S1', 'AAA', 'sell', 1000, 'exit'), intent('S1', 'AAA', 'sell', 700)], { ...EQUAL, positions: { AAA: 1000 } });
    expect(lines(result.intents)).toEqual(['S1 sell 1000 AAA', 'S1 sell 500 AAA']);
  });

  it('splits an order that crosses zero: the 100 that close stay, the 700 that open are cut to 500', () => {
    const result = allocate([intent('S1', 'AAA', 'sell', 800)], { ...EQUAL, positions: { AAA: 100 } });
    expect(lines(result.intents)).toEqual(['S1 sell 600 AAA']);
  });

  it('rounds scaled quantities down with wholeUnits, and only scaled ones', () => {
    // 600 at 99 = 59 400 against 50 000: 505.05 units
    const prices = { AAA: 99, BBB: 50 };
    const asked = [intent('S1', 'AAA', 'buy', 600), intent('S2', 'BBB', 'buy', 10.5)];
    expect(lines(allocate(asked, { ...EQUAL, prices, wholeUnits: true }).intents)).toEqual(['S1 buy 505 AAA', 'S2 buy 10.5 BBB']);
    expect(allocate(asked, { ...EQUAL, prices }).intents[0]?.quantity).toBeCloseTo(50_000 / 99, 9);
  });

  it('drops a whole group (same strategy and intent label) when rounding empties one of its intents', () => {
    // A pair: 10 AAA (1000) + 1 BBB (50) against 500: factor 0.476 → 4.76 → 4 AAA, 0.476 → 0 BBB: neither goes.
    const legs = [intent('S1', 'AAA', 'buy', 10, 'enter-long-spread'), intent('S1', 'BBB', 'sell', 1, 'enter-long-spread')];
    const context = { ...EQUAL, equity: 1000, wholeUnits: true };
    const result = allocate([...legs, intent('S1', 'BBB', 'buy', 3, 'exit-short-spread')], { ...context, positions: { BBB: -3 } });
    // The exit (a reducing order of another group) still goes.
    expect(lines(result.intents)).toEqual(['S1 buy 3 BBB']);
    expect(result.scaled.map((c) => [c.symbol, c.to])).toEqual([
      ['AAA', 0],
      ['BBB', 0],
    ]);
  });

  it('drops the opening orders of a strategy without budget (weight 0, or no equity)', () => {
    expect(allocate([intent('S1', 'AAA', 'buy', 1)], { ...EQUAL, weights: { S1: 0 } }).intents).toEqual([]);
    const broke = allocate([intent('S1', 'AAA', 'buy', 1), intent('S1', 'BBB', 'sell', 5, 'exit')], { ...EQUAL, equity: -10, positions: { BBB: 5 } });
    expect(lines(broke.intents)).toEqual(['S1 sell 5 BBB']);
    expect(broke.scaled).toEqual([{ strategy: 'S1', symbol: 'AAA', intent: 'enter', from: 1, to: 0 }]);
  });
});

describe('allocate: netting', () => {
  const weights = { S1: 0.3, S2: 0.3, S3: 0.3 };

  it('drops the smaller side and takes its total off the larger side, largest first', () => {
    const result = allocate([intent('S1', 'AAA', 'buy', 10), intent('S2', 'AAA', 'sell', 4), intent('S3', 'AAA', 'buy', 3)], { ...EQUAL, weights });
    expect(lines(result.intents)).toEqual(['S1 buy 6 AAA', 'S3 buy 3 AAA']);
    expect(result.netted).toEqual([
      { strategy: 'S1', symbol: 'AAA', intent: 'enter', from: 10, to: 6 },
      { strategy: 'S2', symbol: 'AAA', intent: 'enter', from: 4, to: 0 },
    ]);
  });

  it('breaks ties by strategy name; equal sides cancel out', () => {
    const tie = allocate([intent('S3', 'AAA', 'buy', 5), intent('S1', 'AAA', 'buy', 5), intent('S2', 'AAA', 'sell', 3)], { ...EQUAL, weights });
    expect(lines(tie.intents)).toEqual(['S1 buy 2 AAA', 'S3 buy 5 AAA']);
    expect(allocate([intent('S1', 'AAA', 'buy', 5), intent('S2', 'AAA', 'sell', 5)], { ...EQUAL, weights }).intents).toEqual([]);
  });

  it('nets only market orders of the same symbol', () => {
    const limit: StrategyIntent = { ...intent('S1', 'AAA', 'buy', 5), type: 'limit', limitPrice: 90 };
    const result = allocate([limit, intent('S2', 'AAA', 'sell', 5), intent('S3', 'BBB', 'buy', 5)], { ...EQUAL, weights });
    expect(result.intents).toEqual([limit, intent('S2', 'AAA', 'sell', 5), intent('S3', 'BBB', 'buy', 5)]);
    expect(result.netted).toEqual([]);
  });

  it('is the same whatever order the strategies come in (by name, each strategy in its own order)', () => {
    const asked = [intent('S2', 'AAA', 'sell', 4), intent('S1', 'AAA', 'buy', 600, 'a'), intent('S1', 'BBB', 'buy', 2, 'b'), intent('S3', 'BBB', 'sell', 1)];
    const context = { ...EQUAL, weights, wholeUnits: true };
    const expected = allocate(asked, context);
    expect(allocate([asked[3]!, asked[1]!, asked[0]!, asked[2]!], context)).toEqual(expected);
    // S1: 60 100 asked against 30 000: AAA 299.5 → 299, BBB 0.998 → 0 (dropped); AAA nets S2's 4 → 295.
    expect(lines(expected.intents)).toEqual(['S1 buy 295 AAA', 'S3 sell 1 BBB']);
  });
});

describe('allocate: bad input', () => {
  it.each<[StrategyIntent[], Partial<AllocationContext>, string]>([
    [[intent('S9', 'AAA', 'buy', 1)], {}, 'weights.S9: is missing: intents[0] comes from "S9", which has no weight'],
    [[intent('S1', 'CCC', 'buy', 1)], {}, 'prices.CCC: is needed (an intent of S1 opens a position in CCC)'],
    [[], { weights: { S1: -0.1 } }, 'weights.S1: must be >= 0, got -0.1'],
    [[], { equity: Number.NaN }, 'equity: must be a finite number'],
  ])('throws naming the field (%#)', (intents, context, message) => {
    expect(() => allocate(intents, { ...EQUAL, ...context })).toThrow(InvalidInputError);
    expect(() => allocate(intents, { ...EQUAL, ...context })).toThrow(message);
  });
});

describe('PortfolioAllocator', () => {
  const strategies = [
    { name: 'S1', symbols: ['AAA'] },
    { name: 'S2', symbols: ['BBB'] },
  ];

  it('equal weights: 1/n of equity each', () => {
    const allocator = createPortfolioAllocator({ strategies });
    expect(allocator.weights()).toEqual(new Map([['S1', 0.5], ['S2', 0.5]]));
    expect(lines(allocator.allocate([intent('S1', 'AAA', 'buy', 600)], { equity: 100_000, positions: {}, prices: PRICES }).intents)).toEqual(['S1 buy 500 AAA']);
  });

  it('fixed weights: the given fractions', () => {
    const allocator = createPortfolioAllocator({ strategies, weighting: 'fixed', weights: { S1: 0.2, S2: 0.3 }, wholeUnits: true });
    const result = allocator.allocate([intent('S1', 'AAA', 'buy', 600), intent('S2', 'BBB', 'buy', 700)], { equity: 100_000, positions: {}, prices: PRICES });
    expect(lines(result.intents)).toEqual(['S1 buy 200 AAA', 'S2 buy 600 BBB']);
  });

  it('inverse volatility: equal until each strategy has lookbackBars returns, then ∝ 1 / σ', () => {
    const allocator = createPortfolioAllocator({ strategies, weighting: 'inverse-volatility', lookbackBars: 2 });
    const feed = (barIndex: number, aaa: number, bbb: number): void => {
      allocator.onBar(flatBar('AAA', barIndex, aaa));
      allocator.onBar(flatBar('BBB', barIndex, bbb));
      allocator.onBar(flatBar('CCC', barIndex, 1)); // not a strategy's symbol: ignored
    };
    feed(0, 100, 100);
    feed(1, 110, 105);
    expect(allocator.weights()).toEqual(new Map([['S1', 0.5], ['S2', 0.5]]));
    feed(2, 99, 99.75);
    // σ = population sd of the two log returns = |r1 − r2| / 2
    const sigmaA = Math.abs(Math.log(1.1) - Math.log(0.9)) / 2;
    const sigmaB = Math.abs(Math.log(1.05) - Math.log(0.95)) / 2;
    const weights = allocator.weights();
    expect(weights.get('S1')).toBeCloseTo(1 / sigmaA / (1 / sigmaA + 1 / sigmaB), 12);
    expect(weights.get('S2')).toBeCloseTo(1 / sigmaB / (1 / sigmaA + 1 / sigmaB), 12);
    expect(weights.get('S2')).toBeCloseTo(0.667, 3);
  });

  it('goes on from a snapshot of its windows; refuses one with a symbol it does not keep or a window too long', () => {
    const options = { strategies, weighting: 'inverse-volatility' as const, lookbackBars: 2 };
    const allocator = createPortfolioAllocator(options);
    [[100, 100], [110, 105], [99, 99.75]].forEach(([aaa, bbb], barIndex) => {
      allocator.onBar(flatBar('AAA', barIndex, aaa as number));
      allocator.onBar(flatBar('BBB', barIndex, bbb as number));
    });
    const snapshot = allocator.snapshot();
    expect(snapshot).toEqual({ closes: [['AAA', [100, 110, 99]], ['BBB', [100, 105, 99.75]]] });
    expect(new PortfolioAllocator(options, snapshot).weights()).toEqual(allocator.weights());
    expect(() => new PortfolioAllocator(options, { closes: [['CCC', [1]]] })).toThrow('snapshot.closes.CCC: is not a symbol whose closes this allocator keeps');
    expect(() => new PortfolioAllocator(options, { closes: [['AAA', [1, 2, 3, 4]]] })).toThrow('snapshot.closes.AAA: must hold at most lookbackBars + 1 = 3 closes, got 4');
  });

  it.each<[Partial<PortfolioAllocatorOptions>, string]>([
    [{ strategies: [] }, 'strategies: must list at least one strategy'],
    [{ strategies: [{ name: 'S1' }, { name: 'S1' }] }, 'strategies[1].name: "S1" is used twice'],
    [{ weighting: 'random' as 'equal' }, "weighting: must be one of 'equal', 'fixed', 'inverse-volatility'"],
    [{ weighting: 'fixed' }, 'weights: is required with weighting fixed'],
    [{ weighting: 'fixed', weights: { S1: 0.5 } }, 'weights.S2: must be a fraction of equity >= 0 (every strategy needs one), got undefined'],
    [{ weighting: 'fixed', weights: { S1: 0.6, S2: 0.5 } }, 'weights: must sum to <= 1 (fractions of equity), got 1.1'],
    [{ weighting: 'fixed', weights: { S1: 0.5, S2: 0.5, S3: 0 } }, 'weights.S3: is not one of the strategies (S1, S2)'],
    [{ weights: { S1: 1 } }, 'weights: only applies with weighting fixed'],
    [{ weighting: 'inverse-volatility', strategies: [{ name: 'S1' }] }, 'strategies[0].symbols: must name the symbols S1 trades'],
    [{ weighting: 'inverse-volatility', lookbackBars: 1 }, 'lookbackBars: must be a whole number of bars >= 2, got 1'],
  ])('rejects %o', (options, message) => {
    expect(() => createPortfolioAllocator({ strategies, ...options })).toThrow(InvalidInputError);
    expect(() => createPortfolioAllocator({ strategies, ...options })).toThrow(message);
  });
});
