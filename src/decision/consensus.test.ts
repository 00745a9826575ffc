import { describe, expect, it } from 'vitest';
import { InvalidInputError, Rng } from '../core/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import { type ConsensusConstructorOptions, type ConsensusResult, type ConsensusStrategy, type ConsensusThreshold, ConsensusTally, compileConsensusOptions, createConsensus } from './consensus.js';

function intent(strategy: string, symbol: string, side: 'buy' | 'sell', extra: { quantity?: number; confidence?: number; label?: string } = {}): StrategyIntent {
  return {
    strategy,
    symbol,
    side,
    quantity: extra.quantity ?? 1,
    type: 'market',
    intent: extra.label ?? `${side}-${symbol}`,
    ...(extra.confidence === undefined ? {} : { confidence: extra.confidence }),
  };
}

/** `strategy side symbol` of each intent. */
function lines(intents: readonly StrategyIntent[]): string[] {
  return intents.map((i) => `${i.strategy} ${i.side} ${i.symbol}`);
}

const THREE: ConsensusStrategy[] = [
  { name: 'S1', symbols: ['AAA'] },
  { name: 'S2', symbols: ['AAA'] },
  { name: 'S3', symbols: ['AAA'] },
];
const FOUR: ConsensusStrategy[] = [...THREE, { name: 'S4', symbols: ['AAA'] }];

/** One buy of AAA from each named strategy. */
function buys(...strategies: string[]): StrategyIntent[] {
  return strategies.map((strategy) => intent(strategy, 'AAA', 'buy'));
}

describe('Consensus thresholds at the boundaries', () => {
  it.each<[string, ConsensusThreshold, ConsensusStrategy[], string[], number, boolean]>([
    ['exactly 1/2 fails majority', 'majority', FOUR, ['S1', 'S2'], 0.5, false],
    ['1 of 2 is exactly 1/2: fails majority', 'majority', THREE.slice(0, 2), ['S1'], 0.5, false],
    ['3/4 passes majority', 'majority', FOUR, ['S1', 'S2', 'S3'], 0.75, true],
    ['2/3 passes majority', 'majority', THREE, ['S1', 'S2'], 2 / 3, true],
    ['exactly 2/3 passes two-thirds', 'two-thirds', THREE, ['S1', 'S2'], 2 / 3, true],
    ['1/2 fails two-thirds', 'two-thirds', FOUR, ['S1', 'S2'], 0.5, false],
    ['3/4 passes two-thirds', 'two-thirds', FOUR, ['S1', 'S2', 'S3'], 0.75, true],
    ['all passes unanimity', 'unanimity', THREE, ['S1', 'S2', 'S3'], 1, true],
    ['3/4 fails unanimity', 'unanimity', FOUR, ['S1', 'S2', 'S3'], 0.75, false],
    ['exactly 1/2 passes 0.5 (>=)', 0.5, FOUR, ['S1', 'S2'], 0.5, true],
    ['exactly 3/4 passes 0.75', 0.75, FOUR, ['S1', 'S2', 'S3'], 0.75, true],
    ['3/4 fails 0.76', 0.76, FOUR, ['S1', 'S2', 'S3'], 0.75, false],
    ['1/4 passes 0.25', 0.25, FOUR, ['S1'], 0.25, true],
    ['all passes 1', 1, THREE, ['S1', 'S2', 'S3'], 1, true],
  ])('%s', (_name, threshold, strategies, buyers, support, agreed) => {
    const result = createConsensus({ threshold, strategies }).decide(buys(...buyers), new Map());
    expect(result.rounds).toHaveLength(1);
    expect(result.rounds[0]?.support).toBeCloseTo(support, 12);
    expect(result.rounds[0]?.agreed).toBe(agreed);
    expect(result.approved).toHaveLength(agreed ? buyers.length : 0);
    expect(result.rejected).toHaveLength(agreed ? 0 : buyers.length);
  });

  it('reports the threshold as a number: majority 0.5, two-thirds 2/3, unanimity 1', () => {
    const required = (threshold: ConsensusThreshold): number | undefined => createConsensus({ threshold, strategies: THREE }).decide(buys('S1'), new Map()).rounds[0]?.required;
    expect([required('majority'), required('two-thirds'), required('unanimity'), required(0.3)]).toEqual([0.5, 2 / 3, 1, 0.3]);
  });

  it('compares with a slack: confidences 0.6, 0.7, 0.8 of 3 sum to 0.6999999999999998, which still reaches 0.7', () => {
    const intents = [0.6, 0.7, 0.8].map((confidence, i) => intent(`S${i + 1}`, 'AAA', 'buy', { confidence }));
    const result = createConsensus({ threshold: 0.7, strategies: THREE }).decide(intents, new Map());
    expect(result.rounds[0]?.support).toBeLessThan(0.7);
    expect(result.rounds[0]?.agreed).toBe(true);
  });
});

