/**
 * The bounds of a spec's numbers, and the zod types built on them. A value past a bound is
 * a typo or a hostile input, not a setting: it could not trade, or would spend memory or time without
 * end. They are checked once, when a spec is parsed; nothing here runs per bar. The bounds of the
 * strategy entries (periods, thresholds, sizing, and the units, bps and hedge ratios other fields
 * share) are the strategy registry's: `src/strategy/limits.ts`.
 */

/**
 * Largest sum of money (initial cash, a fee per order): a trillion. Cents stay exact in a double up to
 * 2^53 cents (about 9e13), so a run can grow ninety-fold before its cents blur.
 */
export const MAX_MONEY = 1e12;

/** Largest price or amount per unit (an initial price, a spread, slippage or a fee per share): a billion. */
export const MAX_PRICE = 1e9;

/**
 * Largest exposure limit, as a multiple of equity. The portfolio has no margin or leverage setting
 * (and a strategy's sizing is at most its equity), so a limit beyond 100 times equity limits nothing.
 */
export const MAX_EXPOSURE = 100;

/** Largest annual drift or volatility of a synthetic market, as a fraction: 1,000 % a year. */
export const MAX_RATE_PER_YEAR = 10;

/** Largest vote weight: weights are relative, and at a million to one the lighter voter no longer counts. */
export const MAX_VOTE_WEIGHT = 1e6;

/** Most orders a rate limit may allow in its window: a limit past a million orders limits nothing. */
export const MAX_ORDERS_PER_WINDOW = 1e6;

/** Most bars (or periods) in a year: one a millisecond, the resolution of bar times. */
export const MAX_PERIODS_PER_YEAR = 365 * 86_400_000;

/** Largest time a `Date` holds, either side of the epoch, in ms. */
export const MAX_DATE_MS = 8_640_000_000_000_000;
