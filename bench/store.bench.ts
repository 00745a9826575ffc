// Store benchmark: what the order outbox costs (DESIGN decision 10: an order is written before it
// reaches the venue), on PGlite in memory, PGlite in a data dir and PostgreSQL (skipped with a message
// when 127.0.0.1:5432 does not answer), each next to a baseline measured in the same run on the same store:
// - baseline: a bare INSERT loop, one single-row insert per order, each in its own (auto)commit;
// - outbox: per order, one transaction that inserts the order (pending), updates it to submitted,
//   inserts its fill and upserts the position (4 statements, 1 commit, each statement awaited);
// - closed step: what the control plane really writes for a step with one order and its fill, through
//   ControlPlaneRepository's journal (the step's bars, signals and snapshot, the order, the fill, the
//   position, the equity point and the deployment's counters: one call of the tradeswarm_close_step
//   function, migration 008); and the same with 10 orders and their fills per step (ten agents'), per order;
//   and the same 1-order steps written by a server that leads others (its lease checked with each step:
//   one call of tradeswarm_close_step_fenced, migration 009);
// - round trip: SELECT 1, a call with no work: how much of the bare loop's time per insert is the call itself;
// - restart read: what a restarted control plane reads of a deployment 20,000 steps old (`--aged-steps N`) (replayOf):
//   every step (no venue snapshot: the baseline) against its venue snapshot and the steps shortly
//   before it, with the trading session taken up from the snapshot; the snapshot stored whole (before
//   migration 008) and as live part and history chunks (as stored now);
// - bytes written with a venue snapshot of a deployment that old: whole against chunked.
// The two alternate for ROUNDS rounds after an untimed warm-up; medians are reported. The target:
// the outbox within 2x of the bare loop's time per order. Meanwhile a 1 ms interval timer measures the
// gaps between its ticks: how long anything else in the process (an API request) waits behind the
// store's work, which PGlite did on the caller's thread before issue 15. (perf_hooks'
// monitorEventLoopDelay would report nothing there: a loop that never turns records no sample.) `npm run bench:store [-- --quick] [--aged-steps N]`; results
// in bench/results/store.json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock, randomId, silentLogger } from '../src/core/index.js';
import { LeaderElection } from '../src/health/index.js';
import { ControlPlaneRepository } from '../src/controlplane/index.js';
import type { ClosedStep, DeploymentJournal, VenueSnapshot } from '../src/swarm/index.js';
import type { Bar } from '../src/market/index.js';
import { NO_SESSION_HISTORY, type SessionHistoryChunk, TradingSession, type TradingSessionOptions, type TradingSessionSnapshot, splitSessionSnapshot } from '../src/trading/index.js';
import { type Queryable, type Store, isStoreError, openStore } from '../src/store/index.js';
import { AGED_SYMBOLS, stepAgedSession } from '../test/fixtures/sessions.js';
import { type BenchRow, report } from './lib/report.js';
import { type LatencySummary, summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const ORDERS = quick ? 200 : 500;
const ROUNDS = quick ? 1 : 3;
const WARMUP = 100;
/** Orders per step of the batch row: a step in which ten agents each had an order filled. */
const BATCH = 10;
/** The bar: the outbox's time per order at most twice the bare loop's. */
const TARGET_RATIO = 2;
const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The median of `values`. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

async function insertDeployment(db: Queryable, id: string): Promise<void> {
  await db.query(
    "INSERT INTO deployments (id, name, env, spec_version, desired, state, created_at_ms, updated_at_ms) VALUES ($1, $1, 'dev', 1, 'running', 'running', 0, 0)",
    [id],
  );
}

/** `count` calls of `SELECT 1`: a call's round trip with no work, the floor under every row; returns the wall time in ms. */
async function roundTrips(store: Store, count: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i++) await store.query('SELECT 1');
  return performance.now() - started;
}

