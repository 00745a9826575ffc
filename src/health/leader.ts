import { type Clock, InvalidInputError, type Logger, type TimerHandle, TradeswarmError, errorMessage, silentLogger, wholeNumber } from '../core/index.js';
import type { Queryable, Store } from '../store/index.js';
import { LeaseLostError } from './errors.js';

/**
 * Where an elector stands:
 * - `idle`: made, not started;
 * - `follower`: another process holds the lease (or none does yet); it tries to take it when it expires;
 * - `leader`: it holds the lease and renews it;
 * - `closed`: it stopped, and released the lease if it held it.
 */
export type ElectionState = 'idle' | 'follower' | 'leader' | 'closed';

/** What moves an elector. */
export type ElectionEvent = 'start' | 'elected' | 'deposed' | 'close';

/** The only moves an elector makes. */
const ELECTION_TRANSITIONS: { readonly [S in ElectionState]: Partial<Readonly<Record<ElectionEvent, ElectionState>>> } = {
  idle: { start: 'follower', close: 'closed' },
  follower: { elected: 'leader', close: 'closed' },
  leader: { deposed: 'follower', close: 'closed' },
  closed: {},
};

/** An elector was asked to do what its state does not allow (start twice, start after close). */
export class ElectionStateError extends TradeswarmError {
  override readonly name = 'ElectionStateError';

  constructor(
    readonly state: ElectionState,
    readonly event: ElectionEvent,
  ) {
    super(`a leader election that is ${state} cannot ${event}; ${state === 'closed' ? 'make a new one' : 'it runs already'}`);
  }
}

/**
 * The state after `event` in `state`.
 * @throws ElectionStateError when the table lists no such move.
 */
export function electionTransition(state: ElectionState, event: ElectionEvent): ElectionState {
  const next = ELECTION_TRANSITIONS[state][event];
  if (next === undefined) throw new ElectionStateError(state, event);
  return next;
}

/** How long a leader's lease runs unless renewed, by default: a follower takes over this long after the leader died at the latest. */
export const DEFAULT_LEASE_TTL_MS = 3_000;

/** The lease as the store holds it. Times are the database's. */
export interface LeaseView {
  /** Who holds (or last held) it. */
  readonly holder: string;
  /** Raised at every takeover: the fencing token of the holder's writes. */
  readonly epoch: number;
  /** Where the holder's API answers, as it advertised it; `null` when it gave none. */
  readonly url: string | null;
  readonly acquiredAt: Date;
  readonly expiresAt: Date;
  /** How long it still runs by the database's clock, in ms; 0 once it expired (the lease is free). */
  readonly remainingMs: number;
}

/**
 * What a writer checks first in each of its transactions: that it may still write. Implemented by
 * {@link LeaderElection}; the control plane's repository calls it.
 */
/** The lease row a fenced write must find: see {@link WriteFence.claim}. */
export interface LeaseClaim {
  readonly name: string;
  readonly holder: string;
  readonly epoch: number;
}

/** The lease row as a fenced write found it. */
export interface LeaseFound {
  readonly holder: string;
  readonly epoch: number | string;
  readonly live: boolean;
}

