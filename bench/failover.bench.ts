// Failover benchmark: per topology, a lockstep swarm with hot standbys (real sandboxes of the embedded
// local cloud, the embedded broker) whose victim agent is SIGKILLed mid-run, several times, each in a
// run of its own; measured on one clock (performance.now in this process) from the kill:
// - detection: → the control plane's `lost` event for the agent;
// - failover: → the `failed-over` event (the standby promoted, its replay done: it decides from there);
// - replacement: → the next `standby` ready event (a new standby for the next fault);
// - decisions lost: steps decided without the agent, and whether the run's trades, fills and final
//   equity equal the backtest of the same spec (they must: no decision is lost or doubled).
// Baselines in the same run: the heartbeat interval (the floor of a heartbeat-only detection), and the
// same kill without standbys (the restart rung: a new sandbox, the agent deployed again).
// The control plane (`control-plane` in --only): two `tradeswarm serve` on one PostgreSQL, the leader
// SIGKILLed mid-run, through the chaos suite's leader-kill (`tradeswarm chaos --faults leader-kill`, a
// lockstep mesh with standbys on the last daily bars of the quickstart): the follower leading, the
// deployment trading again, and orders lost or doubled; the lease's length is its floor. It needs this
// machine's PostgreSQL (127.0.0.1:5432) and ../shared/data; without them the row says so.
// `npm run bench:failover [-- --quick] [-- --only mesh,star,control-plane]`; results in
// bench/results/failover.json. Timing never fails it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runBacktest } from '../src/backtest/index.js';
import type { ChaosResult, FaultResult } from '../src/chaos/index.js';
import { silentLogger } from '../src/core/index.js';
import { DEFAULT_LEASE_TTL_MS } from '../src/health/index.js';
import { type RunningSwarm, type SwarmEvent, type SwarmReport, parseSwarmSpec, runSwarm } from '../src/swarm/index.js';
import { createDatabase, dropDatabase } from '../test/fixtures/serve-quickstart.js';
import { probeTcp } from '../test/fixtures/servers.js';
import { oftenTradingSpec } from '../test/fixtures/specs.js';
import { type BenchRow, report } from './lib/report.js';
import { summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
/** `--only a,b`: the topologies to run (all when absent). */
const only = ((): ReadonlySet<string> | undefined => {
  const index = process.argv.indexOf('--only');
  return index < 0 ? undefined : new Set((process.argv[index + 1] ?? '').split(',').filter((id) => id.length > 0));
})();

const HEARTBEAT_MS = 250;
const BARS = 300;
/** Kills per topology (one per run), at these steps. */
const KILL_STEPS = quick ? [40] : [40, 120, 200];
/** The targets. */
const DETECTION_TARGET_MS = 500;
const FAILOVER_TARGET_MS = 1000;
const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));
const DAILY = fileURLToPath(new URL('../../shared/data/daily/', import.meta.url));
/** The control plane's leader kills: how many, over how many daily bars. */
const LEADER_KILLS = quick ? 1 : 3;
const LEADER_BARS = quick ? 300 : 600;

/** `restarts: false`: without a standby the victim is not restarted (a star's hub halts the run), so there is no restart baseline. */
const TOPOLOGIES: ReadonlyArray<{ readonly topology: string; readonly victim: string; readonly restarts?: false; readonly extra?: Record<string, unknown> }> = [
  { topology: 'mesh', victim: '2-sma-b' },
  { topology: 'star', victim: 'hub', restarts: false },
  { topology: 'hierarchical', victim: 'coordinator-1', extra: { coordinators: 2 } },
  { topology: 'ring', victim: 'risk-assessor' },
];

/** The fault tests' spec of four strategies that trade often, with standbys or without. */
function rawSpec(topology: string, standby: boolean, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return oftenTradingSpec(`failover-${topology}`, BARS, { topology, heartbeatMs: HEARTBEAT_MS, standby, checkpointEverySteps: 10, ...extra });
}

interface KillRun {
  readonly detectionMs: number;
  readonly recoveryMs: number;
  readonly replacementMs: number | null;
  readonly absentSteps: number;
  readonly identical: boolean;
}

