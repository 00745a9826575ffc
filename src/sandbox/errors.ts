import { TradeswarmError, errorMessage, type TradeswarmErrorOptions } from '../core/index.js';

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
  | 'start';

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
    const what = stage === 'write' ? 'writing its bundle' : 'starting its process';
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
