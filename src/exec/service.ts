import { availableParallelism } from 'node:os';
import { InvalidInputError, SystemClock, createLogger, errorMessage, randomId, wholeNumber, type Clock, type Logger, type TimerHandle } from '../core/index.js';
import { LOCAL_INTERPRETER_MARKER, startLocalCloud, type LocalCloud, type LocalCloudOptions } from '../localcloud/index.js';
import {
  LOCAL_CLOUD_RATE_LIMIT,
  SandboxPool,
  compileRateLimiterOptions,
  createSandboxProvider,
  providerFailureOf,
  type Lease,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimiterSnapshot,
  type Sandbox,
  type SandboxConnection,
  type SandboxPoolOptions,
  type SandboxPoolStats,
} from '../sandbox/index.js';
import { FairQueue, SandboxResilience, isTransient, type BreakerState, type FairQueueOptions, type FairQueueStats, type ResilienceOptions } from './admission/index.js';
import { ResultCache, judgeDeterminism, type ResultCacheOptions, type ResultCacheStats } from './cache/index.js';
import { ExecServiceClosedError, ProviderUnreachableError, TemplateNotFoundError, QueueTimeoutError, SandboxTidyError, SessionLimitError, SessionLostError, SessionNotFoundError } from './errors.js';
import { Executor, type ExecLanguage, type ExecutionOutcome, type ExecutorOptions } from './executor.js';
import { scrubSandbox, tidySandbox, type ScrubOptions } from './hygiene.js';
import { ExecPrometheus, LatencyWindow, type LatencyWindowSummary } from './metrics/index.js';
import { parseExecRequest, type ExecRequestInput, type ParsedExecRequest } from './request.js';

/** The template the service registers on its embedded local cloud. */
export const EXEC_TEMPLATE = 'tradeswarm-exec';
/** The build tag written into {@link EXEC_TEMPLATE}; the pool refuses sandboxes without it. */
export const EXEC_BUILD_TAG = 'tradeswarm-exec-1';
/** The embedded template's build-tag file, byte for byte. */
const EMBEDDED_TAG_CONTENT = `${EXEC_BUILD_TAG}\n`;
const BUILD_TAG_FILE = '.tradeswarm-build';

/** Options of {@link createExecService}. Every field is optional. */
export interface ExecServiceOptions {
  /**
   * Where sandboxes come from: `{ apiKey }` for E2B cloud, or a local cloud's `{ apiKey, apiUrl,
   * sandboxUrl }`. @default an embedded local cloud, started by the service and closed with it
   */
  connection?: SandboxConnection;
  /** @default {@link EXEC_TEMPLATE} on the embedded cloud, else `code-interpreter-v1` */
  template?: string;
  /** Build tag every sandbox must carry (see the pool). @default {@link EXEC_BUILD_TAG} on the embedded cloud, else no check */
  buildTag?: string;
  /**
   * Whether executed code may use the network. By default it may not: on the local cloud each sandbox
   * has an empty network namespace of its own (loopback only), so code cannot reach this service's
   * HTTP port, the local cloud's API, nor anything else listening on this machine; on E2B cloud
   * all egress is denied. `true` is an opt-in with a risk: on the local cloud code then shares this
   * machine's network, loopback included, so it can call this service (as any user, when it runs
   * without an API key), the local cloud's API (whose key lets it create and kill sandboxes) and every
   * other service on 127.0.0.1; on E2B cloud it reaches the internet. Applies to stateless executions
   * and sessions alike; a sandbox with another setting is never used (see the pool's `allowInternetAccess`).
   * @default false
   */
  allowInternetAccess?: boolean;
  /**
   * Pool sizes, reuse cap, maximum age, … (see {@link SandboxPoolOptions}). On E2B cloud, where every
   * sandbox is billed by the second, `targetSize` defaults to the queue's `concurrency` (6 there): one sandbox
   * per execution that may run at once, kept warm while there is demand (a sandbox being cleaned is
   * handed on when its clean-up ends), and `minSize` to the pool's 2. When the sandboxes run on this
   * machine (the embedded local cloud, or a `connection` with `sandboxUrl`, as a local cloud needs),
   * where an idle one costs only memory (about 25 MB), `targetSize` defaults to twice `concurrency`,
   * one being cleaned beside each running one, and `minSize` to `targetSize`: the service waits for all
   * of them at start and keeps them, so no burst waits for a clean-up or for sandboxes being created
   * (measured with `npm run bench:exec`). Sessions draw from a pool of their own, with these options
   * but none warm: up to `sessions.maxSessions` sandboxes, made when a session opens.
   */
  pool?: Omit<SandboxPoolOptions, 'provider' | 'template' | 'buildTag' | 'allowInternetAccess' | 'clock' | 'logger' | 'prepare'>;
  /**
   * Concurrency (overall: see {@link defaultConcurrency}, 6 on E2B cloud, 6 per core on this machine's
   * sandboxes; 2 per user), queue length and maximum wait.
   */
  queue?: Omit<FairQueueOptions, 'clock'>;
  /** TTL (default 5 min) and size (default 1000) of the result cache. */
  cache?: Omit<ResultCacheOptions, 'clock'>;
  /** Retries and circuit breaker around sandbox work. */
  resilience?: ResilienceOptions;
  /** Provider rate limits. @default E2B's hobby plan with `connection`; 50 creations/s on the embedded cloud (`LOCAL_CLOUD_RATE_LIMIT`) */
  rateLimit?: RateLimiterOptions;
  /** Timeouts (keep or restart the context) and output limits. */
  executor?: Omit<ExecutorOptions, 'clock'>;
  /**
   * Stateful sessions: one sandbox and its interpreter state kept for the user that opened it, and
   * answered to that user only (to anyone else it does not exist).
   */
  sessions?: {
    /**
     * Sessions open at once over all users: the size of the sessions' own pool of sandboxes. Past it,
     * `openSession` throws a retryable `SessionLimitError` (`scope: 'service'`, HTTP 429 with Retry-After).
     * 0 turns sessions off. @default 4
     */
    maxSessions?: number;
    /**
     * Sessions one user may hold at once. Past it, `openSession` throws a `SessionLimitError` that is not
     * retryable (`scope: 'user'`, HTTP 409): the user closes one first. @default 1
     */
    maxSessionsPerUser?: number;
    /** A session unused this long is closed. @default 300000 (5 min) */
    idleTimeoutMs?: number;
  };
  /**
   * Interpreters started in a new sandbox before its first execution. After every stateless execution
   * each of them is left fresh off the response path (reset, or untouched when it ran nothing and user
   * code cannot reach it), so no caller meets a cold interpreter.
   * @default ['python', 'javascript']
   */
  prewarmLanguages?: readonly ExecLanguage[];
  /** Settings of the embedded local cloud (ignored with `connection`). */
  localCloud?: Omit<LocalCloudOptions, 'templates' | 'clock' | 'logger'>;
  clock?: Clock;
  logger?: Logger;
}

