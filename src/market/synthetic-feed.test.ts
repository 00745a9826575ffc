import { describe, expect, it } from 'vitest';
import { InvalidInputError, Rng } from '../core/index.js';
import { type Bar, type FeedStep, type OpenSyntheticFeedOptions, createSyntheticFeed, groupByTime, openSyntheticFeed, validateBar } from './index.js';
import { runFeedContract } from './feed.testkit.js';

/** A market with everything the generator makes: a pair follower, venue symbols and the volatility index. */
const market: Omit<OpenSyntheticFeedOptions, 'seed'> = {
  symbols: ['BBB', 'AAA'],
  pairs: [{ leader: 'AAA', follower: 'AAB', hedgeRatio: 1.5, spreadMean: 2 }],
  venues: { names: ['beta', 'alpha'], symbols: ['AAA'] },
};

runFeedContract({ name: 'synthetic, 120 bars', makeFeed: (from) => openSyntheticFeed({ ...market, seed: 7, barCount: 120, ...(from === undefined ? {} : { from }) }) });
runFeedContract({ name: 'synthetic, endless', makeFeed: (from) => openSyntheticFeed({ ...market, seed: 7, endless: true, ...(from === undefined ? {} : { from }) }) });

async function readSteps(options: OpenSyntheticFeedOptions, count: number): Promise<FeedStep[]> {
  const feed = openSyntheticFeed(options);
  const steps = await feed.read(count);
  await feed.close();
  return [...steps];
}

describe('openSyntheticFeed', () => {
  it('gives the steps of the market a backtest generates from the same seed', async () => {
    const whole = createSyntheticFeed({ ...market, barCount: 300 }).generate(Rng.seeded(2024));
    const grouped = groupByTime(whole.bars);
    const feed = openSyntheticFeed({ ...market, seed: 2024, barCount: 300 });
    expect(feed.symbols).toEqual(['AAA', 'AAA@alpha', 'AAA@beta', 'AAB', 'BBB', 'VIX']);
    expect(feed.symbols).toEqual(grouped.symbols);
    expect(feed.stepCount).toBe(300);
    const steps = await feed.read(1000);
    expect(steps.map((step) => step.bars)).toEqual(grouped.steps);
    expect(steps.every((step) => step.bars.every((one) => validateBar(one).length === 0))).toBe(true);
  });

  it('leaves the volatility index out on request, the other bars unchanged', async () => {
    const withIndex = await readSteps({ ...market, seed: 3, barCount: 50 }, 50);
    const without = await readSteps({ ...market, seed: 3, barCount: 50, volatilityIndex: null }, 50);
    expect(without.map((step) => step.bars)).toEqual(withIndex.map((step) => step.bars.filter((one) => one.symbol !== 'VIX')));
  });

  it('makes an endless market that begins as the finite one with the same pull', async () => {
    const endless = await readSteps({ ...market, seed: 11, endless: true }, 400);
    const finite = await readSteps({ ...market, seed: 11, barCount: 400, priceHalfLifeYears: 10 }, 400);
    expect(endless).toEqual(finite);
    const other = await readSteps({ ...market, seed: 12, endless: true }, 400);
    expect(other[100]?.bars).not.toEqual(endless[100]?.bars);
  });

  it('keeps an endless market realistic for centuries, where pure GBM runs away', async () => {
    const closesOf = (steps: readonly FeedStep[]): number[] => steps.map((step) => (step.bars[0] as Bar).close);
    // 100,000 daily bars: about 400 years.
    const options = { symbols: ['AAA'], volatilityIndex: null, seed: 5 } as const;
    const pulled = closesOf(await readSteps({ ...options, endless: true }, 100_000));
    // From 100: 27.9 at the lowest, 643 at the highest.
    expect(Math.min(...pulled)).toBeGreaterThan(10);
    expect(Math.max(...pulled)).toBeLessThan(1_000);
    // The same draws without the pull: the drift compounds (26,013 at the highest).
    const free = closesOf(await readSteps({ ...options, barCount: 100_000 }, 100_000));
    expect(Math.max(...free)).toBeGreaterThan(10_000);
  });

  it('refuses options that make no sense for an endless feed, naming the field', () => {
    expect(() => openSyntheticFeed({ seed: 1, endless: true, barCount: 10 })).toThrow(/^barCount: has no meaning for an endless feed/);
    expect(() => openSyntheticFeed({ seed: 1, endless: true, priceHalfLifeYears: null })).toThrow(/^priceHalfLifeYears: over an endless feed, .* factor of e\^Infinity/);
    expect(() => openSyntheticFeed({ seed: 1, endless: true, priceHalfLifeYears: 1e9 })).toThrow(/^priceHalfLifeYears: over an endless feed/);
    expect(() => openSyntheticFeed({ seed: 1, priceHalfLifeYears: 0 })).toThrow(/^priceHalfLifeYears: must be > 0/);
    expect(() => openSyntheticFeed({ seed: 1.5 })).toThrow(InvalidInputError);
    // A flat market needs no pull, even for ever.
    expect(openSyntheticFeed({ seed: 1, endless: true, priceHalfLifeYears: null, driftPerYear: 0, calmVolatilityPerYear: 0, stressedVolatilityPerYear: 0 }).stepCount).toBeNull();
  });

  it('streams a finite market longer than one generate() may hold', () => {
    const options = { symbols: ['AAA'], barCount: 6_000_000, barsPerYear: 252 * 390, barIntervalMs: 60_000 };
    expect(() => createSyntheticFeed(options)).toThrow(/^barCount: must be <= 2500000/);
    expect(openSyntheticFeed({ ...options, seed: 1 }).stepCount).toBe(6_000_000);
  });

  it('ends an endless feed where time ends for a Date', async () => {
    const feed = openSyntheticFeed({ seed: 1, endless: true, symbols: ['AAA'], volatilityIndex: null, startTimeMs: 8_640_000_000_000_000 - 2 * 86_400_000 });
    expect((await feed.read(10)).map((step) => step.index)).toEqual([0, 1, 2]);
    expect(await feed.read()).toEqual([]);
  });
});
