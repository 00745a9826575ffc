import { TradeswarmError, errorChain, type TradeswarmErrorOptions } from '../core/index.js';

/**
 * A wait for rate-limit tokens ended because the caller's `AbortSignal` fired. Nothing was sent to
 * the provider and no token was consumed, so trying again later can succeed (`retryable` is true).
 * The signal's `reason` is kept as `cause`.
 */
export class RateLimitWaitAbortedError extends TradeswarmError {
  override readonly name = 'RateLimitWaitAbortedError';
  /** Marker for {@link isRateLimitWaitAbortedError}; survives copies across realms and bundles. */
  readonly isRateLimitWaitAbortedError = true;

  /**
   * @param bucket which limit the wait was for (`create`, `operation`, `lifecycle` or a bucket's own name)
   * @param requestedTokens how many tokens the wait asked for
   * @param waitedMs how long it had waited when aborted (0 when the signal was already aborted)
   */
  constructor(
    readonly bucket: string,
    readonly requestedTokens: number,
    readonly waitedMs: number,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `waiting for ${requestedTokens} '${bucket}' rate-limit token(s) was aborted after ${waitedMs} ms; ` +
        'nothing was sent to the provider. Retry when the caller is ready, or allow a longer deadline if the wait was cut short',
      { ...options, retryable: true },
    );
  }
}

/** Whether `error` is a {@link RateLimitWaitAbortedError}. */
export function isRateLimitWaitAbortedError(error: unknown): error is RateLimitWaitAbortedError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { isRateLimitWaitAbortedError?: unknown }).isRateLimitWaitAbortedError === true
  );
}

/**
 * The fair queue already holds its maximum number of waiting tasks, so a new task was refused at once.
 * Retryable: wait about {@link QueueFullError.retryAfterMs} and submit again.
 */
export class QueueFullError extends TradeswarmError {
  override readonly name = 'QueueFullError';
  /** Marker for {@link isQueueFullError}; survives bundling and realm boundaries where `instanceof` may not. */
  readonly isQueueFullError = true;

  constructor(
    /** Suggested delay before submitting again, in milliseconds. */
    readonly retryAfterMs: number,
    /** The configured `maxQueueLength` that was reached. */
    readonly maxQueueLength: number,
  ) {
    super(
      `The execution service is busy: ${maxQueueLength} tasks are already waiting, which is the limit. ` +
        `Retry in about ${retryAfterMs} ms, or send fewer tasks at once.`,
      { retryable: true },
    );
  }
}

/**
 * A task waited `maxWaitMs` without starting, for its turn in the fair queue or then for a sandbox, and
 * was withdrawn (it never ran). Retryable: wait about {@link QueueTimeoutError.retryAfterMs} and submit again.
 */
export class QueueTimeoutError extends TradeswarmError {
  override readonly name = 'QueueTimeoutError';
  /** Marker for {@link isQueueTimeoutError}. */
  readonly isQueueTimeoutError = true;

  constructor(
    /** Suggested delay before submitting again, in milliseconds. */
    readonly retryAfterMs: number,
    /** The configured `maxWaitMs` the task waited for. */
    readonly maxWaitMs: number,
  ) {
    super(
      `The execution service is busy: the task waited ${maxWaitMs} ms for a free slot and sandbox and did not run. ` +
        `Retry in about ${retryAfterMs} ms; the task is safe to resubmit.`,
      { retryable: true },
    );
  }
}

/** Whether `error` is a {@link QueueFullError}. */
export function isQueueFullError(error: unknown): error is QueueFullError {
  return typeof error === 'object' && error !== null && (error as Partial<QueueFullError>).isQueueFullError === true;
}

/** Whether `error` is a {@link QueueTimeoutError}. */
export function isQueueTimeoutError(error: unknown): error is QueueTimeoutError {
  return (
    typeof error === 'object' && error !== null && (error as Partial<QueueTimeoutError>).isQueueTimeoutError === true
  );
}

/**
 * The sandbox provider failed repeatedly, so the circuit breaker is open and calls fail at once instead
 * of piling up. Retryable: try again after {@link ProviderUnavailableError.retryAfterMs}.
 */
