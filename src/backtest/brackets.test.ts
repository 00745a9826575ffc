// Bracket exits through the whole backtest (strategy → session → venue → portfolio), hand-checked on
// the shared series of test/fixtures/bars.ts: SMA(1/3) decides enter-long on bar 4 (filled at bar 5's
// open 12.5) and exit-long on bar 6 (filled at bar 7's open 7.5). Bars: high/low span open and close.
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { fixedQuantity } from '../portfolio/index.js';
import { buildStrategy, smaCrossover } from '../strategy/index.js';
import { clientOrderId } from '../venue/index.js';
import { CLOSES, DAY, OPENS, series } from '../../test/fixtures/bars.js';
import { runBacktest } from './index.js';

type Exits = NonNullable<Parameters<typeof smaCrossover>[0]['exits']>;

function run(exits: Exits, side: 'long' | 'short' | 'both' = 'long'): Array<[string, string, number, number, number]> {
  const strategy = smaCrossover({ symbol: 'AAA', fastPeriod: 1, slowPeriod: 3, sizing: fixedQuantity(10), side, exits, name: 'sma' });
  const { report } = runBacktest({ bars: series(OPENS, CLOSES), strategies: [strategy], portfolio: { initialCash: 1000 }, swarm: 't' });
  const entry = (barIndex: number, intent: string): string => clientOrderId({ swarm: 't', role: 'sma', barIndex, symbol: 'AAA', intent });
  const names = new Map([4, 6, 3].flatMap((i) => ['enter-long', 'exit-long', 'enter-short', 'exit-short'].map((intent) => [entry(i, intent), `${intent}@${i}`] as const)));
  return report.fills.map((fill) => {
    const [id, kind] = [fill.clientOrderId.slice(0, fill.clientOrderId.lastIndexOf(':')), fill.clientOrderId.slice(fill.clientOrderId.lastIndexOf(':') + 1)];
    const label = names.get(fill.clientOrderId) ?? (names.has(id) ? `${names.get(id) as string}:${kind}` : fill.clientOrderId.replace(/:\d+$/, ''));
    return [label, fill.side, fill.quantity, fill.price, fill.timeMs / DAY];
  });
}

describe('bracket exits in a backtest, hand-checked', () => {
  it("fills a long's stop gapped through at the open: bar 6 opens at 9, below the stop 12.5 × 0.9 = 11.25", () => {
    expect(run({ stopLoss: { percent: 10 } })).toEqual([
      ['enter-long@4', 'buy', 10, 12.5, 5],
      // The strategy sees itself flat on bar 6, so its cross below decides nothing.
      ['enter-long@4:stop-loss', 'sell', 10, 9, 6],
    ]);
  });

  it('fills the take-profit on the entry bar, after the fill at its open: target 12.5 + 0.4 = 12.9, high 13', () => {
    expect(run({ takeProfit: { points: 0.4 }, stopLoss: { points: 1 } })).toEqual([
      ['enter-long@4', 'buy', 10, 12.5, 5],
      ['enter-long@4:take-profit', 'sell', 10, 12.9, 5],
    ]);
  });

  it("cancels the bracket when the strategy's own signal closes the position: bar 7's low 7.5 reaches the stop 12.5 − 5, unfilled", () => {
    expect(run({ stopLoss: { points: 5 } })).toEqual([
      ['enter-long@4', 'buy', 10, 12.5, 5],
      ['exit-long@6', 'sell', 10, 7.5, 7],
    ]);
  });

  it("fills a short's stop within a bar: short at bar 4's open 11, stop 11.5, bar 4's high 12", () => {
    expect(run({ stopLoss: { points: 0.5 } }, 'short')).toEqual([
      ['enter-short@3', 'sell', 10, 11, 4],
      ['enter-short@3:stop-loss', 'buy', 10, 11.5, 4],
      // Flat again: the cross below of bar 6 shorts once more, at bar 7's open 7.5, stop 8: bar 7's high 8 reaches it.
      ['enter-short@6', 'sell', 10, 7.5, 7],
      ['enter-short@6:stop-loss', 'buy', 10, 8, 7],
    ]);
  });

  it('on a reversal, cancels the old bracket and places the new one with the new entry', () => {
    // Short at 11 (bar 4) with stop 11 × 1.5 = 16.5 and target 11 × 0.5 = 5.5: neither reached. Bar 4 reverses:
    // the short's bracket is cancelled, the long (12.5 at bar 5) gets stop 6.25 and target 18.75.
    expect(run({ stopLoss: { percent: 50 }, takeProfit: { percent: 50 } }, 'both')).toEqual([
      ['enter-short@3', 'sell', 10, 11, 4],
      ['exit-short@4', 'buy', 10, 12.5, 5],
      ['enter-long@4', 'buy', 10, 12.5, 5],
      ['exit-long@6', 'sell', 10, 7.5, 7],
      ['enter-short@6', 'sell', 10, 7.5, 7],
      ['end-of-data:AAA', 'buy', 10, 8, 7],
    ]);
  });
});

