import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { type BacktestSpecError, backtestOptionsFromSpec, isBacktestSpecError, loadBacktestOptions, loadBacktestSpec, parseBacktestSpec, runBacktest } from './index.js';

const VALID = {
  data: { source: 'synthetic', seed: 1, symbols: ['AAA'], barCount: 300 },
  strategies: [{ type: 'sma-crossover', symbol: 'AAA', fastPeriod: 5, slowPeriod: 20, sizing: { type: 'fixed-quantity', units: 10 } }],
};

function problems(raw: unknown): string[] {
  try {
    parseBacktestSpec(raw, 'spec.yaml');
  } catch (error) {
    expect(isBacktestSpecError(error)).toBe(true);
    return (error as BacktestSpecError).problems.map((p) => `${p.field} | ${JSON.stringify(p.value)} | ${p.allowed}`);
  }
  throw new Error('expected the spec to be rejected');
}

describe('backtest spec', () => {
  it('fills in defaults', () => {
    const spec = parseBacktestSpec(VALID);
    expect(spec).toMatchObject({ name: 'backtest', endOfData: 'liquidate-at-close', periodsPerYear: 252, venue: {}, portfolio: {} });
  });

  it.each([
    [{ ...VALID, data: { ...VALID.data, source: 'parquet' } }, "data.source | \"parquet\" | must be one of 'csv' | 'synthetic'"],
    [{ ...VALID, strategies: [] }, 'strategies | [] | must list at least 1 item(s)'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], fastPeriod: 0 }] }, 'strategies[0].fastPeriod | 0 | must be >= 1'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], slowPeriod: 'x' }] }, 'strategies[0].slowPeriod | "x" | must be a number'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], slowPeriod: 5 }] }, 'strategies[0].slowPeriod | 5 | must be greater than fastPeriod (5)'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], symbol: 'ZZZ' }] }, "strategies[0].symbol | \"ZZZ\" | must be one of the data's symbols: AAA"],
    [{ ...VALID, endOfData: 'sell' }, 'endOfData | "sell" | must be one of "liquidate-at-open", "liquidate-at-close", "mark-to-market"'],
    [{ ...VALID, venue: { fees: { model: 'bps' } } }, 'venue.fees.bps | undefined | is required (number)'],
    [{ ...VALID, extra: 1 }, 'extra | 1 | is not a known field; remove it or check its spelling'],
  ])('names the field, the value and what is allowed (%#)', (raw, expected) => {
    expect(problems(raw)).toEqual([expected]);
  });

  it('lists every mistake in one error message', () => {
    expect(() => parseBacktestSpec({ ...VALID, endOfData: 'x', periodsPerYear: -1 }, 'spec.yaml')).toThrow(
      /spec\.yaml has 2 mistakes; nothing ran[\s\S]*endOfData: got "x"[\s\S]*periodsPerYear: got -1; must be > 0/,
    );
  });

  it('loads a YAML file, resolves CSV paths against its folder, and runs', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-spec-'));
    const rows = Array.from({ length: 40 }, (_, i) => {
      const close = 100 + 10 * Math.sin(i / 4);
      return `${new Date(Date.UTC(2020, 0, 1 + i)).toISOString().slice(0, 10)},${close},${close + 1},${close - 1},${close},1000`;
    });
    writeFileSync(join(folder, 'AAA.csv'), `date,open,high,low,close,volume\n${rows.join('\n')}\n`);
    writeFileSync(
      join(folder, 'spec.yaml'),
      'data: { source: csv, files: [{ path: AAA.csv, symbol: AAA }] }\nstrategies:\n  - { type: sma-crossover, symbol: AAA, fastPeriod: 2, slowPeriod: 5, sizing: { type: fixed-quantity, units: 1 } }\n',
    );
    const { report } = runBacktest(await loadBacktestOptions(join(folder, 'spec.yaml')));
    expect(report.bars).toBe(40);
    expect(report.trades.length).toBeGreaterThan(0);
  });
});

