import { connect, type IClientSubscribeOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { InvalidInputError, errorMessage } from '../core/index.js';
import { type BusConfig, type BusOptions, type Route, BaseBus, compileBusOptions } from './base.js';
import type { BusStats, QoS } from './bus.js';
import type { Envelope } from './envelope.js';
import { BusAuthError, BusClosedError, BusConnectionError, BusError } from './errors.js';
import { filtersOverlap, topicMatches } from './topics.js';

/** URL schemes {@link connectBus} accepts. */
export const BUS_URL_PROTOCOLS = ['mqtt:', 'tcp:', 'mqtts:', 'tls:', 'ws:', 'wss:'] as const;

/** Options of {@link connectBus}: {@link BusOptions} and the MQTT connection's. Only `url` is required; units are in the names. */
export interface MqttBusOptions extends BusOptions {
  /** The broker: `mqtt://host:port` (or `tcp://`), `mqtts://`/`tls://`, `ws://host:port/path`, `wss://`. */
  url: string;
  /** Issued by the embedded broker's `issueCredentials`; omit for an anonymous broker. */
  username?: string;
  password?: string;
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
}

/** The complete, validated form of {@link MqttBusOptions}. */
export interface MqttBusConfig extends BusConfig {
  readonly url: string;
  /** The URL without credentials, for messages and logs. */
  readonly displayUrl: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly connectTimeoutMs: number;
  readonly reconnectPeriodMs: number;
  readonly keepaliveSeconds: number;
  readonly protocolVersion: 'auto' | 4 | 5;
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
  const common = compileBusOptions(options);
  const connectTimeoutMs = requireInteger('connectTimeoutMs', options.connectTimeoutMs ?? 5_000, 1, Number.MAX_SAFE_INTEGER);
  const reconnectPeriodMs = requireInteger('reconnectPeriodMs', options.reconnectPeriodMs ?? 1_000, 0, Number.MAX_SAFE_INTEGER);
  const keepaliveSeconds = requireInteger('keepaliveSeconds', options.keepaliveSeconds ?? 30, 0, 65_535);
  const protocolVersion = options.protocolVersion ?? 'auto';
  if (protocolVersion !== 'auto' && protocolVersion !== 4 && protocolVersion !== 5) {
    throw new InvalidInputError('protocolVersion', `must be 'auto', 4 or 5, got ${String(protocolVersion)}`);
  }
  return Object.freeze({
    ...common,
    url,
    displayUrl,
    username: options.username,
    password: options.password,
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
/** Distinct topics whose matching routes a bus remembers (see `routesFor`). */
const ROUTE_CACHE_LIMIT = 1024;

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
export class MqttBus extends BaseBus {
  readonly config: MqttBusConfig;
  private readonly client: MqttClient;
  private readonly protocolVersion: 4 | 5;
  /** The routes each topic seen lately matched (MQTT 3.1.1 matching); emptied whenever the routes change. */
  private readonly routesByTopic = new Map<string, Route[]>();
  /** Ends the wait of each QoS 0 publish the socket has not taken yet (see {@link MqttBus.transmit}). */
  private readonly unwritten = new Set<() => void>();

  private constructor(config: MqttBusConfig, client: MqttClient, protocolVersion: 4 | 5) {
    super(config);
    this.config = config;
    this.client = client;
    this.protocolVersion = protocolVersion;
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    client.on('error', (error) => this.onClientError(error));
    client.on('close', () => {
      this.releaseUnwritten();
      if (this.closed) return;
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

  override stats(): MqttBusStats {
    return { protocolVersion: this.protocolVersion, connected: this.client.connected, ...super.stats() };
  }

  /**
   * QoS 1 and 2 end when the broker acknowledged; mqtt.js keeps them across a reconnection. QoS 0
   * ends when the socket took the bytes, and mqtt.js waits for the socket's 'drain' for that. A
   * connection that drops first never drains, and mqtt.js would leave the publish waiting for ever
   * (a lockstep control plane with it); so a dropped connection ends the wait of every QoS 0 publish
   * still in its socket. Those messages are lost, as QoS 0 allows.
   */
  protected override async transmit(topic: string, bytes: Buffer, _envelope: Envelope, qos: QoS, retain: boolean): Promise<void> {
    if (qos > 0) {
      try {
        await this.client.publishAsync(topic, bytes, { qos, retain });
      } catch (error) {
        throw this.publishError(topic, error);
      }
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const release = (): void => resolve();
      this.unwritten.add(release);
      this.client.publish(topic, bytes, { qos, retain }, (error) => {
        this.unwritten.delete(release);
        if (error === undefined || error === null) resolve();
        else reject(this.publishError(topic, error));
      });
    });
  }

  private releaseUnwritten(): void {
    if (this.unwritten.size === 0) return;
    this.logger.warn({ url: this.config.displayUrl, messages: this.unwritten.size }, 'the bus connection dropped with QoS 0 messages not yet written; they may be lost, as QoS 0 allows');
    for (const release of this.unwritten) release();
    this.unwritten.clear();
  }

  protected override async openRoute(route: Route): Promise<void> {
    const options: IClientSubscribeOptions = { qos: route.qos };
    if (this.protocolVersion === 5) options.properties = { subscriptionIdentifier: route.id };
    try {
      await this.client.subscribeAsync(route.filter, options);
    } catch (error) {
      if (this.closed) throw new BusClosedError('subscribe', { cause: this.closedCause ?? error });
      const granted = (error as { packet?: { granted?: unknown } }).packet?.granted;
      const code = Array.isArray(granted) ? granted.find((value): value is number => typeof value === 'number' && value >= 0x80) : undefined;
      if (code === 0x80 || code === 0x87) throw new BusAuthError('subscribe', route.filter, code, { cause: error });
      throw new BusError(`the broker refused the subscription to '${route.filter}': ${errorMessage(error)}`, {
        cause: error,
        retryable: code === undefined,
      });
    }
  }

  protected override async closeRoute(route: Route): Promise<void> {
    await this.client.unsubscribeAsync(route.filter);
  }

  protected override async disconnect(cause: unknown): Promise<void> {
    // A graceful end waits for in-flight QoS 1/2 publishes; without a connection it would wait forever.
    const force = cause !== undefined || !this.client.connected;
    await new Promise<void>((resolve) => this.client.end(force, {}, () => resolve()));
  }

  protected override onRoutesChanged(added: Route | undefined): void {
    this.routesByTopic.clear();
    if (added && this.protocolVersion === 4) this.warnIfMixed(added);
  }

  private publishError(topic: string, error: unknown): BusError {
    if (this.closed) return new BusClosedError('publish', { cause: this.closedCause ?? error });
    const code = (error as { code?: unknown }).code;
    if (code === 0x87) return new BusAuthError('publish', topic, code, { cause: error });
    return new BusError(`publishing on '${topic}' failed: ${errorMessage(error)}. Retry when the connection is back`, {
      cause: error,
      retryable: true,
    });
  }

  /** MQTT 3.1.1 cannot tell a shared copy from an ordinary one (see the class comment); say so when it matters. */
  private warnIfMixed(route: Route): void {
    for (const other of this.routes.values()) {
      if ((other.group === undefined) === (route.group === undefined)) continue;
      if (!filtersOverlap(other.matchFilter, route.matchFilter)) continue;
      this.logger.warn(
        { filter: route.filter, overlaps: other.filter },
        'over MQTT 3.1.1 a shared subscription overlapping an ordinary one of the same bus also gets the ordinary copies; use a separate bus for the work queue',
      );
      return;
    }
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    this.deliver(Object.freeze({ topic, retained: packet.retain }), this.routesFor(topic, packet), (codec) => codec.decode(topic, payload));
  }

  /** The routes an incoming copy is for: by subscription identifier (MQTT 5) or by matching (3.1.1). */
  private routesFor(topic: string, packet: IPublishPacket): Route[] {
    const ids = packet.properties?.subscriptionIdentifier;
    if (this.protocolVersion === 5 && ids !== undefined) {
      const routes: Route[] = [];
      for (const id of Array.isArray(ids) ? ids : [ids]) {
        const route = this.routeById(id);
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

  private onClientError(error: Error): void {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number' && REFUSED_CODES.has(code)) {
      const refusal = new BusAuthError('connect', this.config.displayUrl, code, { cause: error });
      this.logger.error({ url: this.config.displayUrl, code }, 'the broker refused the bus on reconnection; closing the bus');
      void this.closeWith(refusal);
      return;
    }
    if (!this.closed) this.logger.warn({ url: this.config.displayUrl, error: error.message }, 'bus connection error');
  }
}

/** The broker refused the protocol version (internal: triggers the 3.1.1 fallback). */
class UnsupportedProtocolError extends Error {}

/** Connects one mqtt.js client and resolves when the broker accepted it. */
function openClient(config: MqttBusConfig, protocolVersion: 4 | 5): Promise<MqttClient> {
  const client = connect(config.url, {
    protocolVersion,
    clientId: config.connectionId,
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
