import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { OrdersMessage, type Resume, swarmRegistry } from '../agent/index.js';
import { type MemoryBroker, createMemoryBroker, createMemoryBus, swarmTopics } from '../bus/index.js';
import { ManualClock, silentLogger } from '../core/index.js';
import { openArrayFeed, pace } from '../market/index.js';
import { Deployment } from './deployment.js';
import { InProcessLauncher } from './inprocess.testkit.js';
import { ABSENCES_KEPT, type ClosedStep, type DeploymentJournal, EVENTS_KEPT, type JournalReplay, type StoredStep } from './journal.js';
import type { AgentLauncher } from './launcher.js';
import type { SwarmReport } from './report.js';
import { type SwarmSpec, parseSwarmSpec } from './spec.js';

/**
 * A deployment's journal, unit-tested: a control plane that dies (its deployment dropped on the
 * floor, its agents and bus gone, mid-step or between steps) and comes back from the journal alone
 * trades exactly what an uninterrupted run trades. Agents run in this process on an in-memory bus,
 * every timer on a manual clock.
 */

const SWARM = 'journal';

/** With `brackets`, the strategies trade both sides with exits (an ATR stop, a take-profit, a trailing stop). */
async function specOf(topology: string, brackets = false, barCount = 90): Promise<SwarmSpec> {
  const exits = brackets ? { exits: { stopLoss: { atr: { period: 3, multiple: 3 } }, takeProfit: { percent: 6 }, trailingStop: { percent: 4 } }, side: 'both' } : {};
  return parseSwarmSpec(
    {
      name: 'journal',
      data: { source: 'synthetic', seed: 11, symbols: ['AAA', 'BBB'], barCount },
      strategies: [
        { type: 'momentum', name: 'mom-a', symbol: 'AAA', lookback: 3, entryThreshold: 0.004, exitThreshold: 0, sizing: { type: 'fixed-quantity', units: 10 }, ...exits },
        { type: 'sma-crossover', name: 'sma-b', symbol: 'BBB', fastPeriod: 2, slowPeriod: 5, sizing: { type: 'fixed-quantity', units: 10 }, ...exits },
        { type: 'ema-crossover', name: 'ema-a', symbol: 'AAA', fastPeriod: 2, slowPeriod: 6, sizing: { type: 'fixed-quantity', units: 5 } },
      ],
      risk: { maxPositionUnits: 100 },
      swarm: { topology, heartbeatMs: 100, agentTimeoutMs: 1_000, stepTimeoutMs: 500, checkpointEverySteps: 7 },
    },
    'journal spec',
  );
}

/** A journal in memory: what a store holds, as a restarted control plane reads it back. */
class MemoryJournal implements DeploymentJournal {
  readonly steps: ClosedStep[] = [];
  readonly checkpoints = new Map<string, Resume>();
  stepClosed(step: ClosedStep): Promise<void> {
    // Through JSON, as a store gives it back.
    const stored = JSON.parse(JSON.stringify(step)) as ClosedStep;
    this.steps.push(stored);
    for (const { agentId, resume } of stored.checkpoints) this.checkpoints.set(agentId, resume);
    return Promise.resolve();
  }
  /**
   * Every step; with `venueContext`, as a store with venue snapshots gives it back: the latest
   * snapshot, and the steps from `venueContext` before it on.
   */
  replay(options: { readonly venueContext?: number } = {}): JournalReplay {
    const last = this.steps[this.steps.length - 1];
    if (last === undefined) throw new Error('nothing journaled yet');
    const venue = options.venueContext === undefined ? undefined : this.steps.findLast((step) => step.venue !== undefined)?.venue;
    if (venue === undefined) return { steps: this.steps, checkpoints: new Map(this.checkpoints), snapshot: last.snapshot };
    const from = Math.max(0, venue.closedSteps - (options.venueContext as number));
    return { steps: this.steps.slice(from), checkpoints: new Map(this.checkpoints), snapshot: last.snapshot, venue };
  }
  /** How many steps {@link stepsBetween} gave back. */
  read = 0;
  stepsBetween(from: number, to: number): Promise<StoredStep[]> {
    const steps = this.steps.filter((step) => step.index >= from && step.index < to).map(({ index, bars, participants, signals, opened }) => ({ index, bars, participants, signals, opened }));
    this.read += steps.length;
    return Promise.resolve(steps);
  }
}

