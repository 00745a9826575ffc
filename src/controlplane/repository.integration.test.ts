import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeServerBacked, probeTcp } from '../../test/fixtures/servers.js';
import { AGED_SYMBOLS, stepAgedSession } from '../../test/fixtures/sessions.js';
import { ManualClock, randomId } from '../core/index.js';
import { LeaderElection, isLeaseLostError } from '../health/index.js';
import { type Store, openStore } from '../store/index.js';
import type { ClosedStep, DeploymentSnapshot, VenueSnapshot } from '../swarm/index.js';
import { TradingSession } from '../trading/index.js';
import { DeploymentNameTakenError } from './errors.js';
import { ControlPlaneRepository } from './repository.js';

const DAY = 86_400_000;
const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const POSTGRES = await probeTcp('PostgreSQL at 127.0.0.1:5432', '127.0.0.1', 5432);

/** A closed step as a deployment journals it, with one order and its fill. */
function step(index: number, deployment: string): ClosedStep {
  const snapshot = { version: 1, swarmId: deployment, state: 'running', position: { step: index + 1, lastTimeMs: index }, closedSteps: index + 1, halted: null, stopRequested: false, events: [], absences: [], agents: [] } as DeploymentSnapshot;
  return {
    index,
    timeMs: Date.UTC(2016, 0, 1) + index * DAY,
    bars: [{ symbol: 'AAA', timeMs: Date.UTC(2016, 0, 1) + index * DAY, open: 1.1, high: 1.3, low: 1, close: 0.1 + 0.2 + 1, volume: 10 }],
    participants: ['a'],
    submissions: [],
    signals: { a: [] },
    orders: [{ clientOrderId: `${deployment}-o${index}`, step: index, agentId: 'a', symbol: 'AAA', side: 'buy', quantity: 1, status: 'accepted', reason: null }],
    fills: [{ clientOrderId: `${deployment}-o${index}`, symbol: 'AAA', side: 'buy', quantity: 1, price: 1.1, fee: 0, timeMs: index }],
    opened: { equity: 100_000 + index, peakEquity: 100_000 + index, positions: [['AAA', index]] },
    account: { equity: 100_000 + index, cash: 99_000, positions: [{ symbol: 'AAA', quantity: index + 1 }] },
    position: { step: index + 1, lastTimeMs: index },
    checkpoints: [{ agentId: 'a', resume: { replayFrom: index + 1, state: '{}' } }],
    snapshot,
  };
}

