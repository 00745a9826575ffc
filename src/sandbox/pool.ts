import {
  InvalidInputError,
  SystemClock,
  createLogger,
  errorChain,
  errorMessage,
  randomId,
  wholeNumber,
  type Clock,
  type Logger,
  type TimerHandle,
} from '../core/index.js';
import { procLiveness, type ProcessLiveness } from './liveness.js';
import { SandboxOwner, tagValue, type SandboxDirectory } from './ownership.js';
import type { CreateSandboxOptions, Sandbox } from './provider.js';
import {
  PoolAcquireAbortedError,
  PoolClosedError,
  SandboxBuildMismatchError,
  SandboxNetworkMismatchError,
  SandboxUnavailableError,
  type SandboxUnavailableReason,
} from './errors.js';

/** Metadata key holding the pool's `poolId` (which run of the pool created the sandbox). */
export const POOL_ID_METADATA_KEY = 'tradeswarm-pool-id';

/**
 * What the pool needs of a sandbox: the parts of a provider's {@link Sandbox} it calls. That
 * `Sandbox` satisfies it; tests use fakes.
 */
export interface PoolSandbox {
  readonly sandboxId: string;
  /** Ends the sandbox. */
  kill(): Promise<unknown>;
  /** Sets the sandbox's remaining lifetime, counted from now. */
  setTimeout(timeoutMs: number): Promise<void>;
  readonly files: { read(path: string): Promise<string> };
  /** What the provider says of the sandbox; `allowInternetAccess` left out means it was not set (the provider's default: access). */
  getInfo(): Promise<{ readonly allowInternetAccess?: boolean | undefined }>;
}

/**
 * What the pool needs of a provider: making sandboxes, and listing and killing them by id for the
 * clean-up in `start()`. A {@link SandboxProvider} fits (its rate limits then apply to the pool's
 * creations); tests use fakes.
 */
export interface PoolProvider<S extends PoolSandbox> extends SandboxDirectory {
  /**
   * Makes one sandbox. The pool asks for its `template`, its tags (owner, `poolId` and process, see
   * {@link SandboxOwner}), its `sandboxTimeoutMs` as `timeoutMs` and its `allowInternetAccess`.
   */
  create(options: CreateSandboxOptions): Promise<S>;
}

/**
 * Options for {@link SandboxPool}. Everything but `provider` is optional; units are in the names.
 * @typeParam S the sandbox type the provider makes.
 */
