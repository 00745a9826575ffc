import { finiteNumber, InvalidInputError, type Rng } from '../core/index.js';
import { type Bar, MAX_DATE_MS, freezeBar } from './bars.js';

/** A co-integrated pair: `follower = hedgeRatio * leader + spread`, the spread an Ornstein–Uhlenbeck process. */
export interface SyntheticPairOptions {
  /** A symbol of {@link SyntheticFeedOptions.symbols}. */
  leader: string;
  /** A new symbol (not in `symbols`), generated from the leader. */
  follower: string;
  /** Follower units per leader unit. @default 1 */
  hedgeRatio?: number;
  /** Long-run mean of the spread, in price units. @default 0 */
  spreadMean?: number;
  /** Bars for a spread deviation to halve on average (mean-reversion speed). @default 10 */
  spreadHalfLifeBars?: number;
  /** Stationary standard deviation of the spread, in price units. @default 1 */
  spreadStdDev?: number;
}

/**
 * The same assets quoted on several venues: each `symbols` entry S is also generated as `S@<venue>`
 * for every venue, priced at S's price × exp(deviation), the deviation (a log price) an
 * Ornstein–Uhlenbeck process of its own per venue symbol, so venues disagree a little and their gaps
 * close over time (what cross-venue arbitrage trades).
 */
export interface SyntheticVenuesOptions {
  /** Venue names, e.g. `['alpha', 'beta']`; at least one, unique, without `@`. */
  names: readonly string[];
  /** Which of `symbols` are quoted on the venues. @default all of `symbols` */
  symbols?: readonly string[];
  /** Stationary standard deviation of a venue's log-price deviation, in basis points. @default 10 */
  noiseStdDevBps?: number;
  /** Bars for a deviation to halve on average. @default 2 */
  noiseHalfLifeBars?: number;
}

/** A volatility index series derived from the realised volatility of the equal-weighted `symbols`. */
export interface SyntheticVolatilityIndexOptions {
  /** @default 'VIX' */
  symbol?: string;
  /** Trailing window of the realised volatility, in bars. @default 20 */
  windowBars?: number;
}

/**
 * Options of {@link createSyntheticFeed}. Every field is optional; rates are annualised with
 * `barsPerYear` and probabilities are per bar.
 */
export interface SyntheticFeedOptions {
  /** Independently driven symbols (geometric Brownian motion each). @default ['AAA', 'BBB'] */
  symbols?: readonly string[];
  /** Bars per symbol. @default 1000 */
  barCount?: number;
  /** Time of the first bar. @default Date.UTC(2020, 0, 1) */
  startTimeMs?: number;
  /** Time between bars. @default 86_400_000 (one day) */
  barIntervalMs?: number;
  /** Bars in a year, to turn the annual rates below into per-bar ones. @default 252 */
  barsPerYear?: number;
  /** Random sub-steps inside each bar; high and low are the extremes of the sub-step path. @default 8 */
  subStepsPerBar?: number;
  /** First open of every symbol in `symbols`. @default 100 */
  initialPrice?: number;
  /** Expected log-price growth plus half the variance (GBM drift, mu). @default 0.05 */
  driftPerYear?: number;
  /**
   * Years for a symbol's log price to come halfway back to its start (plus the drift's long-run
   * offset): a slow pull that keeps prices in a realistic range for ever, where pure geometric
   * Brownian motion drifts without bound. `null`: none (pure GBM).
   * @default null, and 10 for an endless feed (see `openSyntheticFeed`)
   */
  priceHalfLifeYears?: number | null;
  /** Volatility in the calm regime. @default 0.15 */
  calmVolatilityPerYear?: number;
  /** Volatility in the stressed regime. @default 0.45 */
  stressedVolatilityPerYear?: number;
  /** Chance that a calm bar is followed by a stressed one. @default 0.01 */
  calmToStressedProbabilityPerBar?: number;
  /** Chance that a stressed bar is followed by a calm one. @default 0.05 */
  stressedToCalmProbabilityPerBar?: number;
  /** Correlation matrix of the symbols' sub-step returns, in the order of `symbols`. @default identity */
  correlation?: readonly (readonly number[])[];
  /** Co-integrated pairs. @default [] */
  pairs?: readonly SyntheticPairOptions[];
  /** The same assets quoted on several venues, as `SYMBOL@venue`. @default none */
  venues?: SyntheticVenuesOptions | null;
  /** The volatility index, or `null` for none. @default { symbol: 'VIX', windowBars: 20 } */
  volatilityIndex?: SyntheticVolatilityIndexOptions | null;
  /** Mean volume of a calm bar; stressed bars trade more in proportion to their volatility. @default 1_000_000 */
  meanVolumePerBar?: number;
  /**
   * Floor of a follower's price and of the volatility index (the pair relation breaks only where the
   * leader has nearly vanished). @default 0.01
   */
  minimumPrice?: number;
}

