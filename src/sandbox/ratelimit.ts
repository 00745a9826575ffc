import { InvalidInputError, type Clock, type TimerHandle } from '../core/index.js';
import { RateLimitWaitAbortedError } from './errors.js';

/**
 * Slack for floating-point refill arithmetic: a bucket holding `n - 1e-9` tokens counts as holding
 * `n`. Without it a waiter woken at the computed instant could find itself a rounding error short.
 */
const TOKEN_EPSILON = 1e-9;

/** The saved state of a {@link TokenBucket}; plain JSON, restored through `initialState`. */
export interface TokenBucketState {
  /** Tokens held at `updatedAtMs` (may be fractional). */
  readonly available: number;
  /** Clock time (ms) the count was last brought up to date. */
  readonly updatedAtMs: number;
  /** No token is granted before this clock time (ms); 0 when not paused. */
  readonly pausedUntilMs: number;
}

/** Options for a {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Most tokens the bucket holds; also the largest single request it can grant. */
  capacity: number;
  /** Tokens added every `intervalMs`, continuously (half the interval adds half the tokens). */
  tokens: number;
  /** The refill interval in milliseconds. */
  intervalMs: number;
  /**
   * Name used in error messages.
   * @default 'bucket'
   */
  name?: string;
  /**
   * State saved by {@link TokenBucket.toJSON} to resume from.
   * @default full: `{ available: capacity, updatedAtMs: clock.now(), pausedUntilMs: 0 }`
   */
  initialState?: TokenBucketState;
}

interface Waiter {
  readonly tokens: number;
  readonly enqueuedAtMs: number;
  readonly resolve: () => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

function requirePositiveFinite(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidInputError(field, `must be a finite number > 0, got ${String(value)}`);
  }
  return value;
}

function requireFinite(field: string, value: number, min: number, max = Number.POSITIVE_INFINITY): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `between ${min} and ${max}`;
    throw new InvalidInputError(field, `must be a finite number ${range}, got ${String(value)}`);
  }
  return value;
}

/**
 * A token bucket with continuous refill computed from an injected {@link Clock}: it holds at most
 * `capacity` tokens and gains `tokens` every `intervalMs`. Waiting callers ({@link TokenBucket.take})
 * are served strictly first-in first-out: a small request never overtakes a larger one queued before
 * it, and {@link TokenBucket.tryTake} fails while anyone is queued. Waits use `clock.setTimeout` only.
 */
export class TokenBucket {
  /** Most tokens the bucket holds. */
  readonly capacity: number;
  /** Name used in error messages. */
  readonly name: string;

  private refillTokens: number;
  private refillIntervalMs: number;
  private tokensHeld: number;
  private updatedAtMs: number;
  private pausedUntil: number;
  private granted = 0;
  private readonly waiters: Waiter[] = [];
  private timer: TimerHandle | undefined;

  /**
   * @throws {InvalidInputError} when `capacity`, `tokens` or `intervalMs` is not a finite number > 0,
   *   or `initialState` is malformed (field named, e.g. `initialState.available`).
   */
  constructor(
    private readonly clock: Clock,
    options: TokenBucketOptions,
  ) {
    this.capacity = requirePositiveFinite('capacity', options.capacity);
    this.refillTokens = requirePositiveFinite('tokens', options.tokens);
    this.refillIntervalMs = requirePositiveFinite('intervalMs', options.intervalMs);
    this.name = options.name ?? 'bucket';
    const state = options.initialState;
    if (state === undefined) {
      this.tokensHeld = this.capacity;
      this.updatedAtMs = clock.now();
      this.pausedUntil = 0;
    } else {
      if (typeof state !== 'object' || state === null) {
        throw new InvalidInputError('initialState', 'must be an object saved by TokenBucket.toJSON()');
      }
      this.tokensHeld = requireFinite('initialState.available', state.available, 0, this.capacity);
      this.updatedAtMs = requireFinite('initialState.updatedAtMs', state.updatedAtMs, Number.NEGATIVE_INFINITY);
      this.pausedUntil = requireFinite('initialState.pausedUntilMs', state.pausedUntilMs, Number.NEGATIVE_INFINITY);
    }
  }

