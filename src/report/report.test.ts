import { describe, expect, it } from 'vitest';
import { InvalidInputError, Rng } from '../core/index.js';
import type { SearchResult } from '../search/index.js';
import type { SessionReport } from '../trading/index.js';
import { downsample, drawdownOf, fillKind, heatmapAxes, pageData, runReportPage, searchReportPage } from './index.js';

const HOSTILE = '<script>window.ran=1</script>';
const DAY = 86_400_000;

function report(symbol: string): SessionReport {
  const fill = (id: string, side: 'buy' | 'sell', day: number, price: number) => ({ clientOrderId: id, symbol, side, quantity: 10, price, fee: 1, timeMs: day * DAY });
  return {
    swarm: HOSTILE,
    trades: [{ symbol, direction: 'long', quantity: 10, entryTimeMs: DAY, exitTimeMs: 3 * DAY, entryPrice: 101, exitPrice: 99, grossPnl: -20, fees: 2, netPnl: -22, returnFraction: -22 / 1010, fillCount: 2 }],
    fills: [
      fill(`bt:${HOSTILE}:1:${symbol}:enter-long:0123456789ab`, 'buy', 1, 101),
      fill(`bt:${HOSTILE}:1:${symbol}:enter-long:0123456789ab:stop-loss`, 'sell', 3, 99),
      fill(`bt:x:4:${symbol}:enter-short:0123456789ab`, 'sell', 4, 100),
      fill(`end-of-data:${symbol}:${9 * DAY}`, 'buy', 9, 98),
    ],
    rejections: [],
    initialCash: 10_000,
    finalCash: 9_990.5,
    finalEquity: 9_990.5,
    totalReturn: -0.00095,
    sharpe: -0.123456789,
    sortino: null,
    statistics: { convention: 'arithmetic', riskFreeRatePerYear: 0 },
    maxDrawdown: 0.0021,
    winRate: 0,
    exposure: 0.3,
    openPositions: [],
    endOfData: 'liquidate-at-close',
    gaps: [{ symbol, lastBeforeMs: 5 * DAY, firstAfterMs: 8 * DAY, durationMs: 3 * DAY, usualIntervalMs: DAY, flattened: null, cancelledOrders: null }],
  };
}

const bars = (symbol: string) => Array.from({ length: 10 }, (_, day) => ({ symbol, timeMs: day * DAY, close: 100 + (day % 3) }));

describe('downsample', () => {
  it('keeps the first and last points and each bucket’s lowest and highest point, in time order', () => {
    const rng = Rng.seeded(7);
    let value = 100;
    const t = Array.from({ length: 100_003 }, (_, i) => i * 60_000);
    const v = t.map(() => (value *= 1 + rng.normal(0, 0.01)));
    const buckets = 250;
    const thin = downsample({ t, v }, buckets);
    expect(thin.t.length).toBeLessThanOrEqual(2 * buckets + 2);
    expect([thin.t[0], thin.v[0], thin.t.at(-1), thin.v.at(-1)]).toEqual([t[0], v[0], t.at(-1), v.at(-1)]);
    expect(thin.t).toEqual([...thin.t].sort((a, b) => a - b));
    const kept = new Map(thin.t.map((time, i) => [time, thin.v[i]]));
    const inner = t.length - 2;
    for (let b = 0; b < buckets; b++) {
      const from = 1 + Math.floor((b * inner) / buckets);
      const to = 1 + Math.floor(((b + 1) * inner) / buckets);
      const slice = v.slice(from, to);
      const low = from + slice.indexOf(Math.min(...slice));
      const high = from + slice.indexOf(Math.max(...slice));
      expect(kept.get(t[low] as number)).toBe(v[low]);
      expect(kept.get(t[high] as number)).toBe(v[high]);
    }
    // The deepest drawdown of the whole curve survives the thinning exactly.
    expect(Math.min(...drawdownOf(thin.v))).toBeGreaterThanOrEqual(Math.min(...drawdownOf(v)));
    const dd = drawdownOf(v);
    const thinDd = downsample({ t, v: dd }, buckets);
    expect(Math.min(...thinDd.v)).toBe(Math.min(...dd));
  });

  it('returns a short curve whole and keeps the indices asked for', () => {
    expect(downsample({ t: [1, 2, 3], v: [5, 4, 6] }, 1)).toEqual({ t: [1, 2, 3], v: [5, 4, 6] });
    const t = Array.from({ length: 1000 }, (_, i) => i);
    const thin = downsample({ t, v: t.map((i) => Math.sin(i)) }, 10, new Set([500, 501]));
    expect(thin.t).toContain(500);
    expect(thin.t).toContain(501);
    expect(thin.t.length).toBeLessThanOrEqual(24);
  });

  it('measures the drawdown from the running peak', () => {
    expect(drawdownOf([100, 120, 90, 130])).toEqual([0, 0, 90 / 120 - 1, 0]);
  });
});

