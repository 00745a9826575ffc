import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InvalidInputError, Rng, errorMessage } from '../core/index.js';
import { compileConsensusOptions, compilePortfolioAllocatorOptions, compileRiskManagerOptions } from '../decision/index.js';
import { type Bar, CsvPrices, MAX_SYNTHETIC_BARS, type OpenSyntheticFeedOptions, type SyntheticFeedOptions, compileSyntheticFeedOptions, createSyntheticFeed, loadCsvBars } from '../market/index.js';
import { EndOfDataRule, RatioConvention } from '../portfolio/index.js';
import {
  MAX_BPS,
  MAX_HEDGE_RATIO,
  MAX_PERIOD_BARS,
  MAX_UNITS,
  type Strategy,
  type StrategySpec,
  between,
  buildStrategy,
  name,
  positiveUpTo,
  sideOf,
  sizerOf,
  strategyFieldsOf,
  strategySpecSchema,
  wholeNumber,
} from '../strategy/index.js';
import { SpecError, type SpecProblem } from './errors.js';
import type { RunOptions } from './options.js';
import { MAX_DATE_MS, MAX_EXPOSURE, MAX_MONEY, MAX_ORDERS_PER_WINDOW, MAX_PERIODS_PER_YEAR, MAX_PRICE, MAX_RATE_PER_YEAR, MAX_VOTE_WEIGHT } from './limits.js';

const fraction = positiveUpTo(1);
const money = between(0, MAX_MONEY);
const perUnit = between(0, MAX_PRICE);
const bps = between(0, MAX_BPS);
/** A window or half-life in bars: no run holds more bars than a synthetic market may, so a longer one means no window. */
const windowBars = wholeNumber(1, MAX_SYNTHETIC_BARS);
const halfLifeBars = positiveUpTo(MAX_SYNTHETIC_BARS);
const ratePerYear = between(0, MAX_RATE_PER_YEAR);

const isoDate = z.iso.date('must be a date YYYY-MM-DD');

/** Header names of a CSV file's columns (`loadCsvBars`' `columns`): `{ date: Date, close: Adj Close }`; `adjClose` only with `prices: adjusted`. */
const csvColumns = z.strictObject({
  date: name.optional(),
  open: name.optional(),
  high: name.optional(),
  low: name.optional(),
  close: name.optional(),
  volume: name.optional(),
  adjClose: name.optional(),
});
/** `loadCsvBars`' `prices`: `as-written`, or `adjusted` (each row's prices scaled by its adjusted close / close). */
const csvPrices = z.enum(Object.values(CsvPrices));

const csvData = z.strictObject({
  source: z.literal('csv'),
  /** One CSV file per symbol; `path` is relative to the spec file's folder; a file's `columns`, `timeZone` and `prices` override the data's. */
  files: z.array(z.strictObject({ path: name, symbol: name, columns: csvColumns.optional(), timeZone: name.optional(), prices: csvPrices.optional() })).min(1),
  /** IANA time zone of zone-less date-times in the files. @default America/New_York */
  timeZone: name.optional(),
  /** Column names of every file, field by field; found by their usual names when absent. */
  columns: csvColumns.optional(),
  /** The prices every file's bars carry (a file's `prices` overrides it). @default as-written */
  prices: csvPrices.optional(),
  /** Only bars from this date on (`YYYY-MM-DD`, UTC midnight), inclusive. */
  from: isoDate.optional(),
  /** Only bars before the end of this date (`YYYY-MM-DD`, UTC), inclusive. */
  to: isoDate.optional(),
});

