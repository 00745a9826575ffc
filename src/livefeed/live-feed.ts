import { type Clock, InvalidInputError, type Logger, isClock } from '../core/index.js';
import { type Bar, type Feed, FeedClosedError, type FeedPosition, type FeedStart, type FeedStep, checkFeedStart } from '../market/index.js';

/**
 * Where a live feed starts, compiled from a {@link FeedStart}: the index of its first step and the
 * time its bars must be later than (`null`: whatever comes first).
 */
export interface LiveStart {
  readonly step: number;
  readonly afterTimeMs: number | null;
}

/**
 * Compiles where a live feed starts. A live feed cannot count steps from a fixed start of its data,
 * so it resumes after a time: `{ afterTimeMs }`, or a saved position `{ step, lastTimeMs }` (steps go
 * on counting from `step`, bars at or before `lastTimeMs` are ignored). A bare `{ step }` past 0
 * names no time and is refused. It cannot tell whether a saved position fits data it has not seen,
 * so unlike a replay it never throws FeedPositionError.
 * @throws InvalidInputError naming the malformed field of `from`.
 */
export function compileLiveStart(from: FeedStart | undefined): LiveStart {
  if (from === undefined) return { step: 0, afterTimeMs: null };
  checkFeedStart(from);
  if ('afterTimeMs' in from) return { step: 0, afterTimeMs: from.afterTimeMs };
  const lastTimeMs = from.lastTimeMs ?? null;
  if (from.step > 0 && lastTimeMs === null) {
    throw new InvalidInputError(
      'from.lastTimeMs',
      `is missing: a live feed resumes after a time, not at a step count (step ${from.step}); give the saved position { step, lastTimeMs } from feed.position(), or { afterTimeMs }`,
    );
  }
  return { step: from.step, afterTimeMs: lastTimeMs };
}

/**
 * Checks a feed's symbol list and returns it sorted and frozen.
 * @throws InvalidInputError naming `symbols`.
 */
export function compileSymbols(symbols: unknown): readonly string[] {
  if (!Array.isArray(symbols) || symbols.length === 0) throw new InvalidInputError('symbols', `must list at least one symbol, got ${JSON.stringify(symbols)}`);
  for (const [i, symbol] of symbols.entries()) {
    if (typeof symbol !== 'string' || symbol.trim() === '') throw new InvalidInputError(`symbols[${i}]`, `must be a non-empty string, got ${JSON.stringify(symbol)}`);
  }
  const sorted = [...(symbols as string[])].sort();
  const twice = sorted.find((symbol, i) => i > 0 && sorted[i - 1] === symbol);
  if (twice !== undefined) throw new InvalidInputError('symbols', `lists ${JSON.stringify(twice)} twice; list each symbol once`);
  return Object.freeze(sorted);
}

/**
 * Checks a whole-number option and returns it (or its default).
 * @throws InvalidInputError naming `field`.
 */
export function wholeOption(field: string, value: unknown, fallback: number, min: number): number {
  const given = value ?? fallback;
  if (typeof given !== 'number' || !(Number.isSafeInteger(given) || given === Infinity) || given < min) {
    throw new InvalidInputError(field, `must be a whole number >= ${min}, got ${JSON.stringify(value)}`);
  }
  return given;
}

/**
 * Checks a clock option.
 * @throws InvalidInputError naming `clock`.
 */
export function requireClock(clock: unknown): Clock {
  if (!isClock(clock)) throw new InvalidInputError('clock', 'must be a Clock (SystemClock, or ManualClock in tests)');
  return clock;
}

/**
 * Logs a warning of each kind at most once per `everyMs` on the clock, with how many of that kind
 * were left unlogged since: a publisher sending a malformed bar a millisecond must not flood the log.
 */
