// Specs run as backtests: what a spec asks for reaches the run (strategies, risk, allocator, data),
// the example specs give their figures, and a spec that cannot trade says why in the report.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLOSES, DAY, OPENS } from '../../test/fixtures/bars.js';
import { STRATEGIES, TWO, VALID, withStrategy } from '../../test/fixtures/specs.js';
import { loadRunOptions, loadSpec, parseSpec, runOptionsFromSpec } from '../runspec/index.js';
import { sideOf } from '../strategy/index.js';
import { performanceStats } from '../portfolio/index.js';
import { runBacktest } from './index.js';

describe('backtest spec', () => {
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
    const { report } = runBacktest(await loadRunOptions(join(folder, 'spec.yaml')));
    expect(report.bars).toBe(40);
    expect(report.trades.length).toBeGreaterThan(0);
  });
});

describe('backtest spec: every strategy type', () => {
  it('accepts each type with its defaults and builds it', async () => {
    const spec = parseSpec({ data: TWO, strategies: Object.values(STRATEGIES) });
    expect(spec.strategies.map((s) => s.type)).toEqual(['ema-crossover', 'momentum', 'mean-reversion', 'mean-reversion', 'pairs', 'cross-venue-arbitrage']);
    // One-symbol strategies open longs unless told (side); two-leg ones trade both sides.
    expect(spec.strategies.map(sideOf)).toEqual(['long', 'long', 'long', 'long', 'both', 'both']);
    const options = await runOptionsFromSpec(spec, '.');
    expect(options.strategies.map((s) => s.name)).toEqual([
      'ema-crossover-AAA-5-20',
      'momentum-AAA-20',
      'mean-reversion-bollinger-AAA-20',
      'mean-reversion-rsi-AAA-14',
      'pairs-AAA-BBB-30',
      'arbitrage-AAA-BBB',
    ]);
    expect(runBacktest(options).report.bars).toBe(600);
  });
});

describe('backtest spec: risk, allocator and synthetic data', () => {
  const both = { data: TWO, strategies: [VALID.strategies[0], STRATEGIES['momentum']] };

  it('passes risk and allocator to the run', async () => {
    const spec = parseSpec({ ...both, risk: { maxGrossExposure: 1, haltAtDrawdown: 0.3 }, allocator: { weighting: 'fixed', weights: { 'sma-crossover-AAA-5-20': 0.4, 'momentum-AAA-20': 0.6 } } });
    const options = await runOptionsFromSpec(spec, '.');
    expect(options.risk).toEqual({ maxGrossExposure: 1, haltAtDrawdown: 0.3 });
    expect(options.allocator).toEqual({ weighting: 'fixed', weights: { 'sma-crossover-AAA-5-20': 0.4, 'momentum-AAA-20': 0.6 } });
    const { report } = runBacktest(options);
    expect(report.riskState?.finalState).toBeDefined();
    expect(report.allocation).not.toBeNull();
  });

  it('runs synthetic pairs and venues without files: strategies may trade followers and venue symbols', async () => {
    const spec = parseSpec({
      data: { source: 'synthetic', seed: 3, symbols: ['AAA'], barCount: 400, pairs: [{ leader: 'AAA', follower: 'AAB', hedgeRatio: 1.5 }], venues: { names: ['x', 'y'] } },
      strategies: [
        { type: 'pairs', symbolA: 'AAB', symbolB: 'AAA', lookback: 30, entryZ: 2, exitZ: 0.5, sizing: { type: 'fraction-of-equity', fraction: 0.5 } },
        { type: 'cross-venue-arbitrage', symbolA: 'AAA@x', symbolB: 'AAA@y', minEdgeBps: 5, exitEdgeBps: 0, sizing: { type: 'fraction-of-equity', fraction: 0.5 } },
      ],
    });
    const options = await runOptionsFromSpec(spec, '.');
    expect([...(options.bars as ReadonlyMap<string, unknown>).keys()]).toEqual(['AAA', 'AAB', 'AAA@x', 'AAA@y']);
    const { report } = runBacktest(options);
    expect(report.trades.length).toBeGreaterThan(0);
    // fraction-of-equity sizing is in whole units by default, and so is the pair's hedge leg.
    expect(report.fills.every((fill) => Number.isInteger(fill.quantity))).toBe(true);
  });
});

