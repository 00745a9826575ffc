import pg from 'pg';
import { errorChain } from '../core/index.js';
import { StoreError, mapDriverError } from './errors.js';
import { loadMigrations, migrate } from './migrations.js';
import { type Queryable, type Store, type StoreConfig, refuseInsideTransaction, runGuarded } from './store.js';
import { parseInt8, parseNumeric } from './values.js';

/** OIDs whose parsing differs from pg's defaults, so that both drivers give the same values. */
const PARSERS: Readonly<Record<number, (text: string) => unknown>> = { 20: parseInt8, 1700: parseNumeric };

/** pg's type parsers with {@link PARSERS} on top, for this pool only (pg.types is process-wide). */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => PARSERS[oid] ?? (pg.types.getTypeParser(oid, format) as (text: string) => unknown)) as pg.CustomTypesConfig['getTypeParser'],
};

/** `url` without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/**
 * Connects a pool to the PostgreSQL server at `config.databaseUrl` and applies the migrations.
 * @throws StoreError naming the URL (without its password) and what to check when the server cannot be reached.
 */
export async function openPostgres(config: StoreConfig): Promise<Store> {
  const url = config.databaseUrl!;
  const where = `PostgreSQL at ${redactUrl(url)}`;
  const pool = new pg.Pool({
    connectionString: url,
    max: config.maxConnections,
    connectionTimeoutMillis: 10_000,
    types: TYPES,
    ...(config.schema === undefined ? {} : { options: `-c search_path=${config.schema}` }),
  });
  // An idle connection the server dropped: the pool replaces it; say so rather than crash the process.
  pool.on('error', (error) => config.logger.warn({ err: error, where }, 'an idle PostgreSQL connection failed; the pool replaces it'));
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new StoreError(
      `cannot connect to ${where}: ${errorChain(error)}. Check that the server runs and listens there, ` +
        'that the user, password and database in databaseUrl are right, and that pg_hba.conf lets this host in',
      { cause: error, retryable: true },
    );
  }
  try {
    await migrate({ where, query: async (sql, params) => (await client.query(sql, params === undefined ? undefined : [...params])).rows as never }, loadMigrations(config.migrationsDir), config.schema, config.logger);
    client.release();
  } catch (error) {
    client.release(true);
    await pool.end().catch(() => undefined);
    throw mapDriverError(error, `migrating ${where}`);
  }
  return postgresStore(pool, where);
}

function postgresStore(pool: pg.Pool, where: string): Store {
  const run = async <R>(target: pg.Pool | pg.PoolClient, sql: string, params: readonly unknown[] | undefined): Promise<R[]> => {
    try {
      return (await target.query(sql, params === undefined ? undefined : [...params])).rows as R[];
    } catch (error) {
      throw mapDriverError(error, `query on ${where}`);
    }
  };
  let closed = false;
  const refuseClosed = (): void => {
    if (closed) throw new StoreError(`the store on ${where} is closed: open it again with openStore`);
  };
  return {
    kind: 'postgres',
    async query<R extends Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      refuseClosed();
      refuseInsideTransaction('query');
      return run<R>(pool, sql, params);
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      refuseClosed();
      refuseInsideTransaction('transaction');
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw mapDriverError(error, `connecting to ${where}`);
      }
      // A BEGIN, COMMIT or ROLLBACK that failed leaves the connection in doubt: it is not handed out again.
      let discard = false;
      // The server may end the connection while the transaction waits for its next statement (an idle
      // timeout, an operator): pg then emits `error` on the client, which the pool no longer listens to
      // while it is checked out. Without a listener that would end the process; the next query fails instead.
      const onLost = (): void => {
        discard = true;
      };
      client.on('error', onLost);
      const control = async (sql: 'BEGIN' | 'COMMIT'): Promise<void> => {
        try {
          await client.query(sql);
        } catch (error) {
          discard = true;
          throw mapDriverError(error, `${sql} on ${where}`);
        }
      };
      try {
        await control('BEGIN');
        let result: T;
        try {
          result = await runGuarded({ query: <R extends Record<string, unknown>>(sql: string, params?: readonly unknown[]) => run<R>(client, sql, params) }, fn);
        } catch (error) {
          await client.query('ROLLBACK').catch(() => (discard = true));
          throw error;
        }
        await control('COMMIT');
        return result;
      } finally {
        client.off('error', onLost);
        client.release(discard ? true : undefined);
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
