import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type Fill, type OrderRequest, type PaperVenueOptions, PaperVenue, RejectReason } from './index.js';

function bar(timeMs: number, open: number, high: number, low: number, close: number, volume = 1000, symbol = 'AAA'): Bar {
  return { symbol, timeMs, open, high, low, close, volume };
}

function order(overrides: Partial<OrderRequest> = {}): OrderRequest {
  return { clientOrderId: 'o1', symbol: 'AAA', side: 'buy', quantity: 10, type: 'market', ...overrides };
}

function venue(options: Partial<PaperVenueOptions> = {}): PaperVenue {
  return new PaperVenue({ symbols: ['AAA', 'BBB'], ...options });
}

/** Prices of the fills, with their quantities. */
function summary(fills: readonly Fill[]): [number, number][] {
  return fills.map((fill) => [fill.quantity, fill.price]);
}

describe('PaperVenue market orders', () => {
  it('fills at the next bar open with next-open (not on the decision bar)', () => {
    const v = venue();
    expect(v.submit(order(), { timeMs: 1 })).toEqual({ status: 'accepted' });
    expect(v.onBar(bar(1, 100, 105, 95, 102))).toEqual([]);
    expect(v.onBar(bar(2, 103, 106, 101, 104))).toEqual([
      { clientOrderId: 'o1', symbol: 'AAA', side: 'buy', quantity: 10, price: 103, fee: 0, timeMs: 2 },
    ]);
    expect(v.order('o1')).toMatchObject({ status: 'filled', filledQuantity: 10, remainingQuantity: 0, averagePrice: 103 });
    expect(v.openOrders()).toEqual([]);
  });

  it('also fills at the next open when onBar runs before the decisions', () => {
    const v = venue();
    expect(v.onBar(bar(1, 100, 105, 95, 102))).toEqual([]);
    v.submit(order({ side: 'sell' }), { timeMs: 1 });
    expect(summary(v.onBar(bar(2, 103, 106, 101, 104)))).toEqual([[10, 103]]);
  });

  it("fills at the decision bar's close with fillAt 'close'", () => {
    const v = venue({ fillAt: 'close' });
    v.submit(order(), { timeMs: 1 });
    expect(v.onBar(bar(1, 100, 105, 95, 102))).toEqual([
      { clientOrderId: 'o1', symbol: 'AAA', side: 'buy', quantity: 10, price: 102, fee: 0, timeMs: 1 },
    ]);
  });

  it('only matches orders of the bar symbol', () => {
    const v = venue();
    v.submit(order({ symbol: 'BBB' }), { timeMs: 1 });
    expect(v.onBar(bar(2, 100, 101, 99, 100))).toEqual([]);
    expect(summary(v.onBar(bar(2, 50, 51, 49, 50, 1000, 'BBB')))).toEqual([[10, 50]]);
  });
});

describe('PaperVenue limit and stop orders (next-open: the bar after the decision)', () => {
  // [side, type, price, [open, high, low, close], expected fill price or null]
  const cases: [OrderRequest['side'], 'limit' | 'stop', number, [number, number, number, number], number | null][] = [
    ['buy', 'limit', 100, [101, 103, 99, 102], 100], // touched: at the limit
    ['buy', 'limit', 100, [98, 99, 97, 98], 98], // gap below the limit: the better open
    ['buy', 'limit', 100, [101, 103, 100.5, 102], null], // low above the limit
    ['sell', 'limit', 100, [99, 101, 98, 100], 100],
    ['sell', 'limit', 100, [102, 103, 101, 102], 102], // gap above: the better open
    ['sell', 'limit', 100, [98, 99.5, 97, 98], null],
    ['buy', 'stop', 100, [99, 101, 98, 100], 100], // triggered intrabar: at the stop
    ['buy', 'stop', 100, [102, 103, 101, 102], 102], // gap through the stop: the worse open
    ['buy', 'stop', 100, [98, 99.5, 97, 98], null],
    ['sell', 'stop', 100, [101, 102, 99, 100], 100],
    ['sell', 'stop', 100, [97, 98, 96, 97], 97],
    ['sell', 'stop', 100, [101, 102, 100.5, 101], null],
  ];
  it.each(cases)('%s %s at %d on bar %j fills at %s', (side, type, price, [o, h, l, c], expected) => {
    const v = venue();
    const request = order({ side, type, ...(type === 'limit' ? { limitPrice: price } : { stopPrice: price }) });
    expect(v.submit(request, { timeMs: 0 })).toEqual({ status: 'accepted' });
    const fills = v.onBar(bar(1, o, h, l, c));
    expect(summary(fills)).toEqual(expected === null ? [] : [[10, expected]]);
    expect(v.order('o1')?.status).toBe(expected === null ? 'accepted' : 'filled');
  });

  it('keeps a limit order resting until a later bar reaches it', () => {
    const v = venue();
    v.submit(order({ type: 'limit', limitPrice: 95 }), { timeMs: 0 });
    expect(v.onBar(bar(1, 100, 101, 96, 97))).toEqual([]);
    expect(v.openOrders().map((state) => state.request.clientOrderId)).toEqual(['o1']);
    expect(summary(v.onBar(bar(2, 96, 97, 94, 95)))).toEqual([[10, 95]]);
  });
});

