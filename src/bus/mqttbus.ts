import { connect, type IClientSubscribeOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import {
  type Clock,
  type Logger,
  InvalidInputError,
  SystemClock,
  createLogger,
  errorMessage,
  isClock,
  randomId,
} from '../core/index.js';
import {
  type Bus,
  type BusStats,
  type Delivery,
  type MessageHandler,
  type PublishOptions,
  type QoS,
  type RequestHandler,
  type RequestOptions,
  type ServeOptions,
  type SubscribeOptions,
  type Subscription,
  type TypeStats,
  compileQos,
  requireFunction,
} from './bus.js';
import {
  type Envelope,
  type EnvelopeMeta,
  type MessageDraft,
  type MessageRegistry,
  EnvelopeCodec,
  ErrorMessage,
} from './envelope.js';
import {
  type BusMessageErrorReason,
  BusAuthError,
  BusClosedError,
  BusConnectionError,
  BusError,
  BusMessageError,
  BusRemoteError,
  BusRequestAbortedError,
  BusTimeoutError,
  isBusMessageError,
} from './errors.js';
import {
  SHARED_PREFIX,
  filtersOverlap,
  sharedFilter,
  swarmIdOf,
  swarmTopics,
  topicMatches,
  validateSegment,
  validateTopicFilter,
  validateTopicName,
} from './topics.js';

/** URL schemes {@link connectBus} accepts. */
export const BUS_URL_PROTOCOLS = ['mqtt:', 'tcp:', 'mqtts:', 'tls:', 'ws:', 'wss:'] as const;

/** Options of {@link connectBus}. Only `url` is required; units are in the names. */
export interface MqttBusOptions {
  /** The broker: `mqtt://host:port` (or `tcp://`), `mqtts://`/`tls://`, `ws://host:port/path`, `wss://`. */
  url: string;
  /** Issued by the embedded broker's `issueCredentials`; omit for an anonymous broker. */
  username?: string;
  password?: string;
  /**
   * The MQTT client id, also this bus's `from` and the last level of its reply topics. A valid topic
   * segment. A second connection with the same id replaces the first on the broker.
   * @default 'ts-' + 16 random characters
   */
  clientId?: string;
  /**
   * Source of message timestamps and request timeouts.
   * @default new SystemClock()
   */
  clock?: Clock;
  /** @default createLogger('bus') */
  logger?: Logger;
  /**
   * The message types this bus sends and accepts.
   * @default defaultRegistry (the built-in types)
   */
  registry?: MessageRegistry;
  /**
   * The largest message, in bytes of encoded JSON, sent or accepted. An integer >= 256.
   * @default 262_144 (256 KiB)
   */
  maxMessageBytes?: number;
  /**
   * Default timeout of {@link Bus.request}, on `clock`. A number > 0.
   * @default 10_000
   */
  requestTimeoutMs?: number;
  /**
   * How long to wait for the broker to accept the connection (real time). An integer > 0.
   * @default 5_000
   */
  connectTimeoutMs?: number;
  /**
   * Delay between reconnection attempts after the connection dropped (real time); 0 turns
   * reconnection off. An integer >= 0.
   * @default 1_000
   */
  reconnectPeriodMs?: number;
  /**
   * MQTT keep-alive interval; 0 turns it off. An integer in [0, 65535].
   * @default 30
   */
  keepaliveSeconds?: number;
  /**
   * MQTT protocol version. `'auto'` tries MQTT 5 and falls back to 3.1.1 when the broker refuses it
   * (Aedes speaks only 3.1.1). MQTT 5 lets the bus tell overlapping subscriptions apart by their
   * subscription identifiers; see {@link MqttBus} for what 3.1.1 can and cannot do.
   * @default 'auto'
   */
  protocolVersion?: 'auto' | 4 | 5;
  /**
   * The last will: a message the broker publishes for this bus when its connection ends without a
   * clean close (the process crashed or was killed), so peers learn of it at once instead of after
   * missed heartbeats. Encoded and validated once, at connect time; its `ts` is the connect time.
   */
  will?: { readonly topic: string; readonly message: MessageDraft; readonly qos?: QoS };
}

/** The complete, validated form of {@link MqttBusOptions}. */
export interface MqttBusConfig {
  readonly url: string;
  /** The URL without credentials, for messages and logs. */
  readonly displayUrl: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly clientId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly codec: EnvelopeCodec;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectPeriodMs: number;
  readonly keepaliveSeconds: number;
  readonly protocolVersion: 'auto' | 4 | 5;
  /** The encoded last will, if any. */
  readonly will: { readonly topic: string; readonly payload: Buffer; readonly qos: QoS } | undefined;
}

/** Counters of an {@link MqttBus}. */
export interface MqttBusStats extends BusStats {
  /** The MQTT version in use: 5, or 4 (3.1.1). */
  readonly protocolVersion: 4 | 5;
  /** Whether the connection is up now (it reconnects by itself after a drop). */
  readonly connected: boolean;
}

/**
 * Validates options and fills in defaults.
 * @throws InvalidInputError naming the field.
 */
export function compileMqttBusOptions(options: MqttBusOptions): MqttBusConfig {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidInputError('options', 'must be an object with at least { url }');
  }
  const { url } = options;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError('url', `must be a broker URL like mqtt://127.0.0.1:1883 or ws://127.0.0.1:8080, got ${JSON.stringify(url)}`);
  }
  if (!(BUS_URL_PROTOCOLS as readonly string[]).includes(parsed.protocol)) {
    throw new InvalidInputError('url', `must use one of ${BUS_URL_PROTOCOLS.join(' ')}, got ${JSON.stringify(parsed.protocol)}`);
  }
  const displayUrl = `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  for (const field of ['username', 'password'] as const) {
    const value = options[field];
    if (value !== undefined && typeof value !== 'string') throw new InvalidInputError(field, `must be a string, got ${typeof value}`);
  }
  const clientId = validateSegment('clientId', options.clientId ?? `ts-${randomId(16)}`);
  const clock = options.clock ?? new SystemClock();
  if (!isClock(clock)) throw new InvalidInputError('clock', 'must be a Clock from core (SystemClock or ManualClock)');
  const codec = new EnvelopeCodec({ registry: options.registry, maxMessageBytes: options.maxMessageBytes });
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  if (typeof requestTimeoutMs !== 'number' || !Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new InvalidInputError('requestTimeoutMs', `must be a finite number of milliseconds > 0, got ${String(requestTimeoutMs)}`);
  }
  const connectTimeoutMs = requireInteger('connectTimeoutMs', options.connectTimeoutMs ?? 5_000, 1, Number.MAX_SAFE_INTEGER);
  const reconnectPeriodMs = requireInteger('reconnectPeriodMs', options.reconnectPeriodMs ?? 1_000, 0, Number.MAX_SAFE_INTEGER);
  const keepaliveSeconds = requireInteger('keepaliveSeconds', options.keepaliveSeconds ?? 30, 0, 65_535);
  const protocolVersion = options.protocolVersion ?? 'auto';
  if (protocolVersion !== 'auto' && protocolVersion !== 4 && protocolVersion !== 5) {
    throw new InvalidInputError('protocolVersion', `must be 'auto', 4 or 5, got ${String(protocolVersion)}`);
  }
  let will: MqttBusConfig['will'];
  if (options.will !== undefined) {
    const topic = validateTopicName(options.will.topic, 'will.topic');
    const { bytes } = codec.encode(options.will.message, { id: randomId(16), from: clientId, ts: clock.now() });
    will = { topic, payload: bytes, qos: compileQos(options.will.qos, 'will.qos') };
  }
  return Object.freeze({
    will,
    url,
    displayUrl,
    username: options.username,
    password: options.password,
    clientId,
    clock,
    logger: options.logger ?? createLogger('bus'),
    codec,
    requestTimeoutMs,
    connectTimeoutMs,
    reconnectPeriodMs,
    keepaliveSeconds,
    protocolVersion,
  });
}

/**
 * Connects a {@link Bus} to an MQTT broker and resolves once the broker accepted the connection.
 * @throws InvalidInputError naming the field, for invalid options.
 * @throws BusAuthError (not retryable) when the broker refuses the credentials or the client id.
 * @throws BusConnectionError (retryable) when the broker cannot be reached.
 */
export function connectBus(options: MqttBusOptions): Promise<MqttBus> {
  return MqttBus.connect(options);
}

/** MQTT CONNACK codes that mean "speak another protocol version" (3.1.1 and 5 numbering). */
const UNSUPPORTED_PROTOCOL_CODES = new Set([1, 0x84]);
/** CONNACK codes that refuse the credentials or the client id. */
const REFUSED_CODES = new Set([2, 4, 5, 0x85, 0x86, 0x87, 0x8c]);
/** The largest MQTT 5 subscription identifier. */
const MAX_SUBSCRIPTION_ID = 268_435_455;
/** Distinct topics whose matching routes a bus remembers (see `routesFor`). */
const ROUTE_CACHE_LIMIT = 1024;

interface HandlerEntry {
  readonly handler: MessageHandler;
  /** The bus's own reply subscriptions; not counted in `stats().subscriptions`. */
  readonly internal: boolean;
}

/** One MQTT subscription of this client; several handlers on the same filter share it. */
interface Route {
  /** The filter sent to the broker (with the `$share/<group>/` prefix for shared ones). */
  readonly mqttFilter: string;
  /** The filter topics are matched against. */
  readonly matchFilter: string;
  readonly group: string | undefined;
  /** The MQTT 5 subscription identifier; incoming copies carry it. */
  readonly subscriptionId: number;
  readonly qos: QoS;
  readonly handlers: HandlerEntry[];
  /** Round-robin position among the handlers of a shared route. */
  nextHandler: number;
  ready: Promise<void>;
}

interface PendingRequest {
  readonly topic: string;
  readonly resolve: (envelope: Envelope) => void;
  readonly reject: (error: unknown) => void;
  timer: ReturnType<Clock['setTimeout']> | undefined;
  cleanupSignal: (() => void) | undefined;
}

type MutableTypeStats = { published: number; received: number };

/**
 * The {@link Bus} over MQTT (mqtt.js), for tcp://, mqtt://, mqtts://, ws:// and wss:// brokers.
 *
 * Subscriptions: each distinct filter is one MQTT subscription, shared by every handler on it and
 * dropped when its last handler unsubscribes. Incoming messages are decoded once and dispatched:
 * - over MQTT 5, by the subscription identifiers the broker attaches to each copy, so overlapping
 *   filters and shared subscriptions are told apart exactly;
 * - over MQTT 3.1.1 (Aedes), by matching the topic against this bus's filters; the broker must
 *   send one copy per client (Aedes does). 3.1.1 cannot say whether a copy came through a shared
 *   subscription, so a bus that holds both a shared subscription and an ordinary one overlapping
 *   it also hands the ordinary copies to its shared handler; keep work-queue filters apart from
 *   the others on 3.1.1 brokers (the bus logs a warning when they overlap).
 *
 * Reconnection is automatic (`reconnectPeriodMs`) and restores the subscriptions. When the broker
 * refuses the credentials on a reconnection (they were revoked), the bus closes itself; later
 * calls fail with BusClosedError whose `cause` is the BusAuthError.
 */
export class MqttBus implements Bus {
  readonly clientId: string;
  readonly config: MqttBusConfig;
  private readonly client: MqttClient;
  private readonly protocolVersion: 4 | 5;
  private readonly logger: Logger;
  private closing: Promise<void> | undefined;
  private closedCause: unknown;
  private readonly routes = new Map<string, Route>();
  private readonly routesById = new Map<number, Route>();
  /** The routes each topic seen lately matched (MQTT 3.1.1 matching); emptied whenever the routes change. */
  private readonly routesByTopic = new Map<string, Route[]>();
  /**
   * Ids of published messages and replies: a random prefix of this bus and a counter, unique without
   * asking the OS for randomness per message (that was 3% of an agent's CPU). Request ids stay fully
   * random: a reply is matched to its request by that id alone.
   */
  private readonly idPrefix = `${randomId(12)}-`;
  private idCounter = 0;
  /** Unsubscriptions in flight, by MQTT filter: a new subscription to the filter waits for them. */
  private readonly settling = new Map<string, Promise<void>>();
  private lastSubscriptionId = 0;
  private readonly pending = new Map<string, PendingRequest>();
  /** The reply subscription of each swarm this bus has sent requests into. */
  private readonly replyRoutes = new Map<string, Promise<void>>();
  private userSubscriptions = 0;
  private published = 0;
  private received = 0;
  private handlerErrors = 0;
  private unmatchedReplies = 0;
  private readonly dropped: Record<BusMessageErrorReason, number> = {
    oversize: 0,
    'not-json': 0,
    'invalid-envelope': 0,
    'unknown-type': 0,
    'invalid-payload': 0,
  };
  private readonly byType = new Map<string, MutableTypeStats>();

  private constructor(config: MqttBusConfig, client: MqttClient, protocolVersion: 4 | 5) {
    this.config = config;
    this.clientId = config.clientId;
    this.client = client;
    this.protocolVersion = protocolVersion;
    this.logger = config.logger.child({ clientId: config.clientId });
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    client.on('error', (error) => this.onClientError(error));
    client.on('close', () => {
      if (this.closing) return;
      const next = config.reconnectPeriodMs > 0 ? `reconnecting every ${config.reconnectPeriodMs} ms` : 'reconnection is off';
      this.logger.warn({ url: config.displayUrl }, `bus connection lost; ${next}`);
    });
    client.on('reconnect', () => this.logger.info({ url: config.displayUrl }, 'bus reconnecting'));
    client.on('connect', () => disableNagle(client));
    disableNagle(client);
  }

  /**
   * Connects; see {@link connectBus}.
   * @throws InvalidInputError, BusAuthError, BusConnectionError.
   */
  static async connect(options: MqttBusOptions): Promise<MqttBus> {
    const config = compileMqttBusOptions(options);
    const first = config.protocolVersion === 4 ? 4 : 5;
    try {
      return new MqttBus(config, await openClient(config, first), first);
    } catch (error) {
      if (config.protocolVersion === 'auto' && error instanceof UnsupportedProtocolError) {
        config.logger.debug({ url: config.displayUrl }, 'broker refused MQTT 5; using MQTT 3.1.1');
        return new MqttBus(config, await openClient(config, 4), 4);
      }
      if (error instanceof UnsupportedProtocolError) {
        throw new BusConnectionError(config.displayUrl, { cause: new Error(`the broker does not speak MQTT version ${first}; use protocolVersion 'auto'`) });
      }
      throw error;
    }
  }

  async publish(topic: string, message: MessageDraft, options: PublishOptions = {}): Promise<Envelope> {
    this.assertOpen('publish');
    validateTopicName(topic, 'topic');
    const qos = compileQos(options.qos, 'options.qos');
    if (options.retain !== undefined && typeof options.retain !== 'boolean') {
      throw new InvalidInputError('options.retain', `must be a boolean, got ${typeof options.retain}`);
    }
    return this.send(topic, message, { id: this.nextId() }, qos, options.retain ?? false);
  }

  async subscribe(filter: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.assertOpen('subscribe');
    validateTopicFilter(filter, 'filter');
    if (filter.startsWith(SHARED_PREFIX)) {
      throw new InvalidInputError('filter', `is a shared filter (${JSON.stringify(filter)}); use shareSubscribe(group, filter, handler)`);
    }
    requireFunction(handler, 'handler');
    return this.attach(filter, undefined, { handler, internal: false }, compileQos(options.qos, 'options.qos'));
  }

  async shareSubscribe(group: string, filter: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.assertOpen('shareSubscribe');
    validateSegment('group', group);
    validateTopicFilter(filter, 'filter');
    if (filter.startsWith(SHARED_PREFIX)) {
      throw new InvalidInputError('filter', `must be the plain filter; shareSubscribe adds the '$share/<group>/' prefix itself`);
    }
    requireFunction(handler, 'handler');
    return this.attach(filter, group, { handler, internal: false }, compileQos(options.qos, 'options.qos'));
  }

  async request(topic: string, message: MessageDraft, options: RequestOptions = {}): Promise<Envelope> {
    this.assertOpen('request');
    validateTopicName(topic, 'topic');
    const swarmId = swarmIdOf(topic);
    if (swarmId === undefined) {
      throw new InvalidInputError(
        'topic',
        `must be a swarm topic ts/<swarmId>/… (build it with swarmTopics), so that the reply comes back in the same swarm; got ${JSON.stringify(topic)}`,
      );
    }
    const timeoutMs = options.timeoutMs ?? this.config.requestTimeoutMs;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidInputError('options.timeoutMs', `must be a finite number of milliseconds > 0, got ${String(timeoutMs)}`);
    }
    const qos = compileQos(options.qos, 'options.qos');
    const { signal } = options;
    if (signal?.aborted) throw new BusRequestAbortedError(topic, { cause: signal.reason });
    const id = randomId();
    const replyTo = swarmTopics(swarmId).reply(this.clientId);
    return new Promise<Envelope>((resolve, reject) => {
      const request: PendingRequest = { topic, resolve, reject, timer: undefined, cleanupSignal: undefined };
      this.pending.set(id, request);
      request.timer = this.config.clock.setTimeout(() => this.settle(id, new BusTimeoutError(topic, timeoutMs)), timeoutMs);
      if (signal) {
        const onAbort = (): void => this.settle(id, new BusRequestAbortedError(topic, { cause: signal.reason }));
        signal.addEventListener('abort', onAbort, { once: true });
        request.cleanupSignal = () => signal.removeEventListener('abort', onAbort);
      }
      this.ensureReplyRoute(swarmId)
        .then(() => {
          // The request may have timed out or been aborted while the reply subscription was made.
          if (this.pending.has(id)) return this.send(topic, message, { id, replyTo }, qos, false);
          return undefined;
        })
        .catch((error: unknown) => this.settle(id, error));
    });
  }

  async reply(request: Envelope, message: MessageDraft, options: PublishOptions = {}): Promise<Envelope> {
    this.assertOpen('reply');
    if (typeof request !== 'object' || request === null || typeof request.replyTo !== 'string') {
      throw new InvalidInputError('request.replyTo', 'is missing: the message is not a request (send it with bus.request); use publish to send on a topic');
    }
    if (typeof message !== 'object' || message === null) {
      throw new InvalidInputError('message', 'must be a message draft { type, payload, to? }');
    }
    validateTopicName(request.replyTo, 'request.replyTo');
    const qos = compileQos(options.qos, 'options.qos');
    const addressed = message.to === undefined ? { ...message, to: request.from } : message;
    return this.send(request.replyTo, addressed, { id: this.nextId(), correlationId: request.id }, qos, false);
  }

  async serve(filter: string, handler: RequestHandler, options: ServeOptions = {}): Promise<Subscription> {
    requireFunction(handler, 'handler');
    const answer: MessageHandler = (request, delivery) => this.answer(request, delivery, handler);
    return options.group === undefined
      ? this.subscribe(filter, answer, options)
      : this.shareSubscribe(options.group, filter, answer, options);
  }

  stats(): MqttBusStats {
    const byType: Record<string, TypeStats> = {};
    for (const [type, counts] of this.byType) byType[type] = { ...counts };
    return {
      protocolVersion: this.protocolVersion,
      connected: this.client.connected,
      published: this.published,
      received: this.received,
      droppedInvalid: Object.values(this.dropped).reduce((sum, count) => sum + count, 0),
      droppedByReason: { ...this.dropped },
      handlerErrors: this.handlerErrors,
      unmatchedReplies: this.unmatchedReplies,
      pendingRequests: this.pending.size,
      subscriptions: this.userSubscriptions,
      byType,
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown(undefined);
    return this.closing;
  }

  private async shutdown(cause: unknown): Promise<void> {
    this.closedCause = cause;
    for (const id of [...this.pending.keys()]) this.settle(id, new BusClosedError('receive a reply', { cause }));
    this.routes.clear();
    this.routesById.clear();
    this.replyRoutes.clear();
    this.userSubscriptions = 0;
    // A graceful end waits for in-flight QoS 1/2 publishes; without a connection it would wait forever.
    const force = cause !== undefined || !this.client.connected;
    await new Promise<void>((resolve) => this.client.end(force, {}, () => resolve()));
    this.logger.debug({ ...this.stats(), byType: undefined }, 'bus closed');
  }

  private assertOpen(operation: string): void {
    if (this.closing) throw new BusClosedError(operation, { cause: this.closedCause });
  }

  /** Encodes and publishes; the single place where messages leave. */
  private async send(topic: string, draft: MessageDraft, meta: Omit<EnvelopeMeta, 'from' | 'ts'>, qos: QoS, retain: boolean): Promise<Envelope> {
    const { envelope, bytes } = this.config.codec.encode(draft, {
      ...meta,
      from: this.clientId,
      ts: Math.floor(this.config.clock.now()),
    });
    try {
      await this.client.publishAsync(topic, bytes, { qos, retain });
    } catch (error) {
      throw this.publishError(topic, error);
    }
    this.published++;
    this.typeStats(envelope.type).published++;
    return envelope;
  }

  private publishError(topic: string, error: unknown): BusError {
    if (this.closing) return new BusClosedError('publish', { cause: this.closedCause ?? error });
    const code = (error as { code?: unknown }).code;
    if (code === 0x87) return new BusAuthError('publish', topic, code, { cause: error });
    return new BusError(`publishing on '${topic}' failed: ${errorMessage(error)}. Retry when the connection is back`, {
      cause: error,
      retryable: true,
    });
  }

  private async attach(matchFilter: string, group: string | undefined, entry: HandlerEntry, qos: QoS): Promise<Subscription> {
    const mqttFilter = group === undefined ? matchFilter : sharedFilter(group, matchFilter);
    const route = this.routes.get(mqttFilter) ?? this.createRoute(mqttFilter, matchFilter, group, qos);
    route.handlers.push(entry);
    if (!entry.internal) this.userSubscriptions++;
    try {
      await route.ready;
    } catch (error) {
      this.removeHandler(route, entry);
      throw error;
    }
    let detached: Promise<void> | undefined;
    return Object.freeze({
      filter: mqttFilter,
      ...(group === undefined ? {} : { group }),
      unsubscribe: (): Promise<void> => {
        detached ??= this.detach(route, entry);
        return detached;
      },
    });
  }

  private createRoute(mqttFilter: string, matchFilter: string, group: string | undefined, qos: QoS): Route {
    this.lastSubscriptionId = this.lastSubscriptionId >= MAX_SUBSCRIPTION_ID ? 1 : this.lastSubscriptionId + 1;
    const route: Route = {
      mqttFilter,
      matchFilter,
      group,
      subscriptionId: this.lastSubscriptionId,
      qos,
      handlers: [],
      nextHandler: 0,
      ready: Promise.resolve(),
    };
    if (this.protocolVersion === 4) this.warnIfMixed(route);
    this.routes.set(mqttFilter, route);
    this.routesById.set(route.subscriptionId, route);
    this.routesByTopic.clear();
    const previous = this.settling.get(mqttFilter) ?? Promise.resolve();
    route.ready = previous.then(() => this.mqttSubscribe(route));
    route.ready.catch(() => this.forgetRoute(route));
    return route;
  }

  /** MQTT 3.1.1 cannot tell a shared copy from an ordinary one (see the class comment); say so when it matters. */
  private warnIfMixed(route: Route): void {
    for (const other of this.routes.values()) {
      if ((other.group === undefined) === (route.group === undefined)) continue;
      if (!filtersOverlap(other.matchFilter, route.matchFilter)) continue;
      this.logger.warn(
        { filter: route.mqttFilter, overlaps: other.mqttFilter },
        'over MQTT 3.1.1 a shared subscription overlapping an ordinary one of the same bus also gets the ordinary copies; use a separate bus for the work queue',
      );
      return;
    }
  }

  private async mqttSubscribe(route: Route): Promise<void> {
    this.assertOpen('subscribe');
    const options: IClientSubscribeOptions = { qos: route.qos };
    if (this.protocolVersion === 5) options.properties = { subscriptionIdentifier: route.subscriptionId };
    try {
      await this.client.subscribeAsync(route.mqttFilter, options);
    } catch (error) {
      if (this.closing) throw new BusClosedError('subscribe', { cause: this.closedCause ?? error });
      const granted = (error as { packet?: { granted?: unknown } }).packet?.granted;
      const code = Array.isArray(granted) ? granted.find((value): value is number => typeof value === 'number' && value >= 0x80) : undefined;
      if (code === 0x80 || code === 0x87) throw new BusAuthError('subscribe', route.mqttFilter, code, { cause: error });
      throw new BusError(`the broker refused the subscription to '${route.mqttFilter}': ${errorMessage(error)}`, {
        cause: error,
        retryable: code === undefined,
      });
    }
  }

  private removeHandler(route: Route, entry: HandlerEntry): boolean {
    const index = route.handlers.indexOf(entry);
    if (index < 0) return false;
    route.handlers.splice(index, 1);
    if (!entry.internal) this.userSubscriptions--;
    if (route.handlers.length === 0) this.forgetRoute(route);
    return true;
  }

  private forgetRoute(route: Route): void {
    if (this.routes.get(route.mqttFilter) === route) this.routes.delete(route.mqttFilter);
    if (this.routesById.get(route.subscriptionId) === route) this.routesById.delete(route.subscriptionId);
    this.routesByTopic.clear();
  }

  private async detach(route: Route, entry: HandlerEntry): Promise<void> {
    if (this.closing || !this.removeHandler(route, entry) || route.handlers.length > 0) return;
    const done = route.ready
      .then(
        () => this.client.unsubscribeAsync(route.mqttFilter),
        () => undefined, // never subscribed
      )
      .then(
        () => undefined,
        (error: unknown) => {
          if (!this.closing) this.logger.warn({ filter: route.mqttFilter, error: errorMessage(error) }, 'unsubscribe failed');
        },
      )
      .finally(() => {
        if (this.settling.get(route.mqttFilter) === done) this.settling.delete(route.mqttFilter);
      });
    this.settling.set(route.mqttFilter, done);
    await done;
  }

  private ensureReplyRoute(swarmId: string): Promise<void> {
    let ready = this.replyRoutes.get(swarmId);
    if (!ready) {
      const topic = swarmTopics(swarmId).reply(this.clientId);
      ready = this.attach(topic, undefined, { handler: (envelope) => this.onReply(envelope), internal: true }, 1).then(() => undefined);
      this.replyRoutes.set(swarmId, ready);
      ready.catch(() => {
        if (this.replyRoutes.get(swarmId) === ready) this.replyRoutes.delete(swarmId);
      });
    }
    return ready;
  }

  private onReply(envelope: Envelope): void {
    const id = envelope.correlationId;
    if (id === undefined || !this.pending.has(id)) {
      this.unmatchedReplies++;
      this.logger.debug({ id: envelope.id, correlationId: id, from: envelope.from }, 'reply matches no waiting request');
      return;
    }
    if (ErrorMessage.is(envelope)) {
      const { code, message, retryable } = envelope.payload;
      this.settle(id, new BusRemoteError(this.pending.get(id)?.topic ?? '', code, message, envelope.from, retryable));
      return;
    }
    this.fulfil(id, envelope);
  }

  /** Ends a pending request with its reply; later outcomes are ignored. */
  private fulfil(id: string, reply: Envelope): void {
    this.take(id)?.resolve(reply);
  }

  /** Ends a pending request with an error; later outcomes are ignored. */
  private settle(id: string, error: unknown): void {
    this.take(id)?.reject(error);
  }

  private take(id: string): PendingRequest | undefined {
    const request = this.pending.get(id);
    if (!request) return undefined;
    this.pending.delete(id);
    if (request.timer) this.config.clock.clearTimeout(request.timer);
    request.cleanupSignal?.();
    return request;
  }

  private async answer(request: Envelope, delivery: Delivery, handler: RequestHandler): Promise<void> {
    if (request.replyTo === undefined) {
      this.logger.debug({ topic: delivery.topic, id: request.id, type: request.type }, 'serve: ignoring a message that is not a request');
      return;
    }
    let draft: MessageDraft | undefined;
    try {
      draft = await handler(request, delivery);
    } catch (error) {
      this.handlerErrors++;
      this.logger.warn({ topic: delivery.topic, id: request.id, error: errorMessage(error) }, 'request handler failed; answering with an error message');
      draft = ErrorMessage.draft({
        code: errorCode(error),
        message: errorMessage(error).slice(0, 10_000),
        retryable: (error as { retryable?: unknown } | null)?.retryable === true,
      });
    }
    if (draft === undefined || this.closing) return;
    try {
      await this.reply(request, draft);
    } catch (error) {
      this.logger.warn({ topic: delivery.topic, id: request.id, error: errorMessage(error) }, 'could not send the reply');
    }
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (this.closing) return;
    let envelope: Envelope;
    try {
      envelope = this.config.codec.decode(topic, payload);
    } catch (thrown) {
      // A custom schema may throw from a refinement: that, too, is the message's fault, not the bus's.
      const error = isBusMessageError(thrown)
        ? thrown
        : new BusMessageError(topic, 'invalid-payload', '(message)', errorMessage(thrown), { cause: thrown });
      this.dropped[error.reason]++;
      this.logger.warn({ topic, reason: error.reason, field: error.field, error: error.message }, 'dropped an invalid bus message');
      return;
    }
    this.received++;
    this.typeStats(envelope.type).received++;
    const delivery: Delivery = Object.freeze({ topic, retained: packet.retain });
    for (const route of this.routesFor(topic, packet)) {
      if (route.handlers.length === 0) continue;
      if (route.group === undefined) {
        for (const entry of [...route.handlers]) this.invoke(entry, envelope, delivery);
      } else {
        // One member of the group gets each message, also among this bus's own handlers.
        const index = route.nextHandler % route.handlers.length;
        route.nextHandler = index + 1;
        const entry = route.handlers[index];
        if (entry) this.invoke(entry, envelope, delivery);
      }
    }
  }

  /** The routes an incoming copy is for: by subscription identifier (MQTT 5) or by matching (3.1.1). */
  private routesFor(topic: string, packet: IPublishPacket): Route[] {
    const ids = packet.properties?.subscriptionIdentifier;
    if (this.protocolVersion === 5 && ids !== undefined) {
      const routes: Route[] = [];
      for (const id of Array.isArray(ids) ? ids : [ids]) {
        const route = this.routesById.get(id);
        if (route && !routes.includes(route)) routes.push(route);
      }
      return routes;
    }
    let routes = this.routesByTopic.get(topic);
    if (routes === undefined) {
      // Bounded: a wildcard subscription over many distinct topics must not grow this without end.
      if (this.routesByTopic.size >= ROUTE_CACHE_LIMIT) this.routesByTopic.clear();
      routes = [...this.routes.values()].filter((route) => topicMatches(route.matchFilter, topic));
      this.routesByTopic.set(topic, routes);
    }
    return routes;
  }

  private nextId(): string {
    this.idCounter += 1;
    return this.idPrefix + this.idCounter.toString(36);
  }

  private invoke(entry: HandlerEntry, envelope: Envelope, delivery: Delivery): void {
    const fail = (error: unknown): void => {
      this.handlerErrors++;
      this.logger.warn({ topic: delivery.topic, id: envelope.id, type: envelope.type, error: errorMessage(error) }, 'bus message handler failed');
    };
    try {
      const result = entry.handler(envelope, delivery);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  private onClientError(error: Error): void {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number' && REFUSED_CODES.has(code)) {
      const refusal = new BusAuthError('connect', this.config.displayUrl, code, { cause: error });
      this.logger.error({ url: this.config.displayUrl, code }, 'the broker refused the bus on reconnection; closing the bus');
      this.closing ??= this.shutdown(refusal);
      return;
    }
    if (!this.closing) this.logger.warn({ url: this.config.displayUrl, error: error.message }, 'bus connection error');
  }

  private typeStats(type: string): MutableTypeStats {
    let counts = this.byType.get(type);
    if (!counts) {
      counts = { published: 0, received: 0 };
      this.byType.set(type, counts);
    }
    return counts;
  }
}

/** The broker refused the protocol version (internal: triggers the 3.1.1 fallback). */
class UnsupportedProtocolError extends Error {}

/** Connects one mqtt.js client and resolves when the broker accepted it. */
function openClient(config: MqttBusConfig, protocolVersion: 4 | 5): Promise<MqttClient> {
  const client = connect(config.url, {
    protocolVersion,
    clientId: config.clientId,
    username: config.username,
    password: config.password,
    clean: true,
    keepalive: config.keepaliveSeconds,
    connectTimeout: config.connectTimeoutMs,
    reconnectPeriod: config.reconnectPeriodMs,
    resubscribe: true,
    // mqtt-packet otherwise builds a table of all 65,536 two-byte numbers (topic lengths, packet ids) on
    // the first packet a process writes: measured 11 ms of CPU and as much again in GC per agent start,
    // against a 2-byte allocation per number written without it.
    writeCache: false,
    ...(config.will === undefined ? {} : { will: { topic: config.will.topic, payload: config.will.payload, qos: config.will.qos, retain: false } }),
  });
  return new Promise<MqttClient>((resolve, reject) => {
    let failure: unknown;
    const cleanup = (): void => {
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const onConnect = (): void => {
      cleanup();
      resolve(client);
    };
    const onError = (error: Error): void => {
      failure ??= error;
    };
    const onClose = (): void => {
      cleanup();
      // Stop mqtt.js from retrying: the caller decides whether to try again.
      client.end(true);
      reject(connectFailure(config, failure));
    };
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

function connectFailure(config: MqttBusConfig, failure: unknown): Error {
  const code = (failure as { code?: unknown } | undefined)?.code;
  if (typeof code === 'number' && UNSUPPORTED_PROTOCOL_CODES.has(code)) return new UnsupportedProtocolError(String(code));
  if (typeof code === 'number' && REFUSED_CODES.has(code)) return new BusAuthError('connect', config.displayUrl, code, { cause: failure });
  const cause = failure ?? new Error(`no answer from the broker within ${config.connectTimeoutMs} ms (connectTimeoutMs), or it closed the connection`);
  return new BusConnectionError(config.displayUrl, { cause });
}

/** Small MQTT packets (acks, requests, replies) must not wait for Nagle's algorithm on TCP streams. */
function disableNagle(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined;
  stream?.setNoDelay?.(true);
}

function requireInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new InvalidInputError(field, `must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0) return code.slice(0, 100);
  if (error instanceof Error && error.name.length > 0) return error.name.slice(0, 100);
  return 'handler-error';
}
