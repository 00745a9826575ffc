import { posix } from 'node:path';
import { FileType, type CommandHandle, type Sandbox } from 'e2b';
import { InvalidInputError, SystemClock, createLogger, errorMessage, type Clock, type Logger } from '../core/index.js';
import type { AgentBundle } from './bundle.js';
import { CODE_CACHE_LOADER, codeCacheOf, codeCachePathOf } from './codecache.js';
import { AgentDeployError, AgentStopError } from './errors.js';
import { isCommandExitError } from './failures.js';
import { LineSplitter, LineTail } from './lines.js';

/** What {@link deployAgent} needs of a sandbox: the SDK's `Sandbox` (or `@e2b/code-interpreter`'s) fits. */
export type DeploySandbox = Pick<Sandbox, 'sandboxId' | 'files' | 'commands'>;

/** The signals an agent can be sent (SIGSTOP and SIGCONT make it slow, not dead: fault injection). */
export const AGENT_SIGNALS = ['SIGTERM', 'SIGKILL', 'SIGSTOP', 'SIGCONT'] as const;
/** One of {@link AGENT_SIGNALS}. */
export type AgentSignal = (typeof AGENT_SIGNALS)[number];

/** Folder the bundle is written to unless `path` says otherwise. */
export const DEFAULT_AGENT_DIR = '/home/user/tradeswarm';

/**
 * Where {@link deployAgent} puts `bundle` unless told otherwise: named by its hash, so a template
 * that already holds the file (see `skipWriteIfPresent`) spares every sandbox the upload.
 */
export function defaultBundlePath(bundle: Pick<AgentBundle, 'sha256'>): string {
  return `${DEFAULT_AGENT_DIR}/agent-${bundle.sha256.slice(0, 12)}.cjs`;
}

/**
 * The files {@link deployAgent} writes for `bundle` at `path` (default {@link defaultBundlePath}):
 * the bundle and, with `codeCache`, its V8 code cache for this process's Node. A template that holds
 * them spares its sandboxes the upload.
 */
export function agentFiles(bundle: Pick<AgentBundle, 'code' | 'sha256'>, options: { path?: string; codeCache?: boolean } = {}): Record<string, string | Uint8Array<ArrayBuffer>> {
  const path = options.path ?? defaultBundlePath(bundle);
  return { [path]: bundle.code, ...(options.codeCache === false ? {} : { [codeCachePathOf(path)]: codeCacheOf(bundle) }) };
}

/** Agent names: used in file and log names, so one safe path segment. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Environment variable names a shell accepts. */
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Options of {@link deployAgent}. `bundle` and `name` are required. */
export interface DeployAgentOptions {
  /** The bundle to run, from `buildBundle`. */
  bundle: AgentBundle;
  /** The agent's id (one path segment: letters, digits, `.`, `_`, `-`); used in file and log names. */
  name: string;
  /**
   * Environment variables of the agent's process (the SDK's `envs`), on top of the sandbox's own.
   * @default {}
   */
  env?: Record<string, string>;
  /**
   * Working directory of the process (absolute, must exist).
   * @default the sandbox user's home
   */
  cwd?: string;
  /**
   * Where the bundle is written in the sandbox. Absolute, ending in `.cjs` (the bundle is CommonJS).
   * @default '/home/user/tradeswarm/agent-<first 12 hex digits of bundle.sha256>.cjs'
   */
  path?: string;
  /**
   * Start the bundle with a V8 code cache made on this machine (written next to it as
   * `<path>.v8cache`), so the agent skips compiling it: about 20 ms less CPU per agent start. A
   * sandbox whose Node differs from this one rejects the cache and compiles as without it (the agent
   * sees `TS_CODE_CACHE=rejected`); turn it off there to spare the upload.
   * @default true
   */
  codeCache?: boolean;
  /**
   * The Node.js executable in the sandbox (a name looked up in `PATH`, or an absolute path).
   * @default 'node'
   */
  nodeBinary?: string;
  /**
   * Skip the upload when a file of the bundle's size is already at `path`. Safe with the default
   * `path`, which names the bundle's hash; with a `path` of your own, a different bundle of the same
   * size would be run instead. One extra round trip (`files.getInfo`) when the file is missing. The
   * code cache is not checked: a missing one only means the bundle is compiled.
   * @default false (always write)
   */
  skipWriteIfPresent?: boolean;
  /**
   * Lines of stdout and of stderr kept for {@link DeployedAgent.stdoutTail} / `stderrTail`. A whole number from 1 to 10_000.
   * @default 50
   */
  tailLines?: number;
  /**
   * Called with every whole line the agent prints on stdout (without the line end); the last,
   * unterminated line comes when the process ends. An exception thrown here is logged and ignored.
   */
  onStdout?: (line: string) => void;
  /** Like `onStdout`, for stderr. */
  onStderr?: (line: string) => void;
  /**
   * Timers of `stop()` (the grace period and the wait after SIGKILL).
   * @default new SystemClock()
   */
  clock?: Clock;
  /** @default createLogger('sandbox') */
  logger?: Logger;
}

