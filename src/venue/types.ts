export type Side = 'buy' | 'sell';

export type OrderType = 'market' | 'limit' | 'stop';

/** An order as an agent or a backtest submits it. */
export interface OrderRequest {
  /** Idempotency key: the venue accepts an id once (see `clientOrderId` in `ids.ts`). */
  clientOrderId: string;
  symbol: string;
  side: Side;
  /** Positive, finite; fractional units are allowed. */
  quantity: number;
  type: OrderType;
  /** Required for (and only for) `limit` orders. */
  limitPrice?: number;
  /** Required for (and only for) `stop` orders. */
  stopPrice?: number;
  /**
   * Exit orders the venue places when this order (the entry) fills: a bracket, one-cancels-other
   * (see "Bracket exits" in `PaperVenue`). At least one of its fields when given.
   */
  exits?: BracketExits;
}

/**
 * How far an exit's trigger is from a reference price: `points` in price units, or `percent` of the
 * reference (2 = 2 %). Both finite and > 0; a `percent` below 100.
 */
export type ExitDistance = { readonly points: number; readonly percent?: never } | { readonly percent: number; readonly points?: never };

/**
 * The exits of an entry, each a distance from the entry's fill price (a trailing stop's from the
 * best price since the fill). For a long (a buy entry) the stop-loss is below and the take-profit
 * above; for a short, the other way round.
 */
export interface BracketExits {
  /** A stop order at `fill ∓ distance`. */
  readonly stopLoss?: ExitDistance;
  /** A limit order at `fill ± distance`. */
  readonly takeProfit?: ExitDistance;
  /** A stop order `distance` behind the best price since the fill, moved once per bar, only in the trader's favour. */
  readonly trailingStop?: ExitDistance;
}

/** The exits of a bracket, as the venue names them (the last part of an exit's client order id). */
export const ExitKind = { stopLoss: 'stop-loss', trailingStop: 'trailing-stop', takeProfit: 'take-profit' } as const;
export type ExitKind = (typeof ExitKind)[keyof typeof ExitKind];

/** One execution. An order fills in one or (with partial fills) several of these. */
export interface Fill {
  clientOrderId: string;
  symbol: string;
  side: Side;
  /** > 0. */
  quantity: number;
  /** Execution price per unit, slippage included. */
  price: number;
  /** Fee charged for this fill, >= 0, in price units (cash). */
  fee: number;
  /** `timeMs` of the bar that produced the fill. */
  timeMs: number;
}

export type OrderStatus = 'accepted' | 'partially-filled' | 'filled' | 'rejected' | 'cancelled' | 'duplicate';

