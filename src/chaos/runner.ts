import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { type Clock, InvalidInputError, TradeswarmError, errorMessage, randomId } from '../core/index.js';
import type { FillAnswer, OrderAnswer } from '../client/index.js';
import { parseSwarmSpecText, planOf } from '../swarm/index.js';
import { TOPOLOGIES, type Topology } from '../topology/index.js';
import { type Comparison, type ComparedFill, type ComparedOrder, type ComparedPortfolio, type RunOutcome, compareRuns } from './compare.js';
import { type FaultContext, type FaultResult, injectFault, sleep } from './injectors.js';
import { type CloudSettings, Lab, startCloud } from './lab.js';
import type { TradeswarmCommand } from './processes.js';
import { type ChaosResult, type TopologyResult, topologyOk } from './result.js';
import { type FaultKind, planSchedule } from './schedule.js';

export { TOPOLOGIES, type Topology };

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  /** How to start `tradeswarm` commands (cloud serve, broker, serve). */
  readonly command: TradeswarmCommand;
  /** The spec to deploy, as a document (parsed YAML); its `swarm.topology` is set for each topology. */
  readonly spec: Readonly<Record<string, unknown>>;
  /** Where the spec's CSV paths are relative to. */
  readonly baseDir: string;
  /** The time steps the spec trades (the schedule spreads its faults over them). */
  readonly steps: number;
  /** What the spec gives without faults (the backtest: a lockstep swarm equals it). */
  readonly expected: RunOutcome;
  /** @default every topology */
  readonly topologies?: readonly Topology[];
  readonly seed: number;
  readonly kinds: readonly FaultKind[];
  /** @default 3 */
  readonly perKind?: number;
  /** Where data dirs and every process's output go. */
  readonly workDir: string;
  /** A PostgreSQL database every serve keeps its state in, instead of a data dir per topology. */
  readonly databaseUrl?: string;
  /**
   * The environment deployed to: its sandboxes must hold the topology's agents (and standbys), and
   * its failover mode decides whether lost agents are recovered by themselves (prod: automatic).
   * @default 'prod'
   */
  readonly env?: string;
  /** How long the deployment may take to recover from one fault before the run goes on without it. @default 120_000 */
  readonly recoveryTimeoutMs?: number;
  /** How long the deployment may take to trade its steps once the faults are over. @default 600_000 */
  readonly finishTimeoutMs?: number;
  /** How often the API is asked while waiting. @default 50 */
  readonly pollMs?: number;
  readonly clock: Clock;
  /** Told each step of the run, in a line. */
  readonly onProgress?: (line: string) => void;
}

/** Pause lengths are drawn between these multiples of the spec's agent timeout (longer than it: slow, not dead, yet noticed). */
const PAUSE_TIMEOUTS = { min: 1.5, max: 3 };
/** The broker stays down this long (ms). */
const BROKER_DOWN_MS = { min: 500, max: 3_000 };