export interface WriteFence {
  /**
   * Checks, inside `tx`, that this process still holds the lease at its epoch and that the lease has
   * not expired, and keeps the lease row locked (`FOR SHARE`) until `tx` ends, so no other process
   * takes the lease over before `tx` committed or rolled back. PostgreSQL ends `tx` (and its lock)
   * when it waits longer than the lease's ttl for its next statement: a writer paused mid-transaction
   * holds a takeover back no longer than its lease would.
   * @throws LeaseLostError when it does not hold it (and the elector is then deposed).
   */
  check(tx: Queryable): Promise<void>;
  /**
   * What a statement that checks the lease itself needs (one that writes in a single round trip, as
   * `tradeswarm_close_step_fenced` does): the lease's name and the holder and epoch it must find.
   * Checks first what {@link check} checks without asking the database.
   * @throws LeaseLostError when it does not lead, or its lease may have expired (and it is deposed).
   */
  claim(): LeaseClaim;
  /**
   * Checks the lease row as a statement found it (`undefined`: none) against what {@link claim} said it
   * must be: its own, at its epoch, and live.
   * @throws LeaseLostError saying why when it is not (and it is deposed, as {@link check} does).
   */
  confirm(found: LeaseFound | undefined): void;
  /**
   * Whether this process may still act as the leader, without asking the database: it leads and its
   * last confirmed renewal is less than the lease's ttl ago on its clock. A process woken after a
   * pause past its lease learns at once that it must not act (and is deposed), before any timer of
   * its own moves a sandbox or publishes a step.
   */
  holds(): boolean;
}

/** Options of a {@link LeaderElection}. */
export interface LeaderElectionOptions {
  /** The database the lease row is kept in: every elector of one lease uses the same database (and schema). */
  readonly store: Store;
  /** Unique among the electors of one lease; the CLI uses `<host>:<pid>:<random>`. */
  readonly holder: string;
  /**
   * Which lease: electors of one name compete, other names do not.
   * @default 'control-plane'
   */
  readonly name?: string;
  /** Where this process's API answers, stored with the lease while it leads, for followers to point clients at. */
  readonly url?: string;
  /**
   * How long a lease runs after it was taken or renewed, by the database's clock: a leader that dies
   * is replaced this long after its last renewal at the latest. At least 300.
   * @default DEFAULT_LEASE_TTL_MS
   */
  readonly ttlMs?: number;
  /**
   * How often the leader renews it, and the longest a follower waits between two looks. Below `ttlMs`.
   * @default a third of ttlMs
   */
  readonly renewEveryMs?: number;
  /** Drives the renewals and the followers' looks (the lease's expiry is the database's). */
  readonly clock: Clock;
  /** @default silentLogger */
  readonly logger?: Logger;
  /**
   * This process took the lease. Renewal goes on meanwhile; a later {@link onDeposed} is called only
   * after the promise settled.
   */
  readonly onElected?: (lease: LeaseView) => void | Promise<void>;
  /**
   * This process lost the lease: another took it, it expired before it was renewed, or the database
   * did not confirm a renewal within the ttl. It is a follower again, and tries to take the lease
   * again only after the promise settled (stop everything it did as leader first).
   */
  readonly onDeposed?: (reason: string) => void | Promise<void>;
  /** A follower saw who leads change (`null`: nobody holds an unexpired lease). */
  readonly onLeaderSeen?: (lease: LeaseView | null) => void;
}

/** {@link LeaderElectionOptions}, checked and completed. */
interface LeaderElectionConfig {
  readonly name: string;
  readonly holder: string;
  readonly url: string | null;
  readonly ttlMs: number;
  readonly renewEveryMs: number;
}

/** Checks and completes the options. @throws InvalidInputError naming the field. */
function compileLeaderElectionOptions(options: LeaderElectionOptions): LeaderElectionConfig {
  const ttlMs = wholeNumber('ttlMs', options.ttlMs ?? DEFAULT_LEASE_TTL_MS, 300);
  const renewEveryMs = wholeNumber('renewEveryMs', options.renewEveryMs ?? Math.floor(ttlMs / 3), 10, ttlMs - 1);
  const name = options.name ?? 'control-plane';
  if (name === '') throw new InvalidInputError('name', 'must be a non-empty lease name, or left out for control-plane');
  if (options.holder === '') throw new InvalidInputError('holder', 'must name this process, uniquely among the electors of the lease');
  return { name, holder: options.holder, url: options.url ?? null, ttlMs, renewEveryMs };
}

