import { type JsonObject, type JsonValue, type SnapshotReader, toJsonNumbers } from '../core/index.js';

/** One point of the equity curve, recorded by `Portfolio.markToMarket`. */
export interface EquityPoint {
  readonly timeMs: number;
  readonly cash: number;
  /** `cash + Σ quantity × markPrice`. */
  readonly equity: number;
  readonly realisedPnl: number;
  readonly unrealisedPnl: number;
  /** `Σ |quantity| × markPrice`. */
  readonly grossExposure: number;
  /** Symbols with a non-zero position at this point. */
  readonly openPositions: number;
}

/**
 * Numbers stored per point: the four that change at every mark. Cash, realised PnL and the count of
 * open positions change only when a fill is booked, so they are stored once per run of points that
 * share them (a "segment"), not once per point.
 */
const FIELDS = 4;
const TIME = 0;
const EQUITY = 1;
const UNREALISED = 2;
const EXPOSURE = 3;

/** Numbers stored per segment, after its first point's index. */
const SEGMENT_FIELDS = 4;
const SEGMENT_START = 0;
const SEGMENT_CASH = 1;
const SEGMENT_REALISED = 2;
const SEGMENT_OPEN = 3;

/**
 * How many numbers of a saved curve's `points` and `segments` (see {@link EquityRecorder.saveState}),
 * from the first, are saved as they will stay: every point but the last (a mark at its time replaces
 * it), and the segments that start before the last point (the one starting there is rewritten with it).
 * What a snapshot split into history and live state (src/trading/history.ts) may store once and never again.
 */
export function settledCurve(points: readonly JsonValue[], segments: readonly JsonValue[]): { readonly points: number; readonly segments: number } {
  const last = points.length / FIELDS - 1;
  let settledSegments = segments.length;
  while (settledSegments > 0 && (segments[settledSegments - SEGMENT_FIELDS + SEGMENT_START] as number) >= last) settledSegments -= SEGMENT_FIELDS;
  return { points: Math.max(0, last * FIELDS), segments: settledSegments };
}

/**
 * Equity points read one field at a time: what `performanceStats` needs, whether the points are
 * objects (an {@link EquityPoint} array) or an {@link EquitySeries}.
 */
export interface EquityValues {
  readonly length: number;
  equityAt(index: number): number;
  openPositionsAt(index: number): number;
}

/** Points per chunk of storage (a power of two: an index splits into chunk and offset with shifts). */
const CHUNK_BITS = 12;
const CHUNK_POINTS = 1 << CHUNK_BITS;
const OFFSET_MASK = CHUNK_POINTS - 1;

/**
 * A read-only equity curve as recorded by a portfolio: the points as numbers rather than an object
 * per point, since a backtest records one point per bar and a million retained objects cost more
 * garbage-collection time than the rest of the bar loop. Per point, its time, equity, unrealised PnL
 * and gross exposure, in arrays of 4096 points; cash, realised PnL and open positions per segment
 * (see `FIELDS`): 32 bytes a point where all seven fields took 56, and the memory a million-point
 * curve needs was the largest cost of a backtest's bar loop. (Plain arrays of doubles rather than
 * Float64Arrays: those live outside the heap, and growing that memory by tens of megabytes per run
 * forces full collections.) Points are built on demand by {@link point} and {@link toArray}.
 */
export class EquitySeries implements EquityValues {
  /** The segment of the latest lookup: points are mostly read in order. */
  #segment = 0;

  /**
   * Made by {@link EquityRecorder.series}: the first `length` points of `chunks`, and `segments`
   * (`SEGMENT_FIELDS` numbers each, in order of their first points; the first starts at point 0).
   */
  constructor(
    readonly length: number,
    private readonly chunks: ReadonlyArray<readonly number[]>,
    private readonly segments: readonly number[],
  ) {}

