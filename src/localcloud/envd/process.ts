import { constants as osConstants } from 'node:os';
import { existsSync, statSync } from 'node:fs';
import { z } from 'zod';
import type { GuestProcess, TerminalSize } from '../isolation/index.js';
import type { LocalSandbox } from '../sandboxes/index.js';
import { ConnectError, firstMessage, keepaliveIntervalMs, parseMessage, readEnvelopes, serveStream, serveUnary, type StreamWriter } from './connect.js';
import type { EnvdRequestContext, EnvdService } from './context.js';

const selectorSchema = z.union([z.object({ pid: z.number().int().nonnegative() }), z.object({ tag: z.string() })]);
const bytesSchema = z.string().transform((value) => Buffer.from(value, 'base64'));
/** The proto's `PTY` message. Proto3 JSON leaves out zero values, so a missing side means 0. */
const ptySchema = z.object({ size: z.object({ cols: z.number().optional(), rows: z.number().optional() }).nullish() }).nullish();
/** A terminal's largest side: the kernel keeps each in 16 bits (struct winsize). */
const MAX_TERMINAL_SIDE = 65_535;
/** TERM of a PTY session whose request's envs have none: the value the e2b SDK itself sends (`pty.create`). */
const DEFAULT_TERM = 'xterm-256color';
const startSchema = z.object({
  process: z.object({
    cmd: z.string().min(1, 'process.cmd is empty: give the program to run'),
    args: z.array(z.string()).default([]),
    envs: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
  }),
  pty: ptySchema,
  tag: z.string().optional(),
  stdin: z.boolean().optional(),
});
const SIGNALS: Readonly<Record<string, NodeJS.Signals>> = { SIGNAL_SIGKILL: 'SIGKILL', SIGNAL_SIGTERM: 'SIGTERM', '9': 'SIGKILL', '15': 'SIGTERM' };
/** Go's names for signals, as envd reports them in an end event's status. */
const GO_SIGNAL_NAMES: Readonly<Partial<Record<NodeJS.Signals, string>>> = { SIGKILL: 'killed', SIGTERM: 'terminated', SIGINT: 'interrupt', SIGHUP: 'hangup', SIGSEGV: 'segmentation fault', SIGABRT: 'aborted', SIGPIPE: 'broken pipe' };

interface ProcessConfig {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly envs: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/**
 * The size of the terminal a `pty` field asks for. @throws ConnectError `invalid_argument` naming the field
 * (`pty.size.cols`, …) when the size is missing or a side is not a whole number from 1 to 65535.
 */
function terminalSize(pty: z.infer<typeof ptySchema>): TerminalSize {
  const size = pty?.size;
  if (!size) throw new ConnectError('invalid_argument', `pty.size is missing: give the terminal's size as { cols, rows }`);
  const side = (name: 'cols' | 'rows', what: string): number => {
    const value = size[name] ?? 0;
    if (!Number.isInteger(value) || value < 1 || value > MAX_TERMINAL_SIDE) {
      throw new ConnectError('invalid_argument', `pty.size.${name} is ${value}: give the terminal's ${what}, a whole number from 1 to ${MAX_TERMINAL_SIDE}`);
    }
    return value;
  };
  return { cols: side('cols', 'width in columns'), rows: side('rows', 'height in rows') };
}

interface EndEvent {
  readonly exitCode: number;
  readonly exited: boolean;
  readonly status: string;
  readonly error?: string;
}

/** Go's names for signals, as envd reports them in an end event's status. */
function signalStatus(signal: number): string {
  const name = Object.entries(osConstants.signals).find(([, value]) => value === signal)?.[0] as NodeJS.Signals | undefined;
  return `signal: ${(name && GO_SIGNAL_NAMES[name]) ?? name ?? signal}`;
}

/**
 * A process started through envd, with everyone currently streaming its events. Listeners are attached
 * the moment it is spawned; what happens before the first stream follows it is kept in a backlog, so
 * a command that finishes at once loses neither output nor its end.
 */
class ManagedProcess {
  readonly subscribers = new Set<StreamWriter>();
  end: EndEvent | undefined;
  pid = 0;
  private backlog: unknown[] | undefined = [];
  private readonly ended: Promise<EndEvent>;

