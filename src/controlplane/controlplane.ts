import { swarmTopics } from '../bus/index.js';
import { ENVIRONMENTS } from '../contract/index.js';
import { type Clock, InvalidInputError, type Logger, type TimerHandle, errorMessage, randomId } from '../core/index.js';
import { type AgentHealth, type HealthReason, type HealthStatus, type WriteFence, isLeaseLostError } from '../health/index.js';
import { type BarPayload, BarMessage, parseBarPayload } from '../livefeed/index.js';
import { type Feed, pace } from '../market/index.js';
import type { Store } from '../store/index.js';
import { type Spec, parseSpecText } from '../runspec/index.js';
import { ControlBeatHold, Deployment, checkReplicas, type DeploymentJournal, type DeploymentOptions, type JournalReplay, type SwarmReport, type SwarmRuntime, type SwarmSection, type SwarmSpec, openSwarmFeed, parseSwarmSection, parseSwarmSpecText, planOf, requestedTierOf } from '../swarm/index.js';
import { type AgentLogLine, AgentLogs } from './agentlogs.js';
import { type EnvironmentName, type Environments, type TierName, checkCapacity, tierFor } from './environments.js';
import { DeploymentNotFoundError } from './errors.js';
import { type DeploymentRecord, ControlPlaneRepository, type EventRecord, type FillRecord, type OrderRecord, type StoreChange } from './repository.js';

/** Options of {@link ControlPlane.start}. */
export interface ControlPlaneOptions {
  readonly store: Store;
  /** The bus and sandboxes every deployment runs on. Its templates must include every environment's. */
  readonly runtime: SwarmRuntime;
  readonly environments: Environments;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often what is older than each environment's retention is pruned from the store. @default 3_600_000 (hourly), first a minute after start (resuming comes first) */
  readonly pruneEveryMs?: number;
  /**
   * The lease this server leads under, when several servers share the store (see `LeaderElection`):
   * every write checks it inside its transaction, and a write it refuses makes this server
   * {@link ControlPlane.stepDown}. @default none: this server is the store's only writer
   */
  readonly fence?: WriteFence;
  /** How many closed steps apart deployments store their venue snapshot (see `DeploymentOptions.venueSnapshotEverySteps`). @default 1000 */
  readonly venueSnapshotEverySteps?: number;
}

/** What `tradeswarm deploy` asks for. */
export interface DeployRequest {
  /** The spec, as YAML text: the same spec `run` and `backtest` read. */
  readonly specYaml: string;
  /** Where the spec's CSV paths are relative to, on the server's machine (the spec file's folder). */
  readonly baseDir: string;
  /** @default the spec's name */
  readonly name?: string;
  /** @default 'dev' */
  readonly env?: EnvironmentName;
}

/** A deployment as `ps` shows it. */
export interface DeploymentView {
  readonly id: string;
  readonly name: string;
  readonly env: string;
  readonly topology: string;
  readonly pacing: string;
  /** Where it stands: `pending`, `starting`, `running`, `draining`; or how it ended: `complete`, `halted`, `degraded`, `stopped`, `failed`; `suspended` while no server runs it. */
  readonly state: string;
  readonly desired: 'running' | 'stopped';
  readonly agents: { readonly healthy: number; readonly total: number };
  /** Steps closed at the venue (bars processed). */
  readonly steps: number;
  /** The feed's length; `null` for an endless feed. */
  readonly totalSteps: number | null;
  readonly orders: number;
  readonly fills: number;
  readonly equity: number | null;
  readonly pnl: number | null;
  /** Since this server (re)started it; `null` when it is not running here. */
  readonly uptimeMs: number | null;
  readonly error: string | null;
  readonly createdAtMs: number;
}

/** A deployment as `status` shows it: its view, its agents, positions and latest events. */
export interface DeploymentStatus extends DeploymentView {
  /** Each agent: where it runs, its process's epoch, and its latest health check (null before the first, or with checks off). */
  readonly agentList: ReadonlyArray<{
    readonly id: string;
    readonly lifecycle: string;
    readonly restarts: number;
    readonly placement: string;
    readonly epoch: number;
    /** The resource tier of its sandbox (and its standby's), by the spec's `swarm.resources` and the environment. */
    readonly tier: TierName;
    readonly health: { readonly status: HealthStatus; readonly reasons: readonly HealthReason[]; readonly sinceMs: number } | null;
    /** Its hot standby (`swarm.standby`): where it runs, its epoch, whether it is ready to take over; null without one. */
    readonly standby: { readonly placement: string; readonly epoch: number; readonly ready: boolean } | null;
    /** How many processes it is to run as (see {@link ControlPlane.scale}): 1 alone, 2 with a hot standby. */
    readonly replicas: number;
  }>;
  readonly positions: ReadonlyArray<{ readonly symbol: string; readonly quantity: number }>;
  readonly events: readonly EventRecord[];
  /** The final report, once it ended. */
  readonly report: SwarmReport | null;
}

