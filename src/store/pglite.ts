import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { StoreError, mapDriverError } from './errors.js';
import { type DirLock, lockDataDir } from './lockfile.js';
import { loadMigrations, migrate } from './migrations.js';
import { type Queryable, type Store, type StoreConfig, refuseInsideTransaction, runGuarded } from './store.js';
import { parseInt8, parseNumeric } from './values.js';

/**
 * Opens PGlite (embedded PostgreSQL in WASM; its binaries ship in the package, nothing is downloaded)
 * in `config.dataDir` (or in memory) and applies the migrations. One PGlite is one connection: PGlite
 * runs a query outside a transaction only between transactions, never inside one.
 * @throws StoreError when the data dir is in use by another process, or cannot be created or opened.
 */
export async function openPglite(config: StoreConfig): Promise<Store> {
  const memory = config.dataDir === 'memory';
  const dataDir = memory ? undefined : resolve(config.dataDir);
  const where = dataDir === undefined ? 'the in-memory PGlite database' : `the PGlite data dir ${dataDir}`;
  let lock: DirLock | undefined;
  if (dataDir !== undefined) {
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (error) {
      throw new StoreError(`cannot create the PGlite data dir ${dataDir}: ${(error as Error).message}. Check the path and its permissions, or set another dataDir`, {
        cause: error,
      });
    }
    lock = lockDataDir(dataDir);
  }
  let db: PGlite | undefined;
  try {
    db = await PGlite.create({
      ...(dataDir === undefined ? {} : { dataDir }),
      parsers: { [types.INT8]: parseInt8, [types.NUMERIC]: parseNumeric },
    });
    const opened = db;
    if (config.schema !== undefined) {
      // Created (under the migrations' lock) before anything uses it; the search_path names it already.
      await opened.query(`SET search_path TO "${config.schema}"`);
    }
    await migrate({ where, query: async (sql, params) => (await opened.query(sql, params === undefined ? undefined : [...params])).rows as never }, loadMigrations(config.migrationsDir), config.schema, config.logger);
    return pgliteStore(opened, where, lock);
  } catch (error) {
    await db?.close().catch(() => undefined);
    lock?.release();
    throw mapDriverError(error, `opening ${where}`);
  }
}

function pgliteStore(db: PGlite, where: string, lock: DirLock | undefined): Store {
  const run = async <R>(target: Pick<PGlite, 'query'>, sql: string, params: readonly unknown[] | undefined): Promise<R[]> => {
    try {
      return (await target.query<R>(sql, params === undefined ? undefined : [...params])).rows;
    } catch (error) {
      throw mapDriverError(error, `query on ${where}`);
    }
  };
  let closed = false;
  const refuseClosed = (): void => {
    if (closed) throw new StoreError(`the store on ${where} is closed: open it again with openStore`);
  };
  return {
    kind: 'pglite',
    async query<R extends Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      refuseClosed();
      refuseInsideTransaction('query');
      return run<R>(db, sql, params);
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      refuseClosed();
      refuseInsideTransaction('transaction');
      try {
        return await db.transaction((tx) => runGuarded({ query: <R extends Record<string, unknown>>(sql: string, params?: readonly unknown[]) => run<R>(tx, sql, params) }, fn));
      } catch (error) {
        throw error instanceof Error && !isDriverError(error) ? error : mapDriverError(error, `transaction on ${where}`);
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      try {
        await db.close();
      } finally {
        lock?.release();
      }
    },
  };
}

/** Whether PGlite itself threw `error` (a COMMIT that failed), rather than the transaction's `fn`. */
function isDriverError(error: Error): boolean {
  return typeof (error as { code?: unknown }).code === 'string' && (error as { severity?: unknown }).severity !== undefined;
}
