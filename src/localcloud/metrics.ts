import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Why a sandbox was killed: asked through the API, its timeout ran out, its init died, or the server stopped. */
export type KillReason = 'request' | 'timeout' | 'died' | 'shutdown';

/** What the sandbox manager tells its observer (the Prometheus metrics of `cloud serve`). */
export interface SandboxObserver {
  /** A create succeeded after `seconds`; `warm` when it claimed a sandbox of the warm pool. */
  created(template: string, warm: boolean, seconds: number): void;
  /** A create failed (after validation: the sandbox could not be started). */
  createFailed(template: string): void;
  killed(reason: KillReason): void;
}

/** What the gauges read when scraped. */
export interface SandboxCounts {
  readonly running: number;
  readonly paused: number;
  readonly warm: number;
}

const CREATE_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The local cloud's metrics in Prometheus form, on a registry of its own (two clouds in one process
 * never mix their figures): sandboxes by state, creates, kills, create latency and warm-pool hits.
 */
export class CloudPrometheus implements SandboxObserver {
  private readonly registry = new Registry();
  private readonly creates: Counter<'template' | 'outcome'>;
  private readonly poolClaims: Counter<'result'>;
  private readonly kills: Counter<'reason'>;
  private readonly createLatency: Histogram<'pool'>;

  constructor(counts: () => SandboxCounts) {
    const registers = [this.registry];
    this.creates = new Counter({ name: 'tradeswarm_localcloud_sandbox_creates_total', help: 'Sandbox creates by template and outcome (ok, failed)', labelNames: ['template', 'outcome'], registers });
    this.poolClaims = new Counter({ name: 'tradeswarm_localcloud_warm_pool_claims_total', help: 'Creates that found a warm sandbox (hit) or started one (miss)', labelNames: ['result'], registers });
    this.kills = new Counter({ name: 'tradeswarm_localcloud_sandbox_kills_total', help: 'Sandboxes killed, by reason (request, timeout, died, shutdown)', labelNames: ['reason'], registers });
    this.createLatency = new Histogram({ name: 'tradeswarm_localcloud_sandbox_create_seconds', help: 'Time to create a sandbox, by whether the warm pool had one (hit, miss)', labelNames: ['pool'], buckets: CREATE_BUCKETS_SECONDS, registers });
    new Gauge({
      name: 'tradeswarm_localcloud_sandboxes',
      help: 'Sandboxes by state (running, paused), and warm ones started ahead of demand (warm)',
      labelNames: ['state'],
      registers,
      collect() {
        const now = counts();
        this.set({ state: 'running' }, now.running);
        this.set({ state: 'paused' }, now.paused);
        this.set({ state: 'warm' }, now.warm);
      },
    });
  }

  created(template: string, warm: boolean, seconds: number): void {
    const pool = warm ? 'hit' : 'miss';
    this.creates.inc({ template, outcome: 'ok' });
    this.poolClaims.inc({ result: pool });
    this.createLatency.observe({ pool }, seconds);
  }

  createFailed(template: string): void {
    this.creates.inc({ template, outcome: 'failed' });
  }

  killed(reason: KillReason): void {
    this.kills.inc({ reason });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
