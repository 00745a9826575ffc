// Bracket exits of the paper venue (see "Bracket exits" in venue.ts), on small hand-checked cases.
import { describe, expect, it } from 'vitest';
import type { Bar } from '../market/index.js';
import { type Fill, type OrderRequest, type PaperVenueOptions, PaperVenue, RejectReason } from './index.js';

function bar(timeMs: number, open: number, high: number, low: number, close: number, volume = 1000): Bar {
  return { symbol: 'AAA', timeMs, open, high, low, close, volume };
}

function entry(overrides: Partial<OrderRequest> = {}): OrderRequest {
  return { clientOrderId: 'e', symbol: 'AAA', side: 'buy', quantity: 10, type: 'market', exits: { stopLoss: { percent: 5 }, takeProfit: { points: 10 } }, ...overrides };
}

function venue(options: Partial<PaperVenueOptions> = {}): PaperVenue {
  return new PaperVenue({ symbols: ['AAA'], ...options });
}

/**
 * A venue holding `entry(overrides)`, decided on bar 1 and filled at bar 2's open 100 (bar 2 spans
 * 99–101, so no exit at 5 % or 5 points or more triggers on it).
 */
function entered(overrides: Partial<OrderRequest> = {}): PaperVenue {
  const v = venue();
  v.submit(entry(overrides), { timeMs: 1 });
  v.onBar(bar(1, 100, 100, 100, 100));
  v.onBar(bar(2, 100, 101, 99, 100));
  return v;
}

/** `[id, side, quantity, price]` of each fill. */
function rows(fills: readonly Fill[]): Array<[string, string, number, number]> {
  return fills.map((fill) => [fill.clientOrderId, fill.side, fill.quantity, fill.price]);
}

