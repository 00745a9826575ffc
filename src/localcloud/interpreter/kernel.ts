/**
 * Drives one persistent code-interpreter kernel process (Python or JavaScript) and turns its
 * output into the newline-delimited JSON messages the E2B code-interpreter SDK reads from
 * `POST /execute`.
 *
 * Wiring: the kernel gets stdin (closed at once, so `input()` fails fast instead of hanging),
 * stdout and stderr as pipes, plus a control channel on fd 3 that carries newline-delimited
 * JSON (see the header of each kernel file for the message shapes). Everything user code
 * prints, including output of child processes, travels on fd 1 and 2 and is forwarded as
 * `stdout`/`stderr` messages as it arrives. When a cell ends the kernel writes the execution's
 * marker to fd 1 and fd 2 and then sends `done`; the execution is reported finished only once
 * both markers have been read, so no output of the execution can arrive after its end.
 *
 * Cheap restarts: a kernel whose `ready` says `"reset": "fork"` (the Python zygote) is restarted
 * without a new process: the driver sends `reset` with a new token, the zygote forks a fresh worker,
 * which writes the token's `ready` fence to fd 1 and 2 before it says `ready`; output read before
 * the fences belongs to the old worker and is dropped. When a worker dies while the zygote lives,
 * the zygote writes the `exit` fence to fd 1 and 2 and sends `exited`; the driver treats it as the
 * kernel's death once both fences were read (so the worker's last output is delivered first). A
 * kernel whose `ready` says `"idle_is_fresh": true` (the JavaScript kernel started as root, which
 * drops to the user on its first execution) is already fresh until it runs code: restarting it
 * then does nothing. Markers are `NUL tradeswarm:<token>:<execution id | ready | exit> NUL`.
 */
import { spawn as spawnChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Duplex } from 'node:stream';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';

import {
  InvalidKernelOptionError,
  KernelClosedError,
  KernelStartError,
  KernelStartTimeoutError,
  UnsupportedKernelLanguageError,
  describeExit,
} from './errors.js';

/** Languages that have a kernel. */
export type KernelLanguage = 'python' | 'javascript';

/** Absolute path of the kernel programs on the host: `src/localcloud/kernels`, or `dist/localcloud/kernels` where the build copies them (scripts/build.ts). */
export const KERNELS_HOST_DIR = fileURLToPath(new URL('../kernels', import.meta.url));

/** Where the kernels directory is bind-mounted, read-only, inside every sandbox. */
export const KERNELS_SANDBOX_DIR = '/opt/tradeswarm/kernels';

/**
 * A file every local sandbox holds (read-only) and no E2B sandbox does: its presence tells a client
 * that the sandbox's code interpreter is this one, with guarantees to build on. Restarting a Python
 * context ends every process its worker started, daemons in sessions of their own included (the zygote
 * is their subreaper and kills them all before it forks the next worker), and the new worker cannot be
 * traced by other processes of the user before its first execution. A JavaScript context runs as root,
 * out of reach of user code, until its first execution.
 */
export const LOCAL_INTERPRETER_MARKER = path.posix.join(KERNELS_SANDBOX_DIR, 'python_kernel.py');

/**
 * Interpreter that runs the Python kernel: Debian's system Python 3.11, whose science stack (numpy,
 * pandas, matplotlib, scipy) comes from Debian's python3-* packages (`.ci/run` installs them; the
 * kernel names the missing package when code imports one that is not installed).
 */
export const PYTHON_INTERPRETER = '/usr/bin/python3';

/** Text printed by user code (`print`, `console.log`, child processes), streamed as it is written. */
export interface KernelOutputMessage {
  readonly type: 'stdout' | 'stderr';
  readonly text: string;
  /** When the driver read the text, in microseconds since the Unix epoch. */
  readonly timestamp: number;
}

/**
 * The value of the cell's last expression (`is_main_result`): Python `repr(value)` (nothing for
 * `None`), JavaScript `util.inspect(value)` (nothing for `undefined`), plus rich formats the value
 * offers (Python `_repr_html_` and friends; binary formats are base64). Python also sends one, not
 * main, per `display(...)` object and per matplotlib figure shown (`plt.show()` or left open at the
 * end of the cell, as a PNG), in the order they happened.
 */
export interface KernelResultMessage {
  readonly type: 'result';
  readonly is_main_result: boolean;
  readonly text?: string;
  readonly html?: string;
  readonly markdown?: string;
  readonly svg?: string;
  readonly png?: string;
  readonly jpeg?: string;
  readonly pdf?: string;
  readonly latex?: string;
  readonly json?: unknown;
  readonly javascript?: string;
  /** A matplotlib figure's data as E2B gives it (`results[i].chart`: line, scatter, bar, pie, or a superchart of several axes). */
  readonly chart?: unknown;
}

/** An exception raised by the cell, or a failure of the kernel itself (`KernelDiedError`, ...). */
export interface KernelErrorMessage {
  readonly type: 'error';
  /** Exception class, e.g. `ZeroDivisionError`, `KeyboardInterrupt`, `TypeError`, `InterruptedError`. */
  readonly name: string;
  /** Exception message. */
  readonly value: string;
  /** Formatted traceback; cells are named `Cell In[3]` (Python) and `Cell[3]` (JavaScript). */
  readonly traceback: string;
}

/** The kernel's execution counter after this execution; always the last message of a completed execution. */
export interface KernelExecutionCountMessage {
  readonly type: 'number_of_executions';
  readonly execution_count: number;
}

/** One line of the `/execute` response stream, exactly as the E2B SDK parses it. */
export type KernelMessage = KernelOutputMessage | KernelResultMessage | KernelErrorMessage | KernelExecutionCountMessage;

