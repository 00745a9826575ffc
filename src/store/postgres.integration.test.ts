import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { closedPort, describeServerBacked, probeTcp } from '../../test/fixtures/servers.js';
import { randomId } from '../core/index.js';
import { StoreError } from './errors.js';
import { openStore } from './open.js';
import { storeContract } from './store.testkit.js';

const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const POSTGRES = await probeTcp('PostgreSQL at 127.0.0.1:5432', '127.0.0.1', 5432);

/** Drops `schema` and all in it. */
async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

describeServerBacked(POSTGRES, 'Store on PostgreSQL', () => {
  // Each test gets a schema of its own, dropped after it.
  storeContract('PostgreSQL', {
    persistent: true,
    concurrentOpens: true,
    newTarget: () => {
      const schema = `store_test_${randomId(10).toLowerCase()}`;
      return Promise.resolve({ open: (options) => openStore({ databaseUrl: DATABASE_URL, schema, ...options }), dispose: () => dropSchema(schema) });
    },
  });
});

describe('Store on PostgreSQL: connection failures', () => {
  it('names the URL without its password and what to check when the server does not answer', async () => {
    const port = await closedPort();
    const error = await openStore({ databaseUrl: `postgres://trader:s3cret@127.0.0.1:${port}/tradeswarm` }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(StoreError);
    const message = (error as Error).message;
    expect(message).toMatch(new RegExp(`^cannot connect to PostgreSQL at postgres://trader:\\*\\*\\*@127\\.0\\.0\\.1:${port}/tradeswarm: .*ECONNREFUSED`));
    expect(message).toContain('Check that the server runs and listens there');
    expect(message).not.toContain('s3cret');
    expect(error).toMatchObject({ retryable: true });
  });
});
