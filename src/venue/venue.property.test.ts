import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type Fill, type OrderRequest, type PaperVenueOptions, PaperVenue } from './index.js';

const SYMBOLS = ['AAA', 'BBB'] as const;
const BARS = 60;

interface Run {
  readonly fills: Fill[];
  /** The bar each fill came from. */
  readonly fillBars: Bar[];
  readonly submitted: Map<string, { request: OrderRequest; barTimeMs: number }>;
  readonly venue: PaperVenue;
  readonly options: PaperVenueOptions;
}

function randomOptions(rng: Rng): PaperVenueOptions {
  return {
    symbols: SYMBOLS,
    fillAt: rng.pick(['next-open', 'close'] as const),
    slippage: rng.pick([{ model: 'none' }, { model: 'bps', bps: rng.int(0, 50) }, { model: 'fixed', amountPerShare: rng.next() }]),
    fees: rng.pick([
      { model: 'none' },
      { model: 'fixed', amountPerOrder: rng.int(0, 5) },
      { model: 'bps', bps: rng.int(0, 20), minimumPerOrder: rng.int(0, 3) },
      { model: 'per-share', amountPerShare: rng.next() / 10, minimumPerOrder: rng.int(0, 3) },
    ]),
    partialFills: rng.pick([false, { maxFractionOfBarVolume: 0.01 + rng.next() * 0.5, lotSize: rng.pick([0, 1]) }]),
  };
}

/** A random walk of valid bars per symbol; volumes sometimes 0. */
function randomBar(rng: Rng, symbol: string, timeMs: number, previousClose: number): Bar {
  const open = Math.max(1, previousClose * (1 + (rng.next() - 0.5) * 0.06));
  const close = Math.max(1, open * (1 + (rng.next() - 0.5) * 0.06));
  const high = Math.max(open, close) * (1 + rng.next() * 0.02);
  const low = Math.min(open, close) * (1 - rng.next() * 0.02);
  return { symbol, timeMs, open, high, low, close, volume: rng.int(0, 5) === 0 ? 0 : rng.int(1, 2000) };
}

function run(seed: number): Run {
  const rng = Rng.seeded(seed);
  const options = randomOptions(rng.fork('options'));
  const venue = new PaperVenue(options);
  const orderRng = rng.fork('orders');
  const barRng = rng.fork('bars');
  const fills: Fill[] = [];
  const fillBars: Bar[] = [];
  const submitted = new Map<string, { request: OrderRequest; barTimeMs: number }>();
  const lastClose = new Map<string, number>(SYMBOLS.map((symbol) => [symbol, 100]));
  let next = 0;
  for (let t = 0; t < BARS; t++) {
    const timeMs = t * 60_000;
    const bars = SYMBOLS.map((symbol) => randomBar(barRng, symbol, timeMs, lastClose.get(symbol) ?? 100));
    for (let k = orderRng.int(0, 4); k > 0; k--) {
      const symbol = orderRng.pick(SYMBOLS);
      const reference = lastClose.get(symbol) ?? 100;
      const type = orderRng.pick(['market', 'limit', 'stop'] as const);
      const price = reference * (1 + (orderRng.next() - 0.5) * 0.1);
      const request: OrderRequest = {
        clientOrderId: `o${next++}`,
        symbol,
        side: orderRng.pick(['buy', 'sell'] as const),
        quantity: orderRng.pick([1, 10, 100, 250, 0.5, 37.25]),
        type,
        ...(type === 'limit' ? { limitPrice: price } : type === 'stop' ? { stopPrice: price } : {}),
      };
      if (venue.submit(request, { timeMs }).status === 'accepted') submitted.set(request.clientOrderId, { request, barTimeMs: timeMs });
    }
    // Resubmit an earlier id (a failover): must always be a duplicate.
    if (next > 0 && orderRng.int(0, 2) === 0) {
      const id = `o${orderRng.int(0, next - 1)}`;
      expect(venue.submit({ clientOrderId: id, symbol: 'AAA', side: 'buy', quantity: 1000, type: 'market' }, { timeMs })).toEqual({
        status: 'duplicate',
      });
    }
    if (next > 0 && orderRng.int(0, 4) === 0) venue.cancel(`o${orderRng.int(0, next - 1)}`);
    for (const current of bars) {
      for (const fill of venue.onBar(current)) {
        fills.push(fill);
        fillBars.push(current);
      }
      lastClose.set(current.symbol, current.close);
    }
  }
  return { fills, fillBars, submitted, venue, options };
}