/** A request to {@link ExecService.exec}: see `execRequestSchema` for the fields and their defaults. */
export type ExecRequest = ExecRequestInput & { readonly signal?: AbortSignal };

/** What an execution produced plus where the time went and whether the cache answered. */
export interface ExecResult extends ExecutionOutcome {
  readonly language: ExecLanguage;
  readonly user: string;
  /** Time spent waiting for a turn in the fair queue, in ms. */
  readonly queueWaitMs: number;
  /** From the call to the answer, in ms. */
  readonly totalMs: number;
  /** The answer is a stored result of the same code, language and env. */
  readonly fromCache: boolean;
  /** Age of the stored result when `fromCache`. */
  readonly cacheAgeMs?: number;
  /** Whether the code was judged deterministic (only such results are cached), and why. */
  readonly deterministic: boolean;
  readonly determinism: readonly string[];
  /** Attempts it took (a transient sandbox failure is retried on another sandbox); 0 for a cache hit. */
  readonly attempts: number;
  readonly session?: string;
}

/** An open stateful session. */
export interface ExecSessionInfo {
  readonly session: string;
  readonly user: string;
  readonly sandboxId: string;
  readonly idleTimeoutMs: number;
}

/** The service's own figures, from {@link ExecService.metrics}. */
export interface ExecServiceMetrics {
  readonly requests: {
    readonly total: number;
    /** Ran (or came from the cache) and the code raised nothing. */
    readonly ok: number;
    /** Ran, and the code raised an error (a result, not a service failure). */
    readonly codeErrors: number;
    readonly timedOut: number;
    readonly fromCache: number;
    /** Refused as busy (queue full or waited too long) or provider unavailable; retryable. */
    readonly rejectedBusy: number;
    readonly invalid: number;
    /** Failed for another reason (sandbox lost after retries, service closing, …). */
    readonly failed: number;
  };
  readonly latencyMs: { readonly total: LatencyWindowSummary; readonly queueWait: LatencyWindowSummary; readonly execution: LatencyWindowSummary };
  /** Per user: requests and end-to-end latency. */
  readonly users: Readonly<Record<string, { readonly requests: number; readonly totalMs: LatencyWindowSummary }>>;
  /** Executions that found an idle sandbox in the pool / executions that reached the pool. */
  readonly poolHitRate: number | null;
  /** Cache hits / lookups of deterministic code. */
  readonly cacheHitRate: number | null;
  readonly pool: SandboxPoolStats;
  /** The sandboxes of open sessions, from a pool of their own (`null` when sessions are off). */
  readonly sessionPool: SandboxPoolStats | null;
  readonly queue: FairQueueStats;
  readonly cache: ResultCacheStats;
  readonly breaker: { readonly state: BreakerState; readonly retries: number; readonly transientFailures: number; readonly rejectedOpen: number; readonly opened: number };
  readonly rateLimiter: RateLimiterSnapshot;
  readonly sessions: number;
  /** Sandboxes being cleaned between executions (not yet back in the pool). */
  readonly scrubbing: number;
  /** Used sandboxes cleaned by the quick tidy-up (only Python ran in them, on the local cloud). */
  readonly tidied: number;
  /** Tidy-ups that found what they may not handle, so the sandbox was scrubbed instead. */
  readonly tidyFailures: number;
  /** Used sandboxes cleaned by a full scrub. */
  readonly scrubbed: number;
  readonly scrubFailures: number;
}

