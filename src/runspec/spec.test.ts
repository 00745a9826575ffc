import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { STRATEGIES, TWO, VALID, withStrategy } from '../../test/fixtures/specs.js';
import { InvalidInputError } from '../core/index.js';
import { type SpecError, isSpecError } from './errors.js';
import { parseSpec, runOptionsFromSpec } from './spec.js';

function problems(raw: unknown): string[] {
  try {
    parseSpec(raw, 'spec.yaml');
  } catch (error) {
    expect(isSpecError(error)).toBe(true);
    return (error as SpecError).problems.map((p) => `${p.field} | ${JSON.stringify(p.value)} | ${p.allowed}`);
  }
  throw new Error('expected the spec to be rejected');
}

describe('backtest spec', () => {
  it('fills in defaults', () => {
    const spec = parseSpec(VALID);
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
    expect(() => parseSpec({ ...VALID, endOfData: 'x', periodsPerYear: -1 }, 'spec.yaml')).toThrow(
      /spec\.yaml has 2 mistakes; nothing ran[\s\S]*endOfData: got "x"[\s\S]*periodsPerYear: got -1; must be > 0/,
    );
  });
});

describe('backtest spec: every strategy type', () => {
  it.each([
    [withStrategy('ema', { slowPeriod: 5 }), 'strategies[1].slowPeriod | 5 | must be greater than fastPeriod (5)'],
    [withStrategy('momentum', { exitThreshold: 0.2 }), 'strategies[1].exitThreshold | 0.2 | must be <= entryThreshold (0.1)'],
    [withStrategy('momentum', { lookback: 0 }), 'strategies[1].lookback | 0 | must be >= 1'],
    [withStrategy('momentum', { entryThreshold: undefined }), 'strategies[1].entryThreshold | undefined | is required (number)'],
    [withStrategy('bollinger', { indicator: undefined }), "strategies[1].indicator | undefined | must be one of 'bollinger' | 'rsi'"],
    [withStrategy('bollinger', { period: 1 }), 'strategies[1].period | 1 | must be >= 2'],
    [
      withStrategy('rsi', { stdDevs: 2 }),
      "strategies[1].stdDevs | 2 | mean-reversion has no field 'stdDevs'; its fields are type, name, symbol, side, allowShort, exits, sizing, indicator, period, oversold, exitLevel",
    ],
    [
      withStrategy('ema', { allowShort: true }),
      "strategies[1].allowShort | true | ema-crossover has no field 'allowShort'; its fields are type, name, symbol, fastPeriod, slowPeriod, side, exits, sizing; to trade short use side: short or side: both",
    ],
    [withStrategy('ema', { fastperiods: 3 }), 'strategies[1].fastperiods | 3 | is not a field of ema-crossover; did you mean fastPeriod?'],
    [withStrategy('ema', { sizng: 3 }), 'strategies[1].sizng | 3 | is not a field of ema-crossover; did you mean sizing?'],
    [withStrategy('ema', { side: 'sideways' }), 'strategies[1].side | "sideways" | must be one of "long", "short", "both"'],
    [withStrategy('momentum', { side: 'both', allowShort: true }), 'strategies[1].allowShort | true | is the older form of side; give side only (allowShort: true is side: both)'],
    [withStrategy('rsi', { oversold: 60 }), 'strategies[1].oversold | 60 | must be < exitLevel (55)'],
    [withStrategy('rsi', { allowShort: true, oversold: 52, exitLevel: 60 }), "strategies[1].oversold | 52 | must be < 50 with side 'both' (the short entry is above 100 − oversold)"],
    [withStrategy('rsi', { side: 'short', oversold: 52, exitLevel: 60 }), "strategies[1].oversold | 52 | must be < 50 with side 'short' (the short entry is above 100 − oversold)"],
    [withStrategy('ema', { exits: { stopLoss: { percent: 120 } } }), 'strategies[1].exits.stopLoss.percent | 120 | must be < 100'],
    [withStrategy('ema', { exits: { stopLoss: { percent: 0 } } }), 'strategies[1].exits.stopLoss.percent | 0 | must be > 0'],
    [withStrategy('ema', { exits: { stopLoss: { percent: 2, atr: { period: 14, multiple: 3 } } } }), 'strategies[1].exits.stopLoss.atr | {"period":14,"multiple":3} | give one of percent and atr, not both'],
    [withStrategy('momentum', { exits: { takeProfit: { atr: { period: 14 } } } }), 'strategies[1].exits.takeProfit.atr.multiple | undefined | is required (number)'],
    [withStrategy('momentum', { exits: { trailingStop: {} } }), 'strategies[1].exits.trailingStop | {} | needs one of points, percent or atr: { period, multiple }'],
    [withStrategy('momentum', { exits: { stopLose: { points: 1 } } }), 'strategies[1].exits.stopLose | {"points":1} | is not a known field; remove it or check its spelling'],
    [
      withStrategy('pairs', { exits: { stopLoss: { percent: 2 } } }),
      'strategies[1].exits | {"stopLoss":{"percent":2}} | pairs cannot have exits: it trades two legs as one position and closes them together; stop-loss, take-profit and trailing stops are for the one-symbol strategies (sma-crossover, ema-crossover, momentum, mean-reversion)',
    ],
    [withStrategy('pairs', { entryZ: 0.4 }), 'strategies[1].entryZ | 0.4 | must be > exitZ (0.5)'],
    [
      withStrategy('pairs', { sizing: { type: 'fraction-of-equity', fraction: 0.5, sizeAt: 'fill-price' } }),
      'strategies[1].sizing.sizeAt | "fill-price" | pairs sizes its two legs together at the signal; use sizeAt: signal-close',
    ],
    [
      withStrategy('momentum', { sizing: { type: 'fraction-of-equity', fraction: 0.5, sizeAt: 'fill-price' } }, { allocator: { weighting: 'equal' } }),
      'strategies[1].sizing.sizeAt | "fill-price" | the allocator fits quantities sized at the signal close; remove allocator or use sizeAt: signal-close',
    ],
    [withStrategy('momentum', { sizing: { type: 'fraction-of-equity', fraction: 0.5, sizeAt: 'open' } }), 'strategies[1].sizing.sizeAt | "open" | must be one of "signal-close", "fill-price"'],
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
    [withStrategy('ema', { side: 'both' }, { portfolio: { longOnly: true } }), 'strategies[1].side | "both" | ema-crossover sells short but portfolio.longOnly is true; set longOnly: false'],
    [withStrategy('pairs', {}, { portfolio: { longOnly: true } }), 'strategies[1].type | "pairs" | pairs sells short but portfolio.longOnly is true; set longOnly: false'],
    [
      { data: TWO, strategies: [STRATEGIES['momentum'], STRATEGIES['momentum']] },
      'strategies[1].name | undefined | must be unique; momentum-AAA-20 is already used (set name)',
    ],
  ])('names the field, the value and what is allowed (%#)', (raw, expected) => {
    expect(problems(raw)).toEqual([expected]);
  });

  it('says every problem of a strategy in one message, the path first', () => {
    expect(() => parseSpec(withStrategy('pairs', { entryZ: 0.4 }), 'spec.yaml')).toThrow('  - strategies[1].entryZ: got 0.4; must be > exitZ (0.5)');
  });
});

