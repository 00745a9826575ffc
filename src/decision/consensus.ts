import { InvalidInputError } from '../core/index.js';
import type { Strategy, StrategyIntent } from '../strategy/index.js';
import { type QuantitiesBySymbol, splitIntent, toQuantityMap } from './quantities.js';

/** Slack when comparing a support (a fraction) with the threshold: sums of weight × confidence are not exact. */
const SUPPORT_EPSILON = 1e-9;

/** The named thresholds of {@link ConsensusOptions.threshold}. */
export const CONSENSUS_THRESHOLDS = ['majority', 'two-thirds', 'unanimity'] as const;
/** A named threshold: `majority` (support > 1/2), `two-thirds` (>= 2/3), `unanimity` (all of it). */
export type ConsensusThresholdName = (typeof CONSENSUS_THRESHOLDS)[number];
/** A named threshold, or a fraction x in (0, 1]: support >= x. */
export type ConsensusThreshold = ConsensusThresholdName | number;

/** What a side can get from a voter. */
export type ConsensusVote = 'buy' | 'sell' | 'abstain';

/** Why consensus refused an intent (there is one reason). */
export const ConsensusRejectReason = {
  /** The voters' support for its side of its symbol did not reach the threshold (or its group's other intents did not). */
  noConsensus: 'no-consensus',
} as const;
export type ConsensusRejectReason = (typeof ConsensusRejectReason)[keyof typeof ConsensusRejectReason];

/** Options of {@link Consensus}. */
export interface ConsensusOptions {
  /**
   * How much of a symbol's voting weight a side needs: `majority` strictly more than 1/2,
   * `two-thirds` at least 2/3, `unanimity` all of it, a number x in (0, 1] at least x
   * (compared with a slack of 1e-9).
   */
  threshold: ConsensusThreshold;
  /** Vote weight by strategy name, each finite and >= 0, not all 0. @default 1 for every strategy not listed */
  weights?: Readonly<Record<string, number>>;
}

/** A strategy as consensus knows it (a `Strategy` fits); it must declare its `symbols`. */
export type ConsensusStrategy = Pick<Strategy, 'name' | 'symbols'>;

/** A strategy with its vote weight, as compiled. */
export interface ConsensusVoter {
  readonly name: string;
  /** The declared symbols, each once: the symbols it votes on. */
  readonly symbols: readonly string[];
  readonly weight: number;
}

/** The compiled, complete form of {@link ConsensusOptions} and the strategies. */
export interface ConsensusConfig {
  readonly threshold: ConsensusThreshold;
  /** The threshold as a fraction: 1/2 for `majority`, 2/3, 1 for `unanimity`, or the number. */
  readonly required: number;
  /** Whether support must exceed `required` (`majority`) rather than reach it. */
  readonly strict: boolean;
  /** In the order given. */
  readonly voters: readonly ConsensusVoter[];
  /** The voters of each declared symbol, in the order of `voters`. */
  readonly votersBySymbol: ReadonlyMap<string, readonly ConsensusVoter[]>;
}

/** One voter's ballot in a {@link ConsensusRound}. */
export interface ConsensusBallot {
  readonly strategy: string;
  readonly vote: ConsensusVote;
  readonly weight: number;
  /** The largest confidence among its risk-increasing intents on the side it voted (default 1); 0 when it abstained. */
  readonly confidence: number;
}

/** The vote on one side of one symbol in one {@link Consensus.decide}. */
export interface ConsensusRound {
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  /** Σ weight × confidence of the voters voting this side / Σ weight of every voter of the symbol; 0 when that is 0. */
  readonly support: number;
  /** The threshold as a number (see {@link ConsensusConfig.required}). */
  readonly required: number;
  readonly agreed: boolean;
  /** Every voter of the symbol, in the order of the strategies. */
  readonly votes: ConsensusBallot[];
}

/** An intent consensus refused. */
export interface ConsensusRejection<T extends StrategyIntent = StrategyIntent> {
  readonly intent: T;
  readonly reason: ConsensusRejectReason;
  /** For people: the support, the threshold and the votes. */
  readonly message: string;
}

