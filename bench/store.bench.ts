// Store benchmark: what the order outbox costs (DESIGN decision 10: an order is written before it
// reaches the venue), on PGlite in memory, PGlite in a data dir and PostgreSQL (skipped with a message
// when 127.0.0.1:5432 does not answer), each next to a baseline measured in the same run on the same store:
// - baseline: a bare INSERT loop, one single-row insert per order, each in its own (auto)commit;
// - outbox: per order, one transaction that inserts the order (pending), updates it to submitted,
//   inserts its fill and upserts the position (4 statements, 1 commit, each statement awaited);
// - closed step: what the control plane really writes for a step with one order and its fill, through
//   ControlPlaneRepository's journal (the step's bars, signals and snapshot, the order, the fill, the
//   position, the equity point and the deployment's counters: one call of the tradeswarm_close_step
//   function, migration 007).
// The two alternate for ROUNDS rounds after an untimed warm-up; medians are reported. The target:
// the outbox within 2x of the bare loop's time per order. Meanwhile a 1 ms interval timer measures the
// gaps between its ticks: how long anything else in the process (an API request) waits behind the
// store's work, which PGlite did on the caller's thread before issue 15. (perf_hooks'
// monitorEventLoopDelay would report nothing there: a loop that never turns records no sample.) `npm run bench:store [-- --quick]`; results
// in bench/results/store.json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomId } from '../src/core/index.js';
import { ControlPlaneRepository } from '../src/controlplane/index.js';
import type { ClosedStep, DeploymentJournal } from '../src/swarm/index.js';
import { type Queryable, type Store, isStoreError, openStore } from '../src/store/index.js';
import { type BenchRow, report } from './lib/report.js';
import { type LatencySummary, summarize } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const ORDERS = quick ? 200 : 500;
const ROUNDS = quick ? 1 : 3;
const WARMUP = 100;
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
async function closedSteps(journal: DeploymentJournal, deployment: string, first: number, count: number): Promise<number> {
  const started = performance.now();
  for (let i = first; i < first + count; i++) await journal.stepClosed(closedStep(deployment, i));
  return performance.now() - started;
}

/** Step `index` of a 2-symbol lockstep deployment of 2 agents, in which agent a1 bought 10 and was filled. */
function closedStep(swarmId: string, index: number): ClosedStep {
  const timeMs = 1_700_000_000_000 + index * 60_000;
  const bars = ['AAA', 'BBB'].map((symbol) => ({ symbol, timeMs, open: 100, high: 101, low: 99, close: 100.5, volume: 1_000 }));
  const clientOrderId = `${swarmId}-${index}-a1-0`;
  const account = { equity: 100_000 + index, cash: 90_000 - index, positions: [{ symbol: 'AAA', quantity: 10 * (index + 1) }] };
  return {
    index,
    timeMs,
    bars,
    participants: ['a1', 'a2'],
    submissions: [],
    signals: { a1: [], a2: [] },
    orders: [{ clientOrderId, step: index, agentId: 'a1', symbol: 'AAA', side: 'buy', quantity: 10, status: 'filled', reason: null }],
    fills: [{ clientOrderId, symbol: 'AAA', side: 'buy', quantity: 10, price: 100.5, fee: 0.01, timeMs }],
    opened: { equity: account.equity, peakEquity: account.equity, positions: [['AAA', 10 * index]] },
    account,
    position: { step: index + 1, lastTimeMs: timeMs },
    checkpoints: [],
    snapshot: { version: 1, swarmId, state: 'running', position: { step: index + 1, lastTimeMs: timeMs }, closedSteps: index + 1, halted: null, stopRequested: false, events: [], absences: [], agents: [] },
  };
}

interface TargetResult {
  readonly name: string;
  readonly bareMs: number[];
  readonly outboxMs: number[];
  readonly stepMs: number[];
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
    next += ORDERS;
  }
  clearInterval(ticker);
  gaps.push(performance.now() - last);
  return { name, bareMs, outboxMs, stepMs, loopGapsMs: summarize(gaps) };
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
  return [
    { name: `${result.name}: bare INSERT loop, ${ORDERS} inserts (baseline)`, value: { amount: (ORDERS / bare) * 1000, unit: 'inserts/s' } },
    againstBare(`order events with the outbox, ${ORDERS} orders, each statement awaited`, median(result.outboxMs), 'orders/s'),
    againstBare(`closed steps as the control plane writes them, 1 order and its fill each, ${ORDERS} steps`, median(result.stepMs), 'steps/s'),
    {
      name: `${result.name}: event loop, gaps between a 1 ms timer's ticks while it ran (longest ${result.loopGapsMs.max.toFixed(0)} ms)`,
      summary: result.loopGapsMs,
    },
  ];
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  const runs: TargetResult[] = [];
  const skipped: string[] = [];

  const memory = await openStore({ dataDir: 'memory' });
  try {
    runs.push(await measure('PGlite in memory', memory));
  } finally {
    await memory.close();
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'tradeswarm-bench-store-'));
  try {
    const onDisk = await openStore({ dataDir });
    try {
      runs.push(await measure('PGlite on disk', onDisk));
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
      runs.push(await measure('PostgreSQL 127.0.0.1:5432', server));
    } finally {
      await server.query(`DROP SCHEMA "${schema}" CASCADE`);
      await server.close();
    }
  }

  for (const run of runs) rows.push(...rowsOf(run));
  report('store', rows, {
    quick,
    orders: ORDERS,
    rounds: ROUNDS,
    warmup: WARMUP,
    runs,
    skipped,
    note:
      'one process, one store per target, used one call at a time. Bare loop = one single-row INSERT per order, autocommit; ' +
      'outbox = per order one transaction: INSERT order (pending), UPDATE to submitted, INSERT fill, upsert position, each awaited. ' +
      'closed step = ControlPlaneRepository.journalOf().stepClosed() of a step with 1 order and its fill (9 statements, 1 commit). ' +
      'Ratio = time per order (per step) / bare loop time per insert, medians of the rounds',
  });
}

await main();
