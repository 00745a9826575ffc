import { InvalidInputError } from '../core/index.js';
import type { Bar } from './bars.js';
import { FeedClosedError, FeedPositionError } from './errors.js';

/**
 * One time step of a feed: the bars of every symbol that has a bar at `timeMs`, in the order of
 * the feed's {@link Feed.symbols}, as the swarm publishes a step. The step and its list of bars are
 * frozen; the bars are those of the source (frozen when they come from CSV files or the synthetic
 * market, as given for bars handed to `openArrayFeed`).
 */
export interface FeedStep {
  /** The step's place in its feed, from 0; a looping replay goes on counting through its loops. */
  readonly index: number;
  /** Time of every bar of the step, ms since the epoch (UTC); strictly increasing from step to step. */
  readonly timeMs: number;
  /** At least one bar, each symbol at most once. */
  readonly bars: readonly Bar[];
}

/**
 * How far a feed has been read. Plain JSON: store it with what the last step led to, and open the
 * feed again `from` it after a crash to go on with the next step, neither skipping nor repeating
 * one. {@link positionAfter} gives it for a step.
 */
export interface FeedPosition {
  /** Steps read: the index of the next step. */
  readonly step: number;
  /**
   * Time of the last step read (index `step - 1`); `null` before the first. A feed opened from
   * the position checks it against its own step, and refuses a position its data does not fit.
   */
  readonly lastTimeMs: number | null;
}

/**
 * Where a feed starts reading: a saved {@link FeedPosition} (checked against the data), a bare step
 * index (`{ step }`), or the first step after a time (`{ afterTimeMs }`: what a feed that cannot
 * count steps from a fixed start, such as live data, resumes from).
 */
export type FeedStart = { readonly step: number; readonly lastTimeMs?: number | null } | { readonly afterTimeMs: number };

/**
 * An asynchronous source of time steps: a replay of recorded bars (once or looping), a synthetic
 * market (finite or endless), and, next, bars published on a deployment's bus topic or a live
 * exchange feed. Those implement this interface, resuming `{ afterTimeMs }` from their last step's
 * time, and every implementation passes the contract suite in `feed.testkit.ts`.
 *
 * A feed only gives steps; pacing them (lockstep, or the data's own time × speed) is
 * {@link Pacer}'s job. Reads are batched: `read(n)` returns up to `n` steps at once, which is
 * what keeps a fast replay from paying a promise per step.
 */
export interface Feed {
  /** Every symbol the feed can serve, in alphabetical order: the order of bars in a step. */
  readonly symbols: readonly string[];
  /** Steps from the start of the data (not from where this feed was opened); `null` for an endless feed. */
  readonly stepCount: number | null;
  /** Whether {@link Feed.close} was called. */
  readonly closed: boolean;
  /** How far this feed has been read (read steps count, pacing does not matter). */
  position(): FeedPosition;
  /**
   * The next steps, at least one and at most `maxSteps`, or none once a finite feed has given its
   * last step (and from then on). A read in progress when the feed is closed gives what it has.
   * @param maxSteps at most this many steps. @default 1
   * @throws InvalidInputError when `maxSteps` is not a whole number >= 1.
   * @throws FeedClosedError when the feed was closed before the read.
   */
  read(maxSteps?: number): Promise<readonly FeedStep[]>;
  /** Releases what the feed holds; reading afterwards throws. Closing twice is harmless. */
  close(): Promise<void>;
}

/** The position to save once `step` has been dealt with: resuming from it gives the step after. */
export function positionAfter(step: FeedStep): FeedPosition {
  return { step: step.index + 1, lastTimeMs: step.timeMs };
}

/**
 * What a replayable feed computes: the same steps in the same order every time it is walked, so it
 * can start at any step. The replay and synthetic feeds are sources run by {@link openSourceFeed}.
 */
export interface StepSource {
  /** Alphabetical. */
  readonly symbols: readonly string[];
  /** `null` when endless. */
  readonly stepCount: number | null;
  /** Makes step `index` the next one; `index` is a whole number, at most `stepCount`. */
  seek(index: number): void;
  /** The next step's bars (frozen, in the order of `symbols`, all at one time), or `undefined` after the last step. */
  next(): readonly Bar[] | undefined;
}

/**
 * A {@link Feed} over `source`, starting at `from` (the first step when not given).
 * @throws InvalidInputError naming the field of `from` that is malformed or past the end of a finite source.
 * @throws FeedPositionError when `from` is a saved position whose time does not fit the source's step.
 */
export function openSourceFeed(source: StepSource, from?: FeedStart): Feed {
  return new SourceFeed(source, from);
}