/**
 * The chaos suite (issue 16): for each topology, deploys the spec under a real `tradeswarm serve`
 * (its broker and the cloud its agents run in, each a process of its own), injects a seeded schedule of
 * faults from outside as the deployment trades, one after the other (each waits for the deployment to
 * recover from the one before, or for `recoveryTimeoutMs`), lets it finish, and compares its orders,
 * fills and final portfolio with the fault-free run's. Every figure is measured by the run.
 * @throws InvalidInputError naming a topology it does not know.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const topologies = options.topologies ?? TOPOLOGIES;
  const unknown = topologies.find((topology) => !TOPOLOGIES.includes(topology));
  if (unknown !== undefined) throw new InvalidInputError('topologies', `${JSON.stringify(unknown)} is not a topology; use ${TOPOLOGIES.join(', ')}`);
  if (options.kinds.includes('leader-kill') && options.databaseUrl === undefined) {
    throw new InvalidInputError('kinds', 'leader-kill kills the leader of two serves sharing one PostgreSQL: give a databaseUrl (--database-url), or leave leader-kill out');
  }
  const perKind = options.perKind ?? 3;
  const logDir = join(options.workDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const cloud = await startCloud(options.command, logDir);
  const results: TopologyResult[] = [];
  try {
    for (const topology of topologies) results.push(await runTopology(options, topology, cloud.settings, perKind));
  } finally {
    await cloud.process.kill('SIGTERM');
  }
  const ok = results.every(topologyOk);
  return { seed: options.seed, steps: options.steps, kinds: options.kinds, perKind, topologies: results, ok };
}

async function runTopology(options: ChaosOptions, topology: Topology, cloud: CloudSettings, perKind: number): Promise<TopologyResult> {
  const { clock } = options;
  const say = (line: string): void => options.onProgress?.(`${topology}: ${line}`);
  const started = clock.now();
  const swarm = { ...((options.spec.swarm as Record<string, unknown> | undefined) ?? {}), topology, pacing: 'lockstep' };
  const specYaml = stringifyYaml({ ...options.spec, swarm });
  const parsed = await parseSwarmSpecText(specYaml, `the chaos spec (${topology})`, options.baseDir);
  const agents = planOf(parsed).agents.map((agent) => agent.id);
  const timeout = parsed.swarm.agentTimeoutMs;
  const schedule = planSchedule({
    seed: options.seed,
    steps: options.steps,
    kinds: options.kinds,
    perKind,
    agents,
    pauseMs: { min: Math.round(timeout * PAUSE_TIMEOUTS.min), max: Math.round(timeout * PAUSE_TIMEOUTS.max) },
    brokerDownMs: BROKER_DOWN_MS,
  });
  const workDir = join(options.workDir, topology);
  await mkdir(workDir, { recursive: true });
  const lab = new Lab({
    command: options.command,
    cloud,
    store: options.databaseUrl === undefined ? { dataDir: join(workDir, 'data') } : { databaseUrl: options.databaseUrl },
    logDir: join(options.workDir, 'logs', topology),
    clock,
    // A follower beside the leader, for the leader-kill faults to kill the leader of.
    serves: options.kinds.includes('leader-kill') ? 2 : 1,
  });
  await mkdir(join(options.workDir, 'logs', topology), { recursive: true });
  const faults: FaultResult[] = [];
  const skipped: Array<TopologyResult['skipped'][number]> = [];
  let deployment: TopologyResult['deployment'] = null;
  const result = (state: string, comparison: Comparison | null, error: string | null): TopologyResult => ({ topology, deployment, state, schedule, faults, skipped, comparison, error, durationMs: clock.now() - started });
  try {
    await lab.start();
    const name = `chaos-${topology}-${randomId(4).toLowerCase()}`;
    const view = await lab.client.deploy({ spec: specYaml, baseDir: options.baseDir, name, env: options.env ?? 'prod' });
    deployment = { id: view.id, name: view.name };
    say(`deployed ${view.name} (${agents.length} agents); ${schedule.length} faults scheduled`);
    const context: FaultContext = { lab, deployment, clock, recoveryTimeoutMs: options.recoveryTimeoutMs ?? 120_000, pollMs: options.pollMs ?? 50 };
    const rests: Array<Promise<string>> = [];
    for (const fault of schedule) {
      const reached = await waitForStep(context, fault.atStep, options.finishTimeoutMs ?? 600_000);
      if (!reached.ok) {
        say(`stopped injecting before fault ${fault.seq}: ${reached.why}`);
        break;
      }
      const cursor = await lastEventId(context);
      let injected: Awaited<ReturnType<typeof injectFault>>;
      try {
        injected = await injectFault(fault, context, cursor);
      } catch (error) {
        // What it aims at is not there (an agent between two sandboxes, say): the run goes on without it.
        skipped.push({ seq: fault.seq, kind: fault.kind, why: errorMessage(error) });
        say(`${fault.kind} not injected: ${errorMessage(error)}`);
        continue;
      }
      const { result: measured, rest } = injected;
      faults.push(measured);
      rests.push(rest);
      say(`${fault.kind}${fault.agent === null ? '' : ` of ${fault.agent}`} at step ${measured.injectedAtStep}: detected ${ms(measured.detectedMs)}, recovered ${ms(measured.recoveredMs)}; ${measured.note}`);
    }
    const state = await waitForEnd(context, options.finishTimeoutMs ?? 600_000);
    // What came after each fault (a paused sandbox resumed, or found gone) goes into its note.
    const after = await Promise.all(rests);
    faults.splice(0, faults.length, ...faults.map((fault, i) => ({ ...fault, note: `${fault.note}${after[i] ?? ''}` })));
    say(`ended ${state}`);
    const actual = await outcomeOf(lab, deployment.id);
    return result(state, compareRuns(options.expected, actual), null);
  } catch (error) {
    say(`failed: ${errorMessage(error)}`);
    return result('error', null, errorMessage(error));
  } finally {
    await lab.close();
  }
}

function ms(value: number | null): string {
  return value === null ? 'never' : `${Math.round(value)} ms`;
}

/** The id of the deployment's latest event (0 before any). */
async function lastEventId(context: FaultContext): Promise<number> {
  const events = await context.lab.eventsAfter(context.deployment.id, 0);
  return events.at(-1)?.id ?? 0;
}

