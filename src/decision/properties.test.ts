// Seeded property tests (DESIGN Conventions): the same input gives the same output, the risk
// manager never approves an intent that breaks a limit, the allocator never lets a strategy open
// more than its share. Each property runs over many seeds of the project's Rng (pure-rand).
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import type { Intent, StrategyIntent } from '../strategy/index.js';
import { allocate } from './allocator.js';
import { type RiskManagerOptions, RiskState, createRiskManager } from './risk.js';

const SEEDS = Array.from({ length: 60 }, (_, i) => i + 1);

const SYMBOLS = ['AAA', 'BBB', 'CCC'] as const;

function randomIntents(rng: Rng, count: number): Intent[] {
  return Array.from({ length: count }, (_, i) => ({
    symbol: rng.pick(SYMBOLS),
    side: rng.pick(['buy', 'sell'] as const),
    quantity: rng.next() < 0.5 ? rng.int(1, 150) : 0.5 + 100 * rng.next(),
    type: 'market' as const,
    intent: `i${i}`,
  }));
}

function randomRiskOptions(rng: Rng): RiskManagerOptions {
  const maybe = (value: number, chance = 0.6): number | undefined => (rng.next() < chance ? value : undefined);
  const halt = 0.1 + 0.2 * rng.next();
  return {
    maxPositionUnits: maybe(rng.int(20, 300), 0.4),
    maxPositionFraction: maybe(0.1 + rng.next(), 0.3),
    maxGrossExposure: maybe(0.5 + 2 * rng.next()),
    maxOrders: maybe(rng.int(1, 6)),
    orderWindowBars: rng.int(1, 4),
    ...(rng.next() < 0.7 ? { haltAtDrawdown: halt, reduceAtDrawdown: halt * rng.next() } : {}),
    allowClosingWhenHalted: rng.next() < 0.5,
  };
}

describe('RiskManager (seeded)', () => {
  it('never approves an intent that breaks a limit or its state, and answers the same to the same input', () => {
    let approvedTotal = 0;
    let rejectedTotal = 0;
    const states = new Set<string>();
    const reasons = new Set<string>();
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const options = randomRiskOptions(rng);
      const risk = createRiskManager(options);
      const twin = createRiskManager(options);
      const config = risk.config;
      const approvedBars: number[] = [];
      let peak = 100_000;
      let equity = 100_000;
      for (let barIndex = 0; barIndex < 40; barIndex++) {
        equity *= Math.exp(rng.normal(0, 0.04));
        peak = Math.max(peak, equity);
        const positions = new Map<string, number>(SYMBOLS.map((symbol) => [symbol, rng.next() < 0.3 ? 0 : rng.int(-200, 200)]));
        const prices = new Map<string, number>(SYMBOLS.filter(() => rng.next() < 0.95).map((symbol) => [symbol, 10 + 190 * rng.next()]));
        // Half the seeds tag intents with a strategy and a shared label, so groups (judged together) form.
        const tagged = seed % 2 === 0;
        const intents: Intent[] = randomIntents(rng, rng.int(0, 8)).map((intent) =>
          tagged ? { ...intent, strategy: rng.pick(['S1', 'S2']), intent: rng.pick(['enter', 'exit']) } : intent,
        );
        const context = { equity, peakEquity: peak, positions, prices, barIndex };
        const review = risk.review(intents, context);
        expect(twin.review(intents, context)).toEqual(review);
        approvedTotal += review.approved.length;
        rejectedTotal += review.rejected.length;
        states.add(review.state);
        if (tagged) {
          // A group is approved whole or refused whole.
          const key = (intent: Intent): string => `${(intent as StrategyIntent).strategy}/${intent.intent}`;
          const approvedKeys = new Set(review.approved.map(key));
          for (const { intent } of review.rejected) expect(approvedKeys.has(key(intent))).toBe(false);
        }
        for (const { reason } of review.rejected) reasons.add(reason);
        expect(review.approved.length + review.rejected.length).toBe(intents.length);

        // Replay the approved intents, checking each against the limits independently.
        const running = new Map(positions);
        const gross = (): number =>
          [...running].reduce((sum, [symbol, quantity]) => sum + (quantity === 0 ? 0 : Math.abs(quantity) * (prices.get(symbol) ?? Number.NaN)), 0);
        for (const intent of review.approved) {
          const before = running.get(intent.symbol) ?? 0;
          const after = before + (intent.side === 'buy' ? intent.quantity : -intent.quantity);
          const reducing = Math.abs(after) <= Math.abs(before) && Math.sign(after) * Math.sign(before) >= 0;
          if (review.state === RiskState.halted) expect(config.allowClosingWhenHalted && after === 0 && before !== 0).toBe(true);
          if (review.state === RiskState.reducing) expect(reducing).toBe(true);
          if (!reducing) {
            const inWindow = approvedBars.filter((bar) => bar > barIndex - config.orderWindowBars).length;
            expect(inWindow).toBeLessThan(config.maxOrders);
            expect(Math.abs(after)).toBeLessThanOrEqual(config.maxPositionUnits);
            running.set(intent.symbol, after);
            if (config.maxPositionFraction !== Infinity) expect(Math.abs(after) * (prices.get(intent.symbol) as number)).toBeLessThanOrEqual(config.maxPositionFraction * equity + 1e-6);
            if (config.maxGrossExposure !== Infinity) expect(gross()).toBeLessThanOrEqual(config.maxGrossExposure * equity + 1e-6);
          }
          running.set(intent.symbol, after);
          approvedBars.push(barIndex);
        }
      }
    }
    expect(approvedTotal).toBeGreaterThan(100);
    expect(rejectedTotal).toBeGreaterThan(100);
    // The seeds reach every state and every kind of refusal but a malformed intent.
    expect([...states].sort()).toEqual(['HALTED', 'NORMAL', 'REDUCING']);
    expect([...reasons].sort()).toEqual(['gross-exposure', 'halted', 'no-price', 'order-rate', 'position-limit', 'reducing-only']);
  });
});

