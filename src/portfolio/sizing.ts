import { InvalidInputError } from '../core/index.js';

/** Turns a price and the current equity into an order quantity (units, never negative). */
export interface Sizer {
  /** What the sizer does, for reports: `fixed-quantity` or `fraction-of-equity`. */
  readonly kind: 'fixed-quantity' | 'fraction-of-equity';
  /**
   * Units to trade at `price` with `equity` available.
   * @throws InvalidInputError when `price` is not finite and > 0, or `equity` is not finite.
   */
  quantity(price: number, equity: number): number;
}

/** Options of {@link fractionOfEquity}. */
export interface FractionOfEquityOptions {
  /** Round down to whole units (shares, contracts); otherwise fractional units (crypto). */
  wholeUnits: boolean;
}

/**
 * Slack when rounding down to whole units, so that a quotient such as 0.3 × 1000 / 100 =
 * 2.9999999999999996 gives 3 and not 2.
 */
const WHOLE_UNIT_TOLERANCE = 1e-9;

/**
 * Always `units`, whatever the price and equity.
 * @throws InvalidInputError when `units` is not a finite number >= 0.
 */
export function fixedQuantity(units: number): Sizer {
  if (!Number.isFinite(units) || units < 0) {
    throw new InvalidInputError('units', `must be a finite number >= 0, got ${units}`);
  }
  return Object.freeze({
    kind: 'fixed-quantity' as const,
    quantity(price: number, equity: number): number {
      validateInputs(price, equity);
      return units;
    },
  });
}

/**
 * Spends `fraction` of equity: `fraction × max(equity, 0) / price` units.
 * - `wholeUnits: true` rounds **down** to an integer (never spends more than the budget), after
 *   adding a 1e-9 slack against floating-point error: `floor(q + 1e-9)`.
 * - `wholeUnits: false` returns the quotient unrounded (so the notional equals `fraction × equity`
 *   up to floating-point rounding).
 * Zero or negative equity gives 0. A fraction above 1 means leverage.
 * @throws InvalidInputError when `fraction` is not a finite number >= 0.
 */
export function fractionOfEquity(fraction: number, options: FractionOfEquityOptions): Sizer {
  if (!Number.isFinite(fraction) || fraction < 0) {
    throw new InvalidInputError('fraction', `must be a finite number >= 0, got ${fraction}`);
  }
  const wholeUnits = options.wholeUnits;
  if (typeof wholeUnits !== 'boolean') {
    throw new InvalidInputError('wholeUnits', `must be true or false, got ${JSON.stringify(wholeUnits)}`);
  }
  return Object.freeze({
    kind: 'fraction-of-equity' as const,
    quantity(price: number, equity: number): number {
      validateInputs(price, equity);
      if (equity <= 0) return 0;
      const units = (fraction * equity) / price;
      return wholeUnits ? Math.floor(units + WHOLE_UNIT_TOLERANCE) : units;
    },
  });
}

function validateInputs(price: number, equity: number): void {
  if (!Number.isFinite(price) || price <= 0) throw new InvalidInputError('price', `must be a finite number > 0, got ${price}`);
  if (!Number.isFinite(equity)) throw new InvalidInputError('equity', `must be a finite number, got ${equity}`);
}
