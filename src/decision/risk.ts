import { InvalidInputError } from '../core/index.js';
import { type Intent, optionalBoolean } from '../strategy/index.js';
import { InvalidTransitionError } from './errors.js';
import { type QuantitiesBySymbol, splitIntent, toQuantityMap } from './quantities.js';

/** The risk manager's states. */
export const RiskState = {
  /** Every intent within the limits passes. */
  normal: 'NORMAL',
  /** Drawdown reached `reduceAtDrawdown`: only risk-reducing intents pass. */
  reducing: 'REDUCING',
  /** Drawdown reached `haltAtDrawdown`: nothing passes (but exact closes, when allowed). Latched until `reset()`. */
  halted: 'HALTED',
} as const;
export type RiskState = (typeof RiskState)[keyof typeof RiskState];

/** What moves the risk manager: the drawdown zone seen at a review, or an operator's reset. */
export const RiskEvent = {
  /** Drawdown below `recoverBelowDrawdown`. */
  drawdownRecovered: 'drawdown-recovered',
  /** Drawdown in [`recoverBelowDrawdown`, `reduceAtDrawdown`): the hysteresis band, the state holds. */
  drawdownElevated: 'drawdown-elevated',
  /** Drawdown in [`reduceAtDrawdown`, `haltAtDrawdown`). */
  drawdownReduce: 'drawdown-reduce',
  /** Drawdown at or above `haltAtDrawdown`. */
  drawdownHalt: 'drawdown-halt',
  /** An operator re-arms a halted manager. */
  reset: 'reset',
} as const;
export type RiskEvent = (typeof RiskEvent)[keyof typeof RiskEvent];

const { normal: NORMAL, reducing: REDUCING, halted: HALTED } = RiskState;

/**
 * The risk manager's transition table: every (state, event) pair it accepts and the state it
 * leads to. {@link riskTransition} throws on any other pair.
 */
export const RISK_TRANSITIONS: Readonly<Record<RiskState, Readonly<Partial<Record<RiskEvent, RiskState>>>>> = Object.freeze({
  [NORMAL]: Object.freeze({
    [RiskEvent.drawdownRecovered]: NORMAL,
    [RiskEvent.drawdownElevated]: NORMAL,
    [RiskEvent.drawdownReduce]: REDUCING,
    [RiskEvent.drawdownHalt]: HALTED,
  }),
  [REDUCING]: Object.freeze({
    [RiskEvent.drawdownRecovered]: NORMAL,
    [RiskEvent.drawdownElevated]: REDUCING,
    [RiskEvent.drawdownReduce]: REDUCING,
    [RiskEvent.drawdownHalt]: HALTED,
  }),
  [HALTED]: Object.freeze({
    [RiskEvent.drawdownRecovered]: HALTED,
    [RiskEvent.drawdownElevated]: HALTED,
    [RiskEvent.drawdownReduce]: HALTED,
    [RiskEvent.drawdownHalt]: HALTED,
    [RiskEvent.reset]: NORMAL,
  }),
});

/**
 * The next state of the risk manager, from {@link RISK_TRANSITIONS}.
 * @throws InvalidTransitionError when the table does not list the pair (e.g. `reset` in NORMAL).
 */
export function riskTransition(state: RiskState, event: RiskEvent): RiskState {
  const row = Object.hasOwn(RISK_TRANSITIONS, state) ? RISK_TRANSITIONS[state] : undefined;
  const next = row !== undefined && Object.hasOwn(row, event) ? row[event] : undefined;
  if (next === undefined) throw new InvalidTransitionError('risk', String(state), String(event), row ? Object.keys(row) : []);
  return next;
}

/** Why the risk manager refused an intent. */
export const RiskRejectReason = {
  /** HALTED: nothing passes (exact closes pass only with `allowClosingWhenHalted`). */
  halted: 'halted',
  /** REDUCING: only intents that shrink a position pass. */
  reducingOnly: 'reducing-only',
  /** `maxOrders` orders were already approved in the last `orderWindowBars` bars. */
  orderRate: 'order-rate',
  /** The symbol's position would exceed `maxPositionUnits` or `maxPositionFraction`. */
  positionLimit: 'position-limit',
  /** Gross exposure would exceed `maxGrossExposure`. */
  grossExposure: 'gross-exposure',
  /** A notional limit is set but a needed price is missing. */
  noPrice: 'no-price',
  /** Not an intent: bad symbol, side or quantity. */
  invalidIntent: 'invalid-intent',
} as const;
export type RiskRejectReason = (typeof RiskRejectReason)[keyof typeof RiskRejectReason];

