import { InvalidInputError, type JsonObject, type JsonValue, type Snapshot, type SnapshotReader, openSnapshot, toJsonNumber } from '../core/index.js';
import type { AccountSnapshot, DecisionRejection } from '../decision/index.js';
import { type Bar, type DataGap, validateBar } from '../market/index.js';
import {
  EndOfDataRule,
  type EquitySeries,
  type Portfolio,
  type PortfolioOptions,
  RatioConvention,
  type Sizer,
  type Trade,
  createPortfolio,
  performanceStats,
  settleEndOfData,
} from '../portfolio/index.js';
import type { StrategyIntent } from '../strategy/index.js';
import { type Fill, FillAt, type OrderResult, PaperVenue, type PaperVenueOptions, applySlippage, clientOrderId, feeForFill } from '../venue/index.js';

const NO_FILLS: readonly Fill[] = Object.freeze([]);
const NO_ORDERS: readonly SubmittedOrder[] = Object.freeze([]);

/** The format version of trading session snapshots this build writes and reads. */
const SESSION_SNAPSHOT_VERSION = 1;

/** Where the key of `#brackets` splits strategy from symbol. */
const BRACKET_KEY_SEPARATOR = '\u0000';

/**
 * A snapshot of a {@link TradingSession} ({@link TradingSession.snapshot}): `kind: 'trading-session'`;
 * `spec` what shapes its state: the swarm, the symbols, the venue's compiled options, the portfolio's
 * config and the gaps (and whether they are flattened); `state` the venue's (every order it knows,
 * the books, epochs), the portfolio's (cash, positions, marks, trades, equity curve) and the
 * session's own (fills, rejections, last bars, peak equity, brackets, pending resizes by strategy
 * name, the gap-flattening cursor and counts). Plain JSON: it survives `JSON.stringify` and `JSON.parse`.
 */
export type TradingSessionSnapshot = Snapshot;

/** A rejected order: what was asked and who refused it, why. */
export interface OrderRejection {
  readonly clientOrderId: string;
  readonly barIndex: number;
  /** `venue`: the paper venue refused it; `risk` or `consensus`: that pipeline stage did, so it never reached the venue. */
  readonly source: 'venue' | 'risk' | 'consensus';
  /** A stable code: the venue's `RejectReason`, the risk manager's `RiskRejectReason`, or `no-consensus`. */
  readonly reason: string;
  readonly message: string;
}

/** The account's side of a run's report: trades, fills, equity and its statistics. */
export interface SessionReport {
  readonly swarm: string;
  /** Closed round trips, in closing order (end-of-data liquidations included). */
  readonly trades: readonly Trade[];
  /** Venue fills then end-of-data fills, in time order. */
  readonly fills: readonly Fill[];
  readonly rejections: readonly OrderRejection[];
  readonly initialCash: number;
  readonly finalCash: number;
  readonly finalEquity: number;
  /** `finalEquity / initialCash − 1`. */
  readonly totalReturn: number;
  /** Annualised with `periodsPerYear`, in `statistics.convention`; `null` when undefined for the data. */
  readonly sharpe: number | null;
  readonly sortino: number | null;
  /** How `sharpe` and `sortino` were computed (formulas in the README and `performanceStats`). */
  readonly statistics: StatisticsConventions;
  /** Fraction of the running peak (0.25 = 25 %). */
  readonly maxDrawdown: number;
  /** Winning trades / trades; `null` with no trades. */
  readonly winRate: number | null;
  /** Fraction of equity points with an open position. */
  readonly exposure: number;
  /** Open positions at the end (none after a liquidating rule). */
  readonly openPositions: ReadonlyArray<{ readonly symbol: string; readonly quantity: number }>;
  readonly endOfData: EndOfDataRule;
  /** Holes in the data (see `findGaps`), in time order; empty when there are none or gap reporting is off. */
  readonly gaps: readonly GapReport[];
}

/** A hole in a symbol's data, and what the run did about it. */
export interface GapReport extends DataGap {
  /**
   * With flattening: the position closed at the close of the last bar before the gap (positive: a
   * long sold; 0 when there was none); `null` when positions were carried across.
   */
  readonly flattened: number | null;
  /** With flattening: the symbol's orders cancelled at the last bar before the gap; `null` without. */
  readonly cancelledOrders: number | null;
}

