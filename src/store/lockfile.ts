import { join } from 'node:path';
import { type DirLock, lockDir } from '../core/index.js';
import { StoreError } from './errors.js';

/** The file in a PGlite data dir that says which process has the database open. */
export const LOCK_FILE = 'tradeswarm.lock';

/**
 * Takes the lock on a PGlite data dir: PGlite is one process's database, and two processes writing one
 * data dir would corrupt it. The lock is a file holding the owner's pid, created exclusively; a lock
 * left by a process that no longer runs (killed, crashed) is taken over.
 * @throws StoreError naming the dir and the process that has it.
 */
export function lockDataDir(dataDir: string): DirLock {
  return lockDir(dataDir, LOCK_FILE, (why) => {
    if (why.kind === 'unwritable') {
      return new StoreError(`cannot lock the PGlite data dir ${dataDir} (${join(dataDir, LOCK_FILE)}): ${why.error.message}. Check that the directory is writable`, { cause: why.error });
    }
    if (why.kind === 'racing') return new StoreError(`the PGlite data dir ${dataDir} is being opened by another process at the same moment; try again`, { retryable: true });
    const who = why.self ? 'this process already has it open (close that store first)' : `process ${why.owner} has it open`;
    return new StoreError(
      `the PGlite data dir ${dataDir} is in use: ${who}. PGlite serves one process at a time: stop that process, ` +
        'point this one at another dataDir, or use a PostgreSQL server (databaseUrl) to share one database',
      { retryable: true },
    );
  });
}