/** The code-execution service: cache → fair queue → circuit breaker → rate limiter → pool → executor. */
export interface ExecService {
  /** `apiUrl`/`sandboxUrl` of the embedded local cloud, when the service started one. */
  readonly localCloud: LocalCloud | undefined;
  /**
   * Runs code. The code's own errors and time-outs are results (`error`, `timedOut`), not exceptions.
   * Without `session` every execution starts from a clean interpreter in a sandbox holding nothing of
   * earlier callers.
   * @throws InvalidInputError naming the field for a bad request.
   * @throws QueueFullError, QueueTimeoutError, ProviderUnavailableError: busy, retry after `retryAfterMs`.
   * @throws SessionNotFoundError, SessionLostError for a bad or lost session.
   * @throws ExecServiceClosedError once `close()` was called.
   */
  exec(request: ExecRequest): Promise<ExecResult>;
  /**
   * Opens a stateful session: a sandbox leased to `user` until closed or idle for `idleTimeoutMs`;
   * executions naming it share variables and files. Results of sessions are never cached. The session
   * answers only to `user`: an execution in it, or a close of it, by another user fails as if it did
   * not exist.
   * @throws SessionLimitError when the user (not retryable) or the service (retryable) holds the most sessions allowed.
   */
  openSession(options: { user?: string; signal?: AbortSignal }): Promise<ExecSessionInfo>;
  /**
   * Closes a session of `user` (default `anonymous`, as for `exec`); its sandbox is cleaned and
   * returned to the pool.
   * @throws SessionNotFoundError when `user` has no open session of that id (whoever else may have one).
   */
  closeSession(session: string, options?: { user?: string }): Promise<void>;
  metrics(): ExecServiceMetrics;
  /** The metrics in Prometheus text format. */
  prometheus(): Promise<{ contentType: string; body: string }>;
  /** Refuses new work, lets running executions finish, cleans up every sandbox. Safe to call twice. */
  close(): Promise<void>;
}

interface OpenSession {
  readonly id: string;
  readonly user: string;
  /** Undefined while the session waits for its sandbox. */
  lease: Lease | undefined;
  /** Executions of one session run one after another. */
  chain: Promise<unknown>;
  idleTimer: TimerHandle | undefined;
  /** When the idle timer fires (clock time), while it is armed. */
  idleAtMs: number | undefined;
  closing: boolean;
}

/** The user a request declares (validated as `exec` does), `anonymous` when it names none. */
function userOf(user: string | undefined): string {
  return parseExecRequest({ code: '', ...(user === undefined ? {} : { user }) }).user;
}

/**
 * The provider's answer when the pool could not start because creating a sandbox got a 404 from the
 * provider's API (the SDK puts the HTTP status of an API answer in `statusCode`): before a sandbox
 * exists, the only thing a create can fail to find is its template. Read from the pool's error by its
 * fields (`reason`, `cause`), which is all the sandbox domain shows of it.
 */
function missingTemplate(error: unknown): Error | undefined {
  const { reason, cause } = (error ?? {}) as { reason?: unknown; cause?: unknown };
  if (reason !== 'create-failed' || !(cause instanceof Error)) return undefined;
  return (cause as { statusCode?: unknown }).statusCode === 404 ? cause : undefined;
}

/** Executions that may run at once on E2B cloud by default: the seed's, which respects E2B's rate limits. */
export const E2B_CONCURRENCY = 6;
/** Executions per core that may run at once by default on sandboxes of this machine, and the most in all. */
export const LOCAL_CONCURRENCY = { perCore: 6, max: 48 } as const;

/**
 * The fair queue's default concurrency for a provider. E2B cloud: the seed's {@link E2B_CONCURRENCY}.
 * Sandboxes on this machine (the local cloud) have no rate limit to respect and mostly wait (a request
 * that sleeps holds its slot without using a core), so the default follows the machine's cores: 6 per
 * core, at most 48 (whose warm pool, twice that, stays under the local cloud's 100 sandboxes). Measured
 * with `npm run bench:exec` (README): on 2 cores, 12 at once answered the loaded short requests about
 * 10x faster than the naive way, 6 at once about 5.7x.
 */
export function defaultConcurrency(provider: 'e2b' | 'local', cores: number): number {
  if (provider === 'e2b') return E2B_CONCURRENCY;
  return Math.min(LOCAL_CONCURRENCY.max, LOCAL_CONCURRENCY.perCore * Math.max(1, Math.floor(cores)));
}

