import { describe, expect, it } from 'vitest';
import { InvalidInputError, Rng } from '../core/index.js';
import { type Bar, type SyntheticFeedOptions, type SyntheticMarket, createSyntheticFeed, validateBar } from './index.js';

function barsOf(market: SyntheticMarket, symbol: string): readonly Bar[] {
  const bars = market.bars.get(symbol);
  if (!bars) throw new Error(`no bars for ${symbol}`);
  return bars;
}

function logReturns(bars: readonly Bar[]): number[] {
  return bars.slice(1).map((bar, i) => Math.log(bar.close / (bars[i] as Bar).close));
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function stdDev(values: readonly number[]): number {
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, value) => sum + (value - m) ** 2, 0) / (values.length - 1));
}

function correlation(x: readonly number[], y: readonly number[]): number {
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  x.forEach((value, i) => {
    const dx = value - mx;
    const dy = (y[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  });
  return sxy / Math.sqrt(sxx * syy);
}

/**
 * Dickey–Fuller regression with a constant: Δs_t = α + β·s_{t−1} + e_t. Returns β and its t-statistic.
 * A unit root (no mean reversion) has β = 0; the 1% critical value of the t-statistic for large
 * samples is −3.43 (MacKinnon), so t < −3.43 rejects "the spread wanders like a random walk".
 */
function dickeyFuller(series: readonly number[]): { beta: number; tStat: number } {
  const x = series.slice(0, -1);
  const y = series.slice(1).map((value, i) => value - (series[i] as number));
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  x.forEach((value, i) => {
    sxy += (value - mx) * ((y[i] as number) - my);
    sxx += (value - mx) ** 2;
  });
  const beta = sxy / sxx;
  const alpha = my - beta * mx;
  const residualSquares = x.reduce((sum, value, i) => sum + ((y[i] as number) - alpha - beta * value) ** 2, 0);
  const standardError = Math.sqrt(residualSquares / (x.length - 2) / sxx);
  return { beta, tStat: beta / standardError };
}

const pairOptions: SyntheticFeedOptions = {
  symbols: ['AAA', 'BBB'],
  barCount: 5000,
  correlation: [
    [1, 0.8],
    [0.8, 1],
  ],
  pairs: [{ leader: 'AAA', follower: 'AAB', hedgeRatio: 1.5, spreadMean: 2, spreadHalfLifeBars: 10, spreadStdDev: 1 }],
};

describe('createSyntheticFeed', () => {
  const feed = createSyntheticFeed(pairOptions);
  const market = feed.generate(Rng.seeded(2024));

  it('gives identical bars for the same seed and different bars for another', () => {
    const again = feed.generate(Rng.seeded(2024));
    expect(again.symbols).toEqual(['AAA', 'BBB', 'AAB', 'VIX']);
    for (const symbol of market.symbols) expect(barsOf(again, symbol)).toEqual(barsOf(market, symbol));
    expect(again.regimes).toEqual(market.regimes);
    expect(barsOf(feed.generate(Rng.seeded(2025)), 'AAA')[10]).not.toEqual(barsOf(market, 'AAA')[10]);
  });

  it('does not advance the Rng it is given', () => {
    const rng = Rng.seeded(5);
    const before = rng.state();
    createSyntheticFeed({ barCount: 10 }).generate(rng);
    expect(rng.state()).toEqual(before);
  });

  it('makes valid, frozen, evenly spaced bars whose opens continue the previous closes', () => {
    for (const symbol of market.symbols) {
      const bars = barsOf(market, symbol);
      expect(bars).toHaveLength(5000);
      expect(bars.flatMap((bar) => validateBar(bar).map((problem) => `${symbol}@${bar.timeMs}: ${problem.message}`))).toEqual([]);
      expect(Object.isFrozen(bars[0])).toBe(true);
      expect(bars[0]?.timeMs).toBe(Date.UTC(2020, 0, 1));
      bars.forEach((bar, i) => {
        expect(bar.symbol).toBe(symbol);
        if (i === 0) return;
        const previous = bars[i - 1] as Bar;
        expect(bar.timeMs - previous.timeMs).toBe(86_400_000);
        expect(bar.open).toBe(previous.close);
      });
    }
    expect(barsOf(market, 'AAA')[0]?.open).toBe(100);
  });

  it('correlates returns as requested (0.8 +/- 0.05 over 5,000 bars)', () => {
    const realised = correlation(logReturns(barsOf(market, 'AAA')), logReturns(barsOf(market, 'BBB')));
    expect(Math.abs(realised - 0.8)).toBeLessThan(0.05);
    const independent = createSyntheticFeed({ barCount: 5000 }).generate(Rng.seeded(1));
    expect(Math.abs(correlation(logReturns(barsOf(independent, 'AAA')), logReturns(barsOf(independent, 'BBB'))))).toBeLessThan(0.05);
  });

  it('keeps the pair co-integrated: its spread mean-reverts at the requested half-life', () => {
    const leader = barsOf(market, 'AAA');
    const follower = barsOf(market, 'AAB');
    const spread = follower.map((bar, i) => bar.close - 1.5 * (leader[i] as Bar).close);
    const x = spread.slice(0, -1);
    const lag1 = correlation(x, spread.slice(1));
    expect(lag1).toBeLessThan(0.99);
    // Half-life 10 bars: the expected lag-1 autocorrelation is 2^(-1/10) = 0.933.
    expect(Math.abs(lag1 - 0.933)).toBeLessThan(0.02);
    const { beta, tStat } = dickeyFuller(spread);
    expect(tStat).toBeLessThan(-3.43);
    const halfLifeBars = -Math.log(2) / Math.log(1 + beta);
    expect(halfLifeBars).toBeGreaterThan(8);
    expect(halfLifeBars).toBeLessThan(12.5);
    expect(Math.abs(mean(spread) - 2)).toBeLessThan(0.15);
    expect(Math.abs(stdDev(spread) - 1)).toBeLessThan(0.1);
    // The leader itself is not mean-reverting: the same test does not reject a unit root.
    expect(dickeyFuller(leader.map((bar) => Math.log(bar.close))).tStat).toBeGreaterThan(-3.43);
  });

  it('switches volatility regimes measurably, and the volatility index follows', () => {
    const returns = logReturns(barsOf(market, 'AAA'));
    const calm = returns.filter((_, i) => market.regimes[i + 1] === 'calm');
    const stressed = returns.filter((_, i) => market.regimes[i + 1] === 'stressed');
    expect(calm.length).toBeGreaterThan(500);
    expect(stressed.length).toBeGreaterThan(200);
    // Requested 0.45 vs 0.15 a year: a ratio of 3.
    const ratio = stdDev(stressed) / stdDev(calm);
    expect(ratio).toBeGreaterThan(2.5);
    expect(ratio).toBeLessThan(3.5);
    expect(stdDev(calm) * Math.sqrt(252)).toBeCloseTo(0.15, 1);

    const vix = barsOf(market, 'VIX');
    // Starts at the calm level of the equal-weighted index: 100 * 0.15 * sqrt((1 + 0.8) / 2).
    expect(vix[0]?.open).toBeCloseTo(100 * 0.15 * Math.sqrt(0.9), 6);
    const vixIn = (regime: string): number => mean(vix.filter((_, i) => market.regimes[i] === regime && market.regimes[i - 20] === regime).map((bar) => bar.close));
    expect(vixIn('stressed') / vixIn('calm')).toBeGreaterThan(2);
    expect(vix.every((bar) => bar.volume === 0)).toBe(true);
  });

  it('trades more volume in stressed bars', () => {
    const bars = barsOf(market, 'BBB');
    const volumeIn = (regime: string): number => mean(bars.filter((_, i) => market.regimes[i] === regime).map((bar) => bar.volume));
    expect(volumeIn('stressed') / volumeIn('calm')).toBeGreaterThan(2.5);
    expect(Math.abs(volumeIn('calm') / 1_000_000 - 1)).toBeLessThan(0.05);
  });

  it('compiles complete, frozen defaults', () => {
    const config = createSyntheticFeed().config;
    expect(config).toMatchObject({
      symbols: ['AAA', 'BBB'],
      barCount: 1000,
      barIntervalMs: 86_400_000,
      barsPerYear: 252,
      subStepsPerBar: 8,
      initialPrice: 100,
      priceHalfLifeYears: null,
      calmVolatilityPerYear: 0.15,
      stressedVolatilityPerYear: 0.45,
      volatilityIndex: { symbol: 'VIX', windowBars: 20 },
      pairs: [],
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(createSyntheticFeed({ volatilityIndex: null, barCount: 3 }).generate(Rng.seeded(1)).symbols).toEqual(['AAA', 'BBB']);
  });

  it.each<[string, SyntheticFeedOptions, string]>([
    ['no symbols', { symbols: [] }, 'symbols: must list at least one symbol'],
    ['duplicate symbol', { symbols: ['A', 'A'] }, 'symbols[1]: "A" is used twice; every generated symbol needs its own name'],
    ['fractional bar count', { barCount: 1.5 }, 'barCount: must be an integer, got 1.5'],
    ['zero bars', { barCount: 0 }, 'barCount: must be >= 1, got 0'],
    ['negative volatility', { stressedVolatilityPerYear: -0.1 }, 'stressedVolatilityPerYear: must be >= 0, got -0.1'],
    ['probability above 1', { calmToStressedProbabilityPerBar: 1.5 }, 'calmToStressedProbabilityPerBar: must be a probability in [0, 1], got 1.5'],
    ['NaN price', { initialPrice: Number.NaN }, 'initialPrice: must be a finite number, got NaN'],
    ['wrong matrix size', { correlation: [[1]] }, 'correlation: must have one row per symbol (2), got 1 rows'],
    [
      'asymmetric matrix',
      {
        correlation: [
          [1, 0.5],
          [0.4, 1],
        ],
      },
      'correlation[0][1]: must equal correlation[1][0] (0.4), got 0.5; the matrix must be symmetric',
    ],
    [
      'bad diagonal',
      {
        correlation: [
          [0.9, 0],
          [0, 1],
        ],
      },
      'correlation[0][0]: must be 1 (the diagonal of a correlation matrix), got 0.9',
    ],
    [
      'impossible correlations',
      {
        symbols: ['A', 'B', 'C'],
        correlation: [
          [1, 0.9, -0.9],
          [0.9, 1, 0.9],
          [-0.9, 0.9, 1],
        ],
      },
      'correlation: is not positive semi-definite (fails at row 2); no set of returns can have these correlations',
    ],
    ['unknown leader', { pairs: [{ leader: 'ZZZ', follower: 'F' }] }, 'pairs[0].leader: "ZZZ" is not one of symbols (AAA, BBB)'],
    ['follower clash', { pairs: [{ leader: 'AAA', follower: 'BBB' }] }, 'pairs[0].follower: "BBB" is used twice; every generated symbol needs its own name'],
    ['zero half-life', { pairs: [{ leader: 'AAA', follower: 'F', spreadHalfLifeBars: 0 }] }, 'pairs[0].spreadHalfLifeBars: must be > 0, got 0'],
    ['index clash', { volatilityIndex: { symbol: 'AAA' } }, 'volatilityIndex.symbol: "AAA" is used twice; every generated symbol needs its own name'],
  ])('rejects %s, naming the field', (_name, options, message) => {
    expect(() => createSyntheticFeed(options)).toThrow(InvalidInputError);
    expect(() => createSyntheticFeed(options)).toThrow(message);
  });

  it('accepts perfectly correlated symbols (a semi-definite matrix)', () => {
    const twins = createSyntheticFeed({
      barCount: 50,
      correlation: [
        [1, 1],
        [1, 1],
      ],
    }).generate(Rng.seeded(3));
    expect(barsOf(twins, 'AAA').map((bar) => bar.close)).toEqual(barsOf(twins, 'BBB').map((bar) => bar.close));
  });
});

describe('createSyntheticFeed with venues (one asset quoted on several venues)', () => {
  const options: SyntheticFeedOptions = {
    symbols: ['AAA', 'BBB'],
    barCount: 5000,
    venues: { names: ['alpha', 'beta'], symbols: ['AAA'], noiseStdDevBps: 20, noiseHalfLifeBars: 2 },
  };
  const market = createSyntheticFeed(options).generate(Rng.seeded(99));
  const reference = barsOf(market, 'AAA');
  const deviation = (symbol: string): number[] => barsOf(market, symbol).map((bar, i) => Math.log(bar.close / (reference[i] as Bar).close));

  it('generates SYMBOL@venue after the other symbols, leaving the other symbols bar for bar unchanged', () => {
    expect(market.symbols).toEqual(['AAA', 'BBB', 'AAA@alpha', 'AAA@beta', 'VIX']);
    const without = createSyntheticFeed({ ...options, venues: null }).generate(Rng.seeded(99));
    for (const symbol of ['AAA', 'BBB', 'VIX']) expect(barsOf(market, symbol)).toEqual(barsOf(without, symbol));
    const again = createSyntheticFeed(options).generate(Rng.seeded(99));
    expect(barsOf(again, 'AAA@beta')).toEqual(barsOf(market, 'AAA@beta'));
  });

  it('makes valid bars whose opens continue the previous closes', () => {
    for (const symbol of ['AAA@alpha', 'AAA@beta']) {
      const bars = barsOf(market, symbol);
      expect(bars.flatMap((bar) => validateBar(bar).map((problem) => problem.message))).toEqual([]);
      bars.slice(1).forEach((bar, i) => expect(bar.open).toBe((bars[i] as Bar).close));
      expect(bars[0]?.timeMs).toBe(reference[0]?.timeMs);
    }
  });

  it('keeps each venue within its noise of the reference, mean-reverting at the half-life', () => {
    for (const symbol of ['AAA@alpha', 'AAA@beta']) {
      const logGap = deviation(symbol);
      // Requested 20 bps stationary standard deviation around 0.
      expect(Math.abs(stdDev(logGap) * 10_000 - 20)).toBeLessThan(2);
      expect(Math.abs(mean(logGap) * 10_000)).toBeLessThan(2);
      // Half-life 2 bars: lag-1 autocorrelation 2^(-1/2) = 0.707.
      expect(Math.abs(correlation(logGap.slice(0, -1), logGap.slice(1)) - Math.SQRT1_2)).toBeLessThan(0.03);
    }
    // The two venues' noises are independent: their gap has sqrt(2) × 20 bps of spread.
    const alpha = deviation('AAA@alpha');
    const beta = deviation('AAA@beta');
    // ~850 effective samples (autocorrelated): 0.12 is about 3.5 standard errors.
    expect(Math.abs(correlation(alpha, beta))).toBeLessThan(0.12);
    expect(Math.abs(stdDev(alpha.map((value, i) => value - (beta[i] as number))) * 10_000 - 20 * Math.SQRT2)).toBeLessThan(3);
  });

  it('quotes every symbol by default', () => {
    const all = createSyntheticFeed({ barCount: 3, venues: { names: ['x'] }, volatilityIndex: null }).generate(Rng.seeded(1));
    expect(all.symbols).toEqual(['AAA', 'BBB', 'AAA@x', 'BBB@x']);
  });

  it.each<[string, SyntheticFeedOptions['venues'], string]>([
    ['no venues', { names: [] }, 'venues.names: must list at least one venue name'],
    ['an @ in a name', { names: ['a@b'] }, "venues.names[0]: must be a non-empty name without '@', got \"a@b\""],
    ['a venue twice', { names: ['x', 'x'] }, 'venues.names[1]: "x" is listed twice'],
    ['an unknown symbol', { names: ['x'], symbols: ['ZZZ'] }, 'venues.symbols[0]: "ZZZ" is not one of symbols (AAA, BBB)'],
    ['negative noise', { names: ['x'], noiseStdDevBps: -1 }, 'venues.noiseStdDevBps: must be >= 0, got -1'],
    ['zero half-life', { names: ['x'], noiseHalfLifeBars: 0 }, 'venues.noiseHalfLifeBars: must be > 0, got 0'],
  ])('rejects %s, naming the field', (_name, venues, message) => {
    expect(() => createSyntheticFeed({ venues })).toThrow(message);
  });

  it('rejects a venue symbol that clashes with another symbol', () => {
    expect(() => createSyntheticFeed({ symbols: ['AAA', 'AAA@x'], venues: { names: ['x'], symbols: ['AAA'] } })).toThrow(
      'venues: "AAA@x" is used twice; every generated symbol needs its own name',
    );
  });
});
