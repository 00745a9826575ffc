import { InvalidInputError, TradeswarmError, errorChain, type TradeswarmErrorOptions } from '../core/index.js';

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

/**
 * The sandbox provider has no template of the name the service was given (it answered 404 when asked
 * for a sandbox of it). Not retryable: name a template the provider has. `field` names where the name
 * came from (`template` from code; a CLI names its flag or environment variable).
 */
export class TemplateNotFoundError extends InvalidInputError {
  override readonly name = 'TemplateNotFoundError';

  constructor(
    readonly template: string,
    /** What the provider answered, e.g. the templates a local cloud has. */
    readonly providerMessage: string,
    field = 'template',
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(field, `the sandbox provider has no template '${template}' (${providerMessage}); name a template it has, or leave ${field} out for the default`, {
      ...options,
      retryable: false,
    });
  }
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