  /** Tokens held now (may be fractional), after refill. */
  get available(): number {
    this.refill();
    return this.tokensHeld;
  }

  /** Number of queued {@link TokenBucket.take} calls. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Clock time (ms) before which no token is granted; 0 (or a past time) when not paused. */
  get pausedUntilMs(): number {
    return this.pausedUntil;
  }

  /** Total tokens granted since this object was created (not part of the saved state). */
  get grantedTokens(): number {
    return this.granted;
  }

  /** The current refill rate. */
  get rate(): { readonly tokens: number; readonly intervalMs: number } {
    return { tokens: this.refillTokens, intervalMs: this.refillIntervalMs };
  }

  /**
   * Takes `n` tokens now if the bucket holds them, it is not paused and nobody is queued.
   * @returns whether the tokens were taken.
   * @throws {InvalidInputError} (`n`) when `n` is not a finite number > 0 or exceeds `capacity`.
   */
  tryTake(n = 1): boolean {
    this.checkRequest(n);
    this.refill();
    if (this.waiters.length > 0 || !this.canGrant(n)) return false;
    this.grant(n);
    return true;
  }

  /**
   * Milliseconds (whole, rounded up) until a `take(n)` made now would be granted, counting the
   * tokens that queued callers will take first and any pause. 0 means `tryTake(n)` succeeds now.
   * @throws {InvalidInputError} (`n`) when `n` is not a finite number > 0 or exceeds `capacity`.
   */
  msUntilAvailable(n = 1): number {
    this.checkRequest(n);
    this.refill();
    const queued = this.waiters.reduce((sum, waiter) => sum + waiter.tokens, 0);
    return this.delayFor(queued + n);
  }