/** Options the driver passes to a {@link KernelSpawner}. */
export interface KernelSpawnOptions {
  /** Environment of the kernel process. */
  readonly env: Record<string, string>;
  /** Working directory of the kernel process. */
  readonly cwd: string;
  /** How many extra `'pipe'` entries to add to stdio after stdin, stdout and stderr (1 means fd 3). */
  readonly extraFds: number;
}

/**
 * Starts `argv` (inside a sandbox, or on the host) with stdio `['pipe', 'pipe', 'pipe', ...extraFds × 'pipe']`.
 * SIGINT sent to the returned process must reach the kernel: interrupts rely on it.
 */
export interface KernelSpawner {
  (argv: string[], options: KernelSpawnOptions): ChildProcess;
}

/** Options of {@link Kernel.start}. */
export interface KernelStartOptions {
  /** Language of the kernel. */
  readonly language: KernelLanguage;
  /** Starts the kernel process; {@link spawnKernelOnHost} runs it directly on this machine. */
  readonly spawn: KernelSpawner;
  /** Directory holding the kernel programs as the spawned process sees it ({@link KERNELS_SANDBOX_DIR} in a sandbox). */
  readonly kernelsDir: string;
  /** Working directory of the kernel. */
  readonly cwd: string;
  /** Environment of the kernel. */
  readonly env: Record<string, string>;
  /** How long to wait for the kernel to report ready. @default 10_000 */
  readonly startTimeoutMs?: number;
  /**
   * How long an interrupted (or aborted) execution may keep running before the kernel is
   * killed; the execution then ends with `KernelDiedError`. Code that ignores SIGINT, such as
   * Python's `os.system('sleep 600')`, is stopped this way. `Infinity` never kills. @default 5_000
   */
  readonly interruptGraceMs?: number;
  /**
   * After the kernel reports an execution done, how long to wait for its end markers on
   * stdout/stderr. They arrive at once unless user code redirected fd 1 or 2 away from the
   * pipe; after this the execution ends anyway. @default 2_000
   */
  readonly outputDrainTimeoutMs?: number;
}

/** Options of {@link Kernel.execute}. */
export interface KernelExecuteOptions {
  /** Environment variables set for this execution only, restored afterwards. */
  readonly envVars?: Record<string, string>;
  /** Receives every message of the execution, in order. If it throws, `execute` rejects with that error once the execution ends. */
  readonly onMessage: (message: KernelMessage) => void;
  /** Aborting interrupts the execution (or drops it if it has not started); the kernel keeps its state. */
  readonly signal?: AbortSignal;
}

/** Why a kernel process ended. */
export type KernelExitReason = 'exited' | 'closed' | 'interrupt-timeout' | 'protocol-error' | 'start-timeout';

/** Passed to {@link Kernel.onExit} listeners. */
export interface KernelExitInfo {
  readonly reason: KernelExitReason;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface KernelConfig {
  readonly language: KernelLanguage;
  readonly spawn: KernelSpawner;
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
  readonly startTimeoutMs: number;
  readonly interruptGraceMs: number;
  readonly outputDrainTimeoutMs: number;
}

type OutputStreamName = 'stdout' | 'stderr';

interface Execution {
  readonly id: number;
  readonly code: string;
  readonly envVars: Record<string, string>;
  readonly onMessage: (message: KernelMessage) => void;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  state: 'queued' | 'running' | 'finished';
  /** Result and error messages, held until all output of the execution has been forwarded. */
  readonly held: KernelMessage[];
  /** Set when the kernel reported the execution done. */
  executionCount: number | undefined;
  readonly awaitingMarker: Record<OutputStreamName, boolean>;
  callbackError: { error: unknown } | undefined;
  interruptTimer: NodeJS.Timeout | undefined;
  sigintTimer: NodeJS.Timeout | undefined;
  drainTimer: NodeJS.Timeout | undefined;
  detachSignal: (() => void) | undefined;
}

interface OutputStreamState {
  readonly decoder: StringDecoder;
  carry: string;
}

interface StartWaiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

/** `worker-exited`: the zygote reported its worker's end, which was handled then; the process goes quietly. */
type KillReason = 'restart' | 'worker-exited' | Exclude<KernelExitReason, 'exited'>;

const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_INTERRUPT_GRACE_MS = 5_000;
const DEFAULT_OUTPUT_DRAIN_TIMEOUT_MS = 2_000;
/** After the process exits, how long to wait for pipes a surviving grandchild may hold open. */
const EXIT_OUTPUT_WAIT_MS = 250;
/** Output printed between executions is handed to the next one; beyond this many characters the oldest is dropped. */
const MAX_PENDING_OUTPUT_CHARS = 1 << 20;
/** A marker prefix without its closing NUL after this many characters was user text after all. */
const MAX_MARKER_LENGTH = 64;
/** Environment variable that hands the first token to a Python zygote (which removes it). */
const TOKEN_ENV = 'TRADESWARM_KERNEL_TOKEN';
const READY_FENCE = 'ready';
const EXIT_FENCE = 'exit';
const MARKER_END = '\u0000';
/**
 * How long after an interrupt request the driver sends SIGINT. The JavaScript kernel stops an
 * awaiting cell on the control message alone, at once; SIGINT is only needed for a cell stuck in
 * synchronous code, and is only safe there: Node's vm SIGINT watchdog can kill the process or
 * leave a stray termination behind when the signal lands just as a cell's synchronous part ends.
 */
const SIGINT_DELAY_MS: Record<KernelLanguage, number> = { python: 0, javascript: 25 };

/**
 * Maps a language name from an API request to a kernel language.
 * @throws UnsupportedKernelLanguageError for anything but python and javascript/js.
 */
export function parseKernelLanguage(language: string): KernelLanguage {
  switch (language.trim().toLowerCase()) {
    case 'python':
    case 'python3':
      return 'python';
    case 'javascript':
    case 'js':
      return 'javascript';
    default:
      throw new UnsupportedKernelLanguageError(language);
  }
}

/**
 * The command line that starts a kernel.
 * @param language `python`, `javascript` or `js`.
 * @param kernelsDir Directory holding the kernel programs, as the started process sees it. @default KERNELS_SANDBOX_DIR
 * @throws UnsupportedKernelLanguageError for other languages.
 */
export function kernelCommand(language: string, kernelsDir: string = KERNELS_SANDBOX_DIR): string[] {
  if (parseKernelLanguage(language) === 'python') {
    return [PYTHON_INTERPRETER, '-u', path.posix.join(kernelsDir, 'python_kernel.py')];
  }
  return [process.execPath, path.posix.join(kernelsDir, 'javascript_kernel.cjs')];
}

/** A {@link KernelSpawner} that runs the kernel directly on this machine, without a sandbox. */
export const spawnKernelOnHost: KernelSpawner = (argv, options) => {
  const [command, ...args] = argv;
  if (command === undefined) {
    throw new InvalidKernelOptionError('argv', 'the command line is empty; build it with kernelCommand().');
  }
  return spawnChildProcess(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe', ...Array.from({ length: options.extraFds }, () => 'pipe' as const)],
  });
};

