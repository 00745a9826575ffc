import { describe, expect, it } from 'vitest';
import { type CachedRow, EventTails, RecordCache } from './recordcache.js';
import type { DeploymentRecord } from './repository.js';

function row(id: string, closedSteps: number, createdAtMs = 1): CachedRow<DeploymentRecord> {
  const record: DeploymentRecord = {
    id,
    name: `name-${id}`,
    env: 'dev',
    specVersion: 1,
    desired: 'running',
    state: 'running',
    closedSteps,
    orders: 0,
    fills: 0,
    equity: null,
    finalEquity: null,
    error: null,
    createdAtMs,
    updatedAtMs: createdAtMs,
    replicas: {},
  };
  return { record, hasReport: false };
}

/** A read of the store that returns `rows` when `settle` is called. */
function pendingRead(rows: Array<CachedRow<DeploymentRecord>>): { read: () => Promise<Array<CachedRow<DeploymentRecord>>>; settle: () => void; reads: () => number } {
  let count = 0;
  let settle = (): void => undefined;
  const done = new Promise<void>((resolve) => {
    settle = resolve;
  });
  return {
    read: async () => {
      count += 1;
      await done;
      return rows;
    },
    settle: () => settle(),
    reads: () => count,
  };
}

describe('RecordCache', () => {
  it('reads the store once, then answers from memory, newest first and then by id in byte order', async () => {
    const cache = new RecordCache<DeploymentRecord>();
    const store = pendingRead([row('b', 0, 1), row('a-', 0, 1), row('c', 0, 2)]);
    store.settle();
    expect((await cache.all(store.read)).map((record) => record.id)).toEqual(['c', 'a-', 'b']);
    expect((await cache.find('name-b', store.read))?.id).toBe('b');
    expect(await cache.find('missing', store.read)).toBeUndefined();
    expect(store.reads()).toBe(1);
  });

  it('keeps a row a write stored while the first read ran, not the older one the read returned', async () => {
    const cache = new RecordCache<DeploymentRecord>();
    const store = pendingRead([row('a', 3), row('b', 1)]);
    const listing = cache.all(store.read);
    cache.put(row('a', 4));
    store.settle();
    expect((await listing).map((record) => [record.id, record.closedSteps])).toEqual([
      ['a', 4],
      ['b', 1],
    ]);
  });

  it('does not complete from a read that raced a failed write: it answers that read, and reads again next time', async () => {
    const cache = new RecordCache<DeploymentRecord>();
    const first = pendingRead([row('a', 3)]);
    const listing = cache.all(first.read);
    cache.forget('a');
    first.settle();
    expect((await listing).map((record) => record.closedSteps)).toEqual([3]);
    const second = pendingRead([row('a', 5)]);
    second.settle();
    expect((await cache.all(second.read)).map((record) => record.closedSteps)).toEqual([5]);
    expect((await cache.all(second.read)).map((record) => record.closedSteps)).toEqual([5]);
    expect(second.reads()).toBe(1);
  });

  it('drops pruned deployments for good, even from a read that raced the prune', async () => {
    const cache = new RecordCache<DeploymentRecord>();
    const store = pendingRead([row('a', 0), row('b', 0)]);
    const listing = cache.all(store.read);
    cache.remove(['a']);
    store.settle();
    expect((await listing).map((record) => record.id)).toEqual(['b']);
    cache.put(row('a', 1));
    expect(await cache.find('a', store.read)).toBeUndefined();
  });

  it('keeps positions read from the store unless a write stored others meanwhile', async () => {
    const cache = new RecordCache<DeploymentRecord>();
    cache.put(row('a', 0));
    let release = (): void => undefined;
    const reading = cache.positions('a', async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return [{ symbol: 'AAA', quantity: 1 }];
    });
    cache.putPositions('a', [
      { symbol: 'BBB', quantity: 2 },
      { symbol: 'AAA', quantity: 3 },
    ]);
    release();
    expect(await reading).toEqual([{ symbol: 'AAA', quantity: 1 }]);
    expect(await cache.positions('a', () => Promise.reject(new Error('not asked')))).toEqual([
      { symbol: 'AAA', quantity: 3 },
      { symbol: 'BBB', quantity: 2 },
    ]);
  });

  it("runs one deployment's writes one after the other, a failed one not stopping the next", async () => {
    const cache = new RecordCache<DeploymentRecord>();
    const order: string[] = [];
    let release = (): void => undefined;
    const first = cache.serial('a', async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      order.push('first');
      throw new Error('refused');
    });
    const second = cache.serial('a', () => {
      order.push('second');
      return Promise.resolve(2);
    });
    const other = cache.serial('b', () => {
      order.push('other');
      return Promise.resolve(3);
    });
    await other;
    release();
    await expect(first).rejects.toThrow('refused');
    expect(await second).toBe(2);
    expect(order).toEqual(['other', 'first', 'second']);
  });
});

describe('EventTails', () => {
  const event = (id: number): { id: number } => ({ id });

  it('reads a tail once, then keeps the latest events added, in id order whatever order they came in', async () => {
    const tails = new EventTails<{ id: number }>(3);
    let reads = 0;
    const read = (count: number): Promise<Array<{ id: number }>> => {
      reads += 1;
      return Promise.resolve([1, 2, 3].slice(-count).map(event));
    };
    expect(await tails.latest('a', 2, read)).toEqual([event(2), event(3)]);
    tails.add('a', event(5));
    tails.add('a', event(4));
    expect(await tails.latest('a', 3, read)).toEqual([event(3), event(4), event(5)]);
    expect(reads).toBe(1);
    // More than it keeps: the store answers.
    expect(await tails.latest('a', 4, read)).toEqual([event(1), event(2), event(3)]);
    // A deployment whose tail was never read keeps nothing of what is added.
    tails.add('b', event(9));
    expect(await tails.latest('b', 3, () => Promise.resolve([event(8), event(9)]))).toEqual([event(8), event(9)]);
  });

  it('merges an event added while its tail was read, once; after a failed append or a prune it reads again', async () => {
    const tails = new EventTails<{ id: number }>(3);
    let release = (): void => undefined;
    const reading = tails.latest('a', 3, async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return [event(1), event(2)];
    });
    tails.add('a', event(2));
    tails.add('a', event(3));
    release();
    expect(await reading).toEqual([event(1), event(2), event(3)]);
    tails.forget('a');
    expect(await tails.latest('a', 3, () => Promise.resolve([event(7)]))).toEqual([event(7)]);
    tails.clear();
    expect(await tails.latest('a', 3, () => Promise.resolve([event(8)]))).toEqual([event(8)]);
  });
});
