import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { TradeswarmError } from '../core/index.js';

/** How to start a `tradeswarm` command: the program and the arguments before the command's own, e.g. `[node, bin/tradeswarm.js]`. */
export interface TradeswarmCommand {
  readonly argv: readonly string[];
  /** The folder commands run in. */
  readonly cwd: string;
}

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  /** The command's own arguments, e.g. `['serve', '--port', '0']`. */
  readonly args: readonly string[];
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** What it prints on stdout once it is ready; the match is returned. */
  readonly ready: RegExp;
  /** How long it may take to print `ready`. */
  readonly readyTimeoutMs: number;
  /** A file that gets everything it prints (stdout and stderr), appended. */
  readonly logFile: string;
}

/** A `tradeswarm` command running as a child process. */
export interface RunningProcess {
  readonly child: ChildProcess;
  /** What matched `ready`. */
  readonly ready: RegExpExecArray;
  /** Whether it has exited. */
  exited(): boolean;
  /** Sends `signal` (SIGKILL: a crash) and waits for it to exit; SIGKILL follows when it is still there after `graceMs`. */
  kill(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** Every child started here that has not exited: killed with this process, however it ends. */
const children = new Set<ChildProcess>();
let reaping = false;

/** SIGKILLs every child still running (on this process's exit: they must not outlive the run). */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

/** A child process did not get ready. */
export class ProcessStartError extends TradeswarmError {
  override readonly name = 'ProcessStartError';
}

/**
 * Starts `tradeswarm <args>` and resolves once it printed `ready` on stdout, everything it prints going
 * to `logFile`.
 * @throws ProcessStartError when it exits first or stays silent past `readyTimeoutMs`, with the end of what it printed.
 */
export async function startProcess(command: TradeswarmCommand, options: StartProcessOptions): Promise<RunningProcess> {
  const [program, ...before] = command.argv;
  if (program === undefined) throw new ProcessStartError('the tradeswarm command is empty: give the program and its arguments, e.g. node bin/tradeswarm.js');
  const log: WriteStream = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(program, [...before, ...options.args], { cwd: command.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!reaping) {
    reaping = true;
    process.once('exit', killChildren);
  }
  let printed = '';
  let tail = '';
  const keep = (chunk: Buffer): void => {
    log.write(chunk);
    tail = (tail + chunk.toString()).slice(-2_000);
  };
  child.stderr?.on('data', keep);
  const exit = once(child, 'exit').then(() => log.end());
  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new ProcessStartError(`\`tradeswarm ${options.args.join(' ')}\` was not ready within ${options.readyTimeoutMs} ms; it printed: ${tail}`));
    }, options.readyTimeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      keep(chunk);
      printed += chunk.toString();
      const match = options.ready.exec(printed);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new ProcessStartError(`\`tradeswarm ${options.args.join(' ')}\` exited (${signal ?? code}) before it was ready; it printed: ${tail}`));
    });
  });
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    ready,
    exited,
    kill: async (signal = 'SIGKILL', graceMs = 30_000) => {
      if (exited()) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}
