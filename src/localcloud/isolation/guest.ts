import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';

/** How a command started by the supervisor ended. */
export interface GuestExit {
  /** Exit code when it exited, undefined when a signal ended it. */
  readonly code?: number;
  /** Number of the signal that ended it. */
  readonly signal?: number;
}

/** What to start through the supervisor. */
export interface GuestSpawnOptions {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly uid: number;
  readonly gid: number;
  /** Keep stdin open for writing (otherwise the command reads /dev/null). Ignored with `pty`. */
  readonly stdin: boolean;
  /**
   * Run the command on a new pseudo-terminal of this size: stdin, stdout and stderr are the terminal,
   * which is its controlling terminal; its output comes as `pty` events. @default pipes, no terminal
   */
  readonly pty?: TerminalSize;
}

/** The size of a pseudo-terminal, in character cells. */
export interface TerminalSize {
  readonly cols: number;
  readonly rows: number;
}

interface GuestProcessEvents {
  stdout: [Buffer];
  stderr: [Buffer];
  /** What a command started with a pty wrote to its terminal. */
  pty: [Buffer];
  exit: [GuestExit];
}

/** A command running inside a sandbox, started by its supervisor. Emits `stdout`, `stderr` (or `pty`) and `exit`. */
export class GuestProcess extends EventEmitter<GuestProcessEvents> {
  /** The pid inside the sandbox; rejects when the command could not be started. */
  readonly pid: Promise<number>;
  exit: GuestExit | undefined;
  private stdinOpen: boolean;
  private settlePid!: { resolve: (pid: number) => void; reject: (error: Error) => void };

  constructor(
    readonly id: number,
    private readonly send: (request: object) => void,
    stdin: boolean,
    /** Whether it runs on a pseudo-terminal, which takes its input (and has no stdin of its own to close). */
    readonly isPty = false,
  ) {
    super();
    this.stdinOpen = stdin || isPty;
    this.pid = new Promise<number>((resolve, reject) => (this.settlePid = { resolve, reject }));
    this.pid.catch(() => undefined);
  }

  get stdinIsOpen(): boolean {
    return this.stdinOpen && this.exit === undefined;
  }

  /** Writes to the command's stdin, or to its terminal when it runs on one. */
  writeStdin(data: Buffer): void {
    this.send({ op: 'stdin', id: this.id, data: data.toString('base64') });
  }

  closeStdin(): void {
    this.stdinOpen = false;
    this.send({ op: 'close_stdin', id: this.id });
  }

  /** Resizes the terminal of a command started with a pty (it gets SIGWINCH). */
  resize(size: TerminalSize): void {
    this.send({ op: 'resize', id: this.id, cols: size.cols, rows: size.rows });
  }

  /** Signals the command's whole process group (on a pty: every process group of its terminal's session). */
  signal(signal: number): void {
    this.send({ op: 'signal', id: this.id, signal });
  }

  /** @internal called by the supervisor client */
  started(pid: number): void {
    this.settlePid.resolve(pid);
  }

  /** @internal */
  failed(error: string): void {
    this.settlePid.reject(new Error(error));
    this.finish({ code: -1 });
  }

  /** @internal */
  finish(exit: GuestExit): void {
    if (this.exit) return;
    this.exit = exit;
    this.emit('exit', exit);
  }
}

type SupervisorEvent =
  | { ev: 'ready'; pid: number }
  | { ev: 'started'; id: number; pid: number }
  | { ev: 'failed'; id: number; error: string }
  | { ev: 'out'; id: number; fd: 1 | 2; data: string }
  | { ev: 'pty'; id: number; data: string }
  | { ev: 'exit'; id: number; code?: number; signal?: number };

/**
 * The host side of a sandbox's supervisor (pid 1 inside, see `guest/supervisor.py`): starts commands
 * with one fork inside the sandbox and relays their I/O over the supervisor's stdin and stdout.
 */
export class GuestSupervisor {
  private readonly processes = new Map<number, GuestProcess>();
  private nextId = 1;
  private closed = false;
  /** Resolves with the supervisor's pid once it said it is ready. */
  readonly ready: Promise<number>;

  constructor(
    private readonly input: Writable,
    output: Readable,
  ) {
    let resolveReady!: (pid: number) => void;
    let rejectReady!: (error: Error) => void;
    this.ready = new Promise<number>((resolve, reject) => ((resolveReady = resolve), (rejectReady = reject)));
    this.ready.catch(() => undefined);
    input.on('error', () => undefined);
    const lines = createInterface({ input: output, crlfDelay: Infinity });
    lines.on('line', (line) => {
      let event: SupervisorEvent;
      try {
        event = JSON.parse(line) as SupervisorEvent;
      } catch {
        return; // Not a supervisor event (a line printed while the sandbox was set up).
      }
      if (event.ev === 'ready') return resolveReady(event.pid);
      const process = this.processes.get(event.id);
      if (!process) return;
      switch (event.ev) {
        case 'started':
          process.started(event.pid);
          break;
        case 'failed':
          this.processes.delete(event.id);
          process.failed(event.error);
          break;
        case 'out':
          process.emit(event.fd === 1 ? 'stdout' : 'stderr', Buffer.from(event.data, 'base64'));
          break;
        case 'pty':
          process.emit('pty', Buffer.from(event.data, 'base64'));
          break;
        case 'exit':
          this.processes.delete(event.id);
          process.finish(event.signal === undefined ? { code: event.code ?? -1 } : { signal: event.signal });
          break;
      }
    });
    lines.on('close', () => {
      this.closed = true;
      rejectReady(new Error('the sandbox supervisor exited before it was ready'));
      // The sandbox is gone: every command in it is too.
      for (const process of this.processes.values()) process.finish({ signal: 9 });
      this.processes.clear();
    });
  }

  /** Starts a command inside the sandbox. */
  spawn(options: GuestSpawnOptions): GuestProcess {
    const id = this.nextId++;
    const process = new GuestProcess(id, (request) => this.send(request), options.stdin, options.pty !== undefined);
    if (this.closed) {
      process.failed('the sandbox is not running');
      return process;
    }
    this.processes.set(id, process);
    this.send({
      op: 'spawn', id, argv: options.argv, env: options.env, cwd: options.cwd, uid: options.uid, gid: options.gid, stdin: options.stdin,
      ...(options.pty ? { pty: { cols: options.pty.cols, rows: options.pty.rows } } : {}),
    });
    return process;
  }

  private send(request: object): void {
    if (!this.closed && this.input.writable) this.input.write(`${JSON.stringify(request)}\n`);
  }
}
