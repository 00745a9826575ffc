import { join } from 'node:path';
import { type Clock, TradeswarmError } from '../core/index.js';
import { ControlPlaneClient, type DeploymentViewAnswer, type EventAnswer } from '../controlplane/index.js';
import { LOCAL_CLOUD_RATE_LIMIT, type SandboxConnection, type SandboxProvider, createSandboxProvider } from '../sandbox/index.js';
import { type RunningProcess, type TradeswarmCommand, startProcess } from './processes.js';

/** How long a `tradeswarm` process may take to say it is ready (serve loads TypeScript, opens its store, resumes deployments). */
const READY_TIMEOUT_MS = 120_000;

/** The settings `tradeswarm cloud serve` prints, which the SDK (and serve's --cloud-url) need. */
export interface CloudSettings {
  readonly connection: Required<Pick<SandboxConnection, 'apiUrl' | 'sandboxUrl' | 'apiKey'>>;
}

/** `tradeswarm cloud serve` in its own process: agents' sandboxes live there, reachable from outside through the SDK. */
export async function startCloud(command: TradeswarmCommand, logDir: string): Promise<{ readonly process: RunningProcess; readonly settings: CloudSettings }> {
  const process = await startProcess(command, {
    args: ['cloud', 'serve', '--port', '0'],
    env: { LOG_LEVEL: 'warn' },
    ready: /export E2B_API_URL=(\S+)\s+export E2B_SANDBOX_URL=(\S+)\s+export E2B_API_KEY=(\S+)/,
    readyTimeoutMs: READY_TIMEOUT_MS,
    logFile: join(logDir, 'cloud.log'),
  });
  const [, apiUrl, sandboxUrl, apiKey] = process.ready as unknown as [string, string, string, string];
  return { process, settings: { connection: { apiUrl, sandboxUrl, apiKey } } };
}

/** Options of {@link Lab}. */
export interface LabOptions {
  readonly command: TradeswarmCommand;
  readonly cloud: CloudSettings;
  /** The store of every serve of this lab: a data dir (PGlite) or a PostgreSQL URL. */
  readonly store: { readonly dataDir: string } | { readonly databaseUrl: string };
  /** Where every process's output goes, one file each. */
  readonly logDir: string;
  readonly clock: Clock;
}

/**
 * One deployment's surroundings, each piece in a process of its own so that it can fail alone: a
 * broker (`tradeswarm broker`), the control plane (`tradeswarm serve --broker … --cloud-url …` on one
 * store), and the SDK's view of the cloud the agents run in. Faults are injected through these, from
 * outside, as an operator or a failure would.
 */
export class Lab {
  readonly #options: LabOptions;
  readonly provider: SandboxProvider;
  #broker: RunningProcess | undefined;
  #brokerPort = 0;
  #brokerUrl = '';
  #serve: RunningProcess | undefined;
  #client: ControlPlaneClient | undefined;
  #starts = 0;

  constructor(options: LabOptions) {
    this.#options = options;
    this.provider = createSandboxProvider({ connection: options.cloud.connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
  }

  /** The control plane's API, as it answers now. */
  get client(): ControlPlaneClient {
    if (this.#client === undefined) throw new TradeswarmError('serve is not running: start the lab first');
    return this.#client;
  }

  /** Starts the broker (on a port the OS picks, kept for its restarts), then serve on it. */
  async start(): Promise<void> {
    await this.startBroker();
    await this.startServe();
  }

  /** Starts `tradeswarm broker`: on a port the OS picks the first time, on the same port after. */
  async startBroker(): Promise<void> {
    this.#starts += 1;
    this.#broker = await startProcess(this.#options.command, {
      args: ['broker', '--port', String(this.#brokerPort)],
      env: { LOG_LEVEL: 'warn' },
      ready: /listening on (mqtt:\/\/\S+:(\d+))/,
      readyTimeoutMs: READY_TIMEOUT_MS,
      logFile: join(this.#options.logDir, `broker-${this.#starts}.log`),
    });
    this.#brokerUrl = this.#broker.ready[1] as string;
    this.#brokerPort = Number(this.#broker.ready[2]);
  }

  /** Kills the broker's process (SIGKILL: its clients see their connections drop). */
  async killBroker(): Promise<void> {
    await this.#broker?.kill('SIGKILL');
  }

  /** Starts `tradeswarm serve` on the lab's store, broker and cloud; resolves once it listens. */
  async startServe(): Promise<void> {
    this.#starts += 1;
    const { store, cloud } = this.#options;
    this.#serve = await startProcess(this.#options.command, {
      args: ['serve', '--port', '0', ...('dataDir' in store ? ['--data-dir', store.dataDir] : ['--database-url', store.databaseUrl]), '--broker', this.#brokerUrl, '--cloud-url', cloud.connection.apiUrl],
      env: { LOG_LEVEL: 'warn', E2B_API_KEY: cloud.connection.apiKey },
      ready: /listening on (http:\/\/\S+)/,
      readyTimeoutMs: READY_TIMEOUT_MS,
      logFile: join(this.#options.logDir, `serve-${this.#starts}.log`),
    });
    this.#client = new ControlPlaneClient({ url: this.#serve.ready[1] as string });
  }

  /** SIGKILLs serve, as a crash would. */
  async killServe(): Promise<void> {
    await this.#serve?.kill('SIGKILL');
  }

  /** Every event of deployment `ref` after event `after`, oldest first (all pages). */
  async eventsAfter(ref: string, after: number): Promise<EventAnswer[]> {
    const events: EventAnswer[] = [];
    for (let cursor = after; ; ) {
      const page = await this.client.events(ref, { after: cursor, limit: 1_000 });
      events.push(...page);
      if (page.length < 1_000) return events;
      cursor = (page[page.length - 1] as EventAnswer).id;
    }
  }

  /** The deployment as `ps` shows it, or `undefined` while serve does not answer. */
  async view(ref: string): Promise<DeploymentViewAnswer | undefined> {
    try {
      return (await this.client.list()).find((view) => view.id === ref || view.name === ref);
    } catch {
      return undefined;
    }
  }

  /**
   * The sandbox an agent of deployment `swarmId` runs in now: among the running sandboxes the SDK
   * finds by their metadata (swarm, agent), the one the control plane names as the agent's placement
   * (a hot standby's sandbox has the same metadata), else the newest.
   */
  async sandboxOf(swarmId: string, agentId: string): Promise<string> {
    const listed = (await this.provider.list({ swarm: swarmId, agent: agentId })).filter((info) => info.state === 'running');
    const placement = (await this.client.status(swarmId)).agentList.find((agent) => agent.id === agentId)?.placement;
    const named = listed.find((info) => info.sandboxId === placement);
    const chosen = named ?? [...listed].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime())[0];
    if (chosen === undefined) throw new TradeswarmError(`no running sandbox has the metadata swarm=${swarmId} agent=${agentId}; the agent is not deployed (yet)`);
    return chosen.sandboxId;
  }

  /** Stops serve cleanly (SIGTERM) and the broker. */
  async close(): Promise<void> {
    await this.#serve?.kill('SIGTERM');
    await this.#broker?.kill('SIGTERM');
  }
}
