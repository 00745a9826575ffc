import { InvalidInputError } from '../core/index.js';
import type { Bar } from './bars.js';
import { listsBySymbol } from './timeline.js';

const DAY_MS = 86_400_000;

/** Options of {@link findGaps}. */
export interface GapOptions {
  /**
   * A hole counts as a gap when it is longer than this many usual intervals (the median time between
   * a symbol's consecutive bars). More than 1.
   * @default 10
   */
  threshold?: number;
  /**
   * …and longer than this many days, so that nights, weekends and holidays are never gaps: a long
   * weekend (Friday's close to Tuesday's open) is under 4 days. 0 for markets that never close.
   * @default 4
   */
  minimumDays?: number;
}

/** The options of {@link findGaps}, complete. */
export interface GapConfig {
  readonly threshold: number;
  readonly minimumDays: number;
}

/** A hole in one symbol's bars. */
export interface DataGap {
  readonly symbol: string;
  /** Time of the last bar before the hole. */
  readonly lastBeforeMs: number;
  /** Time of the first bar after it. */
  readonly firstAfterMs: number;
  /** `firstAfterMs - lastBeforeMs`. */
  readonly durationMs: number;
  /** The symbol's usual interval: the median time between its consecutive bars. */
  readonly usualIntervalMs: number;
}

/**
 * Checks gap options and fills in the defaults.
 * @throws InvalidInputError naming the field (`threshold`, `minimumDays`).
 */
export function compileGapOptions(options: GapOptions = {}): GapConfig {
  const threshold = options.threshold ?? 10;
  const minimumDays = options.minimumDays ?? 4;
  if (!Number.isFinite(threshold) || threshold <= 1) throw new InvalidInputError('threshold', `must be a number of usual intervals > 1, got ${threshold}`);
  if (!Number.isFinite(minimumDays) || minimumDays < 0) throw new InvalidInputError('minimumDays', `must be a number of days >= 0, got ${minimumDays}`);
  return Object.freeze({ threshold, minimumDays });
}

/**
 * The holes in each symbol's bars: times between two consecutive bars of a symbol longer than both
 * `threshold` times its usual interval (the median of its intervals) and `minimumDays` days. A symbol
 * that starts later or ends sooner than others has no gap for it; a symbol with fewer than 3 bars has
 * no usual interval, hence no gaps.
 * @param bars each symbol's bars in ascending time (as a run holds them)
 * @returns the gaps by time of the bar before them, then by symbol
 * @throws InvalidInputError for invalid options.
 */
