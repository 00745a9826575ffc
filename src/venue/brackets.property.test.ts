// Seeded property tests of bracket exits: random walks, random entries with random exits, random
// venue options (fill timing, partial fills), random cancels; the invariants hold for every seed.
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type BracketExits, type ExitDistance, type Fill, type OrderRequest, PaperVenue } from './index.js';

const BARS = 80;
const KINDS = ['stop-loss', 'trailing-stop', 'take-profit'] as const;

function randomDistance(rng: Rng): ExitDistance {
  return rng.int(0, 1) === 0 ? { points: 0.5 + rng.next() * 8 } : { percent: 0.2 + rng.next() * 8 };
}

function randomExits(rng: Rng): BracketExits {
  const exits: { -readonly [K in keyof BracketExits]: ExitDistance } = {};
  while (Object.keys(exits).length === 0) {
    if (rng.int(0, 1) === 1) exits.stopLoss = randomDistance(rng);
    if (rng.int(0, 1) === 1) exits.takeProfit = randomDistance(rng);
    if (rng.int(0, 2) === 2) exits.trailingStop = randomDistance(rng);
  }
  return exits;
}

/** A random walk with gaps between bars (the open away from the previous close). */
function randomBar(rng: Rng, timeMs: number, previousClose: number): Bar {
  const open = Math.max(1, previousClose * (1 + (rng.next() - 0.5) * 0.08));
  const close = Math.max(1, open * (1 + (rng.next() - 0.5) * 0.06));
  const high = Math.max(open, close) * (1 + rng.next() * 0.03);
  const low = Math.min(open, close) * (1 - rng.next() * 0.03);
  return { symbol: 'AAA', timeMs, open, high, low, close, volume: rng.int(0, 6) === 0 ? 0 : rng.int(1, 400) };
}

interface Group {
  readonly request: OrderRequest;
  entryFilled: number;
  readonly exitFilled: Record<(typeof KINDS)[number], number>;
  /** Whether an exit has filled (from then on the entry may not). */
  exited: boolean;
}

function check(seed: number): void {
  const rng = Rng.seeded(seed);
  const partial = rng.int(0, 1) === 1;
  const venue = new PaperVenue({ symbols: ['AAA'], fillAt: rng.pick(['next-open', 'close'] as const), partialFills: partial ? { maxFractionOfBarVolume: 0.3, lotSize: rng.pick([0, 1]) } : false });
  const groups = new Map<string, Group>();
  let close = 100;
  let n = 0;
  for (let t = 0; t < BARS; t++) {
    const bar = randomBar(rng, t, close);
    if (rng.int(0, 3) === 0) {
      const request: OrderRequest = { clientOrderId: `e${n++}`, symbol: 'AAA', side: rng.pick(['buy', 'sell'] as const), quantity: rng.pick([1, 10, 37, 100]), type: 'market', exits: randomExits(rng) };
      expect(venue.submit(request, { timeMs: t }).status).toBe('accepted');
      groups.set(request.clientOrderId, { request, entryFilled: 0, exitFilled: { 'stop-loss': 0, 'trailing-stop': 0, 'take-profit': 0 }, exited: false });
    }
    if (n > 0 && rng.int(0, 9) === 0) venue.cancelBracket(`e${rng.int(0, n - 1)}`);
    // The exits' prices before the bar: an exit fills at its price or better, or at the open past it.
    // (A stop triggered on an earlier bar, whose fill partial fills cut short, rests as a market order.)
    const before = new Map(venue.openOrders().filter((order) => !order.triggered).map((order) => [order.request.clientOrderId, order.request]));
    const fills: readonly Fill[] = venue.onBar(bar);
    for (const fill of fills) {
      const [entryId, kind] = fill.clientOrderId.split(':') as [string, (typeof KINDS)[number] | undefined];
      const group = groups.get(entryId) as Group;
      const long = group.request.side === 'buy';
      if (kind === undefined) {
        if (group.exited) expect.fail(`seed ${seed}, ${fill.clientOrderId}: the entry filled after one of its exits`);
        group.entryFilled += fill.quantity;
        continue;
      }
      if (fill.side !== (long ? 'sell' : 'buy')) expect.fail(`seed ${seed}: ${fill.clientOrderId} is a ${fill.side} of a ${long ? 'long' : 'short'}`);
      group.exitFilled[kind] += fill.quantity;
      group.exited = true;
      const order = before.get(fill.clientOrderId);
      const price = order?.stopPrice ?? order?.limitPrice;
      if (price !== undefined) {
        // A take-profit fills at its limit or better; a stop at its stop or, gapped through, at the open.
        const fair = kind === 'take-profit' ? (long ? fill.price >= price : fill.price <= price) : fill.price === bar.open || (long ? fill.price <= price : fill.price >= price);
        if (!fair) expect.fail(`seed ${seed}: ${fill.clientOrderId} filled at ${fill.price}, its price ${price}, the bar's open ${bar.open}`);
      }
    }
    for (const [id, group] of groups) {
      const filledKinds = KINDS.filter((kind) => group.exitFilled[kind] > 0);
      if (filledKinds.length > 1) expect.fail(`seed ${seed}, ${id}: ${filledKinds.join(' and ')} both filled; at most one exit of a bracket fills`);
      const exited = KINDS.reduce((sum, kind) => sum + group.exitFilled[kind], 0);
      if (exited > group.entryFilled + 1e-9) expect.fail(`seed ${seed}, ${id}: exits filled ${exited} of a position of ${group.entryFilled}; an exit never flips the position`);
      if (!partial && group.exited && Math.abs(exited - group.entryFilled) > 1e-9) expect.fail(`seed ${seed}, ${id}: an exit filled ${exited}, not the whole position ${group.entryFilled}`);
      for (const kind of KINDS) {
        const exit = venue.order(`${id}:${kind}`);
        // An exit covers exactly what the entry filled.
        if (exit !== undefined && Math.abs(exit.request.quantity - group.entryFilled) > 1e-9) expect.fail(`seed ${seed}, ${id}:${kind} is for ${exit.request.quantity}, the entry filled ${group.entryFilled}`);
      }
      if (!isOpenGroup(venue, id)) groups.delete(id);
    }
    close = bar.close;
  }
}

/** Whether the entry or one of its exits can still fill. */
function isOpenGroup(venue: PaperVenue, id: string): boolean {
  const open = (state: { status: string } | undefined): boolean => state?.status === 'accepted' || state?.status === 'partially-filled';
  return open(venue.order(id)) || KINDS.some((kind) => open(venue.order(`${id}:${kind}`)));
}

describe('bracket exits: seeded properties', () => {
  it('never fill more than one exit of a bracket, never flip a position, and always cover the filled entry (300 seeds)', () => {
    for (let seed = 1; seed <= 300; seed++) check(seed);
  });
});
