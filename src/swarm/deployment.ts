import {
  type AgentConfig,
  CONTROL_PLANE_ID,
  type IntentPayload,
  DecisionMessage,
  OrdersMessage,
  OrdersResultMessage,
  ReplayMessage,
  SignalMessage,
  type StepPayload,
  StepMessage,
  StepRefusedMessage,
  HealthReportMessage,
  HealthRequestMessage,
} from '../agent/index.js';
import { type Bus, ControlMessage, type Subscription, swarmTopics } from '../bus/index.js';
import { type AgentHealth, type AgentSelfReport, HealthMonitor, type RecoveryMode } from '../health/index.js';
import { type Clock, type Deafness, InvalidInputError, type Logger, type TimerHandle, TradeswarmError, errorMessage } from '../core/index.js';
import { type FeedStep, type Pacer, isPacerWaitAbortedError } from '../market/index.js';
import type { AgentPlan, TopologyPlan } from '../topology/index.js';
import type { EndOfDataRule, EquityPoint } from '../portfolio/index.js';
import { type OrderAnswer, type OrdersRequest, TradingSession, type TradingSessionOptions, submitOrders } from '../trading/index.js';
import { type Fill, RejectReason } from '../venue/index.js';
import { AbsenceTracker, type AgentAbsence } from './absences.js';
import { AgentFleet, type SwarmEvent, SwarmRunError } from './fleet.js';
import { type ClosedStep, type DeploymentJournal, type DeploymentSnapshot, type DeploymentState, ABSENCES_KEPT, EVENTS_KEPT, type JournalReplay, type JournaledOrder, type JournaledSubmission, REPLAY_CONTEXT_STEPS, type VenueSnapshot } from './journal.js';
import { StepHistory } from './history.js';
import { publishControlBeat } from './hold.js';

export type { DeploymentSnapshot, DeploymentState } from './journal.js';
import type { AgentLauncher } from './launcher.js';
import { StepLedger } from './ledger.js';
import type { SwarmOutcome, SwarmReport } from './report.js';
import { type SwarmSpec, planOf, swarmSpecWarnings } from './spec.js';
import { runGaps } from '../runspec/index.js';


/** What moves a deployment. */
export type DeploymentEvent = 'start' | 'started' | 'drain' | 'drained' | 'fail';

/** The only moves a deployment makes. */
const DEPLOYMENT_TRANSITIONS: { readonly [S in DeploymentState]: Partial<Readonly<Record<DeploymentEvent, DeploymentState>>> } = {
  pending: { start: 'starting', fail: 'failed' },
  // A stop asked for while agents start drains what was started.
  starting: { started: 'running', drain: 'draining', fail: 'failed' },
  running: { drain: 'draining', fail: 'failed' },
  draining: { drained: 'stopped', fail: 'failed' },
  stopped: {},
  failed: {},
};

/** A deployment was asked to do what its state does not allow (start twice, run before it started…). */
export class DeploymentStateError extends TradeswarmError {
  override readonly name = 'DeploymentStateError';

  constructor(
    readonly state: DeploymentState,
    readonly event: DeploymentEvent | 'run',
  ) {
    super(`a deployment that is ${state} cannot ${event}; ${state === 'stopped' || state === 'failed' ? 'it has ended: make a new one' : 'wait for it to get there, or stop it'}`);
  }
}

/**
 * The state after `event` in `state`.
 * @throws DeploymentStateError when the table lists no such move.
 */
export function deploymentTransition(state: DeploymentState, event: DeploymentEvent): DeploymentState {
  const next = DEPLOYMENT_TRANSITIONS[state][event];
  if (next === undefined) throw new DeploymentStateError(state, event);
  return next;
}

/** The snapshot format {@link Deployment.restore} reads. */
const SNAPSHOT_VERSION = 1;

/** Options of a {@link Deployment}. */
export interface DeploymentOptions {
  readonly spec: SwarmSpec;
  /** Names the swarm's topics and sandboxes: unique among the deployments on one bus. */
  readonly swarmId: string;
  /** The control plane's bus, connected, with rights over the swarm's topics. */
  readonly bus: Bus;
  /** Starts agents: in sandboxes, or in this process for tests. */
  readonly launcher: AgentLauncher;
  /** The market, paced (lockstep or real time × speed) on `clock`. */
  readonly pacer: Pacer;
  /** Drives every wait, deadline and heartbeat. */
  readonly clock: Clock;
  /**
   * When this control plane could not listen (its event loop did not run): left out of agents'
   * silence and of a stalled step's wait. @default never deaf
   */
  readonly deafness?: Deafness;
  /** Measures latencies and start times for the report. @default performance.now */
  readonly stopwatch?: () => number;
  readonly logger: Logger;
  /** What to check when agents send no heartbeat. @default 'check that agents reach the bus' */
  readonly unreadyHint?: string;
  /** Called after every step closed at the venue; `steps` is the feed's length (null: endless). */
  readonly onProgress?: (progress: { readonly step: number; readonly steps: number | null }) => void;
  /** Called once per lifecycle event (agent lost, restarted, halted…), as it happens. */
  readonly onEvent?: (event: SwarmEvent) => void;
  /** Called with the deployment's new state each time it moves. */
  readonly onStateChange?: (state: DeploymentState) => void;
  /** How a lost agent is recovered (the environment's failover mode). @default 'automatic' */
  readonly recovery?: RecoveryMode;
  /**
   * Agents whose replicas an operator set (see {@link Deployment.scale}), by agent id: 2 gives the
   * agent a hot standby whatever `swarm.standby` says, 1 runs it alone. Standbys take over by
   * themselves, so only where `recovery` is automatic. @default none
   */
  readonly replicas?: ReadonlyMap<string, number>;
  /** Called when an agent's health changes (status or reasons), as the checks find it (`previous` undefined at its first check). */
  readonly onHealth?: (health: AgentHealth, previous: AgentHealth | undefined) => void;
  /** Called with each line an agent's process prints (read through the SDK, for sandboxes). */
  readonly onAgentOutput?: (agentId: string, stream: 'stdout' | 'stderr', line: string) => void;
  /**
   * Where each closed step is written before the next is published (see {@link DeploymentJournal});
   * without one, nothing outlives the process.
   */
  readonly journal?: DeploymentJournal;
  /**
   * Every this many closed steps, the step's journal record carries a {@link VenueSnapshot}, so a
   * restart reads and applies only the steps after the latest one. Its cost grows with the venue's
   * state (every order and equity point so far): about 0.1 s for 20,000 steps and 10,000 orders.
   * A whole number >= 1. @default 1000
   */
  readonly venueSnapshotEverySteps?: number;
  /**
   * Whether this control plane may still act (it leads the others): while not, no step is published
   * and no agent is judged or recovered; the server steps down meanwhile. @default always
   */
  readonly mayAct?: () => boolean;
}

/** The longest wait between two tries of a journal write that failed (they start at 100 ms and double). */
const JOURNAL_RETRY_MAX_MS = 5_000;

/** Steps per replay message to a restarted agent. */
const REPLAY_CHUNK = 200;

/**
 * Closed steps always held, and held past twice the checkpoint interval (see {@link Deployment.heldSteps}):
 * a slow decider's late orders of a step need its bars, a lagging agent's too.
 */
const HELD_MARGIN_STEPS = REPLAY_CONTEXT_STEPS;

