import { type AgentConfig, type Resume, resumeSchema } from '../agent/index.js';
import { CheckpointMessage, type Envelope, HeartbeatMessage } from '../bus/index.js';
import { type Clock, type Deafness, InvalidInputError, type Logger, TradeswarmError, errorMessage } from '../core/index.js';
import type { DecisionSummary } from '../decision/index.js';
import { type MonitoredAgent, type RecoveryPolicy, type RecoveryRung, type SandboxObservation, nextRung, withinWindow } from '../health/index.js';
import type { AgentSignal, CodeCacheUse } from '../sandbox/index.js';
import type { AgentPlan } from '../topology/index.js';
import type { AdoptionCandidate, AgentLauncher, LaunchRequest, LaunchedAgent } from './launcher.js';
import { type AgentLifecycle, type AgentLifecycleEvent, canTransition, transition } from './lifecycle.js';

/** The run could not start or was cut short by a fault of its own (not an agent's). */
export class SwarmRunError extends TradeswarmError {
  override readonly name: string = 'SwarmRunError';
}

/** The run was asked to stop (SIGINT, SIGTERM, an aborted signal) before trading began. */
export class SwarmStoppedError extends SwarmRunError {
  override readonly name = 'SwarmStoppedError';
}

/** Something that happened to the swarm during the run. */
export interface SwarmEvent {
  readonly atStep: number;
  readonly agent: string;
  /** `gone`: lost for good (restarts used up, or not back within the recovery wait). */
  readonly kind: 'lost' | 'restarted' | 'failed-over' | 'standby' | 'restart-failed' | 'alert' | 'gone' | 'halted' | 'refused' | 'stall' | 'resumed' | 'journal' | 'fenced' | 'bus';
  readonly detail: string;
}

/** One agent's line in the report. */
export interface AgentReport {
  readonly id: string;
  readonly label: string;
  readonly kind: string;
  /** Where it ran last: its sandbox's id. */
  readonly sandboxId: string;
  /** Sandbox creation, bundle write, process start, first heartbeat: ms from the start of deployment. */
  readonly startMs: { readonly sandbox: number; readonly write: number; readonly process: number; readonly ready: number };
  /** Whether the bundle was uploaded into its sandbox (`false`: the template held it already). */
  readonly bundleUploaded: boolean;
  /** Whether the agent's process started from the V8 code cache, as it said when ready (`null`: it did not say). */
  readonly codeCache: CodeCacheUse | null;
  readonly messagesIn: number | null;
  readonly messagesOut: number | null;
  readonly decisions: number | null;
  readonly errors: number | null;
  readonly restarts: number;
  /** How it ended: `stopped` (exit 0), `lost` (lost for good), or the exit code. */
  readonly status: string;
}

interface AgentState {
  readonly plan: AgentPlan;
  lifecycle: AgentLifecycle;
  process: LaunchedAgent;
  /** Whether the current process has sent a heartbeat. */
  ready: boolean;
  lastHeardMs: number;
  /** When it was lost (on the clock), while it is recovering. */
  lostAtMs: number | undefined;
  restarts: number;
  /** When each restart of it began (clock ms), for the restart budget's window. */
  restartTimes: number[];
  /** An operator asked for a restart (manual recovery): the next try may climb. */
  requested: boolean;
  /** Whether the ladder is being climbed for it now (a request meanwhile joins that climb). */
  climbing: boolean;
  /** Its current process's epoch (see `AgentConfig.epoch`), and the highest given to any of its processes (standbys included). */
  epoch: number;
  lastEpoch: number;
  /** Its hot standby, when it has one: ready once it beat as `standby`. */
  standby: { readonly process: LaunchedAgent; readonly epoch: number; readonly launchedAtMs: number; ready: boolean; readonly adopted: boolean; lastHeardMs: number } | undefined;
  /** Standbys that failed in a row (their relaunch backs off). */
  standbyFailures: number;
  startMs: AgentReport['startMs'];
  counters: Record<string, number> | undefined;
  bus: { published: number; received: number } | undefined;
  pipeline: DecisionSummary | undefined;
  exitCode: number | undefined;
  codeCache: CodeCacheUse | null;
  /** What its last checkpoint saved for a restart to take up (absent before its first, or once found unusable). */
  resume: Resume | undefined;
  /** Whether its process is one an earlier control plane left running, adopted (until it is replaced). */
  adopted: boolean;
}

/** What a resumed deployment's fleet starts from (see {@link AgentFleet.deploy}). */
export interface FleetResume {
  /** Each agent's latest stored checkpoint. */
  readonly checkpoints: ReadonlyMap<string, Resume>;
  /** The highest epoch each agent's processes may have had when the control plane died: new ones start above it. */
  readonly ceilings: ReadonlyMap<string, number>;
  /** Each agent as the last stored snapshot saw it: where its process and its standby ran, and their epochs. */
  readonly last: ReadonlyMap<
    string,
    {
      readonly lifecycle: AgentLifecycle;
      readonly placement: string;
      readonly epoch?: number;
      readonly standby?: { readonly placement: string; readonly epoch: number; readonly ready: boolean };
    }
  >;
}

/** The processes of one agent adopted from an earlier control plane. */
interface Adopted {
  readonly primary?: { readonly process: LaunchedAgent; readonly epoch: number };
  readonly standby?: { readonly process: LaunchedAgent; readonly epoch: number };
}