/** Options of {@link createRiskManager}; every limit is off unless set. */
export interface RiskManagerOptions {
  /** Largest |position| of any one symbol after an order, in units. @default no limit */
  maxPositionUnits?: number;
  /** Largest |position × price| of any one symbol after an order, as a fraction of equity. @default no limit */
  maxPositionFraction?: number;
  /** Largest Σ|position × price| over all symbols after an order, as a fraction of equity (1 = unlevered). @default no limit */
  maxGrossExposure?: number;
  /** At most this many orders approved in any `orderWindowBars` consecutive bars (risk-reducing ones count but are never refused). @default no limit */
  maxOrders?: number;
  /** The rate window, in bars. @default 1 */
  orderWindowBars?: number;
  /** Drawdown from peak equity (0.1 = 10 %) at which REDUCING starts. @default `haltAtDrawdown` (no reducing stage) */
  reduceAtDrawdown?: number;
  /** Drawdown at which HALTED starts (the kill switch). @default none */
  haltAtDrawdown?: number;
  /** REDUCING returns to NORMAL once the drawdown is below this. @default reduceAtDrawdown / 2 */
  recoverBelowDrawdown?: number;
  /**
   * Measure the drawdown from the highest equity of the last this-many bars (as seen by the
   * reviews) instead of the run's peak, so that a flat account recovers once an old peak rolls out
   * of the window. @default the run's peak (`peakEquity` of the review)
   */
  drawdownWindowBars?: number;
  /** Whether HALTED lets through intents that close a position exactly (to flat). @default false */
  allowClosingWhenHalted?: boolean;
}

/** The compiled, complete form of {@link RiskManagerOptions}; `Infinity` where no limit is set. */
export interface RiskManagerConfig {
  readonly maxPositionUnits: number;
  readonly maxPositionFraction: number;
  readonly maxGrossExposure: number;
  readonly maxOrders: number;
  readonly orderWindowBars: number;
  readonly reduceAtDrawdown: number;
  readonly haltAtDrawdown: number;
  readonly recoverBelowDrawdown: number;
  /** `Infinity`: the run's peak. */
  readonly drawdownWindowBars: number;
  readonly allowClosingWhenHalted: boolean;
}

/**
 * Fills in defaults and checks every option.
 * @throws InvalidInputError naming the field: limits must be > 0, `maxOrders` and `orderWindowBars`
 *   whole numbers >= 1, drawdowns in (0, 1] with `recoverBelowDrawdown <= reduceAtDrawdown <= haltAtDrawdown`.
 */
export function compileRiskManagerOptions(options: RiskManagerOptions = {}): RiskManagerConfig {
  const limit = (field: keyof RiskManagerOptions): number => {
    const value: unknown = options[field];
    if (value === undefined) return Infinity;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InvalidInputError(field, `must be a finite number > 0, got ${show(value)}`);
    return value;
  };
  const whole = (field: keyof RiskManagerOptions, fallback: number): number => {
    const value: unknown = options[field] ?? fallback;
    if (typeof value !== 'number' || (value !== Infinity && !Number.isInteger(value)) || value < 1) {
      throw new InvalidInputError(field, `must be a whole number >= 1, got ${show(value)}`);
    }
    return value;
  };
  const drawdown = (field: keyof RiskManagerOptions): number | undefined => {
    const value: unknown = options[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !(value > 0 && value <= 1)) throw new InvalidInputError(field, `must be a fraction in (0, 1], got ${show(value)}`);
    return value;
  };
  const halt = drawdown('haltAtDrawdown');
  const reduce = drawdown('reduceAtDrawdown');
  const recover = drawdown('recoverBelowDrawdown');
  const haltAtDrawdown = halt ?? Infinity;
  const reduceAtDrawdown = reduce ?? haltAtDrawdown;
  if (reduceAtDrawdown > haltAtDrawdown) {
    throw new InvalidInputError('reduceAtDrawdown', `must be <= haltAtDrawdown (${haltAtDrawdown}), got ${reduceAtDrawdown}`);
  }
  const recoverBelowDrawdown = recover ?? reduceAtDrawdown / 2;
  if (recoverBelowDrawdown > reduceAtDrawdown) {
    throw new InvalidInputError('recoverBelowDrawdown', `must be <= reduceAtDrawdown (${reduceAtDrawdown}), got ${recoverBelowDrawdown}`);
  }
  return Object.freeze({
    maxPositionUnits: limit('maxPositionUnits'),
    maxPositionFraction: limit('maxPositionFraction'),
    maxGrossExposure: limit('maxGrossExposure'),
    maxOrders: whole('maxOrders', Infinity),
    orderWindowBars: whole('orderWindowBars', 1),
    reduceAtDrawdown,
    haltAtDrawdown,
    recoverBelowDrawdown,
    drawdownWindowBars: whole('drawdownWindowBars', Infinity),
    allowClosingWhenHalted: optionalBoolean('allowClosingWhenHalted', options.allowClosingWhenHalted, false),
  });
}

