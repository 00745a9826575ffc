import { describe, expect, it } from 'vitest';
import { exact, snapshotRefusal, throughJson } from '../../test/fixtures/snapshots.js';
import type { IncompatibleSnapshotError} from '../core/index.js';
import { type JsonValue, SnapshotProblem } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import { TradingSession, type TradingSessionOptions } from './session.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);
const bar = (symbol: string, day: number, open: number, close: number): Bar => ({
  symbol,
  timeMs: T0 + day * DAY,
  open,
  high: Math.max(open, close) + 1,
  low: Math.min(open, close) - 1,
  close,
  volume: 1000,
});
const OPTIONS: TradingSessionOptions = {
  swarm: 'snap',
  symbols: ['X', 'Y'],
  venue: { fees: { model: 'per-share', amountPerShare: 0.01, minimumPerOrder: 1 } },
  fillPriceSizing: { sized: fixedQuantity(5) },
};
const enter = (strategy: string, symbol: string, quantity: number, extra: Partial<StrategyIntent> = {}): StrategyIntent => ({
  strategy,
  symbol,
  side: 'buy',
  quantity,
  type: 'market',
  intent: 'enter-long',
  ...extra,
});

/**
 * Three steps: on step 0 an entry with a stop-loss and a trailing stop (fills on step 1, its exits
 * then rest), and a rejected limit order; on step 2 an entry of the sized strategy, whose resize
 * waits for step 3's open. Snapshot after step 2.
 */
function tradedSession(): TradingSession {
  const session = new TradingSession(OPTIONS);
  const steps = [
    [bar('X', 0, 100, 101), bar('Y', 0, 50, 50)],
    [bar('X', 1, 102, 104), bar('Y', 1, 50, 51)],
    [bar('X', 2, 104, 106), bar('Y', 2, 51, 52)],
  ];
  steps.forEach((step, index) => {
    session.open(step);
    if (index === 0) {
      session.submit([enter('trend', 'X', 10, { exits: { stopLoss: { points: 5 }, trailingStop: { percent: 3 } } }), enter('trend', 'Y', 3, { type: 'limit' })], index, step);
      session.reject([{ intent: enter('other', 'Y', 1), source: 'risk', reason: 'max-orders', message: 'too many orders' }], index);
    }
    if (index === 2) session.submit([enter('sized', 'Y', 1)], index, step);
    session.close(step);
  });
  return session;
}

type Path = ReadonlyArray<string | number>;

/** The value at `path` in `value`. */
function at(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((inner, key) => (inner as Record<string | number, unknown>)[key], value);
}