describe('the example specs', () => {
  const example = (file: string): string => fileURLToPath(new URL(`../../examples/${file}`, import.meta.url));

  it('backtest-multi.yaml: momentum, mean reversion and pairs behind an allocator and a risk manager', async () => {
    const { report } = runBacktest(await loadRunOptions(example('backtest-multi.yaml')));
    const roles = new Set(report.fills.map((fill) => fill.clientOrderId.split(':')[1]));
    for (const role of ['momentum-BBB-60', 'mean-reversion-rsi-CCC-1', 'mean-reversion-bolling', 'pairs-AAB-AAA-60']) expect([...roles].some((r) => r?.startsWith(role))).toBe(true);
    expect(report.riskState?.transitions.length).toBeGreaterThan(0);
    expect(report.rejections.some((r) => r.source === 'risk')).toBe(true);
  });

  it('backtest-arbitrage.yaml: one asset on two synthetic venues', async () => {
    const { report } = runBacktest(await loadRunOptions(example('backtest-arbitrage.yaml')));
    expect(report.trades.length).toBeGreaterThan(100);
    expect(report.openPositions).toEqual([]);
  });

  const aapl = new URL('../../../shared/data/daily/AAPL.csv', import.meta.url);
  const folder = fileURLToPath(new URL('.', aapl));
  const present = existsSync(aapl);
  if (!present && process.env.CI === 'true') {
    it('needs the shared data under CI', () => {
      throw new Error(`${folder} has no AAPL.csv; CI must provide ../shared/data`);
    });
  }
  if (!present) console.warn(`skipping the backtest-aapl.yaml figures: ${folder} has no AAPL.csv`);

  it.skipIf(!present)('backtest-aapl.yaml gives the figures it gave before the new strategies', async () => {
    const { report } = runBacktest(await loadRunOptions(example('backtest-aapl.yaml')));
    expect([report.trades.length, report.fills.length, report.rejections.length, report.finalEquity.toFixed(2)]).toEqual([9, 18, 0, '8914743.27']);
    expect([report.sharpe?.toFixed(3), report.maxDrawdown.toFixed(4), report.exposure.toFixed(4)]).toEqual(['0.894', '0.5803', '0.7186']);
    expect([report.riskState, report.allocation]).toEqual([null, null]);
  });
});

describe('backtest spec: sizeAt', () => {
  it('fill-price with side both: each entry sized at its fill bar\'s open with the equity there, positions at that open (hand-checked)', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tradeswarm-spec-'));
    const rows = CLOSES.map((close, i) => `${new Date(i * DAY).toISOString().slice(0, 10)},${OPENS[i]},${Math.max(OPENS[i] as number, close)},${Math.min(OPENS[i] as number, close)},${close},1000`);
    writeFileSync(join(folder, 'AAA.csv'), `date,open,high,low,close,volume\n${rows.join('\n')}\n`);
    const spec = (sizeAt: string): string =>
      `data: { source: csv, files: [{ path: AAA.csv, symbol: AAA }] }\nportfolio: { initialCash: 1000 }\nstrategies:\n  - { type: sma-crossover, symbol: AAA, fastPeriod: 1, slowPeriod: 3, side: both, sizing: { type: fraction-of-equity, fraction: 0.5, sizeAt: ${sizeAt} } }\n`;
    writeFileSync(join(folder, 'fill.yaml'), spec('fill-price'));
    writeFileSync(join(folder, 'close.yaml'), spec('signal-close'));
    const atFill = runBacktest(await loadRunOptions(join(folder, 'fill.yaml'))).report;
    // Bar 3 crosses below: short at bar 4's open 11 with equity 1000: floor(500 / 11) = 45 (cash 1495).
    // Bar 4 crosses above: at bar 5's open 12.5, equity 1495 − 45 × 12.5 = 932.5: buy back 45, buy floor(466.25 / 12.5) = 37 (cash 470).
    // Bar 6 crosses below: at bar 7's open 7.5, equity 470 + 37 × 7.5 = 747.5: sell 37, sell short floor(373.75 / 7.5) = 49 (cash 1115).
    // End of data: buy back 49 at the close 8: 1115 − 392 = 723.
    expect(atFill.fills.map((f) => [f.side, f.quantity, f.price])).toEqual([
      ['sell', 45, 11],
      ['buy', 45, 12.5],
      ['buy', 37, 12.5],
      ['sell', 37, 7.5],
      ['sell', 49, 7.5],
      ['buy', 49, 8],
    ]);
    expect(atFill.finalEquity).toBe(723);
    // At the signal close the first short is floor(500 / 9) = 55 units.
    const atClose = runBacktest(await loadRunOptions(join(folder, 'close.yaml'))).report;
    expect(atClose.fills[0]?.quantity).toBe(55);
    rmSync(folder, { recursive: true, force: true });
  });
});

