import { NotFoundError, RateLimitError, SandboxError, TimeoutError } from '@e2b/code-interpreter';

/**
 * What a failed call to the sandbox provider means, told from the SDK's error types, so that callers
 * (the exec service's retries and breaker, the rate limiter) need not know them:
 * - `rate-limited`: the provider refused for its rate limits (HTTP 429);
 * - `timeout`: a request, or an execution's time limit, ran out, or the sandbox vanished mid-request
 *   (the SDK reports both the same way; only the clock tells them apart);
 * - `not-found`: the sandbox (or a file, or a context in it) is gone;
 * - `unreachable`: the connection to the provider was refused, reset or closed mid-answer;
 * - `server-error`: the provider answered 5xx.
 */
export type ProviderFailure = 'rate-limited' | 'timeout' | 'not-found' | 'unreachable' | 'server-error';

const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT']);

/** What `error` says of the provider (see {@link ProviderFailure}); `undefined` for anything else. */
export function providerFailureOf(error: unknown): ProviderFailure | undefined {
  if (error instanceof RateLimitError) return 'rate-limited';
  if (error instanceof TimeoutError) return 'timeout';
  if (error instanceof NotFoundError) return 'not-found';
  if (isUnreachable(error)) return 'unreachable';
  // SandboxError carries the HTTP status in its message for server-side failures.
  if (error instanceof SandboxError && /^5\d\d\b/.test(error.message)) return 'server-error';
  return undefined;
}

/** Whether the connection to the provider failed or broke (refused, reset, unreachable, closed mid-answer). */
function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown; cause?: { code?: unknown } } | undefined)?.cause?.code ?? (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
  return error instanceof TypeError && /fetch failed|terminated|other side closed/i.test(error.message);
}

/** The SDK's `CommandExitError`: a command ended with a non-zero exit code or by a signal. */
export interface CommandExit extends Error {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** How it ended when not by itself, e.g. `signal: killed`. */
  readonly error?: string;
}

/**
 * Whether `error` is the SDK's `CommandExitError`. Told by `name`, not `instanceof`: a second copy of
 * the SDK (another package's dependency, or ESM next to CJS) has classes of its own.
 */
export function isCommandExitError(error: unknown): error is CommandExit {
  return error instanceof Error && error.name === 'CommandExitError' && typeof (error as { exitCode?: unknown }).exitCode === 'number';
}
