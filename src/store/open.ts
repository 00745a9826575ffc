import { MIGRATIONS_DIR } from './migrations.js';
import { type OpenStoreOptions, type Store, compileStoreOptions } from './store.js';

/**
 * Opens the store and brings its database up to the newest migration: PGlite in `dataDir` (or in
 * memory) by default, the PostgreSQL server at `databaseUrl` when given.
 * @throws InvalidInputError naming the option that is invalid.
 * @throws StoreError when the database cannot be reached or opened (a PGlite data dir in use by another
 *   process, a server that does not answer), a migration fails (naming its file and statement), or the
 *   database was migrated by a newer tradeswarm.
 */
export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const config = compileStoreOptions(options, MIGRATIONS_DIR);
  // Each driver is loaded when it is used: a command that opens no store (every CLI command but
  // `serve`) does not pay for loading PGlite's WebAssembly or pg.
  if (config.databaseUrl === undefined) return (await import('./pglite.js')).openPglite(config);
  return (await import('./postgres.js')).openPostgres(config);
}