describe('backtest spec: statistics conventions', () => {
  it('computes Sharpe and Sortino in the convention the spec names, with its risk-free rate, and says which', async () => {
    const run = async (statistics?: Record<string, unknown>): Promise<ReturnType<typeof runBacktest>> =>
      runBacktest(await runOptionsFromSpec(parseSpec({ ...VALID, ...(statistics === undefined ? {} : { statistics }) }), '.'));
    const plain = await run();
    expect(plain.report.statistics).toEqual({ convention: 'arithmetic', riskFreeRatePerYear: 0 });
    const geometric = await run({ convention: 'geometric', riskFreeRatePerYear: 0.02 });
    expect(geometric.report.statistics).toEqual({ convention: 'geometric', riskFreeRatePerYear: 0.02 });
    // The same trades and equity; only the ratios change, to what performanceStats gives for that convention.
    expect(geometric.report.finalEquity).toBe(plain.report.finalEquity);
    const expected = performanceStats(geometric.equityCurve, geometric.report.trades, { periodsPerYear: 252, convention: 'geometric', riskFreeRatePerYear: 0.02 });
    expect([geometric.report.sharpe, geometric.report.sortino]).toEqual([expected.sharpe, expected.sortino]);
    expect(geometric.report.sharpe).not.toBe(plain.report.sharpe);
  });

  it.each([
    [{ convention: 'log' }, 'statistics.convention | "log" | must be one of "arithmetic", "geometric"'],
    [{ riskFreeRatePerYear: 2 }, 'statistics.riskFreeRatePerYear | 2 | must be <= 1'],
  ])('refuses %o, naming the field', (statistics, expected) => {
    expect(() => parseSpec({ ...VALID, statistics })).toThrow(expected.replace(/ \| (.*?) \| /, ': got $1; '));
  });
});

describe('backtest spec: a spec that cannot trade runs and says why', () => {
  it('a slowPeriod longer than the data gives a warning naming the strategy, the field, its value and the bars available', async () => {
    const spec = parseSpec({ ...VALID, strategies: [{ ...VALID.strategies[0], slowPeriod: 400 }] });
    const { report } = runBacktest(await runOptionsFromSpec(spec, '.'));
    expect(report.trades).toEqual([]);
    expect(report.warnings).toEqual([
      {
        source: 'strategies[0]',
        strategy: 'sma-crossover-AAA-5-400',
        field: 'slowPeriod',
        value: 400,
        barsNeeded: 401,
        barsAvailable: 300,
        message: 'strategies[0] sma-crossover-AAA-5-400 cannot trade: slowPeriod 400 needs 401 bars of AAA before its first decision, and the data has 300; lower slowPeriod or use more data',
      },
    ]);
  });

  it.each([
    ['ema', { slowPeriod: 600 }, 'strategies[1] ema-crossover-AAA-5-600 cannot trade: slowPeriod 600 needs 601 bars of AAA before its first decision, and the data has 300; lower slowPeriod or use more data'],
    ['momentum', { lookback: 300 }, 'strategies[1] momentum-AAA-300 cannot trade: lookback 300 needs 301 bars of AAA before its first decision, and the data has 300; lower lookback or use more data'],
    ['bollinger', { period: 301 }, 'strategies[1] mean-reversion-bollinger-AAA-301 cannot trade: period 301 needs 301 bars of AAA before its first decision, and the data has 300; lower period or use more data'],
    ['rsi', { period: 300 }, 'strategies[1] mean-reversion-rsi-AAA-300 cannot trade: period 300 needs 301 bars of AAA before its first decision, and the data has 300; lower period or use more data'],
    ['pairs', { lookback: 500 }, 'strategies[1] pairs-AAA-BBB-500 cannot trade: lookback 500 needs 500 bars of AAA and BBB before its first decision, and the data has 300; lower lookback or use more data'],
  ])('%s: %j gives one warning', async (strategy, changes, message) => {
    const { report } = runBacktest(await runOptionsFromSpec(parseSpec(withStrategy(strategy, changes)), '.'));
    expect(report.warnings.map((warning) => warning.message)).toEqual([message]);
  });

  it('an inverse-volatility lookback longer than the data says the weights stay equal', async () => {
    const spec = parseSpec({ data: TWO, strategies: [VALID.strategies[0], STRATEGIES['momentum']], allocator: { weighting: 'inverse-volatility', lookbackBars: 300 } });
    const { report } = runBacktest(await runOptionsFromSpec(spec, '.'));
    expect(report.warnings.map((warning) => warning.message)).toEqual([
      'allocator: lookbackBars 300 needs 301 bars of every strategy\'s symbols before inverse-volatility weights apply, and the data has 300; the weights stay equal for the whole run; lower lookbackBars or use more data',
    ]);
  });

  it('a warm-up that fits gives no warning', async () => {
    const { report } = runBacktest(await runOptionsFromSpec(parseSpec({ data: TWO, strategies: Object.values(STRATEGIES) }), '.'));
    expect(report.warnings).toEqual([]);
  });

  const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
  const haveSharedData = existsSync(new URL('../../../shared/data/daily/AAPL.csv', import.meta.url));
  it.each(readdirSync(examples).filter((file) => file.endsWith('.yaml')))('examples/%s gives no warning', async (file) => {
    const spec = await loadSpec(join(examples, file));
    if (spec.data.source === 'csv' && !haveSharedData) return;
    const { report } = runBacktest(await runOptionsFromSpec(spec, examples));
    expect(report.warnings).toEqual([]);
  });
});