describe("PaperVenue limit and stop orders with fillAt 'close'", () => {
  it('on the decision bar only the close counts; later bars use the whole range', () => {
    const v = venue({ fillAt: 'close' });
    v.submit(order({ clientOrderId: 'hit', type: 'limit', limitPrice: 100 }), { timeMs: 1 });
    v.submit(order({ clientOrderId: 'miss', type: 'limit', limitPrice: 98 }), { timeMs: 1 });
    v.submit(order({ clientOrderId: 'stop', side: 'sell', type: 'stop', stopPrice: 99.6 }), { timeMs: 1 });
    // low 95 was reached before the decision, so 'miss' must not fill on this bar.
    expect(v.onBar(bar(1, 101, 102, 95, 99.5)).map((fill) => [fill.clientOrderId, fill.price])).toEqual([
      ['hit', 99.5],
      ['stop', 99.5],
    ]);
    expect(v.onBar(bar(2, 100.5, 101, 97, 99)).map((fill) => [fill.clientOrderId, fill.price])).toEqual([['miss', 98]]);
  });
});

describe('PaperVenue slippage (always against the trader)', () => {
  const cases: [string, PaperVenueOptions['slippage'], OrderRequest['side'], number][] = [
    ['none', { model: 'none' }, 'buy', 100],
    ['bps buy', { model: 'bps', bps: 10 }, 'buy', 100.1],
    ['bps sell', { model: 'bps', bps: 10 }, 'sell', 99.9],
    ['fixed buy', { model: 'fixed', amountPerShare: 0.05 }, 'buy', 100.05],
    ['fixed sell', { model: 'fixed', amountPerShare: 0.05 }, 'sell', 99.95],
  ];
  it.each(cases)('%s: a market order at open 100 fills at %s', (_name, slippage, side, expected) => {
    const v = venue({ slippage });
    v.submit(order({ side }), { timeMs: 0 });
    const [fill] = v.onBar(bar(1, 100, 101, 99, 100));
    expect(fill?.price).toBeCloseTo(expected, 10);
  });

  it('never takes a limit order past its limit', () => {
    const v = venue({ slippage: { model: 'fixed', amountPerShare: 0.05 } });
    v.submit(order({ clientOrderId: 'b', type: 'limit', limitPrice: 100 }), { timeMs: 0 });
    v.submit(order({ clientOrderId: 's', side: 'sell', type: 'limit', limitPrice: 100 }), { timeMs: 0 });
    v.submit(order({ clientOrderId: 'b2', type: 'limit', limitPrice: 100.5 }), { timeMs: 0 });
    const fills = v.onBar(bar(1, 99.98, 100.2, 99.9, 100));
    expect(fills.map((fill) => [fill.clientOrderId, fill.price])).toEqual([
      ['b', 100], // min(99.98 + 0.05, 100)
      ['s', 100], // max(100 - 0.05, 100)
      ['b2', 100.03], // 99.98 + 0.05, under its limit
    ]);
    expect(fills[2]?.price).toBeCloseTo(100.03, 10);
  });

  it('slips stop fills too', () => {
    const v = venue({ slippage: { model: 'fixed', amountPerShare: 0.25 } });
    v.submit(order({ side: 'sell', type: 'stop', stopPrice: 100 }), { timeMs: 0 });
    expect(summary(v.onBar(bar(1, 101, 102, 99, 100)))).toEqual([[10, 99.75]]);
  });
});