/** The compiled, complete, frozen form of {@link SyntheticFeedOptions}. */
export interface SyntheticFeedConfig {
  readonly symbols: readonly string[];
  /** `Infinity` for an endless feed. */
  readonly barCount: number;
  readonly startTimeMs: number;
  readonly barIntervalMs: number;
  readonly barsPerYear: number;
  readonly subStepsPerBar: number;
  readonly initialPrice: number;
  readonly driftPerYear: number;
  readonly priceHalfLifeYears: number | null;
  readonly calmVolatilityPerYear: number;
  readonly stressedVolatilityPerYear: number;
  readonly calmToStressedProbabilityPerBar: number;
  readonly stressedToCalmProbabilityPerBar: number;
  readonly correlation: readonly (readonly number[])[];
  /** Lower-triangular Cholesky factor of `correlation`. */
  readonly choleskyFactor: readonly (readonly number[])[];
  readonly pairs: readonly Required<SyntheticPairOptions>[];
  readonly venues: Required<SyntheticVenuesOptions> | null;
  readonly volatilityIndex: Required<SyntheticVolatilityIndexOptions> | null;
  readonly meanVolumePerBar: number;
  readonly minimumPrice: number;
}

/**
 * Most bars a synthetic market may hold, all its series together (symbols, pair followers, venue
 * symbols and the volatility index): it is generated whole, before a backtest's first bar. Measured
 * here through a whole backtest, a bar costs about 330 to 360 bytes at the peak (1.8 GB of resident
 * memory and 12 s for 2.5 million bars of one symbol and its volatility index), so 5 million stay
 * under half of Node's default heap limit (4.1 GB on this 24 GB machine, shared by several users).
 */
export const MAX_SYNTHETIC_BARS = 5_000_000;

/**
 * Most symbols a synthetic market may have: compiling the correlation matrix (its Cholesky factor)
 * grows with the cube of their number (measured here: 0.16 s for 100 symbols, 1.2 s for 300, 35 s
 * for 1,001).
 */
export const MAX_SYNTHETIC_SYMBOLS = 100;

/**
 * Largest move of a log price the options may allow: e^709 is where a double overflows (and
 * e^-745 where it reaches 0); the margin keeps hedge ratios and volumes times prices finite too.
 */
const MAX_LOG_PRICE_MOVE = 690;

/**
 * The pull of an endless feed's prices unless given: over ten years, a log price's deviation halves.
 * With the default volatilities, prices then stay within about e^±1.2 of their long-run level
 * (two stationary standard deviations), yet a five-year stretch still trends.
 */
const ENDLESS_PRICE_HALF_LIFE_YEARS = 10;

/** The market regime of a bar. */
export const Regime = { calm: 'calm', stressed: 'stressed' } as const;
export type Regime = (typeof Regime)[keyof typeof Regime];

/** One generated run. */
export interface SyntheticMarket {
  /** Every generated symbol: `symbols`, then pair followers, then venue symbols (by symbol, then venue), then the volatility index. */
  readonly symbols: readonly string[];
  /** Bars of each symbol in {@link SyntheticMarket.symbols}, `barCount` each. */
  readonly bars: ReadonlyMap<string, readonly Bar[]>;
  /** The regime of each bar (shared by all symbols). */
  readonly regimes: readonly Regime[];
}

/** A compiled synthetic feed; `generate` is deterministic for a given `Rng` seed. */
export interface SyntheticFeed {
  readonly config: SyntheticFeedConfig;
  /**
   * Generates a market. Uses only forks of `rng` (`regime`, `returns`, `spread:<follower>`,
   * `venue:<symbol>@<venue>`, `volume:<symbol>`), so `rng` itself is not advanced, and adding
   * venues or pairs does not change the bars of the other symbols.
   */
  generate(rng: Rng): SyntheticMarket;
}

/**
 * A seeded synthetic market: per-symbol geometric Brownian motion (optionally pulled back towards
 * its start, `priceHalfLifeYears`) whose volatility follows a
 * two-state Markov regime (calm/stressed, switching between bars, shared by all symbols);
 * sub-step returns correlated through the Cholesky factor of `correlation`; co-integrated pairs;
 * optional copies of symbols on several venues (`venues`), each with its own mean-reverting noise;
 * and a volatility index (100 × annualised realised volatility of the equal-weighted `symbols`
 * over a trailing window, sums of squared log returns, pre-filled with the calm regime's expected value).
 * @throws InvalidInputError naming the first invalid option.
 */
export function createSyntheticFeed(options: SyntheticFeedOptions = {}): SyntheticFeed {
  const config = compileSyntheticFeedOptions(options);
  return { config, generate: (rng) => generate(config, rng) };
}