/** How the run was placed, for the report: what runs it, not what it did. */
export interface DeploymentPlacement {
  readonly sandbox: 'local' | 'e2b';
  readonly broker: string;
  readonly brokerRoundTripMs: number | null;
}

/**
 * One swarm deployed: its agents (an {@link AgentFleet}), the market steps it publishes, the venue
 * it serves, and the facts its report is built from. Its state moves by one transition table
 * (pending → starting → running → draining → stopped | failed); every wait runs on the injected
 * `Clock`, so the whole loop runs under a manual clock in tests.
 *
 * Lockstep: step t+1 is published once step t was decided; a lost agent is waited for (its restart
 * replays what it missed); an agent lost for good halts the run or lets it go on by the spec's
 * `onLostAgent`; a step nothing decides within `stallTimeoutMs` halts it. Real time: steps follow
 * the data's spacing divided by speed, and do not wait.
 */
export class Deployment {
  readonly swarmId: string;
  readonly plan: TopologyPlan;
  readonly #options: DeploymentOptions;
  readonly #stopwatch: () => number;
  readonly #topics;
  /** Replaced once, by the venue snapshot of a deployment resumed from one. */
  #session: TradingSession;
  readonly #sessionOptions: TradingSessionOptions;
  readonly #venueSnapshotEvery: number;
  readonly #ledger: StepLedger;
  readonly #fleet: AgentFleet;
  /** Checks every agent's health on `swarm.healthCheckMs` (absent when it is 0). */
  readonly #health: HealthMonitor | undefined;
  #healthSeq = 0;
  /** Whether the control plane's bus was down at the last liveness check. */
  #busDown = false;
  readonly #lockstep: boolean;
  #state: DeploymentState = 'pending';
  /** The steps published that may still be needed (see {@link heldSteps}): the venue's bars of an order's step, and replays. */
  readonly #history = new StepHistory();
  /** Who took part in each step not closed yet, as last published (the journal and the absences take it when it closes). */
  readonly #participantsOf = new Map<number, string[]>();
  /** Who was absent from the closed steps, kept as stretches. */
  readonly #absent: AbsenceTracker;
  readonly #refusals = new Set<number>();
  readonly #refusalsNoted = new Set<number>();
  /** The latest {@link EVENTS_KEPT} events; `#eventsTotal` counts every one. */
  readonly #events: SwarmEvent[] = [];
  #eventsTotal = 0;
  readonly #subscriptions: Subscription[] = [];
  #halted: { reason: string; atStep: number } | null = null;
  #stopRequested = false;
  /** Stopping without a word on the bus (see {@link stop}). */
  #quiet = false;
  #currentStep = 0;
  #closedSteps = 0;
  #refusedCount = 0;
  #waiter: (() => void) | undefined;
  #beatTimer: TimerHandle | undefined;
  #beatSeq = 0;
  readonly #stopping = new AbortController();
  #readyMs = Number.NaN;
  /** Orders requests taken since the last step was journaled, and the orders they placed. */
  #submissions: JournaledSubmission[] = [];
  #orders: JournaledOrder[] = [];
  /** Whether a closed step waits for its signals before it is journaled. */
  #awaitingSignals = false;
  /** Whether the current step has closed (orders arriving now belong before the next step's open). */
  #betweenSteps = true;
  /** Agents' checkpoints since the last step was journaled (the latest of each). */
  readonly #newCheckpoints = new Map<string, NonNullable<ReturnType<AgentFleet['resumeOf']>>>();
  /** Agents' checkpoints a resumed deployment starts its agents from. */
  #resumeCheckpoints: ReadonlyMap<string, NonNullable<ReturnType<AgentFleet['resumeOf']>>> | undefined;
  /** Restarted agents being replayed now. */
  #replays = 0;
  #tradingMs = 0;
  #startedAt = 0;