describe('the control plane repository', () => {
  let store: Store;
  let now = Date.UTC(2026, 11, 1);
  let repo: ControlPlaneRepository;
  beforeEach(async () => {
    store = await openStore({ dataDir: 'memory' });
    now = Date.UTC(2026, 11, 1);
    repo = new ControlPlaneRepository(store, () => now);
  });
  afterEach(async () => {
    await store.close();
  });

  it('stores a closed step in one piece and gives back what a restart replays, exactly', async () => {
    await repo.create({ id: 'd1', name: 'one', env: 'dev' }, { specYaml: 'name: one', baseDir: '/' });
    const journal = repo.journalOf('d1');
    for (let i = 0; i < 3; i++) await journal.stepClosed(step(i, 'd1'));
    const replay = await repo.replayOf('d1');
    expect(replay?.steps.map((s) => s.index)).toEqual([0, 1, 2]);
    expect(replay?.steps[1]?.bars[0]?.close).toBe(0.1 + 0.2 + 1);
    expect(replay?.checkpoints.get('a')).toEqual({ replayFrom: 3, state: '{}' });
    expect(replay?.snapshot.closedSteps).toBe(3);
    const [view] = await repo.list();
    expect(view).toMatchObject({ name: 'one', closedSteps: 3, orders: 3, fills: 3, equity: 100_002, finalEquity: null });
    expect(await repo.positions('d1')).toEqual([{ symbol: 'AAA', quantity: 3 }]);
    await expect(repo.create({ id: 'd2', name: 'one', env: 'dev' }, { specYaml: 'name: one', baseDir: '/' })).rejects.toThrow(DeploymentNameTakenError);
  });

  it('gives back the closed steps between two indices with the account each was published with, to replay them to an agent', async () => {
    await repo.create({ id: 'd1', name: 'one', env: 'dev' }, { specYaml: 'name: one', baseDir: '/' });
    const journal = repo.journalOf('d1');
    for (let i = 0; i < 4; i++) await journal.stepClosed(step(i, 'd1'));
    const stored = await journal.stepsBetween!(1, 3);
    expect(stored).toEqual([1, 2].map((i) => ({ index: i, bars: step(i, 'd1').bars, participants: ['a'], signals: { a: [] }, opened: { equity: 100_000 + i, peakEquity: 100_000 + i, positions: [['AAA', i]] } })));
    // A step stored before the account was (migration 006) says it has none.
    await store.query('UPDATE steps SET opened = NULL WHERE idx = 3');
    expect((await journal.stepsBetween!(3, 10))[0]?.opened).toBeNull();
  });

  it('a step that fails to store leaves nothing of itself behind', async () => {
    await repo.create({ id: 'd1', name: 'one', env: 'dev' }, { specYaml: 'name: one', baseDir: '/' });
    const journal = repo.journalOf('d1');
    await journal.stepClosed(step(0, 'd1'));
    // The same step again: its row exists, so the transaction fails and rolls back whole.
    await expect(journal.stepClosed({ ...step(0, 'd1'), orders: [{ ...step(0, 'd1').orders[0]!, clientOrderId: 'new' }] })).rejects.toThrow();
    expect((await repo.orders('d1')).map((order) => order.clientOrderId)).toEqual(['d1-o0']);
    expect((await repo.list())[0]).toMatchObject({ orders: 1, fills: 1, closedSteps: 1 });
  });

  it("prunes what is older than each environment's retention, keeping what a running deployment resumes from", async () => {
    await repo.create({ id: 'old', name: 'old', env: 'dev' }, { specYaml: 'name: old', baseDir: '/' });
    await repo.create({ id: 'live', name: 'live', env: 'dev' }, { specYaml: 'name: live', baseDir: '/' });
    await repo.create({ id: 'kept', name: 'kept', env: 'prod' }, { specYaml: 'name: kept', baseDir: '/' });
    for (const id of ['old', 'live', 'kept']) {
      await repo.journalOf(id).stepClosed(step(0, id));
      await repo.appendEvent(id, { kind: 'deployed' });
    }
    await repo.setState('old', { state: 'complete', desired: 'stopped' });
    await repo.setState('kept', { state: 'complete', desired: 'stopped' });
    now += 2 * DAY;
    await repo.journalOf('live').stepClosed(step(1, 'live'));
    await repo.appendEvent('live', { kind: 'later' });

    const pruned = await repo.prune({ dev: DAY, staging: 7 * DAY, prod: 90 * DAY }, now);
    expect(pruned.deployments).toBe(1);
    expect((await repo.list()).map((record) => record.name).sort()).toEqual(['kept', 'live']);
    // The running one lost its old event, order, fill and equity point, not its steps or checkpoint.
    expect((await repo.events('live')).map((event) => event.kind)).toEqual(['later']);
    expect((await repo.orders('live')).map((order) => order.clientOrderId)).toEqual(['live-o1']);
    expect((await repo.fills('live')).map((fill) => fill.clientOrderId)).toEqual(['live-o1']);
    expect((await repo.replayOf('live'))?.steps.map((s) => s.index)).toEqual([0, 1]);
    expect((await repo.replayOf('live'))?.checkpoints.get('a')?.replayFrom).toBe(2);
    expect(pruned.rows).toBe(4);
    // Prod keeps 90 days.
    expect((await repo.events('kept')).map((event) => event.kind)).toEqual(['deployed']);
  });

  it("prunes a running deployment's old steps that a restart no longer reads: before its venue snapshot's context and every agent's checkpoint", async () => {
    await repo.create({ id: 'long', name: 'long', env: 'dev' }, { specYaml: 'name: long', baseDir: '/' });
    const journal = repo.journalOf('long');
    const venue = { closedSteps: 200, session: { kind: 'trading-session', version: 1, spec: {}, state: {} }, absences: { open: [], closed: [], last: 199 }, ledger: { decided: 0, duplicates: 0, compared: 0, agreed: 0 } };
    for (let i = 0; i < 250; i++) {
      const closed = step(i, 'long');
      // Agent b's last checkpoint came at step 70 and replays it from step 60 (it fell silent since).
      const checkpoints = i === 70 ? [...closed.checkpoints, { agentId: 'b', resume: { replayFrom: 60, state: '{}' } }] : closed.checkpoints;
      await journal.stepClosed({ ...closed, checkpoints, ...(i === 199 ? { venue } : {}) });
    }
    now += 2 * DAY;
    await journal.stepClosed(step(250, 'long'));
    const pruned = await repo.prune({ dev: DAY, staging: DAY, prod: DAY }, now);
    // Steps 0 to 59 go (before b's checkpoint, which holds those the snapshot's context would let go), and the 250 older orders, fills and equity points.
    expect(pruned).toEqual({ deployments: 0, rows: 60 + 3 * 250 });
    const replay = await repo.replayOf('long');
    expect(replay?.steps.map((stored) => stored.index)).toEqual(Array.from({ length: 151 }, (_, i) => 100 + i));
    expect(replay?.checkpoints.get('b')?.replayFrom).toBe(60);
    // b can still be replayed from the journal.
    expect((await repo.journalOf('long').stepsBetween?.(58, 62))?.map((stored) => stored.index)).toEqual([60, 61]);
    // What is left is kept at the next prune.
    expect((await repo.prune({ dev: DAY, staging: DAY, prod: DAY }, now)).rows).toBe(0);
  });

  it("does not keep steps for the old checkpoint of an agent gone for good, which a restart never replays", async () => {
    await repo.create({ id: 'left', name: 'left', env: 'dev' }, { specYaml: 'name: left', baseDir: '/' });
    const journal = repo.journalOf('left');
    const venue = { closedSteps: 200, session: { kind: 'trading-session', version: 1, spec: {}, state: {} }, absences: { open: [], closed: [], last: 199 }, ledger: { decided: 0, duplicates: 0, compared: 0, agreed: 0 } };
    const agent = (id: string, lifecycle: 'running' | 'gone') => ({ id, lifecycle, restarts: 0, placement: `sbx-${id}`, epoch: 1 });
    for (let i = 0; i <= 250; i++) {
      const closed = step(i, 'left');
      // Agent b's last checkpoint came at step 70, replaying from step 60; it is gone for good since step 80.
      const checkpoints = i === 70 ? [...closed.checkpoints, { agentId: 'b', resume: { replayFrom: 60, state: '{}' } }] : closed.checkpoints;
      const snapshot = { ...closed.snapshot, agents: [agent('a', 'running'), agent('b', i >= 80 ? 'gone' : 'running')] };
      if (i === 250) now += 2 * DAY;
      await journal.stepClosed({ ...closed, checkpoints, snapshot, ...(i === 199 ? { venue } : {}) });
    }
    const pruned = await repo.prune({ dev: DAY, staging: DAY, prod: DAY }, now);
    // Steps 0 to 99 go (before the venue snapshot's context), with the 250 older orders, fills and equity points.
    expect(pruned).toEqual({ deployments: 0, rows: 100 + 3 * 250 });
    expect((await repo.replayOf('left'))?.steps[0]?.index).toBe(100);
  });

  it('with a fence, every write checks the lease in its transaction: a server that lost it is refused and changes nothing', async () => {
    const elect = async (holder: string): Promise<LeaderElection> => {
      const election = new LeaderElection({ store, holder, clock: new ManualClock(now) });
      election.start();
      await vi.waitFor(() => expect(election.state).toBe('leader'));
      return election;
    };
    const a = await elect('a');
    const stale = new ControlPlaneRepository(store, () => now, a);
    await stale.create({ id: 'd1', name: 'one', env: 'dev' }, { specYaml: 'name: one', baseDir: '/' });
    await stale.journalOf('d1').stepClosed(step(0, 'd1'));
    await stale.appendEvent('d1', { kind: 'deployed' });
    // a's renewals stop (its clock stands still) and the lease expires by the database's time; b takes it.
    await store.query("UPDATE control_plane_lease SET expires_at = now() - interval '1 millisecond'");
    const b = await elect('b');
    const tables = ['deployments', 'deployment_specs', 'steps', 'orders', 'fills', 'positions', 'equity', 'checkpoints', 'events'];
    const contents = async (): Promise<unknown[]> => Promise.all(tables.map((table) => store.query(`SELECT * FROM ${table}`)));
    const before = await contents();

    const writes: Array<[string, () => Promise<unknown>]> = [
      ['a closed step', () => stale.journalOf('d1').stepClosed(step(1, 'd1'))],
      ['checkpoints', () => stale.journalOf('d1').drained!([{ agentId: 'a', resume: { replayFrom: 2, state: '{"x":1}' } }])],
      ['an event', () => stale.appendEvent('d1', { kind: 'ended' })],
      ['a state', () => stale.setState('d1', { state: 'failed', desired: 'stopped', error: 'late' })],
      ['a settlement', () => stale.settle('d1', { step: 1, fills: step(1, 'd1').fills, positions: [], equity: 1 })],
      ['a new deployment', () => stale.create({ id: 'd2', name: 'two', env: 'dev' }, { specYaml: 'name: two', baseDir: '/' })],
      ['a prune', () => stale.prune({ dev: 0 }, now + DAY)],
    ];
    for (const [what, write] of writes) {
      const refused = await write().catch((error: unknown) => error);
      expect(isLeaseLostError(refused), what).toBe(true);
    }
    expect((await writes[0]![1]().catch((error: unknown) => error as Error)) as Error).toHaveProperty('message', expect.stringMatching(/^a no longer holds the lease control-plane \(it held epoch 1\): /));
    expect(await contents()).toEqual(before);

    // The server that leads now writes the same step, in one call that checks the lease itself: no transaction.
    const leader = new ControlPlaneRepository(store, () => now, b);
    const transactions = vi.spyOn(store, 'transaction');
    await leader.journalOf('d1').stepClosed(step(1, 'd1'));
    expect(transactions).not.toHaveBeenCalled();
    transactions.mockRestore();
    expect((await leader.list())[0]).toMatchObject({ closedSteps: 2, orders: 2 });
    // Its lease row gone (deleted by hand), its next step is refused, and it writes nothing more.
    await store.query('DELETE FROM control_plane_lease');
    const gone = await leader.journalOf('d1').stepClosed(step(2, 'd1')).catch((error: unknown) => error as Error);
    expect(isLeaseLostError(gone)).toBe(true);
    expect(gone).toHaveProperty('message', expect.stringMatching(/^b no longer holds the lease control-plane \(it held epoch 2\): the lease row is gone/));
    expect((await store.query('SELECT count(*)::int AS n FROM steps'))[0]).toEqual({ n: 2 });
    expect(b.state).toBe('follower');
    await b.close();
    await a.close();
  });
});