/** The gaps a {@link TradingSession} reports, and whether it closes positions across them. */
export interface SessionGaps {
  readonly found: readonly DataGap[];
  readonly flatten: boolean;
}

/** How a run's Sharpe and Sortino are computed. */
export interface StatisticsConventions {
  /** @default 'arithmetic' */
  readonly convention: RatioConvention;
  /** Annual, as a fraction (0.02 = 2 %); per period `riskFreeRatePerYear / periodsPerYear` in the arithmetic convention. @default 0 */
  readonly riskFreeRatePerYear: number;
}

/** Options of {@link TradingSession}. */
export interface TradingSessionOptions {
  /** Run name: the `swarm` part of every client order id. A non-empty string. */
  swarm: string;
  /** Every symbol of the run. */
  symbols: readonly string[];
  /** @default next-open fills, no slippage, no fees */
  venue?: Omit<PaperVenueOptions, 'symbols'>;
  /** @default { initialCash: 100_000, longOnly: false } */
  portfolio?: PortfolioOptions;
  /** @default 'liquidate-at-close' */
  endOfData?: EndOfDataRule;
  /** Equity points per year, for Sharpe and Sortino. @default 252 */
  periodsPerYear?: number;
  /** Holes in the data, reported, and closed across when `flatten` (see {@link TradingSession}). @default none */
  gaps?: SessionGaps;
  /** How Sharpe and Sortino are computed. @default arithmetic, no risk-free rate */
  statistics?: Partial<StatisticsConventions>;
  /**
   * Strategies (by name) whose entries are sized at the fill price (`sizeAt: fill-price`), with the
   * sizer to size them. See {@link TradingSession}. @default none: every order keeps the quantity
   * its strategy gave at the signal bar's close
   */
  fillPriceSizing?: Readonly<Record<string, Sizer>>;
}

/** An entry to size when its fill price is known. */
interface PendingResize {
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  /** Whose sizer it is: a snapshot stores the name and finds the sizer again in `fillPriceSizing`. */
  readonly strategy: string;
  readonly sizer: Sizer;
}

/** An order submitted by {@link TradingSession.submit}, with what the venue answered. */
export interface SubmittedOrder {
  readonly clientOrderId: string;
  readonly intent: StrategyIntent;
  readonly result: OrderResult;
}

/**
 * The account side of a run, kept by whoever holds the venue: the backtest engine, or a swarm's
 * control plane while agents decide in their sandboxes. One time step goes
 * `open(step)` → decisions → `reject(...)`/`submit(...)` → `close(step)`:
 * - with `fillAt: 'next-open'` (default), `open` lets the venue fill orders decided on earlier steps
 *   at this step's opens, applies the fills, and marks the portfolio at the step's closes; `close`
 *   does nothing (orders decided on bar t fill from bar t+1);
 * - with `fillAt: 'close'`, `open` only marks; `close` fills the step's orders at its closes and
 *   marks again.
 * The snapshot `open` returns is what every decision of the step must see; nothing trades between
 * it and the step's orders. After the last step, `settle` applies the end-of-data rule.
 *
 * Sizing at the fill price (`fillPriceSizing`, next-open fills): a market entry (intent `enter-long`
 * or `enter-short`) of such a strategy is accepted with the quantity sized at the signal bar's close,
 * then, at the open of its symbol's next bar and before that step's fills, resized to
 * `sizer.quantity(fillPrice, equityAtOpen)`: `fillPrice` the bar's open after the venue's slippage,
 * `equityAtOpen` cash + every position at this step's opens (its latest mark for a symbol without a
 * bar now). A count of 0 cancels it. The decision stages (consensus, risk limits) judged the
 * quantity sized at the close. With `fillAt: 'close'` the fill price is the signal close: nothing
 * is resized.
 * Exits (an intent's `exits`) go with the entry to the venue, which places them when it fills
 * (see "Bracket exits" in `PaperVenue`). When a strategy closes a position itself (an accepted
 * intent whose `intent` starts `exit-`), the bracket of its latest entry with exits in that symbol is
 * cancelled at once, on the decision step (its remainder and open exits), so the strategy's close and
 * an exit never both fill; an opposite entry on the same step (a reversal) brings its own.
 * With `gaps.flatten`, `close` on a symbol's last bar before one of its gaps then cancels the
 * symbol's open orders (they would fill after the gap) and closes its position at that bar's close
 * (fill id `gap:<symbol>:<timeMs>`, the venue's fee model applies), so nothing is held across the
 * hole; decisions of that step saw the position still open.
 * Its whole state can be saved as plain JSON between steps ({@link snapshot}) and a session built
 * from the same options in that state ({@link TradingSession.restore}), so a restart applies only
 * the steps after the snapshot instead of every step from the first.
 */
