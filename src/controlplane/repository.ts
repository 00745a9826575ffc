import type { Resume } from '../agent/index.js';
import type { WriteFence } from '../health/index.js';
import { type Store, type Queryable, isDuplicateError } from '../store/index.js';
import { type ClosedStep, type DeploymentJournal, type DeploymentSnapshot, type JournalReplay, type JournaledStep, REPLAY_CONTEXT_STEPS, type StoredStep, type SwarmEvent, type SwarmReport, type VenueSnapshot } from '../swarm/index.js';
import { NO_SESSION_HISTORY, type SessionHistoryChunk, type SessionHistoryMark, joinSessionSnapshot, splitSessionSnapshot } from '../trading/index.js';
import { DeploymentNameTakenError } from './errors.js';
import { type CachedRow, EventTails, type PositionRecord, RecordCache } from './recordcache.js';

/** What the store keeps of a deployment (its row). */
export interface DeploymentRecord {
  readonly id: string;
  readonly name: string;
  readonly env: string;
  readonly specVersion: number;
  /** What the control plane keeps it doing: `running` until it is stopped or its data ended. */
  readonly desired: 'running' | 'stopped';
  /** Where it stands: a deployment state, or how it ended (`complete`, `halted`, `degraded`, `stopped`, `failed`). */
  readonly state: string;
  readonly closedSteps: number;
  /** Orders and fills stored. */
  readonly orders: number;
  readonly fills: number;
  /** Equity at the close of the last stored step; `null` before the first. */
  readonly equity: number | null;
  /** The equity its report ended with (after the end-of-data rule), once it ended. */
  readonly finalEquity: number | null;
  readonly error: string | null;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** The replicas an operator set, by agent id (see `ControlPlane.scale`); agents not named follow the spec. */
  readonly replicas: Readonly<Record<string, number>>;
}

/** A spec version of a deployment. */
export interface SpecRecord {
  readonly version: number;
  readonly specYaml: string;
  readonly baseDir: string;
}

/** An order as stored. */
export interface OrderRecord {
  readonly clientOrderId: string;
  readonly step: number;
  readonly agentId: string;
  readonly symbol: string;
  readonly side: string;
  readonly quantity: number;
  readonly status: string;
  readonly reason: string | null;
  readonly createdAtMs: number;
}

/** A fill as stored. */
export interface FillRecord {
  readonly seq: number;
  readonly clientOrderId: string;
  readonly step: number;
  readonly symbol: string;
  readonly side: string;
  readonly quantity: number;
  readonly price: number;
  readonly fee: number;
  readonly timeMs: number;
}

/** An event of a deployment's history. */
export interface EventRecord {
  readonly id: number;
  readonly atMs: number;
  readonly step: number | null;
  readonly kind: string;
  readonly agentId: string | null;
  readonly detail: string | null;
}

/**
 * A change the store recorded, as the API streams it: a deployment's state, a closed step (with the
 * orders and fills it stored), an event of its history. Told only once the write committed.
 */
export type StoreChange =
  | { readonly type: 'state'; readonly deployment: string; readonly state: string; readonly desired: 'running' | 'stopped' | null }
  | { readonly type: 'step'; readonly deployment: string; readonly step: number; readonly timeMs: number; readonly equity: number; readonly orders: ClosedStep['orders']; readonly fills: ClosedStep['fills'] }
  | { readonly type: 'event'; readonly deployment: string; readonly event: EventRecord };

type Row = Record<string, unknown>;

const num = (value: unknown): number => Number(value);
const str = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
const optStr = (value: unknown): string | null => (value === null || value === undefined ? null : str(value));

function deploymentOf(row: Row): DeploymentRecord {
  return {
    id: str(row.id),
    name: str(row.name),
    env: str(row.env),
    specVersion: num(row.spec_version),
    desired: row.desired === 'stopped' ? 'stopped' : 'running',
    state: str(row.state),
    closedSteps: num(row.closed_steps),
    orders: num(row.orders_count),
    fills: num(row.fills_count),
    equity: row.equity === null ? null : num(row.equity),
    finalEquity: row.final_equity === null ? null : num(row.final_equity),
    error: optStr(row.error),
    createdAtMs: num(row.created_at_ms),
    updatedAtMs: num(row.updated_at_ms),
    replicas: replicasOf(row.replicas),
  };
}