describe('PaperVenue fees (10 shares at 100, notional 1000)', () => {
  const cases: [string, PaperVenueOptions['fees'], number][] = [
    ['none', { model: 'none' }, 0],
    ['fixed per order', { model: 'fixed', amountPerOrder: 1 }, 1],
    ['bps of notional', { model: 'bps', bps: 5 }, 0.5],
    ['bps with a minimum below the fee', { model: 'bps', bps: 5, minimumPerOrder: 0.2 }, 0.5],
    ['bps with a minimum above the fee', { model: 'bps', bps: 5, minimumPerOrder: 2 }, 2],
    ['per share', { model: 'per-share', amountPerShare: 0.01 }, 0.1],
    ['per share with a minimum', { model: 'per-share', amountPerShare: 0.01, minimumPerOrder: 1 }, 1],
  ];
  it.each(cases)('%s: fee %s', (_name, fees, expected) => {
    const v = venue({ fees });
    v.submit(order(), { timeMs: 0 });
    const [fill] = v.onBar(bar(1, 100, 101, 99, 100));
    expect(fill?.fee).toBeCloseTo(expected, 12);
    expect(v.order('o1')?.totalFee).toBeCloseTo(expected, 12);
  });

  it('charges a fixed fee once per order and a minimum once per order over partial fills', () => {
    const partialFills = { maxFractionOfBarVolume: 0.1 };
    const fixed = venue({ partialFills, fees: { model: 'fixed', amountPerOrder: 1 } });
    const perShare = venue({ partialFills, fees: { model: 'per-share', amountPerShare: 0.01, minimumPerOrder: 2.5 } });
    const fees: number[][] = [[], []];
    [fixed, perShare].forEach((v, i) => {
      v.submit(order({ quantity: 300 }), { timeMs: 0 });
      for (let t = 1; t <= 3; t++) fees[i]?.push(...v.onBar(bar(t, 100, 101, 99, 100)).map((fill) => fill.fee));
    });
    expect(fees[0]).toEqual([1, 0, 0]);
    // raw 1, 1, 1: the first pays the 2.5 minimum, the second nothing, the third 3 - 2.5.
    expect(fees[1]).toEqual([2.5, 0, 0.5]);
  });
});

describe('PaperVenue partial fills', () => {
  it('takes at most the fraction of each bar volume and carries the remainder', () => {
    const v = venue({ partialFills: { maxFractionOfBarVolume: 0.1 } });
    v.submit(order({ quantity: 250 }), { timeMs: 0 });
    expect(summary(v.onBar(bar(1, 100, 101, 99, 100)))).toEqual([[100, 100]]);
    expect(v.order('o1')).toMatchObject({ status: 'partially-filled', filledQuantity: 100, remainingQuantity: 150 });
    expect(summary(v.onBar(bar(2, 101, 102, 100, 101, 500)))).toEqual([[50, 101]]);
    expect(summary(v.onBar(bar(3, 102, 103, 101, 102)))).toEqual([[100, 102]]);
    expect(summary(v.onBar(bar(4, 103, 104, 102, 103)))).toEqual([]);
    expect(v.order('o1')).toMatchObject({ status: 'filled', filledQuantity: 250, remainingQuantity: 0 });
    expect(v.order('o1')?.averagePrice).toBeCloseTo((100 * 100 + 50 * 101 + 100 * 102) / 250, 10);
  });

  it('shares a bar volume between orders first come first served', () => {
    const v = venue({ partialFills: { maxFractionOfBarVolume: 0.1 } });
    v.submit(order({ clientOrderId: 'a', quantity: 150 }), { timeMs: 0 });
    v.submit(order({ clientOrderId: 'b', quantity: 100, side: 'sell' }), { timeMs: 0 });
    const ids = (fills: readonly Fill[]): [string, number][] => fills.map((fill) => [fill.clientOrderId, fill.quantity]);
    expect(ids(v.onBar(bar(1, 100, 101, 99, 100)))).toEqual([['a', 100]]);
    expect(ids(v.onBar(bar(2, 100, 101, 99, 100)))).toEqual([
      ['a', 50],
      ['b', 50],
    ]);
    expect(ids(v.onBar(bar(3, 100, 101, 99, 100)))).toEqual([['b', 50]]);
  });

  it('rounds partial quantities down to the lot size (0 = no rounding)', () => {
    const whole = venue({ partialFills: { maxFractionOfBarVolume: 0.1 } });
    const exact = venue({ partialFills: { maxFractionOfBarVolume: 0.1, lotSize: 0 } });
    for (const v of [whole, exact]) v.submit(order({ quantity: 150 }), { timeMs: 0 });
    expect(whole.onBar(bar(1, 100, 101, 99, 100, 1005)).map((fill) => fill.quantity)).toEqual([100]);
    expect(exact.onBar(bar(1, 100, 101, 99, 100, 1005)).map((fill) => fill.quantity)).toEqual([100.5]);
    expect(whole.onBar(bar(2, 100, 101, 99, 100, 5)).map((fill) => fill.quantity)).toEqual([]);
  });

  it('rests a triggered stop remainder as a market order', () => {
    const v = venue({ partialFills: { maxFractionOfBarVolume: 0.1 } });
    v.submit(order({ quantity: 150, type: 'stop', stopPrice: 100 }), { timeMs: 0 });
    expect(summary(v.onBar(bar(1, 99, 101, 98, 100)))).toEqual([[100, 100]]);
    expect(v.order('o1')?.triggered).toBe(true);
    expect(summary(v.onBar(bar(2, 97, 98, 96, 97)))).toEqual([[50, 97]]);
  });
});

