/**
 * Percentiles of recent samples, from {@link LatencyWindow.summary}: `null` until a sample came, and
 * `count` is every sample since start. Not the swarm's and benchmarks' `LatencySummary` (all samples
 * of a finished run, with min and mean): this one is what `/v1/exec/metrics` answers.
 */
export interface LatencyWindowSummary {
  /** Samples recorded since start (the percentiles cover at most the last `size` of them). */
  readonly count: number;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/**
 * The last `size` samples of a latency, for the service's JSON metrics. Written here rather than
 * taken from prom-client's Summary because that one ages samples by wall-clock time, while these
 * figures must be the same for the same sequence of requests (tests run on a manual clock). The
 * Prometheus histograms are prom-client's.
 */
export class LatencyWindow {
  private readonly samples: number[] = [];
  private next = 0;
  private total = 0;

  constructor(private readonly size = 2048) {}

  record(valueMs: number): void {
    this.total++;
    if (this.samples.length < this.size) this.samples.push(valueMs);
    else this.samples[this.next] = valueMs;
    this.next = (this.next + 1) % this.size;
  }

  /** Nearest-rank percentiles of the samples held. */
  summary(): LatencyWindowSummary {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const rank = (p: number): number | null => (sorted.length === 0 ? null : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!);
    return { count: this.total, p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: rank(1) };
  }
}