interface Generation {
  readonly deployment: Deployment;
  readonly broker: MemoryBroker;
  readonly clock: ManualClock;
}

const brokers: MemoryBroker[] = [];
afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

/** One life of the control plane: its own broker, clock and agents; resumed from `replay` when given. */
function generation(
  spec: SwarmSpec,
  journal: DeploymentJournal | undefined,
  replay?: JournalReplay,
  hooks: { onProgress?: (step: number) => void; launchDelayMs?: (agentId: string) => number; venueSnapshotEverySteps?: number } = {},
): Generation {
  const clock = new ManualClock(Date.UTC(2026, 0, 1) + brokers.length * 86_400_000);
  const broker = createMemoryBroker({ logger: silentLogger });
  brokers.push(broker);
  const bus = createMemoryBus({ broker, clientId: 'control-plane', clock, registry: swarmRegistry, logger: silentLogger });
  const position = replay?.snapshot.position;
  const options = {
    spec,
    swarmId: SWARM,
    bus,
    launcher: slowed(new InProcessLauncher({ broker, clock, logger: silentLogger }), clock, hooks.launchDelayMs),
    pacer: pace(openArrayFeed(spec.backtest.bars, position === undefined ? {} : { from: position }), { clock, pacing: spec.swarm.pacing }),
    clock,
    stopwatch: () => clock.now(),
    logger: silentLogger,
    ...(journal === undefined ? {} : { journal }),
    ...(hooks.onProgress === undefined ? {} : { onProgress: ({ step }: { step: number }) => hooks.onProgress?.(step) }),
    ...(hooks.venueSnapshotEverySteps === undefined ? {} : { venueSnapshotEverySteps: hooks.venueSnapshotEverySteps }),
  };
  const deployment = replay === undefined ? new Deployment(options) : Deployment.resumeFrom(replay, options);
  return { deployment, broker, clock };
}

/** `launcher`, each agent's process started `delayMs(agent)` later on `clock` (a sandbox slow to come up). */
function slowed(launcher: AgentLauncher, clock: ManualClock, delayMs: ((agentId: string) => number) | undefined): AgentLauncher {
  if (delayMs === undefined) return launcher;
  return {
    prepare: () => launcher.prepare(),
    launch: async (request) => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, delayMs(request.agent.id)));
      return launcher.launch(request);
    },
    close: () => launcher.close(),
  };
}

