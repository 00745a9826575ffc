import type { Bus } from '../bus/index.js';
import { type Clock, type Logger, SystemClock, createLogger, errorMessage, randomId } from '../core/index.js';
import { pace } from '../market/index.js';
import type { AgentSignal, Sandbox, TierName } from '../sandbox/index.js';
import type { EquityPoint } from '../portfolio/index.js';
import type { AgentPlan, TopologyPlan } from '../topology/index.js';
import { Deployment } from './deployment.js';
import { openSwarmFeed } from './feeds.js';
import { type SwarmEvent, SwarmStoppedError } from './fleet.js';
import type { SwarmReport } from './report.js';
import { type SandboxTarget, startSwarmRuntime } from './runtime.js';
import { type SwarmSpec, planOf, requestedTierOf } from './spec.js';

/** The tier of a role `swarm.resources` names none for, in a run (which has no environment). */
const RUN_DEFAULT_TIER: TierName = 'T1';

/** Options of {@link runSwarm}. */
export interface RunSwarmOptions {
  readonly spec: SwarmSpec;
  /** @default { kind: 'local' } */
  readonly sandbox?: SandboxTarget;
  /**
   * An external MQTT broker (`mqtt://…`, `ws://…`) that agents and the control plane reach. Agents
   * connect anonymously. @default an embedded broker with per-agent credentials
   */
  readonly brokerUrl?: string;
  /** Called after every decided step. */
  readonly onProgress?: (progress: { readonly step: number; readonly steps: number }) => void;
  /** Called once per lifecycle event (agent lost, restarted, halted…), as it happens. */
  readonly onEvent?: (event: SwarmEvent) => void;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /**
   * Stops the run when aborted (the CLI aborts on SIGINT and SIGTERM): no further step is
   * published, agents are told to stop (each checkpoints), sandboxes are killed, and the partial
   * report comes back with outcome `stopped`. Before trading began, `runSwarm` throws
   * SwarmStoppedError instead.
   */
  readonly signal?: AbortSignal;
  /** Called once, after the report is made, with the account's equity curve (for `tradeswarm run --html`). */
  readonly onEquityCurve?: (curve: readonly EquityPoint[]) => void;
  /** Test hook: called once every agent is ready, with handles to kill them. */
  readonly onReady?: (run: RunningSwarm) => void | Promise<void>;
}

/** What a test (or an operator) can do to a running swarm. */
export interface RunningSwarm {
  readonly plan: TopologyPlan;
  /** Sends a signal to an agent's process: SIGKILL (the default) as a crash would, SIGSTOP to make it hang. */
  kill(agentId: string, signal?: AgentSignal): Promise<void>;
  /** Each agent's sandbox and process id in it (to inspect it through the SDK). */
  processes(): ReadonlyArray<{ readonly id: string; readonly sandbox: Sandbox; readonly pid: number }>;
  /** The step index the control plane is on. */
  currentStep(): number;
  /** Sends a `task` to a coordinator and waits for the answer (hierarchical). */
  readonly bus: Bus;
  readonly swarmId: string;
}

/**
 * Runs a swarm spec to completion, the one-shot form of a {@link Deployment}: starts the bus (an
 * embedded broker, or the one at `brokerUrl`) and the sandboxes (an embedded local cloud, or E2B),
 * deploys one agent per planned role through the `e2b` SDK, trades the spec's data step by step,
 * and reports; then stops everything it started.
 * @throws SwarmRunError when the swarm cannot start (a sandbox or an agent fails to come up);
 *   SwarmStoppedError when `signal` aborts before trading began.
 */
export async function runSwarm(options: RunSwarmOptions): Promise<SwarmReport> {
  const clock = options.clock ?? new SystemClock();
  const logger = options.logger ?? createLogger('swarm');
  const { spec: swarmSpec } = options;
  const { spec, swarm: section } = swarmSpec;
  const swarmId = `${spec.name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60)}-${randomId().slice(0, 6)}`;
  if (options.signal?.aborted === true) throw new SwarmStoppedError(`stopped (${String(options.signal.reason)}) before any agent started; nothing was traded`);

  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch((error: unknown) => logger.warn({ err: errorMessage(error) }, 'close failed'));
  };
  try {
    const target = options.sandbox ?? { kind: 'local' };
    // A run has no environment: every tier is allowed, and a role that names none gets the smallest.
    const { agents } = planOf(swarmSpec);
    const tierOf = (agent: AgentPlan): TierName => requestedTierOf(section, agent)?.tier ?? RUN_DEFAULT_TIER;
    const runtime = await startSwarmRuntime({
      sandbox: target,
      ...(options.brokerUrl === undefined ? {} : { brokerUrl: options.brokerUrl }),
      templates: [section.template],
      prewarmTiers: [...new Set(agents.map(tierOf))],
      warmPoolSize: Math.min(agents.length, 24),
      clock,
      logger,
    });
    closers.push(() => runtime.close());
    const { bus } = runtime;
    const launcher = runtime.launcher({ swarmId, template: section.template, tierOf });
    const feed = await openSwarmFeed({ spec: swarmSpec, swarmId, bus, clock, logger });
    closers.push(() => feed.close());

    const deployment = new Deployment({
      spec: swarmSpec,
      swarmId,
      bus,
      launcher,
      pacer: pace(feed, { clock, pacing: section.pacing }),
      clock,
      deafness: runtime.deafness,
      logger,
      unreadyHint: `check that sandboxes reach the broker at ${runtime.brokerUrl}`,
      ...(options.onProgress === undefined ? {} : { onProgress: ({ step, steps }) => options.onProgress?.({ step, steps: steps ?? step }) }),
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    });
    closers.push(() => deployment.close());
    const onAbort = (): void => deployment.stop(String(options.signal?.reason ?? 'request'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    closers.push(() => {
      options.signal?.removeEventListener('abort', onAbort);
      return Promise.resolve();
    });

    await deployment.start();
    await options.onReady?.({
      plan: deployment.plan,
      bus,
      swarmId,
      currentStep: () => deployment.currentStep,
      processes: () =>
        deployment.processes().map(({ id, placement, pid }) => ({ id, pid, sandbox: launcher.sandboxOf(placement) as Sandbox })),
      kill: (agentId, signal) => deployment.kill(agentId, signal),
    });
    await deployment.run();
    const report = deployment.report(runtime.placement());
    options.onEquityCurve?.(deployment.equityCurve());
    return report;
  } finally {
    await closeAll();
  }
}
