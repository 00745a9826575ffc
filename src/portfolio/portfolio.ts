import { InvalidInputError, type JsonObject, type JsonValue, type Snapshot, type SnapshotReader, openSnapshot, toJsonNumber } from '../core/index.js';
import type { Bar } from '../market/index.js';
import { type EquityPoint, EquityRecorder, type EquitySeries } from './curve.js';
import { ShortSellingNotAllowedError } from './errors.js';

/**
 * One execution the portfolio books. Structurally identical to the venue's fill, so venue fills are
 * accepted as they are without this domain importing the venue.
 */
export interface PortfolioFill {
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  /** Units filled; finite and > 0. */
  readonly quantity: number;
  /** Price per unit; finite and > 0. */
  readonly price: number;
  /** Fee paid for this fill, in cash units; finite and >= 0. */
  readonly fee: number;
  /** Time of the fill, milliseconds since the Unix epoch. */
  readonly timeMs: number;
}

/** Options of {@link createPortfolio}. */
export interface PortfolioOptions {
  /** Cash at the start, in the quote currency; finite and >= 0. @default 100_000 */
  initialCash?: number;
  /**
   * Refuse any sell that would take a position below zero (throws {@link ShortSellingNotAllowedError}
   * and changes nothing). @default false (shorting allowed)
   */
  longOnly?: boolean;
}

/** The compiled, complete, frozen form of {@link PortfolioOptions}. */
export interface PortfolioConfig {
  readonly initialCash: number;
  readonly longOnly: boolean;
}

/** A position as seen from outside: a snapshot, not a live view. */
export interface Position {
  readonly symbol: string;
  /** Signed units: > 0 long, < 0 short, 0 flat. */
  readonly quantity: number;
  /** Average cost per unit of the open quantity; 0 when flat. */
  readonly averagePrice: number;
  /** Last known price (last mark or last fill); `null` when the symbol was never priced. */
  readonly markPrice: number | null;
  /** `quantity × markPrice` (0 when flat or unpriced). */
  readonly marketValue: number;
  /** `quantity × (markPrice − averagePrice)` (0 when flat or unpriced). */
  readonly unrealisedPnl: number;
}

/**
 * One round trip: from the fill that takes a position away from zero to the fill that brings it
 * back to zero or flips it through zero.
 */
export interface Trade {
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  /** Units opened over the trade (equal to units closed). */
  readonly quantity: number;
  readonly entryTimeMs: number;
  readonly exitTimeMs: number;
  /** Quantity-weighted average price of the fills that opened or added to the position. */
  readonly entryPrice: number;
  /** Quantity-weighted average price of the fills that reduced or closed the position. */
  readonly exitPrice: number;
  /** Price PnL before fees: `(exitPrice − entryPrice) × quantity`, negated for shorts. */
  readonly grossPnl: number;
  /** Fees of the trade's fills (a flipping fill's fee is split pro rata by quantity). */
  readonly fees: number;
  /** `grossPnl − fees`. */
  readonly netPnl: number;
  /** `netPnl / (entryPrice × quantity)`: the return on the capital the trade committed. */
  readonly returnFraction: number;
  /** Fills that touched the trade (a flipping fill counts in both trades). */
  readonly fillCount: number;
}

/** The format version of portfolio snapshots this build writes and reads. */
const PORTFOLIO_SNAPSHOT_VERSION = 1;

/**
 * A snapshot of a {@link Portfolio} ({@link Portfolio.snapshot}): `kind: 'portfolio'`; `spec` its
 * config; `state` its cash, realised PnL, positions (in the order they were opened), marks, open
 * and closed trades and its equity curve.
 */
export type PortfolioSnapshot = Snapshot;

/** Prices to mark with: bars (their `close` is used), a map or a record of symbol → price. */
export type MarkPrices = readonly Bar[] | PriceTable;

/** Prices by symbol, as a map or a record. */
type PriceTable = ReadonlyMap<string, number> | Readonly<Record<string, number>>;

/**
 * A remaining quantity whose size is at most this fraction of the quantities involved is treated as
 * exactly zero, so fractional units that should cancel (0.1 + 0.2 − 0.3) close the position.
 */
const RELATIVE_QUANTITY_EPSILON = 1e-9;

const DEFAULT_INITIAL_CASH = 100_000;

