// Seeded property tests of trading session snapshots (DESIGN decision 5: same input, same output):
// random runs on random bars (several symbols, missing bars and holes long enough to be gaps), random
// intents (market, limit and stop; entries with bracket exits, trailing stops among them; exits;
// repeated client order ids; the pipeline's refusals), random venue options (fill timing, partial
// fills, fees, slippage), sizing at the fill price for some strategies and gap flattening in some
// runs. Running every step gives exactly (bit for bit: accounts, venue answers, fills, open orders,
// the report and the equity series) what running the first k steps, taking a snapshot, sending it
// through JSON text, restoring it into a new session of the same options and running the rest gives.
import { describe, expect, it } from 'vitest';
import { exact, throughJson } from '../../test/fixtures/snapshots.js';
import { Rng } from '../core/index.js';
import type { DecisionRejection } from '../decision/index.js';
import { type Bar, findGaps } from '../market/index.js';
import { EndOfDataRule, type Sizer, fixedQuantity, fractionOfEquity } from '../portfolio/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import type { BracketExits, ExitDistance, PaperVenueOptions } from '../venue/index.js';
import { TradingSession, type TradingSessionOptions } from './session.js';

const SEEDS = Array.from({ length: 80 }, (_, i) => i + 1);
const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);
const STEPS = 70;
const SYMBOLS = ['AAA', 'BBB', 'CCC'] as const;
const STRATEGIES = ['S1', 'S2', 'S3'] as const;
const INTENTS: ReadonlyArray<readonly [string, 'buy' | 'sell']> = [
  ['enter-long', 'buy'],
  ['enter-short', 'sell'],
  ['exit-long', 'sell'],
  ['exit-short', 'buy'],
  ['scale-in', 'buy'],
];

/** What one step of a run does, decided up front so that two sessions get exactly the same calls. */
interface StepPlan {
  readonly bars: readonly Bar[];
  readonly intents: readonly StrategyIntent[];
  readonly rejected: readonly DecisionRejection[];
  /** An order source's epoch to admit (fencing), before the step's orders. */
  readonly epoch: { readonly source: string; readonly epoch: number } | undefined;
  /** Intents of an earlier step submitted again with that step's index and bars (a decider's retry). */
  readonly resubmit: { readonly index: number; readonly intents: readonly StrategyIntent[] } | undefined;
}

interface RunPlan {
  readonly options: TradingSessionOptions;
  readonly steps: readonly StepPlan[];
  readonly endOfData: EndOfDataRule;
  /** Steps after which a sized strategy's market entry waits to be resized. */
  readonly sizedEntrySteps: readonly number[];
}

function randomDistance(rng: Rng): ExitDistance {
  return rng.next() < 0.5 ? { points: 0.3 + rng.next() * 4 } : { percent: 0.3 + rng.next() * 5 };
}

function randomExits(rng: Rng): BracketExits {
  const exits: { -readonly [K in keyof BracketExits]: ExitDistance } = {};
  while (Object.keys(exits).length === 0) {
    if (rng.next() < 0.6) exits.stopLoss = randomDistance(rng);
    if (rng.next() < 0.5) exits.takeProfit = randomDistance(rng);
    if (rng.next() < 0.5) exits.trailingStop = randomDistance(rng);
  }
  return exits;
}

/**
 * Bars of every symbol, a day apart; some bars missing, and in most runs holes of 5 to 8 days (gaps),
 * in some two in the same symbol.
 */
function randomBars(rng: Rng, symbols: readonly string[]): Bar[][] {
  const holes: Array<{ symbol: string; from: number; length: number }> = [];
  if (rng.next() < 0.7) holes.push({ symbol: rng.pick(symbols), from: rng.int(8, 25), length: rng.int(5, 8) });
  if (rng.next() < 0.5) holes.push({ symbol: rng.next() < 0.6 && holes[0] !== undefined ? holes[0].symbol : rng.pick(symbols), from: rng.int(38, STEPS - 15), length: rng.int(5, 8) });
  const closes = new Map(symbols.map((symbol) => [symbol, 20 + 100 * rng.next()]));
  const steps: Bar[][] = [];
  for (let t = 0; t < STEPS; t++) {
    const step: Bar[] = [];
    for (const symbol of symbols) {
      const inHole = holes.some((hole) => hole.symbol === symbol && t >= hole.from && t < hole.from + hole.length);
      const previous = closes.get(symbol) as number;
      const open = previous * (1 + (rng.next() - 0.5) * 0.04);
      const close = open * (1 + (rng.next() - 0.5) * 0.05);
      const high = Math.max(open, close) * (1 + rng.next() * 0.02);
      const low = Math.min(open, close) * (1 - rng.next() * 0.02);
      const volume = rng.next() < 0.1 ? 0 : rng.int(20, 3000);
      if (inHole || rng.next() < 0.05) continue;
      closes.set(symbol, close);
      step.push({ symbol, timeMs: T0 + t * DAY, open, high, low, close, volume });
    }
    if (step.length > 0) steps.push(step);
  }
  return steps;
}