/** The columns a {@link LeaseView} is read from. */
const LEASE_COLUMNS = 'holder, epoch, url, acquired_at, expires_at, GREATEST(0, EXTRACT(EPOCH FROM expires_at - now()) * 1000)::float8 AS remaining_ms';

function leaseOf(row: Record<string, unknown>): LeaseView {
  return {
    holder: row.holder as string,
    epoch: Number(row.epoch),
    url: typeof row.url === 'string' ? row.url : null,
    acquiredAt: row.acquired_at as Date,
    expiresAt: row.expires_at as Date,
    remainingMs: Number(row.remaining_ms),
  };
}

/** A follower looks again this long after the lease's expiry, by the database's count. */
const EXPIRY_MARGIN_MS = 5;

/**
 * Leader election through the store (DESIGN decision 11): one row of `control_plane_lease` per
 * lease. A follower takes the lease, in one statement, when it is free or expired, by the database's
 * `now()` (never a process's clock), raising its `epoch`; the leader renews it every `renewEveryMs`
 * and releases it on {@link close}. A follower looks again when the lease would expire (as the
 * database counts), and at least every `renewEveryMs`.
 *
 * The epoch fences the leader's writes ({@link check}): a leader that lost the lease (paused,
 * partitioned, or slow to notice) cannot commit another write. It learns it lost at its next
 * renewal or fenced write, or when `ttlMs` passed on its clock since its last confirmed renewal.
 */
export class LeaderElection implements WriteFence {
  readonly #options: LeaderElectionOptions;
  readonly #config: LeaderElectionConfig;
  readonly #logger: Logger;
  #state: ElectionState = 'idle';
  #lease: LeaseView | undefined;
  /** When (on this process's clock) the latest renewal that succeeded was sent: the lease runs at least `ttlMs` from it. */
  #confirmedAtMs = 0;
  #timer: TimerHandle | undefined;
  /** The look or renewal under way. */
  #tick: Promise<void> = Promise.resolve();
  /** The handlers, called one after the other. */
  #handlers: Promise<void> = Promise.resolve();
  /** What the latest look saw (`undefined`: none yet). */
  #seen: LeaseView | null | undefined;
  /** The epoch this process last held the lease at (0: never), for refusals. */
  #heldEpoch = 0;

  /** @throws InvalidInputError naming the option at fault. */
  constructor(options: LeaderElectionOptions) {
    this.#options = options;
    this.#config = compileLeaderElectionOptions(options);
    this.#logger = options.logger ?? silentLogger;
  }

  get state(): ElectionState {
    return this.#state;
  }

  /** The lease while this process holds it. */
  get lease(): LeaseView | undefined {
    return this.#lease;
  }

  /** The lease as last seen: this process's while it leads, else the holder's a follower saw at its latest look (`null`: free). */
  get seen(): LeaseView | null {
    return this.#lease ?? this.#seen ?? null;
  }

  /** This process, as it holds leases. */
  get holder(): string {
    return this.#config.holder;
  }

  get ttlMs(): number {
    return this.#config.ttlMs;
  }

  /**
   * Starts competing: tries to take the lease at once, then as a follower or leader would.
   * @throws ElectionStateError when it was started or closed before.
   */
  start(): void {
    this.#move('start');
    this.#run(() => this.#look());
  }

  /** The lease as the store holds it now; `null` when none was ever taken. */
  async current(): Promise<LeaseView | null> {
    const [row] = await this.#options.store.query(`SELECT ${LEASE_COLUMNS} FROM control_plane_lease WHERE name = $1`, [this.#config.name]);
    return row === undefined ? null : leaseOf(row);
  }

