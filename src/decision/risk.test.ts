import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import type { Intent, StrategyIntent } from '../strategy/index.js';
import { InvalidTransitionError, isInvalidTransitionError } from './errors.js';
import { RISK_TRANSITIONS, type RiskManagerOptions, type RiskReviewContext, RiskState, compileRiskManagerOptions, createRiskManager, riskTransition } from './risk.js';

const { normal: NORMAL, reducing: REDUCING, halted: HALTED } = RiskState;

function order(symbol: string, side: 'buy' | 'sell', quantity: number, intent = 'x'): Intent {
  return { symbol, side, quantity, type: 'market', intent };
}

function context(overrides: Partial<RiskReviewContext> = {}): RiskReviewContext {
  return { equity: 100_000, peakEquity: 100_000, positions: {}, prices: { AAA: 100, BBB: 50 }, barIndex: 0, ...overrides };
}

/** `[symbol, side, quantity]` of the approved intents and `[symbol, reason]` of the refused ones. */
function verdicts(review: { approved: Intent[]; rejected: Array<{ intent: Intent; reason: string }> }): { approved: string[]; rejected: string[] } {
  return {
    approved: review.approved.map((i) => `${i.side} ${i.quantity} ${i.symbol}`),
    rejected: review.rejected.map(({ intent, reason }) => `${intent.side} ${intent.quantity} ${intent.symbol}: ${reason}`),
  };
}