/** Runs `work` to its end under the generation's manual clock (see deployment.test.ts). */
async function settle<T>(g: Generation, work: Promise<T>, until: () => boolean = () => false, maxMs = 120_000): Promise<T | undefined> {
  let outcome: { value: T } | { error: unknown } | undefined;
  work.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  for (let elapsed = 0; outcome === undefined; elapsed += 10) {
    if (elapsed > maxMs) throw new Error(`not settled within ${maxMs} ms of the manual clock; the deployment is ${g.deployment.state}`);
    await g.broker.flush();
    await new Promise((resolve) => setImmediate(resolve));
    if (until()) return undefined;
    if (outcome === undefined) g.clock.advance(10);
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

async function runToEnd(g: Generation): Promise<SwarmReport> {
  await settle(g, g.deployment.start());
  await settle(g, g.deployment.run());
  await g.deployment.close();
  return g.deployment.report({ sandbox: 'local', broker: 'memory', brokerRoundTripMs: null });
}

/**
 * A journal that dies with its process once `dead()` says so: that write and every later one never
 * complete, as when the control plane is killed before the step's transaction commits.
 */
function mortal(journal: MemoryJournal, dead: (step: ClosedStep) => boolean): DeploymentJournal {
  let killed = false;
  return {
    stepClosed: (step) => {
      killed ||= dead(step);
      return killed ? new Promise<void>(() => undefined) : journal.stepClosed(step);
    },
    stepsBetween: (from, to) => journal.stepsBetween(from, to),
  };
}

/** Runs a generation until its journal died, then drops it as a SIGKILL would: its bus and agents go at once. */
async function runUntilCrash(g: Generation, journal: MemoryJournal, storedBefore: () => number): Promise<void> {
  await settle(g, g.deployment.start());
  const left = await settle(g, g.deployment.run(), () => journal.steps.length === storedBefore());
  expect(left, 'the run ended before the crash point').toBeUndefined();
  await g.broker.close();
}

function books(report: SwarmReport) {
  return { trades: report.trades, fills: report.fills, finalEquity: report.finalEquity, rejections: report.rejections, openPositions: report.openPositions };
}

describe.each([
  ['mesh', false],
  ['star', false],
  ['hierarchical', false],
  ['ring', false],
  ['mesh', true],
] as const)('a %s deployment resumed from its journal (brackets: %s)', (topology, brackets) => {
  it('after a crash between steps and one in the middle of a step, trades exactly as a run that never stopped', async () => {
    const spec = await specOf(topology, brackets);
    const clean = await runToEnd(generation(spec, undefined));
    expect(clean.outcome).toBe('complete');
    expect(clean.trades.length).toBeGreaterThan(3);

    const journal = new MemoryJournal();
    // Life 1 dies before step 31 is stored.
    await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === 31)), journal, () => 31);
    expect(journal.steps.length).toBe(31);

    // Life 2 resumes, and dies once the orders of a later step reached its venue, before that step is stored.
    let ordersOf = -1;
    const second = generation(spec, mortal(journal, (step) => ordersOf >= 0 && step.index >= ordersOf), journal.replay());
    const observer = createMemoryBus({ broker: second.broker, clientId: 'observer', clock: second.clock, registry: swarmRegistry, logger: silentLogger });
    await observer.subscribe(swarmTopics(SWARM).allOrders(), (envelope) => {
      if (ordersOf < 0 && OrdersMessage.is(envelope) && envelope.payload.index >= 50 && envelope.payload.approved.length > 0) ordersOf = envelope.payload.index;
    });
    await runUntilCrash(second, journal, () => ordersOf);
    expect(ordersOf).toBeGreaterThanOrEqual(50);
    expect(journal.steps.length).toBe(ordersOf);
    const resumedEvents = second.deployment.toJSON().events.filter((event) => event.kind === 'resumed');
    expect(resumedEvents).toHaveLength(second.deployment.plan.agents.length);
    // Agents came back from their checkpoints (every 7 steps), not by replaying all 31 steps.
    // (A ring's entry only forwards steps: it has no state to checkpoint.)
    for (const event of resumedEvents.filter((resumed) => resumed.agent !== second.deployment.plan.entry)) {
      expect(event.detail).toMatch(/from its checkpoint after step (2[4-9]|30), replayed [0-7] steps/);
    }

    // Life 3 resumes and runs to the end.
    const third = generation(spec, journal, journal.replay());
    const resumed = await runToEnd(third);
    expect(resumed.outcome).toBe('complete');
    expect(books(resumed)).toEqual(books(clean));
    expect(journal.steps.map((step) => step.index)).toEqual(Array.from({ length: 90 }, (_, i) => i));
    // Every order the venue placed is in the journal once, and they are the run's orders.
    const orderIds = journal.steps.flatMap((step) => step.orders.map((order) => order.clientOrderId));
    expect(new Set(orderIds).size).toBe(orderIds.length);
    expect(journal.steps.flatMap((step) => step.fills)).toEqual(clean.fills.filter((fill) => !fill.clientOrderId.includes('end-of-data')).slice(0, journal.steps.flatMap((step) => step.fills).length));
    if (brackets) {
      // Both crashes left the venue a bracket the resumed one had to rebuild: life 1 died after step 31
      // traded, with a bracket placed by then and filled later; life 2 died inside step `ordersOf`, which
      // began with a bracket placed on an earlier step.
      const filledAt = new Map(clean.fills.map((fill) => [fill.clientOrderId, fill.timeMs]));
      const spans = clean.fills.flatMap((fill) => {
        const entry = /^(.*):(stop-loss|take-profit|trailing-stop)$/.exec(fill.clientOrderId)?.[1];
        return entry === undefined ? [] : [[filledAt.get(entry) as number, fill.timeMs] as const];
      });
      const timeOf = (index: number): number => (journal.steps[index] as ClosedStep).timeMs;
      expect(spans.some(([from, to]) => from <= timeOf(31) && to > timeOf(31))).toBe(true);
      expect(spans.some(([from, to]) => from < timeOf(ordersOf) && to >= timeOf(ordersOf))).toBe(true);
    }
  });
});

