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
// `npm run bench:failover [-- --quick] [-- --only mesh,star]`; results in bench/results/failover.json.
// Timing never fails it.
import { runBacktest } from '../src/backtest/index.js';
import { silentLogger } from '../src/core/index.js';
import { type RunningSwarm, type SwarmEvent, type SwarmReport, parseSwarmSpec, runSwarm } from '../src/swarm/index.js';
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
report(only === undefined ? 'failover' : `failover-${[...only].join('-')}`, rows, { quick, bars: BARS, killSteps: KILL_STEPS, ...details });