function compileKernelOptions(options: KernelStartOptions): KernelConfig {
  const language = parseKernelLanguage(options.language);
  const duration = (name: string, value: number | undefined, fallback: number, allowInfinity: boolean): number => {
    const result = value ?? fallback;
    if (Number.isNaN(result) || result <= 0 || (!allowInfinity && !Number.isFinite(result))) {
      throw new InvalidKernelOptionError(name, `expected a positive number of milliseconds${allowInfinity ? ' or Infinity' : ''}, got ${String(value)}.`);
    }
    return result;
  };
  if (options.kernelsDir.trim() === '') {
    throw new InvalidKernelOptionError('kernelsDir', `pass KERNELS_SANDBOX_DIR ("${KERNELS_SANDBOX_DIR}") inside a sandbox or KERNELS_HOST_DIR on the host.`);
  }
  return {
    language,
    spawn: options.spawn,
    argv: kernelCommand(language, options.kernelsDir),
    cwd: options.cwd,
    env: { ...options.env },
    startTimeoutMs: duration('startTimeoutMs', options.startTimeoutMs, DEFAULT_START_TIMEOUT_MS, false),
    interruptGraceMs: duration('interruptGraceMs', options.interruptGraceMs, DEFAULT_INTERRUPT_GRACE_MS, true),
    outputDrainTimeoutMs: duration('outputDrainTimeoutMs', options.outputDrainTimeoutMs, DEFAULT_OUTPUT_DRAIN_TIMEOUT_MS, false),
  };
}