// Issue 15: a restart reads and applies only the steps since the latest venue snapshot (and a few before it).
describe.each([
  ['mesh', true],
  ['star', false],
  ['hierarchical', false],
  ['ring', false],
] as const)('a %s deployment resumed from a venue snapshot (brackets: %s)', (topology, brackets) => {
  it('after a crash between steps and one in the middle of a step, trades exactly as a run that never stopped and reports the same', async () => {
    const spec = await specOf(topology, brackets);
    const clean = await runToEnd(generation(spec, undefined));
    const journal = new MemoryJournal();
    const every = { venueSnapshotEverySteps: 10 };
    // Life 1 dies before step 34 is stored: its latest venue snapshot came with step 29.
    await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === 34), undefined, every), journal, () => 34);
    const first = journal.replay({ venueContext: 5 });
    expect([first.venue?.closedSteps, first.steps[0]?.index, first.steps.length]).toEqual([30, 25, 9]);

    // Life 2 resumes from it and dies before step 57 is stored; life 3, from the snapshot of step 49, runs to the end.
    await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === 57), first, every), journal, () => 57);
    const second = journal.replay({ venueContext: 5 });
    expect([second.venue?.closedSteps, second.steps[0]?.index]).toEqual([50, 45]);
    const resumed = await runToEnd(generation(spec, journal, second, every));
    expect(resumed.outcome).toBe('complete');
    expect(books(resumed)).toEqual(books(clean));
    // What the report counts of the steps before the snapshot came with it.
    expect(resumed.duplicateOrders).toBe(clean.duplicateOrders);
    expect(resumed.absences).toEqual(clean.absences);
    expect(journal.steps.map((step) => step.index)).toEqual(Array.from({ length: 90 }, (_, i) => i));
    expect(journal.steps.filter((step) => step.venue !== undefined).map((step) => step.index)).toEqual([9, 19, 29, 39, 49, 59, 69, 79, 89]);
    // Every agent was replayed from what the restarts held: nothing older was read (a ring's entry, which keeps no state, is replayed nothing).
    expect(journal.read).toBe(0);
  });

  it('refuses a replay whose steps begin after the venue snapshot, saying what is missing', async () => {
    const spec = await specOf(topology, brackets);
    const journal = new MemoryJournal();
    await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === 24), undefined, { venueSnapshotEverySteps: 10 }), journal, () => 24);
    const replay = journal.replay({ venueContext: 0 });
    expect(() => generation(spec, journal, { ...replay, steps: replay.steps.slice(2) })).toThrow(/the journal's steps begin at 22, after the venue snapshot's 20: the steps between are missing/);
  });
});

// Issue 15: a deployment keeps in memory only the steps since its agents' oldest checkpoint (at most
// 2 × checkpointEverySteps + 100); an agent whose checkpoint is older is replayed from the journal.
describe('a deployment resumed with an agent that has no checkpoint, after more steps than it holds', () => {
  it('replays that agent every step, the older ones read from the journal, and trades as a run that never stopped', async () => {
    const spec = await specOf('mesh', false, 300);
    const clean = await runToEnd(generation(spec, undefined));
    const journal = new MemoryJournal();
    await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === 250)), journal, () => 250);
    const replay = journal.replay();
    const forgetful = [...replay.checkpoints.keys()][0] as string;
    const checkpoints = new Map(replay.checkpoints);
    checkpoints.delete(forgetful);
    const resumed = generation(spec, journal, { ...replay, checkpoints });
    // It holds the last 2 × 7 + 100 of the 250 steps it re-applied, not all of them.
    expect(resumed.deployment.heldSteps).toBe(114);
    const report = await runToEnd(resumed);
    expect(report.events.find((event) => event.kind === 'resumed' && event.agent === forgetful)?.detail).toMatch(/^deployed again from the first step \(no checkpoint\).*, replayed 250 steps$/);
    expect(journal.read).toBe(250 - 114);
    expect(report.outcome).toBe('complete');
    expect(books(report)).toEqual(books(clean));
  });

  it('fails to start, saying why, when it has no journal to read the older steps from', async () => {
    const spec = await specOf('mesh', false, 300);
    const journal = new MemoryJournal();
    await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === 250)), journal, () => 250);
    const replay = journal.replay();
    const checkpoints = new Map(replay.checkpoints);
    checkpoints.delete([...replay.checkpoints.keys()][0] as string);
    const resumed = generation(spec, { stepClosed: (step) => journal.stepClosed(step) }, { ...replay, checkpoints });
    await expect(settle(resumed, resumed.deployment.start())).rejects.toThrow(/must be replayed from step 0, older than the steps this deployment holds \(from 136: .*\), and it has no journal to read them from/);
    expect(resumed.deployment.state).toBe('failed');
    await resumed.deployment.close();
  });
});

