import { InvalidInputError } from '../core/index.js';
import { type Bar, validateBar } from '../market/index.js';
import { applySlippage, compileFees, compileSlippage, feeForFill } from './models.js';
import {
  type Fill,
  FillAt,
  type OrderRequest,
  type OrderResult,
  type OrderState,
  type OrderStatus,
  type PaperVenueConfig,
  type PaperVenueOptions,
  RejectReason,
} from './types.js';

/**
 * Checks every option and fills in defaults.
 * @throws InvalidInputError naming the first invalid field, e.g. `partialFills.maxFractionOfBarVolume`.
 */
export function compilePaperVenueOptions(options: PaperVenueOptions): PaperVenueConfig {
  const symbols: unknown = (options as { symbols?: unknown } | undefined)?.symbols;
  if (!Array.isArray(symbols) || symbols.length === 0) {
    throw new InvalidInputError('symbols', 'must list at least one symbol the venue trades, e.g. ["AAA"]');
  }
  symbols.forEach((symbol: unknown, i) => {
    if (typeof symbol !== 'string' || symbol.trim() === '') {
      throw new InvalidInputError(`symbols[${i}]`, `must be a non-empty string, got ${JSON.stringify(symbol)}`);
    }
  });
  const fillAt: unknown = options.fillAt ?? FillAt.nextOpen;
  if (fillAt !== FillAt.nextOpen && fillAt !== FillAt.close) {
    throw new InvalidInputError('fillAt', `must be 'next-open' or 'close', got ${JSON.stringify(fillAt)}`);
  }
  let partialFills: PaperVenueConfig['partialFills'] = false;
  const partial: unknown = options.partialFills ?? false;
  if (partial !== false) {
    if (typeof partial !== 'object' || partial === null) {
      throw new InvalidInputError('partialFills', `must be false or { maxFractionOfBarVolume }, got ${JSON.stringify(partial)}`);
    }
    const { maxFractionOfBarVolume, lotSize = 1 } = partial as { maxFractionOfBarVolume?: unknown; lotSize?: unknown };
    if (typeof maxFractionOfBarVolume !== 'number' || !(maxFractionOfBarVolume > 0 && maxFractionOfBarVolume <= 1)) {
      throw new InvalidInputError(
        'partialFills.maxFractionOfBarVolume',
        `must be a number in (0, 1], got ${JSON.stringify(maxFractionOfBarVolume)}`,
      );
    }
    if (typeof lotSize !== 'number' || !Number.isFinite(lotSize) || lotSize < 0) {
      throw new InvalidInputError('partialFills.lotSize', `must be a finite number >= 0, got ${JSON.stringify(lotSize)}`);
    }
    partialFills = Object.freeze({ maxFractionOfBarVolume, lotSize });
  }
  return Object.freeze({
    symbols: new Set(symbols as string[]),
    fillAt,
    slippage: compileSlippage(options.slippage),
    fees: compileFees(options.fees),
    partialFills,
  });
}

/** What the venue keeps per symbol. */
interface SymbolBook {
  /** Time of the symbol's latest bar; −Infinity before the first, so every bar time is after it. */
  lastBarTimeMs: number;
  /** Its orders that can still fill, in submission order. */
  open: OrderRecord[];
}

interface OrderRecord {
  /** Replaced (never mutated) by {@link PaperVenue.resize}. */
  request: Readonly<OrderRequest>;
  status: Exclude<OrderStatus, 'duplicate'>;
  readonly reason?: RejectReason;
  readonly message?: string;
  readonly submittedBarTimeMs: number;
  triggered: boolean;
  filledQuantity: number;
  notional: number;
  totalFee: number;
  rawFee: number;
  readonly fills: Fill[];
}