/** The outcome of one {@link Consensus.decide}. */
export interface ConsensusResult<T extends StrategyIntent = StrategyIntent> {
  /** The intents that pass, in the order given. */
  readonly approved: T[];
  /** The refused intents, in the order given. */
  readonly rejected: ConsensusRejection<T>[];
  /** One per (symbol, side) with risk-increasing intents, by symbol (code-unit order), then `buy` before `sell`. */
  readonly rounds: ConsensusRound[];
}

/**
 * Fills in defaults and checks every option.
 * @throws InvalidInputError naming the field: `threshold`, `strategies`, `strategies[i].name`
 *   (missing or used twice), `strategies[i].symbols` (not declared), `weights.<name>` (unknown
 *   strategy, or not a finite number >= 0), `weights` (all 0).
 */
export function compileConsensusOptions(options: ConsensusOptions, strategies: readonly ConsensusStrategy[]): ConsensusConfig {
  const threshold: unknown = options?.threshold;
  let required: number;
  if (typeof threshold === 'number') {
    if (!(threshold > 0 && threshold <= 1)) throw new InvalidInputError('threshold', `must be a fraction in (0, 1] or one of ${namedThresholds()}, got ${threshold}`);
    required = threshold;
  } else if (threshold === 'majority') required = 1 / 2;
  else if (threshold === 'two-thirds') required = 2 / 3;
  else if (threshold === 'unanimity') required = 1;
  else throw new InvalidInputError('threshold', `must be one of ${namedThresholds()} or a fraction in (0, 1], got ${JSON.stringify(threshold)}`);

  const list: unknown = strategies;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidInputError('strategies', 'must list at least one strategy ({ name, symbols })');
  const names = new Set<string>();
  const declared = strategies.map((strategy, i) => {
    const name: unknown = strategy?.name;
    if (typeof name !== 'string' || name.trim() === '') throw new InvalidInputError(`strategies[${i}].name`, `must be a non-empty string, got ${JSON.stringify(name)}`);
    if (names.has(name)) throw new InvalidInputError(`strategies[${i}].name`, `${JSON.stringify(name)} is used twice; names must be unique`);
    names.add(name);
    const symbols: unknown = strategy.symbols;
    if (!Array.isArray(symbols) || symbols.length === 0 || symbols.some((symbol) => typeof symbol !== 'string' || symbol.trim() === '')) {
      throw new InvalidInputError(`strategies[${i}].symbols`, `must list the symbols ${name} trades (they decide which votes it takes part in), got ${JSON.stringify(symbols)}`);
    }
    return { name, symbols: Object.freeze([...new Set(symbols as string[])]) };
  });

  const given: unknown = options.weights ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new InvalidInputError('weights', 'must be a record of vote weights by strategy name');
  for (const name of Object.keys(given)) {
    if (!names.has(name)) throw new InvalidInputError(`weights.${name}`, `is not one of the strategies (${[...names].join(', ')})`);
  }
  const voters = declared.map(({ name, symbols }) => {
    const weight: unknown = Object.hasOwn(given, name) ? (given as Record<string, unknown>)[name] : 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) throw new InvalidInputError(`weights.${name}`, `must be a finite number >= 0, got ${String(weight)}`);
    return Object.freeze({ name, symbols, weight });
  });
  if (voters.every(({ weight }) => weight === 0)) throw new InvalidInputError('weights', 'are all 0: at least one strategy must have a vote weight > 0');

  const votersBySymbol = new Map<string, ConsensusVoter[]>();
  for (const voter of voters) {
    for (const symbol of voter.symbols) {
      const list = votersBySymbol.get(symbol);
      if (list) list.push(voter);
      else votersBySymbol.set(symbol, [voter]);
    }
  }
  for (const list of votersBySymbol.values()) Object.freeze(list);
  return Object.freeze({
    threshold,
    required,
    strict: threshold === 'majority',
    voters: Object.freeze(voters),
    votersBySymbol,
  });
}

/** Options of the {@link Consensus} constructor: the options and the strategies that vote. */
export type ConsensusConstructorOptions = ConsensusOptions & { strategies: readonly ConsensusStrategy[] };

