import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ATR, CCI, MOM, NATR, RSI, SMA, StochasticOscillator, TR, WSMA } from 'trading-signals';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { exact, randomSteps } from '../../test/fixtures/snapshots.js';
import { InvalidInputError, Rng } from '../core/index.js';
import {
  atr,
  bollinger,
  cci,
  ema,
  macd,
  momentum,
  natr,
  roc,
  rsi,
  sma,
  smma,
  stochastic,
  williamsR,
  wma,
  type HighLowClose,
  type StreamingIndicator,
} from './indicators.js';

interface Bar extends HighLowClose {
  readonly open: number;
  readonly volume: number;
}

/** Feeds `inputs` one by one and returns every answer. */
function run<Input, Output>(indicator: StreamingIndicator<Input, Output>, inputs: readonly Input[]): (Output | undefined)[] {
  return inputs.map((input) => indicator.update(input));
}

/** A deterministic, wavy bar series (no reference data needed). */
const SYNTHETIC: readonly Bar[] = Array.from({ length: 80 }, (_, i) => {
  const close = 100 + 10 * Math.sin(i / 5) + 0.3 * i;
  return { open: close - 0.5, high: close + 1 + (i % 3), low: close - 1 - (i % 2), close, volume: 1000 + i };
});

// ---------------------------------------------------------------------------------------------
// Reference vectors: ../shared/data/reference/indicator_vectors.json
// ---------------------------------------------------------------------------------------------

const REFERENCE_DIR = new URL('../../../shared/data/reference/', import.meta.url);

/**
 * The local copy of each source's input series. The JSON's `input` names the upstream file; the
 * copies in reference/ were renamed (../shared/data/SOURCES.md), so the upstream name is checked too.
 */
const INPUT_FILES: Readonly<Record<string, { file: string; upstream: string; bars: number }>> = {
  talib_regtest: { file: 'talib_regtest_252bars.csv', upstream: 'talib_regtest_252bars.csv', bars: 252 },
  backtrader: { file: 'index_2006_daily.csv', upstream: '2006-day-001.txt', bars: 255 },
};

/**
 * Sources that carry no checkpoints. tulip: the JSON describes the format and conventions of
 * tulipindicators' tests/untest.txt but holds no `points`, and untest.txt is not in reference/.
 */
const SOURCES_WITHOUT_POINTS: ReadonlySet<string> = new Set(['tulip']);

/**
 * Reference points that no wrapper computes, by id, with the reason. Every point in the JSON is
 * either tested or listed here; the coverage test fails on anything else, and on stale entries.
 * Empty: every indicator in the file has a wrapper.
 */
const NOT_COVERED: ReadonlyMap<string, string> = new Map<string, string>([]);

type Expected = number | Readonly<Record<string, number>>;

interface Computation {
  /** Feeds bars 0..at to a fresh indicator and reads its value at `at` (undefined: not warmed up). */
  readonly run: (bars: readonly Bar[], at: number) => Expected | undefined;
}

interface ReferencePoint {
  readonly id: string;
  readonly source: string;
  readonly bar: number;
  readonly expected: Expected;
  readonly tolerance: number;
  /** Undefined when no wrapper computes it (then it must be in NOT_COVERED). */
  readonly computation: Computation | undefined;
}

function computation<Output>(create: () => StreamingIndicator<Bar, Output>, read: (value: Output) => Expected): Computation {
  return {
    run: (bars, at) => {
      const indicator = create();
      let value: Output | undefined;
      for (const bar of bars.slice(0, at + 1)) value = indicator.update(bar);
      return value === undefined ? undefined : read(value);
    },
  };
}

const same = (value: number): number => value;

const TalibPoint = z.strictObject({
  ind: z.string(),
  params: z.record(z.string(), z.union([z.number(), z.string()])),
  bar: z.number().int().nonnegative(),
  value: z.union([z.number(), z.record(z.string(), z.number())]),
  /** NATR points also give the ATR they imply (NATR × close / 100). */
  atr_derived: z.number().optional(),
});
type TalibPoint = z.infer<typeof TalibPoint>;