export class ProviderUnavailableError extends TradeswarmError {
  override readonly name = 'ProviderUnavailableError';

  constructor(
    /** When the breaker will let a trial call through, in milliseconds from now. */
    readonly retryAfterMs: number,
    options: TradeswarmErrorOptions = {},
  ) {
    super(
      `The sandbox provider is failing, so new executions are refused for now (circuit breaker open). Retry in about ${retryAfterMs} ms; if it keeps happening, check the provider (E2B status, or the local cloud's log).`,
      { ...options, retryable: true },
    );
  }
}

/**
 * The service could not reach the sandbox provider when it started (connection refused, host unknown,
 * reset). Nothing was started. Retryable: the provider may be coming up.
 */
export class ProviderUnreachableError extends TradeswarmError {
  override readonly name = 'ProviderUnreachableError';

  constructor(
    /** The provider's API address as configured, or a description of E2B cloud's. */
    readonly address: string,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `could not reach the sandbox provider at ${address} (${errorChain(options.cause)}); check connection.apiUrl and connection.sandboxUrl ` +
        '(E2B_API_URL and E2B_SANDBOX_URL; unset for E2B cloud) and that the provider is running',
      { ...options, retryable: true },
    );
  }
}

/** Why the pool could not produce a usable sandbox. */
export type SandboxUnavailableReason =
  /** The sandbox started, but its build tag file was missing or held another build: the wrong image. */
  | 'wrong-build'
  /** The sandbox started with another network setting than the pool asked for (internet access or none). */
  | 'wrong-network'
  /** `createSandbox` threw (provider refused, rate limit, network, unknown template). */
  | 'create-failed'
  /** The sandbox started, but reading its build tag failed for another reason than a missing file. */
  | 'health-check-failed';

/** Reasons no retry can help with: the provider hands out the wrong kind of sandbox until it, or the pool, is fixed. */
const PERMANENT_REASONS: ReadonlySet<SandboxUnavailableReason> = new Set(['wrong-build', 'wrong-network']);

/**
 * A new sandbox's build tag (the file at `buildTagPath`) was missing or did not match the pool's
 * `buildTag`, so the sandbox runs another image than the pool was configured for. It was killed and
 * never used. Usually found as the `cause` of a {@link SandboxUnavailableError}.
 */
export class SandboxBuildMismatchError extends TradeswarmError {
  override readonly name = 'SandboxBuildMismatchError';
  /** Marker for {@link isSandboxBuildMismatchError}. */
  readonly isSandboxBuildMismatchError = true;

  /**
   * @param template the template the sandbox was created from
   * @param buildTagPath where the tag was read
   * @param expected the pool's `buildTag`
   * @param found the file's content (trimmed), or `undefined` when the file does not exist
   */
  constructor(
    readonly template: string,
    readonly buildTagPath: string,
    readonly expected: string,
    readonly found: string | undefined,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      found === undefined
        ? `a sandbox of template '${template}' has no build tag at ${buildTagPath} (expected '${expected}'): ` +
            `the template is not the build this pool expects. Rebuild the template with the tag file, or fix the pool's template/buildTag`
        : `a sandbox of template '${template}' has build tag '${found}' at ${buildTagPath}, but the pool expects '${expected}': ` +
            `publish build '${expected}' of the template, or set the pool's buildTag to the build you mean to run`,
      { ...options, retryable: false },
    );
  }
}

/** Whether `error` is a {@link SandboxBuildMismatchError}. */
export function isSandboxBuildMismatchError(error: unknown): error is SandboxBuildMismatchError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Partial<SandboxBuildMismatchError>).isSandboxBuildMismatchError === true
  );
}

/**
 * A new sandbox did not have the network the pool asked for: the provider reported internet access
 * when the pool asked for none, or the reverse (a provider that does not say counts as giving access,
 * its default). It was killed and never used. Usually found as the `cause` of a {@link SandboxUnavailableError}.
 */
export class SandboxNetworkMismatchError extends TradeswarmError {
  override readonly name = 'SandboxNetworkMismatchError';
  /** Marker for {@link isSandboxNetworkMismatchError}. */
  readonly isSandboxNetworkMismatchError = true;

