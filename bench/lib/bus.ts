// Bus workloads for benchmarks: one hop (a publisher and a subscriber) through the Bus or through two
// bare mqtt.js clients, timed one message at a time or pipelined, request/reply through
// bus.serve + bus.request, and a lockstep swarm's traffic (steps, signals, an order round trip and a
// decision per step). Every run gets its own agents, so a late message of an earlier run cannot
// be counted in a later one. Each client is an agent with its own credentials on the embedded broker
// (or its rights on the in-memory one), so it publishes only on its own topics: a hop's bars go on
// the publisher's signal topic, and a request goes to the serving agent's inbox.
import { connect as connectTcp } from 'node:net';
import { type IClientOptions, type MqttClient, connectAsync } from 'mqtt';
import { z } from 'zod';
import { randomId, silentLogger } from '../../src/core/index.js';
import {
  type BrokerCredentials,
  type Bus,
  type EmbeddedBroker,
  type MemoryBroker,
  type MqttBus,
  type QoS,
  MessageRegistry,
  connectBus,
  createMemoryBus,
  defineMessage,
  swarmTopics,
} from '../../src/bus/index.js';

/** A market bar on the bus: the benchmarks' payload (a swarm sends bars inside its steps). */
export const BarMessage = defineMessage(
  'bar',
  z.object({
    symbol: z.string().min(1).max(32),
    timeMs: z.int().nonnegative(),
    open: z.number().positive(),
    high: z.number().positive(),
    low: z.number().positive(),
    close: z.number().positive(),
    volume: z.number().nonnegative(),
  }),
);

const barSchema = BarMessage.schema;

/** One step of the lockstep workload: a bar of each symbol, as the control plane publishes it. */
const BenchStepMessage = defineMessage('bench.step', z.object({ index: z.int().nonnegative(), bars: z.array(barSchema) }));
const intentSchema = z.object({ symbol: z.string(), side: z.enum(['buy', 'sell', 'hold']), strength: z.number() });
/** An agent's answer to a step. */
const BenchSignalMessage = defineMessage('bench.signal', z.object({ index: z.int().nonnegative(), intents: z.array(intentSchema) }));
/** The decider's orders (a request to the venue), and the venue's fills (its reply). */
const BenchOrdersMessage = defineMessage('bench.orders', z.object({ index: z.int().nonnegative(), orders: z.array(intentSchema) }));
const BenchFillsMessage = defineMessage('bench.fills', z.object({ index: z.int().nonnegative(), filled: z.int().nonnegative() }));
/** What the decider decided, which closes the step. */
const BenchDecisionMessage = defineMessage('bench.decision', z.object({ index: z.int().nonnegative(), orders: z.int().nonnegative() }));

/** The built-in message types, {@link BarMessage} and the lockstep workload's. */
export const BENCH_REGISTRY = MessageRegistry.create(BarMessage, BenchStepMessage, BenchSignalMessage, BenchOrdersMessage, BenchFillsMessage, BenchDecisionMessage);

const FIRST_BAR_MS = Date.UTC(2024, 0, 2, 14, 30);
const MINUTE_MS = 60_000;
const cents = (value: number): number => Math.round(value * 100) / 100;

/** Minute bar number `seq` of a made-up series; its `timeMs` tells the receiver `seq` (see {@link seqOf}). */
export function barFor(seq: number, symbol: string): z.input<typeof BarMessage.schema> {
  const mid = 180 + 5 * Math.sin(seq / 50);
  return {
    symbol,
    timeMs: FIRST_BAR_MS + seq * MINUTE_MS,
    open: cents(mid - 0.08),
    high: cents(mid + 0.42),
    low: cents(mid - 0.37),
    close: cents(mid + 0.11),
    volume: 10_000 + (seq % 997) * 13,
  };
}

/** The sequence number {@link barFor} put into a bar. */
export function seqOf(bar: { readonly timeMs: number }): number {
  return (bar.timeMs - FIRST_BAR_MS) / MINUTE_MS;
}