/**
 * Fills in defaults and checks every option, including what they imply together: at most
 * {@link MAX_SYNTHETIC_BARS} bars in all series, at most {@link MAX_SYNTHETIC_SYMBOLS} symbols, bar
 * times a `Date` can hold, and prices a double can hold (drift and volatility over the years the bars span).
 * @throws InvalidInputError naming the first invalid field, e.g. `correlation[1][0]`.
 */
export function compileSyntheticFeedOptions(options: SyntheticFeedOptions = {}): SyntheticFeedConfig {
  return compileSynthetic(options, 'whole');
}

/**
 * How a compiled market is made: `whole` by {@link SyntheticFeed.generate}, held in memory (at most
 * {@link MAX_SYNTHETIC_BARS}); `stream` step by step, `barCount` bars; `endless` step by step for ever.
 */
export type SyntheticLength = 'whole' | 'stream' | 'endless';

/**
 * {@link compileSyntheticFeedOptions} for a market made as `length` says: a streamed market holds
 * no bars, so it has no bar budget; an endless one has no `barCount`, needs `priceHalfLifeYears` to
 * keep its prices finite (10 unless given), and ends only where a `Date` does.
 * @throws InvalidInputError naming the first invalid field.
 */
export function compileSynthetic(options: SyntheticFeedOptions, length: SyntheticLength): SyntheticFeedConfig {
  const symbols = [...(options.symbols ?? ['AAA', 'BBB'])];
  if (symbols.length === 0) throw new InvalidInputError('symbols', 'must list at least one symbol');
  if (symbols.length > MAX_SYNTHETIC_SYMBOLS) {
    throw new InvalidInputError('symbols', `must list at most ${MAX_SYNTHETIC_SYMBOLS} symbols (the correlation matrix has a row and a column per symbol), got ${symbols.length}`);
  }
  const taken = new Set<string>();
  const claim = (field: string, symbol: unknown): string => {
    if (typeof symbol !== 'string' || symbol.trim() === '') {
      throw new InvalidInputError(field, `must be a non-empty string, got ${JSON.stringify(symbol)}`);
    }
    if (taken.has(symbol)) throw new InvalidInputError(field, `${JSON.stringify(symbol)} is used twice; every generated symbol needs its own name`);
    taken.add(symbol);
    return symbol;
  };
  symbols.forEach((symbol, i) => claim(`symbols[${i}]`, symbol));

  if (length === 'endless' && options.barCount !== undefined) {
    throw new InvalidInputError('barCount', `has no meaning for an endless feed; remove it, or make the feed finite, got ${String(options.barCount)}`);
  }
  const barCount =
    length === 'endless' ? Infinity : integer('barCount', length === 'whole' ? withinBarBudget(options.barCount ?? 1000, seriesOf(options, symbols)) : (options.barCount ?? 1000), 1);
  const startTimeMs = integer('startTimeMs', options.startTimeMs ?? Date.UTC(2020, 0, 1), -MAX_DATE_MS);
  const barIntervalMs = integer('barIntervalMs', options.barIntervalMs ?? 86_400_000, 1);
  const lastBarTimeMs = startTimeMs + (barCount - 1) * barIntervalMs;
  if (length !== 'endless' && lastBarTimeMs > MAX_DATE_MS) {
    throw new InvalidInputError(
      'barIntervalMs',
      `puts the last bar at ${lastBarTimeMs} ms, after the last time a date can hold (${MAX_DATE_MS} ms, in the year 275760); use a shorter interval, fewer bars or an earlier start, got ${barIntervalMs}`,
    );
  }
  const barsPerYear = positive('barsPerYear', options.barsPerYear ?? 252);
  const subStepsPerBar = integer('subStepsPerBar', options.subStepsPerBar ?? 8, 1);
  const initialPrice = positive('initialPrice', options.initialPrice ?? 100);
  const driftPerYear = finiteNumber('driftPerYear', options.driftPerYear ?? 0.05);
  const halfLife = options.priceHalfLifeYears === undefined ? (length === 'endless' ? ENDLESS_PRICE_HALF_LIFE_YEARS : null) : options.priceHalfLifeYears;
  const priceHalfLifeYears = halfLife === null ? null : positive('priceHalfLifeYears', halfLife);
  const calmVolatilityPerYear = nonNegative('calmVolatilityPerYear', options.calmVolatilityPerYear ?? 0.15);
  const stressedVolatilityPerYear = nonNegative('stressedVolatilityPerYear', options.stressedVolatilityPerYear ?? 0.45);
  const calmToStressedProbabilityPerBar = probability('calmToStressedProbabilityPerBar', options.calmToStressedProbabilityPerBar ?? 0.01);
  const stressedToCalmProbabilityPerBar = probability('stressedToCalmProbabilityPerBar', options.stressedToCalmProbabilityPerBar ?? 0.05);
  const meanVolumePerBar = nonNegative('meanVolumePerBar', options.meanVolumePerBar ?? 1_000_000);
  const minimumPrice = positive('minimumPrice', options.minimumPrice ?? 0.01);
  const years = barCount / barsPerYear;
  const worstDrift = Math.max(Math.abs(driftPerYear - calmVolatilityPerYear ** 2 / 2), Math.abs(driftPerYear - stressedVolatilityPerYear ** 2 / 2));
  const worstVolatility = Math.max(calmVolatilityPerYear, stressedVolatilityPerYear);
  // A drift or volatility of 0 moves nothing, even over endless years (where 0 * Infinity is NaN).
  const over = (rate: number, amount: number): number => (rate === 0 ? 0 : rate * amount);
  const startMove = Math.abs(Math.log(initialPrice));
  const freeMove = startMove + over(worstDrift, years) + 6 * over(worstVolatility, Math.sqrt(years));
  // Pulled back at rate k = ln 2 / half-life, a log price stays within drift / k of its start, plus
  // six stationary standard deviations (volatility / sqrt(2k)), however long it runs.
  const pull = priceHalfLifeYears === null ? 0 : Math.LN2 / priceHalfLifeYears;
  const pulledMove = pull === 0 ? Infinity : startMove + worstDrift / pull + (6 * worstVolatility) / Math.sqrt(2 * pull);
  const logMove = Math.min(freeMove, pulledMove);
  if (!(logMove <= MAX_LOG_PRICE_MOVE)) {
    const growth = `could move prices by a factor of e^${Number.isFinite(logMove) ? Math.round(logMove) : 'Infinity'} (the drift plus six standard deviations), past the e^${MAX_LOG_PRICE_MOVE} a price may reach before a double overflows`;
    if (length === 'endless') {
      throw new InvalidInputError(
        'priceHalfLifeYears',
        `over an endless feed, driftPerYear and the volatilities ${growth}; pull prices back with a shorter priceHalfLifeYears (10 unless given), got ${String(priceHalfLifeYears)}`,
      );
    }
    throw new InvalidInputError(
      'barCount',
      `over ${Number(years.toPrecision(4))} years (barCount / barsPerYear), driftPerYear and the volatilities ${growth}; use fewer bars, more barsPerYear, or a smaller drift or volatility, got ${barCount}`,
    );
  }

  const correlation = compileCorrelation(options.correlation, symbols.length);
  const choleskyFactor = cholesky(correlation);

  const pairs = (options.pairs ?? []).map((pair, i) => {
    const field = `pairs[${i}]`;
    if (!symbols.includes(pair.leader)) {
      throw new InvalidInputError(`${field}.leader`, `${JSON.stringify(pair.leader)} is not one of symbols (${symbols.join(', ')})`);
    }
    return Object.freeze({
      leader: pair.leader,
      follower: claim(`${field}.follower`, pair.follower),
      hedgeRatio: positive(`${field}.hedgeRatio`, pair.hedgeRatio ?? 1),
      spreadMean: finiteNumber(`${field}.spreadMean`, pair.spreadMean ?? 0),
      spreadHalfLifeBars: positive(`${field}.spreadHalfLifeBars`, pair.spreadHalfLifeBars ?? 10),
      spreadStdDev: nonNegative(`${field}.spreadStdDev`, pair.spreadStdDev ?? 1),
    });
  });

  let venues: Required<SyntheticVenuesOptions> | null = null;
  if (options.venues !== undefined && options.venues !== null) {
    const given = options.venues;
    const names: unknown = given.names;
    if (!Array.isArray(names) || names.length === 0) throw new InvalidInputError('venues.names', 'must list at least one venue name, e.g. ["alpha", "beta"]');
    const seenVenues = new Set<string>();
    names.forEach((venue: unknown, i) => {
      const field = `venues.names[${i}]`;
      if (typeof venue !== 'string' || venue.trim() === '' || venue.includes('@')) {
        throw new InvalidInputError(field, `must be a non-empty name without '@', got ${JSON.stringify(venue)}`);
      }
      if (seenVenues.has(venue)) throw new InvalidInputError(field, `${JSON.stringify(venue)} is listed twice`);
      seenVenues.add(venue);
    });
    const quoted = [...(given.symbols ?? symbols)];
    quoted.forEach((symbol, i) => {
      if (!symbols.includes(symbol)) throw new InvalidInputError(`venues.symbols[${i}]`, `${JSON.stringify(symbol)} is not one of symbols (${symbols.join(', ')})`);
    });
    for (const symbol of quoted) for (const venue of names as string[]) claim('venues', `${symbol}@${venue}`);
    venues = Object.freeze({
      names: Object.freeze([...(names as string[])]),
      symbols: Object.freeze(quoted),
      noiseStdDevBps: nonNegative('venues.noiseStdDevBps', given.noiseStdDevBps ?? 10),
      noiseHalfLifeBars: positive('venues.noiseHalfLifeBars', given.noiseHalfLifeBars ?? 2),
    });
  }

  let volatilityIndex: Required<SyntheticVolatilityIndexOptions> | null = null;
  if (options.volatilityIndex !== null) {
    const index = options.volatilityIndex ?? {};
    volatilityIndex = Object.freeze({
      symbol: claim('volatilityIndex.symbol', index.symbol ?? 'VIX'),
      windowBars: integer('volatilityIndex.windowBars', index.windowBars ?? 20, 1),
    });
  }

  return Object.freeze({
    symbols: Object.freeze(symbols),
    barCount,
    startTimeMs,
    barIntervalMs,
    barsPerYear,
    subStepsPerBar,
    initialPrice,
    driftPerYear,
    priceHalfLifeYears,
    calmVolatilityPerYear,
    stressedVolatilityPerYear,
    calmToStressedProbabilityPerBar,
    stressedToCalmProbabilityPerBar,
    correlation,
    choleskyFactor,
    pairs: Object.freeze(pairs),
    venues,
    volatilityIndex,
    meanVolumePerBar,
    minimumPrice,
  });
}

