import { describe, expect, it } from 'vitest';
import { type Bar, validateBar } from './index.js';

describe('validateBar, each rule on its own', () => {
  const good: Bar = { symbol: 'X', timeMs: 0, open: 10, high: 12, low: 9, close: 11, volume: 5 };

  it('answers nothing for valid bars, flat and zero-volume ones included', () => {
    expect(validateBar(good)).toEqual([]);
    expect(validateBar({ ...good, open: 10, high: 10, low: 10, close: 10, volume: 0 })).toEqual([]);
  });

  it.each<[string, Partial<Bar>, keyof Bar]>([
    ['no symbol', { symbol: '' }, 'symbol'],
    ['a symbol that is not a string', { symbol: 5 as unknown as string }, 'symbol'],
    ['an infinite timeMs', { timeMs: Number.POSITIVE_INFINITY }, 'timeMs'],
    ['an unsafe timeMs', { timeMs: 2 ** 53 }, 'timeMs'],
    ['a zero open', { open: 0 }, 'open'],
    ['a negative close', { close: -1, low: -2 }, 'low'],
    ['a NaN open', { open: Number.NaN }, 'open'],
    ['a NaN low', { low: Number.NaN }, 'low'],
    ['a NaN volume', { volume: Number.NaN }, 'volume'],
    ['an infinite volume', { volume: Number.POSITIVE_INFINITY }, 'volume'],
    ['a high below the open', { open: 12.5 }, 'high'],
    ['a low above the close', { close: 8.5 }, 'low'],
  ])('names %s', (_name, change, field) => {
    expect(validateBar({ ...good, ...change }).map((problem) => problem.field)).toContain(field);
  });
});
