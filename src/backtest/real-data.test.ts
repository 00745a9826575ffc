// The new strategies on real daily bars from ../shared/data/daily (see ../shared/data/SOURCES.md),
// with assertions counted independently from the closes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Bar, loadCsvBars } from '../market/index.js';
import { fixedQuantity, fractionOfEquity } from '../portfolio/index.js';
import { momentumStrategy, pairs } from '../strategy/index.js';
import { runBacktest } from './index.js';

const DAILY = new URL('../../../shared/data/daily/', import.meta.url);
const folder = fileURLToPath(DAILY);
const FILES = ['SPY.csv', 'KO.csv', 'PEP.csv'];
const present = FILES.every((file) => existsSync(new URL(file, DAILY)));

describe(`strategies on real daily bars (${folder})`, () => {
  if (!present && process.env.CI === 'true') {
    it('needs the shared data under CI', () => {
      throw new Error(`${folder} lacks ${FILES.join(', ')}; CI must provide ../shared/data`);
    });
  }
  if (!present) console.warn(`skipping the real-data strategy tests: ${folder} lacks ${FILES.join(', ')}`);

  it.skipIf(!present)('momentum(20) on SPY trades exactly the signals counted from the closes, at the next opens', async () => {
    const bars = await loadCsvBars(new URL('SPY.csv', DAILY), 'SPY');
    const lookback = 20;
    const entryThreshold = 0.04;
    const exitThreshold = -0.01;
    // Count by hand: ROC = (close − close 20 bars ago) / close 20 bars ago; flat → long above 4 %, long → flat below −1 %.
    const entries: number[] = [];
    const exits: number[] = [];
    let long = false;
    for (let t = lookback; t < bars.length; t++) {
      const past = (bars[t - lookback] as Bar).close;
      const roc = ((bars[t] as Bar).close - past) / past;
      if (long && roc < exitThreshold) {
        exits.push(t);
        long = false;
      } else if (!long && roc > entryThreshold) {
        entries.push(t);
        long = true;
      }
    }
    const { report } = runBacktest({
      bars: new Map([['SPY', bars]]),
      strategies: [momentumStrategy({ symbol: 'SPY', lookback, entryThreshold, exitThreshold, sizing: fixedQuantity(100) })],
      portfolio: { initialCash: 100_000, longOnly: true },
    });
    expect(entries.length).toBeGreaterThan(20);
    expect(report.trades).toHaveLength(entries.length);
    const buys = report.fills.filter((fill) => fill.side === 'buy');
    const sells = report.fills.filter((fill) => fill.side === 'sell');
    // Decided on bar t, filled at bar t + 1's open (next-open fills); a last entry may be liquidated at the final close.
    expect(buys.map((fill) => [fill.timeMs, fill.price])).toEqual(entries.map((t) => [(bars[t + 1] as Bar).timeMs, (bars[t + 1] as Bar).open]));
    expect(sells.slice(0, exits.length).map((fill) => [fill.timeMs, fill.price])).toEqual(exits.map((t) => [(bars[t + 1] as Bar).timeMs, (bars[t + 1] as Bar).open]));
    expect(sells.length - exits.length).toBe(entries.length - exits.length);
    expect(report.fills.every((fill) => fill.quantity === 100)).toBe(true);
  });

  it.skipIf(!present)('pairs on KO/PEP: every entry and exit trades both legs on the same bar, B = hedge × A in whole units', async () => {
    const [ko, pep] = await Promise.all([loadCsvBars(new URL('KO.csv', DAILY), 'KO'), loadCsvBars(new URL('PEP.csv', DAILY), 'PEP')]);
    const { report } = runBacktest({
      bars: new Map([
        ['KO', ko],
        ['PEP', pep],
      ]),
      strategies: [pairs({ symbolA: 'PEP', symbolB: 'KO', lookback: 60, entryZ: 2, exitZ: 0.5, wholeUnits: true, sizing: fractionOfEquity(0.5, { wholeUnits: true }), name: 'pairs' })],
      portfolio: { initialCash: 100_000 },
      endOfData: 'mark-to-market',
    });
    const decisions = new Map<string, string[]>();
    for (const fill of report.fills) {
      const [, , barIndex, symbol, intent] = fill.clientOrderId.split(':');
      const key = `${barIndex}:${intent}`;
      decisions.set(key, [...(decisions.get(key) ?? []), `${symbol} ${fill.side}`]);
    }
    expect(decisions.size).toBeGreaterThan(20);
    for (const [key, legs] of decisions) {
      const long = key.includes('enter-long') || key.includes('exit-short');
      expect(legs.sort(), key).toEqual(long ? ['KO sell', 'PEP buy'] : ['KO buy', 'PEP sell']);
    }
    expect(report.fills.every((fill) => Number.isInteger(fill.quantity))).toBe(true);
    expect(report.rejections).toEqual([]);
  });
});
