import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_MAX_RUNS, compileConstraint, metricOf, parseParameter, runSearch, specOfCombination } from '../backtest/index.js';
import { InvalidInputError } from '../core/index.js';
import { checkReportPath, heatmapAxes, searchReportPage, writeReportPage } from '../report/index.js';
import { loadSpecBars, readSpecDocument } from '../runspec/index.js';
import { METRICS, type Metric, type ParameterValue, type RunStatistics, type SearchResult, type SearchRow, type StepRange, WalkForwardMode } from '../search/index.js';
import { percent } from './backtest.js';
import { commandDescription } from './commands.js';

interface OptimizeFlags {
  param?: string[];
  constraint?: string[];
  maximize?: string;
  minimize?: string;
  walkForward?: string;
  walkForwardMode: string;
  workers?: string;
  maxRuns: string;
  top: string;
  json?: boolean;
  out?: string;
  html?: string;
  heatmapX?: string;
  heatmapY?: string;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** `tradeswarm optimize <spec.yaml> --param NAME=FROM..TO:STEP … [--maximize METRIC] [--walk-forward K]`. */
export function registerOptimizeCommand(program: Command): void {
  program
    .command('optimize')
    .description(commandDescription('optimize'))
    .argument('<spec>', 'backtest spec (YAML); its strategies\' fields are the parameters')
    .option('--param <NAME=FROM..TO:STEP|NAME=V1,V2>', 'a parameter and its values (repeat for more); NAME is a field of the one strategy (fastPeriod, sizing.fraction) or a path in the spec (strategies[1].slowPeriod)', collect)
    .option('--constraint <expression>', 'keep only combinations where it holds, e.g. "fastPeriod < slowPeriod" (repeat: all must hold)', collect)
    .option('--maximize <metric>', `rank by this report statistic, highest first (${METRICS.join(', ')}); default sharpe`)
    .option('--minimize <metric>', 'rank by this report statistic, lowest first')
    .option('--walk-forward <folds>', 'split the data into folds+1 equal parts; in fold k, search part k-1 (or parts 0..k-1) and run its best on part k')
    .option('--walk-forward-mode <mode>', 'rolling: the in-sample part is the one part before; anchored: all parts before', 'rolling')
    .option('--workers <n>', `worker threads (default: one per core, ${availableParallelism()} here)`)
    .option('--max-runs <n>', 'refuse a search of more backtests than this', String(DEFAULT_MAX_RUNS))
    .option('--top <n>', 'rows of the results table', '10')
    .option('--json', 'print the result as JSON (every combination, in grid order)')
    .option('--out <file>', 'also write the result as JSON to this file')
    .option('--html <file>', 'also write the result as one self-contained HTML page: a heat map, the results table, the walk-forward folds')
    .option('--heatmap-x <param>', "the heat map's columns: a --param name (default: the first)")
    .option('--heatmap-y <param>', "the heat map's rows: a --param name (default: the second, or the first --heatmap-x does not take)")
    .action(async (specFile: string, flags: OptimizeFlags) => {
      const document = await readSpecDocument(specFile);
      const strategies = (document as { strategies?: unknown } | null)?.strategies;
      const parameters = (flags.param ?? []).map((text) => parseParameter(text, Array.isArray(strategies) ? strategies.length : 0));
      if (parameters.length === 0) throw new InvalidInputError('--param', 'give at least one parameter to search, e.g. --param fastPeriod=5..50:5');
      const names = new Set<string>();
      for (const parameter of parameters) {
        const key = parameter.path.join('.');
        if (names.has(key)) throw new InvalidInputError('--param', `${parameter.name} is given twice; give each parameter once, with all its values`);
        names.add(key);
      }
      if (flags.maximize !== undefined && flags.minimize !== undefined) throw new InvalidInputError('--minimize', 'give --maximize or --minimize, not both');
      const metric = flags.minimize !== undefined ? metricOf(flags.minimize, '--minimize') : metricOf(flags.maximize ?? 'sharpe', '--maximize');
      const constraints = (flags.constraint ?? []).map((text) => compileConstraint(text, parameters));
      const mode = flags.walkForwardMode;
      if (mode !== WalkForwardMode.rolling && mode !== WalkForwardMode.anchored) throw new InvalidInputError('--walk-forward-mode', `must be rolling or anchored, got ${JSON.stringify(mode)}`);
      const folds = flags.walkForward === undefined ? undefined : wholeNumber('--walk-forward', flags.walkForward, 1);
      const top = wholeNumber('--top', flags.top, 1);
      for (const [flag, value] of [['--heatmap-x', flags.heatmapX], ['--heatmap-y', flags.heatmapY]] as const) {
        if (value !== undefined && flags.html === undefined) throw new InvalidInputError(flag, 'lays out the heat map of --html; give --html <file> as well');
      }
      if (flags.html !== undefined) {
        heatmapAxes(parameters.map((parameter) => parameter.name), flags.heatmapX, flags.heatmapY);
        await checkReportPath(flags.html);
      }

      // The data of the first combination's spec (the document alone may lack the parameters); the search validates every one.
      const spec = specOfCombination(document, specFile, parameters, parameters.map((parameter) => parameter.values[0] as ParameterValue));
      const loadStarted = performance.now();
      const bars = await loadSpecBars(spec, dirname(resolve(specFile)));
      const loadMs = performance.now() - loadStarted;

      const controller = new AbortController();
      const onInterrupt = (): void => controller.abort();
      process.once('SIGINT', onInterrupt);
      const progress = !flags.json && process.stderr.isTTY === true ? progressLine() : undefined;
      const started = performance.now();
      let result: SearchResult;
      try {
        result = await runSearch({
          document,
          source: specFile,
          bars,
          parameters,
          constraints,
          metric,
          direction: flags.minimize !== undefined ? 'minimize' : 'maximize',
          ...(flags.workers === undefined ? {} : { workers: wholeNumber('--workers', flags.workers, 1) }),
          maxRuns: wholeNumber('--max-runs', flags.maxRuns, 1),
          ...(folds === undefined ? {} : { walkForward: { folds, mode } }),
          signal: controller.signal,
          ...(progress === undefined ? {} : { onProgress: progress.update }),
        });
      } finally {
        progress?.end();
        process.off('SIGINT', onInterrupt);
      }
      const json = `${JSON.stringify({ spec: specFile, ...result }, null, 2)}\n`;
      if (flags.out !== undefined) await writeFile(flags.out, json);
      if (flags.html !== undefined) {
        const page = searchReportPage({
          source: specFile,
          result,
          settings: document,
          ...(flags.heatmapX === undefined ? {} : { heatmapX: flags.heatmapX }),
          ...(flags.heatmapY === undefined ? {} : { heatmapY: flags.heatmapY }),
        });
        await writeReportPage(flags.html, page);
      }
      process.stdout.write(flags.json ? json : formatSearch(result, top));
      const seconds = (performance.now() - started) / 1000;
      process.stderr.write(
        `tradeswarm: ${result.runsDone} backtests in ${seconds.toFixed(2)} s (${(result.runsDone / seconds).toFixed(1)}/s; data loaded once in ${loadMs.toFixed(0)} ms)\n`,
      );
      if (result.stopped) process.exitCode = 130;
    });
}

function wholeNumber(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) throw new InvalidInputError(flag, `must be a whole number >= ${min}, got ${JSON.stringify(text)}`);
  return value;
}

