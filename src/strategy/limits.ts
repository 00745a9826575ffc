/**
 * The bounds of the numbers of a spec's strategy entries (indicator periods, thresholds, sizing), and
 * the zod types built on them; the spec's other bounds are in `src/runspec/limits.ts`. A value past a
 * bound is a typo or a hostile input, not a setting: it could not trade, or would spend memory or time
 * without end. They are checked once, when a spec is parsed; nothing here runs per bar. They live with
 * the strategy registry, which is bundled into agents, so that an agent carries no spec loader.
 */
import { z } from 'zod';

/**
 * Longest indicator period or lookback, in bars (crossover periods, momentum and pairs lookbacks,
 * Bollinger and RSI periods, the allocator's volatility window): 40 years of daily bars, a month of
 * minute bars. The window indicators spend time in proportion to their period on every bar
 * (measured here: Bollinger bands 69 µs a bar at 10,000, 1.1 ms at 100,000, which is 19 minutes for
 * a million bars; the pairs regression and the allocator's volatility grow the same way).
 */
export const MAX_PERIOD_BARS = 10_000;

/**
 * Most units (an order size, a position limit, a lot): a trillion, what the largest sum of money a
 * spec may hold (`MAX_MONEY`) buys at a price of 1.
 */
export const MAX_UNITS = 1e12;

/** Largest cost, edge or noise in basis points: 10,000 bps is the whole price. */
export const MAX_BPS = 10_000;

/** Largest rate of change a momentum threshold may name, as a fraction: ±1,000 % over the lookback. */
export const MAX_RATE_OF_CHANGE = 10;

/** Largest exit distance in price units (`exits.*.points`): a trillion, past any price a spec's money can meet. */
export const MAX_PRICE_DISTANCE = 1e12;

/** Largest ATR multiple of an exit (`exits.*.atr.multiple`): a thousand average ranges. */
export const MAX_ATR_MULTIPLE = 1000;

/** Largest hedge ratio (units of one leg per unit of the other): a million. */
export const MAX_HEDGE_RATIO = 1e6;

/**
 * A whole number in [min, max]. A value past a bound is reported against that bound alone (and
 * 1e300 against `max`, not against the largest safe integer as well).
 */
export function wholeNumber(min: number, max: number): z.ZodNumber {
  return z.number().min(min, { abort: true }).max(max, { abort: true }).int();
}

/** A number in [min, max]. */
export function between(min: number, max: number): z.ZodNumber {
  return z.number().min(min).max(max);
}

/** A number in (0, max]. */
export function positiveUpTo(max: number): z.ZodNumber {
  return z.number().positive().max(max);
}

/** A non-empty name (a symbol, a strategy, a venue), trimmed. */
export const name = z.string().trim().min(1);