describe('PaperVenue idempotency', () => {
  it('drops a duplicate submitted before the fill: fills once', () => {
    const v = venue();
    expect(v.submit(order(), { timeMs: 0 }).status).toBe('accepted');
    expect(v.submit(order(), { timeMs: 0 })).toEqual({ status: 'duplicate' });
    expect(v.submit(order({ quantity: 99 }), { timeMs: 0 })).toEqual({ status: 'duplicate' });
    expect(summary(v.onBar(bar(1, 100, 101, 99, 100)))).toEqual([[10, 100]]);
  });

  it('drops a duplicate submitted after the fill: never fills twice', () => {
    const v = venue();
    v.submit(order(), { timeMs: 0 });
    expect(v.onBar(bar(1, 100, 101, 99, 100))).toHaveLength(1);
    expect(v.submit(order(), { timeMs: 1 })).toEqual({ status: 'duplicate' });
    expect(v.onBar(bar(2, 100, 101, 99, 100))).toEqual([]);
    expect(v.order('o1')?.fills).toHaveLength(1);
  });

  it('treats a rejected or cancelled id as used', () => {
    const v = venue();
    expect(v.submit(order({ quantity: 0 }), { timeMs: 0 }).status).toBe('rejected');
    expect(v.submit(order(), { timeMs: 0 })).toEqual({ status: 'duplicate' });
    v.submit(order({ clientOrderId: 'o2' }), { timeMs: 0 });
    v.cancel('o2');
    expect(v.submit(order({ clientOrderId: 'o2' }), { timeMs: 0 })).toEqual({ status: 'duplicate' });
    expect(v.onBar(bar(1, 100, 101, 99, 100))).toEqual([]);
  });
});

describe('PaperVenue epoch fencing', () => {
  it('refuses an epoch below the highest its source used, raises the floor with a higher one, and keeps sources apart', () => {
    const v = venue();
    expect(v.admitEpoch('agent-a', 0)).toBe(true);
    expect(v.admitEpoch('agent-a', 2)).toBe(true);
    expect(v.epochOf('agent-a')).toBe(2);
    expect(v.admitEpoch('agent-a', 1)).toBe(false);
    expect(v.admitEpoch('agent-a', 2)).toBe(true);
    expect(v.admitEpoch('agent-b', 0)).toBe(true);
    expect(v.epochOf('agent-b')).toBe(0);
  });

  it('refuses an epoch that is not a whole number >= 0, naming it', () => {
    expect(() => venue().admitEpoch('agent-a', -1)).toThrow(InvalidInputError);
    expect(() => venue().admitEpoch('agent-a', 1.5)).toThrow(/epoch: must be a whole number >= 0, got 1.5/);
  });
});