function eventOf(row: Row): EventRecord {
  return { id: num(row.id), atMs: num(row.at_ms), step: row.step === null ? null : num(row.step), kind: str(row.kind), agentId: optStr(row.agent_id), detail: optStr(row.detail) };
}

/** The stored replicas (a JSON object of agent id to count; PGlite and pg both hand jsonb over parsed). */
function replicasOf(value: unknown): Record<string, number> {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  if (parsed === null || typeof parsed !== 'object') return {};
  return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, number] => typeof entry[1] === 'number'));
}

/** A deployment's columns, and whether it holds a report (for {@link RecordCache}). */
const DEPLOYMENT_COLUMNS =
  "id, name, env, spec_version, desired, state, closed_steps, orders_count, fills_count, equity, (report->>'finalEquity')::double precision AS final_equity, error, created_at_ms, updated_at_ms, replicas, report IS NOT NULL AS has_report";

function cachedRowOf(row: Row): CachedRow<DeploymentRecord> {
  return { record: deploymentOf(row), hasReport: row.has_report === true };
}

/** The casts of `tradeswarm_close_step`'s 18 parameters (migration 008), in order: lists go as JSON. */
const CLOSE_STEP_CASTS = ['', '', '', '::jsonb', '::jsonb', '::jsonb', '::jsonb', '', '::jsonb', '::jsonb', '::jsonb', '::jsonb', '', '', '::jsonb', '::jsonb', '::jsonb', '::jsonb'];

/** `tradeswarm_close_step`'s parameters as placeholders from `$first` on. */
function closeStepParameters(first: number): string {
  return CLOSE_STEP_CASTS.map((cast, i) => `$${first + i}${cast}`).join(', ');
}

/** How many of each deployment's latest events a repository with a cache keeps (what `status` shows). */
const EVENTS_KEPT = 20;

/**
 * A venue snapshot as `venue_snapshots` holds it (migration 008): its session's live state, and what
 * of its history the deployment's `venue_chunks` hold (src/trading/history.ts).
 */
type StoredVenueSnapshot = VenueSnapshot & { readonly history: SessionHistoryMark };

/** A venue snapshot to store, and the history chunk written with it (`undefined`: nothing settled since the last). */
interface SplitVenue {
  readonly stored: StoredVenueSnapshot;
  readonly chunk: SessionHistoryChunk | undefined;
}

/** Options of {@link ControlPlaneRepository}. */
export interface ControlPlaneRepositoryOptions {
  /**
   * Keep the deployments' rows in memory (see {@link RecordCache}): only for the store's one writer
   * of them, the leading control plane, which drops the cache when it stops leading
   * ({@link ControlPlaneRepository.dropCache}). @default false: every read asks the store
   */
  readonly cache?: boolean;
}

/**
 * The control plane's tables, read and written in the shapes the control plane uses. Every write of
 * a closed step is one transaction ({@link journalOf}); the rest are single statements. With a
 * {@link WriteFence} (the lease of a server that leads others), every write is a transaction whose
 * first statement is the fence's check: a server that lost the lease writes nothing more.
 */
export class ControlPlaneRepository {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #fence: WriteFence | undefined;
  readonly #watchers = new Set<(change: StoreChange) => void>();
  #cache: RecordCache<DeploymentRecord> | undefined;
  #events: EventTails<EventRecord> | undefined;
  /**
   * What the stored history chunks of each deployment's venue snapshots hold, as this repository last
   * wrote or read them: its next venue snapshot writes only what settled since. Unknown (a deployment
   * this server has not resumed, or a write that failed): the next one writes its history whole.
   */
  readonly #venueHistory = new Map<string, SessionHistoryMark>();

  /** Calls `watcher` with every change once it is stored; returns what stops it. */
  watch(watcher: (change: StoreChange) => void): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  #tell(change: StoreChange): void {
    for (const watcher of this.#watchers) watcher(change);
  }

