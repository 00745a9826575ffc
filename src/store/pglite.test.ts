import { afterEach, describe, expect, it } from 'vitest';
import { StoreError } from './errors.js';
import { openStore } from './open.js';
import { pgliteWorkerOf } from './pglite.js';
import type { Store } from './store.js';
import { insertDeployment, storeContract } from './store.testkit.js';

// The data-dir variant, the lock and the kill test are in pglite.integration.test.ts: each PGlite takes
// seconds to start, too slow for the unit tier.
storeContract('PGlite in memory', {
  persistent: false,
  concurrentOpens: false,
  newTarget: () => Promise.resolve({ open: (options) => openStore({ dataDir: 'memory', ...options }), dispose: () => Promise.resolve() }),
});

describe('PGlite in its worker thread', () => {
  const stores: Store[] = [];
  const open = async (): Promise<Store> => {
    const store = await openStore({ dataDir: 'memory' });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  it('opens each in-memory database empty and migrated, though later ones start from a copy of an earlier one', async () => {
    const first = await open();
    await insertDeployment(first, 'first');
    const second = await open();
    await insertDeployment(second, 'second');
    // The third and fourth start from the copy the second made of itself once migrated.
    const [third, fourth] = [await open(), await open()];
    await insertDeployment(third, 'third');
    for (const [store, own] of [
      [first, ['first']],
      [second, ['second']],
      [third, ['third']],
      [fourth, []],
    ] as const) {
      expect((await store.query<{ id: string }>('SELECT id FROM deployments ORDER BY id')).map((row) => row.id)).toEqual(own);
      expect((await store.query('SELECT version FROM schema_migrations')).length).toBeGreaterThan(0);
    }
  });

  it('carries parameters and rows of every type across the thread intact', async () => {
    const store = await open();
    const bytes = new Uint8Array([0, 1, 127, 128, 255]);
    const at = new Date('2026-12-07T04:05:06.789Z');
    const [row] = await store.query(
      'SELECT $1::bytea AS bytes, $2::timestamptz AS at, $3::int8 AS big, $4::int8 AS small, $5::numeric AS price, $6::jsonb AS doc, $7::text AS nothing, $8::bool AS yes, $9::float8 AS third',
      [bytes, at, 9007199254740993n, 42, '12.5', JSON.stringify({ a: [1, 'two', null], b: { c: 0.1 } }), null, true, 1 / 3],
    );
    expect(row).toEqual({ bytes, at, big: 9007199254740993n, small: 42, price: 12.5, doc: { a: [1, 'two', null], b: { c: 0.1 } }, nothing: null, yes: true, third: 1 / 3 });
    expect(row?.bytes).toBeInstanceOf(Uint8Array);
    expect(row?.at).toBeInstanceOf(Date);
  });

  it('keeps a transaction across several awaited queries, and a query from outside waits for its commit', async () => {
    const store = await open();
    let proceed: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    const order: string[] = [];
    const committed = store.transaction(async (tx) => {
      await insertDeployment(tx, 'd1');
      order.push('inserted');
      await gate;
      await tx.query("UPDATE deployments SET name = 'renamed' WHERE id = 'd1'");
      order.push('updated');
      return 'done';
    });
    await new Promise<void>((resolve) => {
      const poll = (): void => (order.includes('inserted') ? resolve() : void setImmediate(poll));
      poll();
    });
    // PGlite is one connection: outside the transaction, this query runs after it ends, and sees it whole.
    const outside = store.query<{ name: string }>('SELECT name FROM deployments').then((rows) => {
      order.push('outside');
      return rows;
    });
    proceed();
    expect(await committed).toBe('done');
    expect(await outside).toEqual([{ name: 'renamed' }]);
    expect(order).toEqual(['inserted', 'updated', 'outside']);
  });

  it('fails every pending and later query with a StoreError when the worker dies, and closes', async () => {
    const store = await open();
    let proceed: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    let begun: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (begun = resolve));
    const transaction = store
      .transaction(async (tx) => {
        await insertDeployment(tx, 'd1');
        begun();
        await gate;
        await tx.query('SELECT 1');
      })
      .catch((error: unknown) => error);
    await inside;
    // Waits in the worker behind the open transaction: pending when the worker dies.
    const pending = store.query('SELECT 1').catch((error: unknown) => error);
    await pgliteWorkerOf(store)!.terminate();
    proceed();
    const message = /^the worker thread that runs PGlite for the in-memory PGlite database ended \(exit code 1\): this query and every later one on this store fail\. Close the store and open it again/;
    for (const error of [await pending, await transaction, await store.query('SELECT 1').catch((thrown: unknown) => thrown)]) {
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toMatch(message);
    }
    await store.close();
    await expect(store.query('SELECT 1')).rejects.toThrow(/is closed: open it again with openStore/);
  });

  it('ends its worker on close', async () => {
    const store = await open();
    const worker = pgliteWorkerOf(store)!;
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    await store.close();
    expect(await exited).toBe(1);
    expect(worker.threadId).toBe(-1);
  });
});