  /**
   * Waits until `n` tokens can be taken, then takes them. Callers are served in the order they called.
   * @throws {InvalidInputError} (`n`, synchronously) when `n` is not a finite number > 0 or exceeds `capacity`.
   * @throws {RateLimitWaitAbortedError} (as a rejection) when `signal` aborts before the tokens are granted;
   *   no tokens are taken then.
   */
  take(n = 1, signal?: AbortSignal): Promise<void> {
    this.checkRequest(n);
    if (signal?.aborted) {
      return Promise.reject(new RateLimitWaitAbortedError(this.name, n, 0, { cause: signal.reason }));
    }
    if (this.tryTake(n)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const enqueuedAtMs = this.clock.now();
      const waiter: Waiter = {
        tokens: n,
        enqueuedAtMs,
        resolve,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index < 0) return;
          this.waiters.splice(index, 1);
          const waitedMs = this.clock.now() - enqueuedAtMs;
          reject(new RateLimitWaitAbortedError(this.name, n, waitedMs, { cause: signal?.reason }));
          // The head may have left: whoever is next might be servable now, or later than planned.
          this.pump();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /**
   * Changes the refill rate from now on; tokens already accrued are kept. Queued waiters are rescheduled.
   * @throws {InvalidInputError} (`tokens` or `intervalMs`) when not a finite number > 0.
   */
  setRate(tokens: number, intervalMs: number = this.refillIntervalMs): void {
    requirePositiveFinite('tokens', tokens);
    requirePositiveFinite('intervalMs', intervalMs);
    this.refill();
    this.refillTokens = tokens;
    this.refillIntervalMs = intervalMs;
    this.pump();
  }

  /**
   * Grants nothing before clock time `untilMs` (refill continues meanwhile). A pause never shortens
   * an earlier, longer one.
   * @throws {InvalidInputError} (`untilMs`) when not a finite number.
   */
  pauseUntil(untilMs: number): void {
    requireFinite('untilMs', untilMs, Number.NEGATIVE_INFINITY);
    this.refill();
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
    this.pump();
  }

  /** Empties the bucket (e.g. the provider said we are over its limit, so our count was too generous). */
  drain(): void {
    this.refill();
    this.tokensHeld = 0;
    this.pump();
  }

  /** The state to save; pass it back as `initialState` to resume. Waiters are not part of it. */
  toJSON(): TokenBucketState {
    this.refill();
    return { available: this.tokensHeld, updatedAtMs: this.updatedAtMs, pausedUntilMs: this.pausedUntil };
  }

  private checkRequest(n: number): void {
    requirePositiveFinite('n', n);
    if (n > this.capacity) {
      throw new InvalidInputError('n', `${n} tokens can never be granted by '${this.name}', whose capacity is ${this.capacity}; ask for at most ${this.capacity}`);
    }
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsedMs = now - this.updatedAtMs;
    // A restored state may lie in this clock's future; hold the count until the clock catches up.
    if (elapsedMs <= 0) return;
    this.tokensHeld = Math.min(this.capacity, this.tokensHeld + (elapsedMs * this.refillTokens) / this.refillIntervalMs);
    this.updatedAtMs = now;
  }

  private canGrant(n: number): boolean {
    return this.clock.now() >= this.pausedUntil && this.tokensHeld + TOKEN_EPSILON >= n;
  }

  private grant(n: number): void {
    this.tokensHeld = Math.max(0, this.tokensHeld - n);
    this.granted += n;
  }

  /** Whole ms until the bucket holds `needed` tokens and is not paused; call after `refill()`. */
  private delayFor(needed: number): number {
    const now = this.clock.now();
    const pauseMs = Math.max(0, this.pausedUntil - now);
    const deficit = needed - this.tokensHeld;
    // Refill only starts once the clock reaches updatedAtMs (relevant for a restored future state).
    const startMs = Math.max(0, this.updatedAtMs - now);
    const refillMs =
      deficit <= TOKEN_EPSILON ? 0 : startMs + Math.max(1, Math.ceil((deficit * this.refillIntervalMs) / this.refillTokens - TOKEN_EPSILON));
    return Math.max(pauseMs, refillMs);
  }

  /** Serves every waiter at the head that can be served now, then sets one timer for the next. */
  private pump(): void {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.refill();
    for (let head = this.waiters[0]; head !== undefined && this.canGrant(head.tokens); head = this.waiters[0]) {
      this.waiters.shift();
      head.signal?.removeEventListener('abort', head.onAbort);
      this.grant(head.tokens);
      head.resolve();
    }
    const next = this.waiters[0];
    if (next === undefined) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, this.delayFor(next.tokens));
  }
}

/** The three E2B limits the limiter keeps under. */
export type RateLimitKind = 'create' | 'operation' | 'lifecycle';

/** How a call to the provider ended, as far as rate limiting cares. */
export type RateLimitOutcome = 'ok' | 'rate-limited' | 'failed';

/** E2B plans and their sandbox-creation limits (sandboxes per second). */
export const E2B_CREATION_PER_SECOND = { hobby: 1, pro: 5 } as const;

/** An E2B plan name. */
export type E2bPlan = keyof typeof E2B_CREATION_PER_SECOND;

/**
 * The health score's constants. The score is AIMD, as in TCP congestion control: multiplicative
 * decrease on trouble, additive increase on success, which backs off fast and probes back slowly.
 * All are powers of two (or sums of them) so the arithmetic is exact.
 */
export const HEALTH = {
  /** The score a new limiter starts with. */
  initialScore: 1,
  /** A 429 is proof we are over the provider's limit: halve the score. */
  rateLimitedFactor: 0.5,
  /** A failure may or may not be load-related: take off only an eighth. */
  failedFactor: 0.875,
  /** Each success adds 1/16, so one 429 (1 → 0.5) is recovered after 8 successes. */
  successStep: 0.0625,
  /** The effective creation rate never drops below 5% of the configured rate, so creation still probes. */
  minRateFactor: 0.05,
} as const;

/** Options for a {@link RateLimiter}. All optional; units are in the names. */
export interface RateLimiterOptions {
  /**
   * The E2B plan, which sets the sandbox-creation rate: `hobby` 1/s, `pro` 5/s.
   * @default 'hobby'
   */
  plan?: E2bPlan;
  /**
   * Sandboxes created per second (fractions allowed), overriding the plan's rate. The creation
   * bucket holds `max(1, ceil(creationPerSecond))` tokens, so a rested limiter allows a one-second burst.
   * @default 1 on `hobby`, 5 on `pro`
   */
  creationPerSecond?: number;
  /**
   * Sandbox operations (envd calls: commands, files) per 60 seconds; E2B allows 40,000 per IP.
   * @default 40000
   */
  operationsPer60s?: number;
  /**
   * Lifecycle API calls (list, connect, kill, timeouts) per 30 seconds; E2B allows 20,000.
   * @default 20000
   */
  lifecyclePer30s?: number;
}

/** {@link RateLimiterOptions} with every default applied and every value checked. */
export interface RateLimiterConfig {
  readonly plan: E2bPlan;
  readonly creationPerSecond: number;
  readonly operationsPer60s: number;
  readonly lifecyclePer30s: number;
}

/**
 * Applies defaults to `options` and checks them once.
 * @returns a frozen, complete config.
 * @throws {InvalidInputError} naming the field: `plan` not `hobby`/`pro`; `creationPerSecond` not a
 *   finite number > 0; `operationsPer60s` or `lifecyclePer30s` not a whole number >= 1.
 */
export function compileRateLimiterOptions(options: RateLimiterOptions = {}): RateLimiterConfig {
  const plan = options.plan ?? 'hobby';
  if (!Object.hasOwn(E2B_CREATION_PER_SECOND, plan)) {
    throw new InvalidInputError('plan', `must be 'hobby' or 'pro', got ${JSON.stringify(plan)}`);
  }
  const creationPerSecond = requirePositiveFinite('creationPerSecond', options.creationPerSecond ?? E2B_CREATION_PER_SECOND[plan]);
  const wholeCount = (field: string, value: number): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidInputError(field, `must be a whole number >= 1, got ${String(value)}`);
    }
    return value;
  };
  return Object.freeze({
    plan,
    creationPerSecond,
    operationsPer60s: wholeCount('operationsPer60s', options.operationsPer60s ?? 40_000),
    lifecyclePer30s: wholeCount('lifecyclePer30s', options.lifecyclePer30s ?? 20_000),
  });
}

