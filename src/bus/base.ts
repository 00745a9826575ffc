// What every Bus adapter does the same way, whatever carries the messages: checking arguments,
// envelopes, subscriptions shared by handlers, request/reply, serving, counting and closing. An
// adapter extends BaseBus and supplies the transport: sending bytes, opening and closing one
// subscription, and disconnecting; it hands each incoming copy to `deliver`.
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
  BusClosedError,
  BusMessageError,
  BusRemoteError,
  BusRequestAbortedError,
  BusTimeoutError,
  isBusMessageError,
} from './errors.js';
import {
  SHARED_PREFIX,
  sharedFilter,
  swarmIdOf,
  swarmTopics,
  validateSegment,
  validateTopicFilter,
  validateTopicName,
} from './topics.js';

/** Options every bus takes, whatever its transport. Units are in the names. */
export interface BusOptions {
  /**
   * This bus's identity on the broker (the MQTT client id), also its `from` and the last level of
   * its reply topics. A valid topic segment. A second connection with the same id replaces the first
   * on the broker.
   * @default 'ts-' + 16 random characters
   */
  clientId?: string;
  /**
   * The MQTT client id of the connection, when it must differ from `clientId`: a broker shared by
   * several swarms holds one connection per id, and agents of different swarms may share an agent id
   * (`agentConnectionId` gives theirs). At most 256 characters.
   * @default clientId
   */
  connectionId?: string;
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
   * The last will: a message the broker publishes for this bus when its connection ends without a
   * clean close (the process crashed or was killed), so peers learn of it at once instead of after
   * missed heartbeats. Encoded and validated once, at connect time; its `ts` is the connect time.
   */
  will?: WillOptions;
}

/** A last will (see {@link BusOptions.will}). */
export interface WillOptions {
  readonly topic: string;
  readonly message: MessageDraft;
  /** @default 1 */
  readonly qos?: QoS;
}

/** A last will, validated and encoded. */
export interface EncodedWill {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  /** What `payload` decodes to. */
  readonly envelope: Envelope;
}

/** The complete, validated form of {@link BusOptions}. */
export interface BusConfig {
  readonly clientId: string;
  readonly connectionId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly codec: EnvelopeCodec;
  readonly requestTimeoutMs: number;
  /** The encoded last will, if any. */
  readonly will: EncodedWill | undefined;
}

/**
 * Validates the options every bus takes and fills in defaults.
 * @throws InvalidInputError naming the field.
 */
export function compileBusOptions(options: BusOptions): BusConfig {
  const clientId = validateSegment('clientId', options.clientId ?? `ts-${randomId(16)}`);
  const connectionId = options.connectionId ?? clientId;
  if (typeof connectionId !== 'string' || connectionId.length === 0 || connectionId.length > 256) {
    throw new InvalidInputError('connectionId', `must be a string of 1 to 256 characters, got ${JSON.stringify(connectionId)}`);
  }
  const clock = options.clock ?? new SystemClock();
  if (!isClock(clock)) throw new InvalidInputError('clock', 'must be a Clock from core (SystemClock or ManualClock)');
  const codec = new EnvelopeCodec({ registry: options.registry, maxMessageBytes: options.maxMessageBytes });
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  if (typeof requestTimeoutMs !== 'number' || !Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new InvalidInputError('requestTimeoutMs', `must be a finite number of milliseconds > 0, got ${String(requestTimeoutMs)}`);
  }
  let will: EncodedWill | undefined;
  if (options.will !== undefined) {
    const topic = validateTopicName(options.will.topic, 'will.topic');
    let encoded: ReturnType<EnvelopeCodec['encode']>;
    try {
      encoded = codec.encode(options.will.message, { id: randomId(16), from: clientId, ts: clock.now() });
    } catch (error) {
      // The codec names fields from the message down (`message.payload.seq`); the option holds it under `will`.
      if (error instanceof InvalidInputError) throw new InvalidInputError(`will.${error.field}`, error.detail, { cause: error });
      throw error;
    }
    will = Object.freeze({ topic, payload: encoded.bytes, qos: compileQos(options.will.qos, 'will.qos'), envelope: encoded.envelope });
  }
  return Object.freeze({ clientId, connectionId, clock, logger: options.logger ?? createLogger('bus'), codec, requestTimeoutMs, will });
}