describe('Consensus weights and confidences', () => {
  it.each<[string, ConsensusConstructorOptions['weights'], StrategyIntent[], number]>([
    ['weight 3 of 5 alone', { S1: 3 }, buys('S1'), 3 / 5],
    ['weight 3 of 5 at confidence 0.5', { S1: 3 }, [intent('S1', 'AAA', 'buy', { confidence: 0.5 })], 1.5 / 5],
    ['a voter counts its most confident intent on the side', undefined, [intent('S1', 'AAA', 'buy', { confidence: 0.4 }), intent('S1', 'AAA', 'buy', { confidence: 0.9, label: 'more' })], 0.9 / 3],
    ['confidences add up weighted', { S2: 2 }, [intent('S1', 'AAA', 'buy', { confidence: 0.5 }), intent('S2', 'AAA', 'buy', { confidence: 0.75 })], (0.5 + 1.5) / 4],
    ['a weight-0 voter is not in the denominator', { S3: 0 }, buys('S1'), 1 / 2],
    ['a weight-0 voter adds nothing when it votes', { S3: 0 }, buys('S1', 'S3'), 1 / 2],
    ['abstainers count: 1 of 3 is 1/3', undefined, buys('S1'), 1 / 3],
  ])('%s', (_name, weights, intents, support) => {
    const result = createConsensus({ threshold: 0.1, strategies: THREE, ...(weights === undefined ? {} : { weights }) }).decide(intents, new Map());
    expect(result.rounds.map((round) => round.support)).toEqual([expect.closeTo(support, 12)]);
  });

  it('lists every voter with its vote, weight and confidence (0 for abstain), in the order of the strategies', () => {
    const result = createConsensus({ threshold: 'majority', strategies: THREE, weights: { S2: 2 } }).decide(
      [intent('S3', 'AAA', 'buy', { confidence: 0.6 }), intent('S1', 'AAA', 'buy')],
      new Map(),
    );
    expect(result.rounds).toEqual([
      {
        symbol: 'AAA',
        side: 'buy',
        support: 0.4,
        required: 0.5,
        agreed: false,
        votes: [
          { strategy: 'S1', vote: 'buy', weight: 1, confidence: 1 },
          { strategy: 'S2', vote: 'abstain', weight: 2, confidence: 0 },
          { strategy: 'S3', vote: 'buy', weight: 1, confidence: 0.6 },
        ],
      },
    ]);
  });

  it('unanimity with a weight-0 abstainer: every voter that weighs something agreed', () => {
    expect(createConsensus({ threshold: 'unanimity', strategies: THREE, weights: { S3: 0 } }).decide(buys('S1', 'S2'), new Map()).rounds[0]?.agreed).toBe(true);
  });

  it('unanimity fails when a voter is less than fully confident', () => {
    const intents = [...buys('S1', 'S2'), intent('S3', 'AAA', 'buy', { confidence: 0.99 })];
    expect(createConsensus({ threshold: 'unanimity', strategies: THREE }).decide(intents, new Map()).approved).toEqual([]);
  });

  it('a symbol whose voters all weigh 0 has support 0: nothing opens there', () => {
    const strategies = [...THREE, { name: 'S4', symbols: ['BBB'] }];
    const result = createConsensus({ threshold: 0.01, strategies, weights: { S4: 0 } }).decide([intent('S4', 'BBB', 'buy')], new Map());
    expect(result.rounds[0]).toMatchObject({ symbol: 'BBB', support: 0, agreed: false });
    expect(result.rejected[0]?.message).toBe('no consensus to buy BBB: support 0 (every voter of BBB has weight 0), needs >= 0.01 (threshold); votes: S4 buy (weight 0, confidence 1)');
  });
});