  holds(): boolean {
    if (this.#state !== 'leader' || this.#lease === undefined) return false;
    if (this.#options.clock.now() - this.#confirmedAtMs < this.#config.ttlMs) return true;
    this.#depose(`no renewal was confirmed for ${this.#config.ttlMs} ms (lease.ttlMs), so it may have expired`);
    return false;
  }

  async check(tx: Queryable): Promise<void> {
    const claim = this.claim();
    // The row stays locked until `tx` ends; a process paused inside `tx` would hold every takeover
    // back, so the server ends `tx` when it waits longer than the ttl for its next statement.
    const [row] = await tx.query<{ holder: string; epoch: number; live: boolean }>(
      `SELECT holder, epoch, expires_at > statement_timestamp() AS live, set_config('idle_in_transaction_session_timeout', $2, true)
       FROM control_plane_lease WHERE name = $1 FOR SHARE`,
      [claim.name, String(this.#config.ttlMs)],
    );
    this.confirm(row);
  }

  claim(): LeaseClaim {
    const lease = this.#lease;
    if (this.#state !== 'leader' || lease === undefined) throw this.#refusal(this.#heldEpoch, this.#state === 'closed' ? 'its election was closed' : 'it is a follower');
    if (this.#options.clock.now() - this.#confirmedAtMs >= this.#config.ttlMs) {
      const reason = `no renewal was confirmed for ${this.#config.ttlMs} ms (lease.ttlMs), so it may have expired`;
      this.#depose(reason);
      throw this.#refusal(lease.epoch, reason);
    }
    return { name: this.#config.name, holder: this.#config.holder, epoch: lease.epoch };
  }

  confirm(found: LeaseFound | undefined): void {
    const epoch = this.#lease?.epoch ?? this.#heldEpoch;
    const ours = found !== undefined && found.holder === this.#config.holder && Number(found.epoch) === epoch;
    if (ours && found.live) return;
    const reason = found === undefined ? 'the lease row is gone' : ours ? 'it expired before it was renewed' : `${found.holder} took it (epoch ${Number(found.epoch)})`;
    this.#depose(reason);
    throw this.#refusal(epoch, reason);
  }

  /**
   * Stops competing: no more looks or renewals; a leader releases the lease (it expires now, so a
   * follower takes it at its next look). Stop what was done as leader first: writes after this are
   * refused. It waits for the handlers under way: a handler may call it, but not wait for it.
   */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const wasLeader = this.#state === 'leader' ? this.#lease : undefined;
    this.#move('close');
    this.#lease = undefined;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    await this.#tick;
    await this.#handlers;
    if (wasLeader === undefined) return;
    try {
      await this.#options.store.query('UPDATE control_plane_lease SET expires_at = now() WHERE name = $1 AND holder = $2 AND epoch = $3', [this.#config.name, this.#config.holder, wasLeader.epoch]);
      this.#logger.info({ lease: this.#config.name, epoch: wasLeader.epoch }, 'released the lease');
    } catch (error) {
      this.#logger.warn({ lease: this.#config.name, err: errorMessage(error) }, `could not release the lease; it expires within ${this.#config.ttlMs} ms`);
    }
  }

  #refusal(epoch: number, reason: string): LeaseLostError {
    return new LeaseLostError(this.#config.name, this.#config.holder, epoch, reason);
  }

  #move(event: ElectionEvent): void {
    this.#state = electionTransition(this.#state, event);
  }

  /** Runs `step` once the one under way is done, unless the election closed. */
  #run(step: () => Promise<void>): void {
    this.#tick = this.#tick.then(async () => {
      if (this.#state === 'closed') return;
      try {
        await step();
      } catch (error) {
        this.#logger.warn({ lease: this.#config.name, err: errorMessage(error) }, 'the lease could not be read or written; trying again');
        this.#schedule(Math.min(this.#config.renewEveryMs, 500));
      }
    });
  }

  #schedule(delayMs: number): void {
    if (this.#state === 'closed') return;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#run(() => (this.#state === 'leader' ? this.#renew() : this.#look()));
    }, delayMs);
  }