/** `count` single-row inserts, each its own autocommit; returns the wall time in ms. */
async function bareLoop(store: Store, deployment: string, first: number, count: number): Promise<number> {
  const started = performance.now();
  for (let i = first; i < first + count; i++) {
    await store.query("INSERT INTO events (deployment_id, at_ms, step, kind) VALUES ($1, $2, $3, 'bare')", [deployment, i, i]);
  }
  return performance.now() - started;
}

/** `count` orders through the outbox, one transaction each; returns the wall time in ms. */
async function outbox(store: Store, deployment: string, first: number, count: number): Promise<number> {
  const started = performance.now();
  for (let i = first; i < first + count; i++) {
    const clientOrderId = `o-${i}`;
    const symbol = `S${i % 5}`;
    await store.transaction(async (tx) => {
      await tx.query(
        "INSERT INTO orders (deployment_id, client_order_id, step, agent_id, symbol, side, quantity, status, created_at_ms) VALUES ($1, $2, $3, 'a1', $4, 'buy', $5, 'pending', $6)",
        [deployment, clientOrderId, i, symbol, 10, i],
      );
      await tx.query("UPDATE orders SET status = 'submitted' WHERE deployment_id = $1 AND client_order_id = $2", [deployment, clientOrderId]);
      await tx.query(
        "INSERT INTO fills (deployment_id, seq, client_order_id, step, symbol, side, quantity, price, fee, time_ms) VALUES ($1, $2, $3, $4, $5, 'buy', $6, $7, $8, $9)",
        [deployment, i, clientOrderId, i, symbol, 10, 100.25 + i / 1000, 0.01, i],
      );
      await tx.query(
        'INSERT INTO positions (deployment_id, symbol, quantity) VALUES ($1, $2, $3) ON CONFLICT (deployment_id, symbol) DO UPDATE SET quantity = positions.quantity + EXCLUDED.quantity',
        [deployment, symbol, 10],
      );
    });
  }
  return performance.now() - started;
}

/** `count` closed steps of one order and its fill each, as the control plane writes them; returns the wall time in ms. */
async function closedSteps(journal: DeploymentJournal, deployment: string, first: number, count: number, orders = 1): Promise<number> {
  const started = performance.now();
  for (let i = first; i < first + count; i++) await journal.stepClosed(closedStep(deployment, i, orders));
  return performance.now() - started;
}

/**
 * Step `index` of a 2-symbol lockstep deployment in which each of `orders` agents (a1, a2, …) bought
 * 10 of one symbol and was filled; by default 1 order of 2 agents' step.
 */
function closedStep(swarmId: string, index: number, orders = 1): ClosedStep {
  const timeMs = 1_700_000_000_000 + index * 60_000;
  const bars = ['AAA', 'BBB'].map((symbol) => ({ symbol, timeMs, open: 100, high: 101, low: 99, close: 100.5, volume: 1_000 }));
  const account = { equity: 100_000 + index, cash: 90_000 - index, positions: [{ symbol: 'AAA', quantity: 10 * (index + 1) }] };
  const agents = Array.from({ length: Math.max(2, orders) }, (_, k) => `a${k + 1}`);
  const bought = agents.slice(0, orders).map((agentId, k) => ({ agentId, clientOrderId: `${swarmId}-${index}-${agentId}-0`, symbol: k % 2 === 0 ? 'AAA' : 'BBB' }));
  return {
    index,
    timeMs,
    bars,
    participants: agents,
    submissions: [],
    signals: Object.fromEntries(agents.map((agent) => [agent, []])),
    orders: bought.map(({ agentId, clientOrderId, symbol }) => ({ clientOrderId, step: index, agentId, symbol, side: 'buy' as const, quantity: 10, status: 'filled', reason: null })),
    fills: bought.map(({ clientOrderId, symbol }) => ({ clientOrderId, symbol, side: 'buy' as const, quantity: 10, price: 100.5, fee: 0.01, timeMs })),
    opened: { equity: account.equity, peakEquity: account.equity, positions: [['AAA', 10 * index]] },
    account,
    position: { step: index + 1, lastTimeMs: timeMs },
    checkpoints: [],
    snapshot: { version: 1, swarmId, state: 'running', position: { step: index + 1, lastTimeMs: timeMs }, closedSteps: index + 1, halted: null, stopRequested: false, events: [], absences: [], agents: [] },
  };
}