/** What a repository answers of every deployment: its record (by list and by find), positions, latest events and report. */
async function answers(repo: ControlPlaneRepository): Promise<unknown[]> {
  return Promise.all(
    (await repo.list()).map(async (record) => ({ record, byName: await repo.find(record.name), byId: await repo.find(record.id), positions: await repo.positions(record.id), events: await repo.latestEvents(record.id, 20), report: await repo.report(record.id) })),
  );
}

/** Opens a fresh store for a contract's test; `dispose` removes it. */
type OpenContractStore = () => Promise<{ readonly store: Store; readonly dispose: () => Promise<void> }>;

/** Before each test of a contract, a fresh store from `open`, handed to `opened`; after it, the store removed. */
function freshStorePerTest(open: OpenContractStore, opened: (store: Store) => void): void {
  let dispose: () => Promise<void> = () => Promise.resolve();
  beforeEach(async () => {
    const fresh = await open();
    dispose = fresh.dispose;
    opened(fresh.store);
  });
  afterEach(() => dispose());
}

/**
 * A repository that keeps the deployments' rows in memory answers as the store does, after every kind
 * of write (those of one deployment at once too, and one that fails), and so does a new one on the
 * same store (a restart). `open` gives a fresh store; `dispose` removes it.
 */
function cachedRepositoryContract(open: OpenContractStore): void {
  let store: Store;
  let now = Date.UTC(2026, 11, 1);
  freshStorePerTest(open, (fresh) => {
    store = fresh;
    now = Date.UTC(2026, 11, 1);
  });

  it('stores what steps place and fill as they give it: orders filled in their step or later, fills numbered on, positions replaced, numbers exact', async () => {
    const repo = new ControlPlaneRepository(store, () => now);
    await repo.create({ id: 'f1', name: 'fills', env: 'dev' }, { specYaml: 'name: fills', baseDir: '/' });
    const journal = repo.journalOf('f1');
    const order = (id: string, index: number, symbol = 'AAA') => ({ clientOrderId: id, step: index, agentId: 'a', symbol, side: 'buy' as const, quantity: 0.1 + 0.2, status: 'accepted', reason: null });
    const fill = (id: string, index: number, symbol = 'AAA') => ({ clientOrderId: id, symbol, side: 'buy' as const, quantity: 0.1 + 0.2, price: 1e-7 + 100, fee: 0.1 + 0.7, timeMs: index });
    const base = (index: number) => ({ ...step(index, 'f1'), orders: [], fills: [], checkpoints: [] });
    // Step 0 places two orders and fills none; step 1 fills one of them, places a third and fills it
    // at once (a close fill); step 2 places one that is refused and fills nothing; step 3 fills the
    // other, and the position in AAA is closed while one in BBB opens.
    await journal.stepClosed({ ...base(0), orders: [order('x', 0), order('y', 0, 'BBB')] });
    await journal.stepClosed({
      ...base(1),
      orders: [order('z', 1)],
      fills: [fill('x', 1), fill('z', 1)],
      account: { equity: 1, cash: 0.1 + 0.2, positions: [{ symbol: 'AAA', quantity: 0.6 + 0.1 }] },
      checkpoints: [{ agentId: 'a', resume: { replayFrom: 2, state: '{"k":1}' } }, { agentId: 'b', resume: { replayFrom: 1, state: '{}' } }],
    });
    await journal.stepClosed({ ...base(2), orders: [{ ...order('w', 2), status: 'rejected', reason: 'insufficient-cash' }] });
    // The same order again (a second decider's duplicate) is stored once.
    await journal.stepClosed({ ...base(3), orders: [order('w', 3)], fills: [fill('y', 3, 'BBB')], account: { equity: 2, cash: 3, positions: [{ symbol: 'BBB', quantity: 0.1 + 0.2 }] } });

    const orders = await repo.orders('f1');
    expect(orders.map((stored) => [stored.clientOrderId, stored.step, stored.status, stored.reason, stored.quantity])).toEqual([
      ['x', 0, 'filled', null, 0.1 + 0.2],
      ['y', 0, 'filled', null, 0.1 + 0.2],
      ['z', 1, 'filled', null, 0.1 + 0.2],
      ['w', 2, 'rejected', 'insufficient-cash', 0.1 + 0.2],
    ]);
    const fills = await repo.fills('f1');
    expect(fills.map((stored) => [stored.clientOrderId, stored.step, stored.quantity, stored.price, stored.fee, stored.timeMs])).toEqual([
      ['x', 1, 0.1 + 0.2, 1e-7 + 100, 0.1 + 0.7, 1],
      ['z', 1, 0.1 + 0.2, 1e-7 + 100, 0.1 + 0.7, 1],
      ['y', 3, 0.1 + 0.2, 1e-7 + 100, 0.1 + 0.7, 3],
    ]);
    expect(await repo.positions('f1')).toEqual([{ symbol: 'BBB', quantity: 0.1 + 0.2 }]);
    expect(await repo.find('f1')).toMatchObject({ closedSteps: 4, orders: 4, fills: 3, equity: 2 });
    expect((await repo.replayOf('f1'))?.checkpoints).toEqual(
      new Map([
        ['a', { replayFrom: 2, state: '{"k":1}' }],
        ['b', { replayFrom: 1, state: '{}' }],
      ]),
    );
    // A settlement's fills are numbered after the steps'.
    await repo.settle('f1', { step: 4, fills: [fill('settle', 4, 'BBB')], positions: [], equity: 2 });
    expect((await repo.fills('f1')).map((stored) => stored.clientOrderId)).toEqual(['x', 'z', 'y', 'settle']);
    expect(await repo.positions('f1')).toEqual([]);
  });

  it('keeps the latest venue snapshot, and a restart reads it and only the steps from shortly before it', async () => {
    const repo = new ControlPlaneRepository(store, () => now);
    await repo.create({ id: 'v1', name: 'venue', env: 'dev' }, { specYaml: 'name: venue', baseDir: '/' });
    const journal = repo.journalOf('v1');
    // Not a real session's snapshot: the store keeps it as it came.
    const venueAt = (closedSteps: number): VenueSnapshot => ({
      closedSteps,
      session: { kind: 'trading-session', version: 1, spec: { swarm: 'v1' }, state: { cash: 0.1 + 0.2, at: closedSteps } },
      absences: { open: [['a', closedSteps - 3]], closed: [{ agent: 'a', fromStep: 1, toStep: 2 }], last: closedSteps - 1 },
      ledger: { decided: closedSteps, duplicates: 2, compared: 3, agreed: 1 },
    });
    await journal.stepClosed(step(0, 'v1'));
    expect((await repo.replayOf('v1'))?.venue).toBeUndefined();
    for (let i = 1; i < 260; i++) await journal.stepClosed(i === 119 || i === 229 ? { ...step(i, 'v1'), venue: venueAt(i + 1) } : step(i, 'v1'));
    const replay = await repo.replayOf('v1');
    expect(replay?.venue).toEqual(venueAt(230));
    expect(replay?.steps.map((stored) => stored.index)).toEqual(Array.from({ length: 260 - 130 }, (_, i) => 130 + i));
    expect(replay?.steps[0]).toEqual({ ...pick(step(130, 'v1')), opened: step(130, 'v1').opened });
    expect(replay?.snapshot.closedSteps).toBe(260);
  });

  it('answers as the store does after creates, steps, states, replicas, settlements, a failed step, a prune and a restart', async () => {
    const plain = new ControlPlaneRepository(store, () => now);
    // Written before the cache read anything.
    await plain.create({ id: 'old', name: 'old', env: 'dev' }, { specYaml: 'name: old', baseDir: '/' });
    await plain.journalOf('old').stepClosed(step(0, 'old'));
    await plain.setState('old', { state: 'complete', desired: 'stopped', report: { finalEquity: 99_999.5 } });
    const cached = new ControlPlaneRepository(store, () => now, undefined, { cache: true });
    expect(await answers(cached)).toEqual(await answers(plain));

    now += DAY;
    await cached.create({ id: 'd1', name: 'one', env: 'dev' }, { specYaml: 'name: one', baseDir: '/' });
    await cached.create({ id: 'd2', name: 'two', env: 'prod' }, { specYaml: 'name: two', baseDir: '/' });
    for (let i = 0; i < 3; i++) await cached.journalOf('d1').stepClosed(step(i, 'd1'));
    await cached.appendEvent('d2', { kind: 'deployed', detail: 'deployed to prod' });
    expect(await answers(cached)).toEqual(await answers(plain));
    // More events than status shows, some of them at once.
    for (let i = 0; i < 20; i++) await cached.appendEvent('d1', { kind: 'health', step: i, agentId: 'a', detail: `check ${i}` });
    await Promise.all([cached.appendEvent('d1', { kind: 'scaled' }), cached.swarmEvent('d1', { kind: 'lost', atStep: 3, agent: 'a', detail: 'no heartbeat' })]);
    // Writes of one deployment at once, and of another beside them.
    await Promise.all([
      cached.journalOf('d1').stepClosed(step(3, 'd1')),
      cached.setState('d1', { state: 'draining', desired: 'stopped' }),
      cached.setReplicas('d1', { a: 2 }),
      cached.journalOf('d2').stepClosed(step(0, 'd2')),
      cached.setState('d2', { state: 'running' }),
    ]);
    expect((await cached.find('one'))?.replicas).toEqual({ a: 2 });
    expect(await answers(cached)).toEqual(await answers(plain));

    await expect(cached.journalOf('d1').stepClosed(step(3, 'd1'))).rejects.toThrow();
    expect(await answers(cached)).toEqual(await answers(plain));

    await cached.settle('d1', { step: 4, fills: [{ clientOrderId: 'settle', symbol: 'AAA', side: 'sell', quantity: 4, price: 1.2, fee: 0, timeMs: 4 }], positions: [], equity: 0.1 + 0.2 });
    await cached.setState('d1', { state: 'stopped', desired: 'stopped', error: 'stopped on request', report: { finalEquity: 0.1 + 0.2, trades: [] } });
    expect(await cached.report('d2')).toBeNull();
    expect((await cached.latestEvents('d1', 3)).map((event) => event.kind).sort()).toEqual(['health', 'lost', 'scaled']);
    expect(await answers(cached)).toEqual(await answers(plain));

    now += 2 * DAY;
    expect((await cached.prune({ dev: DAY, staging: DAY, prod: DAY }, now)).deployments).toBe(2);
    expect((await cached.list()).map((record) => record.id)).toEqual(['d2']);
    expect(await cached.find('old')).toBeUndefined();
    expect(await answers(cached)).toEqual(await answers(plain));

    const restarted = new ControlPlaneRepository(store, () => now, undefined, { cache: true });
    expect(await answers(restarted)).toEqual(await answers(plain));
    // One that dropped its cache reads the store: what another server wrote shows.
    await plain.setState('d2', { state: 'failed', desired: 'stopped' });
    restarted.dropCache();
    expect((await restarted.find('d2'))?.state).toBe('failed');
  });
}

