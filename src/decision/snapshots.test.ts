// Seeded property tests of the decision pipeline's snapshots (DESIGN decision 5: same input, same
// output): with random stages (consensus, the allocator in each weighting, the risk manager through
// NORMAL → REDUCING → HALTED), random steps, intents and accounts, deciding every step gives exactly
// (bit for bit: decisions, refusals and their messages, summaries) what deciding the first k steps,
// taking a snapshot, sending it through JSON, restoring it into a fresh pipeline of the same options
// and deciding the rest gives, for random k and for a snapshot after every step.
import { describe, expect, it } from 'vitest';
import { exact, randomSteps, snapshotRefusal, throughJson } from '../../test/fixtures/snapshots.js';
import type { IncompatibleSnapshotError} from '../core/index.js';
import { type JsonValue, Rng, SnapshotProblem } from '../core/index.js';
import type { Bar } from '../market/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import type { PortfolioAllocatorOptions } from './allocator.js';
import type { ConsensusOptions } from './consensus.js';
import { DecisionPipeline, type DecisionPipelineOptions } from './pipeline.js';
import type { RiskManagerOptions } from './risk.js';

const SEEDS = Array.from({ length: 60 }, (_, i) => i + 1);
const SYMBOLS = ['AAA', 'BBB', 'CCC'] as const;
const WEIGHTINGS = ['equal', 'fixed', 'inverse-volatility'] as const;

/** Random stages over 1 to 4 strategies; the seed's number picks the weighting, so every one is run. */
function randomOptions(rng: Rng, seed: number): DecisionPipelineOptions {
  // Each strategy trades one symbol for sure and each other one by chance.
  const strategies = Array.from({ length: rng.int(1, 4) }, (_, i) => {
    const symbols = new Set<string>([SYMBOLS[i % 3] as string, ...SYMBOLS.filter(() => rng.next() < 0.6)]);
    return { name: `S${i + 1}`, symbols: SYMBOLS.filter((symbol) => symbols.has(symbol)) };
  });
  const maybe = <T>(chance: number, value: () => T): T | undefined => (rng.next() < chance ? value() : undefined);
  const weighting = WEIGHTINGS[seed % 3] as (typeof WEIGHTINGS)[number];
  const raw = strategies.map(() => rng.next());
  const total = raw.reduce((sum, w) => sum + w, 0) / (0.5 + 0.5 * rng.next());
  const allocator: Omit<PortfolioAllocatorOptions, 'strategies'> | undefined = maybe(0.8, () => ({
    weighting,
    ...(weighting === 'fixed' ? { weights: Object.fromEntries(strategies.map(({ name }, i) => [name, (raw[i] as number) / total])) } : {}),
    ...(weighting === 'inverse-volatility' ? { lookbackBars: rng.int(2, 12) } : {}),
    wholeUnits: rng.next() < 0.5,
  }));
  const consensus: ConsensusOptions | undefined = maybe(0.5, () => ({
    threshold: rng.pick(['majority', 'two-thirds', 'unanimity', 0.3, 0.5] as const),
    ...(rng.next() < 0.5 ? { weights: Object.fromEntries(strategies.map(({ name }) => [name, rng.int(1, 3)])) } : {}),
  }));
  const halt = 0.08 + 0.15 * rng.next();
  const risk: RiskManagerOptions | undefined = maybe(0.85, () => ({
    maxPositionUnits: maybe(0.4, () => rng.int(50, 400)),
    maxPositionFraction: maybe(0.3, () => 0.2 + rng.next()),
    maxGrossExposure: maybe(0.5, () => 0.5 + 2 * rng.next()),
    maxOrders: maybe(0.5, () => rng.int(1, 6)),
    orderWindowBars: rng.int(1, 4),
    haltAtDrawdown: halt,
    reduceAtDrawdown: halt * (0.3 + 0.6 * rng.next()),
    ...(rng.next() < 0.5 ? { drawdownWindowBars: rng.int(5, 40) } : {}),
    allowClosingWhenHalted: rng.next() < 0.5,
  }));
  return {
    strategies,
    ...(consensus === undefined ? {} : { consensus }),
    ...(allocator === undefined ? {} : { allocator }),
    ...(risk === undefined ? {} : { risk }),
  };
}

/** One step's input: its bars, the strategies' intents (in their symbols that have a bar), the equity the account marks. */
interface StepInput {
  readonly bars: readonly Bar[];
  readonly intents: readonly StrategyIntent[];
  /** The equity's move this step, as a factor. */
  readonly move: number;
}