const TalibSource = z.object({
  input: z.string(),
  index_convention: z.string(),
  tolerance_abs: z.number().positive(),
  points: z.array(TalibPoint),
});

const BacktraderSource = z.object({
  input: z.string(),
  index_convention: z.string(),
  points: z.record(
    z.string(),
    z
      .strictObject({ bars: z.array(z.number().int().nonnegative()), values: z.array(z.number()) })
      .refine((p) => p.bars.length === p.values.length, 'bars and values differ in length'),
  ),
});

/**
 * Which params of a TA-Lib point the wrapper reads (numbers) and which descriptive params it
 * satisfies. A point with any other param, or a descriptive value the wrapper does not follow, is
 * not computed (so it must be in NOT_COVERED) rather than computed under the wrong convention.
 */
function talibParamsFit(
  params: TalibPoint['params'],
  numbers: readonly string[],
  descriptive: Readonly<Record<string, (text: string) => boolean>> = {},
): boolean {
  return Object.entries(params).every(([key, value]) =>
    numbers.includes(key) ? typeof value === 'number' : typeof value === 'string' && (descriptive[key]?.(value) ?? false),
  );
}

const anyNote = { note: (): boolean => true };

/** TA-Lib conventions: EMA seeded by SMA, MACD's EMAs aligned, TR from bar 1, population stddev. */
function resolveTalib(point: TalibPoint): Computation | undefined {
  const p = point.params;
  const n = (key: string): number => p[key] as number;
  switch (point.ind) {
    case 'SMA':
      return talibParamsFit(p, ['period']) ? computation(() => sma(n('period')), same) : undefined;
    case 'WMA':
      return talibParamsFit(p, ['period']) ? computation(() => wma(n('period')), same) : undefined;
    case 'EMA':
      return talibParamsFit(p, ['period'], { seed: (s) => s.startsWith('SMA') })
        ? computation(() => ema(n('period'), { seed: 'sma' }), same)
        : undefined;
    case 'RSI':
      return talibParamsFit(p, ['period'], { smoothing: (s) => s === 'Wilder, SMA seed' })
        ? computation(() => rsi(n('period')), same)
        : undefined;
    case 'MACD':
      return talibParamsFit(p, ['fast', 'slow', 'signal'], anyNote)
        ? computation(
            () => macd(n('fast'), n('slow'), n('signal'), { seed: 'sma-aligned' }),
            (v) => ({ macd: v.macd, signal: v.signal, hist: v.histogram }),
          )
        : undefined;
    case 'BBANDS':
      return talibParamsFit(p, ['period', 'k'], { stdev: (s) => s === 'population' })
        ? computation(() => bollinger(n('period'), n('k')), (v) => ({ upper: v.upper, middle: v.middle, lower: v.lower }))
        : undefined;
    case 'NATR':
      return talibParamsFit(p, ['period'], anyNote) ? computation(() => natr(n('period')), same) : undefined;
    case 'STOCH':
      return talibParamsFit(p, ['fastk', 'slowk', 'slowd'], { ma: (s) => s === 'SMA' })
        ? computation(
            () => stochastic(n('fastk'), n('slowk'), n('slowd')),
            (v) => ({ slowk: v.k, slowd: v.d }),
          )
        : undefined;
    case 'WILLR':
      return talibParamsFit(p, ['period']) ? computation(() => williamsR(n('period')), same) : undefined;
    case 'CCI':
      return talibParamsFit(p, ['period']) ? computation(() => cci(n('period')), same) : undefined;
    default:
      return undefined;
  }
}

