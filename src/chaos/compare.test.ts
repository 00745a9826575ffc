import { describe, expect, it } from 'vitest';
import { type ComparedFill, type ComparedOrder, type RunOutcome, compareRuns, withFillStatus } from './compare.js';

const order = (id: string, step: number, symbol = 'SPY', side = 'buy', quantity = 10, status = 'filled'): ComparedOrder => ({ clientOrderId: id, step, symbol, side, quantity, status });
const fill = (id: string, price: number, symbol = 'SPY', side = 'buy', quantity = 10): ComparedFill => ({ clientOrderId: id, symbol, side, quantity, price, fee: 1, timeMs: price * 1000 });

const expected: RunOutcome = {
  orders: [order('a', 1), order('b', 2, 'KO', 'sell', 5), order('c', 3)],
  fills: [fill('a', 100), fill('b', 50, 'KO', 'sell', 5), fill('c', 101)],
  portfolio: { finalCash: 1_000, finalEquity: 2_000, openPositions: [{ symbol: 'SPY', quantity: 20 }], trades: 1 },
};

describe('compareRuns', () => {
  it('finds nothing between a run and itself, whatever order its orders were stored in', () => {
    const shuffled = { ...expected, orders: [expected.orders[2]!, expected.orders[0]!, expected.orders[1]!], portfolio: { ...expected.portfolio!, openPositions: [{ symbol: 'SPY', quantity: 20 }, { symbol: 'KO', quantity: 0 }] } };
    expect(compareRuns(expected, shuffled)).toEqual({
      ordersExpected: 3,
      ordersActual: 3,
      lost: [],
      duplicatedById: [],
      duplicatedByContent: [],
      unexpected: [],
      ordersIdentical: true,
      fillsIdentical: true,
      portfolioIdentical: true,
      identical: true,
      firstDifference: null,
    });
  });

  it('counts a lost order and names it as the first difference', () => {
    const result = compareRuns(expected, { ...expected, orders: [expected.orders[0]!, expected.orders[2]!], fills: [expected.fills[0]!, expected.fills[2]!] });
    expect(result.lost).toEqual([expected.orders[1]]);
    expect(result.identical).toBe(false);
    expect(result.firstDifference).toMatchObject({ what: 'order', index: 1, expected: expected.orders[1], actual: expected.orders[2] });
    expect(result.firstDifference?.detail).toBe('order 1 (by step, then id): expected b (step 2, sell 5 KO, filled), got c (step 3, buy 10 SPY, filled)');
    expect(result.fillsIdentical).toBe(false);
  });

  it('counts an order doubled under its own id in the orders and in the fills', () => {
    const result = compareRuns(expected, { ...expected, orders: [...expected.orders, order('c', 3)], fills: [...expected.fills, fill('c', 102)] });
    expect(result.lost).toEqual([]);
    expect(result.duplicatedById).toEqual([
      { clientOrderId: 'c', in: 'orders', expected: 1, actual: 2 },
      { clientOrderId: 'c', in: 'fills', expected: 1, actual: 2 },
    ]);
    expect(result.firstDifference).toMatchObject({ what: 'order', index: 3, expected: null });
  });

  it('counts an order doubled under another id by its content, and an order of no content it had as unexpected', () => {
    const result = compareRuns(expected, { ...expected, orders: [...expected.orders, order('c2', 3), order('z', 9, 'JPM')] });
    expect(result.duplicatedByContent).toEqual([order('c2', 3)]);
    expect(result.unexpected).toEqual([order('z', 9, 'JPM')]);
    expect(result.duplicatedById).toEqual([]);
  });

  it('does not count an order under another id as a duplicate when the one it stands for is lost', () => {
    const result = compareRuns(expected, { ...expected, orders: [expected.orders[0]!, expected.orders[1]!, order('c-other', 3)] });
    expect(result.lost).toEqual([expected.orders[2]]);
    expect(result.duplicatedByContent).toEqual([]);
    expect(result.unexpected).toEqual([order('c-other', 3)]);
  });

  it('tells a fill that differs (price, to the cent), and a portfolio that differs or is missing', () => {
    const fills = [expected.fills[0]!, { ...expected.fills[1]!, price: 50.01 }, expected.fills[2]!];
    const result = compareRuns(expected, { ...expected, fills });
    expect(result.ordersIdentical).toBe(true);
    expect(result.firstDifference).toMatchObject({ what: 'fill', index: 1 });
    expect(result.firstDifference?.detail).toBe('fill 1: expected b (sell 5 KO @ 50, fee 1), got b (sell 5 KO @ 50.01, fee 1)');
    const poorer = compareRuns(expected, { ...expected, portfolio: { ...expected.portfolio!, finalEquity: 1_999.99 } });
    expect(poorer).toMatchObject({ ordersIdentical: true, fillsIdentical: true, portfolioIdentical: false, identical: false });
    expect(poorer.firstDifference?.what).toBe('portfolio');
    expect(compareRuns(expected, { ...expected, portfolio: null }).firstDifference?.detail).toBe('the run left no final report (it did not end)');
  });
});

describe('withFillStatus', () => {
  it('marks the orders a fill names as filled and keeps the others as the venue answered', () => {
    expect(withFillStatus([order('a', 1, 'SPY', 'buy', 10, 'accepted'), order('b', 2, 'SPY', 'buy', 10, 'accepted')], [fill('b', 1)]).map((o) => o.status)).toEqual(['accepted', 'filled']);
  });
});
