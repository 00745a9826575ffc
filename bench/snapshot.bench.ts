// Snapshot benchmark: what an agent's checkpoint of the quickstart costs (its five strategies and its
// decision pipeline, examples/quickstart.yaml on the real daily bars), next to one step of decision
// (collectIntents + DecisionPipeline.decide: the baseline, measured in the same run, at the same steps):
// - snapshot: snapshotStrategies + pipeline.snapshot() + JSON.stringify, after every step;
// - restore: JSON.parse + fresh strategies and pipeline built from the spec + restoreStrategies and
//   pipeline.restore, at every step (what a restarted agent does once);
// - the size of the JSON text, and what it replaces: a replay of every step so far (time, and the
//   steps' own JSON size), which is how a restarted agent rebuilds its state without one.
// Each step's timings are taken one at a time (performance.now around each), rounds after one
// untimed warm-up run. `npm run bench:snapshot [-- --quick]`; results in bench/results/snapshot.json.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AccountSnapshot, DecisionPipeline } from '../src/decision/index.js';
import { type Bar, Timeline } from '../src/market/index.js';
import { type RunOptions, type Spec, loadSpec, runOptionsFromSpec } from '../src/runspec/index.js';
import { type RestorableStrategy, buildStrategy, collectIntents, restoreStrategies, snapshotStrategies } from '../src/strategy/index.js';
import { TradingSession } from '../src/trading/index.js';
import { type BenchRow, report } from './lib/report.js';
import { percentile } from '../src/core/index.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 1 : 5;
const QUICKSTART = fileURLToPath(new URL('../examples/quickstart.yaml', import.meta.url));
/** The brief's bar: a checkpoint after every step must cost well under a millisecond. */
const TARGET_US = 1000;

/** What an agent computes with: the spec's strategies and a pipeline of its stages, fresh. */
interface Agent {
  readonly strategies: RestorableStrategy[];
  readonly pipeline: DecisionPipeline;
}

function freshAgent(spec: Spec, options: RunOptions): Agent {
  const strategies = spec.strategies.map(buildStrategy);
  const { allocator, risk, consensus } = options;
  return { strategies, pipeline: new DecisionPipeline({ strategies, allocator, risk, consensus }) };
}

/** One step as an agent receives it: its bars and the account the control plane publishes. */
interface Step {
  readonly index: number;
  readonly bars: readonly Bar[];
  readonly account: AccountSnapshot;
}

/** The quickstart's steps with their accounts, from a backtest loop over a venue and portfolio (as the control plane keeps them). */
function recordSteps(spec: Spec, options: RunOptions): Step[] {
  const timeline = new Timeline(options.bars);
  const session = new TradingSession({ swarm: 'bench', symbols: timeline.symbols, venue: options.venue, portfolio: options.portfolio, endOfData: options.endOfData, periodsPerYear: options.periodsPerYear });
  const { strategies, pipeline } = freshAgent(spec, options);
  const steps: Step[] = [];
  const bars: Bar[] = [];
  for (let index = 0; timeline.next(bars); index++) {
    const account = session.open(bars);
    steps.push({ index, bars: [...bars], account: { equity: account.equity, peakEquity: account.peakEquity, positions: new Map(account.positions) } });
    const decision = pipeline.decide(bars, collectIntents(strategies, bars, account, index), account, index);
    session.reject(decision.rejected, index);
    session.submit(decision.approved, index, bars);
    session.close(bars);
  }
  return steps;
}

function decideStep(agent: Agent, step: Step): void {
  agent.pipeline.decide(step.bars, collectIntents(agent.strategies, step.bars, step.account, step.index), step.account, step.index);
}

/** The text a checkpoint stores. */
function checkpoint(agent: Agent): string {
  return JSON.stringify({ strategies: snapshotStrategies(agent.strategies), pipeline: agent.pipeline.snapshot() });
}

function restored(spec: Spec, options: RunOptions, text: string): Agent {
  const saved = JSON.parse(text) as { strategies: never; pipeline: never };
  const agent = freshAgent(spec, options);
  restoreStrategies(agent.strategies, saved.strategies);
  agent.pipeline.restore(saved.pipeline);
  return agent;
}

interface Samples {
  decideUs: number[];
  snapshotUs: number[];
  restoreUs: number[];
  bytes: number[];
}