describe('PaperVenue cancel', () => {
  it('cancels an open order, which then never fills', () => {
    const v = venue();
    v.submit(order(), { timeMs: 0 });
    expect(v.cancel('o1')).toEqual({ status: 'cancelled' });
    expect(v.openOrders()).toEqual([]);
    expect(v.onBar(bar(1, 100, 101, 99, 100))).toEqual([]);
    expect(v.order('o1')).toMatchObject({ status: 'cancelled', filledQuantity: 0, remainingQuantity: 0 });
  });

  it('cancels the remainder of a partly filled order and keeps its fills', () => {
    const v = venue({ partialFills: { maxFractionOfBarVolume: 0.1 } });
    v.submit(order({ quantity: 150 }), { timeMs: 0 });
    v.onBar(bar(1, 100, 101, 99, 100));
    expect(v.cancel('o1')).toEqual({ status: 'cancelled' });
    expect(v.onBar(bar(2, 100, 101, 99, 100))).toEqual([]);
    expect(v.order('o1')).toMatchObject({ status: 'cancelled', filledQuantity: 100 });
  });

  it('says why it cannot cancel', () => {
    const v = venue();
    v.submit(order(), { timeMs: 0 });
    v.onBar(bar(1, 100, 101, 99, 100));
    expect(v.cancel('o1')).toMatchObject({ status: 'filled', reason: RejectReason.notOpen });
    expect(v.cancel('nope')).toMatchObject({ status: 'rejected', reason: RejectReason.unknownOrder });
  });
});

describe('PaperVenue resize', () => {
  it('sets the quantity of an open order before its first fill, keeping its place in the queue', () => {
    const v = venue();
    v.submit(order(), { timeMs: 0 });
    v.submit(order({ clientOrderId: 'o2', quantity: 5 }), { timeMs: 0 });
    expect(v.resize('o1', 7)).toEqual({ status: 'accepted' });
    expect(summary(v.onBar(bar(1, 100, 101, 99, 100)))).toEqual([
      [7, 100],
      [5, 100],
    ]);
  });

  it('refuses an order that filled (even in part), an unknown one and a bad quantity, changing nothing', () => {
    const v = venue({ partialFills: { maxFractionOfBarVolume: 0.1 } });
    v.submit(order({ quantity: 150 }), { timeMs: 0 });
    v.submit(order({ clientOrderId: 'o2' }), { timeMs: 5 });
    expect(v.resize('o2', 0)).toMatchObject({ status: 'rejected', reason: RejectReason.invalidQuantity });
    expect(v.resize('o2', Number.NaN)).toMatchObject({ status: 'rejected', reason: RejectReason.invalidQuantity });
    expect(v.resize('nope', 1)).toMatchObject({ status: 'rejected', reason: RejectReason.unknownOrder });
    v.onBar(bar(1, 100, 101, 99, 100));
    expect(v.resize('o1', 120)).toMatchObject({ status: 'partially-filled', reason: RejectReason.notOpen });
    expect(v.order('o1')).toMatchObject({ filledQuantity: 100, remainingQuantity: 50 });
    expect(v.order('o2')?.request.quantity).toBe(10);
  });
});

describe('PaperVenue rejects', () => {
  const cases: [string, Record<string, unknown>, RejectReason][] = [
    ['empty id', { clientOrderId: '' }, RejectReason.invalidClientOrderId],
    ['unknown symbol', { symbol: 'ZZZ' }, RejectReason.unknownSymbol],
    ['bad side', { side: 'short' }, RejectReason.invalidSide],
    ['zero quantity', { quantity: 0 }, RejectReason.invalidQuantity],
    ['negative quantity', { quantity: -5 }, RejectReason.invalidQuantity],
    ['NaN quantity', { quantity: Number.NaN }, RejectReason.invalidQuantity],
    ['infinite quantity', { quantity: Infinity }, RejectReason.invalidQuantity],
    ['bad type', { type: 'iceberg' }, RejectReason.invalidType],
    ['limit without price', { type: 'limit' }, RejectReason.missingLimitPrice],
    ['limit with zero price', { type: 'limit', limitPrice: 0 }, RejectReason.invalidLimitPrice],
    ['stop without price', { type: 'stop' }, RejectReason.missingStopPrice],
    ['stop with NaN price', { type: 'stop', stopPrice: Number.NaN }, RejectReason.invalidStopPrice],
    ['market with a limit price', { limitPrice: 100 }, RejectReason.unexpectedLimitPrice],
    ['limit with a stop price', { type: 'limit', limitPrice: 100, stopPrice: 90 }, RejectReason.unexpectedStopPrice],
  ];
  it.each(cases)('%s → %s', (_name, overrides, reason) => {
    const v = venue();
    const result = v.submit({ ...order(), ...overrides }, { timeMs: 0 });
    expect(result).toMatchObject({ status: 'rejected', reason });
    expect(result.message).toMatch(/\S/);
    expect(v.onBar(bar(1, 100, 101, 99, 100))).toEqual([]);
    if (reason !== RejectReason.invalidClientOrderId) expect(v.order('o1')).toMatchObject({ status: 'rejected', reason });
  });

  it('rejects an order decided on a bar the venue has already passed (stale-bar)', () => {
    const nextOpen = venue();
    nextOpen.onBar(bar(5, 100, 101, 99, 100));
    expect(nextOpen.submit(order(), { timeMs: 4 })).toMatchObject({ status: 'rejected', reason: RejectReason.staleBar });
    expect(nextOpen.submit(order({ clientOrderId: 'o2' }), { timeMs: 5 }).status).toBe('accepted');
    const close = venue({ fillAt: 'close' });
    close.onBar(bar(5, 100, 101, 99, 100));
    expect(close.submit(order(), { timeMs: 5 })).toMatchObject({ status: 'rejected', reason: RejectReason.staleBar });
    // Another symbol's bar 5 has not been processed yet.
    expect(close.submit(order({ clientOrderId: 'o2', symbol: 'BBB' }), { timeMs: 5 }).status).toBe('accepted');
  });

  it('throws for a caller bug in nowBar', () => {
    expect(() => venue().submit(order(), { timeMs: Number.NaN })).toThrow(InvalidInputError);
  });
});