export class TradingSession {
  readonly swarm: string;
  readonly venue: PaperVenue;
  readonly portfolio: Portfolio;
  readonly #endOfData: EndOfDataRule;
  readonly #periodsPerYear: number;
  readonly #statistics: StatisticsConventions;
  readonly #closeFills: boolean;
  readonly #symbols: readonly string[];
  readonly #fills: Fill[] = [];
  /** Fills made by the latest `open` or `close`. */
  #stepFills: readonly Fill[] = NO_FILLS;
  /** The open positions as a map, rebuilt only after fills (most steps have none). */
  #positions: ReadonlyMap<string, number> | undefined;
  readonly #rejections: OrderRejection[] = [];
  /** The latest bar of every symbol, for the end-of-data rule. */
  readonly #lastBars = new Map<string, Bar>();
  #peakEquity = -Infinity;
  readonly #fillPriceSizing: ReadonlyMap<string, Sizer>;
  /** Per strategy and symbol (`strategy\u0000symbol`), the id of its latest entry with exits. */
  readonly #brackets = new Map<string, string>();
  /** Entries to size at their fill price, in submission order. */
  #pendingResizes: PendingResize[] = [];
  readonly #gaps: readonly DataGap[];
  /** With flattening: per symbol, the times of its last bars before its gaps, in order, and the gaps' indices. */
  readonly #flattenAt: Map<string, { readonly times: number[]; readonly gaps: number[]; next: number }> | undefined;
  /** Per gap, the quantity flattened and the orders cancelled (with flattening). */
  readonly #flattened: number[];
  readonly #cancelled: number[];

