import { TradeswarmError, type TradeswarmErrorOptions } from '../core/index.js';

/**
 * The root of the bus's errors. `retryable` says whether the same call may succeed later (a
 * timeout, a lost connection) or not (bad credentials, a closed bus).
 */
export class BusError extends TradeswarmError {
  override readonly name: string = 'BusError';
  /** Marker for {@link isBusError}; survives bundling and realm boundaries where `instanceof` may not. */
  readonly isBusError = true;
}

/** Whether `error` is a {@link BusError}. */
export function isBusError(error: unknown): error is BusError {
  return typeof error === 'object' && error !== null && (error as Partial<BusError>).isBusError === true;
}

/**
 * A request got no reply within its timeout. The request may or may not have been handled (the
 * reply may be late, or no one serves the topic), so retry only idempotent requests. Retryable.
 */
export class BusTimeoutError extends BusError {
  override readonly name = 'BusTimeoutError';
  /** Marker for {@link isBusTimeoutError}. */
  readonly isBusTimeoutError = true;

  /**
   * @param topic the topic the request was published on
   * @param timeoutMs the timeout that ran out
   */
  constructor(
    readonly topic: string,
    readonly timeoutMs: number,
  ) {
    super(
      `no reply to the request on '${topic}' within ${timeoutMs} ms. Check that a service subscribes to that topic ` +
        '(bus.serve) and is connected, then retry, or allow a longer timeoutMs',
      { retryable: true },
    );
  }
}

/** Whether `error` is a {@link BusTimeoutError}. */
export function isBusTimeoutError(error: unknown): error is BusTimeoutError {
  return typeof error === 'object' && error !== null && (error as Partial<BusTimeoutError>).isBusTimeoutError === true;
}

/** Why an incoming message was dropped. */
export type BusMessageErrorReason =
  /** Larger than the bus's `maxMessageBytes`. */
  | 'oversize'
  /** Not UTF-8 JSON. */
  | 'not-json'
  /** JSON, but not a version-1 envelope (a field is missing or has the wrong kind). */
  | 'invalid-envelope'
  /** A valid envelope whose `type` the bus's message registry does not know. */
  | 'unknown-type'
  /** The payload does not match the schema registered for its `type`. */
  | 'invalid-payload';

/**
 * An incoming message could not be decoded. The bus drops such a message, counts it
 * (`stats().droppedInvalid`) and logs this error; it is never thrown into a subscriber. Not
 * retryable: the same bytes fail again; the sender must be fixed.
 */
export class BusMessageError extends BusError {
  override readonly name = 'BusMessageError';
  /** Marker for {@link isBusMessageError}. */
  readonly isBusMessageError = true;

  /**
   * @param topic the topic the message arrived on
   * @param reason what kind of problem it is
   * @param field the path of the offending field (`payload.seq`, `type`), or `(message)` for the whole message
   * @param detail what is wrong with it
   */
  constructor(
    readonly topic: string,
    readonly reason: BusMessageErrorReason,
    readonly field: string,
    readonly detail: string,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `dropped a message on '${topic}' (${reason}): ${field}: ${detail}. The sender must publish a version-1 ` +
        'envelope whose type is registered (defineMessage) and whose payload matches that type\'s schema',
      { ...options, retryable: false },
    );
  }
}

/** Whether `error` is a {@link BusMessageError}. */
export function isBusMessageError(error: unknown): error is BusMessageError {
  return typeof error === 'object' && error !== null && (error as Partial<BusMessageError>).isBusMessageError === true;
}

/**
 * The bus is closed (or closing): `close()` was called, or the connection ended for good (for
 * example its credentials were revoked; that reason is the `cause`). Create a new bus to go on.
 */
export class BusClosedError extends BusError {
  override readonly name = 'BusClosedError';
  /** Marker for {@link isBusClosedError}. */
  readonly isBusClosedError = true;

  /** @param operation what was attempted (`publish`, `subscribe`, `request`, …) */
  constructor(
    readonly operation: string,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    const why = options.cause instanceof Error ? ` (${options.cause.message})` : '';
    super(`cannot ${operation}: the bus is closed${why}. Connect a new bus (connectBus) to go on`, {
      ...options,
      retryable: false,
    });
  }
}