  constructor(
    readonly tag: string | undefined,
    readonly config: ProcessConfig,
    readonly guest: GuestProcess,
  ) {
    this.ended = new Promise<EndEvent>((resolve) => {
      guest.once('exit', (exit) => {
        const end: EndEvent =
          exit.signal === undefined
            ? { exitCode: exit.code ?? -1, exited: true, status: `exit status ${exit.code ?? -1}`, ...(exit.code === 0 ? {} : { error: `exit status ${exit.code ?? -1}` }) }
            : { exitCode: -1, exited: false, status: signalStatus(exit.signal), error: signalStatus(exit.signal) };
        this.end = end;
        this.broadcast({ end });
        resolve(end);
      });
    });
    guest.on('stdout', (chunk) => this.broadcast({ data: { stdout: chunk.toString('base64') } }));
    guest.on('stderr', (chunk) => this.broadcast({ data: { stderr: chunk.toString('base64') } }));
    guest.on('pty', (chunk) => this.broadcast({ data: { pty: chunk.toString('base64') } }));
  }

  /** Streams this process's events to `writer` until it ends or the client goes away. */
  async follow(writer: StreamWriter): Promise<void> {
    writer.send({ event: { start: { pid: this.pid } } });
    const backlog = this.backlog;
    this.backlog = undefined;
    for (const event of backlog ?? []) writer.send({ event });
    if (this.end) {
      if (!backlog) writer.send({ event: { end: this.end } });
      return;
    }
    this.subscribers.add(writer);
    try {
      await Promise.race([this.ended, writer.closed]);
    } finally {
      this.subscribers.delete(writer);
    }
  }

  get stdinOpen(): boolean {
    return this.guest.stdinIsOpen;
  }

  /** Signals the command and everything it started (its process group). */
  signal(signal: NodeJS.Signals): void {
    this.guest.signal(osConstants.signals[signal]);
  }