/** Closed steps between two venue snapshots of a deployment (its `venueSnapshotEverySteps` by default). */
const VENUE_SNAPSHOT_EVERY = 1_000;

/**
 * Steps of the deployment whose restart read is measured (its age): `--aged-steps N`, a multiple of
 * {@link VENUE_SNAPSHOT_EVERY}, shows how the read grows with a deployment's age.
 */
const AGED_STEPS = ((): number => {
  const index = process.argv.indexOf('--aged-steps');
  if (index < 0) return quick ? 5_000 : 20_000;
  const given = process.argv[index + 1] ?? '';
  if (!/^[1-9]\d*$/.test(given) || Number(given) % VENUE_SNAPSHOT_EVERY !== 0) {
    throw new Error(`--aged-steps must be a whole multiple of ${VENUE_SNAPSHOT_EVERY} steps, as 200000; got ${JSON.stringify(given)}`);
  }
  return Number(given);
})();

/**
 * A trading session's snapshot after `steps` steps of two symbols with a market entry every 10 steps
 * and its exit 5 later: what a deployment of that age stores as its venue snapshot; and those it
 * stored before it, every {@link VENUE_SNAPSHOT_EVERY} steps (the last of them is `snapshot`).
 */
function agedSession(steps: number, resting = false): { snapshot: TradingSessionSnapshot; snapshots: TradingSessionSnapshot[]; options: TradingSessionOptions } {
  const options: TradingSessionOptions = { swarm: 'bench', symbols: [...AGED_SYMBOLS] };
  const session = new TradingSession(options);
  const snapshots: TradingSessionSnapshot[] = [];
  // With `resting`, a limit buy far under the price, placed at the second step (the first submits an entry already), rests for the whole run.
  const also = (index: number, bars: readonly Bar[]): void => {
    if (resting && index === 1) session.submit([{ strategy: 'bench', symbol: 'AAA', side: 'buy', quantity: 1, type: 'limit', limitPrice: 50, intent: 'enter-long' }], index, bars);
  };
  for (let from = 0; from < steps; from += VENUE_SNAPSHOT_EVERY) {
    stepAgedSession(session, from, Math.min(VENUE_SNAPSHOT_EVERY, steps - from), also);
    if (from + VENUE_SNAPSHOT_EVERY < steps) snapshots.push(session.snapshot());
  }
  const snapshot = session.snapshot();
  snapshots.push(snapshot);
  return { snapshot, snapshots, options };
}

/** A venue snapshot of the aged session at its last step, as a deployment hands it to its journal. */
function agedVenue(aged: ReturnType<typeof agedSession>): VenueSnapshot {
  return { closedSteps: AGED_STEPS, session: aged.snapshot, absences: { open: [], closed: [], last: AGED_STEPS - 1 }, ledger: { decided: AGED_STEPS, duplicates: 0, compared: 0, agreed: 0 } };
}

/**
 * The aged session's venue snapshots split as the control plane stores them (every
 * {@link VENUE_SNAPSHOT_EVERY} steps, each after the one before): the last one's stored live part,
 * and every chunk, with the closed steps each was written at.
 */
function agedChunks(aged: ReturnType<typeof agedSession>): { stored: Record<string, unknown>; chunks: Array<{ closedSteps: number; chunk: SessionHistoryChunk }> } {
  let held = NO_SESSION_HISTORY;
  const chunks: Array<{ closedSteps: number; chunk: SessionHistoryChunk }> = [];
  let live = aged.snapshot;
  aged.snapshots.forEach((snapshot, i) => {
    const split = splitSessionSnapshot(snapshot, held);
    if (split.chunk !== undefined) chunks.push({ closedSteps: (i + 1) * VENUE_SNAPSHOT_EVERY, chunk: split.chunk });
    held = split.held;
    live = split.live;
  });
  return { stored: { ...agedVenue(aged), session: live, history: held }, chunks };
}