/** A broker the workloads run on. */
export interface BrokerTarget {
  /** As shown in row names: `embedded Aedes`, `Mosquitto`. */
  readonly name: string;
  readonly url: string;
  /**
   * Credentials for one agent of `swarmId`, allowed to send requests to the inboxes of `requestsTo`;
   * `undefined` on an anonymous broker.
   */
  credentials(swarmId: string, agentId: string, requestsTo?: readonly string[]): BrokerCredentials | undefined;
  /** The control plane's credentials; `undefined` on an anonymous broker. */
  readonly adminCredentials?: BrokerCredentials;
}

/** Where buses come from, whatever carries their messages: an MQTT broker ({@link busTargetOf}) or memory ({@link memoryTarget}). */
export interface BusTarget {
  readonly name: string;
  /** A Bus for agent `agentId` of `swarmId` (its client id), allowed to send requests to `requestsTo`, knowing {@link BENCH_REGISTRY}. */
  agent(swarmId: string, agentId: string, requestsTo?: readonly string[]): Promise<Bus>;
  /** A Bus with the control plane's rights (every topic), client id `clientId`. */
  controlPlane(clientId: string): Promise<Bus>;
}

/** The embedded broker, each client connecting with credentials issued for it. */
export function embeddedTarget(broker: EmbeddedBroker): BrokerTarget {
  return {
    name: 'embedded Aedes',
    url: broker.url,
    credentials: (swarmId, agentId, requestsTo = []) => broker.issueCredentials({ swarmId, agentId, requestsTo }),
    adminCredentials: broker.adminCredentials,
  };
}

/** Buses on an MQTT broker (MqttBus). */
export function busTargetOf(target: BrokerTarget): BusTarget {
  return {
    name: target.name,
    agent: (swarmId, agentId, requestsTo = []) => openBus(target, swarmId, agentId, requestsTo),
    controlPlane: (clientId) => connectBus({ url: target.url, ...target.adminCredentials, clientId, registry: BENCH_REGISTRY, logger: silentLogger }),
  };
}

/** Buses on an in-memory broker (MemoryBus), each agent with its rights there. */
export function memoryTarget(broker: MemoryBroker): BusTarget {
  const open = (options: Partial<Parameters<typeof createMemoryBus>[0]>): Promise<Bus> =>
    Promise.resolve(createMemoryBus({ broker, registry: BENCH_REGISTRY, logger: silentLogger, ...options }));
  return {
    name: 'memory',
    agent: (swarmId, agentId, requestsTo = []) => open({ agent: { swarmId, agentId, requestsTo } }),
    controlPlane: (clientId) => open({ clientId }),
  };
}

function asBusTarget(target: BrokerTarget | BusTarget): BusTarget {
  return 'agent' in target ? target : busTargetOf(target);
}

/** A broker that lets anyone in. */
export function anonymousTarget(name: string, url: string): BrokerTarget {
  return { name, url, credentials: () => undefined };
}

/** Whether a TCP server listens at `host:port` (connects once, then closes). */
export function probeTcp(host: string, port: number, timeoutMs = 1000): Promise<{ available: boolean; detail: string }> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host, port });
    const finish = (available: boolean, detail: string): void => {
      socket.destroy();
      resolve({ available, detail });
    };
    socket.setTimeout(timeoutMs, () => finish(false, `no answer within ${timeoutMs} ms`));
    socket.once('connect', () => finish(true, 'reachable'));
    socket.once('error', (error) => finish(false, error.message));
  });
}

/** A Bus on `target` for agent `agentId` of `swarmId` (its client id, as agents connect), knowing {@link BarMessage}. */
export function openBus(target: BrokerTarget, swarmId: string, agentId: string, requestsTo: readonly string[] = []): Promise<MqttBus> {
  return connectBus({ url: target.url, ...target.credentials(swarmId, agentId, requestsTo), clientId: agentId, registry: BENCH_REGISTRY, logger: silentLogger });
}

/** Called by a hop with the sequence number of each bar that reached the subscriber. */
export type Arrive = (seq: number) => void;