  constructor(options: DeploymentOptions) {
    this.#options = options;
    this.swarmId = options.swarmId;
    this.#stopwatch = options.stopwatch ?? (() => performance.now());
    this.#startedAt = this.#stopwatch();
    const { spec, swarm: section, backtest } = options.spec;
    this.plan = planOf(options.spec);
    this.#absent = new AbsenceTracker(this.plan);
    this.#topics = swarmTopics(options.swarmId);
    this.#lockstep = section.pacing.mode === 'lockstep';
    const gaps = runGaps(backtest);
    this.#venueSnapshotEvery = options.venueSnapshotEverySteps ?? 1_000;
    if (!Number.isInteger(this.#venueSnapshotEvery) || this.#venueSnapshotEvery < 1) {
      throw new InvalidInputError('venueSnapshotEverySteps', `must be a whole number >= 1, got ${JSON.stringify(options.venueSnapshotEverySteps)}`);
    }
    this.#sessionOptions = {
      swarm: spec.name,
      symbols: [...options.pacer.symbols],
      venue: backtest.venue ?? {},
      portfolio: backtest.portfolio ?? {},
      ...(backtest.endOfData === undefined ? {} : { endOfData: backtest.endOfData }),
      ...(backtest.periodsPerYear === undefined ? {} : { periodsPerYear: backtest.periodsPerYear }),
      ...(backtest.statistics === undefined ? {} : { statistics: backtest.statistics }),
      ...(backtest.fillPriceSizing === undefined ? {} : { fillPriceSizing: backtest.fillPriceSizing }),
      ...(gaps === undefined ? {} : { gaps }),
    };
    this.#session = new TradingSession(this.#sessionOptions);
    this.#ledger = new StepLedger({
      deciders: this.plan.deciders.length,
      ...(this.plan.entry === undefined ? {} : { entry: this.plan.entry }),
      now: this.#stopwatch,
    });
    this.#fleet = new AgentFleet({
      agents: this.plan.agents,
      critical: this.plan.critical,
      launcher: options.launcher,
      configOf: (agent, { replayFirst, epoch, standby }) => this.#configOf(agent, replayFirst, epoch, standby),
      // Raised before the process starts: from then on the venue refuses its predecessors' orders.
      onEpoch: (agentId, epoch) => this.#session.venue.admitEpoch(agentId, epoch),
      unreadyHint: options.unreadyHint ?? 'check that agents reach the bus',
      agentTimeoutMs: section.agentTimeoutMs,
      // Standbys where the environment fails over by itself.
      standbys: section.standby && (options.recovery ?? 'automatic') === 'automatic',
      ...(options.replicas === undefined || (options.recovery ?? 'automatic') !== 'automatic' ? {} : { replicas: options.replicas }),
      promote: (agentId, epoch) => this.#options.bus.publish(this.#topics.control(agentId), ControlMessage.draft({ command: 'promote', epoch })).then(() => undefined),
      recovery: { mode: options.recovery ?? 'automatic', softRestarts: section.softRestarts, maxRestarts: section.maxRestarts, restartWindowMs: section.restartWindowMs },
      recoveryWaitMs: section.recoveryWaitMs,
      waitForLost: this.#lockstep,
      ...(options.mayAct === undefined ? {} : { mayAct: options.mayAct }),
      clock: options.clock,
      ...(options.deafness === undefined ? {} : { deafness: options.deafness }),
      stopwatch: this.#stopwatch,
      logger: options.logger,
      emit: (event) => this.#emit(event),
      halt: (reason) => this.#halt(reason),
      onGone: (agent, why) => this.#onGone(agent, why),
      wake: () => this.#wake(),
      replay: (agent) => this.#replay(agent),
      ...(options.onAgentOutput === undefined ? {} : { onOutput: options.onAgentOutput }),
    });
    this.#health =
      section.healthCheckMs === 0
        ? undefined
        : new HealthMonitor({
            probe: {
              agents: () => this.#fleet.monitored(),
              currentStep: () => this.#currentStep,
              sandbox: (agentId) => this.#fleet.inspect(agentId),
              ask: (agentId, timeoutMs) => this.#askHealth(agentId, timeoutMs),
            },
            clock: options.clock,
            intervalMs: section.healthCheckMs,
            thresholds: { heartbeatMs: section.heartbeatMs, agentTimeoutMs: section.agentTimeoutMs, maxLagSteps: section.maxLagSteps, checkpointEverySteps: section.checkpointEverySteps },
            onChange: (health, previous) => this.#onHealth(health, previous),
            onError: (error) => options.logger.warn({ err: errorMessage(error) }, 'a health check failed; it is tried again at the next interval'),
          });
  }

  /** The agent's own report, asked on its inbox; null when it does not answer in time. */
  async #askHealth(agentId: string, timeoutMs: number): Promise<AgentSelfReport | null> {
    try {
      const reply = await this.#options.bus.request(this.#topics.inbox(agentId), HealthRequestMessage.draft({ seq: this.#healthSeq++ }), { timeoutMs });
      return HealthReportMessage.is(reply) ? reply.payload : null;
    } catch {
      return null;
    }
  }

  /**
   * A health check changed its verdict on an agent: the control plane is told; a running agent whose
   * sandbox the provider reports paused or gone is lost at once (its heartbeats would say so only
   * after the agent timeout), and recovered as any lost agent is.
   */
  #onHealth(health: AgentHealth, previous: AgentHealth | undefined): void {
    this.#options.onHealth?.(health, previous);
    const cut = health.reasons.filter((reason) => reason.level === 'sandbox' && reason.status === 'unreachable');
    if (cut.length > 0 && this.#fleet.lifecycleOf(health.agentId) === 'running') this.#fleet.lose(health.agentId, `health check: ${cut.map((reason) => reason.detail).join('; ')}`);
  }


  /**
   * A deployment as `snapshot` left it: its state and its facts (events, absences, where the market
   * stood, its agents). A deployment that had ended can report; one saved while it ran is brought
   * back by the control plane, which re-attaches or redeploys its agents.
   * @throws SwarmRunError when the snapshot is of another version or another swarm.
   */
  static restore(snapshot: DeploymentSnapshot, options: DeploymentOptions): Deployment {
    // Snapshots come back from storage: the version is checked as whatever was read.
    const version: unknown = (snapshot as { readonly version: unknown }).version;
    if (version !== SNAPSHOT_VERSION) throw new SwarmRunError(`deployment snapshot version ${JSON.stringify(version)} is not ${SNAPSHOT_VERSION}; it was made by another tradeswarm version`);
    if (snapshot.swarmId !== options.swarmId) throw new SwarmRunError(`the snapshot is of swarm ${snapshot.swarmId}, not ${options.swarmId}`);
    const deployment = new Deployment(options);
    deployment.#state = snapshot.state;
    deployment.#closedSteps = snapshot.closedSteps;
    deployment.#currentStep = snapshot.position.step;
    deployment.#halted = snapshot.halted === null ? null : { ...snapshot.halted };
    deployment.#stopRequested = snapshot.stopRequested;
    deployment.#events.push(...snapshot.events.slice(-EVENTS_KEPT));
    // Snapshots stored before events were counted hold every one.
    deployment.#eventsTotal = snapshot.eventsTotal ?? snapshot.events.length;
    deployment.#restoredAbsences = [...snapshot.absences];
    deployment.#restoredAbsencesTotal = snapshot.absencesTotal ?? snapshot.absences.length;
    deployment.#restoredAgents = snapshot.agents.map((agent) => ({ ...agent }));
    return deployment;
  }

  /**
   * A deployment that was running when its control plane died, brought back from its journal: the
   * venue and the books are re-derived by applying every closed step again (its bars, and the
   * orders requests in the order the venue took them), so they stand exactly where they stood; the
   * ledger gets the steps' signals back, to replay to agents. {@link start} then deploys every
   * agent from its latest checkpoint and replays the steps after it, and {@link run} goes on with
   * the step after the last closed one. The pacer must be opened at `replay.snapshot.position`.
   * @throws SwarmRunError when the snapshot is of another version or swarm, or the steps are not
   *   the closed steps 0, 1, 2… in order.
   */
  static resumeFrom(replay: JournalReplay, options: DeploymentOptions): Deployment {
    const deployment = Deployment.restore(replay.snapshot, options);
    deployment.#rebuild(replay);
    return deployment;
  }

  #rebuild(replay: JournalReplay): void {
    const { steps, snapshot, venue } = replay;
    const first = steps[0]?.index ?? 0;
    steps.forEach((step, i) => {
      if (step.index !== first + i) throw new SwarmRunError(`the journal's step ${first + i} has index ${step.index}: steps must follow one another without a gap`);
    });
    if (first + steps.length !== snapshot.closedSteps) throw new SwarmRunError(`the journal holds steps up to ${first + steps.length - 1} but its snapshot says ${snapshot.closedSteps} closed`);
    // The steps before the venue snapshot are only held again (bars, accounts, signals); the snapshot holds what they did.
    const from = venue?.closedSteps ?? 0;
    if (first > from) throw new SwarmRunError(`the journal's steps begin at ${first}, after ${venue === undefined ? 'the first step, and there is no venue snapshot' : `the venue snapshot's ${from}`}: the steps between are missing`);
    if (venue !== undefined && venue.closedSteps > snapshot.closedSteps) throw new SwarmRunError(`the venue snapshot is of ${venue.closedSteps} closed steps, more than the ${snapshot.closedSteps} the deployment's snapshot says`);
    const apply = (submission: JournaledSubmission): void => {
      const bars = this.#history.get(submission.request.index)?.bars;
      if (bars === undefined) throw new SwarmRunError(`the journal's orders of step ${submission.request.index} come before that step`);
      submitOrders(this.#session, submission.request, bars, this.#ledger, submission.from);
    };
    // Held again, not applied: the snapshot holds what they did.
    for (const step of steps.slice(0, from - first)) {
      if (step.opened === undefined || step.opened === null) throw new SwarmRunError(`the journal's step ${step.index} has no account it was published with, which a restart from a venue snapshot needs`);
      this.#holdAgain(step, step.opened);
      // Which steps reached the venue: a late request of one of them records no refusal twice.
      if (step.submissions.length > 0) this.#ledger.ordersArrived(step.index);
    }
    if (venue !== undefined) this.#takeUp(venue);
    for (const step of steps.slice(from - first)) {
      for (const submission of step.submissions) if (submission.beforeOpen) apply(submission);
      const account = this.#session.open(step.bars);
      this.#holdAgain(step, { equity: account.equity, peakEquity: account.peakEquity, positions: [...account.positions] });
      for (const submission of step.submissions) if (!submission.beforeOpen) apply(submission);
      this.#session.close(step.bars);
      this.#absent.step(step.index, step.participants);
    }
    // Absences follow from who took part in each step, now known again; the run goes on from here.
    this.#restoredAbsences = [];
    this.#restoredAbsencesTotal = 0;
    this.#state = 'pending';
    this.#halted = null;
    this.#stopRequested = false;
    this.#resumeCheckpoints = replay.checkpoints;
    this.#letGo();
  }

  /** A journaled step held in memory again, published with `account`, and its agents' signals. */
  #holdAgain(step: JournalReplay['steps'][number], account: StepPayload['account']): void {
    this.#history.add({ index: step.index, bars: step.bars.map((bar) => ({ ...bar })), account, participants: [...step.participants] }, step.bars);
    for (const [agent, intents] of Object.entries(step.signals)) this.#ledger.signal(agent, step.index, [...intents]);
  }

  /** Takes up a venue snapshot: the session, the absences and the ledger's counts as they stood then. */
  #takeUp(venue: VenueSnapshot): void {
    try {
      this.#session = TradingSession.restore(venue.session, this.#sessionOptions);
    } catch (error) {
      throw new SwarmRunError(`the venue snapshot of step ${venue.closedSteps - 1} cannot be taken up: ${errorMessage(error)}`, { cause: error });
    }
    this.#absent.restore(venue.absences);
    this.#ledger.restoreCounts(venue.ledger);
  }

  #restoredAbsences: AgentAbsence[] = [];
  /** How many absences the snapshot restored from counted (it carries only the latest of them). */
  #restoredAbsencesTotal = 0;
  #restoredAgents: DeploymentSnapshot['agents'] | undefined;

  get state(): DeploymentState {
    return this.#state;
  }

  /** The index of the step being traded. */
  get currentStep(): number {
    return this.#currentStep;
  }

  /**
   * How many published steps it holds in memory (for tests and metrics). It keeps a step while an
   * agent or its standby may be replayed from it: the steps from the oldest of the agents' latest
   * checkpoints (an agent gone for good is never replayed; one without a checkpoint is, from the
   * first step), and at least the last 100 closed ones (a slow mesh decider's late orders of them,
   * an agent lagging behind real-time pacing). At most
   * `2 × swarm.checkpointEverySteps + 100` steps (600 by default): an agent whose checkpoint is older
   * (it fell silent long ago) is replayed from the journal. The ledger holds the same steps (see
   * {@link StepLedger.forget}), and when the steps whose orders have not filled yet were published.
   */
  get heldSteps(): number {
    return Math.max(this.#history.size, this.#ledger.heldSteps);
  }

  /** The agents' processes (see {@link AgentFleet.processes}). */
  processes(): ReturnType<AgentFleet['processes']> {
    return this.#fleet.processes();
  }

  /**
   * An operator restarts lost agent `agentId` (manual recovery): it climbs the recovery ladder once.
   * @throws SwarmRunError when there is no such agent or it is not lost.
   */
  restartAgent(agentId: string): void {
    this.#fleet.requestRestart(agentId);
  }

  /**
   * An operator sets how many processes agent `agentId` runs as (see {@link AgentFleet.scale}): 1
   * alone, 2 with a hot standby, which takes over by itself: only where recovery is automatic.
   * @throws InvalidInputError naming `agent` or `replicas`.
   */
  scale(agentId: string, replicas: number): void {
    if (replicas > 1 && (this.#options.recovery ?? 'automatic') !== 'automatic') {
      throw new InvalidInputError('replicas', `a second replica is a hot standby, which takes over by itself, and this deployment recovers lost agents ${this.#options.recovery === 'manual' ? 'by hand' : 'not at all'}; deploy to an environment that fails over automatically (prod)`);
    }
    this.#fleet.scale(agentId, replicas);
  }

  /** How many processes agent `agentId` is to run as (see {@link scale}). */
  replicasOf(agentId: string): number {
    return this.#fleet.replicasOf(agentId);
  }

  /** Sends a signal to an agent's process (SIGKILL as a crash would). */
  kill(agentId: string, signal?: Parameters<AgentFleet['kill']>[1]): Promise<void> {
    return this.#fleet.kill(agentId, signal);
  }

  /**
   * Subscribes to the swarm's topics, starts the control plane's heartbeat and deploys every agent;
   * resolves once all are ready.
   * @throws SwarmRunError when an agent does not come up (the deployment is then `failed`);
   *   SwarmStoppedError when {@link stop} came first (it is then drained and `stopped`).
   */
  async start(): Promise<void> {
    this.#move('start');
    try {
      await this.#subscribe();
      this.#beat();
      this.#readyMs = await this.#fleet.deploy(
        this.#stopping.signal,
        this.#resumeCheckpoints === undefined ? undefined : { checkpoints: this.#resumeCheckpoints, ceilings: this.#resumedEpochs(), last: new Map((this.#restoredAgents ?? []).map((agent) => [agent.id, agent])) },
      );
      // Checked from the first step on: until then the deployment's own start watches its agents.
      this.#health?.start();
      if (this.#state === 'starting') this.#move('started');
    } catch (error) {
      if (this.#stopRequested) await this.#drain();
      else this.#fail();
      throw error;
    }
  }

  /**
   * Trades step by step until the market ends, a fault halts the run, or {@link stop} is called;
   * then drains: agents are told to stop (each checkpoints) and the deployment is `stopped`.
   * @throws DeploymentStateError when the deployment is not running.
   */
  async run(): Promise<void> {
    if (this.#state !== 'running') throw new DeploymentStateError(this.#state, 'run');
    const tradingStarted = this.#stopwatch();
    try {
      await this.#loop();
      this.#tradingMs = this.#stopwatch() - tradingStarted;
      await this.#drain();
    } catch (error) {
      this.#fail();
      throw error;
    }
  }

  /**
   * Asks the deployment to stop: no new step is published and it drains; the report's outcome is
   * `stopped`. Before agents are ready, {@link start} rejects with SwarmStoppedError. `quietly`: no
   * `stop` goes out on the bus; the agents are left running for the leader to adopt where they can
   * outlive this control plane (see {@link AgentFleet.release}), else ended by their launcher. A
   * server that lost its lead does so: on a broker it shares with the new leader, a `stop` to every
   * agent of the swarm would reach the new leader's agents too.
   */
  stop(reason: string, options: { readonly quietly?: boolean } = {}): void {
    if (this.#stopRequested || this.#state === 'stopped' || this.#state === 'failed') return;
    this.#stopRequested = true;
    this.#quiet = options.quietly === true;
    this.#halt(`stopped by ${reason}`);
    this.#stopping.abort(reason);
  }

  /** Its agents as {@link toJSON} gives them, without the rest of the snapshot (its events and absences grow with the run). */
  agents(): DeploymentSnapshot['agents'] {
    const live = this.#fleet.snapshot().map((agent) => {
      const health = this.#health?.of(agent.id);
      return health === undefined ? agent : { ...agent, health: { status: health.status, reasons: health.reasons, sinceMs: health.sinceMs } };
    });
    return live.length > 0 ? live : [...(this.#restoredAgents ?? [])];
  }

  /** The deployment's state and facts as plain JSON (see {@link Deployment.restore}). */
  toJSON(): DeploymentSnapshot {
    return {
      version: SNAPSHOT_VERSION,
      swarmId: this.swarmId,
      state: this.#state,
      position: this.#options.pacer.position(),
      closedSteps: this.#closedSteps,
      halted: this.#halted === null ? null : { ...this.#halted },
      stopRequested: this.#stopRequested,
      events: [...this.#events],
      eventsTotal: this.#eventsTotal,
      absences: this.#absences(ABSENCES_KEPT),
      absencesTotal: this.#restoredAbsencesTotal + this.#absent.count(),
      agents: this.agents(),
    };
  }

  /** The account's equity points so far, in time order (after {@link report}: with the end-of-data point). */
  equityCurve(): readonly EquityPoint[] {
    return this.#session.portfolio.equityCurve();
  }

  /** The run's report, from what was recorded: the venue's books, the ledger, the agents' last checkpoints. */
  report(placement: DeploymentPlacement, options: { readonly endOfData?: EndOfDataRule } = {}): SwarmReport {
    const settled = this.#session.settle(options);
    const messages = this.#fleet.published() + this.#options.bus.stats().published;
    const absences = this.#absences();
    const outcome: SwarmOutcome = this.#stopRequested ? 'stopped' : this.#halted !== null ? 'halted' : absences.length > 0 ? 'degraded' : 'complete';
    const { pacing } = this.#options.spec.swarm;
    return {
      ...settled.report,
      outcome,
      topology: this.plan.topology,
      pacing: pacing.mode === 'lockstep' ? 'lockstep' : `realtime x${pacing.speed}`,
      ...placement,
      steps: {
        total: this.#options.pacer.stepCount ?? this.#history.count,
        published: this.#history.count,
        decided: this.#ledger.decidedSteps,
        refused: this.#refusedCount,
      },
      agents: this.#fleet.reports(),
      pipeline: this.#fleet.pipelineOf(this.plan.agents.filter((agent) => agent.decides).map((agent) => agent.id)),
      agreement: this.#ledger.agreement(),
      duplicateOrders: this.#ledger.duplicateOrders,
      latencyMs: this.#ledger.latency(),
      messages,
      messagesPerSecond: this.#tradingMs > 0 ? (messages / this.#tradingMs) * 1000 : 0,
      halted: this.#halted === null ? null : { ...this.#halted },
      absences,
      events: [...this.#events],
      eventsTotal: this.#eventsTotal,
      warnings: swarmSpecWarnings(this.#options.spec),
      tradingMs: this.#tradingMs,
      readyMs: this.#readyMs,
      elapsedMs: this.#stopwatch() - this.#startedAt,
    };
  }

  /** Ends every agent and what they run in (the deployment is then only a report). */
  async close(): Promise<void> {
    this.#stopBeat();
    this.#health?.stop();
    await Promise.all(this.#subscriptions.splice(0).map((subscription) => subscription.unsubscribe().catch(() => undefined)));
    await this.#fleet.close();
  }

  #move(event: DeploymentEvent): void {
    this.#state = deploymentTransition(this.#state, event);
    this.#options.onStateChange?.(this.#state);
  }

  #fail(): void {
    this.#stopBeat();
    this.#health?.stop();
    if (this.#state !== 'stopped' && this.#state !== 'failed') this.#move('fail');
  }

  #emit(event: Omit<SwarmEvent, 'atStep'>): void {
    const full = { ...event, atStep: this.#currentStep };
    this.#events.push(full);
    if (this.#events.length > EVENTS_KEPT) this.#events.shift();
    this.#eventsTotal += 1;
    this.#options.logger.info(full, 'swarm event');
    this.#options.onEvent?.(full);
    // A lost, restarted or gone agent is checked at once, not at the next interval.
    if (event.kind === 'lost' || event.kind === 'restarted' || event.kind === 'gone') void this.#health?.check([event.agent]).catch(() => undefined);
  }

  #wake(): void {
    this.#waiter?.();
  }

  #halt(reason: string): void {
    if (this.#halted === null) this.#halted = { reason, atStep: this.#currentStep };
    this.#wake();
  }

  /** An agent lost for good: the run stops, unless the spec lets it go on and it can. */
  #onGone(agent: AgentPlan, why: string): void {
    const { plan } = this;
    const essential = plan.essential[agent.id];
    const lost = `${agent.id} lost for good (${why})`;
    if (essential !== undefined) this.#halt(`${lost}; ${essential}`);
    else if (plan.deciders.every((id) => this.#fleet.lifecycleOf(id) === 'gone')) this.#halt(`${lost}; no decider is left`);
    else if (this.#options.spec.swarm.onLostAgent === 'halt') this.#halt(`${lost}; swarm.onLostAgent is halt, so the run stops (set it to continue to decide without the agent)`);
    else this.#options.logger.warn({ agent: agent.id, why }, 'an agent is lost for good; the following steps are decided without it (swarm.onLostAgent: continue)');
  }

  /**
   * The highest epoch each agent's process may have had when the control plane died: its snapshot's,
   * plus the restarts it had left (each raises it by one, and the last ones may not have reached a
   * snapshot). The agents deployed again start above it, so nothing left of the old run can trade.
   */
  #resumedEpochs(): Map<string, number> {
    const { maxRestarts } = this.#options.spec.swarm;
    return new Map((this.#restoredAgents ?? []).map((agent) => [agent.id, (agent.epoch ?? 0) + Math.max(0, maxRestarts - agent.restarts)]));
  }

  #configOf(agent: AgentPlan, replayFirst: boolean, epoch: number, standby: boolean): AgentConfig {
    const { spec, swarm: section, backtest } = this.#options.spec;
    return {
      replayFirst,
      epoch,
      standby,
      swarm: this.swarmId,
      agentId: agent.id,
      kind: agent.kind,
      strategies: agent.strategies.map((index) => ({ index, spec: spec.strategies[index] as AgentConfig['strategies'][number]['spec'] })),
      allStrategies: backtest.strategies.map((strategy) => ({ name: strategy.name, symbols: [...(strategy.symbols ?? [])] })),
      ...(agent.decides
        ? { pipeline: { ...(spec.consensus === undefined ? {} : { consensus: spec.consensus }), ...(spec.allocator === undefined ? {} : { allocator: spec.allocator }), ...(spec.risk === undefined ? {} : { risk: spec.risk }) } }
        : {}),
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
    };
  }

  /**
   * Lets go of the steps no replay will take from memory any more (see {@link heldSteps}). A
   * checkpoint's `replayFrom` is the first step its agent needs; it only moves forward, so the
   * floor does too.
   */
  #letGo(): void {
    const { checkpointEverySteps } = this.#options.spec.swarm;
    let floor = Math.max(0, this.#closedSteps - HELD_MARGIN_STEPS);
    for (const agent of this.plan.agents) {
      if (this.#fleet.lifecycleOf(agent.id) === 'gone') continue;
      const resume = this.#fleet.resumeOf(agent.id) ?? this.#resumeCheckpoints?.get(agent.id);
      floor = Math.min(floor, resume?.replayFrom ?? 0);
    }
    floor = Math.max(floor, this.#history.count - (2 * checkpointEverySteps + HELD_MARGIN_STEPS));
    this.#history.forget(floor);
    this.#ledger.forget(floor);
    for (const refused of [this.#refusals, this.#refusalsNoted]) for (const index of refused) if (index < floor) refused.delete(index);
  }

  /**
   * Steps `from` to `to` (exclusive, at most) to replay to an agent, with the signals of `expected`
   * in each: from memory, or, for steps it no longer holds, from the journal (what the step was
   * published with and the signals agents sent, as stored when it closed: the same replay; the
   * feed cannot give them again, a live one least of all). Fewer than asked when the journal's part
   * ends where memory begins.
   * @throws SwarmRunError when a step is neither held nor in the journal: the replay fails (the
   *   agent's restart with it) rather than leave the agent without steps it needs.
   */
  async #replaySteps(agentId: string, from: number, to: number, expected: ReadonlySet<string>): Promise<{ readonly steps: StepPayload[]; readonly signals: Array<{ index: number; intents: IntentPayload[] }> }> {
    const held = this.#history.first;
    if (from >= held || to <= from) {
      const steps: StepPayload[] = [];
      for (let index = from; index < to; index++) steps.push(this.#history.held(index).payload);
      return { steps, signals: steps.map((step) => ({ index: step.index, intents: this.#ledger.signalsOf(step.index, expected) })) };
    }
    const until = Math.min(to, held);
    const why = `agent ${agentId} must be replayed from step ${from}, older than the steps this deployment holds (from ${held}: it keeps 2 × swarm.checkpointEverySteps + ${HELD_MARGIN_STEPS} after the oldest checkpoint)`;
    const { journal } = this.#options;
    if (journal?.stepsBetween === undefined) throw new SwarmRunError(`${why}, and it has no journal to read them from`);
    const stored = await journal.stepsBetween(from, until);
    const steps: StepPayload[] = [];
    const signals: Array<{ index: number; intents: IntentPayload[] }> = [];
    for (let index = from; index < until; index++) {
      const step = stored[index - from];
      if (step?.index !== index) throw new SwarmRunError(`${why}, and the journal does not hold step ${index}`);
      if (step.opened === null) throw new SwarmRunError(`${why}, and the journal's step ${index} was stored without its account (by a tradeswarm before migration 006): it cannot be replayed`);
      steps.push({ index, bars: step.bars.map((bar) => ({ ...bar })), account: { ...step.opened, positions: step.opened.positions.map(([symbol, units]) => [symbol, units] as [string, number]) }, participants: [...step.participants] });
      signals.push({ index, intents: Object.entries(step.signals).flatMap(([agent, intents]) => (expected.has(agent) ? [...intents] : [])) });
    }
    return { steps, signals };
  }

  /**
   * Rebuilds a restarted agent's strategies and pipeline: from the state of its last checkpoint and
   * the steps after it, or, without one, from every step. A checkpoint the agent cannot take up is
   * forgotten and the restart fails, so the next one starts a fresh process and replays every step.
   * Every step closed before the agent goes on is replayed, those that close meanwhile too (a step the
   * agent's old process decided as it was stopped); lockstep publishes no new step until it is done.
   */
  async #replay(agent: AgentPlan): Promise<{ readonly resumedAt: number | null; readonly replayed: number }> {
    const resume = this.#fleet.resumeOf(agent.id);
    // The steps it must have: every closed one, and the current one once it closed (it may be still being stored).
    const boundary = (): number => Math.max(this.#currentStep, this.#closedSteps);
    // A ring's entry keeps no state (it forwards steps): it is replayed nothing, only released. Any
    // other agent without a checkpoint is replayed from the first step.
    const stateless = agent.id === this.plan.entry;
    const first = resume === undefined ? (stateless ? boundary() : 0) : Math.min(resume.replayFrom, boundary());
    const expected = new Set([agent.id, ...agent.upstream]);
    let from = first;
    let restoring = resume;
    this.#replays += 1;
    try {
      do {
        const upTo = boundary();
        const { steps, signals } = await this.#replaySteps(agent.id, from, Math.min(upTo, from + REPLAY_CHUNK), expected);
        const to = from + steps.length;
        const draft = ReplayMessage.draft({ steps, signals, last: to >= upTo, ...(restoring === undefined ? {} : { resume: restoring }) });
        await this.#options.bus.request(this.#topics.inbox(agent.id), draft, { timeoutMs: 30_000 });
        restoring = undefined;
        from = to;
      } while (from < boundary());
    } catch (error) {
      if (resume !== undefined) this.#fleet.forgetResume(agent.id);
      throw error;
    } finally {
      this.#replays -= 1;
      this.#wake();
    }
    return { resumedAt: resume === undefined ? null : resume.replayFrom - 1, replayed: from - first };
  }

  /** The control plane's subscriptions: liveness, signals, decisions, the venue, checkpoints. */
  async #subscribe(): Promise<void> {
    const { bus } = this.#options;
    const topics = this.#topics;
    const ledger = this.#ledger;
    const fleet = this.#fleet;
    this.#subscriptions.push(
      ...(await Promise.all([
        bus.subscribe(topics.allHeartbeats(), (envelope) => fleet.heard(envelope)),
        bus.subscribe(topics.allSignals(), (envelope) => {
          if (!SignalMessage.is(envelope) || !fleet.has(envelope.from)) return;
          ledger.signal(envelope.from, envelope.payload.index, envelope.payload.intents);
          // A step being journaled waits for its signals.
          if (this.#awaitingSignals) this.#wake();
        }),
        bus.subscribe(topics.allDecisions(), (envelope) => {
          if (StepRefusedMessage.is(envelope)) {
            // Told once per step: lockstep offers a refused step again and again until the ring takes it.
            if (!this.#refusalsNoted.has(envelope.payload.index)) this.#emit({ agent: envelope.from, kind: 'refused', detail: envelope.payload.reason });
            this.#refusalsNoted.add(envelope.payload.index);
            this.#refusals.add(envelope.payload.index);
            this.#wake();
            return;
          }
          if (!DecisionMessage.is(envelope)) return;
          ledger.output(envelope.from, envelope.payload.index);
          if (!this.plan.deciders.includes(envelope.from)) return;
          if (ledger.decision(envelope.from, envelope.payload.index, envelope.payload.digest)) this.#wake();
        }),
        bus.serve(topics.allOrders(), (request) => {
          if (!OrdersMessage.is(request)) throw new SwarmRunError(`expected an orders request, got ${request.type}`);
          const { index } = request.payload;
          const step = this.#history.get(index)?.bars;
          if (step === undefined) {
            throw new SwarmRunError(
              index < this.#history.first ? `orders for step ${index}, long closed (steps before ${this.#history.first} are let go)` : `orders for step ${index}, but only ${this.#history.count} steps were published`,
            );
          }
          const results = submitOrders(this.#session, request.payload, step, ledger, request.from);
          if (results === 'fenced') {
            const floor = this.#session.venue.epochOf(request.from);
            this.#emit({ agent: request.from, kind: 'fenced', detail: `orders of step ${index} from epoch ${request.payload.epoch} refused: the venue takes epoch ${floor} or later (a replaced process came back)` });
            const refused = { status: 'rejected' as const, reason: RejectReason.staleEpoch };
            return OrdersResultMessage.draft({ index, results: request.payload.approved.map((intent) => ({ clientOrderId: this.#session.orderId(intent, index), ...refused })) });
          }
          if (this.#options.journal !== undefined) this.#noteSubmission(request.from, request.payload, results);
          this.#wake();
          return OrdersResultMessage.draft({ index, results });
        }),
        bus.subscribe(topics.allCheckpoints(), (envelope) => {
          const before = fleet.resumeOf(envelope.from);
          fleet.checkpointed(envelope);
          const after = fleet.resumeOf(envelope.from);
          if (after !== undefined && after !== before) this.#newCheckpoints.set(envelope.from, after);
        }),
      ])),
    );
  }

  /** The control plane's heartbeat: agents exit when it stops. */
  #beat(): void {
    const { bus, clock } = this.#options;
    publishControlBeat(bus, this.#topics, this.#beatSeq++);
    this.#beatTimer = clock.setTimeout(() => this.#beat(), this.#options.spec.swarm.heartbeatMs);
  }

  #stopBeat(): void {
    if (this.#beatTimer !== undefined) this.#options.clock.clearTimeout(this.#beatTimer);
    this.#beatTimer = undefined;
  }

  /** Waits until something wakes the loop, or `ms` on the clock at the latest. */
  #nextChange(ms: number): Promise<void> {
    const { clock } = this.#options;
    return new Promise<void>((resolve) => {
      const timer = clock.setTimeout(resolve, ms);
      this.#waiter = () => {
        clock.clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      this.#waiter = undefined;
    });
  }

  /** Steps go at QoS 0, as agents send signals and decisions: a lost step is published again after stepTimeoutMs. */
  async #publishStep(payload: StepPayload): Promise<void> {
    this.#participantsOf.set(payload.index, [...payload.participants]);
    this.#ledger.published(payload.index);
    await this.#options.bus.publish(this.#topics.step(), StepMessage.draft(payload), { qos: 0 });
  }

  /**
   * The fleet's liveness check, while the control plane's own bus is up. While it is down (the broker
   * restarting), no heartbeat reaches anyone: the agents' silence says nothing of them, and restarting
   * them could only fail. Once it is back, every agent is given a full agent timeout to be heard again.
   */
  #checkLiveness(): void {
    if (this.#options.bus.stats().connected === false) {
      if (!this.#busDown) this.#emit({ agent: CONTROL_PLANE_ID, kind: 'bus', detail: "the control plane's connection to the broker dropped; agents are not judged by their silence until it is back" });
      this.#busDown = true;
      return;
    }
    if (this.#busDown) {
      this.#busDown = false;
      this.#fleet.graceAll();
      this.#emit({ agent: CONTROL_PLANE_ID, kind: 'bus', detail: "the control plane's connection to the broker is back" });
    }
    this.#fleet.checkLiveness();
  }

  #stepDone(index: number): boolean {
    return this.#ledger.done(index, this.plan.deciders, (id) => this.#fleet.isLive(id));
  }

  /** The next market step, or null at the end of the data or once the run is stopping. */
  async #nextStep(): Promise<FeedStep | null> {
    try {
      return await this.#options.pacer.next({ signal: this.#stopping.signal });
    } catch (error) {
      if (isPacerWaitAbortedError(error)) return null;
      throw error;
    }
  }

  async #loop(): Promise<void> {
    const { clock, pacer } = this.#options;
    const section = this.#options.spec.swarm;
    let lastProgress = clock.now();
    while (this.#halted === null) {
      // A restarted agent being replayed gets every closed step before a new one is published.
      while (this.#lockstep && this.#replays > 0 && this.#halted === null) await this.#nextChange(section.heartbeatMs);
      // Woken after a pause past its lease, this server publishes nothing more: it is stepping down.
      while (this.#options.mayAct?.() === false && this.#halted === null) await this.#nextChange(section.heartbeatMs);
      const next = await this.#nextStep();
      if (next === null || this.#halted !== null) break;
      const index = next.index;
      this.#currentStep = index;
      const step = next.bars;
      const account = this.#session.open(step);
      this.#betweenSteps = false;
      const openFills = this.#session.stepFills();
      this.#ledger.filled(openFills);
      const payload: StepPayload = {
        index,
        bars: step.map((bar) => ({ ...bar })),
        account: { equity: account.equity, peakEquity: account.peakEquity, positions: [...account.positions] },
        participants: this.#fleet.participants(),
      };
      this.#history.add(payload, step);
      await this.#publishStep(payload);
      if (this.#lockstep) await this.#awaitDecision(index, next, lastProgress);
      else this.#checkLiveness();
      if (this.#halted !== null && !this.#stepDone(index)) break;
      lastProgress = clock.now();
      this.#session.close(step);
      this.#betweenSteps = true;
      this.#closedSteps = index + 1;
      const closeFills = this.#session.stepFills();
      this.#ledger.filled(closeFills);
      this.#absent.step(index, this.#participantsOf.get(index));
      if (this.#options.journal !== undefined) await this.#journal(this.#options.journal, next, [...openFills, ...closeFills]);
      this.#participantsOf.delete(index);
      this.#letGo();
      this.#options.onProgress?.({ step: index + 1, steps: pacer.stepCount });
    }
    // A halted run stood at the first step it did not trade.
    if (this.#halted !== null) this.#halted = { ...this.#halted, atStep: this.#closedSteps };
    if (!this.#lockstep && this.#halted === null && this.#history.count > 0) {
      // The last steps' decisions are still on their way: give them one step timeout.
      const last = this.#history.count - 1;
      const deadline = clock.now() + section.stepTimeoutMs;
      while (!this.#stepDone(last) && clock.now() < deadline && this.#halted === null) await this.#nextChange(5);
    }
  }

  /** Lockstep: waits until step `index` is decided, publishing it again when agents were lost, came back, or the step timed out. */
  async #awaitDecision(index: number, step: FeedStep, lastProgress: number): Promise<void> {
    const { clock } = this.#options;
    const section = this.#options.spec.swarm;
    let lastPublish = clock.now();
    let seen = this.#fleet.version;
    const current = this.#history.held(index).payload;
    for (;;) {
      // A step decided by the time the run halts is still closed at the venue.
      if (this.#stepDone(index)) {
        this.#ledger.roundCompleted(index);
        return;
      }
      if (this.#halted !== null) return;
      if (clock.now() - lastProgress - (this.#options.deafness?.deafMs(lastProgress) ?? 0) > section.stallTimeoutMs) {
        const reason = this.#stallReason(index, step, lastProgress);
        this.#emit({ agent: CONTROL_PLANE_ID, kind: 'stall', detail: reason });
        this.#halt(reason);
        return;
      }
      if (this.#refusals.has(index)) {
        // The ring refused the step: try it again once its breaker may have closed, a heartbeat later.
        // A plain sleep, not #nextChange: every refusal wakes the loop, and waking on it would offer
        // the step again at once, for ever, without the ring's entry ever hearing its stages again.
        this.#refusedCount += 1;
        this.#refusals.delete(index);
        await new Promise<void>((resolve) => clock.setTimeout(resolve, section.heartbeatMs));
        this.#checkLiveness();
        if (this.#halted !== null) return;
        await this.#publishStep({ ...current, participants: this.#fleet.participants() });
        lastPublish = clock.now();
        continue;
      }
      await this.#nextChange(Math.min(section.heartbeatMs, section.stepTimeoutMs));
      this.#checkLiveness();
      if (this.#halted !== null) continue;
      if (this.#fleet.version !== seen || clock.now() - lastPublish > section.stepTimeoutMs) {
        // Someone was lost, came back or is gone for good: publish the step again, so a restarted
        // agent gets it and deciders learn whom to wait for.
        seen = this.#fleet.version;
        await this.#publishStep({ ...current, participants: this.#fleet.participants() });
        lastPublish = clock.now();
      }
    }
  }

  #noteSubmission(from: string, request: OrdersRequest, answers: readonly OrderAnswer[]): void {
    this.#submissions.push({
      from,
      beforeOpen: this.#betweenSteps,
      request: { index: request.index, approved: request.approved, rejected: request.rejected, ...(request.epoch === undefined ? {} : { epoch: request.epoch }) },
    });
    answers.forEach((answer, i) => {
      const intent = request.approved[i];
      // A mesh's deciders all send the step's orders: the venue placed the first, the rest are repeats.
      if (intent === undefined || answer.status === 'duplicate') return;
      this.#orders.push({ clientOrderId: answer.clientOrderId, step: request.index, agentId: from, symbol: intent.symbol, side: intent.side, quantity: intent.quantity, status: answer.status, reason: answer.reason ?? null });
    });
  }

  /**
   * Writes the step that just closed. Lockstep waits (a heartbeat at most) for the signals of every
   * live participant first: they reach the control plane on their own, and a replay from the journal
   * needs them. A failed write is tried again, with back-off on the clock, until it is written or the
   * deployment stops: no step is traded past one that is not stored.
   */
  async #journal(journal: DeploymentJournal, step: FeedStep, fills: readonly Fill[]): Promise<void> {
    const { clock, logger, spec } = this.#options;
    const participants = this.#participantsOf.get(step.index) ?? [];
    if (this.#lockstep) {
      const deadline = clock.now() + spec.swarm.heartbeatMs;
      const missing = (): boolean => participants.some((id) => this.#fleet.isLive(id) && !this.#ledger.outputsOf(step.index).has(id));
      this.#awaitingSignals = true;
      while (missing() && clock.now() < deadline && !this.#stopRequested) await this.#nextChange(deadline - clock.now());
      this.#awaitingSignals = false;
    }
    const everyone = new Set(this.plan.agents.map((agent) => agent.id));
    const signals: Record<string, ReturnType<StepLedger['signalsOf']>> = {};
    for (const id of everyone) {
      const intents = this.#ledger.signalsOf(step.index, new Set([id]));
      if (this.#ledger.outputsOf(step.index).has(id)) signals[id] = intents;
    }
    const account = this.#session.account();
    const position = { step: step.index + 1, lastTimeMs: step.timeMs };
    const record: ClosedStep = {
      index: step.index,
      timeMs: step.timeMs,
      bars: step.bars,
      participants,
      submissions: this.#submissions,
      signals,
      orders: this.#orders,
      fills,
      opened: this.#history.held(step.index).payload.account,
      account: { equity: account.equity, cash: this.#session.portfolio.cash, positions: [...account.positions].map(([symbol, quantity]) => ({ symbol, quantity })) },
      position,
      checkpoints: [...this.#newCheckpoints].map(([agentId, resume]) => ({ agentId, resume })),
      snapshot: { ...this.toJSON(), position },
      // Taken with the record, so it holds exactly what the records up to this one did.
      ...((step.index + 1) % this.#venueSnapshotEvery === 0 ? { venue: this.#venueSnapshot(step.index + 1) } : {}),
    };
    this.#submissions = [];
    this.#orders = [];
    this.#newCheckpoints.clear();
    for (let attempt = 0; ; attempt++) {
      try {
        await journal.stepClosed(record);
        return;
      } catch (error) {
        if (this.#stopRequested) throw new SwarmRunError(`step ${step.index} was not stored before the deployment stopped: ${errorMessage(error)}`);
        const waitMs = Math.min(JOURNAL_RETRY_MAX_MS, 100 * 2 ** attempt);
        if (attempt === 0) this.#emit({ agent: CONTROL_PLANE_ID, kind: 'journal', detail: `step ${step.index} could not be stored (${errorMessage(error)}); trading waits and the write is tried again` });
        logger.warn({ step: step.index, attempt, waitMs, err: errorMessage(error) }, 'journal write failed; trying again');
        await new Promise<void>((resolve) => clock.setTimeout(resolve, waitMs));
      }
    }
  }

  #venueSnapshot(closedSteps: number): VenueSnapshot {
    return { closedSteps, session: this.#session.snapshot(), absences: this.#absent.save(), ledger: this.#ledger.counts() };
  }

  /** Where a stalled step stood: whose output the control plane has not seen, and how those agents are. */
  #stallReason(index: number, step: FeedStep, lastProgress: number): string {
    const heard = this.#ledger.outputsOf(index);
    const missing = (this.#participantsOf.get(index) ?? [])
      .filter((id) => !heard.has(id))
      .map((id) => {
        const agent = this.plan.agents.find((candidate) => candidate.id === id);
        const what = this.plan.deciders.includes(id) || agent?.decides === true ? 'decision' : 'signal';
        return `no ${what} from ${id} (${this.#fleet.lifecycleOf(id) ?? 'unknown'})`;
      });
    const when = new Date(step.timeMs).toISOString().slice(0, 10);
    const idle = Math.round(this.#options.clock.now() - lastProgress);
    const total = this.#options.pacer.stepCount;
    return (
      `stalled: no step decided for ${idle} ms (swarm.stallTimeoutMs ${this.#options.spec.swarm.stallTimeoutMs}) at step ${index}${total === null ? '' : ` of ${total}`} (${when}); ` +
      `waiting for: ${missing.length === 0 ? 'the venue (every agent answered)' : missing.join(', ')}`
    );
  }

  /** Tells the agents to stop (each sends a last checkpoint), waits for them, and ends in `stopped`. */
  async #drain(): Promise<void> {
    if (this.#state !== 'draining') this.#move('drain');
    this.#health?.stop();
    this.#stopping.abort('draining');
    // Stopped quietly (this server no longer leads), its agents are left running for the leader to adopt where they can outlive it.
    const released = this.#quiet && (await this.#fleet.release());
    if (!released) {
      await this.#fleet.stop(
        this.#quiet ? undefined : () => this.#options.bus.publish(this.#topics.controlAll(), ControlMessage.draft({ command: 'stop', reason: this.#halted === null ? 'run finished' : 'run halted' })),
      );
    }
    // The last checkpoints are on their way.
    await new Promise<void>((resolve) => this.#options.clock.setTimeout(resolve, 50));
    const { journal } = this.#options;
    if (journal?.drained !== undefined) {
      // A checkpoint past the last closed step (the agent decided a step the venue never closed)
      // cannot be resumed from: that step is traded again after a restart.
      const checkpoints = [...this.#newCheckpoints].filter(([, resume]) => resume.replayFrom <= this.#closedSteps).map(([agentId, resume]) => ({ agentId, resume }));
      this.#newCheckpoints.clear();
      await journal.drained(checkpoints).catch((error: unknown) => this.#options.logger.warn({ err: errorMessage(error) }, 'the last checkpoints could not be stored; a resume replays from the ones before'));
    }
    this.#stopBeat();
    this.#move('drained');
  }

  /** The absences so far (with `last`, only the latest that many): those restored from a snapshot, then those tracked since. */
  #absences(last = Number.POSITIVE_INFINITY): AgentAbsence[] {
    const { pacing } = this.#options.spec.swarm;
    const how = pacing.mode === 'lockstep' ? 'decided without its signals (swarm.onLostAgent: continue)' : 'decided without its signals (realtime pacing does not wait for a lost agent)';
    const all = [...this.#restoredAbsences, ...this.#absent.absences(how, last)];
    return all.slice(Math.max(0, all.length - last));
  }
}
