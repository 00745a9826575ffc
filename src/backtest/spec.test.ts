import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BacktestSpecError, isBacktestSpecError, loadBacktestOptions, parseBacktestSpec, runBacktest } from './index.js';

const VALID = {
  data: { source: 'synthetic', seed: 1, symbols: ['AAA'], barCount: 300 },
  strategies: [{ type: 'sma-crossover', symbol: 'AAA', fastPeriod: 5, slowPeriod: 20, sizing: { type: 'fixed-quantity', units: 10 } }],
};

function problems(raw: unknown): string[] {
  try {
    parseBacktestSpec(raw, 'spec.yaml');
  } catch (error) {
    expect(isBacktestSpecError(error)).toBe(true);
    return (error as BacktestSpecError).problems.map((p) => `${p.field} | ${JSON.stringify(p.value)} | ${p.allowed}`);
  }
  throw new Error('expected the spec to be rejected');
}

describe('backtest spec', () => {
  it('fills in defaults', () => {
    const spec = parseBacktestSpec(VALID);
    expect(spec).toMatchObject({ name: 'backtest', endOfData: 'liquidate-at-close', periodsPerYear: 252, venue: {}, portfolio: {} });
  });

  it.each([
    [{ ...VALID, data: { ...VALID.data, source: 'parquet' } }, "data.source | \"parquet\" | must be one of 'csv' | 'synthetic'"],
    [{ ...VALID, strategies: [] }, 'strategies | [] | must list at least 1 item(s)'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], fastPeriod: 0 }] }, 'strategies[0].fastPeriod | 0 | must be >= 1'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], slowPeriod: 'x' }] }, 'strategies[0].slowPeriod | "x" | must be a number'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], slowPeriod: 5 }] }, 'strategies[0].slowPeriod | 5 | must be greater than fastPeriod (5)'],
    [{ ...VALID, strategies: [{ ...VALID.strategies[0], symbol: 'ZZZ' }] }, "strategies[0].symbol | \"ZZZ\" | must be one of the data's symbols: AAA"],
    [{ ...VALID, endOfData: 'sell' }, 'endOfData | "sell" | must be one of "liquidate-at-open", "liquidate-at-close", "mark-to-market"'],
    [{ ...VALID, venue: { fees: { model: 'bps' } } }, 'venue.fees.bps | undefined | is required (number)'],
    [{ ...VALID, extra: 1 }, 'extra | 1 | is not a known field; remove it or check its spelling'],
  ])('names the field, the value and what is allowed (%#)', (raw, expected) => {
    expect(problems(raw)).toEqual([expected]);
  });

  it('lists every mistake in one error message', () => {
    expect(() => parseBacktestSpec({ ...VALID, endOfData: 'x', periodsPerYear: -1 }, 'spec.yaml')).toThrow(
      /spec\.yaml has 2 mistakes; nothing ran[\s\S]*endOfData: got "x"[\s\S]*periodsPerYear: got -1; must be > 0/,
    );
  });

  it('loads a YAML file, resolves CSV paths against its folder, and runs', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-spec-'));
    const rows = Array.from({ length: 40 }, (_, i) => {
      const close = 100 + 10 * Math.sin(i / 4);
      return `${new Date(Date.UTC(2020, 0, 1 + i)).toISOString().slice(0, 10)},${close},${close + 1},${close - 1},${close},1000`;
    });
    writeFileSync(join(folder, 'AAA.csv'), `date,open,high,low,close,volume\n${rows.join('\n')}\n`);
    writeFileSync(
      join(folder, 'spec.yaml'),
      'data: { source: csv, files: [{ path: AAA.csv, symbol: AAA }] }\nstrategies:\n  - { type: sma-crossover, symbol: AAA, fastPeriod: 2, slowPeriod: 5, sizing: { type: fixed-quantity, units: 1 } }\n',
    );
    const { report } = runBacktest(await loadBacktestOptions(join(folder, 'spec.yaml')));
    expect(report.bars).toBe(40);
    expect(report.trades.length).toBeGreaterThan(0);
  });
});