describe('PaperVenue options and bars', () => {
  const cases: [string, unknown, string][] = [
    ['no symbols', { symbols: [] }, 'symbols'],
    ['blank symbol', { symbols: ['AAA', ' '] }, 'symbols[1]'],
    ['bad fillAt', { symbols: ['AAA'], fillAt: 'open' }, 'fillAt'],
    ['bad slippage model', { symbols: ['AAA'], slippage: { model: 'random' } }, 'slippage.model'],
    ['negative bps', { symbols: ['AAA'], slippage: { model: 'bps', bps: -1 } }, 'slippage.bps'],
    ['missing fixed amount', { symbols: ['AAA'], slippage: { model: 'fixed' } }, 'slippage.amountPerShare'],
    ['bad fee model', { symbols: ['AAA'], fees: { model: 'flat' } }, 'fees.model'],
    ['negative fixed fee', { symbols: ['AAA'], fees: { model: 'fixed', amountPerOrder: -1 } }, 'fees.amountPerOrder'],
    ['negative minimum', { symbols: ['AAA'], fees: { model: 'bps', bps: 1, minimumPerOrder: -1 } }, 'fees.minimumPerOrder'],
    ['NaN per share', { symbols: ['AAA'], fees: { model: 'per-share', amountPerShare: Number.NaN } }, 'fees.amountPerShare'],
    ['fraction 0', { symbols: ['AAA'], partialFills: { maxFractionOfBarVolume: 0 } }, 'partialFills.maxFractionOfBarVolume'],
    ['fraction > 1', { symbols: ['AAA'], partialFills: { maxFractionOfBarVolume: 1.5 } }, 'partialFills.maxFractionOfBarVolume'],
    ['negative lot', { symbols: ['AAA'], partialFills: { maxFractionOfBarVolume: 1, lotSize: -1 } }, 'partialFills.lotSize'],
    ['partialFills true', { symbols: ['AAA'], partialFills: true }, 'partialFills'],
  ];
  it.each(cases)('%s → InvalidInputError on %s', (_name, options, field) => {
    let error: unknown;
    try {
      new PaperVenue(options as PaperVenueOptions);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).field).toBe(field);
  });

  it('compiles defaults into a frozen config', () => {
    const { config } = venue();
    expect(config).toMatchObject({ fillAt: 'next-open', slippage: { model: 'none' }, fees: { model: 'none' }, partialFills: false });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('refuses bars of unknown symbols, out of time order, or invalid', () => {
    const v = venue();
    v.onBar(bar(2, 100, 101, 99, 100));
    const fieldOf = (action: () => unknown): string | undefined => {
      try {
        action();
      } catch (error) {
        return error instanceof InvalidInputError ? error.field : 'other';
      }
      return undefined;
    };
    expect(fieldOf(() => v.onBar(bar(3, 100, 101, 99, 100, 1000, 'ZZZ')))).toBe('bar.symbol');
    expect(fieldOf(() => v.onBar(bar(2, 100, 101, 99, 100)))).toBe('bar.timeMs');
    expect(fieldOf(() => v.onBar(bar(3, 100, 99, 98, 100)))).toBe('bar.high');
  });
});
