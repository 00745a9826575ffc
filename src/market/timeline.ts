import { InvalidInputError } from '../core/index.js';
import type { Bar } from './bars.js';

/**
 * Every symbol's bars, checked, walked one time step at a time: each step holds the bars at the
 * next distinct time, symbols in alphabetical order. Steps are merged as they are walked, so a run
 * over a million bars does not hold a million step arrays.
 */
export class Timeline {
  /** Every symbol, in alphabetical order. */
  readonly symbols: readonly string[];
  /** Bars of all symbols. */
  readonly count: number;
  readonly #lists: ReadonlyArray<readonly Bar[]>;
  /** Per symbol, the index of its next bar. */
  readonly #cursors: number[];

  /** @throws InvalidInputError naming the field for an empty input, a bar under the wrong symbol, or bars out of time order. */
  constructor(input: ReadonlyMap<string, readonly Bar[]> | readonly Bar[]) {
    const bySymbol = listsBySymbol(input);
    const symbols = [...bySymbol.keys()].sort();
    if (symbols.length === 0) throw new InvalidInputError('bars', 'must hold at least one bar');
    let count = 0;
    for (const symbol of symbols) {
      const bars = bySymbol.get(symbol) as readonly Bar[];
      if (bars.length === 0) throw new InvalidInputError(`bars.${symbol}`, 'must hold at least one bar');
      for (let i = 0; i < bars.length; i++) {
        const bar = bars[i] as Bar;
        if (bar.symbol !== symbol) throw new InvalidInputError(`bars.${symbol}[${i}].symbol`, `is ${JSON.stringify(bar.symbol)}, expected ${symbol}`);
        if (i > 0 && bar.timeMs <= (bars[i - 1] as Bar).timeMs) {
          throw new InvalidInputError(`bars.${symbol}[${i}].timeMs`, `${bar.timeMs} is not after the previous bar; sort the bars by time`);
        }
      }
      count += bars.length;
    }
    this.symbols = symbols;
    this.count = count;
    this.#lists = symbols.map((symbol) => bySymbol.get(symbol) as readonly Bar[]);
    this.#cursors = symbols.map(() => 0);
  }

  /** Goes back to the first step, as if no step had been walked (a looping replay walks the data again). */
  rewind(): void {
    this.#cursors.fill(0);
  }

  /** Bars of `symbol` (0 for a symbol without bars). */
  barsOf(symbol: string): number {
    const index = this.symbols.indexOf(symbol);
    return index < 0 ? 0 : (this.#lists[index] as readonly Bar[]).length;
  }

  /**
   * Replaces the contents of `step` with the bars of the next time step (a k-way merge by time;
   * symbols at equal times in alphabetical order).
   * @returns false, leaving `step` empty, when every bar has been walked.
   */
  next(step: Bar[]): boolean {
    const lists = this.#lists;
    const cursors = this.#cursors;
    // Written by index and trimmed, not emptied and refilled: `length = 0` drops the array's storage.
    let size = 0;
    if (lists.length === 1) {
      // One symbol: each bar is a step of its own.
      const bar = (lists[0] as readonly Bar[])[cursors[0] as number];
      if (bar !== undefined) {
        step[size++] = bar;
        cursors[0] = (cursors[0] as number) + 1;
      }
    } else {
      let time = Infinity;
      for (let k = 0; k < lists.length; k++) {
        const bar = (lists[k] as readonly Bar[])[cursors[k] as number];
        if (bar && bar.timeMs < time) time = bar.timeMs;
      }
      for (let k = 0; time !== Infinity && k < lists.length; k++) {
        const bar = (lists[k] as readonly Bar[])[cursors[k] as number];
        if (bar && bar.timeMs === time) {
          step[size++] = bar;
          cursors[k] = (cursors[k] as number) + 1;
        }
      }
    }
    if (step.length !== size) step.length = size;
    return size > 0;
  }
}

/** Each symbol's bars; one list of bars is split by symbol, unless it has only one (then it is used as it is). */
export function listsBySymbol(input: ReadonlyMap<string, readonly Bar[]> | readonly Bar[]): ReadonlyMap<string, readonly Bar[]> {
  if (input instanceof Map) return input as ReadonlyMap<string, readonly Bar[]>;
  const bars = input as readonly Bar[];
  const first = bars[0];
  if (first === undefined) return new Map();
  // A loop, not `every`: a callback per bar of a million-bar run.
  let oneSymbol = true;
  for (let i = 1; oneSymbol && i < bars.length; i++) oneSymbol = (bars[i] as Bar).symbol === first.symbol;
  if (oneSymbol) return new Map([[first.symbol, bars]]);
  const lists = new Map<string, Bar[]>();
  for (const bar of bars) {
    const list = lists.get(bar.symbol);
    if (list) list.push(bar);
    else lists.set(bar.symbol, [bar]);
  }
  return lists;
}

/**
 * Bars grouped by time: `steps[i]` holds the bars at the i-th distinct time, symbols in
 * alphabetical order.
 * @throws InvalidInputError naming the field for an empty input, a bar under the wrong symbol, or bars out of time order.
 */
export function groupByTime(input: ReadonlyMap<string, readonly Bar[]> | readonly Bar[]): { symbols: string[]; steps: Bar[][]; count: number } {
  const timeline = new Timeline(input);
  const steps: Bar[][] = [];
  for (let step: Bar[] = []; timeline.next(step); step = []) steps.push(step);
  return { symbols: [...timeline.symbols], steps, count: timeline.count };
}