  /** A follower's look: takes the lease if it is free or expired, else notes who holds it until when. */
  async #look(): Promise<void> {
    // Not before what it did as leader has stopped (the handler of its deposition).
    await this.#handlers;
    if (this.#state !== 'follower') return;
    const { name, holder, url, ttlMs, renewEveryMs } = this.#config;
    const sentAtMs = this.#options.clock.now();
    const [taken] = await this.#options.store.query(
      `INSERT INTO control_plane_lease AS lease (name, holder, epoch, url, acquired_at, expires_at)
         VALUES ($1, $2, 1, $3, now(), now() + $4::float8 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = lease.epoch + 1, url = EXCLUDED.url, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
         WHERE lease.expires_at <= now()
       RETURNING ${LEASE_COLUMNS}`,
      [name, holder, url, ttlMs],
    );
    if (this.#state !== 'follower') return;
    if (taken !== undefined) {
      this.#lease = leaseOf(taken);
      this.#heldEpoch = this.#lease.epoch;
      this.#confirmedAtMs = sentAtMs;
      this.#seen = this.#lease;
      this.#move('elected');
      this.#logger.info({ lease: name, epoch: this.#lease.epoch }, 'took the lease: leading');
      this.#schedule(renewEveryMs);
      const lease = this.#lease;
      this.#handle(() => this.#options.onElected?.(lease));
      return;
    }
    const current = await this.current();
    const live = current !== null && current.remainingMs > 0 ? current : null;
    const news = this.#seen === undefined || live?.holder !== this.#seen?.holder || live?.epoch !== this.#seen?.epoch;
    this.#seen = live;
    if (news) this.#options.onLeaderSeen?.(live);
    this.#schedule(live === null ? 0 : Math.min(renewEveryMs, live.remainingMs + EXPIRY_MARGIN_MS));
  }

  /** The leader's renewal: the lease runs `ttlMs` from now, if it is still this process's and unexpired. */
  async #renew(): Promise<void> {
    const lease = this.#lease;
    if (this.#state !== 'leader' || lease === undefined) return;
    const { name, holder, ttlMs, renewEveryMs } = this.#config;
    const sentAtMs = this.#options.clock.now();
    let renewed: Record<string, unknown> | undefined;
    try {
      [renewed] = await this.#options.store.query(
        `UPDATE control_plane_lease SET expires_at = now() + $4::float8 * interval '1 millisecond'
         WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now() RETURNING ${LEASE_COLUMNS}`,
        [name, holder, lease.epoch, ttlMs],
      );
    } catch (error) {
      if (this.#options.clock.now() - this.#confirmedAtMs < ttlMs) throw error;
      this.#depose(`the database did not confirm a renewal for ${ttlMs} ms (${errorMessage(error)})`);
      return;
    }
    if (this.#state !== 'leader') return;
    if (renewed === undefined) {
      const current = await this.current().catch(() => null);
      this.#depose(current === null || (current.holder === holder && current.epoch === lease.epoch) ? 'it expired before it was renewed' : `${current.holder} took it (epoch ${current.epoch})`);
      return;
    }
    this.#lease = leaseOf(renewed);
    this.#confirmedAtMs = sentAtMs;
    this.#schedule(renewEveryMs);
  }

  /** This process lost the lease: a follower again, once the handler of the loss settled. */
  #depose(reason: string): void {
    if (this.#state !== 'leader') return;
    const epoch = this.#lease?.epoch;
    this.#move('deposed');
    this.#lease = undefined;
    this.#seen = undefined;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#logger.warn({ lease: this.#config.name, epoch, reason }, 'lost the lease: following');
    this.#handle(() => this.#options.onDeposed?.(reason));
    void this.#handlers.then(() => this.#schedule(this.#config.renewEveryMs));
  }

  #handle(handler: () => void | Promise<void>): void {
    this.#handlers = this.#handlers.then(handler).catch((error: unknown) => this.#logger.error({ lease: this.#config.name, err: errorMessage(error) }, 'a leadership handler failed'));
  }
}