/**
 * Bytes a deployment {@link AGED_STEPS} steps old writes with its venue snapshot: whole (before
 * migration 008), and split (its live part and the chunk of what settled since the one before).
 */
function venueSnapshotBytes(aged: ReturnType<typeof agedSession>): { whole: number; chunked: number } {
  const { stored, chunks } = agedChunks(aged);
  const last = chunks.at(-1);
  const chunk = last?.closedSteps === AGED_STEPS ? Buffer.byteLength(JSON.stringify(last.chunk)) : 0;
  return { whole: Buffer.byteLength(JSON.stringify(agedVenue(aged))), chunked: Buffer.byteLength(JSON.stringify(stored)) + chunk };
}

/** Stores `count` closed steps of `deployment` at once (the read is measured, not the writes), and the deployment's last snapshot. */
async function storeAgedSteps(store: Store, deployment: string, count: number): Promise<void> {
  const step = closedStep(deployment, 0);
  await store.query(
    `INSERT INTO steps (deployment_id, idx, time_ms, submissions, signals, bars, participants, closed_at_ms, opened)
     SELECT $1, g, $2::bigint + g::bigint * 60000, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, 0, $7::jsonb FROM generate_series(0, $8 - 1) AS g`,
    [deployment, step.timeMs, JSON.stringify(step.submissions), JSON.stringify(step.signals), JSON.stringify(step.bars), JSON.stringify(step.participants), JSON.stringify(step.opened), count],
  );
  await store.query('UPDATE deployments SET closed_steps = $2, snapshot = $3::jsonb WHERE id = $1', [deployment, count, JSON.stringify({ ...step.snapshot, closedSteps: count })]);
}

interface RestartReadResult {
  readonly name: string;
  /** replayOf of the deployment with no venue snapshot: every step. */
  readonly everyStepMs: number[];
  /** replayOf of the same deployment with a venue snapshot at its last step stored whole (before migration 008), and taking the session up. */
  readonly fromSnapshotMs: number[];
  readonly restoreMs: number[];
  /** The same, the venue snapshot stored as the control plane stores it now: its live part and its history chunks. */
  readonly fromChunksMs: number[];
  readonly stepsRead: number;
  readonly snapshotBytes: number;
}

