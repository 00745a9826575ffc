import { InvalidInputError } from '../core/index.js';

/** What {@link scrubSandbox} needs of a sandbox: running a shell command as root. */
export interface ScrubbableSandbox {
  readonly commands: {
    run(command: string, options: { user: 'root'; timeoutMs: number }): Promise<{ exitCode: number; stderr: string }>;
  };
}

/** Options of {@link scrubSandbox}. */
export interface ScrubOptions {
  /** Absolute paths under /home/user or /tmp that survive (the pool's build tag). */
  readonly keep?: readonly string[];
  /** @default 10000 */
  readonly timeoutMs?: number;
}

/** Quotes `text` for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command that leaves a used sandbox as a new one would be for the next caller: every process of
 * the unprivileged `user` (where user code runs, including anything it started in the background or in
 * a new session) is killed, and everything directly in /home/user and /tmp is removed except `keep`.
 * It runs as root, so user code cannot hide from it. The removal is tried as root and then as `user`,
 * because root may lack CAP_DAC_OVERRIDE (the local cloud drops it) and then cannot touch a home
 * directory that `user` owns. The command fails when anything is left, so a sandbox that could not be
 * cleaned is replaced rather than handed on.
 * @throws InvalidInputError (`keep`) for a path that is not absolute or holds a NUL.
 */
export function scrubCommand(keep: readonly string[] = []): string {
  for (const path of keep) {
    if (!path.startsWith('/') || path.includes('\0')) throw new InvalidInputError('keep', `must be absolute paths, got ${JSON.stringify(path)}`);
  }
  const found = `find /home/user /tmp -mindepth 1 -maxdepth 1 ${keep.map((path) => `! -path ${shellQuote(path)}`).join(' ')}`;
  return [
    'cd /',
    'pkill -KILL -u user',
    `${found} -exec rm -rf -- {} + 2>/dev/null`,
    `setpriv --reuid=user --regid=user --clear-groups sh -c ${shellQuote(`${found} -exec chmod -R u+rwx -- {} + ; ${found} -exec rm -rf -- {} +`)} 2>/dev/null`,
    `left=$(${found} -print -quit); if [ -n "$left" ]; then echo "could not remove $left" >&2; exit 1; fi`,
  ].join('; ');
}

/**
 * Runs {@link scrubCommand} in `sandbox`. The caller restarts the interpreter contexts afterwards (their
 * kernels run as `user` and were killed too).
 * @throws the provider's error when the command cannot run (the sandbox should then be replaced).
 */
export async function scrubSandbox(sandbox: ScrubbableSandbox, options: ScrubOptions = {}): Promise<void> {
  await sandbox.commands.run(scrubCommand(options.keep), { user: 'root', timeoutMs: options.timeoutMs ?? 10_000 });
}