const syntheticData = z.strictObject({
  source: z.literal('synthetic'),
  seed: z.int(),
  symbols: z.array(name).min(1),
  /** Its upper bound depends on the other series: `compileSyntheticFeedOptions` checks it (and that it is whole). */
  barCount: z.number().min(2),
  startTimeMs: wholeNumber(-MAX_DATE_MS, MAX_DATE_MS).optional(),
  barIntervalMs: wholeNumber(1, MAX_DATE_MS).optional(),
  /** At least one: the generator's time step is a year divided by it. */
  barsPerYear: between(1, MAX_PERIODS_PER_YEAR).optional(),
  initialPrice: positiveUpTo(MAX_PRICE).optional(),
  driftPerYear: between(-MAX_RATE_PER_YEAR, MAX_RATE_PER_YEAR).optional(),
  calmVolatilityPerYear: ratePerYear.optional(),
  stressedVolatilityPerYear: ratePerYear.optional(),
  /** Correlation matrix of the symbols' returns, in the order of `symbols`. */
  correlation: z.array(z.array(z.number())).optional(),
  /** Co-integrated pairs: each adds its `follower` symbol. */
  pairs: z
    .array(
      z.strictObject({
        leader: name,
        follower: name,
        hedgeRatio: positiveUpTo(MAX_HEDGE_RATIO).optional(),
        spreadMean: between(-MAX_PRICE, MAX_PRICE).optional(),
        spreadHalfLifeBars: halfLifeBars.optional(),
        spreadStdDev: perUnit.optional(),
      }),
    )
    .optional(),
  /** The same assets on several venues: adds `SYMBOL@venue` symbols. */
  venues: z
    .strictObject({
      names: z.array(name).min(1),
      symbols: z.array(name).optional(),
      noiseStdDevBps: bps.optional(),
      noiseHalfLifeBars: halfLifeBars.optional(),
    })
    .optional(),
});

const riskSpec = z.strictObject({
  maxPositionUnits: positiveUpTo(MAX_UNITS).optional(),
  maxPositionFraction: positiveUpTo(MAX_EXPOSURE).optional(),
  maxGrossExposure: positiveUpTo(MAX_EXPOSURE).optional(),
  maxOrders: wholeNumber(1, MAX_ORDERS_PER_WINDOW).optional(),
  orderWindowBars: windowBars.optional(),
  reduceAtDrawdown: fraction.optional(),
  haltAtDrawdown: fraction.optional(),
  recoverBelowDrawdown: fraction.optional(),
  drawdownWindowBars: windowBars.optional(),
  allowClosingWhenHalted: z.boolean().optional(),
});

const allocatorSpec = z.discriminatedUnion('weighting', [
  z.strictObject({ weighting: z.literal('equal'), wholeUnits: z.boolean().optional() }),
  z.strictObject({ weighting: z.literal('fixed'), weights: z.record(name, between(0, 1)), wholeUnits: z.boolean().optional() }),
  z.strictObject({ weighting: z.literal('inverse-volatility'), lookbackBars: wholeNumber(2, MAX_PERIOD_BARS).optional(), wholeUnits: z.boolean().optional() }),
]);

const venue = z.strictObject({
  fillAt: z.enum(['next-open', 'close']).optional(),
  slippage: z
    .discriminatedUnion('model', [
      z.strictObject({ model: z.literal('none') }),
      z.strictObject({ model: z.literal('bps'), bps }),
      z.strictObject({ model: z.literal('fixed'), amountPerShare: perUnit }),
    ])
    .optional(),
  fees: z
    .discriminatedUnion('model', [
      z.strictObject({ model: z.literal('none') }),
      z.strictObject({ model: z.literal('fixed'), amountPerOrder: money }),
      z.strictObject({ model: z.literal('bps'), bps, minimumPerOrder: money.optional() }),
      z.strictObject({ model: z.literal('per-share'), amountPerShare: perUnit, minimumPerOrder: money.optional() }),
    ])
    .optional(),
  partialFills: z
    .union([z.literal(false), z.strictObject({ maxFractionOfBarVolume: fraction, lotSize: between(0, MAX_UNITS).optional() })])
    .optional(),
});

