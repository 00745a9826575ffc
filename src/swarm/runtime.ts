import { posix } from 'node:path';
import { AGENT_ENTRY, AGENT_ENV, type AgentConfig, CONTROL_PLANE_ID, ProbeMessage, swarmRegistry } from '../agent/index.js';
import { type Bus, type EmbeddedBroker, connectBus, startEmbeddedBroker, swarmTopics } from '../bus/index.js';
import { type Clock, type Deafness, DeafnessMeter, type Logger, errorMessage, randomId } from '../core/index.js';
import { BarMessage } from '../livefeed/index.js';
import { type LocalCloud, startLocalCloud } from '../localcloud/index.js';
import {
  DEFAULT_AGENT_DIR,
  LOCAL_CLOUD_RATE_LIMIT,
  type SandboxConnection,
  type SandboxProvider,
  RESOURCE_TIERS,
  TIER_NAMES,
  type TierName,
  agentFiles,
  buildBundle,
  createSandboxProvider,
  tierTemplateName,
} from '../sandbox/index.js';
import type { AgentPlan } from '../topology/index.js';
import type { DeploymentPlacement } from './deployment.js';
import { SandboxLauncher } from './sandboxes.js';

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

/** Options of {@link startSwarmRuntime}. */
export interface SwarmRuntimeOptions {
  /** @default { kind: 'local' } */
  readonly sandbox?: SandboxTarget;
  /**
   * An external MQTT broker (`mqtt://…`, `ws://…`) that agents and the control plane reach. Agents
   * connect anonymously. @default an embedded broker with per-agent credentials
   */
  readonly brokerUrl?: string;
  /**
   * The templates agents run in. On an embedded local cloud each is made with the agent bundle in it,
   * and so is one of each resource tier's size, named `<template>-t1` … `<template>-t4`.
   */
  readonly templates: readonly string[];
  /** The tiers whose templates a local target's `prewarm` fills. @default every tier */
  readonly prewarmTiers?: readonly TierName[];
  /** @default 24 (see {@link SandboxTarget}) */
  readonly warmPoolSize?: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Options of {@link SwarmRuntime.launcher}. */
export interface SwarmLauncherOptions {
  readonly swarmId: string;
  /** One of the runtime's templates. */
  readonly template: string;
  /** Env vars every agent of the swarm gets besides its config and bus settings. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Each agent's resource tier. On the embedded local cloud the agent runs in `template`'s template
   * of that size; elsewhere in the tier's template of `tierTemplates`, or, for a tier it leaves out,
   * in `template` itself (whatever its size: a warning says so). @default every agent in `template`, without a tier
   */
  readonly tierOf?: (agent: AgentPlan) => TierName;
  /** Off the local cloud: the template of each tier's size (an environment's `tierTemplates`). */
  readonly tierTemplates?: Readonly<Partial<Record<TierName, string>>>;
}

/**
 * What swarms run on, started once and shared: the bus (an embedded broker, or an external one),
 * the sandboxes (an embedded local cloud, or E2B through the same SDK) and the agent bundle. `run`
 * starts one for its single swarm; `serve` one for every deployment it keeps.
 */
export interface SwarmRuntime {
  /** The control plane's bus connection. */
  readonly bus: Bus;
  readonly brokerUrl: string;
  readonly provider: SandboxProvider;
  readonly sandboxKind: SandboxTarget['kind'];
  /** The templates agents can run in. */
  readonly templates: readonly string[];
  /** When this process could not listen (its event loop did not run): deployments leave it out of agents' silence. */
  readonly deafness: Deafness;
  /** A launcher for one swarm's agents (close it to kill their sandboxes). */
  launcher(options: SwarmLauncherOptions): SandboxLauncher;
  /** How swarms on this runtime are placed, for reports. */
  placement(): DeploymentPlacement;
  /** Stops what the runtime started, in reverse order. */
  close(): Promise<void>;
}

/**
 * Starts a {@link SwarmRuntime}: the broker (unless one is given), the control plane's bus
 * connection (measuring an external broker's round trip), the agent bundle, and the embedded local
 * cloud with the templates (unless sandboxes are on E2B).
 */
export async function startSwarmRuntime(options: SwarmRuntimeOptions): Promise<SwarmRuntime> {
  const { clock, logger } = options;
  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch((error: unknown) => logger.warn({ err: errorMessage(error) }, 'close failed'));
  };
  try {
    const deafness = new DeafnessMeter({ clock, logger });
    closers.push(() => Promise.resolve(deafness.close()));
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
      // Bars published into a deployment (its `bus` feed) come as `bar` messages.
      registry: swarmRegistry.with(BarMessage),
      logger: logger.child({ part: 'bus' }),
      maxMessageBytes: 4 * 1024 * 1024,
      // Aedes speaks MQTT 3.1.1 only: asking for 5 first would cost every connection a refusal.
      ...(broker === undefined ? {} : { ...broker.adminCredentials, protocolVersion: 4 as const }),
    });
    closers.push(() => bus.close());
    const brokerRoundTripMs = broker === undefined ? await probeBroker(bus, swarmTopics(`probe-${randomId().slice(0, 6)}`).inbox(CONTROL_PLANE_ID), brokerUrl, logger) : null;

    // A local cloud's agent templates hold the bundle already (as a template built for E2B can), so
    // deploying an agent uploads nothing; elsewhere each sandbox gets it written.
    const bundle = await buildBundle({ entry: AGENT_ENTRY, logger });
    const target = options.sandbox ?? { kind: 'local' };
    let provider: SandboxProvider;
    if (target.kind === 'local') {
      const files = Object.fromEntries(Object.entries(agentFiles(bundle)).map(([path, content]) => [posix.relative(posix.dirname(DEFAULT_AGENT_DIR), path), content]));
      const cloud: LocalCloud = await startLocalCloud({
        logger: logger.child({ part: 'localcloud' }),
        metricsIntervalMs: 0,
        warmPoolSize: target.warmPoolSize ?? options.warmPoolSize ?? 24,
        // Each template as it is, and one of each tier's size (a T3 or T4 on a machine of fewer cores
        // gets the machine's cores: the local cloud says so when it starts).
        templates: [...new Set(options.templates)].flatMap((name) => [
          { name, files },
          ...TIER_NAMES.map((tier) => ({ name: tierTemplateName(name, tier), files, cpuCount: RESOURCE_TIERS[tier].cpus, memoryMB: RESOURCE_TIERS[tier].memoryMB, diskMB: RESOURCE_TIERS[tier].diskMB })),
        ]),
      });
      closers.push(() => cloud.close());
      if (target.prewarm === true) {
        for (const template of new Set(options.templates)) for (const tier of options.prewarmTiers ?? TIER_NAMES) await cloud.sandboxes.prewarm(tierTemplateName(template, tier));
      }
      provider = createSandboxProvider({ connection: cloud.connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    } else {
      provider = createSandboxProvider({ connection: target.connection });
    }
    const busUrl = brokerUrl;
    return {
      bus,
      brokerUrl,
      provider,
      sandboxKind: target.kind,
      templates: [...new Set(options.templates)],
      deafness,
      launcher: ({ swarmId, template, env, tierOf, tierTemplates }) => {
        // One set of credentials per agent for the launcher's life: issuing again replaces the
        // password, which would refuse a process of the agent still connecting (its standby starts
        // beside it, a restart beside a process that is only slow). Old processes are fenced by epoch.
        const issued = new Map<string, ReturnType<NonNullable<typeof broker>['issueCredentials']>>();
        const credentialsOf = (config: AgentConfig): ReturnType<NonNullable<typeof broker>['issueCredentials']> | undefined => {
          if (broker === undefined) return undefined;
          const known = issued.get(config.agentId) ?? broker.issueCredentials({ swarmId, agentId: config.agentId, requestsTo: config.workers.map((worker) => worker.id) });
          issued.set(config.agentId, known);
          return known;
        };
        // Off the local cloud a tier without a template of its own runs in `template`: said once per tier.
        const untemplated = new Set<TierName>();
        const templateOfTier = (tier: TierName): string => {
          if (target.kind === 'local') return tierTemplateName(template, tier);
          const named = tierTemplates?.[tier];
          if (named !== undefined) return named;
          if (!untemplated.has(tier)) {
            untemplated.add(tier);
            logger.warn(
              { swarm: swarmId, tier, template },
              `tier ${tier} has no template of its own on ${target.kind}: its agents run in ${template}, whatever its size (name one in the config file's environments.<env>.tierTemplates.${tier})`,
            );
          }
          return template;
        };
        return new SandboxLauncher({
          provider,
          template,
          ...(tierOf === undefined ? {} : { sizeOf: (agent: AgentPlan) => ({ tier: tierOf(agent), template: templateOfTier(tierOf(agent)) }) }),
          bundle,
          swarmId,
          clock,
          logger,
          agentLogLevel: process.env.LOG_LEVEL ?? 'warn',
          // Agents outlive this process where neither their sandboxes nor their broker are its own.
          handOver: target.kind === 'e2b' && broker === undefined,
          busEnvOf: (config: AgentConfig) => {
            const credentials = credentialsOf(config);
            return {
              ...env,
              [AGENT_ENV.busUrl]: busUrl,
              ...(credentials === undefined ? {} : { [AGENT_ENV.busUsername]: credentials.username, [AGENT_ENV.busPassword]: credentials.password, [AGENT_ENV.busProtocol]: '4' }),
            };
          },
        });
      },
      placement: () => ({ sandbox: target.kind, broker: broker === undefined ? busUrl : `embedded ${broker.url}`, brokerRoundTripMs }),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
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
