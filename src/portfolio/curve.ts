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

/** Numbers stored per point, in the order of {@link EquityPoint}'s fields. */
const FIELDS = 7;
const TIME = 0;
const CASH = 1;
const EQUITY = 2;
const REALISED = 3;
const UNREALISED = 4;
const EXPOSURE = 5;
const OPEN = 6;

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

function pointAt(chunks: ReadonlyArray<readonly number[]>, index: number): EquityPoint {
  const values = chunks[index >> CHUNK_BITS] as number[];
  const base = (index & OFFSET_MASK) * FIELDS;
  return {
    timeMs: values[base + TIME] as number,
    cash: values[base + CASH] as number,
    equity: values[base + EQUITY] as number,
    realisedPnl: values[base + REALISED] as number,
    unrealisedPnl: values[base + UNREALISED] as number,
    grossExposure: values[base + EXPOSURE] as number,
    openPositions: values[base + OPEN] as number,
  };
}

/**
 * A read-only equity curve as recorded by a portfolio: the points as numbers, seven per point, in
 * arrays of 4096 points rather than an object per point, since a backtest records one point per
 * bar and a million retained objects cost more garbage-collection time than the rest of the bar
 * loop. (Plain arrays of doubles rather than Float64Arrays: those live outside the heap, and
 * growing that memory by tens of megabytes per run forces full collections.) Points are built on
 * demand by {@link point} and {@link toArray}.
 */
export class EquitySeries implements EquityValues {
  /** Made by {@link EquityRecorder.series}: the first `length` points of `chunks`. */
  constructor(
    readonly length: number,
    private readonly chunks: ReadonlyArray<readonly number[]>,
  ) {}

  /** The point at `index` (0-based), as a new object. @throws RangeError when there is none. */
  point(index: number): EquityPoint {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) throw new RangeError(`no equity point ${index}; the series has ${this.length}`);
    return pointAt(this.chunks, index);
  }

  /** The equity of the point at `index` (no bounds check: `index` in `0 … length − 1`). */
  equityAt(index: number): number {
    return (this.chunks[index >> CHUNK_BITS] as number[])[(index & OFFSET_MASK) * FIELDS + EQUITY] as number;
  }

  /** The open positions of the point at `index` (no bounds check: `index` in `0 … length − 1`). */
  openPositionsAt(index: number): number {
    return (this.chunks[index >> CHUNK_BITS] as number[])[(index & OFFSET_MASK) * FIELDS + OPEN] as number;
  }

  /** Every point, in time order, as new objects. */
  toArray(): EquityPoint[] {
    const points: EquityPoint[] = new Array<EquityPoint>(this.length);
    for (let i = 0; i < this.length; i++) points[i] = this.point(i);
    return points;
  }
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
    values[base + CASH] = cash;
    values[base + EQUITY] = equity;
    values[base + REALISED] = realisedPnl;
    values[base + UNREALISED] = unrealisedPnl;
    values[base + EXPOSURE] = grossExposure;
    values[base + OPEN] = openPositions;
    this.#length = index + 1;
    this.#lastTimeMs = timeMs;
  }

  /** The last point recorded, as a new object. @throws RangeError before the first. */
  lastPoint(): EquityPoint {
    if (this.#length === 0) throw new RangeError('no equity point recorded yet');
    return pointAt(this.#chunks, this.#length - 1);
  }

  /** The points recorded so far (later records do not change it). */
  series(): EquitySeries {
    this.#shared = true;
    return new EquitySeries(this.#length, [...this.#chunks]);
  }
}