/** A deployment this server runs. */
interface Live {
  readonly record: DeploymentRecord;
  readonly spec: SwarmSpec;
  /** Each agent's resource tier, by id. */
  readonly tiers: ReadonlyMap<string, TierName>;
  readonly deployment: Deployment;
  readonly close: () => Promise<void>;
  readonly startedAtMs: number;
  /** The feed's length; `null` when endless. */
  readonly totalSteps: number | null;
  /** Settles once the deployment ended (or was suspended) and its sandboxes are gone. */
  done: Promise<void>;
  /** The server is shutting down: the deployment is suspended, not stopped, and resumes at the next start. */
  suspending: boolean;
  /** Stopped on request, and whether its positions are to be closed. */
  stoppedBy?: { readonly liquidate: boolean };
  /** This server stepped down: the deployment stops here and nothing more of it is stored (the server that leads resumes it). */
  abandoned: boolean;
  /** The replicas an operator set, by agent id, as stored (see {@link ControlPlane.scale}). */
  replicas: Readonly<Record<string, number>>;
}

const DEFAULT_TEMPLATE = 'base';

/** The retention job's first run after a start: once the deployments resumed and traded a while, not in their way. */
const FIRST_PRUNE_AFTER_MS = 60_000;

/** How many of its latest events `status` shows. */
const STATUS_EVENTS = 20;

/**
 * The control plane of `tradeswarm serve` (DESIGN decisions 9 and 10): deployments are records in
 * the store and run until stopped; each closes every step into the store before the next is
 * published, so the process can die at any instant and {@link ControlPlane.start} resumes every
 * deployment that was running from the store alone: the venue and books re-derived from the stored
 * steps, agents deployed again from their latest checkpoints. No step is skipped or traded twice,
 * and no order is lost or doubled.
 */
export class ControlPlane {
  readonly #options: ControlPlaneOptions;
  readonly #repo: ControlPlaneRepository;
  readonly #live = new Map<string, Live>();
  /** The sandboxes of deployments being created (checked, not yet running), by id: see {@link deploy}. */
  readonly #reserved = new Map<string, { readonly env: EnvironmentName; readonly sandboxes: number }>();
  readonly #shapes = new Map<string, Shape>();
  readonly #agentLogs = new AgentLogs();
  #closing = false;
  #pruneTimer: TimerHandle | undefined;

  private constructor(options: ControlPlaneOptions) {
    this.#options = options;
    // This server is the store's only writer of deployments while it runs them: `ps` and `status` read them from memory.
    this.#repo = new ControlPlaneRepository(options.store, () => options.clock.now(), options.fence, { cache: true });
  }

  /**
   * Opens the control plane on its store and resumes every deployment the store says is running.
   * A deployment that cannot be resumed (its spec's data is gone, say) is marked failed with the
   * reason; the others go on.
   * @throws LeaseLostError when the fence refuses a write meanwhile: what was resumed is stopped again.
   */
  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const plane = new ControlPlane(options);
    const resuming = (await plane.#repo.list()).filter((record) => record.desired === 'running');
    // Their agents hear from this server at once, not only once their turn to resume comes.
    const hold = new ControlBeatHold({ bus: options.runtime.bus, clock: options.clock, swarmIds: resuming.map((record) => record.id) });
    try {
      // All at once: each waits mostly for its reads from the store and parses its spec meanwhile.
      const outcomes = await Promise.allSettled(resuming.map((record) => plane.#resume(record, hold)));
      const lost = outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as unknown) : undefined)).find(isLeaseLostError);
      if (lost !== undefined) {
        await plane.stepDown(lost.reason);
        throw lost;
      }
    } finally {
      // Every resumed deployment beats by itself from its start on.
      hold.close();
    }
    // Resuming comes first: the retention job's first run waits, then runs every hour.
    if (!plane.#closing) plane.#pruneTimer = options.clock.setTimeout(() => void plane.#prune(), FIRST_PRUNE_AFTER_MS);
    return plane;
  }

  /**
   * Resumes one deployment the store says is running. One that cannot be resumed (its spec's data is
   * gone, say) is marked failed with the reason.
   * @throws LeaseLostError when the fence refused a write: the caller steps down.
   */
  async #resume(record: DeploymentRecord, hold: ControlBeatHold): Promise<void> {
    // Stepped down meanwhile (a resumed deployment's step was refused): the leader resumes the rest.
    if (this.#closing) return;
    try {
      await this.#launch(record, true);
    } catch (error) {
      hold.release(record.id);
      if (isLeaseLostError(error)) throw error;
      this.#options.logger.error({ deployment: record.name, err: errorMessage(error) }, 'a deployment could not be resumed');
      await this.#repo.setState(record.id, { state: 'failed', desired: 'stopped', error: `could not be resumed: ${errorMessage(error)}` });
      await this.#repo.appendEvent(record.id, { kind: 'failed', detail: `could not be resumed: ${errorMessage(error)}` });
    }
  }