function parseTalib(name: string, raw: unknown): ReferencePoint[] {
  const source = TalibSource.parse(raw);
  return source.points.flatMap((point) => {
    const numbers = Object.values(point.params).filter((v) => typeof v === 'number');
    const id = `${name} ${point.ind}(${numbers.join(',')}) @${point.bar}`;
    const base = { source: name, bar: point.bar, tolerance: source.tolerance_abs };
    const points: ReferencePoint[] = [{ ...base, id, expected: point.value, computation: resolveTalib(point) }];
    if (point.atr_derived !== undefined) {
      const period = point.params['period'];
      points.push({
        ...base,
        id: `${id} atr_derived`,
        expected: point.atr_derived,
        computation:
          point.ind === 'NATR' && typeof period === 'number' ? computation(() => atr(period), same) : undefined,
      });
    }
    return points;
  });
}

/** backtrader conventions: EMAs (also MACD's) seeded by their own SMA, TR from bar 1, population stddev. */
const BACKTRADER_LINES: Readonly<Record<string, Computation>> = {
  SMA30: computation(() => sma(30), same),
  'EMA30 (SMA seed)': computation(() => ema(30, { seed: 'sma' }), same),
  'SMMA30 (Wilder)': computation(() => smma(30), same),
  WMA30: computation(() => wma(30), same),
  'RSI14 (Wilder, SMA seed)': computation(() => rsi(14), same),
  'ATR14 (Wilder, TR from bar 1)': computation(() => atr(14, { trueRangeFrom: 'second-bar' }), same),
  'MACD12/26/9 macd': computation(() => macd(12, 26, 9, { seed: 'sma' }), (v) => v.macd),
  'MACD signal': computation(() => macd(12, 26, 9, { seed: 'sma' }), (v) => v.signal),
  'MACD histogram': computation(() => macd(12, 26, 9, { seed: 'sma' }), (v) => v.histogram),
  'BBands20/2 mid': computation(() => bollinger(20, 2), (v) => v.middle),
  'BBands20/2 top': computation(() => bollinger(20, 2), (v) => v.upper),
  'BBands20/2 bot': computation(() => bollinger(20, 2), (v) => v.lower),
  'Stochastic14/3/3 %K': computation(() => stochastic(14, 3, 3), (v) => v.k),
  'Stochastic %D': computation(() => stochastic(14, 3, 3), (v) => v.d),
  Momentum12: computation(() => momentum(12), same),
  'ROC12 (fraction)': computation(() => roc(12), same),
  WilliamsR14: computation(() => williamsR(14), same),
};

function parseBacktrader(name: string, raw: unknown): ReferencePoint[] {
  const source = BacktraderSource.parse(raw);
  // "printed with 6 decimals": a printed value is within half a unit of the last digit.
  const decimals = /printed with (\d+) decimals/.exec(source.index_convention)?.[1];
  if (decimals === undefined) throw new Error(`${name}: index_convention states no precision to derive a tolerance from`);
  const tolerance = 0.5 * 10 ** -Number(decimals);
  return Object.entries(source.points).flatMap(([line, { bars, values }]) =>
    bars.map((bar, i) => ({
      id: `${name} ${line} @${bar}`,
      source: name,
      bar,
      expected: values[i] ?? Number.NaN,
      tolerance,
      computation: BACKTRADER_LINES[line],
    })),
  );
}

const PARSERS: Readonly<Record<string, (name: string, raw: unknown) => ReferencePoint[]>> = {
  talib_regtest: parseTalib,
  backtrader: parseBacktrader,
};

function readBars(file: URL): Bar[] {
  const [header = '', ...lines] = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const columns = header.split(',').map((column) => column.trim().toLowerCase());
  const column = (name: string): number => {
    const index = columns.indexOf(name);
    if (index < 0) throw new Error(`${fileURLToPath(file)}: no '${name}' column`);
    return index;
  };
  const [open, high, low, close, volume] = ['open', 'high', 'low', 'close', 'volume'].map(column);
  return lines.map((line, row) => {
    const cells = line.split(',');
    const number = (index: number | undefined): number => {
      const value = Number(cells[index ?? -1]);
      if (!Number.isFinite(value)) throw new Error(`${fileURLToPath(file)}: row ${row + 1} has no number in column ${index}`);
      return value;
    };
    return { open: number(open), high: number(high), low: number(low), close: number(close), volume: number(volume) };
  });
}

