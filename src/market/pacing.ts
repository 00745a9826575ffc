import { type Clock, InvalidInputError, type TimerHandle, isClock } from '../core/index.js';
import { PacerWaitAbortedError } from './errors.js';
import { type Feed, type FeedPosition, type FeedStep, positionAfter } from './feed.js';

/**
 * How steps are handed out.
 * - `lockstep`: each step as soon as it is asked for; the consumer asks when it has dealt with the
 *   previous one (a swarm: when every agent answered), so the run goes as fast as its slowest part
 *   and gives the same trades as a backtest.
 * - `realtime`: steps follow the data's own spacing divided by `speed` (60: a minute of data a
 *   second), on a schedule anchored at the first step, so the time the consumer takes per step
 *   does not add up. A consumer late by up to `maxLagMs` gets the late steps at once, until it has
 *   caught up; later than that (a pause, a long stall), the schedule starts again from the step it
 *   gets, instead of rushing through all it missed. No step is ever dropped.
 */
export type Pacing = { readonly mode: 'lockstep' } | { readonly mode: 'realtime'; readonly speed: number; readonly maxLagMs?: number };

/** Options of {@link pace}. */
export interface PacerOptions {
  /** Times realtime pacing: `SystemClock` in production, `ManualClock` in tests. Lockstep never reads it. */
  clock: Clock;
  /** `maxLagMs` defaults to 1000. @default { mode: 'lockstep' } */
  pacing?: Pacing;
  /** Steps read from the feed at once (fewer reads make a fast replay faster; each read holds its steps until they are handed out). @default 64 */
  batchSteps?: number;
}

/** The compiled, complete, frozen form of {@link PacerOptions} (without the clock). */
export interface PacerConfig {
  readonly mode: Pacing['mode'];
  /** Realtime: ms of data per ms of clock time; `null` in lockstep. */
  readonly speed: number | null;
  /** Realtime: how late a step may be handed out before the schedule starts again from it; `null` in lockstep. */
  readonly maxLagMs: number | null;
  readonly batchSteps: number;
}

/** Most steps one read may ask for: a batch is held in memory until it has been handed out. */
const MAX_BATCH_STEPS = 100_000;

/**
 * Hands out the steps of `feed` as `options.pacing` says, timed only by `options.clock`. The pacer
 * owns the feed from now on: closing the pacer closes it.
 * @example
 * const pacer = pace(await openCsvFeed({ files, loop: true }), { clock, pacing: { mode: 'realtime', speed: 60 } });
 * for (let step = await pacer.next({ signal }); step !== null; step = await pacer.next({ signal })) {
 *   await publish(step);
 *   await store.save(positionAfter(step));
 * }
 * @throws InvalidInputError naming the first invalid option.
 */
export function pace(feed: Feed, options: PacerOptions): Pacer {
  return new Pacer(feed, options);
}

/**
 * Compiles {@link PacerOptions}.
 * @throws InvalidInputError naming the first invalid field.
 */
export function compilePacerOptions(options: Omit<PacerOptions, 'clock'>): PacerConfig {
  const pacing: unknown = options.pacing ?? { mode: 'lockstep' };
  const mode = (pacing as { mode?: unknown } | null)?.mode;
  const batchSteps = options.batchSteps ?? 64;
  if (!Number.isSafeInteger(batchSteps) || batchSteps < 1 || batchSteps > MAX_BATCH_STEPS) {
    throw new InvalidInputError('batchSteps', `must be a whole number from 1 to ${MAX_BATCH_STEPS}, got ${String(batchSteps)}`);
  }
  if (mode === 'lockstep') return Object.freeze({ mode, speed: null, maxLagMs: null, batchSteps });
  if (mode !== 'realtime') throw new InvalidInputError('pacing.mode', `must be "lockstep" or "realtime", got ${JSON.stringify(mode)}`);
  const { speed, maxLagMs = 1000 } = pacing as { speed?: unknown; maxLagMs?: unknown };
  if (typeof speed !== 'number' || !Number.isFinite(speed) || speed <= 0) {
    throw new InvalidInputError('pacing.speed', `must be a number > 0 (ms of data per ms of clock time; 60 plays a minute of data a second), got ${JSON.stringify(speed)}`);
  }
  if (typeof maxLagMs !== 'number' || Number.isNaN(maxLagMs) || maxLagMs < 0) {
    throw new InvalidInputError('pacing.maxLagMs', `must be a number of ms >= 0 (Infinity: never start the schedule again), got ${JSON.stringify(maxLagMs)}`);
  }
  return Object.freeze({ mode, speed, maxLagMs, batchSteps });
}

/** What a wait gives when the pacer closes under it. */
const CLOSED = Symbol('closed');

/**
 * The steps of a feed, paced: see {@link pace}. `next()` calls are served one after the other, in
 * the order they were made.
 */
export class Pacer {
  readonly config: PacerConfig;
  readonly #feed: Feed;
  readonly #clock: Clock;
  /** Aborted by close: every wait in progress ends with {@link CLOSED}. */
  readonly #closing = new AbortController();
  /** The last batch read, handed out from `#cursor` on. */
  #batch: readonly FeedStep[] = [];
  #cursor = 0;
  /** A read in progress; its steps are kept even when the call that started it was aborted. */
  #reading: Promise<void> | undefined;
  #ended = false;
  #position: FeedPosition;
  /** Realtime: the clock time at which the step at `dataMs` was (or is) due. */
  #anchor: { readonly wallMs: number; readonly dataMs: number } | undefined;
  /** The last `next()` made, settled: the next one starts after it. */
  #tail: Promise<unknown> = Promise.resolve();

