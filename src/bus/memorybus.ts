import { type Logger, InvalidInputError, createLogger, errorMessage } from '../core/index.js';
import { type AgentAccess, type AgentIdentity, PublishRights, agentMaySubscribe, compileAgentAccess } from './access.js';
import { type BusConfig, type BusOptions, type Route, BaseBus, compileBusOptions } from './base.js';
import type { Delivery, QoS } from './bus.js';
import { type Envelope, type EnvelopeAddressing, type EnvelopeCodec, type MessageRegistry, readEnvelopeAddressing } from './envelope.js';
import { BusAuthError, BusClosedError, BusError } from './errors.js';
import { topicMatches, validateTopicName } from './topics.js';

/** Options of {@link createMemoryBroker}. */
export interface MemoryBrokerOptions {
  /** @default createLogger('bus-broker') */
  logger?: Logger;
}

/** The complete, validated form of {@link MemoryBrokerOptions}. */
export interface MemoryBrokerConfig {
  readonly logger: Logger;
}

/** Counters of a {@link MemoryBroker}, from {@link MemoryBroker.stats}. */
export interface MemoryBrokerStats {
  /** Buses connected now. */
  readonly connectedClients: number;
  /** Messages routed: publishes, last wills and raw messages, refused publishes aside. */
  readonly routed: number;
  /** Copies handed to buses (a message goes to each subscribed bus once). */
  readonly delivered: number;
  /** Copies waiting for the next delivery round. */
  readonly queued: number;
  /** Publishes dropped because the publisher may not make them (as on the embedded broker); each is logged at warn. */
  readonly deniedPublishes: number;
  /** Subscriptions refused because the filter is outside the subscribing agent's swarm. */
  readonly deniedSubscribes: number;
  /** Shared-subscription groups with at least one member. */
  readonly sharedGroups: number;
  /** Memberships across those groups. */
  readonly sharedMembers: number;
  /** Topics holding a retained message. */
  readonly retainedMessages: number;
}

/**
 * An in-memory broker that {@link MemoryBus}es connect to ({@link createMemoryBus}), so that a control
 * plane and several agents run in one process, with the semantics the Bus contract defines and the
 * embedded broker's access rules. See {@link MemoryBus} for delivery and ordering.
 */
export interface MemoryBroker {
  /**
   * Routes `payload` on `topic` as given, bypassing every check a bus makes (a misbehaving client on
   * a real broker can send anything): for testing how buses treat invalid messages. A zero-length
   * payload with `retain` clears the topic's retained message.
   * @throws InvalidInputError naming `topic` when it is not a valid topic name.
   * @throws BusError once the broker is closed.
   */
  publishRaw(topic: string, payload: string | Uint8Array, options?: { readonly retain?: boolean }): void;
  /**
   * Resolves once no message is waiting for delivery, after a full event-loop turn without one: every
   * message published so far has reached its subscribers, and so has every message their handlers
   * published in turn, synchronously or after awaiting other deliveries. It does not wait for timers
   * (advance a ManualClock yourself) or for other I/O. Never resolves while handlers keep publishing.
   */
  flush(): Promise<void>;
  /** Counters since the broker was created. */
  stats(): MemoryBrokerStats;
  /**
   * Closes every bus connected to it (no last wills: the broker itself goes away) and refuses new
   * ones. Messages not yet delivered are dropped. Idempotent.
   */
  close(): Promise<void>;
}

/** Options of {@link createMemoryBus}: {@link BusOptions} and where the bus connects. */
export interface MemoryBusOptions extends BusOptions {
  /** The broker to connect to. */
  broker: MemoryBroker;
  /**
   * The agent this bus belongs to: it then has the rights the embedded broker gives that agent's
   * credentials (`EmbeddedBroker.issueCredentials`): it may subscribe only under its swarm and
   * publish only on its own topics, the inboxes of `requestsTo`, and one reply per request delivered
   * on its inbox. Its client id is its agent id, as agents connect. Without it, the bus has the
   * control plane's rights: every topic.
   */
  agent?: AgentIdentity;
}