  /**
   * @param template the template the sandbox was created from
   * @param sandboxId the sandbox that was killed
   * @param expected the pool's `allowInternetAccess`
   * @param found what the provider reported
   */
  constructor(
    readonly template: string,
    readonly sandboxId: string,
    readonly expected: boolean,
    readonly found: boolean,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      found
        ? `sandbox ${sandboxId} of template '${template}' has internet access, but the pool asked for none (allowInternetAccess: false), ` +
            'so it was killed unused: check that the provider honours allowInternetAccess (a local cloud needs network namespaces)'
        : `sandbox ${sandboxId} of template '${template}' has no internet access, but the pool asked for it (allowInternetAccess: true), ` +
            'so it was killed unused: check the provider\'s network settings for the template',
      { ...options, retryable: false },
    );
  }
}

/** Whether `error` is a {@link SandboxNetworkMismatchError}. */
export function isSandboxNetworkMismatchError(error: unknown): error is SandboxNetworkMismatchError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Partial<SandboxNetworkMismatchError>).isSandboxNetworkMismatchError === true
  );
}

/**
 * `acquire()` (or `start()`) gave up: `attempts` sandboxes in a row could not be created or failed
 * their health check while the caller waited. The last failure is the `cause`. Retryable unless the
 * reason is `wrong-build` or `wrong-network` (then no retry helps until the template, the provider or
 * the pool's `buildTag` / `allowInternetAccess` is fixed).
 */
export class SandboxUnavailableError extends TradeswarmError {
  override readonly name = 'SandboxUnavailableError';
  /** Marker for {@link isSandboxUnavailableError}. */
  readonly isSandboxUnavailableError = true;

  /**
   * @param template the template the pool creates sandboxes from
   * @param attempts how many sandboxes failed in a row
   * @param reason why the last one failed
   * @param options `cause`: the last failure
   */
  constructor(
    readonly template: string,
    readonly attempts: number,
    readonly reason: SandboxUnavailableReason,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    const last = options.cause instanceof Error ? options.cause.message : String(options.cause);
    const advice =
      reason === 'wrong-build'
        ? 'No sandbox of the wrong image is used; fix the template or the pool\'s buildTag'
        : reason === 'wrong-network'
          ? 'No sandbox with the wrong network is used; fix the provider or the pool\'s allowInternetAccess'
          : 'Check the provider connection (apiKey, apiUrl), the template name and the sandbox quota, then retry';
    super(`no usable sandbox of template '${template}' after ${attempts} attempt(s) (${reason}): ${last}. ${advice}`, {
      ...options,
      retryable: !PERMANENT_REASONS.has(reason),
    });
  }
}

/** Whether `error` is a {@link SandboxUnavailableError}. */
export function isSandboxUnavailableError(error: unknown): error is SandboxUnavailableError {
  return (
    typeof error === 'object' && error !== null && (error as Partial<SandboxUnavailableError>).isSandboxUnavailableError === true
  );
}

/**
 * A wait in `acquire()` ended because the caller's `AbortSignal` fired. No sandbox was leased, so
 * trying again can succeed (`retryable`). The signal's `reason` is the `cause`.
 */
export class PoolAcquireAbortedError extends TradeswarmError {
  override readonly name = 'PoolAcquireAbortedError';
  /** Marker for {@link isPoolAcquireAbortedError}. */
  readonly isPoolAcquireAbortedError = true;

  /** @param waitedMs how long the call had waited (0 when the signal was already aborted) */
  constructor(
    readonly waitedMs: number,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(`waiting for a sandbox was aborted after ${waitedMs} ms; no sandbox was leased. Retry when the caller is ready`, {
      ...options,
      retryable: true,
    });
  }
}

/** Whether `error` is a {@link PoolAcquireAbortedError}. */
export function isPoolAcquireAbortedError(error: unknown): error is PoolAcquireAbortedError {
  return (
    typeof error === 'object' && error !== null && (error as Partial<PoolAcquireAbortedError>).isPoolAcquireAbortedError === true
  );
}

/** The pool is closing or closed: `acquire()` was refused, or a waiting call was ended by `close()`. */
export class PoolClosedError extends TradeswarmError {
  override readonly name = 'PoolClosedError';
  /** Marker for {@link isPoolClosedError}. */
  readonly isPoolClosedError = true;

