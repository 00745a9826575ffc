import { errorMessage } from '../core/index.js';
import { LeaderElection, type LeaseView, isLeaseLostError } from '../health/index.js';
import { ControlPlane, type ControlPlaneOptions } from './controlplane.js';
import { type LeaderPointer, NotLeaderError } from './errors.js';

/** What a server is: the one that runs deployments, or one that waits to take over. */
export type ServerRole = 'leader' | 'follower';

/** A change of a server's role, as {@link ElectedControlPlane} tells it. */
export type RoleChange =
  /** It took the lease and resumed every deployment that was running (their names). */
  | { readonly role: 'leader'; readonly epoch: number; readonly resumed: readonly string[] }
  /** It took the lease but the control plane could not start: it released the lease and left the election. */
  | { readonly role: 'leader'; readonly epoch: number; readonly failed: string }
  /** It follows `leader` (null: nobody holds the lease now); `deposed` says why, when it led until now. */
  | { readonly role: 'follower'; readonly leader: LeaderPointer | null; readonly deposed?: string };

/** Options of {@link ElectedControlPlane.start}: the control plane's, and the election's. */
export interface ElectedControlPlaneOptions extends Omit<ControlPlaneOptions, 'fence'> {
  /** This server, unique among those that share the store; the CLI uses `<host>:<pid>:<random>`. */
  readonly holder: string;
  /** Where this server's API answers, shown by followers while it leads. */
  readonly url: string;
  /** How long the lease runs unless renewed (see LeaderElection). @default 3000 */
  readonly ttlMs?: number;
  /** Told at every change of role. */
  readonly onRoleChange?: (change: RoleChange) => void;
}

/** What `/healthz` says of a server that shares its store with others. */
export interface ServerHealth {
  readonly role: ServerRole;
  /** The server that leads (this one, when it does), as last seen; `null` when none does. */
  readonly leader: LeaderPointer | null;
}

function pointerOf(lease: LeaseView | null): LeaderPointer | null {
  return lease === null ? null : { holder: lease.holder, url: lease.url, epoch: lease.epoch, expiresAt: lease.expiresAt.toISOString() };
}

/**
 * A control plane that runs only while its server leads the others on one PostgreSQL (DESIGN
 * decision 11). Every server competes for the lease (see LeaderElection); the leader starts the
 * {@link ControlPlane}, which resumes every deployment from the store, and writes under the lease's
 * fence. When it loses the lease (another server took it after it expired: the process was paused,
 * cut off from the database, or too slow to renew), every deployment stops here at once, nothing more
 * is written, and the server follows again. A follower answers the API with {@link NotLeaderError}
 * (503, naming the leader and its URL) and takes over when the leader's lease expires.
 */
export class ElectedControlPlane {
  readonly #options: ElectedControlPlaneOptions;
  readonly #election: LeaderElection;
  #plane: ControlPlane | undefined;
  #closing = false;

  private constructor(options: ElectedControlPlaneOptions) {
    this.#options = options;
    this.#election = new LeaderElection({
      store: options.store,
      holder: options.holder,
      url: options.url,
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
      clock: options.clock,
      logger: options.logger.child({ part: 'leader' }),
      onElected: (lease) => this.#lead(lease),
      onDeposed: (reason) => this.#follow(reason),
      onLeaderSeen: (lease) => options.onRoleChange?.({ role: 'follower', leader: pointerOf(lease) }),
    });
  }

  /**
   * Joins the election: this server leads at once if no other does, else follows.
   * @throws InvalidInputError naming `ttlMs` or `holder`.
   */
  static start(options: ElectedControlPlaneOptions): ElectedControlPlane {
    const elected = new ElectedControlPlane(options);
    elected.#election.start();
    return elected;
  }

  get role(): ServerRole {
    return this.#plane === undefined ? 'follower' : 'leader';
  }

  /** The lease's ttl, in ms. */
  get ttlMs(): number {
    return this.#election.ttlMs;
  }

  /**
   * The control plane, while this server leads and it has started.
   * @throws NotLeaderError naming the server that leads and its URL.
   */
  controlPlane(): ControlPlane {
    if (this.#plane !== undefined) return this.#plane;
    throw new NotLeaderError(this.#leader());
  }

  health(): ServerHealth {
    return { role: this.role, leader: this.#leader() };
  }

  /**
   * Leaves the election: a leader's deployments drain and are suspended (they resume on the server
   * that leads next), then the lease is released so a follower takes over at its next look.
   */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#plane?.close();
    await this.#election.close();
    // A control plane that was starting as the close began has been closed by its own start.
    this.#plane = undefined;
  }

  #leader(): LeaderPointer | null {
    const seen = this.#election.seen;
    return pointerOf(seen !== null && (this.#election.state === 'leader' || seen.remainingMs > 0) ? seen : null);
  }

  async #lead(lease: LeaseView): Promise<void> {
    const { onRoleChange, logger } = this.#options;
    let plane: ControlPlane;
    try {
      plane = await ControlPlane.start({ ...this.#options, fence: this.#election });
    } catch (error) {
      if (isLeaseLostError(error)) return;
      // Another server may do better: the lease is released, and this one stops competing.
      logger.error({ err: errorMessage(error) }, 'took the lease but the control plane could not start; released it');
      void this.#election.close();
      onRoleChange?.({ role: 'leader', epoch: lease.epoch, failed: errorMessage(error) });
      return;
    }
    if (this.#closing) {
      await plane.close();
      return;
    }
    this.#plane = plane;
    const resumed = (await plane.list().catch(() => [])).filter((view) => view.desired === 'running').map((view) => view.name);
    onRoleChange?.({ role: 'leader', epoch: lease.epoch, resumed });
  }

  async #follow(reason: string): Promise<void> {
    const plane = this.#plane;
    this.#plane = undefined;
    await plane?.stepDown(reason);
    this.#options.onRoleChange?.({ role: 'follower', leader: null, deposed: reason });
  }
}