export interface SandboxPoolOptions<S extends PoolSandbox = Sandbox> {
  /** Where sandboxes come from: `createSandboxProvider({ connection })`, whose rate limits then pace the pool's creations. */
  provider: PoolProvider<S>;
  /**
   * Template (name or id) every sandbox is created from.
   * @default 'code-interpreter-v1'
   */
  template?: string;
  /**
   * Sandboxes `start()` creates and waits for, and the floor the pool shrinks to after `idleShrinkAfterMs`
   * without demand. A whole number >= 0, at most `targetSize`.
   * @default 2, or `targetSize` when that is smaller
   */
  minSize?: number;
  /**
   * Sandboxes `start()` waits for before it resolves; it goes on creating the rest of `minSize` in the
   * background. A whole number from 0 to `minSize`.
   * @default `minSize`
   */
  readyOnStart?: number;
  /**
   * Sandboxes kept warm (idle + busy) while there is demand. A whole number, `minSize` to `maxSize`.
   * @default 3, or `maxSize` when that is smaller
   */
  targetSize?: number;
  /**
   * Most sandboxes at once, counting ones being created; further `acquire()` calls wait. A whole number >= 1.
   * @default 10
   */
  maxSize?: number;
  /**
   * Leases one sandbox serves; after the last one it is killed on release. A whole number >= 1.
   * @default 50
   */
  maxExecutionsPerSandbox?: number;
  /**
   * Age (from creation) at which a sandbox is retired: at once when idle, on release when leased.
   * A number > 0, or `Infinity` for no limit.
   * @default 3_600_000 (1 h)
   */
  maxAgeMs?: number;
  /**
   * The sandbox lifetime asked of the provider at creation. The pool extends it (`sandbox.setTimeout`)
   * when a third of it is left, for idle and leased sandboxes alike, so a sandbox the pool still holds
   * never expires; one the pool lost track of (crash) dies on its own within this time.
   * A whole number from 10_000 to 86_400_000.
   * @default 900_000 (15 min)
   */
  sandboxTimeoutMs?: number;
  /**
   * The build tag expected in every new sandbox, in the file at `buildTagPath` (compared after trimming
   * whitespace). A sandbox whose tag is missing or different is killed before use and counted in
   * `rejectedWrongBuild`. Unset: no check.
   * @default undefined
   */
  buildTag?: string;
  /**
   * Absolute path of the build tag file inside the sandbox.
   * @default '/home/user/.tradeswarm-build'
   */
  buildTagPath?: string;
  /**
   * Whether the pool's sandboxes may reach the network. False asks the provider for a sandbox without
   * it: on the local cloud an empty network namespace (loopback only: not even the host's 127.0.0.1),
   * on E2B cloud all egress denied. True lets code reach whatever the sandbox's host reaches (on the
   * local cloud, every service listening on this machine, the local cloud's API included). Every new
   * sandbox is checked: one whose provider reports another setting (`getInfo()`; not reported counts
   * as access, the providers' default) is killed unused and counted in `rejectedWrongNetwork`.
   * @default false
   */
  allowInternetAccess?: boolean;
  /**
   * Failed creations (error or failed health check) in a row after which a waiting `acquire()` (or
   * `start()`) rejects with `SandboxUnavailableError`, and background filling pauses until a creation
   * succeeds. A whole number >= 1.
   * @default 3
   */
  maxCreateAttempts?: number;
  /**
   * How long demand (busy + waiting + queue depth) must stay at zero before idle sandboxes are shrunk
   * from `targetSize` to `minSize`. A number >= 0, or `Infinity` to stay at `targetSize`.
   * @default 300_000 (5 min)
   */
  idleShrinkAfterMs?: number;
  /**
   * Value of the {@link POOL_ID_METADATA_KEY} tag on this pool's sandboxes. 1-64 letters, digits, `.`, `_`, `-`.
   * @default a random id
   */
  poolId?: string;
  /**
   * Value of the {@link POOL_OWNER_METADATA_KEY} tag. `start()` kills the sandboxes with this owner that
   * the pool does not hold and whose pool's process has ended (see `liveness`); those of a pool that
   * still runs, or that ran on another machine, are left alone. Same characters as `poolId`.
   * @default 'tradeswarm-exec'
   */
  owner?: string;
  /**
   * Tells whether the process that made a sandbox still runs (leak cleanup in `start()`).
   * @default from Linux's /proc: this boot, this pid namespace, pid and start time
   */
  liveness?: ProcessLiveness;
  /** @default new SystemClock() */
  clock?: Clock;
  /**
   * Readies a new sandbox before its health check and before anyone leases it (the exec service starts
   * its interpreters here). A sandbox it throws for is killed, and its creation counts as failed.
   * @default nothing
   */
  prepare?: (sandbox: S) => Promise<void>;
  /** @default createLogger('sandbox-pool') */
  logger?: Logger;
}

/** {@link SandboxPoolOptions} with every default applied and every value checked. */
export interface SandboxPoolConfig<S extends PoolSandbox = Sandbox> {
  readonly provider: PoolProvider<S>;
  readonly template: string;
  readonly minSize: number;
  readonly readyOnStart: number;
  readonly targetSize: number;
  readonly maxSize: number;
  readonly maxExecutionsPerSandbox: number;
  readonly maxAgeMs: number;
  readonly sandboxTimeoutMs: number;
  readonly buildTag: string | undefined;
  readonly buildTagPath: string;
  readonly allowInternetAccess: boolean;
  readonly maxCreateAttempts: number;
  readonly idleShrinkAfterMs: number;
  readonly poolId: string;
  readonly owner: string;
  readonly clock: Clock;
  readonly prepare: ((sandbox: S) => Promise<void>) | undefined;
  readonly liveness: ProcessLiveness;
  readonly logger: Logger;
}

/** How a leased execution ended. */
export type LeaseOutcome =
  /** The code ran (its own errors included); the sandbox goes back to the pool. */
  | 'ok'
  /** The execution failed (e.g. timed out) but the sandbox answers; it goes back to the pool. */
  | 'failed'
  /** The sandbox misbehaved (gone, unresponsive, state unknown): it is killed and replaced. */
  | 'broken';

/** One sandbox, leased to one caller until {@link Lease.release}. */
export interface Lease<S extends PoolSandbox = Sandbox> {
  readonly sandbox: S;
  /** The sandbox id. */
  readonly id: string;
  /** Leases this sandbox has served, this one included (1 for a fresh sandbox). */
  readonly executions: number;
  /**
   * Gives the sandbox back. It is killed instead when `outcome` is `'broken'`, it served
   * `maxExecutionsPerSandbox` leases, it reached `maxAgeMs`, or the pool is closing. Resolves once the
   * sandbox is idle again or killed. A second call does nothing.
   * @throws {InvalidInputError} (`outcome`) for an outcome other than `'ok'`, `'failed'`, `'broken'`.
   */
  release(outcome: LeaseOutcome): Promise<void>;
}

/** What `start()` did. */
export interface PoolStartReport {
  /** Sandboxes with this pool's owner tag, left by an earlier run, that were killed. */
  readonly leakedCleaned: number;
  /** Sandboxes ready (idle or busy) when `start()` returned. */
  readonly ready: number;
}

