import { createHash, timingSafeEqual } from 'node:crypto';
import { type Server as HttpServer, createServer as createHttpServer } from 'node:http';
import { type AddressInfo, type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import {
  Aedes,
  type AedesPublishPacket,
  type AuthenticateError,
  type Client,
  type PublishPacket,
  type Subscription as AedesSubscription,
} from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { type Logger, InvalidInputError, createLogger, errorMessage, randomToken } from '../core/index.js';
import { type AgentAccess, type AgentIdentity, PublishRights, agentMaySubscribe, compileAgentAccess } from './access.js';
import { readEnvelopeAddressing } from './envelope.js';
import { BusError } from './errors.js';
import { type SharedFilter, parseSharedFilter, topicMatches } from './topics.js';

/** Options of {@link startEmbeddedBroker}. Every field is optional. */
export interface EmbeddedBrokerOptions {
  /**
   * The interface both listeners bind to.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * The MQTT-over-TCP port; 0 lets the OS pick a free one (read it from `url`).
   * @default 0
   */
  port?: number;
  /**
   * The MQTT-over-WebSocket port; 0 lets the OS pick a free one (read it from `wsUrl`).
   * @default 0
   */
  wsPort?: number;
  /**
   * Let clients connect without a username, with the admin's rights (as Mosquitto's
   * `allow_anonymous true` does): for a broker in its own process (`tradeswarm broker`) that
   * `serve --broker` and its agents reach without credentials. Keep it on a loopback `host`.
   * @default false
   */
  allowAnonymous?: boolean;
  /** @default createLogger('bus-broker') */
  logger?: Logger;
}

/** The complete, validated form of {@link EmbeddedBrokerOptions}. */
export interface EmbeddedBrokerConfig {
  readonly host: string;
  readonly port: number;
  readonly wsPort: number;
  readonly allowAnonymous: boolean;
  readonly logger: Logger;
}

/** A username and password for the embedded broker. */
export interface BrokerCredentials {
  readonly username: string;
  readonly password: string;
}

/** Counters of the embedded broker, from {@link EmbeddedBroker.stats}. */
export interface EmbeddedBrokerStats {
  /** Clients connected now. */
  readonly connectedClients: number;
  /** Agent credentials that are valid now. */
  readonly issuedCredentials: number;
  /** Connections refused: no, unknown or wrong credentials, or a client id taken by someone else. */
  readonly refusedConnections: number;
  /**
   * Publishes dropped because the publisher may not make them: an agent's publish outside its own
   * topics (see {@link EmbeddedBroker.issueCredentials}), or anyone's on a `$` topic. Each is logged
   * at warn with the topic and the reason.
   */
  readonly deniedPublishes: number;
  /** Subscriptions refused (SUBACK 0x80) because the filter is outside the subscriber's swarm. */
  readonly deniedSubscribes: number;
  /** Shared-subscription groups with at least one member. */
  readonly sharedGroups: number;
  /** Memberships across those groups. */
  readonly sharedMembers: number;
}

/** A running embedded broker. */
export interface EmbeddedBroker {
  /** `mqtt://host:port` */
  readonly url: string;
  /** `ws://host:port` (any path is accepted) */
  readonly wsUrl: string;
  /** May publish and subscribe anywhere (the orchestrator's own bus). */
  readonly adminCredentials: BrokerCredentials;
  /**
   * Credentials for one agent. It may subscribe to any topic of its swarm (`ts/<swarmId>/…`), and
   * publish only as the topic layout's {@link TOPIC_PUBLISHERS} allows: on its own topics (heartbeat
   * and last will, signal, vote, decision, checkpoint, order requests), on the inboxes of the agents
   * in `requestsTo`, and one reply to each request it received on its own inbox, on that request's
   * reply topic. A message it publishes must name its client id as `from`, and a request its own
   * reply topic as `replyTo`. It may not use another agent's id of the swarm as its client id.
   * The username is `<swarmId>/<agentId>`; issuing again for the same agent replaces the password
   * and the `requestsTo` (connections made with the old ones stay up until revoked).
   * @throws InvalidInputError naming `swarmId`, `agentId` or `requestsTo[i]` when it is not a valid topic segment.
   */
  issueCredentials(agent: AgentIdentity): BrokerCredentials;
  /**
   * Makes agent credentials invalid and disconnects every client that connected with them.
   * @returns how many connections were closed.
   * @throws InvalidInputError naming `username` for the admin's username.
   */
  revoke(username: string): number;
  /** Counters since the broker started. */
  stats(): EmbeddedBrokerStats;
  /** Disconnects every client and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** The admin's username. Agent usernames always contain a `/`, so they cannot collide with it. */
export const ADMIN_USERNAME = 'tradeswarm-admin';

/** Who an anonymous client is on a broker that allows them: the admin's rights, under a name of its own. */
const ANONYMOUS_IDENTITY = Object.freeze({ kind: 'admin' as const, username: 'anonymous' });

/** MQTT 3.1.1 CONNACK return codes the broker refuses with. */
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** Shared-subscription choices remembered, by packet; deliveries of one packet happen together. */
const REMEMBERED_CHOICES = 1024;

/**
 * Validates options and fills in defaults.
 * @throws InvalidInputError naming the field.
 */
export function compileEmbeddedBrokerOptions(options: EmbeddedBrokerOptions = {}): EmbeddedBrokerConfig {
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) {
    throw new InvalidInputError('host', `must be a non-empty host name or IP address, got ${String(host)}`);
  }
  const port = requirePort('port', options.port ?? 0);
  const wsPort = requirePort('wsPort', options.wsPort ?? 0);
  if (port !== 0 && port === wsPort) {
    throw new InvalidInputError('wsPort', `must differ from port (${port}); use 0 to let the OS pick one`);
  }
  const allowAnonymous = options.allowAnonymous ?? false;
  if (typeof allowAnonymous !== 'boolean') throw new InvalidInputError('allowAnonymous', `must be true or false, got ${String(allowAnonymous)}`);
  return Object.freeze({ host, port, wsPort, allowAnonymous, logger: options.logger ?? createLogger('bus-broker') });
}

/**
 * Starts the embedded MQTT broker (Aedes, MQTT 3.1.1) on a TCP and a WebSocket listener.
 *
 * Authentication: only credentials from {@link EmbeddedBroker.issueCredentials} and the admin's
 * are accepted (compared in constant time); anonymous clients are refused, unless `allowAnonymous`
 * gives them the admin's rights.
 *
 * Authorisation: an agent may subscribe only under its own swarm, `ts/<swarmId>/…` (a filter must
 * start with that literal prefix, so `ts/+/…` and `#` are refused), and publish only on its own
 * topics, as {@link EmbeddedBroker.issueCredentials} details; the admin may use any topic. Nobody
 * may publish on a `$` topic. A refused subscription gets the MQTT failure code 0x80 in its SUBACK
 * and the connection stays up; a refused publish is acknowledged as usual (MQTT 3.1.1 has no way to
 * say no) but dropped, counted and logged with the reason. A client id in use by a client with
 * other credentials is refused, so an agent cannot take over another one's session.
 *
 * Shared subscriptions (`$share/<group>/<filter>`) are implemented here: see {@link SharedSubscriptions}.
 * @throws InvalidInputError naming the field, for invalid options.
 * @throws BusError when a port cannot be bound (everything already started is closed first).
 */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const config = compileEmbeddedBrokerOptions(options);
  const broker = new BrokerAccess(config.logger, config.allowAnonymous);
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => broker.authenticate(client, username, password, done),
    authorizePublish: (client, packet, done) => broker.authorizePublish(client, packet, done),
    authorizeSubscribe: (client, subscription, done) => broker.authorizeSubscribe(client, subscription, done),
    authorizeForward: (client, packet) => broker.authorizeForward(client, packet),
  });
  broker.attach(aedes);
  // Tracked so close() also ends connections that never completed the MQTT handshake.
  const sockets = new Set<Socket>();
  const tcp = createNetServer((socket) => {
    sockets.add(socket);
    // Small MQTT packets (acks, replies) must not wait for Nagle's algorithm.
    socket.setNoDelay(true);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  const http = createHttpServer((_request, response) => response.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n'));
  const wss = new WebSocketServer({ server: http });
  // The server's own errors (a port in use) are reported by listen(); this only keeps ws from throwing them again.
  wss.on('error', (error) => config.logger.debug({ error: error.message }, 'websocket server error'));
  wss.on('connection', (socket, request) => {
    const stream = createWebSocketStream(socket);
    stream.on('error', (error) => config.logger.debug({ error: error.message }, 'websocket stream error'));
    aedes.handle(stream, request);
  });
  const closeAll = async (): Promise<void> => {
    for (const socket of wss.clients) socket.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    http.closeAllConnections();
    await Promise.all([closeServer(tcp), closeServer(http)]);
  };
  let tcpPort: number;
  let wsPort: number;
  try {
    tcpPort = await listen(tcp, config.port, config.host);
    wsPort = await listen(http, config.wsPort, config.host);
  } catch (error) {
    await closeAll();
    throw new BusError(
      `the embedded broker could not listen on ${config.host} (port ${config.port}, wsPort ${config.wsPort}): ${errorMessage(error)}. ` +
        'Pick free ports, or 0 to let the OS choose',
      { cause: error, retryable: false },
    );
  }
  const hostInUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  config.logger.info({ port: tcpPort, wsPort }, 'embedded MQTT broker listening');
  return Object.freeze({
    url: `mqtt://${hostInUrl}:${tcpPort}`,
    wsUrl: `ws://${hostInUrl}:${wsPort}`,
    adminCredentials: broker.adminCredentials,
    issueCredentials: (agent: AgentIdentity) => broker.issue(agent),
    revoke: (username: string) => broker.revoke(username),
    stats: () => broker.stats(),
    close: () => {
      closing ??= closeAll().then(() => config.logger.info('embedded MQTT broker closed'));
      return closing;
    },
  });
}

type Identity = { readonly kind: 'admin'; readonly username: string } | AgentAccess;

interface StoredCredentials {
  readonly digest: Buffer;
  readonly identity: Identity;
}

/** Authentication, authorisation and shared-subscription routing for one Aedes instance. */
class BrokerAccess {
  readonly adminCredentials: BrokerCredentials;
  private readonly credentials = new Map<string, StoredCredentials>();
  private readonly identities = new WeakMap<Client, Identity>();
  /** Registered (connected) clients by client id. */
  private readonly clients = new Map<string, Client>();
  /** The plain (not shared) filters each client holds. */
  private readonly plainFilters = new WeakMap<Client, Set<string>>();
  /** Publish packets refused by `authorizePublish`, dropped before routing. */
  private readonly deniedPackets = new WeakSet<object>();
  private shared: SharedSubscriptions | undefined;
  private readonly rights = new PublishRights();
  private refusedConnections = 0;
  private deniedPublishes = 0;
  private deniedSubscribes = 0;
  private aedes: Aedes | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly allowAnonymous: boolean,
  ) {
    this.adminCredentials = Object.freeze({ username: ADMIN_USERNAME, password: randomToken() });
    this.credentials.set(ADMIN_USERNAME, {
      digest: digest(this.adminCredentials.password),
      identity: { kind: 'admin', username: ADMIN_USERNAME },
    });
  }

  attach(aedes: Aedes): void {
    this.aedes = aedes;
    this.shared = new SharedSubscriptions(aedes);
    aedes.on('client', (client) => this.clients.set(client.id, client));
    aedes.on('clientDisconnect', (client) => {
      if (this.clients.get(client.id) === client) this.clients.delete(client.id);
      this.shared?.leaveAll(client);
    });
    aedes.on('unsubscribe', (filters, client) => this.onUnsubscribe(filters, client));
    aedes.on('clientError', (client, error) => this.logger.debug({ clientId: client.id, error: error.message }, 'client connection error'));
    // Aedes can only refuse a publish by closing the connection. To drop it instead (acknowledged as
    // usual, as MQTT 3.1.1 §3.3.5 allows), authorizePublish marks the packet and this wrapper of the
    // broker's routing entry point, which the protocol handler calls with that same packet object,
    // skips it. broker.integration.test.ts checks that a refused publish is neither delivered nor retained.
    const route = aedes.publish.bind(aedes) as (packet: PublishPacket, client: unknown, done?: (error?: Error) => void) => void;
    const guarded = (packet: PublishPacket, client: unknown, done?: (error?: Error) => void): void => {
      if (this.deniedPackets.has(packet)) {
        this.deniedPackets.delete(packet);
        const callback = typeof client === 'function' ? (client as (error?: Error) => void) : done;
        callback?.();
        return;
      }
      route(packet, client, done);
    };
    (aedes as unknown as { publish: typeof guarded }).publish = guarded;
  }

  issue(agent: AgentIdentity): BrokerCredentials {
    const identity = compileAgentAccess(agent);
    const password = randomToken();
    this.credentials.set(identity.username, { digest: digest(password), identity });
    return Object.freeze({ username: identity.username, password });
  }

  revoke(username: string): number {
    if (username === ADMIN_USERNAME) {
      throw new InvalidInputError('username', 'the admin credentials cannot be revoked; close the broker instead');
    }
    this.credentials.delete(username);
    this.rights.forget(username);
    let closed = 0;
    for (const client of [...this.clients.values()]) {
      if (this.identities.get(client)?.username !== username) continue;
      client.close();
      closed++;
    }
    if (closed > 0) this.logger.info({ username, closed }, 'revoked credentials; closed their connections');
    return closed;
  }

  stats(): EmbeddedBrokerStats {
    const shared = this.shared?.counts() ?? { groups: 0, members: 0 };
    return {
      connectedClients: this.aedes?.connectedClients ?? 0,
      issuedCredentials: this.credentials.size - 1,
      refusedConnections: this.refusedConnections,
      deniedPublishes: this.deniedPublishes,
      deniedSubscribes: this.deniedSubscribes,
      sharedGroups: shared.groups,
      sharedMembers: shared.members,
    };
  }

  authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    if (username === undefined && this.allowAnonymous) {
      this.identities.set(client, ANONYMOUS_IDENTITY);
      done(null, true);
      return;
    }
    const stored = username === undefined ? undefined : this.credentials.get(username);
    // Compare even when the user is unknown, so that timing does not tell which usernames exist.
    const given = digest(password ?? Buffer.alloc(0));
    const matches = timingSafeEqual(given, stored?.digest ?? digest('\u0000no such user')) && stored !== undefined;
    if (!matches || !stored) {
      this.refusedConnections++;
      const returnCode = username === undefined ? NOT_AUTHORIZED : BAD_USERNAME_OR_PASSWORD;
      this.logger.warn({ username, clientId: client.id }, username === undefined ? 'refused an anonymous client' : 'refused a client: unknown username or wrong password');
      done(refusal('bad user name or password', returnCode), false);
      return;
    }
    const holder = this.clients.get(client.id);
    if (holder && !holder.closed && this.identities.get(holder)?.username !== stored.identity.username) {
      this.refusedConnections++;
      this.logger.warn({ username, clientId: client.id }, 'refused a client: its client id is in use by other credentials');
      done(refusal('client id in use by other credentials', IDENTIFIER_REJECTED), false);
      return;
    }
    // An agent's `from` and reply topics are checked against the agent id its credentials name, not
    // against its client id (agents of two swarms may share an agent id: see agentConnectionId).
    this.identities.set(client, stored.identity);
    done(null, true);
  }

  authorizePublish(client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void {
    const identity = client ? this.identities.get(client) : undefined;
    const reason =
      !client || !identity
        ? 'unknown client'
        : this.rights.refusal(identity.kind === 'agent' ? identity : undefined, identity.kind === 'agent' ? identity.agentId : client.id, packet.topic, () => readEnvelopeAddressing(payloadOf(packet)));
    if (reason !== undefined) {
      this.deniedPublishes++;
      this.deniedPackets.add(packet);
      this.logger.warn({ username: identity?.username, clientId: client?.id, topic: packet.topic, reason }, 'dropped a publish the client may not make');
    }
    done(null);
  }

  authorizeSubscribe(
    client: Client,
    subscription: AedesSubscription,
    done: (error: Error | null, subscription?: AedesSubscription | null) => void,
  ): void {
    const identity = this.identities.get(client);
    let shared: SharedFilter | undefined;
    try {
      shared = parseSharedFilter(subscription.topic);
    } catch {
      // '$share/' without a valid group and filter.
      this.deniedSubscribes++;
      done(null, null);
      return;
    }
    const filter = shared ? shared.filter : subscription.topic;
    if (!identity || !maySubscribe(identity, filter)) {
      this.deniedSubscribes++;
      this.logger.warn({ username: identity?.username, clientId: client.id, filter: subscription.topic }, 'refused a subscription outside the client\'s swarm');
      done(null, null);
      return;
    }
    if (shared) {
      this.shared?.join(client, shared, subscription.qos);
    } else {
      let filters = this.plainFilters.get(client);
      if (!filters) {
        filters = new Set();
        this.plainFilters.set(client, filters);
      }
      filters.add(filter);
    }
    done(null, subscription);
  }

  authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const forwarded = this.forwardedPacket(client, packet);
    const identity = forwarded && this.identities.get(client);
    if (identity?.kind === 'agent') this.rights.delivered(identity, packet.topic, () => readEnvelopeAddressing(payloadOf(packet)));
    return forwarded;
  }

  private forwardedPacket(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const shared = this.shared;
    // Fast path: without shared memberships, Aedes forwards only what a plain subscription matched.
    if (!shared || !shared.isMember(client)) return packet;
    const filters = this.plainFilters.get(client);
    if (filters) for (const filter of filters) if (topicMatches(filter, packet.topic)) return packet;
    // A retained message replayed on subscribing (no broker id) goes to plain subscriptions only.
    if (!packet.brokerId) return null;
    return shared.isChosen(client, packet) ? packet : null;
  }

  private onUnsubscribe(filters: string[], client: Client): void {
    for (const filter of filters) {
      let shared: SharedFilter | undefined;
      try {
        shared = parseSharedFilter(filter);
      } catch {
        continue;
      }
      if (shared) this.shared?.leave(client, shared);
      else this.plainFilters.get(client)?.delete(filter);
    }
  }
}