/**
 * The paper exchange: one code path for backtests and swarms. Deterministic (no randomness, no
 * clock: time is the bars' `timeMs`).
 *
 * ## How to drive it
 * For each bar time t: `submit(order, barT)` the orders decided on bar t, then `onBar(bar)` for each
 * symbol's bar t. (With `fillAt: 'next-open'` calling `onBar` before the decisions works too.)
 *
 * ## Fill rules
 * An order decided on bar T is eligible for bars with `timeMs > T` (`next-open`) or `>= T` (`close`).
 * Open orders of a symbol are matched in submission order. With O, H, L, C the bar's prices:
 * - On the decision bar itself (`close` only, the bar has already traded) only C counts:
 *   market fills at C; limit buy fills if C <= limit, limit sell if C >= limit, at C; stop buy
 *   triggers if C >= stop, stop sell if C <= stop, and fills at C.
 * - On any later bar: market fills at O (`next-open`) or C (`close`); limit buy fills if L <= limit
 *   at min(O, limit), limit sell fills if H >= limit at max(O, limit) (so a gap through the limit
 *   fills at the better open); stop buy triggers if H >= stop and fills at max(O, stop), stop sell
 *   triggers if L <= stop and fills at min(O, stop) (a gap through the stop fills at the worse open).
 *   A triggered stop's unfilled remainder rests as a market order.
 * - Slippage then moves the price against the trader; a limit order's price never passes its limit.
 * - Partial fills (when enabled): all orders of a symbol share `maxFractionOfBarVolume × volume` per
 *   bar, first come first served; a partial quantity is rounded down to `lotSize`; the remainder
 *   carries to later bars (with the later-bar rules above).
 * - Fees per the `fees` option (see `FeeOptions`). A fill's `timeMs` is the filling bar's `timeMs`.
 *
 * ## Idempotency
 * A `clientOrderId` is accepted once: any later submission with the same id (whatever its content,
 * whether the first was accepted, rejected, filled or cancelled) returns `{ status: 'duplicate' }`
 * and changes nothing.
 */
export class PaperVenue {
  readonly config: PaperVenueConfig;
  private readonly orders = new Map<string, OrderRecord>();
  /** The lowest epoch each order source may still submit with (see {@link PaperVenue.admitEpoch}). */
  private readonly epochs = new Map<string, number>();
  /** Every symbol's book, made up front: one lookup per bar, updated in place. */
  private readonly books = new Map<string, SymbolBook>();

  /** @throws InvalidInputError naming the first invalid option. */
  constructor(options: PaperVenueOptions) {
    this.config = compilePaperVenueOptions(options);
    for (const symbol of this.config.symbols) this.books.set(symbol, { lastBarTimeMs: -Infinity, open: [] });
  }

  /**
   * Validates an order and, when valid, rests it until bars fill it. Never throws for a bad order:
   * it is rejected with a reason (and remembered, so resubmitting its id is a duplicate).
   * @param nowBar the bar the order was decided on; only its `timeMs` is used.
   * @throws InvalidInputError when `nowBar.timeMs` is not an integer (a caller bug, not an order problem).
   */
  submit(order: OrderRequest, nowBar: Pick<Bar, 'timeMs'>): OrderResult {
    const id: unknown = order.clientOrderId;
    if (typeof id !== 'string' || id.trim() === '') {
      return reject(
        RejectReason.invalidClientOrderId,
        `clientOrderId must be a non-empty string, got ${JSON.stringify(id)}; build one with clientOrderId()`,
      );
    }
    if (this.orders.has(id)) return { status: 'duplicate' };
    if (!Number.isSafeInteger(nowBar.timeMs)) {
      throw new InvalidInputError('nowBar.timeMs', `must be an integer number of milliseconds, got ${nowBar.timeMs}`);
    }
    const request: Readonly<OrderRequest> = Object.freeze({ ...order });
    const problem = this.validate(request, nowBar.timeMs);
    const record: OrderRecord = {
      request,
      status: problem ? 'rejected' : 'accepted',
      ...(problem ?? {}),
      submittedBarTimeMs: nowBar.timeMs,
      triggered: false,
      filledQuantity: 0,
      notional: 0,
      totalFee: 0,
      rawFee: 0,
      fills: [],
    };
    this.orders.set(id, record);
    if (problem) return { status: 'rejected', ...problem };
    (this.books.get(request.symbol) as SymbolBook).open.push(record);
    return { status: 'accepted' };
  }

