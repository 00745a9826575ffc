/**
 * Technical indicators for strategies: thin, typed, streaming wrappers over the `trading-signals`
 * library, shared by the backtest and the swarm (one code path, DESIGN decision 6).
 *
 * Every wrapper is fed one bar at a time and answers `undefined` until it has seen enough bars. Bar
 * indices in these docs are 0-based: "first value at bar p - 1" means the p-th input is the first
 * to produce a value ({@link StreamingIndicator.warmupBars} = p).
 *
 * Libraries disagree on how indicators start (EMA seed, Wilder smoothing, whether the first bar has
 * a true range). Where `trading-signals` starts differently from TA-Lib and backtrader, the wrapper
 * adapts it and says so; each JSDoc names the convention followed. The conventions are checked in
 * `indicators.test.ts` against `../shared/data/reference/indicator_vectors.json`.
 */
import {
  ATR,
  BollingerBands,
  CCI,
  EMA,
  MACD,
  MOM,
  NATR,
  ROC,
  RSI,
  SMA,
  StochasticOscillator,
  TR,
  WilliamsR,
  WMA,
  WSMA,
} from 'trading-signals';
import { InvalidInputError } from '../core/index.js';

/** A price, or anything with a `close` (a bar): price indicators read the close. */
export type PriceInput = number | { readonly close: number };

/** The part of a bar that range indicators (ATR, stochastic, CCI, Williams %R) read. */
export interface HighLowClose {
  readonly high: number;
  readonly low: number;
  readonly close: number;
}

/**
 * A streaming indicator: feed it bars in order with {@link update}; it answers `undefined` until
 * it is warmed up, then a value for every bar.
 */
export interface StreamingIndicator<Input, Output> {
  /**
   * Feeds the next bar and returns the indicator's value at that bar, or `undefined` while warming up.
   * @throws {InvalidInputError} when a price is not a finite number.
   */
  update(input: Input): Output | undefined;
  /** The value at the last bar fed, or `undefined` while warming up. */
  readonly value: Output | undefined;
  /** Whether the indicator has produced a value (it then produces one for every further bar). */
  readonly isStable: boolean;
  /** How many bars it takes to produce the first value: the first value is at bar `warmupBars - 1`. */
  readonly warmupBars: number;
  /** Forgets every bar fed so far, as if newly created. */
  reset(): void;
}

/** A price-series indicator producing one number per bar. */
export type PriceIndicator<Output = number> = StreamingIndicator<PriceInput, Output>;

/** A bar (high, low, close) indicator producing one number per bar. */
export type BarIndicator<Output = number> = StreamingIndicator<HighLowClose, Output>;

/** Bollinger band values at one bar. */
export interface BandsValue {
  readonly upper: number;
  readonly middle: number;
  readonly lower: number;
}

/** MACD values at one bar. */
export interface MacdValue {
  /** Fast EMA minus slow EMA. */
  readonly macd: number;
  /** EMA of the MACD line. */
  readonly signal: number;
  /** `macd - signal`. */
  readonly histogram: number;
}

/** Stochastic oscillator values at one bar, both in 0..100. */
export interface StochasticValue {
  /** %K: the raw %K smoothed by an SMA over `kSlowingPeriod` bars ("slow %K"). */
  readonly k: number;
  /** %D: an SMA of %K over `dPeriod` bars. */
  readonly d: number;
}

/** How an EMA starts. */
export const EmaSeed = {
  /** The EMA's first value is the SMA of the first `period` inputs (TA-Lib default, backtrader). */
  SMA: 'sma',
  /** The recursion starts from the first input (Metastock, Tulip, `trading-signals`' own EMA). */
  FIRST: 'first',
} as const;
export type EmaSeed = (typeof EmaSeed)[keyof typeof EmaSeed];

/** Options of {@link ema}. */
export interface EmaOptions {
  /**
   * How the EMA starts; see {@link EmaSeed}.
   * @default 'sma'
   */
  seed?: EmaSeed;
}

