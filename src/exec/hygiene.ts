import { InvalidInputError } from '../core/index.js';
import type { CodeContext } from '../sandbox/index.js';
import { SandboxTidyError } from './errors.js';

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

/** Directories user code can write to (/dev/mqueue holds POSIX message queues) and the scrub empties; one that does not exist is skipped. */
export const SCRUBBED_DIRECTORIES: readonly string[] = ['/home/user', '/tmp', '/var/tmp', '/dev/shm', '/dev/mqueue'];

/** What {@link tidySandbox} needs of a sandbox: running code in a Python context (the SDK's `Sandbox` fits). */
export interface TidyableSandbox {
  readonly sandboxId: string;
  runCode(code: string, options: { context: CodeContext; timeoutMs: number }): Promise<{ error?: { readonly name: string; readonly value: string } | undefined }>;
}

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
  // System V IPC objects (shared memory, queues, semaphores) outlive their processes: remove them.
  'no_ipc || ipcrm --all 2>/dev/null',
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
  'no_ipc || { echo "could not remove System V IPC objects" >&2; exit 1; }',
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
    // True when the sandbox holds no System V IPC object (each /proc/sysvipc file is a header line alone).
    'no_ipc() { local f lines; for f in /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem; do mapfile -t lines < "$f"; ((${#lines[@]} <= 1)) || return 1; done; return 0; }',
  ].join('\n');
}

/**
 * The command that leaves a used sandbox as a new one would be for the next caller: every process of
 * the unprivileged `user` (where user code runs, including anything it started in the background or in
 * a new session) is killed, every System V IPC object (shared memory, queues, semaphores, which
 * outlive processes) is removed, and everything directly in /home/user, /tmp, /var/tmp, /dev/shm and
 * /dev/mqueue (POSIX message queues) is removed except `keep`. It runs as root, so user code cannot
 * hide from it; the removal is done as
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
  checkKept(keep, expect);
  const shared = prelude(keep, expect);
  return [
    'cd / || exit 1',
    shared,
    `setpriv --reuid=user --regid=user --clear-groups -- /bin/bash -c ${shellQuote(`${shared}\n${USER_PART}`)} || exit 1`,
    ROOT_PART,
  ].join('\n');
}

/** @throws InvalidInputError (`keep`, `expect.<path>`) as {@link scrubCommand} says. */
function checkKept(keep: readonly string[], expect: Readonly<Record<string, string>>): void {
  for (const path of keep) {
    if (!path.startsWith('/') || path.includes('\0')) throw new InvalidInputError('keep', `must be absolute paths, got ${JSON.stringify(path)}`);
  }
  for (const [path, content] of Object.entries(expect)) {
    if (!keep.includes(path)) throw new InvalidInputError(`expect.${path}`, 'must be one of the kept paths (keep)');
    if (content.includes('\0')) throw new InvalidInputError(`expect.${path}`, 'must not hold a NUL');
  }
}

/**
 * Runs {@link scrubCommand} in `sandbox`. The caller restarts the interpreter contexts afterwards (their
 * workers run as `user` and were killed too).
 * @throws the provider's error when the command cannot run or fails (the sandbox should then be replaced).
 */
export async function scrubSandbox(sandbox: ScrubbableSandbox, options: ScrubOptions = {}): Promise<void> {
  await sandbox.commands.run(scrubCommand(options.keep, options.expect), { user: 'root', timeoutMs: options.timeoutMs ?? 10_000 });
}