const SIZING = { type: 'fixed-quantity', units: 1 };
const TWO = { source: 'synthetic', seed: 1, symbols: ['AAA', 'BBB'], barCount: 300 };
const STRATEGIES: Record<string, Record<string, unknown>> = {
  ema: { type: 'ema-crossover', symbol: 'AAA', fastPeriod: 5, slowPeriod: 20, sizing: SIZING },
  momentum: { type: 'momentum', symbol: 'AAA', lookback: 20, entryThreshold: 0.1, exitThreshold: 0, sizing: SIZING },
  bollinger: { type: 'mean-reversion', indicator: 'bollinger', symbol: 'AAA', sizing: SIZING },
  rsi: { type: 'mean-reversion', indicator: 'rsi', symbol: 'AAA', oversold: 25, exitLevel: 55, sizing: SIZING },
  pairs: { type: 'pairs', symbolA: 'AAA', symbolB: 'BBB', lookback: 30, entryZ: 2, exitZ: 0.5, sizing: SIZING },
  arbitrage: { type: 'cross-venue-arbitrage', symbolA: 'AAA', symbolB: 'BBB', minEdgeBps: 10, exitEdgeBps: 2, sizing: SIZING },
};
/** A valid two-symbol spec whose second strategy is `strategy` (with `changes`). */
function withStrategy(strategy: string, changes: Record<string, unknown> = {}, rest: Record<string, unknown> = {}): unknown {
  return { data: TWO, strategies: [VALID.strategies[0], { ...STRATEGIES[strategy], ...changes }], ...rest };
}

describe('backtest spec: every strategy type', () => {
  it('accepts each type with its defaults and builds it', async () => {
    const spec = parseBacktestSpec({ data: TWO, strategies: Object.values(STRATEGIES) });
    expect(spec.strategies.map((s) => s.type)).toEqual(['ema-crossover', 'momentum', 'mean-reversion', 'mean-reversion', 'pairs', 'cross-venue-arbitrage']);
    expect(spec.strategies[1]).toMatchObject({ allowShort: false });
    const options = await backtestOptionsFromSpec(spec, '.');
    expect(options.strategies.map((s) => s.name)).toEqual([
      'ema-crossover-AAA-5-20',
      'momentum-AAA-20',
      'mean-reversion-bollinger-AAA-20',
      'mean-reversion-rsi-AAA-14',
      'pairs-AAA-BBB-30',
      'arbitrage-AAA-BBB',
    ]);
    expect(runBacktest(options).report.bars).toBe(600);
  });

  it.each([
    [withStrategy('ema', { slowPeriod: 5 }), 'strategies[1].slowPeriod | 5 | must be greater than fastPeriod (5)'],
    [withStrategy('momentum', { exitThreshold: 0.2 }), 'strategies[1].exitThreshold | 0.2 | must be <= entryThreshold (0.1)'],
    [withStrategy('momentum', { lookback: 0 }), 'strategies[1].lookback | 0 | must be >= 1'],
    [withStrategy('momentum', { entryThreshold: undefined }), 'strategies[1].entryThreshold | undefined | is required (number)'],
    [withStrategy('bollinger', { indicator: undefined }), "strategies[1].indicator | undefined | must be one of 'bollinger' | 'rsi'"],
    [withStrategy('bollinger', { period: 1 }), 'strategies[1].period | 1 | must be >= 2'],
    [withStrategy('rsi', { stdDevs: 2 }), 'strategies[1].stdDevs | 2 | is not a known field; remove it or check its spelling'],
    [withStrategy('rsi', { oversold: 60 }), 'strategies[1].oversold | 60 | must be < exitLevel (55)'],
    [withStrategy('rsi', { allowShort: true, oversold: 52, exitLevel: 60 }), 'strategies[1].oversold | 52 | must be < 50 with allowShort (the short entry is above 100 − oversold)'],
    [withStrategy('pairs', { entryZ: 0.4 }), 'strategies[1].entryZ | 0.4 | must be > exitZ (0.5)'],
    [withStrategy('pairs', { symbolB: 'AAA' }), 'strategies[1].symbolB | "AAA" | must differ from symbolA (AAA)'],
    [withStrategy('pairs', { symbolB: 'CCC' }), "strategies[1].symbolB | \"CCC\" | must be one of the data's symbols: AAA, BBB"],
    [withStrategy('pairs', { lookback: 1 }), 'strategies[1].lookback | 1 | must be >= 2'],
    [withStrategy('arbitrage', { exitEdgeBps: 20 }), 'strategies[1].exitEdgeBps | 20 | must be < minEdgeBps (10)'],
    [withStrategy('arbitrage', { feeBpsPerFill: -1 }), 'strategies[1].feeBpsPerFill | -1 | must be >= 0'],
    [
      withStrategy('momentum', { type: 'breakout' }),
      "strategies[1].type | \"breakout\" | must be one of 'sma-crossover' | 'ema-crossover' | 'momentum' | 'mean-reversion' | 'pairs' | 'cross-venue-arbitrage'",
    ],
    [withStrategy('momentum', { allowShort: true }, { portfolio: { longOnly: true } }), 'strategies[1].allowShort | true | momentum sells short but portfolio.longOnly is true; set longOnly: false'],
    [withStrategy('pairs', {}, { portfolio: { longOnly: true } }), 'strategies[1].type | "pairs" | pairs sells short but portfolio.longOnly is true; set longOnly: false'],
    [
      { data: TWO, strategies: [STRATEGIES['momentum'], STRATEGIES['momentum']] },
      'strategies[1].name | undefined | must be unique; momentum-AAA-20 is already used (set name)',
    ],
  ])('names the field, the value and what is allowed (%#)', (raw, expected) => {
    expect(problems(raw)).toEqual([expected]);
  });

  it('says every problem of a strategy in one message, the path first', () => {
    expect(() => parseBacktestSpec(withStrategy('pairs', { entryZ: 0.4 }), 'spec.yaml')).toThrow('  - strategies[1].entryZ: got 0.4; must be > exitZ (0.5)');
  });
});

