// The engine with an allocator and a risk manager between the strategies and the venue.
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import { createSyntheticFeed } from '../market/index.js';
import { fixedQuantity, fractionOfEquity } from '../portfolio/index.js';
import { type Intent, type Strategy, meanReversion, momentumStrategy, pairs, smaCrossover } from '../strategy/index.js';
import { clientOrderId } from '../venue/index.js';
import { CLOSES, DAY, OPENS, series } from '../../test/fixtures/bars.js';
import { type BacktestReport, runBacktest } from './index.js';

// SMA(1/3) decides enter-long (10 units) on bar 4 and exit-long on bar 6 (see engine.test.ts):
// bought at bar 5's open 12.5; equity 1000, 1000, 1000, 1000, 1000, 1005, 955, 950.
const sma = (): Strategy => smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(10), name: 'sma' });

/** A strategy that places the given intents on the given bars (on its symbol's bar). */
function scripted(name: string, symbol: string, script: Readonly<Record<number, readonly Intent[]>>): Strategy {
  return { name, symbols: [symbol], onBar: (bar, context) => (bar.symbol === symbol ? (script[context.barIndex] ?? []) : []) };
}

const market = (symbol: string, side: 'buy' | 'sell', quantity: number, intent: string): Intent => ({ symbol, side, quantity, type: 'market', intent });

describe('runBacktest with a risk manager', () => {
  it('refuses an entry over the position limit: reported with source risk, nothing filled', () => {
    const { report } = runBacktest({ bars: series(OPENS, CLOSES), strategies: [sma()], portfolio: { initialCash: 1000 }, risk: { maxPositionUnits: 5 }, swarm: 't' });
    expect(report.fills).toEqual([]);
    expect(report.rejections).toEqual([
      {
        clientOrderId: clientOrderId({ swarm: 't', role: 'sma', barIndex: 4, symbol: 'AAA', intent: 'enter-long' }),
        barIndex: 4,
        source: 'risk',
        reason: 'position-limit',
        message: 'AAA would hold 10 units (order of 10); maxPositionUnits is 5',
      },
    ]);
    expect(report.riskState).toEqual({ barsInState: { NORMAL: 8, REDUCING: 0, HALTED: 0 }, transitions: [], finalState: 'NORMAL', rejected: 1 });
    expect(report.finalEquity).toBe(1000);
  });

  it('halts at a 4 % drawdown (1005 → 955 on bar 6) and refuses the exit; the end of data liquidates at 8', () => {
    const { report } = runBacktest({ bars: series(OPENS, CLOSES), strategies: [sma()], portfolio: { initialCash: 1000 }, risk: { haltAtDrawdown: 0.04 } });
    expect(report.riskState?.barsInState).toEqual({ NORMAL: 6, REDUCING: 0, HALTED: 2 });
    expect(report.riskState?.transitions).toEqual([{ barIndex: 6, from: 'NORMAL', to: 'HALTED', drawdown: 1 - 955 / 1005 }]);
    expect(report.rejections.map((r) => [r.barIndex, r.source, r.reason])).toEqual([[6, 'risk', 'halted']]);
    expect(report.fills.map((f) => [f.side, f.price, f.timeMs / DAY])).toEqual([
      ['buy', 12.5, 5],
      ['sell', 8, 7],
    ]);
    expect(report.finalEquity).toBe(955);
  });

  it('with allowClosingWhenHalted lets the exit through (sold at bar 7 open 7.5, as without a risk manager)', () => {
    const { report } = runBacktest({
      bars: series(OPENS, CLOSES),
      strategies: [sma()],
      portfolio: { initialCash: 1000 },
      risk: { haltAtDrawdown: 0.04, allowClosingWhenHalted: true },
    });
    expect(report.rejections).toEqual([]);
    expect(report.fills.map((f) => [f.side, f.price])).toEqual([
      ['buy', 12.5],
      ['sell', 7.5],
    ]);
    expect(report.finalEquity).toBe(950);
    expect(report.riskState?.finalState).toBe('HALTED');
  });

  it('changes nothing when no limit binds (same fills as without it)', () => {
    const bare = runBacktest({ bars: series(OPENS, CLOSES), strategies: [sma()], portfolio: { initialCash: 1000 } }).report;
    const guarded = runBacktest({ bars: series(OPENS, CLOSES), strategies: [sma()], portfolio: { initialCash: 1000 }, risk: { maxPositionUnits: 10 } }).report;
    expect(guarded.fills).toEqual(bare.fills);
    expect(bare.riskState).toBeNull();
    expect(bare.allocation).toBeNull();
  });
});

