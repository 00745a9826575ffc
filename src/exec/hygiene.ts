import { InvalidInputError } from '../core/index.js';

/** What {@link scrubSandbox} needs of a sandbox: running a shell command as root. */
export interface ScrubbableSandbox {
  readonly commands: {
    run(command: string, options: { user: 'root'; timeoutMs: number }): Promise<{ exitCode: number; stderr: string }>;
  };
}

/** Options of {@link scrubSandbox}. */
export interface ScrubOptions {
  /** Absolute paths under the scrubbed directories that survive (the pool's build tag). */
  readonly keep?: readonly string[];
  /**
   * Exact contents that kept files must still hold (by path, each path also in `keep`): a kept file
   * that was changed, replaced by a link or made unreadable fails the scrub, so a caller cannot use
   * it to leave data for the next one.
   */
  readonly expect?: Readonly<Record<string, string>>;
  /** @default 10000 */
  readonly timeoutMs?: number;
}

/** Directories user code can write to and the scrub empties; one that does not exist is skipped. */
export const SCRUBBED_DIRECTORIES: readonly string[] = ['/home/user', '/tmp', '/var/tmp', '/dev/shm'];

/** Quotes `text` for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs as `user` (one process, `setpriv` then bash): kills every process of `user` with `kill -1`,
 * which the kernel applies to all of them in one pass during which none can fork; waits until /proc
 * lists none but itself (dead ones must be reaped first), or fails after about 5 s; then removes
 * everything in the scrubbed directories but `keep`, making directories writable first. Fails when
 * something of its own is left; what belongs to root is for the root part.
 */
const USER_PART = [
  'kill -s KILL -1 2>/dev/null',
  'others() {',
  '  local f key r e s rest',
  '  for f in /proc/[0-9]*/status; do',
  '    [[ $f == "/proc/$BASHPID/status" ]] && continue',
  '    while read -r key r e s rest; do',
  '      if [[ $key == Uid: ]]; then',
  '        if [[ $r == "$UID" || $e == "$UID" || $s == "$UID" ]]; then pid=${f#/proc/}; pid=${pid%/status}; return 0; fi',
  '        break',
  '      fi',
  '    done < "$f"',
  '  done 2>/dev/null',
  '  return 1',
  '}',
  'tries=0',
  'while others; do',
  '  tries=$((tries + 1))',
  '  if ((tries > 400)); then echo "could not stop process $pid of user" >&2; exit 1; fi',
  '  ((tries % 50)) || kill -s KILL -1 2>/dev/null',
  '  ((tries > 20)) && sleep 0.01',
  'done',
  'for d in "${dirs[@]}"; do',
  '  [[ -O $d && ! ( -r $d && -w $d && -x $d ) ]] && chmod u+rwx -- "$d"',
  'done',
  'collect',
  'if ((${#left[@]})); then chmod -R u+rwx -- "${left[@]}" 2>/dev/null; rm -rf -- "${left[@]}" 2>/dev/null; collect; fi',
  'if ((${#left[@]})); then sweep -exec chmod -R u+rwx -- {} + -exec rm -rf -- {} +; collect; fi',
  'for p in "${left[@]}"; do',
  '  [[ -O $p ]] && { echo "could not remove $p" >&2; exit 1; }',
  'done',
  // The x keeps trailing newlines, which command substitution would strip.
  'for i in "${!expect_paths[@]}"; do',
  '  p=${expect_paths[i]}',
  '  [[ -f $p && ! -L $p && -r $p ]] || { echo "kept file $p was replaced or made unreadable" >&2; exit 1; }',
  '  [[ "$(cat -- "$p"; echo x)" == "${expect_contents[i]}x" ]] || { echo "kept file $p was changed" >&2; exit 1; }',
  'done',
  'exit 0',
].join('\n');

