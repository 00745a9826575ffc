import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { type Bar, FeedPositionError, type FeedStep, groupByTime, loadCsvBars, openArrayFeed, openCsvFeed } from './index.js';
import { runFeedContract } from './feed.testkit.js';

const dataUrl = new URL('../../../shared/data/', import.meta.url);
const dataDir = fileURLToPath(dataUrl);
const haveData = existsSync(dataDir);
const inCi = process.env.CI === 'true';
if (!haveData && !inCi) console.warn(`replay.test.ts: skipping the CSV feed tests: ${dataDir} is absent`);

const MINUTE = 60_000;
const DAY = 86_400_000;
/** Monday 2024-01-01, 00:00 UTC. */
const MONDAY = Date.UTC(2024, 0, 1);

function bar(symbol: string, timeMs: number, close: number): Bar {
  return { symbol, timeMs, open: close, high: close + 1, low: close - 1, close, volume: 10 };
}

/** Three symbols over seven times: BBB starts late, CCC trades every other time, so steps differ in size. */
function mixedBars(): Bar[] {
  const bars: Bar[] = [];
  for (let i = 0; i < 7; i++) {
    const timeMs = MONDAY + 9.5 * 3_600_000 + i * MINUTE;
    bars.push(bar('AAA', timeMs, 10 + i));
    if (i >= 2) bars.push(bar('BBB', timeMs, 20 + i));
    if (i % 2 === 0) bars.push(bar('CCC', timeMs, 30 + i));
  }
  return bars;
}

/** `symbol`'s close on weekdays for `weeks` weeks from MONDAY. */
function weekdays(symbol: string, weeks: number): Bar[] {
  const bars: Bar[] = [];
  for (let day = 0; day < weeks * 7; day++) if (day % 7 < 5) bars.push(bar(symbol, MONDAY + day * DAY, 100 + day));
  return bars;
}

function describeSteps(steps: readonly FeedStep[]): string[] {
  return steps.map((step) => `${new Date(step.timeMs).toISOString().slice(0, 16)} ${step.bars.map((one) => `${one.symbol}:${one.close}`).join(' ')}`);
}

runFeedContract({ name: 'array, once', makeFeed: (from) => openArrayFeed(mixedBars(), from === undefined ? {} : { from }) });
runFeedContract({ name: 'array, looping', makeFeed: (from) => openArrayFeed(mixedBars(), { loop: true, ...(from === undefined ? {} : { from }) }) });
runFeedContract({ name: 'array of daily bars, looping', makeFeed: (from) => openArrayFeed(weekdays('AAA', 3), { loop: true, ...(from === undefined ? {} : { from }) }), sampleSteps: 40 });

describe('openArrayFeed', () => {
  it('gives the steps groupByTime gives, symbols in alphabetical order', async () => {
    const bars = mixedBars().reverse().sort((a, b) => a.timeMs - b.timeMs);
    const feed = openArrayFeed(bars);
    const grouped = groupByTime(bars);
    expect(feed.symbols).toEqual(['AAA', 'BBB', 'CCC']);
    expect(feed.stepCount).toBe(7);
    const steps = await feed.read(100);
    expect(steps.map((step) => step.bars)).toEqual(grouped.steps);
    expect(describeSteps(steps).slice(0, 3)).toEqual(['2024-01-01T09:30 AAA:10 CCC:30', '2024-01-01T09:31 AAA:11', '2024-01-01T09:32 AAA:12 BBB:22 CCC:32']);
  });

  it('loops intraday data a shortest step after its last bar, with the same bars at later times', async () => {
    const feed = openArrayFeed(mixedBars(), { loop: true });
    const steps = await feed.read(15);
    expect(describeSteps(steps.slice(6, 9))).toEqual(['2024-01-01T09:36 AAA:16 BBB:26 CCC:36', '2024-01-01T09:37 AAA:10 CCC:30', '2024-01-01T09:38 AAA:11']);
    expect(steps[14]?.bars).toEqual(steps[0]?.bars.map((one) => ({ ...one, timeMs: one.timeMs + 2 * 7 * MINUTE })));
    expect(steps.map((step) => step.index)).toEqual([...Array(15).keys()]);
  });

  it('loops daily bars by whole weeks, so they stay on weekdays', async () => {
    const feed = openArrayFeed(weekdays('AAA', 3), { loop: true });
    const steps = await feed.read(45);
    // 15 weekdays a loop: loop 2 starts on the Monday after the last Friday.
    expect(describeSteps(steps.slice(14, 16))).toEqual(['2024-01-19T00:00 AAA:118', '2024-01-22T00:00 AAA:100']);
    expect(steps.every((step) => new Date(step.timeMs).getUTCDay() % 6 !== 0)).toBe(true);
    expect(new Date((steps[30] as FeedStep).timeMs).toISOString().slice(0, 10)).toBe('2024-02-12');
  });

  it('loops data spanning days by whole days, keeping the time of day', async () => {
    const bars = [0, 1, 2].flatMap((day) => [bar('AAA', MONDAY + day * DAY + 14 * 3_600_000, 1 + day), bar('AAA', MONDAY + day * DAY + 20 * 3_600_000, 2 + day)]);
    const steps = await openArrayFeed(bars, { loop: true }).read(8);
    expect(describeSteps(steps.slice(5, 8))).toEqual(['2024-01-03T20:00 AAA:4', '2024-01-04T14:00 AAA:1', '2024-01-04T20:00 AAA:2']);
  });

  it('refuses to loop a single time step, and bars out of order, naming the field', () => {
    expect(() => openArrayFeed([bar('AAA', 0, 1), bar('BBB', 0, 2)], { loop: true })).toThrow(/^loop: needs bars at two times/);
    expect(() => openArrayFeed([bar('AAA', 1, 1), bar('AAA', 0, 1)])).toThrow(expect.objectContaining({ field: 'bars.AAA[1].timeMs' }) as Error);
    expect(() => openArrayFeed([])).toThrow(InvalidInputError);
  });

  it('refuses a position saved on other data, saying what to do', async () => {
    const feed = openArrayFeed(mixedBars());
    await feed.read(3);
    const saved = feed.position();
    const other = mixedBars().map((one) => ({ ...one, timeMs: one.timeMs + 1000 }));
    expect(() => openArrayFeed(other, { from: saved })).toThrow(FeedPositionError);
    expect(() => openArrayFeed(other, { from: saved })).toThrow(
      'the saved position (step 3, after 2024-01-01T09:32:00.000Z (1704101520000 ms)) does not fit this feed: its step 2 is at 2024-01-01T09:32:01.000Z (1704101521000 ms). The data or the feed options changed since the position was saved; resume with those it was saved with, or from { afterTimeMs: 1704101520000 } to go on after that time in this data',
    );
    // From the time instead: the other data's step 2 (09:32:01) has not been seen.
    const after = openArrayFeed(other, { from: { afterTimeMs: saved.lastTimeMs ?? 0 } });
    expect(after.position()).toEqual({ step: 2, lastTimeMs: Date.UTC(2024, 0, 1, 9, 31, 1) });
  });
});

