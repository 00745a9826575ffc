import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { Rng, errorMessage } from '../core/index.js';
import { type Bar, createSyntheticFeed, loadCsvBars } from '../market/index.js';
import { EndOfDataRule, fixedQuantity, fractionOfEquity } from '../portfolio/index.js';
import { type Strategy, smaCrossover } from '../strategy/index.js';
import type { BacktestOptions } from './engine.js';
import { BacktestSpecError, type SpecProblem } from './errors.js';

const positive = z.number().positive();
const nonNegative = z.number().nonnegative();
const name = z.string().trim().min(1);

const csvData = z.strictObject({
  source: z.literal('csv'),
  /** One CSV file per symbol; `path` is relative to the spec file's folder. */
  files: z.array(z.strictObject({ path: name, symbol: name })).min(1),
  timeZone: name.optional(),
});

const syntheticData = z.strictObject({
  source: z.literal('synthetic'),
  seed: z.int(),
  symbols: z.array(name).min(1),
  barCount: z.int().min(2),
  startTimeMs: z.int().optional(),
  barIntervalMs: z.int().positive().optional(),
  barsPerYear: positive.optional(),
  initialPrice: positive.optional(),
  driftPerYear: z.number().optional(),
  calmVolatilityPerYear: nonNegative.optional(),
  stressedVolatilityPerYear: nonNegative.optional(),
});

const sizing = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('fixed-quantity'), units: nonNegative }),
  z.strictObject({ type: z.literal('fraction-of-equity'), fraction: nonNegative, wholeUnits: z.boolean().default(true) }),
]);

const smaCrossoverSpec = z.strictObject({
  type: z.literal('sma-crossover'),
  name: name.optional(),
  symbol: name,
  fastPeriod: z.int().min(1),
  slowPeriod: z.int().min(2),
  sizing,
});

const venue = z.strictObject({
  fillAt: z.enum(['next-open', 'close']).optional(),
  slippage: z
    .discriminatedUnion('model', [
      z.strictObject({ model: z.literal('none') }),
      z.strictObject({ model: z.literal('bps'), bps: nonNegative }),
      z.strictObject({ model: z.literal('fixed'), amountPerShare: nonNegative }),
    ])
    .optional(),
  fees: z
    .discriminatedUnion('model', [
      z.strictObject({ model: z.literal('none') }),
      z.strictObject({ model: z.literal('fixed'), amountPerOrder: nonNegative }),
      z.strictObject({ model: z.literal('bps'), bps: nonNegative, minimumPerOrder: nonNegative.optional() }),
      z.strictObject({ model: z.literal('per-share'), amountPerShare: nonNegative, minimumPerOrder: nonNegative.optional() }),
    ])
    .optional(),
  partialFills: z
    .union([z.literal(false), z.strictObject({ maxFractionOfBarVolume: z.number().gt(0).lte(1), lotSize: nonNegative.optional() })])
    .optional(),
});

/** The zod schema of a backtest spec (YAML or JSON). */
export const backtestSpecSchema = z
  .strictObject({
    /** The run name, used as the `swarm` part of client order ids. */
    name: name.default('backtest'),
    data: z.discriminatedUnion('source', [csvData, syntheticData]),
    strategies: z.array(smaCrossoverSpec).min(1),
    venue: venue.default({}),
    portfolio: z.strictObject({ initialCash: nonNegative.optional(), longOnly: z.boolean().optional() }).default({}),
    endOfData: z.enum(Object.values(EndOfDataRule) as [EndOfDataRule, ...EndOfDataRule[]]).default(EndOfDataRule.liquidateAtClose),
    periodsPerYear: positive.default(252),
  })
  .superRefine((spec, context) => {
    const symbols = spec.data.source === 'csv' ? spec.data.files.map((file) => file.symbol) : spec.data.symbols;
    const seenSymbols = new Set<string>();
    symbols.forEach((symbol, i) => {
      if (seenSymbols.has(symbol)) {
        const path = spec.data.source === 'csv' ? ['data', 'files', i, 'symbol'] : ['data', 'symbols', i];
        context.addIssue({ code: 'custom', path, message: `each symbol once; ${symbol} appears twice` });
      }
      seenSymbols.add(symbol);
    });
    const names = new Set<string>();
    spec.strategies.forEach((strategy, i) => {
      if (!seenSymbols.has(strategy.symbol)) {
        context.addIssue({ code: 'custom', path: ['strategies', i, 'symbol'], message: `must be one of the data's symbols: ${[...seenSymbols].join(', ')}` });
      }
      if (strategy.slowPeriod <= strategy.fastPeriod) {
        context.addIssue({ code: 'custom', path: ['strategies', i, 'slowPeriod'], message: `must be greater than fastPeriod (${strategy.fastPeriod})` });
      }
      const strategyName = strategy.name ?? defaultName(strategy);
      if (names.has(strategyName)) {
        context.addIssue({ code: 'custom', path: ['strategies', i, 'name'], message: `must be unique; ${strategyName} is already used (set name)` });
      }
      names.add(strategyName);
    });
  });

