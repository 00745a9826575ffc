import type { Bar } from '../market/index.js';

/** What {@link StepAssembler.add} did with a bar. */
export type AddResult = 'added' | 'replaced' | 'late' | 'unknown-symbol';

/**
 * Groups bars that arrive one by one, per symbol, into steps (the bars of one time, symbols in
 * order) and hands a step out once it is complete:
 * - a step at time `t` is complete when every symbol is known past `t` ({@link StepAssembler.knownBefore}:
 *   a bus feed learns it from a bar of a later time, an exchange feed from a fetch that reached past `t`),
 * - or when the caller flushes it ({@link StepAssembler.flushThrough}: a grace period ran out, so a
 *   symbol that stopped trading does not stall the others).
 *
 * A bar at or before the last step handed out (or the start time) is late and refused; a second bar
 * of a (symbol, time) still pending replaces the first (the last word is a correction). Pure: no
 * clock; the caller times grace periods.
 */
export class StepAssembler {
  readonly #symbols: readonly string[];
  readonly #place: ReadonlyMap<string, number>;
  /** Pending steps by time. */
  readonly #pending = new Map<number, (Bar | undefined)[]>();
  /** Per symbol (by place): no bar earlier than this will come. */
  readonly #knownBefore: number[];
  #lastEmittedMs: number;

  /**
   * @param symbols alphabetical, the order of bars in a step
   * @param afterTimeMs bars at or before it are late; `null`: none is
   */
  constructor(symbols: readonly string[], afterTimeMs: number | null) {
    this.#symbols = symbols;
    this.#place = new Map(symbols.map((symbol, i) => [symbol, i]));
    this.#knownBefore = symbols.map(() => -Infinity);
    this.#lastEmittedMs = afterTimeMs ?? -Infinity;
  }

  /** Time of the last step handed out (or the start time); `-Infinity` before any. */
  get lastEmittedMs(): number {
    return this.#lastEmittedMs;
  }

  /** Pending step times, ascending. */
  pendingTimes(): number[] {
    return [...this.#pending.keys()].sort((a, b) => a - b);
  }

  /** Takes a valid, frozen bar. A bar also tells that its symbol is known before its time. */
  add(bar: Bar): AddResult {
    const place = this.#place.get(bar.symbol);
    if (place === undefined) return 'unknown-symbol';
    if (bar.timeMs <= this.#lastEmittedMs) return 'late';
    let step = this.#pending.get(bar.timeMs);
    if (step === undefined) {
      step = this.#symbols.map(() => undefined);
      this.#pending.set(bar.timeMs, step);
    }
    const replaced = step[place] !== undefined;
    step[place] = bar;
    this.knownBefore(bar.symbol, bar.timeMs);
    return replaced ? 'replaced' : 'added';
  }

  /** Says no bar of `symbol` earlier than `timeMs` will come (a fetch reached there). Never moves back. */
  knownBefore(symbol: string, timeMs: number): void {
    const place = this.#place.get(symbol);
    if (place !== undefined && timeMs > (this.#knownBefore[place] as number)) this.#knownBefore[place] = timeMs;
  }

  /** The complete steps, oldest first, removed from the pending ones. */
  takeComplete(): (readonly Bar[])[] {
    return this.flushThrough(Math.min(...this.#knownBefore) - 1);
  }

  /** Every pending step at or before `timeMs` (complete or not), oldest first, removed from the pending ones. */
  flushThrough(timeMs: number): (readonly Bar[])[] {
    const steps: (readonly Bar[])[] = [];
    for (const time of this.pendingTimes()) {
      if (time > timeMs) break;
      const bars = (this.#pending.get(time) as (Bar | undefined)[]).filter((bar): bar is Bar => bar !== undefined);
      this.#pending.delete(time);
      this.#lastEmittedMs = time;
      steps.push(Object.freeze(bars));
    }
    return steps;
  }
}