describe('Consensus sides, voters and risk-reducing intents', () => {
  it('votes each side in its own round, buy before sell; the refused side says why', () => {
    const intents = [intent('S2', 'AAA', 'sell'), intent('S1', 'AAA', 'buy'), intent('S3', 'AAA', 'sell')];
    const result = createConsensus({ threshold: 'two-thirds', strategies: THREE }).decide(intents, new Map());
    expect(result.rounds.map((r) => [r.side, Number(r.support.toFixed(4)), r.agreed])).toEqual([
      ['buy', 0.3333, false],
      ['sell', 0.6667, true],
    ]);
    expect(lines(result.approved)).toEqual(['S2 sell AAA', 'S3 sell AAA']);
    expect(result.rejected).toEqual([
      {
        intent: intents[1],
        reason: 'no-consensus',
        message:
          'no consensus to buy AAA: support 0.3333, needs >= 0.6667 (two-thirds); votes: S1 buy (weight 1, confidence 1), S2 sell (weight 1, confidence 1), S3 sell (weight 1, confidence 1)',
      },
    ]);
  });

  it('says > for majority', () => {
    const result = createConsensus({ threshold: 'majority', strategies: THREE.slice(0, 2) }).decide(buys('S1'), new Map());
    expect(result.rejected[0]?.message).toBe('no consensus to buy AAA: support 0.5, needs > 0.5 (majority); votes: S1 buy (weight 1, confidence 1), S2 abstain (weight 1)');
  });

  it('a voter with intents on both sides abstains, and its intents follow their side', () => {
    const intents = [intent('S1', 'AAA', 'buy'), intent('S1', 'AAA', 'sell'), intent('S2', 'AAA', 'buy'), intent('S3', 'AAA', 'buy')];
    const result = createConsensus({ threshold: 'two-thirds', strategies: THREE }).decide(intents, new Map());
    expect(result.rounds.map((r) => [r.side, r.votes.map((v) => v.vote).join(' '), r.agreed])).toEqual([
      ['buy', 'abstain buy buy', true],
      ['sell', 'abstain buy buy', false],
    ]);
    expect(lines(result.approved)).toEqual(['S1 buy AAA', 'S2 buy AAA', 'S3 buy AAA']);
    expect(lines(result.rejected.map((r) => r.intent))).toEqual(['S1 sell AAA']);
  });

  it('with a threshold <= 1/2 both sides of a symbol can pass', () => {
    const result = createConsensus({ threshold: 0.5, strategies: FOUR }).decide([...buys('S1', 'S2'), intent('S3', 'AAA', 'sell'), intent('S4', 'AAA', 'sell')], new Map());
    expect(result.rounds.map((r) => r.agreed)).toEqual([true, true]);
  });

  it('only strategies that declare the symbol vote on it', () => {
    const strategies = [
      { name: 'S1', symbols: ['AAA', 'BBB'] },
      { name: 'S2', symbols: ['AAA'] },
      { name: 'S3', symbols: ['BBB'] },
    ];
    const intents = [intent('S1', 'BBB', 'buy'), intent('S1', 'AAA', 'buy'), intent('S2', 'AAA', 'buy')];
    const result = createConsensus({ threshold: 'majority', strategies }).decide(intents, new Map());
    expect(result.rounds.map((r) => [r.symbol, r.votes.map((v) => `${v.strategy}:${v.vote}`).join(' '), r.support])).toEqual([
      ['AAA', 'S1:buy S2:buy', 1],
      ['BBB', 'S1:buy S3:abstain', 0.5],
    ]);
    expect(lines(result.approved)).toEqual(['S1 buy AAA', 'S2 buy AAA']);
  });

  it.each<[string, number, 'buy' | 'sell', number, boolean]>([
    ['long 10: sell 10 closes', 10, 'sell', 10, true],
    ['long 10: sell 4 shrinks', 10, 'sell', 4, true],
    ['long 10: sell 11 crosses to short', 10, 'sell', 11, false],
    ['long 10: buy 1 grows', 10, 'buy', 1, false],
    ['short 5: buy 5 closes', -5, 'buy', 5, true],
    ['short 5: buy 6 crosses to long', -5, 'buy', 6, false],
    ['short 5: sell 1 grows', -5, 'sell', 1, false],
    ['flat: anything opens', 0, 'sell', 1, false],
  ])('risk-reducing intents pass without a vote (%s)', (_name, position, side, quantity, reducing) => {
    const result = createConsensus({ threshold: 'unanimity', strategies: THREE }).decide([intent('S1', 'AAA', side, { quantity })], new Map([['AAA', position]]));
    expect(result.rounds).toHaveLength(reducing ? 0 : 1);
    expect(result.approved).toHaveLength(reducing ? 1 : 0);
  });

  it('votes on the entry of a reversal: a strategy\'s own exit moves the position its next intent is judged on', () => {
    // Long 10; S1 exits (sell 10) and sells 10 short. Against the account alone both sells would
    // shrink the long; after S1's exit the second opens a short, so it is voted on (S1 alone: 1/3).
    const reversal = [intent('S1', 'AAA', 'sell', { quantity: 10, label: 'exit-long' }), intent('S1', 'AAA', 'sell', { quantity: 10, label: 'enter-short' })];
    const result = createConsensus({ threshold: 'majority', strategies: THREE }).decide(reversal, { AAA: 10 });
    expect(result.rounds.map((r) => [r.side, r.support])).toEqual([['sell', 1 / 3]]);
    expect(result.approved.map((i) => i.intent)).toEqual(['exit-long']);
    expect(result.rejected.map((r) => [r.intent.intent, r.reason])).toEqual([['enter-short', 'no-consensus']]);
  });

  it('judges each intent against the positions given (missing = 0), not against the other intents', () => {
    // Two exits of 10 against a long of 10: each alone reduces, so neither is voted on.
    const exits = [intent('S1', 'AAA', 'sell', { quantity: 10 }), intent('S2', 'AAA', 'sell', { quantity: 10, label: 'exit' })];
    expect(createConsensus({ threshold: 'unanimity', strategies: THREE }).decide(exits, { AAA: 10 })).toEqual({ approved: exits, rejected: [], rounds: [] });
    expect(createConsensus({ threshold: 'unanimity', strategies: THREE }).decide(exits).approved).toEqual([]);
  });

  it('keeps the input order across symbols', () => {
    const strategies = [
      { name: 'S1', symbols: ['AAA', 'BBB'] },
      { name: 'S2', symbols: ['AAA', 'BBB'] },
    ];
    const intents = [intent('S2', 'BBB', 'buy'), intent('S1', 'AAA', 'sell', { quantity: 3 }), intent('S1', 'BBB', 'buy'), intent('S2', 'AAA', 'buy')];
    const result = createConsensus({ threshold: 'unanimity', strategies }).decide(intents, { AAA: 3 });
    // BBB: both buy (agreed); AAA: S2 buys, S1 only reduces (abstains): 1/2, refused.
    expect(lines(result.approved)).toEqual(['S2 buy BBB', 'S1 sell AAA', 'S1 buy BBB']);
    expect(lines(result.rejected.map((r) => r.intent))).toEqual(['S2 buy AAA']);
  });

  it('passes or refuses a group (same strategy and intent label) whole, so a pair never goes on one leg', () => {
    const strategies = [
      { name: 'P', symbols: ['AAA', 'BBB'] },
      { name: 'S1', symbols: ['AAA'] },
      { name: 'S2', symbols: ['BBB'] },
    ];
    const legs = [intent('P', 'AAA', 'buy', { label: 'enter-spread' }), intent('P', 'BBB', 'sell', { label: 'enter-spread' })];
    // AAA: P and S1 buy (agreed); BBB: P sells, S2 abstains (1/2, not a majority).
    const result = createConsensus({ threshold: 'majority', strategies }).decide([...legs, intent('S1', 'AAA', 'buy')], new Map());
    expect(result.rounds.map((r) => [r.symbol, r.agreed])).toEqual([
      ['AAA', true],
      ['BBB', false],
    ]);
    expect(lines(result.approved)).toEqual(['S1 buy AAA']);
    expect(result.rejected.map((r) => r.message)).toEqual([
      'refused with sell BBB (same strategy and intent, judged together): no consensus to sell BBB: support 0.5, needs > 0.5 (majority); votes: P sell (weight 1, confidence 1), S2 abstain (weight 1)',
      'no consensus to sell BBB: support 0.5, needs > 0.5 (majority); votes: P sell (weight 1, confidence 1), S2 abstain (weight 1)',
    ]);
    // A leg that reduces the account's position goes down with its refused partner.
    const reducingLeg = createConsensus({ threshold: 'majority', strategies }).decide(legs, { AAA: -5 });
    expect(reducingLeg.rounds.map((r) => r.symbol)).toEqual(['BBB']);
    expect(reducingLeg.approved).toEqual([]);
  });
});