  /** The point at `index` (0-based), as a new object. @throws RangeError when there is none. */
  point(index: number): EquityPoint {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) throw new RangeError(`no equity point ${index}; the series has ${this.length}`);
    return pointAt(this.chunks, this.segments, this.segmentOf(index), index);
  }

  /** The equity of the point at `index` (no bounds check: `index` in `0 … length − 1`). */
  equityAt(index: number): number {
    return (this.chunks[index >> CHUNK_BITS] as number[])[(index & OFFSET_MASK) * FIELDS + EQUITY] as number;
  }

  /** The open positions of the point at `index` (no bounds check: `index` in `0 … length − 1`). */
  openPositionsAt(index: number): number {
    return this.segments[this.segmentOf(index) + SEGMENT_OPEN] as number;
  }

  /** Every point, in time order, as new objects. */
  toArray(): EquityPoint[] {
    const points: EquityPoint[] = new Array<EquityPoint>(this.length);
    for (let i = 0; i < this.length; i++) points[i] = this.point(i);
    return points;
  }

  /** The offset in `segments` of the segment holding point `index`: the latest one looked up or the next when it holds it, else by bisection. */
  private segmentOf(index: number): number {
    let segment = this.#segment;
    if (!this.holds(segment, index)) {
      segment = this.holds(segment + 1, index) ? segment + 1 : this.search(index);
      this.#segment = segment;
    }
    return segment * SEGMENT_FIELDS;
  }

  /** Whether segment number `segment` holds point `index`. */
  private holds(segment: number, index: number): boolean {
    const segments = this.segments;
    const offset = segment * SEGMENT_FIELDS;
    if (offset >= segments.length || (segments[offset + SEGMENT_START] as number) > index) return false;
    const next = offset + SEGMENT_FIELDS;
    return next >= segments.length || (segments[next + SEGMENT_START] as number) > index;
  }

  /** The number of the last segment starting at or before point `index`. */
  private search(index: number): number {
    const segments = this.segments;
    let low = 0;
    let high = segments.length / SEGMENT_FIELDS - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((segments[middle * SEGMENT_FIELDS + SEGMENT_START] as number) <= index) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}

/** Point `index` as an object, its segment at offset `segment` of `segments`. */
function pointAt(chunks: ReadonlyArray<readonly number[]>, segments: readonly number[], segment: number, index: number): EquityPoint {
  const values = chunks[index >> CHUNK_BITS] as number[];
  const base = (index & OFFSET_MASK) * FIELDS;
  return {
    timeMs: values[base + TIME] as number,
    cash: segments[segment + SEGMENT_CASH] as number,
    equity: values[base + EQUITY] as number,
    realisedPnl: segments[segment + SEGMENT_REALISED] as number,
    unrealisedPnl: values[base + UNREALISED] as number,
    grossExposure: values[base + EXPOSURE] as number,
    openPositions: segments[segment + SEGMENT_OPEN] as number,
  };
}

/**
 * Where a portfolio records its equity curve: appends points, or replaces the last one when it is
 * at the same time. Series taken from it do not change when it records more.
 */
export class EquityRecorder {
  /** Full chunks, then the one being filled; chunks are never grown or moved, only added. */
  #chunks: number[][] = [];
  #length = 0;
  /** The time of the last point (NaN before the first, equal to no time). */
  #lastTimeMs = Number.NaN;
  /** Whether a series shares the last chunk: then it is copied before a point in it is replaced. */
  #shared = false;
  /** Segments (see {@link EquitySeries}), appended when cash, realised PnL or open positions change. */
  #segments: number[] = [];

  /** The time of the last point, or `undefined` before the first. */
  get lastTimeMs(): number | undefined {
    return this.#length === 0 ? undefined : this.#lastTimeMs;
  }

  /** Records a point: replaces the last one when it has the same `timeMs`, else appends it. */
  record(timeMs: number, cash: number, equity: number, realisedPnl: number, unrealisedPnl: number, grossExposure: number, openPositions: number): void {
    let index = this.#length;
    if (timeMs === this.#lastTimeMs) {
      index -= 1;
      if (this.#shared) {
        // A series taken earlier reads this point: it keeps the old chunk, the recorder writes to a copy.
        const chunk = index >> CHUNK_BITS;
        this.#chunks[chunk] = (this.#chunks[chunk] as number[]).slice();
        this.#shared = false;
      }
    } else if ((index & OFFSET_MASK) === 0) {
      // Filled with NaN, a double, so the array holds unboxed doubles from the start.
      this.#chunks.push(new Array<number>(CHUNK_POINTS * FIELDS).fill(Number.NaN));
      this.#shared = false;
    }
    const values = this.#chunks[index >> CHUNK_BITS] as number[];
    const base = (index & OFFSET_MASK) * FIELDS;
    values[base + TIME] = timeMs;
    values[base + EQUITY] = equity;
    values[base + UNREALISED] = unrealisedPnl;
    values[base + EXPOSURE] = grossExposure;
    this.recordSegment(index, cash, realisedPnl, openPositions);
    this.#length = index + 1;
    this.#lastTimeMs = timeMs;
  }