const DAILY = fileURLToPath(new URL('../../../shared/data/daily/', import.meta.url));
const dailyPresent = ['KO.csv', 'PEP.csv'].every((file) => existsSync(join(DAILY, file)));
if (!dailyPresent && process.env.CI === 'true') throw new Error(`${DAILY} lacks KO.csv and PEP.csv; CI must provide ../shared/data`);
if (!dailyPresent) console.warn(`journal.test.ts: skipping the fill-price resume tests: ${DAILY} lacks KO.csv and PEP.csv`);

describe.runIf(dailyPresent).each(['mesh', 'star'])('a %s deployment sizing at the fill price, resumed from its journal', (topology) => {
  it('resizes at the next open an entry whose signal step was stored just before the crash, as a run that never stopped', async () => {
    // Real daily bars (../shared/data/daily, see its SOURCES.md): an open differs from the close before it, so a resize changes counts.
    const fillPrice = { type: 'fraction-of-equity', fraction: 0.2, wholeUnits: true, sizeAt: 'fill-price' };
    const spec = await parseSwarmSpec(
      {
        name: 'journal',
        data: { source: 'csv', from: '2019-01-01', to: '2019-06-30', files: [{ path: 'KO.csv', symbol: 'KO' }, { path: 'PEP.csv', symbol: 'PEP' }] },
        strategies: [
          { type: 'momentum', name: 'mom-ko', symbol: 'KO', lookback: 3, entryThreshold: 0.004, exitThreshold: 0, sizing: fillPrice },
          { type: 'sma-crossover', name: 'sma-pep', symbol: 'PEP', fastPeriod: 2, slowPeriod: 5, sizing: fillPrice },
        ],
        swarm: { topology, heartbeatMs: 100, agentTimeoutMs: 1_000, stepTimeoutMs: 500, checkpointEverySteps: 7 },
      },
      'journal spec, fill-price sizing',
      DAILY,
    );
    const cleanJournal = new MemoryJournal();
    const clean = await runToEnd(generation(spec, cleanJournal));
    expect(clean.outcome).toBe('complete');
    // The first step after 20 with an entry whose resize at the next open changed its count (the journal keeps
    // the count sized at the signal close): a crash once that step is stored, and before the next is, must not lose it.
    const resized = (step: ClosedStep): boolean =>
      step.orders.some((order) => cleanJournal.steps[step.index + 1]?.fills.some((fill) => fill.clientOrderId === order.clientOrderId && fill.quantity !== order.quantity));
    const signalled = cleanJournal.steps.find((step) => step.index > 20 && resized(step))?.index as number;
    expect(signalled).toBeGreaterThan(20);
    const journal = new MemoryJournal();
    await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === signalled + 1)), journal, () => signalled + 1);
    expect(journal.steps.at(-1)?.index).toBe(signalled);

    const resumed = await runToEnd(generation(spec, journal, journal.replay()));
    expect(resumed.outcome).toBe('complete');
    expect(books(resumed)).toEqual(books(clean));
  });
});

// Found by the chaos suite (issue 16): serve SIGKILLed and started again on a star; its agents came
// up one by one (each sandbox gets the bundle written), and a spoke up before the hub, waiting for its
// own replay, heard the hub only as 'starting' for longer than the agent timeout: it took the hub for
// lost, stopped trading for good, and the deployment stalled until its watchdog halted it.
it('a star resumed from its journal trades on when its hub comes up after its spokes, later than the agent timeout', async () => {
  const spec = await specOf('star');
  const clean = await runToEnd(generation(spec, undefined));
  const journal = new MemoryJournal();
  await runUntilCrash(generation(spec, mortal(journal, (step) => step.index === 31)), journal, () => 31);
  const resumed = await runToEnd(generation(spec, journal, journal.replay(), { launchDelayMs: (agentId) => (agentId === 'hub' ? 3_000 : 0) }));
  expect(resumed.halted).toBeNull();
  expect(resumed.outcome).toBe('complete');
  expect(books(resumed)).toEqual(books(clean));
});

/** A life of the control plane's clock: it moves the agents' clock with it while the life lasts. */
class LifeClock extends ManualClock {
  constructor(private readonly agents: ManualClock) {
    super(agents.now());
  }

