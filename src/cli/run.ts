import { constants } from 'node:os';
import type { Command } from 'commander';
import { InvalidInputError, errorBody } from '../core/index.js';
import { describeGap } from '../market/index.js';
import type { EquityPoint } from '../portfolio/index.js';
import { checkReportPath, runReportPage, writeReportPage } from '../report/index.js';
import { readSpecDocument, runGaps } from '../runspec/index.js';
import { type SwarmReport, SwarmStoppedError, loadSwarmSpec, runSwarm, swarmSpecWarnings } from '../swarm/index.js';
import { parseSandboxFlag } from './sandbox.js';
import { formatSwarmReport } from './swarm-report.js';
import { commandDescription } from './commands.js';

/** Options of `tradeswarm run`. */
interface RunOptions {
  json?: boolean;
  sandbox: string;
  broker?: string;
  html?: string;
}

/**
 * The exit code of `tradeswarm run` for each outcome: 0 complete, 2 halted by a fault, 3 degraded
 * (every step decided, some without a lost agent), 128 + the signal's number when stopped by
 * SIGINT (130) or SIGTERM (143); 1 when the run could not start.
 */
export function exitCodeOf(report: Pick<SwarmReport, 'outcome'>, stoppedBy: NodeJS.Signals | undefined): number {
  switch (report.outcome) {
    case 'complete':
      return 0;
    case 'halted':
      return 2;
    case 'degraded':
      return 3;
    case 'stopped':
      return 128 + (stoppedBy === undefined ? 2 : constants.signals[stoppedBy]);
  }
}

/** `tradeswarm run <spec.yaml>`: runs a swarm spec to completion and prints the report. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(commandDescription('run'))
    .argument('<spec>', 'swarm spec (YAML): a backtest spec with a swarm: section')
    .option('--json', 'print the report as JSON')
    .option('--sandbox <kind>', 'where agents run: local (an embedded local cloud) or e2b (needs E2B_API_KEY)', 'local')
    .option('--broker <url>', 'an external MQTT broker agents can reach (mqtt://host:port or ws://…); default: an embedded broker')
    .option('--html <file>', 'also write the report as one self-contained HTML page: curves, prices with fills, statistics, agents, events, the spec')
    .addHelpText('after', '\nExit codes: 0 complete, 2 halted by a fault, 3 degraded (steps decided without a lost agent), 130/143 stopped by SIGINT/SIGTERM (the partial report is printed), 1 could not start.')
    .action(async (file: string, options: RunOptions) => {
      // Ctrl-C or SIGTERM stops the run cleanly (agents checkpoint, sandboxes are killed) and prints
      // the partial report; a second one exits at once (the sandboxes die with this process).
      const stop = new AbortController();
      let stoppedBy: NodeJS.Signals | undefined;
      const onSignal = (name: NodeJS.Signals): void => {
        if (stoppedBy !== undefined) process.exit(128 + constants.signals[name]);
        stoppedBy = name;
        process.stderr.write(`\n${name}: stopping the run (agents checkpoint, sandboxes are killed); send it again to exit at once\n`);
        stop.abort(name);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        if (options.html !== undefined) await checkReportPath(options.html);
        const report = await runSpec(file, options, stop.signal);
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatSwarmReport(report));
        process.exitCode = exitCodeOf(report, stoppedBy);
      } catch (error) {
        if (!(error instanceof SwarmStoppedError)) throw error;
        if (options.json === true) process.stdout.write(`${JSON.stringify(errorBody(error))}\n`);
        process.stderr.write(`tradeswarm: ${error.message}\n`);
        process.exitCode = 128 + constants.signals[stoppedBy ?? 'SIGINT'];
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

/** Runs a spec file with a progress bar on stderr. */
export async function runSpec(file: string, options: RunOptions, signal?: AbortSignal): Promise<SwarmReport> {
  const spec = await loadSwarmSpec(file);
  const sandbox = parseSandboxFlag(options.sandbox);
  if (sandbox.kind === 'e2b' && options.broker === undefined) {
    throw new InvalidInputError('--broker', 'is required with --sandbox e2b: agents in E2B cloud cannot reach the embedded broker on this machine; pass an MQTT broker URL they can reach (mqtts://… or wss://…)');
  }
  const progress = progressBar(`${spec.spec.name} (${spec.swarm.topology})`);
  for (const warning of swarmSpecWarnings(spec)) progress.note(`tradeswarm: warning: ${warning.message}`);
  for (const gap of runGaps(spec.backtest)?.found ?? []) progress.note(`tradeswarm: warning: gap: ${describeGap(gap)}; ${spec.backtest.gaps !== false && spec.backtest.gaps?.flatten === true ? 'positions are closed at the close of the bar before it' : 'positions are held across it (gaps.flatten: true closes them before it)'}`);
  let equityCurve: readonly EquityPoint[] = [];
  let report: SwarmReport;
  try {
    report = await runSwarm({
      spec,
      sandbox,
      ...(options.broker === undefined ? {} : { brokerUrl: options.broker }),
      ...(signal === undefined ? {} : { signal }),
      onProgress: ({ step, steps }) => progress.update(step, steps),
      onEvent: (event) => progress.note(`step ${event.atStep}: ${event.agent} ${event.kind}: ${event.detail}`),
      onEquityCurve: (curve) => {
        equityCurve = curve;
      },
    });
  } finally {
    progress.done();
  }
  if (options.html !== undefined) {
    const page = runReportPage({ kind: 'swarm run', source: file, report, equityCurve, bars: spec.backtest.bars, settings: await readSpecDocument(file), swarm: report });
    await writeReportPage(options.html, page);
  }
  return report;
}

/** A one-line progress bar on stderr (redrawn on a terminal, every 10 % otherwise). */
function progressBar(title: string): { update(step: number, steps: number): void; note(line: string): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  let drawn = false;
  const started = performance.now();
  const draw = (step: number, steps: number): string => {
    const width = 30;
    const filled = Math.round((step / steps) * width);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    return `${title} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${step}/${steps} steps ${seconds} s`;
  };
  return {
    update(step, steps) {
      if (tty) {
        process.stderr.write(`\r${draw(step, steps)}`);
        drawn = true;
        return;
      }
      const tenth = Math.floor((step / steps) * 10);
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        process.stderr.write(`${draw(step, steps)}\n`);
      }
    },
    note(line) {
      process.stderr.write(`${tty && drawn ? '\n' : ''}${line}\n`);
      drawn = false;
    },
    done() {
      if (tty && drawn) process.stderr.write('\n');
    },
  };
}