function randomInputs(rng: Rng, options: DecisionPipelineOptions, count: number): StepInput[] {
  const steps = randomSteps(rng, SYMBOLS, count, { gapChance: 0.05 });
  // Falls and recoveries, so the drawdown crosses the risk manager's thresholds both ways.
  let drift = 0;
  return steps.map((bars, index) => {
    if (index % 15 === 0) drift = rng.pick([-0.02, -0.01, 0, 0.01, 0.02]);
    const present = new Set(index === 0 ? [] : bars.map((bar) => bar.symbol));
    const intents: StrategyIntent[] = [];
    for (let i = rng.int(0, 6); i > 0; i--) {
      const strategy = rng.pick(options.strategies);
      const symbols = (strategy.symbols ?? []).filter((symbol) => present.has(symbol));
      if (symbols.length === 0) continue;
      const limit = rng.next() < 0.1;
      intents.push({
        strategy: strategy.name,
        symbol: rng.pick(symbols),
        side: rng.pick(['buy', 'sell'] as const),
        quantity: rng.next() < 0.5 ? rng.int(1, 120) : 0.5 + 80 * rng.next(),
        type: limit ? 'limit' : 'market',
        ...(limit ? { limitPrice: 10 + 100 * rng.next() } : {}),
        intent: rng.pick(['enter', 'exit', 'rebalance']),
        ...(rng.next() < 0.3 ? { confidence: 0.2 + 0.8 * rng.next() } : {}),
      });
    }
    // Intents come in the run's strategy order, as collectIntents gives them.
    const order = options.strategies.map(({ name }) => name);
    intents.sort((a, b) => order.indexOf(a.strategy) - order.indexOf(b.strategy));
    return { bars: index === 0 ? [] : bars, intents, move: Math.exp(rng.normal(drift, 0.02)) };
  });
}

/**
 * Decides every step with a pipeline of `options`, replacing it at each of `splits` by a fresh one
 * restored from its snapshot; each step's decision and summary, exactly, and the risk states seen.
 * Approved intents fill at once (positions move); the equity follows its own random walk.
 */
function decideAll(options: DecisionPipelineOptions, inputs: readonly StepInput[], splits: ReadonlySet<number>): { out: string[]; states: Set<string> } {
  let pipeline = new DecisionPipeline(options);
  const positions = new Map<string, number>();
  let equity = 100_000;
  let peak = equity;
  const states = new Set<string>();
  const out = inputs.map(({ bars, intents, move }, index) => {
    if (splits.has(index)) {
      const snapshot = throughJson(pipeline.snapshot());
      const fresh = new DecisionPipeline(options);
      fresh.restore(snapshot);
      expect(exact(fresh.snapshot())).toBe(exact(snapshot));
      expect(exact(fresh.summary())).toBe(exact(pipeline.summary()));
      pipeline = fresh;
    }
    equity *= move;
    peak = Math.max(peak, equity);
    const decision = pipeline.decide(bars, intents, { equity, peakEquity: peak, positions: new Map(positions) }, index);
    for (const intent of decision.approved) positions.set(intent.symbol, (positions.get(intent.symbol) ?? 0) + (intent.side === 'buy' ? intent.quantity : -intent.quantity));
    const summary = pipeline.summary();
    if (summary.riskState !== null) states.add(summary.riskState.finalState);
    return `${exact(decision)} ${exact(summary)}`;
  });
  return { out, states };
}

describe('decision pipeline snapshots (seeded)', () => {
  it('a fresh pipeline restored at any step decides exactly as the one that never stopped', () => {
    const states = new Set<string>();
    const weightings = new Set<string>();
    let consensusRuns = 0;
    let decided = 0;
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const options = randomOptions(rng, seed);
      const inputs = randomInputs(rng, options, rng.int(1, 120));
      const straight = decideAll(options, inputs, new Set());
      for (const k of [0, inputs.length, rng.int(0, inputs.length), rng.int(0, inputs.length)]) {
        expect(decideAll(options, inputs, new Set([k])).out).toEqual(straight.out);
      }
      expect(decideAll(options, inputs, new Set(inputs.keys())).out).toEqual(straight.out);
      for (const state of straight.states) states.add(state);
      if (options.allocator !== undefined) weightings.add(options.allocator.weighting ?? 'equal');
      if (options.consensus !== undefined) consensusRuns += 1;
      decided += straight.out.filter((line) => !line.startsWith('{"approved":[],"rejected":[]}')).length;
    }
    expect([...states].sort()).toEqual(['HALTED', 'NORMAL', 'REDUCING']);
    expect([...weightings].sort()).toEqual(['equal', 'fixed', 'inverse-volatility']);
    expect(consensusRuns).toBeGreaterThan(10);
    expect(decided).toBeGreaterThan(1000);
  });

  it('a snapshot is state, not history: its size stays put however long the run', () => {
    const options: DecisionPipelineOptions = {
      strategies: [{ name: 'S1', symbols: ['AAA'] }, { name: 'S2', symbols: ['BBB', 'CCC'] }],
      consensus: { threshold: 'majority' },
      allocator: { weighting: 'inverse-volatility', lookbackBars: 20 },
      risk: { maxOrders: 4, orderWindowBars: 3, reduceAtDrawdown: 0.5, haltAtDrawdown: 0.9, drawdownWindowBars: 50 },
    };
    const inputs = randomInputs(Rng.seeded(11), options, 5000).map((input) => ({ ...input, move: 1 }));
    const sizes: number[] = [];
    const pipeline = new DecisionPipeline(options);
    inputs.forEach(({ bars, intents }, index) => {
      pipeline.decide(bars, intents, { equity: 1e5, peakEquity: 1e5, positions: new Map() }, index);
      if (index === 999 || index === 4999) sizes.push(JSON.stringify(pipeline.snapshot()).length);
    });
    expect(Math.abs((sizes[1] as number) - (sizes[0] as number))).toBeLessThan(0.05 * (sizes[0] as number));
  });
});

