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
 *
 * Every indicator's state can be saved as JSON and restored exactly ({@link StreamingIndicator.snapshot}).
 * Most wrappers restore `trading-signals` objects through their public fields (a window of prices,
 * an average's last value) and API; the few whose state the library keeps in private fields that
 * nothing public reaches (stochastic, CCI, momentum, the true range's previous close) compute as
 * the library does, with its functions, keeping that state themselves. `trading-signals` is pinned
 * to one version in package.json: `snapshots.test.ts` fails if a new one moves what these rely on.
 */
import { BollingerBands, EMA, MACD, MAD, ROC, RSI, SMA, WilliamsR, WMA, WSMA, getAverage, getTrueRange, getTypicalPrice } from 'trading-signals';
import { finiteNumber, InvalidInputError, type JsonObject, type JsonValue, openSnapshot, type Snapshot, type SnapshotReader, toJsonNumber, toJsonNumbers, toOptionalJsonNumber } from '../core/index.js';

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
  /**
   * Its state as plain JSON: what it keeps (a window of prices, the last smoothed averages), never
   * the series it was fed, with its kind and parameters (`spec`) and the format `version`.
   */
  snapshot(): IndicatorSnapshot;
  /**
   * Sets its state to what `snapshot` saved, whatever it held before: fed the bars that followed,
   * it then answers exactly, bit for bit, what the indicator that made the snapshot answered, and
   * its `value` is that indicator's. All or nothing.
   * @throws {IncompatibleSnapshotError} when the snapshot is of another format version, of another
   *   indicator or parameters (it names them), or damaged; the indicator is then unchanged.
   */
  restore(snapshot: JsonValue): void;
}

/**
 * A snapshot of a {@link StreamingIndicator}: `kind: 'indicator'`, `spec` its name and parameters
 * (e.g. `{ indicator: 'sma', period: 20 }`), `state` what it keeps.
 */
export type IndicatorSnapshot = Snapshot;

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

/** The format version of indicator snapshots this build writes and reads. */
const INDICATOR_SNAPSHOT_VERSION = 1;

/**
 * The part of an indicator that holds its state: {@link Streaming} feeds it, saves it and restores
 * it. Each core holds `trading-signals` objects, restored through their public fields and API, or,
 * where the library keeps the state out of reach, computes as the library does (said where).
 */
interface Core<Input, Output> {
  step(input: Input): Output | undefined;
  /** The state, as JSON. */
  save(): JsonObject;
  /** Sets the state of this fresh core to a saved one; the reader throws, naming the field, on a bad value. */
  load(state: SnapshotReader): void;
}

/** How an indicator's value is written in a snapshot. */
interface ValueCodec<Output> {
  save(value: Output): JsonValue;
  load(state: SnapshotReader, key: string): Output;
}

const NUMBER_VALUE: ValueCodec<number> = { save: toJsonNumber, load: (state, key) => state.number(key) };

/** A value that is a record of numbers (bands, MACD lines), its keys in the order the indicator made them. */
function recordValue<Output>(keys: readonly string[]): ValueCodec<Output> {
  return {
    save: (value) => {
      const out: Record<string, JsonValue> = {};
      for (const [key, number] of Object.entries(value as Record<string, number>)) out[key] = toJsonNumber(number);
      return out;
    },
    load: (state, key) => {
      const record = state.object(key);
      const found = Object.keys(record.raw() as object);
      if (found.length !== keys.length || !keys.every((name) => found.includes(name))) record.fail(undefined, `must have the fields ${keys.join(', ')}, got ${found.join(', ')}`);
      const out: Record<string, number> = {};
      for (const name of found) out[name] = record.number(name);
      return out as Output;
    },
  };
}

const BANDS_VALUE = recordValue<BandsValue>(['lower', 'middle', 'upper']);
const MACD_VALUE = recordValue<MacdValue>(['macd', 'signal', 'histogram']);
const STOCHASTIC_VALUE = recordValue<StochasticValue>(['k', 'd']);

/** Runs a {@link Core} built by `start`; `reset()` and `restore()` build a fresh one (fresh library objects). */
class Streaming<Input, Output> implements StreamingIndicator<Input, Output> {
  #core: Core<Input, Output>;
  /**
   * The value when it is not a number; a number is kept in `#number` instead: a number stored in a
   * field that also holds `undefined` or objects is boxed anew on every store, an allocation per bar.
   */
  #value: Output | undefined;
  readonly #number = new Float64Array(1);
  #isNumber = false;
  readonly #spec: JsonObject;
  readonly #codec: ValueCodec<Output>;
  readonly #start: () => Core<Input, Output>;

  constructor(readonly warmupBars: number, spec: JsonObject, codec: ValueCodec<Output>, start: () => Core<Input, Output>) {
    this.#spec = spec;
    this.#codec = codec;
    this.#start = start;
    this.#core = start();
  }

  get value(): Output | undefined {
    return this.#isNumber ? (this.#number[0] as Output) : this.#value;
  }

  get isStable(): boolean {
    return this.#isNumber || this.#value !== undefined;
  }

  update(input: Input): Output | undefined {
    const value = this.#core.step(input);
    this.#keep(value);
    return value;
  }

  #keep(value: Output | undefined): void {
    if (typeof value === 'number') {
      this.#number[0] = value;
      this.#isNumber = true;
    } else {
      this.#value = value;
      this.#isNumber = false;
    }
  }

  reset(): void {
    this.#core = this.#start();
    this.#keep(undefined);
  }

  snapshot(): IndicatorSnapshot {
    return { kind: 'indicator', version: INDICATOR_SNAPSHOT_VERSION, spec: this.#spec, state: this.saveState() };
  }

  restore(snapshot: JsonValue): void {
    const subject = `indicator ${describeSpec(this.#spec)}`;
    this.prepareState(openSnapshot(snapshot, { subject, kind: 'indicator', version: INDICATOR_SNAPSHOT_VERSION, spec: this.#spec }))();
  }

  /** The state without the header: what a strategy's snapshot holds for each of its indicators. */
  saveState(): JsonObject {
    const value = this.value;
    return { value: value === undefined ? null : this.#codec.save(value), core: this.#core.save() };
  }

  /** Reads a state saved by {@link saveState} into a fresh core; the returned function puts it in place. */
  prepareState(state: SnapshotReader): () => void {
    const value = state.raw('value') === null ? undefined : this.#codec.load(state, 'value');
    const core = this.#start();
    core.load(state.object('core'));
    return () => {
      this.#core = core;
      this.#keep(value);
    };
  }
}

/** `sma(period 20)`, for messages. */
function describeSpec(spec: JsonObject): string {
  const { indicator, ...parameters } = spec;
  return `${indicator as string}(${Object.entries(parameters).map(([key, value]) => `${key} ${JSON.stringify(value)}`).join(', ')})`;
}

/**
 * An indicator's state without the snapshot's header (the spec of the strategy that holds the
 * indicator covers its parameters). Domain-internal: strategies save their indicators with it.
 */
export function saveIndicatorState(indicator: StreamingIndicator<never, unknown>): JsonObject {
  return streaming(indicator).saveState();
}

/**
 * Reads an indicator's state saved by {@link saveIndicatorState}, changing nothing yet; the returned
 * function puts it in place. Domain-internal: strategies restore their indicators with it, all or nothing.
 * @throws IncompatibleSnapshotError naming the field of a bad value.
 */
export function prepareIndicatorState(indicator: StreamingIndicator<never, unknown>, state: SnapshotReader): () => void {
  return streaming(indicator).prepareState(state);
}

function streaming(indicator: StreamingIndicator<never, unknown>): Streaming<never, unknown> {
  if (!(indicator instanceof Streaming)) throw new TypeError('only the indicators made in src/strategy/indicators.ts keep their state for snapshots');
  return indicator as Streaming<never, unknown>;
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


function price(input: PriceInput): number {
  return typeof input === 'number' ? finiteNumber('price', input) : finiteNumber('close', input.close);
}

function bar(input: HighLowClose): HighLowClose {
  finiteNumber('high', input.high);
  finiteNumber('low', input.low);
  finiteNumber('close', input.close);
  return input;
}

/** Appends `values` to a library object's window (its reference is read-only, its items are not). */
function fill(window: number[], values: readonly number[]): void {
  for (const value of values) window.push(value);
}

/**
 * A `trading-signals` object whose whole state is its public window `prices`: WMA, Bollinger
 * bands and ROC push each price, drop the oldest past `length`, and compute from the window alone,
 * so a fresh one holding the same window goes on exactly.
 */
class WindowCore<Output> implements Core<PriceInput, Output> {
  readonly #indicator: { add(value: number): Output | null; readonly prices: number[] };
  readonly #length: number;

  constructor(indicator: { add(value: number): Output | null; readonly prices: number[] }, length: number) {
    this.#indicator = indicator;
    this.#length = length;
  }

  step(input: PriceInput): Output | undefined {
    return this.#indicator.add(price(input)) ?? undefined;
  }

  save(): JsonObject {
    return { prices: toJsonNumbers(this.#indicator.prices) };
  }

  load(state: SnapshotReader): void {
    fill(this.#indicator.prices, state.numbers('prices', { max: this.#length }));
  }
}

/**
 * The SMA, computed here rather than by `trading-signals`' SMA, for speed, bit for bit as it computes:
 * its `update` pushes the price onto an array, shifts the oldest off and sums the whole window
 * (`reduce` from 0, oldest first) at every bar, two fifths of a million-bar SMA(50/200) crossover
 * backtest's CPU time (its update 32 %, the array's push and shift 8.5 %, in a profile of runs after
 * the first). This keeps the window in a ring (no shift) and sums it in a plain loop in the same
 * order from the same 0, so every value is the library's to the last bit (`indicators.test.ts`
 * checks that on real daily files); a running sum would be faster but drifts from it in the last
 * bits, which can move a crossover by a bar. Its state is the window, oldest first, as the library's
 * `prices` (the snapshot format is the same).
 */
class SmaCore implements Core<PriceInput, number> {
  readonly #period: number;
  readonly #window: Float64Array;
  /** Where the next price goes: the oldest price once the window is full. */
  #next = 0;
  #count = 0;

  constructor(period: number) {
    this.#period = period;
    this.#window = new Float64Array(period);
  }

  step(input: PriceInput): number | undefined {
    const window = this.#window;
    const period = this.#period;
    let next = this.#next;
    window[next] = price(input);
    next = next + 1 === period ? 0 : next + 1;
    this.#next = next;
    if (this.#count < period && ++this.#count < period) return undefined;
    // Oldest first: from `next` to the end, then from 0 to `next`.
    let sum = 0;
    for (let i = next; i < period; i++) sum += window[i] as number;
    for (let i = 0; i < next; i++) sum += window[i] as number;
    return sum / period;
  }

  /** The window, oldest first. */
  #prices(): number[] {
    const period = this.#period;
    const start = this.#count < period ? 0 : this.#next;
    return Array.from({ length: this.#count }, (_, i) => this.#window[(start + i) % period] as number);
  }

  save(): JsonObject {
    return { prices: toJsonNumbers(this.#prices()) };
  }

  load(state: SnapshotReader): void {
    for (const value of state.numbers('prices', { max: this.#period })) this.step(value);
  }
}

/**
 * `trading-signals`' EMA with its `result` reachable (protected in the library's typings, public in
 * its code): its `update` reads nothing else of its own but the constructor's weight. Its private
 * input counter only answers `isStable`, which the wrappers never ask (they count warm-up themselves).
 */
class RestorableEMA extends EMA {
  get current(): number | undefined {
    return this.result;
  }

  set current(value: number | undefined) {
    this.result = value;
  }
}

/**
 * `trading-signals`' WSMA (Wilder's smoothing), restorable. Once it has a value, its `update` reads
 * only that value (`result`) and the constructor's factor: the private SMA it goes on feeding no
 * longer matters. Before that its state is its inputs so far (fewer than `interval`, so few), which
 * it keeps here; a fresh one fed them again rebuilds its private SMA exactly. As a core, it is {@link smma}.
 */
class RestorableWSMA extends WSMA implements Core<PriceInput, number> {
  /** The inputs fed while it has no value yet; `undefined` once it has one. */
  #warmUp: number[] | undefined = [];

  step(input: PriceInput): number | undefined {
    return this.add(price(input)) ?? undefined;
  }

  override update(input: number, replace: boolean): number | null {
    const result = super.update(input, replace);
    if (this.#warmUp !== undefined) {
      if (this.result === undefined) this.#warmUp.push(input);
      else this.#warmUp = undefined;
    }
    return result;
  }

  save(): JsonObject {
    return this.#warmUp === undefined ? { value: toJsonNumber(this.result as number) } : { warmUp: toJsonNumbers(this.#warmUp) };
  }

  load(state: SnapshotReader): void {
    if (state.raw('warmUp') !== undefined) {
      for (const input of state.numbers('warmUp', { max: this.interval - 1 })) this.update(input, false);
      return;
    }
    this.result = state.number('value');
    this.#warmUp = undefined;
  }
}

/** An EMA over prices, seeded as asked (see {@link ema}); MACD runs three over plain numbers ({@link EmaCore.next}). */
class EmaCore implements Core<PriceInput, number> {
  readonly #period: number;
  readonly #seed: EmaSeed;
  readonly #ema: RestorableEMA;
  /** SMA seed: the SMA of the first `period` inputs, until it has made the seed. */
  #seeding: SMA | undefined;
  /** `first` seed: the inputs seen, counted up to `period`. */
  #seen = 0;

  constructor(period: number, seed: EmaSeed) {
    this.#period = period;
    this.#seed = seed;
    this.#ema = new RestorableEMA(period);
    this.#seeding = seed === EmaSeed.SMA ? new SMA(period) : undefined;
  }

  step(input: PriceInput): number | undefined {
    return this.next(price(input));
  }

  next(value: number): number | undefined {
    if (this.#seed === EmaSeed.FIRST) {
      // trading-signals' EMA starts from the first input; it is stable after `period` inputs. Count
      // here rather than ask its `isStable`, which throws and catches on every warm-up bar.
      const result = this.#ema.add(value) ?? undefined;
      if (this.#seen < this.#period) this.#seen += 1;
      return this.#seen < this.#period ? undefined : result;
    }
    // SMA seed: trading-signals' EMA starts its recursion from its first input, so feeding a fresh EMA
    // the SMA of the first `period` inputs as its first input seeds it with that SMA (TA-Lib, backtrader).
    const seeding = this.#seeding;
    if (seeding === undefined) return this.#ema.add(value) ?? undefined;
    const mean = seeding.add(value);
    if (mean === null) return undefined;
    this.#seeding = undefined;
    return this.#ema.add(mean) ?? undefined;
  }

  save(): JsonObject {
    const ema = toOptionalJsonNumber(this.#ema.current);
    if (this.#seed === EmaSeed.FIRST) return { seen: this.#seen, ema };
    return { seeding: this.#seeding === undefined ? null : toJsonNumbers(this.#seeding.prices), ema };
  }

  load(state: SnapshotReader): void {
    this.#ema.current = state.optionalNumber('ema');
    if (this.#seed === EmaSeed.FIRST) {
      this.#seen = state.integer('seen', 0);
      if (this.#seen > this.#period) state.fail('seen', `must be <= the period (${this.#period}), got ${this.#seen}`);
      return;
    }
    if (state.raw('seeding') === null) this.#seeding = undefined;
    else fill((this.#seeding as SMA).prices, state.numbers('seeding', { max: this.#period - 1 }));
  }
}

/**
 * `trading-signals`' RSI, restorable. It takes its smoothing class as a constructor argument, so it
 * gets a {@link RestorableWSMA} (the smoothing it uses by default) whose two instances are kept
 * here. Its private window of prices matters only for its last price (each change is against the
 * previous price): a fresh RSI fed that one price keeps it and, with fewer than two prices, returns
 * before it touches its smoothers.
 */
class RsiCore implements Core<PriceInput, number> {
  readonly #rsi: RSI;
  readonly #smoothers: readonly RestorableWSMA[];
  #last: number | undefined;

  constructor(period: number) {
    const smoothers: RestorableWSMA[] = [];
    this.#rsi = new RSI(
      period,
      class extends RestorableWSMA {
        constructor(interval: number) {
          super(interval);
          smoothers.push(this);
        }
      },
    );
    // Average gain and average loss: a library that made other smoothers could not be restored here.
    if (smoothers.length !== 2) throw new Error(`trading-signals' RSI made ${smoothers.length} smoothers, not 2: its snapshots need this wrapper updated`);
    this.#smoothers = smoothers;
  }

  step(input: PriceInput): number | undefined {
    const value = price(input);
    this.#last = value;
    return this.#rsi.add(value) ?? undefined;
  }

  save(): JsonObject {
    return { last: toOptionalJsonNumber(this.#last), smoothers: this.#smoothers.map((smoother) => smoother.save()) };
  }

  load(state: SnapshotReader): void {
    const last = state.optionalNumber('last');
    const smoothers = state.list('smoothers', { min: 2, max: 2 });
    if (last !== undefined) {
      this.#rsi.add(last);
      this.#last = last;
    }
    smoothers.forEach((saved, i) => (this.#smoothers[i] as RestorableWSMA).load(saved.object()));
  }
}

/** `trading-signals`' MACD with EMAs that start from their first input; its EMAs and its window are public. */
class MacdFirstCore implements Core<PriceInput, MacdValue> {
  readonly #emas: readonly [RestorableEMA, RestorableEMA, RestorableEMA];
  readonly #macd: MACD;
  readonly #slow: number;

  constructor(fast: number, slow: number, signal: number) {
    this.#emas = [new RestorableEMA(fast), new RestorableEMA(slow), new RestorableEMA(signal)];
    this.#macd = new MACD(...this.#emas);
    this.#slow = slow;
  }

  step(input: PriceInput): MacdValue | undefined {
    return this.#macd.add(price(input)) ?? undefined;
  }

  save(): JsonObject {
    return { prices: toJsonNumbers(this.#macd.prices), emas: this.#emas.map((ema) => toOptionalJsonNumber(ema.current)) };
  }

  load(state: SnapshotReader): void {
    fill(this.#macd.prices, state.numbers('prices', { max: this.#slow }));
    const emas = state.array('emas', { min: 3, max: 3 });
    this.#emas.forEach((ema, i) => {
      ema.current = emas.optionalNumber(i);
    });
  }
}
/** MACD from three SMA-seeded EMAs (backtrader, or TA-Lib's aligned fast seed); see {@link macd}. */
class MacdSmaCore implements Core<PriceInput, MacdValue> {
  readonly #fast: EmaCore;
  readonly #slow: EmaCore;
  readonly #signal: EmaCore;
  /** Bars before the fast EMA's first input (`slow - fast` for `sma-aligned`, else 0). */
  readonly #fastStartBar: number;
  /** Bars skipped so far, up to `fastStartBar`. */
  #skipped = 0;

  constructor(fast: number, slow: number, signal: number, fastStartBar: number) {
    this.#fast = new EmaCore(fast, EmaSeed.SMA);
    this.#slow = new EmaCore(slow, EmaSeed.SMA);
    this.#signal = new EmaCore(signal, EmaSeed.SMA);
    this.#fastStartBar = fastStartBar;
  }

  step(input: PriceInput): MacdValue | undefined {
    const value = price(input);
    let fastValue: number | undefined;
    if (this.#skipped < this.#fastStartBar) this.#skipped += 1;
    else fastValue = this.#fast.next(value);
    const slowValue = this.#slow.next(value);
    // fast < slow, so the fast EMA has a value whenever the slow one has.
    if (slowValue === undefined || fastValue === undefined) return undefined;
    const line = fastValue - slowValue;
    const signalValue = this.#signal.next(line);
    if (signalValue === undefined) return undefined;
    return { macd: line, signal: signalValue, histogram: line - signalValue };
  }

  save(): JsonObject {
    return { skipped: this.#skipped, fast: this.#fast.save(), slow: this.#slow.save(), signal: this.#signal.save() };
  }

  load(state: SnapshotReader): void {
    this.#skipped = state.integer('skipped', 0);
    if (this.#skipped > this.#fastStartBar) state.fail('skipped', `must be <= ${this.#fastStartBar}, got ${this.#skipped}`);
    this.#fast.load(state.object('fast'));
    this.#slow.load(state.object('slow'));
    this.#signal.load(state.object('signal'));
  }
}

/**
 * The slow stochastic, computed exactly as `trading-signals`' StochasticOscillator (8.3.0) computes
 * it, over its SMA class. Not the library's object: it keeps its %K and %D smoothers in private
 * fields that no constructor argument or public method reaches, and they depend on more bars than
 * its public window holds, so no fresh one could be brought to the same state. Here the smoothers
 * are library SMAs whose windows are public, and the window of highs and lows is kept alongside.
 */
class StochasticCore implements Core<HighLowClose, StochasticValue> {
  readonly #kPeriod: number;
  readonly #highs: number[] = [];
  readonly #lows: number[] = [];
  readonly #smoothK: SMA;
  readonly #smoothD: SMA;

  constructor(kPeriod: number, kSlowingPeriod: number, dPeriod: number) {
    this.#kPeriod = kPeriod;
    this.#smoothK = new SMA(kSlowingPeriod);
    this.#smoothD = new SMA(dPeriod);
  }

  step(input: HighLowClose): StochasticValue | undefined {
    const { high, low, close } = bar(input);
    const highs = this.#highs;
    const lows = this.#lows;
    highs.push(high);
    lows.push(low);
    if (highs.length > this.#kPeriod) {
      highs.shift();
      lows.shift();
    }
    if (highs.length < this.#kPeriod) return undefined;
    // The library's very operations, in its order (Math.max over the window, a divisor of 1 without range).
    const highest = Math.max(...highs);
    const lowest = Math.min(...lows);
    const divisor = highest - lowest;
    let fastK = (close - lowest) * 100;
    fastK = fastK / (divisor === 0 ? 1 : divisor);
    const k = this.#smoothK.add(fastK);
    const d = k !== null ? this.#smoothD.add(k) : null;
    return k !== null && d !== null ? { k, d } : undefined;
  }

  save(): JsonObject {
    return { highs: toJsonNumbers(this.#highs), lows: toJsonNumbers(this.#lows), smoothK: toJsonNumbers(this.#smoothK.prices), smoothD: toJsonNumbers(this.#smoothD.prices) };
  }

  load(state: SnapshotReader): void {
    const highs = state.numbers('highs', { max: this.#kPeriod });
    const lows = state.numbers('lows', { min: highs.length, max: highs.length });
    fill(this.#highs, highs);
    fill(this.#lows, lows);
    fill(this.#smoothK.prices, state.numbers('smoothK', { max: this.#smoothK.interval }));
    fill(this.#smoothD.prices, state.numbers('smoothD', { max: this.#smoothD.interval }));
  }
}

/**
 * Wilder's average of the true range, from `trading-signals`' `getTrueRange` and its WSMA (as its
 * ATR class computes it). Not its TR and ATR objects: they keep the previous bar in private fields;
 * its close is all the true range reads, so it is kept here.
 */
class AtrCore implements Core<HighLowClose, number> {
  readonly #smoothing: RestorableWSMA;
  /** Drop bar 0's range (TA-Lib, backtrader), or average it (Tulip, trading-signals' ATR). */
  readonly #fromSecondBar: boolean;
  #previousClose: number | undefined;

  constructor(period: number, trueRangeFrom: TrueRangeStart) {
    this.#smoothing = new RestorableWSMA(period);
    this.#fromSecondBar = trueRangeFrom === TrueRangeStart.SECOND_BAR;
  }

  step(input: HighLowClose): number | undefined {
    const candle = bar(input);
    const previousClose = this.#previousClose;
    this.#previousClose = candle.close;
    // trading-signals takes bar 0's high - low as a true range; TA-Lib and backtrader have no TR for
    // bar 0 (no previous close), so with `second-bar` it is dropped before the Wilder average.
    if (previousClose === undefined && this.#fromSecondBar) return undefined;
    return this.#smoothing.add(getTrueRange(candle, previousClose)) ?? undefined;
  }

  save(): JsonObject {
    return { previousClose: toOptionalJsonNumber(this.#previousClose), smoothing: this.#smoothing.save() };
  }

  load(state: SnapshotReader): void {
    this.#previousClose = state.optionalNumber('previousClose');
    this.#smoothing.load(state.object('smoothing'));
  }
}

/**
 * The commodity channel index, computed exactly as `trading-signals`' CCI (8.3.0) computes it, with
 * its functions (`getTypicalPrice`, `getAverage`, `MAD.getResultFromBatch`). Not its object: it keeps
 * its window of typical prices in private fields, and a typical price cannot be fed back through a
 * bar exactly ((h + l + c) / 3 rounds), so the window is kept here.
 */
class CciCore implements Core<HighLowClose, number> {
  readonly #period: number;
  readonly #typicalPrices: number[] = [];

  constructor(period: number) {
    this.#period = period;
  }

  step(input: HighLowClose): number | undefined {
    const typicalPrice = getTypicalPrice(bar(input));
    const window = this.#typicalPrices;
    window.push(typicalPrice);
    if (window.length > this.#period) window.shift();
    if (window.length < this.#period) return undefined;
    const mean = getAverage(window);
    return (typicalPrice - mean) / (0.015 * MAD.getResultFromBatch(window, mean));
  }

  save(): JsonObject {
    return { typicalPrices: toJsonNumbers(this.#typicalPrices) };
  }

  load(state: SnapshotReader): void {
    fill(this.#typicalPrices, state.numbers('typicalPrices', { max: this.#period }));
  }
}

/** `trading-signals`' Williams %R: its public window of bars is its whole state. */
class WilliamsCore implements Core<HighLowClose, number> {
  readonly #indicator: WilliamsR;

  constructor(period: number) {
    this.#indicator = new WilliamsR(period);
  }

  step(input: HighLowClose): number | undefined {
    return this.#indicator.add(bar(input)) ?? undefined;
  }

  save(): JsonObject {
    const candles = this.#indicator.candles;
    return {
      highs: toJsonNumbers(candles.map((candle) => candle.high)),
      lows: toJsonNumbers(candles.map((candle) => candle.low)),
      closes: toJsonNumbers(candles.map((candle) => candle.close)),
    };
  }

  load(state: SnapshotReader): void {
    const highs = state.numbers('highs', { max: this.#indicator.interval });
    const lows = state.numbers('lows', { min: highs.length, max: highs.length });
    const closes = state.numbers('closes', { min: highs.length, max: highs.length });
    highs.forEach((high, i) => this.#indicator.candles.push({ high, low: lows[i] as number, close: closes[i] as number }));
  }
}

/**
 * Momentum, price − price `period` bars ago, as `trading-signals`' MOM computes it. Not its object:
 * it keeps its window in a private field, so the window is kept here.
 */
class MomentumCore implements Core<PriceInput, number> {
  readonly #length: number;
  readonly #prices: number[] = [];

  constructor(period: number) {
    this.#length = period + 1;
  }

  step(input: PriceInput): number | undefined {
    const value = price(input);
    const prices = this.#prices;
    prices.push(value);
    if (prices.length > this.#length) prices.shift();
    return prices.length === this.#length ? value - (prices[0] as number) : undefined;
  }

  save(): JsonObject {
    return { prices: toJsonNumbers(this.#prices) };
  }

  load(state: SnapshotReader): void {
    fill(this.#prices, state.numbers('prices', { max: this.#length }));
  }
}

/**
 * Simple moving average: the mean of the last `period` prices. First value at bar `period - 1`.
 * Same in every library. Computes as `trading-signals` SMA does, bit for bit (see {@link SmaCore}).
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function sma(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period, { indicator: 'sma', period }, NUMBER_VALUE, () => new SmaCore(period));
}

/**
 * Linearly weighted moving average over the last `period` prices, weights 1..period (newest
 * heaviest). First value at bar `period - 1`. Same in TA-Lib, backtrader, Tulip. Wraps `trading-signals` WMA.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function wma(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period, { indicator: 'wma', period }, NUMBER_VALUE, () => new WindowCore(new WMA(period), period));
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
  return new Streaming(period, { indicator: 'ema', period, seed }, NUMBER_VALUE, () => new EmaCore(period, seed));
}

/**
 * Wilder's smoothed moving average (SMMA, RMA, "Wilder's MA"), alpha = 1 / period, seeded with the
 * SMA of the first `period` prices: first value at bar `period - 1` (TA-Lib, backtrader SMMA).
 * Wraps `trading-signals` WSMA.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function smma(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period, { indicator: 'smma', period }, NUMBER_VALUE, () => new RestorableWSMA(period));
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
  return new Streaming(period + 1, { indicator: 'rsi', period }, NUMBER_VALUE, () => new RsiCore(period));
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
  return new Streaming(period, { indicator: 'bollinger', period, stdDevs }, BANDS_VALUE, () => new WindowCore(new BollingerBands(period, stdDevs), period));
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
  const spec = { indicator: 'macd', fast, slow, signal, seed };
  if (seed === MacdSeed.FIRST) return new Streaming(slow, spec, MACD_VALUE, () => new MacdFirstCore(fast, slow, signal));
  const fastStartBar = seed === MacdSeed.SMA_ALIGNED ? slow - fast : 0;
  return new Streaming(slow + signal - 1, spec, MACD_VALUE, () => new MacdSmaCore(fast, slow, signal, fastStartBar));
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
  return new Streaming(
    kPeriod + kSlowingPeriod + dPeriod - 2,
    { indicator: 'stochastic', kPeriod, kSlowingPeriod, dPeriod },
    STOCHASTIC_VALUE,
    () => new StochasticCore(kPeriod, kSlowingPeriod, dPeriod),
  );
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
  return new Streaming(from === TrueRangeStart.FIRST_BAR ? period : period + 1, { indicator: 'atr', period, trueRangeFrom: from }, NUMBER_VALUE, () => new AtrCore(period, from));
}

/**
 * Normalised average true range: 100 × {@link atr} / close, with the same options and first bar
 * (TA-Lib NATR). For `first-bar` it is `trading-signals` NATR as is.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1 or `trueRangeFrom` is unknown.
 */
export function natr(period: number, options: AtrOptions = {}): BarIndicator {
  requirePeriod('period', period);
  const from = requireChoice('trueRangeFrom', options.trueRangeFrom ?? TrueRangeStart.SECOND_BAR, TrueRangeStart);
  return new Streaming(from === TrueRangeStart.FIRST_BAR ? period : period + 1, { indicator: 'natr', period, trueRangeFrom: from }, NUMBER_VALUE, () => {
    const average = new AtrCore(period, from);
    return {
      step: (input) => {
        const value = average.step(input);
        return value === undefined ? undefined : (100 * value) / input.close;
      },
      save: () => average.save(),
      load: (state) => average.load(state),
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
  return new Streaming(period, { indicator: 'cci', period }, NUMBER_VALUE, () => new CciCore(period));
}

/**
 * Williams %R: −100 × (highest high − close) / (highest high − lowest low) over `period` bars, in
 * −100..0. First value at bar `period - 1` (TA-Lib, backtrader). A window without range reads −100
 * (`trading-signals`; TA-Lib reads 0). Wraps `trading-signals` WilliamsR.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function williamsR(period: number): BarIndicator {
  requirePeriod('period', period);
  return new Streaming(period, { indicator: 'williamsR', period }, NUMBER_VALUE, () => new WilliamsCore(period));
}

/**
 * Momentum: price − price `period` bars ago. First value at bar `period` (TA-Lib MOM, backtrader
 * Momentum). Wraps `trading-signals` MOM.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function momentum(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period + 1, { indicator: 'momentum', period }, NUMBER_VALUE, () => new MomentumCore(period));
}

/**
 * Rate of change as a fraction (not percent): (price − price `period` bars ago) / price `period`
 * bars ago. First value at bar `period` (backtrader ROC, TA-Lib ROCP; TA-Lib ROC is 100 × this).
 * Wraps `trading-signals` ROC.
 * @throws {InvalidInputError} when `period` is not a whole number >= 1.
 */
export function roc(period: number): PriceIndicator {
  requirePeriod('period', period);
  return new Streaming(period + 1, { indicator: 'roc', period }, NUMBER_VALUE, () => new WindowCore(new ROC(period), period + 1));
}
