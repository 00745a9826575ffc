// Seeded property tests of snapshots (DESIGN decision 5: same input, same output): for every indicator
// and every strategy type of the registry, with random valid specs and random bars, feeding all the
// inputs gives exactly (bit for bit) what feeding the first k, taking a snapshot, sending it through
// JSON, restoring it into a fresh object of the same spec and feeding the rest gives, for random k
// and for a snapshot after every input. These also guard trading-signals (pinned in package.json):
// a version that moves the state these snapshots restore through fails here.
import { describe, expect, it } from 'vitest';
import { exact, randomSteps, snapshotRefusal, splitPoints, throughJson } from '../../test/fixtures/snapshots.js';
import { IncompatibleSnapshotError, type JsonValue, Rng, SnapshotProblem, isIncompatibleSnapshotError } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { collectIntents } from './collect.js';
import {
  type HighLowClose,
  type StreamingIndicator,
  atr,
  bollinger,
  cci,
  ema,
  macd,
  momentum,
  natr,
  roc,
  rsi,
  sma,
  smma,
  stochastic,
  williamsR,
  wma,
} from './indicators.js';
import { type StrategySpec, buildStrategy, strategySpecSchema } from './registry.js';
import { type RestorableStrategy, restoreStrategies, snapshotStrategies } from './snapshot.js';

const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);

type AnyIndicator = StreamingIndicator<HighLowClose, unknown>;

/** Each indicator with random valid parameters: a maker of fresh instances of one spec. */
const INDICATORS: ReadonlyArray<[string, (rng: Rng) => () => AnyIndicator]> = [
  ['sma', (rng) => { const p = rng.int(1, 30); return () => sma(p); }],
  ['wma', (rng) => { const p = rng.int(1, 30); return () => wma(p); }],
  ['ema', (rng) => { const p = rng.int(1, 30); const seed = rng.pick(['sma', 'first'] as const); return () => ema(p, { seed }); }],
  ['smma', (rng) => { const p = rng.int(1, 30); return () => smma(p); }],
  ['rsi', (rng) => { const p = rng.int(1, 20); return () => rsi(p); }],
  ['bollinger', (rng) => { const p = rng.int(1, 30); const width = 0.5 + 2 * rng.next(); return () => bollinger(p, width); }],
  [
    'macd',
    (rng) => {
      const fast = rng.int(1, 10);
      const slow = rng.int(fast + 1, 25);
      const signal = rng.int(1, 10);
      const seed = rng.pick(['sma', 'sma-aligned', 'first'] as const);
      return () => macd(fast, slow, signal, { seed });
    },
  ],
  ['stochastic', (rng) => { const k = rng.int(1, 15); const slowing = rng.int(1, 5); const d = rng.int(1, 5); return () => stochastic(k, slowing, d); }],
  ['atr', (rng) => { const p = rng.int(1, 20); const trueRangeFrom = rng.pick(['second-bar', 'first-bar'] as const); return () => atr(p, { trueRangeFrom }); }],
  ['natr', (rng) => { const p = rng.int(1, 20); const trueRangeFrom = rng.pick(['second-bar', 'first-bar'] as const); return () => natr(p, { trueRangeFrom }); }],
  ['cci', (rng) => { const p = rng.int(1, 20); return () => cci(p); }],
  ['williamsR', (rng) => { const p = rng.int(1, 20); return () => williamsR(p); }],
  ['momentum', (rng) => { const p = rng.int(1, 20); return () => momentum(p); }],
  ['roc', (rng) => { const p = rng.int(1, 20); return () => roc(p); }],
];

/** One symbol's bars, from the random steps. */
function randomBars(rng: Rng, count: number): Bar[] {
  return randomSteps(rng, ['AAA'], count, { flatChance: rng.pick([0, 0.1, 0.5]) }).map((step) => step[0] as Bar);
}

/** Feeds `bars` to fresh indicators, replacing the indicator at each of `splits` by a fresh one restored from its snapshot; every answer and value. */
function feedIndicator(make: () => AnyIndicator, bars: readonly Bar[], splits: ReadonlySet<number>): string[] {
  let indicator = make();
  const out: string[] = [];
  bars.forEach((bar, i) => {
    if (splits.has(i)) indicator = restored(make, indicator);
    out.push(`${exact(indicator.update(bar))} ${exact(indicator.value)} ${indicator.isStable}`);
  });
  return out;
}