  /** @throws InvalidInputError naming the field. */
  constructor(options: TradingSessionOptions) {
    const swarm = options.swarm;
    if (typeof swarm !== 'string' || swarm.trim() === '') throw new InvalidInputError('swarm', `must be a non-empty string, got ${JSON.stringify(swarm)}`);
    const endOfData = options.endOfData ?? EndOfDataRule.liquidateAtClose;
    if (!Object.values(EndOfDataRule).includes(endOfData)) {
      throw new InvalidInputError('endOfData', `must be one of ${Object.values(EndOfDataRule).join(', ')}, got ${JSON.stringify(endOfData)}`);
    }
    this.swarm = swarm;
    this.#endOfData = endOfData;
    this.#periodsPerYear = options.periodsPerYear ?? 252;
    const convention = options.statistics?.convention ?? RatioConvention.arithmetic;
    if (!Object.values(RatioConvention).includes(convention)) {
      throw new InvalidInputError('statistics.convention', `must be one of ${Object.values(RatioConvention).join(', ')}, got ${JSON.stringify(convention)}`);
    }
    const riskFreeRatePerYear = options.statistics?.riskFreeRatePerYear ?? 0;
    if (!Number.isFinite(riskFreeRatePerYear)) throw new InvalidInputError('statistics.riskFreeRatePerYear', `must be a finite number, got ${riskFreeRatePerYear}`);
    this.#statistics = Object.freeze({ convention, riskFreeRatePerYear });
    this.#symbols = [...options.symbols];
    this.venue = new PaperVenue({ ...options.venue, symbols: this.#symbols });
    this.portfolio = createPortfolio(options.portfolio);
    this.#closeFills = this.venue.config.fillAt === FillAt.close;
    this.#fillPriceSizing = new Map(
      Object.entries(options.fillPriceSizing ?? {}).map(([strategy, sizer]) => {
        if (typeof (sizer as Partial<Sizer> | undefined)?.quantity !== 'function') {
          throw new InvalidInputError(`fillPriceSizing.${strategy}`, 'must be a sizer with quantity(price, equity)');
        }
        return [strategy, sizer];
      }),
    );
    this.#gaps = options.gaps?.found ?? [];
    this.#flattened = this.#gaps.map(() => 0);
    this.#cancelled = this.#gaps.map(() => 0);
    if (options.gaps?.flatten === true && this.#gaps.length > 0) {
      const flattenAt = new Map<string, { times: number[]; gaps: number[]; next: number }>();
      this.#gaps.forEach((gap, index) => {
        let entry = flattenAt.get(gap.symbol);
        if (entry === undefined) flattenAt.set(gap.symbol, (entry = { times: [], gaps: [], next: 0 }));
        entry.times.push(gap.lastBeforeMs);
        entry.gaps.push(index);
      });
      this.#flattenAt = flattenAt;
    }
  }

  /**
   * Its state as plain JSON (see {@link TradingSessionSnapshot}), taken between steps (after `close`),
   * so that {@link TradingSession.restore} builds a session that goes on exactly as this one would.
   * Costs O(state): every order, fill, trade and equity point so far; the steps are not kept.
   */
  snapshot(): TradingSessionSnapshot {
    const flattenAt = this.#flattenAt;
    const state: JsonObject = {
      venue: this.venue.saveState(),
      portfolio: this.portfolio.saveState(),
      fills: this.#fills.map(fillJson),
      stepFills: this.#stepFills.map(fillJson),
      rejections: this.#rejections.map(({ clientOrderId, barIndex, source, reason, message }) => ({ clientOrderId, barIndex, source, reason, message })),
      lastBars: [...this.#lastBars.values()].map(({ symbol, timeMs, open, high, low, close, volume }) => ({ symbol, timeMs, open, high, low, close, volume })),
      peakEquity: toJsonNumber(this.#peakEquity),
      brackets: [...this.#brackets].map(([key, clientOrderId]) => {
        const at = key.lastIndexOf(BRACKET_KEY_SEPARATOR);
        return { strategy: key.slice(0, at), symbol: key.slice(at + 1), clientOrderId };
      }),
      pendingResizes: this.#pendingResizes.map(({ clientOrderId, symbol, side, strategy }) => ({ clientOrderId, symbol, side, strategy })),
      gapCursor: flattenAt === undefined ? [] : [...flattenAt].map(([symbol, { next }]) => [symbol, next]),
      flattened: this.#flattened.map(toJsonNumber),
      cancelled: [...this.#cancelled],
    };
    return { kind: 'trading-session', version: SESSION_SNAPSHOT_VERSION, spec: this.snapshotSpec(), state };
  }

  /**
   * A session built from `options`, in exactly the state `snapshot` was taken in: given the same
   * calls that followed, it answers, fills and reports exactly what the session that took it did.
   * `options` must be those the snapshot's session was built with, as far as they shape its state
   * (see {@link TradingSessionSnapshot}); `endOfData`, `periodsPerYear` and `statistics` only shape
   * the report and may differ. Every pending resize's strategy needs its sizer in `fillPriceSizing`.
   * @throws InvalidInputError naming the field when `options` are invalid.
   * @throws {IncompatibleSnapshotError} when the snapshot is of another format version, of another
   *   spec (another swarm, other symbols, venue or portfolio options, gaps: it names the fields), or
   *   damaged or inconsistent (it names the field, e.g. a pending resize whose strategy has no sizer);
   *   nothing is built then. Rebuild the session by replaying its steps instead.
   */
  static restore(snapshot: unknown, options: TradingSessionOptions): TradingSession {
    const session = new TradingSession(options);
    const state = openSnapshot(snapshot, {
      subject: `trading session ${JSON.stringify(session.swarm)}`,
      kind: 'trading-session',
      version: SESSION_SNAPSHOT_VERSION,
      spec: session.snapshotSpec(),
    });
    session.prepareState(state)();
    return session;
  }

  /** What its snapshots' `spec` holds (see {@link TradingSessionSnapshot}). */
  private snapshotSpec(): JsonObject {
    return {
      swarm: this.swarm,
      symbols: [...this.#symbols],
      venue: this.venue.snapshotSpec(),
      portfolio: this.portfolio.snapshotSpec(),
      gaps: {
        flatten: this.#flattenAt !== undefined,
        found: this.#gaps.map(({ symbol, lastBeforeMs, firstAfterMs, durationMs, usualIntervalMs }) => ({ symbol, lastBeforeMs, firstAfterMs, durationMs, usualIntervalMs })),
      },
    };
  }

  /** Reads a snapshot's state, changing nothing; the returned function puts it in place. */
  private prepareState(state: SnapshotReader): () => void {
    const symbols = this.venue.config.symbols;
    const symbolAt = (reader: SnapshotReader, key: string | number): string => {
      const symbol = reader.string(key);
      if (!symbols.has(symbol)) reader.fail(key, `must be one of the symbols of the options (${this.#symbols.join(', ')}), got ${JSON.stringify(symbol)}; restore with the options the snapshot was taken with`);
      return symbol;
    };
    const commitVenue = this.venue.prepareState(state.object('venue'));
    const commitPortfolio = this.portfolio.prepareState(state.object('portfolio'), symbols);
    const fills = state.list('fills').map((saved) => readFill(saved, symbolAt));
    const stepFills = state.list('stepFills').map((saved) => readFill(saved, symbolAt));
    const rejections = state.list('rejections').map(
      (saved): OrderRejection => ({
        clientOrderId: saved.string('clientOrderId'),
        barIndex: saved.integer('barIndex'),
        source: saved.string('source', ['venue', 'risk', 'consensus'] as const),
        reason: saved.string('reason'),
        message: saved.string('message'),
      }),
    );
    const lastBars = new Map<string, Bar>();
    for (const saved of state.list('lastBars')) {
      const symbol = symbolAt(saved, 'symbol');
      const bar: Bar = Object.freeze({
        symbol,
        timeMs: saved.integer('timeMs'),
        open: saved.finite('open'),
        high: saved.finite('high'),
        low: saved.finite('low'),
        close: saved.finite('close'),
        volume: saved.finite('volume'),
      });
      const problem = validateBar(bar)[0];
      if (problem !== undefined) saved.fail(problem.field, problem.message);
      if (lastBars.has(symbol)) saved.fail('symbol', `must name each symbol once, got ${JSON.stringify(symbol)} again`);
      lastBars.set(symbol, bar);
    }
    const peakEquity = state.number('peakEquity');
    const brackets = new Map<string, string>();
    for (const saved of state.list('brackets')) {
      brackets.set(`${saved.string('strategy')}${BRACKET_KEY_SEPARATOR}${symbolAt(saved, 'symbol')}`, saved.string('clientOrderId'));
    }
    const pendingResizes = state.list('pendingResizes').map((saved): PendingResize => {
      const strategy = saved.string('strategy');
      const sizer = this.#fillPriceSizing.get(strategy);
      if (sizer === undefined) {
        saved.fail(
          'strategy',
          `is ${JSON.stringify(strategy)}, whose entry waits to be sized at its fill price, but the options' fillPriceSizing has no sizer for it; ` +
            `restore with fillPriceSizing[${JSON.stringify(strategy)}] set to the sizer the session was built with`,
        );
      }
      return { clientOrderId: saved.string('clientOrderId'), symbol: symbolAt(saved, 'symbol'), side: saved.string('side', ['buy', 'sell'] as const), strategy, sizer: sizer as Sizer };
    });
    const flattenAt = this.#flattenAt;
    const cursor = new Map<string, number>();
    for (const saved of state.list('gapCursor')) {
      const symbol = saved.string(0);
      const entry = flattenAt?.get(symbol);
      if (entry === undefined) saved.fail(0, `must be a symbol with a gap to flatten at, got ${JSON.stringify(symbol)}`);
      const next = saved.integer(1, 0);
      if (next > (entry as { times: number[] }).times.length) saved.fail(1, `must be at most the ${symbol} gaps' count ${(entry as { times: number[] }).times.length}, got ${next}`);
      cursor.set(symbol, next);
    }
    const gapCount = this.#gaps.length;
    const flattened = state.numbers('flattened', { min: gapCount, max: gapCount });
    const cancelled = state.integers('cancelled', 0);
    if (cancelled.length !== gapCount) state.fail('cancelled', `must hold one count per gap (${gapCount}), got ${cancelled.length}`);
    return () => {
      commitVenue();
      commitPortfolio();
      for (const fill of fills) this.#fills.push(fill);
      this.#stepFills = stepFills.length === 0 ? NO_FILLS : stepFills;
      this.#positions = undefined;
      for (const rejection of rejections) this.#rejections.push(rejection);
      for (const [symbol, bar] of lastBars) this.#lastBars.set(symbol, bar);
      this.#peakEquity = peakEquity;
      for (const [key, id] of brackets) this.#brackets.set(key, id);
      this.#pendingResizes = pendingResizes;
      for (const [symbol, next] of cursor) (flattenAt?.get(symbol) as { next: number }).next = next;
      flattened.forEach((quantity, i) => (this.#flattened[i] = quantity));
      cancelled.forEach((count, i) => (this.#cancelled[i] = count));
    };
  }

  /** Starts a time step; returns the account every decision of the step sees. */
  open(step: readonly Bar[]): AccountSnapshot {
    this.#stepFills = NO_FILLS;
    if (!this.#closeFills) this.fill(step);
    // The mark's equity is the portfolio's now: nothing trades between the two.
    return this.accountAt(this.mark(step));
  }

  /** The account now (after the latest mark). */
  account(): AccountSnapshot {
    return this.accountAt(this.portfolio.equity);
  }

  private accountAt(equity: number): AccountSnapshot {
    this.#positions ??= new Map(this.portfolio.openPositions().map(({ symbol, quantity }) => [symbol, quantity]));
    return { equity, peakEquity: this.#peakEquity, positions: this.#positions };
  }

  /** The client order id of an intent decided on step `barIndex`. */
  orderId(intent: StrategyIntent, barIndex: number): string {
    return clientOrderId({ swarm: this.swarm, role: intent.strategy, barIndex, symbol: intent.symbol, intent: intent.intent });
  }

  /**
   * Submits a step's approved intents in order. A repeated client order id (a second decider of a
   * mesh submitting the same decision) is answered `duplicate` and not recorded as a rejection twice.
   */
  submit(intents: readonly StrategyIntent[], barIndex: number, step: readonly Bar[]): readonly SubmittedOrder[] {
    if (intents.length === 0) return NO_ORDERS;
    // A method per intent, not a callback: a callback's captured variables make a context object on
    // every call, even on the (usual) early return above.
    const nowBar = step[0] as Bar;
    const submitted: SubmittedOrder[] = [];
    for (const intent of intents) submitted.push(this.submitOne(intent, barIndex, nowBar));
    return submitted;
  }

  /** Submits one approved intent (see {@link submit}). */
  private submitOne(intent: StrategyIntent, barIndex: number, nowBar: Bar): SubmittedOrder {
    const id = this.orderId(intent, barIndex);
    const result = this.venue.submit(
      {
        clientOrderId: id,
        symbol: intent.symbol,
        side: intent.side,
        quantity: intent.quantity,
        type: intent.type,
        ...(intent.limitPrice === undefined ? {} : { limitPrice: intent.limitPrice }),
        ...(intent.stopPrice === undefined ? {} : { stopPrice: intent.stopPrice }),
        ...(intent.exits === undefined ? {} : { exits: intent.exits }),
      },
      nowBar,
    );
    if (result.status === 'accepted' && (intent.exits !== undefined || this.#brackets.size > 0)) this.noteBracket(intent, id);
    if (result.status === 'rejected') {
      this.#rejections.push({ clientOrderId: id, barIndex, source: 'venue', reason: result.reason ?? result.status, message: result.message ?? 'rejected' });
    }
    const sizer = this.#fillPriceSizing.get(intent.strategy);
    if (sizer !== undefined && result.status === 'accepted' && !this.#closeFills && intent.type === 'market' && intent.intent.startsWith('enter-')) {
      this.#pendingResizes.push({ clientOrderId: id, symbol: intent.symbol, side: intent.side, strategy: intent.strategy, sizer });
    }
    return { clientOrderId: id, intent, result };
  }

  /**
   * Keeps the latest entry with exits of each strategy and symbol, and cancels what is left of its
   * bracket when the strategy closes the position itself (an `exit-` intent), see the class comment.
   */
  private noteBracket(intent: StrategyIntent, id: string): void {
    const key = `${intent.strategy}\u0000${intent.symbol}`;
    if (intent.intent.startsWith('exit-')) {
      const entry = this.#brackets.get(key);
      if (entry !== undefined) this.venue.cancelBracket(entry);
      this.#brackets.delete(key);
    }
    if (intent.exits !== undefined) this.#brackets.set(key, id);
  }

  /** Records the decision pipeline's refusals of step `barIndex`. */
  reject(rejected: readonly DecisionRejection[], barIndex: number): void {
    // Indexed: most steps pass a shared frozen empty array, and for-of over a frozen array makes an iterator object.
    for (let k = 0; k < rejected.length; k++) {
      const { intent, source, reason, message } = rejected[k] as DecisionRejection;
      this.#rejections.push({ clientOrderId: this.orderId(intent, barIndex), barIndex, source, reason, message });
    }
  }

  /** Ends a time step (fills and marks it with close fills). */
  close(step: readonly Bar[]): void {
    this.#stepFills = NO_FILLS;
    if (this.#closeFills) {
      this.fill(step);
      this.mark(step);
    }
    if (this.#flattenAt !== undefined) this.flattenGaps(step);
  }

  /**
   * Applies the end-of-data rule (liquidation fills pay the venue's fee model) and reports.
   * Orders still open are dropped.
   */
  settle(options: { readonly endOfData?: EndOfDataRule } = {}): { report: SessionReport; equitySeries: EquitySeries } {
    const rule = options.endOfData ?? this.#endOfData;
    const lastBars = this.#symbols.flatMap((symbol) => {
      const bar = this.#lastBars.get(symbol);
      return bar === undefined ? [] : [bar];
    });
    const fees = this.venue.config.fees;
    const settlement = settleEndOfData(this.portfolio, lastBars, {
      rule,
      feeForFill: (quantity, price) => feeForFill(fees, price, quantity, { fillCount: 0, rawTotal: 0, charged: 0 }).fee,
    });
    for (const fill of settlement.fills) this.#fills.push(fill);
    const portfolio = this.portfolio;
    const series = portfolio.equitySeries();
    const trades = portfolio.trades();
    const stats = performanceStats(series, trades, { periodsPerYear: this.#periodsPerYear, ...this.#statistics });
    const initialCash = portfolio.config.initialCash;
    const report: SessionReport = {
      swarm: this.swarm,
      trades,
      fills: [...this.#fills],
      rejections: [...this.#rejections],
      initialCash,
      finalCash: portfolio.cash,
      finalEquity: portfolio.equity,
      totalReturn: initialCash > 0 ? portfolio.equity / initialCash - 1 : 0,
      sharpe: stats.sharpe,
      sortino: stats.sortino,
      statistics: this.#statistics,
      maxDrawdown: stats.maxDrawdown,
      winRate: stats.winRate,
      exposure: stats.exposure,
      openPositions: portfolio.openPositions().map(({ symbol, quantity }) => ({ symbol, quantity })),
      endOfData: rule,
      gaps: this.#gaps.map((gap, index) => ({
        ...gap,
        flattened: this.#flattenAt === undefined ? null : (this.#flattened[index] as number),
        cancelledOrders: this.#flattenAt === undefined ? null : (this.#cancelled[index] as number),
      })),
    };
    return { report, equitySeries: series };
  }

  /** The fills made by the latest {@link open} or {@link close} (empty when it made none). */
  stepFills(): readonly Fill[] {
    return this.#stepFills;
  }

  /** Closes each symbol of `step` whose bar is the last before one of its gaps (see the class). */
  private flattenGaps(step: readonly Bar[]): void {
    const flattenAt = this.#flattenAt;
    if (flattenAt === undefined) return;
    for (const bar of step) {
      const entry = flattenAt.get(bar.symbol);
      if (entry === undefined || entry.times[entry.next] !== bar.timeMs) continue;
      const gapIndex = entry.gaps[entry.next] as number;
      entry.next++;
      for (const order of this.venue.openOrders()) {
        if (order.request.symbol === bar.symbol && this.venue.cancel(order.request.clientOrderId).status === 'cancelled') this.#cancelled[gapIndex] = (this.#cancelled[gapIndex] as number) + 1;
      }
      const quantity = this.portfolio.quantity(bar.symbol);
      if (quantity === 0) continue;
      const size = Math.abs(quantity);
      const fill: Fill = Object.freeze({
        clientOrderId: `gap:${bar.symbol}:${bar.timeMs}`,
        symbol: bar.symbol,
        side: quantity > 0 ? 'sell' : 'buy',
        quantity: size,
        price: bar.close,
        fee: feeForFill(this.venue.config.fees, bar.close, size, { fillCount: 0, rawTotal: 0, charged: 0 }).fee,
        timeMs: bar.timeMs,
      });
      this.portfolio.apply(fill);
      this.#fills.push(fill);
      this.#flattened[gapIndex] = quantity;
      this.#positions = undefined;
    }
  }

  private fill(step: readonly Bar[]): void {
    if (this.#pendingResizes.length > 0) this.resizeAtOpen(step);
    let made: Fill[] | undefined;
    for (const bar of step) {
      const fills = this.venue.onBar(bar);
      // Indexed: most bars answer a shared frozen empty array, and for-of over a frozen array makes an iterator object.
      for (let k = 0; k < fills.length; k++) {
        const fill = fills[k] as Fill;
        this.portfolio.apply(fill);
        this.#fills.push(fill);
        (made ??= []).push(fill);
      }
    }
    if (made === undefined) return;
    this.#stepFills = made;
    this.#positions = undefined;
  }

  /** Sizes the pending entries of the symbols with a bar in `step` at their fill price (see the class comment). */
  private resizeAtOpen(step: readonly Bar[]): void {
    const opens = new Map(step.map((bar) => [bar.symbol, bar.open]));
    let equity = this.portfolio.cash;
    for (const { symbol, quantity, markPrice } of this.portfolio.openPositions()) equity += quantity * (opens.get(symbol) ?? markPrice ?? 0);
    const waiting: PendingResize[] = [];
    for (const pending of this.#pendingResizes) {
      const open = opens.get(pending.symbol);
      if (open === undefined) {
        waiting.push(pending);
        continue;
      }
      const quantity = pending.sizer.quantity(applySlippage(this.venue.config.slippage, pending.side, open), equity);
      if (quantity > 0) this.venue.resize(pending.clientOrderId, quantity);
      else this.venue.cancel(pending.clientOrderId);
    }
    this.#pendingResizes = waiting;
  }

  /** Marks the portfolio at the step's closes. @returns the equity at those marks. */
  private mark(step: readonly Bar[]): number {
    for (const bar of step) this.#lastBars.set(bar.symbol, bar);
    const equity = this.portfolio.mark((step[0] as Bar).timeMs, step);
    if (equity > this.#peakEquity) this.#peakEquity = equity;
    return equity;
  }
}

/** A fill as a session's snapshot holds it: `[clientOrderId, symbol, side, quantity, price, fee, timeMs]`. */
function fillJson(fill: Fill): JsonValue {
  return [fill.clientOrderId, fill.symbol, fill.side, toJsonNumber(fill.quantity), toJsonNumber(fill.price), toJsonNumber(fill.fee), fill.timeMs];
}

/** Reads a fill saved by {@link fillJson}. */
function readFill(saved: SnapshotReader, symbolAt: (reader: SnapshotReader, key: number) => string): Fill {
  return Object.freeze({
    clientOrderId: saved.string(0),
    symbol: symbolAt(saved, 1),
    side: saved.string(2, ['buy', 'sell'] as const),
    quantity: saved.finite(3),
    price: saved.finite(4),
    fee: saved.finite(5),
    timeMs: saved.integer(6),
  });
}