  /** @param fence checked inside every write's transaction, when given (see {@link WriteFence}). */
  constructor(store: Store, now: () => number, fence?: WriteFence, options: ControlPlaneRepositoryOptions = {}) {
    this.#store = store;
    this.#now = now;
    this.#fence = fence;
    this.#cache = options.cache === true ? new RecordCache<DeploymentRecord>() : undefined;
    this.#events = options.cache === true ? new EventTails<EventRecord>(EVENTS_KEPT) : undefined;
  }

  /** Stops keeping rows in memory: from now on every read asks the store (another server may write it). */
  dropCache(): void {
    this.#cache?.clear();
    this.#cache = undefined;
    this.#events?.clear();
    this.#events = undefined;
  }

  /**
   * Runs a write of deployment `id`'s row (see {@link #write}) whose `fn` returns the row as stored;
   * with a cache, after that row's writes before it, keeping the row (and `positions`, when the
   * write stored them) once it committed.
   */
  async #writeRow(id: string, fn: (db: Queryable) => Promise<Row | undefined>, transaction: boolean, positions?: readonly PositionRecord[], fencedByItself = false): Promise<Row | undefined> {
    const cache = this.#cache;
    if (cache === undefined) return this.#write(fn, transaction, fencedByItself);
    return cache.serial(id, async () => {
      let row: Row | undefined;
      try {
        row = await this.#write(fn, transaction, fencedByItself);
      } catch (error) {
        cache.forget(id);
        throw error;
      }
      if (row !== undefined) cache.put(cachedRowOf(row));
      if (positions !== undefined) cache.putPositions(id, positions);
      return row;
    });
  }

  /** Every deployment's row, as stored. */
  async #rows(): Promise<Array<CachedRow<DeploymentRecord>>> {
    return (await this.#store.query(`SELECT ${DEPLOYMENT_COLUMNS} FROM deployments ORDER BY created_at_ms DESC, id COLLATE "C"`)).map(cachedRowOf);
  }

  /**
   * Runs a write: in one transaction when `fn` is several statements (`transaction`) or there is a
   * fence, whose check then comes first; else as the single statement it is. `fencedByItself`: `fn` is
   * one statement that checks the lease itself (a closed step's), so no transaction is needed for it.
   * @throws LeaseLostError (from the fence) when this server no longer holds its lease: nothing was written.
   */
  async #write<T>(fn: (db: Queryable) => Promise<T>, transaction: boolean, fencedByItself = false): Promise<T> {
    const fence = this.#fence;
    if (fence !== undefined && !fencedByItself) {
      return this.#store.transaction(async (tx) => {
        await fence.check(tx);
        return fn(tx);
      });
    }
    return transaction ? this.#store.transaction(fn) : fn(this.#store);
  }

  /**
   * Stores a new deployment and its first spec version, `desired: running`, `state: pending`.
   * @throws DeploymentNameTakenError when a deployment of that name exists (nothing is written).
   */
  async create(deployment: { readonly id: string; readonly name: string; readonly env: string }, spec: Omit<SpecRecord, 'version'>): Promise<DeploymentRecord> {
    const now = this.#now();
    try {
      const row = await this.#writeRow(
        deployment.id,
        async (tx) => {
          const [inserted] = await tx.query(
            `INSERT INTO deployments (id, name, env, spec_version, desired, state, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, 1, 'running', 'pending', $4, $4) RETURNING ${DEPLOYMENT_COLUMNS}`,
            [deployment.id, deployment.name, deployment.env, now],
          );
          await tx.query('INSERT INTO deployment_specs (deployment_id, version, spec_yaml, base_dir, created_at_ms) VALUES ($1, 1, $2, $3, $4)', [deployment.id, spec.specYaml, spec.baseDir, now]);
          return inserted;
        },
        true,
      );
      return deploymentOf(row as Row);
    } catch (error) {
      if (isDuplicateError(error)) throw new DeploymentNameTakenError(deployment.name);
      throw error;
    }
  }

  /** Every deployment, newest first (then by id, in byte order). */
  async list(): Promise<DeploymentRecord[]> {
    if (this.#cache !== undefined) return this.#cache.all(() => this.#rows());
    return (await this.#rows()).map((row) => row.record);
  }

  /** The deployment whose id or name is `ref`. */
  async find(ref: string): Promise<DeploymentRecord | undefined> {
    if (this.#cache !== undefined) return this.#cache.find(ref, () => this.#rows());
    const [row] = await this.#store.query(`SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, [ref]);
    return row === undefined ? undefined : deploymentOf(row);
  }

  async spec(id: string, version: number): Promise<SpecRecord> {
    const [row] = await this.#store.query('SELECT version, spec_yaml, base_dir FROM deployment_specs WHERE deployment_id = $1 AND version = $2', [id, version]);
    if (row === undefined) throw new Error(`deployment ${id} has no spec version ${version}`);
    return { version: num(row.version), specYaml: str(row.spec_yaml), baseDir: str(row.base_dir) };
  }

  /** Records where a deployment stands (and, with `desired`, what it is to do). */
  async setState(id: string, change: { readonly state: string; readonly desired?: 'running' | 'stopped'; readonly error?: string | null; readonly report?: unknown }): Promise<void> {
    await this.#writeRow(
      id,
      async (db) =>
        (
          await db.query(
            `UPDATE deployments SET state = $2, desired = COALESCE($3, desired), error = CASE WHEN $4::boolean THEN $5 ELSE error END,
             report = COALESCE($6::jsonb, report), updated_at_ms = $7 WHERE id = $1 RETURNING ${DEPLOYMENT_COLUMNS}`,
            [id, change.state, change.desired ?? null, change.error !== undefined, change.error ?? null, change.report === undefined ? null : JSON.stringify(change.report), this.#now()],
          )
        )[0],
      false,
    );
    this.#tell({ type: 'state', deployment: id, state: change.state, desired: change.desired ?? null });
  }

  /** Records the replicas an operator set (all of them: what is not named follows the spec again). */
  async setReplicas(id: string, replicas: Readonly<Record<string, number>>): Promise<void> {
    await this.#writeRow(id, async (db) => (await db.query(`UPDATE deployments SET replicas = $2::jsonb, updated_at_ms = $3 WHERE id = $1 RETURNING ${DEPLOYMENT_COLUMNS}`, [id, JSON.stringify(replicas), this.#now()]))[0], false);
  }

  /** Appends an event to a deployment's history. */
  async appendEvent(id: string, event: { readonly kind: string; readonly step?: number | null; readonly agentId?: string | null; readonly detail?: string | null }): Promise<void> {
    const atMs = this.#now();
    const events = this.#events;
    const [row] = await this.#write(
      (db) => db.query('INSERT INTO events (deployment_id, at_ms, step, kind, agent_id, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id', [id, atMs, event.step ?? null, event.kind, event.agentId ?? null, event.detail ?? null]),
      false,
    ).catch((error: unknown) => {
      events?.forget(id);
      throw error;
    });
    const stored: EventRecord = { id: num(row?.id), atMs, step: event.step ?? null, kind: event.kind, agentId: event.agentId ?? null, detail: event.detail ?? null };
    events?.add(id, stored);
    this.#tell({ type: 'event', deployment: id, event: stored });
  }

  /** Events of a deployment after event `afterId`, oldest first. */
  async events(id: string, options: { readonly afterId?: number; readonly limit?: number } = {}): Promise<EventRecord[]> {
    const rows = await this.#store.query('SELECT id, at_ms, step, kind, agent_id, detail FROM events WHERE deployment_id = $1 AND id > $2 ORDER BY id LIMIT $3', [
      id,
      options.afterId ?? 0,
      options.limit ?? 1_000,
    ]);
    return rows.map(eventOf);
  }

  /** The last `count` events of a deployment, oldest first (from memory with a cache, up to {@link EVENTS_KEPT}). */
  async latestEvents(id: string, count: number): Promise<EventRecord[]> {
    const read = async (last: number): Promise<EventRecord[]> =>
      (await this.#store.query('SELECT id, at_ms, step, kind, agent_id, detail FROM events WHERE deployment_id = $1 ORDER BY id DESC LIMIT $2', [id, last])).map(eventOf).reverse();
    return this.#events === undefined ? read(count) : this.#events.latest(id, count, read);
  }

  /** Orders of a deployment decided on steps from `fromStep`, in the order they were stored. */
  async orders(id: string, options: { readonly fromStep?: number; readonly limit?: number } = {}): Promise<OrderRecord[]> {
    const rows = await this.#store.query(
      'SELECT client_order_id, step, agent_id, symbol, side, quantity, status, reason, created_at_ms FROM orders WHERE deployment_id = $1 AND step >= $2 ORDER BY step, created_at_ms, client_order_id LIMIT $3',
      [id, options.fromStep ?? 0, options.limit ?? 10_000],
    );
    return rows.map((row) => ({
      clientOrderId: str(row.client_order_id),
      step: num(row.step),
      agentId: str(row.agent_id),
      symbol: str(row.symbol),
      side: str(row.side),
      quantity: num(row.quantity),
      status: str(row.status),
      reason: optStr(row.reason),
      createdAtMs: num(row.created_at_ms),
    }));
  }

  /** Fills of a deployment, in the order the venue made them. */
  async fills(id: string): Promise<FillRecord[]> {
    const rows = await this.#store.query('SELECT seq, client_order_id, step, symbol, side, quantity, price, fee, time_ms FROM fills WHERE deployment_id = $1 ORDER BY seq', [id]);
    return rows.map((row) => ({
      seq: num(row.seq),
      clientOrderId: str(row.client_order_id),
      step: num(row.step),
      symbol: str(row.symbol),
      side: str(row.side),
      quantity: num(row.quantity),
      price: num(row.price),
      fee: num(row.fee),
      timeMs: num(row.time_ms),
    }));
  }

  /** A deployment's open positions, as of its last stored step, by symbol in byte order. */
  async positions(id: string): Promise<PositionRecord[]> {
    const read = async (): Promise<PositionRecord[]> =>
      (await this.#store.query('SELECT symbol, quantity FROM positions WHERE deployment_id = $1 ORDER BY symbol COLLATE "C"', [id])).map((row) => ({ symbol: str(row.symbol), quantity: num(row.quantity) }));
    return this.#cache === undefined ? read() : this.#cache.positions(id, read);
  }

  /** The journal a running deployment writes its closed steps to. */
  journalOf(id: string): DeploymentJournal {
    return {
      stepClosed: async (step) => {
        // One statement, with a fence too: the fenced function checks the lease itself.
        const venue = step.venue === undefined ? undefined : this.#splitVenue(id, step.venue);
        await this.#writeRow(id, (db) => this.#writeStep(db, id, step, venue), false, step.fills.length > 0 ? step.account.positions : undefined, true);
        if (venue !== undefined) this.#venueHistory.set(id, venue.stored.history);
        this.#tell({ type: 'step', deployment: id, step: step.index, timeMs: step.timeMs, equity: step.account.equity, orders: step.orders, fills: step.fills });
      },
      drained: (checkpoints) => this.#write((tx) => this.#writeCheckpoints(tx, id, checkpoints), true),
      stepsBetween: (from, to) => this.#stepsBetween(id, from, to),
    };
  }

  /** A deployment's closed steps from `from` to `to` (exclusive), in order, to replay them to an agent. */
  async #stepsBetween(id: string, from: number, to: number): Promise<StoredStep[]> {
    const rows = await this.#store.query('SELECT idx, bars, participants, signals, opened FROM steps WHERE deployment_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx', [id, from, to]);
    return rows.map((row) => ({
      index: num(row.idx),
      bars: row.bars as StoredStep['bars'],
      participants: row.participants as StoredStep['participants'],
      signals: row.signals as StoredStep['signals'],
      opened: (row.opened ?? null) as StoredStep['opened'],
    }));
  }

  /**
   * Writes a closed step by one call of `tradeswarm_close_step` (migration 008): one round trip,
   * atomic by itself, its statements planned once per session. Lists go as JSON arrays; the venue
   * snapshot, when the step has one, as `venue` split it. With a fence, by one call of
   * `tradeswarm_close_step_fenced` (migration 009), which checks the lease first.
   * @returns the deployment's row as the step left it.
   * @throws LeaseLostError (from the fence) when this server no longer holds its lease: nothing was written.
   */
  async #writeStep(db: Queryable, id: string, step: ClosedStep, venue: SplitVenue | undefined): Promise<Row | undefined> {
    const args = [
      id,
      step.index,
      step.timeMs,
      JSON.stringify(step.submissions),
      JSON.stringify(step.signals),
      JSON.stringify(step.bars),
      JSON.stringify(step.participants),
      this.#now(),
      JSON.stringify(step.opened),
      JSON.stringify(step.orders),
      JSON.stringify(step.fills),
      step.fills.length > 0 ? JSON.stringify(step.account.positions) : null,
      step.account.equity,
      step.account.cash,
      JSON.stringify(step.checkpoints.map(({ agentId, resume }) => ({ agentId, replayFrom: resume.replayFrom, state: resume.state }))),
      JSON.stringify(step.snapshot),
      venue === undefined ? null : JSON.stringify(venue.stored),
      venue?.chunk === undefined ? null : JSON.stringify(venue.chunk),
    ];
    const fence = this.#fence;
    if (fence === undefined) {
      const [row] = await db.query(`SELECT * FROM tradeswarm_close_step(${closeStepParameters(1)})`, args);
      return row;
    }
    // With a fence, the lease's check and the step are one call (migration 009), not a transaction of four round trips.
    const claim = fence.claim();
    const [row] = await db.query(`SELECT * FROM tradeswarm_close_step_fenced($1, $2, $3, ${closeStepParameters(4)})`, [claim.name, claim.holder, claim.epoch, ...args]);
    const { lease_holder: holder, lease_epoch: epoch, lease_live: live, ...deployment } = row ?? {};
    // No row: the lease row is gone; confirm throws then, as when the lease is not this server's.
    fence.confirm(row === undefined ? undefined : { holder: str(holder), epoch: num(epoch), live: live === true });
    return deployment.id === null || deployment.id === undefined ? undefined : deployment;
  }

  /**
   * A venue snapshot as stored (its session's live state, with what its history chunks hold) and the
   * chunk written with it: what settled since the last one this repository wrote or read, else the
   * whole history (which replaces the stored chunks). Forgets the deployment's mark until the write
   * succeeds: after a failure, whose outcome may be unknown, the retry writes the history whole.
   */
  #splitVenue(id: string, venue: VenueSnapshot): SplitVenue {
    const split = splitSessionSnapshot(venue.session, this.#venueHistory.get(id) ?? NO_SESSION_HISTORY);
    this.#venueHistory.delete(id);
    return { stored: { ...venue, session: split.live, history: split.held }, chunk: split.chunk };
  }

  async #writeCheckpoints(tx: Queryable, id: string, checkpoints: ClosedStep['checkpoints'], step?: number): Promise<void> {
    for (const { agentId, resume } of checkpoints) {
      await tx.query(
        `INSERT INTO checkpoints (deployment_id, agent_id, step, replay_from, state, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (deployment_id, agent_id) DO UPDATE SET step = EXCLUDED.step, replay_from = EXCLUDED.replay_from, state = EXCLUDED.state, created_at_ms = EXCLUDED.created_at_ms`,
        [id, agentId, step ?? resume.replayFrom - 1, resume.replayFrom, resume.state, this.#now()],
      );
    }
  }

  /**
   * What a deployment is resumed from: its latest venue snapshot, if it has one, and the closed steps
   * from {@link REPLAY_CONTEXT_STEPS} before it on (else every closed step), its agents' latest
   * checkpoints, its last snapshot; `null` before its first step closed.
   */
  async replayOf(id: string): Promise<JournalReplay | null> {
    const [row] = await this.#store.query('SELECT d.snapshot, v.snapshot AS venue FROM deployments AS d LEFT JOIN venue_snapshots AS v ON v.deployment_id = d.id WHERE d.id = $1', [id]);
    if (row === undefined || row.snapshot === null) return null;
    const venue = row.venue === null || row.venue === undefined ? undefined : await this.#joinVenue(id, row.venue as StoredVenueSnapshot);
    const from = venue === undefined ? 0 : Math.max(0, venue.closedSteps - REPLAY_CONTEXT_STEPS);
    const rows = await this.#store.query('SELECT idx, time_ms, bars, participants, submissions, signals, opened FROM steps WHERE deployment_id = $1 AND idx >= $2 ORDER BY idx', [id, from]);
    let steps = rows.map(
      (step): JournaledStep => ({
        index: num(step.idx),
        timeMs: num(step.time_ms),
        bars: step.bars as JournaledStep['bars'],
        participants: step.participants as JournaledStep['participants'],
        submissions: step.submissions as JournaledStep['submissions'],
        signals: step.signals as JournaledStep['signals'],
        opened: (step.opened ?? null) as JournaledStep['opened'],
      }),
    );
    if (venue !== undefined) {
      // Steps before the snapshot are held again from the account they were published with: those stored
      // before it was (migration 006) have none, and the context starts after them.
      const last = steps.findLastIndex((step) => step.index < venue.closedSteps && step.opened === null);
      if (last >= 0) steps = steps.slice(last + 1);
    }
    const checkpoints = await this.#store.query('SELECT agent_id, replay_from, state FROM checkpoints WHERE deployment_id = $1', [id]);
    return {
      snapshot: row.snapshot as DeploymentSnapshot,
      steps,
      checkpoints: new Map(checkpoints.map((checkpoint): [string, Resume] => [str(checkpoint.agent_id), { replayFrom: num(checkpoint.replay_from), state: str(checkpoint.state) }])),
      ...(venue === undefined ? {} : { venue }),
    };
  }

  /**
   * A stored venue snapshot made whole again: its live session joined with its history chunks, in
   * order; one stored whole (before migration 008) as it is. Remembers what the chunks hold.
   */
  async #joinVenue(id: string, stored: StoredVenueSnapshot | VenueSnapshot): Promise<VenueSnapshot> {
    if (!('history' in stored)) {
      this.#venueHistory.delete(id);
      return stored;
    }
    const { history, ...venue } = stored;
    const chunks = (await this.#store.query('SELECT chunk FROM venue_chunks WHERE deployment_id = $1 ORDER BY closed_steps', [id])).map((chunk) => chunk.chunk as SessionHistoryChunk);
    const session = joinSessionSnapshot(venue.session, chunks, history);
    this.#venueHistory.set(id, history);
    return { ...venue, session };
  }

  /**
   * Stores a deployment's settlement (its positions closed when it was stopped with liquidation):
   * the fills, after its others, on `step`; its positions and equity as they are now. One transaction.
   */
  async settle(id: string, settlement: { readonly step: number; readonly fills: ClosedStep['fills']; readonly positions: ReadonlyArray<{ readonly symbol: string; readonly quantity: number }>; readonly equity: number }): Promise<void> {
    await this.#writeRow(
      id,
      async (tx) => {
        await this.#appendFills(tx, id, settlement.step, settlement.fills);
        await this.#replacePositions(tx, id, settlement.positions);
        return (await tx.query(`UPDATE deployments SET fills_count = fills_count + $2, equity = $3, updated_at_ms = $4 WHERE id = $1 RETURNING ${DEPLOYMENT_COLUMNS}`, [id, settlement.fills.length, settlement.equity, this.#now()]))[0];
      },
      true,
      settlement.positions,
    );
  }

  /** Appends `fills` after a deployment's others, on `step`, and marks the orders they fill (settlement fills have none). */
  async #appendFills(tx: Queryable, id: string, step: number, fills: ClosedStep['fills']): Promise<void> {
    // Numbered on from every fill the deployment has had, as a closed step numbers them (pruned ones count too).
    const [row] = await tx.query('SELECT fills_count FROM deployments WHERE id = $1', [id]);
    let seq = num(row?.fills_count ?? 0) - 1;
    for (const fill of fills) {
      seq += 1;
      await tx.query('INSERT INTO fills (deployment_id, seq, client_order_id, step, symbol, side, quantity, price, fee, time_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', [
        id,
        seq,
        fill.clientOrderId,
        step,
        fill.symbol,
        fill.side,
        fill.quantity,
        fill.price,
        fill.fee,
        fill.timeMs,
      ]);
      await tx.query("UPDATE orders SET status = 'filled' WHERE deployment_id = $1 AND client_order_id = $2", [id, fill.clientOrderId]);
    }
  }

  /** A deployment's positions, as they are now. */
  async #replacePositions(tx: Queryable, id: string, positions: ReadonlyArray<{ readonly symbol: string; readonly quantity: number }>): Promise<void> {
    await tx.query('DELETE FROM positions WHERE deployment_id = $1', [id]);
    for (const position of positions) await tx.query('INSERT INTO positions (deployment_id, symbol, quantity) VALUES ($1, $2, $3)', [id, position.symbol, position.quantity]);
  }

  /** The report a deployment ended with; `null` while it runs. */
  async report(id: string): Promise<SwarmReport | null> {
    if (this.#cache?.hasReport(id) === false) return null;
    const [row] = await this.#store.query('SELECT report FROM deployments WHERE id = $1', [id]);
    return (row?.report ?? null) as SwarmReport | null;
  }

  /**
   * Deletes what is older than its environment keeps (`retentionMs` by env): an ended deployment
   * whose last change is older goes whole (its spec, orders, fills, steps, events); a running one
   * loses its older events, orders, fills and equity points, and the older steps a restart no longer
   * reads (those before its venue snapshot's context and every agent's checkpoint); it keeps its
   * checkpoints, and every step while it has no venue snapshot. One transaction.
   * @returns how many deployments and rows went.
   */
  async prune(retentionMs: Readonly<Record<string, number>>, nowMs: number): Promise<{ readonly deployments: number; readonly rows: number }> {
    // A prune whose outcome is unknown leaves the cache unsure of which deployments went.
    const pruned = await this.#write(async (tx) => {
      const deployments: string[] = [];
      let rows = 0;
      for (const [env, keepMs] of Object.entries(retentionMs)) {
        const before = nowMs - keepMs;
        for (const row of await tx.query("DELETE FROM deployments WHERE env = $1 AND desired = 'stopped' AND updated_at_ms < $2 RETURNING id", [env, before])) deployments.push(str(row.id));
        const running = "SELECT id FROM deployments WHERE env = $1 AND desired = 'running'";
        rows += (await tx.query(`DELETE FROM events WHERE deployment_id IN (${running}) AND at_ms < $2 RETURNING id`, [env, before])).length;
        rows += (await tx.query(`DELETE FROM orders WHERE deployment_id IN (${running}) AND created_at_ms < $2 RETURNING 1`, [env, before])).length;
        // Fills and equity points carry the market's time: their age is that of the step they closed with.
        for (const table of ['fills', 'equity']) {
          rows += (
            await tx.query(
              `DELETE FROM ${table} AS t USING steps AS s WHERE t.deployment_id = s.deployment_id AND t.step = s.idx AND s.closed_at_ms < $2 AND t.deployment_id IN (${running}) RETURNING 1`,
              [env, before],
            )
          ).length;
        }
        // Steps no restart reads again: before its venue snapshot's context and the checkpoint of every agent a restart
        // replays, not of one gone for good as its last snapshot says (then after the fills and equity points dated by them).
        rows += (
          await tx.query(
            `DELETE FROM steps AS s USING venue_snapshots AS v, deployments AS d
             WHERE s.deployment_id = v.deployment_id AND d.id = s.deployment_id AND s.deployment_id IN (${running}) AND s.closed_at_ms < $2 AND s.idx < v.closed_steps - $3
               AND s.idx < COALESCE((
                 SELECT MIN(c.replay_from) FROM checkpoints AS c
                 WHERE c.deployment_id = s.deployment_id
                   AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE(d.snapshot -> 'agents', '[]'::jsonb)) AS a WHERE a ->> 'id' = c.agent_id AND a ->> 'lifecycle' = 'gone')
               ), 0)
             RETURNING 1`,
            [env, before, REPLAY_CONTEXT_STEPS],
          )
        ).length;
      }
      return { deployments, rows };
    }, true).catch((error: unknown) => {
      this.#cache?.clear();
      this.#events?.clear();
      throw error;
    });
    this.#cache?.remove(pruned.deployments);
    for (const id of pruned.deployments) this.#venueHistory.delete(id);
    // Old events of running deployments went too.
    this.#events?.clear();
    return { deployments: pruned.deployments.length, rows: pruned.rows };
  }

  /** Stores a swarm event as it happens. */
  swarmEvent(id: string, event: SwarmEvent): Promise<void> {
    return this.appendEvent(id, { kind: event.kind, step: event.atStep, agentId: event.agent, detail: event.detail });
  }
}
