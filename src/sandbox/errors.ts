import { InvalidInputError, TradeswarmError, errorMessage, type TradeswarmErrorOptions } from '../core/index.js';

/** One message of esbuild, with where it points (absolute file, 1-based line, 0-based column). */
export interface BundleMessage {
  readonly text: string;
  /** Absolute path of the file the message is about; absent for messages without a location. */
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** The source line the message points at. */
  readonly lineText?: string;
}

/** `file:line:column: text` (or just `text` when esbuild gave no location). */
export function formatBundleMessage(message: BundleMessage): string {
  if (message.file === undefined) return message.text;
  return `${message.file}:${message.line ?? 0}:${message.column ?? 0}: ${message.text}`;
}

/**
 * esbuild could not bundle the agent's entry: a syntax error, an import that does not resolve, a
 * feature the output format lacks. {@link BundleBuildError.messages} holds esbuild's errors with
 * file and line; the message lists them. Not retryable: fix the source (or install the package) first.
 */
export class BundleBuildError extends TradeswarmError {
  override readonly name = 'BundleBuildError';
  /** Marker for {@link isBundleBuildError}; survives bundling and realm boundaries where `instanceof` may not. */
  readonly isBundleBuildError = true;

  /**
   * @param entry the entry file that was bundled
   * @param messages esbuild's errors (at least one)
   * @param options `cause`: esbuild's own failure
   */
  constructor(
    readonly entry: string,
    readonly messages: readonly BundleMessage[],
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    const listed = messages.map((message) => `  ${formatBundleMessage(message)}`).join('\n');
    super(
      `bundling the agent from ${entry} failed with ${messages.length} error(s):\n${listed}\n` +
        'Fix the source (or install the missing package) and build again',
      { ...options, retryable: false },
    );
  }
}

/** Whether `error` is a {@link BundleBuildError}. */
export function isBundleBuildError(error: unknown): error is BundleBuildError {
  return typeof error === 'object' && error !== null && (error as Partial<BundleBuildError>).isBundleBuildError === true;
}

/** Which step of a deployment failed. */
export type AgentDeployStage =
  /** Uploading the bundle with `sandbox.files.write` (or checking what is already there). */
  | 'write'
  /** Starting the Node process with `sandbox.commands.run`. */
  | 'start'
  /** Connecting to a process that already runs with `sandbox.commands.connect` (see `attachAgent`). */
  | 'attach';

/**
 * Deploying an agent into a sandbox failed before its process ran: the bundle could not be written, or
 * the process could not be started. Usually the sandbox is gone or unreachable (the SDK's error is
 * the `cause`): retryable, deploy again, on a new sandbox if this one is dead. Not retryable when the
 * sandbox refused the request itself (the SDK's `InvalidArgumentError`, e.g. a `cwd` that does not exist).
 */
export class AgentDeployError extends TradeswarmError {
  override readonly name = 'AgentDeployError';
  /** Marker for {@link isAgentDeployError}. */
  readonly isAgentDeployError = true;

  /**
   * @param agent the agent's name
   * @param sandboxId the sandbox it was deployed to
   * @param stage the step that failed
   * @param options `cause`: the SDK's error
   */
  constructor(
    readonly agent: string,
    readonly sandboxId: string,
    readonly stage: AgentDeployStage,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    const what = stage === 'write' ? 'writing its bundle' : stage === 'start' ? 'starting its process' : 'connecting to its running process';
    const refused = options.cause instanceof Error && options.cause.name === 'InvalidArgumentError';
    super(
      `deploying agent '${agent}' into sandbox ${sandboxId} failed while ${what}: ${errorMessage(options.cause)}. ` +
        (refused
          ? 'The sandbox refused the request: fix the deployment options (path, cwd) and deploy again'
          : 'Check that the sandbox is still running (it may have timed out or been killed) and deploy again, on a new sandbox if needed'),
      { ...options, retryable: !refused },
    );
  }
}

/** Whether `error` is an {@link AgentDeployError}. */
export function isAgentDeployError(error: unknown): error is AgentDeployError {
  return typeof error === 'object' && error !== null && (error as Partial<AgentDeployError>).isAgentDeployError === true;
}

/**
 * `stop()` sent SIGTERM and then SIGKILL, but no end of the process was reported within the wait
 * after SIGKILL: the sandbox is probably unreachable. The process may or may not still run. Retryable:
 * call `stop()` again, or kill the sandbox.
 */
export class AgentStopError extends TradeswarmError {
  override readonly name = 'AgentStopError';
  /** Marker for {@link isAgentStopError}. */
  readonly isAgentStopError = true;

  constructor(
    readonly agent: string,
    readonly sandboxId: string,
    readonly pid: number,
    readonly waitedMs: number,
    options: Omit<TradeswarmErrorOptions, 'retryable'> = {},
  ) {
    super(
      `agent '${agent}' (pid ${pid} in sandbox ${sandboxId}) did not report an exit within ${waitedMs} ms of SIGTERM and SIGKILL; ` +
        'the sandbox is probably unreachable. Kill the sandbox to be sure the agent is gone',
      { ...options, retryable: true },
    );
  }
}

/** Whether `error` is an {@link AgentStopError}. */
export function isAgentStopError(error: unknown): error is AgentStopError {
  return typeof error === 'object' && error !== null && (error as Partial<AgentStopError>).isAgentStopError === true;
}

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

/**
 * E2B cloud needs an API key and none was given: neither the connection's `apiKey` nor
 * `E2B_API_KEY`. An {@link InvalidInputError} naming `E2B_API_KEY`, saying what to set and where
 * the key comes from; not retryable until it is set.
 */
export class MissingApiKeyError extends InvalidInputError {
  override readonly name = 'MissingApiKeyError';

  constructor() {
    super(
      'E2B_API_KEY',
      'is not set, and E2B cloud sandboxes need it: export E2B_API_KEY=<your key from https://e2b.dev/dashboard>, ' +
        'or use --sandbox local to run sandboxes on this machine',
    );
  }
}
