// The Store contract: what every Store (PGlite in memory, PGlite in a data dir, PostgreSQL) does alike.
// Each implementation's test file calls storeContract with a factory of fresh, empty databases.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DuplicateError, StoreError } from './errors.js';
import { MIGRATIONS_DIR, loadMigrations } from './migrations.js';
import type { Queryable, Store } from './store.js';

/** One fresh, empty database (a new data dir, a new schema), for one test. */
export interface StoreTarget {
  /** Opens a store on this target's database: the same database on every call. */
  open(options?: { migrationsDir?: string }): Promise<Store>;
  /** Removes the database (drops the schema, deletes the dir). */
  dispose(): Promise<void>;
}

/** How an implementation is run by {@link storeContract}. */
export interface StoreContractOptions {
  /** Whether a store closed and opened again finds the same database (false: PGlite in memory). */
  readonly persistent: boolean;
  /** Whether several stores can be open on one database at once (PostgreSQL; not a PGlite data dir). */
  readonly concurrentOpens: boolean;
  /** A fresh, empty database. */
  newTarget(): Promise<StoreTarget>;
}

/** A folder with the shipped migrations and `extra` files (name → SQL) beside them. */
export function migrationsWith(extra: Readonly<Record<string, string>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tradeswarm-migrations-'));
  for (const migration of loadMigrations(MIGRATIONS_DIR)) copyFileSync(join(MIGRATIONS_DIR, migration.file), join(dir, migration.file));
  for (const [file, sql] of Object.entries(extra)) writeFileSync(join(dir, file), sql);
  return dir;
}

/** Inserts the deployment `id` (the parent row every other table needs). */
export async function insertDeployment(db: Queryable, id: string, name = id): Promise<void> {
  await db.query(
    `INSERT INTO deployments (id, name, env, spec_version, desired, state, created_at_ms, updated_at_ms)
     VALUES ($1, $2, 'dev', 1, 'running', 'pending', 1733480000000, 1733480000000)`,
    [id, name],
  );
}

async function versions(db: Queryable): Promise<number[]> {
  return (await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).map((row) => row.version);
}

async function tableExists(db: Queryable, name: string): Promise<boolean> {
  const [row] = await db.query<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [name]);
  return row?.found !== null && row?.found !== undefined;
}

/** Doubles that must come back bit for bit (no -0: the PostgreSQL driver sends it as "0"). */
const DOUBLES = [0.1 + 0.2, 1e-310, 5e-324, Number.MAX_VALUE, -123456.789, 1 / 3, 2 ** 53 + 2];

