import { InvalidInputError } from '../core/index.js';
import type { BusMessageErrorReason } from './errors.js';
import type { Envelope, MessageDraft } from './envelope.js';

/**
 * The message bus seam (DESIGN decision 3): publish, subscribe with MQTT wildcards, request/reply
 * with a timeout, and shared subscriptions for work queues. Small on purpose so that other
 * transports (a NATS adapter) can implement it; every implementation passes the contract suite in
 * `contract.testkit.ts`. Topics and filters come from `topics.ts`.
 *
 * Delivery rules every implementation keeps:
 * - delivery is asynchronous: no handler runs inside the `publish` call that sent its message;
 * - messages one bus publishes with the same QoS reach each subscriber in the order of the `publish`
 *   calls, whatever their topics; across QoS levels there is no order (mqtt.js writes a QoS 0 message
 *   at once and a QoS 1 one after storing it for resending), and a request waits for its bus's reply
 *   subscription, so it may follow messages published after it;
 * - a handler gets each message matching its filter once, however many of the same bus's
 *   subscriptions overlap it;
 * - a shared subscription's message goes to exactly one member of its group (across buses, and
 *   among several handlers of the same group on one bus);
 * - an invalid incoming message never reaches a handler: it is dropped, counted and logged;
 * - a handler that throws does not disturb other handlers or the connection;
 * - when a bus's connection ends without `close()` (its process was killed), the broker publishes
 *   its last will (`will` option), after the messages it had published; `close()` publishes none.
 */
export interface Bus {
  /** This bus's identity on the broker; the `from` of every message it sends. */
  readonly clientId: string;

  /**
   * Validates `message` against its type's schema, wraps it in an envelope and publishes it.
   * @returns the envelope sent (its `id`, `ts`).
   * @throws InvalidInputError naming the field, when the topic or the message is invalid.
   * @throws BusAuthError when the broker refuses the topic (brokers that can say so).
   * @throws BusClosedError after `close()`.
   */
  publish(topic: string, message: MessageDraft, options?: PublishOptions): Promise<Envelope>;

  /**
   * Calls `handler` with every valid message on a topic matching `filter` (`+` one level, `#` the
   * rest). Resolves once the broker confirmed the subscription.
   * @throws InvalidInputError naming `filter` (a `$share/` filter belongs to {@link Bus.shareSubscribe}).
   * @throws BusAuthError when the broker refuses the filter.
   * @throws BusClosedError after `close()`.
   */
  subscribe(filter: string, handler: MessageHandler, options?: SubscribeOptions): Promise<Subscription>;

  /**
   * Joins `group` on `filter` (MQTT `$share/<group>/<filter>`): each matching message goes to one
   * member of the group. Used for work queues (`swarmTopics(id).work(queue)`).
   * @throws like {@link Bus.subscribe}, and InvalidInputError naming `group`.
   */
  shareSubscribe(group: string, filter: string, handler: MessageHandler, options?: SubscribeOptions): Promise<Subscription>;

  /**
   * Publishes a request (an envelope with `replyTo` set to this bus's reply topic in the same swarm)
   * and resolves with the reply whose `correlationId` is the request's `id`.
   * @param topic a swarm topic `ts/<swarmId>/…`; the reply comes on `ts/<swarmId>/reply/<clientId>`
   * @throws BusTimeoutError (retryable) when no reply came within `timeoutMs` on the bus's clock.
   * @throws BusRemoteError when the service answered with an `error` message.
   * @throws BusRequestAbortedError when `signal` aborted first.
   * @throws BusClosedError when the bus closed before the reply.
   */
  request(topic: string, message: MessageDraft, options?: RequestOptions): Promise<Envelope>;

  /**
   * Answers `request`: publishes `message` on its `replyTo` with `correlationId` = `request.id` and
   * `to` = `request.from` (unless `message.to` is set).
   * @throws InvalidInputError naming `request.replyTo` when `request` is not a request.
   */
  reply(request: Envelope, message: MessageDraft, options?: PublishOptions): Promise<Envelope>;

  /**
   * Serves requests on `filter`: `handler`'s returned draft is sent as the reply; `undefined`
   * sends none (reply later with {@link Bus.reply}); a throw is answered with an `error` message
   * (`code` from the error's `code` or `name`, `retryable` from its `retryable`). Messages without
   * `replyTo` are ignored. With `options.group`, the requests are shared among the group's members.
   */
  serve(filter: string, handler: RequestHandler, options?: ServeOptions): Promise<Subscription>;