/**
 * A consensus filter for one bar's intents, run before the allocator: a side of a symbol trades only
 * when enough of the strategies that trade the symbol want it. Pure and deterministic: the same
 * intents and positions always give the same result (it keeps no state between calls, reads no
 * clock and no randomness), so the in-process backtest and the swarm's coordinators agree.
 *
 * ## Rules of {@link Consensus.decide}
 * - An intent is risk-reducing when it moves its symbol's position toward zero without crossing it:
 *   a sell of at most the position when long, a buy of at most −position when short. The position
 *   is the account's (as given; missing = 0) less what the same strategy's earlier intents on the
 *   same symbol and side in this call already take from it; other strategies' intents, and the
 *   strategy's intents on the other side, do not move it. So the entry of a reversal (sell the long,
 *   then sell short) is voted on like any new short. A risk-reducing intent is not voted on and
 *   passes (but see groups). Permuting the intents permutes the verdicts, as long as each
 *   strategy's intents on a symbol and side keep their order (runners give an exit before an entry).
 * - Every other intent is risk-increasing. For each symbol with such intents, the voters are the
 *   strategies that declare the symbol. A voter votes `buy` when it has risk-increasing buys on the
 *   symbol, `sell` for sells, and abstains when it has none or both.
 * - Each side with risk-increasing intents has its own round: support = Σ(weight × confidence) of
 *   the voters voting that side / Σ weight of all the symbol's voters. Abstainers count in the
 *   denominator: silence is not agreement. A voter's confidence is the largest `confidence` of its
 *   risk-increasing intents on that side (default 1). When the support meets the threshold the
 *   side's intents pass; otherwise they are refused (`no-consensus`). With a threshold of 1/2 or
 *   less both sides of a symbol may pass; with `majority` or more at most one can.
 * - Groups: intents with the same `strategy` and `intent` label (such as the two legs of a pair)
 *   pass or fail together, as in the risk manager and the allocator, so consensus never leaves half
 *   a pair: when one is refused, the others (risk-reducing ones included) are refused with it.
 * - Output: approved and refused intents each in the order given. Rounds by symbol, then buy, sell.
 */
export class Consensus {
  readonly config: ConsensusConfig;
  readonly #byName: ReadonlyMap<string, ConsensusVoter>;

  /** @throws InvalidInputError naming the field of a bad option (see {@link compileConsensusOptions}). */
  constructor(options: ConsensusConstructorOptions) {
    this.config = compileConsensusOptions(options, options?.strategies);
    this.#byName = new Map(this.config.voters.map((voter) => [voter.name, voter]));
  }

