import { z } from 'zod';
import { InvalidInputError } from '../core/index.js';
import { type Sizer, fixedQuantity, fractionOfEquity } from '../portfolio/index.js';
import { crossVenueArbitrage } from './arbitrage.js';
import { emaCrossover, smaCrossover } from './crossover.js';
import { MAX_ATR_MULTIPLE, MAX_BPS, MAX_HEDGE_RATIO, MAX_PERIOD_BARS, MAX_PRICE_DISTANCE, MAX_RATE_OF_CHANGE, MAX_UNITS, between, name, positiveUpTo, wholeNumber } from './limits.js';
import { meanReversion } from './mean-reversion.js';
import { momentumStrategy } from './momentum.js';
import { pairs } from './pairs.js';
import { SIDES, Side } from './rules.js';
import type { RestorableStrategy } from './snapshot.js';

// The strategy entries of a spec, apart from the rest of the spec so that a swarm agent, which
// builds its strategies from them, does not carry the YAML and CSV loaders in its bundle.

/** An indicator period or lookback of at least `min` bars. */
const period = (min: number): z.ZodNumber => wholeNumber(min, MAX_PERIOD_BARS);
const rateOfChange = between(-MAX_RATE_OF_CHANGE, MAX_RATE_OF_CHANGE);
/** An RSI level: the RSI lives in [0, 100]. */
const rsiLevel = between(0, 100);

const sizing = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('fixed-quantity'), units: positiveUpTo(MAX_UNITS) }),
  // At most all of the equity: the portfolio has no margin or leverage setting to lend the rest.
  // sizeAt: the price the count is computed at, the signal bar's close or the fill (the next open).
  z.strictObject({
    type: z.literal('fraction-of-equity'),
    fraction: positiveUpTo(1),
    wholeUnits: z.boolean().default(true),
    sizeAt: z.enum(['signal-close', 'fill-price']).default('signal-close'),
  }),
]);

/** A strategy entry's `sizing`, validated. */
export type SizingSpec = z.output<typeof sizing>;

/** The sizer a `sizing` entry names. */
export function sizerOf(spec: SizingSpec): Sizer {
  return spec.type === 'fixed-quantity' ? fixedQuantity(spec.units) : fractionOfEquity(spec.fraction, { wholeUnits: spec.wholeUnits });
}

/**
 * One exit's distance: exactly one of `points`, `percent` (of the entry's fill price) or `atr`
 * (`multiple` × the ATR of `period` bars at the signal). See `ExitsOptions`.
 */
const exitRule = z
  .strictObject({
    points: positiveUpTo(MAX_PRICE_DISTANCE).optional(),
    percent: z.number().gt(0).lt(100).optional(),
    atr: z.strictObject({ period: period(1), multiple: positiveUpTo(MAX_ATR_MULTIPLE) }).optional(),
  })
  .superRefine((rule, context) => {
    const given = (['points', 'percent', 'atr'] as const).filter((key) => rule[key] !== undefined);
    if (given.length === 0) context.addIssue({ code: 'custom', path: [], message: 'needs one of points, percent or atr: { period, multiple }' });
    if (given.length > 1) context.addIssue({ code: 'custom', path: [given[1] as string], message: `give one of ${given.join(' and ')}, not both` });
  });

/** Exits attached to every entry of a one-symbol strategy (stop-loss, take-profit, trailing stop). */
const exits = z
  .strictObject({ stopLoss: exitRule.optional(), takeProfit: exitRule.optional(), trailingStop: exitRule.optional() })
  .refine((value) => Object.values(value).some((rule) => rule !== undefined), { message: 'needs at least one of stopLoss, takeProfit, trailingStop', when: (payload) => payload.issues.length === 0 })
  .optional();

/** The sides a one-symbol strategy opens; absent means `long` (see {@link sideOf}). */
const side = z.enum(SIDES as [Side, ...Side[]]).optional();
/** The older form of `side` (momentum and mean reversion): `true` is `both`, `false` is `long`. */
const allowShort = z.boolean().optional();

const crossoverFields = {
  name: name.optional(),
  symbol: name,
  fastPeriod: period(1),
  slowPeriod: period(2),
  side,
  exits,
  sizing,
};

const meanReversionFields = {
  type: z.literal('mean-reversion'),
  name: name.optional(),
  symbol: name,
  side,
  allowShort,
  exits,
  sizing,
};

/** Every strategy type, told apart by `type` (and `indicator` for mean reversion). */
export const strategySpecSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sma-crossover'), ...crossoverFields }),
  z.strictObject({ type: z.literal('ema-crossover'), ...crossoverFields }),
  z.strictObject({
    type: z.literal('momentum'),
    name: name.optional(),
    symbol: name,
    lookback: period(1),
    entryThreshold: rateOfChange,
    exitThreshold: rateOfChange,
    side,
    allowShort,
    exits,
    sizing,
  }),
  z.discriminatedUnion('indicator', [
    z.strictObject({ ...meanReversionFields, indicator: z.literal('bollinger'), period: period(2).optional(), stdDevs: z.number().positive().optional() }),
    z.strictObject({
      ...meanReversionFields,
      indicator: z.literal('rsi'),
      period: period(1).optional(),
      oversold: rsiLevel.optional(),
      exitLevel: rsiLevel.optional(),
    }),
  ]),
  z.strictObject({
    type: z.literal('pairs'),
    name: name.optional(),
    symbolA: name,
    symbolB: name,
    lookback: period(2),
    hedgeRatio: positiveUpTo(MAX_HEDGE_RATIO).optional(),
    entryZ: z.number().positive(),
    exitZ: z.number().nonnegative(),
    /** Round the B leg to whole units. @default the sizing's wholeUnits (fraction-of-equity), else false */
    wholeUnits: z.boolean().optional(),
    sizing,
  }),
  z.strictObject({
    type: z.literal('cross-venue-arbitrage'),
    name: name.optional(),
    symbolA: name,
    symbolB: name,
    minEdgeBps: between(0, MAX_BPS),
    exitEdgeBps: between(-MAX_BPS, MAX_BPS),
    feeBpsPerFill: between(0, MAX_BPS).optional(),
    sizing,
  }),
]);