/**
 * A symbol's mark price, in a cell changed in place: a price set into a Map as a number is boxed
 * anew on every set, which was an allocation per bar of a backtest.
 */
interface MarkCell {
  price: number;
}

interface OpenPosition {
  /** Its key in the positions map, kept here so sums can walk the positions alone (no entry arrays). */
  readonly symbol: string;
  quantity: number;
  averagePrice: number;
}

interface OpenTrade {
  readonly direction: 'long' | 'short';
  readonly entryTimeMs: number;
  entryQuantity: number;
  entryNotional: number;
  exitQuantity: number;
  exitNotional: number;
  grossPnl: number;
  fees: number;
  fillCount: number;
}

/**
 * Compiles {@link PortfolioOptions} into a frozen {@link PortfolioConfig}.
 * @throws InvalidInputError naming the field when a value is invalid.
 */
export function compilePortfolioOptions(options: PortfolioOptions = {}): PortfolioConfig {
  const initialCash = options.initialCash ?? DEFAULT_INITIAL_CASH;
  if (!Number.isFinite(initialCash) || initialCash < 0) {
    throw new InvalidInputError('initialCash', `must be a finite number >= 0, got ${initialCash}`);
  }
  const longOnly = options.longOnly ?? false;
  if (typeof longOnly !== 'boolean') {
    throw new InvalidInputError('longOnly', `must be true or false, got ${JSON.stringify(longOnly)}`);
  }
  return Object.freeze({ initialCash, longOnly });
}

/**
 * A new, flat {@link Portfolio} holding `initialCash`.
 * @throws InvalidInputError naming the field when an option is invalid.
 */
export function createPortfolio(options: PortfolioOptions = {}): Portfolio {
  return new Portfolio(compilePortfolioOptions(options));
}

/**
 * Cash, positions, PnL, round-trip trades and the equity curve of one account.
 *
 * Accounting conventions (average cost):
 * - A fill moves cash by `−signedQuantity × price − fee` (buys spend, sells receive).
 * - Adding to a position (or opening one) sets the average price to the quantity-weighted average
 *   of the old average and the fill price. Reducing it keeps the average price and realises
 *   `(price − averagePrice) × closedQuantity` (negated for shorts). A fill that crosses zero closes
 *   the whole position at the fill price and opens the rest on the other side at the fill price.
 * - Fees are realised when paid: `realisedPnl` is net of every fee, including those of opening fills.
 * - `unrealisedPnl = Σ quantity × (markPrice − averagePrice)`; `equity = cash + Σ quantity × markPrice`.
 *   Hence `equity = initialCash + realisedPnl + unrealisedPnl` always (up to floating-point rounding).
 * - The mark price of a symbol is the last price seen: the last {@link markToMarket} or, if later, the last fill.
 * - Shorting is allowed (negative quantity, cash credited with the proceeds) unless `longOnly`.
 *
 * Not thread-safe in any sense; one owner feeds it fills in time order.
 */
export class Portfolio {
  private cashBalance: number;
  private realised = 0;
  private positions = new Map<string, OpenPosition>();
  /**
   * The values of `positions`, in its order, made again after each change of the map (fills only):
   * sums over the positions walk this array, as a Map's iterator is an object per walk, every bar.
   */
  private openList: OpenPosition[] = [];
  private markPrices = new Map<string, MarkCell>();
  private openTrades = new Map<string, OpenTrade>();
  private closedTrades: Trade[] = [];
  private curve = new EquityRecorder();

  /** Prefer {@link createPortfolio}, which validates options. */
  constructor(readonly config: PortfolioConfig) {
    this.cashBalance = config.initialCash;
  }

  /** Cash held now (negative when buying on margin; increased by short-sale proceeds). */
  get cash(): number {
    return this.cashBalance;
  }

  /** `cash + Σ quantity × markPrice`, at the latest known prices. */
  get equity(): number {
    let equity = this.cashBalance;
    for (const position of this.openList) equity += position.quantity * this.markOf(position.symbol);
    return equity;
  }

  /** PnL of closed quantities, minus every fee paid so far. */
  get realisedPnl(): number {
    return this.realised;
  }

