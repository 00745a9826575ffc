import { type LatencySummary, summarize as summarizeSamples } from '../../src/core/index.js';

export type { LatencySummary };

/** Every field of a summary of no samples: benchmark tables print NaN rather than a missing row. */
const NO_SAMPLES: LatencySummary = { count: 0, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, min: Number.NaN, max: Number.NaN, mean: Number.NaN };

/** The samples' percentiles (ms), rounded to the microsecond for the benchmarks' JSON. */
export function summarize(samples: readonly number[]): LatencySummary {
  const summary = summarizeSamples(samples) ?? NO_SAMPLES;
  const round = (value: number): number => Math.round(value * 1000) / 1000;
  return {
    count: summary.count,
    p50: round(summary.p50),
    p95: round(summary.p95),
    p99: round(summary.p99),
    min: round(summary.min),
    max: round(summary.max),
    mean: round(summary.mean),
  };
}

/** Runs `body` `count` times one after another and returns each run's wall time in ms. */
export async function timeEach(count: number, body: (index: number) => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    await body(index);
    samples.push(performance.now() - started);
  }
  return samples;
}
