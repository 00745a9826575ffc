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

describeServerBacked(POSTGRES, 'Store on PostgreSQL: a transaction whose connection the server ends', () => {
  it('fails its next query with a StoreError, rolls back, and the store goes on', async () => {
    const schema = `store_test_${randomId(10).toLowerCase()}`;
    const store = await openStore({ databaseUrl: DATABASE_URL, schema, maxConnections: 1 });
    try {
      const error = await store
        .transaction(async (tx) => {
          await tx.query("INSERT INTO events (deployment_id, at_ms, kind) SELECT 'none', 1, 'x' WHERE false");
          await tx.query("SET LOCAL idle_in_transaction_session_timeout = '100ms'");
          // Idle in the transaction past its timeout: the server ends the connection.
          await new Promise((resolve) => setTimeout(resolve, 400));
          await tx.query('SELECT 1');
        })
        .catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(StoreError);
      expect(await store.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await store.close();
      await dropSchema(schema);
    }
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