/** A fresh indicator restored from `from`'s snapshot (through JSON), checked to hold the same value and to snapshot the same. */
function restored(make: () => AnyIndicator, from: AnyIndicator): AnyIndicator {
  const snapshot = throughJson(from.snapshot());
  const fresh = make();
  fresh.restore(snapshot);
  expect(exact(fresh.value)).toBe(exact(from.value));
  expect(fresh.isStable).toBe(from.isStable);
  expect(exact(fresh.snapshot())).toBe(exact(snapshot));
  return fresh;
}

describe('indicator snapshots (seeded)', () => {
  it.each(INDICATORS)('%s: a fresh one restored at any bar goes on exactly as the one that never stopped', (_name, maker) => {
    let stable = 0;
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const make = maker(rng);
      const bars = randomBars(rng, rng.int(1, 120));
      const straight = feedIndicator(make, bars, new Set());
      for (const k of splitPoints(rng, bars.length, make().warmupBars)) {
        expect(feedIndicator(make, bars, new Set([k]))).toEqual(straight);
      }
      // A snapshot after every bar, each restored into a fresh indicator: an agent checkpointing every step.
      expect(feedIndicator(make, bars, new Set(bars.keys()))).toEqual(straight);
      if (straight.at(-1)?.endsWith('true')) stable += 1;
    }
    expect(stable).toBeGreaterThan(SEEDS.length / 2);
  });

  it.each(INDICATORS)('%s: restoring overwrites a used indicator whole; its snapshot is state, not history', (_name, maker) => {
    for (const seed of SEEDS.slice(0, 10)) {
      const rng = Rng.seeded(seed);
      const make = maker(rng);
      const warm = make().warmupBars;
      const bars = randomBars(rng, 3 * warm + 300);
      const k = rng.int(0, bars.length);
      const source = make();
      for (const bar of bars.slice(0, k)) source.update(bar);
      const used = make();
      for (const bar of randomBars(rng, 50)) used.update(bar);
      used.restore(throughJson(source.snapshot()));
      const rest = bars.slice(k);
      expect(rest.map((bar) => exact(used.update(bar)))).toEqual(rest.map((bar) => exact(source.update(bar))));
      // Warmed up, the state keeps the same size however many more bars come.
      const numbers = (indicator: AnyIndicator): number => JSON.stringify(indicator.snapshot()).split(/[,[]/).length;
      const early = make();
      for (const bar of bars.slice(0, 3 * warm)) early.update(bar);
      const late = make();
      for (const bar of bars) late.update(bar);
      expect(numbers(late)).toBe(numbers(early));
    }
  });
});