describe('riskTransition (the table)', () => {
  const EXPECTED: Array<[RiskState, string, RiskState]> = [
    [NORMAL, 'drawdown-recovered', NORMAL],
    [NORMAL, 'drawdown-elevated', NORMAL],
    [NORMAL, 'drawdown-reduce', REDUCING],
    [NORMAL, 'drawdown-halt', HALTED],
    [REDUCING, 'drawdown-recovered', NORMAL],
    [REDUCING, 'drawdown-elevated', REDUCING],
    [REDUCING, 'drawdown-reduce', REDUCING],
    [REDUCING, 'drawdown-halt', HALTED],
    [HALTED, 'drawdown-recovered', HALTED],
    [HALTED, 'drawdown-elevated', HALTED],
    [HALTED, 'drawdown-reduce', HALTED],
    [HALTED, 'drawdown-halt', HALTED],
    [HALTED, 'reset', NORMAL],
  ];

  it.each(EXPECTED)('%s + %s → %s', (state, event, next) => {
    expect(riskTransition(state, event as never)).toBe(next);
  });

  it('lists exactly those pairs', () => {
    const listed = Object.entries(RISK_TRANSITIONS).flatMap(([state, row]) => Object.entries(row).map(([event, next]) => [state, event, next]));
    expect(listed.sort()).toEqual([...EXPECTED].sort());
  });

  it.each([
    [NORMAL, 'reset'],
    [REDUCING, 'reset'],
    [NORMAL, 'toString'],
    ['PAUSED', 'reset'],
  ])('throws on the unlisted pair %s + %s', (state, event) => {
    let thrown: unknown;
    try {
      riskTransition(state as RiskState, event as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidTransitionError);
    expect(isInvalidTransitionError(thrown)).toBe(true);
    expect(thrown).toMatchObject({ machine: 'risk', state, event, retryable: false });
  });

  it('says which events the state allows', () => {
    expect(() => riskTransition(NORMAL, 'reset')).toThrow(
      'risk state NORMAL has no transition for event "reset"; nothing changed. In NORMAL the allowed events are: drawdown-recovered, drawdown-elevated, drawdown-reduce, drawdown-halt',
    );
  });
});

describe('RiskManager drawdown states', () => {
  const options: RiskManagerOptions = { reduceAtDrawdown: 0.1, haltAtDrawdown: 0.2, recoverBelowDrawdown: 0.05 };

  it('walks every drawdown transition by the equity it is shown', () => {
    const risk = createRiskManager(options);
    const path = [100_000, 93_000, 89_000, 93_000, 96_000, 85_000, 79_000, 100_000].map((equity, barIndex) => {
      const review = risk.review([], context({ equity, barIndex }));
      return [review.previousState, review.state, Number(review.drawdown.toFixed(4))];
    });
    expect(path).toEqual([
      [NORMAL, NORMAL, 0],
      [NORMAL, NORMAL, 0.07], // in the band: holds
      [NORMAL, REDUCING, 0.11], // >= 10 %
      [REDUCING, REDUCING, 0.07], // in the band: holds
      [REDUCING, NORMAL, 0.04], // < 5 %: recovered
      [NORMAL, REDUCING, 0.15],
      [REDUCING, HALTED, 0.21], // >= 20 %
      [HALTED, HALTED, 0], // latched, even back at the peak
    ]);
  });

  it('halts straight from NORMAL; reset re-arms it, measuring from the equity at the reset', () => {
    const risk = createRiskManager(options);
    expect(risk.review([], context({ equity: 75_000 })).state).toBe(HALTED);
    expect(risk.reset(75_000)).toBe(NORMAL);
    // The run's peak (100 000) no longer counts: 75 000 is the new reference.
    expect(risk.review([], context({ equity: 75_000, barIndex: 1 })).state).toBe(NORMAL);
    expect(risk.review([], context({ equity: 70_000, barIndex: 2 })).state).toBe(NORMAL); // 6.7 %
    expect(risk.review([], context({ equity: 67_000, barIndex: 3 })).state).toBe(REDUCING); // 10.7 %
  });

  it('refuses a reset when not HALTED, changing nothing', () => {
    const risk = createRiskManager(options);
    expect(() => risk.reset(100_000)).toThrow(InvalidTransitionError);
    risk.review([], context({ equity: 89_000 }));
    expect(() => risk.reset(89_000)).toThrow(InvalidTransitionError);
    expect(risk.state).toBe(REDUCING);
  });

  it('with drawdownWindowBars measures from the highest equity of the window, so a flat account recovers', () => {
    const risk = createRiskManager({ ...options, drawdownWindowBars: 3 });
    const states = [100_000, 100_000, 85_000, 85_000, 85_000].map((equity, barIndex) => risk.review([], context({ equity, peakEquity: 100_000, barIndex })).state);
    // bar 3: window bars 1..3 still holds 100 000; bar 4: window 2..4 peaks at 85 000, drawdown 0.
    expect(states).toEqual([NORMAL, NORMAL, REDUCING, REDUCING, NORMAL]);
  });

  it('without drawdown options never leaves NORMAL', () => {
    const risk = createRiskManager();
    expect(risk.review([order('AAA', 'buy', 1)], context({ equity: 1 })).state).toBe(NORMAL);
  });
});

describe('RiskManager intents by state', () => {
  const held = { positions: { AAA: 10 } };

  it('REDUCING passes only intents that shrink a position', () => {
    const risk = createRiskManager({ reduceAtDrawdown: 0.1, haltAtDrawdown: 0.2 });
    const review = risk.review(
      [order('AAA', 'sell', 4), order('AAA', 'buy', 1), order('BBB', 'sell', 1), order('AAA', 'sell', 7), order('AAA', 'sell', 6)],
      context({ equity: 89_000, ...held }),
    );
    expect(review.state).toBe(REDUCING);
    // 10 → 6 (reduces); buy grows it; BBB opens a short; 6 − 7 would cross to −1; 6 → 0 closes.
    expect(verdicts(review)).toEqual({
      approved: ['sell 4 AAA', 'sell 6 AAA'],
      rejected: ['buy 1 AAA: reducing-only', 'sell 1 BBB: reducing-only', 'sell 7 AAA: reducing-only'],
    });
  });

  it('HALTED passes nothing by default, not even a close', () => {
    const risk = createRiskManager({ haltAtDrawdown: 0.2 });
    const review = risk.review([order('AAA', 'sell', 10), order('BBB', 'buy', 1)], context({ equity: 70_000, ...held }));
    expect(verdicts(review)).toEqual({ approved: [], rejected: ['sell 10 AAA: halted', 'buy 1 BBB: halted'] });
    expect(review.rejected[0]?.message).toContain('nothing passes until reset');
  });

  it('HALTED with allowClosingWhenHalted passes exact closes only', () => {
    const risk = createRiskManager({ haltAtDrawdown: 0.2, allowClosingWhenHalted: true });
    const review = risk.review([order('AAA', 'sell', 4), order('AAA', 'sell', 10), order('BBB', 'buy', 1)], context({ equity: 70_000, positions: { AAA: 10, BBB: -3 } }));
    expect(verdicts(review)).toEqual({ approved: ['sell 10 AAA'], rejected: ['sell 4 AAA: halted', 'buy 1 BBB: halted'] });
  });
});

describe('RiskManager limits', () => {
  it('maxPositionUnits: |position| after each order, judged in order against the running positions', () => {
    const risk = createRiskManager({ maxPositionUnits: 100 });
    const review = risk.review(
      [order('AAA', 'buy', 40), order('AAA', 'buy', 1), order('AAA', 'sell', 200), order('AAA', 'sell', 1)],
      context({ positions: { AAA: 60 } }),
    );
    // 60 → 100 ok; 101 no; 100 → −100 ok (crossing, so not reducing, but within the limit); −101 no.
    expect(verdicts(review)).toEqual({
      approved: ['buy 40 AAA', 'sell 200 AAA'],
      rejected: ['buy 1 AAA: position-limit', 'sell 1 AAA: position-limit'],
    });
  });

  it('a reversal (sell the long, then sell short): the exit shrinks the long; the entry is judged as a new short on what the exit leaves', () => {
    const reversal = [order('AAA', 'sell', 10, 'exit-long'), order('AAA', 'sell', 10, 'enter-short')];
    // NORMAL: 10 → 0 passes; 0 → −10 is past maxPositionUnits 5.
    expect(verdicts(createRiskManager({ maxPositionUnits: 5 }).review(reversal, context({ positions: { AAA: 10 } })))).toEqual({
      approved: ['sell 10 AAA'],
      rejected: ['sell 10 AAA: position-limit'],
    });
    // REDUCING (drawdown 15 % ≥ 10 %): the exit shrinks a position, the short opens one.
    expect(verdicts(createRiskManager({ reduceAtDrawdown: 0.1 }).review(reversal, context({ positions: { AAA: 10 }, equity: 85_000 })))).toEqual({
      approved: ['sell 10 AAA'],
      rejected: ['sell 10 AAA: reducing-only'],
    });
  });

  it('maxPositionFraction: |position × price| at most the fraction of equity', () => {
    const risk = createRiskManager({ maxPositionFraction: 0.5 });
    // 0.5 × 100 000 at 100 a unit: 500 units
    expect(verdicts(risk.review([order('AAA', 'buy', 500), order('AAA', 'buy', 1)], context()))).toEqual({
      approved: ['buy 500 AAA'],
      rejected: ['buy 1 AAA: position-limit'],
    });
  });

  it('maxGrossExposure: Σ|position × price| at most the multiple of equity; reducing orders make room', () => {
    const risk = createRiskManager({ maxGrossExposure: 1 });
    const review = risk.review(
      [order('BBB', 'buy', 800), order('BBB', 'buy', 1), order('AAA', 'sell', 100), order('BBB', 'buy', 1)],
      context({ positions: { AAA: 600 } }),
    );
    // 60 000 + 40 000 = 100 000 ok; + 50 no; AAA 600 → 500 frees 10 000; then + 50 ok.
    expect(verdicts(review)).toEqual({
      approved: ['buy 800 BBB', 'sell 100 AAA', 'buy 1 BBB'],
      rejected: ['buy 1 BBB: gross-exposure'],
    });
  });

  it('never refuses a risk-reducing order for a limit, even when the position is already over it', () => {
    const risk = createRiskManager({ maxPositionUnits: 100, maxGrossExposure: 0.1, maxOrders: 1 });
    const review = risk.review([order('AAA', 'sell', 500), order('AAA', 'sell', 400), order('AAA', 'sell', 200)], context({ positions: { AAA: 1000 } }));
    // 1000 → 500 → 100 (both reduce); 100 → −100 is new risk: the rate limit (2 orders already) refuses it.
    expect(verdicts(review)).toEqual({ approved: ['sell 500 AAA', 'sell 400 AAA'], rejected: ['sell 200 AAA: order-rate'] });
  });

  it('maxOrders per orderWindowBars: counts approved orders in the last N bars', () => {
    const risk = createRiskManager({ maxOrders: 2, orderWindowBars: 3 });
    const buy = order('AAA', 'buy', 1);
    const perBar = [
      verdicts(risk.review([buy, buy, buy], context({ barIndex: 0 }))),
      verdicts(risk.review([buy], context({ barIndex: 1 }))),
      verdicts(risk.review([buy], context({ barIndex: 2 }))),
      verdicts(risk.review([buy], context({ barIndex: 3 }))),
      verdicts(risk.review([order('AAA', 'sell', 1), buy], context({ barIndex: 3, positions: { AAA: 3 } }))),
    ];
    expect(perBar).toEqual([
      { approved: ['buy 1 AAA', 'buy 1 AAA'], rejected: ['buy 1 AAA: order-rate'] },
      { approved: [], rejected: ['buy 1 AAA: order-rate'] },
      { approved: [], rejected: ['buy 1 AAA: order-rate'] },
      // bar 3: bar 0's orders left the window (bars 1..3)
      { approved: ['buy 1 AAA'], rejected: [] },
      // a reducing order passes and counts, so the next buy is over the rate
      { approved: ['sell 1 AAA'], rejected: ['buy 1 AAA: order-rate'] },
    ]);
  });

  it("judges a strategy's intents with the same label together: both legs of a pair pass or neither does", () => {
    const risk = createRiskManager({ maxPositionUnits: 100 });
    const leg = (strategy: string, symbol: string, side: 'buy' | 'sell', quantity: number): StrategyIntent => ({ ...order(symbol, side, quantity, 'enter-long-spread'), strategy });
    const review = risk.review(
      [leg('pairs', 'AAA', 'buy', 50), leg('pairs', 'BBB', 'sell', 150), leg('other', 'AAA', 'buy', 60), leg('pairs2', 'AAA', 'buy', 40), leg('pairs2', 'BBB', 'sell', 100)],
      context(),
    );
    // pairs: BBB −150 breaks the limit, so AAA +50 goes too; 'other' AAA 60 passes; pairs2: 60 + 40 = 100, −100: both pass.
    expect(verdicts(review)).toEqual({
      approved: ['buy 60 AAA', 'buy 40 AAA', 'sell 100 BBB'],
      rejected: ['buy 50 AAA: position-limit', 'sell 150 BBB: position-limit'],
    });
    expect(review.rejected[0]?.message).toBe('refused with BBB (same strategy and intent, judged together): BBB would hold 150 units (order of 150); maxPositionUnits is 100');
  });

  it('refuses new risk without a price when a notional limit is set, and intents that are not intents', () => {
    const fraction = createRiskManager({ maxPositionFraction: 1 });
    expect(verdicts(fraction.review([order('CCC', 'buy', 1)], context()))).toEqual({ approved: [], rejected: ['buy 1 CCC: no-price'] });
    const gross = createRiskManager({ maxGrossExposure: 1 });
    expect(verdicts(gross.review([order('AAA', 'buy', 1)], context({ positions: { DDD: 5 } })))).toEqual({ approved: [], rejected: ['buy 1 AAA: no-price'] });
    const plain = createRiskManager();
    const review = plain.review([order('AAA', 'buy', 0), { ...order('AAA', 'buy', 1), side: 'hold' as 'buy' }, order('CCC', 'buy', 1)], context());
    expect(review.rejected.map((r) => r.reason)).toEqual(['invalid-intent', 'invalid-intent']);
    expect(review.approved).toHaveLength(1);
  });

  it('throws on a caller bug: a bar index that goes back, a non-finite equity', () => {
    const risk = createRiskManager();
    risk.review([], context({ barIndex: 5 }));
    expect(() => risk.review([], context({ barIndex: 4 }))).toThrow(expect.objectContaining({ field: 'barIndex' }) as InvalidInputError);
    expect(() => risk.review([], context({ barIndex: 5, equity: Number.NaN }))).toThrow(expect.objectContaining({ field: 'equity' }) as InvalidInputError);
  });

  it('resumes from a snapshot exactly where it stopped', () => {
    const options: RiskManagerOptions = { maxOrders: 2, orderWindowBars: 5, reduceAtDrawdown: 0.1, drawdownWindowBars: 10 };
    const original = createRiskManager(options);
    original.review([order('AAA', 'buy', 1)], context({ barIndex: 0 }));
    original.review([], context({ barIndex: 1, equity: 89_000 }));
    const restored = createRiskManager(options, JSON.parse(JSON.stringify(original.snapshot())) as ReturnType<typeof original.snapshot>);
    expect(restored.state).toBe(REDUCING);
    const next = context({ barIndex: 2, equity: 99_000, positions: {} });
    expect(restored.review([order('AAA', 'buy', 1), order('AAA', 'buy', 1)], next)).toEqual(original.review([order('AAA', 'buy', 1), order('AAA', 'buy', 1)], next));
  });
});

describe('compileRiskManagerOptions', () => {
  it('turns every limit off by default; a lone halt level also starts reducing there, recovering at half', () => {
    expect(compileRiskManagerOptions()).toEqual({
      maxPositionUnits: Infinity,
      maxPositionFraction: Infinity,
      maxGrossExposure: Infinity,
      maxOrders: Infinity,
      orderWindowBars: 1,
      reduceAtDrawdown: Infinity,
      haltAtDrawdown: Infinity,
      recoverBelowDrawdown: Infinity,
      drawdownWindowBars: Infinity,
      allowClosingWhenHalted: false,
    });
    expect(compileRiskManagerOptions({ haltAtDrawdown: 0.2 })).toMatchObject({ reduceAtDrawdown: 0.2, haltAtDrawdown: 0.2, recoverBelowDrawdown: 0.1 });
  });

  it.each<[RiskManagerOptions, string]>([
    [{ maxPositionUnits: 0 }, 'maxPositionUnits: must be a finite number > 0, got 0'],
    [{ maxGrossExposure: Number.POSITIVE_INFINITY }, 'maxGrossExposure: must be a finite number > 0'],
    [{ maxOrders: 1.5 }, 'maxOrders: must be a whole number >= 1, got 1.5'],
    [{ orderWindowBars: 0 }, 'orderWindowBars: must be a whole number >= 1, got 0'],
    [{ haltAtDrawdown: 1.5 }, 'haltAtDrawdown: must be a fraction in (0, 1], got 1.5'],
    [{ reduceAtDrawdown: 0.3, haltAtDrawdown: 0.2 }, 'reduceAtDrawdown: must be <= haltAtDrawdown (0.2), got 0.3'],
    [{ reduceAtDrawdown: 0.1, recoverBelowDrawdown: 0.2 }, 'recoverBelowDrawdown: must be <= reduceAtDrawdown (0.1), got 0.2'],
    [{ drawdownWindowBars: 0 }, 'drawdownWindowBars: must be a whole number >= 1, got 0'],
    [{ allowClosingWhenHalted: 'yes' as unknown as boolean }, 'allowClosingWhenHalted: must be true or false'],
  ])('rejects %o', (options, message) => {
    expect(() => compileRiskManagerOptions(options)).toThrow(InvalidInputError);
    expect(() => compileRiskManagerOptions(options)).toThrow(message);
  });
});
