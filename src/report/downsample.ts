/** A curve as two parallel arrays: times (ms) and values. */
export interface Curve {
  readonly t: readonly number[];
  readonly v: readonly number[];
}

/**
 * Thins a curve to at most `2 × buckets + 2` points for a chart, so a million-point curve makes a
 * page of a few hundred kB: the first and last points are kept, the points between are cut into
 * `buckets` runs of (nearly) equal count, and each run keeps its lowest and its highest point, in
 * time order. A drawdown or a spike narrower than a pixel stays visible at its true depth, which
 * taking every n-th point would lose. Indices listed in `keep` are kept as well (the bars where
 * trades filled, so their markers sit on the line). A curve short enough is returned whole.
 * Hand-written: the chart library draws what it is given, and the few lines here need no package.
 */
export function downsample(curve: Curve, buckets: number, keep: ReadonlySet<number> = new Set()): Curve {
  const { t, v } = curve;
  const n = t.length;
  if (n <= 2 * buckets + 2) return { t: [...t], v: [...v] };
  const chosen = new Set<number>([0, n - 1, ...[...keep].filter((index) => index >= 0 && index < n)]);
  const inner = n - 2;
  for (let b = 0; b < buckets; b++) {
    const from = 1 + Math.floor((b * inner) / buckets);
    const to = 1 + Math.floor(((b + 1) * inner) / buckets);
    if (to <= from) continue;
    let low = from;
    let high = from;
    for (let i = from + 1; i < to; i++) {
      const value = v[i] as number;
      if (value < (v[low] as number)) low = i;
      if (value > (v[high] as number)) high = i;
    }
    chosen.add(low);
    chosen.add(high);
  }
  const indices = [...chosen].sort((a, b) => a - b);
  return { t: indices.map((i) => t[i] as number), v: indices.map((i) => v[i] as number) };
}

/** Each point's fall from the running peak of `values`, as a fraction (−0.25 = 25 % below the peak). */
export function drawdownOf(values: readonly number[]): number[] {
  let peak = -Infinity;
  return values.map((value) => {
    peak = Math.max(peak, value);
    return peak > 0 ? value / peak - 1 : 0;
  });
}
