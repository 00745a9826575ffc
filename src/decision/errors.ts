import { TradeswarmError, type TradeswarmErrorOptions } from '../core/index.js';

/**
 * A state machine of this domain (the risk manager's) was given an event its transition table does
 * not list for the current state, e.g. `reset` while not HALTED. Nothing changed. Not retryable:
 * the same pair is refused again; send only events the table lists for the state.
 */
export class InvalidTransitionError extends TradeswarmError {
  override readonly name = 'InvalidTransitionError';
  /** Marker for {@link isInvalidTransitionError}; survives bundling and realm boundaries. */
  readonly isInvalidTransitionError = true;

  constructor(
    /** Which machine, e.g. `risk`. */
    readonly machine: string,
    readonly state: string,
    readonly event: string,
    /** The events the table lists for `state`. */
    readonly allowed: readonly string[],
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `${machine} state ${state} has no transition for event ${JSON.stringify(event)}; nothing changed. ` +
        `In ${state} the allowed events are: ${allowed.join(', ') || '(none)'}`,
      { ...options, retryable: false },
    );
  }
}

/** Whether `error` is an {@link InvalidTransitionError}. */
export function isInvalidTransitionError(error: unknown): error is InvalidTransitionError {
  return typeof error === 'object' && error !== null && (error as { isInvalidTransitionError?: unknown }).isInvalidTransitionError === true;
}
