import { posix } from 'node:path';
import { AGENT_ENTRY, AGENT_ENV, type AgentConfig, CONTROL_PLANE_ID, ProbeMessage, swarmRegistry } from '../agent/index.js';
import { type Bus, type EmbeddedBroker, connectBus, startEmbeddedBroker, swarmTopics } from '../bus/index.js';
import { type Clock, type Logger, SystemClock, createLogger, errorMessage, randomId } from '../core/index.js';
import { type LocalCloud, startLocalCloud } from '../localcloud/index.js';
import { openArrayFeed, pace } from '../market/index.js';
import {
  type AgentSignal,
  DEFAULT_AGENT_DIR,
  LOCAL_CLOUD_RATE_LIMIT,
  type Sandbox,
  type SandboxConnection,
  type SandboxProvider,
  agentFiles,
  buildBundle,
  createSandboxProvider,
} from '../sandbox/index.js';
import type { TopologyPlan } from '../topology/index.js';
import { Deployment, planOf } from './deployment.js';
import { type SwarmEvent, SwarmStoppedError } from './fleet.js';
import type { SwarmReport } from './report.js';
import { SandboxLauncher } from './sandboxes.js';
import type { SwarmSpec } from './spec.js';

/** Where agents run. */
export type SandboxTarget =
  /** An embedded local cloud started for the run. */
  | {
      readonly kind: 'local';
      /**
       * Sandboxes the local cloud keeps started ahead of demand for the agent template, once it was
       * used (a restarted agent claims one). @default one per agent (at most 24)
       */
      readonly warmPoolSize?: number;
      /**
       * Fill that pool before deploying (and wait for it), so deployment only claims sandboxes and
       * `readyMs` leaves their creation out. @default false
       */
      readonly prewarm?: boolean;
    }
  /** E2B cloud (or any E2B-compatible API). */
  | { readonly kind: 'e2b'; readonly connection: SandboxConnection };

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
  const { spec, swarm: section, backtest } = swarmSpec;
  const swarmId = `${spec.name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60)}-${randomId().slice(0, 6)}`;
  const topics = swarmTopics(swarmId);
  if (options.signal?.aborted === true) throw new SwarmStoppedError(`stopped (${String(options.signal.reason)}) before any agent started; nothing was traded`);

  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch((error: unknown) => logger.warn({ err: errorMessage(error) }, 'close failed'));
  };
  try {
    // The bus.
    let broker: EmbeddedBroker | undefined;
    let brokerUrl = options.brokerUrl;
    if (brokerUrl === undefined) {
      broker = await startEmbeddedBroker({ logger: logger.child({ part: 'broker' }) });
      closers.push(() => (broker as EmbeddedBroker).close());
      brokerUrl = broker.url;
    }
    const bus = await connectBus({
      url: brokerUrl,
      clientId: `${CONTROL_PLANE_ID}-${randomId().slice(0, 6)}`,
      clock,
      registry: swarmRegistry,
      logger: logger.child({ part: 'bus' }),
      maxMessageBytes: 4 * 1024 * 1024,
      // Aedes speaks MQTT 3.1.1 only: asking for 5 first would cost every connection a refusal.
      ...(broker === undefined ? {} : { ...broker.adminCredentials, protocolVersion: 4 as const }),
    });
    closers.push(() => bus.close());
    const brokerRoundTripMs = broker === undefined ? await probeBroker(bus, topics.inbox(CONTROL_PLANE_ID), brokerUrl, logger) : null;

    // The sandboxes. A local cloud's agent template holds the bundle already (as a template built
    // for E2B can), so deploying an agent uploads nothing; elsewhere each sandbox gets it written.
    const bundle = await buildBundle({ entry: AGENT_ENTRY, logger });
    const target = options.sandbox ?? { kind: 'local' };
    let provider: SandboxProvider;
    if (target.kind === 'local') {
      const cloud: LocalCloud = await startLocalCloud({
        logger: logger.child({ part: 'localcloud' }),
        metricsIntervalMs: 0,
        warmPoolSize: target.warmPoolSize ?? Math.min(planOf(swarmSpec).agents.length, 24),
        templates: [{ name: section.template, files: Object.fromEntries(Object.entries(agentFiles(bundle)).map(([path, content]) => [posix.relative(posix.dirname(DEFAULT_AGENT_DIR), path), content])) }],
      });
      closers.push(() => cloud.close());
      if (target.prewarm === true) await cloud.sandboxes.prewarm(section.template);
      provider = createSandboxProvider({ connection: cloud.connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    } else {
      provider = createSandboxProvider({ connection: target.connection });
    }
    const busUrl = brokerUrl;
    const launcher = new SandboxLauncher({
      provider,
      template: section.template,
      bundle,
      swarmId,
      clock,
      logger,
      agentLogLevel: process.env.LOG_LEVEL ?? 'warn',
      busEnvOf: (config: AgentConfig) => {
        const credentials = broker?.issueCredentials({ swarmId, agentId: config.agentId, requestsTo: config.workers.map((worker) => worker.id) });
        return {
          [AGENT_ENV.busUrl]: busUrl,
          ...(credentials === undefined ? {} : { [AGENT_ENV.busUsername]: credentials.username, [AGENT_ENV.busPassword]: credentials.password, [AGENT_ENV.busProtocol]: '4' }),
        };
      },
    });

    const deployment = new Deployment({
      spec: swarmSpec,
      swarmId,
      bus,
      launcher,
      pacer: pace(openArrayFeed(backtest.bars), { clock, pacing: section.pacing }),
      clock,
      logger,
      unreadyHint: `check that sandboxes reach the broker at ${brokerUrl}`,
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
    return deployment.report({ sandbox: target.kind, broker: broker === undefined ? brokerUrl : `embedded ${broker.url}`, brokerRoundTripMs });
  } finally {
    await closeAll();
  }
}

/** Round trips above this are a broker holding small packets, not a network (one loopback hop is < 1 ms). */
const SLOW_ROUND_TRIP_MS = 20;

/**
 * Measures request/reply through an external broker (the median of 5 round trips to itself) and
 * warns when it is slow: orders travel by request/reply, and Mosquitto's default (Nagle's algorithm
 * on) adds about 40 ms to each, which no client setting can undo.
 */
async function probeBroker(bus: Bus, topic: string, brokerUrl: string, logger: Logger): Promise<number> {
  const served = await bus.serve(topic, (request) => (ProbeMessage.is(request) ? ProbeMessage.draft(request.payload) : undefined));
  const samples: number[] = [];
  try {
    for (let seq = 0; seq < 5; seq++) {
      const started = performance.now();
      await bus.request(topic, ProbeMessage.draft({ seq }), { timeoutMs: 5_000 });
      samples.push(performance.now() - started);
    }
  } finally {
    await served.unsubscribe();
  }
  const median = [...samples].sort((a, b) => a - b)[2] as number;
  if (median > SLOW_ROUND_TRIP_MS) {
    logger.warn(
      { brokerUrl, roundTripMs: Number(median.toFixed(1)) },
      `a request/reply round trip through ${brokerUrl} takes ${median.toFixed(1)} ms (median of 5; about 0.2 ms is usual on one machine): the broker holds small packets, so every step and order waits too. On Mosquitto set "set_tcp_nodelay true" in its configuration (see README, the message bus)`,
    );
  }
  return median;
}