function expectWithin(id: string, actual: Expected | undefined, expected: Expected, tolerance: number): void {
  expect(actual, `${id}: no value (not warmed up)`).toBeDefined();
  const pairs: [string, number | undefined, number][] =
    typeof expected === 'number'
      ? [['value', typeof actual === 'number' ? actual : undefined, expected]]
      : Object.entries(expected).map(([key, value]) => [key, typeof actual === 'object' ? actual[key] : undefined, value]);
  if (typeof expected === 'object' && typeof actual === 'object') {
    expect(Object.keys(actual).sort(), `${id}: fields`).toEqual(Object.keys(expected).sort());
  }
  for (const [key, got, want] of pairs) {
    expect(got, `${id} ${key}`).toBeTypeOf('number');
    const error = Math.abs((got ?? Number.NaN) - want);
    expect(error, `${id} ${key}: got ${got}, expected ${want} ± ${tolerance}`).toBeLessThanOrEqual(tolerance);
  }
}

describe('indicators against ../shared/data/reference/indicator_vectors.json', () => {
  const referencePath = fileURLToPath(REFERENCE_DIR);
  if (!existsSync(REFERENCE_DIR)) {
    if (process.env.CI === 'true') {
      it(`needs ${referencePath}`, () => {
        expect.fail(`${referencePath} is absent; CI must provide ../shared/data (see its SOURCES.md)`);
      });
    } else {
      it.skip(`skipped: ${referencePath} is absent (see ../shared/data/SOURCES.md)`, () => {});
    }
    return;
  }

  const vectors = z
    .record(z.string(), z.looseObject({ points: z.unknown().optional() }))
    .parse(JSON.parse(readFileSync(new URL('indicator_vectors.json', REFERENCE_DIR), 'utf8')));
  const sourcesWithPoints = Object.keys(vectors).filter((name) => vectors[name]?.points !== undefined);
  const points = sourcesWithPoints.flatMap((name) => PARSERS[name]?.(name, vectors[name]) ?? []);
  const tested = points.filter((point) => point.computation !== undefined);
  const bars = new Map<string, Bar[]>();
  const barsOf = (source: string): Bar[] => {
    let series = bars.get(source);
    if (series === undefined) {
      const input = INPUT_FILES[source];
      if (input === undefined) throw new Error(`no input file known for source ${source}`);
      series = readBars(new URL(input.file, REFERENCE_DIR));
      bars.set(source, series);
    }
    return series;
  };

  it('knows every source: each one with points has a parser and an input file, the others are listed', () => {
    expect(sourcesWithPoints.filter((name) => PARSERS[name] === undefined || INPUT_FILES[name] === undefined)).toEqual([]);
    expect(Object.keys(vectors).filter((name) => !sourcesWithPoints.includes(name))).toEqual([...SOURCES_WITHOUT_POINTS]);
  });

  it('reads each source from the input file the JSON names', () => {
    for (const name of sourcesWithPoints) {
      const input = INPUT_FILES[name];
      expect(input, name).toBeDefined();
      if (input === undefined) continue;
      expect(String(vectors[name]?.['input']), name).toContain(input.upstream);
      expect(barsOf(name), name).toHaveLength(input.bars);
    }
  });

  it('tests every reference point or lists it in NOT_COVERED, with no stale entries', () => {
    expect(new Set(points.map((point) => point.id)).size, 'point ids are unique').toBe(points.length);
    const untested = points.filter((point) => point.computation === undefined).map((point) => point.id);
    expect(untested.filter((id) => !NOT_COVERED.has(id)), 'points neither tested nor in NOT_COVERED').toEqual([]);
    expect([...NOT_COVERED.keys()].filter((id) => !untested.includes(id)), 'stale NOT_COVERED entries').toEqual([]);
    expect(tested.length).toBeGreaterThan(0);
  });

  it.each(tested.map((point) => [point.id, point] as const))('%s', (_, point) => {
    const series = barsOf(point.source);
    expect(point.bar, `${point.id}: bar beyond the input`).toBeLessThan(series.length);
    expectWithin(point.id, point.computation?.run(series, point.bar), point.expected, point.tolerance);
  });
});

