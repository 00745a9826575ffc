import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { fixedQuantity, fractionOfEquity } from './index.js';

describe('sizing', () => {
  it.each([
    // [sizer, price, equity, expected units]
    ['fixed 7', fixedQuantity(7), 100, 10_000, 7],
    ['fixed 7, zero equity (fixed ignores equity)', fixedQuantity(7), 100, 0, 7],
    ['fixed 0', fixedQuantity(0), 100, 10_000, 0],
    ['half, whole: 500 / 30 = 16.67 → 16', fractionOfEquity(0.5, { wholeUnits: true }), 30, 1_000, 16],
    ['half, fractional: 500 / 30', fractionOfEquity(0.5, { wholeUnits: false }), 30, 1_000, 500 / 30],
    ['whole: 0.29 × 100 / 1 = 28.999… → 29 (slack)', fractionOfEquity(0.29, { wholeUnits: true }), 1, 100, 29],
    ['fractional: 0.29 × 100 / 1 unrounded', fractionOfEquity(0.29, { wholeUnits: false }), 1, 100, 28.999999999999996],
    ['whole, price above budget → 0', fractionOfEquity(0.1, { wholeUnits: true }), 150, 1_000, 0],
    ['fractional, price above budget → 2/3', fractionOfEquity(0.1, { wholeUnits: false }), 150, 1_000, 100 / 150],
    ['whole, zero equity', fractionOfEquity(1, { wholeUnits: true }), 10, 0, 0],
    ['fractional, zero equity', fractionOfEquity(1, { wholeUnits: false }), 10, 0, 0],
    ['fractional, negative equity', fractionOfEquity(1, { wholeUnits: false }), 10, -500, 0],
    ['leverage 2, whole', fractionOfEquity(2, { wholeUnits: true }), 10, 1_000, 200],
    ['fraction 0', fractionOfEquity(0, { wholeUnits: false }), 10, 1_000, 0],
  ])('%s', (_label, sizer, price, equity, expected) => {
    expect(sizer.quantity(price, equity)).toBe(expected);
  });

  it('rejects invalid parameters, naming the field', () => {
    expect(() => fixedQuantity(-1)).toThrow(expect.objectContaining({ field: 'units' }) as Error);
    expect(() => fractionOfEquity(-0.1, { wholeUnits: true })).toThrow(expect.objectContaining({ field: 'fraction' }) as Error);
    expect(() => fractionOfEquity(Number.POSITIVE_INFINITY, { wholeUnits: true })).toThrow(InvalidInputError);
    const sizer = fractionOfEquity(0.5, { wholeUnits: true });
    expect(() => sizer.quantity(0, 1_000)).toThrow(expect.objectContaining({ field: 'price' }) as Error);
    expect(() => sizer.quantity(10, Number.NaN)).toThrow(expect.objectContaining({ field: 'equity' }) as Error);
  });
});