/** Counters from {@link SandboxPool.stats}; totals cover the pool's lifetime. */
export interface SandboxPoolStats {
  /** Healthy sandboxes waiting for a lease. */
  readonly idle: number;
  /** Sandboxes leased now. */
  readonly busy: number;
  /** Creations under way (including their health check). */
  readonly creating: number;
  /** `acquire()` calls waiting. */
  readonly waiting: number;
  /** The warm size the pool is heading for (see {@link SandboxPool.setDemand}). */
  readonly desired: number;
  /** Sandboxes the provider created for this pool (rejected ones included). */
  readonly created: number;
  /** This pool's sandboxes killed, for any reason. `created = idle + busy + killed` when nothing is being created. */
  readonly killed: number;
  /** Retired on reaching `maxAgeMs`. */
  readonly retiredByAge: number;
  /** Retired after `maxExecutionsPerSandbox` leases. */
  readonly retiredByUse: number;
  /** Killed because a lease was released as `'broken'` or its lifetime could not be extended. */
  readonly retiredBroken: number;
  /** Killed because the build tag was missing or different. */
  readonly rejectedWrongBuild: number;
  /** Killed because the provider reported another network setting than `allowInternetAccess`. */
  readonly rejectedWrongNetwork: number;
  /** Creations that threw, or whose health check failed for another reason than the build tag. */
  readonly failedCreations: number;
  /** Sandboxes of earlier runs killed by `start()`. */
  readonly leakedCleaned: number;
}

const DEFAULT_BUILD_TAG_PATH = '/home/user/.tradeswarm-build';
/** Largest delay a Node timer honours; longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** A duration in ms: a number >= min and at most what a timer can wait, or Infinity. */
function durationOrInfinity(field: string, value: number, min: number): number {
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_TIMER_MS) {
    throw new InvalidInputError(field, `must be a number from ${min} to ${MAX_TIMER_MS} ms, or Infinity, got ${String(value)}`);
  }
  return value;
}

/**
 * Applies defaults to `options` and checks them once.
 * @returns a frozen, complete config.
 * @throws {InvalidInputError} naming the field: `provider` missing; `minSize`, `targetSize`,
 *   `maxSize` not whole numbers with `minSize <= targetSize <= maxSize` and `maxSize >= 1`;
 *   `maxExecutionsPerSandbox` or `maxCreateAttempts` not a whole number >= 1; `maxAgeMs`,
 *   `idleShrinkAfterMs` or `sandboxTimeoutMs` out of range; empty `template` or `buildTag`; a
 *   relative `buildTagPath`; `poolId` or `owner` with characters other than letters, digits, `.`, `_`, `-`.
 */
export function compileSandboxPoolOptions<S extends PoolSandbox = Sandbox>(options: SandboxPoolOptions<S>): SandboxPoolConfig<S> {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object with at least `provider`');
  const provider = options.provider;
  if (typeof provider !== 'object' || provider === null || typeof provider.create !== 'function' || typeof provider.list !== 'function' || typeof provider.kill !== 'function') {
    throw new InvalidInputError('provider', 'is required: pass createSandboxProvider({ connection }) (or any object with create, list and kill)');
  }
  if (options.prepare !== undefined && typeof options.prepare !== 'function') throw new InvalidInputError('prepare', 'must be a function of the new sandbox, or left out');
  const template = options.template ?? 'code-interpreter-v1';
  if (typeof template !== 'string' || template.trim() === '') throw new InvalidInputError('template', 'must be a non-empty template name or id');
  const maxSize = wholeNumber('maxSize', options.maxSize ?? 10, 1);
  const targetSize = wholeNumber('targetSize', options.targetSize ?? Math.min(3, maxSize), 0);
  if (targetSize > maxSize) throw new InvalidInputError('targetSize', `must be at most maxSize (${maxSize}), got ${targetSize}`);
  const minSize = wholeNumber('minSize', options.minSize ?? Math.min(2, targetSize), 0);
  if (minSize > targetSize) throw new InvalidInputError('minSize', `must be at most targetSize (${targetSize}), got ${minSize}`);
  const readyOnStart = wholeNumber('readyOnStart', options.readyOnStart ?? minSize, 0);
  if (readyOnStart > minSize) throw new InvalidInputError('readyOnStart', `must be at most minSize (${minSize}), got ${readyOnStart}`);
  const buildTag = options.buildTag;
  if (buildTag !== undefined && (typeof buildTag !== 'string' || buildTag.trim() === '')) {
    throw new InvalidInputError('buildTag', 'must be a non-empty string, or left out to skip the check');
  }
  const buildTagPath = options.buildTagPath ?? DEFAULT_BUILD_TAG_PATH;
  if (typeof buildTagPath !== 'string' || !buildTagPath.startsWith('/')) {
    throw new InvalidInputError('buildTagPath', `must be an absolute path inside the sandbox, got ${JSON.stringify(buildTagPath)}`);
  }
  const allowInternetAccess = options.allowInternetAccess ?? false;
  if (typeof allowInternetAccess !== 'boolean') throw new InvalidInputError('allowInternetAccess', `must be true or false, got ${JSON.stringify(allowInternetAccess)}`);
  const logger = options.logger ?? createLogger('sandbox-pool');
  return Object.freeze({
    provider,
    template,
    minSize,
    readyOnStart,
    targetSize,
    maxSize,
    maxExecutionsPerSandbox: wholeNumber('maxExecutionsPerSandbox', options.maxExecutionsPerSandbox ?? 50, 1),
    maxAgeMs: durationOrInfinity('maxAgeMs', options.maxAgeMs ?? 3_600_000, 1),
    sandboxTimeoutMs: wholeNumber('sandboxTimeoutMs', options.sandboxTimeoutMs ?? 900_000, 10_000, 86_400_000),
    buildTag: buildTag?.trim(),
    buildTagPath,
    allowInternetAccess,
    maxCreateAttempts: wholeNumber('maxCreateAttempts', options.maxCreateAttempts ?? 3, 1),
    idleShrinkAfterMs: durationOrInfinity('idleShrinkAfterMs', options.idleShrinkAfterMs ?? 300_000, 0),
    poolId: tagValue('poolId', options.poolId ?? randomId(16)),
    owner: tagValue('owner', options.owner ?? 'tradeswarm-exec'),
    clock: options.clock ?? new SystemClock(),
    prepare: options.prepare,
    liveness: options.liveness ?? procLiveness(),
    logger,
  });
}

