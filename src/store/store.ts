import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidInputError, type Logger, silentLogger } from '../core/index.js';
import { StoreError } from './errors.js';

/**
 * Runs SQL. Rows come back as plain objects keyed by column name, with the same values on both drivers:
 * - `int4`, `float8`, `numeric` → `number` (`float8` exactly: PostgreSQL 12+ prints the shortest text
 *   that reads back as the same double);
 * - `int8` (`bigint`) → `number` when it is a safe integer (|n| ≤ 2^53 − 1), a `bigint` beyond, so no
 *   digit is ever lost silently;
 * - `timestamptz` → `Date`; `json`/`jsonb` → the parsed value; `text` → `string`; `NULL` → `null`.
 *
 * Parameters are `$1`, `$2`, …; pass a JSON value as its text (`JSON.stringify(value)`, with `$1::jsonb`):
 * the PostgreSQL driver would send a JS array as a PostgreSQL array.
 */
export interface Queryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/** The persistence seam (DESIGN decision 7): embedded PostgreSQL (PGlite) or a PostgreSQL server, one API. */
export interface Store extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs `fn` in one transaction (BEGIN/COMMIT, ROLLBACK on throw, the error rethrown); resolves once
   * the commit returned. Queries go through `tx`, the transaction's own connection.
   * @throws StoreError when called inside another transaction (nested transactions are not supported),
   *   or when `store.query` is called inside `fn` (use `tx`).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Closes the connections (and, for PGlite, the database and its lock on the data dir). */
  close(): Promise<void>;
}

/** Where the store keeps its data. */
export interface OpenStoreOptions {
  /**
   * `postgres://user:password@host:port/database`; when given, PGlite is not used.
   * @default undefined (PGlite, in `dataDir`)
   */
  databaseUrl?: string;
  /**
   * PGlite's data directory, created if missing; `'memory'` for an in-memory database that is gone on close.
   * Ignored with `databaseUrl`.
   * @default 'memory'
   */
  dataDir?: string;
  /**
   * A schema to keep the tables in (tests isolate themselves this way): created if missing, and put
   * first on the `search_path`. Lower-case letters, digits and `_`, starting with a letter or `_`.
   * @default undefined (PostgreSQL's default search_path: `public`)
   */
  schema?: string;
  /** @default silentLogger */
  logger?: Logger;
  /**
   * The folder of migrations (`NNN_name.sql`) to apply. Tests give their own.
   * @default the migrations shipped with tradeswarm (src/store/migrations)
   */
  migrationsDir?: string;
  /**
   * PostgreSQL only: the most connections the pool opens.
   * @default 10
   */
  maxConnections?: number;
}

/** {@link OpenStoreOptions}, checked and completed. */
export interface StoreConfig {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly schema: string | undefined;
  readonly logger: Logger;
  readonly migrationsDir: string;
  readonly maxConnections: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Checks and completes the options. @throws InvalidInputError naming the field. */
export function compileStoreOptions(options: OpenStoreOptions, defaultMigrationsDir: string): StoreConfig {
  if (options.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(options.databaseUrl)) {
    throw new InvalidInputError('databaseUrl', 'must be a postgres:// or postgresql:// URL, e.g. postgres://user:password@127.0.0.1:5432/tradeswarm');
  }
  if (options.dataDir !== undefined && options.dataDir.trim() === '') {
    throw new InvalidInputError('dataDir', "must be a directory path, or 'memory' for an in-memory database");
  }
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new InvalidInputError('schema', `"${options.schema}" is not a plain schema name: use lower-case letters, digits and _, starting with a letter or _ (at most 63)`);
  }
  const maxConnections = options.maxConnections ?? 10;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new InvalidInputError('maxConnections', `must be a whole number of at least 1, got ${maxConnections}`);
  }
  return {
    databaseUrl: options.databaseUrl,
    dataDir: options.dataDir ?? 'memory',
    schema: options.schema,
    logger: options.logger ?? silentLogger,
    migrationsDir: options.migrationsDir ?? defaultMigrationsDir,
    maxConnections,
  };
}

/** The transaction whose `fn` is running in this async context, if any. */
const openTransaction = new AsyncLocalStorage<{ open: boolean }>();

/** Throws when called from inside a transaction's `fn`: `what` would not be part of it. */
export function refuseInsideTransaction(what: 'query' | 'transaction'): void {
  if (openTransaction.getStore()?.open !== true) return;
  throw new StoreError(
    what === 'transaction'
      ? 'store.transaction was called inside another transaction: nested transactions are not supported. Do the work in the outer transaction, through its tx'
      : 'store.query was called inside a transaction: it would run outside it (or wait for it forever, on PGlite). Use the tx the transaction gives',
  );
}

/**
 * Runs `fn` with `tx` guarded: inside `fn`, the store's own `query` and `transaction` refuse (see
 * {@link refuseInsideTransaction}), and `tx` refuses once the transaction has ended.
 */
export async function runGuarded<T>(tx: Queryable, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const state = { open: true };
  const guarded: Queryable = {
    query: (sql, params) => {
      if (!state.open) {
        return Promise.reject(new StoreError('this transaction has ended (committed or rolled back): its tx cannot run queries any more. Use the store, or a new transaction'));
      }
      return tx.query(sql, params);
    },
  };
  try {
    return await openTransaction.run(state, () => fn(guarded));
  } finally {
    state.open = false;
  }
}