// ---------------------------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------------------------

describe('warm-up', () => {
  // [name, factory, 0-based bar of the first value, as documented on each wrapper]
  const cases: [string, number, () => StreamingIndicator<Bar, unknown>][] = [
    ['sma(5)', 4, () => sma(5)],
    ['wma(5)', 4, () => wma(5)],
    ['ema(5) sma seed', 4, () => ema(5)],
    ['ema(5) first seed', 4, () => ema(5, { seed: 'first' })],
    ['smma(5)', 4, () => smma(5)],
    ['rsi(5)', 5, () => rsi(5)],
    ['bollinger(5, 2)', 4, () => bollinger(5, 2)],
    ['macd(3, 6, 4)', 8, () => macd(3, 6, 4)],
    ['macd(3, 6, 4) sma-aligned', 8, () => macd(3, 6, 4, { seed: 'sma-aligned' })],
    ['macd(3, 6, 4) first', 5, () => macd(3, 6, 4, { seed: 'first' })],
    ['stochastic(5, 3, 3)', 8, () => stochastic(5, 3, 3)],
    ['stochastic(5, 1, 3)', 6, () => stochastic(5, 1, 3)],
    ['atr(5)', 5, () => atr(5)],
    ['atr(5) first-bar', 4, () => atr(5, { trueRangeFrom: 'first-bar' })],
    ['natr(5)', 5, () => natr(5)],
    ['natr(5) first-bar', 4, () => natr(5, { trueRangeFrom: 'first-bar' })],
    ['cci(5)', 4, () => cci(5)],
    ['williamsR(5)', 4, () => williamsR(5)],
    ['momentum(5)', 5, () => momentum(5)],
    ['roc(5)', 5, () => roc(5)],
  ];

  it.each(cases)('%s answers undefined until bar %i, then a value on every bar', (_, firstBar, create) => {
    const indicator = create();
    expect(indicator.warmupBars).toBe(firstBar + 1);
    SYNTHETIC.forEach((bar, index) => {
      const value = indicator.update(bar);
      expect(value === undefined, `bar ${index}`).toBe(index < firstBar);
      expect(indicator.isStable, `bar ${index}`).toBe(index >= firstBar);
      expect(indicator.value).toBe(value);
    });
  });
});

