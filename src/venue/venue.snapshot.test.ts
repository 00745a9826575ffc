import { describe, expect, it } from 'vitest';
import { exact, snapshotRefusal, throughJson } from '../../test/fixtures/snapshots.js';
import { type JsonValue, SnapshotProblem } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { PaperVenue, type PaperVenueOptions } from './index.js';

const OPTIONS: PaperVenueOptions = { symbols: ['AAA'], partialFills: { maxFractionOfBarVolume: 0.1, lotSize: 1 }, fees: { model: 'bps', bps: 10, minimumPerOrder: 1 } };
const bar = (timeMs: number, open: number, high: number, low: number, close: number, volume = 100): Bar => ({ symbol: 'AAA', timeMs, open, high, low, close, volume });

/** An entry of 25 with a trailing stop and a take-profit, filled 10 a bar (partial fills), after two bars. */
function tradedVenue(): PaperVenue {
  const venue = new PaperVenue(OPTIONS);
  venue.submit({ clientOrderId: 'e1', symbol: 'AAA', side: 'buy', quantity: 25, type: 'market', exits: { trailingStop: { points: 2 }, takeProfit: { percent: 10 } } }, { timeMs: 0 });
  venue.submit({ clientOrderId: 'bad', symbol: 'ZZZ', side: 'buy', quantity: 1, type: 'market' }, { timeMs: 0 });
  venue.admitEpoch('agent', 3);
  venue.onBar(bar(1, 100, 103, 99, 102));
  venue.onBar(bar(2, 103, 106, 102.5, 105));
  return venue;
}

describe('PaperVenue.snapshot and restore', () => {
  it('a restored venue fills the next bars exactly as the original: the rest of a partial entry, its raised exits, the trailing stop moved', () => {
    const original = tradedVenue();
    expect(original.order('e1')).toMatchObject({ status: 'partially-filled', filledQuantity: 20 });
    expect(original.order('e1:trailing-stop')?.request).toMatchObject({ quantity: 20, stopPrice: 104 });
    const restored = new PaperVenue(OPTIONS);
    restored.restore(throughJson(original.snapshot()));
    expect(exact(restored.snapshot())).toBe(exact(original.snapshot()));
    for (const next of [bar(3, 105, 108, 104.5, 107), bar(4, 107, 107, 101, 102), bar(5, 102, 103, 100, 101), bar(6, 101, 102, 100, 101)]) {
      expect(restored.onBar(next)).toEqual(original.onBar(next));
      expect(restored.openOrders()).toEqual(original.openOrders());
    }
    // The trailing stop followed the high of 108 to 106, triggered on bar 4 and filled 10 a bar.
    expect(restored.order('e1:trailing-stop')).toMatchObject({ status: 'filled', filledQuantity: 25 });
    expect(restored.order('e1:take-profit')?.status).toBe('cancelled');
  });

  it('remembers every id (a rejected one too) and the epochs', () => {
    const venue = new PaperVenue(OPTIONS);
    venue.restore(throughJson(tradedVenue().snapshot()));
    expect(venue.submit({ clientOrderId: 'e1', symbol: 'AAA', side: 'sell', quantity: 1, type: 'market' }, { timeMs: 9 })).toEqual({ status: 'duplicate' });
    expect(venue.submit({ clientOrderId: 'bad', symbol: 'AAA', side: 'sell', quantity: 1, type: 'market' }, { timeMs: 9 })).toEqual({ status: 'duplicate' });
    expect(venue.order('bad')).toMatchObject({ status: 'rejected', reason: 'unknown-symbol', request: { symbol: 'ZZZ' } });
    expect(venue.admitEpoch('agent', 2)).toBe(false);
    expect(venue.epochOf('agent')).toBe(3);
  });

  it('refuses a snapshot of a venue of other options, naming the field; the venue is unchanged', () => {
    const venue = new PaperVenue({ ...OPTIONS, fillAt: 'close' });
    const before = exact(venue.snapshot());
    const error = snapshotRefusal(() => venue.restore(throughJson(tradedVenue().snapshot())));
    expect(error.problem).toBe(SnapshotProblem.spec);
    expect(error.differences).toEqual([{ field: 'fillAt', snapshot: 'next-open', expected: 'close' }]);
    expect(exact(venue.snapshot())).toBe(before);
  });

  it('refuses a damaged snapshot all or nothing: a bad value late in the state leaves the venue as it was', () => {
    const venue = tradedVenue();
    const before = exact(venue.snapshot());
    const damaged = throughJson(new PaperVenue(OPTIONS).snapshot()) as { state: { lastBase: JsonValue } };
    damaged.state.lastBase = 'cheap';
    const error = snapshotRefusal(() => venue.restore(damaged));
    expect(error.problem).toBe(SnapshotProblem.invalid);
    expect(error.message).toContain('state.lastBase must be a number, got "cheap"');
    expect(exact(venue.snapshot())).toBe(before);
  });
});