/** The complete, validated form of {@link DeployAgentOptions}. */
export interface DeployAgentConfig {
  readonly bundle: AgentBundle;
  readonly name: string;
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | undefined;
  readonly path: string;
  readonly codeCache: boolean;
  readonly nodeBinary: string;
  readonly skipWriteIfPresent: boolean;
  readonly tailLines: number;
  readonly onStdout: ((line: string) => void) | undefined;
  readonly onStderr: ((line: string) => void) | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * How an agent's process ended.
 * - `exit`: it exited by itself with `exitCode`.
 * - `signal`: a signal ended it (SIGKILL, or SIGTERM it did not handle); `exitCode` is -1 and `error`
 *   says which (`signal: killed`).
 * - `lost`: the connection to the process broke (the sandbox was killed, timed out or is unreachable);
 *   `exitCode` is -1 and `error` holds the SDK's message. The process is most likely gone with its sandbox.
 *
 * A killed or timed-out sandbox shows as `lost`: E2B and the local cloud alike cut its connections, and
 * the SDK reports a TimeoutError ("the sandbox was killed or reached its end of life").
 */
export interface AgentExit {
  readonly exitCode: number;
  readonly reason: 'exit' | 'signal' | 'lost';
  readonly error?: string;
}

/** Options of {@link DeployedAgent.stop}. */
export interface StopAgentOptions {
  /**
   * How long to wait for the agent to exit after SIGTERM before sending SIGKILL. A number >= 0.
   * @default 5_000
   */
  graceMs?: number;
  /**
   * How long to wait for the end of the process after SIGKILL before giving up with `AgentStopError`. A number >= 0.
   * @default 5_000
   */
  killWaitMs?: number;
}

/** An agent process started in a sandbox by {@link deployAgent}. */
export interface DeployedAgent {
  /** The process id inside the sandbox (of `node` itself). */
  readonly pid: number;
  readonly name: string;
  readonly sandboxId: string;
  /** Where the bundle is in the sandbox. */
  readonly path: string;
  /** Whether this deployment uploaded the bundle (`false` when `skipWriteIfPresent` found it there). */
  readonly bundleWritten: boolean;
  /** Milliseconds spent writing the bundle (or checking it was there) and starting the process (until its pid was known). */
  readonly timings: { readonly writeMs: number; readonly startMs: number };
  /** Resolves when the process has ended, however it ended; never rejects. */
  readonly exited: Promise<AgentExit>;
  /** How the process ended, or `undefined` while it runs. */
  readonly exit: AgentExit | undefined;
  /** The last lines printed on stdout (up to `tailLines`), oldest first. */
  stdoutTail(): string[];
  /** The last lines printed on stderr (up to `tailLines`), oldest first. */
  stderrTail(): string[];
  /**
   * Sends `signal` to the process: SIGKILL through `sandbox.commands.kill`, the others by running
   * `kill -<NAME> <pid>` in the sandbox (the SDK has no call for other signals).
   * @returns `false` when the process had already ended (nothing was sent), else `true`.
   * @throws the SDK's error when the sandbox cannot be reached.
   */
  signal(signal: AgentSignal): Promise<boolean>;
  /**
   * Stops the agent: SIGTERM, up to `graceMs` for it to exit, then SIGKILL. Returns how it ended (at
   * once when it already had). Errors sending the signals are logged, not thrown.
   * @throws AgentStopError when no end was reported within `killWaitMs` after SIGKILL, or at once when
   *   SIGKILL could not be sent (the sandbox is paused or unreachable; `cause` says why).
   * @throws InvalidInputError naming `graceMs` or `killWaitMs`.
   */
  stop(options?: StopAgentOptions): Promise<AgentExit>;
  /**
   * Stops following the process (its output and its end) and leaves it running, for another control
   * plane to take over with {@link attachAgent}. `exited` then settles as `lost`.
   */
  detach(): void;
}

/**
 * Validates options and fills in defaults.
 * @throws InvalidInputError naming the field.
 */
export function compileDeployAgentOptions(options: DeployAgentOptions): DeployAgentConfig {
  const { bundle, name } = options;
  if (typeof bundle?.code !== 'string' || typeof bundle.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(bundle.sha256)) {
    throw new InvalidInputError('bundle', 'must be an AgentBundle from buildBundle() (with code and a hex sha256)');
  }
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new InvalidInputError('name', `must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`);
  }
  const env = options.env ?? {};
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_NAME_PATTERN.test(key)) throw new InvalidInputError('env', `variable name ${JSON.stringify(key)} is not valid: use letters, digits and '_', not starting with a digit`);
    if (typeof value !== 'string') throw new InvalidInputError(`env.${key}`, `must be a string, got ${typeof value}`);
  }
  if (options.cwd !== undefined && (typeof options.cwd !== 'string' || !posix.isAbsolute(options.cwd))) {
    throw new InvalidInputError('cwd', `must be an absolute path in the sandbox, got ${String(options.cwd)}`);
  }
  const path = options.path ?? defaultBundlePath(bundle);
  if (typeof path !== 'string' || !posix.isAbsolute(path) || !path.endsWith('.cjs')) {
    throw new InvalidInputError('path', `must be an absolute path ending in .cjs (the bundle is CommonJS, and Node reads a .js file by the nearest package.json), got ${String(path)}`);
  }
  const codeCache = options.codeCache ?? true;
  if (typeof codeCache !== 'boolean') throw new InvalidInputError('codeCache', `must be true or false, got ${String(codeCache)}`);
  const nodeBinary = options.nodeBinary ?? 'node';
  if (typeof nodeBinary !== 'string' || nodeBinary.length === 0) throw new InvalidInputError('nodeBinary', 'must be a non-empty command name or path');
  const tailLines = options.tailLines ?? 50;
  if (!Number.isInteger(tailLines) || tailLines < 1 || tailLines > 10_000) {
    throw new InvalidInputError('tailLines', `must be a whole number from 1 to 10000, got ${tailLines}`);
  }
  return Object.freeze({
    bundle,
    name,
    env: Object.freeze({ ...env }),
    cwd: options.cwd,
    path,
    codeCache,
    nodeBinary,
    skipWriteIfPresent: options.skipWriteIfPresent ?? false,
    tailLines,
    onStdout: options.onStdout,
    onStderr: options.onStderr,
    clock: options.clock ?? new SystemClock(),
    logger: options.logger ?? createLogger('sandbox'),
  });
}

