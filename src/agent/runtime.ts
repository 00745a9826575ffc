import { createHash } from 'node:crypto';
import {
  type Bus,
  CheckpointMessage,
  ControlMessage,
  type Envelope,
  HeartbeatMessage,
  type Subscription,
  swarmTopics,
} from '../bus/index.js';
import { type Clock, type Logger, type TimerHandle, errorMessage } from '../core/index.js';
import { type AccountSnapshot, DecisionPipeline } from '../decision/index.js';
import type { Bar } from '../market/index.js';
import {
  type RestorableStrategy,
  type StrategyIntent,
  buildStrategy,
  collectIntents,
  ema,
  restoreStrategies,
  rsi,
  sma,
  snapshotStrategies,
} from '../strategy/index.js';
import { createRouter, type Router } from '../topology/index.js';
import {
  type AgentConfig,
  CONTROL_PLANE_ID,
  DecisionMessage,
  HealthReportMessage,
  HealthRequestMessage,
  type IntentPayload,
  OrdersMessage,
  OrdersResultMessage,
  type OrderResultPayload,
  type RejectionPayload,
  ReplayDoneMessage,
  ReplayMessage,
  type Resume,
  type ResumeState,
  SignalMessage,
  type StepPayload,
  resumeSchema,
  resumeStateSchema,
  StepMessage,
  StepRefusedMessage,
  TaskMessage,
  TaskResultMessage,
} from './protocol.js';
import { RingBreaker } from './breaker.js';

/** Why an agent stopped. */
export interface AgentExit {
  readonly reason: 'stop-requested' | 'control-plane-lost' | 'signal' | 'fatal';
  readonly detail: string;
  /** 0 for a requested stop, 1 otherwise. */
  readonly exitCode: number;
}

/** Counters an agent reports in its checkpoints. */
export interface AgentCounters {
  steps: number;
  signals: number;
  decisions: number;
  ordersSubmitted: number;
  refusedSteps: number;
  tasks: number;
  errors: number;
  replayed: number;
}

/** Options of {@link AgentRuntime}. */
export interface AgentRuntimeOptions {
  readonly bus: Bus;
  readonly config: AgentConfig;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * One agent of a swarm, as it runs inside its sandbox: it listens to the topics its topology gives
 * it, runs its strategies and (if it decides) the decision pipeline, heartbeats, checkpoints, and
 * stops on request or when the control plane has been silent for `controlPlaneTimeoutMs`.
 *
 * Everything it computes is a deterministic function of the steps and signals it receives, so every
 * deciding agent of a mesh reaches the same decision, and a restarted agent rebuilds its state by
 * replaying earlier steps (its checkpoints record progress and counters, not indicator state).
 */
export class AgentRuntime {
  readonly #bus: Bus;
  readonly #config: AgentConfig;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #topics;
  readonly #strategies: readonly RestorableStrategy[];
  readonly #strategyOrder: ReadonlyMap<string, number>;
  readonly #pipeline: DecisionPipeline | undefined;
  readonly #router: Router | undefined;
  readonly #breaker: RingBreaker | undefined;
  /** Steps waiting for their decision (deciders, coordinators), by index. */
  readonly #steps = new Map<number, StepPayload>();
  /** Signals received, by step index then sender. */
  readonly #signals = new Map<number, Map<string, IntentPayload[]>>();
  /** The highest epoch heard from each watched peer. */
  readonly #peerEpochs = new Map<string, number>();
  /** When each peer (and the control plane) was last heard, on the clock. */
  readonly #lastHeard = new Map<string, number>();
  readonly #subscriptions: Subscription[] = [];
  readonly counters: AgentCounters = { steps: 0, signals: 0, decisions: 0, ordersSubmitted: 0, refusedSteps: 0, tasks: 0, errors: 0, replayed: 0 };
  #signalledUpTo = -1;
  #decidedUpTo = -1;
  /** The highest step it received, and the step its last checkpoint was taken after (for its health report). */
  #lastStep = -1;
  #checkpointedUpTo = -1;
  #heartbeatSeq = 0;
  #checkpointSeq = 0;
  #timer: TimerHandle | undefined;
  #halted: string | undefined;
  #replaying = false;
  /** A hot standby until promoted (see `AgentConfig.standby`), and how many of its agent's checkpoints it took up meanwhile. */
  #standby: boolean;
  #followed = 0;
  /** A restarted agent waits for its replay before it takes new work; what arrives meanwhile waits here. */
  #awaitingReplay: boolean;
  readonly #held: Envelope[] = [];
  /**
   * The latest signals and decisions it sent, by step index, so a repeated step (the control plane
   * publishes a step again when it waited too long, e.g. after a message was lost in a reconnect)
   * is answered again instead of stalling the run. The venue drops the repeated orders by id.
   */
  readonly #sent = { signal: new Map<number, [string, Parameters<Bus['publish']>[1]]>(), decision: new Map<number, [string, Parameters<Bus['publish']>[1]]>() };
  /**
   * Decisions whose orders did not reach the venue (the request failed or timed out), by step index:
   * when the step comes again they are submitted again (the venue takes each client order id once),
   * since the pipeline that decided them has moved on and cannot decide them again.
   */
  readonly #undelivered = new Map<number, PendingDecision>();
  /** Decisions on their way (submitted, not answered yet): a checkpoint keeps them, to be sent again after a restart. */
  readonly #inFlight = new Map<number, PendingDecision>();
  /** When this agent checkpoints its state: after signalling (strategies only), after deciding or forwarding, or never (a ring's entry). */
  readonly #checkpointsAfter: 'signal' | 'decision' | undefined;
  /** Decisions run one after another (each may wait for the venue). */
  #work: Promise<void> = Promise.resolve();
  /**
   * Aborted when the agent is rewound to a checkpoint: the decisions queued or on their way before
   * it are dropped (the steps after the checkpoint are decided again), and their orders requests,
   * which a control plane that died may never answer, stop waiting.
   */
  #rewound = new AbortController();
  #exit: AgentExit | undefined;
  readonly #done: Promise<AgentExit>;
  #resolveDone!: (exit: AgentExit) => void;