  /**
   * Creates a deployment and starts it: the spec is checked and its data loaded, the environment's
   * resource tiers and sandbox limit checked, and only then is anything stored or started.
   * @throws SpecError naming every mistake of the spec; InvalidInputError for a bad env or name;
   *   TierNotAllowedError naming the field of a tier the environment does not allow; CapacityError
   *   past the environment's sandboxes; DeploymentNameTakenError for a taken name.
   */
  async deploy(request: DeployRequest): Promise<DeploymentView> {
    const env = request.env ?? 'dev';
    if (!ENVIRONMENTS.includes(env)) throw new InvalidInputError('env', `must be one of ${ENVIRONMENTS.join(', ')}, got ${JSON.stringify(env)}`);
    const spec = await parseSwarmSpecText(request.specYaml, 'the deployed spec', request.baseDir, { streamData: true });
    const name = request.name ?? spec.spec.name;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw new InvalidInputError('name', `must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit, got ${JSON.stringify(name)}`);
    this.#checkTemplate(spec, env);
    if (spec.swarm.standby) this.#checkStandby(env, 'swarm.standby', 'standbys take over by themselves', 'deploy to an environment with failover automatic (prod), or leave swarm.standby out');
    this.#tiersOf(spec, env);
    const sandboxes = sandboxesOf(spec);
    this.#checkCapacity(env, sandboxes);
    const id = `${name.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40)}-${randomId(6)}`;
    // Held from the check on, so that a deploy sent meanwhile counts these sandboxes before they run.
    this.#reserved.set(id, { env, sandboxes });
    try {
      const record = await this.#repo.create({ id, name, env }, { specYaml: request.specYaml, baseDir: request.baseDir });
      await this.#repo.appendEvent(id, { kind: 'deployed', detail: `deployed to ${env}` });
      await this.#launch(record, false, spec);
      return await this.#view((await this.#repo.find(id)) ?? record);
    } finally {
      this.#reserved.delete(id);
    }
  }