/**
 * A venue snapshot of a real trading session of two symbols after `steps` more steps: a market order
 * every 5 steps, and now and then a limit order far under the price that rests across snapshots.
 */
function venueSnapshots(): (steps: number) => VenueSnapshot {
  const session = new TradingSession({ swarm: 'venue', symbols: [...AGED_SYMBOLS] });
  let closed = 0;
  return (steps) => {
    stepAgedSession(session, closed, steps, (index, bars) => {
      if (index % 150 === 7) session.submit([{ strategy: 'dip', symbol: 'AAA', side: 'buy', quantity: 1, type: 'limit', limitPrice: 91, intent: 'enter-long' }], index, bars);
    });
    closed += steps;
    return JSON.parse(JSON.stringify({ closedSteps: closed, session: session.snapshot(), absences: { open: [], closed: [], last: closed - 1 }, ledger: { decided: closed, duplicates: 0, compared: 0, agreed: 0 } })) as VenueSnapshot;
  };
}

/** Venue snapshots of real sessions: stored as live state and history chunks, read back whole. */
function venueHistoryContract(open: OpenContractStore): void {
  let store: Store;
  let now = Date.UTC(2026, 11, 1);
  freshStorePerTest(open, (fresh) => {
    store = fresh;
    now = Date.UTC(2026, 11, 1);
  });
  const count = async (table: string, id: string): Promise<number> => Number((await store.query(`SELECT count(*) AS n FROM ${table} WHERE deployment_id = $1`, [id]))[0]?.n);
  /** The bytes of a deployment's stored venue snapshot and of its chunks (all, or the one written with it). */
  const storedBytes = async (id: string): Promise<{ live: number; chunks: number; latest: number }> => {
    const [row] = await store.query(
      `SELECT length(v.snapshot::text) AS live, COALESCE(sum(length(c.chunk::text)), 0) AS chunks, COALESCE(sum(length(c.chunk::text)) FILTER (WHERE c.closed_steps = v.closed_steps), 0) AS latest
       FROM venue_snapshots AS v LEFT JOIN venue_chunks AS c ON c.deployment_id = v.deployment_id WHERE v.deployment_id = $1 GROUP BY v.snapshot`,
      [id],
    );
    return { live: Number(row?.live), chunks: Number(row?.chunks), latest: Number(row?.latest) };
  };

  it('writes with each venue snapshot only the history settled since the one before, and a restart reads it whole', async () => {
    const repo = new ControlPlaneRepository(store, () => now);
    await repo.create({ id: 'h1', name: 'history', env: 'dev' }, { specYaml: 'name: history', baseDir: '/' });
    const journal = repo.journalOf('h1');
    const venueAfter = venueSnapshots();
    let whole = 0;
    for (const [i, steps] of [[0, 300], [1, 300], [2, 1], [3, 400]] as const) {
      const venue = venueAfter(steps);
      await journal.stepClosed({ ...step(i, 'h1'), venue });
      expect((await repo.replayOf('h1'))?.venue).toEqual(venue);
      // Each write is its live state (the orders that can still change) and what settled since the last:
      // about what the steps since added to the whole (jsonb's text has a few more spaces than JSON.stringify's).
      const before = whole;
      whole = JSON.stringify(venue).length;
      const stored = await storedBytes('h1');
      expect(stored.live + stored.latest).toBeLessThan(whole - before + whole / 8);
      // No item is stored twice.
      expect(stored.live + stored.chunks).toBeLessThan(whole * 1.25);
    }
    // One chunk a snapshot that settled something; the stored live session holds no settled order.
    expect(await count('venue_chunks', 'h1')).toBe(4);
    const [row] = await store.query("SELECT snapshot -> 'history' AS history, jsonb_array_length(snapshot -> 'session' -> 'state' -> 'venue' -> 'orders') AS orders FROM venue_snapshots WHERE deployment_id = 'h1'");
    const held = (row?.history as { orders: number | Array<[number, number]> }).orders;
    expect(typeof held === 'number' ? held : held.reduce((sum, [start, end]) => sum + end - start, 0)).toBeGreaterThan(150);
    // Only the orders that can still change: an order resting for long no longer keeps those after it live.
    expect(Number(row?.orders)).toBeLessThan(10);
  });

  it('a control plane that does not know the stored history writes it whole, one that is behind is refused and then writes it whole', async () => {
    const first = new ControlPlaneRepository(store, () => now);
    await first.create({ id: 'h2', name: 'history', env: 'dev' }, { specYaml: 'name: history', baseDir: '/' });
    const venueAfter = venueSnapshots();
    await first.journalOf('h2').stepClosed({ ...step(0, 'h2'), venue: venueAfter(200) });
    await first.journalOf('h2').stepClosed({ ...step(1, 'h2'), venue: venueAfter(200) });
    // Another server took over: it never read the deployment, and writes its next snapshot from no history.
    const second = new ControlPlaneRepository(store, () => now);
    let venue = venueAfter(200);
    await second.journalOf('h2').stepClosed({ ...step(2, 'h2'), venue });
    expect(await count('venue_chunks', 'h2')).toBe(1);
    expect((await first.replayOf('h2'))?.venue).toEqual(venue);
    // The first, back on it without reading it again, still counts on what it wrote: refused, nothing written, then whole.
    venue = venueAfter(200);
    await second.journalOf('h2').stepClosed({ ...step(3, 'h2'), venue });
    venue = venueAfter(200);
    await expect(first.journalOf('h2').stepClosed({ ...step(4, 'h2'), venue })).rejects.toThrow(/follows history chunks other than those stored/);
    const third = new ControlPlaneRepository(store, () => now);
    expect((await third.replayOf('h2'))?.snapshot.closedSteps).toBe(4);
    await expect(first.journalOf('h2').stepClosed({ ...step(4, 'h2'), venue })).resolves.toBeUndefined();
    expect((await third.replayOf('h2'))?.venue).toEqual(venue);
    expect(await count('venue_chunks', 'h2')).toBe(1);
  });

  it('restores a whole venue snapshot stored before chunks, and a deployment deleted takes its chunks along', async () => {
    const repo = new ControlPlaneRepository(store, () => now);
    await repo.create({ id: 'h3', name: 'history', env: 'dev' }, { specYaml: 'name: history', baseDir: '/' });
    await repo.journalOf('h3').stepClosed(step(0, 'h3'));
    const venueAfter = venueSnapshots();
    const whole = venueAfter(300);
    await store.query('INSERT INTO venue_snapshots (deployment_id, closed_steps, snapshot, created_at_ms) VALUES ($1, $2, $3::jsonb, 0)', ['h3', whole.closedSteps, JSON.stringify(whole)]);
    const restarted = new ControlPlaneRepository(store, () => now);
    expect((await restarted.replayOf('h3'))?.venue).toEqual(whole);
    const venue = venueAfter(300);
    await restarted.journalOf('h3').stepClosed({ ...step(1, 'h3'), venue });
    expect((await restarted.replayOf('h3'))?.venue).toEqual(venue);
    expect(await count('venue_chunks', 'h3')).toBe(1);
    await restarted.setState('h3', { state: 'stopped', desired: 'stopped' });
    now += 2 * DAY;
    expect((await restarted.prune({ dev: DAY, staging: DAY, prod: DAY }, now)).deployments).toBe(1);
    expect(await count('venue_chunks', 'h3')).toBe(0);
  });
}

