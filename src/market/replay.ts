import { InvalidInputError } from '../core/index.js';
import { type Bar, MAX_DATE_MS, freezeBar } from './bars.js';
import { type CsvColumns, type CsvPrices, loadCsvBars } from './csv.js';
import { type Feed, type FeedStart, type StepSource, openSourceFeed } from './feed.js';
import { Timeline } from './timeline.js';

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** Options of {@link openArrayFeed}. */
export interface ArrayFeedOptions {
  /**
   * After the last step, replay the data again, and again, for ever (until the year 275760, the
   * last time a `Date` holds). Each loop is the data moved later in time, past the previous loop,
   * by a whole number of weeks when the data spans a week or more, of days when it spans a day or
   * more (so daily bars stay on their weekdays and intraday bars at their time of day, UTC), and
   * otherwise by its span plus its shortest step. Prices and volumes are replayed as recorded: at
   * the seam a symbol jumps from its last close to its first open, as after a long halt.
   * @default false
   */
  loop?: boolean;
  /** Where to start: a saved position, a step, or after a time. @default the first step */
  from?: FeedStart;
}

/**
 * A feed replaying bars held in memory: steps are the bars grouped by time, as {@link groupByTime}
 * groups them. For tests, and for data already loaded (a spec's CSV files, filtered by date).
 * @param bars bars by symbol, or one list (any symbols); each symbol's bars in strictly ascending time.
 * @throws InvalidInputError naming the field for an empty input, a bar under the wrong symbol, bars
 *   out of time order, a loop over data with a single time step, or a `from` that does not fit.
 * @throws FeedPositionError when `options.from` is a saved position that does not fit these bars.
 */
export function openArrayFeed(bars: ReadonlyMap<string, readonly Bar[]> | readonly Bar[], options: ArrayFeedOptions = {}): Feed {
  return openSourceFeed(new ReplaySource(new Timeline(bars), options.loop ?? false), options.from);
}

/** One CSV file of a {@link openCsvFeed} and the symbol of its bars. */
export interface CsvFeedFile {
  readonly path: string | URL;
  readonly symbol: string;
}

/** Options of {@link openCsvFeed}. */
export interface CsvFeedOptions extends ArrayFeedOptions {
  /** One file per symbol, read by {@link loadCsvBars}. */
  files: readonly CsvFeedFile[];
  /** Time zone of zone-less datetimes, as {@link loadCsvBars} takes it. @default 'America/New_York' */
  timeZone?: string;
  /** Header names of the files' columns, as {@link loadCsvBars} takes them. @default found by their usual names */
  columns?: CsvColumns;
  /** The prices the files' bars carry, as {@link loadCsvBars} takes them. @default 'as-written' */
  prices?: CsvPrices;
}

/**
 * A feed replaying CSV files of bars (the format of `../shared/data`), once or looping: each file is
 * loaded and checked whole by {@link loadCsvBars}, then replayed as {@link openArrayFeed} does.
 * @throws InvalidInputError for a file that cannot be read or is not a CSV of bars (naming the
 *   file, line and column), a symbol given twice, or what {@link openArrayFeed} refuses.
 * @throws FeedPositionError when `options.from` is a saved position that does not fit the files.
 */
export async function openCsvFeed(options: CsvFeedOptions): Promise<Feed> {
  const files: unknown = options.files;
  if (!Array.isArray(files) || files.length === 0) throw new InvalidInputError('files', 'must list at least one { path, symbol }');
  const bars = new Map<string, readonly Bar[]>();
  for (const [i, file] of (files as CsvFeedFile[]).entries()) {
    if (bars.has(file.symbol)) throw new InvalidInputError(`files[${i}].symbol`, `${JSON.stringify(file.symbol)} is given twice; each file needs a symbol of its own`);
    const { timeZone, columns, prices } = options;
    bars.set(file.symbol, await loadCsvBars(file.path, file.symbol, { ...(timeZone === undefined ? {} : { timeZone }), ...(columns === undefined ? {} : { columns }), ...(prices === undefined ? {} : { prices }) }));
  }
  return openArrayFeed(bars, options);
}

/** The steps of a {@link Timeline}, once or looping, as a {@link StepSource}. */
class ReplaySource implements StepSource {
  readonly symbols: readonly string[];
  readonly stepCount: number | null;
  readonly #timeline: Timeline;
  readonly #loop: boolean;
  readonly #stepsPerLoop: number;
  /** How much later each loop is than the one before, in ms. */
  readonly #loopShiftMs: number;
  /** The loop the timeline is walking, from 0. */
  #loopIndex = 0;
  /** Steps of this loop walked so far. */
  #offset = 0;
  #ended = false;
  /** Refilled by the timeline; every step handed out is a copy. */
  readonly #scratch: Bar[] = [];

  constructor(timeline: Timeline, loop: boolean) {
    this.#timeline = timeline;
    this.#loop = loop;
    this.symbols = timeline.symbols;
    let steps = 0;
    let firstMs = 0;
    let previousMs = 0;
    let shortestGapMs = Infinity;
    while (timeline.next(this.#scratch)) {
      const timeMs = (this.#scratch[0] as Bar).timeMs;
      if (steps === 0) firstMs = timeMs;
      else shortestGapMs = Math.min(shortestGapMs, timeMs - previousMs);
      previousMs = timeMs;
      steps += 1;
    }
    timeline.rewind();
    this.#stepsPerLoop = steps;
    this.stepCount = loop ? null : steps;
    if (loop && steps < 2) throw new InvalidInputError('loop', 'needs bars at two times at least, to tell how far apart loops go; replay more data or set loop: false');
    this.#loopShiftMs = loop ? loopShiftOf(previousMs - firstMs, shortestGapMs) : 0;
  }

  seek(index: number): void {
    const loopIndex = this.#loop ? Math.floor(index / this.#stepsPerLoop) : 0;
    const offset = this.#loop ? index % this.#stepsPerLoop : index;
    if (loopIndex !== this.#loopIndex || offset < this.#offset) {
      this.#timeline.rewind();
      this.#loopIndex = loopIndex;
      this.#offset = 0;
    }
    this.#ended = false;
    while (this.#offset < offset && this.#timeline.next(this.#scratch)) this.#offset += 1;
  }

  next(): readonly Bar[] | undefined {
    if (this.#ended) return undefined;
    if (this.#offset === this.#stepsPerLoop) {
      if (!this.#loop) return undefined;
      this.#timeline.rewind();
      this.#loopIndex += 1;
      this.#offset = 0;
    }
    this.#timeline.next(this.#scratch);
    this.#offset += 1;
    if (this.#loopIndex === 0) return Object.freeze(this.#scratch.slice());
    const shiftMs = this.#loopIndex * this.#loopShiftMs;
    if ((this.#scratch[0] as Bar).timeMs + shiftMs > MAX_DATE_MS) {
      this.#ended = true;
      return undefined;
    }
    return Object.freeze(this.#scratch.map((bar) => freezeBar({ ...bar, timeMs: bar.timeMs + shiftMs })));
  }
}

/**
 * How much later a loop is than the one before: past the data's span by at least its shortest step,
 * rounded up to whole weeks (data spanning a week or more) or days (a day or more), so that a bar
 * keeps its weekday and time of day (UTC) from loop to loop.
 */
function loopShiftOf(spanMs: number, shortestGapMs: number): number {
  const unitMs = spanMs >= WEEK_MS ? WEEK_MS : spanMs >= DAY_MS ? DAY_MS : 1;
  return Math.ceil((spanMs + shortestGapMs) / unitMs) * unitMs;
}
