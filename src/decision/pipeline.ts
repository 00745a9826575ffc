import { type JsonObject, type JsonValue, type Snapshot, type SnapshotReader, openSnapshot, toJsonNumber, toJsonNumbers } from '../core/index.js';
import type { Bar } from '../market/index.js';
import type { StrategyAccount, StrategyIntent } from '../strategy/index.js';
import { type AllocatedStrategy, PortfolioAllocator, type PortfolioAllocatorOptions } from './allocator.js';
import { Consensus, type ConsensusOptions, ConsensusTally, type ConsensusTallySummary } from './consensus.js';
import { RiskManager, type RiskManagerOptions, type RiskManagerSnapshot, RiskState } from './risk.js';

/** The format version of pipeline snapshots this build writes and reads. */
const PIPELINE_SNAPSHOT_VERSION = 1;

/** The risk manager's states, for reading snapshots. */
const RISK_STATES: readonly RiskState[] = Object.values(RiskState);

/**
 * A snapshot of a {@link DecisionPipeline}: `kind: 'decision-pipeline'`; `spec` its strategies (names
 * and symbols) and every stage's compiled options (all of them shape its state); `state` what its
 * stages remember (the latest closes, the allocator's windows, the risk manager's state, peaks and
 * recent orders) and what its summary counts.
 */
export type DecisionPipelineSnapshot = Snapshot;

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
 * its state follows the drawdown, and the allocator's volatility windows need every bar). Its state
 * can be saved as JSON ({@link DecisionPipeline.snapshot}) and restored into a fresh pipeline of the
 * same options, which then decides exactly as this one would have.
 */
export class DecisionPipeline {
  readonly #options: DecisionPipelineOptions;
  readonly #spec: JsonObject;
  readonly #consensus: Consensus | undefined;
  #tally = new ConsensusTally();
  #allocator: PortfolioAllocator | undefined;
  #risk: RiskManager | undefined;
  /** The latest close of every symbol seen. */
  #lastCloses = new Map<string, number>();
  #barsInState: Record<RiskState, number> = { [RiskState.normal]: 0, [RiskState.reducing]: 0, [RiskState.halted]: 0 };
  #transitions: Array<{ barIndex: number; from: RiskState; to: RiskState; drawdown: number }> = [];
  #allocation = { scaled: 0, netted: 0 };
  #riskRejected = 0;