/** `text` as a Python bytes literal (its UTF-8 bytes; anything but printable ASCII escaped). */
function pythonBytes(text: string): string {
  let literal = "b'";
  for (const byte of Buffer.from(text, 'utf8')) {
    literal += byte === 0x27 || byte === 0x5c ? `\\${String.fromCharCode(byte)}` : byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${literal}'`;
}

/**
 * Python, run as `user`: fails when another process of its user exists, or a System V IPC object
 * (which it has no module to remove; the scrub does); removes everything in the
 * scrubbed directories but `keep` (opening up directories its owner locked), and fails if anything is
 * left; fails when a kept file in `expect` is not a regular, readable file of exactly that content.
 * Paths and contents are bytes, so no encoding stands between them and the file system. It imports
 * only `posix`, a module built into the interpreter: a file the last caller left in the working
 * directory (the first place Python looks for a module) cannot stand in for it.
 */
const TIDY = `
def tidy(keep, expect, dirs):
    import posix
    me, uid = posix.getpid(), posix.getuid()
    if uid == 0:
        raise RuntimeError('the tidy-up runs as root; it must run as the unprivileged user')
    for name in posix.listdir(b'/proc'):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(b'/proc/' + name + b'/status', 'rb') as status:
                ids = [line.split()[1:4] for line in status if line.startswith(b'Uid:')]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ids and str(uid).encode() in ids[0]:
            raise RuntimeError('process %d of the user is still running' % int(name))
    for table in (b'/proc/sysvipc/shm', b'/proc/sysvipc/msg', b'/proc/sysvipc/sem'):
        with open(table, 'rb') as objects:
            if len(objects.readlines()) > 1:
                raise RuntimeError('System V IPC objects are left (%s)' % table.decode())
    S_IFMT, S_IFDIR, S_IFREG = 0o170000, 0o040000, 0o100000

    def open_up(path, info):
        if info.st_uid == uid and info.st_mode & 0o700 != 0o700:
            posix.chmod(path, info.st_mode & 0o7777 | 0o700)

    def remove(path):
        info = posix.lstat(path)
        if info.st_mode & S_IFMT == S_IFDIR:
            open_up(path, info)
            for name in posix.listdir(path):
                remove(path + b'/' + name)
            posix.rmdir(path)
        else:
            posix.unlink(path)

    def left(directory):
        return [path for path in (directory + b'/' + name for name in posix.listdir(directory)) if path not in keep]

    for directory in dirs:
        try:
            open_up(directory, posix.stat(directory))
        except FileNotFoundError:
            continue
        for path in left(directory):
            try:
                remove(path)
            except OSError as error:
                raise RuntimeError('could not remove %s (%s)' % (path.decode(errors='replace'), error.strerror)) from None
        rest = left(directory)
        if rest:
            raise RuntimeError('could not remove %s' % rest[0].decode(errors='replace'))
    for path, content in expect:
        data = None
        try:
            if posix.lstat(path).st_mode & S_IFMT == S_IFREG:
                fd = posix.open(path, posix.O_RDONLY)
                try:
                    chunks = []
                    while True:
                        chunk = posix.read(fd, 65536)
                        if not chunk:
                            break
                        chunks.append(chunk)
                    data = b''.join(chunks)
                finally:
                    posix.close(fd)
        except OSError:
            pass
        if data is None:
            raise RuntimeError('kept file %s was replaced or made unreadable' % path.decode(errors='replace'))
        if data != content:
            raise RuntimeError('kept file %s was changed' % path.decode(errors='replace'))
`;

/**
 * The Python code {@link tidySandbox} runs: what {@link scrubCommand} does to files, and a check that
 * no process of the user is left, as one cell that leaves no name behind.
 * @throws InvalidInputError as {@link scrubCommand} does.
 */
export function tidyCode(keep: readonly string[] = [], expect: Readonly<Record<string, string>> = {}): string {
  checkKept(keep, expect);
  const list = (items: readonly string[]): string => `[${items.map(pythonBytes).join(', ')}]`;
  const expected = Object.entries(expect).map(([path, content]) => `(${pythonBytes(path)}, ${pythonBytes(content)})`);
  return `${TIDY}
try:
    tidy(set(${list(keep)}), [${expected.join(', ')}], ${list(SCRUBBED_DIRECTORIES)})
finally:
    del tidy
`;
}

/**
 * Leaves the files of a used sandbox as {@link scrubSandbox} does, from a Python worker instead of a
 * shell started as root, and checks that no process of `user` is left instead of killing them: about a
 * third of the CPU of a scrub. It trusts the worker that runs it, so it is sound only where no process
 * of `user` can have reached that worker: the caller restarts `context` first, on a sandbox where the
 * restart ends every process the old worker started and nothing else ran code as `user` since the last
 * scrub. The worker may then serve the next caller: this code leaves no name in it. The local cloud is such a
 * sandbox (see `LOCAL_INTERPRETER_MARKER`): its Python zygote is the subreaper of everything a worker
 * starts, a JavaScript kernel that ran nothing still runs as root, and a fresh worker cannot be traced
 * by other processes of `user` before its first execution; should a process of `user` survive anyway,
 * this fails, naming it, and the caller scrubs.
 * @throws SandboxTidyError when a process of `user` is left, something cannot be removed, or a kept
 *   file changed (scrub the sandbox instead); the provider's error when the code cannot run.
 */
export async function tidySandbox(sandbox: TidyableSandbox, context: CodeContext, options: ScrubOptions = {}): Promise<void> {
  const execution = await sandbox.runCode(tidyCode(options.keep, options.expect), { context, timeoutMs: options.timeoutMs ?? 10_000 });
  if (execution.error) throw new SandboxTidyError(sandbox.sandboxId, `${execution.error.name}: ${execution.error.value}`);
}
