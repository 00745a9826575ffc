import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/index.js';
import { type Bar, compileGapOptions, describeGap, findGaps, loadCsvBars } from './index.js';

const DAY = 86_400_000;
const MINUTE = 60_000;

/** Bars of `symbol` at the given times (prices do not matter to gaps). */
function barsAt(symbol: string, times: readonly number[]): Bar[] {
  return times.map((timeMs) => ({ symbol, timeMs, open: 1, high: 1, low: 1, close: 1, volume: 1 }));
}

/** Weekdays (Monday to Friday) from `start` (a Monday, UTC) for `weeks` weeks, skipping the dates in `skip`. */
function weekdays(start: number, weeks: number, skip: ReadonlySet<number> = new Set()): number[] {
  const times: number[] = [];
  for (let day = 0; day < weeks * 7; day++) {
    const time = start + day * DAY;
    if (day % 7 < 5 && !skip.has(time)) times.push(time);
  }
  return times;
}

/** Minute bars 04:00–19:59 (UTC here) on each of `days`. */
function sessions(days: readonly number[]): number[] {
  return days.flatMap((day) => Array.from({ length: 16 * 60 }, (_, minute) => day + 4 * 3_600_000 + minute * MINUTE));
}

const MONDAY = Date.UTC(2023, 0, 2);