/** One run: the victim SIGKILLed once step `killStep` closed; times of its events from the kill. */
async function killRun(topology: string, victim: string, standby: boolean, killStep: number, extra?: Record<string, unknown>): Promise<KillRun> {
  const spec = await parseSwarmSpec(rawSpec(topology, standby, extra));
  const { report: backtest } = runBacktest(spec.backtest);
  let running: RunningSwarm | undefined;
  let killedAt = Number.NaN;
  const seen: Array<{ readonly event: SwarmEvent; readonly atMs: number }> = [];
  const swarm: SwarmReport = await runSwarm({
    spec,
    logger: silentLogger,
    onReady: (run) => {
      running = run;
    },
    onProgress: ({ step }) => {
      if (step !== killStep || running === undefined) return;
      killedAt = performance.now();
      void running.kill(victim, 'SIGKILL');
    },
    onEvent: (event) => seen.push({ event, atMs: performance.now() }),
  });
  const after = (kind: SwarmEvent['kind']): number | undefined => seen.find(({ event, atMs }) => event.agent === victim && event.kind === kind && atMs >= killedAt)?.atMs;
  const lost = after('lost');
  const back = after(standby ? 'failed-over' : 'restarted');
  if (lost === undefined || back === undefined) throw new Error(`${topology}: ${victim} was not ${standby ? 'failed over' : 'restarted'}: ${JSON.stringify(seen.map(({ event }) => event))}`);
  const replaced = standby ? seen.find(({ event, atMs }) => event.agent === victim && event.kind === 'standby' && event.detail.startsWith('standby ready') && atMs > back)?.atMs : undefined;
  const same = (a: SwarmReport | typeof backtest, b: SwarmReport | typeof backtest): boolean => JSON.stringify([a.trades, a.fills, a.finalEquity]) === JSON.stringify([b.trades, b.fills, b.finalEquity]);
  return {
    detectionMs: lost - killedAt,
    recoveryMs: back - killedAt,
    replacementMs: replaced === undefined ? null : replaced - killedAt,
    absentSteps: swarm.absences.reduce((sum, absence) => sum + absence.steps, 0),
    identical: swarm.outcome === 'complete' && same(swarm, backtest),
  };
}

const rows: BenchRow[] = [{ name: 'heartbeat interval (floor of a heartbeat-only detection)', value: { amount: HEARTBEAT_MS, unit: 'ms' } }];
const details: Record<string, unknown> = {};
for (const { topology, victim, restarts, extra } of TOPOLOGIES) {
  if (only !== undefined && !only.has(topology)) continue;
  const standby: KillRun[] = [];
  const restart: KillRun[] = [];
  for (const step of KILL_STEPS) {
    standby.push(await killRun(topology, victim, true, step, extra));
    if (restarts !== false) restart.push(await killRun(topology, victim, false, step, extra));
  }
  details[topology] = { victim, standby, restart };
  const failover = summarize(standby.map((run) => run.recoveryMs));
  const restarted = restart.length === 0 ? undefined : summarize(restart.map((run) => run.recoveryMs));
  const detection = summarize(standby.map((run) => run.detectionMs));
  rows.push(
    { name: `${topology}: detection (${victim} SIGKILLed → lost)`, summary: detection, target: { text: `< ${DETECTION_TARGET_MS} ms`, met: detection.p99 < DETECTION_TARGET_MS } },
    {
      name: `${topology}: failover (→ standby promoted and replayed)`,
      summary: failover,
      ...(restarted === undefined ? {} : { ratio: { to: 'restart', value: failover.p50 / restarted.p50 } }),
      target: { text: `< ${FAILOVER_TARGET_MS} ms`, met: failover.p99 < FAILOVER_TARGET_MS },
    },
    restarted === undefined
      ? { name: `${topology}: restart, no standby: not restarted, the run halts`, value: { amount: 0, unit: 'restarts' } }
      : { name: `${topology}: restart, no standby (→ restarted and replayed)`, summary: restarted },
    { name: `${topology}: replacement (→ a new standby ready)`, summary: summarize(standby.flatMap((run) => (run.replacementMs === null ? [] : [run.replacementMs]))) },
    {
      name: `${topology}: decisions lost (steps without it; runs equal to the backtest)`,
      value: { amount: standby.reduce((sum, run) => sum + run.absentSteps, 0), unit: `steps; ${standby.filter((run) => run.identical).length}/${standby.length} identical` },
      target: { text: '0 lost, all identical', met: standby.every((run) => run.absentSteps === 0 && run.identical) },
    },
  );
}
if (only === undefined || only.has('control-plane')) {
  const measured = await controlPlaneFailover();
  details.controlPlane = measured;
  rows.push(...controlPlaneRows(measured));
}
report(only === undefined ? 'failover' : `failover-${[...only].join('-')}`, rows, { quick, bars: BARS, killSteps: KILL_STEPS, ...details });