  /** @throws InvalidInputError naming the first invalid option. */
  constructor(feed: Feed, options: PacerOptions) {
    if (!isClock(options.clock)) throw new InvalidInputError('clock', 'must be a Clock (SystemClock, or ManualClock in tests)');
    this.config = compilePacerOptions(options);
    this.#feed = feed;
    this.#clock = options.clock;
    this.#position = feed.position();
  }

  /** The feed's symbols: the order of bars in every step. */
  get symbols(): readonly string[] {
    return this.#feed.symbols;
  }

  /** The feed's steps from the start of its data; `null` when endless. */
  get stepCount(): number | null {
    return this.#feed.stepCount;
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * Where the steps handed out so far end (steps read ahead do not count): save it, or
   * {@link positionAfter} of the last step dealt with, to resume a new feed from.
   */
  position(): FeedPosition {
    return this.#position;
  }

  /**
   * The next step once it is due: at once in lockstep, at its time in realtime.
   * @returns `null` after the feed's last step, and once the pacer is closed (a call waiting then
   *   gets `null` too): the loop ends.
   * @throws PacerWaitAbortedError (the signal's reason as `cause`) when `options.signal` aborts
   *   first; the step waited for is not lost: the next call gets it, at the same time.
   * @throws what the feed's read throws.
   */
  next(options: { signal?: AbortSignal } = {}): Promise<FeedStep | null> {
    const result = this.#tail.then(() => this.#take(options.signal));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Closes the pacer and its feed. Calls waiting in `next()` get `null`. Closing twice is harmless. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.#closing.abort();
    await this.#feed.close();
  }

  /** The steps until the feed ends or the pacer closes. Leaving the loop early does not close the pacer. */
  async *[Symbol.asyncIterator](): AsyncGenerator<FeedStep, void, undefined> {
    for (let step = await this.next(); step !== null; step = await this.next()) yield step;
  }

  async #take(signal: AbortSignal | undefined): Promise<FeedStep | null> {
    if (signal?.aborted === true) throw this.#aborted(signal);
    const step = await this.#peek(signal);
    if (step === null) return null;
    if (this.config.mode === 'realtime') {
      const now = this.#clock.now();
      this.#anchor ??= { wallMs: now, dataMs: step.timeMs };
      let dueMs = this.#anchor.wallMs + (step.timeMs - this.#anchor.dataMs) / (this.config.speed as number);
      if (now - dueMs > (this.config.maxLagMs as number)) {
        this.#anchor = { wallMs: now, dataMs: step.timeMs };
        dueMs = now;
      }
      if (dueMs > now && (await this.#sleep(dueMs - now, signal)) === CLOSED) return null;
    }
    if (this.closed) return null;
    this.#cursor += 1;
    this.#position = positionAfter(step);
    return step;
  }

  /** The next step to hand out, reading a batch when none is left; `null` at the end or once closed. */
  async #peek(signal: AbortSignal | undefined): Promise<FeedStep | null> {
    while (!this.closed) {
      const step = this.#batch[this.#cursor];
      if (step !== undefined) return step;
      if (this.#ended) return null;
      this.#reading ??= this.#feed.read(this.config.batchSteps).then(
        (steps) => {
          this.#batch = steps;
          this.#cursor = 0;
          this.#ended = steps.length === 0;
          this.#reading = undefined;
        },
        (error: unknown) => {
          this.#reading = undefined;
          throw error;
        },
      );
      if ((await this.#settle(this.#reading, signal)) === CLOSED) return null;
    }
    return null;
  }

  /** Waits `ms` on the clock; the timer is cleared however the wait ends. */
  async #sleep(ms: number, signal: AbortSignal | undefined): Promise<void | typeof CLOSED> {
    let handle: TimerHandle | undefined;
    const elapsed = new Promise<void>((resolve) => {
      handle = this.#clock.setTimeout(resolve, ms);
    });
    try {
      return await this.#settle(elapsed, signal);
    } finally {
      this.#clock.clearTimeout(handle as TimerHandle);
    }
  }

  /** `promise`'s outcome, or {@link CLOSED} as soon as the pacer closes, or the signal's reason as soon as it aborts. */
  #settle<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | typeof CLOSED> {
    const closing = this.#closing.signal;
    return new Promise<T | typeof CLOSED>((resolve, reject) => {
      const onClose = (): void => {
        done();
        resolve(CLOSED);
      };
      const onAbort = (): void => {
        done();
        reject(this.#aborted(signal as AbortSignal));
      };
      const done = (): void => {
        closing.removeEventListener('abort', onClose);
        signal?.removeEventListener('abort', onAbort);
      };
      if (closing.aborted) return onClose();
      if (signal?.aborted === true) return onAbort();
      closing.addEventListener('abort', onClose, { once: true });
      signal?.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          done();
          resolve(value);
        },
        (error: unknown) => {
          done();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  #aborted(signal: AbortSignal): PacerWaitAbortedError {
    return new PacerWaitAbortedError(this.#position.step, { cause: signal.reason });
  }
}
