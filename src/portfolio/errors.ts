import { TradeswarmError, type TradeswarmErrorOptions } from '../core/index.js';

/**
 * A long-only portfolio was given a sell larger than the position it holds, which would open a
 * short. The fill was refused and the portfolio is exactly as it was before the call. Not
 * retryable: the same fill will be refused again; sell at most {@link heldQuantity}, or create the
 * portfolio without `longOnly` if shorting is intended.
 */
export class ShortSellingNotAllowedError extends TradeswarmError {
  override readonly name = 'ShortSellingNotAllowedError';
  /** Marker for {@link isShortSellingNotAllowedError}; survives bundling and realm boundaries. */
  readonly isShortSellingNotAllowedError = true;

  /**
   * @param symbol the symbol of the refused fill
   * @param clientOrderId the client order id of the refused fill
   * @param requestedQuantity the quantity the fill tried to sell
   * @param heldQuantity the (non-negative) quantity held when the fill arrived
   */
  constructor(
    readonly symbol: string,
    readonly clientOrderId: string,
    readonly requestedQuantity: number,
    readonly heldQuantity: number,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `fill ${clientOrderId} sells ${requestedQuantity} ${symbol} but the long-only portfolio holds only ${heldQuantity}; ` +
        'the fill was refused and nothing changed. Sell at most the held quantity, or turn longOnly off to allow shorting',
      { ...options, retryable: false },
    );
  }
}

/** Whether `error` is a {@link ShortSellingNotAllowedError}. */
export function isShortSellingNotAllowedError(error: unknown): error is ShortSellingNotAllowedError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { isShortSellingNotAllowedError?: unknown }).isShortSellingNotAllowedError === true
  );
}