/** The complete, validated form of {@link MemoryBusOptions}. */
export interface MemoryBusConfig extends BusConfig {
  readonly broker: MemoryBroker;
  readonly agent: AgentAccess | undefined;
}

/**
 * Validates options and fills in defaults.
 * @throws InvalidInputError naming the field.
 */
export function compileMemoryBrokerOptions(options: MemoryBrokerOptions = {}): MemoryBrokerConfig {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object');
  return Object.freeze({ logger: options.logger ?? createLogger('bus-broker') });
}

/**
 * Validates options and fills in defaults.
 * @throws InvalidInputError naming the field.
 */
export function compileMemoryBusOptions(options: MemoryBusOptions): MemoryBusConfig {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object with at least { broker }');
  if (!hubs.has(options.broker)) throw new InvalidInputError('broker', 'must be a MemoryBroker made by createMemoryBroker()');
  const agent = options.agent === undefined ? undefined : compileAgentAccess(options.agent, 'agent.');
  if (agent !== undefined && options.clientId !== undefined && options.clientId !== agent.agentId) {
    throw new InvalidInputError('clientId', `must be the agent's id ${JSON.stringify(agent.agentId)} (agents connect with their agent id), or be left out; got ${JSON.stringify(options.clientId)}`);
  }
  const common = compileBusOptions(agent === undefined ? options : { ...options, clientId: agent.agentId });
  return Object.freeze({ ...common, broker: options.broker, agent });
}

/** Creates an in-memory broker. */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  const hub = new Hub(compileMemoryBrokerOptions(options));
  const broker: MemoryBroker = Object.freeze({
    publishRaw: (topic: string, payload: string | Uint8Array, raw: { readonly retain?: boolean } = {}) => hub.publishRaw(topic, payload, raw.retain === true),
    flush: () => hub.flush(),
    stats: () => hub.stats(),
    close: () => hub.close(),
  });
  hubs.set(broker, hub);
  return broker;
}

/**
 * Connects a new {@link MemoryBus} to `options.broker`. A bus already connected with the same client id
 * is replaced: it ends as if its connection dropped (its last will is published), as on MQTT.
 * @throws InvalidInputError naming the field, for invalid options, and `clientId` when a bus with other
 *   rights (another agent, or the control plane) holds that client id.
 * @throws BusError when the broker is closed.
 */
export function createMemoryBus(options: MemoryBusOptions): MemoryBus {
  return new MemoryBus(compileMemoryBusOptions(options));
}

/** The broker behind each {@link MemoryBroker} facade. */
const hubs = new WeakMap<MemoryBroker, Hub>();

/** Distinct topics whose subscribers a broker remembers; past this the memory starts again. */
const ROUTE_CACHE_LIMIT = 1024;

/** Queue slots delivered before the queue's array is compacted. */
const COMPACT_AFTER = 4096;