/** A store in memory on PGlite, for a contract. */
const openPGlite: OpenContractStore = async () => {
  const store = await openStore({ dataDir: 'memory' });
  return { store, dispose: () => store.close() };
};

/** A store in a schema of its own on the PostgreSQL at 127.0.0.1:5432, dropped when disposed, for a contract. */
const openPostgres: OpenContractStore = async () => {
  const schema = `repo_test_${randomId(10).toLowerCase()}`;
  const store = await openStore({ databaseUrl: DATABASE_URL, schema, maxConnections: 4 });
  return {
    store,
    dispose: async () => {
      await store.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await store.close();
    },
  };
};

describe('venue snapshots in history chunks, on PGlite', () => venueHistoryContract(openPGlite));
describeServerBacked(POSTGRES, 'venue snapshots in history chunks, on PostgreSQL', () => venueHistoryContract(openPostgres));
describe('the control plane repository with its cache, on PGlite', () => cachedRepositoryContract(openPGlite));
describeServerBacked(POSTGRES, 'the control plane repository with its cache, on PostgreSQL', () => cachedRepositoryContract(openPostgres));

/** What a restart reads of a stored step. */
function pick({ index, timeMs, bars, participants, submissions, signals }: ClosedStep) {
  return { index, timeMs, bars, participants, submissions, signals };
}
