import { InvalidInputError, SystemClock, type Clock } from '../core/index.js';
import { providerFailureOf, type CodeContext, type Sandbox } from '../sandbox/index.js';
import { InterpreterLostError } from './errors.js';
import { environmentFailureOf, explainStop, type EnvironmentFailure, type InterpreterError } from './failures.js';
import { isTransient } from './admission/index.js';

/** What a session hears when its execution timed out and its interpreter was restarted to stop it. */
const TIMEOUT_STATE_LOST = " The session's interpreter was restarted to stop it: its state (variables, imports) is lost; its files are kept.";

/** Languages the service runs. */
export type ExecLanguage = 'python' | 'javascript';
export const EXEC_LANGUAGES: readonly ExecLanguage[] = ['python', 'javascript'];

/** Options of {@link Executor}. Every field is optional. */
export interface ExecutorOptions {
  /** What happens to a context whose execution ran out of time: kept (state survives) or restarted (clean state). @default 'restart' */
  onTimeout?: 'keep' | 'restart';
  /** Output kept per stream; more is dropped and the result says `truncated`. @default 1048576 (1 MiB) */
  maxOutputBytes?: number;
  /** Time limit of an execution that names none. @default 30000 */
  defaultTimeoutMs?: number;
  /** Longest time limit a caller may ask for. @default 300000 */
  maxTimeoutMs?: number;
  clock?: Clock;
}

export interface ExecutorConfig {
  readonly onTimeout: 'keep' | 'restart';
  readonly maxOutputBytes: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly clock: Clock;
}

/** @throws InvalidInputError naming the field. */
export function compileExecutorOptions(options: ExecutorOptions = {}): ExecutorConfig {
  const positive = (field: keyof ExecutorOptions, value: number): number => {
    if (!Number.isInteger(value) || value < 1) throw new InvalidInputError(field, `must be a whole number >= 1, got ${value}`);
    return value;
  };
  const onTimeout = options.onTimeout ?? 'restart';
  if (onTimeout !== 'keep' && onTimeout !== 'restart') throw new InvalidInputError('onTimeout', `must be 'keep' or 'restart', got ${String(onTimeout)}`);
  const maxTimeoutMs = positive('maxTimeoutMs', options.maxTimeoutMs ?? 300_000);
  const defaultTimeoutMs = positive('defaultTimeoutMs', options.defaultTimeoutMs ?? 30_000);
  if (defaultTimeoutMs > maxTimeoutMs) throw new InvalidInputError('defaultTimeoutMs', `must not exceed maxTimeoutMs (${maxTimeoutMs}), got ${defaultTimeoutMs}`);
  return Object.freeze({ onTimeout, maxOutputBytes: positive('maxOutputBytes', options.maxOutputBytes ?? 1_048_576), defaultTimeoutMs, maxTimeoutMs, clock: options.clock ?? new SystemClock() });
}

/** One piece of code to run. */
export interface ExecutionRequest {
  readonly code: string;
  readonly language: ExecLanguage;
  readonly env?: Readonly<Record<string, string>>;
  /** Time limit; default and maximum come from the executor's options. */
  readonly timeoutMs?: number;
  /**
   * The caller keeps the context's state from one execution to the next (a session): when the
   * environment ends an execution, the error then says what of that state is lost.
   * @default false
   */
  readonly stateful?: boolean;
}

/** What an execution produced, as the code interpreter returned it plus what the executor measured. */
export interface ExecutionOutcome {
  readonly stdout: string;
  readonly stderr: string;
  /** The interpreter's results (text, html, png, … and whether it is the main result). */
  readonly results: ReadonlyArray<Record<string, unknown>>;
  /**
   * The exception the code raised, if any; or, when the interpreter stopped under the code (it ran out
   * of memory, or exited), what happened and what to do (`OutOfMemoryError`, `InterpreterStoppedError`).
   */
  readonly error?: InterpreterError;
  /**
   * Set when the environment, not an exception of the code's own making, ended the execution: it ran
   * out of time or memory, its interpreter stopped, or it was interrupted. Such a result is never cached.
   */
  readonly environmentFailure?: EnvironmentFailure;
  readonly timedOut: boolean;
  /** Output beyond `maxOutputBytes` was dropped. */
  readonly truncated: boolean;
  readonly durationMs: number;
  readonly sandboxId: string;
}