describe('Consensus bad input', () => {
  it.each<[Partial<ConsensusConstructorOptions>, string]>([
    [{ threshold: 'most' as 'majority' }, "threshold: must be one of 'majority', 'two-thirds', 'unanimity' or a fraction in (0, 1], got \"most\""],
    [{ threshold: 0 }, 'threshold: must be a fraction in (0, 1]'],
    [{ threshold: 1.5 }, 'threshold: must be a fraction in (0, 1]'],
    [{ threshold: Number.NaN }, 'threshold: must be a fraction in (0, 1]'],
    [{ strategies: [] }, 'strategies: must list at least one strategy'],
    [{ strategies: [{ name: 'S1', symbols: ['AAA'] }, { name: 'S1', symbols: ['AAA'] }] }, 'strategies[1].name: "S1" is used twice'],
    [{ strategies: [{ name: '', symbols: ['AAA'] }] }, 'strategies[0].name: must be a non-empty string'],
    [{ strategies: [{ name: 'S1', symbols: ['AAA'] }, { name: 'S2' }] }, 'strategies[1].symbols: must list the symbols S2 trades'],
    [{ strategies: [{ name: 'S1', symbols: [] }] }, 'strategies[0].symbols: must list the symbols S1 trades'],
    [{ weights: { S9: 1 } }, 'weights.S9: is not one of the strategies (S1, S2, S3)'],
    [{ weights: { S2: -1 } }, 'weights.S2: must be a finite number >= 0, got -1'],
    [{ weights: { S2: Infinity } }, 'weights.S2: must be a finite number >= 0, got Infinity'],
    [{ weights: { S1: 0, S2: 0, S3: 0 } }, 'weights: are all 0'],
  ])('rejects %o', (options, message) => {
    const build = (): unknown => createConsensus({ threshold: 'majority', strategies: THREE, ...options });
    expect(build).toThrow(InvalidInputError);
    expect(build).toThrow(message);
  });

  it('compiles into a readonly, complete config', () => {
    const config = compileConsensusOptions({ threshold: 'majority', weights: { S2: 2 } }, [{ name: 'S1', symbols: ['AAA', 'AAA'] }, { name: 'S2', symbols: ['AAA', 'BBB'] }]);
    expect(Object.isFrozen(config)).toBe(true);
    expect(config).toMatchObject({ threshold: 'majority', required: 0.5, strict: true });
    expect(config.voters).toEqual([
      { name: 'S1', symbols: ['AAA'], weight: 1 },
      { name: 'S2', symbols: ['AAA', 'BBB'], weight: 2 },
    ]);
    expect([...config.votersBySymbol].map(([symbol, voters]) => [symbol, voters.map((v) => v.name)])).toEqual([
      ['AAA', ['S1', 'S2']],
      ['BBB', ['S2']],
    ]);
  });

  it.each<[StrategyIntent, ReadonlyMap<string, number>, string]>([
    [intent('S9', 'AAA', 'buy'), new Map(), 'intents[0].strategy: "S9" is not one of the strategies (S1, S2, S3)'],
    [intent('S1', 'BBB', 'buy'), new Map(), 'intents[0].symbol: S1 does not declare "BBB" in its symbols'],
    [intent('S1', 'AAA', 'buy', { confidence: 0 }), new Map(), 'intents[0].confidence: must be a number in (0, 1], got 0'],
    [intent('S1', 'AAA', 'buy', { confidence: 1.2 }), new Map(), 'intents[0].confidence: must be a number in (0, 1], got 1.2'],
    [intent('S1', 'AAA', 'buy', { quantity: -1 }), new Map(), 'intents[0].quantity: must be a finite number > 0, got -1'],
    [{ ...intent('S1', 'AAA', 'buy'), side: 'hold' as 'buy' }, new Map(), "intents[0].side: must be 'buy' or 'sell'"],
    [intent('S1', 'AAA', 'buy'), new Map([['AAA', Number.NaN]]), 'positions.AAA: must be a finite number, got NaN'],
  ])('decide throws naming the field (%#)', (bad, positions, message) => {
    const consensus = createConsensus({ threshold: 'majority', strategies: THREE });
    expect(() => consensus.decide([bad], positions)).toThrow(InvalidInputError);
    expect(() => consensus.decide([bad], positions)).toThrow(message);
  });

  it('lets a strategy reduce a position in a symbol it does not declare (nothing to vote on)', () => {
    const exit = intent('S1', 'BBB', 'sell', { quantity: 2 });
    expect(createConsensus({ threshold: 'majority', strategies: THREE }).decide([exit], { BBB: 2 }).approved).toEqual([exit]);
  });
});