/** The contract every Store passes. */
export function storeContract(name: string, options: StoreContractOptions): void {
  describe(`Store contract: ${name}`, () => {
    // A promise, so that stores opened at the same moment share one target.
    let target: Promise<StoreTarget> | undefined;
    const stores: Store[] = [];
    const open = async (migrationsDir?: string): Promise<Store> => {
      target ??= options.newTarget();
      const store = await (await target).open(migrationsDir === undefined ? {} : { migrationsDir });
      stores.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((store) => store.close()));
      await (await target)?.dispose();
      target = undefined;
    });

    it('applies the migrations on open and records them', async () => {
      const store = await open();
      expect(await versions(store)).toEqual(loadMigrations(MIGRATIONS_DIR).map((migration) => migration.version));
      const rows = await store.query<{ name: string; applied_at: unknown }>('SELECT name, applied_at FROM schema_migrations ORDER BY version');
      expect(rows.map((row) => row.name)).toEqual(['control_plane', 'step_replay', 'deployment_figures', 'control_plane_lease', 'deployment_replicas', 'step_account', 'close_step_function', 'venue_history_chunks', 'fenced_close_step']);
      expect(rows[0]?.applied_at).toBeInstanceOf(Date);
      for (const table of ['deployments', 'deployment_specs', 'agents', 'checkpoints', 'steps', 'orders', 'fills', 'positions', 'equity', 'events', 'control_plane_lease']) {
        expect(await tableExists(store, table), table).toBe(true);
      }
    });

    it.skipIf(!options.persistent)('keeps its data across close and open, and a second open applies nothing', async () => {
      const first = await open();
      await insertDeployment(first, 'd1');
      const applied = await first.query<{ applied_at: Date }>('SELECT applied_at FROM schema_migrations ORDER BY version');
      await first.close();
      const second = await open();
      expect(await second.query('SELECT id, name FROM deployments')).toEqual([{ id: 'd1', name: 'd1' }]);
      expect(await second.query('SELECT applied_at FROM schema_migrations ORDER BY version')).toEqual(applied);
    });

    it.skipIf(!options.concurrentOpens)('applies each migration once when several stores open at the same moment', async () => {
      const opened = await Promise.all([open(), open(), open(), open()]);
      for (const store of opened) expect(await versions(store)).toEqual(loadMigrations(MIGRATIONS_DIR).map((migration) => migration.version));
    });

    it('commits a transaction: its result is returned and its rows are there', async () => {
      const store = await open();
      const result = await store.transaction(async (tx) => {
        await insertDeployment(tx, 'd1');
        await tx.query("INSERT INTO positions (deployment_id, symbol, quantity) VALUES ('d1', 'SPY', 10)");
        return (await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM positions'))[0]?.n;
      });
      expect(result).toBe(1);
      expect(await store.query('SELECT symbol, quantity FROM positions')).toEqual([{ symbol: 'SPY', quantity: 10 }]);
    });

    it('rolls a transaction back when fn throws, and rethrows what it threw', async () => {
      const store = await open();
      const thrown = new Error('strategy failed');
      await expect(
        store.transaction(async (tx) => {
          await insertDeployment(tx, 'd1');
          throw thrown;
        }),
      ).rejects.toBe(thrown);
      expect(await store.query('SELECT id FROM deployments')).toEqual([]);
      await store.transaction((tx) => insertDeployment(tx, 'd2'));
      expect(await store.query('SELECT id FROM deployments')).toEqual([{ id: 'd2' }]);
    });

    it('refuses nested transactions, store.query inside a transaction, and a tx used after its end', async () => {
      const store = await open();
      let kept: Queryable | undefined;
      await expect(store.transaction(() => store.transaction(() => Promise.resolve(1)))).rejects.toThrow(/nested transactions are not supported/);
      await expect(store.transaction(() => store.query('SELECT 1'))).rejects.toThrow(/Use the tx the transaction gives/);
      await store.transaction((tx) => {
        kept = tx;
        return Promise.resolve();
      });
      await expect(kept!.query('SELECT 1')).rejects.toThrow(/this transaction has ended/);
      expect(await store.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    });

    it('throws DuplicateError naming the constraint, and the transaction rolls back', async () => {
      const store = await open();
      await insertDeployment(store, 'd1', 'alpha');
      const byKey = await insertDeployment(store, 'd1', 'beta').catch((error: unknown) => error);
      expect(byKey).toBeInstanceOf(DuplicateError);
      expect(byKey).toMatchObject({ constraint: 'deployments_pkey', code: '23505', retryable: false });
      expect((byKey as Error).message).toContain('"deployments_pkey"');
      const byName = await store
        .transaction(async (tx) => {
          await insertDeployment(tx, 'd2', 'gamma');
          await insertDeployment(tx, 'd3', 'alpha');
        })
        .catch((error: unknown) => error);
      expect(byName).toMatchObject({ name: 'DuplicateError', constraint: 'deployments_name_key' });
      expect(await store.query('SELECT id FROM deployments ORDER BY id')).toEqual([{ id: 'd1' }]);
    });

    it('maps other database errors to StoreError with the SQLSTATE', async () => {
      const store = await open();
      const error = await store.query('SELECT * FROM no_such_table').catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: '42P01', retryable: false });
      expect((error as Error).message).toMatch(/no_such_table.*SQLSTATE 42P01/);
    });

    it('round-trips doubles exactly, int8 as numbers (bigint beyond 2^53 - 1), jsonb parsed, timestamptz as Date', async () => {
      const store = await open();
      await insertDeployment(store, 'd1');
      for (const [step, value] of DOUBLES.entries()) {
        await store.query('INSERT INTO equity (deployment_id, step, time_ms, equity, cash) VALUES ($1, $2, $3, $4, $5)', ['d1', step, 1733480000000 + step, value, -value]);
      }
      const rows = await store.query<{ step: number; time_ms: number; equity: number; cash: number }>('SELECT step, time_ms, equity, cash FROM equity ORDER BY step');
      expect(rows.map((row) => row.equity)).toEqual(DOUBLES);
      expect(rows.every((row) => Object.is(row.cash, -DOUBLES[row.step]!))).toBe(true);
      expect(rows.map((row) => row.time_ms)).toEqual(DOUBLES.map((_, step) => 1733480000000 + step));

      const [big] = await store.query('SELECT $1::int8 AS safe, $2::int8 AS unsafe, 12.5::numeric AS price, count(*) AS n FROM equity', [
        Number.MAX_SAFE_INTEGER,
        '9007199254740993',
      ]);
      expect(big).toEqual({ safe: Number.MAX_SAFE_INTEGER, unsafe: 9007199254740993n, price: 12.5, n: DOUBLES.length });

      const snapshot = { step: 3, agents: [{ id: 'a1', cash: 0.1 + 0.2 }], note: 'ünïcode', none: null };
      await store.query('UPDATE deployments SET snapshot = $1::jsonb, report = $2::jsonb WHERE id = $3', [JSON.stringify(snapshot), JSON.stringify([1, 'two']), 'd1']);
      expect(await store.query('SELECT snapshot, report FROM deployments')).toEqual([{ snapshot, report: [1, 'two'] }]);

      const at = new Date('2026-12-06T10:11:12.345Z');
      expect(await store.query("SELECT $1::timestamptz AS at, '2026-12-06 11:11:12.345+01'::timestamptz AS literal, NULL::text AS nothing", [at])).toEqual([
        { at, literal: at, nothing: null },
      ]);
    });

    it.skipIf(!options.persistent)('stops at a failing migration, naming its file and statement, and leaves the database at the version before', async () => {
      // Numbered past the shipped ones, whatever they are.
      const shipped = loadMigrations(MIGRATIONS_DIR).map((migration) => migration.version);
      const good = '901_more.sql';
      const broken = '902_broken.sql';
      const dir = migrationsWith({
        [good]: 'CREATE TABLE more_things (id int PRIMARY KEY);\n',
        [broken]: "CREATE TABLE half_done (id int);\n\n-- the typo:\nINSERT INTO no_such_table\n  VALUES (1);\nCREATE TABLE never (id int);\n",
      });
      const error = await open(dir).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toMatch(/^migration 902_broken\.sql failed at line 4 \(INSERT INTO no_such_table\): .*no_such_table.*stays at the version before it/);
      const atGood = await open(migrationsWith({ [good]: 'CREATE TABLE more_things (id int PRIMARY KEY);\n' }));
      expect(await versions(atGood)).toEqual([...shipped, 901]);
      expect(await tableExists(atGood, 'more_things')).toBe(true);
      expect(await tableExists(atGood, 'half_done')).toBe(false);
    });

    it.skipIf(!options.persistent)('refuses a database migrated by a newer tradeswarm (a version with no file)', async () => {
      const shipped = loadMigrations(MIGRATIONS_DIR);
      const newer = await open(migrationsWith({ '901_from_the_future.sql': 'CREATE TABLE future (id int);' }));
      expect(await versions(newer)).toEqual([...shipped.map((migration) => migration.version), 901]);
      await newer.close();
      const error = await open().catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toMatch(new RegExp(`has migration 901_from_the_future that this tradeswarm does not know \\(its newest is ${shipped.at(-1)?.file.replace('.', '\\.')}\\): a newer tradeswarm wrote it`));
    });
  });
}