/** What an {@link AgentFleet} needs from the run. */
export interface AgentFleetOptions {
  readonly agents: readonly AgentPlan[];
  /** The agent whose loss halts the run (a star's hub). */
  readonly critical: string | undefined;
  /** Starts agents' processes (in sandboxes, or in this process for tests). */
  readonly launcher: AgentLauncher;
  /** An agent's settings; `replayFirst` for a restarted agent, `epoch` its process's. */
  readonly configOf: (agent: AgentPlan, options: Pick<AgentConfig, 'replayFirst' | 'epoch' | 'standby'>) => AgentConfig;
  /**
   * A new process of `agentId` is about to start with `epoch`, higher than any before it: the venue
   * must refuse orders of the older ones from now on (fencing), before the new one decides anything.
   */
  readonly onEpoch: (agentId: string, epoch: number) => void;
  /** What to check when agents send no heartbeat (e.g. that sandboxes reach the broker at its URL). */
  readonly unreadyHint: string;
  readonly agentTimeoutMs: number;
  /** How a lost agent is recovered: the ladder's mode, soft tries, and the restart budget per window. */
  readonly recovery: RecoveryPolicy;
  /** Whether every agent has a hot standby in a sandbox of its own (failover, the ladder's first rung). */
  readonly standbys: boolean;
  /**
   * Agents whose replicas an operator set (see {@link AgentFleet.scale}), overriding `standbys`: 1 runs
   * the agent alone, 2 the agent and a hot standby. @default none
   */
  readonly replicas?: ReadonlyMap<string, number>;
  /** Tells the standby of `agentId` whose epoch is `epoch` to take the role over (a `promote` control message). */
  readonly promote: (agentId: string, epoch: number) => Promise<void>;
  /** How long a lost agent may take to come back before it is lost for good. */
  readonly recoveryWaitMs: number;
  /**
   * Whether a lost agent still takes part in steps while it recovers (lockstep: steps wait for it),
   * or only running agents do (realtime: steps go on without it).
   */
  readonly waitForLost: boolean;
  /**
   * Whether this control plane may still act on its agents (it leads): while not, no agent is judged
   * lost and no recovery moves a sandbox. @default always
   */
  readonly mayAct?: () => boolean;
  /**
   * How long this control plane could not listen since a time (its event loop did not run): that part
   * of an agent's silence is not the agent's. @default never deaf
   */
  readonly deafness?: Deafness;
  /** Drives every wait and deadline of the fleet. */
  readonly clock: Clock;
  /** Measures start times for the report. @default performance.now */
  readonly stopwatch?: () => number;
  readonly logger: Logger;
  readonly emit: (event: Omit<SwarmEvent, 'atStep'>) => void;
  /** The critical agent was lost: the run stops trading. */
  readonly halt: (reason: string) => void;
  /** An agent is lost for good (`why`): the run applies its policy. */
  readonly onGone: (agent: AgentPlan, why: string) => void;
  /** Something changed that the step loop waits for (an agent lost, ready or back). */
  readonly wake: () => void;
  /** Each line an agent's process prints, as it comes. */
  readonly onOutput?: (agentId: string, stream: 'stdout' | 'stderr', line: string) => void;
  /**
   * Brings a restarted agent up to date: from its last checkpoint when there is one (`resumedAt`, the
   * step it was saved after), else from the first step; resolves with how many steps were replayed.
   */
  readonly replay: (agent: AgentPlan) => Promise<{ readonly resumedAt: number | null; readonly replayed: number }>;
}

/**
 * How many processes an agent may run as: 1 (the agent alone) or 2 (the agent and a hot standby).
 * @throws InvalidInputError naming `replicas`.
 */
export function checkReplicas(replicas: number): void {
  if (replicas !== 1 && replicas !== 2) throw new InvalidInputError('replicas', `must be 1 (the agent alone) or 2 (the agent and a hot standby), got ${replicas}`);
}

/** The wait before a failed restart is tried again; it doubles with each failure (the recovery wait bounds the whole). */
const RESTART_BACKOFF_MS = 100;

/** How long a restarted agent may take to send its first heartbeat. */
const RESTART_READY_TIMEOUT_MS = 30_000;

/** How long stopping agents have to checkpoint and exit before they are ended. */
const STOP_WAIT_MS = 5_000;

/**
 * The agents of a run: one process each, started by the launcher (in a sandbox of its own). Watches their
 * heartbeats, last wills and exits; restarts a lost agent (replaying what it missed) up to
 * `maxRestarts` times within `recoveryWaitMs`, after which it is gone for good and the run decides
 * what that means (`onGone`); keeps what their checkpoints report. Each agent's state moves only by
 * the lifecycle table of `lifecycle.ts`.
 */
export class AgentFleet {
  readonly #options: AgentFleetOptions;
  readonly #stopwatch: () => number;
  readonly #agents = new Map<string, AgentState>();
  #stopping = false;
  #deployStarted = 0;
  /** Counts lifecycle moves: the step loop republishes a step when it changed. */
  #version = 0;
  /** Who waits for an agent to become ready or to exit (deployment, restarts). */
  readonly #waiters = new Set<() => void>();
  /** What each agent said about the code cache in its ready line (kept apart: it can come before its state exists). */
  readonly #said = new Map<string, CodeCacheUse>();
  /** First heartbeats of agents whose deployment call had not returned yet (ms from the start of deployment). */
  readonly #early = new Map<string, number>();
  /** Why an agent's process was not adopted, for its `resumed` event. */
  readonly #notAdopted = new Map<string, string>();
  /** The replicas an operator set per agent (see {@link scale}); the others follow `standbys`. */
  readonly #replicas: Map<string, number>;

  constructor(options: AgentFleetOptions) {
    this.#options = options;
    this.#stopwatch = options.stopwatch ?? (() => performance.now());
    this.#replicas = new Map(options.replicas);
  }