/**
 * Deploys an agent into `sandbox` through the e2b SDK: writes the bundle (and its code cache) with
 * `sandbox.files.write` (parent folders are created), then starts `exec <nodeBinary> <path>` (through
 * the code-cache loader, `-e <loader> <path> <cache>`, when `codeCache`) in the background with
 * `sandbox.commands.run` (no command timeout: the agent runs until it exits, is stopped, or the
 * sandbox ends). `exec` makes the reported pid that of `node` itself, so signals reach the agent
 * and not the shell the SDK wraps every command in.
 *
 * Output is split into lines for `onStdout` / `onStderr` and kept in a tail for error messages.
 *
 * @throws InvalidInputError naming the field when an option is invalid.
 * @throws AgentDeployError (retryable) when writing the bundle or starting the process failed.
 */
export async function deployAgent(sandbox: DeploySandbox, options: DeployAgentOptions): Promise<DeployedAgent> {
  const config = compileDeployAgentOptions(options);
  const logger = config.logger.child({ agent: config.name, sandboxId: sandbox.sandboxId });

  const writeStarted = performance.now();
  let bundleWritten = true;
  try {
    if (config.skipWriteIfPresent && (await sizeAt(sandbox, config.path)) === config.bundle.bytes) bundleWritten = false;
    else await Promise.all(Object.entries(agentFiles(config.bundle, config)).map(([path, content]) => sandbox.files.write(path, toArrayBuffer(content))));
  } catch (error) {
    throw new AgentDeployError(config.name, sandbox.sandboxId, 'write', { cause: error });
  }
  const writeMs = performance.now() - writeStarted;

  const { stdout, stderr, stdoutTail, stderrTail } = outputOf(config.tailLines, config, logger);

  const startStarted = performance.now();
  let handle: CommandHandle;
  try {
    const script = config.codeCache ? ['-e', CODE_CACHE_LOADER, config.path, codeCachePathOf(config.path)] : [config.path];
    handle = await sandbox.commands.run(`exec ${[config.nodeBinary, ...script].map(shellQuote).join(' ')}`, {
      background: true,
      envs: { ...config.env },
      ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
      timeoutMs: 0,
      onStdout: (chunk) => stdout.push(chunk),
      onStderr: (chunk) => stderr.push(chunk),
    });
  } catch (error) {
    throw new AgentDeployError(config.name, sandbox.sandboxId, 'start', { cause: error });
  }
  const startMs = performance.now() - startStarted;
  logger.debug({ pid: handle.pid, path: config.path, bundleWritten, writeMs: Math.round(writeMs), startMs: Math.round(startMs) }, 'agent started');

  return new RunningAgent(sandbox, config, logger, handle, bundleWritten, { writeMs, startMs }, stdoutTail, stderrTail, () => {
    stdout.flush();
    stderr.flush();
  });
}

