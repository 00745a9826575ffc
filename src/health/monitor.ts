import { type Clock, InvalidInputError, type TimerHandle, errorMessage } from '../core/index.js';
import {
  type AgentSelfReport,
  type HealthObservation,
  type HealthReason,
  type HealthStatus,
  type HealthThresholds,
  type SandboxObservation,
  assessHealth,
  compileHealthThresholds,
} from './health.js';

/** One agent as the monitor sees it between checks (from the fleet). */
export interface MonitoredAgent {
  readonly id: string;
  readonly lifecycle: HealthObservation['lifecycle'];
  readonly heartbeatAgeMs: number | null;
  readonly checkpoints: boolean;
}

/** Where the monitor looks: the fleet, the sandbox provider, the bus. */
export interface HealthProbe {
  agents(): readonly MonitoredAgent[];
  /** The step the control plane is at. */
  currentStep(): number;
  /** What the provider says of the agent's sandbox; never rejects (`unknown` when it cannot tell). */
  sandbox(agentId: string): Promise<SandboxObservation>;
  /** The agent's own report; null when it does not answer within `timeoutMs`. Never rejects. */
  ask(agentId: string, timeoutMs: number): Promise<AgentSelfReport | null>;
}

/** An agent's health as last checked. */
export interface AgentHealth {
  readonly agentId: string;
  readonly status: HealthStatus;
  readonly reasons: readonly HealthReason[];
  /** When it was checked, and since when it has had this status (clock ms). */
  readonly checkedAtMs: number;
  readonly sinceMs: number;
}

/** Options of a {@link HealthMonitor}. */
export interface HealthMonitorOptions {
  readonly probe: HealthProbe;
  readonly clock: Clock;
  readonly thresholds: HealthThresholds;
  /** How often every agent is checked. @default 1000 */
  readonly intervalMs?: number;
  /** How long an agent has to answer a health request. @default the interval, at most 1000 */
  readonly askTimeoutMs?: number;
  /** An agent's status or reasons changed (`previous` undefined at its first check). */
  readonly onChange: (health: AgentHealth, previous: AgentHealth | undefined) => void;
  /** A check could not be made (a fault of the probe): it is tried again at the next interval. */
  readonly onError?: (error: unknown) => void;
}

/**
 * Checks every agent's health on an interval of the injected clock, at three levels: its sandbox
 * (through the provider: running, paused, gone, and its CPU and memory against its limits), the
 * agent (heartbeat age from the fleet, and the agent's own answer to a health request: its last
 * step, errors, checkpoint, replay) and its resources; judges each by {@link assessHealth}, keeps the
 * latest, and reports a change of status or reasons as it happens. {@link check} runs a check at
 * once (a lost heartbeat or a last will should not wait for the interval).
 */
export class HealthMonitor {
  readonly #options: HealthMonitorOptions;
  readonly #thresholds: Required<HealthThresholds>;
  readonly #intervalMs: number;
  readonly #askTimeoutMs: number;
  readonly #latest = new Map<string, AgentHealth>();
  readonly #errors = new Map<string, number>();
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  /** @throws InvalidInputError naming `intervalMs`, `askTimeoutMs` or the threshold at fault. */
  constructor(options: HealthMonitorOptions) {
    this.#options = options;
    this.#thresholds = compileHealthThresholds(options.thresholds);
    this.#intervalMs = options.intervalMs ?? 1_000;
    if (!Number.isInteger(this.#intervalMs) || this.#intervalMs < 10) throw new InvalidInputError('intervalMs', `must be a whole number of ms >= 10, got ${this.#intervalMs}`);
    this.#askTimeoutMs = options.askTimeoutMs ?? Math.min(this.#intervalMs, 1_000);
    if (!Number.isInteger(this.#askTimeoutMs) || this.#askTimeoutMs < 1) throw new InvalidInputError('askTimeoutMs', `must be a whole number of ms >= 1, got ${this.#askTimeoutMs}`);
  }

  /** Checks every interval until {@link stop}. */
  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Every agent's latest health, in the fleet's order. */
  latest(): AgentHealth[] {
    return this.#options.probe.agents().flatMap((agent) => this.#latest.get(agent.id) ?? []);
  }

  /** The latest health of one agent, if it was checked. */
  of(agentId: string): AgentHealth | undefined {
    return this.#latest.get(agentId);
  }

  /**
   * Checks `agentIds` (every agent when left out) now. A check that overlaps a running one for the
   * same agents waits for it first, so reports come in order.
   */
  async check(agentIds?: readonly string[]): Promise<void> {
    const previous = this.#running ?? Promise.resolve();
    const round = previous.then(() => this.#round(agentIds));
    this.#running = round.catch(() => undefined);
    await round;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#options.clock.setTimeout(() => {
      void this.check()
        .catch((error: unknown) => this.#options.onError?.(error))
        .finally(() => this.#schedule());
    }, this.#intervalMs);
  }

  async #round(agentIds: readonly string[] | undefined): Promise<void> {
    const { probe, clock } = this.#options;
    const agents = probe.agents().filter((agent) => agentIds === undefined || agentIds.includes(agent.id));
    // The step when the agents were asked: the control plane may have moved on before they answer.
    const step = probe.currentStep();
    const seen = await Promise.all(
      agents.map(async (agent) => {
        const live = agent.lifecycle === 'running' || agent.lifecycle === 'deploying';
        const [sandbox, report] = await Promise.all([probe.sandbox(agent.id), live ? probe.ask(agent.id, this.#askTimeoutMs) : Promise.resolve(null)]);
        return { agent, sandbox, report };
      }),
    );
    if (this.#stopped) return;
    const now = clock.now();
    for (const { agent, sandbox, report } of seen) {
      const previousErrors = this.#errors.get(agent.id) ?? null;
      if (report !== null) this.#errors.set(agent.id, report.errors);
      const { status, reasons } = assessHealth(
        { lifecycle: agent.lifecycle, heartbeatAgeMs: agent.heartbeatAgeMs, sandbox, report, previousErrors, currentStep: step, checkpoints: agent.checkpoints },
        this.#thresholds,
      );
      const before = this.#latest.get(agent.id);
      const health: AgentHealth = { agentId: agent.id, status, reasons, checkedAtMs: now, sinceMs: before?.status === status ? before.sinceMs : now };
      this.#latest.set(agent.id, health);
      if (before === undefined || before.status !== status || codes(before) !== codes(health)) {
        try {
          this.#options.onChange(health, before);
        } catch (error) {
          this.#options.onError?.(new Error(`a health change handler failed: ${errorMessage(error)}`));
        }
      }
    }
  }
}

function codes(health: AgentHealth): string {
  return health.reasons.map((reason) => `${reason.status}:${reason.code}`).join(',');
}