export function findGaps(bars: ReadonlyMap<string, readonly Bar[]> | readonly Bar[], options: GapOptions = {}): DataGap[] {
  const { threshold, minimumDays } = compileGapOptions(options);
  const gaps: DataGap[] = [];
  for (const [symbol, list] of listsBySymbol(bars)) {
    if (list.length < 3) continue;
    const usualIntervalMs = medianInterval(list);
    const longerThan = Math.max(threshold * usualIntervalMs, minimumDays * DAY_MS);
    for (let i = 1; i < list.length; i++) {
      const lastBeforeMs = (list[i - 1] as Bar).timeMs;
      const durationMs = (list[i] as Bar).timeMs - lastBeforeMs;
      if (durationMs <= longerThan) continue;
      gaps.push(Object.freeze({ symbol, lastBeforeMs, firstAfterMs: lastBeforeMs + durationMs, durationMs, usualIntervalMs }));
    }
  }
  return gaps.sort((a, b) => a.lastBeforeMs - b.lastBeforeMs || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
}

/** Distinct intervals {@link medianInterval} counts before it selects from a copy of them all instead. */
const MAX_COUNTED_INTERVALS = 1024;

/**
 * The median of the times between consecutive bars of `list` (at least 2 bars). Bars come at a few
 * distinct intervals (a minute, a day, a weekend), so they are counted by value and the median read
 * from the counts; a million-bar run then needs no array of a million intervals (its 8 MB of fresh
 * memory, twice with the copy selection reorders, took longer than the counting). With more
 * distinct intervals than {@link MAX_COUNTED_INTERVALS}, the median is selected from all of them.
 */
function medianInterval(list: readonly Bar[]): number {
  const counts = new Map<number, number>();
  // Runs of equal intervals (a day's minutes, a week's days) are counted apart and added to the map
  // when the run ends: one map update per run instead of one per bar.
  let run = Number.NaN;
  let runLength = 0;
  for (let i = 1; i <= list.length; i++) {
    const interval = i < list.length ? (list[i] as Bar).timeMs - (list[i - 1] as Bar).timeMs : Number.NaN;
    if (interval === run) {
      runLength++;
      continue;
    }
    if (runLength > 0) {
      const count = counts.get(run);
      if (count !== undefined) counts.set(run, count + runLength);
      else if (counts.size < MAX_COUNTED_INTERVALS) counts.set(run, runLength);
      else return median(intervalsOf(list));
    }
    run = interval;
    runLength = 1;
  }
  const intervals = [...counts.keys()].sort((a, b) => a - b);
  const middle = (list.length - 1) >> 1;
  const upper = nthSmallest(intervals, counts, middle);
  return (list.length - 1) % 2 === 1 ? upper : (nthSmallest(intervals, counts, middle - 1) + upper) / 2;
}

/** The n-th smallest (0-based) of the values counted in `counts`, whose keys `sorted` lists in ascending order. */
function nthSmallest(sorted: readonly number[], counts: ReadonlyMap<number, number>, n: number): number {
  let seen = 0;
  for (const value of sorted) {
    seen += counts.get(value) as number;
    if (seen > n) return value;
  }
  throw new RangeError(`no value ${n} among ${seen}`);
}

/** The times between consecutive bars of `list`. */
function intervalsOf(list: readonly Bar[]): Float64Array {
  const intervals = new Float64Array(list.length - 1);
  for (let i = 1; i < list.length; i++) intervals[i - 1] = (list[i] as Bar).timeMs - (list[i - 1] as Bar).timeMs;
  return intervals;
}

/** A gap in words: `SPY has no bars from 2013-10-11T23:59Z to 2023-08-03T08:00Z (3583.3 days; usually 1 min apart)`. */
export function describeGap(gap: DataGap): string {
  return `${gap.symbol} has no bars from ${isoMinute(gap.lastBeforeMs)} to ${isoMinute(gap.firstAfterMs)} (${duration(gap.durationMs)}; usually ${duration(gap.usualIntervalMs)} apart)`;
}

/** The median of `values` (reordered in place). */
function median(values: Float64Array): number {
  const middle = values.length >> 1;
  const upper = select(values, middle);
  if (values.length % 2 === 1) return upper;
  // After the selection every value below `middle` is at most `upper`: the lower middle is their largest.
  let lower = -Infinity;
  for (let i = 0; i < middle; i++) if ((values[i] as number) > lower) lower = values[i] as number;
  return (lower + upper) / 2;
}

/**
 * The k-th smallest of `values`, leaving smaller ones before index k and larger after (Hoare's
 * selection, expected linear time). Written here because a run checks every bar's interval before its
 * first step: sorting a million intervals took 160–290 ms, a fifth of a million-bar backtest, and no
 * dependency of the project selects.
 */
function select(values: Float64Array, k: number): number {
  let left = 0;
  let right = values.length - 1;
  while (right > left) {
    const pivot = values[(left + right) >> 1] as number;
    let i = left;
    let j = right;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const swap = values[i] as number;
        values[i] = values[j] as number;
        values[j] = swap;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return values[k] as number;
}

/** `2013-10-11T23:59Z`: minutes are enough to find the bars, and shorter to read. */
function isoMinute(timeMs: number): string {
  const text = new Date(timeMs).toISOString();
  return text.endsWith('T00:00:00.000Z') ? text.slice(0, 10) : `${text.slice(0, 16)}Z`;
}

function duration(ms: number): string {
  if (ms >= DAY_MS) return `${round(ms / DAY_MS)} day${round(ms / DAY_MS) === '1' ? '' : 's'}`;
  if (ms >= 3_600_000) return `${round(ms / 3_600_000)} h`;
  if (ms >= 60_000) return `${round(ms / 60_000)} min`;
  return `${round(ms / 1000)} s`;
}

function round(value: number): string {
  return String(Math.round(value * 10) / 10);
}
