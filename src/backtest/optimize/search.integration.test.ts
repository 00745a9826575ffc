// A small search on real daily bars (../shared/data/daily/AAPL.csv, see ../shared/data/SOURCES.md), on
// worker threads: the ranking does not depend on the worker count, and the best combination's figures
// are those of a separate backtest of it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadSpecBars, parseSpec, runOptionsFromSpec } from '../../runspec/index.js';
import { runBacktest } from '../engine.js';
import { compileConstraint } from './constraint.js';
import { parseParameter, withCombination } from './grid.js';
import { SearchRunError, WorkerPool } from './pool.js';
import type { SearchResult } from '../../search/index.js';
import { type SearchOptions, runSearch } from './search.js';

const AAPL = fileURLToPath(new URL('../../../../shared/data/daily/AAPL.csv', import.meta.url));
const present = existsSync(AAPL);

const document = {
  name: 'search-test',
  data: { source: 'csv', from: '2012-01-01', to: '2016-12-31', files: [{ path: AAPL, symbol: 'AAPL' }] },
  strategies: [{ type: 'sma-crossover', symbol: 'AAPL', fastPeriod: 10, slowPeriod: 40, sizing: { type: 'fraction-of-equity', fraction: 0.95, wholeUnits: true } }],
  venue: { fillAt: 'next-open', slippage: { model: 'bps', bps: 1 }, fees: { model: 'per-share', amountPerShare: 0.005, minimumPerOrder: 1 } },
  portfolio: { initialCash: 100_000, longOnly: true },
};
const parameters = [parseParameter('fastPeriod=10..30:10', 1), parseParameter('slowPeriod=40..80:20', 1)];