/** Options of {@link attachAgent}. */
export interface AttachAgentOptions extends Pick<DeployAgentOptions, 'tailLines' | 'onStdout' | 'onStderr' | 'clock' | 'logger'> {
  /** The agent's id, as it was deployed. */
  name: string;
  /** The process id of the agent's `node` in the sandbox (see `sandbox.commands.list()`). */
  pid: number;
  /** Where its bundle is in the sandbox. */
  path: string;
}

/**
 * Takes over an agent process that another control plane deployed and that still runs: connects to
 * it through `sandbox.commands.connect` (its output from now on, its end, its signals), as
 * {@link deployAgent} would have returned it. Nothing is written or started; `bundleWritten` is
 * `false`, and `timings.startMs` is the time the connection took.
 * @throws AgentDeployError (retryable) when the process cannot be connected to (it ended, or the sandbox is unreachable).
 */
export async function attachAgent(sandbox: DeploySandbox, options: AttachAgentOptions): Promise<DeployedAgent> {
  const config = { name: options.name, path: options.path, clock: options.clock ?? new SystemClock() };
  const tailLines = options.tailLines ?? 50;
  const logger = (options.logger ?? createLogger('sandbox')).child({ agent: options.name, sandboxId: sandbox.sandboxId });
  const { stdout, stderr, stdoutTail, stderrTail } = outputOf(tailLines, options, logger);
  const started = performance.now();
  let handle: CommandHandle;
  try {
    handle = await sandbox.commands.connect(options.pid, { timeoutMs: 0, onStdout: (chunk) => stdout.push(chunk), onStderr: (chunk) => stderr.push(chunk) });
  } catch (error) {
    throw new AgentDeployError(options.name, sandbox.sandboxId, 'attach', { cause: error });
  }
  const startMs = performance.now() - started;
  logger.debug({ pid: handle.pid, startMs: Math.round(startMs) }, 'agent attached');
  return new RunningAgent(sandbox, config, logger, handle, false, { writeMs: 0, startMs }, stdoutTail, stderrTail, () => {
    stdout.flush();
    stderr.flush();
  });
}

