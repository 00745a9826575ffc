import { InvalidInputError } from '../core/index.js';

/**
 * How an agent is, worst last:
 * - `healthy`: it runs, beats, keeps up and has room;
 * - `degraded`: it works, with a warning sign (late heartbeat, lag of a step or two, memory filling,
 *   errors, a stale checkpoint, its replay under way);
 * - `unhealthy`: it is reachable but cannot do its job (halted, far behind, out of memory, being
 *   restarted);
 * - `unreachable`: it cannot be heard (no heartbeat past the agent timeout, its sandbox paused or gone,
 *   its process lost for good).
 */
export const HEALTH_STATUSES = ['healthy', 'degraded', 'unhealthy', 'unreachable'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** The statuses a reason can give: all but healthy. */
export const TROUBLE_STATUSES = ['degraded', 'unhealthy', 'unreachable'] as const satisfies ReadonlyArray<Exclude<HealthStatus, 'healthy'>>;

/** Where a reason was seen: the sandbox (through the SDK), the agent (its heartbeats and its own report), its resources. */
export const HEALTH_LEVELS = ['sandbox', 'agent', 'resources'] as const;
export type HealthLevel = (typeof HEALTH_LEVELS)[number];

/** One reason an agent is not healthy. */
export interface HealthReason {
  readonly level: HealthLevel;
  readonly status: (typeof TROUBLE_STATUSES)[number];
  /** A stable code to branch on, e.g. `heartbeat-silent`, `sandbox-paused`, `memory`. */
  readonly code: string;
  /** What was seen, for people. */
  readonly detail: string;
}

/** What the provider says of an agent's sandbox (`unknown`: the provider could not be asked). */
export interface SandboxObservation {
  readonly state: 'running' | 'paused' | 'gone' | 'unknown';
  /** The latest sample of the sandbox's metrics, when the provider has one. */
  readonly resources: { readonly cpuUsedPct: number; readonly memUsedBytes: number; readonly memTotalBytes: number } | null;
}

/** An agent's own account of itself (its answer to the control plane's health request). */
export interface AgentSelfReport {
  readonly lastStep: number;
  readonly checkpointedUpTo: number;
  readonly errors: number;
  readonly replaying: boolean;
  readonly halted: string | null;
}

/** Everything one check saw of one agent. */
export interface HealthObservation {
  /** Its lifecycle in the fleet (`recovering`: a restart is under way; `gone`: lost for good). */
  readonly lifecycle: 'deploying' | 'running' | 'recovering' | 'gone' | 'stopping' | 'stopped';
  /** Since its last heartbeat (null: none yet from this process). */
  readonly heartbeatAgeMs: number | null;
  readonly sandbox: SandboxObservation;
  /** Its answer to the health request; null when it did not answer within the check's timeout. */
  readonly report: AgentSelfReport | null;
  /** Its errors at the previous check (null: first check): new errors make it degraded. */
  readonly previousErrors: number | null;
  /** The step the control plane is at: how far behind the agent is. */
  readonly currentStep: number;
  /** Whether this agent checkpoints (a ring's entry never does). */
  readonly checkpoints: boolean;
}

/** The limits a check holds an agent to. */
export interface HealthThresholds {
  readonly heartbeatMs: number;
  /** Silent this long: unreachable. */
  readonly agentTimeoutMs: number;
  /** Steps behind the control plane beyond which it is unhealthy (one or two behind: degraded). */
  readonly maxLagSteps: number;
  /** Its checkpoint is stale when older than twice this many steps. */
  readonly checkpointEverySteps: number;
  /** Memory used over the sandbox's total: degraded from the first, unhealthy from the second. @default 0.8, 0.95 */
  readonly memoryDegradedFraction?: number;
  readonly memoryUnhealthyFraction?: number;
  /** CPU use (percent of the sandbox's cores) from which it is degraded. @default 95 */
  readonly cpuDegradedPct?: number;
}

const RANK: Readonly<Record<HealthStatus, number>> = { healthy: 0, degraded: 1, unhealthy: 2, unreachable: 3 };

/** The worse of two statuses. */
export function worseOf(a: HealthStatus, b: HealthStatus): HealthStatus {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * Checks thresholds once, before they are used.
 * @throws InvalidInputError naming the field.
 */
export function compileHealthThresholds(given: HealthThresholds): Required<HealthThresholds> {
  const thresholds = { memoryDegradedFraction: 0.8, memoryUnhealthyFraction: 0.95, cpuDegradedPct: 95, ...given };
  for (const field of ['heartbeatMs', 'agentTimeoutMs', 'maxLagSteps', 'checkpointEverySteps'] as const) {
    if (!Number.isInteger(thresholds[field]) || thresholds[field] < 1) throw new InvalidInputError(field, `must be a whole number >= 1, got ${thresholds[field]}`);
  }
  const { memoryDegradedFraction: low, memoryUnhealthyFraction: high, cpuDegradedPct: cpu } = thresholds;
  if (!(low > 0 && low < high && high <= 1)) throw new InvalidInputError('memoryDegradedFraction', `must be above 0 and below memoryUnhealthyFraction (${high}), which is at most 1; got ${low}`);
  if (!(cpu > 0 && cpu <= 100)) throw new InvalidInputError('cpuDegradedPct', `must be above 0 and at most 100, got ${cpu}`);
  return thresholds;
}

/**
 * How an agent is, from one check's observation, with every reason it is not healthy (the worst
 * decides the status). Pure: the monitor gathers the observation, this judges it.
 */
export function assessHealth(seen: HealthObservation, thresholds: Required<HealthThresholds>): { readonly status: HealthStatus; readonly reasons: readonly HealthReason[] } {
  const reasons: HealthReason[] = [];
  const add = (level: HealthLevel, status: HealthReason['status'], code: string, detail: string): void => {
    reasons.push({ level, status, code, detail });
  };
  switch (seen.sandbox.state) {
    case 'gone':
      add('sandbox', 'unreachable', 'sandbox-gone', 'the provider no longer has its sandbox');
      break;
    case 'paused':
      add('sandbox', 'unreachable', 'sandbox-paused', 'its sandbox is paused');
      break;
    case 'unknown':
      add('sandbox', 'degraded', 'provider-unreachable', 'the sandbox provider did not answer; its sandbox could not be checked');
      break;
    case 'running':
      break;
  }
  if (seen.lifecycle === 'gone') add('agent', 'unreachable', 'gone', 'lost for good: its restarts are used up or it was not back in time');
  else if (seen.lifecycle === 'recovering') add('agent', 'unhealthy', 'recovering', 'lost; a restart is under way');
  const age = seen.heartbeatAgeMs;
  if (age === null) {
    if (seen.lifecycle === 'deploying') add('agent', 'degraded', 'starting', 'started, no heartbeat yet');
  } else if (age > thresholds.agentTimeoutMs) add('agent', 'unreachable', 'heartbeat-silent', `no heartbeat for ${Math.round(age)} ms (agent timeout ${thresholds.agentTimeoutMs} ms)`);
  else if (age > 2 * thresholds.heartbeatMs) add('agent', 'degraded', 'heartbeat-late', `last heartbeat ${Math.round(age)} ms ago (every ${thresholds.heartbeatMs} ms expected)`);
  const report = seen.report;
  if (report === null) {
    if (seen.lifecycle === 'running') add('agent', 'degraded', 'no-health-answer', 'did not answer the health request in time');
  } else {
    if (report.halted !== null) add('agent', 'unhealthy', 'halted', `stopped trading: ${report.halted}`);
    if (report.replaying) add('agent', 'degraded', 'replaying', 'catching up on the steps it missed');
    const lag = seen.currentStep - report.lastStep;
    if (!report.replaying && report.lastStep >= 0 && lag > thresholds.maxLagSteps) add('agent', 'unhealthy', 'lagging', `${lag} steps behind the feed (at most ${thresholds.maxLagSteps})`);
    else if (!report.replaying && report.lastStep >= 0 && lag > 1) add('agent', 'degraded', 'lagging', `${lag} steps behind the feed`);
    if (seen.previousErrors !== null && report.errors > seen.previousErrors) add('agent', 'degraded', 'errors', `${report.errors - seen.previousErrors} new errors (${report.errors} in all)`);
    const checkpointAge = report.lastStep - report.checkpointedUpTo;
    if (seen.checkpoints && checkpointAge > 2 * thresholds.checkpointEverySteps) {
      add('agent', 'degraded', 'checkpoint-stale', `last checkpoint ${checkpointAge} steps ago (one every ${thresholds.checkpointEverySteps} expected)`);
    }
  }
  const resources = seen.sandbox.resources;
  if (resources !== null && resources.memTotalBytes > 0) {
    const used = resources.memUsedBytes / resources.memTotalBytes;
    const detail = `memory ${Math.round(resources.memUsedBytes / 2 ** 20)} of ${Math.round(resources.memTotalBytes / 2 ** 20)} MiB (${Math.round(used * 100)}%)`;
    if (used >= thresholds.memoryUnhealthyFraction) add('resources', 'unhealthy', 'memory', detail);
    else if (used >= thresholds.memoryDegradedFraction) add('resources', 'degraded', 'memory', detail);
  }
  if (resources !== null && resources.cpuUsedPct >= thresholds.cpuDegradedPct) add('resources', 'degraded', 'cpu', `CPU ${Math.round(resources.cpuUsedPct)}% of its cores`);
  const status = reasons.reduce<HealthStatus>((worst, reason) => worseOf(worst, reason.status), 'healthy');
  return { status, reasons };
}
