import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { runBacktest } from '../backtest/index.js';
import { type ComparedOrder, FAULT_KINDS, type RunOutcome, TOPOLOGIES, formatChaosReport, killChildren, runChaos, withFillStatus } from '../chaos/index.js';
import { InvalidInputError, SystemClock } from '../core/index.js';
import { type Bar, Timeline } from '../market/index.js';
import { parseSpecText, runOptionsFromSpec } from '../runspec/index.js';
import { commandDescription } from './commands.js';
import { wholeNumberFlag } from './flags.js';

/** Options of `tradeswarm chaos`. */
interface ChaosCommandOptions {
  seed: number;
  bars?: number;
  faults?: string;
  perKind: number;
  topology: string;
  databaseUrl?: string;
  jsonOut?: string;
  workDir?: string;
  recoveryTimeoutMs: number;
  maxRestarts?: number;
  env: string;
  standby?: boolean;
}

/** The steps a run trades when `--bars` is not given: the issue's minimum (fewer when the spec's data has fewer). */
const DEFAULT_BARS = 2_000;

/** The package root, where `bin/tradeswarm.js` and `examples/` are: two folders up from `src/cli/` or `dist/cli/` (scripts/build.ts). */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * How the suite starts `tradeswarm serve` and the other processes: as this process runs, so they run the
 * same code. Built (`dist/cli/chaos.js`), the package's bin; from the TypeScript sources (`npm run dev`),
 * the sources through tsx.
 */
const SELF: readonly string[] = import.meta.url.endsWith('.ts')
  ? [process.execPath, '--import', 'tsx', fileURLToPath(new URL('./main.ts', import.meta.url))]
  : [process.execPath, join(ROOT, 'bin', 'tradeswarm.js')];

/**
 * `tradeswarm chaos [spec]`: the chaos suite (issue 16). Runs the spec (default the quickstart) as a
 * lockstep deployment under a real `tradeswarm serve`, for each topology, with a seeded schedule of
 * faults injected from outside; compares it with `tradeswarm backtest` of the same spec (which a
 * swarm equals when nothing fails), prints a table and writes the JSON. Exits 1 when an order was
 * lost or doubled, or anything differs.
 */
export function registerChaosCommand(program: Command): void {
  program
    .command('chaos')
    .description(commandDescription('chaos'))
    .argument('[spec]', 'the spec to deploy (its swarm.topology is set for each topology)', join(ROOT, 'examples', 'quickstart.yaml'))
    .option('--seed <n>', 'seeds the schedule of faults', (value) => wholeNumberFlag('--seed', value), 16)
    .option('--bars <n>', `trade the last n time steps (bars of each symbol) of the spec's data (default: the last ${DEFAULT_BARS.toLocaleString('en-US')}, or all of them when the data has fewer)`, (value) => wholeNumberFlag('--bars', value))
    .option('--faults <kinds>', `comma-separated fault kinds: ${FAULT_KINDS.join(', ')} (default: all; leader-kill only with --database-url)`)
    .option('--per-kind <n>', 'faults of each kind', (value) => wholeNumberFlag('--per-kind', value), 3)
    .option('--topology <names>', `comma-separated topologies (${TOPOLOGIES.join(', ')}) or all`, 'all')
    .option('--database-url <url>', 'keep serve\'s state in this PostgreSQL database (default: a data dir per topology)')
    .option('--json-out <file>', 'where the JSON result goes (default: .tradeswarm/chaos/chaos-<seed>-<time>.json)')
    .option('--work-dir <dir>', 'where data dirs and every process\'s output go (default: a new temporary folder)')
    .option(
      '--max-restarts <n>',
      "the deployed spec's swarm.maxRestarts (default: the spec's, raised to the number of faults + 3: the run's faults come within minutes, more restarts than 3 within swarm.restartWindowMs allow)",
      (value) => wholeNumberFlag('--max-restarts', value),
    )
    .option('--env <name>', 'the environment deployed to (prod recovers lost agents by itself; staging waits for an operator, dev gives up)', 'prod')
    .option('--standby', 'deploy with a hot standby per agent (swarm.standby: true), which takes over when its agent is lost (default in prod, the one environment that fails over by itself)')
    .option('--no-standby', 'deploy without hot standbys: a lost agent is restarted instead, and a star halts when its hub is lost (default in dev and staging)')
    .option('--recovery-timeout-ms <ms>', 'how long one fault may take to recover from before the run goes on', (value) => wholeNumberFlag('--recovery-timeout-ms', value), 120_000)
    .action(async (specFile: string, options: ChaosCommandOptions) => {
      // leader-kill needs two serves on one PostgreSQL: by default it is injected when there is one.
      const kinds = options.faults === undefined ? FAULT_KINDS.filter((kind) => kind !== 'leader-kill' || options.databaseUrl !== undefined) : listOption('--faults', options.faults, FAULT_KINDS);
      const topologies = options.topology === 'all' ? TOPOLOGIES : listOption('--topology', options.topology, TOPOLOGIES);
      const baseDir = dirname(resolve(specFile));
      const spec = await chaosSpec(await readFile(specFile, 'utf8'), specFile, baseDir, options.bars);
      const swarm = spec.swarm as Record<string, unknown>;
      const written = typeof swarm.maxRestarts === 'number' ? swarm.maxRestarts : 3;
      swarm.maxRestarts = options.maxRestarts ?? Math.max(written, kinds.length * options.perKind + 3);
      // Standbys by default in prod: the suite shows the system as prod runs it, where a star's hub fails over instead of
      // halting the run; dev and staging do not fail over by themselves, so a standby cannot be deployed there.
      const standby = options.standby ?? options.env === 'prod';
      if (standby) swarm.standby = true;
      const { expected, steps } = await faultFree(spec, specFile, baseDir);
      // Interrupted, it ends what it started (serve, the broker, the cloud and with it every sandbox).
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          killChildren();
          process.exit(signal === 'SIGINT' ? 130 : 143);
        });
      }
      const workDir = options.workDir === undefined ? await mkdtemp(join(tmpdir(), 'tradeswarm-chaos-')) : resolve(options.workDir);
      process.stderr.write(`chaos: ${steps} steps, faults ${kinds.join(', ')} x${options.perKind}, topologies ${topologies.join(', ')}, seed ${options.seed}, env ${options.env}${standby ? ' with standbys' : ' without standbys'}; swarm.maxRestarts ${String(swarm.maxRestarts)} (the spec's: ${written}); processes' output in ${workDir}/logs\n`);
      const result = await runChaos({
        command: { argv: [...SELF], cwd: ROOT },
        spec,
        baseDir,
        steps,
        expected,
        topologies,
        seed: options.seed,
        kinds,
        perKind: options.perKind,
        workDir,
        recoveryTimeoutMs: options.recoveryTimeoutMs,
        env: options.env,
        ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
        clock: new SystemClock(),
        onProgress: (line) => process.stderr.write(`chaos: ${line}\n`),
      });
      const jsonOut = resolve(options.jsonOut ?? join('.tradeswarm', 'chaos', `chaos-${options.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`));
      await mkdir(dirname(jsonOut), { recursive: true });
      await writeFile(jsonOut, `${JSON.stringify({ spec: resolve(specFile), env: options.env, standby, maxRestarts: swarm.maxRestarts, ...result }, null, 2)}\n`);
      process.stdout.write(`${formatChaosReport(result)}JSON: ${jsonOut}\n`);
      process.exitCode = result.ok ? 0 : 1;
    });
}