/** Whether `error` is a {@link BusClosedError}. */
export function isBusClosedError(error: unknown): error is BusClosedError {
  return typeof error === 'object' && error !== null && (error as Partial<BusClosedError>).isBusClosedError === true;
}

/** What the broker refused. */
export type BusAuthOperation = 'connect' | 'subscribe' | 'publish';

/**
 * The broker refused the credentials (`connect`), or refused access to a topic (`subscribe`,
 * `publish`). Not retryable with the same credentials and topic.
 */
export class BusAuthError extends BusError {
  override readonly name = 'BusAuthError';
  /** Marker for {@link isBusAuthError}. */
  readonly isBusAuthError = true;

  /**
   * @param operation what was refused
   * @param target the broker URL (connect) or the topic/filter (subscribe, publish)
   * @param code the MQTT return or reason code the broker sent, when known
   */
  constructor(
    readonly operation: BusAuthOperation,
    readonly target: string,
    readonly code: number | undefined,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    const codeText = code === undefined ? '' : ` (MQTT code ${code})`;
    const advice =
      operation === 'connect'
        ? 'Check the username and password (issue them with the broker\'s issueCredentials); they may have been revoked'
        : "Agents may subscribe only to topics of their own swarm (ts/<swarmId>/…), built with swarmTopics(swarmId), and publish only on their own (see the embedded broker's issueCredentials)";
    super(`the broker refused to ${operation} '${target}'${codeText}. ${advice}`, { ...options, retryable: false });
  }
}

/** Whether `error` is a {@link BusAuthError}. */
export function isBusAuthError(error: unknown): error is BusAuthError {
  return typeof error === 'object' && error !== null && (error as Partial<BusAuthError>).isBusAuthError === true;
}

/**
 * The broker could not be reached or the connection failed before it was established. Retryable:
 * the broker may be starting or the network briefly down.
 */
export class BusConnectionError extends BusError {
  override readonly name = 'BusConnectionError';
  /** Marker for {@link isBusConnectionError}. */
  readonly isBusConnectionError = true;

  /** @param url the broker URL (without credentials) */
  constructor(
    readonly url: string,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    const why = options.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`could not connect to the MQTT broker at ${url}${why}. Check that the broker runs and the URL is right, then retry`, {
      ...options,
      retryable: true,
    });
  }
}

/** Whether `error` is a {@link BusConnectionError}. */
export function isBusConnectionError(error: unknown): error is BusConnectionError {
  return (
    typeof error === 'object' && error !== null && (error as Partial<BusConnectionError>).isBusConnectionError === true
  );
}

/**
 * A request's `AbortSignal` fired before the reply came. The signal's `reason` is the `cause`.
 * Retryable when the caller is ready again (the request may have been handled anyway).
 */
export class BusRequestAbortedError extends BusError {
  override readonly name = 'BusRequestAbortedError';
  /** Marker for {@link isBusRequestAbortedError}. */
  readonly isBusRequestAbortedError = true;

  /** @param topic the topic the request was published on */
  constructor(
    readonly topic: string,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(`the request on '${topic}' was aborted by its caller before a reply came`, { ...options, retryable: true });
  }
}

/** Whether `error` is a {@link BusRequestAbortedError}. */
export function isBusRequestAbortedError(error: unknown): error is BusRequestAbortedError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Partial<BusRequestAbortedError>).isBusRequestAbortedError === true
  );
}

/**
 * The service answered a request with an `error` message (its handler threw, or it chose to
 * refuse). `code`, `remoteMessage` and `retryable` are the ones the service sent.
 */
export class BusRemoteError extends BusError {
  override readonly name = 'BusRemoteError';
  /** Marker for {@link isBusRemoteError}. */
  readonly isBusRemoteError = true;

  /**
   * @param topic the topic the request was published on
   * @param code the service's error code
   * @param remoteMessage the service's explanation
   * @param from the client id of the service that answered
   */
  constructor(
    readonly topic: string,
    readonly code: string,
    readonly remoteMessage: string,
    readonly from: string,
    retryable: boolean,
  ) {
    super(`the service '${from}' answered the request on '${topic}' with error ${code}: ${remoteMessage}`, { retryable });
  }
}

/** Whether `error` is a {@link BusRemoteError}. */
export function isBusRemoteError(error: unknown): error is BusRemoteError {
  return typeof error === 'object' && error !== null && (error as Partial<BusRemoteError>).isBusRemoteError === true;
}