  /** Point `index` (the last, new or replaced) holds these: a new segment starts there unless the last one holds them already. */
  private recordSegment(index: number, cash: number, realisedPnl: number, openPositions: number): void {
    const segments = this.#segments;
    let last = segments.length - SEGMENT_FIELDS;
    if (last >= 0 && segments[last + SEGMENT_START] === index) {
      // The point replaced started a segment: it is rewritten, as the earlier one when it holds these.
      segments.length = last;
      last -= SEGMENT_FIELDS;
    }
    // Object.is: the same numbers bit for bit (0 and −0 apart), so a point reads back what was recorded.
    if (
      last >= 0 &&
      Object.is(segments[last + SEGMENT_CASH], cash) &&
      Object.is(segments[last + SEGMENT_REALISED], realisedPnl) &&
      Object.is(segments[last + SEGMENT_OPEN], openPositions)
    ) {
      return;
    }
    segments.push(index, cash, realisedPnl, openPositions);
  }

  /**
   * What a portfolio's snapshot holds of its curve: per point its time, equity, unrealised PnL and
   * gross exposure (`points`, 4 numbers a point), and the segments (`segments`, 4 numbers each: first
   * point, cash, realised PnL, open positions). O(points).
   */
  saveState(): JsonObject {
    const points: number[] = new Array<number>(this.#length * FIELDS);
    for (let i = 0; i < this.#length; i++) {
      const values = this.#chunks[i >> CHUNK_BITS] as number[];
      const base = (i & OFFSET_MASK) * FIELDS;
      for (let field = 0; field < FIELDS; field++) points[i * FIELDS + field] = values[base + field] as number;
    }
    return { points: toJsonNumbers(points), segments: toJsonNumbers(this.#segments) };
  }

  /**
   * A recorder holding the curve saved by {@link saveState}.
   * @throws {IncompatibleSnapshotError} naming the field when the saved curve is not one a recorder makes.
   */
  static readState(state: SnapshotReader): EquityRecorder {
    const points = state.numbers('points');
    if (points.length % FIELDS !== 0) state.fail('points', `must hold ${FIELDS} numbers a point (time, equity, unrealised PnL, gross exposure), got ${points.length}`);
    const length = points.length / FIELDS;
    const segments = state.numbers('segments');
    if (segments.length % SEGMENT_FIELDS !== 0) state.fail('segments', `must hold ${SEGMENT_FIELDS} numbers a segment (first point, cash, realised PnL, open positions), got ${segments.length}`);
    if (length > 0 && segments[SEGMENT_START] !== 0) state.fail('segments', 'must start with a segment at point 0');
    for (let offset = 0; offset < segments.length; offset += SEGMENT_FIELDS) {
      const start = segments[offset + SEGMENT_START] as number;
      const previous = offset === 0 ? -1 : (segments[offset - SEGMENT_FIELDS + SEGMENT_START] as number);
      if (!Number.isSafeInteger(start) || start <= previous || start >= length) state.fail('segments', `segment ${offset / SEGMENT_FIELDS} starts at point ${start}: starts must be whole numbers, increasing, below the ${length} points`);
      const open = segments[offset + SEGMENT_OPEN] as number;
      if (!Number.isSafeInteger(open) || open < 0) state.fail('segments', `segment ${offset / SEGMENT_FIELDS} has ${open} open positions: a count must be a whole number >= 0`);
    }
    for (let i = 0; i < length; i++) {
      const timeMs = points[i * FIELDS + TIME] as number;
      if (!Number.isFinite(timeMs) || (i > 0 && !(timeMs > (points[(i - 1) * FIELDS + TIME] as number)))) state.fail('points', `point ${i} has time ${timeMs}: times must be finite and increasing`);
    }
    const recorder = new EquityRecorder();
    for (let i = 0; i < length; i++) {
      if ((i & OFFSET_MASK) === 0) recorder.#chunks.push(new Array<number>(CHUNK_POINTS * FIELDS).fill(Number.NaN));
      const values = recorder.#chunks[i >> CHUNK_BITS] as number[];
      const base = (i & OFFSET_MASK) * FIELDS;
      for (let field = 0; field < FIELDS; field++) values[base + field] = points[i * FIELDS + field] as number;
    }
    recorder.#length = length;
    recorder.#lastTimeMs = length === 0 ? Number.NaN : (points[(length - 1) * FIELDS + TIME] as number);
    recorder.#segments = segments;
    return recorder;
  }

  /** The last point recorded, as a new object. @throws RangeError before the first. */
  lastPoint(): EquityPoint {
    if (this.#length === 0) throw new RangeError('no equity point recorded yet');
    return pointAt(this.#chunks, this.#segments, this.#segments.length - SEGMENT_FIELDS, this.#length - 1);
  }

  /** The points recorded so far (later records do not change it). */
  series(): EquitySeries {
    this.#shared = true;
    // Segments are copied: the last one is rewritten when its first point is replaced.
    return new EquitySeries(this.#length, [...this.#chunks], this.#segments.slice());
  }
}
