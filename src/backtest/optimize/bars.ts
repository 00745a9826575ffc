import type { Bar } from '../../market/index.js';

/** Numbers stored per bar: time, open, high, low, close, volume. */
const FIELDS = 6;

/** Bars by symbol in shared memory: every worker thread reads the same buffers, none copies them. */
export type PackedBars = ReadonlyArray<{ readonly symbol: string; readonly buffer: SharedArrayBuffer }>;

/** Copies bars into one `SharedArrayBuffer` per symbol (6 float64 a bar), to hand to worker threads without a copy each. */
export function packBars(bars: ReadonlyMap<string, readonly Bar[]>): PackedBars {
  return [...bars].map(([symbol, list]) => {
    const buffer = new SharedArrayBuffer(list.length * FIELDS * Float64Array.BYTES_PER_ELEMENT);
    const values = new Float64Array(buffer);
    list.forEach((bar, i) => values.set([bar.timeMs, bar.open, bar.high, bar.low, bar.close, bar.volume], i * FIELDS));
    return { symbol, buffer };
  });
}

/** The bars of {@link packBars} as objects again (a thread's own: strategies and the venue read `Bar` objects). */
export function unpackBars(packed: PackedBars): Map<string, Bar[]> {
  const bars = new Map<string, Bar[]>();
  for (const { symbol, buffer } of packed) {
    const values = new Float64Array(buffer);
    const list = new Array<Bar>(values.length / FIELDS);
    for (let i = 0; i < list.length; i++) {
      const at = i * FIELDS;
      list[i] = Object.freeze({ symbol, timeMs: values[at] as number, open: values[at + 1] as number, high: values[at + 2] as number, low: values[at + 3] as number, close: values[at + 4] as number, volume: values[at + 5] as number });
    }
    bars.set(symbol, list);
  }
  return bars;
}
