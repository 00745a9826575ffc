import { posix } from 'node:path';
import { Sandbox } from 'e2b';
import {
  AGENT_ENTRY,
  AGENT_ENV,
  type AgentConfig,
  CONTROL_PLANE_ID,
  DecisionMessage,
  type IntentPayload,
  OrdersMessage,
  OrdersResultMessage,
  ReplayMessage,
  SignalMessage,
  type StepPayload,
  StepMessage,
  StepRefusedMessage,
  swarmRegistry,
} from '../agent/index.js';
import { type Bar } from '../market/index.js';
import { type SessionReport, TradingSession, buildStrategy, groupByTime } from '../backtest/index.js';
import {
  type Bus,
  CheckpointMessage,
  ControlMessage,
  type EmbeddedBroker,
  HeartbeatMessage,
  connectBus,
  startEmbeddedBroker,
  swarmTopics,
} from '../bus/index.js';
import { type Clock, type Logger, SystemClock, TradeswarmError, createLogger, errorMessage, randomId } from '../core/index.js';
import { type LocalCloud, startLocalCloud } from '../localcloud/index.js';
import { DEFAULT_AGENT_DIR, type DeployedAgent, buildBundle, defaultBundlePath, deployAgent } from '../sandbox/index.js';
import type { DecisionSummary } from '../strategy/index.js';
import { type AgentPlan, type TopologyPlan, planTopology } from '../topology/index.js';
import type { SwarmSpec } from './spec.js';
import { type LatencySummary, summarize } from './stats.js';

/** Where agents run. */
export type SandboxTarget =
  /** An embedded local cloud started for the run. */
  | {
      readonly kind: 'local';
      /** Sandboxes the local cloud keeps ready before agents are deployed. @default one per agent (at most 24) */
      readonly warmPoolSize?: number;
    }
  /** E2B cloud (or any E2B-compatible API): `Sandbox.create` connection options. */
  | { readonly kind: 'e2b'; readonly connection: { readonly apiKey: string; readonly apiUrl?: string; readonly domain?: string } };

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
  /** Test hook: called once every agent is ready, with handles to kill them. */
  readonly onReady?: (run: RunningSwarm) => void | Promise<void>;
}

/** What a test (or an operator) can do to a running swarm. */
export interface RunningSwarm {
  readonly plan: TopologyPlan;
  /** Kills an agent's process (SIGKILL) as a crash would. */
  kill(agentId: string): Promise<void>;
  /** Each agent's sandbox and process id in it (to inspect it through the SDK). */
  processes(): ReadonlyArray<{ readonly id: string; readonly sandbox: Sandbox; readonly pid: number }>;
  /** The step index the control plane is on. */
  currentStep(): number;
  /** Sends a `task` to a coordinator and waits for the answer (hierarchical). */
  readonly bus: Bus;
  readonly swarmId: string;
}

/** Something that happened to the swarm during the run. */
export interface SwarmEvent {
  readonly atStep: number;
  readonly agent: string;
  readonly kind: 'lost' | 'restarted' | 'restart-failed' | 'halted' | 'refused';
  readonly detail: string;
}

/** One agent's line in the report. */
export interface AgentReport {
  readonly id: string;
  readonly label: string;
  readonly kind: string;
  readonly sandboxId: string;
  /** Sandbox creation, bundle write, process start, first heartbeat: ms from the start of deployment. */
  readonly startMs: { readonly sandbox: number; readonly write: number; readonly process: number; readonly ready: number };
  /** Whether the bundle was uploaded into its sandbox (`false`: the template held it already). */
  readonly bundleUploaded: boolean;
  readonly messagesIn: number | null;
  readonly messagesOut: number | null;
  readonly decisions: number | null;
  readonly errors: number | null;
  readonly restarts: number;
  /** How it ended: `stopped` (exit 0), `lost`, or the exit code. */
  readonly status: string;
}

