import { describe, expect, it } from 'vitest';
import { exact, throughJson } from '../../test/fixtures/snapshots.js';
import { type JsonObject, type JsonValue, Rng, isIncompatibleSnapshotError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { settledCurve } from '../portfolio/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import { settledOrders } from '../venue/index.js';
import { NO_SESSION_HISTORY, type SessionHistoryChunk, type SessionHistoryMark, type SessionHistoryPart, joinSessionSnapshot, splitSessionSnapshot } from './history.js';
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

/** How many items a mark holds of a part. */
const heldCount = (held: SessionHistoryMark[SessionHistoryPart]): number => (typeof held === 'number' ? held : held.reduce((count, [start, end]) => count + end - start, 0));

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
      // An order resting across the split stays live alone: the chunk takes the orders after it that settled.
      if (chunk?.at?.orders !== undefined) restingAcross++;
      const orders = ordersOf(session.snapshot());
      expect(ordersOf(stored.live)).toEqual(orders.filter((_, index) => !settledOrders(orders).includes(index)));
      expect(exact(joined(stored))).toBe(exact(throughJson(session.snapshot())));
    }
    // The run made what the test is about: history, and orders resting across splits while later ones settled.
    const full = session.snapshot();
    expect(heldCount(stored.held.orders)).toBeGreaterThan(20);
    expect(heldCount(stored.held.orders)).toBeLessThan(ordersOf(full).length);
    expect(stored.held.points).toBe((step - 1) * 4);
    expect(heldCount(stored.held.rejections)).toBeGreaterThan(10);
    expect(heldCount(stored.held.trades)).toBeGreaterThan(5);
    expect(ordersOf(full).some((order) => order.bracket !== undefined && order.status === 'filled')).toBe(true);
    expect(restingAcross).toBeGreaterThanOrEqual(3);
    // The live part holds the open orders, not the run's history.
    expect(JSON.stringify(stored.live).length).toBeLessThan(JSON.stringify(full).length / 4);
  });

  it('keeps only the resting order live while the orders after it settle, for as long as it rests', () => {
    const session = new TradingSession(OPTIONS);
    const stored: Stored = { live: session.snapshot(), held: NO_SESSION_HISTORY, chunks: [] };
    const bar = (index: number): Bar[] => OPTIONS.symbols.map((symbol) => ({ symbol, timeMs: T0 + index * MINUTE, open: 100, high: 101, low: 99, close: 100, volume: 1000 }));
    // A limit buy far under the price rests for the whole run; a market order a step fills after it.
    for (let index = 0; index < 600; index++) {
      const bars = bar(index);
      session.open(bars);
      const intents: StrategyIntent[] = [{ strategy: 'plain', symbol: 'X', side: index % 2 === 0 ? 'buy' : 'sell', quantity: 1, type: 'market', intent: index % 2 === 0 ? 'enter-long' : 'exit-long' }];
      if (index === 0) intents.unshift({ strategy: 'dip', symbol: 'Y', side: 'buy', quantity: 1, type: 'limit', limitPrice: 50, intent: 'enter-long' });
      session.submit(intents, index, bars);
      session.close(bars);
      if (index % 100 === 99) store(stored, session.snapshot());
    }
    // Live: the resting limit, and the last market order (it fills at the next bar's open).
    expect(ordersOf(stored.live).map((order) => [order.status, (order.request as JsonObject).type])).toEqual([['accepted', 'limit'], ['accepted', 'market']]);
    expect(stored.held.orders).toEqual([[1, 600]]);
    expect(JSON.stringify(stored.live.state.venue).length).toBeLessThan(1_000);
    expect(exact(joined(stored))).toBe(exact(throughJson(session.snapshot())));
  });

  it('reads chunks and marks stored before orders could settle out of turn: a count, and items right after it', () => {
    const rng = Rng.seeded(11);
    const closes = new Map<string, number>();
    const session = new TradingSession(OPTIONS);
    trade(session, rng, closes, 0, 80);
    // What the split of before wrote: of each part, the items settled from the first on, counted.
    const first = session.snapshot();
    let live = first.state;
    const items: Record<string, JsonValue[]> = {};
    const held: Record<string, number> = {};
    for (const [name, path] of [['orders', ['venue', 'orders']], ['trades', ['portfolio', 'trades']], ['points', ['portfolio', 'curve', 'points']], ['segments', ['portfolio', 'curve', 'segments']], ['fills', ['fills']], ['rejections', ['rejections']]] as const) {
      const parent = path.slice(0, -1).reduce<JsonObject>((object, key) => object[key] as JsonObject, live);
      const list = parent[path.at(-1)!] as JsonValue[];
      const count = name === 'orders' ? settledOrders(list).findIndex((index, i) => index !== i) : name === 'points' || name === 'segments' ? 0 : list.length;
      held[name] = count === -1 ? settledOrders(list).length : count;
      items[name] = list.slice(0, held[name]);
      live = throughJson({ ...live }) as JsonObject;
      const copy = path.slice(0, -1).reduce<JsonObject>((object, key) => object[key] as JsonObject, live) as Record<string, JsonValue>;
      copy[path.at(-1)!] = list.slice(held[name]);
    }
    const old: Stored = { live: { ...first, state: live }, held: held as unknown as SessionHistoryMark, chunks: [{ from: NO_SESSION_HISTORY, items: items as unknown as SessionHistoryChunk['items'] }] };
    expect(exact(joined(old))).toBe(exact(throughJson(first)));
    // A split of today goes on from that mark.
    trade(session, rng, closes, 80, 60);
    store(old, session.snapshot());
    expect(exact(joined(old))).toBe(exact(throughJson(session.snapshot())));
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
      [[first, third], 'chunk 1 follows'],
      [[first, second, second, third], 'chunk 2 follows'],
      [[second, first, third], 'chunk 0 follows'],
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
    expect(() => splitSessionSnapshot(early, stored.held)).toThrow(/held\.orders: holds item 0 of state\.venue\.orders, which this snapshot has not settled \(it has settled 0 items\)/);
  });
});

/** A saved order, as the venue saves one: what `settledOrders` reads of it. */
const order = (id: string, status: string, extra: JsonObject = {}): JsonValue => ({ request: { clientOrderId: id }, status, ...extra });

describe('what of a saved state can no longer change', () => {
  it.each([
    ['terminal orders around an open one: it alone is not settled', [order('a', 'filled'), order('b', 'rejected'), order('c', 'accepted'), order('d', 'cancelled')], [0, 1, 3]],
    ['nor is a partly filled order', [order('a', 'partially-filled'), order('b', 'filled')], [1]],
    ['an entry whose bracket is done and whose exits are all terminal is settled', [order('e', 'filled', { bracket: { done: true, exits: ['stop-loss', 'take-profit'] } }), order('e:stop-loss', 'filled'), order('e:take-profit', 'cancelled')], [0, 1, 2]],
    ['an entry whose bracket still has an open exit is not (its evaluation time moves)', [order('e', 'cancelled', { bracket: { done: true, exits: ['stop-loss'] } }), order('e:stop-loss', 'partially-filled')], []],
    ['nor one whose bracket is not done, even with no exit (a cancel marks it done)', [order('e', 'filled', { bracket: { done: false, exits: [] } })], []],
    ['a terminal exit of an entry whose bracket is not done is (its own record no longer changes)', [order('e', 'filled', { bracket: { done: false, exits: ['stop-loss'] } }), order('e:stop-loss', 'cancelled')], [1]],
  ])('%s', (_name, orders, settled) => {
    expect(settledOrders(orders)).toEqual(settled);
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
