import { describe, expect, it } from 'vitest';
import { exitCodeOf } from './run.js';

describe('tradeswarm run exit codes', () => {
  it.each([
    ['complete', undefined, 0],
    ['halted', undefined, 2],
    ['degraded', undefined, 3],
    ['stopped', 'SIGINT', 130],
    ['stopped', 'SIGTERM', 143],
  ] as const)('%s (%s) exits %i', (outcome, signal, code) => {
    expect(exitCodeOf({ outcome }, signal)).toBe(code);
  });
});
