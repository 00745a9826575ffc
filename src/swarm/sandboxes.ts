import { AGENT_ENV, type AgentConfig } from '../agent/index.js';
import { type Clock, InvalidInputError, type Logger, type TimerHandle, errorMessage } from '../core/index.js';
import { type AgentBundle, type Sandbox, type SandboxProvider, SandboxOwner, deployAgent, inspectSandbox } from '../sandbox/index.js';
import type { AgentLauncher, LaunchRequest, LaunchedAgent } from './launcher.js';

/** The owner tag of every agent sandbox: the next run cleans what a crashed one left (see SandboxOwner). */
export const AGENT_SANDBOX_OWNER = 'tradeswarm-swarm';

/** Options of {@link SandboxLauncher}. */
export interface SandboxLauncherOptions {
  readonly provider: SandboxProvider;
  /** The template agents' sandboxes are made from. */
  readonly template: string;
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
}

/**
 * Starts each agent in a sandbox of its own through the `e2b` SDK ({@link SandboxProvider}): the
 * sandbox is tagged with its owner, swarm and agent, the bundle is written unless the template holds
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
    await this.#owner.killLeaked(this.#options.provider, { logger: this.#options.logger });
    this.#scheduleRenewal();
  }

  /** The sandbox an agent runs in (to inspect it through the SDK), by its placement. */
  sandboxOf(placement: string): Sandbox | undefined {
    return this.#sandboxes.get(placement);
  }

  async launch(request: LaunchRequest): Promise<LaunchedAgent> {
    const { provider, template, swarmId, bundle, logger } = this.#options;
    const { agent, config } = request;
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
        : await provider.create({ template, timeoutMs: this.#lifetimeMs, metadata: { ...this.#owner.metadata, tradeswarm: 'swarm-agent', swarm: swarmId, agent: agent.id } });
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
    return {
      placement: sandbox.sandboxId,
      pid: deployed.pid,
      timings: { sandboxMs, writeMs: deployed.timings.writeMs, startMs: deployed.timings.startMs },
      bundleWritten: deployed.bundleWritten,
      exited: deployed.exited.then((exit) => ({ exitCode: exit.exitCode })),
      signal: (signal) => deployed.signal(signal),
      stop: async (options) => {
        try {
          await deployed.stop({ graceMs: options?.graceMs ?? 5_000 });
        } catch (error) {
          // Its end was not reported (a paused or unreachable sandbox): the process could come back
          // beside its restart, under the same agent id. Its sandbox goes, so it cannot, and a restart gets a new one.
          logger.warn({ agent: agent.id, sandboxId: sandbox.sandboxId, err: errorMessage(error) }, 'agent did not stop; killing its sandbox so that it cannot come back');
          this.#sandboxes.delete(sandbox.sandboxId);
          await sandbox.kill().catch((killError: unknown) => logger.warn({ agent: agent.id, sandboxId: sandbox.sandboxId, err: errorMessage(killError) }, 'could not kill the sandbox of an agent that did not stop'));
        }
      },
      stderrTail: () => deployed.stderrTail(),
      placementAlive: () => sandbox.isRunning().catch(() => false),
      inspect: () => inspectSandbox(this.#options.provider, sandbox.sandboxId),
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
