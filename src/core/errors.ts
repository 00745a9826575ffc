/** Options every tradeswarm error accepts. */
export interface TradeswarmErrorOptions {
  cause?: unknown;
  /** Whether trying the same thing again later can succeed. */
  retryable?: boolean;
}

/**
 * The root of every error tradeswarm throws on purpose. Messages say what was wrong and what to do.
 */
export class TradeswarmError extends Error {
  override readonly name: string = 'TradeswarmError';
  readonly retryable: boolean;

  constructor(message: string, options: TradeswarmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/** A value supplied by the user (option, config field, request field) is invalid. */
export class InvalidInputError extends TradeswarmError {
  override readonly name = 'InvalidInputError';

  constructor(
    readonly field: string,
    message: string,
    options: TradeswarmErrorOptions = {},
  ) {
    super(`${field}: ${message}`, options);
  }
}

/** Returns the message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