/** The object schemas of {@link strategySpecSchema}, the nested unions (mean reversion by `indicator`) flattened. */
const STRATEGY_FORMS: ReadonlyArray<z.ZodObject> = strategySpecSchema.options.flatMap((option): z.ZodObject[] => ('options' in option ? [...option.options] : [option]));

/**
 * The fields a strategy entry may have, for an entry whose `type` (and, for mean reversion,
 * `indicator` when given) names a known strategy; `undefined` for any other entry.
 */
export function strategyFieldsOf(entry: unknown): { readonly type: string; readonly fields: readonly string[] } | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const { type, indicator } = entry as { type?: unknown; indicator?: unknown };
  const literal = (form: z.ZodObject, key: string): unknown => (form.shape[key] as z.ZodLiteral | undefined)?.value;
  const forms = STRATEGY_FORMS.filter((form) => literal(form, 'type') === type && (indicator === undefined || !('indicator' in form.shape) || literal(form, 'indicator') === indicator));
  if (forms.length === 0) return undefined;
  return { type: type as string, fields: [...new Set(forms.flatMap((form) => Object.keys(form.shape)))] };
}

/** One validated entry of a spec's `strategies`. */
export type StrategySpec = z.output<typeof strategySpecSchema>;

/**
 * The sides a strategy spec opens: `side`, or from the older `allowShort`, else `long`; two-leg
 * strategies (`pairs`, `cross-venue-arbitrage`) always trade both.
 * @throws InvalidInputError naming `allowShort` when both it and `side` are given.
 */
export function sideOf(spec: StrategySpec): Side {
  if (!('symbol' in spec)) return Side.both;
  const older = 'allowShort' in spec ? spec.allowShort : undefined;
  if (older !== undefined && spec.side !== undefined) {
    throw new InvalidInputError('allowShort', `is the older form of side; give side only (allowShort: true is side: both), got ${String(older)}`);
  }
  return spec.side ?? (older === true ? Side.both : Side.long);
}

/**
 * A fresh strategy for a strategy spec; its state can be saved and restored ({@link RestorableStrategy}).
 * @throws InvalidInputError from the strategy's constructor, naming its field.
 */
export function buildStrategy(spec: StrategySpec): RestorableStrategy {
  const sizer = sizerOf(spec.sizing);
  const named = spec.name === undefined ? {} : { name: spec.name };
  const sided = 'symbol' in spec ? { side: sideOf(spec), ...(spec.exits === undefined ? {} : { exits: spec.exits }) } : {};
  switch (spec.type) {
    case 'sma-crossover':
      return smaCrossover({ symbol: spec.symbol, fastPeriod: spec.fastPeriod, slowPeriod: spec.slowPeriod, sizing: sizer, ...sided, ...named });
    case 'ema-crossover':
      return emaCrossover({ symbol: spec.symbol, fastPeriod: spec.fastPeriod, slowPeriod: spec.slowPeriod, sizing: sizer, ...sided, ...named });
    case 'momentum':
      return momentumStrategy({
        symbol: spec.symbol,
        lookback: spec.lookback,
        entryThreshold: spec.entryThreshold,
        exitThreshold: spec.exitThreshold,
        sizing: sizer,
        ...sided,
        ...named,
      });
    case 'mean-reversion':
      return spec.indicator === 'bollinger'
        ? meanReversion({ indicator: 'bollinger', symbol: spec.symbol, period: spec.period, stdDevs: spec.stdDevs, sizing: sizer, ...sided, ...named })
        : meanReversion({
            indicator: 'rsi',
            symbol: spec.symbol,
            period: spec.period,
            oversold: spec.oversold,
            exitLevel: spec.exitLevel,
            sizing: sizer,
            ...sided,
            ...named,
          });
    case 'pairs':
      return pairs({
        symbolA: spec.symbolA,
        symbolB: spec.symbolB,
        lookback: spec.lookback,
        hedgeRatio: spec.hedgeRatio,
        entryZ: spec.entryZ,
        exitZ: spec.exitZ,
        wholeUnits: spec.wholeUnits ?? (spec.sizing.type === 'fraction-of-equity' && spec.sizing.wholeUnits),
        sizing: sizer,
        ...named,
      });
    case 'cross-venue-arbitrage':
      return crossVenueArbitrage({
        symbolA: spec.symbolA,
        symbolB: spec.symbolB,
        minEdgeBps: spec.minEdgeBps,
        exitEdgeBps: spec.exitEdgeBps,
        feeBpsPerFill: spec.feeBpsPerFill,
        sizing: sizer,
        ...named,
      });
  }
}