  /** `Σ quantity × (markPrice − averagePrice)` over open positions. */
  get unrealisedPnl(): number {
    let unrealised = 0;
    for (const position of this.openList) {
      unrealised += position.quantity * (this.markOf(position.symbol) - position.averagePrice);
    }
    return unrealised;
  }

  /** The signed quantity held in `symbol` (0 when none): {@link position} without building the object. */
  quantity(symbol: string): number {
    return this.positions.get(symbol)?.quantity ?? 0;
  }

  /** The position in `symbol`; quantity 0 when there is none. */
  position(symbol: string): Position {
    const open = this.positions.get(symbol);
    const markPrice = this.markPrices.get(symbol)?.price ?? null;
    if (!open) return { symbol, quantity: 0, averagePrice: 0, markPrice, marketValue: 0, unrealisedPnl: 0 };
    const mark = markPrice ?? open.averagePrice;
    return {
      symbol,
      quantity: open.quantity,
      averagePrice: open.averagePrice,
      markPrice,
      marketValue: open.quantity * mark,
      unrealisedPnl: open.quantity * (mark - open.averagePrice),
    };
  }

  /** Every non-zero position, by symbol in alphabetical order. */
  openPositions(): Position[] {
    return [...this.positions.keys()].sort().map((symbol) => this.position(symbol));
  }

  /** Closed round trips, in the order they closed. */
  trades(): readonly Trade[] {
    return [...this.closedTrades];
  }

  /** Recorded equity points, in time order. */
  equityCurve(): readonly EquityPoint[] {
    return this.curve.series().toArray();
  }

  /** Recorded equity points, in time order, without an object per point (later marks do not change it). */
  equitySeries(): EquitySeries {
    return this.curve.series();
  }

  /**
   * Its state as plain JSON (see {@link PortfolioSnapshot}), to restore a portfolio of the same
   * config exactly where this one stands ({@link restore}). Costs O(trades + equity points).
   */
  snapshot(): PortfolioSnapshot {
    return { kind: 'portfolio', version: PORTFOLIO_SNAPSHOT_VERSION, spec: this.snapshotSpec(), state: this.saveState() };
  }

  /**
   * Sets its state to what `snapshot` saved, whatever it held before: given the same fills and marks
   * that followed, it then books exactly what the portfolio that made the snapshot booked. All or nothing.
   * @throws {IncompatibleSnapshotError} when the snapshot is of another format version, of a
   *   portfolio of another config (it names the fields), or damaged; the portfolio is then unchanged.
   */
  restore(snapshot: JsonValue): void {
    this.prepareState(openSnapshot(snapshot, { subject: 'the portfolio', kind: 'portfolio', version: PORTFOLIO_SNAPSHOT_VERSION, spec: this.snapshotSpec() }))();
  }

  /** What its snapshots' `spec` holds: its config. */
  snapshotSpec(): JsonObject {
    return { initialCash: this.config.initialCash, longOnly: this.config.longOnly };
  }

  /** The state without the snapshot's header: what a trading session's snapshot holds for its portfolio. */
  saveState(): JsonObject {
    return {
      cash: toJsonNumber(this.cashBalance),
      realised: toJsonNumber(this.realised),
      positions: [...this.positions.values()].map(({ symbol, quantity, averagePrice }) => ({ symbol, quantity: toJsonNumber(quantity), averagePrice: toJsonNumber(averagePrice) })),
      marks: [...this.markPrices].map(([symbol, { price }]) => [symbol, toJsonNumber(price)]),
      openTrades: [...this.openTrades].map(([symbol, trade]) => ({ symbol, ...numbersAsJson(trade) })),
      trades: this.closedTrades.map((trade) => numbersAsJson(trade)),
      curve: this.curve.saveState(),
    };
  }

