import { MIGRATIONS_DIR } from './migrations.js';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';
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
  return config.databaseUrl === undefined ? openPglite(config) : openPostgres(config);
}