  constructor(options: AgentRuntimeOptions) {
    this.#bus = options.bus;
    this.#config = options.config;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#topics = swarmTopics(options.config.swarm);
    const config = options.config;
    this.#strategies = config.strategies.map((entry) => buildStrategy(entry.spec));
    this.#strategyOrder = new Map(config.allStrategies.map((strategy, i) => [strategy.name, i]));
    // The pipeline's options come as plain JSON records: the control plane checked them against the
    // spec's schema before it started anyone, and the constructors check them again (InvalidInputError
    // naming the field), so they are passed on as they are.
    this.#pipeline =
      config.pipeline === undefined
        ? undefined
        : new DecisionPipeline({
            strategies: config.allStrategies,
            ...(config.pipeline.consensus === undefined ? {} : { consensus: config.pipeline.consensus as never }),
            ...(config.pipeline.allocator === undefined ? {} : { allocator: config.pipeline.allocator }),
            ...(config.pipeline.risk === undefined ? {} : { risk: config.pipeline.risk }),
          });
    if (config.kind === 'coordinator') {
      const router = createRouter({ policy: config.routing });
      for (const worker of config.workers) router.add({ id: worker.id, capabilities: worker.capabilities });
      this.#router = router;
    }
    if (config.kind === 'collector') this.#breaker = new RingBreaker();
    // Strategies alone are checkpointed once they signalled a step; a pipeline, a coordinator or an
    // executor once it decided (or forwarded) one. A ring's entry holds only its breaker, which a
    // restart begins closed.
    this.#checkpointsAfter =
      config.kind === 'collector' ? undefined : this.#pipeline !== undefined || config.kind === 'coordinator' || config.kind === 'executor' ? 'decision' : 'signal';
    this.#awaitingReplay = config.replayFirst;
    this.#standby = config.standby;
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Resolves when the agent has stopped, with why. */
  get done(): Promise<AgentExit> {
    return this.#done;
  }

  /** Whether a required peer was lost (a star's spoke without its hub), and which. */
  get halted(): string | undefined {
    return this.#halted;
  }

  /**
   * Subscribes to its topics and starts heartbeating. A standby subscribes only to its control
   * topics, the control plane's heartbeat and its agent's checkpoints, until it is promoted.
   */
  async start(): Promise<void> {
    const config = this.#config;
    const topics = this.#topics;
    this.#lastHeard.set(CONTROL_PLANE_ID, this.#clock.now());
    const [pending, on] = this.#subscriber();
    for (const filter of topics.controlFilters(config.agentId)) on(filter, (envelope) => this.#onControl(envelope));
    on(topics.heartbeat(CONTROL_PLANE_ID), () => this.#heard(CONTROL_PLANE_ID));
    if (this.#standby) on(topics.checkpoint(config.agentId), (envelope) => this.#onPrimaryCheckpoint(envelope));
    else this.#subscribeWork(on, pending);
    this.#subscriptions.push(...(await Promise.all(pending)));
    this.#beat();
  }

  /** Subscriptions made together (one round trip to the broker instead of one per topic), each handler guarded. */
  #subscriber(): [Array<Promise<Subscription>>, (filter: string, handler: (envelope: Envelope) => void | Promise<void>) => void] {
    const pending: Array<Promise<Subscription>> = [];
    const on = (filter: string, handler: (envelope: Envelope) => void | Promise<void>): void => {
      pending.push(this.#bus.subscribe(filter, (envelope) => this.#guard(() => handler(envelope))));
    };
    return [pending, on];
  }

  /** The topics of its work: peers' heartbeats, steps, upstream signals or decisions, its inbox. */
  #subscribeWork(on: (filter: string, handler: (envelope: Envelope) => void | Promise<void>) => void, pending: Array<Promise<Subscription>>): void {
    const config = this.#config;
    const topics = this.#topics;
    const now = this.#clock.now();
    for (const peer of [...config.upstream, ...config.requires, ...config.ring]) this.#lastHeard.set(peer, now);
    const watched = new Set([...config.requires, ...config.ring].filter((id) => id !== config.agentId));
    for (const peer of watched) on(topics.heartbeat(peer), (envelope) => this.#onPeerHeartbeat(peer, envelope));
    if (config.readsSteps) on(topics.step(), (envelope) => this.#onStep(envelope));
    for (const peer of config.upstream) {
      if (config.kind === 'executor') on(topics.decision(peer), (envelope) => this.#onUpstreamDecision(envelope));
      else if (peer !== config.agentId) on(topics.signal(peer), (envelope) => this.#onSignal(envelope));
    }
    for (const peer of config.decisionsFrom) on(topics.decision(peer), (envelope) => this.#onDownstreamDecision(envelope));
    for (const worker of config.workers) {
      this.#lastHeard.set(worker.id, now);
      on(topics.heartbeat(worker.id), (envelope) => this.#onWorkerHeartbeat(worker.id, envelope));
    }
    pending.push(this.#bus.serve(topics.inbox(config.agentId), (request) => this.#onInbox(request)));
  }

  /**
   * A coordinator routes tasks only to workers that run (the seed's load-balancer failover): a worker
   * lost, catching up, degraded or silent past the peer timeout is skipped until it beats `running` again.
   */
  #onWorkerHeartbeat(worker: string, envelope: Envelope): void {
    if (!HeartbeatMessage.is(envelope) || envelope.payload.status === 'standby' || this.#router === undefined) return;
    const epoch = envelope.payload.epoch ?? 0;
    if (epoch < (this.#peerEpochs.get(worker) ?? 0)) return;
    this.#peerEpochs.set(worker, epoch);
    if (envelope.payload.status === 'lost') this.#lastHeard.set(worker, -Infinity);
    else this.#heard(worker);
    this.#router.setHealthy(worker, envelope.payload.status === 'running');
  }

  /**
   * A standby follows its agent's checkpoints as they come, taking each up at once, so that it holds
   * the primary's state when it is promoted (the control plane's replay then brings it the steps after).
   */
  #onPrimaryCheckpoint(envelope: Envelope): void {
    if (!this.#standby || !CheckpointMessage.is(envelope)) return;
    const resume = resumeSchema.safeParse((envelope.payload.state as { resume?: unknown } | null)?.resume);
    if (!resume.success) return;
    this.#restore(resume.data);
    this.#followed += 1;
  }

  /** Takes its agent's role over: subscribes to its work and waits for the control plane's replay, as a restarted agent does. */
  async #promote(): Promise<void> {
    if (!this.#standby) return;
    this.#standby = false;
    this.#awaitingReplay = true;
    this.#logger.info({ epoch: this.#config.epoch, checkpointsFollowed: this.#followed }, 'promoted: taking the role over');
    const [pending, on] = this.#subscriber();
    this.#subscribeWork(on, pending);
    this.#subscriptions.push(...(await Promise.all(pending)));
    // Beat at once: the control plane waits for this process's first heartbeat to replay it.
    this.#publishBeat();
  }

  /**
   * Stops: a last checkpoint, then the bus closes. Idempotent.
   */
  async stop(exit: AgentExit): Promise<AgentExit> {
    if (this.#exit !== undefined) return this.#done;
    this.#exit = exit;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    try {
      await this.#work;
      if (exit.reason !== 'control-plane-lost') await this.#checkpoint();
    } catch (error) {
      this.#logger.warn({ err: errorMessage(error) }, 'last checkpoint failed');
    }
    await this.#bus.close().catch(() => undefined);
    this.#resolveDone(exit);
    return exit;
  }

  #heard(peer: string): void {
    this.#lastHeard.set(peer, this.#clock.now());
  }

  /** A watched peer's heartbeat, or its last will (`lost`), which counts as silence from now on. */
  #onPeerHeartbeat(peer: string, envelope: Envelope): void {
    if (!HeartbeatMessage.is(envelope)) return;
    // The peer's standby is not the peer (its epoch is higher, and it is not trading yet).
    if (envelope.payload.status === 'standby') return;
    // A replaced process of the peer (cut off, not dead) beats, and its will drops, in vain.
    const epoch = envelope.payload.epoch ?? 0;
    if (epoch < (this.#peerEpochs.get(peer) ?? 0)) return;
    this.#peerEpochs.set(peer, epoch);
    // A ring stage still catching up is not back yet; a required peer (a star's hub) is, as soon as it
    // starts: it holds what it gets until its replay is done.
    if (envelope.payload.status === 'starting' && !this.#config.requires.includes(peer)) return;
    // A required peer that was lost is back (its standby took over, or it was restarted): trade again.
    if (envelope.payload.status !== 'lost' && this.#halted === `${peer}-lost`) {
      this.#halted = undefined;
      this.#logger.info({ peer, epoch }, 'a required peer is back; this agent trades again');
    }
    if (envelope.payload.status !== 'lost') {
      this.#heard(peer);
      return;
    }
    this.#lastHeard.set(peer, -Infinity);
    this.#checkPeers();
  }

  /** Halts without a required peer; trips the ring's breaker without a stage. */
  #checkPeers(): void {
    // Waiting for its replay, it trades nothing yet, and its peers may be starting too (every agent of
    // a resumed deployment is replayed once all are up): their silence counts from its release.
    if (this.#awaitingReplay) return;
    const config = this.#config;
    const lost = config.requires.find((peer) => this.#silentFor(peer) > config.peerTimeoutMs);
    if (lost !== undefined && this.#halted === undefined) {
      this.#halted = `${lost}-lost`;
      this.#logger.warn({ peer: lost }, 'a required peer is silent; this agent stops trading');
    }
    if (this.#breaker !== undefined) {
      const silent = config.ring.filter((peer) => peer !== config.agentId && this.#silentFor(peer) > config.peerTimeoutMs);
      this.#breaker.observe(silent.length === 0, silent);
    }
  }

  #silentFor(peer: string): number {
    return this.#clock.now() - (this.#lastHeard.get(peer) ?? 0);
  }

  /** Heartbeat, liveness checks, and the next beat. */
  #beat(): void {
    if (this.#exit !== undefined) return;
    const config = this.#config;
    if (this.#silentFor(CONTROL_PLANE_ID) > config.controlPlaneTimeoutMs) {
      void this.stop({ reason: 'control-plane-lost', detail: `nothing from the control plane for ${this.#silentFor(CONTROL_PLANE_ID)} ms`, exitCode: 1 });
      return;
    }
    // A standby watches no peer: it has no work to halt.
    if (!this.#standby) this.#checkPeers();
    if (!this.#standby) for (const worker of config.workers) if (this.#silentFor(worker.id) > config.peerTimeoutMs) this.#router?.setHealthy(worker.id, false);
    this.#publishBeat();
    this.#timer = this.#clock.setTimeout(() => this.#beat(), config.heartbeatMs);
  }

  #publishBeat(): void {
    const status = this.#standby ? 'standby' : this.#awaitingReplay ? 'starting' : this.#halted === undefined && this.#breaker?.state !== 'open' ? 'running' : 'degraded';
    void this.#bus
      .publish(this.#topics.heartbeat(this.#config.agentId), HeartbeatMessage.draft({ seq: this.#heartbeatSeq++, status, epoch: this.#config.epoch }), { qos: 0 })
      .catch((error: unknown) => this.#logger.debug({ err: errorMessage(error) }, 'heartbeat not sent'));
  }

  #guard(action: () => void | Promise<void>): void | Promise<void> {
    try {
      const result = action();
      if (result instanceof Promise) return result.catch((error: unknown) => this.#fail(error));
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    this.counters.errors += 1;
    this.#logger.error({ err: errorMessage(error) }, 'agent error');
  }

  #onControl(envelope: Envelope): void {
    this.#heard(CONTROL_PLANE_ID);
    if (!ControlMessage.is(envelope)) return;
    const { command, reason } = envelope.payload;
    if (command === 'stop') void this.stop({ reason: 'stop-requested', detail: reason ?? 'stop requested', exitCode: 0 });
    // A standby has no state of its own to save; a promotion is for the standby of its epoch only.
    else if (command === 'checkpoint' && !this.#standby) void this.#checkpoint();
    else if (command === 'promote' && envelope.payload.epoch === this.#config.epoch) void this.#promote().catch((error: unknown) => this.#fail(error));
  }

  async #checkpoint(): Promise<void> {
    const resume = this.#resume();
    await this.#bus.publish(
      this.#topics.checkpoint(this.#config.agentId),
      CheckpointMessage.draft({
        seq: this.#checkpointSeq++,
        state: {
          signalledUpTo: this.#signalledUpTo,
          decidedUpTo: this.#decidedUpTo,
          halted: this.#halted ?? null,
          counters: { ...this.counters },
          bus: { published: this.#bus.stats().published, received: this.#bus.stats().received },
          // A DecisionSummary is plain JSON (numbers, strings, records), which the checkpoint's z.json() accepts.
          pipeline: (this.#pipeline?.summary() ?? null) as never,
          resume,
        },
      }),
    );
    this.#checkpointedUpTo = Math.max(this.#checkpointedUpTo, resume.replayFrom - 1);
  }

  /** Its own view of its health, for the control plane's health checks. */
  #health(seq: number) {
    return HealthReportMessage.draft({
      seq,
      lastStep: this.#lastStep,
      signalledUpTo: this.#signalledUpTo,
      decidedUpTo: this.#decidedUpTo,
      errors: this.counters.errors,
      checkpointedUpTo: this.#checkpointedUpTo,
      replaying: this.#awaitingReplay,
      halted: this.#halted ?? null,
      rssBytes: process.memoryUsage.rss(),
      epoch: this.#config.epoch,
    });
  }

  /**
   * Everything a restarted agent needs to go on from here (see {@link #restore}): its strategies'
   * and pipeline's exact state, how far it signalled and decided, the decisions still on their way,
   * and what it last sent (so a step published again is answered again).
   */
  #resume(): Resume {
    const state = this.#resumeState();
    return { replayFrom: state.replayFrom, state: JSON.stringify(state) };
  }

  #resumeState(): ResumeState {
    // Drafts, snapshots and summaries are plain JSON; only their static types differ from zod's JSON type.
    const json = (value: unknown): ResumeState['strategies'] => value as ResumeState['strategies'];
    const sent = (kind: 'signal' | 'decision') => [...this.#sent[kind]].map(([index, [topic, draft]]) => ({ index, topic, draft: json(draft) }));
    const pending = [...this.#undelivered, ...this.#inFlight].map(([index, { step, decided }]) => ({ index, decided, ...(step === undefined ? {} : { step }) }));
    const firsts = [
      ...(this.#strategies.length > 0 ? [this.#signalledUpTo + 1] : []),
      ...(this.#checkpointsAfter === 'decision' ? [this.#decidedUpTo + 1] : []),
    ];
    return {
      replayFrom: firsts.length === 0 ? this.#decidedUpTo + 1 : Math.min(...firsts),
      signalledUpTo: this.#signalledUpTo,
      decidedUpTo: this.#decidedUpTo,
      strategies: this.#strategies.length === 0 ? null : json(snapshotStrategies(this.#strategies)),
      pipeline: this.#pipeline === undefined ? null : json(this.#pipeline.snapshot()),
      pending,
      sent: { signal: sent('signal'), decision: sent('decision') },
      counters: { ...this.counters },
    };
  }

  /**
   * Takes up the state a checkpoint saved: the steps after it are then replayed.
   * @throws IncompatibleSnapshotError (and nothing changes) when the snapshot is of other strategies or pipeline.
   */
  #restore(resume: Resume): void {
    const state = resumeStateSchema.parse(JSON.parse(resume.state));
    // All or nothing: both restores check before they change anything, strategies first.
    if (state.strategies !== null) restoreStrategies(this.#strategies, state.strategies);
    if (state.pipeline !== null) this.#pipeline?.restore(state.pipeline);
    // What it did after the checkpoint is forgotten: a process adopted by a new control plane is
    // rewound to the checkpoint, and the steps after it are decided again.
    for (const done of [this.#steps, this.#signals, this.#undelivered, this.#inFlight, this.#sent.signal, this.#sent.decision]) done.clear();
    this.#rewound.abort();
    this.#rewound = new AbortController();
    this.#work = Promise.resolve();
    this.#signalledUpTo = state.signalledUpTo;
    this.#decidedUpTo = state.decidedUpTo;
    Object.assign(this.counters, state.counters);
    for (const { index, decided, step } of state.pending) this.#undelivered.set(index, { decided, step });
    for (const kind of ['signal', 'decision'] as const) {
      for (const { index, topic, draft } of state.sent[kind]) this.#sent[kind].set(index, [topic, draft as unknown as Parameters<Bus['publish']>[1]]);
    }
  }

  /**
   * After the first step and then every `checkpointEverySteps` steps, once the step is signalled or
   * decided (by what this agent checkpoints after). The first one makes the agent adoptable by a
   * control plane that takes over early, which can only adopt an agent it can rewind to a checkpoint.
   */
  #checkpointAfter(stage: 'signal' | 'decision', index: number): void {
    if ((index !== 0 && (index + 1) % this.#config.checkpointEverySteps !== 0) || stage !== this.#checkpointsAfter || this.#replaying) return;
    void this.#checkpoint().catch((error: unknown) => this.#logger.warn({ err: errorMessage(error) }, 'checkpoint not sent'));
  }

  #onStep(envelope: Envelope): void {
    this.#heard(CONTROL_PLANE_ID);
    if (!StepMessage.is(envelope)) return;
    if (this.#hold(envelope)) return;
    this.#acceptStep(envelope.payload);
  }

  /** A step arrived (from the control plane, or from upstream in a ring). */
  #acceptStep(step: StepPayload): void {
    const config = this.#config;
    this.#lastStep = Math.max(this.#lastStep, step.index);
    if (config.kind === 'collector') {
      this.#enterRing(step);
      return;
    }
    if (this.#strategies.length > 0) {
      if (step.index > this.#signalledUpTo) this.#signal(step);
      else this.#resend('signal', step.index);
    }
    if (config.kind === 'decider' || config.kind === 'coordinator' || this.#pipeline !== undefined) {
      if (step.index <= this.#decidedUpTo) this.#answerAgain(config.kind === 'coordinator' ? 'signal' : 'decision', step.index);
      const known = this.#steps.get(step.index);
      // A repeated step (same index, fewer participants) only updates who is awaited.
      if (known === undefined || step.participants.length < known.participants.length) {
        if (step.index > this.#decidedUpTo) this.#steps.set(step.index, step);
      }
      this.#advance();
    }
  }

  /** Runs this agent's strategies on a step and publishes (or keeps) its signal. */
  #signal(step: StepPayload): void {
    // Halted (a star's spoke without its hub), the step is left unsignalled: when the hub is back
    // and the step comes again, it is signalled then.
    if (this.#halted !== undefined) return;
    this.#signalledUpTo = step.index;
    this.counters.steps += 1;
    const intents = collectIntents(this.#strategies, step.bars as Bar[], toAccount(step), step.index).map(toWire);
    if (this.#pipeline !== undefined || this.#config.kind === 'decider') this.#recordSignal(step.index, this.#config.agentId, intents);
    if (this.#replaying) return;
    this.counters.signals += 1;
    const forwarded = this.#config.readsSteps ? {} : { step };
    void this.#send(
      'signal',
      step.index,
      this.#topics.signal(this.#config.agentId),
      SignalMessage.draft({ index: step.index, intents, strategies: this.#strategies.map((strategy) => strategy.name), ...forwarded }),
    );
    this.#checkpointAfter('signal', step.index);
  }

  #recordSignal(index: number, from: string, intents: IntentPayload[]): void {
    let byPeer = this.#signals.get(index);
    if (byPeer === undefined) {
      byPeer = new Map();
      this.#signals.set(index, byPeer);
    }
    byPeer.set(from, intents);
  }

  #onSignal(envelope: Envelope): void {
    if (!SignalMessage.is(envelope) || this.#hold(envelope)) return;
    const { index, intents, step } = envelope.payload;
    this.#heard(envelope.from);
    if (step !== undefined && !this.#config.readsSteps) {
      // A ring stage: the step travels with the work; a stage without strategies decides on the intents.
      if (this.#strategies.length === 0) this.#recordSignal(index, envelope.from, intents);
      this.#acceptStep(step);
      return;
    }
    if (index <= this.#decidedUpTo) return;
    this.#recordSignal(index, envelope.from, intents);
    this.#advance();
  }

  /** Decides (or, for a coordinator, forwards) every step whose signals are all in, in order. */
  #advance(): void {
    for (;;) {
      const index = this.#decidedUpTo + 1;
      const step = this.#steps.get(index);
      if (step === undefined) return;
      const expected = this.#expected(step);
      const received = this.#signals.get(index) ?? new Map<string, IntentPayload[]>();
      const later = [...this.#steps.keys()].some((key) => key > index);
      if (!later && expected.some((peer) => !received.has(peer))) return;
      this.#decidedUpTo = index;
      this.#steps.delete(index);
      this.#signals.delete(index);
      const intents = expected.flatMap((peer) => received.get(peer) ?? []);
      if (this.#config.kind === 'coordinator') {
        this.#forwardBatch(step, intents);
      } else {
        const decided = this.#decide(step, intents);
        if (!this.#replaying) this.#inFlight.set(step.index, { step, decided });
        this.#queue(step.index, decided, step);
      }
      this.#checkpointAfter('decision', index);
    }
  }

  /** The agents whose signals step `step` waits for: upstream agents taking part (and itself, in a mesh). */
  #expected(step: StepPayload): string[] {
    const taking = new Set(step.participants);
    const config = this.#config;
    if (!config.readsSteps) return config.upstream;
    const peers = config.upstream.filter((peer) => taking.has(peer));
    return this.#strategies.length > 0 && !peers.includes(config.agentId) ? [config.agentId, ...peers] : peers;
  }

  #forwardBatch(step: StepPayload, intents: IntentPayload[]): void {
    if (this.#replaying) return;
    this.counters.signals += 1;
    void this.#send(
      'signal',
      step.index,
      this.#topics.signal(this.#config.agentId),
      SignalMessage.draft({ index: step.index, intents: sortByStrategy(intents, this.#strategyOrder), strategies: [] }),
    );
  }

  #decide(step: StepPayload, intents: IntentPayload[]): Decided {
    const ordered = sortByStrategy(intents, this.#strategyOrder);
    const pipeline = this.#pipeline;
    if (pipeline === undefined) return { approved: ordered, rejected: [], digest: digestOf(ordered) };
    const decision = pipeline.decide(step.bars, ordered, toAccount(step), step.index);
    const approved = decision.approved.map(toWire);
    return {
      approved,
      rejected: decision.rejected.map((rejection) => ({ intent: toWire(rejection.intent), source: rejection.source, reason: rejection.reason, message: rejection.message })),
      digest: digestOf(approved),
    };
  }

  /** Finishes a decision after those before it; a rewind drops it (see {@link #rewound}). */
  #queue(index: number, decided: Decided, step: StepPayload | undefined): void {
    const rewound = this.#rewound.signal;
    this.#work = this.#work
      .then(() => (rewound.aborted ? undefined : this.#finish(index, decided, step, rewound)))
      .catch((error: unknown) => {
        if (!rewound.aborted) this.#fail(error);
      });
  }

  /**
   * Publishes the decision of step `index` (with `step` when it flows on to a submitting agent), once
   * its orders reached the venue when this agent submits; keeps it for another try when the venue
   * could not be reached. Once `rewound` is aborted, what it learns is dropped.
   */
  async #finish(index: number, decided: Decided, step: StepPayload | undefined, rewound: AbortSignal): Promise<void> {
    if (this.#replaying) {
      this.#inFlight.delete(index);
      return;
    }
    const topic = this.#topics.decision(this.#config.agentId);
    if (!this.#config.submits) {
      this.#inFlight.delete(index);
      this.counters.decisions += 1;
      await this.#send('decision', index, topic, DecisionMessage.draft({ index, ...decided, ...(step === undefined ? {} : { step }) }));
      return;
    }
    let orders: OrderResultPayload[];
    try {
      orders = await this.#submit(index, decided, rewound);
    } catch (error) {
      if (rewound.aborted) return;
      this.#inFlight.delete(index);
      this.#undelivered.set(index, { step, decided });
      if (this.#undelivered.size > 16) this.#undelivered.delete(this.#undelivered.keys().next().value as number);
      this.#fail(error);
      return;
    }
    if (rewound.aborted) return;
    this.#inFlight.delete(index);
    this.#undelivered.delete(index);
    this.counters.decisions += 1;
    await this.#send('decision', index, topic, DecisionMessage.draft({ index, ...decided, orders }));
  }

  /** A step (or an upstream decision) came again: the orders that did not reach the venue go again, else what was sent goes again. */
  #answerAgain(kind: 'signal' | 'decision', index: number): void {
    const undelivered = kind === 'decision' ? this.#undelivered.get(index) : undefined;
    if (undelivered === undefined) {
      this.#resend(kind, index);
      return;
    }
    this.#undelivered.delete(index);
    this.#queue(index, undelivered.decided, undelivered.step);
  }

  /** Sends a step's orders (and the pipeline's refusals) to the venue; a step with neither needs no round trip. */
  async #submit(index: number, decided: Decided, rewound: AbortSignal): Promise<OrderResultPayload[]> {
    if (decided.approved.length === 0 && decided.rejected.length === 0) return [];
    this.counters.ordersSubmitted += decided.approved.length;
    const reply = await this.#bus.request(this.#topics.order(this.#config.agentId), OrdersMessage.draft({ index, ...decided, epoch: this.#config.epoch }), {
      timeoutMs: this.#config.orderTimeoutMs,
      signal: rewound,
    });
    if (!OrdersResultMessage.is(reply)) throw new Error(`the venue answered ${reply.type}, expected orders.result`);
    return reply.payload.results;
  }

  /** A ring's executor: submits what the risk stage approved. */
  #onUpstreamDecision(envelope: Envelope): void {
    if (!DecisionMessage.is(envelope) || this.#hold(envelope)) return;
    this.#heard(envelope.from);
    const { index, approved, rejected, digest } = envelope.payload;
    if (index <= this.#decidedUpTo) {
      this.#answerAgain('decision', index);
      return;
    }
    this.#decidedUpTo = index;
    if (!this.#replaying) this.#inFlight.set(index, { step: undefined, decided: { approved, rejected, digest } });
    this.#queue(index, { approved, rejected, digest }, undefined);
    this.#checkpointAfter('decision', index);
  }

  /** Decisions flowing down (a hierarchy), or a ring's lap completing (its entry). */
  #onDownstreamDecision(envelope: Envelope): void {
    if (!DecisionMessage.is(envelope)) return;
    this.#heard(envelope.from);
    if (this.#breaker !== undefined) {
      this.#breaker.lapCompleted();
      return;
    }
    this.counters.decisions += 1;
    if (this.#config.kind === 'coordinator' && !this.#replaying) {
      void this.#publish(this.#topics.decision(this.#config.agentId), DecisionMessage.draft(envelope.payload));
    }
  }

  /** A ring's entry: forwards the step into the ring, or refuses it while the breaker is open. */
  #enterRing(step: StepPayload): void {
    const breaker = this.#breaker as RingBreaker;
    const refusal = breaker.admit();
    if (refusal !== undefined) {
      this.counters.refusedSteps += 1;
      void this.#publish(this.#topics.decision(this.#config.agentId), StepRefusedMessage.draft({ index: step.index, reason: refusal }));
      return;
    }
    this.counters.steps += 1;
    void this.#publish(this.#topics.signal(this.#config.agentId), SignalMessage.draft({ index: step.index, intents: [], strategies: [], step }));
  }

  async #onInbox(request: Envelope) {
    if (ReplayMessage.is(request)) {
      const late = !this.#awaitingReplay;
      if (request.payload.resume !== undefined) this.#restore(request.payload.resume);
      const done = this.#replay(request.payload.steps, request.payload.signals);
      if (request.payload.last) this.#release();
      // Steps that closed while it was replayed come after its release: a step it holds may wait for them.
      if (late) this.#advance();
      return done;
    }
    if (TaskMessage.is(request)) return this.#task(request);
    if (HealthRequestMessage.is(request)) return this.#health(request.payload.seq);
    return undefined;
  }

  /** Keeps work that arrives before a restarted agent's replay; true when it was kept. */
  #hold(envelope: Envelope): boolean {
    if (!this.#awaitingReplay) return false;
    this.#held.push(envelope);
    return true;
  }

  /** The replay is complete: take the work that waited, in arrival order; peers' silence counts from now. */
  #release(): void {
    this.#awaitingReplay = false;
    const now = this.#clock.now();
    for (const peer of [...this.#config.requires, ...this.#config.ring]) this.#lastHeard.set(peer, now);
    for (const envelope of this.#held.splice(0)) {
      if (StepMessage.is(envelope)) this.#onStep(envelope);
      else if (SignalMessage.is(envelope)) this.#onSignal(envelope);
      else if (DecisionMessage.is(envelope)) this.#onUpstreamDecision(envelope);
    }
  }

  /** Feeds earlier steps through strategies and pipeline without publishing anything. */
  #replay(steps: readonly StepPayload[], signals: ReadonlyArray<{ index: number; intents: IntentPayload[] }>) {
    this.#replaying = true;
    try {
      const byIndex = new Map(signals.map((signal) => [signal.index, signal.intents]));
      for (const step of steps) {
        if (this.#strategies.length > 0 && step.index > this.#signalledUpTo) this.#signal(step);
        if (this.#pipeline !== undefined && step.index > this.#decidedUpTo) {
          // The upstream signals of that step, as the control plane recorded them.
          const own = this.#signals.get(step.index)?.get(this.#config.agentId) ?? [];
          const intents = byIndex.get(step.index) ?? own;
          this.#pipeline.decide(step.bars, sortByStrategy(intents, this.#strategyOrder), toAccount(step), step.index);
          this.#signals.delete(step.index);
          this.#decidedUpTo = step.index;
        } else if (this.#config.kind === 'executor' || this.#config.kind === 'coordinator') {
          this.#decidedUpTo = Math.max(this.#decidedUpTo, step.index);
        }
        this.counters.replayed += 1;
      }
    } finally {
      this.#replaying = false;
    }
    const upTo = steps.length === 0 ? -1 : (steps[steps.length - 1] as StepPayload).index;
    return ReplayDoneMessage.draft({ upTo });
  }

  async #task(request: Envelope) {
    if (!TaskMessage.is(request)) return undefined;
    const task = request.payload;
    const router = this.#router;
    if (router === undefined) {
      this.counters.tasks += 1;
      const indicator = task.indicator === 'sma' ? sma(task.period) : task.indicator === 'ema' ? ema(task.period) : rsi(task.period);
      let value: number | null = null;
      for (const price of task.values) value = indicator.update(price) ?? null;
      return TaskResultMessage.draft({ id: task.id, worker: this.#config.agentId, value });
    }
    const worker = router.pick(task.capability === undefined ? {} : { capability: task.capability });
    if (worker === undefined) throw new Error(`no worker of ${this.#config.agentId} has capability ${task.capability ?? '(any)'}`);
    router.dispatched(worker);
    try {
      const reply = await this.#bus.request(this.#topics.inbox(worker), TaskMessage.draft(task), { timeoutMs: this.#config.orderTimeoutMs });
      router.completed(worker, { ok: TaskResultMessage.is(reply) });
      this.counters.tasks += 1;
      if (!TaskResultMessage.is(reply)) throw new Error(`worker ${worker} answered ${reply.type}`);
      return TaskResultMessage.draft(reply.payload);
    } catch (error) {
      router.completed(worker, { ok: false });
      throw error;
    }
  }

  /** Publishes a signal or decision of step `index` and keeps it (the last 16 steps) for {@link #resend}. */
  async #send(kind: 'signal' | 'decision', index: number, topic: string, draft: Parameters<Bus['publish']>[1]): Promise<void> {
    const sent = this.#sent[kind];
    sent.set(index, [topic, draft]);
    if (sent.size > 16) sent.delete(sent.keys().next().value as number);
    await this.#publish(topic, draft);
  }

  /** Sends again what it sent for step `index`, if it still has it. */
  #resend(kind: 'signal' | 'decision', index: number): void {
    const kept = this.#sent[kind].get(index);
    if (kept !== undefined && !this.#replaying) void this.#publish(kept[0], kept[1]);
  }

  /**
   * Signals and decisions go at QoS 0: half the packets of QoS 1 (no acknowledgements), which is
   * most of a step's cost on a busy broker. Nothing depends on QoS 1 here: a message lost in a
   * reconnection is recovered because the control plane publishes a step again when it waits too
   * long, and every agent answers a repeated step again ({@link #resend}).
   */
  async #publish(topic: string, draft: Parameters<Bus['publish']>[1]): Promise<void> {
    try {
      await this.#bus.publish(topic, draft, { qos: 0 });
    } catch (error) {
      this.#fail(error);
    }
  }
}

/** What a deciding agent made of a step: the intents it approved, the pipeline's refusals, and their digest. */
interface Decided {
  readonly approved: IntentPayload[];
  readonly rejected: RejectionPayload[];
  readonly digest: string;
}

/** A decision not yet delivered, with the step it flows on with (to a ring's executor). */
interface PendingDecision {
  readonly step: StepPayload | undefined;
  readonly decided: Decided;
}

function toAccount(step: StepPayload): AccountSnapshot {
  return { equity: step.account.equity, peakEquity: step.account.peakEquity, positions: new Map(step.account.positions) };
}

/** The fields of an intent on the wire, in one fixed order (digests compare JSON text). */
const INTENT_FIELDS = ['strategy', 'symbol', 'side', 'quantity', 'type', 'limitPrice', 'stopPrice', 'intent', 'confidence', 'exits'] as const;

/** The exits of an intent on the wire, in one fixed order. */
const EXIT_FIELDS = ['stopLoss', 'takeProfit', 'trailingStop'] as const;

/** A strategy intent as plain JSON: fixed field order, no undefined fields. */
function toWire(intent: StrategyIntent | IntentPayload): IntentPayload {
  const wire: Record<string, unknown> = {};
  for (const field of INTENT_FIELDS) if (intent[field] !== undefined) wire[field] = intent[field];
  const exits = intent.exits;
  if (exits !== undefined) {
    const ordered: Record<string, unknown> = {};
    for (const field of EXIT_FIELDS) if (exits[field] !== undefined) ordered[field] = exits[field];
    wire['exits'] = ordered;
  }
  return wire as IntentPayload;
}

/** Intents in the run's strategy order (stable within a strategy), as `collectIntents` orders them. */
function sortByStrategy(intents: readonly IntentPayload[], order: ReadonlyMap<string, number>): IntentPayload[] {
  return intents
    .map((intent, i) => ({ intent, i, rank: order.get(intent.strategy) ?? Number.MAX_SAFE_INTEGER }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((entry) => entry.intent);
}

/** sha256 of the intents' JSON: equal digests mean equal decisions. */
export function digestOf(intents: readonly IntentPayload[]): string {
  return createHash('sha256').update(JSON.stringify(intents.map(toWire))).digest('hex').slice(0, 32);
}