/** A random walk of daily bars whose opens gap away from the previous close. */
function randomBars(rng: Rng, count: number): Bar[] {
  let close = 100;
  return Array.from({ length: count }, (_, i) => {
    const open = close * Math.exp(rng.normal(0, 0.012));
    close = open * Math.exp(rng.normal(0, 0.015));
    const high = Math.max(open, close) * (1 + rng.next() * 0.01);
    const low = Math.min(open, close) * (1 - rng.next() * 0.01);
    return { symbol: 'AAA', timeMs: i * DAY, open, high, low, close, volume: rng.int(20, 400) };
  });
}

function randomExit(rng: Rng): Record<string, unknown> {
  return rng.pick([{ points: 0.5 + rng.next() * 4 }, { percent: 0.3 + rng.next() * 4 }, { atr: { period: rng.int(2, 20), multiple: 0.5 + rng.next() * 3 } }]);
}

describe('bracket exits in backtests (seeded)', () => {
  it('never flip a position, fill at most one exit per entry, and replay identically (80 seeds, random strategies, exits and venues)', () => {
    let exitFills = 0;
    for (let seed = 1; seed <= 80; seed++) {
      const rng = Rng.seeded(seed);
      const exits: Record<string, unknown> = {};
      for (const field of ['stopLoss', 'takeProfit', 'trailingStop']) if (rng.next() < 0.6) exits[field] = randomExit(rng);
      if (Object.keys(exits).length === 0) exits['stopLoss'] = randomExit(rng);
      const side = rng.pick(['long', 'short', 'both'] as const);
      const sizing = { type: 'fixed-quantity' as const, units: rng.int(1, 50) };
      const spec = rng.pick([
        { type: 'sma-crossover' as const, symbol: 'AAA', fastPeriod: rng.int(1, 5), slowPeriod: rng.int(6, 20), side, exits, sizing },
        { type: 'momentum' as const, symbol: 'AAA', lookback: rng.int(2, 10), entryThreshold: 0.01, exitThreshold: 0, side, exits, sizing },
      ]) as Parameters<typeof buildStrategy>[0];
      const bars = randomBars(rng, 250);
      const venue = { fillAt: rng.pick(['next-open', 'close'] as const), slippage: { model: 'bps' as const, bps: rng.int(0, 10) }, partialFills: rng.pick([false, { maxFractionOfBarVolume: 0.2 }] as const) };
      const options = { bars, strategies: [buildStrategy(spec)], venue, portfolio: { initialCash: 1e6 } };
      const { report } = runBacktest(options);
      expect(runBacktest({ ...options, strategies: [buildStrategy(spec)] }).report.fills, `seed ${seed}`).toEqual(report.fills);
      let position = 0;
      const exitKinds = new Map<string, Set<string>>();
      for (const fill of report.fills) {
        const signed = fill.side === 'buy' ? fill.quantity : -fill.quantity;
        const kind = /:(stop-loss|take-profit|trailing-stop)$/.exec(fill.clientOrderId)?.[1];
        if (kind !== undefined) {
          exitFills++;
          // An exit only reduces the position it protects.
          if (Math.sign(signed) !== -Math.sign(position) || Math.abs(signed) > Math.abs(position) + 1e-9) {
            expect.fail(`seed ${seed}: ${fill.clientOrderId} ${fill.side}s ${fill.quantity} of a position of ${position}`);
          }
          const entry = fill.clientOrderId.slice(0, -kind.length - 1);
          const kinds = exitKinds.get(entry) ?? new Set<string>();
          kinds.add(kind);
          exitKinds.set(entry, kinds);
          if (kinds.size > 1) expect.fail(`seed ${seed}: ${[...kinds].join(' and ')} of ${entry} both filled`);
        }
        position += signed;
      }
      expect(position, `seed ${seed}: settled`).toBeCloseTo(0, 9);
    }
    expect(exitFills).toBeGreaterThan(500);
  });
});