  override advance(ms: number): number {
    this.agents.advance(ms);
    return super.advance(ms);
  }
}

/**
 * Agents that outlive their control plane (sandboxes on an external cloud, an external broker): one
 * broker, one launcher and one clock for the agents across lives of the control plane; each life has
 * its own clock, which stops when it dies, so that nothing of a dead life acts again.
 */
function outlivingAgents(spec: SwarmSpec) {
  const agentClock = new ManualClock(Date.UTC(2026, 0, 1));
  const broker = createMemoryBroker({ logger: silentLogger });
  brokers.push(broker);
  const launcher = new InProcessLauncher({ broker, clock: agentClock, logger: silentLogger, handOver: true });
  const life = (journal: DeploymentJournal, replay?: JournalReplay) => {
    const clock = new LifeClock(agentClock);
    const bus = createMemoryBus({ broker, clientId: `control-plane-${brokers.length}-${agentClock.now()}`, clock, registry: swarmRegistry, logger: silentLogger });
    const position = replay?.snapshot.position;
    const options = {
      spec,
      swarmId: SWARM,
      bus,
      launcher,
      pacer: pace(openArrayFeed(spec.backtest.bars, position === undefined ? {} : { from: position }), { clock, pacing: spec.swarm.pacing }),
      clock,
      stopwatch: () => clock.now(),
      logger: silentLogger,
      journal,
    };
    const deployment = replay === undefined ? new Deployment(options) : Deployment.resumeFrom(replay, options);
    const generation: Generation = { deployment, broker, clock };
    return { generation, bus };
  };
  return { launcher, life };
}

describe.each(['mesh', 'star', 'hierarchical', 'ring'])('a %s deployment whose agents outlive its control plane', (topology) => {
  it('is resumed by adopting its running agents, rewound to their checkpoints: no new process, and the trades of a run that never stopped', async () => {
    const spec = await specOf(topology);
    const clean = await runToEnd(generation(spec, undefined));
    const journal = new MemoryJournal();
    const { launcher, life } = outlivingAgents(spec);

    // Life 1 dies in the middle of the first step from 31 on that placed orders: decided and traded at
    // its venue, never stored. Its agents have gone past their last checkpoints (every 7 steps) and run on.
    let ordersOf = -1;
    const first = life(mortal(journal, (step) => ordersOf >= 0 && step.index >= ordersOf));
    const observer = createMemoryBus({ broker: first.generation.broker, clientId: 'observer', clock: new ManualClock(0), registry: swarmRegistry, logger: silentLogger });
    await observer.subscribe(swarmTopics(SWARM).allOrders(), (envelope) => {
      if (ordersOf < 0 && OrdersMessage.is(envelope) && envelope.payload.index >= 31 && envelope.payload.approved.length > 0) ordersOf = envelope.payload.index;
    });
    await settle(first.generation, first.generation.deployment.start());
    await settle(first.generation, first.generation.deployment.run(), () => ordersOf >= 0 && journal.steps.length === ordersOf);
    await observer.close();
    await launcher.release();
    await first.bus.crash();
    const launched = launcher.launches;

    const second = life(journal, journal.replay());
    const resumed = await runToEnd(second.generation);
    expect(resumed.outcome).toBe('complete');
    expect(books(resumed)).toEqual(books(clean));
    const events = resumed.events.filter((event) => event.kind === 'resumed');
    expect(events).toHaveLength(resumed.agents.length);
    // A ring's entry only forwards steps and keeps no checkpoint: nothing could rewind it, so it is deployed again.
    const entry = topology === 'ring' ? second.generation.deployment.plan.entry : undefined;
    expect(launcher.launches).toBe(launched + (entry === undefined ? 0 : 1));
    for (const event of events) {
      expect(event.detail).toMatch(
        event.agent === entry
          ? /^deployed again from the first step \(no checkpoint\) \(not adopted: it has no checkpoint to rewind it to\), replayed \d+ steps$/
          : /^adopted its running process \(in-process-.+, epoch 0\), rewound to its checkpoint after step \d+, replayed [0-7] steps$/,
      );
    }
    const orderIds = journal.steps.flatMap((step) => step.orders.map((order) => order.clientOrderId));
    expect(new Set(orderIds).size).toBe(orderIds.length);
    expect(journal.steps.map((step) => step.index)).toEqual(Array.from({ length: 90 }, (_, i) => i));
  });
});