  /**
   * Votes on one bar's intents (rules in the class comment).
   * @param positions signed units held by symbol before these intents (missing = 0).
   * @throws InvalidInputError (a caller bug) naming `intents[i].<field>` for an intent from an
   *   unknown strategy, with a bad side, quantity or confidence, or risk-increasing in a symbol its
   *   strategy does not declare; `positions.<symbol>` for a position that is not a finite number.
   */
  decide<T extends StrategyIntent>(intents: readonly T[], positions: QuantitiesBySymbol = new Map<string, number>()): ConsensusResult<T> {
    const list: unknown = intents;
    if (!Array.isArray(list)) throw new InvalidInputError('intents', 'must be a list of intents');
    const held = toQuantityMap('positions', positions);
    /** `strategy symbol side` → units of that strategy's intents so far on that side of the symbol. */
    const taken = new Map<string, number>();
    /** symbol → strategy → the largest confidence of its risk-increasing intents on each side. */
    const asks = new Map<string, Map<string, { buy?: number; sell?: number }>>();
    const increasing = intents.map((intent, i): boolean => {
      const { strategy, symbol } = intent;
      const side: unknown = intent.side;
      const quantity: unknown = intent.quantity;
      const voter = this.#byName.get(strategy);
      if (voter === undefined) {
        throw new InvalidInputError(`intents[${i}].strategy`, `${JSON.stringify(strategy)} is not one of the strategies (${[...this.#byName.keys()].join(', ')})`);
      }
      if (side !== 'buy' && side !== 'sell') throw new InvalidInputError(`intents[${i}].side`, `must be 'buy' or 'sell', got ${JSON.stringify(side)}`);
      if (typeof quantity !== 'number' || !Number.isFinite(quantity) || quantity <= 0) {
        throw new InvalidInputError(`intents[${i}].quantity`, `must be a finite number > 0, got ${String(quantity)}`);
      }
      const confidence: unknown = intent.confidence ?? 1;
      if (typeof confidence !== 'number' || !(confidence > 0 && confidence <= 1)) {
        throw new InvalidInputError(`intents[${i}].confidence`, `must be a number in (0, 1], got ${String(confidence)}`);
      }
      const key = `${strategy} ${symbol} ${side}`;
      const before = taken.get(key) ?? 0;
      taken.set(key, before + quantity);
      const position = held.get(symbol) ?? 0;
      if (splitIntent(side, quantity, side === 'sell' ? position - before : position + before).opening === 0) return false;
      if (!voter.symbols.includes(symbol)) {
        throw new InvalidInputError(`intents[${i}].symbol`, `${strategy} does not declare ${JSON.stringify(symbol)} in its symbols, so it has no vote on it; declare every symbol a strategy trades`);
      }
      let bySymbol = asks.get(symbol);
      if (bySymbol === undefined) asks.set(symbol, (bySymbol = new Map<string, { buy?: number; sell?: number }>()));
      const ask = bySymbol.get(strategy) ?? {};
      ask[side] = Math.max(ask[side] ?? 0, confidence);
      bySymbol.set(strategy, ask);
      return true;
    });

    const { required, strict } = this.config;
    const rounds: ConsensusRound[] = [];
    /** `symbol side` → why it was refused; absent when it passed. */
    const refusals = new Map<string, string>();
    for (const symbol of [...asks.keys()].sort(compareText)) {
      const bySymbol = asks.get(symbol) as Map<string, { buy?: number; sell?: number }>;
      const voters = this.config.votersBySymbol.get(symbol) as readonly ConsensusVoter[];
      const total = voters.reduce((sum, { weight }) => sum + weight, 0);
      for (const side of ['buy', 'sell'] as const) {
        if (![...bySymbol.values()].some((ask) => ask[side] !== undefined)) continue;
        const votes = voters.map(({ name, weight }): ConsensusBallot => {
          const ask = bySymbol.get(name);
          const vote: ConsensusVote = ask === undefined || (ask.buy !== undefined) === (ask.sell !== undefined) ? 'abstain' : ask.buy !== undefined ? 'buy' : 'sell';
          return { strategy: name, vote, weight, confidence: vote === 'abstain' ? 0 : ((ask as { buy?: number; sell?: number })[vote] as number) };
        });
        const weighted = votes.reduce((sum, { vote, weight, confidence }) => (vote === side ? sum + weight * confidence : sum), 0);
        const support = total > 0 ? weighted / total : 0;
        const agreed = strict ? support > required + SUPPORT_EPSILON : support >= required - SUPPORT_EPSILON;
        rounds.push({ symbol, side, support, required, agreed, votes });
        if (!agreed) refusals.set(`${symbol} ${side}`, this.refusal(symbol, side, support, total, votes));
      }
    }

    // Groups (same strategy and intent label) fail together: the first refused member is the cause.
    const groupCause = new Map<string, { intent: T; message: string }>();
    intents.forEach((intent, i) => {
      const message = increasing[i] ? refusals.get(`${intent.symbol} ${intent.side}`) : undefined;
      const key = groupKey(intent);
      if (message !== undefined && !groupCause.has(key)) groupCause.set(key, { intent, message });
    });
    const approved: T[] = [];
    const rejected: ConsensusRejection<T>[] = [];
    intents.forEach((intent, i) => {
      const own = increasing[i] ? refusals.get(`${intent.symbol} ${intent.side}`) : undefined;
      const cause = groupCause.get(groupKey(intent));
      if (own !== undefined) rejected.push({ intent, reason: ConsensusRejectReason.noConsensus, message: own });
      else if (cause !== undefined) {
        const { symbol, side } = cause.intent;
        rejected.push({ intent, reason: ConsensusRejectReason.noConsensus, message: `refused with ${side} ${symbol} (same strategy and intent, judged together): ${cause.message}` });
      } else approved.push(intent);
    });
    return { approved, rejected, rounds };
  }

