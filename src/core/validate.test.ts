import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors.js';
import { wholeNumber } from './validate.js';

describe('wholeNumber', () => {
  it.each([
    { value: 0, min: 0, max: undefined },
    { value: 7, min: 1, max: 7 },
    { value: Number.MAX_SAFE_INTEGER, min: 0, max: undefined },
  ])('accepts $value in [$min, $max]', ({ value, min, max }) => {
    expect(wholeNumber('size', value, min, max)).toBe(value);
  });

  it.each([
    { value: -1, min: 0, max: undefined, message: 'size: must be a whole number >= 0, got -1' },
    { value: 1.5, min: 0, max: undefined, message: 'size: must be a whole number >= 0, got 1.5' },
    { value: 11, min: 1, max: 10, message: 'size: must be a whole number from 1 to 10, got 11' },
    { value: Number.NaN, min: 1, max: 10, message: 'size: must be a whole number from 1 to 10, got NaN' },
    { value: '3' as unknown as number, min: 0, max: undefined, message: 'size: must be a whole number >= 0, got 3' },
  ])('refuses $value naming the field', ({ value, min, max, message }) => {
    expect(() => wholeNumber('size', value, min, max)).toThrow(new InvalidInputError('size', message.slice('size: '.length)));
  });
});
