import { isDeepStrictEqual } from 'node:util';
import { AGENT_ENV, type AgentConfig, agentConfigSchema } from '../agent/index.js';
import { type Clock, InvalidInputError, type Logger, type TimerHandle, errorMessage } from '../core/index.js';
import {
  type AgentBundle,
  type DeployedAgent,
  type Sandbox,
  type SandboxInfo,
  type SandboxProvider,
  SandboxOwner,
  attachAgent,
  defaultBundlePath,
  deployAgent,
  inspectSandbox,
  type TierName,
} from '../sandbox/index.js';
import type { AgentPlan } from '../topology/index.js';
import type { AdoptionCandidate, AgentLauncher, LaunchRequest, LaunchedAgent } from './launcher.js';

/** An agent's sandbox size: its resource tier, and the template that has it. */
export interface AgentSize {
  readonly tier: TierName;
  readonly template: string;
}

/** The owner tag of every agent sandbox: the next run cleans what a crashed one left (see SandboxOwner). */
export const AGENT_SANDBOX_OWNER = 'tradeswarm-swarm';

/** Options of {@link SandboxLauncher}. */
export interface SandboxLauncherOptions {
  readonly provider: SandboxProvider;
  /** The template agents' sandboxes are made from, unless {@link sizeOf} names another. */
  readonly template: string;
  /**
   * Each agent's resource tier and the template of that size (its standby's and restarts' too); the
   * tier is kept in the sandbox's metadata (`tier`). @default `template` for every agent, no tier
   */
  readonly sizeOf?: (agent: AgentPlan) => AgentSize;
  readonly bundle: AgentBundle;
  /** The swarm's id, kept in each sandbox's metadata. */
  readonly swarmId: string;
  /** The env vars that connect an agent to the bus (URL and its credentials), besides its config. */
  readonly busEnvOf: (config: AgentConfig) => Readonly<Record<string, string>>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The agent's log level inside its sandbox. @default 'warn' */
  readonly agentLogLevel?: string;
  /**
   * A sandbox's lifetime, renewed while the run goes on: the provider kills a sandbox whose lifetime
   * runs out (E2B's default is 5 minutes), so a run that outlives it would lose every agent.
   * @default 600_000
   */
  readonly sandboxLifetimeMs?: number;
  /** How often the lifetime of every agent sandbox is renewed. @default a third of sandboxLifetimeMs */
  readonly renewEveryMs?: number;
  /** @default a SandboxOwner of {@link AGENT_SANDBOX_OWNER} and this process */
  readonly owner?: SandboxOwner;
  /**
   * Whether agents outlive this control plane: their sandboxes are not this process's (an external
   * cloud, or E2B) and their broker is not either, so the control plane that leads next can adopt
   * them ({@link SandboxLauncher.adopt}). Then {@link SandboxLauncher.prepare} ends only what the
   * swarm left, never the sandboxes of other swarms, which their own control planes adopt.
   * @default false
   */
  readonly handOver?: boolean;
}

/**
 * Starts each agent in a sandbox of its own through the `e2b` SDK ({@link SandboxProvider}): the
 * sandbox, of the agent's size, is tagged with its owner, swarm, agent and tier, the bundle is written unless the template holds
 * it, and the agent's process is started with its config and bus settings in env vars. The lifetime
 * of every sandbox is renewed while the launcher is open; `close()` kills them all.
 */
export class SandboxLauncher implements AgentLauncher {
  readonly #options: SandboxLauncherOptions;
  readonly #owner: SandboxOwner;
  readonly #lifetimeMs: number;
  readonly #renewEveryMs: number;
  /** Every sandbox made, by id, until it is killed. */
  readonly #sandboxes = new Map<string, Sandbox>();
  #renewal: TimerHandle | undefined;
  #closed = false;
  /** Detaches each process launched or adopted (see {@link release}). */
  readonly #detachers: Array<() => void> = [];
  /** Whether {@link adopt} already ended what the swarm left, so {@link prepare} need not list it again. */
  #cleared = false;

