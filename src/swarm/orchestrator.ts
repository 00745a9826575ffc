import { posix } from 'node:path';
import {
  AGENT_ENTRY,
  AGENT_ENV,
  type AgentConfig,
  CONTROL_PLANE_ID,
  DecisionMessage,
  OrdersMessage,
  OrdersResultMessage,
  ProbeMessage,
  ReplayMessage,
  SignalMessage,
  type StepPayload,
  StepMessage,
  StepRefusedMessage,
  swarmRegistry,
} from '../agent/index.js';
import { type Bar, groupByTime } from '../market/index.js';
import type { RunWarning } from '../runspec/index.js';
import {
  type Bus,
  ControlMessage,
  type EmbeddedBroker,
  HeartbeatMessage,
  connectBus,
  startEmbeddedBroker,
  swarmTopics,
} from '../bus/index.js';
import { type Clock, type Logger, SystemClock, createLogger, errorMessage, randomId } from '../core/index.js';
import type { DecisionSummary } from '../decision/index.js';
import { type LocalCloud, startLocalCloud } from '../localcloud/index.js';
import { type AgentSignal, DEFAULT_AGENT_DIR, LOCAL_CLOUD_RATE_LIMIT, type Sandbox, type SandboxConnection, type SandboxProvider, agentFiles, buildBundle, createSandboxProvider } from '../sandbox/index.js';
import { buildStrategy } from '../strategy/index.js';
import { type AgentPlan, type TopologyPlan, planTopology } from '../topology/index.js';
import { type SessionReport, TradingSession, submitOrders } from '../trading/index.js';
import { AgentFleet, type AgentReport, type SwarmEvent, SwarmRunError, SwarmStoppedError, wait } from './fleet.js';
import { type AgentAbsence, absencesOf } from './absences.js';
import { type SwarmAgreement, type SwarmLatency, StepLedger } from './ledger.js';
import { type SwarmSpec, swarmSpecWarnings } from './spec.js';