/** The report of a swarm run. */
export interface SwarmReport extends SessionReport {
  readonly topology: string;
  readonly pacing: string;
  readonly sandbox: 'local' | 'e2b';
  readonly broker: string;
  /** `decided`: steps a decider answered; `refused`: times the ring refused a step (lockstep retries it). */
  readonly steps: { readonly total: number; readonly published: number; readonly decided: number; readonly refused: number };
  readonly agents: readonly AgentReport[];
  /**
   * What the decision pipeline did (consensus votes and agreement, allocator, risk states), as the
   * first deciding agent reported it in its last checkpoint; `null` when none reported.
   */
  readonly pipeline: DecisionSummary | null;
  /** Decisions of the same step by several agents (a mesh) that agreed, and the rate. */
  readonly agreement: { readonly compared: number; readonly agreed: number; readonly rate: number | null };
  /** Orders the venue answered `duplicate` (a mesh's other deciders submitting the same order). */
  readonly duplicateOrders: number;
  readonly latencyMs: {
    readonly barToSignal: LatencySummary | null;
    readonly signalToDecision: LatencySummary | null;
    readonly barToOrder: LatencySummary | null;
    readonly orderToFill: LatencySummary | null;
    /** From the step that decided an order being published to the order's fill. */
    readonly barToFill: LatencySummary | null;
    /** Lockstep: from a step being published to every live decider having decided it (a consensus round in a mesh). */
    readonly stepRound: LatencySummary | null;
  };
  readonly messagesPerSecond: number;
  readonly messages: number;
  /** Set when the run stopped before the end of the data. */
  readonly halted: { readonly reason: string; readonly atStep: number } | null;
  readonly events: readonly SwarmEvent[];
  /** Run time from the first step to the last decision, in ms. */
  readonly tradingMs: number;
  /** Time until every agent was ready, in ms. */
  readonly readyMs: number;
  readonly elapsedMs: number;
}

/** The run could not start or was cut short by a fault of its own (not an agent's). */
export class SwarmRunError extends TradeswarmError {
  override readonly name = 'SwarmRunError';
}