  /**
   * Creates every agent's sandbox and starts its process; resolves with the time until all sent a
   * heartbeat. A resumed deployment (`resumed`) first adopts the processes its earlier control plane
   * left running where the launcher can (see {@link AgentLauncher.adopt}), and deploys the others
   * again; every agent is then brought up to date from its checkpoint.
   * @throws SwarmRunError when an agent exits or stays silent; SwarmStoppedError when `signal` aborts first.
   */
  async deploy(signal?: AbortSignal, resumed?: FleetResume): Promise<number> {
    const { clock } = this.#options;
    const adopted = resumed === undefined ? new Map<string, Adopted>() : await this.#adopt(resumed);
    // What a crashed run of the same owner left goes first; what a run that still runs holds stays.
    await this.#options.launcher.prepare();
    // Heartbeats heard so far came from what prepare() cleared away (a crashed control plane's agents,
    // beating until their sandboxes were killed), not from the processes about to start.
    this.#early.clear();
    this.#said.clear();
    this.#deployStarted = this.#stopwatch();
    await Promise.all(
      this.#options.agents.map(async (plan) => {
        const found = adopted.get(plan.id);
        // A resumed deployment's new processes wait for their replay before they take a step; their
        // epoch is above any its processes had before the control plane died, which may still run.
        // An adopted process keeps its own: it is the only one of its agent left.
        const epoch = found?.primary?.epoch ?? this.#freshEpoch(plan.id, resumed);
        const launched = found?.primary?.process ?? (await this.#launch(plan, undefined, resumed !== undefined, epoch));
        if (found?.primary !== undefined) this.#options.onEpoch(plan.id, epoch);
        const ready = found?.primary === undefined && this.#early.has(plan.id);
        const state: AgentState = {
          plan,
          lifecycle: ready ? 'running' : 'deploying',
          process: launched,
          ready,
          lastHeardMs: clock.now(),
          lostAtMs: undefined,
          restarts: 0,
          restartTimes: [],
          requested: false,
          climbing: false,
          epoch,
          lastEpoch: Math.max(epoch, resumed?.ceilings.get(plan.id) ?? 0, found?.standby?.epoch ?? 0),
          standby: undefined,
          standbyFailures: 0,
          startMs: { sandbox: launched.timings.sandboxMs, write: launched.timings.writeMs, process: launched.timings.startMs, ready: this.#early.get(plan.id) ?? Number.NaN },
          counters: undefined,
          bus: undefined,
          pipeline: undefined,
          exitCode: undefined,
          codeCache: this.#said.get(plan.id) ?? null,
          resume: resumed?.checkpoints.get(plan.id),
          adopted: found?.primary !== undefined,
        };
        this.#agents.set(plan.id, state);
        this.#watchExit(state);
        if (found?.standby !== undefined && this.#wantsStandby(plan.id)) this.#keepStandby(state, found.standby.process, found.standby.epoch, clock.now(), true);
        else {
          if (found?.standby !== undefined) void found.standby.process.stop({ graceMs: 0 });
          await this.#launchStandby(state);
        }
      }),
    );
    const readyTimeoutMs = Math.max(30_000, this.#options.agentTimeoutMs);
    const readyDeadline = clock.now() + readyTimeoutMs;
    // An adopted process that does not beat within an agent timeout is stuck (paused, cut off): a new one replaces it.
    const adoptedDeadline = clock.now() + this.#options.agentTimeoutMs;
    // With standbys, a deployment is up once every agent and every standby is.
    const up = (agent: AgentState): boolean => agent.ready && (!this.#wantsStandby(agent.plan.id) || agent.standby?.ready === true);
    while (![...this.#agents.values()].every(up)) {
      if (signal?.aborted === true) {
        const ready = [...this.#agents.values()].filter((agent) => agent.ready).length;
        throw new SwarmStoppedError(`stopped (${String(signal.reason)}) while agents were starting (${ready} of ${this.#agents.size} ready); nothing was traded`);
      }
      const failed = [...this.#agents.values()].find((agent) => agent.exitCode !== undefined);
      if (failed !== undefined) {
        throw new SwarmRunError(`agent ${failed.plan.id} exited with code ${failed.exitCode} before it was ready: ${failed.process.stderrTail().slice(-5).join('\n')}`);
      }
      if (clock.now() > adoptedDeadline) await this.#replaceSilentAdopted();
      if (clock.now() > readyDeadline) {
        const missing = [...this.#agents.values()].filter((agent) => !up(agent)).map((agent) => (agent.ready ? `${agent.plan.id}'s standby` : agent.plan.id));
        throw new SwarmRunError(`agents ${missing.join(', ')} sent no heartbeat within ${readyTimeoutMs} ms; ${this.#options.unreadyHint}`);
      }
      await this.#nextChange(50);
    }
    if (resumed !== undefined) await this.#resumeAll();
    // When the last first heartbeat arrived, not when this loop noticed.
    return Math.max(...[...this.#agents.values()].map((agent) => agent.startMs.ready));
  }

  /** The epoch of a resumed agent's new process: above any its earlier processes may have had. */
  #freshEpoch(agentId: string, resumed: FleetResume | undefined): number {
    const before = resumed?.ceilings.get(agentId);
    return before === undefined ? 0 : before + 1;
  }

  /**
   * Asks the launcher for the processes the store last saw running (each agent's and its standby's),
   * where the agent has a checkpoint to rewind it to. What it cannot adopt is deployed again.
   */
  async #adopt(resumed: FleetResume): Promise<Map<string, Adopted>> {
    const { launcher } = this.#options;
    const adopted = new Map<string, Adopted>();
    if (launcher.adopt === undefined) return adopted;
    const wanted: Array<{ readonly role: 'primary' | 'standby'; readonly candidate: AdoptionCandidate }> = [];
    for (const plan of this.#options.agents) {
      const last = resumed.last.get(plan.id);
      if (last === undefined || last.lifecycle !== 'running' || last.epoch === undefined) continue;
      if (!resumed.checkpoints.has(plan.id)) {
        // Without a checkpoint nothing could undo what it did after the last stored step.
        this.#notAdopted.set(plan.id, 'it has no checkpoint to rewind it to');
        continue;
      }
      const candidate = (placement: string, epoch: number, standby: boolean): AdoptionCandidate => ({
        agent: plan,
        placement,
        config: this.#options.configOf(plan, { replayFirst: false, epoch, standby }),
        ...this.#outputOf(plan.id),
      });
      wanted.push({ role: 'primary', candidate: candidate(last.placement, last.epoch, false) });
      if (last.standby?.ready === true) wanted.push({ role: 'standby', candidate: candidate(last.standby.placement, last.standby.epoch, true) });
    }
    const results = await launcher.adopt(wanted.map((entry) => entry.candidate));
    results?.forEach((result, i) => {
      const { role, candidate } = wanted[i] as (typeof wanted)[number];
      const id = candidate.agent.id;
      if (typeof result === 'string') {
        this.#options.logger.info({ agent: id, role, placement: candidate.placement, why: result }, 'not adopted; deployed again');
        if (role === 'primary') this.#notAdopted.set(id, result);
        return;
      }
      adopted.set(id, { ...adopted.get(id), [role]: { process: result, epoch: candidate.config.epoch } });
    });
    return adopted;
  }

  /** Adopted processes (or standbys) that never beat are ended, and new ones started in their place. */
  async #replaceSilentAdopted(): Promise<void> {
    await Promise.all(
      [...this.#agents.values()].map(async (state) => {
        const standby = state.standby;
        if (standby !== undefined && !standby.ready && standby.adopted === true) {
          this.#dropStandby(state, standby, `its adopted standby (epoch ${standby.epoch}) sent no heartbeat within ${this.#options.agentTimeoutMs} ms; a new one is started`);
        }
        if (state.ready || !state.adopted) return;
        state.adopted = false;
        const silent = state.process;
        void silent.stop({ graceMs: 0 });
        state.epoch = ++state.lastEpoch;
        this.#notAdopted.set(state.plan.id, `its process sent no heartbeat within ${this.#options.agentTimeoutMs} ms`);
        state.process = await this.#launch(state.plan, undefined, true, state.epoch, 'new');
        state.startMs = { sandbox: state.process.timings.sandboxMs, write: state.process.timings.writeMs, process: state.process.timings.startMs, ready: Number.NaN };
        this.#watchExit(state);
      }),
    );
  }

  /** Brings every agent of a resumed deployment up to date: from its checkpoint, the steps after it. */
  async #resumeAll(): Promise<void> {
    await Promise.all(
      [...this.#agents.values()].map(async (state) => {
        const { resumedAt, replayed } = await this.#options.replay(state.plan);
        const from = resumedAt === null ? 'from the first step (no checkpoint)' : `from its checkpoint after step ${resumedAt}`;
        const notAdopted = this.#notAdopted.get(state.plan.id);
        const how = state.adopted
          ? `adopted its running process (${state.process.placement}, epoch ${state.epoch}), rewound to its checkpoint after step ${resumedAt}`
          : `deployed again ${from}${notAdopted === undefined ? '' : ` (not adopted: ${notAdopted})`}`;
        this.#options.emit({ agent: state.plan.id, kind: 'resumed', detail: `${how}, replayed ${replayed} steps` });
      }),
    );
  }

  /** A heartbeat (or a last will) on the bus. */
  heard(envelope: Envelope): void {
    if (!HeartbeatMessage.is(envelope)) return;
    const agent = this.#agents.get(envelope.from);
    if (agent === undefined) {
      // The process can be up before the call that started it returned; its first heartbeat counts.
      const planned = this.#options.agents.some((plan) => plan.id === envelope.from);
      if (planned && envelope.payload.status !== 'lost' && !this.#early.has(envelope.from)) this.#early.set(envelope.from, this.#stopwatch() - this.#deployStarted);
      return;
    }
    if (agent.standby !== undefined && envelope.payload.epoch === agent.standby.epoch) {
      this.#standbyHeard(agent, agent.standby, envelope.payload.status);
      return;
    }
    // A replaced process that still runs (it was cut off, not dead) beats, and its will drops, in vain;
    // a standby being promoted is ready once it beats as what it became.
    if (envelope.payload.epoch !== undefined && envelope.payload.epoch < agent.epoch) return;
    if (envelope.payload.status === 'standby') return;
    if (envelope.payload.status === 'lost') {
      // A last will during a restart is the old connection's: the restart handles the new one.
      if (agent.lifecycle === 'running') this.#lose(agent, 'its connection dropped (the broker published its last will)');
      return;
    }
    agent.lastHeardMs = this.#options.clock.now();
    if (!agent.ready) {
      agent.ready = true;
      if (agent.lifecycle === 'deploying') {
        agent.startMs = { ...agent.startMs, ready: this.#stopwatch() - this.#deployStarted };
        this.#move(agent, 'ready');
      }
      this.#changed();
      this.#options.wake();
    }
  }

  /** A checkpoint on the bus: the agent's counters, bus figures and pipeline summary. */
  checkpointed(envelope: Envelope): void {
    const agent = this.#agents.get(envelope.from);
    if (agent === undefined || !CheckpointMessage.is(envelope)) return;
    const state = envelope.payload.state as { counters?: Record<string, number>; bus?: { published: number; received: number }; pipeline?: DecisionSummary | null } | null;
    if (state?.counters !== undefined) agent.counters = state.counters;
    if (state?.pipeline !== undefined && state.pipeline !== null) agent.pipeline = state.pipeline;
    if (state?.bus !== undefined) agent.bus = state.bus;
    // A checkpoint that does not parse is not one to restart from; the agent is then replayed from the first step.
    const resume = resumeSchema.safeParse((state as { resume?: unknown } | null)?.resume);
    if (resume.success) agent.resume = resume.data;
  }

  /** The state agent `agentId` last checkpointed for a restart, if any. */
  resumeOf(agentId: string): Resume | undefined {
    return this.#agents.get(agentId)?.resume;
  }

  /** Agent `agentId`'s checkpoint could not be taken up: its next restart replays from the first step. */
  forgetResume(agentId: string): void {
    const agent = this.#agents.get(agentId);
    if (agent !== undefined) agent.resume = undefined;
  }

  has(agentId: string): boolean {
    return this.#agents.has(agentId);
  }

  /** Whether the agent runs and takes part (not lost, recovering or gone). */
  isLive(agentId: string): boolean {
    return this.#agents.get(agentId)?.lifecycle === 'running';
  }

  /** Where agent `agentId` stands, if it is one of the run's. */
  lifecycleOf(agentId: string): AgentLifecycle | undefined {
    return this.#agents.get(agentId)?.lifecycle;
  }

  /**
   * The agents that take part in a step, in plan order: running ones, and (with `waitForLost`)
   * lost ones that are recovering, so that no step is decided without them.
   */
  participants(): string[] {
    const taking = (agent: AgentState): boolean => agent.lifecycle === 'running' || (this.#options.waitForLost && (agent.lifecycle === 'recovering' || agent.lifecycle === 'deploying'));
    return [...this.#agents.values()].filter(taking).map((agent) => agent.plan.id);
  }

  /** Changes with every lifecycle move (an agent lost, back, gone). */
  get version(): number {
    return this.#version;
  }

  /** Every running agent and standby counts as heard now (the control plane's own connection was down: their silence meant nothing). */
  graceAll(): void {
    const now = this.#options.clock.now();
    for (const state of this.#agents.values()) {
      if (state.lifecycle === 'running') state.lastHeardMs = Math.max(state.lastHeardMs, now);
      if (state.standby !== undefined) state.standby.lastHeardMs = Math.max(state.standby.lastHeardMs, now);
    }
  }

  /**
   * A silent agent is lost; an agent that is not back within the recovery wait is gone. A ready
   * standby that falls silent is ended and another started: promoting it would only fail later, when
   * it is needed.
   */
  checkLiveness(): void {
    const now = this.#options.clock.now();
    for (const state of this.#agents.values()) {
      const standby = state.standby;
      if (standby?.ready === true && this.#silentMs(standby.lastHeardMs, now) > this.#options.agentTimeoutMs && !this.#stopping && this.#options.mayAct?.() !== false) {
        this.#dropStandby(state, standby, `its standby (epoch ${standby.epoch}) sent no heartbeat for ${this.#silence(standby.lastHeardMs, now)}`);
      }
      if (state.lifecycle === 'running' && this.#silentMs(state.lastHeardMs, now) > this.#options.agentTimeoutMs) this.#lose(state, `no heartbeat for ${this.#silence(state.lastHeardMs, now)}`);
      else if (state.lifecycle === 'recovering' && state.lostAtMs !== undefined && this.#silentMs(state.lostAtMs, now) > this.#options.recoveryWaitMs) {
        this.#abandon(state, `not back within ${this.#options.recoveryWaitMs} ms (swarm.recoveryWaitMs) after ${state.restarts} restart${state.restarts === 1 ? '' : 's'}`);
      }
    }
  }

  /** How long an agent last heard at `heardMs` has been silent, leaving out the time this control plane could not listen. */
  #silentMs(heardMs: number, now: number): number {
    return now - heardMs - (this.#options.deafness?.deafMs(heardMs) ?? 0);
  }

  /** The silence since `heardMs` in words, with the part this control plane could not listen. */
  #silence(heardMs: number, now: number): string {
    const deaf = this.#options.deafness?.deafMs(heardMs) ?? 0;
    return deaf === 0 ? `${now - heardMs} ms` : `${now - heardMs - deaf} ms (${now - heardMs} ms, of which this control plane could not listen for ${deaf} ms)`;
  }

  /** Every agent as the health monitor sees it: its lifecycle, its heartbeat's age, whether it checkpoints. */
  monitored(): MonitoredAgent[] {
    const now = this.#options.clock.now();
    return [...this.#agents.values()].map((agent) => ({
      id: agent.plan.id,
      lifecycle: agent.lifecycle,
      heartbeatAgeMs: agent.ready ? this.#silentMs(agent.lastHeardMs, now) : null,
      // A ring's entry holds only its breaker, which a restart begins closed: it never checkpoints.
      checkpoints: agent.plan.kind !== 'collector',
    }));
  }

  /** What the provider says of agent `agentId`'s sandbox (never rejects; `gone` for an agent it does not know). */
  inspect(agentId: string): Promise<SandboxObservation> {
    return this.#agents.get(agentId)?.process.inspect() ?? Promise.resolve({ state: 'gone', resources: null });
  }

  /**
   * A health check found running agent `agentId` unreachable (its sandbox paused or gone): it is lost
   * now, as a missed heartbeat would make it later, and recovered the same way.
   */
  lose(agentId: string, detail: string): void {
    const agent = this.#agents.get(agentId);
    if (agent !== undefined) this.#lose(agent, detail);
  }

  /** Sends `signal` to an agent's process (SIGKILL as a crash would; SIGSTOP makes it slow, not dead). */
  async kill(agentId: string, signal: AgentSignal = 'SIGKILL'): Promise<void> {
    const state = this.#agents.get(agentId);
    if (state === undefined) throw new SwarmRunError(`no agent ${agentId}; agents: ${[...this.#agents.keys()].join(', ')}`);
    await state.process.signal(signal);
  }

  /** Each agent's current process (where it runs and its pid there), and its standby's when it has one. */
  processes(): Array<{ readonly id: string; readonly placement: string; readonly pid: number; readonly standby?: { readonly placement: string; readonly pid: number } }> {
    return [...this.#agents.values()].map((agent) => ({
      id: agent.plan.id,
      placement: agent.process.placement,
      pid: agent.process.pid,
      ...(agent.standby === undefined ? {} : { standby: { placement: agent.standby.process.placement, pid: agent.standby.process.pid } }),
    }));
  }

  /**
   * Sends the agents `stop` (from now on an exit is expected, not a loss) and waits for every process
   * to end; without `send`, ends each process itself, telling no one.
   */
  async stop(send: (() => Promise<unknown>) | undefined): Promise<void> {
    this.#stopping = true;
    for (const state of this.#agents.values()) if (canTransition(state.lifecycle, 'stop')) this.#move(state, 'stop');
    await send?.();
    await Promise.all(
      [...this.#agents.values()].map(async (state) => {
        // Not told (`send` absent): each process is ended by its launcher at once.
        const exit = await this.#within(state.process.exited, send === undefined ? 0 : STOP_WAIT_MS);
        if (exit === undefined) await state.process.stop({ graceMs: 1_000 });
        else state.exitCode = exit.exitCode;
        if (state.lifecycle === 'stopping') this.#move(state, 'exited');
      }),
    );
  }

  /**
   * Leaves every agent running, for the control plane that leads next to adopt (see
   * {@link AgentLauncher.release}): their ends are no longer watched, and nothing of them is ended.
   * @returns `false` (and nothing changed) when they cannot outlive this control plane: stop them instead.
   */
  async release(): Promise<boolean> {
    const { launcher } = this.#options;
    if (launcher.release === undefined || !(await launcher.release())) return false;
    this.#stopping = true;
    for (const state of this.#agents.values()) {
      if (canTransition(state.lifecycle, 'stop')) this.#move(state, 'stop');
      if (state.lifecycle === 'stopping') this.#move(state, 'exited');
    }
    return true;
  }

  /** How many processes agent `agentId` is to run as: 1 (the agent alone) or 2 (with a hot standby). */
  replicasOf(agentId: string): number {
    return this.#wantsStandby(agentId) ? 2 : 1;
  }

  #wantsStandby(agentId: string): boolean {
    const set = this.#replicas.get(agentId);
    return set === undefined ? this.#options.standbys : set > 1;
  }

  /**
   * An operator sets how many processes agent `agentId` runs as: 2 starts a hot standby for it now
   * (in a sandbox of its own, following its checkpoints: it is ready to take over once it beats), 1
   * ends the standby it has. The agent itself is not touched, and nothing else changes. The change
   * holds for standbys started later (after a failover) too.
   * @throws InvalidInputError naming `agent` (no such agent) or `replicas` (not 1 or 2).
   */
  scale(agentId: string, replicas: number): void {
    if (!this.#options.agents.some((plan) => plan.id === agentId)) {
      throw new InvalidInputError('agent', `there is no agent ${agentId}; agents: ${this.#options.agents.map((plan) => plan.id).join(', ')}`);
    }
    checkReplicas(replicas);
    this.#replicas.set(agentId, replicas);
    // Not deployed yet: its deployment starts what was asked for.
    const state = this.#agents.get(agentId);
    if (state === undefined) return;
    const standby = state.standby;
    if (replicas === 2) {
      if (standby === undefined) void this.#launchStandby(state);
      return;
    }
    if (standby === undefined) return;
    state.standby = undefined;
    void standby.process.stop({ graceMs: 0 });
    this.#options.emit({ agent: agentId, kind: 'standby', detail: `its standby (epoch ${standby.epoch}) was ended: scaled to 1 replica` });
    this.#changed();
  }

  /** Ends every agent and what they run in. */
  async close(): Promise<void> {
    await this.#options.launcher.close();
  }

  /** Each agent's lifecycle, restarts and placement, as plain JSON (part of a deployment's snapshot). */
  snapshot(): Array<{
    readonly id: string;
    readonly lifecycle: AgentLifecycle;
    readonly restarts: number;
    readonly placement: string;
    readonly epoch: number;
    readonly standby?: { readonly placement: string; readonly epoch: number; readonly ready: boolean };
  }> {
    return [...this.#agents.values()].map((agent) => ({
      id: agent.plan.id,
      lifecycle: agent.lifecycle,
      restarts: agent.restarts,
      placement: agent.process.placement,
      epoch: agent.epoch,
      ...(agent.standby === undefined ? {} : { standby: { placement: agent.standby.process.placement, epoch: agent.standby.epoch, ready: agent.standby.ready } }),
    }));
  }