/** A handler and whether the bus made it for itself. */
export interface HandlerEntry {
  readonly handler: MessageHandler;
  /** The bus's own reply subscriptions; not counted in `stats().subscriptions`. */
  readonly internal: boolean;
}

/** One subscription of a bus on its transport; several handlers on the same filter share it. */
export interface Route {
  /** Unique among the bus's open routes, in [1, 268_435_455] (an MQTT 5 subscription identifier). */
  readonly id: number;
  /** The filter sent to the broker (with the `$share/<group>/` prefix for shared ones). */
  readonly filter: string;
  /** The filter topics are matched against. */
  readonly matchFilter: string;
  readonly group: string | undefined;
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

/** The largest route id (the largest MQTT 5 subscription identifier). */
const MAX_ROUTE_ID = 268_435_455;

/**
 * The transport-independent part of a {@link Bus}. Subclasses implement {@link BaseBus.transmit},
 * {@link BaseBus.openRoute}, {@link BaseBus.closeRoute} and {@link BaseBus.disconnect}, and call
 * {@link BaseBus.deliver} with each incoming copy.
 */
export abstract class BaseBus implements Bus {
  readonly clientId: string;
  protected readonly logger: Logger;
  /** Why the bus closed by itself (the transport ended for good), if it did. */
  protected closedCause: unknown;
  /** The open routes, by the filter sent to the broker. */
  protected readonly routes = new Map<string, Route>();
  private readonly routesById = new Map<number, Route>();
  private readonly common: BusConfig;
  private closing: Promise<void> | undefined;
  /**
   * Ids of published messages and replies: a random prefix of this bus and a counter, unique without
   * asking the OS for randomness per message (that was 3% of an agent's CPU). Request ids stay fully
   * random: a reply is matched to its request by that id alone.
   */
  private readonly idPrefix = `${randomId(12)}-`;
  private idCounter = 0;
  /** Unsubscriptions in flight, by filter: a new subscription to the filter waits for them. */
  private readonly settling = new Map<string, Promise<void>>();
  private lastRouteId = 0;
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

  protected constructor(config: BusConfig) {
    this.common = config;
    this.clientId = config.clientId;
    this.logger = config.logger.child({ clientId: config.clientId });
  }

  /**
   * Sends encoded message bytes on `topic`; resolves when the transport has taken them (the broker
   * acknowledged them at QoS >= 1).
   * @throws the BusError the transport's failure means.
   */
  protected abstract transmit(topic: string, bytes: Buffer, envelope: Envelope, qos: QoS, retain: boolean): Promise<void>;

  /** Opens `route` on the transport; incoming copies for it go to {@link BaseBus.deliver} from then on. */
  protected abstract openRoute(route: Route): Promise<void>;

  /** Closes `route` on the transport (it has no handler left). */
  protected abstract closeRoute(route: Route): Promise<void>;

  /** Ends the transport; `cause` is set when the bus closes because the transport failed for good. */
  protected abstract disconnect(cause: unknown): Promise<void>;

  /** Called when a route was added or removed (a subclass may cache what matches what). */
  protected onRoutesChanged(_added: Route | undefined): void {}

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
    const timeoutMs = options.timeoutMs ?? this.common.requestTimeoutMs;
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
      request.timer = this.common.clock.setTimeout(() => this.settle(id, new BusTimeoutError(topic, timeoutMs)), timeoutMs);
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

