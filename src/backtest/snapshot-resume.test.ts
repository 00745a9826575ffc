// The quickstart's spec (examples/quickstart.yaml) on the real daily bars of ../shared/data/daily (see
// ../shared/data/SOURCES.md): a backtest that stops at a step, snapshots its strategies and decision
// pipeline, sends the snapshots through JSON and goes on with fresh ones restored from them (as an
// agent resumes from its checkpoint) gives the very decisions, summary and report, bit for bit, of
// the run that never stopped, whichever the step, and with a snapshot after every step.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exact, throughJson } from '../../test/fixtures/snapshots.js';
import { Rng } from '../core/index.js';
import { DecisionPipeline } from '../decision/index.js';
import { type Bar, Timeline } from '../market/index.js';
import { type RunOptions, type Spec, loadSpec, runOptionsFromSpec } from '../runspec/index.js';
import { type RestorableStrategy, buildStrategy, collectIntents, restoreStrategies, snapshotStrategies } from '../strategy/index.js';
import { TradingSession } from '../trading/index.js';
import { runBacktest } from './index.js';

const QUICKSTART = fileURLToPath(new URL('../../examples/quickstart.yaml', import.meta.url));
const BRACKETS = fileURLToPath(new URL('../../examples/backtest-brackets.yaml', import.meta.url));
const DAILY = new URL('../../../shared/data/daily/', import.meta.url);
const folder = fileURLToPath(DAILY);
const FILES = ['KO.csv', 'PEP.csv', 'SPY.csv', 'MSFT.csv', 'JPM.csv'];
const present = FILES.every((file) => existsSync(new URL(file, DAILY)));

/**
 * The backtest engine's loop (see engine.ts) over fresh strategies of `spec` and a fresh pipeline,
 * replaced at each of `splits` by fresh ones restored from their snapshots; every step's decision,
 * then the summary and the session's report.
 */
function run(spec: Spec, options: RunOptions, splits: ReadonlySet<number>, openBrackets: number[] = []): string[] {
  const timeline = new Timeline(options.bars);
  const session = new TradingSession({ swarm: options.swarm ?? 'backtest', symbols: timeline.symbols, venue: options.venue, portfolio: options.portfolio, endOfData: options.endOfData, periodsPerYear: options.periodsPerYear });
  const fresh = (): { strategies: RestorableStrategy[]; pipeline: DecisionPipeline } => {
    const strategies = spec.strategies.map(buildStrategy);
    const { allocator, risk, consensus } = options;
    return { strategies, pipeline: new DecisionPipeline({ strategies, allocator, risk, consensus }) };
  };
  let { strategies, pipeline } = fresh();
  const out: string[] = [];
  const step: Bar[] = [];
  for (let i = 0; timeline.next(step); i++) {
    if (session.venue.openOrders().some((order) => order.exitOf !== undefined)) openBrackets.push(i);
    if (splits.has(i)) {
      const saved = throughJson({ strategies: snapshotStrategies(strategies), pipeline: pipeline.snapshot() }) as { strategies: never; pipeline: never };
      ({ strategies, pipeline } = fresh());
      restoreStrategies(strategies, saved.strategies);
      pipeline.restore(saved.pipeline);
    }
    const account = session.open(step);
    const decision = pipeline.decide(step, collectIntents(strategies, step, account, i), account, i);
    session.reject(decision.rejected, i);
    session.submit(decision.approved, i, step);
    session.close(step);
    out.push(exact(decision));
  }
  out.push(exact(pipeline.summary()), exact(session.settle().report));
  return out;
}

describe(`snapshots on the quickstart's spec and real daily bars (${folder})`, () => {
  if (!present && process.env.CI === 'true') {
    it('needs the shared data under CI', () => {
      throw new Error(`${folder} lacks ${FILES.join(', ')}; CI must provide ../shared/data`);
    });
  }
  if (!present) console.warn(`skipping the quickstart snapshot tests: ${folder} lacks ${FILES.join(', ')}`);

  it.skipIf(!present)('a run resumed from snapshots at any step decides and trades exactly as the run that never stopped', async () => {
    const spec = await loadSpec(QUICKSTART);
    const options = await runOptionsFromSpec(spec, dirname(QUICKSTART));
    const straight = run(spec, options, new Set());
    // The loop is the engine's: the same summary and report as runBacktest gives.
    const { report } = runBacktest(options);
    const { bars: _bars, timeSteps, riskState, allocation, consensus, warnings: _warnings, elapsedMs: _elapsedMs, ...session } = report;
    expect(straight.slice(-2)).toEqual([exact({ riskState, allocation, consensus }), exact(session)]);
    expect(straight.length - 2).toBe(timeSteps);
    expect(report.trades.length).toBeGreaterThan(10);

    const rng = Rng.seeded(14);
    for (const k of [0, 1, 199, 200, timeSteps - 1, rng.int(0, timeSteps - 1), rng.int(0, timeSteps - 1), rng.int(0, timeSteps - 1)]) {
      expect(run(spec, options, new Set([k]))).toEqual(straight);
    }
    expect(run(spec, options, new Set(Array.from({ length: timeSteps }, (_, i) => i)))).toEqual(straight);
  });

  it.skipIf(!present)('a run with ATR brackets resumed while a bracket is open trades exactly as the run that never stopped', async () => {
    const spec = await loadSpec(BRACKETS);
    const options = await runOptionsFromSpec(spec, dirname(BRACKETS));
    const open: number[] = [];
    const straight = run(spec, options, new Set(), open);
    const { report } = runBacktest(options);
    expect(report.fills.filter((fill) => /:(stop-loss|take-profit|trailing-stop)$/.test(fill.clientOrderId)).length).toBeGreaterThan(10);
    expect(open.length).toBeGreaterThan(100);
    const rng = Rng.seeded(18);
    const splits = [open[0] as number, ...Array.from({ length: 6 }, () => open[rng.int(0, open.length - 1)] as number)];
    for (const k of splits) expect(run(spec, options, new Set([k]))).toEqual(straight);
    expect(run(spec, options, new Set(open))).toEqual(straight);
  });
});