/** A restart's read of a deployment {@link AGED_STEPS} steps old: every step, against its venue snapshot and the steps shortly before it. */
async function measureRestartRead(name: string, store: Store, aged: ReturnType<typeof agedSession>): Promise<RestartReadResult> {
  const repository = new ControlPlaneRepository(store, () => Date.now());
  const [plain, snapshotted, chunked] = [`aged-${randomId(8)}`, `aged-${randomId(8)}`, `aged-${randomId(8)}`];
  for (const id of [plain, snapshotted, chunked]) {
    await insertDeployment(store, id);
    await storeAgedSteps(store, id, AGED_STEPS);
  }
  const text = JSON.stringify(agedVenue(aged));
  const insertVenue = 'INSERT INTO venue_snapshots (deployment_id, closed_steps, snapshot, created_at_ms) VALUES ($1, $2, $3::jsonb, 0)';
  await store.query(insertVenue, [snapshotted, AGED_STEPS, text]);
  const { stored, chunks } = agedChunks(aged);
  await store.query(insertVenue, [chunked, AGED_STEPS, JSON.stringify(stored)]);
  for (const { closedSteps, chunk } of chunks) await store.query('INSERT INTO venue_chunks (deployment_id, closed_steps, chunk) VALUES ($1, $2, $3::jsonb)', [chunked, closedSteps, JSON.stringify(chunk)]);
  const everyStepMs: number[] = [];
  const fromSnapshotMs: number[] = [];
  const fromChunksMs: number[] = [];
  const restoreMs: number[] = [];
  let stepsRead = 0;
  /** replayOf of `id` and the session taken up from its venue snapshot: the read's and the restore's ms. */
  const readVenue = async (id: string): Promise<{ readonly read: number; readonly restore: number; readonly steps: number }> => {
    let started = performance.now();
    const recent = await repository.replayOf(id);
    const read = performance.now() - started;
    started = performance.now();
    TradingSession.restore(recent?.venue?.session, aged.options);
    const restore = performance.now() - started;
    if (recent?.venue === undefined) throw new Error(`the aged deployment ${id} read back no venue snapshot`);
    return { read, restore, steps: recent.steps.length };
  };
  for (let round = 0; round < ROUNDS + 1; round++) {
    const started = performance.now();
    const all = await repository.replayOf(plain);
    const everyStep = performance.now() - started;
    if (all?.steps.length !== AGED_STEPS) throw new Error(`the aged deployment read back ${all?.steps.length} steps, not ${AGED_STEPS}`);
    const whole = await readVenue(snapshotted);
    const split = await readVenue(chunked);
    stepsRead = whole.steps;
    // The first round warms up.
    if (round === 0) continue;
    everyStepMs.push(everyStep);
    fromSnapshotMs.push(whole.read + whole.restore);
    restoreMs.push(whole.restore);
    fromChunksMs.push(split.read + split.restore);
  }
  return { name, everyStepMs, fromSnapshotMs, restoreMs, fromChunksMs, stepsRead, snapshotBytes: Buffer.byteLength(text) };
}

function restartReadRows(result: RestartReadResult): BenchRow[] {
  const every = median(result.everyStepMs);
  const fromSnapshot = median(result.fromSnapshotMs);
  return [
    { name: `${result.name}: restart read of a deployment ${AGED_STEPS} steps old, every step (no venue snapshot, the baseline)`, value: { amount: every, unit: 'ms' } },
    {
      name: `${result.name}: restart read of the same from its venue snapshot (${(result.snapshotBytes / 1e6).toFixed(1)} MB) and ${result.stepsRead} steps, with the session taken up (${median(result.restoreMs).toFixed(0)} ms)`,
      value: { amount: fromSnapshot, unit: 'ms' },
      ratio: { to: 'every step', value: fromSnapshot / every },
    },
    {
      name: `${result.name}: restart read of the same from its venue snapshot stored in history chunks (${AGED_STEPS / VENUE_SNAPSHOT_EVERY} chunks) and ${result.stepsRead} steps, with the session taken up`,
      value: { amount: median(result.fromChunksMs), unit: 'ms' },
      ratio: { to: 'every step', value: median(result.fromChunksMs) / every },
    },
  ];
}

interface TargetResult {
  readonly name: string;
  readonly bareMs: number[];
  readonly outboxMs: number[];
  readonly stepMs: number[];
  /** Closed steps of {@link BATCH} orders each, as many orders in all as the other loops. */
  readonly batchMs: number[];
  /** Closed steps of 1 order written by a server that leads others: each checks its lease (the fence). */
  readonly fencedMs: number[];
  readonly roundTripMs: number[];
  /** The gaps between a 1 ms timer's ticks over the timed rounds (the last one up to their end), in ms. */
  readonly loopGapsMs: LatencySummary;
}