/** A publisher and a subscriber on one topic. */
export interface Hop {
  /** Publishes bar `seq`; resolves as the publisher's client does (written at QoS 0, acknowledged at QoS 1). */
  send(seq: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Connects a {@link Hop} whose subscriber reports arrivals to `arrive`. */
export type OpenHop = (arrive: Arrive) => Promise<Hop>;

/** Two Buses: bars validated and wrapped in envelopes, decoded and validated again on arrival. */
export function busHop(target: BrokerTarget | BusTarget, swarmId: string, qos: QoS): OpenHop {
  const buses = asBusTarget(target);
  return async (arrive) => {
    const symbol = `SYM-${randomId(6)}`;
    const publisherId = `publisher-${randomId(6)}`;
    const topic = swarmTopics(swarmId).signal(publisherId);
    const publisher = await buses.agent(swarmId, publisherId);
    const subscriber = await buses.agent(swarmId, `subscriber-${randomId(6)}`).catch(async (error: unknown) => {
      await publisher.close();
      throw error;
    });
    const close = async (): Promise<void> => {
      await Promise.all([publisher.close(), subscriber.close()]);
    };
    try {
      await subscriber.subscribe(topic, (envelope) => {
        if (BarMessage.is(envelope)) arrive(seqOf(envelope.payload));
      }, { qos });
    } catch (error) {
      await close();
      throw error;
    }
    return { send: (seq) => publisher.publish(topic, BarMessage.draft(barFor(seq, symbol)), { qos }), close };
  };
}

/**
 * Two bare mqtt.js clients (MQTT 3.1.1, Nagle off like the Bus): the bar as plain JSON, parsed on
 * arrival; no envelope, no schema, no ids.
 */
export function bareHop(target: BrokerTarget, swarmId: string, qos: QoS): OpenHop {
  return async (arrive) => {
    const symbol = `SYM-${randomId(6)}`;
    const publisherId = `bare-publisher-${randomId(6)}`;
    const topic = swarmTopics(swarmId).signal(publisherId);
    const options = (agentId: string): IClientOptions => ({ ...target.credentials(swarmId, agentId), clientId: agentId, protocolVersion: 4, reconnectPeriod: 0 });
    const publisher = await connectAsync(target.url, options(publisherId));
    const subscriber = await connectAsync(target.url, options(`bare-subscriber-${randomId(6)}`)).catch(async (error: unknown) => {
      await publisher.endAsync();
      throw error;
    });
    const close = async (): Promise<void> => {
      await Promise.all([publisher.endAsync(), subscriber.endAsync()]);
    };
    for (const client of [publisher, subscriber]) noDelay(client);
    subscriber.on('message', (_topic, payload) => arrive(seqOf(JSON.parse(payload.toString('utf8')) as { timeMs: number })));
    try {
      await subscriber.subscribeAsync(topic, { qos });
    } catch (error) {
      await close();
      throw error;
    }
    return { send: (seq) => publisher.publishAsync(topic, JSON.stringify(barFor(seq, symbol)), { qos }), close };
  };
}

function noDelay(client: MqttClient): void {
  (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
}

/** What {@link oneHopLatency} measured. */
export interface LatencyRun {
  /** publish call → arrival at the subscriber, ms, one per message that arrived. */
  readonly samples: number[];
  /** Messages that did not arrive within the timeout. */
  readonly lost: number;
}

/**
 * Sends `warmup` + `count` bars one at a time: each is sent once the previous one arrived and its
 * publish resolved. Times publish call → arrival (performance.now, same process) of the last `count`.
 */
export async function oneHopLatency(open: OpenHop, options: { count: number; warmup: number; timeoutMs: number }): Promise<LatencyRun> {
  let waiting: { seq: number; resolve: (at: number) => void } | undefined;
  const hop = await open((seq) => {
    const at = performance.now();
    if (waiting?.seq !== seq) return;
    const { resolve } = waiting;
    waiting = undefined;
    resolve(at);
  });
  const samples: number[] = [];
  let lost = 0;
  try {
    for (let seq = 0; seq < options.warmup + options.count; seq++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arrived = new Promise<number | undefined>((resolve) => {
        waiting = { seq, resolve };
        timer = setTimeout(() => resolve(undefined), options.timeoutMs);
      });
      const started = performance.now();
      const [at] = await Promise.all([arrived, hop.send(seq)]);
      clearTimeout(timer);
      waiting = undefined;
      if (seq < options.warmup) continue;
      if (at === undefined) lost++;
      else samples.push(at - started);
    }
  } finally {
    await hop.close();
  }
  return { samples, lost };
}

/** What {@link throughput} measured (the timed phase only). */
export interface ThroughputRun {
  readonly sent: number;
  readonly received: number;
  /** First publish call → last arrival. */
  readonly ms: number;
  readonly perSecond: number;
  readonly sendFailures: number;
}

/**
 * Publishes `count` bars as fast as the hop takes them, with at most `inFlight` sent but not yet
 * arrived (after a warm-up phase of `warmup` bars run the same way). Stops waiting for the rest when
 * nothing arrives for `stallMs` (lost QoS 0 messages), and counts what arrived.
 */
export async function throughput(open: OpenHop, options: { count: number; warmup: number; inFlight: number; stallMs: number }): Promise<ThroughputRun> {
  let phaseStart = 0;
  let phaseEnd = 0;
  let received = 0;
  let lastAt = 0;
  let wake: (() => void) | undefined;
  const hop = await open((seq) => {
    if (seq < phaseStart || seq >= phaseEnd) return;
    received++;
    lastAt = performance.now();
    const resume = wake;
    wake = undefined;
    resume?.();
  });
  /** Resolves true on the next arrival, false after `stallMs` without one. */
  const nextArrival = (): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve(false);
      }, options.stallMs);
      wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  const phase = async (first: number, count: number): Promise<ThroughputRun> => {
    phaseStart = first;
    phaseEnd = first + count;
    received = 0;
    let sendFailures = 0;
    const sends: Promise<unknown>[] = [];
    const started = performance.now();
    let sent = 0;
    let stalled = false;
    while (sent < count && !stalled) {
      if (sent - received >= options.inFlight) {
        stalled = !(await nextArrival());
        continue;
      }
      sends.push(hop.send(first + sent).catch(() => sendFailures++));
      sent++;
    }
    while (received < sent && !stalled) stalled = !(await nextArrival());
    await Promise.all(sends);
    const ms = received > 0 ? lastAt - started : 0;
    return { sent, received, ms, perSecond: received > 0 ? (received / ms) * 1000 : 0, sendFailures };
  };
  try {
    await phase(0, options.warmup);
    return await phase(options.warmup, options.count);
  } finally {
    await hop.close();
  }
}

/**
 * `warmup` + `count` sequential `bus.request`s of a bar to a `bus.serve` that answers with the same
 * bar (both at QoS 1), on `target`; returns each timed round trip in ms. Stops early, with fewer
 * samples, once the timed requests took `budgetMs` together.
 */
export async function requestReplyLatency(
  target: BrokerTarget | BusTarget,
  swarmId: string,
  options: { count: number; warmup: number; budgetMs: number },
): Promise<number[]> {
  const buses = asBusTarget(target);
  const serverId = `server-${randomId(6)}`;
  const topic = swarmTopics(swarmId).inbox(serverId);
  const symbol = `SYM-${randomId(6)}`;
  const server = await buses.agent(swarmId, serverId);
  const client = await buses.agent(swarmId, `client-${randomId(6)}`, [serverId]).catch(async (error: unknown) => {
    await server.close();
    throw error;
  });
  try {
    await server.serve(topic, (request) => (BarMessage.is(request) ? BarMessage.draft(request.payload) : undefined));
    const samples: number[] = [];
    let timedMs = 0;
    for (let seq = 0; seq < options.warmup + options.count && timedMs < options.budgetMs; seq++) {
      const started = performance.now();
      const reply = await client.request(topic, BarMessage.draft(barFor(seq, symbol)));
      const ms = performance.now() - started;
      if (!BarMessage.is(reply) || seqOf(reply.payload) !== seq) throw new Error(`request ${seq} got a wrong reply: ${JSON.stringify(reply)}`);
      if (seq < options.warmup) continue;
      samples.push(ms);
      timedMs += ms;
    }
    return samples;
  } finally {
    await Promise.all([client.close(), server.close()]);
  }
}

/** What {@link lockstepSwarm} measured, from the first step published to the last decision received. */
export interface LockstepRun {
  readonly agents: number;
  readonly steps: number;
  /** Messages published by every bus together (steps, signals, orders, fills, decisions). */
  readonly published: number;
  /** Copies received by every bus together. */
  readonly received: number;
  readonly wallMs: number;
  /** CPU time of the whole process (user + system) over the same span: both ends of every hop, and the broker. */
  readonly cpuMs: number;
}

/**
 * A lockstep swarm's bus traffic, without strategies or a venue: the control plane publishes step i (a
 * bar of each of `symbols` symbols) at QoS 0; each of `agents` agents answers with a signal at QoS 0;
 * every agent and the control plane subscribe to all signals (a mesh); the decider (the first agent),
 * once it holds the step's signals, sends its orders to the control plane (a request on its order
 * topic, served by the control plane, QoS 1) and publishes its decision at QoS 0, on which the control
 * plane publishes step i + 1. Agents have agent rights, the control plane every topic.
 * @throws Error naming the step when nothing moves for `stallMs` (a lost message).
 */
export async function lockstepSwarm(
  target: BusTarget,
  swarmId: string,
  options: { agents: number; steps: number; symbols: number; stallMs: number },
): Promise<LockstepRun> {
  const topics = swarmTopics(swarmId);
  const ids = Array.from({ length: options.agents }, (_, i) => `agent-${i}-${randomId(6)}`);
  const symbols = Array.from({ length: options.symbols }, (_, i) => `S${i}`);
  const buses: Bus[] = [];
  try {
    const control = await target.controlPlane(`control-${randomId(6)}`);
    buses.push(control);
    for (const id of ids) buses.push(await target.agent(swarmId, id));
    const agents = buses.slice(1);
    const [deciderId, decider] = [ids[0] as string, agents[0] as Bus];

    await Promise.all(
      agents.map((bus, i) =>
        bus.subscribe(topics.step(), (envelope) => {
          if (!BenchStepMessage.is(envelope)) return;
          const { index, bars } = envelope.payload;
          const intents = bars.map((bar, k) => ({ symbol: bar.symbol, side: (index + k + i) % 3 === 0 ? ('buy' as const) : ('hold' as const), strength: 0.5 }));
          void bus.publish(topics.signal(ids[i] as string), BenchSignalMessage.draft({ index, intents }), { qos: 0 });
        }),
      ),
    );
    const heard = new Map<number, number>();
    await decider.subscribe(topics.allSignals(), async (envelope) => {
      if (!BenchSignalMessage.is(envelope)) return;
      const { index, intents } = envelope.payload;
      const count = (heard.get(index) ?? 0) + 1;
      heard.set(index, count);
      if (count < options.agents) return;
      heard.delete(index);
      const reply = await decider.request(topics.order(deciderId), BenchOrdersMessage.draft({ index, orders: intents }));
      await decider.publish(topics.decision(deciderId), BenchDecisionMessage.draft({ index, orders: BenchFillsMessage.is(reply) ? reply.payload.filled : 0 }), { qos: 0 });
    });
    await Promise.all([...agents.slice(1), control].map((bus) => bus.subscribe(topics.allSignals(), () => undefined)));
    await control.serve(topics.allOrders(), (request) =>
      BenchOrdersMessage.is(request) ? BenchFillsMessage.draft({ index: request.payload.index, filled: request.payload.orders.length }) : undefined,
    );

    const step = (index: number): void => {
      void control.publish(topics.step(), BenchStepMessage.draft({ index, bars: symbols.map((symbol) => barFor(index, symbol)) }), { qos: 0 });
    };
    let onDecision: (index: number) => void = () => undefined;
    await control.subscribe(topics.allDecisions(), (envelope) => {
      if (BenchDecisionMessage.is(envelope)) onDecision(envelope.payload.index);
    });
    const finished = new Promise<void>((resolve, reject) => {
      let decided = -1;
      let seen = -1;
      const watchdog = setInterval(() => {
        if (decided === seen) {
          clearInterval(watchdog);
          reject(new Error(`the lockstep swarm on ${target.name} stalled after step ${decided}: nothing moved for ${options.stallMs} ms`));
        }
        seen = decided;
      }, options.stallMs);
      onDecision = (index) => {
        decided = index;
        if (index + 1 < options.steps) return step(index + 1);
        clearInterval(watchdog);
        resolve();
      };
    });
    const before = buses.map((bus) => bus.stats());
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    step(0);
    await finished;
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const after = buses.map((bus) => bus.stats());
    const sum = (field: 'published' | 'received'): number => after.reduce((total, stats, i) => total + stats[field] - (before[i]?.[field] ?? 0), 0);
    return { agents: options.agents, steps: options.steps, published: sum('published'), received: sum('received'), wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
  } finally {
    await Promise.all(buses.map((bus) => bus.close()));
  }
}