describe('real data folder', () => {
  // CI always has the shared data; a missing folder there is a broken checkout, not a reason to skip.
  it.runIf(!haveData && inCi)(`exists under CI (${dataDir})`, () => {
    throw new Error(`${dataDir} is absent but CI=true: the shared market data must be present in CI`);
  });
});

describe.skipIf(!haveData)(`openCsvFeed on ${dataDir} (skipped when that folder is absent)`, () => {
  const daily = (symbol: string): { path: URL; symbol: string } => ({ path: new URL(`daily/${symbol}.csv`, dataUrl), symbol });

  runFeedContract({
    name: 'CSV, once (KO, and V, which starts in 2008)',
    makeFeed: (from) => openCsvFeed({ files: [daily('V'), daily('KO')], ...(from === undefined ? {} : { from }) }),
  });
  runFeedContract({
    name: 'CSV, looping (KO, read past its first loop)',
    makeFeed: (from) => openCsvFeed({ files: [daily('KO')], loop: true, ...(from === undefined ? {} : { from }) }),
    sampleSteps: 5500,
  });

  it('replays AAPL as loadCsvBars reads it, then again from the Monday after its last bar', async () => {
    const bars = await loadCsvBars(new URL('daily/AAPL.csv', dataUrl), 'AAPL');
    const feed = await openCsvFeed({ files: [daily('AAPL')], loop: true });
    const steps = await feed.read(2 * bars.length);
    expect(steps.slice(0, bars.length).map((step) => step.bars[0])).toEqual(bars);
    const seam = steps.slice(bars.length - 1, bars.length + 1).map((step) => new Date(step.timeMs).toISOString().slice(0, 10));
    // 2021-04-21 is a Wednesday; the data starts on Monday 1999-11-01.
    expect(seam).toEqual(['2021-04-21', '2021-04-26']);
    const shiftMs = (steps[bars.length] as FeedStep).timeMs - (steps[0] as FeedStep).timeMs;
    expect(shiftMs % (7 * DAY)).toBe(0);
    expect(steps[2 * bars.length - 1]?.bars[0]).toEqual({ ...bars.at(-1), timeMs: (bars.at(-1) as Bar).timeMs + shiftMs });
    await feed.close();
  });

  it('refuses a symbol given twice and names a file it cannot read', async () => {
    await expect(openCsvFeed({ files: [daily('KO'), { ...daily('PEP'), symbol: 'KO' }] })).rejects.toThrow(/^files\[1\]\.symbol: "KO" is given twice/);
    await expect(openCsvFeed({ files: [] })).rejects.toThrow(/^files: must list at least one/);
    await expect(openCsvFeed({ files: [{ path: new URL('daily/NOPE.csv', dataUrl), symbol: 'NOPE' }] })).rejects.toThrow(/^NOPE\.csv: cannot read/);
  });
});