/**
 * The {@link Bus} on a {@link MemoryBroker}: the same contract as the MQTT adapter, in one process.
 *
 * Delivery is asynchronous and in rounds: one round per event-loop turn (`setImmediate`) delivers
 * every message published before it began. A handler therefore never runs inside `publish`, and
 * handlers that keep answering each other do not starve timers and I/O. Messages are routed when
 * `publish` is called: a subscription made after the call does not get the message, one removed
 * before the round does not either, nor does a bus closed in between. `await broker.flush()` waits
 * until nothing is left to deliver. Delivery does not use the bus's clock: on a ManualClock, messages
 * flow without advancing it; request timeouts run on it.
 *
 * Order: the broker has one queue, so every bus receives messages in the order the `publish` calls
 * were made, across publishers, topics and QoS levels. The {@link Bus} contract promises less, what
 * MQTT gives: the order of one publisher's calls, within one QoS level. A `request` is published once
 * the bus's reply subscription in that swarm is ready (a few microtasks for the first one), as on MQTT.
 *
 * Each subscribed bus gets one copy of a message and dispatches it by the subscriptions it is for,
 * as MQTT 5's subscription identifiers allow; QoS is checked and then has no effect, since nothing is
 * lost in memory: each copy arrives exactly once. Shared subscriptions go round robin over the
 * group's member buses in the order they joined, as on the embedded broker, then over the bus's
 * handlers of the group. Retained messages are kept per topic and handed to later ordinary
 * subscriptions (not to shared ones), marked `retained`.
 *
 * Every receiving bus validates a message with its own registry and size limit and drops what fails,
 * as on MQTT. A message is decoded once for all receivers sharing a registry, and not at all where
 * the receiver's registry is the publisher's: encoding validated it against the same schemas, and
 * the frozen envelope it gave is what decoding would give, so receivers share it.
 *
 * {@link MemoryBus.crash} ends a bus as a killed process's connection ends: the broker publishes its
 * last will (the swarm learns of a lost agent that way); `close()` publishes none.
 */
export class MemoryBus extends BaseBus {
  readonly config: MemoryBusConfig;
  private readonly hub: Hub;
  private readonly connection: Connection;
  private abrupt = false;

  /** Use {@link createMemoryBus}. */
  constructor(config: MemoryBusConfig) {
    super(config);
    this.config = config;
    this.hub = hubs.get(config.broker) as Hub;
    this.connection = this.hub.connect({
      clientId: config.connectionId,
      agent: config.agent,
      will: config.will,
      registry: config.codec.config.registry,
      open: true,
      receive: (delivery, routes, message) => this.deliver(delivery, routes, (codec) => message.decode(codec)),
      end: (cause) => {
        this.abrupt = true;
        void this.closeWith(cause);
      },
    });
  }

  /**
   * Ends the bus as a killed process's connection ends: the broker publishes its last will (when it
   * has one), pending requests fail with BusClosedError, and every later call fails with it too.
   * Messages it published before are still delivered, before the will. Idempotent; after `close()`, a no-op.
   */
  crash(): Promise<void> {
    if (!this.closed) this.abrupt = true;
    return this.closeWith(new Error('its connection ended abruptly (MemoryBus.crash)'));
  }

  protected override transmit(topic: string, bytes: Buffer, envelope: Envelope, _qos: QoS, retain: boolean): Promise<void> {
    if (!this.connection.open) return Promise.reject(new BusClosedError('publish', { cause: this.closedCause }));
    this.hub.publish(this.connection, new Message(topic, bytes, envelope, this.connection.registry), retain);
    return Promise.resolve();
  }

  protected override openRoute(route: Route): Promise<void> {
    // A refusal thrown here rejects the promise.
    return new Promise((resolve) => {
      this.hub.subscribe(this.connection, route);
      resolve();
    });
  }

  protected override closeRoute(route: Route): Promise<void> {
    this.hub.unsubscribe(this.connection, route);
    return Promise.resolve();
  }

  protected override disconnect(): Promise<void> {
    this.hub.disconnect(this.connection, this.abrupt);
    return Promise.resolve();
  }
}

/** A bus as the broker sees it. */
interface Connection {
  readonly clientId: string;
  readonly agent: AgentAccess | undefined;
  readonly will: BusConfig['will'];
  /** The registry the bus encodes with: its messages need no decoding by buses with the same one. */
  readonly registry: MessageRegistry;
  open: boolean;
  /** Hands one copy to the bus. */
  readonly receive: (delivery: Delivery, routes: readonly Route[], message: Message) => void;
  /** Ends the bus from the broker's side, abruptly (taken over, or the broker closed). */
  readonly end: (cause: Error) => void;
}

/** One subscription at the broker. */
interface Entry {
  readonly connection: Connection;
  readonly route: Route;
}

