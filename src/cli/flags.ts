import { InvalidInputError } from '../core/index.js';

/**
 * A command-line flag's text as a whole number of at least `min`, else an error naming the flag and
 * quoting what was given (commander hands option values over as text).
 */
export function wholeNumberFlag(flag: string, value: string, min = 0): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < min) throw new InvalidInputError(flag, `must be a whole number >= ${min}, got ${JSON.stringify(value)}`);
  return number;
}
