import { describe, expect, it } from 'vitest';
import { exact, throughJson } from '../../test/fixtures/snapshots.js';
import { type JsonObject, type JsonValue, Rng, isIncompatibleSnapshotError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { settledCurve } from '../portfolio/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import { settledOrders } from '../venue/index.js';
import { NO_SESSION_HISTORY, type SessionHistoryChunk, type SessionHistoryMark, joinSessionSnapshot, splitSessionSnapshot } from './history.js';
import { TradingSession, type TradingSessionOptions, type TradingSessionSnapshot } from './session.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2024, 0, 1);
const OPTIONS: TradingSessionOptions = { swarm: 'history', symbols: ['X', 'Y'], venue: { fees: { model: 'per-share', amountPerShare: 0.01, minimumPerOrder: 1 } } };

/** Both symbols wander around 100 (so a limit order rests a while, not for ever), one bar a minute, from `rng`. */
function barsAt(index: number, rng: Rng, closes: Map<string, number>): Bar[] {
  return OPTIONS.symbols.map((symbol) => {
    const open = closes.get(symbol) ?? 100;
    const close = open + 0.2 * (100 - open) + rng.normal(0, 1.5);
    closes.set(symbol, close);
    return { symbol, timeMs: T0 + index * MINUTE, open, high: Math.max(open, close) + rng.next(), low: Math.min(open, close) - rng.next(), close, volume: 1000 };
  });
}

/**
 * Steps a session through a seeded mix of what makes history: market entries with brackets (stop-loss,
 * trailing stop, take-profit) whose exits rest for a while, limit orders far from the price that rest
 * for tens of steps, exits, orders the risk stage refused. `steps` more steps from `from`.
 */
function trade(session: TradingSession, rng: Rng, closes: Map<string, number>, from: number, steps: number): void {
  for (let index = from; index < from + steps; index++) {
    const bars = barsAt(index, rng, closes);
    session.open(bars);
    const symbol = OPTIONS.symbols[index % 2] as string;
    const close = closes.get(symbol) as number;
    const intents: StrategyIntent[] = [];
    const roll = rng.int(0, 9);
    if (roll === 0) intents.push({ strategy: 'trend', symbol, side: 'buy', quantity: 5, type: 'market', intent: 'enter-long', exits: { stopLoss: { percent: 2 }, trailingStop: { percent: 3 }, takeProfit: { percent: 2 } } });
    if (roll === 1) intents.push({ strategy: 'dip', symbol, side: 'buy', quantity: 2, type: 'limit', limitPrice: close * 0.99, intent: 'enter-long', exits: { takeProfit: { percent: 1 }, stopLoss: { percent: 1 } } });
    if (roll === 2) intents.push({ strategy: 'plain', symbol, side: 'buy', quantity: 1, type: 'market', intent: 'enter-long' });
    if (roll === 3) intents.push({ strategy: 'plain', symbol, side: 'sell', quantity: 1, type: 'market', intent: 'exit-long' });
    if (roll === 4) session.reject([{ intent: { strategy: 'plain', symbol, side: 'buy', quantity: 1, type: 'market', intent: 'enter-long' }, source: 'risk', reason: 'max-orders', message: 'too many orders' }], index);
    if (intents.length > 0) session.submit(intents, index, bars);
    session.close(bars);
  }
}

interface Stored {
  live: TradingSessionSnapshot;
  held: SessionHistoryMark;
  readonly chunks: SessionHistoryChunk[];
}

/** Splits `snapshot` after what `stored` holds, as a store keeps it: the chunk added, the live part replaced, all through JSON text. */
function store(stored: Stored, snapshot: TradingSessionSnapshot): SessionHistoryChunk | undefined {
  const split = splitSessionSnapshot(snapshot, stored.held);
  if (split.chunk !== undefined) stored.chunks.push(throughJson(split.chunk) as unknown as SessionHistoryChunk);
  stored.live = throughJson(split.live) as TradingSessionSnapshot;
  stored.held = split.held;
  return split.chunk;
}

const joined = (stored: Stored): TradingSessionSnapshot => joinSessionSnapshot(stored.live, stored.chunks, stored.held);

const ordersOf = (snapshot: TradingSessionSnapshot): JsonObject[] => (snapshot.state.venue as JsonObject).orders as JsonObject[];

describe('a trading session snapshot split into history chunks and live state', () => {
  it('joins back, at every split over a run, into the session snapshot, and a chunk never holds what changes later', () => {
    const rng = Rng.seeded(15);
    const closes = new Map<string, number>();
    const session = new TradingSession(OPTIONS);
    const stored: Stored = { live: session.snapshot(), held: NO_SESSION_HISTORY, chunks: [] };
    let step = 0;
    let restingAcross = 0;
    // Splits close together and far apart, one right after another (nothing new).
    for (const steps of [1, 3, 0, 25, 7, 120, 0, 1, 300, 44]) {
      trade(session, rng, closes, step, steps);
      step += steps;
      const chunk = store(stored, session.snapshot());
      if (steps === 0) expect(chunk).toBeUndefined();
      const live = ordersOf(stored.live);
      if (live.some((order) => order.status === 'accepted') && live.some((order) => order.status === 'filled')) restingAcross++;
      expect(exact(joined(stored))).toBe(exact(throughJson(session.snapshot())));
    }
    // The run made what the test is about: history, and orders resting across splits that keep later ones live.
    const full = session.snapshot();
    expect(stored.held.orders).toBeGreaterThan(20);
    expect(stored.held.orders).toBeLessThan(ordersOf(full).length);
    expect(stored.held.points).toBe((step - 1) * 4);
    expect(stored.held.rejections).toBeGreaterThan(10);
    expect(stored.held.trades).toBeGreaterThan(5);
    expect(ordersOf(full).some((order) => order.bracket !== undefined && order.status === 'filled')).toBe(true);
    expect(restingAcross).toBeGreaterThan(3);
    // The live part holds the open orders and what follows the first of them, not the run's history.
    expect(JSON.stringify(stored.live).length).toBeLessThan(JSON.stringify(full).length / 4);
  });

  it('gives a session that, restored from the joined snapshot, goes on exactly as the original', () => {
    const rng = Rng.seeded(7);
    const closes = new Map<string, number>();
    const session = new TradingSession(OPTIONS);
    const stored: Stored = { live: session.snapshot(), held: NO_SESSION_HISTORY, chunks: [] };
    for (const [from, steps] of [[0, 50], [50, 31]] as const) {
      trade(session, rng, closes, from, steps);
      store(stored, session.snapshot());
    }
    const restored = TradingSession.restore(joined(stored), OPTIONS);
    const [fork, forkCloses] = [Rng.fromState(rng.state()), new Map(closes)];
    trade(session, rng, closes, 81, 60);
    trade(restored, fork, forkCloses, 81, 60);
    expect(exact(restored.snapshot())).toBe(exact(session.snapshot()));
  });

  it('leaves a snapshot without the append-only parts as it is', () => {
    const snapshot: TradingSessionSnapshot = { kind: 'trading-session', version: 1, spec: { swarm: 's' }, state: { cash: 0.1 + 0.2 } };
    const split = splitSessionSnapshot(snapshot);
    expect(split).toEqual({ live: snapshot, chunk: undefined, held: NO_SESSION_HISTORY });
    expect(joinSessionSnapshot(split.live, [], split.held)).toEqual(snapshot);
  });

  it('refuses chunks missing, repeated or out of order, and a mark the snapshot has not reached', () => {
    const rng = Rng.seeded(3);
    const closes = new Map<string, number>();
    const session = new TradingSession(OPTIONS);
    const stored: Stored = { live: session.snapshot(), held: NO_SESSION_HISTORY, chunks: [] };
    for (const from of [0, 20, 40]) {
      trade(session, rng, closes, from, 20);
      store(stored, session.snapshot());
    }
    expect(stored.chunks).toHaveLength(3);
    const [first, second, third] = stored.chunks as [SessionHistoryChunk, SessionHistoryChunk, SessionHistoryChunk];
    for (const [chunks, problem] of [
      [[first, third], 'chunk 1 starts at item'],
      [[first, second, second, third], 'chunk 2 starts at item'],
      [[second, first, third], 'chunk 0 starts at item'],
      [[first, second], 'a chunk is missing'],
    ] as const) {
      let error: unknown;
      try {
        joinSessionSnapshot(stored.live, chunks, stored.held);
      } catch (thrown) {
        error = thrown;
      }
      expect(isIncompatibleSnapshotError(error)).toBe(true);
      expect((error as Error).message).toContain(problem);
    }
    const early = splitSessionSnapshot(new TradingSession(OPTIONS).snapshot()).live;
    expect(() => splitSessionSnapshot(early, stored.held)).toThrow(/held\.orders: holds \d+ items of state\.venue\.orders, but this snapshot has settled 0/);
  });
});

/** A saved order, as the venue saves one: what `settledOrders` reads of it. */
const order = (id: string, status: string, extra: JsonObject = {}): JsonValue => ({ request: { clientOrderId: id }, status, ...extra });

describe('what of a saved state can no longer change', () => {
  it.each([
    ['terminal orders, then an open one: the open one ends the run', [order('a', 'filled'), order('b', 'rejected'), order('c', 'accepted'), order('d', 'cancelled')], 2],
    ['a partly filled order ends it', [order('a', 'partially-filled'), order('b', 'filled')], 0],
    ['an entry whose bracket is done and whose exits are all terminal is settled', [order('e', 'filled', { bracket: { done: true, exits: ['stop-loss', 'take-profit'] } }), order('e:stop-loss', 'filled'), order('e:take-profit', 'cancelled')], 3],
    ['an entry whose bracket still has an open exit is not (its evaluation time moves)', [order('e', 'cancelled', { bracket: { done: true, exits: ['stop-loss'] } }), order('e:stop-loss', 'partially-filled')], 0],
    ['nor one whose bracket is not done, even with no exit (a cancel marks it done)', [order('e', 'filled', { bracket: { done: false, exits: [] } })], 0],
  ])('%s', (_name, orders, settled) => {
    expect(settledOrders(orders)).toBe(settled);
  });

  it.each([
    ['no point', [], [], { points: 0, segments: 0 }],
    ['one point: it may be replaced, with the segment starting there', [1, 10, 0, 0], [0, 5, 0, 0], { points: 0, segments: 0 }],
    ['three points, a segment from point 0 and one from the last', [1, 10, 0, 0, 2, 11, 0, 0, 3, 12, 0, 0], [0, 5, 0, 0, 2, 6, 0, 1], { points: 8, segments: 4 }],
    ['three points, a segment from point 1', [1, 10, 0, 0, 2, 11, 0, 0, 3, 12, 0, 0], [0, 5, 0, 0, 1, 6, 0, 1], { points: 8, segments: 8 }],
  ])('the curve: %s', (_name, points, segments, settled) => {
    expect(settledCurve(points, segments)).toEqual(settled);
  });
});
