import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import {
  type PortfolioFill,
  ShortSellingNotAllowedError,
  createPortfolio,
  isShortSellingNotAllowedError,
} from './index.js';

let fillCounter = 0;
function fill(side: 'buy' | 'sell', quantity: number, price: number, fee = 0, timeMs = 0, symbol = 'AAA'): PortfolioFill {
  fillCounter += 1;
  return { clientOrderId: `o${fillCounter}`, symbol, side, quantity, price, fee, timeMs };
}

describe('Portfolio accounting', () => {
  it('books a buy then a sell with fees: cash, realised PnL and the trade record', () => {
    const portfolio = createPortfolio({ initialCash: 10_000 });
    portfolio.apply(fill('buy', 10, 100, 1, 1_000));
    // 10 000 − 10 × 100 − 1
    expect(portfolio.cash).toBe(8_999);
    expect(portfolio.realisedPnl).toBe(-1);
    expect(portfolio.position('AAA')).toEqual({
      symbol: 'AAA', quantity: 10, averagePrice: 100, markPrice: 100, marketValue: 1_000, unrealisedPnl: 0,
    });

    portfolio.apply(fill('sell', 10, 110, 2, 2_000));
    // 8 999 + 10 × 110 − 2; realised = 10 × (110 − 100) − 1 − 2
    expect(portfolio.cash).toBe(10_097);
    expect(portfolio.realisedPnl).toBe(97);
    expect(portfolio.unrealisedPnl).toBe(0);
    expect(portfolio.equity).toBe(10_097);
    expect(portfolio.position('AAA').quantity).toBe(0);
    expect(portfolio.openPositions()).toEqual([]);
    expect(portfolio.trades()).toEqual([
      {
        symbol: 'AAA', direction: 'long', quantity: 10, entryTimeMs: 1_000, exitTimeMs: 2_000,
        entryPrice: 100, exitPrice: 110, grossPnl: 100, fees: 3, netPnl: 97, returnFraction: 0.097, fillCount: 2,
      },
    ]);
  });

  it('averages the cost over two buys and keeps it on a partial sell', () => {
    const portfolio = createPortfolio({ initialCash: 10_000 });
    portfolio.apply(fill('buy', 10, 100));
    portfolio.apply(fill('buy', 30, 120));
    // (10 × 100 + 30 × 120) / 40 = 4 600 / 40
    expect(portfolio.position('AAA').averagePrice).toBe(115);
    portfolio.markToMarket(1, { AAA: 125 });
    expect(portfolio.unrealisedPnl).toBe(400); // 40 × (125 − 115)

    portfolio.apply(fill('sell', 20, 130, 0, 2));
    expect(portfolio.realisedPnl).toBe(300); // 20 × (130 − 115)
    expect(portfolio.position('AAA')).toMatchObject({ quantity: 20, averagePrice: 115 });
    expect(portfolio.cash).toBe(8_000); // 10 000 − 1 000 − 3 600 + 2 600
    const point = portfolio.markToMarket(3, { AAA: 130 });
    expect(point).toEqual({
      timeMs: 3, cash: 8_000, equity: 10_600, realisedPnl: 300, unrealisedPnl: 300, grossExposure: 2_600, openPositions: 1,
    });
    expect(portfolio.trades()).toEqual([]); // still open
  });

  it('shorts then covers', () => {
    const portfolio = createPortfolio({ initialCash: 10_000 });
    portfolio.apply(fill('sell', 10, 50, 0.5, 1));
    expect(portfolio.position('AAA')).toMatchObject({ quantity: -10, averagePrice: 50 });
    expect(portfolio.cash).toBe(10_499.5); // proceeds credited, fee paid
    portfolio.markToMarket(2, { AAA: 55 });
    expect(portfolio.unrealisedPnl).toBe(-50); // −10 × (55 − 50)
    expect(portfolio.equity).toBe(9_949.5); // 10 499.5 − 10 × 55

    portfolio.apply(fill('buy', 10, 40, 0.5, 3));
    expect(portfolio.cash).toBe(10_099); // 10 499.5 − 400 − 0.5
    expect(portfolio.realisedPnl).toBe(99); // 10 × (50 − 40) − 1
    expect(portfolio.trades()).toEqual([
      {
        symbol: 'AAA', direction: 'short', quantity: 10, entryTimeMs: 1, exitTimeMs: 3,
        entryPrice: 50, exitPrice: 40, grossPnl: 100, fees: 1, netPnl: 99, returnFraction: 0.198, fillCount: 2,
      },
    ]);
  });

  it('flips long to short in one fill: two trades, the fee split by quantity', () => {
    const portfolio = createPortfolio({ initialCash: 10_000 });
    portfolio.apply(fill('buy', 10, 100, 1, 1));
    // Sells 30: closes 10 (fee share 3 × 10/30 = 1), opens 20 short at 110 (fee share 2).
    portfolio.apply(fill('sell', 30, 110, 3, 2));
    expect(portfolio.position('AAA')).toMatchObject({ quantity: -20, averagePrice: 110 });
    expect(portfolio.realisedPnl).toBe(96); // 100 − 1 − 3
    portfolio.apply(fill('buy', 20, 105, 2, 3));
    expect(portfolio.realisedPnl).toBe(194); // 96 + 20 × (110 − 105) − 2
    expect(portfolio.cash).toBe(10_194); // 10 000 − 1 001 + 3 297 − 2 102
    expect(portfolio.trades()).toEqual([
      {
        symbol: 'AAA', direction: 'long', quantity: 10, entryTimeMs: 1, exitTimeMs: 2,
        entryPrice: 100, exitPrice: 110, grossPnl: 100, fees: 2, netPnl: 98, returnFraction: 0.098, fillCount: 2,
      },
      {
        symbol: 'AAA', direction: 'short', quantity: 20, entryTimeMs: 2, exitTimeMs: 3,
        entryPrice: 110, exitPrice: 105, grossPnl: 100, fees: 4, netPnl: 96, returnFraction: 96 / 2_200, fillCount: 2,
      },
    ]);
  });

  it('closes a fractional position whose quantities cancel only up to rounding', () => {
    const portfolio = createPortfolio({ initialCash: 1_000 });
    portfolio.apply(fill('buy', 0.1, 10));
    portfolio.apply(fill('buy', 0.2, 10));
    portfolio.apply(fill('sell', 0.3, 10));
    expect(portfolio.position('AAA').quantity).toBe(0);
    expect(portfolio.trades()).toHaveLength(1);
  });

  it('refuses, in long-only mode, a sell beyond the position and changes nothing', () => {
    const portfolio = createPortfolio({ initialCash: 10_000, longOnly: true });
    portfolio.apply(fill('buy', 5, 100, 1, 1));
    const before = {
      cash: portfolio.cash, realised: portfolio.realisedPnl, position: portfolio.position('AAA'),
      trades: portfolio.trades(), curve: portfolio.equityCurve(),
    };
    let caught: unknown;
    try {
      portfolio.apply({ clientOrderId: 'too-big', symbol: 'AAA', side: 'sell', quantity: 6, price: 120, fee: 1, timeMs: 2 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ShortSellingNotAllowedError);
    expect(isShortSellingNotAllowedError(caught)).toBe(true);
    expect(caught).toMatchObject({ symbol: 'AAA', clientOrderId: 'too-big', requestedQuantity: 6, heldQuantity: 5, retryable: false });
    expect((caught as Error).message).toContain('sells 6 AAA but the long-only portfolio holds only 5');
    expect({
      cash: portfolio.cash, realised: portfolio.realisedPnl, position: portfolio.position('AAA'),
      trades: portfolio.trades(), curve: portfolio.equityCurve(),
    }).toEqual(before);
    expect(() => portfolio.apply(fill('sell', 1, 100, 0, 2, 'BBB'))).toThrow(ShortSellingNotAllowedError);
    portfolio.apply(fill('sell', 5, 120, 1, 3)); // exactly the position is fine
    expect(portfolio.position('AAA').quantity).toBe(0);
  });

  it.each([
    [{ quantity: 0 }, 'fill.quantity'],
    [{ quantity: Number.NaN }, 'fill.quantity'],
    [{ price: -1 }, 'fill.price'],
    [{ fee: -0.01 }, 'fill.fee'],
    [{ symbol: '' }, 'fill.symbol'],
    [{ side: 'hold' }, 'fill.side'],
  ])('rejects a malformed fill %o naming %s', (patch, field) => {
    const portfolio = createPortfolio();
    const bad = { ...fill('buy', 1, 10), ...patch } as PortfolioFill;
    expect(() => portfolio.apply(bad)).toThrow(expect.objectContaining({ name: 'InvalidInputError', field }) as Error);
    expect(portfolio.cash).toBe(100_000);
  });

  it('validates options and marks', () => {
    expect(() => createPortfolio({ initialCash: -1 })).toThrow(InvalidInputError);
    const portfolio = createPortfolio();
    portfolio.markToMarket(10, new Map([['AAA', 5]]));
    expect(() => portfolio.markToMarket(9, {})).toThrow(/must not go back in time/);
    expect(() => portfolio.markToMarket(11, { AAA: 0 })).toThrow(/prices\.AAA/);
    // Marking again at the same time replaces the point.
    portfolio.markToMarket(10, {});
    expect(portfolio.equityCurve()).toHaveLength(1);
  });
});