describe('decision pipeline snapshot errors', () => {
  const options: DecisionPipelineOptions = {
    strategies: [{ name: 'S1', symbols: ['AAA'] }, { name: 'S2', symbols: ['BBB'] }],
    allocator: { weighting: 'inverse-volatility', lookbackBars: 5 },
    risk: { haltAtDrawdown: 0.2, maxOrders: 3 },
  };
  const used = (): DecisionPipeline => {
    const pipeline = new DecisionPipeline(options);
    randomInputs(Rng.seeded(5), options, 30).forEach(({ bars, intents }, index) => pipeline.decide(bars, intents, { equity: 1e5 - index * 1000, peakEquity: 1e5, positions: new Map() }, index));
    return pipeline;
  };
  const refusal = (target: DecisionPipeline, snapshot: JsonValue): IncompatibleSnapshotError => {
    const before = exact(target.snapshot());
    const error = snapshotRefusal(() => target.restore(snapshot));
    expect(exact(target.snapshot())).toBe(before);
    return error;
  };

  it('other options or strategies are refused, naming every differing field', () => {
    const snapshot = throughJson(used().snapshot());
    const other = new DecisionPipeline({ ...options, strategies: [{ name: 'S1', symbols: ['AAA'] }, { name: 'S3', symbols: ['BBB'] }], risk: { haltAtDrawdown: 0.25, maxOrders: 3 } });
    const error = refusal(other, snapshot);
    expect(error.problem).toBe(SnapshotProblem.spec);
    expect(error.differences.map(({ field }) => field)).toEqual(['strategies[1].name', 'risk.reduceAtDrawdown', 'risk.haltAtDrawdown', 'risk.recoverBelowDrawdown']);
    expect(error.message).toContain('cannot restore the decision pipeline from this snapshot: it was made from a different spec: strategies[1].name is "S2" in the snapshot and "S3" here; risk.reduceAtDrawdown is 0.2 in the snapshot and 0.25 here; risk.haltAtDrawdown is 0.2 in the snapshot and 0.25 here');
    const withoutAllocator = refusal(new DecisionPipeline({ strategies: options.strategies, risk: options.risk }), snapshot);
    expect(withoutAllocator.differences).toEqual([{ field: 'allocator', snapshot: { weighting: 'inverse-volatility', weights: {}, lookbackBars: 5, wholeUnits: false }, expected: null }]);
  });

  it('another version, or a damaged state, is refused and changes nothing', () => {
    const snapshot = throughJson(used().snapshot()) as { state: Record<string, Record<string, unknown>> } & Record<string, JsonValue>;
    expect(refusal(used(), { ...snapshot, version: 0 } as JsonValue).problem).toBe(SnapshotProblem.version);
    const panic = structuredClone(snapshot);
    (panic.state['risk'] as Record<string, unknown>)['state'] = 'PANIC';
    expect(refusal(used(), panic as JsonValue).message).toContain('state.risk.state must be one of "NORMAL", "REDUCING", "HALTED", got "PANIC"');
    const stranger = structuredClone(snapshot);
    (stranger.state['allocator'] as Record<string, unknown>)['closes'] = [['ZZZ', [1, 2]]];
    expect(refusal(used(), stranger as JsonValue).message).toContain('state.allocator.closes[0][0] is not a symbol whose closes the allocator keeps, got "ZZZ"');
  });
});
