import { describeGap } from '../market/index.js';
import type { Fill } from '../venue/index.js';
import type { AgentReport, SwarmEvent } from '../swarm/index.js';
import type { SessionReport } from '../trading/index.js';
import { type Curve, downsample, drawdownOf } from './downsample.js';
import { type ChartData, escapeHtml, formatNumber, formatPercent, formatTime, htmlDocument, htmlTable } from './page.js';

/** Points per curve on the page: a curve is thinned to 1,000 buckets (at most 2,002 points, see `downsample`). */
export const CHART_BUCKETS = 1_000;
/** Rows of the trades and fills tables; all of them are in the page's JSON. */
export const TABLE_ROWS = 2_000;

/** A bar as the page needs it. */
export interface PriceBar {
  readonly symbol: string;
  readonly timeMs: number;
  readonly close: number;
}

/** What the page of a backtest or a swarm run shows; plain data, as the run gave it. */
export interface RunPageInput {
  readonly kind: 'backtest' | 'swarm run';
  /** The spec's file, shown in the title. */
  readonly source: string;
  /** The report as `--json` prints it; embedded whole. */
  readonly report: SessionReport & { readonly warnings?: ReadonlyArray<{ readonly message: string }> };
  readonly equityCurve: ReadonlyArray<{ readonly timeMs: number; readonly equity: number }>;
  /** The run's data: bars by symbol, or one list. */
  readonly bars: ReadonlyMap<string, readonly PriceBar[]> | readonly PriceBar[];
  /** The spec as run (the document read from the file), shown as JSON. */
  readonly settings: unknown;
  /** A swarm's agents and latest events, and how many events there were in all (more when earlier ones were left out). */
  readonly swarm?: { readonly agents: readonly AgentReport[]; readonly events: readonly SwarmEvent[]; readonly eventsTotal: number };
  /** @default {@link CHART_BUCKETS} */
  readonly buckets?: number;
}

const BRACKET_EXITS = ['stop-loss', 'trailing-stop', 'take-profit'] as const;

/**
 * What a fill was for, from its client order id: a bracket exit by its id's suffix (`:stop-loss`,
 * `:trailing-stop`, `:take-profit`), `end-of-data` and `gap` (a flattened position) by their prefix,
 * else the intent part of a strategy's id (`enter-long`, `exit-short`, …).
 */
export function fillKind(fill: Pick<Fill, 'clientOrderId'>): string {
  const id = fill.clientOrderId;
  const exit = BRACKET_EXITS.find((kind) => id.endsWith(`:${kind}`));
  if (exit !== undefined) return exit;
  if (id.startsWith('end-of-data:')) return 'end-of-data';
  if (id.startsWith('gap:')) return 'gap';
  const parts = id.split(':');
  return parts.length === 6 ? (parts[4] as string) : 'other';
}

/** The marker series of the price charts, in legend order, and which fills each shows. */
const MARKERS: ReadonlyArray<{ readonly label: string; readonly color: string; readonly takes: (kind: string, fill: Fill) => boolean }> = [
  { label: 'long entry', color: '#1a9850', takes: (kind) => kind === 'enter-long' },
  { label: 'short entry', color: '#d73027', takes: (kind) => kind === 'enter-short' },
  { label: 'stop-loss / trailing stop', color: '#7b3294', takes: (kind) => kind === 'stop-loss' || kind === 'trailing-stop' },
  { label: 'take-profit', color: '#e6a700', takes: (kind) => kind === 'take-profit' },
  { label: 'exit', color: '#444444', takes: (kind) => kind.startsWith('exit') || kind === 'end-of-data' || kind === 'gap' },
  { label: 'other buy', color: '#4575b4', takes: (_, fill) => fill.side === 'buy' },
  { label: 'other sell', color: '#f46d43', takes: () => true },
];

/** A curve's values as drawn: 7 significant digits, finer than a pixel, about half the digits of the page's JSON (the report's figures are exact). */
const drawn = (values: readonly number[]): number[] => values.map((value) => Number(value.toPrecision(7)));