/**
 * Starts the execution service: the embedded local cloud unless `connection` is given, then the pool
 * (which first kills sandboxes an earlier crashed run of the same owner left behind).
 * @throws InvalidInputError naming the option at fault (TemplateNotFoundError when the provider has no
 * such `template`); ProviderUnreachableError when the provider cannot be reached.
 */
export async function createExecService(options: ExecServiceOptions = {}): Promise<ExecService> {
  const logger = options.logger ?? createLogger('exec');
  const clock = options.clock ?? new SystemClock();
  const sessionOptions = {
    maxSessions: wholeNumber('sessions.maxSessions', options.sessions?.maxSessions ?? 4, 0),
    maxSessionsPerUser: wholeNumber('sessions.maxSessionsPerUser', options.sessions?.maxSessionsPerUser ?? 1, 0),
    idleTimeoutMs: wholeNumber('sessions.idleTimeoutMs', options.sessions?.idleTimeoutMs ?? 300_000, 1),
  };
  const prewarm = options.prewarmLanguages ?? ['python', 'javascript'];
  // Checked before anything starts, so bad options leave nothing running.
  const executor = new Executor({ ...options.executor, clock });
  const embedded = options.connection === undefined;
  // Sandboxes on this machine: the embedded local cloud, or a `connection` with `sandboxUrl` (a local cloud needs it; E2B cloud has none).
  const local = options.connection === undefined || options.connection.sandboxUrl !== undefined;
  const queue = new FairQueue({ ...options.queue, concurrency: options.queue?.concurrency ?? defaultConcurrency(local ? 'local' : 'e2b', availableParallelism()), clock });
  const cache = new ResultCache<ExecutionOutcome>({ ...options.cache, clock });
  const resilience = new SandboxResilience(options.resilience);
  const rateLimit = { ...(embedded ? LOCAL_CLOUD_RATE_LIMIT : {}), ...options.rateLimit };
  compileRateLimiterOptions(rateLimit);

  const localCloud = embedded
    ? await startLocalCloud({
        ...options.localCloud,
        templates: [{ name: EXEC_TEMPLATE, files: { [BUILD_TAG_FILE]: EMBEDDED_TAG_CONTENT } }],
        logger: logger.child({ component: 'localcloud' }),
      })
    : undefined;
  const connection = options.connection ?? localCloud!.connection;
  // Without a local cloud of its own nothing runs yet, so a missing API key throws here with nothing to close.
  const provider = createSandboxProvider({ connection, rateLimit, clock });
  const limiter = provider.rateLimiter;
  const template = options.template ?? (embedded ? EXEC_TEMPLATE : 'code-interpreter-v1');
  // Only the embedded template is known to carry the build tag; another one named on the embedded cloud is used as it is.
  const ownTemplate = embedded && template === EXEC_TEMPLATE;
  const buildTag = options.buildTag ?? (ownTemplate ? EXEC_BUILD_TAG : undefined);
  const tidyable = new WeakSet<Sandbox>();
  const { concurrency } = queue.config;
  // Sandboxes on this machine cost memory only while idle: hold one being cleaned beside each running
  // one, and keep them all between bursts, so no burst waits for a clean-up or pays for creations.
  const warmSize = local ? 2 * concurrency : concurrency;
  const maxSize = options.pool?.maxSize ?? Math.max(warmSize, options.pool?.targetSize ?? 0, options.pool?.minSize ?? 0);
  const targetSize = options.pool?.targetSize ?? Math.min(maxSize, Math.max(options.pool?.minSize ?? 0, warmSize));
  const minSize = options.pool?.minSize ?? (local ? targetSize : undefined);
  // Starting is done once a full burst can run at once; the sandboxes held for clean-ups follow in the background.
  const readyOnStart = options.pool?.readyOnStart ?? (minSize === undefined ? undefined : Math.min(concurrency, minSize));
  let pool: SandboxPool;
  let sessionPool: SandboxPool | undefined;
  try {
    const shared: SandboxPoolOptions = {
      ...options.pool,
      provider,
      template,
      ...(buildTag === undefined ? {} : { buildTag }),
      allowInternetAccess: options.allowInternetAccess ?? false,
      clock,
      prepare: async (sandbox) => {
        // Asked once, before any caller's code ran in it, so no caller can fake the answer; a sandbox
        // that cannot be asked is scrubbed.
        const [, local] = await Promise.all([executor.prepare(sandbox, prewarm), sandbox.files.exists(LOCAL_INTERPRETER_MARKER).catch(() => false)]);
        if (local) tidyable.add(sandbox);
      },
    };
    pool = new SandboxPool({
      ...shared,
      maxSize,
      targetSize,
      ...(minSize === undefined ? {} : { minSize }),
      ...(readyOnStart === undefined ? {} : { readyOnStart }),
      logger: logger.child({ component: 'pool' }),
    });
    // Sessions hold a sandbox each for minutes, so they draw from a pool of their own: taken from the
    // stateless pool, they left its executions waiting for sandboxes while holding their turns; with
    // room for them there, those executions made new sandboxes instead of waiting a few milliseconds
    // for a clean-up (measured: twice the CPU under the exec benchmark's load). Made when opened, kept
    // (clean) for the next session until idle for the pool's idleShrinkAfterMs.
    if (sessionOptions.maxSessions > 0) {
      sessionPool = new SandboxPool({ ...shared, minSize: 0, targetSize: 0, maxSize: sessionOptions.maxSessions, logger: logger.child({ component: 'session-pool' }) });
    }
    await pool.start();
    await sessionPool?.start();
  } catch (error) {
    await sessionPool?.close().catch(() => undefined);
    await localCloud?.close();
    if (providerFailureOf(error) === 'unreachable') throw new ProviderUnreachableError(connection.apiUrl ?? process.env.E2B_API_URL ?? 'E2B cloud (the SDK\'s default address)', { cause: error });
    const missing = missingTemplate(error);
    if (missing !== undefined) throw new TemplateNotFoundError(template, missing.message, 'template', { cause: missing });
    throw error;
  }
  // The exact bytes of the build-tag file are known for the embedded template only; there the scrub
  // also checks the kept file is unchanged.
  const buildTagContent = ownTemplate && options.buildTag === undefined ? EMBEDDED_TAG_CONTENT : undefined;
  return new Service({ executor, queue, cache, resilience, limiter, pool, sessionPool, localCloud, clock, logger, sessionOptions, buildTagContent, tidyable });
}