/** The series a market of these options generates, counted from the options as given (before they are checked). */
function seriesOf(options: SyntheticFeedOptions, symbols: readonly string[]): { count: number; text: string } {
  const followers = Array.isArray(options.pairs) ? options.pairs.length : 0;
  const venues = options.venues;
  const quoted = venues !== undefined && venues !== null && Array.isArray(venues.names) ? venues.names.length * (venues.symbols ?? symbols).length : 0;
  const index = options.volatilityIndex === null ? 0 : 1;
  const counted = (count: number, noun: string): string[] => (count === 0 ? [] : [`${count} ${noun}${count === 1 ? '' : 's'}`]);
  const parts = [...counted(symbols.length, 'symbol'), ...counted(followers, 'pair follower'), ...counted(quoted, 'venue symbol'), ...(index === 0 ? [] : ['the volatility index'])];
  const text = parts.length === 1 ? (parts[0] as string) : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1) as string}`;
  return { count: symbols.length + followers + quoted + index, text };
}

/**
 * `barCount` when every series' bars fit in {@link MAX_SYNTHETIC_BARS}; checked before it must be
 * an integer, so that 1e300 is told the limit too.
 */
function withinBarBudget(barCount: number, series: { count: number; text: string }): number {
  const most = Math.floor(MAX_SYNTHETIC_BARS / series.count);
  if (barCount > most) {
    throw new InvalidInputError(
      'barCount',
      `must be <= ${most} for ${series.count} generated series (${series.text}): a synthetic market holds at most ${MAX_SYNTHETIC_BARS} bars, about 360 bytes of memory each; use fewer bars or symbols, got ${barCount}`,
    );
  }
  return barCount;
}


function positive(field: string, value: number): number {
  if (finiteNumber(field, value) <= 0) throw new InvalidInputError(field, `must be > 0, got ${value}`);
  return value;
}

function nonNegative(field: string, value: number): number {
  if (finiteNumber(field, value) < 0) throw new InvalidInputError(field, `must be >= 0, got ${value}`);
  return value;
}

function probability(field: string, value: number): number {
  if (finiteNumber(field, value) < 0 || value > 1) throw new InvalidInputError(field, `must be a probability in [0, 1], got ${value}`);
  return value;
}

function integer(field: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value)) throw new InvalidInputError(field, `must be an integer, got ${String(value)}`);
  if (value < min) throw new InvalidInputError(field, `must be >= ${min}, got ${value}`);
  return value;
}

function compileCorrelation(matrix: readonly (readonly number[])[] | undefined, size: number): readonly (readonly number[])[] {
  if (matrix === undefined) {
    return Object.freeze(Array.from({ length: size }, (_, i) => Object.freeze(Array.from({ length: size }, (_unused, j) => (i === j ? 1 : 0)))));
  }
  if (matrix.length !== size) {
    throw new InvalidInputError('correlation', `must have one row per symbol (${size}), got ${matrix.length} rows`);
  }
  return Object.freeze(
    matrix.map((row, i) => {
      if (row.length !== size) throw new InvalidInputError(`correlation[${i}]`, `must have ${size} entries, got ${row.length}`);
      return Object.freeze(
        row.map((value, j) => {
          const field = `correlation[${i}][${j}]`;
          finiteNumber(field, value);
          if (i === j && value !== 1) throw new InvalidInputError(field, `must be 1 (the diagonal of a correlation matrix), got ${value}`);
          if (value < -1 || value > 1) throw new InvalidInputError(field, `must be in [-1, 1], got ${value}`);
          const mirror = matrix[j]?.[i];
          if (mirror !== undefined && Math.abs(mirror - value) > 1e-12) {
            throw new InvalidInputError(field, `must equal correlation[${j}][${i}] (${mirror}), got ${value}; the matrix must be symmetric`);
          }
          return value;
        }),
      );
    }),
  );
}

/** Cholesky factor L (lower triangular, L Lᵀ = matrix) of a positive semi-definite matrix. */
function cholesky(matrix: readonly (readonly number[])[]): readonly (readonly number[])[] {
  const size = matrix.length;
  const factor = Array.from({ length: size }, () => new Array<number>(size).fill(0));
  const at = (m: readonly (readonly number[])[], i: number, j: number): number => m[i]?.[j] ?? 0;
  for (let j = 0; j < size; j++) {
    let diagonal = at(matrix, j, j);
    for (let k = 0; k < j; k++) diagonal -= at(factor, j, k) ** 2;
    if (diagonal < -1e-10) {
      throw new InvalidInputError('correlation', `is not positive semi-definite (fails at row ${j}); no set of returns can have these correlations`);
    }
    const pivot = Math.sqrt(Math.max(diagonal, 0));
    (factor[j] as number[])[j] = pivot;
    for (let i = j + 1; i < size; i++) {
      let sum = at(matrix, i, j);
      for (let k = 0; k < j; k++) sum -= at(factor, i, k) * at(factor, j, k);
      (factor[i] as number[])[j] = pivot > 1e-12 ? sum / pivot : 0;
    }
  }
  return Object.freeze(factor.map((row) => Object.freeze(row)));
}

function generate(config: SyntheticFeedConfig, rng: Rng): SyntheticMarket {
  const generator = new SyntheticGenerator(config, rng);
  const series = generator.symbols.map((): Bar[] => []);
  const regimes: Regime[] = [];
  for (let bar = 0; bar < config.barCount; bar++) {
    const bars = generator.next();
    for (let s = 0; s < bars.length; s++) (series[s] as Bar[]).push(bars[s] as Bar);
    regimes.push(generator.regime);
  }
  const bars = new Map<string, readonly Bar[]>();
  generator.symbols.forEach((symbol, s) => bars.set(symbol, Object.freeze(series[s] as Bar[])));
  return Object.freeze({ symbols: generator.symbols, bars, regimes: Object.freeze(regimes) });
}

/**
 * The market of {@link createSyntheticFeed}, one bar time at a time. Each random stream is a fork of
 * the `Rng` given (see {@link SyntheticFeed.generate}) and is drawn in the same order whether bars are
 * asked for all at once or a few at a time, so bar k is the same however the market is read: a whole
 * market is this generator run `barCount` times, and an endless feed is this generator never stopped.
 */
export class SyntheticGenerator {
  /** Every generated symbol, in the order of {@link SyntheticMarket.symbols}: the order of {@link SyntheticGenerator.next}'s bars. */
  readonly symbols: readonly string[];
  readonly #config: SyntheticFeedConfig;
  readonly #regimeRng: Rng;
  readonly #returnsRng: Rng;
  readonly #spreadRngs: readonly Rng[];
  readonly #venueRngs: readonly Rng[];
  /** One per generated series (the volatility index has no volume). */
  readonly #volumeRngs: readonly Rng[];
  /** Per venue symbol, the index in `symbols` of the symbol it quotes. */
  readonly #venueBases: readonly number[];
  readonly #dtYears: number;
  readonly #sqrtDt: number;
  /** Share of a log price's deviation from its start taken back in one sub-step (0: none). */
  readonly #pullPerSubStep: number;
  readonly #startLogPrice: number;
  readonly #logPrices: number[];
  readonly #shocks: number[];
  readonly #spreads: number[];
  readonly #spreadDecay: readonly number[];
  readonly #spreadNoise: readonly number[];
  readonly #leaderIndex: readonly number[];
  readonly #deviations: number[];
  readonly #venueDecay: number;
  readonly #venueNoise: number;
  /** A ring of the last `windowBars * subStepsPerBar` squared index log returns. */
  readonly #squares: number[];
  #squaresSum: number;
  #squaresNext = 0;
  /** OHLC of the bar being built, per generated series, then the volatility index last. */
  readonly #open: number[];
  readonly #high: number[];
  readonly #low: number[];
  readonly #close: number[];
  #bar = 0;
  #regime: Regime = Regime.calm;

  constructor(config: SyntheticFeedConfig, rng: Rng) {
    this.#config = config;
    const { symbols, subStepsPerBar } = config;
    const n = symbols.length;
    this.#regimeRng = rng.fork('regime');
    this.#returnsRng = rng.fork('returns');
    this.#spreadRngs = config.pairs.map((pair) => rng.fork(`spread:${pair.follower}`));
    this.#dtYears = 1 / (config.barsPerYear * subStepsPerBar);
    this.#sqrtDt = Math.sqrt(this.#dtYears);
    this.#startLogPrice = Math.log(config.initialPrice);
    this.#pullPerSubStep = config.priceHalfLifeYears === null ? 0 : 1 - 2 ** (-this.#dtYears / config.priceHalfLifeYears);
    this.#logPrices = symbols.map(() => this.#startLogPrice);
    this.#shocks = new Array<number>(n).fill(0);

    // Spreads start from their stationary distribution, so the pair is in equilibrium from bar 0.
    this.#spreadDecay = config.pairs.map((pair) => 2 ** (-1 / (pair.spreadHalfLifeBars * subStepsPerBar)));
    this.#spreadNoise = config.pairs.map((pair, p) => pair.spreadStdDev * Math.sqrt(1 - (this.#spreadDecay[p] as number) ** 2));
    this.#spreads = config.pairs.map((pair, p) => (this.#spreadRngs[p] as Rng).normal(pair.spreadMean, pair.spreadStdDev));
    this.#leaderIndex = config.pairs.map((pair) => symbols.indexOf(pair.leader));

    // Venue copies: price = reference × exp(deviation), the deviation an OU process in log price.
    const venueQuotes = (config.venues?.symbols ?? []).flatMap((symbol) =>
      (config.venues?.names ?? []).map((venue) => ({ name: `${symbol}@${venue}`, base: symbols.indexOf(symbol) })),
    );
    this.#venueBases = venueQuotes.map((quote) => quote.base);
    this.#venueRngs = venueQuotes.map((quote) => rng.fork(`venue:${quote.name}`));
    const venueStdDev = (config.venues?.noiseStdDevBps ?? 0) / 10_000;
    this.#venueDecay = 2 ** (-1 / ((config.venues?.noiseHalfLifeBars ?? 1) * subStepsPerBar));
    this.#venueNoise = venueStdDev * Math.sqrt(1 - this.#venueDecay ** 2);
    this.#deviations = this.#venueRngs.map((venueRng) => venueRng.normal(0, venueStdDev));

    // The volatility index starts from the calm regime's expected squared index return.
    const windowSize = (config.volatilityIndex?.windowBars ?? 1) * subStepsPerBar;
    let indexVarianceFactor = 0;
    for (const row of config.correlation) for (const value of row) indexVarianceFactor += value;
    indexVarianceFactor /= n * n;
    const calmSquared = config.calmVolatilityPerYear ** 2 * this.#dtYears * indexVarianceFactor;
    this.#squares = new Array<number>(windowSize).fill(calmSquared);
    this.#squaresSum = calmSquared * windowSize;

    const generated = [...symbols, ...config.pairs.map((pair) => pair.follower), ...venueQuotes.map((quote) => quote.name)];
    this.#volumeRngs = generated.map((symbol) => rng.fork(`volume:${symbol}`));
    if (config.volatilityIndex !== null) generated.push(config.volatilityIndex.symbol);
    this.symbols = Object.freeze(generated);
    const series = this.#volumeRngs.length + 1;
    this.#open = new Array<number>(series).fill(0);
    this.#high = new Array<number>(series).fill(0);
    this.#low = new Array<number>(series).fill(0);
    this.#close = new Array<number>(series).fill(0);
  }

  /** Bars generated so far: the index of the bar {@link SyntheticGenerator.next} makes next. */
  get generated(): number {
    return this.#bar;
  }

  /** The regime of the last bar made (calm before the first). */
  get regime(): Regime {
    return this.#regime;
  }

  /** The bars of the next bar time, one per symbol in the order of {@link SyntheticGenerator.symbols}, frozen. */
  next(): Bar[] {
    const config = this.#config;
    const { symbols, subStepsPerBar } = config;
    const n = symbols.length;
    const followerCount = config.pairs.length;
    const venueCount = this.#venueRngs.length;
    const seriesCount = this.#volumeRngs.length;
    const indexSlot = seriesCount;
    const bar = this.#bar;
    if (bar > 0) {
      const switchProbability = this.#regime === Regime.calm ? config.calmToStressedProbabilityPerBar : config.stressedToCalmProbabilityPerBar;
      if (this.#regimeRng.next() < switchProbability) this.#regime = this.#regime === Regime.calm ? Regime.stressed : Regime.calm;
    }
    const volatility = this.#regime === Regime.calm ? config.calmVolatilityPerYear : config.stressedVolatilityPerYear;
    const driftStep = (config.driftPerYear - volatility ** 2 / 2) * this.#dtYears;

    // Recomputing the window sum once a bar keeps rounding errors of the running sum from piling up.
    this.#squaresSum = this.#squares.reduce((sum, value) => sum + value, 0);
    // Each bar opens exactly at the previous close (no gaps); the first at the configured prices.
    for (let s = 0; s <= seriesCount; s++) {
      const open =
        bar > 0 ? (this.#close[s] as number) : s < n ? config.initialPrice : s < n + followerCount ? this.#followerPrice(s - n) : s < seriesCount ? this.#venuePrice(s - n - followerCount) : this.#indexLevel();
      this.#open[s] = open;
      this.#high[s] = open;
      this.#low[s] = open;
      this.#close[s] = open;
    }

    const logPrices = this.#logPrices;
    const pull = this.#pullPerSubStep;
    const shocks = this.#shocks;
    const squares = this.#squares;
    for (let step = 0; step < subStepsPerBar; step++) {
      for (let j = 0; j < n; j++) shocks[j] = this.#returnsRng.normal();
      let indexReturn = 0;
      for (let i = 0; i < n; i++) {
        const row = config.choleskyFactor[i] as readonly number[];
        let z = 0;
        for (let j = 0; j <= i; j++) z += (row[j] as number) * (shocks[j] as number);
        let logReturn = driftStep + volatility * this.#sqrtDt * z;
        // Skipped, not multiplied by 0, when there is no pull: pure GBM keeps its bits.
        if (pull !== 0) logReturn -= pull * ((logPrices[i] as number) - this.#startLogPrice);
        logPrices[i] = (logPrices[i] as number) + logReturn;
        indexReturn += logReturn / n;
        this.#extend(i, Math.exp(logPrices[i] as number));
      }
      for (let p = 0; p < followerCount; p++) {
        const pair = config.pairs[p] as Required<SyntheticPairOptions>;
        const decay = this.#spreadDecay[p] as number;
        this.#spreads[p] = pair.spreadMean + ((this.#spreads[p] as number) - pair.spreadMean) * decay + (this.#spreadRngs[p] as Rng).normal(0, this.#spreadNoise[p] ?? 0);
        this.#extend(n + p, this.#followerPrice(p));
      }
      for (let v = 0; v < venueCount; v++) {
        this.#deviations[v] = (this.#deviations[v] as number) * this.#venueDecay + (this.#venueRngs[v] as Rng).normal(0, this.#venueNoise);
        this.#extend(n + followerCount + v, this.#venuePrice(v));
      }
      const square = indexReturn * indexReturn;
      this.#squaresSum += square - (squares[this.#squaresNext] as number);
      squares[this.#squaresNext] = square;
      this.#squaresNext = (this.#squaresNext + 1) % squares.length;
      this.#extend(indexSlot, this.#indexLevel());
    }

    const timeMs = config.startTimeMs + bar * config.barIntervalMs;
    const activity = config.calmVolatilityPerYear > 0 ? volatility / config.calmVolatilityPerYear : 1;
    const bars: Bar[] = [];
    for (let s = 0; s < seriesCount; s++) {
      // Log-normal noise with mean 1 (sigma 0.5).
      const volume = Math.round(config.meanVolumePerBar * activity * Math.exp((this.#volumeRngs[s] as Rng).normal(-0.125, 0.5)));
      bars.push(this.#barOf(s, timeMs, volume));
    }
    if (config.volatilityIndex !== null) bars.push(this.#barOf(indexSlot, timeMs, 0));
    this.#bar = bar + 1;
    return bars;
  }

  #followerPrice(p: number): number {
    const config = this.#config;
    const pair = config.pairs[p] as Required<SyntheticPairOptions>;
    const leader = Math.exp(this.#logPrices[this.#leaderIndex[p] as number] as number);
    return Math.max(config.minimumPrice, pair.hedgeRatio * leader + (this.#spreads[p] as number));
  }

  #venuePrice(v: number): number {
    return Math.exp((this.#logPrices[this.#venueBases[v] as number] as number) + (this.#deviations[v] as number));
  }

  #indexLevel(): number {
    const squares = this.#squares.length;
    return Math.max(this.#config.minimumPrice, 100 * Math.sqrt(Math.max(this.#squaresSum, 0) / squares / this.#dtYears));
  }

  #extend(s: number, price: number): void {
    if (price > (this.#high[s] as number)) this.#high[s] = price;
    if (price < (this.#low[s] as number)) this.#low[s] = price;
    this.#close[s] = price;
  }

  #barOf(s: number, timeMs: number, volume: number): Bar {
    const symbol = this.symbols[s] as string;
    return freezeBar({ symbol, timeMs, open: this.#open[s] as number, high: this.#high[s] as number, low: this.#low[s] as number, close: this.#close[s] as number, volume });
  }
}
