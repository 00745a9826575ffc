import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { GuestSupervisor } from './guest.js';

/** Host directories of one sandbox. */
export interface SandboxDirs {
  /** Mount point of the sandbox's root filesystem (a tmpfs assembled by the init). */
  readonly root: string;
  /** Seen as /home/user inside. */
  readonly home: string;
  /** Seen as /tmp inside. */
  readonly tmp: string;
  /** Files laid over /etc inside (passwd, group, hostname, hosts). */
  readonly etc: string;
}

/** What the init of a new sandbox needs. */
export interface InitSpec {
  readonly sandboxId: string;
  readonly dirs: SandboxDirs;
  /** A private, empty network namespace (no network at all) instead of the host's. */
  readonly privateNetwork: boolean;
  /** Host directory bind-mounted read-only at /opt/tradeswarm/kernels. */
  readonly kernelsDir: string;
  /** Host directory bind-mounted read-only at /opt/tradeswarm/guest (holds the supervisor). */
  readonly guestDir: string;
  /** RLIMIT_NOFILE of every process in the sandbox. */
  readonly maxOpenFiles: number;
  /** RLIMIT_FSIZE of every process in the sandbox. */
  readonly maxFileSizeBytes: number;
  /** `cgroup.procs` files the init joins before creating the namespaces. */
  readonly cgroupProcsFiles: readonly string[];
}

/** A running sandbox init: pid 1 of the sandbox's PID namespace. */
export interface SandboxInit {
  /** Host pid of the namespace's pid 1 (the target of `nsenter`). */
  readonly pid: number;
  /** The `unshare` process holding the namespaces; when it dies, everything in the sandbox dies. */
  readonly process: ChildProcess;
  /** Starts commands inside the sandbox (pid 1 is the supervisor). */
  readonly supervisor: GuestSupervisor;
}

/** The host paths a sandbox sees read-only (the rest of its root is empty or private). */
const HOST_READ_ONLY = ['usr', 'etc'] as const;
const HOST_ROOT_LINKS_OR_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'] as const;
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'] as const;
/** Parts of /proc that would let root in a sandbox change the host (as Docker masks them). */
const PROC_READ_ONLY = ['sys', 'sysrq-trigger', 'irq', 'bus'] as const;

/** The uid and gid of `user` inside every sandbox. */
export const SANDBOX_USER_ID = 1000;

function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Host folder of the supervisor, bind-mounted read-only into every sandbox. */
export const GUEST_HOST_DIR = fileURLToPath(new URL('../guest', import.meta.url));

/** Where the supervisor is inside every sandbox. */
export const SUPERVISOR_PATH = '/opt/tradeswarm/guest/supervisor.py';

/**
 * The init script, run by `unshare` as pid 1 of a new PID, mount, UTS (and maybe network) namespace:
 * it assembles the sandbox's root filesystem, sets the rlimits, and becomes the supervisor, which
 * keeps only the capabilities it needs to start commands as another user and signal them.
 */