/** How MACD's three EMAs start. */
export const MacdSeed = {
  /**
   * Each EMA seeded with the SMA of its own first inputs, all fed from bar 0, so the MACD line is
   * exactly `ema(fast) - ema(slow)` (backtrader; the textbook definition).
   */
  SMA: 'sma',
  /**
   * As `sma`, but the fast EMA's SMA seed is taken over the `fast` bars ending at bar `slow - 1`, so
   * both EMAs start on the same bar (TA-Lib's MACD).
   */
  SMA_ALIGNED: 'sma-aligned',
  /** Every EMA starts from its first input (Metastock, `trading-signals`' own MACD). */
  FIRST: 'first',
} as const;
export type MacdSeed = (typeof MacdSeed)[keyof typeof MacdSeed];

/** Options of {@link macd}. */
export interface MacdOptions {
  /**
   * How the three EMAs start; see {@link MacdSeed}.
   * @default 'sma'
   */
  seed?: MacdSeed;
}

/** Where the true range series starts. */
export const TrueRangeStart = {
  /** Bar 0 has no previous close, so it has no true range; TR starts at bar 1 (TA-Lib, backtrader). */
  SECOND_BAR: 'second-bar',
  /** Bar 0's true range is its high minus low (Tulip, `trading-signals`' own ATR). */
  FIRST_BAR: 'first-bar',
} as const;
export type TrueRangeStart = (typeof TrueRangeStart)[keyof typeof TrueRangeStart];

/** Options of {@link atr} and {@link natr}. */
export interface AtrOptions {
  /**
   * Where the true range series starts; see {@link TrueRangeStart}.
   * @default 'second-bar'
   */
  trueRangeFrom?: TrueRangeStart;
}

type Step<Input, Output> = (input: Input) => Output | undefined;

/** Runs a step function built by `start`; `reset()` builds a fresh one (fresh library objects). */
class Streaming<Input, Output> implements StreamingIndicator<Input, Output> {
  #step: Step<Input, Output>;
  #value: Output | undefined;

  constructor(
    readonly warmupBars: number,
    private readonly start: () => Step<Input, Output>,
  ) {
    this.#step = start();
  }

  get value(): Output | undefined {
    return this.#value;
  }

  get isStable(): boolean {
    return this.#value !== undefined;
  }

  update(input: Input): Output | undefined {
    this.#value = this.#step(input);
    return this.#value;
  }

  reset(): void {
    this.#step = this.start();
    this.#value = undefined;
  }
}

function requirePeriod(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidInputError(field, `must be a whole number of bars >= 1, got ${String(value)}`);
  }
  return value;
}

function requireChoice<T extends string>(field: string, value: T, allowed: Record<string, T>): T {
  const choices = Object.values(allowed);
  if (!choices.includes(value)) {
    throw new InvalidInputError(field, `must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${String(value)}`);
  }
  return value;
}

function finite(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidInputError(field, `must be a finite number, got ${String(value)}`);
  }
  return value;
}

function price(input: PriceInput): number {
  return typeof input === 'number' ? finite('price', input) : finite('close', input.close);
}

function bar(input: HighLowClose): HighLowClose {
  finite('high', input.high);
  finite('low', input.low);
  finite('close', input.close);
  return input;
}

/** Adapts a `trading-signals` object (answers `null` while warming up) fed with prices. */
function fromPrices<Output>(create: () => { add(value: number): Output | null }): () => Step<PriceInput, Output> {
  return () => {
    const indicator = create();
    return (input) => indicator.add(price(input)) ?? undefined;
  };
}

/** Adapts a `trading-signals` object fed with bars. */
function fromBars<Output>(
  create: () => { add(candle: HighLowClose): Output | null },
): () => Step<HighLowClose, Output> {
  return () => {
    const indicator = create();
    return (input) => indicator.add(bar(input)) ?? undefined;
  };
}