/** A one-line progress bar on stderr, redrawn at most every 100 ms. Hand-written: one line of text needs no library. */
function progressLine(): { update: (done: number, total: number) => void; end: () => void } {
  let drawnAt = 0;
  let drawn = false;
  return {
    update(done, total) {
      const now = performance.now();
      if (done !== total && now - drawnAt < 100) return;
      drawnAt = now;
      drawn = true;
      const width = 30;
      const filled = Math.round((done / total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} backtests`);
    },
    end() {
      if (drawn) process.stderr.write('\n');
    },
  };
}

const ratio = (value: number | null): string => (value === null ? '-' : value.toFixed(3));
const money = (value: number): string => value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Columns of the tables, the ranking metric first. */
function columns(metric: Metric): Array<[string, (stats: RunStatistics) => string]> {
  const all: Array<[Metric, string, (stats: RunStatistics) => string]> = [
    ['totalReturn', 'return', (s) => percent(s.totalReturn)],
    ['sharpe', 'sharpe', (s) => ratio(s.sharpe)],
    ['sortino', 'sortino', (s) => ratio(s.sortino)],
    ['maxDrawdown', 'max drawdown', (s) => percent(s.maxDrawdown)],
    ['trades', 'trades', (s) => String(s.trades)],
    ['winRate', 'win rate', (s) => percent(s.winRate)],
    ['exposure', 'exposure', (s) => percent(s.exposure)],
    ['finalEquity', 'final equity', (s) => money(s.finalEquity)],
  ];
  const main = all.filter(([key], i) => i < 5 || key === metric);
  const chosen = main.find(([key]) => key === metric);
  return [...(chosen === undefined ? [] : [chosen]), ...main.filter(([key]) => key !== metric)].map(([, label, format]) => [label, format]);
}

function table(rows: ReadonlyArray<readonly string[]>): string {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n');
}

function dateOf(timeMs: number): string {
  const iso = new Date(timeMs).toISOString();
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : `${iso.slice(0, 16)}Z`;
}

const span = (range: StepRange): string => `${dateOf(range.firstTimeMs)}..${dateOf(range.lastTimeMs)} (${range.to - range.from})`;

/** The search as text: the top rows, then the walk-forward folds. Deterministic: no timings. */
export function formatSearch(result: SearchResult, top: number): string {
  const cols = columns(result.metric);
  const names = result.parameters.map((parameter) => parameter.name);
  const ranked = result.rows.filter((row): row is SearchRow & { rank: number; statistics: RunStatistics } => row.rank !== null && row.statistics !== null).sort((a, b) => a.rank - b.rank);
  const excluded = result.gridSize - result.combinations;
  const lines = [
    `${result.direction} ${result.metric} over ${result.combinations} combinations${excluded > 0 ? ` (${excluded} of ${result.gridSize} left out by ${result.constraints.map((c) => JSON.stringify(c)).join(' and ')})` : ''}, ${result.timeSteps} time steps`,
  ];
  if (result.stopped) lines.push(`stopped: ${result.runsDone} of ${result.runs} backtests finished; the tables hold those`);
  lines.push('', table([['rank', ...names, ...cols.map(([label]) => label)], ...ranked.slice(0, top).map((row) => [String(row.rank), ...names.map((name) => String(row.parameters[name])), ...cols.map(([, format]) => format(row.statistics))])]));
  const walk = result.walkForward;
  if (walk !== null) {
    const metricLabel = (cols[0] as [string, unknown])[0];
    const metricFormat = (cols[0] as [string, (stats: RunStatistics) => string])[1];
    lines.push('', `walk-forward, ${walk.folds.length} folds, ${walk.mode}: each fold's in-sample best by ${result.metric}, run out of sample (time steps in brackets)`, '');
    lines.push(
      table([
        ['fold', 'in sample', 'best', `${metricLabel} in`, 'out of sample', `${metricLabel} out`, 'return out', 'trades out'],
        ...walk.folds.map((fold) => {
          const best = fold.inSample.best;
          const out = fold.outOfSample.statistics;
          return [
            String(fold.fold),
            span(fold.inSample),
            best === null ? '-' : names.map((name) => `${name}=${String(best.parameters[name])}`).join(' '),
            best?.statistics === null || best === null ? '-' : metricFormat(best.statistics),
            span(fold.outOfSample),
            out === null ? '-' : metricFormat(out),
            out === null ? '-' : percent(out.totalReturn),
            out === null ? '-' : String(out.trades),
          ];
        }),
      ]),
    );
    const joined = walk.outOfSample;
    if (joined !== null) {
      lines.push('', `out of sample, joined: ${cols.map(([label, format]) => `${label} ${format(joined)}`).join(', ')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