export class RateLimitedWarner {
  readonly #last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly everyMs: number,
  ) {}

  /** Logs `message` with `fields` unless a warning of `kind` was logged less than `everyMs` ago. */
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock.now();
    const last = this.#last.get(kind);
    if (last !== undefined && now - last.atMs < this.everyMs) {
      last.suppressed += 1;
      return;
    }
    this.#last.set(kind, { atMs: now, suppressed: 0 });
    this.logger.warn({ ...fields, kind, ...(last !== undefined && last.suppressed > 0 ? { suppressedSinceLast: last.suppressed } : {}) }, message);
  }
}

/** What {@link LiveStepQueue} needs. */
export interface LiveStepQueueOptions {
  readonly symbols: readonly string[];
  readonly start: LiveStart;
  /** Steps held waiting for a read; past it the oldest is dropped. */
  readonly maxBuffered: number;
  readonly warner: RateLimitedWarner;
  /** Called once, by the first `close()`, to release what the producer holds. */
  readonly onClose: () => Promise<void> | void;
}

/**
 * The reading half every live feed shares: producers {@link LiveStepQueue.push} complete steps in
 * time order; `read(n)` waits for the first one and hands out what is ready, at most `n`. Steps get
 * their index when read, so a step dropped from a full buffer leaves no gap in the indexes.
 */
export class LiveStepQueue implements Feed {
  readonly symbols: readonly string[];
  readonly stepCount = null;
  readonly #maxBuffered: number;
  readonly #warner: RateLimitedWarner;
  readonly #onClose: () => Promise<void> | void;
  #ready: (readonly Bar[])[] = [];
  #next: number;
  #lastTimeMs: number | null;
  #closed = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #dropped = 0;

  constructor(options: LiveStepQueueOptions) {
    this.symbols = options.symbols;
    this.#maxBuffered = options.maxBuffered;
    this.#warner = options.warner;
    this.#onClose = options.onClose;
    this.#next = options.start.step;
    this.#lastTimeMs = options.start.afterTimeMs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Steps dropped because the buffer was full. */
  get droppedSteps(): number {
    return this.#dropped;
  }

  /** Steps waiting to be read. */
  get buffered(): number {
    return this.#ready.length;
  }

  position(): FeedPosition {
    return { step: this.#next, lastTimeMs: this.#lastTimeMs };
  }

  /** Adds a complete step: bars (frozen, at one time, in the order of `symbols`), later than every step pushed before. */
  push(bars: readonly Bar[]): void {
    if (this.#closed) return;
    this.#ready.push(bars);
    if (this.#ready.length > this.#maxBuffered) {
      const dropped = this.#ready.shift() as readonly Bar[];
      this.#dropped += 1;
      this.#warner.warn(
        'buffer-full',
        { timeMs: (dropped[0] as Bar).timeMs, maxBuffered: this.#maxBuffered, droppedSteps: this.#dropped },
        'live feed: dropped the oldest unread step, the buffer is full (maxBuffered); read faster or raise maxBuffered',
      );
    }
    this.#wakeReader();
  }

  /** Ends the feed with `error`: reads give the steps still buffered, then reject with it. */
  fail(error: Error): void {
    this.#failure ??= error;
    this.#wakeReader();
  }

  read(maxSteps = 1): Promise<readonly FeedStep[]> {
    if (!Number.isSafeInteger(maxSteps) || maxSteps < 1) return Promise.reject(new InvalidInputError('maxSteps', `must be a whole number >= 1, got ${String(maxSteps)}`));
    if (this.#closed) return Promise.reject(new FeedClosedError());
    const result = this.#tail.then(() => this.#take(maxSteps));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready = [];
    this.#wakeReader();
    await this.#onClose();
  }

  async #take(maxSteps: number): Promise<readonly FeedStep[]> {
    while (this.#ready.length === 0 && !this.#closed && this.#failure === undefined) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    if (this.#ready.length === 0 && !this.#closed && this.#failure !== undefined) throw this.#failure;
    const steps = this.#ready.splice(0, maxSteps).map((bars) => {
      const timeMs = (bars[0] as Bar).timeMs;
      const step = Object.freeze({ index: this.#next, timeMs, bars });
      this.#next += 1;
      this.#lastTimeMs = timeMs;
      return step;
    });
    return Object.freeze(steps);
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
