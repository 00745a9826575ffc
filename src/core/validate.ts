import { InvalidInputError } from './errors.js';

/**
 * `value` when it is a whole number from `min` to `max` (inclusive), for compiling options.
 * @default max Number.MAX_SAFE_INTEGER (then the message says only `>= min`)
 * @throws InvalidInputError naming `field`, the range and the value given.
 */
export function wholeNumber(field: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InvalidInputError(field, `must be a whole number ${range}, got ${String(value)}`);
  }
  return value;
}

/**
 * `value` when it is a finite number, for compiling options.
 * @throws InvalidInputError naming `field` and the value given.
 */
export function finiteNumber(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidInputError(field, `must be a finite number, got ${String(value)}`);
  return value;
}