describe('PaperVenue invariants over seeded random order streams', () => {
  const seeds = Array.from({ length: 40 }, (_, i) => i + 1);

  it.each(seeds)('seed %d', (seed) => {
    const { fills, fillBars, submitted, venue, options } = run(seed);
    const filledById = new Map<string, number>();
    fills.forEach((fill, i) => {
      const current = fillBars[i] as Bar;
      const origin = submitted.get(fill.clientOrderId);
      expect(origin, `fill of an order that was never accepted: ${fill.clientOrderId}`).toBeDefined();
      if (!origin) return;
      expect(fill.quantity).toBeGreaterThan(0);
      expect(fill.fee).toBeGreaterThanOrEqual(0);
      expect(fill.symbol).toBe(current.symbol);
      expect(fill.timeMs).toBe(current.timeMs);
      // No look-ahead: next-open fills only after the decision bar, close fills from it on.
      if (options.fillAt === 'close') expect(fill.timeMs).toBeGreaterThanOrEqual(origin.barTimeMs);
      else expect(fill.timeMs).toBeGreaterThan(origin.barTimeMs);
      // Slippage only makes buys dearer and sells cheaper, so these hold after it as well.
      if (fill.side === 'buy') expect(fill.price).toBeGreaterThanOrEqual(current.low);
      else expect(fill.price).toBeLessThanOrEqual(current.high);
      if (options.slippage?.model === 'none') {
        expect(fill.price).toBeGreaterThanOrEqual(current.low);
        expect(fill.price).toBeLessThanOrEqual(current.high);
      }
      const { limitPrice } = origin.request;
      if (limitPrice !== undefined) {
        if (fill.side === 'buy') expect(fill.price).toBeLessThanOrEqual(limitPrice);
        else expect(fill.price).toBeGreaterThanOrEqual(limitPrice);
      }
      filledById.set(fill.clientOrderId, (filledById.get(fill.clientOrderId) ?? 0) + fill.quantity);
    });
    for (const [id, { request }] of submitted) {
      const state = venue.order(id);
      const total = filledById.get(id) ?? 0;
      expect(total).toBeLessThanOrEqual(request.quantity + 1e-9);
      expect(state?.filledQuantity).toBeCloseTo(total, 9);
      expect(state?.fills.reduce((sum, fill) => sum + fill.quantity, 0)).toBeCloseTo(total, 9);
      expect(state?.totalFee).toBeGreaterThanOrEqual(0);
      if (state?.status === 'filled') expect(total).toBeCloseTo(request.quantity, 9);
    }
  });

  it('gives the same fills for the same seed', () => {
    expect(run(7).fills).toEqual(run(7).fills);
    expect(run(7).fills).not.toEqual(run(8).fills);
  });

  it('is not vacuous: most runs fill, and every order type and multi-fill orders occur', () => {
    const runs = seeds.map(run);
    expect(runs.filter((r) => r.fills.length > 0).length).toBeGreaterThan(seeds.length * 0.9);
    const filledTypes = new Set<string>();
    let multiFill = 0;
    for (const r of runs) {
      for (const fill of r.fills) filledTypes.add(r.submitted.get(fill.clientOrderId)?.request.type ?? '?');
      for (const id of r.submitted.keys()) if ((r.venue.order(id)?.fills.length ?? 0) > 1) multiFill++;
    }
    expect([...filledTypes].sort()).toEqual(['limit', 'market', 'stop']);
    expect(multiFill).toBeGreaterThan(10);
  });
});