describe('exact values on hand-computed series', () => {
  const u = undefined;
  const priceCases: [string, StreamingIndicator<number, number>, number[], (number | undefined)[]][] = [
    ['sma(3) of 1..5', sma(3), [1, 2, 3, 4, 5], [u, u, 2, 3, 4]],
    ['sma(1) is the price', sma(1), [7, 8, 9], [7, 8, 9]],
    // weights 1, 2, 3 over 6: (1 + 4 + 9) / 6, (2 + 6 + 12) / 6, (3 + 8 + 15) / 6
    ['wma(3) of 1..5', wma(3), [1, 2, 3, 4, 5], [u, u, 14 / 6, 20 / 6, 26 / 6]],
    // seed (2 + 4 + 6) / 3 = 4; alpha 0.5: 8/2 + 4/2 = 6; 12/2 + 6/2 = 9
    ['ema(3) sma seed', ema(3), [2, 4, 6, 8, 12], [u, u, 4, 6, 9]],
    // from 2: 3, 4.5, 6.25, 9.125; the first two withheld
    ['ema(3) first seed', ema(3, { seed: 'first' }), [2, 4, 6, 8, 12], [u, u, 4.5, 6.25, 9.125]],
    // seed 4; 4 + (8 - 4) / 3 = 16/3; 16/3 + (12 - 16/3) / 3 = 68/9
    ['smma(3)', smma(3), [2, 4, 6, 8, 12], [u, u, 4, 16 / 3, 68 / 9]],
    // changes +1 -1 +1 +1: gain/loss 0.5/0.5 -> 50; 0.75/0.25 -> 75; 0.875/0.125 -> 87.5
    ['rsi(2) Wilder', rsi(2), [1, 2, 1, 2, 3], [u, u, 50, 75, 87.5]],
    ['momentum(2)', momentum(2), [10, 11, 13, 12], [u, u, 3, 1]],
    ['roc(2) as a fraction', roc(2), [10, 11, 12.5, 11], [u, u, 0.25, 0]],
  ];

  it.each(priceCases)('%s', (_, indicator, inputs, expected) => {
    const actual = run(indicator, inputs);
    expect(actual).toHaveLength(expected.length);
    actual.forEach((value, i) => {
      const want = expected[i];
      if (want === undefined) expect(value).toBeUndefined();
      else expect(value).toBeCloseTo(want, 12);
    });
  });

  it('bollinger(2, 2) uses the population deviation', () => {
    // [1, 3]: mean 2, population deviation 1 (the sample deviation would be sqrt 2)
    expect(run(bollinger(2, 2), [1, 3])).toEqual([u, { upper: 4, middle: 2, lower: 0 }]);
  });

  const bars: HighLowClose[] = [
    { high: 10, low: 8, close: 9 },
    { high: 11, low: 9, close: 10 }, // TR max(2, |11 - 9|, |9 - 9|) = 2
    { high: 13, low: 10, close: 12 }, // TR max(3, |13 - 10|, |10 - 10|) = 3
    { high: 12, low: 11, close: 11.5 }, // TR max(1, |12 - 12|, |11 - 12|) = 1
  ];

  it('atr(2) starts its true range at bar 1 by default, or at bar 0 with first-bar', () => {
    // TR 2, 3 -> 2.5; 2.5 + (1 - 2.5) / 2 = 1.75
    expect(run(atr(2), bars)).toEqual([u, u, 2.5, 1.75]);
    // TR 2 (high - low), 2 -> 2; 2 + (3 - 2) / 2 = 2.5; 2.5 + (1 - 2.5) / 2 = 1.75
    expect(run(atr(2, { trueRangeFrom: 'first-bar' }), bars)).toEqual([u, 2, 2.5, 1.75]);
    expect(run(natr(2), bars)).toEqual([u, u, (100 * 2.5) / 12, (100 * 1.75) / 11.5]);
    expect(run(natr(2, { trueRangeFrom: 'first-bar' }), bars)).toEqual([u, 20, (100 * 2.5) / 12, (100 * 1.75) / 11.5]);
  });

  it('williamsR(2) and stochastic(2, 1, 1)', () => {
    // bars 0-1: highest 11, lowest 8, close 10; bars 1-2: 13, 9, 12; bars 2-3: 13, 10, 11.5
    const r = run(williamsR(2), bars);
    expect(r[0]).toBeUndefined();
    [-100 / 3, -25, -50].forEach((want, i) => expect(r[i + 1]).toBeCloseTo(want, 12));
    const s = run(stochastic(2, 1, 1), bars);
    expect(s[0]).toBeUndefined();
    [200 / 3, 75, 50].forEach((want, i) => {
      expect(s[i + 1]?.k).toBeCloseTo(want, 12);
      expect(s[i + 1]?.d).toBe(s[i + 1]?.k);
    });
  });

  it('cci(2)', () => {
    // typical prices 9, 10, 35/3: mean 9.5, mean deviation 0.5 -> 0.5 / (0.015 * 0.5)
    const [, second] = run(cci(2), bars);
    expect(second).toBeCloseTo(0.5 / (0.015 * 0.5), 10);
  });
});