describe('backtest spec: risk, allocator and synthetic data', () => {
  const both = { data: TWO, strategies: [VALID.strategies[0], STRATEGIES['momentum']] };

  it('passes risk and allocator to the run', async () => {
    const spec = parseBacktestSpec({ ...both, risk: { maxGrossExposure: 1, haltAtDrawdown: 0.3 }, allocator: { weighting: 'fixed', weights: { 'sma-crossover-AAA-5-20': 0.4, 'momentum-AAA-20': 0.6 } } });
    const options = await backtestOptionsFromSpec(spec, '.');
    expect(options.risk).toEqual({ maxGrossExposure: 1, haltAtDrawdown: 0.3 });
    expect(options.allocator).toEqual({ weighting: 'fixed', weights: { 'sma-crossover-AAA-5-20': 0.4, 'momentum-AAA-20': 0.6 } });
    const { report } = runBacktest(options);
    expect(report.riskState?.finalState).toBeDefined();
    expect(report.allocation).not.toBeNull();
  });

  it.each([
    [{ ...both, risk: { haltAtDrawdown: 1.5 } }, 'risk.haltAtDrawdown | 1.5 | must be <= 1'],
    [{ ...both, risk: { reduceAtDrawdown: 0.3, haltAtDrawdown: 0.2 } }, 'risk.reduceAtDrawdown | 0.3 | must be <= haltAtDrawdown (0.2)'],
    [{ ...both, risk: { maxOrders: 0 } }, 'risk.maxOrders | 0 | must be >= 1'],
    [{ ...both, risk: { maxPosition: 5 } }, 'risk.maxPosition | 5 | is not a known field; remove it or check its spelling'],
    [{ ...both, allocator: { weighting: 'magic' } }, "allocator.weighting | \"magic\" | must be one of 'equal' | 'fixed' | 'inverse-volatility'"],
    [
      { ...both, allocator: { weighting: 'fixed', weights: { 'momentum-AAA-20': 0.5 } } },
      'allocator.weights.sma-crossover-AAA-5-20 | undefined | must be a fraction of equity >= 0 (every strategy needs one)',
    ],
    [
      { ...both, allocator: { weighting: 'fixed', weights: { 'sma-crossover-AAA-5-20': 0.6, 'momentum-AAA-20': 0.6 } } },
      'allocator.weights | {"sma-crossover-AAA-5-20":0.6,"momentum-AAA-20":0.6} | must sum to <= 1 (fractions of equity)',
    ],
    [{ ...both, allocator: { weighting: 'inverse-volatility', lookbackBars: 1 } }, 'allocator.lookbackBars | 1 | must be >= 2'],
    [{ ...both, data: { ...TWO, pairs: [{ leader: 'ZZZ', follower: 'ZZB' }] } }, 'data.pairs[0].leader | "ZZZ" | "ZZZ" is not one of symbols (AAA, BBB)'],
    [{ ...both, data: { ...TWO, venues: { names: [] } } }, 'data.venues.names | [] | must list at least 1 item(s)'],
    [{ ...both, data: { ...TWO, venues: { names: ['a@b'] } } }, "data.venues.names[0] | \"a@b\" | must be a non-empty name without '@'"],
  ])('names the field, the value and what is allowed (%#)', (raw, expected) => {
    expect(problems(raw)).toEqual([expected]);
  });

  it('runs synthetic pairs and venues without files: strategies may trade followers and venue symbols', async () => {
    const spec = parseBacktestSpec({
      data: { source: 'synthetic', seed: 3, symbols: ['AAA'], barCount: 400, pairs: [{ leader: 'AAA', follower: 'AAB', hedgeRatio: 1.5 }], venues: { names: ['x', 'y'] } },
      strategies: [
        { type: 'pairs', symbolA: 'AAB', symbolB: 'AAA', lookback: 30, entryZ: 2, exitZ: 0.5, sizing: { type: 'fraction-of-equity', fraction: 0.5 } },
        { type: 'cross-venue-arbitrage', symbolA: 'AAA@x', symbolB: 'AAA@y', minEdgeBps: 5, exitEdgeBps: 0, sizing: { type: 'fraction-of-equity', fraction: 0.5 } },
      ],
    });
    const options = await backtestOptionsFromSpec(spec, '.');
    expect([...(options.bars as ReadonlyMap<string, unknown>).keys()]).toEqual(['AAA', 'AAB', 'AAA@x', 'AAA@y']);
    const { report } = runBacktest(options);
    expect(report.trades.length).toBeGreaterThan(0);
    // fraction-of-equity sizing is in whole units by default, and so is the pair's hedge leg.
    expect(report.fills.every((fill) => Number.isInteger(fill.quantity))).toBe(true);
  });
});