/** An EMA step over plain numbers, seeded as asked. */
function emaStep(period: number, seed: EmaSeed): Step<number, number> {
  if (seed === EmaSeed.FIRST) {
    // trading-signals' EMA starts from the first input; it is stable after `period` inputs. Count
    // here rather than ask its `isStable`, which throws and catches on every warm-up bar.
    const ema = new EMA(period);
    let seen = 0;
    return (value) => {
      const result = ema.add(value) ?? undefined;
      seen += 1;
      return seen < period ? undefined : result;
    };
  }
  // SMA seed: trading-signals' EMA starts its recursion from its first input, so feeding a fresh EMA
  // the SMA of the first `period` inputs as its first input seeds it with that SMA (TA-Lib, backtrader).
  let seeding: SMA | undefined = new SMA(period);
  const ema = new EMA(period);
  return (value) => {
    if (seeding === undefined) return ema.add(value) ?? undefined;
    const mean = seeding.add(value);
    if (mean === null) return undefined;
    seeding = undefined;
    return ema.add(mean) ?? undefined;
  };
}

/**
 * Simple moving average: the mean of the last `period` prices. First value at bar `period - 1`.
 * Same in every library. Wraps `trading-signals` SMA.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function sma(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period, fromPrices(() => new SMA(period)));
}

/**
 * Linearly weighted moving average over the last `period` prices, weights 1..period (newest
 * heaviest). First value at bar `period - 1`. Same in TA-Lib, backtrader, Tulip. Wraps `trading-signals` WMA.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function wma(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period, fromPrices(() => new WMA(period)));
}

/**
 * Exponential moving average, alpha = 2 / (period + 1). First value at bar `period - 1` with
 * either seed.
 * - `seed: 'sma'` (default; TA-Lib, backtrader): the value at bar `period - 1` is the SMA of the
 *   first `period` prices. `trading-signals`' EMA starts from its first input, so the wrapper seeds a
 *   fresh one with that SMA.
 * - `seed: 'first'` (Metastock, Tulip, `trading-signals`): the recursion starts from the price at
 *   bar 0; the values of bars 0 .. period - 2, dominated by the seed, are withheld (Tulip prints them).
 * @throws {InvalidInputError} when `period` is not a whole number >= 1 or `seed` is unknown.
 */
export function ema(period: number, options: EmaOptions = {}): PriceIndicator {
  requirePeriod('period', period);
  const seed = requireChoice('seed', options.seed ?? EmaSeed.SMA, EmaSeed);
  return new Streaming(period, () => {
    const step = emaStep(period, seed);
    return (input) => step(price(input));
  });
}

/**
 * Wilder's smoothed moving average (SMMA, RMA, "Wilder's MA"), alpha = 1 / period, seeded with the
 * SMA of the first `period` prices: first value at bar `period - 1` (TA-Lib, backtrader SMMA).
 * Wraps `trading-signals` WSMA.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function smma(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period, fromPrices(() => new WSMA(period)));
}

/**
 * Relative strength index with Wilder's smoothing: the average gain and loss over the first
 * `period` price changes are simple means, then Wilder-smoothed (alpha = 1 / period). The first
 * change is at bar 1, so the first value is at bar `period` (TA-Lib, backtrader, Tulip).
 * Wraps `trading-signals` RSI (its default smoothing, WSMA, is exactly this).
 * A window without losses reads 100, also when prices did not move at all (TA-Lib reads 0 then).
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function rsi(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period + 1, fromPrices(() => new RSI(period)));
}

/**
 * Bollinger bands: middle = SMA(period); upper/lower = middle ± stdDevs × the population standard
 * deviation (divide by n) of the last `period` prices (TA-Lib, backtrader). First value at bar
 * `period - 1`. Wraps `trading-signals` BollingerBands, which uses the population deviation.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1 or `stdDevs` is not > 0.
 */
export function bollinger(period: number, stdDevs: number): PriceIndicator<BandsValue> {
  requirePeriod('period', period);
  if (typeof stdDevs !== 'number' || !Number.isFinite(stdDevs) || stdDevs <= 0) {
    throw new InvalidInputError('stdDevs', `must be a finite number > 0, got ${String(stdDevs)}`);
  }
  return new Streaming(period, fromPrices(() => new BollingerBands(period, stdDevs)));
}

