/**
 * Which data folders belong to a server that still runs, so that the next server to start removes
 * what a crashed one (SIGKILL, power loss) left on disk and never touches a live one's: two servers
 * run side by side in tests, and `tradeswarm run` beside `tradeswarm cloud serve`.
 *
 * A server's instance folder (`srv-<pid>-<random>`) holds a FIFO, `owner`, that the server keeps open
 * for reading as long as it lives; the kernel closes it when the process ends, however it ends. Opening
 * a FIFO for writing without blocking fails with ENXIO exactly when nobody has it open for reading, so
 * that open tells a live owner from a gone one with no pid in between: a reused pid, or a server in
 * another pid namespace sharing the folder, cannot fool it. (The sandbox pool's process tags in
 * `src/sandbox/liveness.ts` solve the same problem with pid and start time, but the local cloud depends
 * on no domain but core, so it does not use them.) A folder without the FIFO — one made by an older version, or
 * by a server killed between making its folder and its FIFO — is judged by the pid in its name.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';

/** How a server's own temporary data root is named in the temporary folder (`mkdtemp` adds 6 characters). */
export const TEMP_ROOT_PREFIX = 'tradeswarm-localcloud-';

/** `running`: its server still runs. `ended`: its server is gone. `unknown`: not a folder this project names. */
export type InstanceState = 'running' | 'ended' | 'unknown';

/** A server's hold on its instance folder. */
export interface InstanceClaim {
  /** Whether the folder carries the owner FIFO (false where the filesystem has no FIFOs: then only its pid tells). */
  readonly marked: boolean;
  /** Lets go of the folder (call after removing it). Safe to call twice. */
  release(): void;
}

const OWNER_FIFO = 'owner';
const INSTANCE_NAME = /^srv-(\d+)-/;

/**
 * Makes the instance folder `dir` (named `srv-<pid>-<random>` by the calling server) and marks it as
 * this process's for as long as it lives.
 */
export function claimInstanceDir(dir: string): InstanceClaim {
  mkdirSync(dir, { recursive: true });
  // Made under another name and opened before it is renamed into place: an `owner` that nobody reads
  // means a gone server, so one must never be seen before this process reads it.
  const pending = join(dir, `.${OWNER_FIFO}-pending`);
  const made = spawnSync('/usr/bin/mkfifo', ['-m', '600', pending], { stdio: 'ignore' });
  if (made.status !== 0) return { marked: false, release: () => undefined };
  let fd: number | undefined = openSync(pending, constants.O_RDONLY | constants.O_NONBLOCK);
  renameSync(pending, join(dir, OWNER_FIFO));
  return {
    marked: true,
    release() {
      if (fd === undefined) return;
      closeSync(fd);
      fd = undefined;
    },
  };
}

/** Whether the server that made the instance folder `dir` still runs. */
export function instanceState(dir: string): InstanceState {
  try {
    closeSync(openSync(join(dir, OWNER_FIFO), constants.O_WRONLY | constants.O_NONBLOCK));
    return 'running';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENXIO') return 'ended';
    // Anything but a missing FIFO (a folder not made by this project, a filesystem that refuses) is
    // left alone rather than guessed about.
    if (code !== 'ENOENT') return 'unknown';
  }
  const pid = INSTANCE_NAME.exec(basename(dir))?.[1];
  if (pid === undefined) return 'unknown';
  try {
    process.kill(Number(pid), 0);
    return 'running';
  } catch (error) {
    // EPERM: a process with that pid exists (not ours to signal).
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? 'ended' : 'running';
  }
}

/**
 * Removes the instance folders in `parentDir` (a data folder a user gave) whose server is gone.
 * @returns how many were removed.
 */
export function cleanStaleDataDirs(parentDir: string): number {
  let cleaned = 0;
  for (const name of instanceFolders(parentDir)) {
    if (instanceState(join(parentDir, name)) !== 'ended') continue;
    if (removeQuietly(join(parentDir, name))) cleaned++;
  }
  return cleaned;
}

/**
 * Removes the temporary data roots (`tradeswarm-localcloud-*` in `tempDir`) whose every server is gone.
 * A root with no instance folder yet is left alone: its server may be making it right now.
 * @returns how many roots were removed.
 */
export function cleanStaleTempRoots(tempDir: string): number {
  let cleaned = 0;
  let names: string[];
  try {
    names = readdirSync(tempDir).filter((name) => name.startsWith(TEMP_ROOT_PREFIX));
  } catch {
    return 0;
  }
  for (const name of names) {
    const root = join(tempDir, name);
    const instances = instanceFolders(root);
    if (instances.length === 0 || !instances.every((instance) => instanceState(join(root, instance)) === 'ended')) continue;
    if (removeQuietly(root)) cleaned++;
  }
  return cleaned;
}

function instanceFolders(dir: string): string[] {
  if (!existsSync(dir)) return [];
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory() && INSTANCE_NAME.test(entry.name)).map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** Removes a tree another server starting at the same moment may be removing too. */
function removeQuietly(path: string): boolean {
  try {
    rmSync(path, { recursive: true, force: true });
    return true;
  } catch {
    return false;
  }
}
