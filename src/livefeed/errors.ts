import { TradeswarmError } from '../core/index.js';

/**
 * A live exchange feed could not get data from its exchange for longer than its `giveUpAfterMs`:
 * every attempt failed (network errors, rate limits, 5xx). Retryable: the exchange may come back;
 * open the feed again from its last position (`feed.position()`), or raise `giveUpAfterMs`
 * (`Infinity` keeps retrying, with warnings).
 */
export class ExchangeUnreachableError extends TradeswarmError {
  override readonly name = 'ExchangeUnreachableError';
  /** Marker for {@link isExchangeUnreachableError}. */
  readonly isExchangeUnreachableError = true;

  /**
   * @param exchange the ccxt exchange id
   * @param url the API base URL tried
   * @param failingForMs how long every attempt has failed, on the feed's clock
   */
  constructor(
    readonly exchange: string,
    readonly url: string,
    readonly failingForMs: number,
    cause: unknown,
  ) {
    super(
      `could not get market data from ${exchange} at ${url} for ${Math.round(failingForMs / 1000)} s (last error: ${cause instanceof Error ? cause.message : String(cause)}); ` +
        'check the network and the exchange status, then open the feed again from its last position, or raise giveUpAfterMs (Infinity keeps retrying)',
      { cause, retryable: true },
    );
  }
}

/** Whether `error` is an {@link ExchangeUnreachableError}. */
export function isExchangeUnreachableError(error: unknown): error is ExchangeUnreachableError {
  return typeof error === 'object' && error !== null && (error as Partial<ExchangeUnreachableError>).isExchangeUnreachableError === true;
}