/** The members of one shared subscription, `$share/<group>/<filter>`. */
interface Group {
  readonly key: string;
  readonly filter: string;
  readonly members: Entry[];
  next: number;
}

/** Who a topic's messages go to: each bus with its ordinary subscriptions, and the groups. */
interface Targets {
  readonly plain: ReadonlyArray<{ readonly connection: Connection; readonly routes: readonly Route[] }>;
  readonly groups: readonly Group[];
}

/** A copy waiting for its round. */
interface Pending {
  readonly connection: Connection;
  readonly routes: readonly Route[];
  readonly message: Message;
  readonly delivery: Delivery;
}

/** A published message: its bytes, and what each registry decodes them to, decoded once. */
class Message {
  /** The live delivery (not retained), shared by every receiver. */
  readonly delivery: Delivery;
  private decoded: Array<{ readonly registry: MessageRegistry; readonly maxMessageBytes: number; readonly envelope?: Envelope; readonly error?: unknown }> = [];

  constructor(
    readonly topic: string,
    readonly bytes: Buffer,
    /** The envelope the publishing bus encoded, when a bus published it. */
    private readonly envelope: Envelope | undefined,
    private readonly registry: MessageRegistry | undefined,
  ) {
    this.delivery = Object.freeze({ topic, retained: false });
  }

  /**
   * The envelope for a bus decoding with `codec`.
   * @throws BusMessageError (or a schema's own error) as `codec.decode` would.
   */
  decode(codec: EnvelopeCodec): Envelope {
    const { registry, maxMessageBytes } = codec.config;
    if (this.envelope !== undefined && registry === this.registry && this.bytes.length <= maxMessageBytes) return this.envelope;
    let outcome = this.decoded.find((known) => known.registry === registry && known.maxMessageBytes === maxMessageBytes);
    if (!outcome) {
      try {
        outcome = { registry, maxMessageBytes, envelope: codec.decode(this.topic, this.bytes) };
      } catch (error) {
        outcome = { registry, maxMessageBytes, error };
      }
      this.decoded.push(outcome);
    }
    if (outcome.envelope === undefined) throw outcome.error;
    return outcome.envelope;
  }

  /** Who sent it and where its reply goes, as the access rules read them. */
  addressing(): EnvelopeAddressing | undefined {
    const envelope = this.envelope;
    if (envelope === undefined) return readEnvelopeAddressing(this.bytes);
    return { id: envelope.id, from: envelope.from, replyTo: envelope.replyTo, correlationId: envelope.correlationId };
  }
}

/** The broker's state: connections, subscriptions, retained messages and the delivery queue. */
class Hub {
  private readonly logger: Logger;
  private readonly connections = new Map<string, Connection>();
  private readonly entries = new Map<Route, Entry>();
  private readonly groups = new Map<string, Group>();
  private readonly targets = new Map<string, Targets>();
  private readonly retained = new Map<string, Message>();
  private readonly rights = new PublishRights();
  private queue: Array<Pending | undefined> = [];
  private head = 0;
  private scheduled = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private routed = 0;
  private delivered = 0;
  private deniedPublishes = 0;
  private deniedSubscribes = 0;

  constructor(config: MemoryBrokerConfig) {
    this.logger = config.logger;
  }

  connect(connection: Connection): Connection {
    this.assertOpen();
    const holder = this.connections.get(connection.clientId);
    if (holder !== undefined) {
      if (holder.agent?.username !== connection.agent?.username) {
        throw new InvalidInputError('clientId', `${JSON.stringify(connection.clientId)} is in use by a bus with other rights (${holder.agent === undefined ? 'the control plane' : `agent ${holder.agent.username}`}); give each bus its own client id`);
      }
      // As on MQTT: the new connection replaces the old one, which ends as a dropped connection does.
      holder.end(new Error(`another bus connected with the client id ${JSON.stringify(connection.clientId)}`));
    }
    this.connections.set(connection.clientId, connection);
    return connection;
  }

