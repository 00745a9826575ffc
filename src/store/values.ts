/**
 * `int8` (`bigint`) text → a `number` when it is a safe integer (|n| ≤ 2^53 − 1), else a `bigint`: no
 * digit is lost silently, and ids, counts and millisecond times (safe until the year 287,396) stay plain
 * numbers. Both drivers use it, so they agree.
 */
export function parseInt8(text: string): number | bigint {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : BigInt(text);
}

/** `numeric` text → a `number` (the nearest double; `NaN` stays `NaN`). Both drivers use it. */
export function parseNumeric(text: string): number {
  return Number(text);
}
