import { describe, expect, it } from 'vitest';
import { exact, throughJson } from '../../test/fixtures/snapshots.js';
import { IncompatibleSnapshotError, SnapshotProblem } from '../core/index.js';
import { type PortfolioFill, createPortfolio } from './index.js';

const fill = (clientOrderId: string, symbol: string, side: 'buy' | 'sell', quantity: number, price: number, timeMs: number): PortfolioFill => ({ clientOrderId, symbol, side, quantity, price, fee: 1, timeMs });

/** A closed round trip in A, a long in B flipped short, and marks (one replaced at the same time). */
function tradedPortfolio(): ReturnType<typeof createPortfolio> {
  const portfolio = createPortfolio({ initialCash: 10_000 });
  portfolio.apply(fill('a1', 'A', 'buy', 10, 100, 1));
  portfolio.mark(1, { A: 101 });
  portfolio.apply(fill('b1', 'B', 'buy', 5, 50, 2));
  portfolio.mark(2, { A: 102, B: 51 });
  portfolio.apply(fill('a2', 'A', 'sell', 10, 105, 3));
  portfolio.apply(fill('b2', 'B', 'sell', 8, 52, 3));
  portfolio.mark(3, { B: 52 });
  portfolio.mark(3, { B: 53 });
  return portfolio;
}

describe('Portfolio.snapshot and restore', () => {
  it('a restored portfolio books and marks what follows exactly as the original: positions, trades, the equity curve', () => {
    const original = tradedPortfolio();
    const restored = createPortfolio({ initialCash: 10_000 });
    restored.restore(throughJson(original.snapshot()));
    expect(exact(restored.snapshot())).toBe(exact(original.snapshot()));
    for (const portfolio of [original, restored]) {
      portfolio.mark(3, { B: 52.5 });
      portfolio.apply(fill('b3', 'B', 'buy', 3, 50, 4));
      portfolio.mark(4, { A: 99, B: 49 });
    }
    expect(restored.trades()).toEqual(original.trades());
    expect(restored.trades().map(({ symbol, direction }) => `${symbol} ${direction}`)).toEqual(['A long', 'B long', 'B short']);
    expect(restored.openPositions()).toEqual(original.openPositions());
    expect(exact(restored.equityCurve())).toBe(exact(original.equityCurve()));
    expect(restored.equityCurve()).toHaveLength(4);
    expect([restored.cash, restored.realisedPnl, restored.equity]).toEqual([original.cash, original.realisedPnl, original.equity]);
  });

  it('refuses the snapshot of a portfolio of another config, naming the field; the portfolio is unchanged', () => {
    const portfolio = createPortfolio({ initialCash: 10_000, longOnly: true });
    const before = exact(portfolio.snapshot());
    let error: unknown;
    try {
      portfolio.restore(throughJson(tradedPortfolio().snapshot()));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(IncompatibleSnapshotError);
    expect((error as IncompatibleSnapshotError).problem).toBe(SnapshotProblem.spec);
    expect((error as IncompatibleSnapshotError).differences).toEqual([{ field: 'longOnly', snapshot: false, expected: true }]);
    expect(exact(portfolio.snapshot())).toBe(before);
  });

  it('refuses an equity curve whose times go back, naming the field', () => {
    const snapshot = throughJson(tradedPortfolio().snapshot()) as { state: { curve: { points: number[] } } };
    snapshot.state.curve.points[4] = 0;
    expect(() => createPortfolio({ initialCash: 10_000 }).restore(snapshot)).toThrow('state.curve.points point 1 has time 0: times must be finite and increasing');
  });
});
