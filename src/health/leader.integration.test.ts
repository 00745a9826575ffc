// Leader election through the store, on PGlite and on the PostgreSQL of this machine (skipped with a
// message when it is not reachable, failed under CI=true). The lease's expiry is the database's: a
// leader "dies" by not renewing (its clock is a manual one nobody advances) while the database's time
// runs, or by having its lease expired in SQL.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeServerBacked, probeTcp } from '../../test/fixtures/servers.js';
import { ManualClock, SystemClock, randomId } from '../core/index.js';
import { type Store, openStore } from '../store/index.js';
import { isLeaseLostError } from './errors.js';
import { LeaderElection, type LeaseView, electionTransition } from './leader.js';

const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const POSTGRES = await probeTcp('PostgreSQL at 127.0.0.1:5432', '127.0.0.1', 5432);

/** Where a test's electors keep their lease: a database of its own. */
interface ElectionTarget {
  /** A store on the test's database: a new connection (pool) per call where the database allows it. */
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

/** The row of the lease, read directly. */
async function leaseRow(store: Store): Promise<{ holder: string; epoch: number; url: string | null } | undefined> {
  const [row] = await store.query<{ holder: string; epoch: number; url: string | null }>("SELECT holder, epoch, url FROM control_plane_lease WHERE name = 'control-plane'");
  return row;
}

/** Makes the lease expire now, as the database counts: the leader's renewals stopped long ago. */
async function expire(store: Store): Promise<void> {
  await store.query("UPDATE control_plane_lease SET expires_at = now() - interval '1 millisecond' WHERE name = 'control-plane'");
}

function electionContract(name: string, newTarget: () => Promise<ElectionTarget>, concurrent: boolean): void {
  describe(`leader election on ${name}`, () => {
    // A promise, so that electors made at the same moment share one target.
    let target: Promise<ElectionTarget> | undefined;
    const stores: Store[] = [];
    const elections: LeaderElection[] = [];
    const open = async (): Promise<Store> => {
      target ??= newTarget();
      const store = await (await target).open();
      if (!stores.includes(store)) stores.push(store);
      return store;
    };
    /** An elector with a manual clock of its own (the system clock with `realTime`), and what it was told. */
    const elector = async (holder: string, options: { readonly ttlMs?: number; readonly realTime?: boolean; readonly onDeposed?: () => Promise<void> } = {}) => {
      const told = { elected: [] as LeaseView[], deposed: [] as string[], seen: [] as Array<LeaseView | null> };
      const clock = new ManualClock(Date.UTC(2026, 11, 6));
      const election = new LeaderElection({
        store: await open(),
        holder,
        url: `http://${holder}.example:7070`,
        ttlMs: options.ttlMs ?? 3_000,
        clock: options.realTime === true ? new SystemClock() : clock,
        onElected: (lease) => void told.elected.push(lease),
        onDeposed: (reason) => {
          told.deposed.push(reason);
          return options.onDeposed?.();
        },
        onLeaderSeen: (lease) => void told.seen.push(lease),
      });
      elections.push(election);
      return { election, clock, told };
    };
    /** `a` leads and `b` follows, having seen `a` lead. */
    const leaderAndFollower = async () => {
      const a = await elector('a');
      a.election.start();
      await vi.waitFor(() => expect(a.election.state).toBe('leader'));
      const b = await elector('b');
      b.election.start();
      await vi.waitFor(() => expect(b.told.seen).toHaveLength(1));
      return { a, b };
    };
    /** `a` led, then paused (its clock stands still: no renewal) while the database's time passed its expiry; `b` took over. */
    const takenOver = async () => {
      const { a, b } = await leaderAndFollower();
      await expire(await open());
      b.clock.advance(1_000);
      await vi.waitFor(() => expect(b.election.state).toBe('leader'));
      return { a, b };
    };
    afterEach(async () => {
      await Promise.all(elections.splice(0).map((election) => election.close()));
      await Promise.all(stores.splice(0).map((store) => store.close()));
      await (await target)?.dispose();
      target = undefined;
    });

    it('the first elector takes the lease at epoch 1; the second follows, seeing who leads, where and until when', async () => {
      const { a, b } = await leaderAndFollower();
      expect(a.told.elected).toEqual([expect.objectContaining({ holder: 'a', epoch: 1, url: 'http://a.example:7070' })]);
      expect(b.election.state).toBe('follower');
      const seen = b.told.seen[0]!;
      expect(seen).toMatchObject({ holder: 'a', epoch: 1, url: 'http://a.example:7070' });
      expect(seen.remainingMs).toBeGreaterThan(0);
      expect(seen.remainingMs).toBeLessThanOrEqual(3_000);
      expect(seen.expiresAt.getTime() - seen.acquiredAt.getTime()).toBe(3_000);
      expect(b.election.seen?.holder).toBe('a');
      expect(await leaseRow(await open())).toEqual({ holder: 'a', epoch: 1, url: 'http://a.example:7070' });
    });

    it('the leader renews every ttl/3 on its clock, moving the expiry the database counts; the follower keeps waiting', async () => {
      const a = await elector('a');
      a.election.start();
      await vi.waitFor(() => expect(a.election.state).toBe('leader'));
      const first = a.election.lease!.expiresAt.getTime();
      a.clock.advance(1_000);
      await vi.waitFor(() => expect(a.election.lease!.expiresAt.getTime()).toBeGreaterThan(first));
      const b = await elector('b');
      b.election.start();
      await vi.waitFor(() => expect(b.told.seen).toHaveLength(1));
      for (let i = 0; i < 3; i++) {
        const before = a.election.lease!.expiresAt.getTime();
        a.clock.advance(1_000);
        b.clock.advance(1_000);
        await vi.waitFor(() => expect(a.election.lease!.expiresAt.getTime()).toBeGreaterThan(before));
      }
      expect([a.election.state, b.election.state]).toEqual(['leader', 'follower']);
      expect(a.told.elected.map((lease) => lease.epoch)).toEqual([1]);
      expect(b.told.elected).toEqual([]);
    });

    it('a follower takes over when the lease expires by the database\'s time, raising the epoch; the stale leader\'s write is refused and changes nothing', async () => {
      const { a, b } = await takenOver();
      expect(b.told.elected).toEqual([expect.objectContaining({ holder: 'b', epoch: 2 })]);
      expect(await leaseRow(await open())).toEqual({ holder: 'b', epoch: 2, url: 'http://b.example:7070' });

      // a wakes up and writes, under its old epoch: refused inside the transaction, nothing stored.
      const store = await open();
      await store.query('CREATE TABLE IF NOT EXISTS written (who text)');
      const refused = await store
        .transaction(async (tx) => {
          await a.election.check(tx);
          await tx.query("INSERT INTO written (who) VALUES ('a')");
        })
        .catch((error: unknown) => error);
      expect(isLeaseLostError(refused)).toBe(true);
      expect((refused as Error).message).toBe(
        'a no longer holds the lease control-plane (it held epoch 1): b took it (epoch 2). The write was refused and nothing of it was stored; ' +
          'this process stops writing, and the server that leads now carries the deployments on from the store',
      );
      expect(a.election.state).toBe('follower');
      await vi.waitFor(() => expect(a.told.deposed).toEqual(['b took it (epoch 2)']));
      // And every later write of a is refused at once, without asking the database.
      await expect(store.transaction((tx) => a.election.check(tx))).rejects.toThrow(/\(it held epoch 1\): it is a follower/);
      // b's own write goes through.
      await store.transaction(async (tx) => {
        await b.election.check(tx);
        await tx.query("INSERT INTO written (who) VALUES ('b')");
      });
      expect(await store.query('SELECT who FROM written')).toEqual([{ who: 'b' }]);
    });

    it('a leader whose renewal finds the lease taken is deposed with the reason, and follows', async () => {
      const { a } = await takenOver();
      a.clock.advance(1_000);
      await vi.waitFor(() => expect(a.told.deposed).toEqual(['b took it (epoch 2)']));
      // A follower again: it sees b lead, and does not take the lease while b renews it.
      a.clock.advance(1_000);
      await vi.waitFor(() => expect(a.told.seen.at(-1)).toMatchObject({ holder: 'b', epoch: 2 }));
      expect(a.election.state).toBe('follower');
    });

    it('a leader that cannot confirm a renewal within the ttl on its own clock steps down before it writes', async () => {
      const a = await elector('a');
      a.election.start();
      await vi.waitFor(() => expect(a.election.state).toBe('leader'));
      // The process was paused for 3 s: its due renewals and a write wake together, the write first.
      a.clock.advance(3_000);
      const unasked = { query: () => Promise.reject(new Error('the database is not asked')) };
      const refused = await a.election.check(unasked).catch((error: unknown) => error);
      expect(a.election.state).toBe('follower');
      expect(isLeaseLostError(refused)).toBe(true);
      expect((refused as Error).message).toContain('no renewal was confirmed for 3000 ms (lease.ttlMs), so it may have expired');
    });

    it('a leader woken after a pause past its ttl learns from holds(), without the database, that it must not act, and steps down', async () => {
      const a = await elector('a');
      a.election.start();
      await vi.waitFor(() => expect(a.election.state).toBe('leader'));
      expect(a.election.holds()).toBe(true);
      a.clock.advance(2_999);
      expect(a.election.holds()).toBe(true);
      a.clock.advance(1);
      expect(a.election.holds()).toBe(false);
      expect(a.election.state).toBe('follower');
      await vi.waitFor(() => expect(a.told.deposed.at(-1)).toContain('no renewal was confirmed for 3000 ms'));
    });

    it('a deposed leader takes the lease again only once its handler of the loss has settled', async () => {
      let settle = (): void => undefined;
      const stepping = new Promise<void>((resolve) => (settle = resolve));
      const a = await elector('a', { onDeposed: () => stepping });
      a.election.start();
      await vi.waitFor(() => expect(a.election.state).toBe('leader'));
      const store = await open();
      await expire(store);
      await expect(store.transaction((tx) => a.election.check(tx))).rejects.toThrow(/\(it held epoch 1\): it expired before it was renewed/);
      // Still stepping down: however long it takes, the free lease is not taken again meanwhile.
      a.clock.advance(10_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(a.election.state).toBe('follower');
      expect((await leaseRow(store))?.epoch).toBe(1);
      settle();
      await vi.waitFor(() => {
        a.clock.advance(1_000);
        expect(a.election.state).toBe('leader');
      });
      expect(a.told.elected.map((lease) => lease.epoch)).toEqual([1, 2]);
    });

    it('a leader that closes releases the lease: a follower takes it at its next look', async () => {
      const { a, b } = await leaderAndFollower();
      await a.election.close();
      expect(a.election.state).toBe('closed');
      b.clock.advance(1_000);
      await vi.waitFor(() => expect(b.election.state).toBe('leader'));
      expect(b.election.lease?.epoch).toBe(2);
      await expect((await open()).transaction((tx) => a.election.check(tx))).rejects.toThrow(/its election was closed/);
    });

    it('takes over within the ttl of real database time after the leader stopped renewing', async () => {
      // a's clock never moves: it took the lease and then died, as far as renewals go.
      const a = await elector('a', { ttlMs: 400 });
      a.election.start();
      await vi.waitFor(() => expect(a.election.state).toBe('leader'));
      const started = performance.now();
      const b = await elector('b', { ttlMs: 400, realTime: true });
      b.election.start();
      await vi.waitFor(() => expect(b.election.state).toBe('leader'), { timeout: 3_000, interval: 10 });
      const tookMs = performance.now() - started;
      expect(tookMs).toBeLessThan(1_000);
      expect(b.election.lease?.epoch).toBe(2);
      expect(b.told.seen[0]).toMatchObject({ holder: 'a' });
    });

    it('of many electors starting at once on a free lease, exactly one leads', async () => {
      const electors = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((holder) => elector(holder)));
      for (const { election } of electors) election.start();
      await vi.waitFor(() => expect(electors.every(({ told }) => told.elected.length + told.seen.length > 0)).toBe(true));
      expect(electors.filter(({ election }) => election.state === 'leader')).toHaveLength(1);
      expect((await leaseRow(await open()))?.epoch).toBe(1);
    });

    /** `a` leads on a lease of 300 ms, and `writer` has a table to write into. */
    const leaderWithWriter = async () => {
      const a = await elector('a', { ttlMs: 300 });
      a.election.start();
      await vi.waitFor(() => expect(a.election.state).toBe('leader'));
      const writer = await open();
      await writer.query('CREATE TABLE IF NOT EXISTS written (who text)');
      return { a, writer };
    };

    it.skipIf(!concurrent)('a takeover waits for a fenced transaction at work, and finds what it committed', async () => {
      const { a, writer } = await leaderWithWriter();
      let b: Awaited<ReturnType<typeof elector>> | undefined;
      await writer.transaction(async (tx) => {
        await a.election.check(tx);
        b = await elector('b', { ttlMs: 300, realTime: true });
        b.election.start();
        // At work on the server past the lease's expiry (database time): b waits for the row.
        await tx.query('SELECT pg_sleep(0.6)');
        expect(b.election.state).toBe('follower');
        await tx.query("INSERT INTO written (who) VALUES ('a')");
      });
      await vi.waitFor(() => expect(b?.election.state).toBe('leader'), { timeout: 3_000, interval: 10 });
      expect(await writer.query('SELECT who FROM written')).toEqual([{ who: 'a' }]);
    });

    it.skipIf(!concurrent)('a leader paused inside a fenced transaction holds a takeover back no longer than its ttl: the server ends the transaction, nothing of it is stored', async () => {
      const { a, writer } = await leaderWithWriter();
      let wokeAt = Number.POSITIVE_INFINITY;
      const outcome = writer
        .transaction(async (tx) => {
          await a.election.check(tx);
          // The process is paused: nothing reaches the server for 1.5 s.
          await new Promise((resolve) => setTimeout(resolve, 1_500));
          wokeAt = performance.now();
          await tx.query("INSERT INTO written (who) VALUES ('a')");
        })
        .catch((error: unknown) => error);
      const b = await elector('b', { ttlMs: 300, realTime: true });
      b.election.start();
      await vi.waitFor(() => expect(b.election.state).toBe('leader'), { timeout: 3_000, interval: 10 });
      expect(performance.now()).toBeLessThan(wokeAt);
      expect(await outcome).toBeInstanceOf(Error);
      expect(await writer.query('SELECT who FROM written')).toEqual([]);
    });
  });
}

electionContract('PGlite', () => {
  // One PGlite is one process's database: every elector shares the one store.
  const store = openStore({ dataDir: 'memory' });
  return Promise.resolve({ open: () => store, dispose: async () => (await store).close() });
}, false);

describeServerBacked(POSTGRES, 'leader election on PostgreSQL', () => {
  electionContract(
    'PostgreSQL',
    () => {
      // Each test gets a schema of its own; each elector a pool of its own, as separate processes have.
      const schema = `leader_test_${randomId(10).toLowerCase()}`;
      return Promise.resolve({
        open: () => openStore({ databaseUrl: DATABASE_URL, schema, maxConnections: 2 }),
        dispose: async () => {
          const store = await openStore({ databaseUrl: DATABASE_URL, maxConnections: 1 });
          await store.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await store.close();
        },
      });
    },
    true,
  );
});

describe('leader election options and states', () => {
  it.each([
    [{ ttlMs: 299 }, 'ttlMs: must be a whole number >= 300, got 299'],
    [{ ttlMs: 3_000, renewEveryMs: 3_000 }, 'renewEveryMs: must be a whole number from 10 to 2999, got 3000'],
    [{ holder: '' }, 'holder: must name this process, uniquely among the electors of the lease'],
  ])('%j is refused', (options, message) => {
    const store = {} as Store;
    expect(() => new LeaderElection({ store, holder: 'a', clock: new ManualClock(), ...options })).toThrow(message);
  });

  it('moves only as its table says', () => {
    expect(electionTransition('idle', 'start')).toBe('follower');
    expect(electionTransition('follower', 'elected')).toBe('leader');
    expect(electionTransition('leader', 'deposed')).toBe('follower');
    expect(electionTransition('leader', 'close')).toBe('closed');
    expect(() => electionTransition('follower', 'deposed')).toThrow('a leader election that is follower cannot deposed; it runs already');
    expect(() => electionTransition('closed', 'start')).toThrow('a leader election that is closed cannot start; make a new one');
  });
});