interface ServiceParts {
  readonly executor: Executor;
  readonly queue: FairQueue;
  readonly cache: ResultCache<ExecutionOutcome>;
  readonly resilience: SandboxResilience;
  readonly limiter: RateLimiter;
  readonly pool: SandboxPool;
  /** Sandboxes of open sessions (none when sessions are off). */
  readonly sessionPool: SandboxPool | undefined;
  readonly localCloud: LocalCloud | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sessionOptions: { readonly maxSessions: number; readonly maxSessionsPerUser: number; readonly idleTimeoutMs: number };
  /** What the build-tag file must hold after every caller, when known. */
  readonly buildTagContent: string | undefined;
  /** Sandboxes of the local cloud, whose interpreter guarantees make the quick tidy-up sound (see `tidy`). */
  readonly tidyable: WeakSet<Sandbox>;
}

class Service implements ExecService {
  readonly localCloud: LocalCloud | undefined;
  private readonly sessions = new Map<string, OpenSession>();
  private readonly scrubs = new Set<Promise<void>>();
  private readonly latency = { total: new LatencyWindow(), queueWait: new LatencyWindow(), execution: new LatencyWindow() };
  private readonly perUser = new Map<string, { requests: number; totalMs: LatencyWindow }>();
  private readonly counts = { total: 0, ok: 0, codeErrors: 0, timedOut: 0, fromCache: 0, rejectedBusy: 0, invalid: 0, failed: 0 };
  private poolLookups = 0;
  private poolHits = 0;
  private tidied = 0;
  private tidyFailures = 0;
  private scrubbed = 0;
  private scrubFailures = 0;
  private readonly prom: ExecPrometheus;
  private closePromise: Promise<void> | undefined;

  constructor(private readonly parts: ServiceParts) {
    this.localCloud = parts.localCloud;
    this.prom = new ExecPrometheus(() => this.metrics());
  }

  async exec(input: ExecRequest): Promise<ExecResult> {
    const startedMs = this.parts.clock.now();
    this.counts.total++;
    try {
      if (this.closePromise) throw new ExecServiceClosedError();
      const { signal, ...raw } = input ?? ({} as ExecRequest);
      const request = parseExecRequest(raw);
      this.parts.executor.timeoutFor(request);
      const result = request.session === undefined ? await this.runStateless(request, startedMs, signal) : await this.runInSession(request, request.session, startedMs, signal);
      this.record(result);
      return result;
    } catch (error) {
      this.recordFailure(error);
      throw error;
    }
  }

  async openSession(options: { user?: string; signal?: AbortSignal }): Promise<ExecSessionInfo> {
    if (this.closePromise) throw new ExecServiceClosedError();
    const user = userOf(options.user);
    const { maxSessions, maxSessionsPerUser, idleTimeoutMs } = this.parts.sessionOptions;
    if (maxSessions === 0) throw new SessionLimitError('service', 0);
    if ([...this.sessions.values()].filter((session) => session.user === user).length >= maxSessionsPerUser) throw new SessionLimitError('user', maxSessionsPerUser);
    if (this.sessions.size >= maxSessions) throw new SessionLimitError('service', maxSessions, this.soonestIdleCloseMs());
    const id = `ses_${randomId(20)}`;
    // Reserve the slot before waiting for a sandbox, so concurrent opens cannot pass the limits.
    const session: OpenSession = { id, user, lease: undefined, chain: Promise.resolve(), idleTimer: undefined, idleAtMs: undefined, closing: false };
    this.sessions.set(id, session);
    let lease: Lease;
    try {
      const sessionPool = this.parts.sessionPool;
      if (sessionPool === undefined) throw new SessionLimitError('service', 0);
      lease = await this.parts.resilience.execute(() => sessionPool.acquire(options.signal), options.signal);
    } catch (error) {
      this.sessions.delete(id);
      throw error;
    }
    session.lease = lease;
    this.touch(session);
    this.parts.logger.info({ session: id, user, sandboxId: lease.id }, 'session opened');
    return { session: id, user, sandboxId: lease.id, idleTimeoutMs };
  }