describe('the example specs', () => {
  const example = (file: string): string => fileURLToPath(new URL(`../../examples/${file}`, import.meta.url));

  it('backtest-multi.yaml: momentum, mean reversion and pairs behind an allocator and a risk manager', async () => {
    const { report } = runBacktest(await loadBacktestOptions(example('backtest-multi.yaml')));
    const roles = new Set(report.fills.map((fill) => fill.clientOrderId.split(':')[1]));
    for (const role of ['momentum-BBB-60', 'mean-reversion-rsi-CCC-1', 'mean-reversion-bolling', 'pairs-AAB-AAA-60']) expect([...roles].some((r) => r?.startsWith(role))).toBe(true);
    expect(report.riskState?.transitions.length).toBeGreaterThan(0);
    expect(report.rejections.some((r) => r.source === 'risk')).toBe(true);
  });

  it('backtest-arbitrage.yaml: one asset on two synthetic venues', async () => {
    const { report } = runBacktest(await loadBacktestOptions(example('backtest-arbitrage.yaml')));
    expect(report.trades.length).toBeGreaterThan(100);
    expect(report.openPositions).toEqual([]);
  });

  const aapl = new URL('../../../shared/data/daily/AAPL.csv', import.meta.url);
  const folder = fileURLToPath(new URL('.', aapl));
  const present = existsSync(aapl);
  if (!present && process.env.CI === 'true') {
    it('needs the shared data under CI', () => {
      throw new Error(`${folder} has no AAPL.csv; CI must provide ../shared/data`);
    });
  }
  if (!present) console.warn(`skipping the backtest-aapl.yaml figures: ${folder} has no AAPL.csv`);

  it.skipIf(!present)('backtest-aapl.yaml gives the figures it gave before the new strategies', async () => {
    const { report } = runBacktest(await loadBacktestOptions(example('backtest-aapl.yaml')));
    expect([report.trades.length, report.fills.length, report.rejections.length, report.finalEquity.toFixed(2)]).toEqual([9, 18, 0, '8914743.27']);
    expect([report.sharpe?.toFixed(3), report.maxDrawdown.toFixed(4), report.exposure.toFixed(4)]).toEqual(['0.894', '0.5803', '0.7186']);
    expect([report.riskState, report.allocation]).toEqual([null, null]);
  });
});