describe('ConsensusTally', () => {
  it('counts rounds and agreements, overall and by symbol; the rate is null before any round', () => {
    const tally = new ConsensusTally();
    expect(tally.summary()).toEqual({ rounds: 0, agreed: 0, agreementRate: null, bySymbol: {} });
    const strategies = [
      { name: 'S1', symbols: ['AAA', 'BBB'] },
      { name: 'S2', symbols: ['AAA', 'BBB'] },
    ];
    const consensus = createConsensus({ threshold: 'unanimity', strategies });
    tally.add(consensus.decide([intent('S1', 'BBB', 'buy'), intent('S2', 'BBB', 'buy'), intent('S1', 'AAA', 'sell')], new Map()));
    tally.add(consensus.decide([intent('S1', 'BBB', 'buy')], new Map()).rounds);
    tally.add(consensus.decide([], new Map()));
    expect(JSON.parse(JSON.stringify(tally))).toEqual({
      rounds: 3,
      agreed: 1,
      agreementRate: 1 / 3,
      bySymbol: {
        AAA: { rounds: 1, agreed: 0, agreementRate: 0 },
        BBB: { rounds: 2, agreed: 1, agreementRate: 0.5 },
      },
    });
    expect(Object.keys(tally.summary().bySymbol)).toEqual(['AAA', 'BBB']);
    // A tally made from a summary goes on counting from there.
    const resumed = new ConsensusTally(tally.summary()).add(consensus.decide([intent('S1', 'AAA', 'buy'), intent('S2', 'AAA', 'buy')], new Map()));
    expect(resumed.summary()).toEqual(tally.add(consensus.decide([intent('S1', 'AAA', 'buy'), intent('S2', 'AAA', 'buy')], new Map())).summary());
  });
});