describe('runBacktest with an allocator', () => {
  const flat = series([10, 10, 10], [10, 10, 10]);

  it('nets opposite intents of two strategies on one symbol: one order, under the larger side’s id', () => {
    const buyer = scripted('buyer', 'AAA', { 1: [market('AAA', 'buy', 10, 'enter-long')] });
    const seller = scripted('seller', 'AAA', { 1: [market('AAA', 'sell', 4, 'enter-short')] });
    const { report } = runBacktest({ bars: flat, strategies: [seller, buyer], portfolio: { initialCash: 1000 }, allocator: { weighting: 'equal' }, swarm: 't' });
    expect(report.fills.map((f) => [f.clientOrderId, f.side, f.quantity])).toEqual([
      [clientOrderId({ swarm: 't', role: 'buyer', barIndex: 1, symbol: 'AAA', intent: 'enter-long' }), 'buy', 6],
      ['end-of-data:AAA:' + String(2 * DAY), 'sell', 6],
    ]);
    expect(report.allocation).toEqual({ scaled: 0, netted: 2 });
  });

  it('scales a strategy to its share: 100 units at 10 against half of 1000 equity → 50', () => {
    const greedy = scripted('greedy', 'AAA', { 1: [market('AAA', 'buy', 100, 'enter-long')] });
    const idle = scripted('idle', 'AAA', {});
    const { report } = runBacktest({ bars: flat, strategies: [greedy, idle], portfolio: { initialCash: 1000 }, allocator: { weighting: 'equal' } });
    expect(report.fills[0]?.quantity).toBe(50);
    expect(report.allocation).toEqual({ scaled: 1, netted: 0 });
  });
});

describe('runBacktest with every filter on seeded synthetic data', () => {
  function run(): BacktestReport {
    const generated = createSyntheticFeed({
      symbols: ['AAA', 'BBB'],
      barCount: 1500,
      pairs: [{ leader: 'AAA', follower: 'AAB', hedgeRatio: 1.5, spreadStdDev: 2 }],
      volatilityIndex: null,
    }).generate(Rng.seeded(11));
    const strategies = [
      momentumStrategy({ symbol: 'BBB', lookback: 40, entryThreshold: 0.04, exitThreshold: 0, side: 'both', sizing: fractionOfEquity(0.3, { wholeUnits: true }) }),
      meanReversion({ indicator: 'rsi', symbol: 'AAA', sizing: fractionOfEquity(0.3, { wholeUnits: true }), name: 'rsi' }),
      pairs({ symbolA: 'AAB', symbolB: 'AAA', lookback: 40, entryZ: 2, exitZ: 0.5, wholeUnits: true, sizing: fractionOfEquity(0.5, { wholeUnits: true }) }),
    ];
    return runBacktest({
      bars: generated.bars,
      strategies,
      allocator: { weighting: 'inverse-volatility', lookbackBars: 30, wholeUnits: true },
      risk: { maxGrossExposure: 1.2, maxOrders: 4, orderWindowBars: 3, reduceAtDrawdown: 0.08, haltAtDrawdown: 0.3, drawdownWindowBars: 250 },
      venue: { slippage: { model: 'bps', bps: 2 } },
    }).report;
  }

  it('trades every strategy, enters both pair legs together, and gives the same report for the same input', () => {
    const first = run();
    const { elapsedMs: _a, ...withoutTime } = first;
    const { elapsedMs: _b, ...again } = run();
    expect(again).toEqual(withoutTime);
    // client order id: swarm:role:barIndex:symbol:intent:hash
    const parts = first.fills.filter((fill) => !fill.clientOrderId.startsWith('end-of-data')).map((fill) => fill.clientOrderId.split(':'));
    expect([...new Set(parts.map((part) => part[1]))].sort()).toEqual(['momentum-BBB-40', 'pairs-AAB-AAA-40', 'rsi']);
    // A pair's entries fill both legs from the same bar's decision.
    const pairBars = (symbol: string): string[] => parts.filter((part) => part[1] === 'pairs-AAB-AAA-40' && part[3] === symbol).map((part) => `${part[2]}:${part[4]}`);
    expect(pairBars('AAB').filter((entry) => entry.includes('enter'))).toEqual(pairBars('AAA').filter((entry) => entry.includes('enter')));
    expect(pairBars('AAB').length).toBeGreaterThan(0);
    const risk = first.riskState;
    expect(risk).not.toBeNull();
    const bars = Object.values(risk?.barsInState ?? {}).reduce((sum, count) => sum + count, 0);
    expect(bars).toBe(first.timeSteps);
    expect(first.rejections.filter((r) => r.source === 'risk')).toHaveLength(risk?.rejected ?? -1);
    expect(first.allocation?.scaled).toBeGreaterThan(0);
  });
});