function randomVenue(rng: Rng): Omit<PaperVenueOptions, 'symbols'> {
  return {
    fillAt: rng.next() < 0.65 ? 'next-open' : 'close',
    slippage: rng.pick([{ model: 'none' }, { model: 'bps', bps: rng.int(1, 30) }, { model: 'fixed', amountPerShare: rng.next() / 20 }]),
    fees: rng.pick([
      { model: 'none' },
      { model: 'fixed', amountPerOrder: rng.int(1, 5) },
      { model: 'bps', bps: rng.int(1, 20), minimumPerOrder: rng.int(0, 3) },
      { model: 'per-share', amountPerShare: rng.next() / 10, minimumPerOrder: rng.int(0, 3) },
    ]),
    partialFills: rng.next() < 0.4 ? { maxFractionOfBarVolume: 0.005 + rng.next() * 0.05, lotSize: rng.pick([0, 1]) } : false,
  };
}

function randomIntent(rng: Rng, symbols: readonly string[], lastClose: ReadonlyMap<string, number>): StrategyIntent {
  const symbol = rng.pick(symbols);
  const [intent, side] = rng.pick(INTENTS);
  const reference = lastClose.get(symbol) ?? 50;
  const type = rng.pick(['market', 'market', 'limit', 'stop'] as const);
  const away = reference * (rng.next() - 0.5) * 0.06;
  const quantity = rng.next() < 0.04 ? 0 : rng.int(1, 60);
  return {
    strategy: rng.pick(STRATEGIES),
    symbol,
    side,
    quantity,
    type,
    intent,
    ...(type === 'limit' ? { limitPrice: reference - (side === 'buy' ? Math.abs(away) : -Math.abs(away)) } : {}),
    ...(type === 'stop' ? { stopPrice: reference + (side === 'buy' ? Math.abs(away) : -Math.abs(away)) } : {}),
    ...(intent.startsWith('enter-') && rng.next() < 0.6 ? { exits: randomExits(rng) } : {}),
  };
}

function randomPlan(seed: number): RunPlan {
  const rng = Rng.seeded(seed);
  const symbols = SYMBOLS.slice(0, rng.int(2, 3));
  const venue = randomVenue(rng.fork('venue'));
  const bars = randomBars(rng.fork('bars'), symbols);
  const sizers: Record<string, Sizer> = {};
  if (rng.next() < 0.7) sizers.S1 = fractionOfEquity(0.05 + rng.next() * 0.1, { wholeUnits: rng.next() < 0.7 });
  if (rng.next() < 0.4) sizers.S2 = fixedQuantity(rng.int(1, 40));
  const found = findGaps(bars.flat(), { threshold: 3, minimumDays: 0 });
  const options: TradingSessionOptions = {
    swarm: `run-${seed}`,
    symbols,
    venue,
    portfolio: { initialCash: 100_000 },
    fillPriceSizing: sizers,
    ...(found.length > 0 ? { gaps: { found, flatten: rng.next() < 0.6 } } : {}),
  };
  const intentRng = rng.fork('intents');
  const lastClose = new Map<string, number>();
  const steps: StepPlan[] = [];
  const sizedEntrySteps: number[] = [];
  bars.forEach((step, index) => {
    for (const bar of step) lastClose.set(bar.symbol, bar.close);
    const intents = Array.from({ length: intentRng.int(0, 3) }, () => randomIntent(intentRng, symbols, lastClose));
    // The same decision twice in a step (two deciders of a mesh): the venue answers the second `duplicate`.
    if (intents.length > 0 && intentRng.next() < 0.15) intents.push(intentRng.pick(intents));
    const rejected: DecisionRejection[] =
      intentRng.next() < 0.1 ? [{ intent: randomIntent(intentRng, symbols, lastClose), source: intentRng.pick(['risk', 'consensus'] as const), reason: 'max-orders', message: 'too many orders' }] : [];
    const earlier = index > 0 && intentRng.next() < 0.1 ? intentRng.int(0, index - 1) : undefined;
    const resubmit = earlier === undefined || (steps[earlier] as StepPlan).intents.length === 0 ? undefined : { index: earlier, intents: (steps[earlier] as StepPlan).intents };
    if (intents.some((intent) => intent.type === 'market' && intent.intent.startsWith('enter-') && sizers[intent.strategy] !== undefined)) sizedEntrySteps.push(index);
    const epoch = intentRng.next() < 0.2 ? { source: intentRng.pick(['agent-1', 'agent-2']), epoch: intentRng.int(0, 6) } : undefined;
    steps.push({ bars: step, intents, rejected, resubmit, epoch });
  });
  return { options, steps, endOfData: rng.pick(Object.values(EndOfDataRule)), sizedEntrySteps };
}