// Seeded property tests: the invariants hold for random strategies, weights, positions and intents.
const SEEDS = Array.from({ length: 200 }, (_, i) => i + 1);
const SYMBOLS = ['AAA', 'BBB', 'CCC'] as const;
/** Loosest to strictest: each approves a subset of what the one before approves. */
const LADDER: readonly ConsensusThreshold[] = [0.2, 0.5, 'majority', 0.6, 'two-thirds', 0.9, 'unanimity'];

interface Case {
  strategies: ConsensusStrategy[];
  weights: Record<string, number>;
  positions: Map<string, number>;
  intents: StrategyIntent[];
}

function randomCase(rng: Rng): Case {
  const strategies = Array.from({ length: rng.int(1, 6) }, (_, i) => {
    const symbols = SYMBOLS.filter(() => rng.next() < 0.6);
    return { name: `S${i}`, symbols: symbols.length > 0 ? symbols : [rng.pick(SYMBOLS)] };
  });
  const weights: Record<string, number> = {};
  for (const { name } of strategies) if (rng.next() < 0.6) weights[name] = rng.pick([0, 0.5, 1, 2, 3]);
  if (strategies.every(({ name }) => weights[name] === 0)) weights[strategies[0]!.name] = 1;
  const positions = new Map(SYMBOLS.filter(() => rng.next() < 0.7).map((symbol) => [symbol, rng.pick([-10, -5, 0, 5, 10])]));
  const intents = Array.from({ length: rng.int(0, 14) }, (_, i) => {
    const strategy = rng.pick(strategies);
    const confidence = rng.pick([undefined, 0.25, 0.5, 0.75, 1]);
    return intent(strategy.name, rng.pick(strategy.symbols), rng.pick(['buy', 'sell'] as const), {
      quantity: rng.pick([3, 5, 10, 12]),
      ...(confidence === undefined ? {} : { confidence }),
      // A few shared labels make groups (such as a pair's legs).
      label: rng.next() < 0.3 ? 'group' : `i${i}`,
    });
  });
  return { strategies, weights, positions, intents };
}

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** `strategy symbol side`: the intents whose order consensus reads. */
const sideKey = (i: StrategyIntent): string => `${i.strategy} ${i.symbol} ${i.side}`;