  /** Every deployment, newest first. */
  async list(): Promise<DeploymentView[]> {
    return Promise.all((await this.#repo.list()).map((record) => this.#view(record)));
  }

  /** @throws DeploymentNotFoundError */
  async status(ref: string): Promise<DeploymentStatus> {
    const record = await this.#find(ref);
    const view = await this.#view(record);
    const live = this.#live.get(record.id);
    const agentsNow = live?.deployment.agents();
    return {
      ...view,
      // In the plan's order, whichever agent came up first.
      agentList: (agentsNow ?? [])
        .map((agent) => ({
          id: agent.id,
          lifecycle: agent.lifecycle,
          restarts: agent.restarts,
          placement: agent.placement,
          epoch: agent.epoch ?? 0,
          tier: live?.tiers.get(agent.id) ?? this.#options.environments[record.env as EnvironmentName].defaultTier,
          health: agent.health ?? null,
          standby: agent.standby ?? null,
          replicas: live?.deployment.replicasOf(agent.id) ?? 1,
        }))
        .sort((a, b) => planIndex(live, a.id) - planIndex(live, b.id)),
      positions: await this.#repo.positions(record.id),
      events: await this.#repo.latestEvents(record.id, STATUS_EVENTS),
      report: await this.#repo.report(record.id),
    };
  }

  /** @throws DeploymentNotFoundError */
  async orders(ref: string, options: { readonly fromStep?: number; readonly limit?: number } = {}): Promise<OrderRecord[]> {
    return this.#repo.orders((await this.#find(ref)).id, options);
  }

  /** @throws DeploymentNotFoundError */
  async fills(ref: string): Promise<FillRecord[]> {
    return this.#repo.fills((await this.#find(ref)).id);
  }

  /** @throws DeploymentNotFoundError */
  async events(ref: string, options: { readonly afterId?: number; readonly limit?: number } = {}): Promise<EventRecord[]> {
    return this.#repo.events((await this.#find(ref)).id, options);
  }

  /**
   * Publishes bars into a running deployment whose `swarm.feed` is `bus`, on its topic
   * `ts/<deployment>/market/bars`, as any publisher on the broker could. Every bar is checked first
   * (shape and the market's rules); one bad bar refuses them all, naming its index and field.
   * @throws DeploymentNotFoundError; InvalidInputError naming `bars[i].field`, or when the deployment
   *   does not run or does not read the bus.
   * @returns how many bars were published.
   */
  async publishBars(ref: string, bars: readonly unknown[]): Promise<{ readonly published: number; readonly topic: string }> {
    const record = await this.#find(ref);
    const live = this.#live.get(record.id);
    if (live === undefined) throw new InvalidInputError('deployment', `${record.name} is ${record.state}, not running here: bars go to a running deployment`);
    if (live.spec.swarm.feed.source !== 'bus') throw new InvalidInputError('deployment', `${record.name} reads its market from ${live.spec.swarm.feed.source}, not the bus; deploy a spec with swarm.feed.source: bus to publish bars into it`);
    bars.forEach((bar, i) => {
      const parsed = parseBarPayload(bar);
      if (!parsed.ok) throw new InvalidInputError(`bars[${i}].${parsed.field}`, parsed.problem);
    });
    const topic = swarmTopics(record.id).marketBars();
    for (const bar of bars) await this.#options.runtime.bus.publish(topic, BarMessage.draft(bar as BarPayload));
    return { published: bars.length, topic };
  }

  /**
   * The last lines its agents' processes printed (stdout and stderr, read through the SDK), after
   * `afterSeq`, of one agent when given. Kept in memory, at most 5,000 per deployment.
   * @throws DeploymentNotFoundError; InvalidInputError for an agent the deployment does not have.
   */
  async agentLogs(ref: string, options: { readonly afterSeq?: number; readonly agentId?: string; readonly limit?: number } = {}): Promise<AgentLogLine[]> {
    const record = await this.#find(ref);
    const live = this.#live.get(record.id);
    if (options.agentId !== undefined && live !== undefined && !live.deployment.plan.agents.some((agent) => agent.id === options.agentId)) {
      throw new InvalidInputError('agent', `${record.name} has no agent ${options.agentId}; it has ${live.deployment.plan.agents.map((agent) => agent.id).join(', ')}`);
    }
    return this.#agentLogs.read(record.id, options);
  }

  /**
   * Calls `watcher` with every change stored from now on (states, closed steps with their orders and
   * fills, events), for deployment `ref` only when given; returns what stops it.
   * @throws DeploymentNotFoundError for an unknown `ref`.
   */
  async watch(watcher: (change: StoreChange) => void, ref?: string): Promise<() => void> {
    const only = ref === undefined ? undefined : (await this.#find(ref)).id;
    return this.#repo.watch((change) => {
      if (only === undefined || change.deployment === only) watcher(change);
    });
  }

  /**
   * Stops a deployment for good: no new step, agents checkpoint and exit, sandboxes are killed; it
   * is not resumed at the next start. Its positions stay open (its report marks them to market), or,
   * with `liquidate`, are closed at the last close and those fills stored. Resolves once it stopped.
   * @throws DeploymentNotFoundError
   */
  async stop(ref: string, options: { readonly liquidate?: boolean } = {}): Promise<DeploymentView> {
    const record = await this.#find(ref);
    await this.#repo.setState(record.id, { state: this.#live.has(record.id) ? 'draining' : record.state, desired: 'stopped' });
    await this.#repo.appendEvent(record.id, { kind: 'stop', detail: 'stop requested' });
    const live = this.#live.get(record.id);
    if (live !== undefined) {
      live.stoppedBy = { liquidate: options.liquidate === true };
      live.deployment.stop('tradeswarm stop');
      await live.done;
    }
    return this.#view(await this.#find(ref));
  }

  /**
   * An operator restarts a lost agent (the recovery of a `manual` environment, or any environment's
   * agent that is waiting to be recovered): it climbs the recovery ladder once; the `restarted` or
   * `restart-failed` event says how it went.
   * @throws DeploymentNotFoundError; InvalidInputError naming `agent` when the deployment does not
   *   run here, has no such agent, or the agent is not lost.
   */
  async restartAgent(ref: string, agentId: string): Promise<DeploymentView> {
    const record = await this.#find(ref);
    const live = this.#live.get(record.id);
    if (live === undefined) throw new InvalidInputError('agent', `${record.name} is ${record.state}, not running on this server: there is no agent to restart`);
    try {
      live.deployment.restartAgent(agentId);
    } catch (error) {
      throw new InvalidInputError('agent', errorMessage(error));
    }
    await this.#repo.appendEvent(record.id, { kind: 'restart', agentId, detail: 'restart requested by an operator' });
    return this.#view(record);
  }

  /**
   * Sets how many processes the agents of `role` run as, while the deployment runs: 2 gives each a
   * hot standby in a sandbox of its own (started now; it takes over when its agent is lost), 1 ends
   * the standbys they have. `role` is an agent's id, a role of the topology (`trader`, `decider`,
   * `coordinator`, `collector`, `executor`: every agent of it), or `all`. The setting is stored before
   * it is applied, and holds across failovers and restarts of the server; a `scaled` event records it.
   * @throws DeploymentNotFoundError; InvalidInputError naming `deployment` (not running here), `role`
   *   or `replicas`; CapacityError when the environment's sandboxes would not suffice (nothing changes).
   */
  async scale(ref: string, role: string, replicas: number): Promise<DeploymentView> {
    const record = await this.#find(ref);
    const live = this.#live.get(record.id);
    if (live === undefined) throw new InvalidInputError('deployment', `${record.name} is ${record.state}, not running on this server: only a running deployment can be scaled`);
    checkReplicas(replicas);
    const env = record.env as EnvironmentName;
    if (replicas > 1) this.#checkStandby(env, 'replicas', 'a second replica is a hot standby, which takes over by itself', 'scale in an environment with failover automatic (prod)');
    const agents = agentsOfRole(live.deployment.plan.agents, role, record.name);
    // Counted against what earlier scales set, stored or not yet: each is counted once.
    const before = live.replicas;
    const next = { ...before, ...Object.fromEntries(agents.map((id) => [id, replicas])) };
    const adding = sandboxesOf(live.spec, next) - sandboxesOf(live.spec, before);
    if (adding > 0) this.#checkCapacity(env, adding);
    // Held from the check on, so that a deploy or scale checked while this one is stored counts it.
    live.replicas = next;
    try {
      await this.#repo.setReplicas(record.id, next);
    } catch (error) {
      if (live.replicas === next) live.replicas = before;
      throw error;
    }
    for (const id of agents) live.deployment.scale(id, replicas);
    await this.#repo.appendEvent(record.id, { kind: 'scaled', detail: `${role === agents[0] ? role : `${role} (${agents.join(', ')})`} to ${replicas} ${replicas === 1 ? 'replica: the agent alone' : 'replicas: the agent and a hot standby'}` });
    return this.#view(record);
  }

  /** Prunes what each environment no longer keeps (its retention), then again after `pruneEveryMs`. */
  async #prune(): Promise<void> {
    const { environments, clock, logger } = this.#options;
    const retentionMs = Object.fromEntries(ENVIRONMENTS.map((env) => [env, environments[env].retentionDays * 86_400_000]));
    try {
      const pruned = await this.#repo.prune(retentionMs, clock.now());
      if (pruned.deployments + pruned.rows > 0) logger.info(pruned, 'pruned what is older than its environment keeps');
    } catch (error) {
      logger.warn({ err: errorMessage(error) }, 'could not prune the store; trying again later');
    }
    if (!this.#closing) this.#pruneTimer = clock.setTimeout(() => void this.#prune(), this.#options.pruneEveryMs ?? 3_600_000);
  }

  /**
   * Shuts the server down cleanly: every running deployment drains (agents checkpoint, sandboxes
   * are killed) and is `suspended`: it resumes where it stood when a server starts on the store again.
   */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#pruneTimer !== undefined) this.#options.clock.clearTimeout(this.#pruneTimer);
    await Promise.all(
      [...this.#live.values()].map(async (live) => {
        live.suspending = true;
        live.deployment.stop('server shutdown');
        await live.done;
      }),
    );
    // The next server to lead may write what this one has in memory.
    this.#repo.dropCache();
  }

  /**
   * This server no longer leads (another server took the lease, or it could not renew it in time):
   * every deployment stops at once and its sandboxes are killed, and nothing more of it is stored
   * (the fence refuses it; the deployments stay `running` in the store for the server that leads to
   * resume). Also called by itself when the fence refuses a step. Resolves once all stopped.
   */
  async stepDown(reason: string): Promise<void> {
    this.#closing = true;
    // The leader writes the deployments now: what this server kept of them is out of date.
    this.#repo.dropCache();
    if (this.#pruneTimer !== undefined) this.#options.clock.clearTimeout(this.#pruneTimer);
    await Promise.all(
      [...this.#live.values()].map(async (live) => {
        if (!live.abandoned) this.#options.logger.warn({ deployment: live.record.name, reason }, 'this server stepped down: the deployment stops here and the leader resumes it');
        live.abandoned = true;
        // Quietly: on a broker shared with the new leader, a `stop` to the swarm would stop its agents too.
        live.deployment.stop(`this server stepping down (${reason})`, { quietly: true });
        await live.done;
      }),
    );
  }

  async #find(ref: string): Promise<DeploymentRecord> {
    const record = await this.#repo.find(ref);
    if (record === undefined) throw new DeploymentNotFoundError(ref);
    return record;
  }

  #templateOf(spec: SwarmSpec, env: EnvironmentName): string {
    return spec.swarm.template === DEFAULT_TEMPLATE ? this.#options.environments[env].template : spec.swarm.template;
  }

  #checkTemplate(spec: SwarmSpec, env: EnvironmentName): void {
    const template = this.#templateOf(spec, env);
    if (!this.#options.runtime.templates.includes(template)) {
      throw new InvalidInputError('swarm.template', `${template} is not a template this server runs agents in (${this.#options.runtime.templates.join(', ')}); leave swarm.template out to use the environment's`);
    }
  }

  /**
   * Each agent's resource tier in `env`: what `swarm.resources` asks for its role, or the
   * environment's smallest allowed tier.
   * @throws TierNotAllowedError naming the field of a tier the environment does not allow.
   */
  #tiersOf(spec: SwarmSpec, env: EnvironmentName): Map<string, TierName> {
    const environment = this.#options.environments[env];
    return new Map(
      planOf(spec).agents.map((agent) => {
        const asked = requestedTierOf(spec.swarm, agent);
        return [agent.id, tierFor(environment, asked?.tier, asked?.field).name];
      }),
    );
  }

  #checkCapacity(env: EnvironmentName, adding: number): void {
    let inUse = 0;
    for (const live of this.#live.values()) if (live.record.env === env) inUse += sandboxesOf(live.spec, live.replicas);
    for (const [id, reservation] of this.#reserved) if (reservation.env === env && !this.#live.has(id)) inUse += reservation.sandboxes;
    checkCapacity(this.#options.environments[env], inUse, adding);
  }

  /**
   * Standbys take over by themselves: only where the environment fails over automatically. `field`
   * asked for one (`why` it needs that, `remedy` what to do instead).
   * @throws InvalidInputError naming `field`.
   */
  #checkStandby(env: EnvironmentName, field: string, why: string, remedy: string): void {
    const { failover } = this.#options.environments[env];
    if (failover !== 'automatic') {
      throw new InvalidInputError(field, `${why}, and ${env} recovers ${failover === 'manual' ? 'by hand' : 'nothing'} (failover: ${failover}); ${remedy}`);
    }
  }

  /** Starts (or resumes) a stored deployment and runs it in the background until it ends. */
  async #launch(record: DeploymentRecord, resuming: boolean, parsed?: SwarmSpec): Promise<void> {
    const { runtime, clock, logger, environments } = this.#options;
    const env = record.env as EnvironmentName;
    const stored = await this.#repo.spec(record.id, record.specVersion);
    // A synthetic market is made as the feed reads it: resumed at step k, k bars are made, not the whole market.
    const spec = parsed ?? (await parseSwarmSpecText(stored.specYaml, `deployment ${record.name}`, stored.baseDir, { streamData: true }));
    const replay = resuming ? await this.#repo.replayOf(record.id) : null;
    const feed: Feed = await openSwarmFeed({ spec, swarmId: record.id, bus: runtime.bus, clock, logger: logger.child({ deployment: record.name, part: 'feed' }), ...(replay === null ? {} : { from: replay.snapshot.position }) });
    // Checked here, where it is registered below without an await between: deployments resume at once.
    if (resuming) {
      try {
        this.#checkCapacity(env, sandboxesOf(spec, record.replicas));
      } catch (error) {
        await feed.close().catch(() => undefined);
        throw error;
      }
    }
    const tiers = this.#tiersOf(spec, env);
    const launcher = runtime.launcher({
      swarmId: record.id,
      template: this.#templateOf(spec, env),
      env: environments[env].templateEnvs,
      tierOf: (agent) => tiers.get(agent.id) ?? environments[env].defaultTier,
      tierTemplates: environments[env].tierTemplates,
    });
    const journaled = this.#repo.journalOf(record.id);
    // A step the fence refused: this server no longer leads, and stops every deployment at once.
    const fenced = (error: unknown): never => {
      if (isLeaseLostError(error)) void this.stepDown(error.reason);
      throw error;
    };
    const journal: DeploymentJournal = {
      stepClosed: (step) => journaled.stepClosed(step).catch(fenced),
      drained: (checkpoints) => journaled.drained!(checkpoints).catch(fenced),
      stepsBetween: (from, to) => journaled.stepsBetween!(from, to),
    };
    // State changes and events are stored in order, each after the one before.
    let writes = Promise.resolve();
    const write = (what: () => Promise<void>): void => {
      writes = writes.then(what).catch((error: unknown) => logger[isLeaseLostError(error) ? 'debug' : 'warn']({ deployment: record.name, err: errorMessage(error) }, 'could not store a deployment change'));
    };
    const options: DeploymentOptions = {
      spec,
      swarmId: record.id,
      bus: runtime.bus,
      launcher,
      pacer: pace(feed, { clock, pacing: spec.swarm.pacing }),
      clock,
      deafness: runtime.deafness,
      logger: logger.child({ deployment: record.name }),
      unreadyHint: `check that sandboxes reach the broker at ${runtime.brokerUrl}`,
      journal,
      ...(this.#options.venueSnapshotEverySteps === undefined ? {} : { venueSnapshotEverySteps: this.#options.venueSnapshotEverySteps }),
      ...(this.#options.fence === undefined ? {} : { mayAct: () => this.#options.fence?.holds() !== false }),
      onEvent: (event) => write(() => this.#repo.swarmEvent(record.id, event)),
      // The environment's failover mode: dev none, staging manual, prod automatic (overridable by its config).
      recovery: this.#options.environments[record.env as EnvironmentName].failover,
      replicas: new Map(Object.entries(record.replicas)),
      // Stored as events: `logs` and the live stream show each change of an agent's health (a first check that finds it healthy is no news).
      onHealth: (health, previous) => {
        const step = deployment.currentStep;
        if (previous !== undefined || health.status !== 'healthy') write(() => this.#repo.appendEvent(record.id, { kind: 'health', step, agentId: health.agentId, detail: healthLine(health) }));
      },
      onAgentOutput: (agentId, stream, line) => this.#agentLogs.add(record.id, agentId, stream, line, clock.now()),
      onStateChange: (state) => {
        if (state === 'starting' || state === 'running') write(() => this.#repo.setState(record.id, { state }));
      },
    };
    const deployment = replay === null ? new Deployment(options) : Deployment.resumeFrom(replay, options);
    const live: Live = {
      record,
      spec,
      tiers,
      deployment,
      startedAtMs: clock.now(),
      totalSteps: feed.stepCount,
      suspending: false,
      abandoned: false,
      replicas: record.replicas,
      done: Promise.resolve(),
      close: async () => {
        await deployment.close().catch(() => undefined);
        await launcher.close().catch(() => undefined);
        await feed.close().catch(() => undefined);
      },
    };
    this.#live.set(record.id, live);
    if (resuming) write(() => this.#repo.appendEvent(record.id, { kind: 'resumed', step: replay?.snapshot.closedSteps ?? 0, detail: resumedDetail(replay) }));
    live.done = this.#run(live).finally(async () => {
      await live.close();
      this.#live.delete(record.id);
      await writes;
    });
  }

  /** Runs a live deployment to its end and records how it ended. */
  async #run(live: Live): Promise<void> {
    const { record, deployment } = live;
    try {
      await deployment.start();
      await deployment.run();
      if (live.abandoned) return;
      // Stopped on request, the positions stay open unless liquidation was asked for; at the end of
      // its data the spec's endOfData rule applies.
      const stoppedBy = live.stoppedBy;
      const report = deployment.report(this.#options.runtime.placement(), stoppedBy === undefined ? {} : { endOfData: stoppedBy.liquidate ? 'liquidate-at-close' : 'mark-to-market' });
      // Stopped for good, what the report has beyond the stored steps is stored: the fills at the open of
      // a step the stop cut short (its agents never decided it: it was never closed nor stored), and
      // the liquidation's. A suspended deployment trades that step again when it resumes.
      if (stoppedBy !== undefined && !live.suspending) {
        const stored = (await this.#repo.find(record.id))?.fills ?? report.fills.length;
        const unstored = report.fills.slice(stored);
        if (unstored.length > 0 || stoppedBy.liquidate) await this.#repo.settle(record.id, { step: report.steps.published, fills: unstored, positions: report.openPositions, equity: report.finalEquity });
        if (stoppedBy.liquidate) {
          // The end-of-data rule's fills (src/portfolio/liquidation.ts names them so).
          const closing = report.fills.filter((fill) => fill.clientOrderId.startsWith('end-of-data:'));
          await this.#repo.appendEvent(record.id, {
            kind: 'liquidated',
            step: report.steps.published,
            detail: closing.length === 0 ? 'no position was open' : `closed ${closing.map((fill) => `${fill.symbol} ${fill.side} ${fill.quantity} @ ${fill.price}`).join(', ')} at the last close`,
          });
        }
      }
      if (live.suspending) {
        await this.#repo.setState(record.id, { state: 'suspended' });
        await this.#repo.appendEvent(record.id, { kind: 'suspended', step: report.steps.published, detail: 'the server shut down; the deployment resumes when it starts again' });
        return;
      }
      const desired = await this.#repo.find(record.id);
      await this.#repo.setState(record.id, { state: report.outcome, desired: 'stopped', report, ...(report.halted === null ? {} : { error: report.halted.reason }) });
      await this.#repo.appendEvent(record.id, { kind: 'ended', step: report.steps.published, detail: desired?.desired === 'stopped' ? 'stopped on request' : `ended: ${report.outcome}` });
    } catch (error) {
      if (live.abandoned) return;
      if (live.suspending || this.#closing) {
        await this.#repo.setState(record.id, { state: 'suspended' }).catch(() => undefined);
        return;
      }
      if ((await this.#repo.find(record.id))?.desired === 'stopped') {
        // Stopped on request before its agents were all up: nothing was traded.
        await this.#repo.setState(record.id, { state: 'stopped' });
        await this.#repo.appendEvent(record.id, { kind: 'ended', detail: `stopped on request while starting (${errorMessage(error)})` });
        return;
      }
      this.#options.logger.error({ deployment: record.name, err: errorMessage(error) }, 'deployment failed');
      await this.#repo.setState(record.id, { state: 'failed', desired: 'stopped', error: errorMessage(error) });
      await this.#repo.appendEvent(record.id, { kind: 'failed', detail: errorMessage(error) });
    }
  }

  /** What `ps` shows of a spec; read once per deployment (the spec of a version never changes). */
  async #shapeOf(record: DeploymentRecord): Promise<Shape> {
    const key = `${record.id}@${record.specVersion}`;
    let shape = this.#shapes.get(key);
    if (shape === undefined) {
      const live = this.#live.get(record.id);
      if (live !== undefined) {
        shape = shapeOf(live.spec.spec, live.spec.swarm);
      } else {
        const stored = await this.#repo.spec(record.id, record.specVersion);
        const spec = parseSpecText(stored.specYaml, `deployment ${record.name}`);
        shape = shapeOf(spec, parseSwarmSection(spec, `deployment ${record.name}`));
      }
      this.#shapes.set(key, shape);
    }
    return shape;
  }

  async #view(record: DeploymentRecord): Promise<DeploymentView> {
    const live = this.#live.get(record.id);
    const shape = await this.#shapeOf(record);
    const equity = record.finalEquity ?? record.equity;
    const agents = live?.deployment.agents() ?? [];
    return {
      id: record.id,
      name: record.name,
      env: record.env,
      topology: shape.topology,
      pacing: shape.pacing,
      // A deployment that stopped trading is `draining` until its outcome is stored.
      state: live === undefined ? record.state : live.deployment.state === 'stopped' ? 'draining' : live.deployment.state,
      desired: record.desired,
      // Healthy by its latest check; before the first one (or with checks off), running counts.
      agents: { healthy: agents.filter((agent) => (agent.health === undefined ? agent.lifecycle === 'running' : agent.health.status === 'healthy')).length, total: live?.deployment.plan.agents.length ?? 0 },
      steps: record.closedSteps,
      totalSteps: live?.totalSteps ?? null,
      orders: record.orders,
      fills: record.fills,
      equity,
      pnl: equity === null ? null : equity - shape.initialCash,
      uptimeMs: live === undefined ? null : this.#options.clock.now() - live.startedAtMs,
      error: record.error,
      createdAtMs: record.createdAtMs,
    };
  }
}

/** An agent's health in one line: its status, and each reason with its level. */
function healthLine(health: Pick<AgentHealth, 'status' | 'reasons'>): string {
  return health.reasons.length === 0 ? health.status : `${health.status}: ${health.reasons.map((reason) => `${reason.detail} (${reason.level})`).join('; ')}`;
}

/** The sandboxes a spec's deployment holds: one per agent, and one per standby (the spec's, or as an operator scaled it). */
function sandboxesOf(spec: SwarmSpec, replicas: Readonly<Record<string, number>> = {}): number {
  return planOf(spec).agents.reduce((sum, agent) => sum + (replicas[agent.id] ?? (spec.swarm.standby ? 2 : 1)), 0);
}

/** What the `resumed` event of a deployment says: where it resumed, and what it read to get there. */
function resumedDetail(replay: JournalReplay | null): string {
  if (replay === null) return 'started again from the first step (no step had closed)';
  const after = `resumed after step ${replay.snapshot.closedSteps - 1}`;
  const read = `${replay.steps.length} stored step${replay.steps.length === 1 ? '' : 's'}`;
  return replay.venue === undefined ? `${after}: its venue rebuilt from ${read}` : `${after}: its venue from the snapshot after step ${replay.venue.closedSteps - 1}, then ${read} from step ${replay.steps[0]?.index ?? replay.venue.closedSteps}`;
}

/** The roles `scale` takes: an agent's id, every agent of a kind, or `all`. */
const ALL_AGENTS = 'all';

/**
 * The ids of the agents `role` names, in plan order.
 * @throws InvalidInputError naming `role`, listing what the deployment has.
 */
function agentsOfRole(agents: Deployment['plan']['agents'], role: string, deployment: string): string[] {
  const named = agents.filter((agent) => role === ALL_AGENTS || agent.id === role || agent.kind === role).map((agent) => agent.id);
  if (named.length > 0) return named;
  const kinds = [...new Set(agents.map((agent) => agent.kind))];
  throw new InvalidInputError('role', `${deployment} has no agent or role ${JSON.stringify(role)}; give an agent id (${agents.map((agent) => agent.id).join(', ')}), a role (${kinds.join(', ')}) or ${ALL_AGENTS}`);
}

/** Where agent `id` stands in its deployment's plan. */
function planIndex(live: Live | undefined, id: string): number {
  return live?.deployment.plan.agents.findIndex((agent) => agent.id === id) ?? 0;
}

/** What a view shows of a deployment's spec. */
interface Shape {
  readonly topology: string;
  readonly pacing: string;
  readonly initialCash: number;
}

function shapeOf(spec: Spec, swarm: SwarmSection): Shape {
  return {
    topology: swarm.topology,
    pacing: swarm.pacing.mode === 'lockstep' ? 'lockstep' : `realtime x${swarm.pacing.speed}`,
    initialCash: spec.portfolio?.initialCash ?? 100_000,
  };
}
