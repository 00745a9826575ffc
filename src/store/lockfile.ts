import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './errors.js';

/** The file in a PGlite data dir that says which process has the database open. */
export const LOCK_FILE = 'tradeswarm.lock';

/** A lock on a data dir, held until released. */
export interface DirLock {
  readonly path: string;
  /** Removes the lock file if it is still this process's. */
  release(): void;
}

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
 * Takes the lock on a PGlite data dir: PGlite is one process's database, and two processes writing one
 * data dir would corrupt it. The lock is a file holding the owner's pid, created exclusively; a lock
 * left by a process that no longer runs (killed, crashed) is taken over.
 * @throws StoreError naming the dir and the process that has it.
 */
export function lockDataDir(dataDir: string): DirLock {
  const path = join(dataDir, LOCK_FILE);
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
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError(`cannot lock the PGlite data dir ${dataDir} (${path}): ${(error as Error).message}. Check that the directory is writable`, { cause: error });
      }
    }
    const owner = readPid(path);
    if (owner !== undefined && alive(owner)) {
      const who = owner === process.pid ? 'this process already has it open (close that store first)' : `process ${owner} has it open`;
      throw new StoreError(
        `the PGlite data dir ${dataDir} is in use: ${who}. PGlite serves one process at a time: stop that process, ` +
          'point this one at another dataDir, or use a PostgreSQL server (databaseUrl) to share one database',
        { retryable: true },
      );
    }
    // The owner is gone (or the file is empty or damaged): the lock is stale. Whoever removes and
    // recreates it first wins; the other sees EEXIST again with a live owner.
    rmSync(path, { force: true });
  }
  throw new StoreError(`the PGlite data dir ${dataDir} is being opened by another process at the same moment; try again`, { retryable: true });
}