/** The line splitters and tails of an agent's stdout and stderr, calling `onStdout` / `onStderr` with each line. */
function outputOf(tailLines: number, callbacks: Pick<DeployAgentOptions, 'onStdout' | 'onStderr'>, logger: Logger) {
  const stdoutTail = new LineTail(tailLines);
  const stderrTail = new LineTail(tailLines);
  const deliver = (tail: LineTail, callback: ((line: string) => void) | undefined, stream: string) => (line: string) => {
    tail.push(line);
    if (!callback) return;
    try {
      callback(line);
    } catch (error) {
      // A throwing callback must not end the SDK's event loop for this process (it would lose the exit).
      logger.warn({ stream, error: errorMessage(error) }, 'an output callback threw; the line was dropped for it');
    }
  };
  return {
    stdoutTail,
    stderrTail,
    stdout: new LineSplitter(deliver(stdoutTail, callbacks.onStdout, 'stdout')),
    stderr: new LineSplitter(deliver(stderrTail, callbacks.onStderr, 'stderr')),
  };
}

/** The size of the file at `path`, or `undefined` when there is none. */
async function sizeAt(sandbox: DeploySandbox, path: string): Promise<number | undefined> {
  try {
    const info = await sandbox.files.getInfo(path);
    return info.type === FileType.FILE ? info.size : undefined;
  } catch (error) {
    if (errorName(error) === 'NotFoundError' || errorName(error) === 'FileNotFoundError') return undefined;
    throw error;
  }
}

/**
 * The SDK's errors are told apart by `name`, not `instanceof`: a second copy of the SDK (another
 * package's dependency, or ESM next to CJS) has classes of its own.
 */
function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

/** What `files.write` takes: a string as it is, bytes as an ArrayBuffer of exactly their length. */
function toArrayBuffer(content: string | Uint8Array<ArrayBuffer>): string | ArrayBuffer {
  if (typeof content === 'string') return content;
  return content.byteOffset === 0 && content.byteLength === content.buffer.byteLength ? content.buffer : content.buffer.slice(content.byteOffset, content.byteOffset + content.byteLength);
}

/** Quotes `value` as one word for bash. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** How a process ended, from what `CommandHandle.wait()` settled with. */
function exitOf(outcome: { ok: true; exitCode: number } | { ok: false; error: unknown }): AgentExit {
  if (outcome.ok) return { exitCode: outcome.exitCode, reason: 'exit' };
  const error = outcome.error;
  if (isCommandExitError(error)) {
    const message = error.error;
    const bySignal = error.exitCode === -1 && message !== undefined && message.startsWith('signal:');
    return { exitCode: error.exitCode, reason: bySignal ? 'signal' : 'exit', ...(message === undefined ? {} : { error: message }) };
  }
  return { exitCode: -1, reason: 'lost', error: `lost the connection to the process: ${errorMessage(error)}` };
}

class RunningAgent implements DeployedAgent {
  readonly pid: number;
  readonly name: string;
  readonly sandboxId: string;
  readonly path: string;
  readonly exited: Promise<AgentExit>;
  private ended: AgentExit | undefined;