  /**
   * Cancels an open order's unfilled remainder (fills already made stand).
   * @returns `cancelled`; or, when the order is not open, its current status with reason `not-open`;
   *   or `rejected` with reason `unknown-order`.
   */
  cancel(clientOrderId: string): OrderResult {
    const record = this.orders.get(clientOrderId);
    if (!record) {
      return reject(RejectReason.unknownOrder, `no order has clientOrderId ${JSON.stringify(clientOrderId)}`);
    }
    if (!isOpen(record)) {
      return {
        status: record.status,
        reason: RejectReason.notOpen,
        message: `order ${clientOrderId} is ${record.status}, so there is nothing left to cancel`,
      };
    }
    record.status = 'cancelled';
    return { status: 'cancelled' };
  }

  /**
   * Sets the quantity of an open order that has not filled at all, keeping its place in the queue:
   * how an entry sized at the fill price (`sizeAt: fill-price`) gets its count once that price is known.
   * @returns `accepted`; or, when the order is not open or has filled in part, its current status
   *   with reason `not-open`; or `rejected` with reason `unknown-order`, or `invalid-quantity` for a
   *   quantity that is not a finite number > 0 (the order is then unchanged).
   */
  resize(clientOrderId: string, quantity: number): OrderResult {
    const record = this.orders.get(clientOrderId);
    if (!record) return reject(RejectReason.unknownOrder, `no order has clientOrderId ${JSON.stringify(clientOrderId)}`);
    if (record.status !== 'accepted') {
      return { status: record.status, reason: RejectReason.notOpen, message: `order ${clientOrderId} is ${record.status}; only an open order with no fill can be resized` };
    }
    if (!Number.isFinite(quantity) || quantity <= 0) return reject(RejectReason.invalidQuantity, `quantity must be a finite number > 0, got ${quantity}`);
    record.request = Object.freeze({ ...record.request, quantity });
    return { status: 'accepted' };
  }

  /**
   * Matches the open orders of `bar.symbol` against `bar` (rules in the class comment).
   * @returns the fills, in matching order.
   * @throws InvalidInputError when the bar is invalid, its symbol is not traded here, or its time
   *   is not after the previous bar of the symbol.
   */
  onBar(bar: Bar): Fill[] {
    const problem = validateBar(bar)[0];
    if (problem) throw new InvalidInputError(`bar.${problem.field}`, problem.message);
    const book = this.books.get(bar.symbol);
    if (book === undefined) {
      throw new InvalidInputError('bar.symbol', `${JSON.stringify(bar.symbol)} is not one of the venue's symbols`);
    }
    const last = book.lastBarTimeMs;
    if (bar.timeMs <= last) {
      throw new InvalidInputError(
        'bar.timeMs',
        `${bar.timeMs} is not after the previous ${bar.symbol} bar (${last}); feed each symbol's bars in time order`,
      );
    }
    book.lastBarTimeMs = bar.timeMs;
    const open = book.open;
    if (open.length === 0) return [];
    const fills: Fill[] = [];
    const partial = this.config.partialFills;
    let capacity = partial ? partial.maxFractionOfBarVolume * bar.volume : Infinity;
    for (const record of open) {
      if (!isOpen(record)) continue;
      const fill = this.match(record, bar, capacity);
      if (!fill) continue;
      capacity -= fill.quantity;
      fills.push(fill);
    }
    book.open = open.filter(isOpen);
    return fills;
  }