async function measure(name: string, store: Store): Promise<TargetResult> {
  const deployment = `bench-${randomId(8)}`;
  await insertDeployment(store, deployment);
  let next = 0;
  await bareLoop(store, deployment, next, WARMUP);
  await outbox(store, deployment, next, WARMUP);
  const stepping = `bench-${randomId(8)}`;
  await insertDeployment(store, stepping);
  const journal = new ControlPlaneRepository(store, () => Date.now()).journalOf(stepping);
  await closedSteps(journal, stepping, 0, WARMUP);
  let nextStep = WARMUP;
  next += WARMUP;
  const bareMs: number[] = [];
  const outboxMs: number[] = [];
  const stepMs: number[] = [];
  const batchMs: number[] = [];
  const fencedMs: number[] = [];
  const roundTripMs: number[] = [];
  // A server that leads others: its lease, and a repository whose every write checks it.
  const election = new LeaderElection({ store, holder: `bench-${randomId(6)}`, name: `bench-${randomId(6)}`, clock: new SystemClock(), logger: silentLogger });
  election.start();
  while (election.state !== 'leader') await new Promise((resolve) => setTimeout(resolve, 10));
  const fenced = `bench-${randomId(8)}`;
  await insertDeployment(store, fenced);
  const fencedJournal = new ControlPlaneRepository(store, () => Date.now(), election).journalOf(fenced);
  await closedSteps(fencedJournal, fenced, 0, WARMUP);
  let nextFenced = WARMUP;
  const gaps: number[] = [];
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 1);
  for (let round = 0; round < ROUNDS; round++) {
    bareMs.push(await bareLoop(store, deployment, next, ORDERS));
    outboxMs.push(await outbox(store, deployment, next, ORDERS));
    stepMs.push(await closedSteps(journal, stepping, nextStep, ORDERS));
    nextStep += ORDERS;
    batchMs.push(await closedSteps(journal, stepping, nextStep, ORDERS / BATCH, BATCH));
    nextStep += ORDERS / BATCH;
    fencedMs.push(await closedSteps(fencedJournal, fenced, nextFenced, ORDERS));
    nextFenced += ORDERS;
    roundTripMs.push(await roundTrips(store, ORDERS));
    next += ORDERS;
  }
  clearInterval(ticker);
  gaps.push(performance.now() - last);
  await election.close();
  return { name, bareMs, outboxMs, stepMs, batchMs, fencedMs, roundTripMs, loopGapsMs: summarize(gaps) };
}