async function waitForStep(context: FaultContext, step: number, timeoutMs: number): Promise<{ readonly ok: true } | { readonly ok: false; readonly why: string }> {
  const { lab, clock, deployment } = context;
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    const view = await lab.view(deployment.id);
    if (view !== undefined && view.steps >= step && view.state === 'running') return { ok: true };
    if (view !== undefined && !['pending', 'starting', 'running'].includes(view.state)) return { ok: false, why: `the deployment is ${view.state} at step ${view.steps}${view.error === null ? '' : `: ${view.error}`}` };
    if (clock.now() > deadline) return { ok: false, why: `step ${step} not reached within ${timeoutMs} ms (at ${view?.steps ?? '?'})` };
    await sleep(clock, context.pollMs);
  }
}

async function waitForEnd(context: FaultContext, timeoutMs: number): Promise<string> {
  const { lab, clock, deployment } = context;
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    const view = await lab.view(deployment.id);
    if (view !== undefined && !['pending', 'starting', 'running', 'draining'].includes(view.state)) return view.state;
    if (clock.now() > deadline) throw new TradeswarmError(`the deployment did not end within ${timeoutMs} ms after the last fault (state ${view?.state ?? 'unknown'}, step ${view?.steps ?? '?'})`);
    await sleep(clock, context.pollMs * 4);
  }
}

/** The most orders one request of the API answers. */
const ORDERS_LIMIT = 100_000;

/** What the deployment did, as its API tells: the stored orders and fills, the settlement and account of its report. */
async function outcomeOf(lab: Lab, ref: string): Promise<RunOutcome> {
  const orders: OrderAnswer[] = await lab.client.orders(ref, { limit: ORDERS_LIMIT });
  if (orders.length === ORDERS_LIMIT) throw new TradeswarmError(`the deployment has ${ORDERS_LIMIT} orders or more, more than the chaos suite reads; use fewer bars`);
  const fills: FillAnswer[] = await lab.client.fills(ref);
  const report = (await lab.client.status(ref)).report as { fills?: ComparedFill[]; finalCash?: number; finalEquity?: number; openPositions?: ComparedPortfolio['openPositions']; trades?: unknown[] } | null;
  const settlement = (report?.fills ?? []).filter((fill) => fill.clientOrderId.startsWith('end-of-data:'));
  const portfolio: ComparedPortfolio | null =
    report === null || report.finalEquity === undefined
      ? null
      : { finalCash: report.finalCash ?? Number.NaN, finalEquity: report.finalEquity, openPositions: report.openPositions ?? [], trades: report.trades?.length ?? 0 };
  return {
    orders: orders.map((order): ComparedOrder => ({ clientOrderId: order.clientOrderId, step: order.step, symbol: order.symbol, side: order.side, quantity: order.quantity, status: order.status })),
    fills: [...fills.map((fill): ComparedFill => ({ clientOrderId: fill.clientOrderId, symbol: fill.symbol, side: fill.side, quantity: fill.quantity, price: fill.price, fee: fill.fee, timeMs: fill.timeMs })), ...settlement],
    portfolio,
  };
}