describe('macd', () => {
  const closes = SYNTHETIC.map((bar) => bar.close);

  it('with sma seeds is ema(fast) - ema(slow) and its signal is an ema of that line', () => {
    const fast = run(ema(5), closes);
    const slow = run(ema(9), closes);
    const line = slow.map((s, i) => (s === undefined ? undefined : (fast[i] ?? Number.NaN) - s));
    const signal = ema(4);
    const expected = line.map((value) => {
      if (value === undefined) return undefined;
      const sig = signal.update(value);
      return sig === undefined ? undefined : { macd: value, signal: sig, histogram: value - sig };
    });
    expect(run(macd(5, 9, 4), closes)).toEqual(expected);
  });

  it('sma-aligned seeds the fast EMA over the fast bars ending where the slow EMA starts', () => {
    const fast = run(ema(5), closes.slice(9 - 5));
    const slow = run(ema(9), closes);
    const actual = run(macd(5, 9, 4, { seed: 'sma-aligned' }), closes);
    for (let i = 9 + 4 - 2; i < closes.length; i++) {
      expect(actual[i]?.macd, `bar ${i}`).toBeCloseTo((fast[i - 4] ?? Number.NaN) - (slow[i] ?? Number.NaN), 10);
    }
    expect(actual[20]?.macd).not.toBeCloseTo(run(macd(5, 9, 4), closes)[20]?.macd ?? Number.NaN, 6);
  });

  it('with first seeds starts every EMA from its first input', () => {
    const fast = run(ema(5, { seed: 'first' }), closes);
    const slow = run(ema(9, { seed: 'first' }), closes);
    const actual = run(macd(5, 9, 4, { seed: 'first' }), closes);
    expect(actual[8]).toEqual({ macd: expect.any(Number) as number, signal: actual[8]?.macd, histogram: 0 });
    for (let i = 8; i < closes.length; i++) {
      expect(actual[i]?.macd, `bar ${i}`).toBeCloseTo((fast[i] ?? Number.NaN) - (slow[i] ?? Number.NaN), 10);
    }
  });
});

describe("the wrappers that compute as trading-signals does (to keep their state) give its objects' very values", () => {
  // Stochastic, CCI, momentum and the true range keep their state themselves (the library keeps it in
  // private fields; see indicators.ts); fed the same bars, they answer what the library's objects answer, bit for bit.
  const same = (mine: readonly unknown[], theirs: readonly unknown[]): void => expect(mine.map(exact)).toEqual(theirs.map(exact));
  const library = <Output>(indicator: { add(input: never): Output | null }, inputs: readonly unknown[]): (Output | undefined)[] =>
    inputs.map((input) => indicator.add(input as never) ?? undefined);

  it.each(Array.from({ length: 20 }, (_, i) => i + 1))('seed %i', (seed) => {
    const rng = Rng.seeded(seed);
    const bars = randomSteps(rng, ['AAA'], 150, { flatChance: rng.pick([0, 0.2]) }).map((step) => step[0] as Bar);
    const closes = bars.map((bar) => bar.close);
    const period = rng.int(1, 20);
    const [k, slowing, d] = [rng.int(1, 15), rng.int(1, 5), rng.int(1, 5)];
    same(run(stochastic(k, slowing, d), bars), library(new StochasticOscillator({ kPeriod: k, kSlowingPeriod: slowing, dPeriod: d }), bars).map((v) => (v === undefined ? v : { k: v.stochK, d: v.stochD })));
    same(run(cci(period), bars), library(new CCI(period), bars));
    same(run(momentum(period), closes), library(new MOM(period), closes));
    same(run(atr(period, { trueRangeFrom: 'first-bar' }), bars), library(new ATR(period), bars));
    same(run(natr(period, { trueRangeFrom: 'first-bar' }), bars), library(new NATR(period), bars));
    // second-bar: the library's TR with bar 0 dropped, into its WSMA.
    const trueRange = new TR();
    const wilder = new WSMA(period);
    same(
      run(atr(period), bars),
      bars.map((bar, i) => {
        const range = trueRange.add(bar) as number;
        return i === 0 ? undefined : (wilder.add(range) ?? undefined);
      }),
    );
    same(run(rsi(period), closes), library(new RSI(period), closes));
    same(run(smma(period), closes), library(new WSMA(period), closes));
  });
});

