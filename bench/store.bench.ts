// Store benchmark: what the order outbox costs (DESIGN decision 10: an order is written before it
// reaches the venue), on PGlite in memory, PGlite in a data dir and PostgreSQL (skipped with a message
// when 127.0.0.1:5432 does not answer), each next to a baseline measured in the same run on the same store:
// - baseline: a bare INSERT loop, one single-row insert per order, each in its own (auto)commit;
// - outbox: per order, one transaction that inserts the order (pending), updates it to submitted,
//   inserts its fill and upserts the position (4 statements, 1 commit).
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

interface TargetResult {
  readonly name: string;
  readonly bareMs: number[];
  readonly outboxMs: number[];
  /** The gaps between a 1 ms timer's ticks over the timed rounds (the last one up to their end), in ms. */
  readonly loopGapsMs: LatencySummary;
}

async function measure(name: string, store: Store): Promise<TargetResult> {
  const deployment = `bench-${randomId(8)}`;
  await insertDeployment(store, deployment);
  let next = 0;
  await bareLoop(store, deployment, next, WARMUP);
  await outbox(store, deployment, next, WARMUP);
  next += WARMUP;
  const bareMs: number[] = [];
  const outboxMs: number[] = [];
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
    next += ORDERS;
  }
  clearInterval(ticker);
  gaps.push(performance.now() - last);
  return { name, bareMs, outboxMs, loopGapsMs: summarize(gaps) };
}

function rowsOf(result: TargetResult): BenchRow[] {
  const bare = median(result.bareMs);
  const box = median(result.outboxMs);
  const ratio = box / bare;
  return [
    { name: `${result.name}: bare INSERT loop, ${ORDERS} inserts (baseline)`, value: { amount: (ORDERS / bare) * 1000, unit: 'inserts/s' } },
    {
      name: `${result.name}: order events with the outbox, ${ORDERS} orders`,
      value: { amount: (ORDERS / box) * 1000, unit: 'orders/s' },
      ratio: { to: 'the bare loop time', value: ratio },
      target: { text: `within ${TARGET_RATIO}x of the bare loop`, met: ratio <= TARGET_RATIO },
    },
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
      'outbox = per order one transaction: INSERT order (pending), UPDATE to submitted, INSERT fill, upsert position. ' +
      'Ratio = outbox time per order / bare loop time per insert, medians of the rounds',
  });
}

await main();