  disconnect(connection: Connection, abrupt: boolean): void {
    if (!connection.open) return;
    connection.open = false;
    if (this.connections.get(connection.clientId) === connection) this.connections.delete(connection.clientId);
    for (const entry of [...this.entries.values()]) if (entry.connection === connection) this.removeEntry(entry);
    const will = connection.will;
    if (abrupt && will !== undefined && !this.closed) {
      this.publish(connection, new Message(will.topic, will.payload, will.envelope, connection.registry), false);
    }
  }

  publish(connection: Connection, message: Message, retain: boolean): void {
    const reason = this.rights.refusal(connection.agent, connection.agent?.agentId ?? connection.clientId, message.topic, () => message.addressing());
    if (reason !== undefined) {
      this.deniedPublishes++;
      this.logger.warn({ username: connection.agent?.username, clientId: connection.clientId, topic: message.topic, reason }, 'dropped a publish the client may not make');
      return;
    }
    this.route(message, retain);
  }

  publishRaw(topic: string, payload: string | Uint8Array, retain: boolean): void {
    validateTopicName(topic, 'topic');
    this.assertOpen();
    const message = new Message(topic, Buffer.from(payload), undefined, undefined);
    const reason = this.rights.refusal(undefined, '(raw)', topic, () => undefined);
    if (reason !== undefined) {
      this.deniedPublishes++;
      this.logger.warn({ topic, reason }, 'dropped a raw publish');
      return;
    }
    this.route(message, retain);
  }

  subscribe(connection: Connection, route: Route): void {
    if (!connection.open) throw new BusClosedError('subscribe');
    if (connection.agent !== undefined && !agentMaySubscribe(connection.agent, route.matchFilter)) {
      this.deniedSubscribes++;
      this.logger.warn({ username: connection.agent.username, clientId: connection.clientId, filter: route.filter }, "refused a subscription outside the client's swarm");
      throw new BusAuthError('subscribe', route.filter, undefined);
    }
    const entry: Entry = { connection, route };
    this.entries.set(route, entry);
    this.targets.clear();
    if (route.group !== undefined) {
      const key = `${route.group}\u0000${route.matchFilter}`;
      let group = this.groups.get(key);
      if (!group) {
        group = { key, filter: route.matchFilter, members: [], next: 0 };
        this.groups.set(key, group);
      }
      group.members.push(entry);
      return;
    }
    for (const message of this.retained.values()) {
      if (!topicMatches(route.matchFilter, message.topic)) continue;
      if (connection.agent !== undefined) this.rights.delivered(connection.agent, message.topic, () => message.addressing());
      this.enqueue({ connection, routes: [route], message, delivery: Object.freeze({ topic: message.topic, retained: true }) });
    }
  }

  unsubscribe(_connection: Connection, route: Route): void {
    const entry = this.entries.get(route);
    if (entry) this.removeEntry(entry);
  }