  constructor() {
    super('the sandbox pool is closed (or closing) and leases no more sandboxes; create a new pool to run more code', {
      retryable: false,
    });
  }
}

/** Whether `error` is a {@link PoolClosedError}. */
export function isPoolClosedError(error: unknown): error is PoolClosedError {
  return typeof error === 'object' && error !== null && (error as Partial<PoolClosedError>).isPoolClosedError === true;
}

/** The execution service is closing or closed; nothing new is accepted. */
export class ExecServiceClosedError extends TradeswarmError {
  override readonly name = 'ExecServiceClosedError';

  constructor() {
    super('the execution service is closing or closed and accepts no more work; start a new one (or retry against another instance)', {
      retryable: false,
    });
  }
}

/**
 * An execution or a close named a session that the caller has no open session by: never opened, closed,
 * expired, lost, or opened by someone else. Those cases share one message, so a caller learns nothing
 * of other callers' sessions.
 */
export class SessionNotFoundError extends TradeswarmError {
  override readonly name = 'SessionNotFoundError';

  constructor(readonly session: string) {
    super(
      `session: you have no open session '${session}' (not opened by you, closed, expired after being idle, or lost with its sandbox); ` +
        'send the user that opened it, or open a new one with POST /v1/exec/sessions',
      { retryable: false },
    );
  }
}

/**
 * A new session was refused. `scope: 'user'`: this user already holds the most sessions a user may
 * (`maxSessionsPerUser`); not retryable, close one of them first. `scope: 'service'`: the service holds
 * the most sessions in all (`maxSessions`, the size of the sessions' pool); retryable after
 * `retryAfterMs`, when the soonest idle session would be closed (not retryable when `limit` is 0:
 * the service runs no sessions).
 */
export class SessionLimitError extends TradeswarmError {
  override readonly name = 'SessionLimitError';
  /** With `scope: 'service'`: when to try again, in ms (the soonest an open session ends by being idle). */
  readonly retryAfterMs?: number;

  constructor(
    readonly scope: 'service' | 'user',
    readonly limit: number,
    retryAfterMs?: number,
  ) {
    super(
      scope === 'user'
        ? `this user already holds ${limit} open session(s), the most a user may; close one (DELETE /v1/exec/sessions/<id>?user=<user>) or run without a session`
        : limit === 0
          ? 'this service runs no sessions (sessions.maxSessions is 0); run without a session'
          : `the service already holds ${limit} open sessions in all, the most it allows; retry in about ${Math.ceil((retryAfterMs ?? 0) / 1000)} s ` +
            '(an idle session is closed by then, unless it is used meanwhile) or run without a session',
      { retryable: scope === 'service' && limit > 0 },
    );
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** A session's sandbox failed, so its interpreter state is gone; the session was closed. */
export class SessionLostError extends TradeswarmError {
  override readonly name = 'SessionLostError';

  constructor(
    readonly session: string,
    options: { cause?: unknown } = {},
  ) {
    super(`session '${session}' lost its sandbox and its state with it; open a new session and run the setup code again`, { ...options, retryable: false });
  }
}

/**
 * The interpreter was closed under a running execution by the sandbox side (the sandbox was killed or
 * the context deleted), not by the code. Transient: the execution is retried on another sandbox.
 */
export class InterpreterLostError extends TradeswarmError {
  override readonly name = 'InterpreterLostError';

  constructor(
    readonly sandboxId: string,
    readonly detail: string,
  ) {
    super(`the interpreter in sandbox ${sandboxId} was closed while the code ran (${detail}); the sandbox is replaced and the code run again`, { retryable: true });
  }
}

/**
 * The quick tidy-up of a used sandbox found what it may not handle (a process of the user still
 * running, something it could not remove, a kept file changed): the sandbox is scrubbed instead.
 */
export class SandboxTidyError extends TradeswarmError {
  override readonly name = 'SandboxTidyError';

  constructor(
    readonly sandboxId: string,
    readonly detail: string,
  ) {
    super(`sandbox ${sandboxId} could not be tidied up (${detail}); scrub it instead, or replace it`, { retryable: false });
  }
}