describe('backtest spec: CSV data.from / data.to', () => {
  /** A folder with AAA.csv: daily bars from 2020-01-01 to 2020-01-10 (UTC midnights). */
  function csvFolder(): string {
    const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-range-'));
    const rows = Array.from({ length: 10 }, (_, i) => `${new Date(Date.UTC(2020, 0, 1 + i)).toISOString().slice(0, 10)},${100 + i},${101 + i},${99 + i},${100 + i},1000`);
    writeFileSync(join(folder, 'AAA.csv'), `date,open,high,low,close,volume\n${rows.join('\n')}\n`);
    return folder;
  }
  const folder = csvFolder();
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  const csvSpec = (range: Record<string, unknown>): Record<string, unknown> => ({
    data: { source: 'csv', files: [{ path: 'AAA.csv', symbol: 'AAA' }], ...range },
    strategies: [{ ...VALID.strategies[0], fastPeriod: 2, slowPeriod: 3 }],
  });
  const days = async (range: Record<string, unknown>): Promise<string[]> => {
    const options = await backtestOptionsFromSpec(parseBacktestSpec(csvSpec(range)), folder);
    return ((options.bars as ReadonlyMap<string, ReadonlyArray<{ timeMs: number }>>).get('AAA') ?? []).map((bar) => new Date(bar.timeMs).toISOString().slice(0, 10));
  };

  it.each([
    [{}, '2020-01-01', '2020-01-10', 10],
    [{ from: '2020-01-03' }, '2020-01-03', '2020-01-10', 8],
    [{ to: '2020-01-05' }, '2020-01-01', '2020-01-05', 5],
    [{ from: '2020-01-03', to: '2020-01-05' }, '2020-01-03', '2020-01-05', 3],
    [{ from: '2020-01-04', to: '2020-01-04' }, '2020-01-04', '2020-01-04', 1],
    [{ from: '2019-06-01', to: '2021-01-01' }, '2020-01-01', '2020-01-10', 10],
  ])('%j keeps the bars from the first to the last day inclusive', async (range, first, last, count) => {
    const kept = await days(range);
    expect([kept[0], kept.at(-1), kept.length]).toEqual([first, last, count]);
  });

  it.each([
    [{ from: '2020/01/03' }, 'data.from'],
    [{ from: '20200103' }, 'data.from'],
    [{ from: '2020-13-01' }, 'data.from'],
    [{ to: 'yesterday' }, 'data.to'],
  ])('refuses %j naming %s', (range, field) => {
    const found = problems(csvSpec(range));
    expect(found).toEqual([`${field} | ${JSON.stringify(Object.values(range)[0])} | must be a date YYYY-MM-DD`]);
  });

  it.each([
    [{ from: '2020-02-01' }, 'AAA.csv has no bars from 2020-02-01 to the end; widen data.from/data.to'],
    [{ to: '2019-12-31' }, 'AAA.csv has no bars from the start to 2019-12-31; widen data.from/data.to'],
    [{ from: '2020-01-06', to: '2020-01-05' }, 'AAA.csv has no bars from 2020-01-06 to 2020-01-05; widen data.from/data.to'],
  ])('a range %j without bars is an InvalidInputError naming data.files[0]', async (range, message) => {
    const error: unknown = await backtestOptionsFromSpec(parseBacktestSpec(csvSpec(range)), folder).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'data.files[0]', message: `data.files[0]: ${message}` });
  });
});

