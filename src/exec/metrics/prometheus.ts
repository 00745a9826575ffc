import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the histograms read of a result (an `ExecResult` fits). */
interface ObservedResult {
  readonly timedOut: boolean;
  readonly error?: unknown;
  readonly fromCache: boolean;
  readonly totalMs: number;
  readonly queueWaitMs: number;
  readonly durationMs: number;
}

/** What the gauges read of the service's metrics (`GaugeSource` fits). */
interface GaugeSource {
  readonly queue: { readonly running: number; readonly waiting: number };
  readonly pool: { readonly idle: number; readonly busy: number; readonly creating: number; readonly created: number };
  readonly sessionPool: { readonly idle: number; readonly busy: number } | null;
  readonly cache: { readonly size: number };
  readonly sessions: number;
  readonly breaker: { readonly state: string };
  readonly rateLimiter: { readonly score: number };
}

const BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Outcomes counted by `tradeswarm_exec_requests_total`. */
type Outcome = 'ok' | 'code_error' | 'timed_out' | 'invalid' | 'rejected_busy' | 'failed';

/**
 * The service's metrics in Prometheus form, on a registry of its own (two services in one process
 * never mix their figures). Counters and histograms are updated per request; gauges read
 * `snapshot()` when scraped.
 */
export class ExecPrometheus {
  private readonly registry = new Registry();
  private readonly requests: Counter<'outcome' | 'cache'>;
  private readonly latency: Histogram<'phase'>;

  constructor(snapshot: () => GaugeSource) {
    this.requests = new Counter({
      name: 'tradeswarm_exec_requests_total',
      help: 'Execution requests by outcome, and whether the result came from the cache',
      labelNames: ['outcome', 'cache'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'tradeswarm_exec_latency_seconds',
      help: 'Latency of executions: total (call to answer), queue (waiting for a turn), execution (in the sandbox)',
      labelNames: ['phase'],
      buckets: BUCKETS_SECONDS,
      registers: [this.registry],
    });
    const gauge = (name: string, help: string, read: (metrics: GaugeSource) => number): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read(snapshot()));
        },
      });
    };
    gauge('tradeswarm_exec_queue_running', 'Executions running now', (m) => m.queue.running);
    gauge('tradeswarm_exec_queue_waiting', 'Executions waiting for a turn', (m) => m.queue.waiting);
    gauge('tradeswarm_exec_pool_idle', 'Clean sandboxes ready for an execution', (m) => m.pool.idle);
    gauge('tradeswarm_exec_pool_busy', 'Sandboxes leased (running, or being cleaned)', (m) => m.pool.busy);
    gauge('tradeswarm_exec_pool_creating', 'Sandbox creations under way', (m) => m.pool.creating);
    gauge('tradeswarm_exec_pool_created_total', 'Sandboxes created since start', (m) => m.pool.created);
    gauge('tradeswarm_exec_cache_entries', 'Results held by the cache', (m) => m.cache.size);
    gauge('tradeswarm_exec_sessions_open', 'Open stateful sessions', (m) => m.sessions);
    gauge('tradeswarm_exec_session_sandboxes', "Sandboxes of the sessions' own pool (held by a session, or clean and kept for the next)", (m) => (m.sessionPool === null ? 0 : m.sessionPool.idle + m.sessionPool.busy));
    gauge('tradeswarm_exec_breaker_open', '1 while the circuit breaker refuses work', (m) => (m.breaker.state === 'closed' ? 0 : 1));
    gauge('tradeswarm_exec_provider_health', 'Rate limiter health score (1 = healthy; 429s and failures lower it)', (m) => m.rateLimiter.score);
  }

  observe(result: ObservedResult): void {
    const outcome: Outcome = result.timedOut ? 'timed_out' : result.error ? 'code_error' : 'ok';
    this.requests.inc({ outcome, cache: result.fromCache ? 'hit' : 'miss' });
    this.latency.observe({ phase: 'total' }, result.totalMs / 1000);
    if (!result.fromCache) {
      this.latency.observe({ phase: 'queue' }, result.queueWaitMs / 1000);
      this.latency.observe({ phase: 'execution' }, result.durationMs / 1000);
    }
  }

  observeFailure(kind: 'invalid' | 'rejectedBusy' | 'failed'): void {
    const outcome: Outcome = kind === 'rejectedBusy' ? 'rejected_busy' : kind;
    this.requests.inc({ outcome, cache: 'miss' });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