/** The names of a comma-separated option, each one of `allowed`. */
function listOption<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const wrong = names.find((name) => !(allowed as readonly string[]).includes(name));
  if (wrong !== undefined || names.length === 0) throw new InvalidInputError(flag, `${wrong === undefined ? 'names nothing' : `${JSON.stringify(wrong)} is not one`}; use a comma-separated list of ${allowed.join(', ')}`);
  return names as T[];
}

/**
 * The spec document the chaos suite deploys: the file's, in lockstep, trading the last `bars` time
 * steps of its CSV files (`data.from` moved, `data.to` dropped), or `bars` synthetic bars. Without
 * `--bars`, the last {@link DEFAULT_BARS}, or the whole data when it has fewer.
 * @throws InvalidInputError naming `--bars` when the data has fewer steps than asked for.
 */
export async function chaosSpec(text: string, source: string, baseDir: string, asked: number | undefined): Promise<Record<string, unknown>> {
  const bars = asked ?? DEFAULT_BARS;
  const atMost = asked === undefined;
  const document = parseYaml(text) as Record<string, unknown>;
  const data = { ...(document.data as Record<string, unknown>) };
  if (data.source === 'synthetic') {
    const written = typeof data.barCount === 'number' ? data.barCount : bars;
    data.barCount = atMost ? Math.min(bars, written) : bars;
  } else {
    delete data.from;
    delete data.to;
    const options = await runOptionsFromSpec(parseSpecText(stringifyYaml({ ...document, data }), source), baseDir);
    const times = timesOf(options.bars);
    const first = times[Math.max(0, times.length - bars)];
    if (first === undefined || (!atMost && times.length < bars)) throw new InvalidInputError('--bars', `the data of ${source} has ${times.length} time steps, fewer than ${bars}; ask for fewer`);
    data.from = new Date(first).toISOString().slice(0, 10);
  }
  return { ...document, data, swarm: { ...((document.swarm) ?? {}), pacing: 'lockstep' } };
}

/** The distinct bar times of a run's data, ascending. */
function timesOf(bars: ConstructorParameters<typeof Timeline>[0]): number[] {
  const timeline = new Timeline(bars);
  const times: number[] = [];
  const step: Bar[] = [];
  while (timeline.next(step)) times.push((step[0] as Bar).timeMs);
  return times;
}

/** What the spec gives without faults: `tradeswarm backtest` of it, in-process, with every order it placed. */
async function faultFree(spec: Record<string, unknown>, source: string, baseDir: string): Promise<{ readonly expected: RunOutcome; readonly steps: number }> {
  const options = await runOptionsFromSpec(parseSpecText(stringifyYaml(spec), source), baseDir);
  const orders: ComparedOrder[] = [];
  const { report } = runBacktest(
    options,
    {
      onOrders: (submitted, step) =>
        orders.push(...submitted.map((order) => ({ clientOrderId: order.clientOrderId, step, symbol: order.intent.symbol, side: order.intent.side, quantity: order.intent.quantity, status: order.result.status }))),
    },
  );
  return {
    expected: {
      orders: withFillStatus(orders, report.fills),
      fills: report.fills,
      portfolio: { finalCash: report.finalCash, finalEquity: report.finalEquity, openPositions: report.openPositions, trades: report.trades.length },
    },
    steps: report.timeSteps,
  };
}