/**
 * Moving average convergence/divergence: MACD line = EMA(fast) − EMA(slow) (alpha = 2 / (n + 1)),
 * signal = EMA(signal) of the MACD line, histogram = line − signal.
 * - `seed: 'sma'` (default; backtrader): every EMA seeded with the SMA of its own first inputs and
 *   fed from its first bar; the line is exactly `ema(fast) - ema(slow)`. First value at bar
 *   `slow + signal - 2` (33 for 12/26/9).
 * - `seed: 'sma-aligned'` (TA-Lib): the fast EMA's SMA seed covers bars `slow - fast .. slow - 1`,
 *   so both EMAs start at bar `slow - 1`. First value at bar `slow + signal - 2`.
 * - `seed: 'first'` (Metastock; `trading-signals` MACD as is): every EMA starts from its first
 *   input; the line and the signal start at bar `slow - 1`.
 * The `sma` variants are built from {@link ema}'s adaptation of `trading-signals` EMA; `first` is
 * `trading-signals` MACD. Tulip's fixed 0.15/0.075 alphas for 12/26 are not offered.
 * @throws {InvalidInputError} when a period is not a whole number >= 1, `fast >= slow`, or `seed` is unknown.
 */
export function macd(fast: number, slow: number, signal: number, options: MacdOptions = {}): PriceIndicator<MacdValue> {
  requirePeriod('fast', fast);
  requirePeriod('slow', slow);
  requirePeriod('signal', signal);
  if (fast >= slow) {
    throw new InvalidInputError('fast', `must be shorter than slow (${slow}), got ${fast}; swap the two periods`);
  }
  const seed = requireChoice('seed', options.seed ?? MacdSeed.SMA, MacdSeed);
  if (seed === MacdSeed.FIRST) {
    return new Streaming(
      slow,
      fromPrices(() => new MACD(new EMA(fast), new EMA(slow), new EMA(signal))),
    );
  }
  const fastStartBar = seed === MacdSeed.SMA_ALIGNED ? slow - fast : 0;
  return new Streaming(slow + signal - 1, () => {
    const fastEma = emaStep(fast, EmaSeed.SMA);
    const slowEma = emaStep(slow, EmaSeed.SMA);
    const signalEma = emaStep(signal, EmaSeed.SMA);
    let index = 0;
    return (input) => {
      const value = price(input);
      const fastValue = index >= fastStartBar ? fastEma(value) : undefined;
      index += 1;
      const slowValue = slowEma(value);
      // fast < slow, so the fast EMA has a value whenever the slow one has.
      if (slowValue === undefined || fastValue === undefined) return undefined;
      const line = fastValue - slowValue;
      const signalValue = signalEma(line);
      if (signalValue === undefined) return undefined;
      return { macd: line, signal: signalValue, histogram: line - signalValue };
    };
  });
}

/**
 * Slow stochastic oscillator: raw %K = 100 × (close − lowest low) / (highest high − lowest low)
 * over `kPeriod` bars; %K = SMA(kSlowingPeriod) of raw %K; %D = SMA(dPeriod) of %K. First value
 * (both lines) at bar `kPeriod + kSlowingPeriod + dPeriod - 3` (TA-Lib STOCH with SMA averages,
 * backtrader Stochastic). `kSlowingPeriod = 1` gives the fast stochastic. A window without range
 * reads 0. Wraps `trading-signals` StochasticOscillator.
 * @throws {InvalidInputError} when a period is not a whole number >= 1.
 */
export function stochastic(kPeriod: number, kSlowingPeriod: number, dPeriod: number): BarIndicator<StochasticValue> {
  requirePeriod('kPeriod', kPeriod);
  requirePeriod('kSlowingPeriod', kSlowingPeriod);
  requirePeriod('dPeriod', dPeriod);
  return new Streaming(kPeriod + kSlowingPeriod + dPeriod - 2, () => {
    const indicator = new StochasticOscillator({ kPeriod, kSlowingPeriod, dPeriod });
    return (input) => {
      const result = indicator.add(bar(input));
      return result === null ? undefined : { k: result.stochK, d: result.stochD };
    };
  });
}