describe(`a parameter search on AAPL daily bars (${AAPL})`, () => {
  if (!present && process.env.CI === 'true') {
    it('needs the shared data under CI', () => {
      throw new Error(`${AAPL} is missing; CI must provide ../shared/data`);
    });
  }
  if (!present) console.warn(`skipping the parameter search tests: ${AAPL} is missing`);

  const search = async (options: Partial<SearchOptions>): Promise<SearchResult> => {
    const bars = await loadSpecBars(parseSpec(document), '.');
    return runSearch({ document, source: 'search-test.yaml', bars, parameters, metric: 'sharpe', direction: 'maximize', ...options });
  };

  it.skipIf(!present)('gives the same rows and folds with 1 and 3 worker threads, and its best is what a backtest of it reports', async () => {
    const walkForward = { folds: 2, mode: 'rolling' } as const;
    const one = await search({ workers: 1, walkForward });
    const three = await search({ workers: 3, walkForward });
    expect(three.rows).toEqual(one.rows);
    expect(three.walkForward).toEqual(one.walkForward);
    expect(one).toMatchObject({ gridSize: 9, combinations: 9, runs: 9 * 3 + 2, runsDone: 29, stopped: false });
    expect(one.rows.map((row) => row.rank).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);

    const best = one.rows.find((row) => row.rank === 1);
    const values = [best?.parameters.fastPeriod as number, best?.parameters.slowPeriod as number];
    const { report } = runBacktest(await runOptionsFromSpec(parseSpec(withCombination(document, parameters, values)), '.'));
    expect(best?.statistics).toEqual({
      totalReturn: report.totalReturn,
      sharpe: report.sharpe,
      sortino: report.sortino,
      maxDrawdown: report.maxDrawdown,
      winRate: report.winRate,
      exposure: report.exposure,
      finalEquity: report.finalEquity,
      trades: report.trades.length,
    });
    // Every other row ranks at or below it by Sharpe.
    for (const row of one.rows) expect(row.statistics?.sharpe ?? -Infinity).toBeLessThanOrEqual(report.sharpe ?? -Infinity);

    // 1,258 time steps in 3 parts (0, 419, 838): fold 2 searches [419, 838) and tests [838, 1258), after
    // a warm-up of slowPeriod steps (a crossover's first decision is on bar slowPeriod + 1).
    const folds = one.walkForward?.folds ?? [];
    expect(one.timeSteps).toBe(1258);
    expect(folds.map((fold) => [fold.inSample.from, fold.inSample.to, fold.outOfSample.from, fold.outOfSample.to])).toEqual([
      [0, 419, 419, 838],
      [419, 838, 838, 1258],
    ]);
    for (const fold of folds) expect(fold.outOfSample.warmUpSteps).toBe(fold.inSample.best?.parameters.slowPeriod);
    expect(one.walkForward?.outOfSample?.trades).toBe(folds.reduce((sum, fold) => sum + (fold.outOfSample.statistics?.trades ?? 0), 0));
  });

  it.skipIf(!present)('leaves out what the constraints refuse, and refuses a search with none left', async () => {
    const constrained = await search({ workers: 2, constraints: [compileConstraint('slowPeriod >= fastPeriod * 3', parameters)] });
    expect(constrained.rows.map((row) => row.parameters)).toEqual([
      { fastPeriod: 10, slowPeriod: 40 },
      { fastPeriod: 10, slowPeriod: 60 },
      { fastPeriod: 10, slowPeriod: 80 },
      { fastPeriod: 20, slowPeriod: 60 },
      { fastPeriod: 20, slowPeriod: 80 },
    ]);
    await expect(search({ constraints: [compileConstraint('fastPeriod > slowPeriod', parameters)] })).rejects.toThrow(
      '--constraint: no combination of the 9 in the grid meets "fastPeriod > slowPeriod"; loosen the constraints or widen the --param ranges',
    );
    await expect(search({ maxRuns: 8 })).rejects.toThrow('--max-runs: the search needs 9 backtests of 9 combinations, over the limit of 8');
  });

  it.skipIf(!present)('refuses a combination the spec refuses, naming its values and field, before any run', async () => {
    const wide = [parseParameter('fastPeriod=10,50', 1), parseParameter('slowPeriod=40', 1)];
    const bars = await loadSpecBars(parseSpec(document), '.');
    await expect(runSearch({ document, source: 'search-test.yaml', bars, parameters: wide, metric: 'sharpe', direction: 'maximize' })).rejects.toThrow(
      /search-test\.yaml with fastPeriod=50 slowPeriod=40 has 1 mistake; nothing ran.*strategies\[0\]\.slowPeriod: got 40; must be greater than fastPeriod \(50\) \(or leave such combinations out with --constraint\)/s,
    );
  });

  it.skipIf(!present)('reports a run that fails with its combination', async () => {
    const bars = await loadSpecBars(parseSpec(document), '.');
    const cash = [parseParameter('fastPeriod=10', 1), parseParameter('portfolio.initialCash=100000,0', 1)];
    const failed = await runSearch({ document, source: 'search-test.yaml', bars, parameters: cash, metric: 'sharpe', direction: 'maximize', workers: 2 }).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(SearchRunError);
    expect((failed as SearchRunError).message).toMatch(/^the run of fastPeriod=10 portfolio\.initialCash=0 failed: /);
  });

  it('reports a worker thread that dies with the combination it was running, instead of waiting for it', async () => {
    // One float64 cannot hold a bar (6 a bar): the thread throws while it builds its bars, and ends.
    const pool = new WorkerPool(1, { document, source: 'search-test.yaml', parameters, bars: [{ symbol: 'AAPL', buffer: new SharedArrayBuffer(8) }] });
    const job = { id: 0, combination: [10, 40], from: 0, to: 1, warmUp: false, keepCurve: false };
    await expect(pool.run([job], () => 'fastPeriod=10 slowPeriod=40')).rejects.toThrow(/^the run of fastPeriod=10 slowPeriod=40 failed: its worker thread crashed: Invalid array length/);
    await pool.close();
  });

  it.skipIf(!present)('stops when asked and keeps what finished', async () => {
    const controller = new AbortController();
    const stopped = await search({ workers: 1, signal: controller.signal, onProgress: (done) => (done === 2 ? controller.abort() : undefined) });
    expect(stopped).toMatchObject({ stopped: true, runsDone: 2, runs: 9 });
    expect(stopped.rows.map((row) => row.rank)).toEqual([expect.any(Number), expect.any(Number), null, null, null, null, null, null, null]);
  });
});