/** Runs steps `from` to `to` (excluded) and returns everything the session answered, step by step. */
function drive(session: TradingSession, plan: RunPlan, from: number, to: number): unknown[] {
  const out: unknown[] = [];
  for (let index = from; index < to; index++) {
    const { bars, intents, rejected, resubmit, epoch } = plan.steps[index] as StepPlan;
    const account = session.open(bars);
    const opened = { equity: account.equity, peakEquity: account.peakEquity, positions: [...account.positions], fills: [...session.stepFills()] };
    const admitted = epoch === undefined ? null : session.venue.admitEpoch(epoch.source, epoch.epoch);
    if (rejected.length > 0) session.reject(rejected, index);
    const submitted = session.submit(intents, index, bars).map(({ clientOrderId, result }) => ({ clientOrderId, result }));
    const again = resubmit === undefined ? [] : session.submit(resubmit.intents, resubmit.index, (plan.steps[resubmit.index] as StepPlan).bars).map(({ result }) => result.status);
    session.close(bars);
    out.push({ index, opened, admitted, submitted, again, closeFills: [...session.stepFills()], openOrders: session.venue.openOrders(), account: session.account() });
  }
  return out;
}

/** What a snapshot at step k holds that the steps after it depend on, counted over the runs. */
interface Coverage {
  splits: number;
  openOrders: number;
  partiallyFilled: number;
  openExits: number;
  openTrailingStops: number;
  pendingResizes: number;
  openPositions: number;
  tradesBefore: number;
  fillsAfter: number;
  gapsFlattenedAfter: number;
  duplicatesAfter: number;
  fencedAfter: number;
  flattenedBeforeAndAfter: number;
}