describe('findGaps', () => {
  it('finds no gap in daily bars over weekends and a long weekend (Friday to Tuesday)', () => {
    const holidayMonday = MONDAY + 14 * DAY;
    expect(findGaps(barsAt('D', weekdays(MONDAY, 8, new Set([holidayMonday]))))).toEqual([]);
  });

  it('reports a 15-day hole in daily bars with its dates, and the usual interval of one day', () => {
    const times = weekdays(MONDAY, 8).filter((time) => time <= MONDAY + 18 * DAY || time >= MONDAY + 35 * DAY);
    const gaps = findGaps(barsAt('D', times));
    expect(gaps).toEqual([{ symbol: 'D', lastBeforeMs: MONDAY + 18 * DAY, firstAfterMs: MONDAY + 35 * DAY, durationMs: 17 * DAY, usualIntervalMs: DAY }]);
    expect(describeGap(gaps[0] as (typeof gaps)[0])).toBe('D has no bars from 2023-01-20 to 2023-02-06 (17 days; usually 1 day apart)');
  });

  it('finds no gap in minute bars over nights and weekends, and reports a week without bars', () => {
    const days = weekdays(MONDAY, 3).filter((time) => time < MONDAY + 7 * DAY || time >= MONDAY + 14 * DAY);
    const gaps = findGaps(barsAt('M', sessions(days)));
    expect(gaps.map(describeGap)).toEqual(['M has no bars from 2023-01-06T19:59Z to 2023-01-16T04:00Z (9.3 days; usually 1 min apart)']);
    expect(findGaps(barsAt('M', sessions(weekdays(MONDAY, 3))))).toEqual([]);
  });

  it('with minimumDays: 0, a market that never closes reports a few hours without bars', () => {
    const hours = Array.from({ length: 48 }, (_, hour) => MONDAY + hour * 3_600_000).filter((time) => time < MONDAY + 10 * 3_600_000 || time >= MONDAY + 22 * 3_600_000);
    expect(findGaps(barsAt('BTC', hours), { minimumDays: 0 }).map(describeGap)).toEqual(['BTC has no bars from 2023-01-02T09:00Z to 2023-01-02T22:00Z (13 h; usually 1 h apart)']);
    expect(findGaps(barsAt('BTC', hours), { minimumDays: 0, threshold: 14 })).toEqual([]);
    expect(findGaps(barsAt('BTC', hours))).toEqual([]);
  });

  it('judges each symbol by its own bars: one starting later has no gap, one with a hole has, in time order', () => {
    const all = weekdays(MONDAY, 10);
    const bars = new Map([
      ['LATE', barsAt('LATE', all.slice(20))],
      ['HOLE', barsAt('HOLE', all.filter((_, i) => i < 5 || i >= 20))],
      ['FULL', barsAt('FULL', all)],
    ]);
    expect(findGaps(bars).map((gap) => [gap.symbol, new Date(gap.lastBeforeMs).toISOString().slice(0, 10)])).toEqual([['HOLE', '2023-01-06']]);
  });

  it('takes the median interval exactly: odd and even counts, many equal values (seeded, against a sort)', () => {
    const rng = Rng.seeded(18);
    for (let round = 0; round < 200; round++) {
      // Random intervals of 1 to 6 minutes, then a year without bars: always a gap, reporting the median.
      const times = [0];
      for (let i = rng.int(2, 60); i > 0; i--) times.push((times.at(-1) as number) + rng.int(1, 6) * MINUTE);
      times.push((times.at(-1) as number) + 365 * DAY);
      const intervals = times.slice(1).map((time, i) => time - (times[i] as number)).sort((a, b) => a - b);
      const middle = intervals.length >> 1;
      const expected = intervals.length % 2 === 1 ? intervals[middle] : ((intervals[middle - 1] as number) + (intervals[middle] as number)) / 2;
      expect(findGaps(barsAt('R', times)).at(-1)?.usualIntervalMs, `round ${round}`).toBe(expected);
    }
  });

  it('takes the median exactly when the bars come at thousands of distinct intervals (seeded, against a sort)', () => {
    const rng = Rng.seeded(19);
    for (let round = 0; round < 6; round++) {
      // Intervals of 1 to 100,000 ms: far more distinct values than findGaps counts, then a year without bars.
      const times = [0];
      for (let i = rng.int(3000, 3001); i > 0; i--) times.push((times.at(-1) as number) + rng.int(1, 100_000));
      times.push((times.at(-1) as number) + 365 * DAY);
      const intervals = times.slice(1).map((time, i) => time - (times[i] as number)).sort((a, b) => a - b);
      const middle = intervals.length >> 1;
      const expected = intervals.length % 2 === 1 ? intervals[middle] : ((intervals[middle - 1] as number) + (intervals[middle] as number)) / 2;
      expect(findGaps(barsAt('R', times)).at(-1)?.usualIntervalMs, `round ${round}`).toBe(expected);
    }
  });

  it.each([
    [{ threshold: 1 }, 'threshold: must be a number of usual intervals > 1, got 1'],
    [{ minimumDays: -1 }, 'minimumDays: must be a number of days >= 0, got -1'],
    [{ threshold: Number.NaN }, 'threshold: must be a number of usual intervals > 1, got NaN'],
  ])('refuses %j', (options, message) => {
    expect(() => compileGapOptions(options)).toThrow(message);
  });
});

const dataDir = fileURLToPath(new URL('../../../shared/data/', import.meta.url));

describe.skipIf(!existsSync(dataDir))(`findGaps on ${dataDir} (skipped when that folder is absent)`, () => {
  it('finds the one hole of the SPY minute data: from 2013-10-11 to 2023-08-03', async () => {
    const gaps = findGaps(await loadCsvBars(`${dataDir}minute/SPY_minute.csv`, 'SPY'));
    expect(gaps.map(describeGap)).toEqual(['SPY has no bars from 2013-10-11T23:59Z to 2023-08-03T08:00Z (3582.3 days; usually 1 min apart)']);
  });

  it('finds none in the daily files (weekends, holidays, and the four days the market closed after 2001-09-11, included)', async () => {
    const files = (await readdir(`${dataDir}daily`)).filter((name) => name.endsWith('.csv'));
    const found: string[] = [];
    for (const file of files) found.push(...findGaps(await loadCsvBars(`${dataDir}daily/${file}`, file)).map(describeGap));
    expect(files.length).toBeGreaterThanOrEqual(18);
    expect(found).toEqual([]);
  });
});