describe('a journal that cannot be written', () => {
  it('holds trading at the step until the write succeeds, and loses nothing', async () => {
    const spec = await specOf('mesh');
    const clean = await runToEnd(generation(spec, undefined));
    const journal = new MemoryJournal();
    let failures = 0;
    const flaky: DeploymentJournal = {
      stepClosed: (step) => {
        if (step.index === 40 && failures < 4) {
          failures += 1;
          return Promise.reject(new Error('connection refused'));
        }
        return journal.stepClosed(step);
      },
    };
    const report = await runToEnd(generation(spec, flaky));
    expect(failures).toBe(4);
    expect(books(report)).toEqual(books(clean));
    const warnings = report.events.filter((event) => event.kind === 'journal').map((event) => event.detail);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('step 40 could not be stored (connection refused)');
    expect(journal.steps.map((step) => step.index)).toEqual(Array.from({ length: 90 }, (_, i) => i));
  });
});

describe('a deployment that emits an event at every step', () => {
  it('writes with each step a snapshot of the latest events and how many there were, and restores both', async () => {
    const steps = EVENTS_KEPT + 50;
    const spec = await specOf('mesh', false, steps);
    const journal = new MemoryJournal();
    const refused = new Set<number>();
    // The first write of every step fails: one `journal` event per step.
    const flaky: DeploymentJournal = {
      stepClosed: (step) => {
        if (refused.has(step.index)) return journal.stepClosed(step);
        refused.add(step.index);
        return Promise.reject(new Error('connection refused'));
      },
    };
    const g = generation(spec, flaky);
    const report = await runToEnd(g);
    expect(report.outcome).toBe('complete');
    expect(report.eventsTotal).toBe(steps);
    expect(report.events).toHaveLength(EVENTS_KEPT);
    expect(report.events.map((event) => event.atStep)).toEqual(Array.from({ length: EVENTS_KEPT }, (_, i) => steps - EVENTS_KEPT + i));

    // The last step's record was taken before its own write failed.
    const last = journal.steps[steps - 1]?.snapshot;
    expect(last?.eventsTotal).toBe(steps - 1);
    expect(last?.events).toHaveLength(EVENTS_KEPT);
    expect(last?.events[0]?.detail).toBe(`step ${steps - 1 - EVENTS_KEPT} could not be stored (connection refused); trading waits and the write is tried again`);
    const sizes = journal.steps.map((step) => JSON.stringify(step.snapshot).length);
    expect(sizes[steps - 1]).toBeLessThan((sizes[EVENTS_KEPT] as number) * 1.05);

    const options = { spec, swarmId: SWARM, bus: createMemoryBus({ broker: g.broker, clientId: 'reader', clock: g.clock, registry: swarmRegistry, logger: silentLogger }), launcher: new InProcessLauncher({ broker: g.broker, clock: g.clock, logger: silentLogger }), pacer: pace(openArrayFeed(spec.backtest.bars), { clock: g.clock, pacing: spec.swarm.pacing }), clock: g.clock, logger: silentLogger };
    const restored = Deployment.restore(last as ClosedStep['snapshot'], options).toJSON();
    expect({ events: restored.events, eventsTotal: restored.eventsTotal }).toEqual({ events: last?.events, eventsTotal: steps - 1 });
    // A snapshot stored before events were counted holds all of them.
    const { eventsTotal: _, ...before } = journal.steps[9]?.snapshot as ClosedStep['snapshot'];
    expect(Deployment.restore(before, options).toJSON().eventsTotal).toBe(9);

    // Absences are bounded the same way: a snapshot holding more (from before they were) is written back with the latest and their count.
    const absences = Array.from({ length: ABSENCES_KEPT + 200 }, (_, i) => ({ agent: 'a', label: 'agent a', fromStep: 2 * i, toStep: 2 * i, steps: 1, how: 'decided without its signals' }));
    const { absencesTotal: _uncounted, ...older } = before as ClosedStep['snapshot'];
    const absent = { ...older, absences };
    const rewritten = Deployment.restore(absent, options).toJSON();
    expect(rewritten.absences).toEqual(absences.slice(-ABSENCES_KEPT));
    expect(rewritten.absencesTotal).toBe(ABSENCES_KEPT + 200);
    expect(Deployment.restore(rewritten, options).toJSON()).toMatchObject({ absences: absences.slice(-ABSENCES_KEPT), absencesTotal: ABSENCES_KEPT + 200 });
  });
});