function nowMicroseconds(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

function errorMessage(name: string, value: string): KernelErrorMessage {
  return { type: 'error', name, value, traceback: `${name}: ${value}` };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The public message for a `result`/`error` control message, or undefined if it is malformed. */
function toPublicMessage(message: Record<string, unknown>): KernelMessage | undefined {
  if (message.type === 'error') {
    return {
      type: 'error',
      name: String(message.name),
      value: String(message.value),
      traceback: String(message.traceback),
    };
  }
  const { id: _id, ...fields } = message;
  if (typeof fields.text !== 'string' && fields.text !== undefined) {
    return undefined;
  }
  const result: KernelResultMessage = { ...fields, type: 'result', is_main_result: fields.is_main_result !== false };
  return result;
}

function streamFinished(stream: Readable | null): Promise<void> {
  if (stream === null || stream.readableEnded || stream.destroyed) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

/**
 * One persistent kernel process: a Python or JavaScript namespace that keeps its state across
 * executions. Executions run one at a time, in the order `execute` was called.
 *
 * @example
 * const kernel = await Kernel.start({ language: 'python', spawn, kernelsDir: KERNELS_SANDBOX_DIR, cwd: '/home/user', env: {} });
 * await kernel.execute('x = 1', { onMessage: (message) => response.write(`${JSON.stringify(message)}\n`) });
 */
export class Kernel {
  /** Language of the kernel. */
  readonly language: KernelLanguage;

  private readonly config: KernelConfig;
  private child: ChildProcess | undefined;
  private control: Duplex | undefined;
  private generation = 0;
  private state: 'starting' | 'ready' | 'dead' | 'closed' = 'dead';
  private nonce = '';
  private nextExecutionId = 1;
  /** SIGINTs sent to the current process; the JavaScript kernel uses it to spot a SIGINT Node's watchdog swallowed. */
  private sigintsSent = 0;
  private readonly queue: Execution[] = [];
  private current: Execution | undefined;
  private outputs: Record<OutputStreamName, OutputStreamState> = Kernel.freshOutputs();
  private pendingOutput: { stream: OutputStreamName; text: string }[] = [];
  private pendingOutputChars = 0;
  private startWaiter: StartWaiter | undefined;
  private killReason: KillReason | undefined;
  private lastExit: { exitCode: number | null; signal: NodeJS.Signals | null } | undefined;
  private exitHandled: Promise<void> = Promise.resolve();
  /** What the running process said in `ready`: it forks fresh workers on `reset`, it is fresh until it runs code. */
  private resetByFork = false;
  private idleIsFresh = false;
  /** Pid of the process that runs the code, as it reported itself. */
  private workerPid: number | undefined;
  /** An execution was sent to the worker since it became ready. */
  private executedSinceReady = false;
  /** Waiting for the worker's `ready` message (start or reset). */
  private readyPending = false;
  /** Per stream: output read now belongs to a worker that was reset away, up to the new worker's fence. */
  private discarding: Record<OutputStreamName, boolean> = { stdout: false, stderr: false };
  /** The zygote reported the worker's end; handled once both exit fences were read (or after outputDrainTimeoutMs). */
  private workerExit: { exitCode: number | null; signal: NodeJS.Signals | null; fences: Record<OutputStreamName, boolean>; timer: NodeJS.Timeout } | undefined;
  /** The worker's end was reported to listeners; the process itself ending later is not reported again. */
  private workerExitReported = false;
  /** Per stream: the current worker's exit fence was read (it may come before the `exited` message). */
  private exitFenceSeen: Record<OutputStreamName, boolean> = { stdout: false, stderr: false };
  private restarting: Promise<void> | undefined;
  private readonly exitListeners = new Set<(info: KernelExitInfo) => void>();

  private constructor(config: KernelConfig) {
    this.config = config;
    this.language = config.language;
  }

  /**
   * Starts a kernel process and resolves once it reported ready.
   * @throws InvalidKernelOptionError for invalid options.
   * @throws UnsupportedKernelLanguageError for an unknown language.
   * @throws KernelStartError if the process cannot be spawned or exits before it is ready.
   * @throws KernelStartTimeoutError if it is not ready within `startTimeoutMs` (it is killed).
   */
  static async start(options: KernelStartOptions): Promise<Kernel> {
    const kernel = new Kernel(compileKernelOptions(options));
    await kernel.launch();
    return kernel;
  }

  /**
   * Process id of the process that runs the code, as that process sees itself (inside a sandbox, its
   * pid in the sandbox), while one runs. A restart gives a new one; an interrupt does not.
   */
  get pid(): number | undefined {
    return this.child === undefined ? undefined : this.workerPid;
  }

  /** True while the kernel process runs and accepts code (false while it restarts, after it died, after close). */
  get alive(): boolean {
    return this.state === 'ready';
  }

  /** True while the kernel starts or restarts; code submitted meanwhile runs once it is ready. */
  get starting(): boolean {
    return this.state === 'starting';
  }

  /**
   * Calls `listener` when the kernel process ends for any reason except `restart()`.
   * @returns A function that removes the listener.
   */
  onExit(listener: (info: KernelExitInfo) => void): () => void {
    this.exitListeners.add(listener);
    return () => {
      this.exitListeners.delete(listener);
    };
  }

  /**
   * Runs `code` after the executions queued before it, passing each message to `onMessage`, and
   * resolves after the last one. User errors, interrupts and a kernel that dies arrive as `error`
   * messages, never as a rejection; a completed execution ends with `number_of_executions`.
   * @throws KernelClosedError after `close()`.
   */
  execute(code: string, options: KernelExecuteOptions): Promise<void> {
    if (this.state === 'closed') {
      return Promise.reject(new KernelClosedError(this.language));
    }
    return new Promise<void>((resolve, reject) => {
      const execution: Execution = {
        id: this.nextExecutionId++,
        code,
        envVars: { ...options.envVars },
        onMessage: options.onMessage,
        resolve,
        reject,
        state: 'queued',
        held: [],
        executionCount: undefined,
        awaitingMarker: { stdout: true, stderr: true },
        callbackError: undefined,
        interruptTimer: undefined,
        sigintTimer: undefined,
        drainTimer: undefined,
        detachSignal: undefined,
      };
      if (this.state === 'dead') {
        this.endWithError(execution, this.deadKernelMessage());
        return;
      }
      const signal = options.signal;
      if (signal?.aborted === true) {
        this.endWithError(execution, errorMessage('ExecutionCancelledError', 'The execution was cancelled before it started; the kernel did not run it.'));
        return;
      }
      if (signal !== undefined) {
        const onAbort = (): void => this.abort(execution);
        signal.addEventListener('abort', onAbort, { once: true });
        execution.detachSignal = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(execution);
      this.pump();
    });
  }

  /**
   * Stops the running execution, keeping the namespace: Python raises `KeyboardInterrupt`,
   * JavaScript ends the cell with `InterruptedError`. Code that does not stop within
   * `interruptGraceMs` gets the kernel killed. Does nothing when no execution runs.
   */
  interrupt(): void {
    const execution = this.current;
    const child = this.child;
    if (execution === undefined || child === undefined || this.state !== 'ready') {
      return;
    }
    // The control message stops a JavaScript cell that awaits; SIGINT stops running code.
    this.send({ type: 'interrupt', id: execution.id });
    const sendSigint = (): void => {
      execution.sigintTimer = undefined;
      if (this.current === execution && this.child === child) {
        this.sigintsSent += 1;
        child.kill('SIGINT');
      }
    };
    const delayMs = SIGINT_DELAY_MS[this.language];
    if (delayMs === 0) {
      sendSigint();
    } else {
      execution.sigintTimer ??= setTimeout(sendSigint, delayMs);
    }
    if (execution.interruptTimer === undefined && Number.isFinite(this.config.interruptGraceMs)) {
      execution.interruptTimer = setTimeout(() => {
        if (this.current === execution) {
          this.kill('interrupt-timeout');
        }
      }, this.config.interruptGraceMs);
      execution.interruptTimer.unref();
    }
  }

  /**
   * Kills the kernel process and starts a fresh one: the namespace is lost and the execution
   * counter starts again at 1. The running and queued executions end with `KernelRestartedError`;
   * executions submitted while it restarts run on the new process.
   * @throws KernelClosedError after `close()`.
   * @throws KernelStartError / KernelStartTimeoutError if the new process does not start (the kernel is then dead).
   */
  async restart(): Promise<void> {
    if (this.state === 'closed') {
      throw new KernelClosedError(this.language);
    }
    // Nothing ran since it started, and nothing but this driver can reach it: it is as fresh as a new one.
    if (this.state === 'ready' && this.idleIsFresh && !this.executedSinceReady && this.current === undefined && this.queue.length === 0) {
      return;
    }
    // Work queued so far belongs to the old namespace; work submitted from now on waits for the new one.
    this.failQueued(this.exitMessage('restart', null, null));
    // One restart at a time; the first one takes the kernel out of service at once.
    const previous = this.restarting;
    const restarting = previous === undefined ? this.restartOnce() : previous.catch(() => undefined).then(() => this.restartOnce());
    this.restarting = restarting;
    try {
      await restarting;
    } finally {
      if (this.restarting === restarting) {
        this.restarting = undefined;
      }
    }
  }

  private async restartOnce(): Promise<void> {
    if (this.isClosed()) {
      throw new KernelClosedError(this.language);
    }
    if (this.resetByFork && this.child !== undefined && this.killReason === undefined) {
      await this.resetWorker();
      return;
    }
    this.state = 'starting';
    this.kill('restart');
    await this.exitHandled;
    if (this.isClosed()) {
      throw new KernelClosedError(this.language);
    }
    await this.launch();
  }

  /** Has the zygote replace its worker by a freshly forked one; the process stays. */
  private resetWorker(): Promise<void> {
    const current = this.current;
    this.state = 'starting';
    this.nonce = randomBytes(8).toString('hex');
    this.outputs = Kernel.freshOutputs();
    this.pendingOutput = [];
    this.pendingOutputChars = 0;
    this.discarding = { stdout: true, stderr: true };
    this.readyPending = true;
    this.workerPid = undefined;
    this.clearWorkerExit();
    this.workerExitReported = false;
    this.exitFenceSeen = { stdout: false, stderr: false };
    if (current !== undefined) {
      this.endWithError(current, this.exitMessage('restart', null, null));
    }
    this.send({ type: 'reset', token: this.nonce });
    return this.waitUntilReady();
  }

  /** Kills the kernel process. Running and queued executions end with `KernelClosedError`. Safe to call twice. */
  async close(): Promise<void> {
    if (this.state !== 'closed') {
      this.kill('closed');
      this.state = 'closed';
      this.failQueued(this.closedMessage());
    }
    await this.exitHandled;
  }

  /** A method, so that TypeScript does not keep an earlier narrowing of `state` across an await. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private static freshOutputs(): Record<OutputStreamName, OutputStreamState> {
    return {
      stdout: { decoder: new StringDecoder('utf8'), carry: '' },
      stderr: { decoder: new StringDecoder('utf8'), carry: '' },
    };
  }

  private get markerPrefix(): string {
    return `\u0000tradeswarm:${this.nonce}:`;
  }

  private launch(): Promise<void> {
    const { argv, language } = this.config;
    const generation = ++this.generation;
    this.nonce = randomBytes(8).toString('hex');
    this.outputs = Kernel.freshOutputs();
    this.pendingOutput = [];
    this.pendingOutputChars = 0;
    this.killReason = undefined;
    this.sigintsSent = 0;
    this.state = 'starting';
    this.resetByFork = false;
    this.idleIsFresh = false;
    this.workerPid = undefined;
    this.readyPending = true;
    this.discarding = { stdout: false, stderr: false };
    this.clearWorkerExit();
    this.workerExitReported = false;
    this.exitFenceSeen = { stdout: false, stderr: false };
    // The Python zygote builds its fences from the token; other kernels do not get it.
    const env = language === 'python' ? { ...this.config.env, [TOKEN_ENV]: this.nonce } : this.config.env;

    let child: ChildProcess;
    try {
      child = this.config.spawn([...argv], { env, cwd: this.config.cwd, extraFds: 1 });
    } catch (error) {
      this.state = 'dead';
      this.failQueued(this.deadKernelMessage());
      return Promise.reject(new KernelStartError({ language, argv, exitCode: null, signal: null, stderr: '' }, error));
    }
    const control = child.stdio[3];
    if (child.stdout === null || child.stderr === null || !(control instanceof Duplex)) {
      child.kill('SIGKILL');
      this.state = 'dead';
      this.failQueued(this.deadKernelMessage());
      return Promise.reject(new InvalidKernelOptionError(
        'spawn',
        "the spawned process has no stdout/stderr pipes or no pipe on fd 3; spawn with stdio ['pipe', 'pipe', 'pipe'] plus options.extraFds × 'pipe'.",
      ));
    }
    this.child = child;
    this.control = control;

    child.stdin?.on('error', () => undefined);
    child.stdin?.end();
    child.stdout.on('data', (chunk: Buffer) => this.onOutput(generation, 'stdout', chunk));
    child.stderr.on('data', (chunk: Buffer) => this.onOutput(generation, 'stderr', chunk));
    control.on('error', () => undefined);
    control.setEncoding('utf8');
    let partialLine = '';
    control.on('data', (chunk: string) => {
      partialLine += chunk;
      let newline = partialLine.indexOf('\n');
      while (newline !== -1 && generation === this.generation) {
        const line = partialLine.slice(0, newline);
        partialLine = partialLine.slice(newline + 1);
        this.onControlLine(generation, line);
        newline = partialLine.indexOf('\n');
      }
    });

    let resolveExitHandled: () => void = () => undefined;
    this.exitHandled = new Promise((resolve) => {
      resolveExitHandled = resolve;
    });
    let exited = false;
    const onExit = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      if (!exited) {
        exited = true;
        void this.onProcessExit(generation, child, exitCode, signal).finally(resolveExitHandled);
      }
    };
    child.once('exit', onExit);
    child.on('error', (error) => {
      // Spawning failed (e.g. the interpreter does not exist); no 'exit' may follow. Later errors
      // (a signal that could not be delivered) need no action: 'exit' reports the end.
      if (this.startWaiter !== undefined && generation === this.generation) {
        this.settleStart(new KernelStartError({ language, argv, exitCode: null, signal: null, stderr: this.pendingText('stderr') }, error));
      }
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) {
        onExit(null, null);
      }
    });

    return this.waitUntilReady();
  }

  private waitUntilReady(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settleStart(new KernelStartTimeoutError(this.language, this.config.startTimeoutMs, this.pendingText('stderr')));
        this.kill('start-timeout');
      }, this.config.startTimeoutMs);
      this.startWaiter = { resolve, reject, timer };
    });
  }

  /** Ready once the worker said so and, after a reset, its fences ended the old worker's output. */
  private becomeReadyIfDone(): void {
    if (this.state !== 'starting' || this.readyPending || this.discarding.stdout || this.discarding.stderr) {
      return;
    }
    this.state = 'ready';
    this.executedSinceReady = false;
    this.settleStart();
    this.pump();
  }

  private settleStart(error?: unknown): void {
    const waiter = this.startWaiter;
    if (waiter === undefined) {
      return;
    }
    this.startWaiter = undefined;
    clearTimeout(waiter.timer);
    if (error === undefined) {
      waiter.resolve();
    } else {
      waiter.reject(error);
    }
  }

  private kill(reason: KillReason): void {
    if (this.child !== undefined) {
      this.killReason ??= reason;
      this.child.kill('SIGKILL');
    }
  }

  private send(message: Record<string, unknown>): void {
    if (this.control !== undefined && !this.control.destroyed) {
      this.control.write(`${JSON.stringify(message)}\n`);
    }
  }

  private pump(): void {
    if (this.current !== undefined || this.state !== 'ready') {
      return;
    }
    const execution = this.queue.shift();
    if (execution === undefined) {
      return;
    }
    this.current = execution;
    execution.state = 'running';
    this.executedSinceReady = true;
    const pending = this.pendingOutput;
    this.pendingOutput = [];
    this.pendingOutputChars = 0;
    for (const { stream, text } of pending) {
      this.emit(execution, { type: stream, text, timestamp: nowMicroseconds() });
    }
    this.send({
      type: 'execute',
      id: execution.id,
      code: execution.code,
      env_vars: execution.envVars,
      marker: `${this.markerPrefix}${execution.id}${MARKER_END}`,
      sigints_sent: this.sigintsSent,
    });
  }

  private abort(execution: Execution): void {
    if (execution.state === 'queued') {
      const index = this.queue.indexOf(execution);
      if (index !== -1) {
        this.queue.splice(index, 1);
      }
      this.endWithError(execution, errorMessage('ExecutionCancelledError', 'The execution was cancelled before it started; the kernel did not run it.'));
    } else if (execution.state === 'running' && this.current === execution) {
      this.interrupt();
    }
  }

  private emit(execution: Execution, message: KernelMessage): void {
    try {
      execution.onMessage(message);
    } catch (error) {
      execution.callbackError ??= { error };
    }
  }

  private finish(execution: Execution): void {
    if (execution.state === 'finished') {
      return;
    }
    execution.state = 'finished';
    clearTimeout(execution.interruptTimer);
    clearTimeout(execution.sigintTimer);
    clearTimeout(execution.drainTimer);
    execution.detachSignal?.();
    if (this.current === execution) {
      this.current = undefined;
    }
    if (execution.callbackError !== undefined) {
      execution.reject(execution.callbackError.error);
    } else {
      execution.resolve();
    }
    this.pump();
  }

  private endWithError(execution: Execution, message: KernelErrorMessage): void {
    this.emit(execution, message);
    this.finish(execution);
  }

  private tryComplete(execution: Execution): void {
    if (execution.executionCount === undefined || execution.awaitingMarker.stdout || execution.awaitingMarker.stderr) {
      return;
    }
    for (const message of execution.held) {
      this.emit(execution, message);
    }
    this.emit(execution, { type: 'number_of_executions', execution_count: execution.executionCount });
    this.finish(execution);
  }

  private onControlLine(generation: number, line: string): void {
    if (line.trim() === '') {
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      message = undefined;
    }
    if (!isRecord(message) || typeof message.type !== 'string') {
      this.kill('protocol-error');
      return;
    }
    if (message.type === 'ready') {
      const token = typeof message.token === 'string' ? message.token : '';
      if (this.state === 'starting' && generation === this.generation && this.readyPending && (!this.resetByFork || token === this.nonce)) {
        this.readyPending = false;
        this.resetByFork = message.reset === 'fork';
        this.idleIsFresh = message.idle_is_fresh === true;
        this.workerPid = typeof message.pid === 'number' ? message.pid : undefined;
        this.becomeReadyIfDone();
      }
      return;
    }
    if (message.type === 'exited') {
      if (generation === this.generation && message.token === this.nonce && this.killReason === undefined && this.workerExit === undefined) {
        this.onWorkerExit(
          typeof message.exit_code === 'number' ? message.exit_code : null,
          typeof message.signal === 'number' ? signalName(message.signal) : null,
        );
      }
      return;
    }
    const execution = this.current;
    if (execution === undefined || message.id !== execution.id) {
      return;
    }
    if (message.type === 'result' || message.type === 'error') {
      const publicMessage = toPublicMessage(message);
      if (publicMessage === undefined) {
        this.kill('protocol-error');
        return;
      }
      execution.held.push(publicMessage);
    } else if (message.type === 'done') {
      execution.executionCount = typeof message.execution_count === 'number' ? message.execution_count : 0;
      const markers = Array.isArray(message.markers) ? message.markers : [];
      for (const stream of ['stdout', 'stderr'] as const) {
        if (!markers.includes(stream)) {
          execution.awaitingMarker[stream] = false;
        }
      }
      if (execution.awaitingMarker.stdout || execution.awaitingMarker.stderr) {
        // Only reached if user code pointed fd 1 or 2 somewhere else, so the marker never comes.
        execution.drainTimer = setTimeout(() => {
          execution.awaitingMarker.stdout = false;
          execution.awaitingMarker.stderr = false;
          this.tryComplete(execution);
        }, this.config.outputDrainTimeoutMs);
      }
      this.tryComplete(execution);
    }
  }

  private onOutput(generation: number, stream: OutputStreamName, chunk: Buffer): void {
    if (generation !== this.generation) {
      return;
    }
    const state = this.outputs[stream];
    this.routeOutput(stream, state.carry + state.decoder.write(chunk));
  }

  /** Forwards text, removing end markers and completing executions as their markers arrive. */
  private routeOutput(stream: OutputStreamName, input: string): void {
    const state = this.outputs[stream];
    const prefix = this.markerPrefix;
    let text = input;
    state.carry = '';
    while (text.length > 0) {
      const start = text.indexOf(prefix);
      if (start === -1) {
        const keep = partialPrefixLength(text, prefix);
        this.deliver(stream, text.slice(0, text.length - keep));
        state.carry = text.slice(text.length - keep);
        return;
      }
      this.deliver(stream, text.slice(0, start));
      const end = text.indexOf(MARKER_END, start + prefix.length);
      if (end === -1) {
        if (text.length - start > MAX_MARKER_LENGTH) {
          this.deliver(stream, text.slice(start, start + prefix.length));
          text = text.slice(start + prefix.length);
          continue;
        }
        state.carry = text.slice(start);
        return;
      }
      const body = text.slice(start + prefix.length, end);
      text = text.slice(end + MARKER_END.length);
      if (body === READY_FENCE || body === EXIT_FENCE) {
        this.onFence(stream, body);
        continue;
      }
      const id = Number(body);
      const execution = this.current;
      if (execution !== undefined && execution.id === id) {
        execution.awaitingMarker[stream] = false;
        this.tryComplete(execution);
      }
    }
  }

  private deliver(stream: OutputStreamName, text: string): void {
    if (text === '' || this.discarding[stream]) {
      return;
    }
    const execution = this.current;
    if (execution !== undefined && execution.awaitingMarker[stream]) {
      this.emit(execution, { type: stream, text, timestamp: nowMicroseconds() });
      return;
    }
    // Printed between executions (background threads, timers): handed to the next execution.
    this.pendingOutput.push({ stream, text });
    this.pendingOutputChars += text.length;
    while (this.pendingOutputChars > MAX_PENDING_OUTPUT_CHARS && this.pendingOutput.length > 1) {
      const dropped = this.pendingOutput.shift();
      this.pendingOutputChars -= dropped?.text.length ?? 0;
    }
  }

  private pendingText(stream: OutputStreamName): string {
    return this.pendingOutput
      .filter((entry) => entry.stream === stream)
      .map((entry) => entry.text)
      .join('')
      .slice(-4000);
  }

  private async onProcessExit(generation: number, child: ChildProcess, exitCode: number | null, signal: NodeJS.Signals | null): Promise<void> {
    // Read what the process printed before it died; a grandchild may hold the pipes open, so do not wait long.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([streamFinished(child.stdout), streamFinished(child.stderr)]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, EXIT_OUTPUT_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (generation !== this.generation) {
      return;
    }
    for (const stream of ['stdout', 'stderr'] as const) {
      const state = this.outputs[stream];
      const rest = state.carry + state.decoder.end();
      state.carry = '';
      const prefix = this.markerPrefix;
      if (rest !== '' && !rest.startsWith(prefix) && !prefix.startsWith(rest)) {
        this.deliver(stream, rest);
      }
    }
    const reason = this.killReason;
    this.child = undefined;
    this.control = undefined;
    this.clearWorkerExit();
    if (this.workerExitReported && this.current === undefined) {
      // The worker's end was reported when the zygote told of it; the zygote going now adds nothing.
      this.settleStart(new KernelClosedError(this.language));
      return;
    }
    this.lastExit = { exitCode, signal };
    if (this.state !== 'closed' && reason !== 'restart') {
      this.state = 'dead';
    }
    this.settleStart(this.state === 'closed'
      ? new KernelClosedError(this.language)
      : new KernelStartError({ language: this.config.language, argv: this.config.argv, exitCode, signal, stderr: this.pendingText('stderr') }));

    const message = this.exitMessage(reason, exitCode, signal);
    const current = this.current;
    if (current !== undefined) {
      this.endWithError(current, message);
    }
    if (reason !== 'restart') {
      this.failQueued(this.deadKernelMessage(message));
      this.emitExit({ reason: reason === undefined || reason === 'worker-exited' ? 'exited' : reason, exitCode, signal });
    }
  }

  private onFence(stream: OutputStreamName, fence: string): void {
    // Either fence ends what the old worker left on the stream; the exit fence also ends the dead worker's output.
    this.discarding[stream] = false;
    if (fence === EXIT_FENCE) {
      this.exitFenceSeen[stream] = true;
    }
    if (fence === EXIT_FENCE && this.workerExit !== undefined) {
      this.workerExit.fences[stream] = true;
      if (this.workerExit.fences.stdout && this.workerExit.fences.stderr) {
        this.finishWorkerExit();
        return;
      }
    }
    this.becomeReadyIfDone();
  }

  /** The zygote says the worker ended; wait for its fences so that everything it printed is delivered first. */
  private onWorkerExit(exitCode: number | null, signal: NodeJS.Signals | null): void {
    const timer = setTimeout(() => this.finishWorkerExit(), this.config.outputDrainTimeoutMs);
    this.workerExit = { exitCode, signal, fences: { stdout: false, stderr: false }, timer };
    // The fences may have been read before the message that announces them.
    this.workerExit.fences = { ...this.exitFenceSeen };
    if (this.workerExit.fences.stdout && this.workerExit.fences.stderr) {
      this.finishWorkerExit();
    }
  }

  private clearWorkerExit(): void {
    if (this.workerExit !== undefined) {
      clearTimeout(this.workerExit.timer);
      this.workerExit = undefined;
    }
  }

  /** The worker is gone but the zygote lives: like a process exit, except that `restart()` forks a new worker. */
  private finishWorkerExit(): void {
    const exit = this.workerExit;
    if (exit === undefined) {
      return;
    }
    this.clearWorkerExit();
    const { exitCode, signal } = exit;
    this.lastExit = { exitCode, signal };
    this.workerPid = undefined;
    if (this.state === 'starting') {
      // The worker failed before it was ready: the start fails and nothing is left running.
      this.state = 'dead';
      this.workerExitReported = true;
      this.settleStart(new KernelStartError({ language: this.config.language, argv: this.config.argv, exitCode, signal, stderr: this.pendingText('stderr') }));
      this.failQueued(this.deadKernelMessage());
      this.emitExit({ reason: 'exited', exitCode, signal });
      this.kill('worker-exited');
      return;
    }
    if (this.state !== 'ready') {
      return;
    }
    this.state = 'dead';
    this.workerExitReported = true;
    const message = this.exitMessage(undefined, exitCode, signal);
    const current = this.current;
    if (current !== undefined) {
      this.endWithError(current, message);
    }
    this.failQueued(this.deadKernelMessage(message));
    this.emitExit({ reason: 'exited', exitCode, signal });
  }

  private emitExit(info: KernelExitInfo): void {
    for (const listener of [...this.exitListeners]) {
      listener(info);
    }
  }

  private failQueued(message: KernelErrorMessage): void {
    for (const execution of this.queue.splice(0)) {
      this.endWithError(execution, message);
    }
  }

  private exitMessage(reason: KillReason | undefined, exitCode: number | null, signal: NodeJS.Signals | null): KernelErrorMessage {
    const kernel = `The ${this.language} kernel`;
    switch (reason) {
      case 'restart':
        return errorMessage('KernelRestartedError', `${kernel} was restarted before this code finished; its variables are gone. Run the code again.`);
      case 'closed':
        return this.closedMessage();
      case 'start-timeout':
        return errorMessage('KernelDiedError', `${kernel} did not start within ${this.config.startTimeoutMs} ms. Restart the context to run code.`);
      case 'interrupt-timeout':
        return errorMessage(
          'KernelDiedError',
          `${kernel} did not stop within ${this.config.interruptGraceMs} ms of an interrupt and was killed, so its variables are lost. Restart the context to run more code.`,
        );
      case 'protocol-error':
        return errorMessage('KernelDiedError', `${kernel} sent an unreadable control message and was stopped, so its variables are lost. Restart the context to run more code.`);
      case 'worker-exited':
      case undefined:
        return errorMessage(
          'KernelDiedError',
          `${kernel} exited (${describeExit(exitCode, signal)}) while running this code, so its variables are lost. Restart the context to run more code.`,
        );
    }
  }

  private closedMessage(): KernelErrorMessage {
    return errorMessage('KernelClosedError', `The ${this.language} kernel was closed before this code ran to the end.`);
  }

  private deadKernelMessage(cause?: KernelErrorMessage): KernelErrorMessage {
    if (cause !== undefined && cause.name !== 'KernelDiedError') {
      return cause;
    }
    const exit = this.lastExit === undefined ? 'it is not running' : `it exited with ${describeExit(this.lastExit.exitCode, this.lastExit.signal)}`;
    return errorMessage('KernelDiedError', `The ${this.language} kernel is dead (${exit}), so this code did not run. Restart the context to run more code.`);
  }
}

/** Length of the longest end of `text` that is a beginning of `prefix` (a marker split across reads). */
function partialPrefixLength(text: string, prefix: string): number {
  const start = text.lastIndexOf(MARKER_END, text.length - 1);
  if (start === -1 || text.length - start >= prefix.length) {
    return 0;
  }
  return prefix.startsWith(text.slice(start)) ? text.length - start : 0;
}

/** `SIGKILL` for 9, as Node names signals; null for a number it does not know. */
function signalName(signal: number): NodeJS.Signals | null {
  const entry = Object.entries(osConstants.signals).find(([, value]) => value === signal);
  return entry === undefined ? null : (entry[0] as NodeJS.Signals);
}