  /** @throws InvalidInputError naming `sandboxLifetimeMs` or `renewEveryMs`. */
  constructor(options: SandboxLauncherOptions) {
    this.#options = options;
    this.#owner = options.owner ?? new SandboxOwner(AGENT_SANDBOX_OWNER);
    this.#lifetimeMs = options.sandboxLifetimeMs ?? 600_000;
    if (!Number.isInteger(this.#lifetimeMs) || this.#lifetimeMs < 10_000) throw new InvalidInputError('sandboxLifetimeMs', `must be a whole number >= 10000, got ${this.#lifetimeMs}`);
    this.#renewEveryMs = options.renewEveryMs ?? Math.floor(this.#lifetimeMs / 3);
    if (!Number.isInteger(this.#renewEveryMs) || this.#renewEveryMs < 1_000 || this.#renewEveryMs >= this.#lifetimeMs) {
      throw new InvalidInputError('renewEveryMs', `must be a whole number from 1000 to below sandboxLifetimeMs (${this.#lifetimeMs}), got ${this.#renewEveryMs}`);
    }
  }

  async prepare(): Promise<void> {
    if (this.#options.handOver === true) {
      if (!this.#cleared) await this.#endSwarmSandboxes(new Set(this.#sandboxes.keys()));
    } else await this.#owner.killLeaked(this.#options.provider, { logger: this.#options.logger });
    this.#scheduleRenewal();
  }

  /**
   * Adopts the processes an earlier control plane of this swarm left running (see
   * {@link AgentLauncher.adopt}): a candidate is adopted when its sandbox runs, holds exactly one
   * process of the agent at the candidate's epoch, started from this bundle, with the candidate's
   * settings and this launcher's bus settings. Other agent processes in adopted sandboxes, and every
   * other sandbox of the swarm, are ended. Nothing is adopted unless {@link SandboxLauncherOptions.handOver}.
   */
  async adopt(candidates: readonly AdoptionCandidate[]): Promise<ReadonlyArray<LaunchedAgent | string> | null> {
    if (this.#options.handOver !== true) return null;
    const { provider, logger } = this.#options;
    const listed = await provider.list({ tradeswarm: 'swarm-agent', swarm: this.#options.swarmId });
    const running = new Map(listed.filter((info) => info.state === 'running').map((info) => [info.sandboxId, info]));
    const adopted = await Promise.all(
      candidates.map(async (candidate): Promise<LaunchedAgent | string> => {
        if (!running.has(candidate.placement)) return `its sandbox ${candidate.placement} is ${listed.some((info) => info.sandboxId === candidate.placement) ? 'paused' : 'gone'}`;
        try {
          const sandbox = await provider.connect(candidate.placement);
          // Each process's agent settings, read once from its env (undefined: not an agent process).
          const processes = (await sandbox.commands.list()).map((process) => ({ ...process, config: configIn(process.envs) }));
          const busEnv = this.#options.busEnvOf(candidate.config);
          const path = defaultBundlePath(this.#options.bundle);
          const mine = processes.filter((process) => process.config?.agentId === candidate.agent.id && process.config.epoch === candidate.config.epoch);
          if (mine.length !== 1) return `its sandbox holds ${mine.length} processes of it at epoch ${candidate.config.epoch}`;
          const [found] = mine as [(typeof mine)[number]];
          if (![found.cmd, ...found.args].join(' ').includes(path)) return 'it runs another version of the agent bundle';
          // Its LOG_LEVEL is the launcher's agentLogLevel, whatever the environment's own env says (dev's debug): no reason to refuse it.
          if (Object.entries(busEnv).some(([name, value]) => name !== AGENT_ENV.logLevel && found.envs[name] !== value)) return 'it is connected to another broker, or with other credentials';
          if (!sameSettings(found.config, candidate.config)) return 'it runs with other settings';
          const deployed = await attachAgent(sandbox, {
            name: candidate.agent.id,
            pid: found.pid,
            path,
            clock: this.#options.clock,
            logger,
            onStdout: candidate.onStdout,
            onStderr: candidate.onStderr,
          });
          this.#sandboxes.set(sandbox.sandboxId, sandbox);
          // Whatever else of the agent runs there (a process a soft restart replaced) goes.
          await Promise.all(processes.filter((process) => process.pid !== found.pid && process.config !== undefined).map((process) => sandbox.commands.kill(process.pid).catch(() => false)));
          return this.#launched(sandbox, deployed, candidate.agent.id, 0);
        } catch (error) {
          return `its process could not be reached (${errorMessage(error)})`;
        }
      }),
    );
    await this.#endSwarmSandboxes(new Set(this.#sandboxes.keys()), listed);
    this.#cleared = true;
    return adopted;
  }

  release(): Promise<boolean> {
    if (this.#options.handOver !== true) return Promise.resolve(false);
    this.#closed = true;
    if (this.#renewal !== undefined) this.#options.clock.clearTimeout(this.#renewal);
    for (const detach of this.#detachers.splice(0)) detach();
    this.#sandboxes.clear();
    return Promise.resolve(true);
  }

  /**
   * Ends every sandbox of this swarm but `keep` (what a crashed or deposed control plane left, not
   * adopted), from `listed` when the swarm was just listed, else from a new listing.
   */
  async #endSwarmSandboxes(keep: ReadonlySet<string>, listed?: readonly SandboxInfo[]): Promise<void> {
    const { provider, logger } = this.#options;
    listed ??= await provider.list({ tradeswarm: 'swarm-agent', swarm: this.#options.swarmId });
    const left = listed.filter((info) => !keep.has(info.sandboxId));
    await Promise.all(left.map((info) => provider.kill(info.sandboxId).catch((error: unknown) => logger.warn({ sandboxId: info.sandboxId, err: errorMessage(error) }, 'could not end a sandbox an earlier control plane of this swarm left'))));
    if (left.length > 0) logger.info({ swarm: this.#options.swarmId, ended: left.length }, 'ended sandboxes an earlier control plane of this swarm left');
  }

  /** The sandbox an agent runs in (to inspect it through the SDK), by its placement. */
  sandboxOf(placement: string): Sandbox | undefined {
    return this.#sandboxes.get(placement);
  }

  async launch(request: LaunchRequest): Promise<LaunchedAgent> {
    const { provider, swarmId, bundle, logger } = this.#options;
    const { agent, config } = request;
    const size = this.#options.sizeOf?.(agent);
    const started = performance.now();
    const previous = request.previous === undefined ? undefined : this.#sandboxes.get(request.previous.placement);
    if (previous !== undefined && request.placement === 'new') {
      // A hard restart: the old sandbox goes, so nothing in it can come back beside the new one.
      this.#sandboxes.delete(previous.sandboxId);
      await previous.kill().catch((error: unknown) => logger.warn({ agent: agent.id, sandboxId: previous.sandboxId, err: errorMessage(error) }, 'could not kill the sandbox of a hard-restarted agent'));
    }
    const reusable = request.placement === 'new' ? undefined : previous;
    const sandbox =
      reusable !== undefined && (await request.previous?.placementAlive()) === true
        ? reusable
        : await provider.create({
            template: size?.template ?? this.#options.template,
            timeoutMs: this.#lifetimeMs,
            metadata: { ...this.#owner.metadata, tradeswarm: 'swarm-agent', swarm: swarmId, agent: agent.id, ...(size === undefined ? {} : { tier: size.tier }) },
          });
    this.#sandboxes.set(sandbox.sandboxId, sandbox);
    const sandboxMs = sandbox === reusable ? 0 : performance.now() - started;
    const deployed = await deployAgent(sandbox, {
      bundle,
      skipWriteIfPresent: true,
      name: agent.id,
      env: {
        ...this.#options.busEnvOf(config),
        [AGENT_ENV.config]: JSON.stringify(config),
        [AGENT_ENV.logLevel]: this.#options.agentLogLevel ?? 'warn',
      },
      onStdout: request.onStdout,
      onStderr: (line) => {
        logger.debug({ agent: agent.id, line }, 'agent stderr');
        request.onStderr(line);
      },
    });
    return this.#launched(sandbox, deployed, agent.id, sandboxMs);
  }

  /** The fleet's view of an agent process in `sandbox`, launched or adopted. */
  #launched(sandbox: Sandbox, deployed: DeployedAgent, agentId: string, sandboxMs: number): LaunchedAgent {
    const { logger } = this.#options;
    let detached = false;
    const detach = (): void => {
      detached = true;
      deployed.detach();
    };
    this.#detachers.push(detach);
    return {
      placement: sandbox.sandboxId,
      pid: deployed.pid,
      timings: { sandboxMs, writeMs: deployed.timings.writeMs, startMs: deployed.timings.startMs },
      bundleWritten: deployed.bundleWritten,
      // A detached process goes on elsewhere: its end is not this control plane's news.
      exited: new Promise((resolve) => void deployed.exited.then((exit) => (detached ? undefined : resolve({ exitCode: exit.exitCode })))),
      signal: (signal) => deployed.signal(signal),
      stop: async (options) => {
        try {
          await deployed.stop({ graceMs: options?.graceMs ?? 5_000 });
        } catch (error) {
          // Its end was not reported (a paused or unreachable sandbox): the process could come back
          // beside its restart, under the same agent id. Its sandbox goes, so it cannot, and a restart gets a new one.
          logger.warn({ agent: agentId, sandboxId: sandbox.sandboxId, err: errorMessage(error) }, 'agent did not stop; killing its sandbox so that it cannot come back');
          this.#sandboxes.delete(sandbox.sandboxId);
          await sandbox.kill().catch((killError: unknown) => logger.warn({ agent: agentId, sandboxId: sandbox.sandboxId, err: errorMessage(killError) }, 'could not kill the sandbox of an agent that did not stop'));
        }
      },
      stderrTail: () => deployed.stderrTail(),
      placementAlive: () => sandbox.isRunning().catch(() => false),
      inspect: () => inspectSandbox(this.#options.provider, sandbox.sandboxId),
      detach,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#renewal !== undefined) this.#options.clock.clearTimeout(this.#renewal);
    const sandboxes = [...this.#sandboxes.values()];
    this.#sandboxes.clear();
    await Promise.all(sandboxes.map((sandbox) => sandbox.kill().catch(() => undefined)));
  }

  /** Renews every sandbox's lifetime now and then; one that is gone is forgotten (the fleet sees its agent exit). */
  #scheduleRenewal(): void {
    if (this.#closed) return;
    this.#renewal = this.#options.clock.setTimeout(() => {
      void Promise.all(
        [...this.#sandboxes].map(([id, sandbox]) =>
          sandbox.setTimeout(this.#lifetimeMs).catch((error: unknown) => {
            this.#options.logger.warn({ sandboxId: id, err: errorMessage(error) }, 'could not renew an agent sandbox; it is gone or the provider is unreachable');
          }),
        ),
      ).finally(() => this.#scheduleRenewal());
    }, this.#renewEveryMs);
  }
}

/** The agent settings a process was started with (its env), if it is an agent process. */
function configIn(envs: Readonly<Record<string, string>>): AgentConfig | undefined {
  const text = envs[AGENT_ENV.config];
  if (text === undefined) return undefined;
  try {
    const parsed = agentConfigSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `found` are the settings `expected` names, but for how the process was started (a restart's replay first, a standby since promoted). */
function sameSettings(found: AgentConfig | undefined, expected: AgentConfig): boolean {
  if (found === undefined) return false;
  return isDeepStrictEqual({ ...found, replayFirst: false, standby: false }, { ...expected, replayFirst: false, standby: false });
}
