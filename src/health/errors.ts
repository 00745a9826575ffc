import { TradeswarmError } from '../core/index.js';

/**
 * A write was refused because this process no longer holds the lease it writes under (another took
 * it, or it expired before it was renewed): nothing of the write's transaction was stored. Not
 * retryable: this process must stop writing; the one that leads now carries on from the store.
 */
export class LeaseLostError extends TradeswarmError {
  override readonly name = 'LeaseLostError';
  /** Marker for {@link isLeaseLostError}; survives realm boundaries where `instanceof` may not. */
  readonly isLeaseLostError = true;

  constructor(
    /** The lease's name, e.g. `control-plane`. */
    readonly lease: string,
    /** This process, as it holds leases. */
    readonly holder: string,
    /** The epoch it held the lease at. */
    readonly epoch: number,
    /** What the store says now: who holds the lease, or that it expired. */
    readonly reason: string,
  ) {
    super(
      `${holder} no longer holds the lease ${lease} (it held epoch ${epoch}): ${reason}. The write was refused and nothing of it was stored; ` +
        'this process stops writing, and the server that leads now carries the deployments on from the store',
      { retryable: false },
    );
  }
}

/** Whether `error` is a {@link LeaseLostError}. */
export function isLeaseLostError(error: unknown): error is LeaseLostError {
  return typeof error === 'object' && error !== null && (error as Partial<LeaseLostError>).isLeaseLostError === true;
}