type ControlPlaneRun = { readonly skipped: string } | { readonly result: ChaosResult; readonly seconds: number };

/** Two serves on a new PostgreSQL database, the leader SIGKILLed `LEADER_KILLS` times, by `tradeswarm chaos`. */
async function controlPlaneFailover(): Promise<ControlPlaneRun> {
  if (!['KO', 'PEP', 'SPY', 'MSFT', 'JPM'].every((symbol) => existsSync(join(DAILY, `${symbol}.csv`)))) return { skipped: `${DAILY} lacks the quickstart's data` };
  const postgres = await probeTcp('PostgreSQL at 127.0.0.1:5432', '127.0.0.1', 5432);
  if (!postgres.available) return { skipped: `no PostgreSQL at 127.0.0.1:5432 (${postgres.detail})` };
  const folder = await mkdtemp(join(tmpdir(), 'tradeswarm-bench-failover-'));
  const database = await createDatabase('bench_failover');
  const json = join(folder, 'result.json');
  const began = performance.now();
  try {
    const args = ['bin/tradeswarm.js', 'chaos', '--faults', 'leader-kill', '--standby', '--topology', 'mesh', '--seed', '16'];
    args.push('--bars', String(LEADER_BARS), '--per-kind', String(LEADER_KILLS), '--database-url', database.url, '--work-dir', join(folder, 'work'), '--json-out', json);
    // It exits 1 when something was lost or differs: the result file says what, and the row shows it.
    await promisify(execFile)(process.execPath, args, { cwd: REPOSITORY, maxBuffer: 64 * 1024 * 1024 }).catch((error: unknown) => {
      if (!existsSync(json)) throw error;
    });
    return { result: JSON.parse(await readFile(json, 'utf8')) as ChaosResult, seconds: (performance.now() - began) / 1000 };
  } finally {
    await dropDatabase(database.name);
    await rm(folder, { recursive: true, force: true });
  }
}

function controlPlaneRows(run: ControlPlaneRun): BenchRow[] {
  if ('skipped' in run) return [{ name: `control plane: not measured (${run.skipped})`, value: { amount: 0, unit: 'runs' } }];
  const mesh = run.result.topologies[0];
  const faults = mesh?.faults ?? [];
  const times = (pick: (fault: FaultResult) => number | null): number[] => faults.map(pick).filter((ms): ms is number => ms !== null);
  const comparison = mesh?.comparison;
  const lost = comparison === null || comparison === undefined ? Number.NaN : comparison.lost.length + comparison.duplicatedById.length + comparison.duplicatedByContent.length;
  return [
    { name: "control plane: the leader's lease (floor of a follower's takeover)", value: { amount: DEFAULT_LEASE_TTL_MS, unit: 'ms' } },
    { name: 'control plane: leader SIGKILLed → the follower leads', summary: summarize(times((fault) => fault.detectedMs)) },
    { name: 'control plane: leader SIGKILLed → the deployment trading again', summary: summarize(times((fault) => fault.recoveredMs)) },
    {
      name: `control plane: orders lost or doubled (${faults.length} kills, a mesh with standbys, ${run.seconds.toFixed(0)} s)`,
      value: { amount: lost, unit: `orders; ${comparison?.identical === true ? 'identical' : 'NOT identical'} to the fault-free run` },
      target: { text: '0, identical', met: lost === 0 && comparison?.identical === true && faults.length === LEADER_KILLS },
    },
  ];
}