  private refusal(symbol: string, side: 'buy' | 'sell', support: number, total: number, votes: readonly ConsensusBallot[]): string {
    const { threshold, required, strict } = this.config;
    const name = typeof threshold === 'number' ? 'threshold' : threshold;
    const ballots = votes.map(({ strategy, vote, weight, confidence }) => (vote === 'abstain' ? `${strategy} abstain (weight ${fraction(weight)})` : `${strategy} ${vote} (weight ${fraction(weight)}, confidence ${fraction(confidence)})`));
    const zero = total === 0 ? ` (every voter of ${symbol} has weight 0)` : '';
    return `no consensus to ${side} ${symbol}: support ${fraction(support)}${zero}, needs ${strict ? '>' : '>='} ${fraction(required)} (${name}); votes: ${ballots.join(', ')}`;
  }
}

/**
 * A consensus filter (see {@link Consensus}).
 * @throws InvalidInputError naming the field of a bad option.
 */
export function createConsensus(options: ConsensusConstructorOptions): Consensus {
  return new Consensus(options);
}

/** Agreement counts of a set of rounds. */
export interface ConsensusTallyCounts {
  readonly rounds: number;
  readonly agreed: number;
  /** `agreed / rounds`; `null` when there were no rounds. */
  readonly agreementRate: number | null;
}

/** What a {@link ConsensusTally} has seen, as plain JSON for reports. */
export interface ConsensusTallySummary extends ConsensusTallyCounts {
  /** The same counts per symbol, keys in code-unit order. */
  readonly bySymbol: Readonly<Record<string, ConsensusTallyCounts>>;
}

/** Accumulates the rounds of many {@link Consensus.decide} calls (a run) into agreement counts for reports. */
export class ConsensusTally {
  #rounds = 0;
  #agreed = 0;
  readonly #bySymbol = new Map<string, { rounds: number; agreed: number }>();

  /** @param from the counts to go on from (a tally's {@link ConsensusTally.summary}; its rates are not read). */
  constructor(from?: Pick<ConsensusTallySummary, 'rounds' | 'agreed'> & { readonly bySymbol: Readonly<Record<string, Pick<ConsensusTallyCounts, 'rounds' | 'agreed'>>> }) {
    if (from === undefined) return;
    this.#rounds = from.rounds;
    this.#agreed = from.agreed;
    for (const [symbol, { rounds, agreed }] of Object.entries(from.bySymbol)) this.#bySymbol.set(symbol, { rounds, agreed });
  }

  /** Counts the rounds of one result (or a list of rounds); returns `this`. */
  add(result: Pick<ConsensusResult, 'rounds'> | readonly ConsensusRound[]): this {
    const rounds = Array.isArray(result) ? (result as readonly ConsensusRound[]) : (result as Pick<ConsensusResult, 'rounds'>).rounds;
    for (const { symbol, agreed } of rounds) {
      const entry = this.#bySymbol.get(symbol) ?? { rounds: 0, agreed: 0 };
      entry.rounds += 1;
      this.#rounds += 1;
      if (agreed) {
        entry.agreed += 1;
        this.#agreed += 1;
      }
      this.#bySymbol.set(symbol, entry);
    }
    return this;
  }

  /** The counts so far. */
  summary(): ConsensusTallySummary {
    const symbols = [...this.#bySymbol.keys()].sort(compareText);
    return {
      ...counts(this.#rounds, this.#agreed),
      bySymbol: Object.fromEntries(symbols.map((symbol) => {
        const { rounds, agreed } = this.#bySymbol.get(symbol) as { rounds: number; agreed: number };
        return [symbol, counts(rounds, agreed)];
      })),
    };
  }

  /** {@link ConsensusTally.summary}, so a tally serialises as its summary. */
  toJSON(): ConsensusTallySummary {
    return this.summary();
  }
}

function counts(rounds: number, agreed: number): ConsensusTallyCounts {
  return { rounds, agreed, agreementRate: rounds === 0 ? null : agreed / rounds };
}

function groupKey(intent: StrategyIntent): string {
  return `${intent.strategy}\u0000${String(intent.intent)}`;
}

function namedThresholds(): string {
  return CONSENSUS_THRESHOLDS.map((name) => `'${name}'`).join(', ');
}

/** A fraction for a message: at most 4 decimals. */
function fraction(value: number): string {
  return String(Number(value.toFixed(4)));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