function check(seed: number, coverage: Coverage): void {
  const plan = randomPlan(seed);
  const count = plan.steps.length;
  const rng = Rng.seeded(seed).fork('splits');
  const splits = new Set([rng.int(0, count), rng.int(1, count - 1), rng.int(1, count - 1)]);
  // Right after a step where a sized entry was decided, its resize is pending.
  if (plan.sizedEntrySteps.length > 0) splits.add(rng.pick(plan.sizedEntrySteps) + 1);
  const whole = new TradingSession(plan.options);
  const expected = drive(whole, plan, 0, count);
  const expectedEnd = whole.settle({ endOfData: plan.endOfData });
  for (const k of [...splits].sort((a, b) => a - b)) {
    const first = new TradingSession(plan.options);
    const before = drive(first, plan, 0, k);
    expect(exact(before)).toBe(exact(expected.slice(0, k)));
    const snapshot = throughJson(first.snapshot());
    const restored = TradingSession.restore(snapshot, plan.options);
    // The restored session's own snapshot is the one it came from.
    expect(throughJson(restored.snapshot())).toEqual(snapshot);
    const after = drive(restored, plan, k, count);
    const context = `seed ${seed}, snapshot after ${k} of ${count} steps`;
    expect(after, context).toEqual(expected.slice(k));
    expect(exact(after), context).toBe(exact(expected.slice(k)));
    const end = restored.settle({ endOfData: plan.endOfData });
    expect(end.report, context).toEqual(expectedEnd.report);
    expect(exact(end.report), context).toBe(exact(expectedEnd.report));
    expect(end.equitySeries.toArray(), context).toEqual(expectedEnd.equitySeries.toArray());
    expect(exact(end.equitySeries.toArray()), context).toBe(exact(expectedEnd.equitySeries.toArray()));

    const open = first.venue.openOrders();
    const state = (snapshot as { state: { pendingResizes: unknown[] } }).state;
    const stepsAfter = expected.slice(k) as Array<{ admitted: boolean | null; opened: { fills: unknown[] }; closeFills: unknown[]; again: string[]; submitted: Array<{ result: { status: string } }> }>;
    coverage.splits++;
    if (open.length > 0) coverage.openOrders++;
    if (open.some((order) => order.status === 'partially-filled')) coverage.partiallyFilled++;
    if (open.some((order) => order.exitOf !== undefined)) coverage.openExits++;
    if (open.some((order) => order.exitOf?.kind === 'trailing-stop')) coverage.openTrailingStops++;
    if (state.pendingResizes.length > 0) coverage.pendingResizes++;
    if (first.portfolio.openPositions().length > 0) coverage.openPositions++;
    if (first.portfolio.trades().length > 0) coverage.tradesBefore++;
    if (stepsAfter.some((step) => step.opened.fills.length + step.closeFills.length > 0)) coverage.fillsAfter++;
    const kTime = k === 0 ? -Infinity : ((plan.steps[k - 1] as StepPlan).bars[0] as Bar).timeMs;
    if (expectedEnd.report.gaps.some((gap) => (gap.flattened ?? 0) !== 0 && gap.lastBeforeMs > kTime)) coverage.gapsFlattenedAfter++;
    if (stepsAfter.some((step) => step.admitted === false)) coverage.fencedAfter++;
    const flattened = expectedEnd.report.gaps.filter((gap) => gap.flattened !== null);
    if (flattened.some((gap) => gap.lastBeforeMs <= kTime && flattened.some((later) => later.symbol === gap.symbol && later.lastBeforeMs > kTime))) coverage.flattenedBeforeAndAfter++;
    if (stepsAfter.some((step) => step.again.includes('duplicate') || step.submitted.some(({ result }) => result.status === 'duplicate'))) coverage.duplicatesAfter++;
  }
}

/** Runs every step, replacing the session after each by one restored from its snapshot. */
function driveRestoringEachStep(plan: RunPlan): { steps: unknown[]; session: TradingSession } {
  let session = new TradingSession(plan.options);
  const steps: unknown[] = [];
  for (let index = 0; index < plan.steps.length; index++) {
    steps.push(...drive(session, plan, index, index + 1));
    session = TradingSession.restore(throughJson(session.snapshot()), plan.options);
  }
  return { steps, session };
}

describe('TradingSession snapshots: seeded properties', () => {
  it('a session restored after every step from the snapshot of the one restored before goes on exactly as the original (8 seeds)', () => {
    for (const seed of SEEDS.slice(0, 8)) {
      const plan = randomPlan(seed);
      const whole = new TradingSession(plan.options);
      const expected = drive(whole, plan, 0, plan.steps.length);
      const { steps, session } = driveRestoringEachStep(plan);
      expect(exact(steps), `seed ${seed}`).toBe(exact(expected));
      expect(exact(session.settle({ endOfData: plan.endOfData })), `seed ${seed}`).toBe(exact(whole.settle({ endOfData: plan.endOfData })));
    }
  });


  it(`a session restored from a snapshot at a random step goes on exactly as the original (${SEEDS.length} seeds, 3 or 4 steps each)`, () => {
    const coverage: Coverage = {
      splits: 0,
      openOrders: 0,
      partiallyFilled: 0,
      openExits: 0,
      openTrailingStops: 0,
      pendingResizes: 0,
      openPositions: 0,
      tradesBefore: 0,
      fillsAfter: 0,
      gapsFlattenedAfter: 0,
      duplicatesAfter: 0,
      fencedAfter: 0,
      flattenedBeforeAndAfter: 0,
    };
    for (const seed of SEEDS) check(seed, coverage);
    // The runs really carry state across the snapshot: not a property of empty sessions.
    const { splits, ...counts } = coverage;
    for (const [what, seen] of Object.entries(counts)) expect(seen, `${what}: ${seen} of ${splits} snapshots`).toBeGreaterThanOrEqual(10);
  });
});
