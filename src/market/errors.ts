import { TradeswarmError, type TradeswarmErrorOptions } from '../core/index.js';

/**
 * A saved position does not fit the feed it was handed to: the step before it is at another time
 * than the position says, so the data or the feed's options changed since it was saved, and
 * resuming would skip or repeat steps. Not retryable: resume with the data and options the position
 * was saved with, or on purpose from a time (`{ afterTimeMs }`).
 */
export class FeedPositionError extends TradeswarmError {
  override readonly name = 'FeedPositionError';
  /** Marker for {@link isFeedPositionError}. */
  readonly isFeedPositionError = true;

  /**
   * @param position the position given (a `FeedPosition`, or a bare step with a time)
   * @param foundTimeMs the time of the step before `position.step` in this feed; `null` when the
   *   position says a step was read but the feed starts there
   */
  constructor(
    readonly position: { readonly step: number; readonly lastTimeMs?: number | null },
    readonly foundTimeMs: number | null,
  ) {
    const saved = position.lastTimeMs ?? null;
    super(
      `the saved position (step ${position.step}, after ${timeText(saved)}) does not fit this feed: ` +
        (foundTimeMs === null ? 'the feed has no step before it' : `its step ${position.step - 1} is at ${timeText(foundTimeMs)}`) +
        '. The data or the feed options changed since the position was saved; resume with those it was saved with, ' +
        `or from { afterTimeMs: ${saved ?? 0} } to go on after that time in this data`,
    );
  }
}

/** Whether `error` is a {@link FeedPositionError}. */
export function isFeedPositionError(error: unknown): error is FeedPositionError {
  return typeof error === 'object' && error !== null && (error as Partial<FeedPositionError>).isFeedPositionError === true;
}

/** A closed feed was read. Not retryable: open the feed again, from its last position, to read on. */
export class FeedClosedError extends TradeswarmError {
  override readonly name = 'FeedClosedError';
  /** Marker for {@link isFeedClosedError}. */
  readonly isFeedClosedError = true;

  constructor() {
    super('the feed is closed; open it again from its last position (feed.position()) to read on');
  }
}

/** Whether `error` is a {@link FeedClosedError}. */
export function isFeedClosedError(error: unknown): error is FeedClosedError {
  return typeof error === 'object' && error !== null && (error as Partial<FeedClosedError>).isFeedClosedError === true;
}

/**
 * A wait in `Pacer.next()` ended because the caller's `AbortSignal` fired. No step was handed out:
 * the next call gets the step this one waited for, at its time, so trying again can succeed
 * (`retryable`). The signal's `reason` is the `cause`.
 */
export class PacerWaitAbortedError extends TradeswarmError {
  override readonly name = 'PacerWaitAbortedError';
  /** Marker for {@link isPacerWaitAbortedError}. */
  readonly isPacerWaitAbortedError = true;

  /** @param step index of the step the call waited for */
  constructor(
    readonly step: number,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(`waiting for step ${step} was aborted; no step was handed out, and the next call gets step ${step}, at its time`, { ...options, retryable: true });
  }
}

/** Whether `error` is a {@link PacerWaitAbortedError}. */
export function isPacerWaitAbortedError(error: unknown): error is PacerWaitAbortedError {
  return typeof error === 'object' && error !== null && (error as Partial<PacerWaitAbortedError>).isPacerWaitAbortedError === true;
}

function timeText(timeMs: number | null): string {
  if (timeMs === null) return 'nothing';
  const date = new Date(timeMs);
  return Number.isNaN(date.getTime()) ? `${timeMs} ms` : `${date.toISOString()} (${timeMs} ms)`;
}