/** Steps per replay message to a restarted agent. */
const REPLAY_CHUNK = 200;

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
 * How a run ended (the CLI's exit code follows it):
 * - `complete`: every step decided, every agent taking part (exit 0);
 * - `degraded`: every step decided, some without an agent lost for good (see `absences`; exit 3);
 * - `halted`: stopped before the end of the data by a fault: an essential agent lost, an agent lost
 *   for good under `onLostAgent: halt`, or the stall watchdog (see `halted`; exit 2);
 * - `stopped`: stopped on request, e.g. SIGINT (exit 130) or SIGTERM (exit 143).
 */
export type SwarmOutcome = 'complete' | 'degraded' | 'halted' | 'stopped';

/** The report of a swarm run. */
export interface SwarmReport extends SessionReport {
  readonly outcome: SwarmOutcome;
  readonly topology: string;
  readonly pacing: string;
  readonly sandbox: 'local' | 'e2b';
  readonly broker: string;
  /**
   * An external broker's request/reply round trip before the run (median of a few, ms); `null` on the
   * embedded broker. Tens of ms mean the broker holds small packets (Mosquitto without `set_tcp_nodelay true`).
   */
  readonly brokerRoundTripMs: number | null;
  /** `decided`: steps a decider answered; `refused`: times the ring refused a step (lockstep retries it). */
  readonly steps: { readonly total: number; readonly published: number; readonly decided: number; readonly refused: number };
  readonly agents: readonly AgentReport[];
  /**
   * What the decision pipeline did (consensus votes and agreement, allocator, risk states), as the
   * first deciding agent reported it in its last checkpoint; `null` when none reported.
   */
  readonly pipeline: DecisionSummary | null;
  /** Decisions of the same step by several agents (a mesh) that agreed, and the rate. */
  readonly agreement: SwarmAgreement;
  /** Orders the venue answered `duplicate` (a mesh's other deciders submitting the same order). */
  readonly duplicateOrders: number;
  readonly latencyMs: SwarmLatency;
  readonly messagesPerSecond: number;
  readonly messages: number;
  /**
   * Set when the run stopped before the end of the data (outcome `halted` or `stopped`): why, and
   * the first step it did not trade (steps before it were decided and closed at the venue).
   */
  readonly halted: { readonly reason: string; readonly atStep: number } | null;
  /** Steps decided without an agent that was lost (empty in a complete run). */
  readonly absences: readonly AgentAbsence[];
  readonly events: readonly SwarmEvent[];
  /** What the spec will not do as written (a warm-up longer than the data), as `tradeswarm backtest` finds it. */
  readonly warnings: readonly RunWarning[];
  /** Run time from the first step to the last decision, in ms. */
  readonly tradingMs: number;
  /** Time until every agent was ready, in ms. */
  readonly readyMs: number;
  readonly elapsedMs: number;
}

/**
 * Runs a swarm spec to completion: starts the bus and the sandboxes, deploys one agent per planned
 * role through the `e2b` SDK, publishes the data step by step, serves the venue, watches liveness
 * (restarting lost agents, halting a star without its hub), and reports.
 * @throws SwarmRunError when the swarm cannot start (a sandbox or an agent fails to come up).
 */
export async function runSwarm(options: RunSwarmOptions): Promise<SwarmReport> {
  const started = performance.now();
  const clock = options.clock ?? new SystemClock();
  const logger = options.logger ?? createLogger('swarm');
  const { spec: swarmSpec } = options;
  const { spec, swarm: section, backtest } = swarmSpec;
  const strategies = backtest.strategies;
  const plan = planTopology({
    topology: section.topology,
    strategies: spec.strategies.map((entry, i) => {
      const built = strategies[i] ?? buildStrategy(entry);
      return { name: built.name, symbols: built.symbols ?? [], capability: entry.type };
    }),
    ...(section.coordinators === undefined ? {} : { coordinators: section.coordinators }),
    routing: section.routing,
  });
  const swarmId = `${spec.name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60)}-${randomId().slice(0, 6)}`;
  const topics = swarmTopics(swarmId);
  const { symbols, steps } = groupByTime(backtest.bars);
  const warnings = swarmSpecWarnings(swarmSpec);
  const session = new TradingSession({
    swarm: spec.name,
    symbols,
    venue: backtest.venue ?? {},
    portfolio: backtest.portfolio ?? {},
    ...(backtest.endOfData === undefined ? {} : { endOfData: backtest.endOfData }),
    ...(backtest.periodsPerYear === undefined ? {} : { periodsPerYear: backtest.periodsPerYear }),
  });
  const allStrategies = strategies.map((strategy) => ({ name: strategy.name, symbols: [...(strategy.symbols ?? [])] }));
  const events: SwarmEvent[] = [];
  let currentStep = 0;
  const emit = (event: Omit<SwarmEvent, 'atStep'>): void => {
    const full = { ...event, atStep: currentStep };
    events.push(full);
    logger.info(full, 'swarm event');
    options.onEvent?.(full);
  };

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
        warmPoolSize: target.warmPoolSize ?? Math.min(plan.agents.length, 24),
        templates: [{ name: section.template, files: Object.fromEntries(Object.entries(agentFiles(bundle)).map(([path, content]) => [posix.relative(posix.dirname(DEFAULT_AGENT_DIR), path), content])) }],
      });
      closers.push(() => cloud.close());
      if (target.prewarm === true) await cloud.sandboxes.prewarm(section.template);
      provider = createSandboxProvider({ connection: cloud.connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
    } else {
      provider = createSandboxProvider({ connection: target.connection });
    }

    // Control-plane subscriptions: liveness, signals, decisions, the venue.
    const ledger = new StepLedger({ deciders: plan.deciders.length, ...(plan.entry === undefined ? {} : { entry: plan.entry }) });
    const history: StepPayload[] = [];
    /** Who took part in each step, as last published (absences are derived from it). */
    const participantsOf: string[][] = [];
    const refusals = new Set<number>();
    const refusalsNoted = new Set<number>();
    let halted: { reason: string; atStep: number } | null = null;
    let stopped = false;
    let waiter: (() => void) | undefined;
    const wake = (): void => {
      waiter?.();
    };
    const halt = (reason: string): void => {
      if (halted === null) halted = { reason, atStep: currentStep };
      wake();
    };
    const onAbort = (): void => {
      stopped = true;
      halt(`stopped by ${String(options.signal?.reason ?? 'request')}`);
    };
    if (options.signal?.aborted === true) throw new SwarmStoppedError(`stopped (${String(options.signal.reason)}) before any agent started; nothing was traded`);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    closers.push(() => {
      options.signal?.removeEventListener('abort', onAbort);
      return Promise.resolve();
    });
    const lockstep = section.pacing.mode === 'lockstep';
    const configOf = (agent: AgentPlan, replayFirst: boolean): AgentConfig => ({
      replayFirst,
      swarm: swarmId,
      agentId: agent.id,
      kind: agent.kind,
      strategies: agent.strategies.map((index) => ({ index, spec: spec.strategies[index] as AgentConfig['strategies'][number]['spec'] })),
      allStrategies,
      ...(agent.decides ? { pipeline: { ...(spec.consensus === undefined ? {} : { consensus: spec.consensus }), ...(spec.allocator === undefined ? {} : { allocator: spec.allocator }), ...(spec.risk === undefined ? {} : { risk: spec.risk }) } } : {}),
      submits: agent.submits,
      readsSteps: agent.readsSteps,
      upstream: [...agent.upstream],
      decisionsFrom: [...agent.decisionsFrom],
      requires: [...agent.requires],
      ring: [...agent.ring],
      workers: agent.workers.map((worker) => ({ id: worker.id, capabilities: [...worker.capabilities] })),
      routing: section.routing,
      capabilities: [...agent.capabilities],
      heartbeatMs: section.heartbeatMs,
      peerTimeoutMs: section.agentTimeoutMs,
      controlPlaneTimeoutMs: section.controlPlaneTimeoutMs,
      checkpointEverySteps: section.checkpointEverySteps,
      orderTimeoutMs: Math.max(section.stepTimeoutMs, 1_000),
    });
    const fleet: AgentFleet = new AgentFleet({
      agents: plan.agents,
      critical: plan.critical,
      swarmId,
      brokerUrl,
      template: section.template,
      provider,
      bundle,
      envOf: (agent, { replayFirst }) => {
        const credentials = broker?.issueCredentials({ swarmId, agentId: agent.id, requestsTo: agent.workers.map((worker) => worker.id) });
        return {
          [AGENT_ENV.busUrl]: brokerUrl,
          [AGENT_ENV.config]: JSON.stringify(configOf(agent, replayFirst)),
          ...(credentials === undefined ? {} : { [AGENT_ENV.busUsername]: credentials.username, [AGENT_ENV.busPassword]: credentials.password, [AGENT_ENV.busProtocol]: '4' }),
          [AGENT_ENV.logLevel]: process.env.LOG_LEVEL ?? 'warn',
        };
      },
      agentTimeoutMs: section.agentTimeoutMs,
      maxRestarts: section.maxRestarts,
      recoveryWaitMs: section.recoveryWaitMs,
      waitForLost: lockstep,
      clock,
      logger,
      emit,
      halt,
      // An agent lost for good: the run stops, unless the spec lets it go on and it can.
      onGone: (agent, why) => {
        const essential = plan.essential[agent.id];
        const lost = `${agent.id} lost for good (${why})`;
        if (essential !== undefined) halt(`${lost}; ${essential}`);
        else if (plan.deciders.every((id) => fleet.lifecycleOf(id) === 'gone')) halt(`${lost}; no decider is left`);
        else if (section.onLostAgent === 'halt') halt(`${lost}; swarm.onLostAgent is halt, so the run stops (set it to continue to decide without the agent)`);
        else logger.warn({ agent: agent.id, why }, 'an agent is lost for good; the following steps are decided without it (swarm.onLostAgent: continue)');
      },
      wake,
      // Rebuilds a restarted agent's strategies and pipeline from the steps it missed.
      replay: async (agent) => {
        const upTo = currentStep;
        const expected = new Set([agent.id, ...agent.upstream]);
        for (let from = 0; from === 0 || from < upTo; from += REPLAY_CHUNK) {
          const chunk = history.slice(from, Math.min(upTo, from + REPLAY_CHUNK));
          const signals = chunk.map((step) => ({ index: step.index, intents: ledger.signalsOf(step.index, expected) }));
          await bus.request(topics.inbox(agent.id), ReplayMessage.draft({ steps: chunk, signals, last: from + REPLAY_CHUNK >= upTo }), { timeoutMs: 30_000 });
        }
        return upTo;
      },
    });

    await bus.subscribe(topics.allHeartbeats(), (envelope) => fleet.heard(envelope));
    await bus.subscribe(topics.allSignals(), (envelope) => {
      if (SignalMessage.is(envelope) && fleet.has(envelope.from)) ledger.signal(envelope.from, envelope.payload.index, envelope.payload.intents);
    });
    await bus.subscribe(topics.allDecisions(), (envelope) => {
      if (StepRefusedMessage.is(envelope)) {
        // Told once per step: lockstep offers a refused step again and again until the ring takes it.
        if (!refusalsNoted.has(envelope.payload.index)) emit({ agent: envelope.from, kind: 'refused', detail: envelope.payload.reason });
        refusalsNoted.add(envelope.payload.index);
        refusals.add(envelope.payload.index);
        wake();
        return;
      }
      if (!DecisionMessage.is(envelope)) return;
      ledger.output(envelope.from, envelope.payload.index);
      if (!plan.deciders.includes(envelope.from)) return;
      if (ledger.decision(envelope.from, envelope.payload.index, envelope.payload.digest)) wake();
    });
    await bus.serve(topics.allOrders(), (request) => {
      if (!OrdersMessage.is(request)) throw new SwarmRunError(`expected an orders request, got ${request.type}`);
      const { index } = request.payload;
      const step = steps[index];
      if (step === undefined) throw new SwarmRunError(`orders for step ${index}, but the data has ${steps.length} steps`);
      const results = submitOrders(session, request.payload, step, ledger);
      wake();
      return OrdersResultMessage.draft({ index, results });
    });
    await bus.subscribe(topics.allCheckpoints(), (envelope) => fleet.checkpointed(envelope));

    // The control plane's heartbeat: agents exit when it stops.
    let beatSeq = 0;
    let beatTimer: ReturnType<Clock['setTimeout']> | undefined;
    const beat = (): void => {
      void bus.publish(topics.heartbeat(CONTROL_PLANE_ID), HeartbeatMessage.draft({ seq: beatSeq++, status: 'running' }), { qos: 0 }).catch(() => undefined);
      beatTimer = clock.setTimeout(beat, section.heartbeatMs);
    };
    beat();
    closers.push(() => {
      if (beatTimer !== undefined) clock.clearTimeout(beatTimer);
      return Promise.resolve();
    });

    closers.push(() => fleet.close());
    const readyMs = await fleet.deploy(options.signal);

    await options.onReady?.({
      plan,
      bus,
      swarmId,
      currentStep: () => currentStep,
      processes: () => fleet.processes(),
      kill: (agentId, signal) => fleet.kill(agentId, signal),
    });

    // The step loop.
    const tradingStarted = performance.now();
    const realtime = section.pacing.mode === 'realtime' ? section.pacing : undefined;
    let refusedCount = 0;
    let lastProgress = clock.now();
    let closedSteps = 0;
    // Steps go at QoS 0, as agents send signals and decisions (see AgentRuntime#publish): a lost step
    // is published again after stepTimeoutMs.
    const publishStep = async (payload: StepPayload): Promise<void> => {
      participantsOf[payload.index] = [...payload.participants];
      ledger.published(payload.index);
      await bus.publish(topics.step(), StepMessage.draft(payload), { qos: 0 });
    };
    const stepDone = (index: number): boolean => ledger.done(index, plan.deciders, (id) => fleet.isLive(id));
    /** Waits until something wakes the loop, or `ms` at the latest. */
    const nextChange = (ms: number): Promise<void> =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      }).finally(() => {
        waiter = undefined;
      });
    /** Where a stalled step stood: whose output the control plane has not seen, and how those agents are. */
    const stallReason = (index: number, step: readonly Bar[]): string => {
      const heard = ledger.outputsOf(index);
      const missing = (participantsOf[index] ?? [])
        .filter((id) => !heard.has(id))
        .map((id) => {
          const agent = plan.agents.find((candidate) => candidate.id === id);
          const what = plan.deciders.includes(id) || agent?.decides === true ? 'decision' : 'signal';
          return `no ${what} from ${id} (${fleet.lifecycleOf(id) ?? 'unknown'})`;
        });
      const when = new Date((step[0] as Bar).timeMs).toISOString().slice(0, 10);
      const idle = Math.round(clock.now() - lastProgress);
      return `stalled: no step decided for ${idle} ms (swarm.stallTimeoutMs ${section.stallTimeoutMs}) at step ${index} of ${steps.length} (${when}); waiting for: ${missing.length === 0 ? 'the venue (every agent answered)' : missing.join(', ')}`;
    };
    for (let index = 0; index < steps.length && halted === null; index++) {
      currentStep = index;
      const step = steps[index] as Bar[];
      const account = session.open(step);
      ledger.filled(session.stepFills());
      const payload: StepPayload = {
        index,
        bars: step.map((bar) => ({ ...bar })),
        account: { equity: account.equity, peakEquity: account.peakEquity, positions: [...account.positions] },
        participants: fleet.participants(),
      };
      history.push(payload);
      if (realtime !== undefined) {
        await publishStep(payload);
        const next = steps[index + 1];
        if (next !== undefined) await sleep(Math.max(0, ((next[0] as Bar).timeMs - (step[0] as Bar).timeMs) / realtime.speed), options.signal);
        fleet.checkLiveness();
      } else {
        await publishStep(payload);
        let lastPublish = clock.now();
        let seen = fleet.version;
        for (;;) {
          // A step decided by the time the run halts is still closed at the venue.
          if (stepDone(index)) {
            ledger.roundCompleted(index);
            break;
          }
          if (halted !== null) break;
          if (clock.now() - lastProgress > section.stallTimeoutMs) {
            const reason = stallReason(index, step);
            emit({ agent: CONTROL_PLANE_ID, kind: 'stall', detail: reason });
            halt(reason);
            break;
          }
          if (refusals.has(index)) {
            // The ring refused the step: try it again once its breaker may have closed.
            refusedCount += 1;
            refusals.delete(index);
            await nextChange(section.heartbeatMs);
            fleet.checkLiveness();
            if (halted !== null) break;
            await publishStep({ ...payload, participants: fleet.participants() });
            lastPublish = clock.now();
            continue;
          }
          await nextChange(Math.min(section.heartbeatMs, section.stepTimeoutMs));
          fleet.checkLiveness();
          if (halted !== null) break;
          if (fleet.version !== seen || clock.now() - lastPublish > section.stepTimeoutMs) {
            // Someone was lost, came back or is gone for good: publish the step again, so a restarted
            // agent gets it and deciders learn whom to wait for.
            seen = fleet.version;
            await publishStep({ ...payload, participants: fleet.participants() });
            lastPublish = clock.now();
          }
        }
      }
      if (halted !== null && !stepDone(index)) break;
      lastProgress = clock.now();
      session.close(step);
      closedSteps = index + 1;
      ledger.filled(session.stepFills());
      options.onProgress?.({ step: index + 1, steps: steps.length });
    }
    // A halted run stood at the first step it did not trade.
    if (halted !== null) halted = { ...(halted as { reason: string }), atStep: closedSteps };
    if (realtime !== undefined && halted === null) {
      // The last steps' decisions are still on their way: give them one step timeout.
      const deadline = performance.now() + section.stepTimeoutMs;
      while (!stepDone(steps.length - 1) && performance.now() < deadline && halted === null) await wait(5);
    }
    const tradingMs = performance.now() - tradingStarted;

    // Stop the agents and collect their last checkpoints.
    await fleet.stop(() => bus.publish(topics.controlAll(), ControlMessage.draft({ command: 'stop', reason: halted === null ? 'run finished' : 'run halted' })));
    await wait(50);

    const settled = session.settle();
    const messages = fleet.published() + bus.stats().published;
    const absences = absencesOf(plan, participantsOf.slice(0, closedSteps), lockstep ? 'decided without its signals (swarm.onLostAgent: continue)' : 'decided without its signals (realtime pacing does not wait for a lost agent)');
    return {
      ...settled.report,
      outcome: stopped ? 'stopped' : halted !== null ? 'halted' : absences.length > 0 ? 'degraded' : 'complete',
      absences,
      topology: plan.topology,
      pacing: realtime === undefined ? 'lockstep' : `realtime x${realtime.speed}`,
      sandbox: target.kind,
      broker: broker === undefined ? brokerUrl : `embedded ${broker.url}`,
      brokerRoundTripMs,
      steps: { total: steps.length, published: history.length, decided: ledger.decidedSteps, refused: refusedCount },
      agents: fleet.reports(),
      pipeline: fleet.pipelineOf(plan.agents.filter((agent) => agent.decides).map((agent) => agent.id)),
      agreement: ledger.agreement(),
      duplicateOrders: ledger.duplicateOrders,
      latencyMs: ledger.latency(),
      messages,
      messagesPerSecond: tradingMs > 0 ? (messages / tradingMs) * 1000 : 0,
      halted,
      events,
      warnings,
      tradingMs,
      readyMs,
      elapsedMs: performance.now() - started,
    };
  } finally {
    await closeAll();
  }
}

/** Sleeps `ms`, or less when `signal` aborts meanwhile. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
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
