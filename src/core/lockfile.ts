// A folder one process at a time may use: a file in it holds the owner's pid, created exclusively; a
// lock left by a process that no longer runs (killed, crashed) is taken over. Written here rather than
// with proper-lockfile: that one judges staleness by the file's age, which a long-running owner must
// keep refreshing, while a pid says at once whether the owner still runs on this machine.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A lock on a folder, held until released. */
export interface DirLock {
  readonly path: string;
  /** Removes the lock file if it is still this process's. */
  release(): void;
}

/** Why a folder could not be locked. */
export type LockRefusal =
  /** Another running process (or this one: `self`) holds it. */
  | { readonly kind: 'busy'; readonly owner: number; readonly self: boolean }
  /** Another process took it over from a dead owner at the same moment. */
  | { readonly kind: 'racing' }
  /** The lock file could not be made (the folder is missing or not writable). */
  | { readonly kind: 'unwritable'; readonly error: Error };

/** Whether a process with this pid runs (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock file `file` in `dir`.
 * @param refuse the error to throw for a refusal, in the words of the caller's domain.
 * @throws what `refuse` returns.
 */
export function lockDir(dir: string, file: string, refuse: (why: LockRefusal) => Error): DirLock {
  const path = join(dir, file);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return {
        path,
        release: () => {
          if (readPid(path) === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw refuse({ kind: 'unwritable', error: error as Error });
    }
    const owner = readPid(path);
    if (owner !== undefined && alive(owner)) throw refuse({ kind: 'busy', owner, self: owner === process.pid });
    // The owner is gone (or the file is empty or damaged): the lock is stale. Whoever removes and
    // recreates it first wins; the other sees EEXIST again with a live owner.
    rmSync(path, { force: true });
  }
  throw refuse({ kind: 'racing' });
}