const DAILY_DIR = new URL('../../../shared/data/daily/', import.meta.url);

describe.skipIf(!existsSync(DAILY_DIR) && process.env.CI !== 'true')('sma: the values of trading-signals SMA, bit for bit, on the real daily closes', () => {
  // sma() keeps its window in a ring instead of the library's array (for speed) and sums it in the
  // library's order: every value must be the library's exactly, or crossovers move (indicators.ts).
  it.each(['AAPL', 'SPY', 'NVDA', 'KO'])('%s, periods 1, 2, 3, 7, 50, 200', (symbol) => {
    const closes = readFileSync(new URL(`${symbol}.csv`, DAILY_DIR), 'utf8').trim().split('\n').slice(1).map((line) => Number(line.split(',')[4]));
    expect(closes.length).toBeGreaterThan(5000);
    for (const period of [1, 2, 3, 7, 50, 200]) {
      const library = new SMA(period);
      const theirs = closes.map((close) => library.add(close) ?? undefined);
      expect(run(sma(period), closes).map(exact), `${symbol} sma(${period})`).toEqual(theirs.map(exact));
    }
  });
});

describe('instances', () => {
  it('two instances do not share state, even when updated in turn', () => {
    const a = ema(10);
    const b = ema(10);
    const reversed = [...SYNTHETIC].reverse();
    const interleaved = SYNTHETIC.map((bar, i) => [a.update(bar), b.update(reversed[i] ?? bar)]);
    expect(interleaved.map(([x]) => x)).toEqual(run(ema(10), SYNTHETIC));
    expect(interleaved.map(([, y]) => y)).toEqual(run(ema(10), reversed));
  });

  it('reset() forgets every bar: the same bars give the same answers again', () => {
    const makers: (() => StreamingIndicator<Bar, unknown>)[] = [
      () => rsi(14),
      () => macd(12, 26, 9, { seed: 'sma-aligned' }),
      () => atr(14),
      () => stochastic(14, 3, 3),
      () => bollinger(20, 2),
    ];
    for (const make of makers) {
      const indicator = make();
      const first = run(indicator, SYNTHETIC);
      indicator.reset();
      expect(indicator.isStable).toBe(false);
      expect(indicator.value).toBeUndefined();
      expect(run(indicator, SYNTHETIC)).toEqual(first);
    }
  });

  it('price indicators read a bar close like the bare price', () => {
    expect(run(rsi(14), SYNTHETIC)).toEqual(run(rsi(14), SYNTHETIC.map((bar) => bar.close)));
  });
});

describe('invalid input', () => {
  const cases: [string, string, () => unknown][] = [
    ['period 0', 'period', () => sma(0)],
    ['fractional period', 'period', () => ema(2.5)],
    ['unknown ema seed', 'seed', () => ema(3, { seed: 'middle' as 'sma' })],
    ['fast not shorter than slow', 'fast', () => macd(26, 12, 9)],
    ['negative stdDevs', 'stdDevs', () => bollinger(20, -2)],
    ['unknown trueRangeFrom', 'trueRangeFrom', () => atr(14, { trueRangeFrom: 'zeroth' as 'first-bar' })],
    ['NaN price', 'price', () => sma(3).update(Number.NaN)],
    ['infinite close', 'close', () => sma(3).update({ close: Number.POSITIVE_INFINITY })],
    ['bar without a high', 'high', () => atr(3).update({ low: 1, close: 1 } as HighLowClose)],
  ];

  it.each(cases)('%s throws an InvalidInputError naming %s', (_, field, act) => {
    expect(act).toThrow(InvalidInputError);
    expect(act).toThrow(new RegExp(`^${field}: `));
  });
});