/** The saved state of a {@link RateLimiter}; plain JSON, passed back to the constructor to resume. */
export interface RateLimiterState {
  readonly score: number;
  readonly buckets: Readonly<Record<RateLimitKind, TokenBucketState>>;
}

/** What {@link RateLimiter.health} reports. */
export interface RateLimiterHealth {
  /** 0..1; 1 is healthy. */
  readonly score: number;
  /** The creation rate in force now: configured rate × max(score, {@link HEALTH.minRateFactor}). */
  readonly creationPerSecond: number;
}

/** Per-kind figures in a {@link RateLimiterSnapshot}. Counters cover this object's lifetime. */
export interface RateLimitKindSnapshot {
  readonly available: number;
  readonly capacity: number;
  readonly waiting: number;
  readonly pausedUntilMs: number;
  readonly granted: number;
  readonly ok: number;
  readonly rateLimited: number;
  readonly failed: number;
}

/** Everything a metrics exporter needs, at one instant. */
export interface RateLimiterSnapshot extends RateLimiterHealth {
  readonly atMs: number;
  readonly configuredCreationPerSecond: number;
  readonly kinds: Readonly<Record<RateLimitKind, RateLimitKindSnapshot>>;
}

const KINDS: readonly RateLimitKind[] = ['create', 'operation', 'lifecycle'];