class SourceFeed implements Feed {
  readonly symbols: readonly string[];
  readonly stepCount: number | null;
  readonly #source: StepSource;
  #next = 0;
  #lastTimeMs: number | null = null;
  /** A step already taken from the source while looking for the start after a time. */
  #pending: readonly Bar[] | undefined;
  #closed = false;

  constructor(source: StepSource, from: FeedStart | undefined) {
    this.#source = source;
    this.symbols = source.symbols;
    this.stepCount = source.stepCount;
    if (from !== undefined) this.#start(checkFeedStart(from));
  }

  get closed(): boolean {
    return this.#closed;
  }

  position(): FeedPosition {
    return { step: this.#next, lastTimeMs: this.#lastTimeMs };
  }

  read(maxSteps = 1): Promise<readonly FeedStep[]> {
    if (!Number.isSafeInteger(maxSteps) || maxSteps < 1) return Promise.reject(new InvalidInputError('maxSteps', `must be a whole number >= 1, got ${String(maxSteps)}`));
    if (this.#closed) return Promise.reject(new FeedClosedError());
    const steps: FeedStep[] = [];
    while (steps.length < maxSteps) {
      const bars = this.#pending ?? this.#source.next();
      this.#pending = undefined;
      if (bars === undefined) break;
      const timeMs = (bars[0] as Bar).timeMs;
      steps.push(Object.freeze({ index: this.#next, timeMs, bars }));
      this.#next += 1;
      this.#lastTimeMs = timeMs;
    }
    return Promise.resolve(Object.freeze(steps));
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#pending = undefined;
    return Promise.resolve();
  }

  #start(from: FeedStart): void {
    const source = this.#source;
    if ('afterTimeMs' in from) {
      // Walked, not searched: steps are counted from the start, and an endless source has no end to search to.
      for (;;) {
        const bars = source.next();
        if (bars === undefined) return;
        const timeMs = (bars[0] as Bar).timeMs;
        if (timeMs > from.afterTimeMs) {
          this.#pending = bars;
          return;
        }
        this.#next += 1;
        this.#lastTimeMs = timeMs;
      }
    }
    const { step } = from;
    if (source.stepCount !== null && step > source.stepCount) {
      throw new InvalidInputError('from.step', `is ${step}, past the end of the feed (${source.stepCount} steps); a position saved from this data is at most ${source.stepCount}`);
    }
    const saved = from.lastTimeMs ?? null;
    if (step === 0) {
      if (saved !== null) throw new FeedPositionError(from, null);
      source.seek(0);
      return;
    }
    source.seek(step - 1);
    const previous = source.next();
    const found = previous === undefined ? null : (previous[0] as Bar).timeMs;
    if (found === null) throw new InvalidInputError('from.step', `is ${step}, past the end of the feed`);
    if (saved !== null && saved !== found) throw new FeedPositionError(from, found);
    this.#next = step;
    this.#lastTimeMs = found;
  }
}

/**
 * `from` checked field by field (it often comes back from a store as JSON) and returned.
 * @throws InvalidInputError naming the malformed field of `from`.
 */
export function checkFeedStart(from: FeedStart): FeedStart {
  const given = from as Partial<Record<'step' | 'lastTimeMs' | 'afterTimeMs', unknown>> | null;
  if (typeof given !== 'object' || given === null) throw new InvalidInputError('from', `must be a saved position { step, lastTimeMs }, { step } or { afterTimeMs }, got ${JSON.stringify(given)}`);
  if ('afterTimeMs' in given) {
    if ('step' in given) throw new InvalidInputError('from', 'gives both step and afterTimeMs; give a saved position { step, lastTimeMs } or { afterTimeMs }, not both');
    if (typeof given.afterTimeMs !== 'number' || !Number.isFinite(given.afterTimeMs)) {
      throw new InvalidInputError('from.afterTimeMs', `must be a time in ms since the epoch, got ${JSON.stringify(given.afterTimeMs)}`);
    }
    return from;
  }
  if (typeof given.step !== 'number' || !Number.isSafeInteger(given.step) || given.step < 0) {
    throw new InvalidInputError('from.step', `must be a whole number >= 0 (a step index), got ${JSON.stringify(given.step)}`);
  }
  const last = given.lastTimeMs;
  if (last !== undefined && last !== null && (typeof last !== 'number' || !Number.isFinite(last))) {
    throw new InvalidInputError('from.lastTimeMs', `must be the time of the last step read, in ms, or null, got ${JSON.stringify(last)}`);
  }
  return from;
}