/** A client's membership of a shared-subscription group. */
interface Membership {
  readonly key: string;
  readonly client: Client;
  readonly qos: 0 | 1 | 2;
  /** Registered on the broker's router for the group's filter; hands matching packets to the client. */
  readonly listener: (packet: AedesPublishPacket, done: () => void) => void;
}

interface Group {
  readonly key: string;
  readonly name: string;
  readonly filter: string;
  readonly members: Membership[];
  next: number;
}

/**
 * Shared subscriptions for Aedes, written by hand because Aedes 1.x has none (moscajs/aedes#228)
 * and no maintained plug-in adds them.
 *
 * - SUBSCRIBE `$share/<group>/<filter>`: Aedes keeps the subscription under that literal text (it
 *   matches no topic, but gives the SUBACK and lets UNSUBSCRIBE and disconnects work as usual).
 *   Here the client joins the group, and a listener on the broker's router for `<filter>` offers
 *   every matching packet to the client through `client.publish`, keeping the packet's broker id
 *   and counter so Aedes's per-client de-duplication and `authorizeForward` still apply.
 * - `authorizeForward`, called once per client per packet, forwards a packet that arrived only
 *   through shared subscriptions to the member chosen for it: round robin over the group's
 *   connected members, chosen when the first member is offered the packet and remembered by the
 *   packet's broker id and counter, so each packet goes to exactly one member of each group. Aedes
 *   offers a packet to all listeners synchronously, so the memory needs only the recent packets.
 * - Members leave on UNSUBSCRIBE and on disconnect; shared subscriptions receive no retained messages.
 */