/** A copy of `snapshot` whose value at `path` is `change` of what it was. */
function tamper(snapshot: JsonValue, path: Path, change: (value: unknown) => unknown): JsonValue {
  const copy = throughJson(snapshot);
  const parent = at(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  const key = path[path.length - 1] as string | number;
  parent[key] = change(parent[key]);
  return copy;
}

/** A change to `value`, whatever was there. */
const to = (value: unknown) => (): unknown => value;

function refusal(snapshot: unknown, options: TradingSessionOptions = OPTIONS): IncompatibleSnapshotError {
  return snapshotRefusal(() => TradingSession.restore(snapshot, options));
}

describe('TradingSession.snapshot and restore', () => {
  it('a snapshot holds the open bracket, the pending resize and the fills, and restores to the same snapshot', () => {
    const session = tradedSession();
    const snapshot = throughJson(session.snapshot());
    expect(at(snapshot, ['kind'])).toBe('trading-session');
    expect(at(snapshot, ['version'])).toBe(1);
    expect(at(snapshot, ['state', 'pendingResizes'])).toEqual([{ clientOrderId: expect.stringMatching(/^snap:sized:2:Y:/) as unknown, symbol: 'Y', side: 'buy', strategy: 'sized' }]);
    expect(session.venue.openOrders().map((order) => order.exitOf?.kind ?? order.request.type)).toEqual(['stop-loss', 'trailing-stop', 'market']);
    const restored = TradingSession.restore(snapshot, OPTIONS);
    expect(exact(restored.snapshot())).toBe(exact(session.snapshot()));
    expect(restored.venue.openOrders()).toEqual(session.venue.openOrders());
    expect(restored.account()).toEqual(session.account());
  });

  it('after a restore, the next steps fill, resize and report exactly as the original (checked by hand: the stop-loss at the open, the resize to 5)', () => {
    const original = tradedSession();
    const restored = TradingSession.restore(throughJson(original.snapshot()), OPTIONS);
    const step = [bar('X', 3, 95, 90), bar('Y', 3, 53, 54)];
    const [expected, fills] = [original, restored].map((session) => {
      session.open(step);
      const made = session.stepFills();
      session.close(step);
      return made;
    });
    // X opens at 95, through both stops (the stop-loss at 102 − 5, the trailing stop at 3 % under the
    // best high of 107): both fill at the open, and on a tie the stop-loss does. The sized entry was
    // resized to fixedQuantity(5) at Y's open.
    expect(fills?.map(({ clientOrderId, quantity, price }) => [clientOrderId.split(':').slice(1).join(':'), quantity, price])).toEqual([
      [expect.stringMatching(/^trend:0:X:.*:stop-loss$/), 10, 95],
      [expect.stringMatching(/^sized:2:Y:/), 5, 53],
    ]);
    expect(fills).toEqual(expected);
    expect(exact(restored.settle({ endOfData: 'mark-to-market' }))).toBe(exact(original.settle({ endOfData: 'mark-to-market' })));
  });

  it('a client order id the venue saw before the snapshot is still a duplicate after it', () => {
    const session = TradingSession.restore(throughJson(tradedSession().snapshot()), OPTIONS);
    const step = [bar('X', 0, 100, 101)];
    const [first] = session.submit([enter('trend', 'X', 10, { exits: { stopLoss: { points: 5 }, trailingStop: { percent: 3 } } })], 0, step);
    expect(first?.result).toEqual({ status: 'duplicate' });
  });

  it('holds no NUL character (a PostgreSQL jsonb column refuses \\u0000), though brackets are keyed by strategy and symbol', () => {
    expect(JSON.stringify(tradedSession().snapshot())).not.toContain('\\u0000');
  });
});

describe('TradingSession.restore refuses, naming the field', () => {
  const snapshot = throughJson(tradedSession().snapshot());

  it('a snapshot of another format version', () => {
    const error = refusal(tamper(snapshot, ['version'], to(2)));
    expect(error.problem).toBe(SnapshotProblem.version);
    expect(error.message).toContain('it is in format version 2, and this build reads version 1 only');
  });

  it('something that is not a trading session snapshot', () => {
    expect(refusal(null).message).toContain('the snapshot must be an object, got null');
    expect(refusal(tamper(snapshot, ['kind'], to('portfolio'))).message).toContain('kind must be "trading-session", got "portfolio"');
  });

  it("another swarm's snapshot", () => {
    const error = refusal(snapshot, { ...OPTIONS, swarm: 'other' });
    expect(error.problem).toBe(SnapshotProblem.spec);
    expect(error.differences).toEqual([{ field: 'swarm', snapshot: 'snap', expected: 'other' }]);
    expect(error.message).toContain('cannot restore trading session "other" from this snapshot: it was made from a different spec: swarm is "snap" in the snapshot and "other" here');
  });

  it('options that trade other symbols, or with other venue or portfolio options', () => {
    expect(refusal(snapshot, { ...OPTIONS, symbols: ['X', 'Z'] }).differences.map(({ field }) => field)).toEqual(['symbols[1]', 'venue.symbols[1]']);
    expect(refusal(snapshot, { ...OPTIONS, venue: { ...OPTIONS.venue, fillAt: 'close' } }).differences).toEqual([{ field: 'venue.fillAt', snapshot: 'next-open', expected: 'close' }]);
    expect(refusal(snapshot, { ...OPTIONS, portfolio: { initialCash: 5 } }).differences).toEqual([{ field: 'portfolio.initialCash', snapshot: 100_000, expected: 5 }]);
  });

  it('a symbol the options do not trade, wherever the state names one', () => {
    expect(refusal(tamper(snapshot, ['state', 'lastBars', 1, 'symbol'], to('Z'))).message).toContain(
      'state.lastBars[1].symbol must be one of the symbols of the options (X, Y), got "Z"; restore with the options the snapshot was taken with',
    );
    expect(refusal(tamper(snapshot, ['state', 'venue', 'orders', 0, 'request', 'symbol'], to('Z'))).message).toContain('state.venue.orders[0].request.symbol must be a symbol of the venue');
    expect(refusal(tamper(snapshot, ['state', 'portfolio', 'positions', 0, 'symbol'], to('Z'))).message).toContain('state.portfolio.positions[0].symbol must be one of the traded symbols (X, Y), got "Z"');
    expect(refusal(tamper(snapshot, ['state', 'fills', 0, 1], to('Z'))).message).toContain('state.fills[0][1] must be one of the symbols');
  });

  it('a pending resize whose strategy has no sizer in the options', () => {
    const error = refusal(snapshot, { ...OPTIONS, fillPriceSizing: {} });
    expect(error.problem).toBe(SnapshotProblem.invalid);
    expect(error.message).toContain(
      'state.pendingResizes[0].strategy is "sized", whose entry waits to be sized at its fill price, but the options\' fillPriceSizing has no sizer for it; ' +
        'restore with fillPriceSizing["sized"] set to the sizer the session was built with',
    );
  });

  it.each<[string, Path, (value: unknown) => unknown, string]>([
    ['cash not a number', ['state', 'portfolio', 'cash'], to('lots'), 'state.portfolio.cash must be a number, got "lots"'],
    ['an order status', ['state', 'venue', 'orders', 0, 'status'], to('pending'), 'state.venue.orders[0].status must be one of'],
    ['a negative fill quantity', ['state', 'venue', 'orders', 0, 'fills', 0, 0], to(-1), 'state.venue.orders[0].fills[0][0] must be a quantity > 0, got -1'],
    ['a book listing an unknown order', ['state', 'venue', 'books', 0, 2], (ids) => [...(ids as string[]), 'nope'], 'state.venue.books[0][2][2] must be the id of a X order of the venue, listed once, got "nope"'],
    ['an open order in no book', ['state', 'venue', 'books', 0, 2], to([]), "state.venue.books must list every open order in its symbol's book"],
    ['an exit its entry does not list', ['state', 'venue', 'orders', 0, 'bracket', 'exits'], to([]), 'state.venue.orders[2].exitKind is set, but no entry\'s bracket lists'],
    ['a position without its open trade', ['state', 'portfolio', 'openTrades'], to([]), 'state.portfolio.openTrades must hold the open trade of every position; X has none'],
    ['an equity curve cut short', ['state', 'portfolio', 'curve', 'points'], (points) => (points as number[]).slice(0, -1), 'state.portfolio.curve.points must hold 4 numbers a point'],
    ['a bar whose high is below its close', ['state', 'lastBars', 0, 'high'], to(1), 'state.lastBars[0].high'],
    ['a rejection from an unknown stage', ['state', 'rejections', 0, 'source'], to('mood'), 'state.rejections[0].source must be one of "venue", "risk", "consensus"'],
    ['one gap count too many', ['state', 'cancelled'], to([1]), 'state.cancelled must hold one count per gap (0), got 1'],
    ['a trailing stop without its trail', ['state', 'venue', 'orders', 3, 'trail'], to(undefined), 'state.venue.orders[3].trail must be set on a trailing stop'],
  ])('a malformed field: %s', (_what, path, change, message) => {
    const error = refusal(tamper(snapshot, path, change));
    expect(error.problem).toBe(SnapshotProblem.invalid);
    expect(error.message).toContain(message);
  });
});