  /**
   * Reads a state saved by {@link saveState} (`state` reads it where it sits in a larger snapshot, so
   * errors name the field by its path there), changing nothing yet; the returned function puts it in
   * place. With `symbols`, every symbol it names must be one of them.
   * @throws {IncompatibleSnapshotError} naming the field of the first value that is wrong.
   */
  prepareState(state: SnapshotReader, symbols?: ReadonlySet<string>): () => void {
    const symbolAt = (reader: SnapshotReader, key: string | number): string => {
      const symbol = reader.string(key);
      if (symbols !== undefined && !symbols.has(symbol)) reader.fail(key, `must be one of the traded symbols (${[...symbols].join(', ')}), got ${JSON.stringify(symbol)}; restore with options that trade it`);
      return symbol;
    };
    const cash = state.finite('cash');
    const realised = state.finite('realised');
    const positions = new Map<string, OpenPosition>();
    for (const saved of state.list('positions')) {
      const symbol = symbolAt(saved, 'symbol');
      const quantity = saved.finite('quantity');
      if (quantity === 0 || positions.has(symbol)) saved.fail('quantity', `must be a non-zero quantity of a symbol listed once, got ${quantity} of ${symbol}`);
      positions.set(symbol, { symbol, quantity, averagePrice: saved.finite('averagePrice') });
    }
    const markPrices = new Map<string, MarkCell>();
    for (const saved of state.list('marks')) {
      const symbol = symbolAt(saved, 0);
      const price = saved.finite(1);
      if (!(price > 0)) saved.fail(1, `must be a price > 0, got ${price}`);
      markPrices.set(symbol, { price });
    }
    const openTrades = new Map<string, OpenTrade>();
    for (const saved of state.list('openTrades')) {
      const symbol = symbolAt(saved, 'symbol');
      if (!positions.has(symbol) || openTrades.has(symbol)) saved.fail('symbol', `must be a symbol with an open position and one open trade, got ${JSON.stringify(symbol)}`);
      openTrades.set(symbol, {
        direction: saved.string('direction', ['long', 'short'] as const),
        entryTimeMs: saved.finite('entryTimeMs'),
        entryQuantity: saved.finite('entryQuantity'),
        entryNotional: saved.finite('entryNotional'),
        exitQuantity: saved.finite('exitQuantity'),
        exitNotional: saved.finite('exitNotional'),
        grossPnl: saved.finite('grossPnl'),
        fees: saved.finite('fees'),
        fillCount: saved.integer('fillCount', 1),
      });
    }
    for (const symbol of positions.keys()) if (!openTrades.has(symbol)) state.fail('openTrades', `must hold the open trade of every position; ${symbol} has none`);
    const closedTrades = state.list('trades').map(
      (saved): Trade =>
        Object.freeze({
          symbol: symbolAt(saved, 'symbol'),
          direction: saved.string('direction', ['long', 'short'] as const),
          quantity: saved.finite('quantity'),
          entryTimeMs: saved.finite('entryTimeMs'),
          exitTimeMs: saved.finite('exitTimeMs'),
          entryPrice: saved.number('entryPrice'),
          exitPrice: saved.number('exitPrice'),
          grossPnl: saved.number('grossPnl'),
          fees: saved.number('fees'),
          netPnl: saved.number('netPnl'),
          returnFraction: saved.number('returnFraction'),
          fillCount: saved.integer('fillCount', 1),
        }),
    );
    const curve = EquityRecorder.readState(state.object('curve'));
    return () => {
      this.cashBalance = cash;
      this.realised = realised;
      this.positions = positions;
      this.openList = [...positions.values()];
      this.markPrices = markPrices;
      this.openTrades = openTrades;
      this.closedTrades = closedTrades;
      this.curve = curve;
    };
  }