  /** Counters since the bus was connected. */
  stats(): BusStats;

  /**
   * Closes gracefully: pending requests fail with BusClosedError, in-flight publishes finish, the
   * connection ends. Idempotent: every call returns the same promise. Later calls fail with BusClosedError.
   */
  close(): Promise<void>;
}

/** MQTT quality of service: 0 at most once, 1 at least once, 2 exactly once (between client and broker). */
export type QoS = 0 | 1 | 2;

/** Options of {@link Bus.publish} and {@link Bus.reply}. */
export interface PublishOptions {
  /** @default 1 */
  qos?: QoS;
  /**
   * Whether the broker keeps the message as the topic's last value for later subscribers.
   * @default false
   */
  retain?: boolean;
}

/** Options of {@link Bus.subscribe} and {@link Bus.shareSubscribe}. */
export interface SubscribeOptions {
  /**
   * The highest QoS to receive with. When several subscriptions of one bus use the same filter,
   * the first one's QoS applies.
   * @default 1
   */
  qos?: QoS;
}

/** Options of {@link Bus.request}. */
export interface RequestOptions {
  /**
   * How long to wait for the reply, on the bus's clock. A number > 0.
   * @default the bus's `requestTimeoutMs`
   */
  timeoutMs?: number;
  /** Aborting it ends the wait with a BusRequestAbortedError (a late reply is then ignored). */
  signal?: AbortSignal;
  /** @default 1 */
  qos?: QoS;
}

/** Options of {@link Bus.serve}. */
export interface ServeOptions extends SubscribeOptions {
  /** Share the requests among the members of this group instead of every server answering each. */
  group?: string;
}

/** How a message reached a handler. */
export interface Delivery {
  /** The topic the message was published on. */
  readonly topic: string;
  /** Whether the broker sent it as a retained message when the subscription was made. */
  readonly retained: boolean;
}

/** Receives messages. A returned promise is not awaited, but a rejection is counted and logged. */
export type MessageHandler = (envelope: Envelope, delivery: Delivery) => void | Promise<void>;

/** Answers requests (see {@link Bus.serve}). */
export type RequestHandler = (
  request: Envelope,
  delivery: Delivery,
) => MessageDraft | undefined | Promise<MessageDraft | undefined>;

/** An active subscription. */
export interface Subscription {
  /** The filter as sent to the broker (`$share/<group>/<filter>` for shared subscriptions). */
  readonly filter: string;
  /** The group of a shared subscription. */
  readonly group?: string;
  /** Stops delivery to this subscription's handler. Idempotent; a no-op after the bus closed. */
  unsubscribe(): Promise<void>;
}

/** Message counts per type. */
export interface TypeStats {
  readonly published: number;
  readonly received: number;
}

/** Counters of a bus, from {@link Bus.stats}. */
export interface BusStats {
  /** Messages published (acknowledged by the broker at QoS >= 1). */
  readonly published: number;
  /**
   * Valid messages received. A message matching several subscriptions of this bus counts once
   * per copy the broker sent.
   */
  readonly received: number;
  /** Invalid messages dropped. */
  readonly droppedInvalid: number;
  /** Invalid messages dropped, by reason. */
  readonly droppedByReason: Readonly<Record<BusMessageErrorReason, number>>;
  /** Handler calls that threw or rejected. */
  readonly handlerErrors: number;
  /** Replies that matched no waiting request (late, after a timeout, or stray). */
  readonly unmatchedReplies: number;
  /** Requests waiting for a reply now. */
  readonly pendingRequests: number;
  /** Active subscriptions made by the caller (not counting the bus's own reply subscriptions). */
  readonly subscriptions: number;
  /** Published and received counts by message type. */
  readonly byType: Readonly<Record<string, TypeStats>>;
  /** Whether its connection is up now (it reconnects by itself after a drop); absent for a bus whose connection cannot drop. */
  readonly connected?: boolean;
}

/**
 * Checks a QoS option.
 * @throws InvalidInputError naming `field`.
 */
export function compileQos(value: unknown, field: string): QoS {
  if (value === undefined) return 1;
  if (value === 0 || value === 1 || value === 2) return value;
  throw new InvalidInputError(field, `must be 0, 1 or 2, got ${JSON.stringify(value) ?? typeof value}`);
}

/**
 * Checks a handler argument.
 * @throws InvalidInputError naming `field`.
 */
export function requireFunction(value: unknown, field: string): void {
  if (typeof value !== 'function') throw new InvalidInputError(field, `must be a function, got ${typeof value}`);
}
