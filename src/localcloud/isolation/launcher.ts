import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { GuestSupervisor } from './guest.js';

/**
 * Host paths of one sandbox. The mount points are mounted on in the sandbox's mount namespace only; on
 * the host they stay empty folders.
 */
export interface SandboxDirs {
  /** Mount point of the sandbox's root filesystem (overlays assembled by the init, see `assemble` in guest/supervisor.py). */
  readonly root: string;
  /** The image file of the sandbox's disk, which holds everything it writes (see disk.ts); the init makes it. */
  readonly diskImage: string;
  /**
   * Mount point of the disk; its `home` is seen as /home/user inside, its `tmp` as /tmp, and its `layers`
   * holds the upper layers of the root's overlays (what the sandbox changes anywhere else).
   */
  readonly disk: string;
  /**
   * An empty folder outside the root, where the init mounts (in the sandbox's mount namespace only) the
   * layer it lays over the host's /etc: the sandbox's own files and empty stand-ins for the host's secrets.
   */
  readonly etc: string;
  /**
   * A file outside the root holding this boot's id (a random UUID), which the init lays over the
   * sandbox's /proc/sys/kernel/random/boot_id: each start of a sandbox is a boot of its machine, as
   * each start of an E2B sandbox boots its VM, instead of the host kernel's id for every sandbox.
   */
  readonly bootId: string;
}

/** What the init of a new sandbox needs. */
export interface InitSpec {
  readonly sandboxId: string;
  readonly dirs: SandboxDirs;
  /** The formatted image the init copies into `dirs.diskImage` (a template's, see `TemplateDisks` in disk.ts). */
  readonly diskTemplate: string;
  /** The sandbox's own files in /etc (passwd, group, hostname, hosts): name to content. */
  readonly etcFiles: Readonly<Record<string, string>>;
  /** More of its own files in /etc, copied from the host: name to the host file's path (for those too big to pass as content, which goes on a command line). */
  readonly etcCopies?: Readonly<Record<string, string>>;
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

/** The uid and gid of `user` inside every sandbox. */
export const SANDBOX_USER_ID = 1000;

function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Host folder of the supervisor, bind-mounted read-only into every sandbox: `src/localcloud/guest`, or `dist/localcloud/guest` where the build copies it (scripts/build.ts). */
export const GUEST_HOST_DIR = fileURLToPath(new URL('../guest', import.meta.url));
/** Where the sandbox sees the guest folder's programs (its `sudo`); first in every sandbox's PATH. */
export const GUEST_BIN_DIR = '/opt/tradeswarm/guest/bin';

/**
 * What the supervisor builds before it serves (see `assemble` in guest/supervisor.py): the root
 * filesystem (writable everywhere through overlays whose upper layers are on the sandbox's own disk,
 * over the host's /usr and /lib*, and over the host's /etc without what "other" may not read, under
 * the sandbox's own files; /home/user and /tmp on that disk; private /dev, /proc), hostname, loopback,
 * rlimits, chroot, and the capabilities it keeps.
 */
export function assembleSpec(spec: InitSpec): Record<string, unknown> {
  return {
    root: spec.dirs.root,
    disk: { template: spec.diskTemplate, image: spec.dirs.diskImage, mountPoint: spec.dirs.disk },
    etc: spec.dirs.etc,
    bootId: spec.dirs.bootId,
    etcFiles: spec.etcFiles,
    etcCopies: spec.etcCopies ?? {},
    kernels: spec.kernelsDir,
    guest: spec.guestDir,
    hostname: spec.sandboxId,
    privateNetwork: spec.privateNetwork,
    maxOpenFiles: spec.maxOpenFiles,
    maxFileSizeBytes: spec.maxFileSizeBytes,
  };
}

/**
 * Starts the sandbox's init and resolves once its root filesystem is assembled.
 * @throws when the init fails (its stderr is in the message).
 */
export async function startInit(spec: InitSpec, timeoutMs = 10_000): Promise<SandboxInit> {
  const joinCgroups = spec.cgroupProcsFiles.map((file) => `echo $$ > ${quote(file)}`).join('; ');
  const unshare = [
    '/usr/bin/unshare',
    '--mount', '--pid', '--uts', '--ipc', '--fork', '--propagation', 'private', '--kill-child',
    ...(spec.privateNetwork ? ['--net'] : []),
    '/usr/bin/python3', '-I', '-S', '"$0"', '--assemble', '"$1"',
  ].join(' ');
  // setpriv --pdeathsig: if the server dies, unshare dies, its child (the supervisor, pid 1 inside) is
  // killed by --kill-child, and with pid 1 gone the kernel kills every process of the sandbox.
  const child = spawn(
    '/usr/bin/setpriv',
    ['--pdeathsig', 'KILL', '--', '/bin/sh', '-c', `${joinCgroups}${joinCgroups ? '; ' : ''}exec ${unshare}`, join(spec.guestDir, 'supervisor.py'), JSON.stringify(assembleSpec(spec))],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
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
  let supervisorClosed = false;
  const ready = supervisor.ready.catch((failure: unknown) => {
    supervisorClosed = true;
    throw failure;
  });
  ready.catch(() => undefined);
  try {
    await Promise.race([ready, exited, timeout]);
  } catch (error) {
    child.kill('SIGKILL');
    // A supervisor that dies closes its output before its exit is seen; the exit's error carries its stderr.
    if (supervisorClosed) throw await exited.catch((failure: unknown) => failure);
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

/** Capabilities a root process started from the host may keep (all that root in a sandbox ever has). */
export type SandboxCapability = 'setuid' | 'setgid' | 'kill';

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
  /**
   * Capabilities a `root` process keeps (as the supervisor's root commands do), e.g. to drop to `user`
   * itself later. Ignored for `user`, which never holds any. @default none
   */
  readonly capabilities?: readonly SandboxCapability[];
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
  const kept = spec.user === 'root' ? (spec.capabilities ?? []).map((name) => `,+${name}`).join('') : '';
  const outer = [
    ...spec.cgroupProcsFiles.map((file) => `echo $$ > ${quote(file)}`),
    `ulimit -n ${spec.maxOpenFiles}`,
    `ulimit -f ${Math.max(1, Math.floor(spec.maxFileSizeBytes / 512))}`,
    [
      'exec /usr/bin/nsenter', `--target ${spec.initPid}`, '--pid --mount --uts --ipc', spec.privateNetwork ? '--net' : '', '--root --wd',
      '-- /usr/bin/setpriv', `--reuid=${uid} --regid=${uid} --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all${kept}`,
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