export function initScript(spec: InitSpec): string {
  const { root, home, tmp, etc } = spec.dirs;
  const r = quote(root);
  const lines = [
    'set -e',
    'mount --make-rprivate /',
    `mount -t tmpfs -o mode=755,size=8m tmpfs ${r}`,
  ];
  for (const dir of HOST_READ_ONLY) {
    lines.push(`mkdir -p ${r}/${dir}`, `mount --rbind /${dir} ${r}/${dir}`, `mount -o remount,bind,ro ${r}/${dir}`);
  }
  for (const name of HOST_ROOT_LINKS_OR_DIRS) {
    const host = `/${name}`;
    if (!existsSync(host)) continue;
    if (lstatSync(host).isSymbolicLink()) lines.push(`ln -s ${quote(readlinkSync(host))} ${r}/${name}`);
    else lines.push(`mkdir -p ${r}/${name}`, `mount --rbind ${host} ${r}/${name}`, `mount -o remount,bind,ro ${r}/${name}`);
  }
  for (const file of ['passwd', 'group', 'hostname', 'hosts']) {
    lines.push(`mount --bind ${quote(`${etc}/${file}`)} ${r}/etc/${file}`);
  }
  lines.push(
    `mkdir -p ${r}/proc ${r}/dev ${r}/home/user ${r}/tmp ${r}/root ${r}/run ${r}/var/tmp ${r}/opt/tradeswarm/kernels ${r}/opt/tradeswarm/guest`,
    `chmod 700 ${r}/root`,
    `chmod 1777 ${r}/var/tmp`,
    `mount -t proc -o nosuid,nodev,noexec proc ${r}/proc`,
    ...PROC_READ_ONLY.map((entry) => `if [ -e ${r}/proc/${entry} ]; then mount --bind ${r}/proc/${entry} ${r}/proc/${entry} && mount -o remount,bind,ro ${r}/proc/${entry}; fi`),
    `if [ -e ${r}/proc/kcore ]; then mount --bind /dev/null ${r}/proc/kcore; fi`,
    `mount -t tmpfs -o mode=755,size=1m,nosuid tmpfs ${r}/dev`,
    ...DEVICES.map((device) => `touch ${r}/dev/${device} && mount --bind /dev/${device} ${r}/dev/${device}`),
    `mkdir -p ${r}/dev/shm && mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs ${r}/dev/shm`,
    `ln -s /proc/self/fd ${r}/dev/fd && ln -s /proc/self/fd/0 ${r}/dev/stdin && ln -s /proc/self/fd/1 ${r}/dev/stdout && ln -s /proc/self/fd/2 ${r}/dev/stderr`,
    `mount --bind ${quote(home)} ${r}/home/user`,
    `mount --bind ${quote(tmp)} ${r}/tmp`,
    `mount --bind ${quote(spec.kernelsDir)} ${r}/opt/tradeswarm/kernels && mount -o remount,bind,ro ${r}/opt/tradeswarm/kernels`,
    `mount --bind ${quote(spec.guestDir)} ${r}/opt/tradeswarm/guest && mount -o remount,bind,ro ${r}/opt/tradeswarm/guest`,
    `mount -o remount,ro,bind ${r}`,
    `hostname ${quote(spec.sandboxId)}`,
  );
  if (spec.privateNetwork) lines.push('if [ -x /usr/sbin/ip ]; then /usr/sbin/ip link set lo up; fi');
  lines.push(
    `ulimit -n ${spec.maxOpenFiles}`,
    `ulimit -f ${Math.max(1, Math.floor(spec.maxFileSizeBytes / 512))}`,
    `cd ${r}`,
    // pid 1 of the namespace: killing it kills every process of the sandbox.
    `exec chroot ${r} /usr/bin/setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,+setuid,+setgid,+kill -- /usr/bin/python3 -I -S ${SUPERVISOR_PATH}`,
  );
  return lines.join('\n');
}

/**
 * Starts the sandbox's init and resolves once its root filesystem is assembled.
 * @throws when the init fails (its stderr is in the message).
 */
