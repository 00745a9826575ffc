/**
 * The exits a one-symbol strategy attaches to its entries (stop-loss, take-profit, trailing stop):
 * the option checks, and the ATR they may be measured in. The venue places and fills them (see
 * "Bracket exits" in src/venue/venue.ts); the strategy only says how far.
 */
import { InvalidInputError, type JsonObject, type SnapshotReader } from '../core/index.js';
import type { Bar } from '../market/index.js';
import type { BracketExits, ExitDistance } from '../venue/index.js';
import { type BarIndicator, atr, prepareIndicatorState, saveIndicatorState } from './indicators.js';
import type { StrategyWarmUp } from './strategy.js';

/**
 * How far an exit is from the entry's fill price (a trailing stop's, from the best price since):
 * `points` in price units, `percent` of the price (2 = 2 %), or `atr`: `multiple` × the average
 * true range of `period` bars (Wilder's, TA-Lib's convention) as of the bar the entry was decided on,
 * the last complete bar before the fill.
 */
export type ExitRule = { readonly points: number } | { readonly percent: number } | { readonly atr: { readonly period: number; readonly multiple: number } };

/** Options `exits` of the one-symbol strategies: at least one of them. */
export interface ExitsOptions {
  readonly stopLoss?: ExitRule;
  readonly takeProfit?: ExitRule;
  readonly trailingStop?: ExitRule;
}

/** The exit fields, in the order errors list them. */
export const EXIT_FIELDS = ['stopLoss', 'takeProfit', 'trailingStop'] as const;

/** Exits checked and ready: what an entry carries, and the ATRs it needs fed. */
export interface CompiledExits {
  /** Feeds a bar of the strategy's symbol to the ATRs (nothing to do without an `atr` rule). */
  readonly update: ((bar: Bar) => void) | undefined;
  /** The exits of an entry decided now; `undefined` while an ATR it needs has no value yet (no entry then). */
  current(): BracketExits | undefined;
  /** The longest ATR warm-up, when an exit is in ATRs. */
  readonly warmUp: StrategyWarmUp | undefined;
  /** ATR periods, for the snapshot's spec (they shape its state); empty without `atr` rules. */
  readonly atrPeriods: readonly number[];
  save(): JsonObject;
  prepare(state: SnapshotReader): () => void;
}

/**
 * Checks `exits` (field names `exits.<exit>.<part>`) and compiles them.
 * @throws InvalidInputError naming the field: an unknown exit, not exactly one of points, percent
 *   and atr, a distance not > 0, a percent not < 100, an ATR period not a whole number >= 1.
 */
export function compileExits(exits: unknown): CompiledExits | undefined {
  if (exits === undefined) return undefined;
  if (typeof exits !== 'object' || exits === null || Array.isArray(exits)) {
    throw new InvalidInputError('exits', `must be an object with ${EXIT_FIELDS.join(', ')}, got ${JSON.stringify(exits)}`);
  }
  const keys = Object.keys(exits);
  const unknown = keys.find((key) => !(EXIT_FIELDS as readonly string[]).includes(key));
  if (unknown !== undefined) throw new InvalidInputError(`exits.${unknown}`, `is not an exit; use ${EXIT_FIELDS.join(', ')}`);
  if (keys.length === 0) throw new InvalidInputError('exits', `must name at least one of ${EXIT_FIELDS.join(', ')}`);
  const averages = new Map<number, BarIndicator>();
  const rules = EXIT_FIELDS.flatMap((field) => {
    const rule: unknown = (exits as Record<string, unknown>)[field];
    if (rule === undefined) return [];
    return [{ field, rule: checkRule(`exits.${field}`, rule) }];
  });
  for (const { rule } of rules) if ('atr' in rule && !averages.has(rule.atr.period)) averages.set(rule.atr.period, atr(rule.atr.period));
  const fixed: Partial<Record<(typeof EXIT_FIELDS)[number], ExitDistance>> = {};
  for (const { field, rule } of rules) if (!('atr' in rule)) fixed[field] = rule;
  const frozen: BracketExits = Object.freeze(fixed);
  const indicators = [...averages].sort(([a], [b]) => a - b);
  if (indicators.length === 0) {
    return { update: undefined, current: () => frozen, warmUp: undefined, atrPeriods: [], save: () => ({}), prepare: () => () => undefined };
  }
  const longest = rules.reduce<{ field: string; period: number } | undefined>((best, { field, rule }) => ('atr' in rule && (best === undefined || rule.atr.period > best.period) ? { field, period: rule.atr.period } : best), undefined) as { field: string; period: number };
  return {
    update: (bar) => {
      for (const [, indicator] of indicators) indicator.update(bar);
    },
    current: () => {
      const out: Partial<Record<(typeof EXIT_FIELDS)[number], ExitDistance>> = { ...fixed };
      for (const { field, rule } of rules) {
        if (!('atr' in rule)) continue;
        const value = (averages.get(rule.atr.period) as BarIndicator).value;
        // An ATR of 0 (bars without range) gives no distance: no exit can be placed that way.
        if (value === undefined || !(value > 0)) return undefined;
        out[field] = { points: value * rule.atr.multiple };
      }
      return out;
    },
    warmUp: { field: `exits.${longest.field}.atr.period`, value: longest.period, bars: (averages.get(longest.period) as BarIndicator).warmupBars },
    atrPeriods: indicators.map(([period]) => period),
    save: () => ({ atr: indicators.map(([, indicator]) => saveIndicatorState(indicator)) }),
    prepare: (state) => {
      const saved = state.array('atr', { min: indicators.length, max: indicators.length });
      const commits = indicators.map(([, indicator], i) => prepareIndicatorState(indicator, saved.object(i)));
      return () => {
        for (const commit of commits) commit();
      };
    },
  };
}

function checkRule(field: string, rule: unknown): ExitRule {
  const parts = typeof rule === 'object' && rule !== null && !Array.isArray(rule) ? Object.keys(rule) : [];
  const known = ['points', 'percent', 'atr'];
  if (parts.length !== 1 || !known.includes(parts[0] as string)) {
    const given = parts.filter((part) => known.includes(part));
    const why = given.length > 1 ? `give one of ${given.join(' and ')}, not both` : 'must be one of { points }, { percent }, { atr: { period, multiple } }';
    throw new InvalidInputError(field, `${why}, got ${JSON.stringify(rule)}`);
  }
  const part = parts[0] as 'points' | 'percent' | 'atr';
  const value: unknown = (rule as Record<string, unknown>)[part];
  if (part === 'atr') {
    const { period, multiple, ...rest } = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw new InvalidInputError(`${field}.atr.${extra}`, 'is not a field of atr; use period and multiple');
    if (typeof period !== 'number' || !Number.isInteger(period) || period < 1) throw new InvalidInputError(`${field}.atr.period`, `must be a whole number of bars >= 1, got ${JSON.stringify(period)}`);
    if (typeof multiple !== 'number' || !Number.isFinite(multiple) || multiple <= 0) throw new InvalidInputError(`${field}.atr.multiple`, `must be a finite number > 0, got ${JSON.stringify(multiple)}`);
    return { atr: { period, multiple } };
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (part === 'percent' && value >= 100)) {
    throw new InvalidInputError(`${field}.${part}`, `must be > 0${part === 'percent' ? ' and < 100' : ''}, got ${JSON.stringify(value)}`);
  }
  return part === 'points' ? { points: value } : { percent: value };
}
