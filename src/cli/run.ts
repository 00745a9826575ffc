import type { Command } from 'commander';
import { InvalidInputError } from '../core/index.js';
import { type SandboxTarget, type SwarmReport, loadSwarmSpec, runSwarm } from '../swarm/index.js';
import { formatSwarmReport } from './swarm-report.js';

/** Options of `tradeswarm run`. */
interface RunOptions {
  json?: boolean;
  sandbox: string;
  broker?: string;
}

/** `tradeswarm run <spec.yaml>`: runs a swarm spec to completion and prints the report. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run a spec as a swarm: one agent per role in its own sandbox, coordinated over MQTT, trading on the paper venue')
    .argument('<spec>', 'swarm spec (YAML): a backtest spec with a swarm: section')
    .option('--json', 'print the report as JSON')
    .option('--sandbox <kind>', 'where agents run: local (an embedded local cloud) or e2b (needs E2B_API_KEY)', 'local')
    .option('--broker <url>', 'an external MQTT broker agents can reach (mqtt://host:port or ws://…); default: an embedded broker')
    .action(async (file: string, options: RunOptions) => {
      const report = await runSpec(file, options);
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatSwarmReport(report));
      if (report.halted !== null) process.exitCode = 2;
    });
}

/** Runs a spec file with a progress bar on stderr. */
export async function runSpec(file: string, options: RunOptions): Promise<SwarmReport> {
  const spec = await loadSwarmSpec(file);
  const sandbox = sandboxTarget(options.sandbox);
  if (sandbox.kind === 'e2b' && options.broker === undefined) {
    throw new InvalidInputError('--broker', 'is required with --sandbox e2b: agents in E2B cloud cannot reach the embedded broker on this machine; pass an MQTT broker URL they can reach (mqtts://… or wss://…)');
  }
  const progress = progressBar(`${spec.spec.name} (${spec.swarm.topology})`);
  try {
    return await runSwarm({
      spec,
      sandbox,
      ...(options.broker === undefined ? {} : { brokerUrl: options.broker }),
      onProgress: ({ step, steps }) => progress.update(step, steps),
      onEvent: (event) => progress.note(`step ${event.atStep}: ${event.agent} ${event.kind}: ${event.detail}`),
    });
  } finally {
    progress.done();
  }
}

function sandboxTarget(kind: string): SandboxTarget {
  if (kind === 'local') return { kind: 'local' };
  if (kind === 'e2b') {
    const apiKey = process.env.E2B_API_KEY;
    if (apiKey === undefined || apiKey === '') throw new InvalidInputError('E2B_API_KEY', 'must be set to run agents on E2B cloud (or use --sandbox local)');
    return { kind: 'e2b', connection: { apiKey } };
  }
  throw new InvalidInputError('--sandbox', `must be local or e2b, got ${JSON.stringify(kind)}`);
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