  async closeSession(id: string, options: { user?: string } = {}): Promise<void> {
    await this.endSession(this.sessionOf(id, userOf(options.user)).session);
  }

  metrics(): ExecServiceMetrics {
    const cache = this.parts.cache.stats();
    const lookups = cache.hits + cache.misses;
    const breaker = this.parts.resilience.stats();
    return {
      requests: { ...this.counts },
      latencyMs: { total: this.latency.total.summary(), queueWait: this.latency.queueWait.summary(), execution: this.latency.execution.summary() },
      users: Object.fromEntries([...this.perUser].map(([user, figures]) => [user, { requests: figures.requests, totalMs: figures.totalMs.summary() }])),
      poolHitRate: this.poolLookups === 0 ? null : this.poolHits / this.poolLookups,
      cacheHitRate: lookups === 0 ? null : cache.hits / lookups,
      pool: this.parts.pool.stats(),
      sessionPool: this.parts.sessionPool?.stats() ?? null,
      queue: this.parts.queue.stats(),
      cache,
      breaker: { state: breaker.state, retries: breaker.retries, transientFailures: breaker.transientFailures, rejectedOpen: breaker.rejectedOpen, opened: breaker.opened },
      rateLimiter: this.parts.limiter.snapshot(),
      sessions: [...this.sessions.values()].filter((session) => session.lease !== undefined).length,
      scrubbing: this.scrubs.size,
      tidied: this.tidied,
      tidyFailures: this.tidyFailures,
      scrubbed: this.scrubbed,
      scrubFailures: this.scrubFailures,
    };
  }

  prometheus(): Promise<{ contentType: string; body: string }> {
    return this.prom.render();
  }

  close(): Promise<void> {
    this.closePromise ??= this.closeOnce();
    return this.closePromise;
  }

  private async closeOnce(): Promise<void> {
    await this.parts.queue.onIdle();
    await Promise.all([...this.sessions.values()].filter((session) => session.lease !== undefined && !session.closing).map((session) => this.endSession(session)));
    while (this.scrubs.size > 0) await Promise.all([...this.scrubs]);
    await Promise.all([this.parts.pool.close(), this.parts.sessionPool?.close()]);
    await this.localCloud?.close();
  }

  private async runStateless(request: ParsedExecRequest, startedMs: number, signal: AbortSignal | undefined): Promise<ExecResult> {
    const judgement = judgeDeterminism(request.code, request.language);
    const cacheRequest = { code: request.code, language: request.language, env: request.env };
    const base = { language: request.language, user: request.user, deterministic: judgement.deterministic, determinism: judgement.reasons };
    if (judgement.deterministic) {
      const lookup = this.parts.cache.get(cacheRequest);
      if (lookup.hit) {
        return { ...lookup.value, ...base, queueWaitMs: 0, totalMs: this.parts.clock.now() - startedMs, fromCache: true, cacheAgeMs: lookup.ageMs, attempts: 0 };
      }
    }
    let queueWaitMs = 0;
    let attempts = 0;
    this.updateDemand(1);
    const outcome = await this.parts.queue
      .run(
        request.user,
        (taskSignal) => {
          queueWaitMs = this.parts.clock.now() - startedMs;
          this.updateDemand(0);
          return this.parts.resilience.execute(({ attempt }) => {
            attempts = attempt;
            // No execution waits longer than the queue's maxWaitMs before it starts: its turn and its
            // sandbox together (a retry, on another sandbox, starts a new wait).
            const maxWaitMs = this.parts.queue.config.maxWaitMs;
            return this.runOnPool(request, taskSignal, attempt === 1 ? maxWaitMs - queueWaitMs : maxWaitMs);
          }, taskSignal);
        },
        { priority: request.priority, ...(signal ? { signal } : {}) },
      )
      .finally(() => this.updateDemand(0));
    // What the environment did to an execution (time-out, out of memory, interpreter stopped) says nothing of the next run.
    if (judgement.deterministic && outcome.environmentFailure === undefined) this.parts.cache.set(cacheRequest, outcome);
    return { ...outcome, ...base, queueWaitMs, totalMs: this.parts.clock.now() - startedMs, fromCache: false, attempts };
  }