  /**
   * Books one fill (see the class comment for the accounting).
   * @throws InvalidInputError naming the field when the fill is malformed; nothing changes.
   * @throws ShortSellingNotAllowedError when `longOnly` and the sell exceeds the position; nothing changes.
   */
  apply(fill: PortfolioFill): void {
    validateFill(fill);
    const { symbol, quantity, price, fee, timeMs } = fill;
    const signed = fill.side === 'buy' ? quantity : -quantity;
    const open = this.positions.get(symbol);
    const held = open?.quantity ?? 0;
    let next = held + signed;
    if (Math.abs(next) <= RELATIVE_QUANTITY_EPSILON * Math.max(Math.abs(held), quantity)) next = 0;
    if (this.config.longOnly && next < 0) {
      throw new ShortSellingNotAllowedError(symbol, fill.clientOrderId, quantity, held);
    }

    this.cashBalance -= signed * price + fee;
    this.realised -= fee;
    this.setMark(symbol, price);

    if (held === 0 || Math.sign(held) === Math.sign(signed)) {
      // Opening or adding: new weighted average cost, nothing realised but the fee.
      const heldSize = Math.abs(held);
      const averagePrice = open ? (heldSize * open.averagePrice + quantity * price) / (heldSize + quantity) : price;
      this.setPosition(symbol, next, averagePrice);
      const trade = this.openTrades.get(symbol) ?? this.startTrade(symbol, signed > 0 ? 'long' : 'short', timeMs);
      trade.entryQuantity += quantity;
      trade.entryNotional += quantity * price;
      trade.fees += fee;
      trade.fillCount += 1;
      return;
    }

    // Reducing, closing or flipping: `open` exists because `held !== 0`.
    const position = open as OpenPosition;
    const heldSize = Math.abs(held);
    const crosses = next !== 0 && Math.sign(next) !== Math.sign(held);
    const closedQuantity = next === 0 || crosses ? heldSize : quantity;
    const gross = Math.sign(held) * (price - position.averagePrice) * closedQuantity;
    this.realised += gross;
    const closingFee = crosses ? (fee * closedQuantity) / quantity : fee;
    const trade = this.openTrades.get(symbol) as OpenTrade;
    trade.exitQuantity += closedQuantity;
    trade.exitNotional += closedQuantity * price;
    trade.grossPnl += gross;
    trade.fees += closingFee;
    trade.fillCount += 1;

    if (next === 0) {
      this.positions.delete(symbol);
      this.openList = [...this.positions.values()];
      this.closeTrade(symbol, trade, timeMs);
    } else if (!crosses) {
      position.quantity = next;
    } else {
      this.closeTrade(symbol, trade, timeMs);
      this.setPosition(symbol, next, price);
      const flipped = this.startTrade(symbol, next > 0 ? 'long' : 'short', timeMs);
      const openedQuantity = Math.abs(next);
      flipped.entryQuantity = openedQuantity;
      flipped.entryNotional = openedQuantity * price;
      flipped.fees = fee - closingFee;
      flipped.fillCount = 1;
    }
  }

  /**
   * Updates mark prices and records one equity point at `timeMs`. Symbols missing from `prices` keep
   * their last mark. Marking again at the time of the last point replaces that point, so the curve
   * holds one point per time.
   * @throws InvalidInputError when `timeMs` is before the last point or a price is not finite and > 0.
   */
  markToMarket(timeMs: number, prices: MarkPrices): EquityPoint {
    this.mark(timeMs, prices);
    return this.curve.lastPoint();
  }

  /**
   * {@link markToMarket} without building the point, for callers that mark every bar and need only
   * the equity.
   * @returns the equity at the new marks.
   * @throws InvalidInputError when `timeMs` is before the last point or a price is not finite and > 0.
   */
  mark(timeMs: number, prices: MarkPrices): number {
    if (!Number.isFinite(timeMs)) throw new InvalidInputError('timeMs', `must be a finite number, got ${timeMs}`);
    const lastTimeMs = this.curve.lastTimeMs;
    if (lastTimeMs !== undefined && timeMs < lastTimeMs) {
      throw new InvalidInputError('timeMs', `must not go back in time: the last equity point is at ${lastTimeMs}, got ${timeMs}`);
    }
    // Every price is checked before any is used, so a bad one changes nothing.
    if (Array.isArray(prices)) {
      // Bars, as a backtest marks every step: plain loops, no callback per price.
      const bars = prices as readonly Bar[];
      for (const bar of bars) checkMarkPrice(bar.symbol, bar.close);
      for (const bar of bars) this.setMark(bar.symbol, bar.close);
    } else {
      this.setMarks(prices as PriceTable);
    }

    // One pass for what the equity and unrealisedPnl getters compute (same terms, same order, so the
    // same sums): this runs once per bar in a backtest.
    let equity = this.cashBalance;
    let unrealisedPnl = 0;
    let grossExposure = 0;
    const open = this.openList;
    for (let i = 0; i < open.length; i++) {
      const position = open[i] as OpenPosition;
      const mark = this.markOf(position.symbol);
      equity += position.quantity * mark;
      unrealisedPnl += position.quantity * (mark - position.averagePrice);
      grossExposure += Math.abs(position.quantity) * mark;
    }
    this.curve.record(timeMs, this.cashBalance, equity, this.realised, unrealisedPnl, grossExposure, this.positions.size);
    return equity;
  }