type OutcomeCounts = Record<RateLimitOutcome, number>;

/**
 * Keeps calls to E2B under its limits: one {@link TokenBucket} per {@link RateLimitKind}, plus a
 * health score fed by {@link RateLimiter.report} that slows sandbox creation when the provider
 * pushes back. Only `create` and `lifecycle` reports (the control-plane API, where creation lives)
 * move the score; `operation` calls go to each sandbox's own endpoint, and at up to 40,000 a minute
 * their successes would wash out a creation 429 within milliseconds.
 */
export class RateLimiter {
  /** The compiled options. */
  readonly config: RateLimiterConfig;

  private score: number;
  private readonly buckets: Readonly<Record<RateLimitKind, TokenBucket>>;
  private readonly counts: Record<RateLimitKind, OutcomeCounts>;

  /**
   * @param initialState state saved by {@link RateLimiter.toJSON}, to resume from.
   * @throws {InvalidInputError} for invalid options (see {@link compileRateLimiterOptions}) or a
   *   malformed `initialState` (field named, e.g. `initialState.score`).
   */
  constructor(
    private readonly clock: Clock,
    options: RateLimiterOptions = {},
    initialState?: RateLimiterState,
  ) {
    this.config = compileRateLimiterOptions(options);
    this.score = initialState === undefined ? HEALTH.initialScore : requireFinite('initialState.score', initialState.score, 0, 1);
    const saved = (kind: RateLimitKind): TokenBucketState | undefined => {
      if (initialState === undefined) return undefined;
      const state = (initialState.buckets as Partial<Record<RateLimitKind, TokenBucketState>> | undefined)?.[kind];
      if (state === undefined) throw new InvalidInputError(`initialState.buckets.${kind}`, 'is missing; pass the whole object saved by RateLimiter.toJSON()');
      return state;
    };
    const createState = saved('create');
    const operationState = saved('operation');
    const lifecycleState = saved('lifecycle');
    this.buckets = {
      create: new TokenBucket(clock, {
        name: 'create',
        capacity: Math.max(1, Math.ceil(this.config.creationPerSecond)),
        tokens: this.effectiveCreationPerSecond(),
        intervalMs: 1000,
        initialState: createState,
      }),
      operation: new TokenBucket(clock, {
        name: 'operation',
        capacity: this.config.operationsPer60s,
        tokens: this.config.operationsPer60s,
        intervalMs: 60_000,
        initialState: operationState,
      }),
      lifecycle: new TokenBucket(clock, {
        name: 'lifecycle',
        capacity: this.config.lifecyclePer30s,
        tokens: this.config.lifecyclePer30s,
        intervalMs: 30_000,
        initialState: lifecycleState,
      }),
    };
    this.counts = {
      create: { ok: 0, 'rate-limited': 0, failed: 0 },
      operation: { ok: 0, 'rate-limited': 0, failed: 0 },
      lifecycle: { ok: 0, 'rate-limited': 0, failed: 0 },
    };
  }

  /**
   * Waits for permission to make one call of `kind`; callers of one kind are served in order.
   * @throws {InvalidInputError} (`kind`, synchronously) for an unknown kind.
   * @throws {RateLimitWaitAbortedError} (as a rejection) when `signal` aborts first.
   */
  acquire(kind: RateLimitKind, signal?: AbortSignal): Promise<void> {
    return this.bucket(kind).take(1, signal);
  }

  /**
   * Takes permission for one call of `kind` if it is available now.
   * @returns whether the call may go ahead.
   * @throws {InvalidInputError} (`kind`) for an unknown kind.
   */
  tryAcquire(kind: RateLimitKind): boolean {
    return this.bucket(kind).tryTake(1);
  }