describe('indicator snapshot errors', () => {
  const fed = (indicator: AnyIndicator, count: number): AnyIndicator => {
    for (const bar of randomBars(Rng.seeded(7), count)) indicator.update(bar);
    return indicator;
  };

  it('another period is refused, naming it, and leaves the indicator as it was', () => {
    const target = fed(sma(30), 40);
    const before = exact(target.snapshot());
    const error = snapshotRefusal(() => target.restore(throughJson(fed(sma(20), 40).snapshot())));
    expect(error).toBeInstanceOf(IncompatibleSnapshotError);
    expect(error.problem).toBe(SnapshotProblem.spec);
    expect(error.differences).toEqual([{ field: 'period', snapshot: 20, expected: 30 }]);
    expect(error.message).toBe(
      'cannot restore indicator sma(period 30) from this snapshot: it was made from a different spec: period is 20 in the snapshot and 30 here. ' +
        'Nothing was restored; rebuild its state from its inputs instead (an agent replays its steps from the first), or restore a snapshot made by the same spec and version',
    );
    expect(isIncompatibleSnapshotError(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(exact(target.snapshot())).toBe(before);
  });

  it('another indicator or seed is refused, naming every differing field', () => {
    const error = snapshotRefusal(() => ema(20, { seed: 'first' }).restore(throughJson(sma(20).snapshot())));
    expect(error.differences).toEqual([
      { field: 'indicator', snapshot: 'sma', expected: 'ema' },
      { field: 'seed', snapshot: undefined, expected: 'first' },
    ]);
    expect(error.message).toContain('indicator is "sma" in the snapshot and "ema" here; seed is absent in the snapshot and "first" here');
  });

  it('another format version is refused as such', () => {
    const snapshot = { ...sma(5).snapshot(), version: 2 };
    const error = snapshotRefusal(() => sma(5).restore(snapshot));
    expect(error.problem).toBe(SnapshotProblem.version);
    expect(error.message).toContain('it is in format version 2, and this build reads version 1 only');
  });

  it.each<[string, (snapshot: Record<string, unknown>) => JsonValue, string]>([
    ['not an object', () => 'sma', 'the snapshot must be an object, got "sma"'],
    ['of a strategy', (s) => ({ ...s, kind: 'strategy' }), 'kind must be "indicator", got "strategy"'],
    ['a price that is not a number', (s) => ({ ...s, state: { value: null, core: { prices: [1, 'x'] } } }), 'state.core.prices[1] must be a number, got "x"'],
    ['a window longer than the period', (s) => ({ ...s, state: { value: null, core: { prices: [1, 2, 3, 4, 5, 6] } } }), 'state.core.prices must hold at most 5 items, got 6'],
    ['no state', (s) => ({ ...s, state: undefined }) as unknown as JsonValue, 'state must be an object, got absent'],
  ])('a damaged snapshot (%s) is refused, naming the field', (_case, damage, detail) => {
    const target = fed(sma(5), 9);
    const before = exact(target.snapshot());
    const error = snapshotRefusal(() => target.restore(damage(fed(sma(5), 9).snapshot())));
    expect(error.problem).toBe(SnapshotProblem.invalid);
    expect(error.message).toContain(`cannot restore indicator sma(period 5) from this snapshot: ${detail}. Nothing was restored`);
    expect(exact(target.snapshot())).toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

const sizing = (rng: Rng): Record<string, unknown> =>
  rng.next() < 0.5 ? { type: 'fixed-quantity', units: rng.int(1, 20) } : { type: 'fraction-of-equity', fraction: 0.05 + 0.3 * rng.next(), wholeUnits: rng.next() < 0.5 };

/** Every strategy type of the registry (mean reversion once per indicator), with random valid entries on AAA and BBB. */
const STRATEGY_SPECS: ReadonlyArray<[string, (rng: Rng) => Record<string, unknown>]> = [
  ['sma-crossover', (rng) => { const fastPeriod = rng.int(1, 10); return { type: 'sma-crossover', symbol: rng.pick(['AAA', 'BBB']), fastPeriod, slowPeriod: rng.int(fastPeriod + 1, 30), sizing: sizing(rng) }; }],
  ['ema-crossover', (rng) => { const fastPeriod = rng.int(1, 10); return { type: 'ema-crossover', symbol: rng.pick(['AAA', 'BBB']), fastPeriod, slowPeriod: rng.int(fastPeriod + 1, 30), sizing: sizing(rng) }; }],
  [
    'momentum',
    (rng) => {
      const entryThreshold = 0.05 * rng.next();
      return { type: 'momentum', symbol: 'AAA', lookback: rng.int(1, 25), entryThreshold, exitThreshold: entryThreshold - 0.05 * rng.next(), allowShort: rng.next() < 0.5, sizing: sizing(rng) };
    },
  ],
  [
    'mean-reversion (bollinger)',
    (rng) => {
      const period = rng.int(2, 30);
      return { type: 'mean-reversion', indicator: 'bollinger', symbol: 'BBB', period, stdDevs: (0.2 + 0.75 * rng.next()) * Math.sqrt(period - 1), allowShort: rng.next() < 0.5, sizing: sizing(rng) };
    },
  ],
  [
    'mean-reversion (rsi)',
    (rng) => {
      const oversold = rng.int(10, 45);
      return { type: 'mean-reversion', indicator: 'rsi', symbol: 'AAA', period: rng.int(1, 20), oversold, exitLevel: rng.int(oversold + 1, 90), allowShort: rng.next() < 0.5, sizing: sizing(rng) };
    },
  ],
  [
    'pairs',
    (rng) => {
      const lookback = rng.int(2, 40);
      const entryZ = (0.3 + 0.6 * rng.next()) * Math.sqrt(lookback - 1);
      return {
        type: 'pairs',
        symbolA: 'AAA',
        symbolB: 'BBB',
        lookback,
        entryZ,
        exitZ: entryZ * rng.next() * 0.9,
        ...(rng.next() < 0.3 ? { hedgeRatio: 0.5 + rng.next() } : {}),
        sizing: sizing(rng),
      };
    },
  ],
  ['cross-venue-arbitrage', (rng) => ({ type: 'cross-venue-arbitrage', symbolA: 'AAA', symbolB: 'BBB', minEdgeBps: 50 * rng.next(), exitEdgeBps: -50 * rng.next(), feeBpsPerFill: 5 * rng.next(), sizing: sizing(rng) })],
];

/** A validated entry with a name unique within a seed's set. */
function strategySpec(raw: Record<string, unknown>, index: number): StrategySpec {
  return strategySpecSchema.parse({ ...raw, name: `s${index}-${String(raw['type'])}` });
}

/**
 * Runs `make()`'s strategies over `steps` as a runner does (collectIntents; every intent fills at
 * once at its bar's close), replacing them at each of `splits` by fresh ones restored from their
 * snapshot; every step's intents, exactly.
 */
function feedStrategies(make: () => RestorableStrategy[], steps: readonly Bar[][], splits: ReadonlySet<number>, one = false): string[] {
  let strategies = make();
  const positions = new Map<string, number>();
  const closes = new Map<string, number>();
  let cash = 100_000;
  return steps.map((step, i) => {
    if (splits.has(i)) {
      const fresh = make();
      if (one) fresh.forEach((strategy, j) => strategy.restore(throughJson((strategies[j] as RestorableStrategy).snapshot())));
      else restoreStrategies(fresh, throughJson(snapshotStrategies(strategies)));
      expect(exact(snapshotStrategies(fresh))).toBe(exact(snapshotStrategies(strategies)));
      strategies = fresh;
    }
    for (const bar of step) closes.set(bar.symbol, bar.close);
    const equity = [...positions].reduce((sum, [symbol, units]) => sum + units * (closes.get(symbol) as number), cash);
    const intents = collectIntents(strategies, step, { equity, positions: new Map(positions) }, i);
    for (const intent of intents) {
      const signed = intent.side === 'buy' ? intent.quantity : -intent.quantity;
      positions.set(intent.symbol, (positions.get(intent.symbol) ?? 0) + signed);
      cash -= signed * (closes.get(intent.symbol) as number);
    }
    return exact(intents);
  });
}

describe('strategy snapshots (seeded)', () => {
  it.each(STRATEGY_SPECS)('%s: a fresh one restored at any step goes on exactly as the one that never stopped', (_type, randomSpec) => {
    let trades = 0;
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const spec = strategySpec(randomSpec(rng), 0);
      const make = (): RestorableStrategy[] => [buildStrategy(spec)];
      const steps = randomSteps(rng, ['AAA', 'BBB'], rng.int(1, 150), { gapChance: 0.05, flatChance: 0.05 });
      const straight = feedStrategies(make, steps, new Set());
      for (const k of splitPoints(rng, steps.length, make()[0]?.warmUp?.bars ?? 1)) {
        expect(feedStrategies(make, steps, new Set([k]), true)).toEqual(straight);
      }
      expect(feedStrategies(make, steps, new Set(steps.keys()))).toEqual(straight);
      trades += straight.filter((intents) => intents !== '[]').length;
    }
    expect(trades).toBeGreaterThan(10);
  });

  it('several strategies of every type, restored together at random steps, trade exactly as before', () => {
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const specs = Array.from({ length: rng.int(1, 6) }, (_, i) => strategySpec((rng.pick(STRATEGY_SPECS)[1])(rng), i));
      const make = (): RestorableStrategy[] => specs.map(buildStrategy);
      const steps = randomSteps(rng, ['AAA', 'BBB'], 200, { gapChance: 0.03 });
      const straight = feedStrategies(make, steps, new Set());
      const splits = new Set(Array.from({ length: 4 }, () => rng.int(0, steps.length - 1)));
      expect(feedStrategies(make, steps, splits)).toEqual(straight);
    }
  });
});

describe('strategy snapshot errors and spec', () => {
  const build = (raw: Record<string, unknown>): RestorableStrategy => buildStrategy(strategySpecSchema.parse(raw));
  const crossover = (slowPeriod: number, extra: Record<string, unknown> = {}): RestorableStrategy =>
    build({ type: 'sma-crossover', symbol: 'SPY', fastPeriod: 5, slowPeriod, sizing: { type: 'fixed-quantity', units: 1 }, ...extra });
  const feed = (strategy: RestorableStrategy, count: number): RestorableStrategy => {
    const steps = randomSteps(Rng.seeded(3), ['SPY'], count);
    steps.forEach((step, i) => collectIntents([strategy], step, { equity: 1e5, positions: new Map() }, i));
    return strategy;
  };

  it('names the spec: type, name, symbols and the periods that shape the state', () => {
    expect(crossover(20).snapshot().spec).toEqual({ type: 'sma-crossover', name: 'sma-crossover-SPY-5-20', symbols: ['SPY'], fastPeriod: 5, slowPeriod: 20 });
    const pair = build({ type: 'pairs', symbolA: 'PEP', symbolB: 'KO', lookback: 60, entryZ: 2, exitZ: 0.5, sizing: { type: 'fixed-quantity', units: 1 } });
    expect(pair.snapshot().spec).toEqual({ type: 'pairs', name: 'pairs-PEP-KO-60', symbols: ['PEP', 'KO'], lookback: 60 });
  });

  it('another period, name or symbol is refused, naming each, and leaves the strategy as it was', () => {
    const target = feed(crossover(30, { name: 'trend' }), 40);
    const before = exact(target.snapshot());
    const error = snapshotRefusal(() => target.restore(throughJson(feed(crossover(20), 40).snapshot())));
    expect(error.problem).toBe(SnapshotProblem.spec);
    expect(error.differences.map(({ field }) => field)).toEqual(['name', 'slowPeriod']);
    expect(error.message).toContain('cannot restore strategy "trend" from this snapshot: it was made from a different spec: name is "sma-crossover-SPY-5-20" in the snapshot and "trend" here; slowPeriod is 20 in the snapshot and 30 here.');
    expect(exact(target.snapshot())).toBe(before);
    const otherSymbol = snapshotRefusal(() => crossover(20).restore(throughJson(build({ type: 'sma-crossover', name: 'sma-crossover-SPY-5-20', symbol: 'QQQ', fastPeriod: 5, slowPeriod: 20, sizing: { type: 'fixed-quantity', units: 1 } }).snapshot())));
    expect(otherSymbol.differences).toEqual([{ field: 'symbols[0]', snapshot: 'QQQ', expected: 'SPY' }]);
  });

  it('thresholds and sizing only read the state: a snapshot fits a strategy whose thresholds changed, as a replay would rebuild it', () => {
    const momentum = (entryThreshold: number, units: number): RestorableStrategy =>
      build({ type: 'momentum', symbol: 'SPY', lookback: 10, entryThreshold, exitThreshold: 0, sizing: { type: 'fixed-quantity', units } });
    const replayed = feed(momentum(0.08, 5), 60);
    const resumed = momentum(0.08, 5);
    resumed.restore(throughJson(feed(momentum(0.02, 1), 60).snapshot()));
    expect(exact(resumed.snapshot())).toBe(exact(replayed.snapshot()));
  });

  it('restoreStrategies refuses another set (count, order) naming it, and restores all or nothing', () => {
    const three = (): RestorableStrategy[] => [feed(crossover(10), 30), feed(crossover(20), 30), feed(crossover(30), 30)];
    const snapshot = throughJson(snapshotStrategies(three())) as { state: { strategies: Array<{ state: Record<string, unknown> }> } } & Record<string, JsonValue>;
    const two = three().slice(0, 2);
    expect(snapshotRefusal(() => restoreStrategies(two, snapshot as JsonValue)).message).toContain('names has 3 items in the snapshot and 2 here');
    const reversed = three().reverse();
    expect(snapshotRefusal(() => restoreStrategies(reversed, snapshot as JsonValue)).differences.map(({ field }) => field)).toEqual(['names[0]', 'names[2]']);

    // The third strategy's state is damaged: the first two must not be restored either.
    const damaged = structuredClone(snapshot);
    (damaged.state.strategies[2] as { state: Record<string, unknown> }).state = { previous: 'x' };
    const targets = [crossover(10), crossover(20), crossover(30)];
    const before = exact(snapshotStrategies(targets));
    const error = snapshotRefusal(() => restoreStrategies(targets, damaged));
    expect(error.message).toContain('cannot restore strategy "sma-crossover-SPY-5-30" from this snapshot: state.fast must be an object, got absent');
    expect(exact(snapshotStrategies(targets))).toBe(before);
  });
});

