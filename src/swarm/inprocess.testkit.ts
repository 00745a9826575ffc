// Test helper (not production code): agents of a swarm run in this process on an in-memory bus and
// the test's clock, so a deployment's control loop is unit-tested without sandboxes or a broker.
import { type AgentConfig, AgentRuntime, swarmRegistry } from '../agent/index.js';
import {
  type Bus,
  type Envelope,
  HeartbeatMessage,
  type MemoryBroker,
  type MemoryBus,
  type MessageDraft,
  type MessageHandler,
  type RequestHandler,
  type Subscription,
  agentConnectionId,
  createMemoryBus,
  swarmTopics,
} from '../bus/index.js';
import { type Clock, InvalidInputError, type Logger, silentLogger } from '../core/index.js';
import type { SandboxObservation } from '../health/index.js';
import type { AgentSignal } from '../sandbox/index.js';
import type { AdoptionCandidate, AgentLauncher, AgentProcessExit, LaunchRequest, LaunchedAgent } from './launcher.js';

/** Options of {@link InProcessLauncher}. */
export interface InProcessLauncherOptions {
  readonly broker: MemoryBroker;
  /** Every agent's clock (the test's manual clock). */
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Whether agents outlive the control plane that launched them, for the next to adopt (as on an external cloud and broker). @default false */
  readonly handOver?: boolean;
}

/**
 * Starts each agent as an {@link AgentRuntime} in this process, on its own {@link MemoryBus} with the
 * agent's publishing rights and its last will, as `src/agent/main.ts` starts one in a sandbox.
 * Signals act as on a process: SIGKILL ends the bus abruptly (its will is published) and the runtime
 * with it; SIGTERM stops it cleanly; SIGSTOP freezes it (nothing in, nothing out, its timers' messages
 * held) until SIGCONT.
 */
export class InProcessLauncher implements AgentLauncher {
  readonly #options: InProcessLauncherOptions;
  readonly #running = new Set<InProcessAgent>();
  /** Placements the control plane can no longer reach (a partition): their processes cannot be stopped. */
  readonly #cutOff = new Set<string>();
  /** Placements whose "sandbox" is paused (see {@link pauseSandbox}). */
  readonly #paused = new Set<string>();
  #launches = 0;

  constructor(options: InProcessLauncherOptions) {
    this.#options = options;
  }

  /** How many agent processes were started (restarts included). */
  get launches(): number {
    return this.#launches;
  }

  /**
   * Cuts agent process `placement` off from whoever would stop it, as a sandbox behind a network
   * partition is: `stop` does nothing, and the process goes on (frozen, if it was).
   */
  cutOff(placement: string): void {
    this.#cutOff.add(placement);
  }

  /**
   * Pauses the "sandbox" of the process at `placement`, as the SDK's pause does: the process is
   * frozen and the provider reports its sandbox `paused` until {@link resumeSandbox}.
   */
  async pauseSandbox(placement: string): Promise<void> {
    this.#paused.add(placement);
    await this.signal(placement, 'SIGSTOP');
  }

  async resumeSandbox(placement: string): Promise<void> {
    this.#paused.delete(placement);
    await this.signal(placement, 'SIGCONT');
  }