class SharedSubscriptions {
  private readonly groups = new Map<string, Group>();
  private readonly byClient = new Map<Client, Map<string, Membership>>();
  private readonly choices = new Map<string, Map<string, Client | undefined>>();

  constructor(private readonly aedes: Aedes) {}

  join(client: Client, shared: SharedFilter, qos: 0 | 1 | 2): void {
    const key = `${shared.group}\u0000${shared.filter}`;
    let memberships = this.byClient.get(client);
    if (!memberships) {
      memberships = new Map();
      this.byClient.set(client, memberships);
    }
    if (memberships.has(key)) return;
    let group = this.groups.get(key);
    if (!group) {
      group = { key, name: shared.group, filter: shared.filter, members: [], next: 0 };
      this.groups.set(key, group);
    }
    const wildcardFirst = shared.filter.startsWith('+') || shared.filter.startsWith('#');
    const listener = (packet: AedesPublishPacket, done: () => void): void => {
      // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match '$' topics.
      if (client.closed || (wildcardFirst && packet.topic.startsWith('$'))) {
        done();
        return;
      }
      const copy = {
        cmd: 'publish',
        topic: packet.topic,
        payload: packet.payload,
        qos: Math.min(packet.qos, qos) as 0 | 1 | 2,
        retain: false,
        dup: false,
        brokerId: packet.brokerId,
        brokerCounter: packet.brokerCounter,
      } as PublishPacket;
      client.publish(copy, () => done());
    };
    const membership: Membership = { key, client, qos, listener };
    memberships.set(key, membership);
    group.members.push(membership);
    this.aedes.subscribe(shared.filter, listener, () => undefined);
  }