function rowsOf(result: TargetResult): BenchRow[] {
  const bare = median(result.bareMs);
  const againstBare = (name: string, ms: number, unit: string): BenchRow => {
    const ratio = ms / bare;
    return {
      name: `${result.name}: ${name}`,
      value: { amount: (ORDERS / ms) * 1000, unit },
      ratio: { to: 'the bare loop time', value: ratio },
      target: { text: `within ${TARGET_RATIO}x of the bare loop`, met: ratio <= TARGET_RATIO },
    };
  };
  const roundTrip = median(result.roundTripMs);
  return [
    { name: `${result.name}: bare INSERT loop, ${ORDERS} inserts (baseline)`, value: { amount: (ORDERS / bare) * 1000, unit: 'inserts/s' } },
    { name: `${result.name}: SELECT 1, ${ORDERS} calls (a call's round trip alone)`, value: { amount: (ORDERS / roundTrip) * 1000, unit: 'calls/s' }, ratio: { to: 'the bare loop time', value: roundTrip / bare } },
    againstBare(`order events with the outbox, ${ORDERS} orders, each statement awaited`, median(result.outboxMs), 'orders/s'),
    againstBare(`closed steps as the control plane writes them, 1 order and its fill each, ${ORDERS} steps`, median(result.stepMs), 'steps/s'),
    againstBare(`closed steps of ${BATCH} orders and their fills each (${BATCH} agents' orders), ${ORDERS} orders in ${ORDERS / BATCH} steps`, median(result.batchMs), 'orders/s'),
    againstBare(`closed steps of 1 order and its fill, written by a server leading others (each checks its lease), ${ORDERS} steps`, median(result.fencedMs), 'steps/s'),
    {
      name: `${result.name}: event loop, gaps between a 1 ms timer's ticks while it ran (longest ${result.loopGapsMs.max.toFixed(0)} ms)`,
      summary: result.loopGapsMs,
    },
  ];
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  const runs: TargetResult[] = [];
  const reads: RestartReadResult[] = [];
  const skipped: string[] = [];
  const aged = agedSession(AGED_STEPS);
  const both = async (name: string, store: Store): Promise<void> => {
    runs.push(await measure(name, store));
    reads.push(await measureRestartRead(name, store, aged));
  };

  const memory = await openStore({ dataDir: 'memory' });
  try {
    await both('PGlite in memory', memory);
  } finally {
    await memory.close();
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'tradeswarm-bench-store-'));
  try {
    const onDisk = await openStore({ dataDir });
    try {
      await both('PGlite on disk', onDisk);
    } finally {
      await onDisk.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }

  const schema = `bench_store_${randomId(8).toLowerCase()}`;
  const server = await openStore({ databaseUrl: DATABASE_URL, schema }).catch((error: unknown) => {
    if (!isStoreError(error)) throw error;
    const why = `PostgreSQL skipped: ${error.message}`;
    process.stdout.write(`${why}\n`);
    skipped.push(why);
    return undefined;
  });
  if (server !== undefined) {
    try {
      await both('PostgreSQL 127.0.0.1:5432', server);
    } finally {
      await server.query(`DROP SCHEMA "${schema}" CASCADE`);
      await server.close();
    }
  }

  const bytes = venueSnapshotBytes(aged);
  const resting = venueSnapshotBytes(agedSession(AGED_STEPS, true));
  rows.push(
    { name: `bytes written with a venue snapshot at step ${AGED_STEPS}, whole (the session's whole history: before migration 008, the baseline)`, value: { amount: bytes.whole, unit: 'bytes' } },
    {
      name: `bytes written with a venue snapshot at step ${AGED_STEPS}, in history chunks (its live part and what settled in the ${VENUE_SNAPSHOT_EVERY} steps since the one before)`,
      value: { amount: bytes.chunked, unit: 'bytes' },
      ratio: { to: 'whole', value: bytes.chunked / bytes.whole },
    },
    { name: `bytes written with a venue snapshot at step ${AGED_STEPS}, one limit order resting since step 1, whole (the baseline)`, value: { amount: resting.whole, unit: 'bytes' } },
    {
      name: `bytes written with a venue snapshot at step ${AGED_STEPS}, one limit order resting since step 1, in history chunks (the resting order alone kept live)`,
      value: { amount: resting.chunked, unit: 'bytes' },
      ratio: { to: 'whole', value: resting.chunked / resting.whole },
    },
  );
  for (const run of runs) rows.push(...rowsOf(run));
  for (const read of reads) rows.push(...restartReadRows(read));
  report('store', rows, {
    quick,
    orders: ORDERS,
    rounds: ROUNDS,
    warmup: WARMUP,
    runs,
    reads,
    agedSteps: AGED_STEPS,
    venueSnapshotBytes: bytes,
    restingVenueSnapshotBytes: resting,
    skipped,
    note:
      'one process, one store per target, used one call at a time. Bare loop = one single-row INSERT per order, autocommit; ' +
      'outbox = per order one transaction: INSERT order (pending), UPDATE to submitted, INSERT fill, upsert position, each awaited. ' +
      'closed step = ControlPlaneRepository.journalOf().stepClosed() of a step with 1 order and its fill (one call of tradeswarm_close_step). ' +
      `restart read = ControlPlaneRepository.replayOf() of a deployment ${AGED_STEPS} steps old (inserted at once), without a venue snapshot (every step) and with one at its last step (a real TradingSession's after ${AGED_STEPS} steps, an entry every 10 and its exit 5 later), plus TradingSession.restore, the venue snapshot stored whole (before migration 008) and in history chunks (split every ${VENUE_SNAPSHOT_EVERY} steps, as the control plane stores it); medians after a warm-up round. ` +
      `bytes written with a venue snapshot = the JSON of the VenueSnapshot at step ${AGED_STEPS} whole, against that of its stored live part and its chunk. ` +
      'Ratio = time per order (per step) / bare loop time per insert, medians of the rounds',
  });
}

await main();