/** A Wilder-smoothed true range step, starting its TR series at the first or the second bar. */
function atrStep(period: number, trueRangeFrom: TrueRangeStart): Step<HighLowClose, number> {
  if (trueRangeFrom === TrueRangeStart.FIRST_BAR) {
    const indicator = new ATR(period);
    return (input) => indicator.add(bar(input)) ?? undefined;
  }
  // trading-signals' ATR takes bar 0's high - low as a true range; TA-Lib and backtrader have no TR
  // for bar 0 (no previous close). So: its TR, with bar 0 dropped, into its Wilder average (WSMA).
  const trueRange = new TR();
  const smoothing = new WSMA(period);
  let first = true;
  return (input) => {
    const range = trueRange.add(bar(input));
    if (first || range === null) {
      first = false;
      return undefined;
    }
    return smoothing.add(range) ?? undefined;
  };
}

/**
 * Average true range: Wilder's smoothing (alpha = 1 / period) of the true range, seeded with the
 * SMA of the first `period` true ranges.
 * - `trueRangeFrom: 'second-bar'` (default; TA-Lib, backtrader): TR starts at bar 1; first value at bar `period`.
 * - `trueRangeFrom: 'first-bar'` (Tulip; `trading-signals` ATR as is): TR[0] = high − low; first
 *   value at bar `period - 1`.
 * Built on `trading-signals` TR + WSMA (second-bar) or ATR (first-bar).
 * @throws {InvalidInputError} when `period` is not a whole number >= 1 or `trueRangeFrom` is unknown.
 */
export function atr(period: number, options: AtrOptions = {}): BarIndicator {
  requirePeriod('period', period);
  const from = requireChoice('trueRangeFrom', options.trueRangeFrom ?? TrueRangeStart.SECOND_BAR, TrueRangeStart);
  return new Streaming(from === TrueRangeStart.FIRST_BAR ? period : period + 1, () => atrStep(period, from));
}

/**
 * Normalised average true range: 100 × {@link atr} / close, with the same options and first bar
 * (TA-Lib NATR). For `first-bar` it is `trading-signals` NATR as is.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1 or `trueRangeFrom` is unknown.
 */
export function natr(period: number, options: AtrOptions = {}): BarIndicator {
  requirePeriod('period', period);
  const from = requireChoice('trueRangeFrom', options.trueRangeFrom ?? TrueRangeStart.SECOND_BAR, TrueRangeStart);
  if (from === TrueRangeStart.FIRST_BAR) {
    return new Streaming(period, fromBars(() => new NATR(period)));
  }
  return new Streaming(period + 1, () => {
    const average = atrStep(period, from);
    return (input) => {
      const value = average(input);
      return value === undefined ? undefined : (100 * value) / input.close;
    };
  });
}

/**
 * Commodity channel index: (typical price − SMA(typical price)) / (0.015 × mean absolute
 * deviation), typical price = (high + low + close) / 3, over `period` bars. First value at bar
 * `period - 1` (TA-Lib, Tulip). Wraps `trading-signals` CCI.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function cci(period: number): BarIndicator {
  requirePeriod('period', period);
  return new Streaming(period, fromBars(() => new CCI(period)));
}

/**
 * Williams %R: −100 × (highest high − close) / (highest high − lowest low) over `period` bars, in
 * −100..0. First value at bar `period - 1` (TA-Lib, backtrader). A window without range reads −100
 * (`trading-signals`; TA-Lib reads 0). Wraps `trading-signals` WilliamsR.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function williamsR(period: number): BarIndicator {
  requirePeriod('period', period);
  return new Streaming(period, fromBars(() => new WilliamsR(period)));
}

/**
 * Momentum: price − price `period` bars ago. First value at bar `period` (TA-Lib MOM, backtrader
 * Momentum). Wraps `trading-signals` MOM.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function momentum(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period + 1, fromPrices(() => new MOM(period)));
}

/**
 * Rate of change as a fraction (not percent): (price − price `period` bars ago) / price `period`
 * bars ago. First value at bar `period` (backtrader ROC, TA-Lib ROCP; TA-Lib ROC is 100 × this).
 * Wraps `trading-signals` ROC.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function roc(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period + 1, fromPrices(() => new ROC(period)));
}
