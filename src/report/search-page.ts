import { InvalidInputError } from '../core/index.js';
import type { Metric, ParameterValue, SearchResult, SearchRow, StepRange } from '../search/index.js';
import { escapeHtml, formatNumber, formatPercent, formatTime, htmlDocument, htmlTable } from './page.js';

/** The statistics of a search's runs (`--maximize` takes their names), and how the page shows each. */
const METRIC_FORMATS = {
  totalReturn: formatPercent,
  maxDrawdown: formatPercent,
  winRate: formatPercent,
  exposure: formatPercent,
  sharpe: (value) => formatNumber(value, 3),
  sortino: (value) => formatNumber(value, 3),
  finalEquity: (value) => formatNumber(value, 2),
  trades: (value) => (value === null ? '-' : String(value)),
} as const satisfies Record<Metric, (value: number | null) => string>;

/** What the page of `tradeswarm optimize … --html` shows. */
export interface SearchPageInput {
  /** The spec's file. */
  readonly source: string;
  readonly result: SearchResult;
  /** Parameter names for the heat map's columns and rows (see {@link heatmapAxes}). */
  readonly heatmapX?: string;
  readonly heatmapY?: string;
  /** The spec as read, before the search set any parameter. */
  readonly settings: unknown;
}

/**
 * The heat map's parameters: the ones named, else the first two (one parameter gives a single row).
 * @throws InvalidInputError naming `--heatmap-x` or `--heatmap-y` for a name that is not a searched parameter, or the same one twice.
 */
export function heatmapAxes(names: readonly string[], x?: string, y?: string): { readonly x: string; readonly y: string | null } {
  for (const [flag, name] of [['--heatmap-x', x], ['--heatmap-y', y]] as const) {
    if (name !== undefined && !names.includes(name)) throw new InvalidInputError(flag, `${JSON.stringify(name)} is not a searched parameter; use one of ${names.join(', ')}`);
  }
  const chosenX = x ?? names.find((name) => name !== y);
  if (chosenX === undefined) throw new InvalidInputError('--heatmap-x', 'a heat map needs a parameter that --heatmap-y does not take; search at least two');
  const chosenY = y ?? names.find((name) => name !== chosenX) ?? null;
  if (chosenY === chosenX) throw new InvalidInputError('--heatmap-y', `is ${JSON.stringify(chosenY)}, as --heatmap-x is; give two different parameters`);
  return { x: chosenX, y: chosenY };
}


const formatMetric = (metric: Metric, value: number | null | undefined): string => METRIC_FORMATS[metric](value ?? null);

/** A cell's colour, from worst (red) through yellow to best (green); grey without a value. */
function heatColor(share: number | null): string {
  if (share === null) return '#eeeeee';
  const hue = Math.round(share * 120);
  return `hsl(${hue},70%,75%)`;
}

/** The heat map: the metric over two parameters, the others at the best combination's values. */
function heatmap(input: SearchPageInput, best: SearchRow): string {
  const { result } = input;
  const axes = heatmapAxes(result.parameters.map((parameter) => parameter.name), input.heatmapX, input.heatmapY);
  const valuesOf = (name: string | null): readonly ParameterValue[] => (name === null ? [''] : (result.parameters.find((parameter) => parameter.name === name)?.values ?? []));
  const others = result.parameters.filter((parameter) => parameter.name !== axes.x && parameter.name !== axes.y);
  const cells = new Map<string, number | null>();
  for (const row of result.rows) {
    if (row.statistics === null || others.some((parameter) => row.parameters[parameter.name] !== best.parameters[parameter.name])) continue;
    cells.set(JSON.stringify([row.parameters[axes.x], axes.y === null ? '' : row.parameters[axes.y]]), row.statistics[result.metric]);
  }
  const known = [...cells.values()].filter((value): value is number => value !== null);
  const low = Math.min(...known);
  const high = Math.max(...known);
  const share = (value: number | null | undefined): number | null => {
    if (value === null || value === undefined) return null;
    const up = high > low ? (value - low) / (high - low) : 1;
    return result.direction === 'maximize' ? up : 1 - up;
  };
  const header = `<tr><th>${escapeHtml(axes.y ?? '')} \\ ${escapeHtml(axes.x)}</th>${valuesOf(axes.x).map((value) => `<th>${escapeHtml(String(value))}</th>`).join('')}</tr>`;
  const rows = valuesOf(axes.y).map((yValue) => {
    const tds = valuesOf(axes.x).map((xValue) => {
      const key = JSON.stringify([xValue, yValue]);
      const value = cells.get(key);
      const text = cells.has(key) ? formatMetric(result.metric, value) : '';
      return `<td class="n" style="background:${heatColor(share(value))}">${escapeHtml(text)}</td>`;
    });
    return `<tr><th>${escapeHtml(String(yValue))}</th>${tds.join('')}</tr>`;
  });
  const fixed = others.map((parameter) => `${parameter.name} = ${String(best.parameters[parameter.name])}`).join(', ');
  return [
    `<h2>Heat map: ${escapeHtml(result.metric)} over ${escapeHtml(axes.x)}${axes.y === null ? '' : ` and ${escapeHtml(axes.y)}`}</h2>`,
    `<p class="note">${result.direction === 'maximize' ? 'Green is highest' : 'Green is lowest'}; an empty cell is a combination left out by a constraint or not run.${fixed === '' ? '' : ` Other parameters at the best combination's values: ${escapeHtml(fixed)}.`}</p>`,
    `<table class="heatmap">${header}\n${rows.join('\n')}</table>`,
  ].join('\n');
}

