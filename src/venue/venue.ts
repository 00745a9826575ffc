import { InvalidInputError, type JsonObject, type JsonValue, type Snapshot, type SnapshotReader, openSnapshot, toJsonNumber } from '../core/index.js';
import { type Bar, validateBar } from '../market/index.js';
import { applySlippage, compileFees, compileSlippage, feeForFill } from './models.js';
import {
  type BracketExits,
  type ExitDistance,
  ExitKind,
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
  /** Replaced (never mutated) by {@link PaperVenue.resize}, a bracket's growth and a trailing stop's move. */
  request: Readonly<OrderRequest>;
  status: Exclude<OrderStatus, 'duplicate'>;
  readonly reason?: RejectReason;
  readonly message?: string;
  readonly submittedBarTimeMs: number;
  /** The first bar time it may fill on. */
  readonly activeFromMs: number;
  /** The bar time on which only the close counts (`close` fills: the decision bar); NaN for none. */
  readonly closeRulesAtMs: number;
  triggered: boolean;
  filledQuantity: number;
  notional: number;
  totalFee: number;
  rawFee: number;
  readonly fills: Fill[];
  /** An entry with exits, once it has filled; or one of the bracket's exits. */
  bracket?: Bracket;
  /** Set on an exit: which one it is. */
  readonly exitKind?: ExitKind;
  /** Set on a trailing stop: its distance and the best price since the entry filled. */
  readonly trail?: { readonly distance: ExitDistance; best: number };
}

/** An entry's exits, one-cancels-other. */
interface Bracket {
  readonly entry: OrderRecord;
  /** Whether the entry bought (its exits sell). */
  readonly long: boolean;
  /** The exits placed, in evaluation order: stop-loss, trailing stop, take-profit. */
  readonly exits: OrderRecord[];
  /** The bar time it was last evaluated on (its exits are matched together, once a bar). */
  evaluatedAtMs: number;
  /** Set when one exit triggered: the others and the entry's remainder were cancelled. */
  done: boolean;
}

/** The format version of venue snapshots this build writes and reads. */
const VENUE_SNAPSHOT_VERSION = 1;

/**
 * A snapshot of a {@link PaperVenue} ({@link PaperVenue.snapshot}): `kind: 'paper-venue'`; `spec` its
 * compiled options; `state` every order it knows (in submission order, with its fills, bracket and
 * trailing stop), each symbol's book (latest bar time, open orders in matching order), the epochs of
 * the order sources and the base price of the latest fill.
 */
export type PaperVenueSnapshot = Snapshot;

/** What `onBar` answers for a bar that fills nothing (most bars): shared, frozen. */
const NO_FILLS: readonly Fill[] = Object.freeze([]);