  /**
   * One attempt: lease a sandbox (waiting at most `waitBudgetMs`, else a retryable `QueueTimeoutError`),
   * run, and hand the sandbox to be cleaned before anyone else gets it.
   */
  private async runOnPool(request: ParsedExecRequest, signal: AbortSignal, waitBudgetMs: number): Promise<ExecutionOutcome> {
    await this.parts.limiter.acquire('operation', signal);
    this.poolLookups++;
    if (this.parts.pool.stats().idle > 0) this.poolHits++;
    const lease = await this.acquireWithin(signal, waitBudgetMs);
    let outcome: ExecutionOutcome;
    try {
      outcome = await this.parts.executor.run(lease.sandbox, request);
    } catch (error) {
      this.parts.limiter.report('operation', providerFailureOf(error) === 'rate-limited' ? 'rate-limited' : 'failed');
      // A sandbox whose state is unknown is never handed to someone else.
      void lease.release('broken');
      throw error;
    }
    this.parts.limiter.report('operation', 'ok');
    this.scrubInBackground(lease);
    return outcome;
  }

  /** A lease from the pool, or a `QueueTimeoutError` once `budgetMs` has passed without one. */
  private async acquireWithin(signal: AbortSignal, budgetMs: number): Promise<Lease> {
    const { clock, pool, queue } = this.parts;
    const maxWaitMs = queue.config.maxWaitMs;
    if (!Number.isFinite(maxWaitMs)) return pool.acquire(signal);
    const controller = new AbortController();
    let expired: QueueTimeoutError | undefined;
    const timer = clock.setTimeout(() => {
      expired = new QueueTimeoutError(queue.suggestedRetryAfterMs(), maxWaitMs);
      controller.abort(expired);
    }, Math.max(0, budgetMs));
    const forward = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', forward, { once: true });
    try {
      return await pool.acquire(controller.signal);
    } catch (error) {
      throw expired !== undefined && !signal.aborted ? expired : error;
    } finally {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', forward);
    }
  }

  /**
   * Cleans a used sandbox off the response path, then returns it to the pool (or has it replaced):
   * tidied up quickly when only Python ran in it on the local cloud (see `tidy`), else scrubbed. The
   * scrub kills every process of `user`, interpreter workers included; then every context is reset, in
   * parallel, so the next caller meets a warm one. On the local cloud a reset is cheap: the Python
   * zygote forks a worker (about a millisecond), and a JavaScript kernel that ran nothing since its
   * start is still fresh (it runs as root until its first execution, out of reach of user code and of
   * the scrub); only one that ran code is started again.
   */
  private scrubInBackground(lease: Lease): void {
    const scrub = (async () => {
      try {
        // After the caller has its answer: starting the command's request is CPU work it need not wait for.
        await new Promise((resolve) => setImmediate(resolve));
        await this.parts.limiter.acquire('operation');
        if (await this.tidy(lease)) {
          this.tidied++;
        } else {
          await scrubSandbox(lease.sandbox, this.hygieneOptions());
          await this.parts.executor.resetContexts(lease.sandbox);
          this.scrubbed++;
        }
        await lease.release('ok');
      } catch (error) {
        this.scrubFailures++;
        this.parts.logger.warn({ sandboxId: lease.id, error: errorMessage(error) }, 'could not clean a used sandbox; it is replaced');
        await lease.release('broken');
      }
    })();
    this.scrubs.add(scrub);
    void scrub.finally(() => this.scrubs.delete(scrub));
  }

  /**
   * The quick clean-up: less CPU than a scrub and reset, as it starts no shell as root and restarts one
   * interpreter only. Taken only when it is sound: on the local cloud (its interpreter guarantees, see
   * `LOCAL_INTERPRETER_MARKER`), when nothing but the executor's Python context ran code since the last clean-up and no context was
   * lost meanwhile. Then restarting that context ends every process of `user` there is, so the fresh
   * worker it forks cannot have been reached by any of them, and is trusted to check that and remove
   * the files (`tidySandbox`). That worker is the next caller's: it ran only the tidy-up, which leaves
   * no name behind, and no process of `user` is left to have reached it. (A second restart here cost
   * 17% of the machine's CPU under the exec benchmark's load, measured, for no caller-visible gain.)
   * @returns false when the sandbox must be scrubbed instead (also when the tidy-up found something).
   */
  private async tidy(lease: Lease): Promise<boolean> {
    const { executor, logger } = this.parts;
    const usage = executor.takeUsage(lease.sandbox);
    const context = executor.existingContext(lease.sandbox, 'python');
    if (!this.parts.tidyable.has(lease.sandbox) || usage.contextDropped || usage.languages.has('javascript') || context === undefined) return false;
    const restart = async (): Promise<void> => {
      if ((await executor.resetContexts(lease.sandbox, ['python'])) !== 1) throw new SandboxTidyError(lease.id, 'the Python context could not be restarted');
    };
    try {
      await restart();
      await tidySandbox(lease.sandbox, await context, this.hygieneOptions());
      return true;
    } catch (error) {
      this.tidyFailures++;
      logger.warn({ sandboxId: lease.id, error: errorMessage(error) }, 'could not tidy up a used sandbox; scrubbing it');
      return false;
    }
  }