describe('backtest spec: absurd numbers are refused at parse time, with the limit', () => {
  const withFirst = (changes: Record<string, unknown>): unknown => ({ ...VALID, strategies: [{ ...VALID.strategies[0], ...changes }] });
  const withData = (changes: Record<string, unknown>): unknown => ({ ...VALID, data: { ...VALID.data, ...changes } });
  const fraction = (value: number): unknown => withFirst({ sizing: { type: 'fraction-of-equity', fraction: value } });
  const both = (rest: Record<string, unknown>): unknown => ({ data: TWO, strategies: [VALID.strategies[0], STRATEGIES['momentum']], ...rest });
  const BAR_BUDGET = 'a synthetic market holds at most 5000000 bars, about 360 bytes of memory each; use fewer bars or symbols';

  it.each([
    // Memory: the synthetic market is generated whole, before the first bar runs.
    [withData({ barCount: 1e12 }), `data.barCount | 1000000000000 | must be <= 2500000 for 2 generated series (1 symbol and the volatility index): ${BAR_BUDGET}`],
    [withData({ barCount: 1e300 }), `data.barCount | 1e+300 | must be <= 2500000 for 2 generated series (1 symbol and the volatility index): ${BAR_BUDGET}`],
    [
      { data: { ...TWO, barCount: 1_000_000, pairs: [{ leader: 'AAA', follower: 'AAB' }], venues: { names: ['x', 'y'], symbols: ['AAA'] } }, strategies: [VALID.strategies[0]] },
      `data.barCount | 1000000 | must be <= 833333 for 6 generated series (2 symbols, 1 pair follower, 2 venue symbols and the volatility index): ${BAR_BUDGET}`,
    ],
    [withData({ barCount: 2.5 }), 'data.barCount | 2.5 | must be an integer'],
    [withData({ startTimeMs: 1e16 }), 'data.startTimeMs | 10000000000000000 | must be <= 8640000000000000'],
    [withData({ barIntervalMs: 1e14 }), 'data.barIntervalMs | 100000000000000 | puts the last bar at 29901577836800000 ms, after the last time a date can hold (8640000000000000 ms, in the year 275760); use a shorter interval, fewer bars or an earlier start'],
    [withData({ barsPerYear: 1e-9 }), 'data.barsPerYear | 1e-9 | must be >= 1'],
    [withData({ barsPerYear: 1e308 }), 'data.barsPerYear | 1e+308 | must be <= 31536000000'],
    [withData({ initialPrice: 1e308 }), 'data.initialPrice | 1e+308 | must be <= 1000000000'],
    [withData({ driftPerYear: 1e6 }), 'data.driftPerYear | 1000000 | must be <= 10'],
    [withData({ driftPerYear: -1e6 }), 'data.driftPerYear | -1000000 | must be >= -10'],
    [withData({ calmVolatilityPerYear: 1e3 }), 'data.calmVolatilityPerYear | 1000 | must be <= 10'],
    [withData({ stressedVolatilityPerYear: 1e3 }), 'data.stressedVolatilityPerYear | 1000 | must be <= 10'],
    [
      withData({ barCount: 2_000_000, barsPerYear: 1, driftPerYear: 0.05 }),
      'data.barCount | 2000000 | over 2000000 years (barCount / barsPerYear), driftPerYear and the volatilities could move prices by a factor of e^106323 (the drift plus six standard deviations), past the e^690 a price may reach before a double overflows; use fewer bars, more barsPerYear, or a smaller drift or volatility',
    ],
    [withData({ pairs: [{ leader: 'AAA', follower: 'AAB', hedgeRatio: 1e9 }] }), 'data.pairs[0].hedgeRatio | 1000000000 | must be <= 1000000'],
    [withData({ pairs: [{ leader: 'AAA', follower: 'AAB', spreadMean: -1e300 }] }), 'data.pairs[0].spreadMean | -1e+300 | must be >= -1000000000'],
    [withData({ pairs: [{ leader: 'AAA', follower: 'AAB', spreadHalfLifeBars: 1e300 }] }), 'data.pairs[0].spreadHalfLifeBars | 1e+300 | must be <= 5000000'],
    [withData({ pairs: [{ leader: 'AAA', follower: 'AAB', spreadStdDev: 1e300 }] }), 'data.pairs[0].spreadStdDev | 1e+300 | must be <= 1000000000'],
    [withData({ venues: { names: ['x'], noiseStdDevBps: 1e6 } }), 'data.venues.noiseStdDevBps | 1000000 | must be <= 10000'],
    [withData({ venues: { names: ['x'], noiseHalfLifeBars: 1e300 } }), 'data.venues.noiseHalfLifeBars | 1e+300 | must be <= 5000000'],
    // Strategies: sizing, indicator periods, thresholds.
    [fraction(1e308), 'strategies[0].sizing.fraction | 1e+308 | must be <= 1'],
    [fraction(1.5), 'strategies[0].sizing.fraction | 1.5 | must be <= 1'],
    [fraction(0), 'strategies[0].sizing.fraction | 0 | must be > 0'],
    [withFirst({ sizing: { type: 'fixed-quantity', units: 1e308 } }), 'strategies[0].sizing.units | 1e+308 | must be <= 1000000000000'],
    [withFirst({ sizing: { type: 'fixed-quantity', units: 0 } }), 'strategies[0].sizing.units | 0 | must be > 0'],
    [withFirst({ slowPeriod: 1e8 }), 'strategies[0].slowPeriod | 100000000 | must be <= 10000'],
    [withFirst({ fastPeriod: 1e300, slowPeriod: 20 }), 'strategies[0].fastPeriod | 1e+300 | must be <= 10000'],
    [withStrategy('ema', { slowPeriod: 20_000 }), 'strategies[1].slowPeriod | 20000 | must be <= 10000'],
    [withStrategy('momentum', { lookback: 1e6 }), 'strategies[1].lookback | 1000000 | must be <= 10000'],
    [withStrategy('momentum', { entryThreshold: 1e308 }), 'strategies[1].entryThreshold | 1e+308 | must be <= 10'],
    [withStrategy('momentum', { exitThreshold: -1e308 }), 'strategies[1].exitThreshold | -1e+308 | must be >= -10'],
    [withStrategy('bollinger', { period: 1e6 }), 'strategies[1].period | 1000000 | must be <= 10000'],
    [
      withStrategy('bollinger', { period: 20, stdDevs: 5 }),
      'strategies[1].stdDevs | 5 | must be < √(period − 1) = √19 ≈ 4.359: no close of a window of 20 bars is further than that many standard deviations from their mean, so the strategy could never enter',
    ],
    [withStrategy('rsi', { period: 1e6 }), 'strategies[1].period | 1000000 | must be <= 10000'],
    [withStrategy('rsi', { oversold: 1e308 }), 'strategies[1].oversold | 1e+308 | must be <= 100'],
    [withStrategy('rsi', { exitLevel: -1e308 }), 'strategies[1].exitLevel | -1e+308 | must be >= 0'],
    [withStrategy('pairs', { lookback: 1e6 }), 'strategies[1].lookback | 1000000 | must be <= 10000'],
    [withStrategy('pairs', { hedgeRatio: 1e300 }), 'strategies[1].hedgeRatio | 1e+300 | must be <= 1000000'],
    [
      withStrategy('pairs', { entryZ: 6 }),
      'strategies[1].entryZ | 6 | must be < √(lookback − 1) = √29 ≈ 5.385: no spread of a window of 30 steps is further than that many standard deviations from their mean, so the strategy could never enter',
    ],
    [withStrategy('arbitrage', { minEdgeBps: 1e6 }), 'strategies[1].minEdgeBps | 1000000 | must be <= 10000'],
    [withStrategy('arbitrage', { exitEdgeBps: -1e6 }), 'strategies[1].exitEdgeBps | -1000000 | must be >= -10000'],
    [withStrategy('arbitrage', { feeBpsPerFill: 1e6 }), 'strategies[1].feeBpsPerFill | 1000000 | must be <= 10000'],
    // Risk, allocator, consensus, venue, portfolio, statistics.
    [both({ risk: { maxPositionUnits: 1e300 } }), 'risk.maxPositionUnits | 1e+300 | must be <= 1000000000000'],
    [both({ risk: { maxPositionFraction: 1e9 } }), 'risk.maxPositionFraction | 1000000000 | must be <= 100'],
    [both({ risk: { maxGrossExposure: 1e9 } }), 'risk.maxGrossExposure | 1000000000 | must be <= 100'],
    [both({ risk: { maxOrders: 1e12 } }), 'risk.maxOrders | 1000000000000 | must be <= 1000000'],
    [both({ risk: { orderWindowBars: 1e12 } }), 'risk.orderWindowBars | 1000000000000 | must be <= 5000000'],
    [both({ risk: { drawdownWindowBars: 1e300 } }), 'risk.drawdownWindowBars | 1e+300 | must be <= 5000000'],
    [both({ allocator: { weighting: 'inverse-volatility', lookbackBars: 1e6 } }), 'allocator.lookbackBars | 1000000 | must be <= 10000'],
    [both({ allocator: { weighting: 'fixed', weights: { 'sma-crossover-AAA-5-20': 1e308, 'momentum-AAA-20': 0 } } }), 'allocator.weights.sma-crossover-AAA-5-20 | 1e+308 | must be <= 1'],
    [both({ consensus: { threshold: 'majority', weights: { 'momentum-AAA-20': 1e308 } } }), 'consensus.weights.momentum-AAA-20 | 1e+308 | must be <= 1000000'],
    [{ ...VALID, venue: { slippage: { model: 'bps', bps: 1e6 } } }, 'venue.slippage.bps | 1000000 | must be <= 10000'],
    [{ ...VALID, venue: { slippage: { model: 'fixed', amountPerShare: 1e300 } } }, 'venue.slippage.amountPerShare | 1e+300 | must be <= 1000000000'],
    [{ ...VALID, venue: { fees: { model: 'fixed', amountPerOrder: 1e300 } } }, 'venue.fees.amountPerOrder | 1e+300 | must be <= 1000000000000'],
    [{ ...VALID, venue: { fees: { model: 'bps', bps: 1e6 } } }, 'venue.fees.bps | 1000000 | must be <= 10000'],
    [{ ...VALID, venue: { fees: { model: 'bps', bps: 1, minimumPerOrder: 1e300 } } }, 'venue.fees.minimumPerOrder | 1e+300 | must be <= 1000000000000'],
    [{ ...VALID, venue: { fees: { model: 'per-share', amountPerShare: 1e300 } } }, 'venue.fees.amountPerShare | 1e+300 | must be <= 1000000000'],
    [{ ...VALID, venue: { partialFills: { maxFractionOfBarVolume: 0.5, lotSize: 1e300 } } }, 'venue.partialFills.lotSize | 1e+300 | must be <= 1000000000000'],
    [{ ...VALID, portfolio: { initialCash: 1e308 } }, 'portfolio.initialCash | 1e+308 | must be <= 1000000000000'],
    [{ ...VALID, periodsPerYear: 1e308 }, 'periodsPerYear | 1e+308 | must be <= 31536000000'],
  ])('names the field, the value and the limit (%#)', (raw, expected) => {
    expect(problems(raw)).toEqual([expected]);
  });

  it('says how many symbols a synthetic market may have', () => {
    const symbols = ['AAA', ...Array.from({ length: 100 }, (_, i) => `S${i}`)];
    expect(problems(withData({ symbols }))).toEqual([`data.symbols | ${JSON.stringify(symbols)} | must list at most 100 symbols (the correlation matrix has a row and a column per symbol)`]);
  });

  it('accepts the largest allowed values (the limits are inclusive)', () => {
    expect(() => parseBacktestSpec(withData({ barCount: 2_500_000, barsPerYear: 98_280 }))).not.toThrow();
    expect(() => parseBacktestSpec(withFirst({ fastPeriod: 9_999, slowPeriod: 10_000, sizing: { type: 'fraction-of-equity', fraction: 1 } }))).not.toThrow();
    expect(() => parseBacktestSpec(withStrategy('bollinger', { period: 20, stdDevs: 4.35 }))).not.toThrow();
  });
});