  leave(client: Client, shared: SharedFilter): void {
    const membership = this.byClient.get(client)?.get(`${shared.group}\u0000${shared.filter}`);
    if (membership) this.remove(membership);
  }

  leaveAll(client: Client): void {
    for (const membership of [...(this.byClient.get(client)?.values() ?? [])]) this.remove(membership);
  }

  isMember(client: Client): boolean {
    return this.byClient.has(client);
  }

  /** Whether `client` is the chosen member, for `packet`, of one of its groups whose filter matches. */
  isChosen(client: Client, packet: AedesPublishPacket): boolean {
    const packetKey = `${packet.brokerId}:${packet.brokerCounter}`;
    for (const membership of this.byClient.get(client)?.values() ?? []) {
      const group = this.groups.get(membership.key);
      if (!group || !topicMatches(group.filter, packet.topic)) continue;
      if (this.choose(group, packetKey) === client) return true;
    }
    return false;
  }

  counts(): { groups: number; members: number } {
    let members = 0;
    for (const group of this.groups.values()) members += group.members.length;
    return { groups: this.groups.size, members };
  }

  private choose(group: Group, packetKey: string): Client | undefined {
    let perPacket = this.choices.get(packetKey);
    if (!perPacket) {
      perPacket = new Map();
      this.choices.set(packetKey, perPacket);
      if (this.choices.size > REMEMBERED_CHOICES) {
        const oldest = this.choices.keys().next().value;
        if (oldest !== undefined) this.choices.delete(oldest);
      }
    }
    if (perPacket.has(group.key)) return perPacket.get(group.key);
    let chosen: Client | undefined;
    const count = group.members.length;
    for (let step = 0; step < count; step++) {
      const index = (group.next + step) % count;
      const candidate = group.members[index];
      if (candidate && !candidate.client.closed) {
        chosen = candidate.client;
        group.next = (index + 1) % count;
        break;
      }
    }
    perPacket.set(group.key, chosen);
    return chosen;
  }

  private remove(membership: Membership): void {
    const memberships = this.byClient.get(membership.client);
    memberships?.delete(membership.key);
    if (memberships?.size === 0) this.byClient.delete(membership.client);
    const group = this.groups.get(membership.key);
    if (group) {
      const index = group.members.indexOf(membership);
      if (index >= 0) group.members.splice(index, 1);
      if (index >= 0 && index < group.next) group.next--;
      if (group.members.length === 0) this.groups.delete(group.key);
      else group.next %= group.members.length;
      this.aedes.unsubscribe(group.filter, membership.listener, () => undefined);
    }
  }
}

function payloadOf(packet: { readonly payload: string | Buffer }): Buffer {
  return typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : packet.payload;
}

/** Whether `identity` may subscribe to `filter` (a plain filter). */
function maySubscribe(identity: Identity, filter: string): boolean {
  return identity.kind === 'admin' || agentMaySubscribe(identity, filter);
}

function digest(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest();
}

function refusal(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
}

function requirePort(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new InvalidInputError(field, `must be an integer port in [0, 65535] (0 lets the OS pick), got ${String(value)}`);
  }
  return value;
}

function listen(server: NetServer | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: NetServer | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