  /** Keep the build tag; check its content too when it is known. */
  private hygieneOptions(): ScrubOptions {
    const tagPath = this.parts.pool.config.buildTagPath;
    return { keep: [tagPath], ...(this.parts.buildTagContent === undefined ? {} : { expect: { [tagPath]: this.parts.buildTagContent } }) };
  }

  /**
   * The open session `id` of `user`, with its sandbox.
   * @throws SessionNotFoundError when there is none: the same error whether no session has that id or
   *   another user's has, so a caller learns nothing of the sessions of others.
   */
  private sessionOf(id: string, user: string): { session: OpenSession; lease: Lease } {
    const session = this.sessions.get(id);
    const lease = session?.lease;
    if (session === undefined || session.closing || lease === undefined || session.user !== user) throw new SessionNotFoundError(id);
    return { session, lease };
  }

  /** How long until the soonest open session is closed for being idle, if nobody uses it meanwhile (at least 1 s). */
  private soonestIdleCloseMs(): number {
    const now = this.parts.clock.now();
    // A session being closed frees its place within moments.
    const closes = [...this.sessions.values()].flatMap((session) => (session.closing ? [0] : session.idleAtMs === undefined ? [] : [session.idleAtMs - now]));
    return Math.max(1000, Math.min(this.parts.sessionOptions.idleTimeoutMs, ...closes));
  }

  private async runInSession(request: ParsedExecRequest, id: string, startedMs: number, signal: AbortSignal | undefined): Promise<ExecResult> {
    const { session, lease } = this.sessionOf(id, request.user);
    let queueWaitMs = 0;
    const run = async (): Promise<ExecutionOutcome> =>
      this.parts.queue.run(
        request.user,
        async () => {
          queueWaitMs = this.parts.clock.now() - startedMs;
          try {
            return await this.parts.executor.run(lease.sandbox, { ...request, stateful: true });
          } catch (error) {
            if (isTransient(error)) {
              this.sessions.delete(session.id);
              void lease.release('broken');
              throw new SessionLostError(session.id, { cause: error });
            }
            throw error;
          }
        },
        { priority: request.priority, ...(signal ? { signal } : {}) },
      );
    const pending = session.chain.then(run, run);
    session.chain = pending.catch(() => undefined);
    const outcome = await pending;
    this.touch(session);
    return {
      ...outcome,
      language: request.language,
      user: request.user,
      queueWaitMs,
      totalMs: this.parts.clock.now() - startedMs,
      fromCache: false,
      deterministic: false,
      determinism: ['runs in a session, whose state earlier executions changed'],
      attempts: 1,
      session: session.id,
    };
  }

  private touch(session: OpenSession): void {
    if (session.idleTimer !== undefined) this.parts.clock.clearTimeout(session.idleTimer);
    const { idleTimeoutMs } = this.parts.sessionOptions;
    session.idleAtMs = this.parts.clock.now() + idleTimeoutMs;
    session.idleTimer = this.parts.clock.setTimeout(() => {
      session.idleTimer = undefined;
      session.idleAtMs = undefined;
      this.parts.logger.info({ session: session.id }, 'session closed after being idle');
      void this.endSession(session);
    }, idleTimeoutMs);
  }

  private async endSession(session: OpenSession): Promise<void> {
    if (session.closing) return;
    session.closing = true;
    if (session.idleTimer !== undefined) this.parts.clock.clearTimeout(session.idleTimer);
    await session.chain;
    this.sessions.delete(session.id);
    if (session.lease !== undefined) this.scrubInBackground(session.lease);
  }

  /**
   * Tells the pool about queued executions that could start now. Those waiting for a turn behind
   * running ones need no sandbox of their own: each running one hands its sandbox on (after the scrub).
   */
  private updateDemand(extra: number): void {
    const { running, waiting } = this.parts.queue.stats();
    this.parts.pool.setDemand(Math.min(waiting + extra, Math.max(0, this.parts.queue.config.concurrency - running)));
  }

  private record(result: ExecResult): void {
    if (result.fromCache) this.counts.fromCache++;
    if (result.timedOut) this.counts.timedOut++;
    else if (result.error) this.counts.codeErrors++;
    else this.counts.ok++;
    this.latency.total.record(result.totalMs);
    if (!result.fromCache) {
      this.latency.queueWait.record(result.queueWaitMs);
      this.latency.execution.record(result.durationMs);
    }
    const user = this.perUser.get(result.user) ?? { requests: 0, totalMs: new LatencyWindow() };
    user.requests++;
    user.totalMs.record(result.totalMs);
    this.perUser.set(result.user, user);
    this.prom.observe(result);
  }

  private recordFailure(error: unknown): void {
    const kind = error instanceof InvalidInputError ? 'invalid' : (error as { retryable?: unknown }).retryable === true && (error as { retryAfterMs?: unknown }).retryAfterMs !== undefined ? 'rejectedBusy' : 'failed';
    this.counts[kind]++;
    this.prom.observeFailure(kind);
  }
}