  flush(): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.head >= this.queue.length && !this.scheduled) resolve();
        else setImmediate(check);
      };
      setImmediate(check);
    });
  }

  stats(): MemoryBrokerStats {
    let sharedMembers = 0;
    for (const group of this.groups.values()) sharedMembers += group.members.length;
    return {
      connectedClients: this.connections.size,
      routed: this.routed,
      delivered: this.delivered,
      queued: this.queue.length - this.head,
      deniedPublishes: this.deniedPublishes,
      deniedSubscribes: this.deniedSubscribes,
      sharedGroups: this.groups.size,
      sharedMembers,
      retainedMessages: this.retained.size,
    };
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    const cause = new Error('the memory broker closed');
    for (const connection of [...this.connections.values()]) connection.end(cause);
    this.queue = [];
    this.head = 0;
    this.retained.clear();
    // Let the buses' own closing (pending requests failed, logs) run before the caller goes on.
    this.closing = new Promise((resolve) => setImmediate(resolve));
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closed) throw new BusError('the memory broker is closed; create a new one with createMemoryBroker()', { retryable: false });
  }

  private route(message: Message, retain: boolean): void {
    if (retain) {
      if (message.bytes.length === 0) this.retained.delete(message.topic);
      else this.retained.set(message.topic, message);
    }
    this.routed++;
    const targets = this.targetsOf(message.topic);
    const inbox = (connection: Connection): void => {
      if (connection.agent !== undefined) this.rights.delivered(connection.agent, message.topic, () => message.addressing());
    };
    if (targets.groups.length === 0) {
      for (const { connection, routes } of targets.plain) {
        inbox(connection);
        this.enqueue({ connection, routes, message, delivery: message.delivery });
      }
      return;
    }
    const copies = new Map<Connection, Route[]>();
    for (const { connection, routes } of targets.plain) copies.set(connection, [...routes]);
    for (const group of targets.groups) {
      const chosen = group.members[group.next % group.members.length];
      if (!chosen) continue;
      group.next = (group.next + 1) % group.members.length;
      const routes = copies.get(chosen.connection);
      if (routes) routes.push(chosen.route);
      else copies.set(chosen.connection, [chosen.route]);
    }
    for (const [connection, routes] of copies) {
      inbox(connection);
      this.enqueue({ connection, routes, message, delivery: message.delivery });
    }
  }

  private targetsOf(topic: string): Targets {
    let targets = this.targets.get(topic);
    if (targets) return targets;
    const plain = new Map<Connection, Route[]>();
    const groups = new Set<Group>();
    for (const entry of this.entries.values()) {
      if (!topicMatches(entry.route.matchFilter, topic)) continue;
      if (entry.route.group !== undefined) {
        const group = this.groups.get(`${entry.route.group}\u0000${entry.route.matchFilter}`);
        if (group) groups.add(group);
        continue;
      }
      const routes = plain.get(entry.connection);
      if (routes) routes.push(entry.route);
      else plain.set(entry.connection, [entry.route]);
    }
    targets = { plain: [...plain].map(([connection, routes]) => ({ connection, routes })), groups: [...groups] };
    // Bounded: a wildcard subscription over many distinct topics must not grow this without end.
    if (this.targets.size >= ROUTE_CACHE_LIMIT) this.targets.clear();
    this.targets.set(topic, targets);
    return targets;
  }

  private removeEntry(entry: Entry): void {
    if (this.entries.get(entry.route) !== entry) return;
    this.entries.delete(entry.route);
    this.targets.clear();
    const { route } = entry;
    if (route.group === undefined) return;
    const group = this.groups.get(`${route.group}\u0000${route.matchFilter}`);
    if (!group) return;
    const index = group.members.indexOf(entry);
    if (index < 0) return;
    group.members.splice(index, 1);
    if (index < group.next) group.next--;
    if (group.members.length === 0) this.groups.delete(group.key);
    else group.next %= group.members.length;
  }

  private enqueue(pending: Pending): void {
    this.queue.push(pending);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.deliverRound());
  }

  /** Delivers what was queued when the round began; what handlers publish meanwhile waits for the next round. */
  private deliverRound(): void {
    this.scheduled = false;
    const end = this.queue.length;
    // A handler may close the broker mid-round, which empties the queue.
    while (this.head < end && this.head < this.queue.length) {
      const pending = this.queue[this.head] as Pending;
      this.queue[this.head] = undefined;
      this.head++;
      if (!pending.connection.open) continue;
      this.delivered++;
      try {
        pending.connection.receive(pending.delivery, pending.routes, pending.message);
      } catch (error) {
        // The bus catches its handlers' errors; anything else must not stop the other deliveries.
        this.logger.error({ clientId: pending.connection.clientId, topic: pending.delivery.topic, error: errorMessage(error) }, 'delivering a message failed');
      }
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.head < this.queue.length && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.deliverRound());
    }
  }
}
