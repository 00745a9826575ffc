import type { Bar } from '../market/index.js';
import type { StrategyAccount, StrategyIntent } from '../strategy/index.js';
import { type AllocatedStrategy, PortfolioAllocator, type PortfolioAllocatorOptions } from './allocator.js';
import { Consensus, type ConsensusOptions, ConsensusTally, type ConsensusTallySummary } from './consensus.js';
import { RiskManager, type RiskManagerOptions, RiskState } from './risk.js';

/**
 * The account as every decision of one bar time step sees it: what its strategies saw (taken after
 * the step's fills and its mark to market, before any of the step's orders), and the peak.
 */
export interface AccountSnapshot extends StrategyAccount {
  /** The highest equity mark so far in the run (the risk manager's drawdown reference). */
  readonly peakEquity: number;
}

const NO_REJECTIONS: readonly DecisionRejection[] = Object.freeze([]);
const NO_INTENTS: readonly StrategyIntent[] = Object.freeze([]);
/** Most steps of a run decide nothing: they share this answer. */
const NO_DECISION: Decision = Object.freeze({ approved: NO_INTENTS, rejected: NO_REJECTIONS });

/** Options of {@link DecisionPipeline}; without `consensus`, `allocator` and `risk` every intent passes. */
export interface DecisionPipelineOptions {
  /** Every strategy of the run (name and symbols), in the run's order. */
  strategies: readonly AllocatedStrategy[];
  /** Strategies trading a symbol vote on each new risk taken in it (weights, threshold). */
  consensus?: ConsensusOptions;
  /** Fits the step's intents into the account (weights, budgets, netting). */
  allocator?: Omit<PortfolioAllocatorOptions, 'strategies'>;
  /** Limits and the drawdown kill switch. */
  risk?: RiskManagerOptions;
}

/** Why a pipeline stage dropped an intent. */
export interface DecisionRejection {
  readonly intent: StrategyIntent;
  /** The stage that refused it. */
  readonly source: 'consensus' | 'risk';
  /** A stable code (`no-consensus`, or the risk manager's `RiskRejectReason`). */
  readonly reason: string;
  readonly message: string;
}

/** What {@link DecisionPipeline.decide} made of one step's intents. */
export interface Decision {
  /** The intents to submit, in order. */
  readonly approved: readonly StrategyIntent[];
  readonly rejected: readonly DecisionRejection[];
}

/** How the risk manager's state went over the run (one review per bar time step). */
export interface RiskStateSummary {
  /** Time steps spent in each state (judged after that step's drawdown). */
  readonly barsInState: Readonly<Record<RiskState, number>>;
  /** Every state change, in order. */
  readonly transitions: ReadonlyArray<{ readonly barIndex: number; readonly from: RiskState; readonly to: RiskState; readonly drawdown: number }>;
  readonly finalState: RiskState;
  /** Intents the risk manager refused. */
  readonly rejected: number;
}

/** What the allocator changed over the run. */
export interface AllocationSummary {
  /** Intents cut (or dropped) to fit their strategy's budget. */
  readonly scaled: number;
  /** Intents cut or dropped by netting against opposite intents on the same symbol. */
  readonly netted: number;
}

/** What a {@link DecisionPipeline} did over the run. */
export interface DecisionSummary {
  /** `null` without a risk manager. */
  readonly riskState: RiskStateSummary | null;
  /** `null` without an allocator. */
  readonly allocation: AllocationSummary | null;
  /** Votes held and agreed; `null` without consensus. */
  readonly consensus: ConsensusTallySummary | null;
}

/**
 * Turns one time step's intents of all strategies into the orders to place: consensus, allocator,
 * then risk manager. Deterministic: the same steps, intents and accounts give the same decisions, which is
 * what lets every agent of a mesh compute the same decision, and a swarm run match a backtest.
 * Feed it every time step in order, with or without intents (the risk manager reviews every step so
 * its state follows the drawdown, and the allocator's volatility windows need every bar).
 */