  /** Checks every price of `table`, then takes them as marks. */
  private setMarks(table: PriceTable): void {
    // A method of its own: the callback's `this` would make a context object on every call of `mark`.
    forEachPrice(table, checkMarkPrice);
    forEachPrice(table, (symbol, price) => this.setMark(symbol, price));
  }

  private setMark(symbol: string, price: number): void {
    const cell = this.markPrices.get(symbol);
    if (cell === undefined) this.markPrices.set(symbol, { price });
    else cell.price = price;
  }

  /** Replaces the position in `symbol` (a new one, or a flip). */
  private setPosition(symbol: string, quantity: number, averagePrice: number): void {
    this.positions.set(symbol, { symbol, quantity, averagePrice });
    this.openList = [...this.positions.values()];
  }

  private markOf(symbol: string): number {
    // A position always has a mark: its opening fill set one.
    return this.markPrices.get(symbol)?.price ?? 0;
  }

  private startTrade(symbol: string, direction: 'long' | 'short', timeMs: number): OpenTrade {
    const trade: OpenTrade = {
      direction,
      entryTimeMs: timeMs,
      entryQuantity: 0,
      entryNotional: 0,
      exitQuantity: 0,
      exitNotional: 0,
      grossPnl: 0,
      fees: 0,
      fillCount: 0,
    };
    this.openTrades.set(symbol, trade);
    return trade;
  }

  private closeTrade(symbol: string, trade: OpenTrade, exitTimeMs: number): void {
    this.openTrades.delete(symbol);
    const entryPrice = trade.entryNotional / trade.entryQuantity;
    const netPnl = trade.grossPnl - trade.fees;
    this.closedTrades.push(
      Object.freeze({
        symbol,
        direction: trade.direction,
        quantity: trade.entryQuantity,
        entryTimeMs: trade.entryTimeMs,
        exitTimeMs,
        entryPrice,
        exitPrice: trade.exitNotional / trade.exitQuantity,
        grossPnl: trade.grossPnl,
        fees: trade.fees,
        netPnl,
        returnFraction: netPnl / trade.entryNotional,
        fillCount: trade.fillCount,
      }),
    );
  }
}

/** An object's fields, numbers as JSON numbers (exact through JSON text). */
function numbersAsJson(value: object): JsonObject {
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, typeof field === 'number' ? toJsonNumber(field) : (field as JsonValue)]));
}

function validateFill(fill: PortfolioFill): void {
  if (typeof fill.symbol !== 'string' || fill.symbol === '') {
    throw new InvalidInputError('fill.symbol', `must be a non-empty string, got ${JSON.stringify(fill.symbol)}`);
  }
  if (fill.side !== 'buy' && fill.side !== 'sell') {
    throw new InvalidInputError('fill.side', `must be "buy" or "sell", got ${JSON.stringify(fill.side)}`);
  }
  if (!Number.isFinite(fill.quantity) || fill.quantity <= 0) {
    throw new InvalidInputError('fill.quantity', `must be a finite number > 0, got ${fill.quantity}`);
  }
  if (!Number.isFinite(fill.price) || fill.price <= 0) {
    throw new InvalidInputError('fill.price', `must be a finite number > 0, got ${fill.price}`);
  }
  if (!Number.isFinite(fill.fee) || fill.fee < 0) {
    throw new InvalidInputError('fill.fee', `must be a finite number >= 0, got ${fill.fee}`);
  }
  if (!Number.isFinite(fill.timeMs)) {
    throw new InvalidInputError('fill.timeMs', `must be a finite number of milliseconds, got ${fill.timeMs}`);
  }
}

function checkMarkPrice(symbol: string, price: number): void {
  if (!Number.isFinite(price) || price <= 0) {
    throw new InvalidInputError(`prices.${symbol}`, `must be a finite number > 0, got ${price}`);
  }
}

/** Calls `visit` for each (symbol, price) of a map or record of marks, without copying them. */
function forEachPrice(prices: PriceTable, visit: (symbol: string, price: number) => void): void {
  if (prices instanceof Map) {
    for (const [symbol, price] of prices as ReadonlyMap<string, number>) visit(symbol, price);
  } else {
    for (const [symbol, price] of Object.entries(prices as Readonly<Record<string, number>>)) visit(symbol, price);
  }
}