/** The account as the runner sees it when it asks for a review. */
export interface RiskReviewContext {
  /** Equity now (cash + positions at the latest marks). */
  readonly equity: number;
  /** The highest equity seen so far in the run (the drawdown's reference). */
  readonly peakEquity: number;
  /** Signed units held by symbol (filled positions; missing = 0). */
  readonly positions: QuantitiesBySymbol;
  /** The latest price by symbol, for the notional limits. */
  readonly prices: QuantitiesBySymbol;
  /** Index of the bar time step; never decreases from one review to the next. */
  readonly barIndex: number;
}

/** An intent the risk manager refused, and why. */
export interface RiskRejection<T extends Intent = Intent> {
  readonly intent: T;
  readonly reason: RiskRejectReason;
  /** For people: the limit and the numbers. */
  readonly message: string;
}

/** The outcome of one {@link RiskManager.review}. */
export interface RiskReview<T extends Intent = Intent> {
  /** The intents that may go to the venue, in the order given. */
  readonly approved: T[];
  readonly rejected: RiskRejection<T>[];
  /** The state the intents were judged in (after this review's drawdown event). */
  readonly state: RiskState;
  /** The state before this review. */
  readonly previousState: RiskState;
  /** The drawdown the review saw, a fraction of the peak. */
  readonly drawdown: number;
}

/** Everything a {@link RiskManager} remembers, as plain JSON. */
export interface RiskManagerSnapshot {
  readonly state: RiskState;
  /** Bar index of each approved order still inside the rate window, ascending. */
  readonly orderBarIndices: readonly number[];
  readonly lastBarIndex: number;
  /** The peak equity seen since the last reset; `null` before any reset (the context's peak is used). */
  readonly peakSinceReset: number | null;
  /** With `drawdownWindowBars`: the candidates for the window's peak, `[barIndex, equity]`, equity descending. */
  readonly windowPeaks: ReadonlyArray<readonly [number, number]>;
}

/**
 * A risk filter between strategies and the venue (not a strategy): the runner passes every bar's
 * intents through {@link RiskManager.review} and sends only the approved ones. Deterministic: it
 * reads nothing but its arguments and its own state (the drawdown state and the recent orders).
 *
 * ## States (a table: {@link RISK_TRANSITIONS})
 * Each review first turns the drawdown `1 − equity / peak` into an event and moves the state:
 * - NORMAL → REDUCING at `reduceAtDrawdown`; NORMAL or REDUCING → HALTED at `haltAtDrawdown`.
 * - Recovery: REDUCING → NORMAL once the drawdown is below `recoverBelowDrawdown` (between that and
 *   `reduceAtDrawdown` the state holds). A REDUCING account trades little, so its equity rarely
 *   climbs back to an all-time peak: with `drawdownWindowBars` the peak is the highest equity of the
 *   last that-many bars, so the drawdown fades once the old peak leaves the window. HALTED is a
 *   latched kill switch: it leaves only by {@link RiskManager.reset} (→ NORMAL), after which the
 *   drawdown is measured from the highest equity seen since the reset.
 *
 * ## Intents, in order (each approved one moves the running positions the next are judged on)
 * Intents tagged with the same `strategy` (a `StrategyIntent`) and the same `intent` label,
 * such as the two legs of a pair, are judged together: all pass or none does (the others are refused
 * with the first failure's reason), so a filter never leaves half a pair. Untagged intents stand alone.
 * An intent is risk-reducing when it trades against the position and is at most its size.
 * - HALTED: refused (`halted`), except, with `allowClosingWhenHalted`, one that closes a position exactly.
 * - REDUCING: refused unless risk-reducing (`reducing-only`).
 * - A risk-reducing intent then passes: no limit keeps a position open.
 * - Any other: refused when `maxOrders` orders were approved in the last `orderWindowBars` bars
 *   (`order-rate`); when the symbol's |position| after it would exceed `maxPositionUnits`, or its
 *   |position × price| would exceed `maxPositionFraction × equity` (`position-limit`); when
 *   Σ|position × price| after it would exceed `maxGrossExposure × equity` (`gross-exposure`); or
 *   when one of those notional limits is set and a needed price is missing (`no-price`).
 */