/** One run over every step: decide, then time a checkpoint and a restore from it, and go on with the restored agent. */
function measureRun(spec: Spec, options: RunOptions, steps: readonly Step[], samples: Samples): void {
  let agent = freshAgent(spec, options);
  for (const step of steps) {
    let started = performance.now();
    decideStep(agent, step);
    samples.decideUs.push((performance.now() - started) * 1000);
    started = performance.now();
    const text = checkpoint(agent);
    samples.snapshotUs.push((performance.now() - started) * 1000);
    samples.bytes.push(Buffer.byteLength(text));
    started = performance.now();
    agent = restored(spec, options, text);
    samples.restoreUs.push((performance.now() - started) * 1000);
  }
}

function microseconds(name: string, values: readonly number[], baseline?: number, target?: BenchRow['target']): BenchRow[] {
  const sorted = [...values].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  return [
    { name: `${name}, p50`, value: { amount: p50, unit: 'µs' }, ...(baseline === undefined ? {} : { ratio: { to: 'decision step p50', value: p50 / baseline } }) },
    { name: `${name}, p99`, value: { amount: percentile(sorted, 99), unit: 'µs' }, ...(target === undefined ? {} : { target }) },
  ];
}

async function main(): Promise<void> {
  const spec = await loadSpec(QUICKSTART);
  const missing = spec.data.source === 'csv' ? spec.data.files.map((file) => new URL(file.path, `file://${QUICKSTART}`)).filter((url) => !existsSync(url)) : [];
  if (missing.length > 0) throw new Error(`${missing.map((url) => fileURLToPath(url)).join(', ')} is missing; the benchmark needs ../shared/data`);
  const options = await runOptionsFromSpec(spec, dirname(QUICKSTART));
  const steps = recordSteps(spec, options);

  // Untimed warm-up run, then the rounds.
  measureRun(spec, options, steps, { decideUs: [], snapshotUs: [], restoreUs: [], bytes: [] });
  const samples: Samples = { decideUs: [], snapshotUs: [], restoreUs: [], bytes: [] };
  for (let round = 0; round < ROUNDS; round++) measureRun(spec, options, steps, samples);

  // What a restart at the last step costs without a snapshot: every step replayed into fresh objects.
  const replayMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now();
    const agent = freshAgent(spec, options);
    for (const step of steps) decideStep(agent, step);
    replayMs.push(performance.now() - started);
  }
  const stepsJsonBytes = Buffer.byteLength(JSON.stringify(steps.map(({ index, bars, account }) => ({ index, bars, account: { ...account, positions: [...account.positions] } }))));

  const decideP50 = percentile([...samples.decideUs].sort((a, b) => a - b), 50);
  const snapshotP99 = percentile([...samples.snapshotUs].sort((a, b) => a - b), 99);
  const restoreP50 = percentile([...samples.restoreUs].sort((a, b) => a - b), 50);
  const bestReplayMs = Math.min(...replayMs);
  const lastBytes = samples.bytes.at(-1) as number;
  const rows: BenchRow[] = [
    ...microseconds('one step of decision: collectIntents + pipeline.decide (baseline)', samples.decideUs),
    ...microseconds('snapshot: strategies + pipeline + JSON.stringify', samples.snapshotUs, decideP50, { text: `p99 < ${TARGET_US} µs a step`, met: snapshotP99 < TARGET_US }),
    ...microseconds('restore: JSON.parse + fresh strategies and pipeline + restore', samples.restoreUs, decideP50),
    { name: 'snapshot size, after the last step', value: { amount: lastBytes, unit: 'bytes' } },
    { name: 'snapshot size, largest over the run', value: { amount: Math.max(...samples.bytes), unit: 'bytes' } },
    { name: `replay of all ${steps.length} steps into fresh objects (restart without a snapshot), best`, value: { amount: bestReplayMs * 1000, unit: 'µs' }, ratio: { to: 'restore p50', value: (bestReplayMs * 1000) / restoreP50 } },
    { name: `the ${steps.length} steps' JSON (what a replay needs)`, value: { amount: stepsJsonBytes, unit: 'bytes' }, ratio: { to: 'last snapshot', value: stepsJsonBytes / lastBytes } },
  ];
  report('snapshot', rows, {
    spec: 'examples/quickstart.yaml',
    strategies: spec.strategies.length,
    steps: steps.length,
    rounds: ROUNDS,
    note: 'every step of each round: decide, snapshot (to JSON text), restore into fresh objects from that text, go on with them; µs per step',
    replayMs,
  });
}

await main();