/** The zod schema of a spec (YAML or JSON). */
export const specSchema = z
  .strictObject({
    /** The run name, used as the `swarm` part of client order ids. */
    name: name.default('backtest'),
    data: z.discriminatedUnion('source', [csvData, syntheticData]),
    strategies: z.array(strategySpecSchema).min(1),
    /** Risk manager options (limits, drawdown kill switch); none when absent. */
    risk: riskSpec.optional(),
    /** Strategies vote on each new risk in a symbol they trade (threshold, weights); none when absent. */
    consensus: z
      .strictObject({
        threshold: z.union([z.enum(['majority', 'two-thirds', 'unanimity']), z.number().gt(0).lte(1)]),
        weights: z.record(name, between(0, MAX_VOTE_WEIGHT)).optional(),
      })
      .optional(),
    /** Portfolio allocator (weights, budgets, netting); none when absent. */
    allocator: allocatorSpec.optional(),
    venue: venue.default({}),
    portfolio: z.strictObject({ initialCash: money.optional(), longOnly: z.boolean().optional() }).default({}),
    endOfData: z.enum(Object.values(EndOfDataRule) as [EndOfDataRule, ...EndOfDataRule[]]).default(EndOfDataRule.liquidateAtClose),
    periodsPerYear: positiveUpTo(MAX_PERIODS_PER_YEAR).default(252),
    /** How Sharpe and Sortino are computed, and the annual risk-free rate (a fraction, 0.02 = 2 %). */
    statistics: z
      .strictObject({
        convention: z.enum(Object.values(RatioConvention) as [RatioConvention, ...RatioConvention[]]).default(RatioConvention.arithmetic),
        riskFreeRatePerYear: between(-1, 1).default(0),
      })
      .default({ convention: RatioConvention.arithmetic, riskFreeRatePerYear: 0 }),
    /**
     * Holes in the data longer than `threshold` usual intervals and `minimumDays` days: reported, and
     * closed across with `flatten: true`; `false` to not look for them. Default: reported, carried across.
     */
    gaps: z
      .union([z.literal(false), z.strictObject({ threshold: z.number().gt(1).lte(MAX_SYNTHETIC_BARS).optional(), minimumDays: between(0, MAX_DATE_MS / 86_400_000).optional(), flatten: z.boolean().optional() })])
      .optional(),
    /**
     * How `tradeswarm run` deploys the strategies as a swarm (topology, pacing, timeouts). The
     * in-process backtest ignores it, so one spec file runs both ways; `tradeswarm run` validates it.
     */
    swarm: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((spec, context) => {
    /** Adds the problem of a constructor's InvalidInputError under `prefix`; rethrows anything else. */
    const check = (prefix: ReadonlyArray<string | number>, build: () => void): boolean => {
      try {
        build();
        return true;
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
        context.addIssue({ code: 'custom', path: [...prefix, ...parseFieldPath(error.field)], message: allowedPart(error) });
        return false;
      }
    };

    const dataSymbols = spec.data.source === 'csv' ? spec.data.files.map((file) => file.symbol) : spec.data.symbols;
    const seenSymbols = new Set<string>();
    let duplicate = false;
    dataSymbols.forEach((symbol, i) => {
      if (seenSymbols.has(symbol)) {
        const path = spec.data.source === 'csv' ? ['data', 'files', i, 'symbol'] : ['data', 'symbols', i];
        context.addIssue({ code: 'custom', path, message: `each symbol once; ${symbol} appears twice` });
        duplicate = true;
      }
      seenSymbols.add(symbol);
    });
    if (spec.data.source === 'synthetic') {
      const data = spec.data;
      if (!duplicate && syntheticData.safeParse(data).success) check(['data'], () => compileSyntheticFeedOptions(syntheticFeedOptions(data)));
      for (const symbol of generatedSymbols(data)) seenSymbols.add(symbol);
    }

    const names = new Set<string>();
    const built: Strategy[] = [];
    spec.strategies.forEach((strategy, i) => {
      const legs = 'symbol' in strategy ? [['symbol', strategy.symbol] as const] : ([['symbolA', strategy.symbolA], ['symbolB', strategy.symbolB]] as const);
      for (const [field, symbol] of legs) {
        if (typeof symbol === 'string' && !seenSymbols.has(symbol)) {
          context.addIssue({ code: 'custom', path: ['strategies', i, field], message: `must be one of the data's symbols: ${[...seenSymbols].join(', ')}` });
        }
      }
      if (spec.portfolio.longOnly === true && sellsShort(strategy)) {
        const field = !('symbol' in strategy) ? 'type' : strategy.side === undefined ? 'allowShort' : 'side';
        context.addIssue({ code: 'custom', path: ['strategies', i, field], message: `${strategy.type} sells short but portfolio.longOnly is true; set longOnly: false` });
      }
      if (!strategySpecSchema.safeParse(strategy).success) return;
      if (strategy.sizing.type === 'fraction-of-equity' && strategy.sizing.sizeAt === 'fill-price') {
        if (!('symbol' in strategy)) {
          context.addIssue({ code: 'custom', path: ['strategies', i, 'sizing', 'sizeAt'], message: `${strategy.type} sizes its two legs together at the signal; use sizeAt: signal-close` });
        } else if (spec.allocator !== undefined) {
          context.addIssue({ code: 'custom', path: ['strategies', i, 'sizing', 'sizeAt'], message: 'the allocator fits quantities sized at the signal close; remove allocator or use sizeAt: signal-close' });
        }
      }
      check(['strategies', i], () => {
        const instance = buildStrategy(strategy);
        built.push(instance);
        if (names.has(instance.name)) {
          context.addIssue({ code: 'custom', path: ['strategies', i, 'name'], message: `must be unique; ${instance.name} is already used (set name)` });
        }
        names.add(instance.name);
      });
    });
    if (spec.risk !== undefined && riskSpec.safeParse(spec.risk).success) {
      const risk = spec.risk;
      check(['risk'], () => compileRiskManagerOptions(risk));
    }
    if (spec.consensus !== undefined && built.length === spec.strategies.length) {
      const consensus = spec.consensus;
      check(['consensus'], () => compileConsensusOptions(consensus, built));
    }
    if (spec.allocator !== undefined && allocatorSpec.safeParse(spec.allocator).success && built.length === spec.strategies.length) {
      const allocator = spec.allocator;
      check(['allocator'], () => compilePortfolioAllocatorOptions({ ...allocator, strategies: built }));
    }
  });

/** A validated spec, defaults filled in. */
export type Spec = z.output<typeof specSchema>;
type SyntheticDataSpec = z.output<typeof syntheticData>;

/**
 * Validates a parsed spec.
 * @param source what to call the spec in messages (its file name).
 * @throws SpecError listing every mistake: field, value, what is allowed.
 */
export function parseSpec(raw: unknown, source = 'backtest spec'): Spec {
  const result = specSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new SpecError(source, result.error.issues.map((issue) => specProblemOf(issue, raw)));
}

/**
 * Reads and validates a YAML spec file.
 * @throws SpecError when the file cannot be read, is not YAML, or has mistakes.
 */
export async function loadSpec(file: string): Promise<Spec> {
  return parseSpec(await readSpecDocument(file), file);
}

/**
 * Reads a YAML spec file as a document, not yet validated: what `tradeswarm optimize` sets
 * parameters in before each combination is validated with {@link parseSpec}.
 * @throws SpecError when the file cannot be read or is not YAML.
 */
export async function readSpecDocument(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SpecError(file, [{ field: '(file)', value: file, allowed: `a readable YAML file (${errorMessage(error)})` }], { cause: error });
  }
  return parseYamlDocument(text, file);
}

/**
 * Validates a spec given as YAML text (a spec sent to `tradeswarm serve`); `source` names it in errors.
 * @throws SpecError for text that is not YAML, and listing every mistake of the spec.
 */
export function parseSpecText(text: string, source: string): Spec {
  return parseSpec(parseYamlDocument(text, source), source);
}

function parseYamlDocument(text: string, source: string): unknown {
  try {
    return parseYaml(text);
  } catch (error) {
    throw new SpecError(source, [{ field: '(file)', value: source, allowed: `valid YAML (${errorMessage(error)})` }], { cause: error });
  }
}

/**
 * Turns a spec into {@link RunOptions}: loads the data (CSV paths relative to `baseDir`) and
 * builds fresh strategies.
 * @throws InvalidInputError from the CSV loader or the synthetic feed, naming the file, line or option.
 */
export async function runOptionsFromSpec(spec: Spec, baseDir: string): Promise<RunOptions> {
  return runOptionsWithBars(spec, await loadSpecBars(spec, baseDir));
}

/**
 * The bars a spec's `data` names, by symbol: its CSV files (paths relative to `baseDir`, cut to
 * `from`/`to`) or its synthetic market.
 * @throws InvalidInputError from the CSV loader or the synthetic feed, naming the file, line or option.
 */
export async function loadSpecBars(spec: Spec, baseDir: string): Promise<Map<string, readonly Bar[]>> {
  const bars = new Map<string, readonly Bar[]>();
  if (spec.data.source === 'csv') {
    const { from, to } = spec.data;
    const fromMs = from === undefined ? -Infinity : Date.parse(`${from}T00:00:00Z`);
    const toMs = to === undefined ? Infinity : Date.parse(`${to}T00:00:00Z`) + 86_400_000;
    for (const file of spec.data.files) {
      const timeZone = file.timeZone ?? spec.data.timeZone;
      const columns = { ...spec.data.columns, ...file.columns };
      const prices = file.prices ?? spec.data.prices;
      const loaded = await loadCsvBars(resolve(baseDir, file.path), file.symbol, {
        columns,
        ...(timeZone === undefined ? {} : { timeZone }),
        ...(prices === undefined ? {} : { prices }),
      });
      const kept = loaded.filter((bar) => bar.timeMs >= fromMs && bar.timeMs < toMs);
      if (kept.length === 0) throw new InvalidInputError(`data.files[${spec.data.files.indexOf(file)}]`, `${file.path} has no bars from ${from ?? 'the start'} to ${to ?? 'the end'}; widen data.from/data.to`);
      bars.set(file.symbol, kept);
    }
  } else {
    const feed = createSyntheticFeed(syntheticFeedOptions(spec.data));
    const market = feed.generate(Rng.seeded(spec.data.seed));
    for (const symbol of market.symbols) {
      if (symbol !== feed.config.volatilityIndex?.symbol) bars.set(symbol, market.bars.get(symbol) ?? []);
    }
  }
  return bars;
}

/** A spec's synthetic market as a feed makes it, bar time by bar time, instead of held whole (see {@link syntheticDataOf}). */
export interface SyntheticData {
  /**
   * What `openSyntheticFeed` takes to give, step by step, exactly the bars {@link loadSpecBars} holds:
   * the volatility index left out as there (it is not traded; leaving it out changes no other bar).
   */
  readonly feed: OpenSyntheticFeedOptions;
  /** The tradable symbols: the spec's, pair followers, venue symbols. Each has `barCount` bars. */
  readonly symbols: readonly string[];
  readonly barCount: number;
}

/** The synthetic market of a spec whose `data.source` is `synthetic`, as a feed makes it; `undefined` for CSV data. */
export function syntheticDataOf(spec: Spec): SyntheticData | undefined {
  if (spec.data.source !== 'synthetic') return undefined;
  const options = syntheticFeedOptions(spec.data);
  return Object.freeze({
    feed: Object.freeze({ ...options, volatilityIndex: null, seed: spec.data.seed }),
    symbols: Object.freeze(generatedSymbols(spec.data)),
    barCount: compileSyntheticFeedOptions(options).barCount,
  });
}

/** {@link RunOptions} of a spec on bars already loaded (by {@link loadSpecBars}, or a part of them), with fresh strategies. */
export function runOptionsWithBars(spec: Spec, bars: ReadonlyMap<string, readonly Bar[]>): RunOptions {
  const strategies = spec.strategies.map(buildStrategy);
  const fillPriceSizing = Object.fromEntries(
    spec.strategies.flatMap((entry, i) =>
      entry.sizing.type === 'fraction-of-equity' && entry.sizing.sizeAt === 'fill-price' ? [[(strategies[i] as Strategy).name, sizerOf(entry.sizing)] as const] : [],
    ),
  );
  return {
    bars,
    strategies,
    ...(Object.keys(fillPriceSizing).length === 0 ? {} : { fillPriceSizing }),
    ...(spec.risk === undefined ? {} : { risk: spec.risk }),
    ...(spec.allocator === undefined ? {} : { allocator: spec.allocator }),
    ...(spec.consensus === undefined ? {} : { consensus: spec.consensus }),
    venue: spec.venue,
    portfolio: spec.portfolio,
    endOfData: spec.endOfData,
    periodsPerYear: spec.periodsPerYear,
    statistics: spec.statistics,
    swarm: spec.name,
    ...(spec.gaps === undefined ? {} : { gaps: spec.gaps }),
  };
}

/** Loads a spec file and its data; CSV paths resolve relative to the spec file's folder. */
export async function loadRunOptions(file: string): Promise<RunOptions> {
  return runOptionsFromSpec(await loadSpec(file), dirname(resolve(file)));
}

/** Whether a strategy spec can sell short (then a long-only portfolio would refuse its fills). */
function sellsShort(spec: StrategySpec): boolean {
  try {
    return sideOf(spec) !== 'long';
  } catch {
    // Both side and allowShort: building the strategy reports that.
    return false;
  }
}

/** The synthetic feed's options in a spec (everything but `source` and `seed`). */
function syntheticFeedOptions(data: SyntheticDataSpec): SyntheticFeedOptions {
  const { source: _source, seed: _seed, ...options } = data;
  return options;
}

/** The tradable symbols a synthetic spec generates: symbols, pair followers, venue symbols. */
function generatedSymbols(data: SyntheticDataSpec): string[] {
  const venues = data.venues;
  const quoted = venues === undefined ? [] : (venues.symbols ?? data.symbols).flatMap((symbol) => venues.names.map((venue) => `${symbol}@${venue}`));
  return [...data.symbols, ...(data.pairs ?? []).map((pair) => pair.follower), ...quoted];
}

/** `pairs[0].leader` → `['pairs', 0, 'leader']`. */
function parseFieldPath(field: string): Array<string | number> {
  return [...field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((match) => (match[2] === undefined ? (match[1] as string) : Number(match[2])));
}

/** A constructor's message without its field and trailing `, got <value>` (the spec error shows the value). */
function allowedPart(error: InvalidInputError): string {
  return error.detail.replace(/, got [^;]*$/s, '');
}

/** One zod issue of a spec as a {@link SpecProblem}: field path, the value found there in `raw`, what is allowed. */
export function specProblemOf(issue: z.core.$ZodIssue, raw: unknown): SpecProblem {
  const path = issue.path.filter((key): key is string | number => typeof key !== 'symbol');
  const value = valueAt(raw, path);
  const field = formatPath(path) || '(spec)';
  switch (issue.code) {
    case 'invalid_type':
      return { field, value, allowed: value === undefined ? `is required (${issue.expected})` : `must be ${article(issue.expected)}` };
    case 'invalid_value':
      return { field, value, allowed: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` };
    case 'too_small':
      return { field, value, allowed: issue.origin === 'array' ? `must list at least ${String(issue.minimum)} item(s)` : `must be ${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}` };
    case 'too_big':
      return { field, value, allowed: `must be ${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}` };
    case 'unrecognized_keys':
      return {
        field: issue.keys.map((key) => formatPath([...path, key])).join(', '),
        value: issue.keys.length === 1 ? valueAt(value, issue.keys) : undefined,
        allowed: (path.length === 2 && path[0] === 'strategies' ? unsupportedStrategyField(value, issue.keys) : undefined) ?? 'is not a known field; remove it or check its spelling',
      };
    case 'invalid_union':
      if ((issue as { discriminator?: string }).discriminator !== undefined || issue.errors.length === 0) {
        return { field, value, allowed: issue.message.replace(/^Invalid discriminator value\. Expected /, 'must be one of ') };
      }
      return { field, value, allowed: `matches none of the allowed forms (${issue.message})` };
    default:
      return { field, value, allowed: issue.message };
  }
}

/**
 * What to say of fields a strategy entry does not have: a likely misspelling of one of its fields
 * (`did you mean`), or else that this strategy has no such field, with the fields it has, and for a
 * field about going short, the field that does that. `undefined` for an entry of no known type.
 */
function unsupportedStrategyField(entry: unknown, keys: readonly string[]): string | undefined {
  const known = strategyFieldsOf(entry);
  if (known === undefined) return undefined;
  if (keys.includes('exits') && !known.fields.includes('exits')) {
    return `${known.type} cannot have exits: it trades two legs as one position and closes them together; stop-loss, take-profit and trailing stops are for the one-symbol strategies (sma-crossover, ema-crossover, momentum, mean-reversion)`;
  }
  const spelt = keys.map((key) => known.fields.find((field) => isMisspelling(key, field)));
  if (spelt.every((field) => field !== undefined)) return `is not a field of ${known.type}; did you mean ${spelt.join(', ')}?`;
  const short = keys.some((key) => /short/i.test(key)) && known.fields.includes('side') ? '; to trade short use side: short or side: both' : '';
  return `${known.type} has no field ${keys.map((key) => `'${key}'`).join(', ')}; its fields are ${known.fields.join(', ')}${short}`;
}

/**
 * Whether `key` is `field` with a different case, or one edit away (a letter added, dropped, changed
 * or two neighbours swapped). Hand-written: one edit is four string comparisons, and no dependency
 * of the project measures edit distance.
 */
function isMisspelling(key: string, field: string): boolean {
  const a = key.toLowerCase();
  const b = field.toLowerCase();
  if (a === b) return true;
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const restA = a.slice(i);
  const restB = b.slice(i);
  return restA.slice(1) === restB.slice(1) || restA.slice(1) === restB || restA === restB.slice(1) || (restA.length >= 2 && restA[0] === restB[1] && restA[1] === restB[0] && restA.slice(2) === restB.slice(2));
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function valueAt(raw: unknown, path: ReadonlyArray<string | number>): unknown {
  let value = raw;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');
}