  /**
   * Tells the limiter how a call of `kind` ended. On `rate-limited` (HTTP 429) that kind's bucket is
   * emptied and, given `retryAfterMs` (the `Retry-After` header in ms), grants nothing until then.
   * For `create` and `lifecycle` the health score changes: × {@link HEALTH.rateLimitedFactor} on
   * `rate-limited`, × {@link HEALTH.failedFactor} on `failed`, + {@link HEALTH.successStep} (up to 1)
   * on `ok`; the creation rate follows at once.
   * @param retryAfterMs only read with `rate-limited`.
   * @throws {InvalidInputError} (`kind`, `outcome` or `retryAfterMs`) for an unknown kind or outcome, or a
   *   `retryAfterMs` that is not a finite number >= 0.
   */
  report(kind: RateLimitKind, outcome: RateLimitOutcome, retryAfterMs?: number): void {
    const bucket = this.bucket(kind);
    if (outcome !== 'ok' && outcome !== 'rate-limited' && outcome !== 'failed') {
      throw new InvalidInputError('outcome', `must be 'ok', 'rate-limited' or 'failed', got ${JSON.stringify(outcome)}`);
    }
    if (outcome === 'rate-limited' && retryAfterMs !== undefined) requireFinite('retryAfterMs', retryAfterMs, 0);
    this.counts[kind][outcome]++;
    if (outcome === 'rate-limited') {
      bucket.drain();
      if (retryAfterMs !== undefined) bucket.pauseUntil(this.clock.now() + retryAfterMs);
    }
    if (kind === 'operation') return;
    const before = this.score;
    if (outcome === 'rate-limited') this.score *= HEALTH.rateLimitedFactor;
    else if (outcome === 'failed') this.score *= HEALTH.failedFactor;
    else this.score = Math.min(1, this.score + HEALTH.successStep);
    if (this.score !== before) this.buckets.create.setRate(this.effectiveCreationPerSecond(), 1000);
  }

  /** The health score and the creation rate it allows now. */
  health(): RateLimiterHealth {
    return { score: this.score, creationPerSecond: this.effectiveCreationPerSecond() };
  }

  /** Current figures for metrics: health, each bucket's level, queue and pause, and outcome counters. */
  snapshot(): RateLimiterSnapshot {
    const kindSnapshot = (kind: RateLimitKind): RateLimitKindSnapshot => {
      const bucket = this.buckets[kind];
      const counts = this.counts[kind];
      return {
        available: bucket.available,
        capacity: bucket.capacity,
        waiting: bucket.waiting,
        pausedUntilMs: bucket.pausedUntilMs,
        granted: bucket.grantedTokens,
        ok: counts.ok,
        rateLimited: counts['rate-limited'],
        failed: counts.failed,
      };
    };
    return {
      atMs: this.clock.now(),
      ...this.health(),
      configuredCreationPerSecond: this.config.creationPerSecond,
      kinds: { create: kindSnapshot('create'), operation: kindSnapshot('operation'), lifecycle: kindSnapshot('lifecycle') },
    };
  }

  /** The state to save (score and bucket levels); pass it as `initialState` to resume. */
  toJSON(): RateLimiterState {
    return {
      score: this.score,
      buckets: { create: this.buckets.create.toJSON(), operation: this.buckets.operation.toJSON(), lifecycle: this.buckets.lifecycle.toJSON() },
    };
  }

  private effectiveCreationPerSecond(): number {
    return this.config.creationPerSecond * Math.max(this.score, HEALTH.minRateFactor);
  }

  private bucket(kind: RateLimitKind): TokenBucket {
    if (!KINDS.includes(kind)) {
      throw new InvalidInputError('kind', `must be 'create', 'operation' or 'lifecycle', got ${JSON.stringify(kind)}`);
    }
    return this.buckets[kind];
  }
}