interface AgentState {
  readonly plan: AgentPlan;
  sandbox: Sandbox;
  deployed: DeployedAgent;
  alive: boolean;
  ready: boolean;
  lastHeardMs: number;
  restarts: number;
  restarting: boolean;
  startMs: AgentReport['startMs'];
  counters: Record<string, number> | undefined;
  bus: { published: number; received: number } | undefined;
  pipeline: DecisionSummary | undefined;
  exitCode: number | undefined;
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
      ...(broker === undefined ? {} : broker.adminCredentials),
    });
    closers.push(() => bus.close());

    // The sandboxes. A local cloud's agent template holds the bundle already (as a template built
    // for E2B can), so deploying an agent uploads nothing; elsewhere each sandbox gets it written.
    const bundle = await buildBundle({ entry: AGENT_ENTRY, logger });
    const target = options.sandbox ?? { kind: 'local' };
    let connection: Record<string, unknown>;
    if (target.kind === 'local') {
      const cloud: LocalCloud = await startLocalCloud({
        logger: logger.child({ part: 'localcloud' }),
        metricsIntervalMs: 0,
        warmPoolSize: target.warmPoolSize ?? Math.min(plan.agents.length, 24),
        templates: [{ name: section.template, files: { [posix.relative(posix.dirname(DEFAULT_AGENT_DIR), defaultBundlePath(bundle))]: bundle.code } }],
      });
      closers.push(() => cloud.close());
      connection = { ...cloud.connection };
    } else {
      connection = { ...target.connection };
    }

    // Control-plane subscriptions: liveness, signals, decisions, the venue.
    const agents = new Map<string, AgentState>();
    const published = new Map<number, number>();
    const signalsByStep = new Map<number, Map<string, IntentPayload[]>>();
    const signalAt = new Map<number, number>();
    const decisions = new Map<number, Map<string, string>>();
    /** Steps whose orders reached the venue (later deciders of a mesh repeat them). */
    const ordered = new Set<number>();
    const orderAt = new Map<string, number>();
    const barToSignal: number[] = [];
    const signalToDecision: number[] = [];
    const barToOrder: number[] = [];
    const orderToFill: number[] = [];
    const barToFill: number[] = [];
    const stepRound: number[] = [];
    /** The step each accepted order was decided on. */
    const orderStep = new Map<string, number>();
    const history: StepPayload[] = [];
    const refusals = new Set<number>();
    let duplicateOrders = 0;
    let compared = 0;
    let agreed = 0;
    let waiter: (() => void) | undefined;
    const wake = (): void => {
      waiter?.();
    };

    await bus.subscribe(topics.allHeartbeats(), (envelope) => {
      const agent = agents.get(envelope.from);
      if (agent === undefined || !HeartbeatMessage.is(envelope)) return;
      if (envelope.payload.status === 'lost') {
        if (agent.ready && !agent.restarting) lose(agent, 'its connection dropped (the broker published its last will)');
        return;
      }
      agent.lastHeardMs = clock.now();
      if (!agent.ready) {
        agent.ready = true;
        agent.startMs = { ...agent.startMs, ready: performance.now() - deployStarted };
        wake();
      }
    });
    await bus.subscribe(topics.allSignals(), (envelope) => {
      if (!SignalMessage.is(envelope) || !agents.has(envelope.from)) return;
      const { index, intents } = envelope.payload;
      const at = published.get(index);
      // A ring's entry forwards the step without deciding anything: not a signal.
      if (at !== undefined && envelope.from !== plan.entry) barToSignal.push(performance.now() - at);
      signalAt.set(index, performance.now());
      let byAgent = signalsByStep.get(index);
      if (byAgent === undefined) signalsByStep.set(index, (byAgent = new Map<string, IntentPayload[]>()));
      byAgent.set(envelope.from, intents);
    });
    await bus.subscribe(topics.allDecisions(), (envelope) => {
      if (StepRefusedMessage.is(envelope)) {
        if (!refusals.has(envelope.payload.index)) emit({ agent: envelope.from, kind: 'refused', detail: envelope.payload.reason });
        refusals.add(envelope.payload.index);
        wake();
        return;
      }
      if (!DecisionMessage.is(envelope) || !plan.deciders.includes(envelope.from)) return;
      const { index, digest } = envelope.payload;
      let byAgent = decisions.get(index);
      if (byAgent === undefined) decisions.set(index, (byAgent = new Map<string, string>()));
      if (byAgent.has(envelope.from)) return; // sent again for a repeated step
      if (byAgent.size > 0) {
        compared += 1;
        if ([...byAgent.values()][0] === digest) agreed += 1;
      } else {
        const last = signalAt.get(index);
        if (last !== undefined) signalToDecision.push(performance.now() - last);
      }
      byAgent.set(envelope.from, digest);
      wake();
    });
    await bus.serve(topics.allOrders(), (request) => {
      if (!OrdersMessage.is(request)) throw new SwarmRunError(`expected an orders request, got ${request.type}`);
      const { index, approved, rejected } = request.payload;
      const step = steps[index];
      if (step === undefined) throw new SwarmRunError(`orders for step ${index}, but the data has ${steps.length} steps`);
      const now = performance.now();
      if (!ordered.has(index)) {
        ordered.add(index);
        const at = published.get(index);
        if (at !== undefined) barToOrder.push(now - at);
        session.reject(rejected.map((rejection) => ({ ...rejection, intent: rejection.intent })), index);
      }
      const submitted = session.submit(approved, index, step);
      const results = submitted.map(({ clientOrderId, result }) => {
        if (result.status === 'duplicate') duplicateOrders += 1;
        else if (result.status === 'accepted') {
          orderAt.set(clientOrderId, now);
          orderStep.set(clientOrderId, index);
        }
        return { clientOrderId, status: result.status, ...(result.reason === undefined ? {} : { reason: result.reason }) };
      });
      wake();
      return OrdersResultMessage.draft({ index, results });
    });
    await bus.subscribe(topics.allCheckpoints(), (envelope) => {
      const agent = agents.get(envelope.from);
      if (agent === undefined || !CheckpointMessage.is(envelope)) return;
      const state = envelope.payload.state as { counters?: Record<string, number>; bus?: { published: number; received: number }; pipeline?: DecisionSummary | null } | null;
      if (state?.counters !== undefined) agent.counters = state.counters;
      if (state?.pipeline !== undefined && state.pipeline !== null) agent.pipeline = state.pipeline;
      if (state?.bus !== undefined) agent.bus = state.bus;
    });

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

    // Deploy the agents.
    let stopping = false;
    let halted: { reason: string; atStep: number } | null = null;
    const deployStarted = performance.now();
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
    const envOf = (agent: AgentPlan, replayFirst: boolean): Record<string, string> => {
      const credentials = broker?.issueCredentials({ swarmId, agentId: agent.id });
      return {
        [AGENT_ENV.busUrl]: brokerUrl,
        [AGENT_ENV.config]: JSON.stringify(configOf(agent, replayFirst)),
        ...(credentials === undefined ? {} : { [AGENT_ENV.busUsername]: credentials.username, [AGENT_ENV.busPassword]: credentials.password }),
        [AGENT_ENV.logLevel]: process.env.LOG_LEVEL ?? 'warn',
      };
    };
    const start = async (agent: AgentPlan, sandbox: Sandbox | undefined, restarting = false) => {
      const t0 = performance.now();
      const box = sandbox ?? (await Sandbox.create(section.template, { ...connection, metadata: { tradeswarm: 'swarm-agent', swarm: swarmId, agent: agent.id } }));
      const created = performance.now() - t0;
      const deployed = await deployAgent(box, {
        bundle,
        skipWriteIfPresent: true,
        name: agent.id,
        env: envOf(agent, restarting),
        onStderr: (line) => logger.debug({ agent: agent.id, line }, 'agent stderr'),
      });
      return { box, deployed, created };
    };
    await Promise.all(
      plan.agents.map(async (agentPlan) => {
        const { box, deployed, created } = await start(agentPlan, undefined);
        const state: AgentState = {
          plan: agentPlan,
          sandbox: box,
          deployed,
          alive: true,
          ready: false,
          lastHeardMs: clock.now(),
          restarts: 0,
          restarting: false,
          startMs: { sandbox: created, write: deployed.timings.writeMs, process: deployed.timings.startMs, ready: Number.NaN },
          counters: undefined,
          bus: undefined,
          pipeline: undefined,
          exitCode: undefined,
        };
        agents.set(agentPlan.id, state);
        watchExit(state);
      }),
    );
    closers.push(async () => {
      await Promise.all([...agents.values()].map((agent) => agent.sandbox.kill().catch(() => undefined)));
    });

    function watchExit(state: AgentState): void {
      const deployed = state.deployed;
      void deployed.exited.then((exit) => {
        if (state.deployed !== deployed) return;
        state.exitCode = exit.exitCode;
        if (state.alive && !stopping) lose(state, `process exited with code ${exit.exitCode}${deployed.stderrTail().length > 0 ? `: ${deployed.stderrTail().slice(-3).join(' | ')}` : ''}`);
      });
    }

    // Wait for every agent's first heartbeat.
    const readyDeadline = clock.now() + Math.max(30_000, section.agentTimeoutMs);
    while (![...agents.values()].every((agent) => agent.ready)) {
      const failed = [...agents.values()].find((agent) => agent.exitCode !== undefined);
      if (failed !== undefined) {
        throw new SwarmRunError(`agent ${failed.plan.id} exited with code ${failed.exitCode} before it was ready: ${failed.deployed.stderrTail().slice(-5).join('\n')}`);
      }
      if (clock.now() > readyDeadline) {
        const missing = [...agents.values()].filter((agent) => !agent.ready).map((agent) => agent.plan.id);
        throw new SwarmRunError(`agents ${missing.join(', ')} sent no heartbeat within ${readyDeadline} ms; check that sandboxes reach the broker at ${brokerUrl}`);
      }
      await wait(50);
    }
    const readyMs = performance.now() - deployStarted;

    function lose(state: AgentState, detail: string): void {
      if (!state.alive) return;
      state.alive = false;
      emit({ agent: state.plan.id, kind: 'lost', detail });
      if (state.plan.id === plan.critical) {
        halted = { reason: `${state.plan.label} ${state.plan.id} lost (${detail}); its spokes stopped trading`, atStep: currentStep };
        emit({ agent: state.plan.id, kind: 'halted', detail: halted.reason });
        wake();
        return;
      }
      wake();
      if (state.restarts < section.maxRestarts) void restart(state);
    }

    async function restart(state: AgentState): Promise<void> {
      state.restarting = true;
      state.restarts += 1;
      try {
        await state.deployed.stop({ graceMs: 0 }).catch(() => undefined);
        const sandboxAlive = await state.sandbox.isRunning().catch(() => false);
        const { box, deployed } = await start(state.plan, sandboxAlive ? state.sandbox : undefined, true);
        state.sandbox = box;
        state.deployed = deployed;
        state.ready = false;
        watchExit(state);
        const deadline = clock.now() + 30_000;
        while (!state.ready) {
          if (clock.now() > deadline || state.exitCode !== undefined && state.deployed !== deployed) throw new SwarmRunError('no heartbeat after restart');
          await wait(20);
        }
        // Rebuild its strategies' and pipeline's state from the steps it missed.
        const upTo = currentStep;
        const expected = new Set([state.plan.id, ...state.plan.upstream]);
        for (let from = 0; from === 0 || from < upTo; from += 200) {
          const chunk = history.slice(from, Math.min(upTo, from + 200));
          const last = from + 200 >= upTo;
          const signals = chunk.map((step) => ({
            index: step.index,
            intents: [...(signalsByStep.get(step.index) ?? new Map<string, IntentPayload[]>())].filter(([agent]) => expected.has(agent)).flatMap(([, intents]) => intents),
          }));
          await bus.request(topics.inbox(state.plan.id), ReplayMessage.draft({ steps: chunk, signals, last }), { timeoutMs: 30_000 });
        }
        state.alive = true;
        state.lastHeardMs = clock.now();
        emit({ agent: state.plan.id, kind: 'restarted', detail: `restart ${state.restarts}, replayed ${upTo} steps` });
      } catch (error) {
        emit({ agent: state.plan.id, kind: 'restart-failed', detail: errorMessage(error) });
      } finally {
        state.restarting = false;
        wake();
      }
    }

    // Liveness: a silent agent is lost.
    const checkLiveness = (): void => {
      const now = clock.now();
      for (const state of agents.values()) {
        if (state.alive && !state.restarting && now - state.lastHeardMs > section.agentTimeoutMs) lose(state, `no heartbeat for ${now - state.lastHeardMs} ms`);
      }
    };

    await options.onReady?.({
      plan,
      bus,
      swarmId,
      currentStep: () => currentStep,
      processes: () => [...agents.values()].map((agent) => ({ id: agent.plan.id, sandbox: agent.sandbox, pid: agent.deployed.pid })),
      kill: async (agentId) => {
        const state = agents.get(agentId);
        if (state === undefined) throw new SwarmRunError(`no agent ${agentId}; agents: ${[...agents.keys()].join(', ')}`);
        await state.deployed.signal('SIGKILL');
      },
    });

    // The step loop.
    const tradingStarted = performance.now();
    /** Order → fill: from the venue accepting an order to the step that filled it. */
    const recordFills = (): void => {
      const now = performance.now();
      for (const fill of session.stepFills()) {
        const at = orderAt.get(fill.clientOrderId);
        if (at === undefined) continue;
        orderToFill.push(now - at);
        const decidedAt = published.get(orderStep.get(fill.clientOrderId) ?? -1);
        if (decidedAt !== undefined) barToFill.push(now - decidedAt);
        orderAt.delete(fill.clientOrderId);
      }
    };
    const realtime = section.pacing.mode === 'realtime' ? section.pacing : undefined;
    let refusedCount = 0;
    const participants = (): string[] => [...agents.values()].filter((agent) => agent.alive).map((agent) => agent.plan.id);
    // Steps go at QoS 0, as agents send signals and decisions (see AgentRuntime#publish): a lost step
    // is published again after stepTimeoutMs.
    const publishStep = async (payload: StepPayload): Promise<void> => {
      published.set(payload.index, performance.now());
      await bus.publish(topics.step(), StepMessage.draft(payload), { qos: 0 });
    };
    /**
     * A step is done when its orders are at the venue: its first orders request carries all of them
     * (in a mesh the other deciders send the same orders, which the venue answers `duplicate`, and
     * their digests are still compared as their decisions arrive). A step with nothing to submit
     * sends no orders; it is done at the first live decider's decision.
     */
    const stepDone = (index: number): boolean => {
      if (ordered.has(index)) return true;
      const byAgent = decisions.get(index);
      const live = plan.deciders.filter((id) => agents.get(id)?.alive === true);
      return live.some((id) => byAgent?.has(id) === true);
    };
    for (let index = 0; index < steps.length && halted === null; index++) {
      currentStep = index;
      const step = steps[index] as Bar[];
      const account = session.open(step);
      recordFills();
      const payload: StepPayload = {
        index,
        bars: step.map((bar) => ({ ...bar })),
        account: { equity: account.equity, peakEquity: account.peakEquity, positions: [...account.positions] },
        participants: participants(),
      };
      history.push(payload);
      if (realtime !== undefined) {
        await publishStep(payload);
        const next = steps[index + 1];
        if (next !== undefined) await wait(Math.max(0, ((next[0] as Bar).timeMs - (step[0] as Bar).timeMs) / realtime.speed));
        checkLiveness();
      } else {
        await publishStep(payload);
        let lastPublish = clock.now();
        for (;;) {
          if (halted !== null) break;
          if (stepDone(index)) {
            const at = published.get(index);
            if (at !== undefined) stepRound.push(performance.now() - at);
            break;
          }
          if (refusals.has(index)) {
            // The ring refused the step: try it again once its breaker may have closed.
            refusedCount += 1;
            refusals.delete(index);
            await wait(section.heartbeatMs);
            checkLiveness();
            await publishStep({ ...payload, participants: participants() });
            lastPublish = clock.now();
            continue;
          }
          const before = participants().length;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.min(section.heartbeatMs, section.stepTimeoutMs));
            waiter = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          waiter = undefined;
          checkLiveness();
          const now = participants();
          if (now.length !== before || clock.now() - lastPublish > section.stepTimeoutMs) {
            // Someone was lost (or came back): tell the deciders whom to wait for.
            await publishStep({ ...payload, participants: now });
            lastPublish = clock.now();
          }
        }
      }
      if (halted !== null) break;
      session.close(step);
      recordFills();
      options.onProgress?.({ step: index + 1, steps: steps.length });
    }
    if (realtime !== undefined && halted === null) {
      // The last steps' decisions are still on their way: give them one step timeout.
      const deadline = performance.now() + section.stepTimeoutMs;
      while (!stepDone(steps.length - 1) && performance.now() < deadline) await wait(5);
    }
    const tradingMs = performance.now() - tradingStarted;

    // Stop the agents and collect their last checkpoints.
    stopping = true;
    await bus.publish(topics.controlAll(), ControlMessage.draft({ command: 'stop', reason: halted === null ? 'run finished' : 'run halted' }));
    await Promise.all(
      [...agents.values()].map(async (state) => {
        const exit = await within(state.deployed.exited, 5_000);
        if (exit === undefined) await state.deployed.stop({ graceMs: 1_000 });
        else state.exitCode = exit.exitCode;
      }),
    );
    await wait(50);

    const settled = session.settle();
    const stats = [...agents.values()];
    const messages = stats.reduce((sum, agent) => sum + (agent.bus?.published ?? 0), 0) + bus.stats().published;
    return {
      ...settled.report,
      topology: plan.topology,
      pacing: realtime === undefined ? 'lockstep' : `realtime x${realtime.speed}`,
      sandbox: target.kind,
      broker: broker === undefined ? (brokerUrl) : `embedded ${broker.url}`,
      steps: { total: steps.length, published: history.length, decided: decisions.size, refused: refusedCount },
      agents: stats.map((agent) => ({
        id: agent.plan.id,
        label: agent.plan.label,
        kind: agent.plan.kind,
        sandboxId: agent.sandbox.sandboxId,
        startMs: agent.startMs,
        bundleUploaded: agent.deployed.bundleWritten,
        messagesIn: agent.bus?.received ?? null,
        messagesOut: agent.bus?.published ?? null,
        decisions: agent.counters?.decisions ?? null,
        errors: agent.counters?.errors ?? null,
        restarts: agent.restarts,
        status: !agent.alive ? 'lost' : agent.exitCode === 0 ? 'stopped' : `exit ${agent.exitCode ?? '?'}`,
      })),
      pipeline: plan.agents.filter((agent) => agent.decides).map((agent) => agents.get(agent.id)?.pipeline).find((summary) => summary !== undefined) ?? null,
      agreement: { compared, agreed, rate: compared === 0 ? null : agreed / compared },
      duplicateOrders,
      latencyMs: {
        barToSignal: summarize(barToSignal),
        signalToDecision: summarize(signalToDecision),
        barToOrder: summarize(barToOrder),
        orderToFill: summarize(orderToFill),
        barToFill: summarize(barToFill),
        stepRound: summarize(stepRound),
      },
      messages,
      messagesPerSecond: tradingMs > 0 ? (messages / tradingMs) * 1000 : 0,
      halted,
      events,
      tradingMs,
      readyMs,
      elapsedMs: performance.now() - started,
    };
  } finally {
    await closeAll();
  }
}

/** `promise`'s value, or `undefined` when it takes longer than `ms` (the timer does not outlive it). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Real time passes (the control plane waits for processes, not for a test clock). */
function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