describe('backtest spec: a spec that cannot trade runs and says why', () => {
  it('a slowPeriod longer than the data gives a warning naming the strategy, the field, its value and the bars available', async () => {
    const spec = parseBacktestSpec({ ...VALID, strategies: [{ ...VALID.strategies[0], slowPeriod: 400 }] });
    const { report } = runBacktest(await backtestOptionsFromSpec(spec, '.'));
    expect(report.trades).toEqual([]);
    expect(report.warnings).toEqual([
      {
        source: 'strategies[0]',
        strategy: 'sma-crossover-AAA-5-400',
        field: 'slowPeriod',
        value: 400,
        barsNeeded: 401,
        barsAvailable: 300,
        message: 'strategies[0] sma-crossover-AAA-5-400 cannot trade: slowPeriod 400 needs 401 bars of AAA before its first decision, and the data has 300; lower slowPeriod or use more data',
      },
    ]);
  });

  it.each([
    ['ema', { slowPeriod: 600 }, 'strategies[1] ema-crossover-AAA-5-600 cannot trade: slowPeriod 600 needs 601 bars of AAA before its first decision, and the data has 300; lower slowPeriod or use more data'],
    ['momentum', { lookback: 300 }, 'strategies[1] momentum-AAA-300 cannot trade: lookback 300 needs 301 bars of AAA before its first decision, and the data has 300; lower lookback or use more data'],
    ['bollinger', { period: 301 }, 'strategies[1] mean-reversion-bollinger-AAA-301 cannot trade: period 301 needs 301 bars of AAA before its first decision, and the data has 300; lower period or use more data'],
    ['rsi', { period: 300 }, 'strategies[1] mean-reversion-rsi-AAA-300 cannot trade: period 300 needs 301 bars of AAA before its first decision, and the data has 300; lower period or use more data'],
    ['pairs', { lookback: 500 }, 'strategies[1] pairs-AAA-BBB-500 cannot trade: lookback 500 needs 500 bars of AAA and BBB before its first decision, and the data has 300; lower lookback or use more data'],
  ])('%s: %j gives one warning', async (strategy, changes, message) => {
    const { report } = runBacktest(await backtestOptionsFromSpec(parseBacktestSpec(withStrategy(strategy, changes)), '.'));
    expect(report.warnings.map((warning) => warning.message)).toEqual([message]);
  });

  it('an inverse-volatility lookback longer than the data says the weights stay equal', async () => {
    const spec = parseBacktestSpec({ data: TWO, strategies: [VALID.strategies[0], STRATEGIES['momentum']], allocator: { weighting: 'inverse-volatility', lookbackBars: 300 } });
    const { report } = runBacktest(await backtestOptionsFromSpec(spec, '.'));
    expect(report.warnings.map((warning) => warning.message)).toEqual([
      'allocator: lookbackBars 300 needs 301 bars of every strategy\'s symbols before inverse-volatility weights apply, and the data has 300; the weights stay equal for the whole run; lower lookbackBars or use more data',
    ]);
  });

  it('a warm-up that fits gives no warning', async () => {
    const { report } = runBacktest(await backtestOptionsFromSpec(parseBacktestSpec({ data: TWO, strategies: Object.values(STRATEGIES) }), '.'));
    expect(report.warnings).toEqual([]);
  });

  const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
  const haveSharedData = existsSync(new URL('../../../shared/data/daily/AAPL.csv', import.meta.url));
  it.each(readdirSync(examples).filter((file) => file.endsWith('.yaml')))('examples/%s gives no warning', async (file) => {
    const spec = await loadBacktestSpec(join(examples, file));
    if (spec.data.source === 'csv' && !haveSharedData) return;
    const { report } = runBacktest(await backtestOptionsFromSpec(spec, examples));
    expect(report.warnings).toEqual([]);
  });
});
