/**
 * Errors thrown by the code-interpreter kernels. Failures of user code are not thrown: they
 * reach the caller as `error` messages of the execution.
 */
import { inspect } from 'node:util';

/** Base class of every error thrown by the kernel driver; recognise it with {@link isKernelError}. */
export class KernelError extends Error {
  /** Marker that survives crossing realms, unlike `instanceof`. */
  readonly isKernelError = true;

  override readonly name: string = 'KernelError';
}

/** True when `error` was thrown by the kernel driver. */
export function isKernelError(error: unknown): error is KernelError {
  return typeof error === 'object' && error !== null && (error as { isKernelError?: unknown }).isKernelError === true;
}

/** The requested language has no kernel. */
export class UnsupportedKernelLanguageError extends KernelError {
  override readonly name = 'UnsupportedKernelLanguageError';

  /** @param language The language that was asked for. */
  constructor(readonly language: string) {
    super(`There is no code-interpreter kernel for language "${language}". Use "python" or "javascript" (alias "js").`);
  }
}

/** Details of a kernel process that ended before it reported ready. */
export interface KernelStartFailure {
  /** Language of the kernel. */
  readonly language: string;
  /** Command line that was started. */
  readonly argv: readonly string[];
  /** Exit code, when the process exited by itself. */
  readonly exitCode: number | null;
  /** Signal that ended the process, if any. */
  readonly signal: NodeJS.Signals | null;
  /** The last part of what the process wrote to stderr, to show why it failed. */
  readonly stderr: string;
}

/** The kernel process could not be started, or exited before it reported ready. */
export class KernelStartError extends KernelError {
  override readonly name = 'KernelStartError';

  /**
   * @param failure What was started and how it ended.
   * @param cause The underlying spawn error, if spawning itself failed.
   */
  constructor(readonly failure: KernelStartFailure, cause?: unknown) {
    const ending = cause !== undefined
      ? `could not be spawned (${cause instanceof Error ? cause.message : inspect(cause)})`
      : `exited before it was ready (${describeExit(failure.exitCode, failure.signal)})`;
    const stderr = failure.stderr.trim() === '' ? '' : `\nIts stderr ends with:\n${failure.stderr.trimEnd()}`;
    super(
      `The ${failure.language} kernel \`${failure.argv.join(' ')}\` ${ending}. `
        + 'Check that the interpreter exists in the sandbox and that the kernels directory is mounted where kernelCommand() expects it.'
        + stderr,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** The kernel process did not report ready in time; it has been killed. */
export class KernelStartTimeoutError extends KernelError {
  override readonly name = 'KernelStartTimeoutError';

  /**
   * @param language Language of the kernel.
   * @param timeoutMs How long the driver waited.
   * @param stderr What the process wrote to stderr meanwhile.
   */
  constructor(readonly language: string, readonly timeoutMs: number, readonly stderr: string) {
    super(
      `The ${language} kernel did not report ready within ${timeoutMs} ms and was killed. `
        + 'If the sandbox is just slow to start, raise startTimeoutMs; otherwise check its stderr'
        + (stderr.trim() === '' ? ' (it wrote nothing).' : `:\n${stderr.trimEnd()}`),
    );
  }
}

/** The kernel was closed with `close()`; it cannot run code or restart any more. */
export class KernelClosedError extends KernelError {
  override readonly name = 'KernelClosedError';

  /** @param language Language of the kernel. */
  constructor(readonly language: string) {
    super(`This ${language} kernel was closed. Start a new kernel with Kernel.start() to run more code.`);
  }
}

/** An option passed to the kernel driver is invalid. */
export class InvalidKernelOptionError extends KernelError {
  override readonly name = 'InvalidKernelOptionError';

  /**
   * @param option Name of the option.
   * @param problem What is wrong with it and what to pass instead.
   */
  constructor(readonly option: string, problem: string) {
    super(`Invalid kernel option "${option}": ${problem}`);
  }
}

/** "exit code 1" / "signal SIGKILL", for messages. */
export function describeExit(exitCode: number | null, signal: NodeJS.Signals | null): string {
  if (signal !== null) {
    return `killed by signal ${signal}`;
  }
  return exitCode === null ? 'exit status unknown' : `exit code ${exitCode}`;
}