/** A validated backtest spec, defaults filled in. */
export type BacktestSpec = z.output<typeof backtestSpecSchema>;
type StrategySpec = BacktestSpec['strategies'][number];

function defaultName(strategy: Pick<StrategySpec, 'symbol' | 'fastPeriod' | 'slowPeriod'>): string {
  return `sma-crossover-${strategy.symbol}-${strategy.fastPeriod}-${strategy.slowPeriod}`;
}

/**
 * Validates a parsed spec.
 * @param source what to call the spec in messages (its file name).
 * @throws BacktestSpecError listing every mistake: field, value, what is allowed.
 */
export function parseBacktestSpec(raw: unknown, source = 'backtest spec'): BacktestSpec {
  const result = backtestSpecSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new BacktestSpecError(source, result.error.issues.map((issue) => toProblem(issue, raw)));
}

/**
 * Reads and validates a YAML spec file.
 * @throws BacktestSpecError when the file cannot be read, is not YAML, or has mistakes.
 */
export async function loadBacktestSpec(file: string): Promise<BacktestSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new BacktestSpecError(file, [{ field: '(file)', value: file, allowed: `a readable YAML file (${errorMessage(error)})` }], { cause: error });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new BacktestSpecError(file, [{ field: '(file)', value: file, allowed: `valid YAML (${errorMessage(error)})` }], { cause: error });
  }
  return parseBacktestSpec(raw, file);
}

/**
 * Turns a spec into {@link BacktestOptions}: loads the data (CSV paths relative to `baseDir`) and
 * builds fresh strategies.
 * @throws InvalidInputError from the CSV loader or the synthetic feed, naming the file, line or option.
 */
export async function backtestOptionsFromSpec(spec: BacktestSpec, baseDir: string): Promise<BacktestOptions> {
  const bars = new Map<string, readonly Bar[]>();
  if (spec.data.source === 'csv') {
    const { timeZone } = spec.data;
    for (const file of spec.data.files) {
      bars.set(file.symbol, await loadCsvBars(resolve(baseDir, file.path), file.symbol, timeZone === undefined ? {} : { timeZone }));
    }
  } else {
    const { source: _source, seed, ...options } = spec.data;
    const market = createSyntheticFeed(options).generate(Rng.seeded(seed));
    for (const symbol of spec.data.symbols) bars.set(symbol, market.bars.get(symbol) ?? []);
  }
  return {
    bars,
    strategies: spec.strategies.map(buildStrategy),
    venue: spec.venue,
    portfolio: spec.portfolio,
    endOfData: spec.endOfData,
    periodsPerYear: spec.periodsPerYear,
    swarm: spec.name,
  };
}

/** Loads a spec file and its data; CSV paths resolve relative to the spec file's folder. */
export async function loadBacktestOptions(file: string): Promise<BacktestOptions> {
  return backtestOptionsFromSpec(await loadBacktestSpec(file), dirname(resolve(file)));
}

function buildStrategy(spec: StrategySpec): Strategy {
  const sizer = spec.sizing.type === 'fixed-quantity' ? fixedQuantity(spec.sizing.units) : fractionOfEquity(spec.sizing.fraction, { wholeUnits: spec.sizing.wholeUnits });
  return smaCrossover({ symbol: spec.symbol, fastPeriod: spec.fastPeriod, slowPeriod: spec.slowPeriod, sizing: sizer, name: spec.name ?? defaultName(spec) });
}

function toProblem(issue: z.core.$ZodIssue, raw: unknown): SpecProblem {
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
      return { field: issue.keys.map((key) => formatPath([...path, key])).join(', '), value: issue.keys.length === 1 ? valueAt(value, issue.keys) : undefined, allowed: 'is not a known field; remove it or check its spelling' };
    case 'invalid_union':
      if ((issue as { discriminator?: string }).discriminator !== undefined || issue.errors.length === 0) {
        return { field, value, allowed: issue.message.replace(/^Invalid discriminator value\. Expected /, 'must be one of ') };
      }
      return { field, value, allowed: `matches none of the allowed forms (${issue.message})` };
    default:
      return { field, value, allowed: issue.message };
  }
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