  private broadcast(event: unknown): void {
    if (this.backlog) this.backlog.push(event);
    for (const subscriber of this.subscribers) subscriber.send({ event });
  }
}

/** Running processes of one sandbox by in-sandbox pid. */
type ProcessTable = Map<number, ManagedProcess>;

/** The envd `process.Process` service. */
export function createProcessService(): EnvdService {
  const tables = new WeakMap<LocalSandbox, ProcessTable>();
  const tableOf = (sandbox: LocalSandbox): ProcessTable => {
    let table = tables.get(sandbox);
    if (!table) {
      const created: ProcessTable = new Map();
      tables.set(sandbox, created);
      sandbox.onKilled(() => {
        created.clear();
        // A sandbox rebooted after a filesystem-only pause gets a new table, and a new listener.
        tables.delete(sandbox);
      });
      table = created;
    }
    return table;
  };
  const select = (context: EnvdRequestContext, input: unknown): ManagedProcess => {
    const parsed = z.object({ process: selectorSchema }).safeParse(input);
    if (!parsed.success) throw new ConnectError('invalid_argument', 'process: give a selector with a pid or a tag');
    const selector = parsed.data.process;
    const table = tableOf(context.sandbox);
    const found = 'pid' in selector ? table.get(selector.pid) : [...table.values()].find((candidate) => candidate.tag === selector.tag);
    if (!found) throw new ConnectError('not_found', `process ${'pid' in selector ? `with pid ${selector.pid}` : `tagged '${selector.tag}'`} not found: it has exited or never ran`);
    return found;
  };
  const keepalive = (context: EnvdRequestContext) => ({ keepaliveMs: keepaliveIntervalMs(context.request), keepaliveMessage: { event: { keepalive: {} } } });

  return {
    Start: (context) =>
      serveStream(
        context.response,
        async (writer) => {
          const body = parseMessage(startSchema, await firstMessage(context.request, 'Start'));
          const managed = await startProcess(context, body);
          const table = tableOf(context.sandbox);
          table.set(managed.pid, managed);
          managed.guest.once('exit', () => table.delete(managed.pid));
          await managed.follow(writer);
        },
        keepalive(context),
      ),
    Connect: (context) =>
      serveStream(
        context.response,
        async (writer) => {
          const managed = select(context, await firstMessage(context.request, 'Connect'));
          await managed.follow(writer);
        },
        keepalive(context),
      ),
    List: (context) =>
      serveUnary(context.request, context.response, () =>
        Promise.resolve({
          processes: [...tableOf(context.sandbox).values()].map((managed) => ({
            config: managed.config,
            pid: managed.pid,
            ...(managed.tag === undefined ? {} : { tag: managed.tag }),
          })),
        }),
      ),
    SendInput: (context) =>
      serveUnary(context.request, context.response, (input) => {
        const managed = select(context, input);
        const data = parseMessage(z.object({ input: z.object({ stdin: bytesSchema.optional(), pty: bytesSchema.optional() }) }), input).input;
        writeStdin(managed, data.stdin ?? data.pty ?? Buffer.alloc(0));
        return Promise.resolve({});
      }),
    StreamInput: (context) =>
      serveStream(context.response, async () => {
        let managed: ManagedProcess | undefined;
        for await (const message of readEnvelopes(context.request)) {
          const event = message as { start?: unknown; data?: { input?: { stdin?: string; pty?: string } } };
          if (event.start !== undefined) managed = select(context, event.start);
          else if (event.data) {
            if (!managed) throw new ConnectError('failed_precondition', 'send a start event naming the process before data');
            writeStdin(managed, Buffer.from(event.data.input?.stdin ?? event.data.input?.pty ?? '', 'base64'));
          }
        }
      }),
    SendSignal: (context) =>
      serveUnary(context.request, context.response, (input) => {
        const managed = select(context, input);
        const raw = (input as { signal?: unknown }).signal;
        const signal = SIGNALS[String(raw)];
        if (!signal) throw new ConnectError('invalid_argument', `signal: ${String(raw)} is not supported; use SIGNAL_SIGKILL or SIGNAL_SIGTERM`);
        managed.signal(signal);
        return Promise.resolve({});
      }),
    CloseStdin: (context) =>
      serveUnary(context.request, context.response, (input) => {
        const managed = select(context, input);
        if (managed.guest.isPty) throw new ConnectError('failed_precondition', `process ${managed.pid} runs on a pty, which has no stdin to close: send Ctrl+D (0x04) as input to end its input`);
        managed.guest.closeStdin();
        return Promise.resolve({});
      }),
    Update: (context) =>
      serveUnary(context.request, context.response, (input) => {
        const managed = select(context, input);
        const { pty } = parseMessage(z.object({ pty: ptySchema }), input);
        if (pty === undefined || pty === null) return Promise.resolve({});
        const size = terminalSize(pty);
        if (!managed.guest.isPty) throw new ConnectError('failed_precondition', `process ${managed.pid} was not started with a pty: only a PTY session can be resized`);
        managed.guest.resize(size);
        return Promise.resolve({});
      }),
  };
}

async function startProcess(context: EnvdRequestContext, body: z.infer<typeof startSchema>): Promise<ManagedProcess> {
  const { sandbox, user } = context;
  const cwd = body.process.cwd || sandbox.homeOf(user);
  const resolved = sandbox.resolvePath(cwd, user);
  if (!existsSync(resolved.hostPath) || !statSync(resolved.hostPath).isDirectory()) {
    throw new ConnectError('invalid_argument', `cwd '${cwd}' is not an existing directory in the sandbox; create it first or pick another`);
  }
  const pty = body.pty === undefined || body.pty === null ? undefined : terminalSize(body.pty);
  const env = pty && body.process.envs.TERM === undefined ? { ...body.process.envs, TERM: DEFAULT_TERM } : body.process.envs;
  const guest = sandbox.run({ argv: [body.process.cmd, ...body.process.args], env, cwd: resolved.sandboxPath, user, stdin: body.stdin ?? false, ...(pty ? { pty } : {}) });
  const managed = new ManagedProcess(body.tag, { cmd: body.process.cmd, args: body.process.args, envs: body.process.envs, ...(body.process.cwd ? { cwd: body.process.cwd } : {}) }, guest);
  try {
    managed.pid = await guest.pid;
  } catch (error) {
    throw new ConnectError('invalid_argument', `the command could not be started: ${(error as Error).message}`);
  }
  return managed;
}

function writeStdin(managed: ManagedProcess, data: Buffer): void {
  if (!managed.stdinOpen) throw new ConnectError('failed_precondition', `stdin of process ${managed.pid} is closed: start the command with stdin: true and do not close it before writing`);
  managed.guest.writeStdin(data);
}
