/**
 * The bounds of a backtest spec's numbers, and the zod types built on them. A value past a bound is
 * a typo or a hostile input, not a setting: it could not trade, or would spend memory or time without
 * end. They are checked once, when a spec is parsed; nothing here runs per bar. Kept apart from
 * `spec.ts` (no market imports) because `strategies.ts`, which uses them, is bundled into agents.
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
 * Largest sum of money (initial cash, a fee per order): a trillion. Cents stay exact in a double up to
 * 2^53 cents (about 9e13), so a run can grow ninety-fold before its cents blur.
 */
export const MAX_MONEY = 1e12;

/** Largest price or amount per unit (an initial price, a spread, slippage or a fee per share): a billion. */
export const MAX_PRICE = 1e9;

/** Most units (an order size, a position limit, a lot): {@link MAX_MONEY} worth at a price of 1. */
export const MAX_UNITS = 1e12;

/** Largest cost, edge or noise in basis points: 10,000 bps is the whole price. */
export const MAX_BPS = 10_000;

/**
 * Largest exposure limit, as a multiple of equity. The portfolio has no margin or leverage setting
 * (and a strategy's sizing is at most its equity), so a limit beyond 100 times equity limits nothing.
 */
export const MAX_EXPOSURE = 100;

/** Largest rate of change a momentum threshold may name, as a fraction: ±1,000 % over the lookback. */
export const MAX_RATE_OF_CHANGE = 10;

/** Largest annual drift or volatility of a synthetic market, as a fraction: 1,000 % a year. */
export const MAX_RATE_PER_YEAR = 10;

/** Largest hedge ratio (units of one leg per unit of the other): a million. */
export const MAX_HEDGE_RATIO = 1e6;

/** Largest vote weight: weights are relative, and at a million to one the lighter voter no longer counts. */
export const MAX_VOTE_WEIGHT = 1e6;

/** Most orders a rate limit may allow in its window: a limit past a million orders limits nothing. */
export const MAX_ORDERS_PER_WINDOW = 1e6;

/** Most bars (or periods) in a year: one a millisecond, the resolution of bar times. */
export const MAX_PERIODS_PER_YEAR = 365 * 86_400_000;

/** Largest time a `Date` holds, either side of the epoch, in ms. */
export const MAX_DATE_MS = 8_640_000_000_000_000;

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