  stats(): BusStats {
    const byType: Record<string, TypeStats> = {};
    for (const [type, counts] of this.byType) byType[type] = { ...counts };
    return {
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
    return this.closeWith(undefined);
  }

  /** Whether the bus is closed or closing. */
  protected get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Closes the bus; with a `cause`, because its transport ended for good. Idempotent. */
  protected closeWith(cause: unknown): Promise<void> {
    this.closing ??= this.shutdown(cause);
    return this.closing;
  }

  /**
   * Hands one incoming copy of a message to the handlers of `routes` (once per handler; one handler
   * of a shared route, round robin). `decode` gives the envelope, or throws a BusMessageError: the
   * message is then dropped, counted and logged.
   */
  protected deliver(delivery: Delivery, routes: Iterable<Route>, decode: (codec: EnvelopeCodec) => Envelope): void {
    if (this.closing) return;
    const { topic } = delivery;
    let envelope: Envelope;
    try {
      envelope = decode(this.common.codec);
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
    for (const route of routes) {
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

  /** The open route with id `id`. */
  protected routeById(id: number): Route | undefined {
    return this.routesById.get(id);
  }

  /** @throws BusClosedError once the bus is closing. */
  protected assertOpen(operation: string): void {
    if (this.closing) throw new BusClosedError(operation, { cause: this.closedCause });
  }

  private async shutdown(cause: unknown): Promise<void> {
    this.closedCause = cause;
    for (const id of [...this.pending.keys()]) this.settle(id, new BusClosedError('receive a reply', { cause }));
    this.routes.clear();
    this.routesById.clear();
    this.replyRoutes.clear();
    this.userSubscriptions = 0;
    this.onRoutesChanged(undefined);
    await this.disconnect(cause);
    this.logger.debug({ ...this.stats(), byType: undefined }, 'bus closed');
  }

  /** Encodes and transmits; the single place where messages leave. */
  private async send(topic: string, draft: MessageDraft, meta: Omit<EnvelopeMeta, 'from' | 'ts'>, qos: QoS, retain: boolean): Promise<Envelope> {
    const { envelope, bytes } = this.common.codec.encode(draft, {
      ...meta,
      from: this.clientId,
      ts: Math.floor(this.common.clock.now()),
    });
    await this.transmit(topic, bytes, envelope, qos, retain);
    this.published++;
    this.typeStats(envelope.type).published++;
    return envelope;
  }

  private async attach(matchFilter: string, group: string | undefined, entry: HandlerEntry, qos: QoS): Promise<Subscription> {
    const filter = group === undefined ? matchFilter : sharedFilter(group, matchFilter);
    const route = this.routes.get(filter) ?? this.createRoute(filter, matchFilter, group, qos);
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
      filter,
      ...(group === undefined ? {} : { group }),
      unsubscribe: (): Promise<void> => {
        detached ??= this.detach(route, entry);
        return detached;
      },
    });
  }

  private createRoute(filter: string, matchFilter: string, group: string | undefined, qos: QoS): Route {
    do {
      this.lastRouteId = this.lastRouteId >= MAX_ROUTE_ID ? 1 : this.lastRouteId + 1;
    } while (this.routesById.has(this.lastRouteId));
    const route: Route = { id: this.lastRouteId, filter, matchFilter, group, qos, handlers: [], nextHandler: 0, ready: Promise.resolve() };
    this.routes.set(filter, route);
    this.routesById.set(route.id, route);
    this.onRoutesChanged(route);
    const previous = this.settling.get(filter) ?? Promise.resolve();
    route.ready = previous.then(() => {
      this.assertOpen('subscribe');
      return this.openRoute(route);
    });
    route.ready.catch(() => this.forgetRoute(route));
    return route;
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
    if (this.routes.get(route.filter) === route) this.routes.delete(route.filter);
    if (this.routesById.get(route.id) === route) this.routesById.delete(route.id);
    this.onRoutesChanged(undefined);
  }

  private async detach(route: Route, entry: HandlerEntry): Promise<void> {
    if (this.closing || !this.removeHandler(route, entry) || route.handlers.length > 0) return;
    const done = route.ready
      .then(
        () => this.closeRoute(route),
        () => undefined, // never subscribed
      )
      .then(
        () => undefined,
        (error: unknown) => {
          if (!this.closing) this.logger.warn({ filter: route.filter, error: errorMessage(error) }, 'unsubscribe failed');
        },
      )
      .finally(() => {
        if (this.settling.get(route.filter) === done) this.settling.delete(route.filter);
      });
    this.settling.set(route.filter, done);
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
    this.take(id)?.resolve(envelope);
  }

  /** Ends a pending request with an error; later outcomes are ignored. */
  private settle(id: string, error: unknown): void {
    this.take(id)?.reject(error);
  }

  private take(id: string): PendingRequest | undefined {
    const request = this.pending.get(id);
    if (!request) return undefined;
    this.pending.delete(id);
    if (request.timer) this.common.clock.clearTimeout(request.timer);
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

  private typeStats(type: string): MutableTypeStats {
    let counts = this.byType.get(type);
    if (!counts) {
      counts = { published: 0, received: 0 };
      this.byType.set(type, counts);
    }
    return counts;
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.length > 0) return code.slice(0, 100);
  if (error instanceof Error && error.name.length > 0) return error.name.slice(0, 100);
  return 'handler-error';
}
