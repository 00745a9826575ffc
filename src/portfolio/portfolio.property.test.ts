import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import { type Portfolio, type PortfolioFill, createPortfolio, isShortSellingNotAllowedError, settleEndOfData } from './index.js';

const SYMBOLS = ['AAA', 'BBB', 'CCC'] as const;
const INITIAL_CASH = 50_000;
const SEEDS = Array.from({ length: 50 }, (_, i) => i + 1);
const STEPS = 120;

interface Scenario {
  readonly feeRate: number;
  readonly longOnly: boolean;
  /** Called after every mark with the prices used. */
  readonly onMark?: (portfolio: Portfolio, prices: ReadonlyMap<string, number>) => void;
  /** Called at the end with the number of fills refused by the long-only rule. */
  readonly onRefusals?: (refusals: number) => void;
}

/** A seeded random walk of prices with 0–3 random fills (whole or fractional units) per step. */
function run(seed: number, scenario: Scenario): Portfolio {
  const rng = Rng.seeded(seed);
  const portfolio = createPortfolio({ initialCash: INITIAL_CASH, longOnly: scenario.longOnly });
  const prices = new Map<string, number>(SYMBOLS.map((symbol) => [symbol, 20 + 80 * rng.next()]));
  let order = 0;
  let refusals = 0;
  for (let step = 0; step < STEPS; step++) {
    for (const symbol of SYMBOLS) prices.set(symbol, (prices.get(symbol) as number) * Math.exp(rng.normal(0, 0.03)));
    const fills = rng.int(0, 3);
    for (let i = 0; i < fills; i++) {
      const symbol = rng.pick(SYMBOLS);
      const price = prices.get(symbol) as number;
      const held = portfolio.position(symbol).quantity;
      // Sometimes exactly close the position, so round trips happen often.
      const quantity = held !== 0 && rng.next() < 0.25 ? Math.abs(held) : rng.next() < 0.5 ? rng.int(1, 40) : 0.01 + 10 * rng.next();
      const side = held !== 0 && rng.next() < 0.5 ? (held > 0 ? 'sell' : 'buy') : rng.pick(['buy', 'sell'] as const);
      const fill: PortfolioFill = {
        clientOrderId: `${seed}-${order++}`, symbol, side, quantity, price, fee: scenario.feeRate * quantity * price, timeMs: step,
      };
      const before = { cash: portfolio.cash, realised: portfolio.realisedPnl, position: portfolio.position(symbol) };
      try {
        portfolio.apply(fill);
      } catch (error) {
        if (!isShortSellingNotAllowedError(error)) throw error;
        expect(scenario.longOnly).toBe(true);
        // A refused fill leaves everything as it was.
        expect({ cash: portfolio.cash, realised: portfolio.realisedPnl, position: portfolio.position(symbol) }).toEqual(before);
        refusals += 1;
      }
    }
    portfolio.markToMarket(step, prices);
    scenario.onMark?.(portfolio, prices);
  }
  scenario.onRefusals?.(refusals);
  return portfolio;
}

function tolerance(portfolio: Portfolio): number {
  return 1e-9 * (INITIAL_CASH + Math.abs(portfolio.cash) + portfolio.equityCurve().reduce((m, p) => Math.max(m, p.grossExposure), 0));
}

describe('portfolio invariants (seeded)', () => {
  it('conserves value with zero fees: cash + Σ position × price = initial cash + realised + unrealised at every mark', () => {
    let marks = 0;
    for (const seed of SEEDS) {
      run(seed, {
        feeRate: 0,
        longOnly: false,
        onMark: (portfolio, prices) => {
          let holdings = 0;
          for (const symbol of SYMBOLS) holdings += portfolio.position(symbol).quantity * (prices.get(symbol) as number);
          const left = portfolio.cash + holdings;
          const right = INITIAL_CASH + portfolio.realisedPnl + portfolio.unrealisedPnl;
          expect(Math.abs(left - right)).toBeLessThanOrEqual(tolerance(portfolio));
          expect(portfolio.equityCurve().at(-1)?.equity).toBeCloseTo(left, 6);
          marks += 1;
        },
      });
    }
    expect(marks).toBe(SEEDS.length * STEPS);
  });

  it('when everything is closed, the closed trades add up to the realised PnL (fees included)', () => {
    for (const seed of SEEDS) {
      const portfolio = run(seed, { feeRate: 0.001, longOnly: false });
      const last = SYMBOLS.map((symbol) => {
        const price = portfolio.position(symbol).markPrice ?? 1;
        return { symbol, timeMs: STEPS, open: price, high: price, low: price, close: price, volume: 0 };
      });
      settleEndOfData(portfolio, last, { rule: 'liquidate-at-close' });
      expect(portfolio.openPositions()).toEqual([]);
      const tradesNet = portfolio.trades().reduce((total, trade) => total + trade.netPnl, 0);
      expect(Math.abs(tradesNet - portfolio.realisedPnl)).toBeLessThanOrEqual(tolerance(portfolio));
      expect(Math.abs(portfolio.cash - (INITIAL_CASH + portfolio.realisedPnl))).toBeLessThanOrEqual(tolerance(portfolio));
    }
  });

  it('never holds a negative position when long-only', () => {
    let refusals = 0;
    for (const seed of SEEDS) {
      run(seed, {
        feeRate: 0.0005,
        longOnly: true,
        onMark: (portfolio) => {
          for (const symbol of SYMBOLS) expect(portfolio.position(symbol).quantity).toBeGreaterThanOrEqual(0);
        },
        onRefusals: (count) => {
          refusals += count;
        },
      });
    }
    // The random streams do try to go short, and those sells were refused.
    expect(refusals).toBeGreaterThan(0);
  });

  it('gives the same output for the same input, and a different one for another seed', () => {
    const snapshot = (portfolio: Portfolio) => ({
      trades: portfolio.trades(), curve: portfolio.equityCurve(), positions: portfolio.openPositions(), cash: portfolio.cash,
    });
    for (const seed of SEEDS.slice(0, 10)) {
      const first = snapshot(run(seed, { feeRate: 0.001, longOnly: false }));
      const second = snapshot(run(seed, { feeRate: 0.001, longOnly: false }));
      expect(second).toEqual(first);
      expect(first.trades.length).toBeGreaterThan(0);
    }
    expect(snapshot(run(1, { feeRate: 0, longOnly: false }))).not.toEqual(snapshot(run(2, { feeRate: 0, longOnly: false })));
  });
});