/** What was done with one sandbox's interpreters since {@link Executor.takeUsage} last asked. */
export interface SandboxUsage {
  /** Languages whose interpreter was handed code (whether or not it ran to the end). */
  readonly languages: ReadonlySet<ExecLanguage>;
  /**
   * A context was dropped without a confirmed restart (it failed to start or to restart, or the
   * sandbox failed under it): its kernel, and whatever that ran, may still be alive unknown to the executor.
   */
  readonly contextDropped: boolean;
}

/** Keeps at most `limit` bytes of a stream. */
class BoundedText {
  private readonly parts: string[] = [];
  private bytes = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(text: string): void {
    const size = Buffer.byteLength(text);
    if (this.bytes + size <= this.limit) {
      this.parts.push(text);
      this.bytes += size;
      return;
    }
    const room = this.limit - this.bytes;
    if (room > 0) this.parts.push(Buffer.from(text).subarray(0, room).toString('utf8'));
    this.bytes = this.limit;
    this.truncated = true;
  }

  toString(): string {
    return this.parts.join('');
  }
}

/**
 * Runs code on a leased sandbox, in one context per language per sandbox (created on first use), with a
 * time limit and bounded output. A transient provider failure is thrown (the caller replaces the
 * sandbox and retries); the code's own errors and time-outs are results, not exceptions.
 */
export class Executor {
  readonly config: ExecutorConfig;
  private readonly contexts = new WeakMap<Sandbox, Map<ExecLanguage, Promise<CodeContext>>>();
  private readonly usage = new WeakMap<Sandbox, { languages: Set<ExecLanguage>; contextDropped: boolean }>();

  constructor(options: ExecutorOptions = {}) {
    this.config = compileExecutorOptions(options);
  }