describe('runReportPage', () => {
  const page = runReportPage({ kind: 'backtest', source: 'spec.yaml', report: report(HOSTILE), equityCurve: bars('X').map((bar) => ({ timeMs: bar.timeMs, equity: bar.close * 100 })), bars: bars(HOSTILE), settings: { name: HOSTILE } });

  it('escapes every text from the spec and the data: no script of theirs can run', () => {
    expect(page).not.toContain(HOSTILE);
    expect(page).not.toContain('<script>window');
    expect(page.match(/<script/g)).toHaveLength(3);
    expect(page).toContain('&#60;script&#62;window.ran=1&#60;/script&#62;');
  });

  it('holds the report exactly, the settings, and the charts with the fills marked by kind', () => {
    const data = pageData(page) as { report: unknown; settings: unknown; charts: Array<{ id: string; series: Array<{ label: string }>; data: Array<Array<number | null>> }> };
    expect(data.report).toEqual(JSON.parse(JSON.stringify(report(HOSTILE))));
    expect(data.settings).toEqual({ name: HOSTILE });
    expect(data.charts.map((chart) => chart.id)).toEqual(['chart-equity', 'chart-drawdown', 'chart-price-0']);
    const price = data.charts[2] as (typeof data.charts)[number];
    expect(price.series.map((series) => series.label)).toEqual(['close', 'long entry', 'short entry', 'stop-loss / trailing stop', 'exit']);
    expect(price.data.slice(2)).toEqual([
      [null, 101, null, null, null, null, null, null, null, null],
      [null, null, null, null, 100, null, null, null, null, null],
      [null, null, null, 99, null, null, null, null, null, null],
      [null, null, null, null, null, null, null, null, null, 98],
    ]);
  });

  it('shows the statistics by the report’s field names, warnings and gaps', () => {
    expect(page).toMatch(/<td>sharpe<\/td><td class="n">-0\.123<\/td><td>annualised, arithmetic convention, risk-free rate 0\.00 % a year<\/td>/);
    expect(page).toContain('positions were held across it');
  });

  it('tells fills apart by their client order ids', () => {
    expect(report('A').fills.map(fillKind)).toEqual(['enter-long', 'stop-loss', 'enter-short', 'end-of-data']);
    expect(fillKind({ clientOrderId: 'gap:A:5' })).toBe('gap');
  });

  it('counts a swarm’s events, and says the earlier ones it left out went to stderr', () => {
    const input = { kind: 'swarm run' as const, source: 'swarm.yaml', report: report('A'), equityCurve: [], bars: bars('A'), settings: {} };
    const event = { atStep: 299, agent: 'analyser', kind: 'refused' as const, detail: 'not ready' };
    const partial = runReportPage({ ...input, swarm: { agents: [], events: [event], eventsTotal: 300 } });
    expect(partial).toContain('<h2>Events (300)</h2>\n<p class="note">The last 1 are listed; the 299 before them were printed on stderr as the run went.</p>\n<table>');
    const whole = runReportPage({ ...input, swarm: { agents: [], events: [event], eventsTotal: 1 } });
    expect(whole).toContain('<h2>Events (1)</h2>\n<table>');
  });
});

describe('searchReportPage', () => {
  const stats = (sharpe: number) => ({ totalReturn: sharpe / 10, sharpe, sortino: null, maxDrawdown: 0.1, winRate: 0.5, exposure: 0.5, finalEquity: 1000, trades: 3 });
  const result: SearchResult = {
    metric: 'sharpe',
    direction: 'maximize',
    parameters: [{ name: 'fast', values: [2, 4] }, { name: 'slow', values: [10, 20] }, { name: HOSTILE, values: ['a', 'b'] }],
    constraints: [],
    gridSize: 8,
    combinations: 8,
    timeSteps: 100,
    rows: [2, 4].flatMap((fast) => [10, 20].flatMap((slow) => ['a', 'b'].map((other) => ({ fast, slow, other })))).map(({ fast, slow, other }, i) => ({
      rank: null,
      parameters: { fast, slow, [HOSTILE]: other },
      statistics: stats(fast * 100 + slow + (other === 'b' ? 0.5 : 0) + i / 100),
    })),
    walkForward: null,
    runsDone: 8,
    runs: 8,
    stopped: false,
  };
  const ranked = { ...result, rows: result.rows.map((row) => ({ ...row, rank: 8 - result.rows.filter((other) => (other.statistics?.sharpe ?? 0) < (row.statistics?.sharpe ?? 0)).length })) };

  it('draws the metric over the two chosen parameters, the others at the best combination’s values', () => {
    const page = searchReportPage({ source: 'spec.yaml', result: ranked, settings: {} });
    expect(page).not.toContain(HOSTILE);
    const cells = [...(/<table class="heatmap">([\s\S]*?)<\/table>/.exec(page)?.[1] ?? '').matchAll(/<td class="n"[^>]*>([^<]*)<\/td>/g)].map((match) => match[1]);
    // Rows slow 10, 20; columns fast 2, 4; the third parameter at "b" (the best's).
    expect(cells).toEqual(['210.510', '410.550', '220.530', '420.570']);
    expect((pageData(page) as { search: unknown }).search).toEqual(JSON.parse(JSON.stringify({ spec: 'spec.yaml', ...ranked })));
  });

  it('takes the axes named, and refuses a name that is not a parameter by its flag', () => {
    expect(heatmapAxes(['a', 'b', 'c'], 'c')).toEqual({ x: 'c', y: 'a' });
    expect(heatmapAxes(['a', 'b', 'c'], undefined, 'a')).toEqual({ x: 'b', y: 'a' });
    expect(heatmapAxes(['a'])).toEqual({ x: 'a', y: null });
    expect(() => heatmapAxes(['a', 'b'], 'z')).toThrow(new InvalidInputError('--heatmap-x', '"z" is not a searched parameter; use one of a, b'));
    expect(() => heatmapAxes(['a', 'b'], 'a', 'a')).toThrow(/--heatmap-y: is "a", as --heatmap-x is/);
  });
});