export class DecisionPipeline {
  readonly #consensus: Consensus | undefined;
  readonly #tally = new ConsensusTally();
  readonly #allocator: PortfolioAllocator | undefined;
  readonly #risk: RiskManager | undefined;
  /** The latest close of every symbol seen. */
  readonly #lastCloses = new Map<string, number>();
  readonly #barsInState: Record<RiskState, number> = { [RiskState.normal]: 0, [RiskState.reducing]: 0, [RiskState.halted]: 0 };
  readonly #transitions: Array<{ barIndex: number; from: RiskState; to: RiskState; drawdown: number }> = [];
  readonly #allocation = { scaled: 0, netted: 0 };
  #riskRejected = 0;

  /** @throws InvalidInputError naming the allocator's or risk manager's field. */
  constructor(options: DecisionPipelineOptions) {
    this.#consensus = options.consensus === undefined ? undefined : new Consensus({ ...options.consensus, strategies: options.strategies });
    this.#allocator = options.allocator === undefined ? undefined : new PortfolioAllocator({ ...options.allocator, strategies: options.strategies });
    this.#risk = options.risk === undefined ? undefined : new RiskManager(options.risk);
  }

  /** Whether any stage can change or drop intents (else `decide` passes them through). */
  get filtering(): boolean {
    return this.#consensus !== undefined || this.#allocator !== undefined || this.#risk !== undefined;
  }

  /**
   * Decides time step `barIndex`.
   * @param step the step's bars (every symbol with a bar at that time)
   * @param intents the step's intents, as `collectIntents` (in `src/strategy/`) orders them
   */
  decide(step: readonly Bar[], intents: readonly StrategyIntent[], account: AccountSnapshot, barIndex: number): Decision {
    if (!this.filtering) return intents.length === 0 ? NO_DECISION : { approved: intents, rejected: NO_REJECTIONS };
    for (const bar of step) {
      this.#lastCloses.set(bar.symbol, bar.close);
      this.#allocator?.onBar(bar);
    }
    let pending: StrategyIntent[] = [...intents];
    const rejected: DecisionRejection[] = [];
    if (this.#consensus !== undefined && pending.length > 0) {
      const result = this.#consensus.decide(pending, account.positions);
      this.#tally.add(result);
      for (const { intent, reason, message } of result.rejected) rejected.push({ intent, source: 'consensus', reason, message });
      pending = result.approved;
    }
    if (this.#allocator !== undefined && pending.length > 0) {
      const result = this.#allocator.allocate(pending, { equity: account.equity, positions: account.positions, prices: this.#lastCloses });
      this.#allocation.scaled += result.scaled.length;
      this.#allocation.netted += result.netted.length;
      pending = result.intents;
    }
    if (this.#risk !== undefined) {
      const review = this.#risk.review(pending, {
        equity: account.equity,
        peakEquity: account.peakEquity,
        positions: account.positions,
        prices: this.#lastCloses,
        barIndex,
      });
      this.#barsInState[review.state] += 1;
      if (review.state !== review.previousState) this.#transitions.push({ barIndex, from: review.previousState, to: review.state, drawdown: review.drawdown });
      for (const { intent, reason, message } of review.rejected) rejected.push({ intent, source: 'risk', reason, message });
      this.#riskRejected += review.rejected.length;
      pending = review.approved;
    }
    return { approved: pending, rejected };
  }

  /** What the stages did so far. */
  summary(): DecisionSummary {
    const risk = this.#risk;
    return {
      riskState:
        risk === undefined
          ? null
          : { barsInState: Object.freeze({ ...this.#barsInState }), transitions: [...this.#transitions], finalState: risk.state, rejected: this.#riskRejected },
      allocation: this.#allocator === undefined ? null : { ...this.#allocation },
      consensus: this.#consensus === undefined ? null : this.#tally.summary(),
    };
  }
}