  /** @throws InvalidInputError naming the allocator's or risk manager's field. */
  constructor(options: DecisionPipelineOptions) {
    this.#options = { ...options };
    this.#consensus = options.consensus === undefined ? undefined : new Consensus({ ...options.consensus, strategies: options.strategies });
    this.#allocator = options.allocator === undefined ? undefined : new PortfolioAllocator({ ...options.allocator, strategies: options.strategies });
    this.#risk = options.risk === undefined ? undefined : new RiskManager(options.risk);
    this.#spec = this.specOf();
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

  /**
   * Its state as plain JSON (see {@link DecisionPipelineSnapshot}): what its stages remember (windows
   * of at most `lookbackBars` closes, the risk manager's recent orders and peaks) and its summary's
   * counts and risk-state changes (one entry a change), never the steps that made them. Small enough
   * to take after every step.
   */
  snapshot(): DecisionPipelineSnapshot {
    const tally = this.#tally.summary();
    const risk = this.#risk?.snapshot();
    const state: JsonObject = {
      lastCloses: [...this.#lastCloses].map(([symbol, close]) => [symbol, toJsonNumber(close)]),
      allocator: this.#allocator === undefined ? null : { closes: this.#allocator.snapshot().closes.map(([symbol, closes]) => [symbol, toJsonNumbers(closes)]) },
      risk:
        risk === undefined
          ? null
          : {
              state: risk.state,
              orderBarIndices: [...risk.orderBarIndices],
              lastBarIndex: risk.lastBarIndex,
              peakSinceReset: risk.peakSinceReset === null ? null : toJsonNumber(risk.peakSinceReset),
              windowPeaks: risk.windowPeaks.map(([barIndex, equity]) => [barIndex, toJsonNumber(equity)]),
            },
      tally: { rounds: tally.rounds, agreed: tally.agreed, bySymbol: Object.entries(tally.bySymbol).map(([symbol, { rounds, agreed }]) => [symbol, rounds, agreed]) },
      barsInState: { ...this.#barsInState },
      transitions: this.#transitions.map(({ barIndex, from, to, drawdown }) => [barIndex, from, to, toJsonNumber(drawdown)]),
      allocation: { ...this.#allocation },
      riskRejected: this.#riskRejected,
    };
    return { kind: 'decision-pipeline', version: PIPELINE_SNAPSHOT_VERSION, spec: this.#spec, state };
  }

  /**
   * Sets its state to what `snapshot` saved, whatever it held before: fed the steps that followed,
   * it then decides exactly what the pipeline that made the snapshot decided, and its summary is
   * that pipeline's. All or nothing.
   * @throws {IncompatibleSnapshotError} when the snapshot is of another format version, of a pipeline
   *   of other strategies or options (it names the fields), or damaged; the pipeline is then unchanged.
   */
  restore(snapshot: JsonValue): void {
    const state = openSnapshot(snapshot, { subject: 'the decision pipeline', kind: 'decision-pipeline', version: PIPELINE_SNAPSHOT_VERSION, spec: this.#spec });
    this.prepare(state)();
  }

  /** Reads a snapshot's state into fresh stages, changing nothing; the returned function puts them in place. */
  private prepare(state: SnapshotReader): () => void {
    const options = this.#options;
    const lastCloses = new Map(state.list('lastCloses').map((entry): [string, number] => [entry.string(0), entry.finite(1)]));
    const allocator = options.allocator === undefined ? undefined : this.restoredAllocator(options.allocator, state.object('allocator'));
    const risk = options.risk === undefined ? undefined : new RiskManager(options.risk, riskSnapshot(state.object('risk')));
    const savedTally = state.object('tally');
    const bySymbol: Record<string, { rounds: number; agreed: number }> = {};
    for (const entry of savedTally.list('bySymbol')) bySymbol[entry.string(0)] = { rounds: entry.integer(1, 0), agreed: entry.integer(2, 0) };
    const tally = new ConsensusTally({ rounds: savedTally.integer('rounds', 0), agreed: savedTally.integer('agreed', 0), bySymbol });
    const states = state.object('barsInState');
    const barsInState = { [RiskState.normal]: states.integer(RiskState.normal, 0), [RiskState.reducing]: states.integer(RiskState.reducing, 0), [RiskState.halted]: states.integer(RiskState.halted, 0) };
    const transitions = state.list('transitions').map((entry) => ({ barIndex: entry.integer(0, 0), from: entry.string(1, RISK_STATES), to: entry.string(2, RISK_STATES), drawdown: entry.number(3) }));
    const counted = state.object('allocation');
    const allocation = { scaled: counted.integer('scaled', 0), netted: counted.integer('netted', 0) };
    const riskRejected = state.integer('riskRejected', 0);
    return () => {
      this.#lastCloses = lastCloses;
      this.#allocator = allocator;
      this.#risk = risk;
      this.#tally = tally;
      this.#barsInState = barsInState;
      this.#transitions = transitions;
      this.#allocation = allocation;
      this.#riskRejected = riskRejected;
    };
  }

  /** An allocator of these options holding the saved windows. */
  private restoredAllocator(options: NonNullable<DecisionPipelineOptions['allocator']>, saved: SnapshotReader): PortfolioAllocator {
    const kept = new Set(this.#allocator?.snapshot().closes.map(([symbol]) => symbol));
    const closes = saved.list('closes').map((entry): [string, number[]] => {
      const symbol = entry.string(0);
      if (!kept.has(symbol)) entry.fail(0, `is not a symbol whose closes the allocator keeps, got ${JSON.stringify(symbol)}`);
      return [symbol, entry.numbers(1, { max: (this.#allocator as PortfolioAllocator).config.lookbackBars + 1 })];
    });
    return new PortfolioAllocator({ ...options, strategies: this.#options.strategies }, { closes });
  }

  /** What a snapshot's spec says of this pipeline: its strategies and its stages' compiled options. */
  private specOf(): JsonObject {
    const consensus = this.#consensus?.config;
    const allocator = this.#allocator?.config;
    const risk = this.#risk?.config;
    return {
      strategies: this.#options.strategies.map(({ name, symbols }) => ({ name, symbols: [...(symbols ?? [])] })),
      consensus: consensus === undefined ? null : { threshold: consensus.threshold, weights: Object.fromEntries(consensus.voters.map(({ name, weight }) => [name, weight])) },
      allocator:
        allocator === undefined
          ? null
          : { weighting: allocator.weighting, weights: Object.fromEntries(allocator.weights), lookbackBars: allocator.lookbackBars, wholeUnits: allocator.wholeUnits },
      risk: risk === undefined ? null : Object.fromEntries(Object.entries(risk).map(([key, value]) => [key, typeof value === 'number' ? toJsonNumber(value) : value])),
    };
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

/** A risk manager's snapshot as the pipeline's snapshot holds it, checked. */
function riskSnapshot(saved: SnapshotReader): RiskManagerSnapshot {
  return {
    state: saved.string('state', RISK_STATES),
    orderBarIndices: saved.integers('orderBarIndices', 0),
    lastBarIndex: saved.integer('lastBarIndex', -1),
    peakSinceReset: saved.raw('peakSinceReset') === null ? null : saved.finite('peakSinceReset'),
    windowPeaks: saved.list('windowPeaks').map((entry) => [entry.integer(0, 0), entry.finite(1)] as const),
  };
}