type EntryState = 'idle' | 'leased' | 'retired';
type EntryEvent = 'lease' | 'return' | 'retire';
type RetireReason = 'age' | 'use' | 'broken' | 'shrink' | 'closed';

/** The sandbox life cycle inside the pool; a pair not listed is a bug. */
const TRANSITIONS: Readonly<Record<EntryState, Partial<Record<EntryEvent, EntryState>>>> = {
  idle: { lease: 'leased', retire: 'retired' },
  leased: { return: 'idle', retire: 'retired' },
  retired: {},
};

function transition(state: EntryState, event: EntryEvent): EntryState {
  const next = TRANSITIONS[state][event];
  if (next === undefined) throw new Error(`sandbox pool: event '${event}' is not allowed in state '${state}'`);
  return next;
}

interface Entry<S> {
  readonly sandbox: S;
  readonly id: string;
  readonly createdAtMs: number;
  state: EntryState;
  executions: number;
  /** Set while leased when the sandbox must go on release (age reached, lifetime not extended). */
  retireOnRelease: RetireReason | undefined;
  ageTimer: TimerHandle | undefined;
  keepaliveTimer: TimerHandle | undefined;
}

interface Waiter<S extends PoolSandbox> {
  readonly enqueuedAtMs: number;
  readonly resolve: (lease: Lease<S>) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  /** Failed creations seen while waiting. */
  failures: number;
}

interface CreationFailure {
  readonly reason: SandboxUnavailableReason;
  readonly cause: unknown;
}

type Counter = 'created' | 'killed' | 'retiredByAge' | 'retiredByUse' | 'retiredBroken' | 'rejectedWrongBuild' | 'rejectedWrongNetwork' | 'failedCreations' | 'leakedCleaned';

/**
 * A pool of warm sandboxes, made through a provider (the code-execution service's; anyone's that
 * leases sandboxes for short work and hands them back).
 *
 * - One lease per sandbox at a time. `acquire()` prefers the most recently returned idle sandbox, else
 *   creates one while below `maxSize`, else waits first-in first-out (abortable).
 * - A sandbox is retired (killed) after `maxExecutionsPerSandbox` leases or at `maxAgeMs`, never while
 *   leased: a leased one is killed when released. `'broken'` leases are killed and replaced.
 * - New sandboxes must carry `buildTag` at `buildTagPath` and have the network `allowInternetAccess`
 *   asks for; others are killed unused.
 * - Every sandbox is tagged with `owner`, `poolId` and the pool's process ({@link SandboxOwner});
 *   `start()` kills what an earlier run that has ended left, never what a pool running now holds.
 * - Warm size follows demand, see {@link SandboxPool.setDemand}.
 */