  /** Messages the agents published, as their last checkpoints said. */
  published(): number {
    return [...this.#agents.values()].reduce((sum, agent) => sum + (agent.bus?.published ?? 0), 0);
  }

  /** The pipeline summary the first of `deciders` checkpointed, if any. */
  pipelineOf(deciders: readonly string[]): DecisionSummary | null {
    return deciders.map((id) => this.#agents.get(id)?.pipeline).find((summary) => summary !== undefined) ?? null;
  }

  reports(): AgentReport[] {
    return [...this.#agents.values()].map((agent) => ({
      id: agent.plan.id,
      label: agent.plan.label,
      kind: agent.plan.kind,
      sandboxId: agent.process.placement,
      startMs: agent.startMs,
      bundleUploaded: agent.process.bundleWritten,
      codeCache: agent.codeCache,
      messagesIn: agent.bus?.received ?? null,
      messagesOut: agent.bus?.published ?? null,
      decisions: agent.counters?.decisions ?? null,
      errors: agent.counters?.errors ?? null,
      restarts: agent.restarts,
      status: agent.lifecycle === 'gone' ? 'lost' : agent.exitCode === 0 ? 'stopped' : `exit ${agent.exitCode ?? '?'}`,
    }));
  }

  #launch(agent: AgentPlan, previous: LaunchedAgent | undefined, restarting: boolean, epoch: number, placement: 'same' | 'new' = 'same', standby = false): Promise<LaunchedAgent> {
    // A standby's epoch is raised at the venue when it is promoted, not before: the primary still trades.
    if (!standby) this.#options.onEpoch(agent.id, epoch);
    return this.#options.launcher.launch({
      agent,
      placement,
      config: this.#options.configOf(agent, { replayFirst: restarting, epoch, standby }),
      previous,
      ...this.#outputOf(agent.id),
    });
  }

  /** Where the lines an agent's process prints go. */
  #outputOf(agentId: string): Pick<LaunchRequest, 'onStdout' | 'onStderr'> {
    return {
      onStdout: (line) => {
        this.#onStdout(agentId, line);
        this.#options.onOutput?.(agentId, 'stdout', line);
      },
      onStderr: (line) => this.#options.onOutput?.(agentId, 'stderr', line),
    };
  }

  /** The agent's ready line says whether it started from the code cache. */
  #onStdout(agentId: string, line: string): void {
    if (!line.startsWith('{"event":"ready"')) return;
    const said = (JSON.parse(line) as { codeCache?: unknown }).codeCache;
    if (said !== 'used' && said !== 'rejected' && said !== 'none') return;
    this.#said.set(agentId, said);
    const state = this.#agents.get(agentId);
    if (state !== undefined) state.codeCache = said;
  }

  #watchExit(state: AgentState): void {
    const launched = state.process;
    void launched.exited.then((exit) => {
      if (state.process !== launched) return;
      state.exitCode = exit.exitCode;
      this.#changed();
      if (state.lifecycle === 'running' && !this.#stopping) this.#lose(state, `process exited with code ${exit.exitCode}${launched.stderrTail().length > 0 ? `: ${launched.stderrTail().slice(-3).join(' | ')}` : ''}`);
    });
  }

  /** Resolves when an agent becomes ready or exits, or after `ms` on the clock at the latest (for deadlines). */
  #nextChange(ms: number): Promise<void> {
    const { clock } = this.#options;
    return new Promise((resolve) => {
      const done = (): void => {
        clock.clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = clock.setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  /** `promise`'s value, or `undefined` when it takes longer than `ms` on the clock. */
  async #within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
    const { clock } = this.#options;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    try {
      return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = clock.setTimeout(() => resolve(undefined), ms)))]);
    } finally {
      if (timer !== undefined) clock.clearTimeout(timer);
    }
  }

  #changed(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #move(state: AgentState, event: AgentLifecycleEvent): void {
    state.lifecycle = transition(state.lifecycle, event);
    this.#version += 1;
  }

  #lose(state: AgentState, detail: string): void {
    // A control plane that may no longer lead (woken after a pause past its lease) judges nobody: the leader does.
    if (state.lifecycle !== 'running' || this.#stopping || this.#options.mayAct?.() === false) return;
    this.#options.emit({ agent: state.plan.id, kind: 'lost', detail });
    if (state.plan.id === this.#options.critical && state.standby?.ready !== true) {
      this.#haltWithout(state, `${state.plan.label} ${state.plan.id} lost (${detail}); its spokes stopped trading`);
      return;
    }
    this.#move(state, 'lost');
    state.lostAtMs = this.#options.clock.now();
    this.#options.wake();
    void this.#recover(state);
  }

  /**
   * The critical agent (a star's hub) is lost with no standby to take over: the run stops trading, with
   * this reason first (the halt keeps the first reason it is given), and the agent is abandoned.
   */
  #haltWithout(state: AgentState, reason: string): void {
    this.#options.emit({ agent: state.plan.id, kind: 'halted', detail: reason });
    this.#options.halt(reason);
    this.#abandon(state, reason);
  }

  /** Lost for good: its process is stopped (it must not come back mid-run) and the run decides what that means. */
  #abandon(state: AgentState, why: string): void {
    if (!canTransition(state.lifecycle, 'abandoned') || this.#stopping) return;
    this.#move(state, 'abandoned');
    state.lostAtMs = undefined;
    this.#options.emit({ agent: state.plan.id, kind: 'gone', detail: why });
    void state.process.stop({ graceMs: 0 });
    this.#options.onGone(state.plan, why);
    this.#changed();
    this.#options.wake();
  }

  /**
   * An operator asks for agent `agentId` to be restarted (manual recovery): its next try climbs the ladder.
   * @throws SwarmRunError when there is no such agent or it is not waiting for recovery.
   */
  requestRestart(agentId: string): void {
    const state = this.#agents.get(agentId);
    if (state === undefined) throw new SwarmRunError(`no agent ${agentId}; agents: ${[...this.#agents.keys()].join(', ')}`);
    if (state.lifecycle !== 'recovering') throw new SwarmRunError(`agent ${agentId} is ${state.lifecycle}, not waiting for a restart; only a lost agent can be restarted`);
    state.requested = true;
    void this.#recover(state);
  }

  /**
   * Climbs the recovery ladder for a lost agent (see `nextRung`): soft restarts in its own sandbox,
   * then hard restarts in new ones, with back-off between failed tries, until it is back; or ends
   * in an alert: lost for good (automatic when the restart budget is spent, or `none`), or waiting
   * for an operator (`manual`, until the recovery wait runs out).
   */
  async #recover(state: AgentState): Promise<void> {
    if (state.climbing) return;
    state.climbing = true;
    try {
      await this.#climb(state);
    } finally {
      state.climbing = false;
    }
  }

  async #climb(state: AgentState): Promise<void> {
    const { recovery, clock } = this.#options;
    for (let attempt = 0; state.lifecycle === 'recovering' && !this.#stopping && this.#options.mayAct?.() !== false; attempt++) {
      state.restartTimes = withinWindow(state.restartTimes, clock.now(), recovery.restartWindowMs);
      const alive = await state.process.placementAlive();
      const standbyReady = state.standby?.ready === true;
      const { rung, why } = nextRung(recovery, { attempt, recentRestarts: state.restartTimes.length, requested: state.requested, sandboxAlive: alive, standbyReady });
      // The hub of a star is only failed over: its spokes re-home to the standby; a restart would not bring them back in time.
      if (rung !== 'failover' && state.plan.id === this.#options.critical) {
        this.#haltWithout(state, `${state.plan.label} ${state.plan.id} lost and its standby could not take over; its spokes stopped trading`);
        return;
      }
      if (rung === 'alert') {
        this.#options.emit({ agent: state.plan.id, kind: 'alert', detail: why });
        if (recovery.mode !== 'manual' || state.requested) this.#abandon(state, why);
        return;
      }
      state.requested = false;
      state.restarts += 1;
      state.restartTimes.push(clock.now());
      const began = clock.now();
      try {
        const { resumedAt, replayed } = rung === 'failover' ? await this.#failover(state) : await this.#restart(state, rung);
        if (state.lifecycle !== 'recovering') {
          if (state.lifecycle === 'gone') void state.process.stop({ graceMs: 0 });
          return;
        }
        const took = `back ${Math.round(clock.now() - (state.lostAtMs ?? began))} ms after it was lost (this try ${Math.round(clock.now() - began)} ms)`;
        this.#move(state, 'recovered');
        state.lostAtMs = undefined;
        state.lastHeardMs = clock.now();
        const from = resumedAt === null ? '' : `, resumed from its checkpoint after step ${resumedAt}`;
        if (rung === 'failover') this.#options.emit({ agent: state.plan.id, kind: 'failed-over', detail: `its standby took over (epoch ${state.epoch}), ${took}${from}, replayed ${replayed} steps` });
        else this.#options.emit({ agent: state.plan.id, kind: 'restarted', detail: `restart ${state.restarts} (${rungName(rung)}), ${took}${from}, replayed ${replayed} steps` });
        // A new standby for the next fault (the promoted one was it; a restarted agent keeps the one it had).
        void this.#launchStandby(state);
        this.#changed();
        this.#options.wake();
        return;
      } catch (error) {
        if (state.lifecycle !== 'recovering') {
          if (state.lifecycle === 'gone') void state.process.stop({ graceMs: 0 });
          return;
        }
        this.#options.emit({ agent: state.plan.id, kind: 'restart-failed', detail: `restart ${state.restarts} (${rungName(rung)}): ${errorMessage(error)}` });
        await new Promise<void>((resolve) => clock.setTimeout(resolve, RESTART_BACKOFF_MS * 2 ** attempt));
      }
    }
  }

  /** One restart: the process again (where it ran if that is still there, else somewhere new), then the replay. */
  async #restart(state: AgentState, rung: 'soft-restart' | 'hard-restart'): Promise<{ readonly resumedAt: number | null; readonly replayed: number }> {
    const previous = state.process;
    await previous.stop({ graceMs: 0 });
    // A process that could not be stopped (its sandbox unreachable) may come back: fenced off by the epoch.
    state.epoch = ++state.lastEpoch;
    const launched = await this.#launch(state.plan, previous, true, state.epoch, rung === 'soft-restart' ? 'same' : 'new');
    return this.#takeOver(state, launched, 'its restart');
  }

  /**
   * The failover rung: the standby becomes the agent's process. The venue's floor rises to its epoch
   * first (the old process, stopped without waiting, can place nothing more), it is promoted, and once
   * it beats it is replayed the steps after its agent's last checkpoint, as a restart would be.
   */
  async #failover(state: AgentState): Promise<{ readonly resumedAt: number | null; readonly replayed: number }> {
    const standby = state.standby as NonNullable<AgentState['standby']>;
    state.standby = undefined;
    void state.process.stop({ graceMs: 0 });
    state.epoch = standby.epoch;
    this.#options.onEpoch(state.plan.id, standby.epoch);
    const taking = this.#takeOver(state, standby.process, 'its promotion');
    try {
      await this.#options.promote(state.plan.id, standby.epoch);
    } catch (error) {
      taking.catch(() => undefined);
      throw error;
    }
    return taking;
  }

  /**
   * Starts a hot standby for the agent in a sandbox of its own, when the fleet keeps standbys and the
   * agent has none: a process of the next epoch that follows the agent's checkpoints and waits to be
   * promoted. One that dies is started again, backing off while they keep failing.
   */
  async #launchStandby(state: AgentState): Promise<void> {
    const { clock } = this.#options;
    if (!this.#wantsStandby(state.plan.id) || this.#stopping || state.standby !== undefined || state.lifecycle === 'gone') return;
    const epoch = ++state.lastEpoch;
    let launched: LaunchedAgent;
    try {
      launched = await this.#launch(state.plan, undefined, true, epoch, 'new', true);
    } catch (error) {
      this.#options.emit({ agent: state.plan.id, kind: 'standby', detail: `its standby could not be started: ${errorMessage(error)}` });
      this.#standbyFailed(state);
      return;
    }
    // Stopping, another standby came first, or the agent was scaled down meanwhile.
    if (this.#stopping || state.standby !== undefined || !this.#wantsStandby(state.plan.id)) {
      void launched.stop({ graceMs: 0 });
      return;
    }
    this.#keepStandby(state, launched, epoch, clock.now());
  }

  /** `launched` (started at `launchedAtMs`, or adopted) is the agent's standby from now on; one that dies is replaced. */
  #keepStandby(state: AgentState, launched: LaunchedAgent, epoch: number, launchedAtMs: number, adopted = false): void {
    const standby = { process: launched, epoch, launchedAtMs, ready: false, adopted, lastHeardMs: launchedAtMs };
    state.standby = standby;
    void launched.exited.then((exit) => {
      // Promoted (it is the agent now), replaced, or told to stop with the rest: not a standby's failure.
      if (state.standby !== standby || this.#stopping) return;
      state.standby = undefined;
      this.#options.emit({ agent: state.plan.id, kind: 'standby', detail: `its standby (epoch ${epoch}) exited with code ${exit.exitCode}` });
      this.#standbyFailed(state);
    });
  }

  /** A standby's heartbeat (or will). */
  #standbyHeard(state: AgentState, standby: NonNullable<AgentState['standby']>, status: string): void {
    if (status === 'lost') {
      this.#dropStandby(state, standby, `its standby (epoch ${standby.epoch}) dropped its connection`);
      return;
    }
    if (status !== 'standby') return;
    standby.lastHeardMs = this.#options.clock.now();
    if (standby.ready) return;
    standby.ready = true;
    state.standbyFailures = 0;
    this.#options.emit({ agent: state.plan.id, kind: 'standby', detail: `standby ready (epoch ${standby.epoch}, ${standby.process.placement}) ${Math.round(this.#options.clock.now() - standby.launchedAtMs)} ms after it was started` });
    this.#changed();
  }

  /** Ends a standby that failed (`detail` says how), and starts another after the back-off. */
  #dropStandby(state: AgentState, standby: NonNullable<AgentState['standby']>, detail: string): void {
    state.standby = undefined;
    void standby.process.stop({ graceMs: 0 });
    this.#options.emit({ agent: state.plan.id, kind: 'standby', detail });
    this.#changed();
    this.#standbyFailed(state);
  }

  /** Starts another standby after a back-off that doubles while they keep failing (at most a minute). */
  #standbyFailed(state: AgentState): void {
    state.standbyFailures += 1;
    const waitMs = Math.min(60_000, RESTART_BACKOFF_MS * 2 ** state.standbyFailures);
    this.#options.clock.setTimeout(() => void this.#launchStandby(state), waitMs);
  }

  /** `launched` is the agent's process from now on: waits for its first heartbeat, then replays it what it missed. */
  async #takeOver(state: AgentState, launched: LaunchedAgent, what: string): Promise<{ readonly resumedAt: number | null; readonly replayed: number }> {
    const { clock } = this.#options;
    state.process = launched;
    state.ready = false;
    state.exitCode = undefined;
    this.#watchExit(state);
    const deadline = clock.now() + RESTART_READY_TIMEOUT_MS;
    // Read through a function: the exit handler sets it meanwhile, which the compiler cannot see.
    const exitCode = (): number | undefined => state.exitCode;
    while (!state.ready) {
      const code = exitCode();
      if (code !== undefined) throw new SwarmRunError(`exited with code ${code} before its first heartbeat: ${launched.stderrTail().slice(-3).join(' | ')}`);
      if (state.lifecycle !== 'recovering') throw new SwarmRunError(`given up while recovering (${state.lifecycle})`);
      if (clock.now() > deadline) throw new SwarmRunError(`no heartbeat within ${RESTART_READY_TIMEOUT_MS} ms of ${what}`);
      await this.#nextChange(20);
    }
    return this.#options.replay(state.plan);
  }
}

function rungName(rung: Exclude<RecoveryRung, 'alert'>): string {
  return rung === 'soft-restart' ? 'soft: in its own sandbox' : 'hard: in a new sandbox';
}