export class RiskManager {
  readonly config: RiskManagerConfig;
  #state: RiskState;
  #orderBars: number[];
  #lastBarIndex: number;
  #peakSinceReset: number | undefined;
  /** Monotonic queue for the rolling peak: `[barIndex, equity]`, equity strictly descending. */
  #windowPeaks: Array<[number, number]>;

  /** @throws InvalidInputError naming the field of a bad option or snapshot. */
  constructor(options: RiskManagerOptions = {}, snapshot?: RiskManagerSnapshot) {
    this.config = compileRiskManagerOptions(options);
    this.#state = NORMAL;
    this.#orderBars = [];
    this.#lastBarIndex = -1;
    this.#peakSinceReset = undefined;
    this.#windowPeaks = [];
    if (snapshot !== undefined) {
      if (!Object.values(RiskState).includes(snapshot.state)) {
        throw new InvalidInputError('snapshot.state', `must be one of ${Object.values(RiskState).join(', ')}, got ${JSON.stringify(snapshot.state)}`);
      }
      this.#state = snapshot.state;
      this.#orderBars = [...snapshot.orderBarIndices];
      this.#lastBarIndex = snapshot.lastBarIndex;
      this.#peakSinceReset = snapshot.peakSinceReset ?? undefined;
      this.#windowPeaks = snapshot.windowPeaks.map(([bar, value]) => [bar, value]);
    }
  }

  /** The current state. */
  get state(): RiskState {
    return this.#state;
  }

