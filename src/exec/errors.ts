import { TradeswarmError, type TradeswarmErrorOptions } from '../core/index.js';

/**
 * A wait for rate-limit tokens ended because the caller's `AbortSignal` fired. Nothing was sent to
 * the provider and no token was consumed, so trying again later can succeed (`retryable` is true).
 * The signal's `reason` is kept as `cause`.
 */
export class RateLimitWaitAbortedError extends TradeswarmError {
  override readonly name = 'RateLimitWaitAbortedError';
  /** Marker for {@link isRateLimitWaitAbortedError}; survives copies across realms and bundles. */
  readonly isRateLimitWaitAbortedError = true;

  /**
   * @param bucket which limit the wait was for (`create`, `operation`, `lifecycle` or a bucket's own name)
   * @param requestedTokens how many tokens the wait asked for
   * @param waitedMs how long it had waited when aborted (0 when the signal was already aborted)
   */
  constructor(
    readonly bucket: string,
    readonly requestedTokens: number,
    readonly waitedMs: number,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `waiting for ${requestedTokens} '${bucket}' rate-limit token(s) was aborted after ${waitedMs} ms; ` +
        'nothing was sent to the provider. Retry when the caller is ready, or allow a longer deadline if the wait was cut short',
      { ...options, retryable: true },
    );
  }
}

/** Whether `error` is a {@link RateLimitWaitAbortedError}. */
export function isRateLimitWaitAbortedError(error: unknown): error is RateLimitWaitAbortedError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { isRateLimitWaitAbortedError?: unknown }).isRateLimitWaitAbortedError === true
  );
}

/**
 * The fair queue already holds its maximum number of waiting tasks, so a new task was refused at once.
 * Retryable: wait about {@link QueueFullError.retryAfterMs} and submit again.
 */
export class QueueFullError extends TradeswarmError {
  override readonly name = 'QueueFullError';
  /** Marker for {@link isQueueFullError}; survives bundling and realm boundaries where `instanceof` may not. */
  readonly isQueueFullError = true;

  constructor(
    /** Suggested delay before submitting again, in milliseconds. */
    readonly retryAfterMs: number,
    /** The configured `maxQueueLength` that was reached. */
    readonly maxQueueLength: number,
  ) {
    super(
      `The execution service is busy: ${maxQueueLength} tasks are already waiting, which is the limit. ` +
        `Retry in about ${retryAfterMs} ms, or send fewer tasks at once.`,
      { retryable: true },
    );
  }
}

/**
 * A task waited `maxWaitMs` in the fair queue without starting and was withdrawn (it never ran).
 * Retryable: wait about {@link QueueTimeoutError.retryAfterMs} and submit again.
 */
export class QueueTimeoutError extends TradeswarmError {
  override readonly name = 'QueueTimeoutError';
  /** Marker for {@link isQueueTimeoutError}. */
  readonly isQueueTimeoutError = true;

  constructor(
    /** Suggested delay before submitting again, in milliseconds. */
    readonly retryAfterMs: number,
    /** The configured `maxWaitMs` the task waited for. */
    readonly maxWaitMs: number,
  ) {
    super(
      `The execution service is busy: the task waited ${maxWaitMs} ms without a free slot and did not run. ` +
        `Retry in about ${retryAfterMs} ms; the task is safe to resubmit.`,
      { retryable: true },
    );
  }
}

/** Whether `error` is a {@link QueueFullError}. */
export function isQueueFullError(error: unknown): error is QueueFullError {
  return typeof error === 'object' && error !== null && (error as Partial<QueueFullError>).isQueueFullError === true;
}

/** Whether `error` is a {@link QueueTimeoutError}. */
export function isQueueTimeoutError(error: unknown): error is QueueTimeoutError {
  return (
    typeof error === 'object' && error !== null && (error as Partial<QueueTimeoutError>).isQueueTimeoutError === true
  );
}

/**
 * The sandbox provider failed repeatedly, so the circuit breaker is open and calls fail at once instead
 * of piling up. Retryable: try again after {@link ProviderUnavailableError.retryAfterMs}.
 */
export class ProviderUnavailableError extends TradeswarmError {
  override readonly name = 'ProviderUnavailableError';

  constructor(
    /** When the breaker will let a trial call through, in milliseconds from now. */
    readonly retryAfterMs: number,
    options: TradeswarmErrorOptions = {},
  ) {
    super(
      `The sandbox provider is failing, so new executions are refused for now (circuit breaker open). Retry in about ${retryAfterMs} ms; if it keeps happening, check the provider (E2B status, or the local cloud's log).`,
      { ...options, retryable: true },
    );
  }
}