describe('allocate (seeded)', () => {
  it('never lets a strategy open more than its share; the same input gives the same output', () => {
    let scaled = 0;
    for (const seed of SEEDS) {
      for (let round = 0; round < 5; round++) {
        const rng = Rng.seeded(seed * 100 + round);
        const names = ['S1', 'S2', 'S3', 'S4'].slice(0, rng.int(1, 4));
        const raw = names.map(() => rng.next());
        const total = raw.reduce((sum, w) => sum + w, 0) / (0.5 + 0.5 * rng.next());
        const weights = new Map(names.map((name, i) => [name, (raw[i] as number) / total]));
        const positions = new Map<string, number>(SYMBOLS.map((symbol) => [symbol, rng.next() < 0.4 ? 0 : rng.int(-100, 100)]));
        const prices = new Map<string, number>(SYMBOLS.map((symbol) => [symbol, 5 + 100 * rng.next()]));
        const equity = 1_000 + 50_000 * rng.next();
        const intents: StrategyIntent[] = names.flatMap((strategy) => randomIntents(rng, rng.int(0, 5)).map((intent) => ({ ...intent, strategy })));
        const context = { equity, positions, prices, weights, wholeUnits: rng.next() < 0.5 };
        const result = allocate(intents, context);
        expect(allocate(intents, context)).toEqual(result);
        scaled += result.scaled.length;
        for (const strategy of names) {
          const running = new Map(positions);
          let opening = 0;
          for (const intent of result.intents.filter((i) => i.strategy === strategy)) {
            const before = running.get(intent.symbol) ?? 0;
            const against = intent.side === 'buy' ? before < 0 : before > 0;
            const reducing = against ? Math.min(intent.quantity, Math.abs(before)) : 0;
            opening += (intent.quantity - reducing) * (prices.get(intent.symbol) as number);
            running.set(intent.symbol, before + (intent.side === 'buy' ? intent.quantity : -intent.quantity));
          }
          const budget = (weights.get(strategy) as number) * equity;
          expect(opening).toBeLessThanOrEqual(budget * (1 + 1e-9) + 1e-6);
        }
        // Every intent out is one that came in, no larger, and each symbol trades one way only.
        for (const out of result.intents) {
          const source = intents.find((i) => i.strategy === out.strategy && i.intent === out.intent && i.symbol === out.symbol) as StrategyIntent;
          expect(out.side).toBe(source.side);
          expect(out.quantity).toBeLessThanOrEqual(source.quantity);
        }
        for (const symbol of SYMBOLS) expect(new Set(result.intents.filter((i) => i.symbol === symbol).map((i) => i.side)).size).toBeLessThanOrEqual(1);
      }
    }
    expect(scaled).toBeGreaterThan(50);
  });

  it('netting alone (budgets that fit) keeps the account where the intents would have taken it', () => {
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const names = ['S1', 'S2', 'S3'];
      const intents: StrategyIntent[] = names.flatMap((strategy) => randomIntents(rng, rng.int(0, 4)).map((intent) => ({ ...intent, strategy })));
      const result = allocate(intents, { equity: 1e12, positions: {}, prices: { AAA: 1, BBB: 1, CCC: 1 }, weights: { S1: 0.3, S2: 0.3, S3: 0.3 } });
      expect(result.scaled).toEqual([]);
      const flow = (list: readonly Intent[], symbol: string): number =>
        list.filter((i) => i.symbol === symbol).reduce((sum, i) => sum + (i.side === 'buy' ? i.quantity : -i.quantity), 0);
      for (const symbol of SYMBOLS) expect(flow(result.intents, symbol)).toBeCloseTo(flow(intents, symbol), 9);
    }
  });
});