export class SandboxPool<S extends PoolSandbox = Sandbox> {
  /** The compiled options. */
  readonly config: SandboxPoolConfig<S>;

  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly owner: SandboxOwner;
  private readonly entries = new Map<string, Entry<S>>();
  /** Idle entries, least recently returned first. */
  private idleEntries: Entry<S>[] = [];
  private readonly waiters: Waiter<S>[] = [];
  private readonly pendingKills = new Set<Promise<void>>();
  private readonly pendingCreations = new Set<Promise<void>>();
  private readonly leaseEndListeners = new Set<() => void>();
  private readonly creationListeners = new Set<() => void>();
  private creating = 0;
  private queueDepth = 0;
  private started = false;
  private startPromise: Promise<PoolStartReport> | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  /** No demand since start, or none for `idleShrinkAfterMs`: the floor is `minSize`, not `targetSize`. */
  private quiet = true;
  private quietTimer: TimerHandle | undefined;
  private failureStreak = 0;
  private lastFailure: CreationFailure | undefined;
  private readonly counts: Record<Counter, number> = {
    created: 0,
    killed: 0,
    retiredByAge: 0,
    retiredByUse: 0,
    retiredBroken: 0,
    rejectedWrongBuild: 0,
    rejectedWrongNetwork: 0,
    failedCreations: 0,
    leakedCleaned: 0,
  };

  /** @throws {InvalidInputError} for invalid options (see {@link compileSandboxPoolOptions}). */
  constructor(options: SandboxPoolOptions<S>) {
    this.config = compileSandboxPoolOptions(options);
    this.clock = this.config.clock;
    this.logger = this.config.logger;
    this.owner = new SandboxOwner(this.config.owner, this.config.liveness);
  }

  /** The metadata every sandbox of this pool carries. */
  get metadata(): Readonly<Record<string, string>> {
    return { ...this.owner.metadata, [POOL_ID_METADATA_KEY]: this.config.poolId };
  }

  /**
   * Kills sandboxes tagged with this pool's `owner` that the pool does not hold and whose pool's process
   * has ended (left by an earlier run that crashed), then creates `minSize` sandboxes and waits for
   * `readyOnStart` of them. Calling it again returns the first call's result.
   * @throws {SandboxUnavailableError} when `maxCreateAttempts` creations in a row fail before
   *   `readyOnStart` sandboxes are ready; the pool stays usable (`acquire()` tries again) and must still be closed.
   * @throws {PoolClosedError} when the pool was closed.
   * @throws whatever the directory throws when listing fails (the provider is unreachable).
   */
  start(): Promise<PoolStartReport> {
    this.startPromise ??= this.startOnce();
    return this.startPromise;
  }

