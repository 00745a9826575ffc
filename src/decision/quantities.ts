/** Quantities by symbol, and how an order changes a position: what the decision stages share. */
import { InvalidInputError } from '../core/index.js';

/** Quantities by symbol, as a map or a plain record. */
export type QuantitiesBySymbol = ReadonlyMap<string, number> | Readonly<Record<string, number>>;

/** A copy of `values` as a Map. @throws InvalidInputError naming `field` for a value that is not a finite number. */
export function toQuantityMap(field: string, values: QuantitiesBySymbol): Map<string, number> {
  if (typeof values !== 'object' || values === null) throw new InvalidInputError(field, 'must be a Map or a record of numbers by symbol');
  const entries: Iterable<[string, number]> = values instanceof Map ? values.entries() : Object.entries(values as Record<string, number>);
  const map = new Map<string, number>();
  for (const [symbol, value] of entries) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidInputError(`${field}.${symbol}`, `must be a finite number, got ${String(value)}`);
    map.set(symbol, value);
  }
  return map;
}

/** An order's quantity split by what it does to a position: the part that shrinks it and the part that opens (or grows) one. */
export interface IntentParts {
  /** Units that reduce |position| (0 unless the order is against the position). */
  readonly reducing: number;
  /** Units beyond that: they open or grow a position. */
  readonly opening: number;
}

/** Splits `quantity` on `side` against the signed `position` held before the order. */
export function splitIntent(side: 'buy' | 'sell', quantity: number, position: number): IntentParts {
  const against = side === 'buy' ? position < 0 : position > 0;
  const reducing = against ? Math.min(quantity, Math.abs(position)) : 0;
  return { reducing, opening: quantity - reducing };
}