  /**
   * Fencing: whether `source` (the role of the agent that decided) may submit with `epoch`. An epoch
   * below the highest seen for the source is refused, so an agent that was replaced (restarted
   * elsewhere, or failed over to its standby) and comes back, because it was only slow or cut off,
   * can never place an order again; a higher one raises the floor. Nothing else changes: the
   * refused orders are not remembered, so the replacement can submit the same client order ids.
   * @throws InvalidInputError when `epoch` is not a whole number >= 0 (a caller bug).
   */
  admitEpoch(source: string, epoch: number): boolean {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new InvalidInputError('epoch', `must be a whole number >= 0, got ${epoch}`);
    const floor = this.epochs.get(source) ?? 0;
    if (epoch < floor) return false;
    this.epochs.set(source, epoch);
    return true;
  }

  /** The lowest epoch `source` may submit with: 0 until it was raised. */
  epochOf(source: string): number {
    return this.epochs.get(source) ?? 0;
  }

  /** Orders that can still fill (`accepted`, `partially-filled`), in submission order. */
  openOrders(): OrderState[] {
    return [...this.orders.values()].filter(isOpen).map(snapshot);
  }

  /** What the venue knows about an order, or `undefined` when it never saw the id. */
  order(clientOrderId: string): OrderState | undefined {
    const record = this.orders.get(clientOrderId);
    return record ? snapshot(record) : undefined;
  }

  private validate(order: Readonly<OrderRequest>, nowBarTimeMs: number): { reason: RejectReason; message: string } | undefined {
    const { symbol, side, quantity, type, limitPrice, stopPrice } = order as Record<keyof OrderRequest, unknown>;
    if (typeof symbol !== 'string' || !this.config.symbols.has(symbol)) {
      return {
        reason: RejectReason.unknownSymbol,
        message: `symbol ${JSON.stringify(symbol)} is not traded here; use one of ${[...this.config.symbols].join(', ')}`,
      };
    }
    if (side !== 'buy' && side !== 'sell') {
      return { reason: RejectReason.invalidSide, message: `side must be 'buy' or 'sell', got ${JSON.stringify(side)}` };
    }
    if (typeof quantity !== 'number' || !Number.isFinite(quantity) || quantity <= 0) {
      return {
        reason: RejectReason.invalidQuantity,
        message: `quantity must be a finite number > 0, got ${JSON.stringify(quantity)}; use side 'sell' to sell`,
      };
    }
    if (type !== 'market' && type !== 'limit' && type !== 'stop') {
      return {
        reason: RejectReason.invalidType,
        message: `type must be 'market', 'limit' or 'stop', got ${JSON.stringify(type)}`,
      };
    }
    const priceProblem =
      checkPrice('limitPrice', limitPrice, type === 'limit', RejectReason.missingLimitPrice, RejectReason.invalidLimitPrice, RejectReason.unexpectedLimitPrice, type) ??
      checkPrice('stopPrice', stopPrice, type === 'stop', RejectReason.missingStopPrice, RejectReason.invalidStopPrice, RejectReason.unexpectedStopPrice, type);
    if (priceProblem) return priceProblem;
    const last = (this.books.get(symbol) as SymbolBook).lastBarTimeMs;
    const stale = this.config.fillAt === FillAt.close ? nowBarTimeMs <= last : nowBarTimeMs < last;
    if (stale) {
      return {
        reason: RejectReason.staleBar,
        message:
          `the order was decided on bar ${nowBarTimeMs} but the venue has already processed the ${symbol} bar ${last}, ` +
          'so it cannot fill when it should; submit orders before onBar of the bar that fills them',
      };
    }
    return undefined;
  }