describe('backtest spec: risk, allocator and synthetic data', () => {
  const both = { data: TWO, strategies: [VALID.strategies[0], STRATEGIES['momentum']] };

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
    const options = await runOptionsFromSpec(parseSpec(csvSpec(range)), folder);
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
    const error: unknown = await runOptionsFromSpec(parseSpec(csvSpec(range)), folder).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error).toMatchObject({ field: 'data.files[0]', message: `data.files[0]: ${message}` });
  });
});

describe('backtest spec: CSV columns and time zones', () => {
  const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-columns-'));
  // A vendor's names (Day, Last, Adj Close, Vol) and intraday wall-clock times.
  writeFileSync(join(folder, 'VEND.csv'), 'Day,Open,High,Low,Last,Adj Close,Vol\n2023-03-10 09:30,10,12,9,11,10.5,7\n2023-03-13 09:30,11,13,10,12,11.5,8\n');
  writeFileSync(join(folder, 'YHOO.csv'), 'Date,Open,High,Low,Close,Adj Close,Volume\n2023-03-10 09:30,20,22,19,21,20.5,7\n2023-03-13 09:30,21,23,20,22,21.5,8\n');
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  const spec = (data: Record<string, unknown>): Record<string, unknown> => ({
    data: { source: 'csv', ...data },
    strategies: [{ ...VALID.strategies[0], symbol: 'VEND', fastPeriod: 2, slowPeriod: 3 }],
  });
  const load = async (data: Record<string, unknown>): Promise<Map<string, Array<{ timeMs: number; close: number; volume: number }>>> => {
    const options = await runOptionsFromSpec(parseSpec(spec(data)), folder);
    const bars = options.bars as ReadonlyMap<string, ReadonlyArray<{ timeMs: number; close: number; volume: number }>>;
    return new Map([...bars].map(([symbol, list]) => [symbol, list.map(({ timeMs, close, volume }) => ({ timeMs, close, volume }))]));
  };

  it('maps columns per file over the data-wide mapping, and converts each file in its own time zone', async () => {
    const bars = await load({
      timeZone: 'America/Chicago',
      columns: { close: 'Adj Close' },
      files: [
        { path: 'VEND.csv', symbol: 'VEND', columns: { date: 'Day', close: 'Last', volume: 'Vol' } },
        { path: 'YHOO.csv', symbol: 'YHOO', timeZone: 'America/New_York' },
      ],
    });
    // VEND: its own close (Last), Chicago wall time: CST (UTC-6) on 10 March, CDT (UTC-5) on 13 March.
    expect(bars.get('VEND')).toEqual([
      { timeMs: Date.UTC(2023, 2, 10, 15, 30), close: 11, volume: 7 },
      { timeMs: Date.UTC(2023, 2, 13, 14, 30), close: 12, volume: 8 },
    ]);
    // YHOO: the data-wide close (Adj Close), New York wall time: EST (UTC-5), then EDT (UTC-4).
    expect(bars.get('YHOO')).toEqual([
      { timeMs: Date.UTC(2023, 2, 10, 14, 30), close: 20.5, volume: 7 },
      { timeMs: Date.UTC(2023, 2, 13, 13, 30), close: 21.5, volume: 8 },
    ]);
  });

  it('refuses a column mapping field it does not know, naming it', () => {
    expect(problems(spec({ files: [{ path: 'VEND.csv', symbol: 'VEND', columns: { openInterest: 'OI' } }] }))).toEqual([
      'data.files[0].columns.openInterest | "OI" | is not a known field; remove it or check its spelling',
    ]);
  });

  it('trades adjusted prices where data.prices or a file\'s prices says adjusted, refusing other values and a file without Adj Close', async () => {
    const bars = await load({
      prices: 'adjusted',
      files: [
        { path: 'YHOO.csv', symbol: 'YHOO' },
        { path: 'VEND.csv', symbol: 'VEND', prices: 'as-written', columns: { date: 'Day', close: 'Last', volume: 'Vol' } },
      ],
    });
    // YHOO: each close scaled by Adj Close / Close of its row (close × (20.5 / 21) is 20.5 to the last bit); VEND as written.
    expect(bars.get('YHOO')?.map((bar) => bar.close)).toEqual([21 * (20.5 / 21), 22 * (21.5 / 22)]);
    expect(bars.get('YHOO')?.[0]?.close).toBeCloseTo(20.5, 12);
    expect(bars.get('VEND')?.map((bar) => bar.close)).toEqual([11, 12]);
    expect(problems(spec({ prices: 'auto', files: [{ path: 'YHOO.csv', symbol: 'YHOO' }] }))).toEqual(['data.prices | "auto" | must be one of "as-written", "adjusted"']);
    writeFileSync(join(folder, 'PLAIN.csv'), 'date,open,high,low,close,volume\n2023-03-10,1,2,0.5,1.5,100\n');
    await expect(load({ files: [{ path: 'PLAIN.csv', symbol: 'VEND', prices: 'adjusted' }] })).rejects.toThrow(/^PLAIN\.csv line 1: prices: adjusted needs an adjusted close column/);
  });
});

describe('backtest spec: gaps', () => {
  it.each([
    [{ threshold: 1 }, 'gaps.threshold | 1 | must be > 1'],
    [{ minimumDays: -2 }, 'gaps.minimumDays | -2 | must be >= 0'],
    [{ flaten: true }, 'gaps.flaten | true | is not a known field; remove it or check its spelling'],
  ])('refuses %j, naming the field', (gaps, problem) => {
    expect(problems({ ...VALID, gaps })).toEqual([problem]);
  });

  it.each([[false], [{ threshold: 20, minimumDays: 0, flatten: true }]])('passes %j to the run', async (gaps) => {
    expect((await runOptionsFromSpec(parseSpec({ ...VALID, gaps }), '.')).gaps).toEqual(gaps);
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
    expect(() => parseSpec(withData({ barCount: 2_500_000, barsPerYear: 98_280 }))).not.toThrow();
    expect(() => parseSpec(withFirst({ fastPeriod: 9_999, slowPeriod: 10_000, sizing: { type: 'fraction-of-equity', fraction: 1 } }))).not.toThrow();
    expect(() => parseSpec(withStrategy('bollinger', { period: 20, stdDevs: 4.35 }))).not.toThrow();
  });
});