  /**
   * Leases a sandbox for one execution. Prefers an idle sandbox; else creates one while the pool holds
   * fewer than `maxSize`; else waits, first come first served. Works before `start()`, but then
   * nothing of an earlier run is cleaned up.
   * @throws {PoolAcquireAbortedError} when `signal` aborts before a sandbox is leased.
   * @throws {SandboxUnavailableError} when `maxCreateAttempts` creations fail while this call waits.
   * @throws {PoolClosedError} when the pool is closing or closed.
   */
  acquire(signal?: AbortSignal): Promise<Lease<S>> {
    if (this.closing) return Promise.reject(new PoolClosedError());
    if (signal?.aborted) return Promise.reject(new PoolAcquireAbortedError(0, { cause: signal.reason }));
    return new Promise<Lease<S>>((resolve, reject) => {
      const enqueuedAtMs = this.clock.now();
      const waiter: Waiter<S> = {
        enqueuedAtMs,
        resolve,
        reject,
        signal,
        failures: 0,
        onAbort: () => {
          if (!this.removeWaiter(waiter)) return;
          reject(new PoolAcquireAbortedError(this.clock.now() - enqueuedAtMs, { cause: signal?.reason }));
          this.pump();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /**
   * Tells the pool how many executions wait upstream (in the executor's queue) without having called
   * `acquire()` yet. The pool then heads for
   *
   * `desired = min(maxSize, max(floor, busy + waiting + queueDepth))`
   *
   * where `floor` is `targetSize` while there is demand and until `idleShrinkAfterMs` after it fell to
   * zero, and `minSize` before any demand and after that quiet period. It creates sandboxes in the
   * background up to `desired`, and kills idle ones (least recently used first) above it; busy ones
   * are never shrunk.
   * @throws {InvalidInputError} (`queueDepth`) when not a whole number >= 0.
   */
  setDemand(queueDepth: number): void {
    this.queueDepth = wholeNumber('queueDepth', queueDepth, 0);
    this.pump();
  }

  /** Counters for metrics and tests. */
  stats(): SandboxPoolStats {
    return {
      idle: this.idleEntries.length,
      busy: this.busy(),
      creating: this.creating,
      waiting: this.waiters.length,
      desired: this.desiredSize(),
      ...this.counts,
    };
  }

  /**
   * Closes the pool gracefully: refuses new `acquire()` calls and ends waiting ones with
   * `PoolClosedError`, waits for every leased sandbox to be released (no execution is cut off) and for
   * creations under way, then kills every sandbox of the pool. Safe to call twice.
   */
  close(): Promise<void> {
    this.closePromise ??= this.closeOnce();
    return this.closePromise;
  }

  private async startOnce(): Promise<PoolStartReport> {
    if (this.closing) throw new PoolClosedError();
    const leakedCleaned = await this.cleanLeaked();
    this.started = true;
    this.pump();
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.closing) {
          this.creationListeners.delete(check);
          reject(new PoolClosedError());
        } else if (this.ready() >= this.config.readyOnStart) {
          this.creationListeners.delete(check);
          resolve();
        } else if (this.failureStreak >= this.config.maxCreateAttempts && this.lastFailure !== undefined) {
          this.creationListeners.delete(check);
          const { reason, cause } = this.lastFailure;
          reject(new SandboxUnavailableError(this.config.template, this.failureStreak, reason, { cause }));
        }
      };
      this.creationListeners.add(check);
      check();
    });
    const ready = this.ready();
    this.logger.info({ leakedCleaned, ready, poolId: this.config.poolId }, 'sandbox pool started');
    return { leakedCleaned, ready };
  }

  private async cleanLeaked(): Promise<number> {
    const killed = await this.owner.killLeaked(this.config.provider, { held: (sandboxId) => this.entries.has(sandboxId), logger: this.logger });
    this.counts.leakedCleaned += killed;
    return killed;
  }

  private async closeOnce(): Promise<void> {
    this.closing = true;
    if (this.quietTimer !== undefined) this.clock.clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new PoolClosedError());
    }
    for (const listener of [...this.creationListeners]) listener();
    for (const entry of [...this.idleEntries]) void this.retire(entry, 'closed');
    // Creations under way kill their sandbox themselves once they see `closing`.
    await Promise.all([...this.pendingCreations]);
    while (this.busy() > 0) {
      await new Promise<void>((resolve) => {
        const listener = (): void => {
          this.leaseEndListeners.delete(listener);
          resolve();
        };
        this.leaseEndListeners.add(listener);
      });
    }
    while (this.pendingKills.size > 0) await Promise.all([...this.pendingKills]);
    this.logger.info({ ...this.counts }, 'sandbox pool closed');
  }

  private busy(): number {
    return this.entries.size - this.idleEntries.length;
  }

  private ready(): number {
    return this.entries.size;
  }

  private desiredSize(): number {
    const floor = this.quiet ? this.config.minSize : this.config.targetSize;
    return Math.min(this.config.maxSize, Math.max(floor, this.busy() + this.waiters.length + this.queueDepth));
  }

  private removeWaiter(waiter: Waiter<S>): boolean {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return false;
    this.waiters.splice(index, 1);
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    return true;
  }

  /** Hands idle sandboxes to waiters, grows towards what waiters and demand need, shrinks idle surplus. */
  private pump(): void {
    if (this.closing) return;
    this.updateQuiet();
    for (;;) {
      const waiter = this.waiters[0];
      if (waiter === undefined) break;
      const entry = this.takeIdle();
      if (entry === undefined) break;
      this.removeWaiter(waiter);
      waiter.resolve(this.lease(entry));
    }
    this.updateQuiet();
    const size = this.entries.size + this.creating;
    const room = this.config.maxSize - size;
    // Creations under way serve waiters first, whatever started them.
    let wanted = Math.min(room, this.waiters.length - this.creating);
    const desired = this.desiredSize();
    if ((this.started || !this.quiet) && this.failureStreak < this.config.maxCreateAttempts) {
      wanted = Math.max(wanted, desired - size);
    }
    for (let i = 0; i < wanted; i++) this.spawn();
    let surplus = size - desired;
    while (surplus > 0 && this.waiters.length === 0) {
      const entry = this.idleEntries[0];
      if (entry === undefined) break;
      void this.retire(entry, 'shrink');
      surplus--;
    }
  }

  private updateQuiet(): void {
    const demand = this.busy() + this.waiters.length + this.queueDepth;
    if (demand > 0) {
      this.quiet = false;
      if (this.quietTimer !== undefined) this.clock.clearTimeout(this.quietTimer);
      this.quietTimer = undefined;
    } else if (!this.quiet && this.quietTimer === undefined && Number.isFinite(this.config.idleShrinkAfterMs)) {
      this.quietTimer = this.clock.setTimeout(() => {
        this.quietTimer = undefined;
        this.quiet = true;
        this.pump();
      }, this.config.idleShrinkAfterMs);
    }
  }

  /** The most recently returned idle sandbox still young enough; retires any found too old. */
  private takeIdle(): Entry<S> | undefined {
    for (;;) {
      const entry = this.idleEntries.pop();
      if (entry === undefined) return undefined;
      if (this.clock.now() - entry.createdAtMs >= this.config.maxAgeMs) {
        // Timers can run late; never lease a sandbox past its age.
        this.idleEntries.push(entry);
        void this.retire(entry, 'age');
        continue;
      }
      return entry;
    }
  }

  private lease(entry: Entry<S>): Lease<S> {
    entry.state = transition(entry.state, 'lease');
    entry.executions++;
    let released = false;
    return {
      sandbox: entry.sandbox,
      id: entry.id,
      executions: entry.executions,
      release: async (outcome: LeaseOutcome): Promise<void> => {
        if (outcome !== 'ok' && outcome !== 'failed' && outcome !== 'broken') {
          throw new InvalidInputError('outcome', `must be 'ok', 'failed' or 'broken', got ${JSON.stringify(outcome)}`);
        }
        if (released) return;
        released = true;
        await this.release(entry, outcome);
      },
    };
  }

  private async release(entry: Entry<S>, outcome: LeaseOutcome): Promise<void> {
    let reason: RetireReason | undefined;
    if (outcome === 'broken') reason = 'broken';
    else if (entry.retireOnRelease !== undefined) reason = entry.retireOnRelease;
    else if (this.clock.now() - entry.createdAtMs >= this.config.maxAgeMs) reason = 'age';
    else if (entry.executions >= this.config.maxExecutionsPerSandbox) reason = 'use';
    else if (this.closing) reason = 'closed';
    let killed: Promise<void> | undefined;
    if (reason === undefined) {
      entry.state = transition(entry.state, 'return');
      this.idleEntries.push(entry);
    } else {
      killed = this.retire(entry, reason);
    }
    for (const listener of [...this.leaseEndListeners]) listener();
    this.pump();
    await killed;
  }

  /** Removes `entry` from the pool and kills its sandbox; resolves when the kill call has settled. */
  private retire(entry: Entry<S>, reason: RetireReason): Promise<void> {
    entry.state = transition(entry.state, 'retire');
    this.entries.delete(entry.id);
    this.idleEntries = this.idleEntries.filter((idle) => idle !== entry);
    if (entry.ageTimer !== undefined) this.clock.clearTimeout(entry.ageTimer);
    if (entry.keepaliveTimer !== undefined) this.clock.clearTimeout(entry.keepaliveTimer);
    entry.ageTimer = undefined;
    entry.keepaliveTimer = undefined;
    if (reason === 'age') this.counts.retiredByAge++;
    else if (reason === 'use') this.counts.retiredByUse++;
    else if (reason === 'broken') this.counts.retiredBroken++;
    this.logger.debug({ sandboxId: entry.id, reason, executions: entry.executions }, 'retiring sandbox');
    return this.kill(entry.sandbox);
  }

  /** Kills a sandbox of this pool, counted in `killed`; a failed kill is logged (its lifetime ends it). */
  private kill(sandbox: S): Promise<void> {
    this.counts.killed++;
    const killing = Promise.resolve()
      .then(() => sandbox.kill())
      .then(
        () => undefined,
        (error: unknown) => {
          this.logger.warn({ sandboxId: sandbox.sandboxId, error: errorMessage(error) }, 'could not kill a sandbox; its provider timeout will end it');
        },
      )
      .finally(() => this.pendingKills.delete(killing));
    this.pendingKills.add(killing);
    return killing;
  }

  private spawn(): void {
    this.creating++;
    const creation = this.createOne().finally(() => this.pendingCreations.delete(creation));
    this.pendingCreations.add(creation);
  }

  private async createOne(): Promise<void> {
    const { template } = this.config;
    let sandbox: S;
    try {
      // Through a resolved promise, so a provider that throws synchronously cannot re-enter pump().
      sandbox = await Promise.resolve().then(() => this.createPrepared());
    } catch (error) {
      this.creating--;
      this.counts.failedCreations++;
      // The whole chain, and what threw: an SDK error's own message ("500 Internal Server Error") rarely says why.
      this.logger.warn({ template, error: errorChain(error), kind: error instanceof Error ? error.name : typeof error }, 'could not create a sandbox');
      this.creationFailed({ reason: 'create-failed', cause: error });
      return;
    }
    this.counts.created++;
    const failure = await this.checkHealth(sandbox);
    this.creating--;
    if (failure !== undefined) {
      if (failure.reason === 'wrong-build') this.counts.rejectedWrongBuild++;
      else if (failure.reason === 'wrong-network') this.counts.rejectedWrongNetwork++;
      else this.counts.failedCreations++;
      this.logger.warn({ sandboxId: sandbox.sandboxId, reason: failure.reason, error: errorMessage(failure.cause) }, 'new sandbox failed its health check; killing it');
      void this.kill(sandbox);
      this.creationFailed(failure);
      return;
    }
    if (this.closing) {
      void this.kill(sandbox);
      return;
    }
    this.failureStreak = 0;
    this.lastFailure = undefined;
    this.add(sandbox);
    this.pump();
    this.notifyCreation();
  }

  /** A new sandbox, readied by `prepare`; one that `prepare` fails on is killed before the error is thrown. */
  private async createPrepared(): Promise<S> {
    const { provider, template, sandboxTimeoutMs, allowInternetAccess, prepare } = this.config;
    const sandbox = await provider.create({ template, metadata: this.metadata, timeoutMs: sandboxTimeoutMs, allowInternetAccess });
    if (prepare === undefined) return sandbox;
    try {
      await prepare(sandbox);
    } catch (error) {
      await sandbox.kill().catch(() => undefined);
      throw error;
    }
    return sandbox;
  }

  /** The first thing wrong with a new sandbox: its network, then its build tag. */
  private async checkHealth(sandbox: S): Promise<CreationFailure | undefined> {
    const [network, build] = await Promise.all([this.checkNetwork(sandbox), this.checkBuild(sandbox)]);
    return network ?? build;
  }

  private async checkNetwork(sandbox: S): Promise<CreationFailure | undefined> {
    const { allowInternetAccess, template } = this.config;
    let reported: boolean;
    try {
      reported = (await sandbox.getInfo()).allowInternetAccess ?? true;
    } catch (error) {
      return { reason: 'health-check-failed', cause: error };
    }
    if (reported === allowInternetAccess) return undefined;
    return { reason: 'wrong-network', cause: new SandboxNetworkMismatchError(template, sandbox.sandboxId, allowInternetAccess, reported) };
  }

  private async checkBuild(sandbox: S): Promise<CreationFailure | undefined> {
    const { buildTag, buildTagPath, template } = this.config;
    if (buildTag === undefined) return undefined;
    let content: string;
    try {
      content = await sandbox.files.read(buildTagPath);
    } catch (error) {
      if (error instanceof Error && (error.name === 'FileNotFoundError' || error.name === 'NotFoundError')) {
        return { reason: 'wrong-build', cause: new SandboxBuildMismatchError(template, buildTagPath, buildTag, undefined, { cause: error }) };
      }
      return { reason: 'health-check-failed', cause: error };
    }
    const found = String(content).trim();
    if (found !== buildTag) return { reason: 'wrong-build', cause: new SandboxBuildMismatchError(template, buildTagPath, buildTag, found) };
    return undefined;
  }

  private creationFailed(failure: CreationFailure): void {
    this.failureStreak++;
    this.lastFailure = failure;
    for (const waiter of [...this.waiters]) {
      waiter.failures++;
      if (waiter.failures < this.config.maxCreateAttempts) continue;
      this.removeWaiter(waiter);
      waiter.reject(new SandboxUnavailableError(this.config.template, waiter.failures, failure.reason, { cause: failure.cause }));
    }
    this.notifyCreation();
    this.pump();
  }

  private notifyCreation(): void {
    for (const listener of [...this.creationListeners]) listener();
  }

  private add(sandbox: S): void {
    const now = this.clock.now();
    const entry: Entry<S> = {
      sandbox,
      id: sandbox.sandboxId,
      createdAtMs: now,
      state: 'idle',
      executions: 0,
      retireOnRelease: undefined,
      ageTimer: undefined,
      keepaliveTimer: undefined,
    };
    if (Number.isFinite(this.config.maxAgeMs)) {
      entry.ageTimer = this.clock.setTimeout(() => {
        entry.ageTimer = undefined;
        if (entry.state === 'idle') {
          void this.retire(entry, 'age');
          this.pump();
        } else if (entry.state === 'leased') {
          entry.retireOnRelease ??= 'age';
        }
      }, this.config.maxAgeMs);
    }
    this.scheduleKeepalive(entry);
    this.entries.set(entry.id, entry);
    this.idleEntries.push(entry);
  }

  /** Extends the sandbox's provider lifetime when a third of it is left, as long as the pool holds it. */
  private scheduleKeepalive(entry: Entry<S>): void {
    const lifetimeMs = this.config.sandboxTimeoutMs;
    entry.keepaliveTimer = this.clock.setTimeout(() => {
      entry.keepaliveTimer = undefined;
      if (entry.state === 'retired') return;
      Promise.resolve()
        .then(() => entry.sandbox.setTimeout(lifetimeMs))
        .then(
          () => {
            if (entry.state !== 'retired') this.scheduleKeepalive(entry);
          },
          (error: unknown) => {
            this.logger.warn({ sandboxId: entry.id, error: errorMessage(error) }, 'could not extend a sandbox lifetime; retiring it');
            if (entry.state === 'idle') {
              void this.retire(entry, 'broken');
              this.pump();
            } else if (entry.state === 'leased') {
              entry.retireOnRelease = 'broken';
            }
          },
        );
    }, Math.floor((lifetimeMs * 2) / 3));
  }
}