/** Runs as root after {@link USER_PART}: removes what root can (what root created), and fails if anything is left. */
const ROOT_PART = [
  'collect',
  'if ((${#left[@]})); then rm -rf -- "${left[@]}" 2>/dev/null; collect; fi',
  'if ((${#left[@]})); then sweep -exec rm -rf -- {} +; collect; fi',
  'if ((${#left[@]})); then echo "could not remove ${left[0]}" >&2; exit 1; fi',
].join('\n');

/**
 * Shared by both parts: the lists; `collect`, which puts what is left (all but `keep`) in `left`; and
 * `sweep`, the same through `find` for when there are too many entries for one command line.
 */
function prelude(keep: readonly string[], expect: Readonly<Record<string, string>>): string {
  const expected = Object.entries(expect);
  return [
    'shopt -s dotglob nullglob',
    `keep=(${keep.map(shellQuote).join(' ')})`,
    `expect_paths=(${expected.map(([path]) => shellQuote(path)).join(' ')})`,
    `expect_contents=(${expected.map(([, content]) => shellQuote(content)).join(' ')})`,
    `dirs=(${SCRUBBED_DIRECTORIES.map(shellQuote).join(' ')})`,
    'collect() { left=(); local d p k; for d in "${dirs[@]}"; do for p in "$d"/*; do for k in "${keep[@]}"; do [[ $p == "$k" ]] && continue 2; done; left+=("$p"); done; done; }',
    'sweep() { local k not=(); for k in "${keep[@]}"; do not+=(! -path "$k"); done; find "${dirs[@]}" -mindepth 1 -maxdepth 1 "${not[@]}" "$@" 2>/dev/null; }',
  ].join('\n');
}

/**
 * The command that leaves a used sandbox as a new one would be for the next caller: every process of
 * the unprivileged `user` (where user code runs, including anything it started in the background or in
 * a new session) is killed, and everything directly in /home/user, /tmp, /var/tmp and /dev/shm is
 * removed except `keep`. It runs as root, so user code cannot hide from it; the removal is done as
 * `user` and then as root, because root may lack CAP_DAC_OVERRIDE (the local cloud drops it) and then
 * cannot touch what `user` owns. The command fails when a process of `user` survives or anything is
 * left, so a sandbox that could not be cleaned is replaced rather than handed on.
 *
 * It is one bash script (the shell the SDK starts anyway) that starts one process as `user` and, in
 * the common case where nothing has to be removed, no other: kill, waiting and listing are builtins.
 * Kept files listed in `expect` must still hold exactly that content, or the command fails.
 * @throws InvalidInputError (`keep`) for a path that is not absolute or holds a NUL; (`expect.<path>`) for
 *   an expected file that is not kept.
 */
export function scrubCommand(keep: readonly string[] = [], expect: Readonly<Record<string, string>> = {}): string {
  for (const path of keep) {
    if (!path.startsWith('/') || path.includes('\0')) throw new InvalidInputError('keep', `must be absolute paths, got ${JSON.stringify(path)}`);
  }
  for (const [path, content] of Object.entries(expect)) {
    if (!keep.includes(path)) throw new InvalidInputError(`expect.${path}`, 'must be one of the kept paths (keep)');
    if (content.includes('\0')) throw new InvalidInputError(`expect.${path}`, 'must not hold a NUL');
  }
  const shared = prelude(keep, expect);
  return [
    'cd / || exit 1',
    shared,
    `setpriv --reuid=user --regid=user --clear-groups -- /bin/bash -c ${shellQuote(`${shared}\n${USER_PART}`)} || exit 1`,
    ROOT_PART,
  ].join('\n');
}

/**
 * Runs {@link scrubCommand} in `sandbox`. The caller restarts the interpreter contexts afterwards (their
 * workers run as `user` and were killed too).
 * @throws the provider's error when the command cannot run or fails (the sandbox should then be replaced).
 */
export async function scrubSandbox(sandbox: ScrubbableSandbox, options: ScrubOptions = {}): Promise<void> {
  await sandbox.commands.run(scrubCommand(options.keep, options.expect), { user: 'root', timeoutMs: options.timeoutMs ?? 10_000 });
}