  constructor(
    private readonly sandbox: DeploySandbox,
    private readonly config: Pick<DeployAgentConfig, 'name' | 'path' | 'clock'>,
    private readonly logger: Logger,
    private readonly handle: CommandHandle,
    readonly bundleWritten: boolean,
    readonly timings: { readonly writeMs: number; readonly startMs: number },
    private readonly stdout: LineTail,
    private readonly stderr: LineTail,
    flush: () => void,
  ) {
    this.pid = handle.pid;
    this.name = config.name;
    this.sandboxId = sandbox.sandboxId;
    this.path = config.path;
    this.exited = handle.wait().then(
      (result) => exitOf({ ok: true, exitCode: result.exitCode }),
      (error: unknown) => exitOf({ ok: false, error }),
    ).then((exit) => {
      flush();
      this.ended = exit;
      const level = exit.reason === 'exit' && exit.exitCode === 0 ? 'debug' : 'info';
      logger[level]({ pid: this.pid, ...exit, stderrTail: this.stderr.lines().slice(-5) }, 'agent process ended');
      return exit;
    });
  }

  get exit(): AgentExit | undefined {
    return this.ended;
  }

  stdoutTail(): string[] {
    return this.stdout.lines();
  }

  detach(): void {
    void this.handle.disconnect();
  }

  stderrTail(): string[] {
    return this.stderr.lines();
  }

  async signal(signal: AgentSignal): Promise<boolean> {
    if (!AGENT_SIGNALS.includes(signal)) throw new InvalidInputError('signal', `must be one of ${AGENT_SIGNALS.join(', ')}, got ${String(signal)}`);
    // Once the end is known the pid may belong to another process; send nothing.
    if (this.ended) return false;
    if (signal === 'SIGKILL') return this.sandbox.commands.kill(this.pid);
    try {
      await this.sandbox.commands.run(`kill -${signal.slice('SIG'.length)} ${this.pid}`);
      return true;
    } catch (error) {
      // `kill` exits 1 when there is no such process: it ended meanwhile.
      if (isCommandExitError(error)) return false;
      throw error;
    }
  }

  async stop(options: StopAgentOptions = {}): Promise<AgentExit> {
    const graceMs = options.graceMs ?? 5_000;
    const killWaitMs = options.killWaitMs ?? 5_000;
    if (!(graceMs >= 0)) throw new InvalidInputError('graceMs', `must be a number >= 0, got ${graceMs}`);
    if (!(killWaitMs >= 0)) throw new InvalidInputError('killWaitMs', `must be a number >= 0, got ${killWaitMs}`);
    if (this.ended) return this.ended;

    await this.trySignal('SIGTERM');
    const graceful = await this.waitForExit(graceMs);
    if (graceful) return graceful;
    this.logger.info({ pid: this.pid, graceMs }, 'agent did not exit after SIGTERM; sending SIGKILL');
    const unsent = await this.trySignal('SIGKILL');
    // A SIGKILL that did not reach the sandbox (paused, unreachable) reports no exit however long one waits.
    if (unsent !== undefined) throw new AgentStopError(this.name, this.sandboxId, this.pid, graceMs, { cause: unsent });
    const killed = await this.waitForExit(killWaitMs);
    if (killed) return killed;
    throw new AgentStopError(this.name, this.sandboxId, this.pid, graceMs + killWaitMs);
  }

  /** Sends `signal`; returns why it could not be sent, if it could not. */
  private async trySignal(signal: AgentSignal): Promise<unknown> {
    try {
      await this.signal(signal);
      return undefined;
    } catch (error) {
      this.logger.warn({ pid: this.pid, signal, error: errorMessage(error) }, 'could not signal the agent');
      return error;
    }
  }

  /** The exit, if it comes within `timeoutMs`. */
  private async waitForExit(timeoutMs: number): Promise<AgentExit | undefined> {
    if (this.ended) return this.ended;
    const clock = this.config.clock;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = clock.setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      if (timer) clock.clearTimeout(timer);
    }
  }
}
