// Test support (not exported from index.ts): the small hand-checked bar series the engine tests share.
import type { Bar } from '../market/index.js';

export const DAY = 86_400_000;

/** Bars with the given opens and closes, one per day from time 0; high/low span them. */
export function series(opens: readonly number[], closes: readonly number[], symbol = 'AAA'): Bar[] {
  return closes.map((close, i) => {
    const open = opens[i] as number;
    return { symbol, timeMs: i * DAY, open, high: Math.max(open, close), low: Math.min(open, close), close, volume: 1000 };
  });
}

/** SMA(1/3) on these closes decides enter-long on bar 4 and exit-long on bar 6 (see src/strategy/crossover.test.ts). */
export const CLOSES = [10, 10, 10, 9, 12, 13, 8, 8];
export const OPENS = [10, 10, 10, 9, 11, 12.5, 9, 7.5];