function barsBySymbol(bars: RunPageInput['bars']): Array<[string, readonly PriceBar[]]> {
  const bySymbol = new Map<string, readonly PriceBar[]>();
  if (bars instanceof Map) {
    for (const [symbol, list] of bars as ReadonlyMap<string, readonly PriceBar[]>) bySymbol.set(symbol, list);
  } else {
    for (const bar of bars as readonly PriceBar[]) {
      const list = (bySymbol.get(bar.symbol) ?? []) as PriceBar[];
      if (list.length === 0) bySymbol.set(bar.symbol, list);
      list.push(bar);
    }
  }
  return [...bySymbol].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The index of the bar at `timeMs` in bars of ascending time, or -1. A binary search: a million-entry map costs more than the page. */
function barIndex(bars: readonly PriceBar[], timeMs: number): number {
  let low = 0;
  let high = bars.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const time = (bars[middle] as PriceBar).timeMs;
    if (time === timeMs) return middle;
    if (time < timeMs) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

/** A symbol's close, thinned, with its fills as marker series at their bars (kept by the thinning). */
function priceChart(id: string, bars: readonly PriceBar[], fills: readonly Fill[], buckets: number): ChartData {
  const keep = new Set<number>();
  for (const fill of fills) {
    const index = barIndex(bars, fill.timeMs);
    if (index >= 0) keep.add(index);
  }
  const close = downsample({ t: bars.map((bar) => bar.timeMs), v: bars.map((bar) => bar.close) }, buckets, keep);
  const position = new Map(close.t.map((time, i) => [time, i]));
  const markers = MARKERS.map(() => close.t.map((): number | null => null));
  for (const fill of fills) {
    const at = position.get(fill.timeMs);
    if (at === undefined) continue;
    const kind = fillKind(fill);
    const series = MARKERS.findIndex((marker) => marker.takes(kind, fill));
    (markers[series] as Array<number | null>)[at] = fill.price;
  }
  const used = MARKERS.map((marker, i) => ({ marker, values: markers[i] as Array<number | null> })).filter(({ values }) => values.some((value) => value !== null));
  return {
    id,
    format: 'price',
    series: [{ label: 'close', color: '#2c7fb8' }, ...used.map(({ marker }) => ({ label: marker.label, color: marker.color, points: true }))],
    data: [close.t, drawn(close.v), ...used.map(({ values }) => values)],
  };
}

/** Labels and meanings of the statistics table, by the report's field names (the README's "Statistics conventions"). */
function statisticsRows(report: RunPageInput['report']): Array<[string, string, string]> {
  const conventions = `${report.statistics.convention} convention, risk-free rate ${formatPercent(report.statistics.riskFreeRatePerYear)} a year`;
  const rows: Array<[string, string, string]> = [
    ['initialCash', formatNumber(report.initialCash, 2), 'cash at the start'],
    ['finalCash', formatNumber(report.finalCash, 2), 'cash at the end'],
    ['finalEquity', formatNumber(report.finalEquity, 2), 'cash + positions at their last close'],
    ['totalReturn', formatPercent(report.totalReturn), 'finalEquity / initialCash − 1'],
    ['sharpe', formatNumber(report.sharpe, 3), `annualised, ${conventions}`],
    ['sortino', formatNumber(report.sortino, 3), `annualised, ${conventions}`],
    ['maxDrawdown', formatPercent(report.maxDrawdown), 'largest fall of equity from its running peak'],
    ['winRate', formatPercent(report.winRate), 'winning trades / trades'],
    ['exposure', formatPercent(report.exposure), 'fraction of equity points with an open position'],
    ['trades', String(report.trades.length), 'closed round trips'],
    ['fills', String(report.fills.length), 'venue fills, then end-of-data fills'],
    ['rejections', String(report.rejections.length), 'orders refused (venue or risk)'],
    ['endOfData', report.endOfData, 'what happened to positions open after the last bar'],
  ];
  const shown = new Set([...rows.map(([field]) => field), 'swarm', 'statistics']);
  // The other plain fields the report holds (bars, timeSteps, elapsedMs; a swarm's outcome, topology, messages…).
  for (const [field, value] of Object.entries(report)) {
    if (shown.has(field)) continue;
    if (typeof value === 'number') rows.push([field, Number.isInteger(value) ? String(value) : formatNumber(value, 3), '']);
    if (typeof value === 'string' || typeof value === 'boolean') rows.push([field, String(value), '']);
  }
  return rows;
}

function capped(total: number): string {
  return total > TABLE_ROWS ? `<p class="note">The first ${TABLE_ROWS} of ${total}; all are in the report's JSON in this page.</p>` : '';
}

/**
 * The HTML report of a backtest or a swarm run: the statistics with the report's field names,
 * warnings and gaps, the equity and drawdown curves, each symbol's close with its fills marked, the
 * trades and fills, a swarm's agents and events, and the spec as run. One self-contained file: uPlot
 * and the data are inlined. The page's JSON (`DATA_ELEMENT_ID`) holds the report exactly as `--json` prints it.
 */
export function runReportPage(input: RunPageInput): string {
  const { report } = input;
  const buckets = input.buckets ?? CHART_BUCKETS;
  const title = `${input.kind}: ${report.swarm} (${input.source})`;
  const times = input.equityCurve.map((point) => point.timeMs);
  const equityValues = input.equityCurve.map((point) => point.equity);
  const equity: Curve = downsample({ t: times, v: equityValues }, buckets);
  const drawdown: Curve = downsample({ t: times, v: drawdownOf(equityValues) }, buckets);
  const charts: ChartData[] = [
    { id: 'chart-equity', format: 'money', series: [{ label: 'equity', color: '#2c7fb8' }], data: [equity.t, drawn(equity.v)] },
    { id: 'chart-drawdown', format: 'percent', series: [{ label: 'drawdown', color: '#d73027' }], data: [drawdown.t, drawn(drawdown.v)] },
  ];
  const symbols = barsBySymbol(input.bars);
  const priceSections = symbols.map(([symbol, bars], i) => {
    const chart = priceChart(`chart-price-${i}`, bars, report.fills.filter((fill) => fill.symbol === symbol), buckets);
    charts.push(chart);
    return `<h3>${escapeHtml(symbol)}</h3><div class="chart" id="${chart.id}"></div>`;
  });
  const warnings = [
    ...(report.warnings ?? []).map((warning) => warning.message),
    ...report.gaps.map((gap) => `gap: ${describeGap(gap)}; ${gap.flattened === null ? 'positions were held across it' : 'positions were closed before it'}`),
  ];
  const body = [
    `<h1>${escapeHtml(title)}</h1>`,
    `<p class="note">Curves are thinned for the page to ${buckets} buckets each (every bucket keeps its lowest and highest point; the first and last points and every fill's bar are kept) and drawn to 7 significant digits. The report's figures are exact, in the JSON inside this page.</p>`,
    warnings.length === 0 ? '' : `<h2>Warnings</h2><ul class="warn">${warnings.map((text) => `<li>${escapeHtml(text)}</li>`).join('')}</ul>`,
    '<h2>Statistics</h2>',
    htmlTable(['field', 'value', 'meaning'], statisticsRows(report).map(([field, value, meaning]) => [field, { number: value }, meaning])),
    '<h2>Equity</h2><div class="chart" id="chart-equity"></div>',
    '<h2>Drawdown</h2><div class="chart" id="chart-drawdown"></div>',
    '<h2>Prices and fills</h2>',
    ...priceSections,
    `<h2>Trades (${report.trades.length})</h2>`,
    htmlTable(
      ['symbol', 'direction', 'quantity', 'entry', 'entry price', 'exit', 'exit price', 'net PnL', 'return'],
      report.trades.slice(0, TABLE_ROWS).map((trade) => [
        trade.symbol,
        trade.direction,
        { number: String(trade.quantity) },
        formatTime(trade.entryTimeMs),
        { number: String(trade.entryPrice) },
        formatTime(trade.exitTimeMs),
        { number: String(trade.exitPrice) },
        { number: formatNumber(trade.netPnl, 2) },
        { number: formatPercent(trade.returnFraction) },
      ]),
    ),
    capped(report.trades.length),
    `<h2>Fills (${report.fills.length})</h2>`,
    htmlTable(
      ['time', 'symbol', 'kind', 'side', 'quantity', 'price', 'fee', 'client order id'],
      report.fills.slice(0, TABLE_ROWS).map((fill) => [
        formatTime(fill.timeMs),
        fill.symbol,
        fillKind(fill),
        fill.side,
        { number: String(fill.quantity) },
        { number: String(fill.price) },
        { number: String(fill.fee) },
        fill.clientOrderId,
      ]),
    ),
    capped(report.fills.length),
    input.swarm === undefined ? '' : swarmSection(input.swarm),
    '<h2>Settings (the spec as run)</h2>',
    `<pre>${escapeHtml(JSON.stringify(input.settings, null, 2) ?? 'null')}</pre>`,
  ];
  return htmlDocument({ title, body: body.filter((part) => part !== '').join('\n'), data: { kind: input.kind, report, settings: input.settings, charts } });
}

function swarmSection(swarm: NonNullable<RunPageInput['swarm']>): string {
  const count = (value: number | null): { number: string } => ({ number: value === null ? '-' : String(value) });
  const leftOut = swarm.eventsTotal - swarm.events.length;
  return [
    '<h2>Agents</h2>',
    htmlTable(
      ['agent', 'role', 'kind', 'messages in', 'messages out', 'decisions', 'errors', 'restarts', 'ready ms', 'status'],
      swarm.agents.map((agent) => [agent.id, agent.label, agent.kind, count(agent.messagesIn), count(agent.messagesOut), count(agent.decisions), count(agent.errors), count(agent.restarts), { number: agent.startMs.ready.toFixed(1) }, agent.status]),
    ),
    `<h2>Events (${swarm.eventsTotal})</h2>`,
    leftOut > 0 ? `<p class="note">The last ${swarm.events.length} are listed; the ${leftOut} before them were printed on stderr as the run went.</p>` : '',
    swarm.events.length === 0 ? '<p class="note">None.</p>' : htmlTable(['step', 'agent', 'kind', 'detail'], swarm.events.map((event) => [{ number: String(event.atStep) }, event.agent, event.kind, event.detail])),
  ]
    .filter((part) => part !== '')
    .join('\n');
}