describe('PaperVenue bracket exits', () => {
  it("places a long's stop-loss and take-profit at the entry's fill price, not the signal close", () => {
    const v = venue();
    v.submit(entry(), { timeMs: 1 });
    v.onBar(bar(1, 90, 91, 89, 90));
    // Fills at the open 100: stop 100 × 0.95 = 95, target 100 + 10 = 110.
    expect(rows(v.onBar(bar(2, 100, 104, 97, 103)))).toEqual([['e', 'buy', 10, 100]]);
    expect(v.openOrders().map((order) => [order.request.clientOrderId, order.request.type, order.request.side, order.request.quantity, order.request.stopPrice ?? order.request.limitPrice])).toEqual([
      ['e:stop-loss', 'stop', 'sell', 10, 95],
      ['e:take-profit', 'limit', 'sell', 10, 110],
    ]);
    expect(v.order('e:stop-loss')?.exitOf).toEqual({ entry: 'e', kind: 'stop-loss' });
  });

  it("fills a long's stop gapped through at the open (worse than the stop), and cancels the target", () => {
    const v = entered(); // entry at 100; stop 95, target 110
    // Gap down: opens at 90, below the stop 95.
    expect(rows(v.onBar(bar(3, 90, 92, 88, 91)))).toEqual([['e:stop-loss', 'sell', 10, 90]]);
    expect(v.order('e:take-profit')?.status).toBe('cancelled');
    expect(v.openOrders()).toEqual([]);
  });

  it("fills a short's take-profit gapped through at the open (better than the target)", () => {
    const v = venue();
    v.submit(entry({ side: 'sell', exits: { stopLoss: { points: 5 }, takeProfit: { percent: 10 } } }), { timeMs: 1 });
    v.onBar(bar(1, 100, 100, 100, 100));
    v.onBar(bar(2, 100, 102, 99, 101)); // short at 100: stop buy 105, target buy 90
    expect(rows(v.onBar(bar(3, 95, 96, 91, 92)))).toEqual([]);
    expect(rows(v.onBar(bar(4, 85, 88, 84, 87)))).toEqual([['e:take-profit', 'buy', 10, 85]]);
    expect(v.order('e:stop-loss')?.status).toBe('cancelled');
  });

  it('fills a target reached within a bar at the target price', () => {
    const v = entered();
    expect(rows(v.onBar(bar(3, 105, 112, 104, 106)))).toEqual([['e:take-profit', 'sell', 10, 110]]);
    expect(v.order('e:stop-loss')?.status).toBe('cancelled');
  });

  it('assumes the stop when one bar reaches both the stop and the target', () => {
    const v = entered();
    expect(rows(v.onBar(bar(3, 100, 115, 90, 100)))).toEqual([['e:stop-loss', 'sell', 10, 95]]);
    expect(v.order('e:take-profit')?.status).toBe('cancelled');
  });

  it('lets the exits fill on the entry bar itself after a next-open fill', () => {
    const v = venue();
    v.submit(entry(), { timeMs: 1 });
    v.onBar(bar(1, 100, 100, 100, 100));
    expect(rows(v.onBar(bar(2, 100, 101, 94, 96)))).toEqual([
      ['e', 'buy', 10, 100],
      ['e:stop-loss', 'sell', 10, 95],
    ]);
  });

  it('with close fills, places the exits at the close and lets them fill from the next bar', () => {
    const v = venue({ fillAt: 'close' });
    v.submit(entry(), { timeMs: 1 });
    expect(rows(v.onBar(bar(1, 120, 130, 80, 100)))).toEqual([['e', 'buy', 10, 100]]);
    expect(v.openOrders()).toHaveLength(2);
    expect(rows(v.onBar(bar(2, 100, 111, 99, 105)))).toEqual([['e:take-profit', 'sell', 10, 110]]);
  });

  it('moves a trailing stop up with the highs, never down, then triggers it', () => {
    const v = venue();
    v.submit(entry({ exits: { trailingStop: { points: 4 } } }), { timeMs: 1 });
    v.onBar(bar(1, 100, 100, 100, 100));
    const stop = (): number | undefined => v.order('e:trailing-stop')?.request.stopPrice;
    v.onBar(bar(2, 100, 103, 99, 102)); // entry 100: stop 96; the bar's high 103 then moves it to 99
    expect(stop()).toBe(99);
    v.onBar(bar(3, 102, 108, 101, 107)); // low 101 > 99: no trigger; high 108 → 104
    expect(stop()).toBe(104);
    v.onBar(bar(4, 106, 107, 105, 105.5)); // high 107 < 108: the stop stays at 104
    expect(stop()).toBe(104);
    // Checked against 104, the stop before this bar (not against the high 110 of this bar).
    expect(rows(v.onBar(bar(5, 105, 110, 103, 104)))).toEqual([['e:trailing-stop', 'sell', 10, 104]]);
  });

  it("moves a short's trailing stop down with the lows, as a percent of the best price", () => {
    const v = venue();
    v.submit(entry({ side: 'sell', exits: { trailingStop: { percent: 10 } } }), { timeMs: 1 });
    v.onBar(bar(1, 100, 100, 100, 100));
    v.onBar(bar(2, 100, 101, 90, 92)); // short 100: stop 110; the low 90 moves it to 99
    expect(v.order('e:trailing-stop')?.request.stopPrice).toBeCloseTo(99, 12);
    expect(rows(v.onBar(bar(3, 101, 102, 95, 96)))).toEqual([['e:trailing-stop', 'buy', 10, 101]]); // gapped above 99: the open
  });

  it('of two stops reached in one bar, fills the one the price reaches first from the open', () => {
    const v = venue();
    v.submit(entry({ exits: { stopLoss: { points: 10 }, trailingStop: { points: 5 } } }), { timeMs: 1 });
    v.onBar(bar(1, 100, 100, 100, 100));
    v.onBar(bar(2, 100, 106, 100, 105)); // stop-loss 90, trailing 95 → 101
    expect(rows(v.onBar(bar(3, 104, 104, 80, 85)))).toEqual([['e:trailing-stop', 'sell', 10, 101]]);
    expect(v.order('e:stop-loss')?.status).toBe('cancelled');
  });

  it('cancelBracket cancels the open exits (a strategy closing the position itself)', () => {
    const v = entered();
    expect(v.cancelBracket('e')).toBe(2);
    expect(v.onBar(bar(3, 80, 120, 70, 100))).toEqual([]);
    expect(v.cancelBracket('e')).toBe(0);
    expect(v.cancelBracket('unknown')).toBe(0);
  });

  it('with partial fills, the exits follow the filled quantity, and a filled exit cancels the rest of the entry', () => {
    const v = venue({ partialFills: { maxFractionOfBarVolume: 0.5 } });
    v.submit(entry({ quantity: 100 }), { timeMs: 1 });
    v.onBar(bar(1, 100, 100, 100, 100));
    expect(rows(v.onBar(bar(2, 100, 101, 99, 100, 60)))).toEqual([['e', 'buy', 30, 100]]);
    expect(v.order('e:stop-loss')?.request.quantity).toBe(30);
    expect(rows(v.onBar(bar(3, 100, 101, 99, 100, 80)))).toEqual([['e', 'buy', 40, 100]]);
    expect(v.order('e:take-profit')?.request.quantity).toBe(70);
    // Orders match in submission order: the entry takes the bar's capacity (20) first, and its exits
    // grow to 90; the stop (gapped through) then triggers with nothing left to fill it this bar: it
    // carries, and cancels the target and the entry's last 10.
    expect(rows(v.onBar(bar(4, 94, 95, 93, 94, 40)))).toEqual([['e', 'buy', 20, 94]]);
    expect(v.order('e')).toMatchObject({ status: 'cancelled', filledQuantity: 90 });
    expect(v.order('e:take-profit')?.status).toBe('cancelled');
    expect(v.order('e:stop-loss')).toMatchObject({ status: 'accepted', triggered: true, remainingQuantity: 90 });
    expect(rows(v.onBar(bar(5, 120, 121, 119, 120, 1000)))).toEqual([['e:stop-loss', 'sell', 90, 120]]);
  });

  it('places no second bracket when the entry is submitted again (idempotency)', () => {
    const v = venue();
    expect(v.submit(entry(), { timeMs: 1 }).status).toBe('accepted');
    expect(v.submit(entry(), { timeMs: 1 }).status).toBe('duplicate');
    v.onBar(bar(1, 100, 100, 100, 100));
    v.onBar(bar(2, 100, 101, 99, 100));
    expect(v.submit(entry(), { timeMs: 2 }).status).toBe('duplicate');
    expect(v.submit({ clientOrderId: 'e:stop-loss', symbol: 'AAA', side: 'sell', quantity: 10, type: 'market' }, { timeMs: 2 }).status).toBe('duplicate');
    expect(v.openOrders()).toHaveLength(2);
  });

  it.each([
    [{}, 'exits must name at least one of stopLoss, trailingStop, takeProfit'],
    [{ stopLos: { percent: 2 } }, 'exits.stopLos is not an exit'],
    [{ stopLoss: { percent: 2, points: 1 } }, 'exits.stopLoss must be { points } or { percent }'],
    [{ stopLoss: { percent: 100 } }, 'exits.stopLoss.percent must be a finite number > 0 and < 100, got 100'],
    [{ takeProfit: { points: -1 } }, 'exits.takeProfit.points must be a finite number > 0, got -1'],
  ])('rejects exits %j', (exits, message) => {
    const result = venue().submit(entry({ exits: exits as OrderRequest['exits'] }), { timeMs: 1 });
    expect(result.status).toBe('rejected');
    expect(result.reason).toBe(RejectReason.invalidExits);
    expect(result.message).toContain(message);
  });

  it('places no exit whose price would be <= 0', () => {
    const v = entered({ exits: { stopLoss: { points: 200 }, takeProfit: { points: 5 } } });
    expect(v.openOrders().map((order) => order.request.clientOrderId)).toEqual(['e:take-profit']);
  });
});