export async function startInit(spec: InitSpec, timeoutMs = 10_000): Promise<SandboxInit> {
  const joinCgroups = spec.cgroupProcsFiles.map((file) => `echo $$ > ${quote(file)}`).join('; ');
  const unshare = [
    '/usr/bin/unshare',
    '--mount', '--pid', '--uts', '--fork', '--propagation', 'private', '--kill-child',
    ...(spec.privateNetwork ? ['--net'] : []),
    '/bin/sh', '-c', '"$0"',
  ].join(' ');
  // setpriv --pdeathsig: if the server dies, unshare dies, its child (the init) is killed by
  // --kill-child, and with pid 1 gone the kernel kills every process of the sandbox.
  const child = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', '/bin/sh', '-c', `${joinCgroups}${joinCgroups ? '; ' : ''}exec ${unshare}`, initScript(spec)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const supervisor = new GuestSupervisor(child.stdin, child.stdout);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`the sandbox init exited (${signal ?? `code ${code}`}) before it was ready: ${stderr.trim() || 'no error output'}`)));
    child.once('error', reject);
  });
  exited.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the sandbox init was not ready within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
  });
  try {
    await Promise.race([supervisor.ready, exited, timeout]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const pid = readChildPid(child.pid!);
  if (pid === undefined) {
    child.kill('SIGKILL');
    throw new Error('the sandbox init is ready but its pid could not be found under /proc');
  }
  return { pid, process: child, supervisor };
}

function readChildPid(parentPid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${parentPid}/task/${parentPid}/children`, 'utf8').trim().split(' ')[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/** What to run inside a sandbox. */
export interface SpawnSpec {
  readonly initPid: number;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Working directory inside the sandbox. */
  readonly cwd: string;
  readonly user: 'user' | 'root';
  readonly privateNetwork: boolean;
  readonly cgroupProcsFiles: readonly string[];
  readonly maxOpenFiles: number;
  readonly maxFileSizeBytes: number;
  /** Extra stdio pipes after fd 2 (fd 3, 4, …), passed through to the process. */
  readonly extraFds?: number;
}

/** A process started inside a sandbox. */
export interface SandboxProcess {
  /** The host-side leader (`nsenter`, which waits for the process and exits with its status). */
  readonly child: ChildProcess;
  /** The process's pid as seen inside the sandbox; rejects if it never started. */
  readonly pid: Promise<number>;
  /**
   * Sends a signal to the process inside the sandbox only (not to the host-side leader, which would
   * die of it). Use for SIGINT-style interrupts; to end the whole command, signal `-child.pid`.
   * @returns false when the process is gone.
   */
  signalInside(signal: NodeJS.Signals): boolean;
}

// Runs inside the sandbox, after setpriv: reports its in-sandbox pid on the last extra fd, then
// becomes the requested program in the requested directory.
const INNER = 'fd=$1; shift; eval "echo \\$\\$ >&$fd; exec $fd>&-"; cd "$1" || exit 1; shift; exec "$@"';

/**
 * Starts a process inside a running sandbox: joins its cgroups, applies rlimits, enters its
 * namespaces and root, drops to the sandbox user (root keeps no capabilities and cannot gain any).
 * The child leads its own process group, so signalling `-child.pid` reaches everything it started.
 */
export function spawnInSandbox(spec: SpawnSpec): SandboxProcess {
  const extraFds = spec.extraFds ?? 0;
  const pidFd = 3 + extraFds;
  const uid = spec.user === 'root' ? 0 : SANDBOX_USER_ID;
  const outer = [
    ...spec.cgroupProcsFiles.map((file) => `echo $$ > ${quote(file)}`),
    `ulimit -n ${spec.maxOpenFiles}`,
    `ulimit -f ${Math.max(1, Math.floor(spec.maxFileSizeBytes / 512))}`,
    [
      'exec /usr/bin/nsenter', `--target ${spec.initPid}`, '--pid --mount --uts', spec.privateNetwork ? '--net' : '', '--root --wd',
      '-- /usr/bin/setpriv', `--reuid=${uid} --regid=${uid} --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all`,
      '-- /bin/sh -c "$0" sh "$@"',
    ].filter(Boolean).join(' '),
  ].join('; ');
  const child = spawn('/bin/sh', ['-c', outer, INNER, String(pidFd), spec.cwd, ...spec.argv], {
    env: { ...spec.env },
    stdio: ['pipe', 'pipe', 'pipe', ...Array.from({ length: extraFds }, () => 'pipe' as const), 'pipe'],
    detached: true,
  });
  const pidStream = child.stdio[pidFd] as NodeJS.ReadableStream | null;
  const pid = new Promise<number>((resolve, reject) => {
    let text = '';
    if (!pidStream) return reject(new Error('no pid pipe'));
    // Resolve on the first line: nsenter keeps its copy of the pipe open until the process ends.
    pidStream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = /^(\d+)\n/.exec(text);
      if (line) resolve(Number(line[1]));
    });
    pidStream.on('error', () => undefined);
    void once(pidStream, 'close').then(() => reject(new Error(`the process could not be started inside the sandbox${text ? `: ${text.trim()}` : ''}`)));
  });
  // Avoid an unhandled rejection when nobody asks for the pid.
  pid.catch(() => undefined);
  const signalInside = (signal: NodeJS.Signals): boolean => {
    // nsenter forked exactly one child: the process that entered the sandbox (same pid after its execs).
    const inside = child.pid === undefined ? undefined : readChildPid(child.pid);
    if (inside === undefined) return false;
    try {
      process.kill(inside, signal);
      return true;
    } catch {
      return false;
    }
  };
  return { child, pid, signalInside };
}