/** The exits of a bracket, in the order the venue places and evaluates them. */
const EXIT_ORDER: ReadonlyArray<readonly [keyof BracketExits, ExitKind]> = [
  ['stopLoss', ExitKind.stopLoss],
  ['trailingStop', ExitKind.trailingStop],
  ['takeProfit', ExitKind.takeProfit],
];

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
 * ## Bracket exits (an order's `exits`)
 * When an entry with `exits` first fills, at price P (the fill's price, slippage included), the venue
 * places its exits for the quantity filled, on the other side, with ids `<entry id>:stop-loss`,
 * `<entry id>:trailing-stop` and `<entry id>:take-profit`. With d a distance (`points`, or
 * `percent` × P / 100), for a long (the entry bought; a short mirrors every sign):
 * - stop-loss: a stop sell at P − d; take-profit: a limit sell at P + d;
 * - trailing stop: a stop sell at B − d, B the best (highest) price since the fill, starting at P.
 * An exit whose price would be <= 0 is not placed (it could never trigger).
 * They fill by the rules above, from the entry's fill bar when the entry filled at that bar's open
 * (the rest of the bar is after the fill), else from the next bar. Per bar, a bracket's exits are
 * evaluated together, in this order:
 * 1. Each exit is checked against the bar with its price as it stood before the bar. When a stop
 *    (stop-loss or trailing) triggers, the stop the price reaches first from the open fills (the
 *    higher for a long, the lower for a short; stop-loss on a tie); the take-profit fills only when no
 *    stop triggers: when a bar's range reaches both a stop and the target, the order of the prices
 *    within the bar is unknown and the stop, the worse outcome, is assumed.
 * 2. One-cancels-other: the exit that triggers is the only one to fill; the others, and whatever of
 *    the entry has not filled, are cancelled at once (even when partial fills leave the exit itself
 *    unfilled for now: it carries to later bars).
 * 3. When none triggered, the trailing stop's B takes the bar's high (a short's: low) and its stop
 *    moves to B ∓ d when that is in the trader's favour; it never moves back.
 * Later fills of the entry (partial fills) raise the exits' quantity to the entry's filled quantity;
 * their prices stay those of the first fill. {@link PaperVenue.cancelBracket} cancels an entry's
 * remainder and its open exits (what a strategy's own exit does); `cancel` of one exit cancels that one.
 *
 * ## Idempotency
 * A `clientOrderId` is accepted once: any later submission with the same id (whatever its content,
 * whether the first was accepted, rejected, filled or cancelled) returns `{ status: 'duplicate' }`
 * and changes nothing. An exit's id is derived from its entry's, so an entry submitted again places
 * no second bracket.
 */
export class PaperVenue {
  readonly config: PaperVenueConfig;
  private orders = new Map<string, OrderRecord>();
  /** The lowest epoch each order source may still submit with (see {@link PaperVenue.admitEpoch}). */
  private epochs = new Map<string, number>();
  /** Every symbol's book, made up front: one lookup per bar, updated in place. */
  private books = new Map<string, SymbolBook>();
  /** The base price of the latest fill (before slippage): whether an entry filled at its bar's open. */
  private lastBase = NaN;

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
    const closeFills = this.config.fillAt === FillAt.close;
    const record = newRecord(request, nowBar.timeMs, closeFills ? nowBar.timeMs : nowBar.timeMs + 1, {
      status: problem ? 'rejected' : 'accepted',
      ...(problem ?? {}),
      closeRulesAtMs: closeFills ? nowBar.timeMs : NaN,
    });
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
   * Cancels what is left of an entry with `exits`: its unfilled remainder and its open exits (fills
   * already made stand). What a runner does when a strategy closes the position itself.
   * @returns how many orders were cancelled (0 for an unknown id, an order without exits, or a bracket already done).
   */
  cancelBracket(entryId: string): number {
    const entry = this.orders.get(entryId);
    if (entry === undefined || entry.request.exits === undefined) return 0;
    let cancelled = 0;
    for (const record of [entry, ...(entry.bracket?.exits ?? [])]) {
      if (!isOpen(record)) continue;
      record.status = 'cancelled';
      cancelled++;
    }
    if (entry.bracket !== undefined) entry.bracket.done = true;
    return cancelled;
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
   * @returns the fills, in matching order (a shared, frozen empty array when there are none).
   * @throws InvalidInputError when the bar is invalid, its symbol is not traded here, or its time
   *   is not after the previous bar of the symbol.
   */
  onBar(bar: Bar): readonly Fill[] {
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
    if (open.length === 0) return NO_FILLS;
    const fills: Fill[] = [];
    const partial = this.config.partialFills;
    let capacity = partial ? partial.maxFractionOfBarVolume * bar.volume : Infinity;
    // Indexed, and the length read each time: an entry's fill appends its exits, which match on this bar too.
    for (let k = 0; k < open.length; k++) {
      const record = open[k] as OrderRecord;
      if (!isOpen(record)) continue;
      const fill = record.exitKind === undefined ? this.match(record, bar, capacity) : this.matchBracket(record.bracket as Bracket, bar, capacity);
      if (!fill) continue;
      capacity -= fill.quantity;
      fills.push(fill);
      if (record.exitKind === undefined && record.request.exits !== undefined) this.placeExits(record, fill, bar, open);
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

  /**
   * Its state as plain JSON (see {@link PaperVenueSnapshot}), to restore a venue of the same options
   * exactly where this one stands ({@link restore}). Costs O(orders it knows).
   */
  snapshot(): PaperVenueSnapshot {
    return { kind: 'paper-venue', version: VENUE_SNAPSHOT_VERSION, spec: this.snapshotSpec(), state: this.saveState() };
  }

  /**
   * Sets its state to what `snapshot` saved, whatever it held before: given the same orders and bars
   * that followed, it then answers and fills exactly what the venue that made the snapshot did
   * (a client order id it knew is still a duplicate). All or nothing.
   * @throws {IncompatibleSnapshotError} when the snapshot is of another format version, of a venue
   *   of other options (it names the fields), or damaged; the venue is then unchanged.
   */
  restore(snapshot: JsonValue): void {
    this.prepareState(openSnapshot(snapshot, { subject: 'the paper venue', kind: 'paper-venue', version: VENUE_SNAPSHOT_VERSION, spec: this.snapshotSpec() }))();
  }

  /** What its snapshots' `spec` holds: its compiled options. */
  snapshotSpec(): JsonObject {
    const { symbols, fillAt, slippage, fees, partialFills } = this.config;
    return { symbols: [...symbols], fillAt, slippage: { ...slippage }, fees: { ...fees }, partialFills: partialFills === false ? false : { ...partialFills } };
  }

  /** The state without the snapshot's header: what a trading session's snapshot holds for its venue. */
  saveState(): JsonObject {
    return {
      lastBase: toJsonNumber(this.lastBase),
      epochs: [...this.epochs].map(([source, epoch]) => [source, epoch]),
      orders: [...this.orders.values()].map(saveRecord),
      books: [...this.books].map(([symbol, book]) => [symbol, toJsonNumber(book.lastBarTimeMs), book.open.map((record) => record.request.clientOrderId)]),
    };
  }

  /**
   * Reads a state saved by {@link saveState} (`state` reads it where it sits in a larger snapshot, so
   * errors name the field by its path there), changing nothing yet; the returned function puts it in place.
   * @throws {IncompatibleSnapshotError} naming the field of the first value that is wrong.
   */
  prepareState(state: SnapshotReader): () => void {
    const symbols = this.config.symbols;
    const orders = new Map<string, OrderRecord>();
    const brackets: Array<{ entry: OrderRecord; saved: SnapshotReader }> = [];
    const exits: Array<{ exit: OrderRecord; saved: SnapshotReader }> = [];
    for (const saved of state.list('orders')) {
      const { record, bracket } = readRecord(saved, symbols);
      const id = record.request.clientOrderId;
      if (orders.has(id)) saved.object('request').fail('clientOrderId', `is the id of an earlier order too, got ${JSON.stringify(id)}; every order of a venue has its own`);
      orders.set(id, record);
      if (bracket !== undefined) brackets.push({ entry: record, saved: bracket });
      if (record.exitKind !== undefined) exits.push({ exit: record, saved });
    }
    // Brackets: the entry's names its exits by kind, each exit's id is the entry's and its kind.
    for (const { entry, saved } of brackets) {
      const bracket: Bracket = { entry, long: saved.boolean('long'), exits: [], evaluatedAtMs: saved.number('evaluatedAtMs'), done: saved.boolean('done') };
      const kinds = saved.array('exits');
      (kinds.raw() as unknown[]).forEach((_, i) => {
        const exit = orders.get(`${entry.request.clientOrderId}:${kinds.string(i, Object.values(ExitKind))}`);
        if (exit?.exitKind === undefined || exit.bracket !== undefined) kinds.fail(i, `must name an exit order of the entry, once, got ${JSON.stringify(kinds.raw(i))}`);
        (exit as OrderRecord).bracket = bracket;
        bracket.exits.push(exit as OrderRecord);
      });
      entry.bracket = bracket;
    }
    for (const { exit, saved } of exits) {
      if (exit.bracket === undefined) saved.fail('exitKind', `is set, but no entry's bracket lists ${JSON.stringify(exit.request.clientOrderId)} among its exits`);
    }
    const epochs = new Map(state.list('epochs').map((entry): [string, number] => [entry.string(0), entry.integer(1, 0)]));
    const books = new Map<string, SymbolBook>();
    for (const symbol of symbols) books.set(symbol, { lastBarTimeMs: -Infinity, open: [] });
    const inBooks = new Set<OrderRecord>();
    for (const entry of state.list('books')) {
      const symbol = entry.string(0);
      const book = books.get(symbol);
      if (book === undefined) entry.fail(0, `must be a symbol of the venue's options (${[...symbols].join(', ')}), got ${JSON.stringify(symbol)}; restore into a venue that trades it`);
      const lastBarTimeMs = entry.number(1);
      if (!(Number.isSafeInteger(lastBarTimeMs) || lastBarTimeMs === -Infinity)) entry.fail(1, `must be a whole number of milliseconds or "-Infinity" (no bar yet), got ${JSON.stringify(entry.raw(1))}`);
      const ids = entry.array(2);
      const open = (ids.raw() as unknown[]).map((_, i) => {
        const record = orders.get(ids.string(i));
        if (record === undefined || record.request.symbol !== symbol || inBooks.has(record)) {
          ids.fail(i, `must be the id of a ${symbol} order of the venue, listed once, got ${JSON.stringify(ids.raw(i))}`);
        }
        inBooks.add(record as OrderRecord);
        return record as OrderRecord;
      });
      (book as SymbolBook).lastBarTimeMs = lastBarTimeMs;
      (book as SymbolBook).open = open;
    }
    for (const [id, record] of orders) {
      if (isOpen(record) && !inBooks.has(record)) state.fail('books', `must list every open order in its symbol's book; ${id} (${record.status}) is in none`);
    }
    const lastBase = state.number('lastBase');
    return () => {
      this.orders = orders;
      this.epochs = epochs;
      this.books = books;
      this.lastBase = lastBase;
    };
  }

  private validate(order: Readonly<OrderRequest>, nowBarTimeMs: number): { reason: RejectReason; message: string } | undefined {
    const { symbol, side, quantity, type, limitPrice, stopPrice, exits } = order as Record<keyof OrderRequest, unknown>;
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
    if (exits !== undefined) {
      const message = exitsProblem(exits);
      if (message !== undefined) return { reason: RejectReason.invalidExits, message };
      const taken = EXIT_ORDER.map(([, kind]) => `${order.clientOrderId}:${kind}`).find((id) => this.orders.has(id));
      if (taken !== undefined) return { reason: RejectReason.invalidExits, message: `an exit of this order would have id ${taken}, which an order already has; use another clientOrderId` };
    }
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
    if (bar.timeMs < record.activeFromMs) return undefined;
    const base = this.basePrice(record, bar);
    if (base === undefined) return undefined;
    if (record.request.type === 'stop') record.triggered = true;
    return this.execute(record, bar, base, capacity);
  }

  /** The price `record` would fill at in `bar` before slippage, or undefined when it does not fill there. Changes nothing. */
  private basePrice(record: OrderRecord, bar: Bar): number | undefined {
    const { request } = record;
    const decisionBar = bar.timeMs === record.closeRulesAtMs;
    const buy = request.side === 'buy';
    if (request.type === 'market' || record.triggered) return this.config.fillAt === FillAt.nextOpen ? bar.open : bar.close;
    if (request.type === 'limit') {
      const limit = request.limitPrice as number;
      if (decisionBar) return (buy ? bar.close <= limit : bar.close >= limit) ? bar.close : undefined;
      if (buy) return bar.low <= limit ? Math.min(bar.open, limit) : undefined;
      return bar.high >= limit ? Math.max(bar.open, limit) : undefined;
    }
    const stop = request.stopPrice as number;
    if (decisionBar) return (buy ? bar.close >= stop : bar.close <= stop) ? bar.close : undefined;
    if (buy) return bar.high >= stop ? Math.max(bar.open, stop) : undefined;
    return bar.low <= stop ? Math.min(bar.open, stop) : undefined;
  }

  /**
   * Evaluates a bracket's exits on `bar`, once a bar (see "Bracket exits" in the class comment):
   * the one that triggers (if any) cancels the others and the entry's remainder and fills as far as
   * `capacity` lets it; otherwise the trailing stop moves.
   */
  private matchBracket(bracket: Bracket, bar: Bar, capacity: number): Fill | undefined {
    if (bracket.evaluatedAtMs === bar.timeMs) return undefined;
    bracket.evaluatedAtMs = bar.timeMs;
    const live = bracket.exits.filter(isOpen);
    if (live.length === 0 || bar.timeMs < (live[0] as OrderRecord).activeFromMs) return undefined;
    if (bracket.done) {
      // The exit that triggered, whose fill partial fills cut short: a stop rests as a market order, a take-profit as its limit.
      const exit = live[0] as OrderRecord;
      const base = this.basePrice(exit, bar);
      return base === undefined ? undefined : this.execute(exit, bar, base, capacity);
    }
    let winner: OrderRecord | undefined;
    let winnerBase = 0;
    for (const exit of live) {
      const base = this.basePrice(exit, bar);
      if (base === undefined) continue;
      const stop = exit.request.type === 'stop';
      const better = winner === undefined || (stop && (winner.request.type !== 'stop' || (bracket.long ? base > winnerBase : base < winnerBase)));
      if (better) {
        winner = exit;
        winnerBase = base;
      }
    }
    if (winner === undefined) {
      for (const exit of live) if (exit.trail !== undefined) this.moveTrailingStop(exit, bracket.long, bar);
      return undefined;
    }
    bracket.done = true;
    if (isOpen(bracket.entry)) bracket.entry.status = 'cancelled';
    for (const exit of live) if (exit !== winner) exit.status = 'cancelled';
    if (winner.request.type === 'stop') winner.triggered = true;
    return this.execute(winner, bar, winnerBase, capacity);
  }

  /** Step 3 of a bracket's bar: the best price takes the bar's extreme, and the stop follows it in the trader's favour only. */
  private moveTrailingStop(exit: OrderRecord, long: boolean, bar: Bar): void {
    const trail = exit.trail as NonNullable<OrderRecord['trail']>;
    trail.best = long ? Math.max(trail.best, bar.high) : Math.min(trail.best, bar.low);
    const level = exitLevel(trail.best, trail.distance, long ? -1 : 1);
    const stop = exit.request.stopPrice as number;
    if (long ? level > stop : level < stop && level > 0) exit.request = Object.freeze({ ...exit.request, stopPrice: level });
  }

  /**
   * After a fill of an entry with exits: on its first fill, places them (appended to `open`, so they
   * are matched on this bar when the entry filled at the open); on later fills, raises their quantity.
   */
  private placeExits(entry: OrderRecord, fill: Fill, bar: Bar, open: OrderRecord[]): void {
    const existing = entry.bracket;
    if (existing !== undefined) {
      for (const exit of existing.exits) if (isOpen(exit)) exit.request = Object.freeze({ ...exit.request, quantity: entry.filledQuantity });
      return;
    }
    const exits = entry.request.exits as BracketExits;
    const long = entry.request.side === 'buy';
    const price = fill.price;
    const atOpen = this.config.fillAt === FillAt.nextOpen && this.lastBase === bar.open;
    const bracket: Bracket = { entry, long, exits: [], evaluatedAtMs: NaN, done: false };
    for (const [field, kind] of EXIT_ORDER) {
      const distance = exits[field];
      if (distance === undefined) continue;
      const towardsProfit = kind === ExitKind.takeProfit;
      const level = exitLevel(price, distance, long === towardsProfit ? 1 : -1);
      const id = `${entry.request.clientOrderId}:${kind}`;
      if (!(level > 0) || !Number.isFinite(level) || this.orders.has(id)) continue;
      const request: OrderRequest = Object.freeze({
        clientOrderId: id,
        symbol: entry.request.symbol,
        side: long ? 'sell' : 'buy',
        quantity: entry.filledQuantity,
        ...(towardsProfit ? { type: 'limit', limitPrice: level } : { type: 'stop', stopPrice: level }),
      } as const);
      const record = newRecord(request, bar.timeMs, atOpen ? bar.timeMs : bar.timeMs + 1, {
        bracket,
        exitKind: kind,
        ...(kind === ExitKind.trailingStop ? { trail: { distance, best: price } } : {}),
      });
      this.orders.set(id, record);
      bracket.exits.push(record);
      open.push(record);
    }
    entry.bracket = bracket;
  }

  /** Fills `record` at `base` (before slippage) in `bar`, as far as `capacity` lets it; updates the record. */
  private execute(record: OrderRecord, bar: Bar, base: number, capacity: number): Fill | undefined {
    const { request } = record;
    const buy = request.side === 'buy';
    const remaining = request.quantity - record.filledQuantity;
    let quantity = remaining;
    if (capacity < remaining) {
      const lot = this.config.partialFills ? this.config.partialFills.lotSize : 0;
      quantity = lot > 0 ? Math.floor(capacity / lot) * lot : capacity;
    }
    if (!(quantity > 0)) return undefined;
    this.lastBase = base;

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

/** A record of an order with nothing filled yet: accepted, eligible from `activeFromMs`, close-only rules on no bar, unless `rest` says otherwise. */
function newRecord(request: Readonly<OrderRequest>, submittedBarTimeMs: number, activeFromMs: number, rest: Partial<OrderRecord>): OrderRecord {
  return { request, status: 'accepted', submittedBarTimeMs, activeFromMs, closeRulesAtMs: NaN, triggered: false, filledQuantity: 0, notional: 0, totalFee: 0, rawFee: 0, fills: [], ...rest };
}

/** `reference` moved by `distance` up (`direction` 1) or down (−1). */
function exitLevel(reference: number, distance: ExitDistance, direction: 1 | -1): number {
  const amount = distance.points ?? (reference * distance.percent) / 100;
  return reference + direction * amount;
}

/** What is wrong with an order's `exits`, or undefined. */
function exitsProblem(exits: unknown): string | undefined {
  if (typeof exits !== 'object' || exits === null || Array.isArray(exits)) return `exits must be an object with stopLoss, takeProfit or trailingStop, got ${JSON.stringify(exits)}`;
  const fields = EXIT_ORDER.map(([field]) => field as string);
  const keys = Object.keys(exits);
  const unknown = keys.find((key) => !fields.includes(key));
  if (unknown !== undefined) return `exits.${unknown} is not an exit; use ${fields.join(', ')}`;
  if (keys.length === 0) return `exits must name at least one of ${fields.join(', ')}`;
  for (const key of keys) {
    const distance: unknown = (exits as Record<string, unknown>)[key];
    const parts = typeof distance === 'object' && distance !== null ? Object.keys(distance) : [];
    if (parts.length !== 1 || (parts[0] !== 'points' && parts[0] !== 'percent')) return `exits.${key} must be { points } or { percent }, got ${JSON.stringify(distance)}`;
    const value: unknown = (distance as Record<string, unknown>)[parts[0]];
    const max = parts[0] === 'percent' ? 100 : Infinity;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value >= max) {
      return `exits.${key}.${parts[0]} must be a finite number > 0${max === 100 ? ' and < 100' : ''}, got ${JSON.stringify(value)}`;
    }
  }
  return undefined;
}

/** The statuses an order record can have. */
const RECORD_STATUSES: ReadonlyArray<OrderRecord['status']> = ['accepted', 'partially-filled', 'filled', 'rejected', 'cancelled'];

/** The statuses after which an order record never changes again (but for its bracket: see {@link settledOrders}). */
const FINAL_STATUSES: ReadonlySet<JsonValue> = new Set<JsonValue>(['filled', 'rejected', 'cancelled']);

/**
 * Which of the orders a venue's saved state lists (`saveState().orders`, in submission order) are
 * saved as they will stay whatever the venue does next, by their indices: each is filled, cancelled
 * or rejected and, when it is a bracket's entry, its bracket is done and every exit is too (an open
 * exit's evaluation still moves the entry's `evaluatedAtMs`, a cancel its `done`). What a snapshot
 * split into history and live state (src/trading/history.ts) may store once and never again; an
 * order resting for long does not hold back those after it.
 */
export function settledOrders(orders: readonly JsonValue[]): number[] {
  let statuses: Map<JsonValue, JsonValue> | undefined;
  const statusOf = (id: string): JsonValue | undefined => {
    statuses ??= new Map(orders.map((order) => [((order as JsonObject).request as JsonObject).clientOrderId as JsonValue, (order as JsonObject).status as JsonValue]));
    return statuses.get(id);
  };
  const settled: number[] = [];
  orders.forEach((value, index) => {
    const order = value as JsonObject;
    if (!FINAL_STATUSES.has(order.status as JsonValue)) return;
    const bracket = order.bracket as JsonObject | undefined;
    if (bracket !== undefined) {
      const id = (order.request as JsonObject).clientOrderId as string;
      if (bracket.done !== true || !(bracket.exits as readonly JsonValue[]).every((kind) => FINAL_STATUSES.has(statusOf(`${id}:${kind as string}`) ?? null))) return;
    }
    settled.push(index);
  });
  return settled;
}

/** The numeric fields of an order request. */
const REQUEST_NUMBERS: ReadonlySet<string> = new Set(['quantity', 'limitPrice', 'stopPrice']);

/**
 * An order record as a venue snapshot holds it. Fields at their usual value are left out (no reason,
 * nothing filled, not triggered, no close-only bar, no bracket); its fills go without what the order
 * says (id, symbol, side); a bracket names its exits by kind (an exit's id is `<entry id>:<kind>`).
 */
function saveRecord(record: OrderRecord): JsonObject {
  const request: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(record.request)) if (value !== undefined) request[key] = typeof value === 'number' ? toJsonNumber(value) : (value as JsonValue);
  const saved: Record<string, JsonValue> = { request, status: record.status };
  if (record.reason !== undefined) saved.reason = record.reason;
  if (record.message !== undefined) saved.message = record.message;
  saved.submittedBarTimeMs = record.submittedBarTimeMs;
  saved.activeFromMs = record.activeFromMs;
  if (!Number.isNaN(record.closeRulesAtMs)) saved.closeRulesAtMs = record.closeRulesAtMs;
  if (record.triggered) saved.triggered = true;
  for (const key of ['filledQuantity', 'notional', 'totalFee', 'rawFee'] as const) if (!Object.is(record[key], 0)) saved[key] = toJsonNumber(record[key]);
  if (record.fills.length > 0) saved.fills = record.fills.map((fill) => [toJsonNumber(fill.quantity), toJsonNumber(fill.price), toJsonNumber(fill.fee), fill.timeMs]);
  const bracket = record.bracket;
  if (bracket !== undefined && record.exitKind === undefined) {
    saved.bracket = { long: bracket.long, exits: bracket.exits.map((exit) => exit.exitKind as string), evaluatedAtMs: toJsonNumber(bracket.evaluatedAtMs), done: bracket.done };
  }
  if (record.exitKind !== undefined) saved.exitKind = record.exitKind;
  if (record.trail !== undefined) saved.trail = { distance: distanceJson(record.trail.distance), best: toJsonNumber(record.trail.best) };
  return saved;
}

/** Reads an order record saved by {@link saveRecord}; the caller links brackets (an entry's, `bracket`) and their exits. */
function readRecord(saved: SnapshotReader, symbols: ReadonlySet<string>): { record: OrderRecord; bracket?: SnapshotReader } {
  const status = saved.string('status', RECORD_STATUSES);
  const request = readRequest(saved.object('request'), symbols, status !== 'rejected');
  const has = (key: string): boolean => saved.raw(key) !== undefined;
  const reason = has('reason') ? saved.string('reason', Object.values(RejectReason)) : undefined;
  const message = has('message') ? saved.string('message') : undefined;
  const closeRulesAtMs = has('closeRulesAtMs') ? saved.integer('closeRulesAtMs') : Number.NaN;
  const quantity = (key: string): number => {
    if (!has(key)) return 0;
    const value = saved.number(key);
    return value >= 0 && Number.isFinite(value) ? value : saved.fail(key, `must be a finite number >= 0, got ${JSON.stringify(saved.raw(key))}`);
  };
  const fills = !has('fills')
    ? []
    : saved.list('fills').map((fill): Fill => {
        const filled = fill.finite(0);
        if (!(filled > 0)) fill.fail(0, `must be a quantity > 0, got ${filled}`);
        const fee = fill.finite(2);
        if (fee < 0) fill.fail(2, `must be a fee >= 0, got ${fee}`);
        return Object.freeze({ clientOrderId: request.clientOrderId, symbol: request.symbol, side: request.side, quantity: filled, price: fill.finite(1), fee, timeMs: fill.integer(3) });
      });
  const exitKind = has('exitKind') ? saved.string('exitKind', Object.values(ExitKind)) : undefined;
  if (exitKind !== undefined && !request.clientOrderId.endsWith(`:${exitKind}`)) saved.fail('exitKind', `is ${JSON.stringify(exitKind)}, so the order's id must end with ":${exitKind}", got ${JSON.stringify(request.clientOrderId)}`);
  let trail: OrderRecord['trail'];
  if (has('trail')) {
    const trailSaved = saved.object('trail');
    const distance = trailSaved.object('distance');
    if (exitsProblem({ trailingStop: distance.raw() }) !== undefined) trailSaved.fail('distance', `must be { points } or { percent }, a finite number > 0 (percent < 100), got ${JSON.stringify(distance.raw())}`);
    trail = { distance: distance.raw('points') === undefined ? { percent: distance.finite('percent') } : { points: distance.finite('points') }, best: trailSaved.finite('best') };
  }
  if ((trail !== undefined) !== (exitKind === ExitKind.trailingStop)) saved.fail('trail', `must be set on a trailing stop (exitKind "trailing-stop") and only there, got ${JSON.stringify(saved.raw('trail'))}`);
  const record: OrderRecord = {
    request,
    status,
    ...(reason === undefined ? {} : { reason }),
    ...(message === undefined ? {} : { message }),
    submittedBarTimeMs: saved.integer('submittedBarTimeMs'),
    activeFromMs: saved.integer('activeFromMs'),
    closeRulesAtMs,
    triggered: has('triggered') ? saved.boolean('triggered') : false,
    filledQuantity: quantity('filledQuantity'),
    notional: has('notional') ? saved.finite('notional') : 0,
    totalFee: quantity('totalFee'),
    rawFee: quantity('rawFee'),
    fills,
    ...(exitKind === undefined ? {} : { exitKind }),
    ...(trail === undefined ? {} : { trail }),
  };
  if (!has('bracket')) return { record };
  if (exitKind !== undefined || request.exits === undefined) saved.fail('bracket', 'must be left out on an order without exits and on an exit');
  return { record, bracket: saved.object('bracket') };
}

function distanceJson(distance: ExitDistance): JsonObject {
  return distance.points === undefined ? { percent: distance.percent } : { points: distance.points };
}

/**
 * Reads an order request saved by {@link saveRecord}. `valid`: the venue accepted it, so it must be
 * one it accepts; otherwise (a rejected order) it is read as it was given, numbers decoded.
 */
function readRequest(saved: SnapshotReader, symbols: ReadonlySet<string>, valid: boolean): Readonly<OrderRequest> {
  const clientOrderId = saved.string('clientOrderId');
  if (!valid) {
    const request: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(saved.raw() as Record<string, unknown>)) {
      request[key] = REQUEST_NUMBERS.has(key) && (typeof value === 'number' || typeof value === 'string') ? saved.number(key) : structuredClone(value);
    }
    request.clientOrderId = clientOrderId;
    return Object.freeze(request as unknown as OrderRequest);
  }
  const symbol = saved.string('symbol');
  if (!symbols.has(symbol)) saved.fail('symbol', `must be a symbol of the venue's options (${[...symbols].join(', ')}), got ${JSON.stringify(symbol)}; restore into a venue that trades it`);
  const side = saved.string('side', ['buy', 'sell'] as const);
  const quantity = saved.finite('quantity');
  if (!(quantity > 0)) saved.fail('quantity', `must be a finite number > 0, got ${quantity}`);
  const type = saved.string('type', ['market', 'limit', 'stop'] as const);
  const price = (field: 'limitPrice' | 'stopPrice', wanted: boolean): { [key: string]: number } => {
    if (!wanted) {
      if (saved.raw(field) !== undefined) saved.fail(field, `must be absent on a ${type} order, got ${JSON.stringify(saved.raw(field))}`);
      return {};
    }
    const value = saved.finite(field);
    return value > 0 ? { [field]: value } : saved.fail(field, `must be a finite number > 0, got ${value}`);
  };
  const exits = saved.raw('exits');
  if (exits !== undefined) {
    const problem = exitsProblem(exits);
    if (problem !== undefined) saved.fail('exits', problem);
  }
  return Object.freeze({
    clientOrderId,
    symbol,
    side,
    quantity,
    type,
    ...price('limitPrice', type === 'limit'),
    ...price('stopPrice', type === 'stop'),
    ...(exits === undefined ? {} : { exits: structuredClone(exits) as BracketExits }),
  });
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
    ...(record.exitKind === undefined ? {} : { exitOf: { entry: (record.bracket as Bracket).entry.request.clientOrderId, kind: record.exitKind } }),
  };
  return state;
}