  /** Sends `signal` to the process at `placement`, current or not (a replaced one that was cut off). */
  async signal(placement: string, signal: AgentSignal): Promise<boolean> {
    const agent = [...this.#running].find((running) => running.placement === placement);
    return agent === undefined ? false : agent.signal(signal);
  }

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  async launch(request: LaunchRequest): Promise<LaunchedAgent> {
    const { config } = request;
    const { broker, clock } = this.#options;
    const logger = this.#options.logger ?? silentLogger;
    this.#launches += 1;
    const bus = createMemoryBus({
      broker,
      agent: { swarmId: config.swarm, agentId: config.agentId, requestsTo: config.workers.map((worker) => worker.id) },
      connectionId: agentConnectionId(config.swarm, config.agentId, config.epoch),
      clock,
      registry: swarmRegistry,
      logger,
      will: { topic: swarmTopics(config.swarm).heartbeat(config.agentId), message: HeartbeatMessage.draft({ seq: 0, status: 'lost', epoch: config.epoch }) },
    });
    const freezable = new FreezableBus(bus);
    const runtime = new AgentRuntime({ bus: freezable, config, clock, logger });
    const agent = this.#track(new InProcessAgent(`in-process-${config.agentId}-${this.#launches}`, this.#launches, config, runtime, bus, freezable, (placement) => this.#cutOff.has(placement), (placement) => this.#paused.has(placement)));
    await runtime.start();
    return agent;
  }

  /** Adopts the released agents the candidates name (placement and epoch); the other released ones are killed. */
  async adopt(candidates: readonly AdoptionCandidate[]): Promise<ReadonlyArray<LaunchedAgent | string> | null> {
    if (this.#options.handOver !== true) return null;
    const released = [...this.#running].filter((agent) => agent.detached);
    const adopted = candidates.map((candidate) => {
      const found = released.find((agent) => agent.placement === candidate.placement && agent.config.agentId === candidate.agent.id && agent.config.epoch === candidate.config.epoch);
      if (found === undefined) return `no process of it at epoch ${candidate.config.epoch} runs at ${candidate.placement}`;
      this.#running.delete(found);
      return this.#track(found.adopted());
    });
    await Promise.all(released.filter((agent) => this.#running.has(agent)).map((agent) => agent.kill()));
    return adopted;
  }

  release(): Promise<boolean> {
    if (this.#options.handOver !== true) return Promise.resolve(false);
    for (const agent of this.#running) agent.detach();
    return Promise.resolve(true);
  }

  /** Ends every agent it launched or adopted that was not released. */
  async close(): Promise<void> {
    await Promise.all([...this.#running].filter((agent) => !agent.detached).map((agent) => agent.kill()));
  }

  #track(agent: InProcessAgent): InProcessAgent {
    this.#running.add(agent);
    void agent.runtime.done.then(() => this.#running.delete(agent));
    return agent;
  }
}

/** One in-process agent, as the fleet sees a process. */
class InProcessAgent implements LaunchedAgent {
  readonly timings = { sandboxMs: 0, writeMs: 0, startMs: 0 };
  readonly bundleWritten = false;
  readonly exited: Promise<AgentProcessExit>;
  #ended = false;
  #detached = false;

  constructor(
    readonly placement: string,
    readonly pid: number,
    readonly config: AgentConfig,
    readonly runtime: AgentRuntime,
    private readonly bus: MemoryBus,
    private readonly freezable: FreezableBus,
    private readonly isCutOff: (placement: string) => boolean,
    private readonly isPaused: (placement: string) => boolean,
  ) {
    this.exited = new Promise((resolve) => {
      void runtime.done.then((exit) => {
        this.#ended = true;
        if (!this.#detached) resolve({ exitCode: exit.exitCode });
      });
    });
  }

  get detached(): boolean {
    return this.#detached;
  }

  detach(): void {
    this.#detached = true;
  }

  /** The same process, as the control plane that adopts it sees it. */
  adopted(): InProcessAgent {
    return new InProcessAgent(this.placement, this.pid, this.config, this.runtime, this.bus, this.freezable, this.isCutOff, this.isPaused);
  }

  kill(): Promise<boolean> {
    return this.signal('SIGKILL');
  }

  async signal(signal: AgentSignal): Promise<boolean> {
    if (this.#ended) return false;
    switch (signal) {
      case 'SIGKILL':
        // The connection drops first (the will goes out), then the runtime ends without a word.
        this.freezable.drop();
        await this.bus.crash();
        void this.runtime.stop({ reason: 'signal', detail: 'SIGKILL', exitCode: -1 });
        return true;
      case 'SIGTERM':
        void this.runtime.stop({ reason: 'signal', detail: 'SIGTERM', exitCode: 0 });
        return true;
      case 'SIGSTOP':
        this.freezable.freeze();
        return true;
      case 'SIGCONT':
        this.freezable.thaw();
        return true;
      default:
        throw new InvalidInputError('signal', `must be SIGKILL, SIGTERM, SIGSTOP or SIGCONT, got ${String(signal)}`);
    }
  }

  async stop(): Promise<void> {
    if (this.#ended || this.isCutOff(this.placement)) return;
    this.freezable.thaw();
    await this.runtime.stop({ reason: 'signal', detail: 'SIGTERM', exitCode: 0 });
  }

  stderrTail(): string[] {
    return [];
  }

  placementAlive(): Promise<boolean> {
    return Promise.resolve(false);
  }

  /** In this process there is no sandbox: running until the agent ends (paused while the test says so), then gone. */
  inspect(): Promise<SandboxObservation> {
    return Promise.resolve({ state: this.#ended ? 'gone' : this.isPaused(this.placement) ? 'paused' : 'running', resources: null });
  }
}

/**
 * A bus that can be frozen as a stopped process is: while frozen, what it would receive and what it
 * would send wait (in order) until it thaws; dropped when the process is killed.
 */
class FreezableBus implements Bus {
  #frozen = false;
  #held: Array<() => void> = [];

  constructor(private readonly inner: Bus) {}

  get clientId(): string {
    return this.inner.clientId;
  }

  freeze(): void {
    this.#frozen = true;
  }

  thaw(): void {
    this.#frozen = false;
    for (const action of this.#held.splice(0)) action();
  }

  drop(): void {
    this.#frozen = true;
    this.#held = [];
  }

  /** Runs `action` now, or once thawed. */
  #when<T>(action: () => Promise<T>): Promise<T> {
    if (!this.#frozen) return action();
    return new Promise<T>((resolve, reject) => this.#held.push(() => void action().then(resolve, reject)));
  }

  publish(topic: string, message: MessageDraft, options?: Parameters<Bus['publish']>[2]): Promise<Envelope> {
    return this.#when(() => this.inner.publish(topic, message, options));
  }

  subscribe(filter: string, handler: MessageHandler, options?: Parameters<Bus['subscribe']>[2]): Promise<Subscription> {
    return this.inner.subscribe(filter, (envelope, delivery) => this.#when(async () => handler(envelope, delivery)), options);
  }

  shareSubscribe(group: string, filter: string, handler: MessageHandler, options?: Parameters<Bus['shareSubscribe']>[3]): Promise<Subscription> {
    return this.inner.shareSubscribe(group, filter, (envelope, delivery) => this.#when(async () => handler(envelope, delivery)), options);
  }

  request(topic: string, message: MessageDraft, options?: Parameters<Bus['request']>[2]): Promise<Envelope> {
    return this.#when(() => this.inner.request(topic, message, options));
  }

  reply(request: Envelope, message: MessageDraft, options?: Parameters<Bus['reply']>[2]): Promise<Envelope> {
    return this.#when(() => this.inner.reply(request, message, options));
  }

  serve(filter: string, handler: RequestHandler, options?: Parameters<Bus['serve']>[2]): Promise<Subscription> {
    return this.inner.serve(filter, (request, delivery) => this.#when(async () => handler(request, delivery)), options);
  }

  stats(): ReturnType<Bus['stats']> {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