/**
 * The HTML page of a parameter search: the heat map of the metric over two parameters, the ranked
 * results, the walk-forward folds and the spec. One self-contained file; its JSON holds the result
 * exactly as `--json` prints it (`search`).
 */
export function searchReportPage(input: SearchPageInput): string {
  const { result } = input;
  const names = result.parameters.map((parameter) => parameter.name);
  const ranked = result.rows.filter((row) => row.rank !== null && row.statistics !== null).sort((a, b) => (a.rank as number) - (b.rank as number));
  const metrics = Object.keys(METRIC_FORMATS) as Metric[];
  const columns = [result.metric, ...metrics.filter((metric) => metric !== result.metric)];
  const title = `parameter search: ${result.direction} ${result.metric} (${input.source})`;
  const best = ranked[0];
  const excluded = result.gridSize - result.combinations;
  const walk = result.walkForward;
  const span = (range: StepRange): string => `${formatTime(range.firstTimeMs)}..${formatTime(range.lastTimeMs)} (${range.to - range.from})`;
  const body = [
    `<h1>${escapeHtml(title)}</h1>`,
    `<p>${escapeHtml(`${result.combinations} combinations${excluded > 0 ? ` (${excluded} of ${result.gridSize} left out by ${result.constraints.join(' and ')})` : ''}, ${result.timeSteps} time steps, ${result.runsDone} of ${result.runs} backtests run${result.stopped ? ' (stopped early)' : ''}.`)}</p>`,
    best === undefined ? '<p class="warn">No combination finished.</p>' : heatmap(input, best),
    `<h2>Results (${ranked.length}, best first)</h2>`,
    htmlTable(
      ['rank', ...names, ...columns],
      ranked.map((row) => [{ number: String(row.rank) }, ...names.map((name) => String(row.parameters[name])), ...columns.map((metric) => ({ number: formatMetric(metric, row.statistics?.[metric]) }))]),
    ),
    walk === null ? '' : `<h2>Walk-forward (${walk.folds.length} folds, ${escapeHtml(walk.mode)})</h2>`,
    walk === null
      ? ''
      : htmlTable(
          ['fold', 'in sample', 'best', `${result.metric} in`, 'out of sample', `${result.metric} out`, 'totalReturn out', 'trades out'],
          walk.folds.map((fold) => {
            const chosen = fold.inSample.best;
            const out = fold.outOfSample.statistics;
            return [
              { number: String(fold.fold) },
              span(fold.inSample),
              chosen === null ? '-' : names.map((name) => `${name}=${String(chosen.parameters[name])}`).join(' '),
              { number: formatMetric(result.metric, chosen?.statistics?.[result.metric]) },
              span(fold.outOfSample),
              { number: formatMetric(result.metric, out?.[result.metric]) },
              { number: formatMetric('totalReturn', out?.totalReturn) },
              { number: formatMetric('trades', out?.trades) },
            ];
          }),
        ),
    walk?.outOfSample == null ? '' : `<p>Out of sample, joined: ${escapeHtml(columns.map((metric) => `${metric} ${formatMetric(metric, walk.outOfSample?.[metric])}`).join(', '))}</p>`,
    '<h2>Settings (the spec searched)</h2>',
    `<pre>${escapeHtml(JSON.stringify(input.settings, null, 2) ?? 'null')}</pre>`,
  ];
  return htmlDocument({ title, body: body.filter((part) => part !== '').join('\n'), data: { kind: 'parameter search', search: { spec: input.source, ...result }, settings: input.settings, charts: [] } });
}