  /**
   * Moves the state by this review's drawdown, then judges `intents` in order (rules in the class comment).
   * @throws InvalidInputError (a caller bug) when a context number is not finite or `barIndex` went back.
   */
  review<T extends Intent>(intents: readonly T[], context: RiskReviewContext): RiskReview<T> {
    const { equity, peakEquity, barIndex } = context;
    if (typeof equity !== 'number' || !Number.isFinite(equity)) throw new InvalidInputError('equity', `must be a finite number, got ${String(equity)}`);
    if (typeof peakEquity !== 'number' || !Number.isFinite(peakEquity)) {
      throw new InvalidInputError('peakEquity', `must be a finite number, got ${String(peakEquity)}`);
    }
    if (!Number.isSafeInteger(barIndex) || barIndex < this.#lastBarIndex) {
      throw new InvalidInputError('barIndex', `must be an integer >= the last reviewed bar (${this.#lastBarIndex}), got ${String(barIndex)}`);
    }
    this.#lastBarIndex = barIndex;
    const config = this.config;
    const positions = toQuantityMap('positions', context.positions);
    const prices = toQuantityMap('prices', context.prices);

    if (this.#peakSinceReset !== undefined) this.#peakSinceReset = Math.max(this.#peakSinceReset, equity);
    const peak = config.drawdownWindowBars === Infinity ? (this.#peakSinceReset ?? Math.max(peakEquity, equity)) : this.windowPeak(barIndex, equity);
    const drawdown = peak > 0 ? Math.max(0, 1 - equity / peak) : 0;
    const previousState = this.#state;
    const state = riskTransition(previousState, this.drawdownEvent(drawdown));
    this.#state = state;

    const windowStart = barIndex - config.orderWindowBars + 1;
    while (this.#orderBars.length > 0 && (this.#orderBars[0] as number) < windowStart) this.#orderBars.shift();

    const notionalLimits = config.maxPositionFraction !== Infinity || config.maxGrossExposure !== Infinity;
    const priceOf = (symbol: string): number | undefined => {
      const price = prices.get(symbol);
      return price !== undefined && price > 0 ? price : undefined;
    };
    let gross = 0;
    let grossKnown = true;
    for (const [symbol, position] of positions) {
      if (position === 0) continue;
      const price = priceOf(symbol);
      if (price === undefined) grossKnown = false;
      else gross += Math.abs(position) * price;
    }

    const approved: T[] = [];
    const rejected: RiskRejection<T>[] = [];
    for (const group of groupIntents(intents)) {
      // Judge the group on trial copies; commit only if every intent in it passes.
      const trial = new Map<string, number>();
      let trialGross = gross;
      let orders = this.#orderBars.length;
      let failure: RiskRejection<T> | undefined;
      for (const intent of group) {
        const problem = invalidIntent(intent);
        if (problem !== undefined) {
          failure = { intent, reason: RiskRejectReason.invalidIntent, message: problem };
          break;
        }
        const { symbol, side, quantity } = intent;
        const position = trial.get(symbol) ?? positions.get(symbol) ?? 0;
        const after = position + (side === 'buy' ? quantity : -quantity);
        const reducing = splitIntent(side, quantity, position).opening === 0;
        const price = priceOf(symbol);
        const refusal = this.judge({ symbol, quantity, position, after, reducing, state, equity, gross: trialGross, grossKnown, notionalLimits, price, orders });
        if (refusal !== undefined) {
          failure = { intent, ...refusal };
          break;
        }
        if (price !== undefined) trialGross += (Math.abs(after) - Math.abs(position)) * price;
        trial.set(symbol, after);
        orders += 1;
      }
      if (failure === undefined) {
        for (const [symbol, position] of trial) positions.set(symbol, position);
        gross = trialGross;
        for (const intent of group) {
          this.#orderBars.push(barIndex);
          approved.push(intent);
        }
        continue;
      }
      const cause = failure;
      for (const intent of group) {
        rejected.push(
          intent === cause.intent
            ? cause
            : { intent, reason: cause.reason, message: `refused with ${cause.intent.symbol} (same strategy and intent, judged together): ${cause.message}` },
        );
      }
    }
    return { approved, rejected, state, previousState, drawdown };
  }

  /**
   * An operator re-arms a HALTED manager: HALTED → NORMAL, and from then on the drawdown is measured
   * against the highest equity seen since this reset, starting with `equity` (the equity now).
   * @throws InvalidTransitionError when not HALTED (the table lists `reset` only there).
   * @throws InvalidInputError when `equity` is not a finite number.
   */
  reset(equity: number): RiskState {
    if (typeof equity !== 'number' || !Number.isFinite(equity)) throw new InvalidInputError('equity', `must be a finite number, got ${String(equity)}`);
    this.#state = riskTransition(this.#state, RiskEvent.reset);
    this.#peakSinceReset = equity;
    this.#windowPeaks = [];
    return this.#state;
  }

  /** What it remembers, to resume with `new RiskManager(options, snapshot)`. */
  snapshot(): RiskManagerSnapshot {
    return {
      state: this.#state,
      orderBarIndices: [...this.#orderBars],
      lastBarIndex: this.#lastBarIndex,
      peakSinceReset: this.#peakSinceReset ?? null,
      windowPeaks: this.#windowPeaks.map(([bar, value]) => [bar, value] as const),
    };
  }

  /** The highest equity of the last `drawdownWindowBars` bars, this one included. */
  private windowPeak(barIndex: number, equity: number): number {
    const peaks = this.#windowPeaks;
    while (peaks.length > 0 && (peaks.at(-1) as [number, number])[1] <= equity) peaks.pop();
    peaks.push([barIndex, equity]);
    while ((peaks[0] as [number, number])[0] <= barIndex - this.config.drawdownWindowBars) peaks.shift();
    return (peaks[0] as [number, number])[1];
  }

  private drawdownEvent(drawdown: number): RiskEvent {
    const { haltAtDrawdown, reduceAtDrawdown, recoverBelowDrawdown } = this.config;
    if (drawdown >= haltAtDrawdown) return RiskEvent.drawdownHalt;
    if (drawdown >= reduceAtDrawdown) return RiskEvent.drawdownReduce;
    if (drawdown < recoverBelowDrawdown) return RiskEvent.drawdownRecovered;
    return RiskEvent.drawdownElevated;
  }

  private judge(input: {
    symbol: string;
    quantity: number;
    position: number;
    after: number;
    reducing: boolean;
    state: RiskState;
    equity: number;
    gross: number;
    grossKnown: boolean;
    notionalLimits: boolean;
    price: number | undefined;
    /** Orders approved in the window so far. */
    orders: number;
  }): { reason: RiskRejectReason; message: string } | undefined {
    const { symbol, quantity, position, after, reducing, state, equity, gross, grossKnown, price } = input;
    const config = this.config;
    if (state === HALTED) {
      if (config.allowClosingWhenHalted && reducing && after === 0) return undefined;
      return {
        reason: RiskRejectReason.halted,
        message: `trading is HALTED (drawdown reached ${config.haltAtDrawdown}); ${config.allowClosingWhenHalted ? 'only exact closes pass' : 'nothing passes'} until reset`,
      };
    }
    if (state === REDUCING && !reducing) {
      return { reason: RiskRejectReason.reducingOnly, message: `REDUCING (drawdown reached ${config.reduceAtDrawdown}): only orders that shrink a position pass; ${symbol} ${position} → ${after} does not` };
    }
    if (reducing) return undefined;
    if (input.orders >= config.maxOrders) {
      return { reason: RiskRejectReason.orderRate, message: `${input.orders} orders already approved in the last ${config.orderWindowBars} bar(s); maxOrders is ${config.maxOrders}` };
    }
    if (Math.abs(after) > config.maxPositionUnits) {
      return { reason: RiskRejectReason.positionLimit, message: `${symbol} would hold ${Math.abs(after)} units (order of ${quantity}); maxPositionUnits is ${config.maxPositionUnits}` };
    }
    if (input.notionalLimits && (price === undefined || !grossKnown)) {
      return { reason: RiskRejectReason.noPrice, message: `a notional limit is set but ${price === undefined ? symbol : 'a held symbol'} has no price` };
    }
    if (price === undefined) return undefined;
    const notional = Math.abs(after) * price;
    if (notional > config.maxPositionFraction * equity) {
      return { reason: RiskRejectReason.positionLimit, message: `${symbol} would be worth ${notional.toFixed(2)}, above maxPositionFraction ${config.maxPositionFraction} × equity ${equity.toFixed(2)}` };
    }
    const grossAfter = gross + (Math.abs(after) - Math.abs(position)) * price;
    if (grossAfter > config.maxGrossExposure * equity) {
      return { reason: RiskRejectReason.grossExposure, message: `gross exposure would be ${grossAfter.toFixed(2)}, above maxGrossExposure ${config.maxGrossExposure} × equity ${equity.toFixed(2)}` };
    }
    return undefined;
  }
}

/**
 * A risk manager with no history.
 * @throws InvalidInputError naming the field of a bad option.
 */
export function createRiskManager(options: RiskManagerOptions = {}, snapshot?: RiskManagerSnapshot): RiskManager {
  return new RiskManager(options, snapshot);
}

/** A value for a message: numbers as JavaScript prints them (Infinity, NaN), anything else as JSON. */
function show(value: unknown): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

/** Intents in groups (see the class comment), in the order of each group's first intent. */
function groupIntents<T extends Intent>(intents: readonly T[]): T[][] {
  const groups = new Map<string, T[]>();
  intents.forEach((intent, index) => {
    const strategy: unknown = (intent as { strategy?: unknown }).strategy;
    const key = typeof strategy === 'string' ? `${strategy}\u0000${String(intent.intent)}` : `\u0001${index}`;
    const group = groups.get(key);
    if (group) group.push(intent);
    else groups.set(key, [intent]);
  });
  return [...groups.values()];
}

function invalidIntent(intent: Intent): string | undefined {
  const { symbol, side, quantity } = intent as Partial<Intent>;
  if (typeof symbol !== 'string' || symbol.trim() === '') return `symbol must be a non-empty string, got ${JSON.stringify(symbol)}`;
  if (side !== 'buy' && side !== 'sell') return `side must be 'buy' or 'sell', got ${JSON.stringify(side)}`;
  if (typeof quantity !== 'number' || !Number.isFinite(quantity) || quantity <= 0) return `quantity must be a finite number > 0, got ${String(quantity)}`;
  return undefined;
}