  /** The fill of `record` in `bar`, or undefined; updates the record. */
  private match(record: OrderRecord, bar: Bar, capacity: number): Fill | undefined {
    const { request } = record;
    const fillAt = this.config.fillAt;
    if (fillAt === FillAt.nextOpen ? bar.timeMs <= record.submittedBarTimeMs : bar.timeMs < record.submittedBarTimeMs) {
      return undefined;
    }
    const decisionBar = bar.timeMs === record.submittedBarTimeMs;
    const buy = request.side === 'buy';
    let base: number | undefined;
    if (request.type === 'market' || record.triggered) {
      base = fillAt === FillAt.nextOpen ? bar.open : bar.close;
    } else if (request.type === 'limit') {
      const limit = request.limitPrice as number;
      if (decisionBar) base = (buy ? bar.close <= limit : bar.close >= limit) ? bar.close : undefined;
      else if (buy) base = bar.low <= limit ? Math.min(bar.open, limit) : undefined;
      else base = bar.high >= limit ? Math.max(bar.open, limit) : undefined;
    } else {
      const stop = request.stopPrice as number;
      if (decisionBar) base = (buy ? bar.close >= stop : bar.close <= stop) ? bar.close : undefined;
      else if (buy) base = bar.high >= stop ? Math.max(bar.open, stop) : undefined;
      else base = bar.low <= stop ? Math.min(bar.open, stop) : undefined;
      if (base !== undefined) record.triggered = true;
    }
    if (base === undefined) return undefined;

    const remaining = request.quantity - record.filledQuantity;
    let quantity = remaining;
    if (capacity < remaining) {
      const lot = this.config.partialFills ? this.config.partialFills.lotSize : 0;
      quantity = lot > 0 ? Math.floor(capacity / lot) * lot : capacity;
    }
    if (!(quantity > 0)) return undefined;

    let price = applySlippage(this.config.slippage, request.side, base);
    if (request.type === 'limit') {
      const limit = request.limitPrice as number;
      price = buy ? Math.min(price, limit) : Math.max(price, limit);
    }
    const { fee, rawTotal } = feeForFill(this.config.fees, price, quantity, {
      fillCount: record.fills.length,
      rawTotal: record.rawFee,
      charged: record.totalFee,
    });
    const fill: Fill = Object.freeze({
      clientOrderId: request.clientOrderId,
      symbol: request.symbol,
      side: request.side,
      quantity,
      price,
      fee,
      timeMs: bar.timeMs,
    });
    record.fills.push(fill);
    record.rawFee = rawTotal;
    record.totalFee += fee;
    record.notional += price * quantity;
    if (quantity === remaining) {
      record.filledQuantity = request.quantity;
      record.status = 'filled';
    } else {
      record.filledQuantity += quantity;
      record.status = 'partially-filled';
    }
    return fill;
  }
}

function checkPrice(
  field: 'limitPrice' | 'stopPrice',
  value: unknown,
  required: boolean,
  missing: RejectReason,
  invalid: RejectReason,
  unexpected: RejectReason,
  type: string,
): { reason: RejectReason; message: string } | undefined {
  if (value === undefined) {
    return required ? { reason: missing, message: `a ${type} order needs ${field}` } : undefined;
  }
  if (!required) {
    return { reason: unexpected, message: `a ${type} order takes no ${field}; leave it out or change the type` };
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    return { reason: invalid, message: `${field} must be a finite number > 0, got ${JSON.stringify(value)}` };
  }
  return undefined;
}

function reject(reason: RejectReason, message: string): OrderResult {
  return { status: 'rejected', reason, message };
}

function isOpen(record: OrderRecord): boolean {
  return record.status === 'accepted' || record.status === 'partially-filled';
}

function snapshot(record: OrderRecord): OrderState {
  const state: OrderState = {
    request: record.request,
    status: record.status,
    ...(record.reason === undefined ? {} : { reason: record.reason, message: record.message }),
    submittedBarTimeMs: record.submittedBarTimeMs,
    triggered: record.triggered,
    filledQuantity: record.filledQuantity,
    remainingQuantity: isOpen(record) ? record.request.quantity - record.filledQuantity : 0,
    averagePrice: record.filledQuantity > 0 ? record.notional / record.filledQuantity : 0,
    totalFee: record.totalFee,
    fills: [...record.fills],
  };
  return state;
}
