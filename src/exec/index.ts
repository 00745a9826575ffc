export {
  TokenBucket,
  RateLimiter,
  compileRateLimiterOptions,
  E2B_CREATION_PER_SECOND,
  HEALTH,
  type TokenBucketOptions,
  type TokenBucketState,
  type RateLimitKind,
  type RateLimitOutcome,
  type E2bPlan,
  type RateLimiterOptions,
  type RateLimiterConfig,
  type RateLimiterState,
  type RateLimiterHealth,
  type RateLimiterSnapshot,
  type RateLimitKindSnapshot,
} from './ratelimit.js';
export {
  FairQueue,
  compileFairQueueOptions,
  type FairQueueOptions,
  type FairQueueConfig,
  type FairQueueRunOptions,
  type FairQueueStats,
} from './fairqueue.js';
export {
  Executor,
  compileExecutorOptions,
  EXEC_LANGUAGES,
  type ExecLanguage,
  type ExecutorOptions,
  type ExecutorConfig,
  type ExecutionRequest,
  type ExecutionOutcome,
} from './executor.js';
export {
  SandboxResilience,
  compileResilienceOptions,
  isTransient,
  type ResilienceOptions,
  type ResilienceConfig,
  type BreakerState,
} from './resilience.js';
export {
  ProviderUnavailableError,
  RateLimitWaitAbortedError,
  isRateLimitWaitAbortedError,
  QueueFullError,
  QueueTimeoutError,
  isQueueFullError,
  isQueueTimeoutError,
} from './errors.js';
