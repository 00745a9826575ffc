import { join } from 'node:path';
import { type Clock, InvalidInputError, TradeswarmError } from '../core/index.js';
import { ControlPlaneClient, type DeploymentViewAnswer, type EventAnswer } from '../client/index.js';
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

/**
 * `tradeswarm broker` in its own process, on `port` (0: one the OS picks); resolves once it listens,
 * with its URL and port (the port to start it on again, so that its clients find it).
 */
export async function startBroker(command: TradeswarmCommand, options: { readonly port: number; readonly logFile: string }): Promise<{ readonly process: RunningProcess; readonly url: string; readonly port: number }> {
  const process = await startProcess(command, {
    args: ['broker', '--port', String(options.port)],
    env: { LOG_LEVEL: 'warn' },
    ready: /listening on (mqtt:\/\/\S+:(\d+))/,
    readyTimeoutMs: READY_TIMEOUT_MS,
    logFile: options.logFile,
  });
  return { process, url: process.ready[1] as string, port: Number(process.ready[2]) };
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
  /**
   * Serves started on the store, the first leading and the others following (PostgreSQL only: a
   * follower takes the deployments over when the leader dies). @default 1
   */
  readonly serves?: number;
}

/** One `tradeswarm serve` of the lab, and its API. */
interface Serve {
  readonly process: RunningProcess;
  readonly client: ControlPlaneClient;
}

/**
 * One deployment's surroundings, each piece in a process of its own so that it can fail alone: a
 * broker (`tradeswarm broker`), the control plane (`tradeswarm serve --broker … --cloud-url …` on one
 * store; with `serves: 2`, a leader and a follower on one PostgreSQL), and the SDK's view of the cloud
 * the agents run in. Faults are injected through these, from outside, as an operator or a failure would.
 */
export class Lab {
  readonly #options: LabOptions;
  readonly provider: SandboxProvider;
  #broker: RunningProcess | undefined;
  #brokerPort = 0;
  #brokerUrl = '';
  /** Every serve started and not killed; `#leader` is the one that led when last asked. */
  readonly #serves: Serve[] = [];
  #leader: Serve | undefined;
  #starts = 0;

  /** @throws InvalidInputError naming `serves` when it is not 1 or 2, or 2 without PostgreSQL. */
  constructor(options: LabOptions) {
    const serves = options.serves ?? 1;
    if (serves !== 1 && serves !== 2) throw new InvalidInputError('serves', `must be 1 or 2, got ${serves}`);
    if (serves === 2 && !('databaseUrl' in options.store)) throw new InvalidInputError('serves', 'two serves share their state through PostgreSQL: give the lab a databaseUrl');
    this.#options = options;
    this.provider = createSandboxProvider({ connection: options.cloud.connection, rateLimit: LOCAL_CLOUD_RATE_LIMIT });
  }

  /** The API of the serve that leads (as last found: see {@link findLeader}). */
  get client(): ControlPlaneClient {
    if (this.#leader === undefined) throw new TradeswarmError('no serve of the lab leads: start the lab first');
    return this.#leader.client;
  }

  /** Starts the broker (on a port the OS picks, kept for its restarts), then the serves on it: the first leads before the next starts. */
  async start(): Promise<void> {
    await this.startBroker();
    await this.startServe();
    if (!(await this.untilLeader(READY_TIMEOUT_MS))) throw new TradeswarmError(`the lab's first serve did not lead within ${READY_TIMEOUT_MS} ms; see ${this.#options.logDir}`);
    for (let more = (this.#options.serves ?? 1) - 1; more > 0; more--) await this.startServe();
  }

  /** Starts `tradeswarm broker`: on a port the OS picks the first time, on the same port after. */
  async startBroker(): Promise<void> {
    this.#starts += 1;
    const broker = await startBroker(this.#options.command, { port: this.#brokerPort, logFile: join(this.#options.logDir, `broker-${this.#starts}.log`) });
    this.#broker = broker.process;
    this.#brokerUrl = broker.url;
    this.#brokerPort = broker.port;
  }

  /** Kills the broker's process (SIGKILL: its clients see their connections drop). */
  async killBroker(): Promise<void> {
    await this.#broker?.kill('SIGKILL');
  }

  /** Starts `tradeswarm serve` on the lab's store, broker and cloud; resolves once it listens (leading or following). */
  async startServe(): Promise<void> {
    this.#starts += 1;
    const { store, cloud } = this.#options;
    const process = await startProcess(this.#options.command, {
      args: ['serve', '--port', '0', ...('dataDir' in store ? ['--data-dir', store.dataDir] : ['--database-url', store.databaseUrl]), '--broker', this.#brokerUrl, '--cloud-url', cloud.connection.apiUrl],
      env: { LOG_LEVEL: 'warn', E2B_API_KEY: cloud.connection.apiKey },
      ready: /listening on (http:\/\/\S+)/,
      readyTimeoutMs: READY_TIMEOUT_MS,
      logFile: join(this.#options.logDir, `serve-${this.#starts}.log`),
    });
    this.#serves.push({ process, client: new ControlPlaneClient({ url: process.ready[1] as string }) });
    // The only one (a single serve, or the first after the leader died) is asked first.
    this.#leader ??= this.#serves[0];
  }

  /** SIGKILLs the serve that leads, as a crash would; the lab has no leader until {@link findLeader} finds one. */
  async killServe(): Promise<void> {
    const leader = this.#leader;
    if (leader === undefined) return;
    this.#serves.splice(this.#serves.indexOf(leader), 1);
    this.#leader = undefined;
    await leader.process.kill('SIGKILL');
  }

  /** The serves running now (the leader and its followers). */
  get serveCount(): number {
    return this.#serves.length;
  }

  /**
   * Asks every running serve's `/healthz` who leads, and makes that one the lab's {@link client}.
   * With one serve on a data dir (no election), that serve leads once it answers.
   * @returns whether one leads.
   */
  async findLeader(): Promise<boolean> {
    for (const serve of this.#serves) {
      const health = await serve.client.health().catch(() => undefined);
      if (health !== undefined && (health.role ?? 'leader') === 'leader') {
        this.#leader = serve;
        return true;
      }
    }
    return false;
  }

  /** Waits until a serve leads (see {@link findLeader}), asking every `everyMs`, up to `timeoutMs`; @returns whether one does. */
  async untilLeader(timeoutMs: number, everyMs = 20): Promise<boolean> {
    const { clock } = this.#options;
    const deadline = clock.now() + timeoutMs;
    while (!(await this.findLeader())) {
      if (clock.now() > deadline) return false;
      await new Promise<void>((resolve) => clock.setTimeout(resolve, everyMs));
    }
    return true;
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

  /** The deployment as `ps` shows it, or `undefined` while no serve leads (the lab then looks for the one that does, for the next call). */
  async view(ref: string): Promise<DeploymentViewAnswer | undefined> {
    try {
      if (this.#leader === undefined) throw new TradeswarmError('no serve leads');
      return (await this.#leader.client.list()).find((view) => view.id === ref || view.name === ref);
    } catch {
      await this.findLeader();
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

  /** Stops the serves cleanly (SIGTERM; followers first, so none takes over from the leader) and the broker. */
  async close(): Promise<void> {
    const followers = this.#serves.filter((serve) => serve !== this.#leader);
    await Promise.all(followers.map((serve) => serve.process.kill('SIGTERM')));
    await this.#leader?.process.kill('SIGTERM');
    await this.#broker?.kill('SIGTERM');
  }
}