  /** The time limit an execution gets. @throws InvalidInputError when it is over the maximum. */
  timeoutFor(request: ExecutionRequest): number {
    const timeoutMs = request.timeoutMs ?? this.config.defaultTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > this.config.maxTimeoutMs) {
      throw new InvalidInputError('timeoutMs', `must be a whole number of ms from 1 to ${this.config.maxTimeoutMs}, got ${timeoutMs}`);
    }
    return timeoutMs;
  }

  /** @throws the provider's error when it is transient (the sandbox should be replaced). */
  async run(sandbox: Sandbox, request: ExecutionRequest): Promise<ExecutionOutcome> {
    const timeoutMs = this.timeoutFor(request);
    this.usageOf(sandbox).languages.add(request.language);
    const context = await this.contextOf(sandbox, request.language);
    const stdout = new BoundedText(this.config.maxOutputBytes);
    const stderr = new BoundedText(this.config.maxOutputBytes);
    const startedMs = this.config.clock.now();
    const base = { sandboxId: sandbox.sandboxId };
    try {
      const execution = await sandbox.runCode(request.code, {
        context,
        envs: { ...request.env },
        timeoutMs,
        onStdout: (message) => stdout.push(message.line),
        onStderr: (message) => stderr.push(message.line),
      });
      // The local cloud ends executions with KernelClosedError when it closes the interpreter (sandbox
      // killed, context deleted): the sandbox side failed, not the code.
      if (execution.error?.name === 'KernelClosedError') throw new InterpreterLostError(sandbox.sandboxId, execution.error.value);
      const reported = execution.error ? { name: execution.error.name, value: execution.error.value, traceback: execution.error.traceback } : undefined;
      const environmentFailure = reported === undefined ? undefined : environmentFailureOf(reported);
      const shown = reported === undefined ? undefined : ((await this.explain(sandbox, reported, request)) ?? reported);
      return {
        ...base,
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        results: execution.results.map((result) => ({ ...result.toJSON(), isMainResult: result.isMainResult })),
        ...(shown ? { error: shown } : {}),
        ...(environmentFailure ? { environmentFailure } : {}),
        timedOut: false,
        truncated: stdout.truncated || stderr.truncated,
        durationMs: this.config.clock.now() - startedMs,
      };
    } catch (error) {
      const durationMs = this.config.clock.now() - startedMs;
      // The SDK reports its own time limit and a vanished sandbox with the same error type; only the
      // clock tells them apart.
      if (providerFailureOf(error) === 'timeout' && durationMs >= timeoutMs) {
        const restart = this.config.onTimeout === 'restart';
        if (restart) await sandbox.restartCodeContext(context).catch(() => this.forget(sandbox, request.language));
        const state = request.stateful !== true ? '' : restart ? TIMEOUT_STATE_LOST : " The session's interpreter state is kept.";
        return {
          ...base,
          stdout: stdout.toString(),
          stderr: stderr.toString(),
          results: [],
          error: { name: 'TimeoutError', value: `the execution ran past its ${timeoutMs} ms limit and was stopped.${state}`, traceback: '' },
          environmentFailure: 'timeout',
          timedOut: true,
          truncated: stdout.truncated || stderr.truncated,
          durationMs,
        };
      }
      if (isTransient(error)) this.forget(sandbox, request.language);
      throw error;
    }
  }

  /**
   * {@link explainStop} for an interpreter that stopped under the code, with the sandbox's memory limit
   * when it ran out of memory (asked of the provider then; left out when it cannot say).
   */
  private async explain(sandbox: Sandbox, error: InterpreterError, request: ExecutionRequest): Promise<InterpreterError | undefined> {
    const stateful = request.stateful === true;
    const explained = explainStop(error, { stateful, memoryLimitMb: undefined });
    if (explained?.name !== 'OutOfMemoryError') return explained;
    // Asked only now: it is what the caller of an execution that ran out of memory needs to know.
    const memoryLimitMb = await sandbox.getInfo().then(
      (info) => info.memoryMB,
      () => undefined,
    );
    return explainStop(error, { stateful, memoryLimitMb });
  }

  /**
   * Creates the contexts for `languages` on `sandbox` ahead of the first execution, so a fresh sandbox
   * does not make its first caller wait for an interpreter to start.
   * @throws the provider's error when a context cannot be created.
   */
  async prepare(sandbox: Sandbox, languages: readonly ExecLanguage[]): Promise<void> {
    await Promise.all(languages.map((language) => this.contextOf(sandbox, language)));
  }

  /**
   * Restarts the contexts of `languages` (default: every context this executor made on `sandbox`):
   * each interpreter starts over with no variables, imports or running code of an earlier execution.
   * A context that cannot be restarted is forgotten (the next execution creates a new one).
   * @returns how many contexts were restarted.
   */
  async resetContexts(sandbox: Sandbox, languages?: readonly ExecLanguage[]): Promise<number> {
    const byLanguage = this.contexts.get(sandbox);
    if (!byLanguage) return 0;
    const chosen = [...byLanguage].filter(([language]) => languages === undefined || languages.includes(language));
    const restarted = await Promise.all(
      chosen.map(async ([language, pending]) => {
        try {
          await sandbox.restartCodeContext(await pending);
          return true;
        } catch {
          this.forget(sandbox, language);
          return false;
        }
      }),
    );
    return restarted.filter(Boolean).length;
  }

  /**
   * What was done with the interpreters of `sandbox` since the last call (or since the executor first
   * used it), and starts counting again.
   */
  takeUsage(sandbox: Sandbox): SandboxUsage {
    const usage = this.usageOf(sandbox);
    this.usage.delete(sandbox);
    return usage;
  }

  /** The context of `language` this executor holds on `sandbox`, without creating one. */
  existingContext(sandbox: Sandbox, language: ExecLanguage): Promise<CodeContext> | undefined {
    return this.contexts.get(sandbox)?.get(language);
  }

  /** Forgets the contexts of `sandbox` except those of `keep` (their kernels are gone); the next execution makes new ones. */
  forgetContexts(sandbox: Sandbox, keep: readonly ExecLanguage[] = []): void {
    for (const language of EXEC_LANGUAGES) if (!keep.includes(language)) this.forget(sandbox, language);
  }

  private contextOf(sandbox: Sandbox, language: ExecLanguage): Promise<CodeContext> {
    let byLanguage = this.contexts.get(sandbox);
    if (!byLanguage) {
      byLanguage = new Map();
      this.contexts.set(sandbox, byLanguage);
    }
    let context = byLanguage.get(language);
    if (!context) {
      context = sandbox.createCodeContext({ language });
      context.catch(() => this.forget(sandbox, language));
      byLanguage.set(language, context);
    }
    return context;
  }

  private usageOf(sandbox: Sandbox): { languages: Set<ExecLanguage>; contextDropped: boolean } {
    let usage = this.usage.get(sandbox);
    if (!usage) {
      usage = { languages: new Set(), contextDropped: false };
      this.usage.set(sandbox, usage);
    }
    return usage;
  }

  private forget(sandbox: Sandbox, language: ExecLanguage): void {
    if (this.contexts.get(sandbox)?.delete(language) === true) this.usageOf(sandbox).contextDropped = true;
  }
}