/** A shuffle that keeps the order of each strategy's intents on a symbol and side. */
function shuffledKeepingSides(rng: Rng, items: readonly StrategyIntent[]): StrategyIntent[] {
  const queues = new Map<string, StrategyIntent[]>();
  for (const item of items) queues.set(sideKey(item), [...(queues.get(sideKey(item)) ?? []), item]);
  return shuffled(rng, items).map((slot) => queues.get(sideKey(slot))!.shift()!);
}

/** Risk-reducing: against the position, within what the strategy's earlier intents on that symbol and side left of it. */
function isReducing(intent: StrategyIntent, positions: ReadonlyMap<string, number>, intents: readonly StrategyIntent[]): boolean {
  const taken = intents.slice(0, intents.indexOf(intent)).filter((other) => sideKey(other) === sideKey(intent)).reduce((sum, other) => sum + other.quantity, 0);
  const position = positions.get(intent.symbol) ?? 0;
  const left = intent.side === 'sell' ? position - taken : -position - taken;
  return left > 0 && intent.quantity <= left;
}

function decide(c: Case, threshold: ConsensusThreshold, intents = c.intents, weights = c.weights): ConsensusResult {
  return createConsensus({ threshold, strategies: c.strategies, weights }).decide(intents, c.positions);
}

describe('Consensus (seeded)', () => {
  it('splits the input into approved and refused subsequences; rounds and verdicts follow the rules', () => {
    let approved = 0;
    let rejected = 0;
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const c = randomCase(rng);
      const threshold = rng.pick(LADDER);
      const result = decide(c, threshold);
      // Both are subsequences of the input and together they are all of it, each once.
      const verdict = new Map<StrategyIntent, boolean>();
      for (const i of result.approved) verdict.set(i, true);
      for (const { intent: i } of result.rejected) verdict.set(i, false);
      expect(verdict.size).toBe(c.intents.length);
      expect(result.approved).toEqual(c.intents.filter((i) => verdict.get(i) === true));
      expect(result.rejected.map((r) => r.intent)).toEqual(c.intents.filter((i) => verdict.get(i) === false));
      approved += result.approved.length;
      rejected += result.rejected.length;

      // One round per (symbol, side) with a risk-increasing intent, sorted; supports in [0, 1].
      const increasing = c.intents.filter((i) => !isReducing(i, c.positions, c.intents));
      const keys = [...new Set(increasing.map((i) => `${i.symbol} ${i.side}`))].sort();
      expect(result.rounds.map((r) => `${r.symbol} ${r.side}`)).toEqual(keys);
      const agreed = new Map(result.rounds.map((r) => [`${r.symbol} ${r.side}`, r.agreed]));
      for (const round of result.rounds) {
        expect(round.support).toBeGreaterThanOrEqual(0);
        expect(round.support).toBeLessThanOrEqual(1 + 1e-12);
      }
      // Each voter votes one side at most, so the two sides' supports add up to at most 1.
      for (const symbol of SYMBOLS) {
        const sides = result.rounds.filter((r) => r.symbol === symbol);
        expect(sides.reduce((sum, r) => sum + r.support, 0)).toBeLessThanOrEqual(1 + 1e-12);
      }
      // An intent passes iff every risk-increasing intent of its group has an agreed round.
      for (const i of c.intents) {
        const group = c.intents.filter((other) => other.strategy === i.strategy && other.intent === i.intent);
        const passes = group.every((member) => isReducing(member, c.positions, c.intents) || agreed.get(`${member.symbol} ${member.side}`) === true);
        expect(verdict.get(i)).toBe(passes);
      }
    }
    expect(approved).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });

  it('same input, same output; permuting the intents (each strategy\'s on a symbol and side in order) only permutes the verdicts', () => {
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const c = randomCase(rng);
      const threshold = rng.pick(LADDER);
      const first = decide(c, threshold);
      expect(decide(c, threshold)).toEqual(first);
      const permuted = shuffledKeepingSides(rng, c.intents);
      const again = decide(c, threshold, permuted);
      const passed = new Set(first.approved);
      expect(again.rounds).toEqual(first.rounds);
      expect(again.approved).toEqual(permuted.filter((i) => passed.has(i)));
      expect(again.rejected.map((r) => r.intent)).toEqual(permuted.filter((i) => !passed.has(i)));
    }
  });

  it('a stricter threshold approves a subset; unanimity is the threshold 1', () => {
    for (const seed of SEEDS) {
      const c = randomCase(Rng.seeded(seed));
      const approved = LADDER.map((threshold) => new Set(decide(c, threshold).approved));
      for (let k = 1; k < approved.length; k++) {
        for (const i of approved[k]!) expect(approved[k - 1]!.has(i)).toBe(true);
      }
      const one = decide(c, 1);
      const unanimity = decide(c, 'unanimity');
      expect(one.approved).toEqual(unanimity.approved);
      expect(one.rounds).toEqual(unanimity.rounds);
      // With majority or stricter, at most one side of a symbol is agreed.
      for (const threshold of LADDER.slice(2)) {
        const agreedSymbols = decide(c, threshold).rounds.filter((r) => r.agreed).map((r) => r.symbol);
        expect(new Set(agreedSymbols).size).toBe(agreedSymbols.length);
      }
    }
  });

  it('unanimity approves a side only if every voter with weight > 0 voted it with confidence 1', () => {
    let agreedRounds = 0;
    for (const seed of SEEDS) {
      const c = randomCase(Rng.seeded(seed));
      for (const round of decide(c, 'unanimity').rounds) {
        if (!round.agreed) continue;
        agreedRounds += 1;
        const voters = c.strategies.filter((s) => s.symbols?.includes(round.symbol) && (c.weights[s.name] ?? 1) > 0);
        for (const voter of voters) {
          const own = c.intents.filter((i) => i.strategy === voter.name && i.symbol === round.symbol && !isReducing(i, c.positions, c.intents));
          expect(own.some((i) => i.side === round.side && (i.confidence ?? 1) === 1)).toBe(true);
          expect(own.every((i) => i.side === round.side)).toBe(true);
        }
      }
    }
    expect(agreedRounds).toBeGreaterThan(10);
  });

  it('scaling every weight by a power of two changes no verdict and no support', () => {
    for (const seed of SEEDS) {
      const rng = Rng.seeded(seed);
      const c = randomCase(rng);
      const threshold = rng.pick(LADDER);
      const factor = rng.pick([0.25, 2, 8]);
      const scaled = Object.fromEntries(c.strategies.map(({ name }) => [name, (c.weights[name] ?? 1) * factor]));
      const base = decide(c, threshold);
      const other = decide(c, threshold, c.intents, scaled);
      expect(other.approved).toEqual(base.approved);
      expect(other.rounds.map((r) => [r.support, r.agreed])).toEqual(base.rounds.map((r) => [r.support, r.agreed]));
    }
  });
});