/** Why the venue refused an order (or a cancel). */
export const RejectReason = {
  invalidClientOrderId: 'invalid-client-order-id',
  unknownSymbol: 'unknown-symbol',
  invalidSide: 'invalid-side',
  invalidQuantity: 'invalid-quantity',
  invalidType: 'invalid-type',
  missingLimitPrice: 'missing-limit-price',
  invalidLimitPrice: 'invalid-limit-price',
  missingStopPrice: 'missing-stop-price',
  invalidStopPrice: 'invalid-stop-price',
  invalidExits: 'invalid-exits',
  unexpectedLimitPrice: 'unexpected-limit-price',
  unexpectedStopPrice: 'unexpected-stop-price',
  staleBar: 'stale-bar',
  unknownOrder: 'unknown-order',
  notOpen: 'not-open',
  staleEpoch: 'stale-epoch',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** The answer to `submit` and `cancel`. */
export interface OrderResult {
  readonly status: OrderStatus;
  /** Set when the venue refused: a stable code to branch on. */
  readonly reason?: RejectReason;
  /** Set with `reason`: what was wrong and what to do, for people. */
  readonly message?: string;
}

/** What the venue knows about one order (a snapshot; later bars do not change it). */
export interface OrderState {
  readonly request: Readonly<OrderRequest>;
  readonly status: Exclude<OrderStatus, 'duplicate'>;
  readonly reason?: RejectReason;
  readonly message?: string;
  /** `timeMs` of the bar the order was decided on (`nowBar` of `submit`). */
  readonly submittedBarTimeMs: number;
  /** Whether a stop order's stop price has been reached (then it rests as a market order). */
  readonly triggered: boolean;
  readonly filledQuantity: number;
  /** Quantity still to fill; 0 once the order is no longer open (filled, cancelled, rejected). */
  readonly remainingQuantity: number;
  /** Quantity-weighted mean fill price; 0 before the first fill. */
  readonly averagePrice: number;
  readonly totalFee: number;
  readonly fills: readonly Fill[];
  /** For an exit the venue placed: the entry's id and which exit it is. */
  readonly exitOf?: { readonly entry: string; readonly kind: ExitKind };
}

/** When market orders fill (see `PaperVenue` for the full rules). */
export const FillAt = { nextOpen: 'next-open', close: 'close' } as const;
export type FillAt = (typeof FillAt)[keyof typeof FillAt];

/**
 * How far a fill's price moves against the trader from the rule's base price (buys pay more,
 * sells receive less).
 * - `none`: the base price.
 * - `bps`: `base × (1 ± bps / 10 000)`.
 * - `fixed`: `base ± amountPerShare` (a sell price never goes below 0).
 */
export type SlippageOptions =
  | { model: 'none' }
  | { model: 'bps'; /** >= 0 */ bps: number }
  | { model: 'fixed'; /** >= 0, in price units */ amountPerShare: number };

/**
 * What an order costs, charged per fill, always >= 0.
 * - `none`: 0.
 * - `fixed`: `amountPerOrder`, charged on the order's first fill only.
 * - `bps`: `price × quantity × bps / 10 000` of each fill.
 * - `per-share`: `quantity × amountPerShare` of each fill.
 * `minimumPerOrder` (bps, per-share) is a floor on the order's total fee: the first fill pays at
 * least the minimum, later fills pay only what the running total exceeds it by.
 */
export type FeeOptions =
  | { model: 'none' }
  | { model: 'fixed'; /** >= 0 */ amountPerOrder: number }
  | { model: 'bps'; /** >= 0 */ bps: number; /** >= 0 @default 0 */ minimumPerOrder?: number }
  | { model: 'per-share'; /** >= 0 */ amountPerShare: number; /** >= 0 @default 0 */ minimumPerOrder?: number };

/** The compiled form of {@link SlippageOptions}. */
export type SlippageConfig = Readonly<SlippageOptions>;

/** The compiled form of {@link FeeOptions}: `minimumPerOrder` filled in. */
export type FeeConfig =
  | Readonly<{ model: 'none' }>
  | Readonly<{ model: 'fixed'; amountPerOrder: number }>
  | Readonly<{ model: 'bps'; bps: number; minimumPerOrder: number }>
  | Readonly<{ model: 'per-share'; amountPerShare: number; minimumPerOrder: number }>;

/** Caps each bar's fills at a fraction of its volume; the remainder carries to later bars. */
export interface PartialFillOptions {
  /** In (0, 1]: the share of a bar's volume all orders in that symbol may take together. */
  maxFractionOfBarVolume: number;
  /**
   * Partial fills are rounded down to a multiple of this (the last fill of an order is always its
   * exact remainder), so whole-share orders get whole-share fills. `0` turns rounding off.
   * @default 1
   */
  lotSize?: number;
}

/** Options of `PaperVenue`. */
export interface PaperVenueOptions {
  /** The symbols the venue trades; orders in any other symbol are rejected. Required, non-empty. */
  symbols: readonly string[];
  /** @default 'next-open' */
  fillAt?: FillAt;
  /** @default { model: 'none' } */
  slippage?: SlippageOptions;
  /** @default { model: 'none' } */
  fees?: FeeOptions;
  /** @default false (every eligible order fills in full, whatever the bar's volume) */
  partialFills?: PartialFillOptions | false;
}

/** The compiled, complete, frozen form of {@link PaperVenueOptions}. */
export interface PaperVenueConfig {
  readonly symbols: ReadonlySet<string>;
  readonly fillAt: FillAt;
  readonly slippage: SlippageConfig;
  readonly fees: FeeConfig;
  readonly partialFills: Readonly<Required<PartialFillOptions>> | false;
}
