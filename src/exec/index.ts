export {
  FairQueue,
  compileFairQueueOptions,
  type FairQueueOptions,
  type FairQueueConfig,
  type FairQueueRunOptions,
  type FairQueueStats,
} from './fairqueue.js';
export { judgeDeterminism, DETERMINISTIC_REASON, type CodeLanguage, type DeterminismJudgement } from './determinism.js';
export {
  ResultCache,
  cacheKey,
  compileResultCacheOptions,
  type CacheRequest,
  type CacheLookup,
  type ResultCacheOptions,
  type ResultCacheConfig,
  type ResultCacheStats,
} from './cache.js';
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
export { type EnvironmentFailure, type InterpreterError } from './failures.js';
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
  ProviderUnreachableError,
  QueueFullError,
  QueueTimeoutError,
  isQueueFullError,
  isQueueTimeoutError,
  ExecServiceClosedError,
  SessionNotFoundError,
  SessionLimitError,
  SessionLostError,
  InterpreterLostError,
} from './errors.js';
export {
  createExecService,
  EXEC_TEMPLATE,
  EXEC_BUILD_TAG,
  type ExecService,
  type ExecServiceOptions,
  type ExecRequest,
  type ExecResult,
  type ExecSessionInfo,
  type ExecServiceMetrics,
} from './service.js';
export { parseExecRequest, execRequestSchema, MAX_CODE_BYTES, type ExecRequestInput, type ParsedExecRequest } from './request.js';
export { scrubCommand, scrubSandbox, type ScrubOptions } from './hygiene.js';
export { LatencyWindow, type LatencySummary } from './latency.js';
export { buildExecHttpApp, startExecHttpServer, statusForError, type ExecHttpOptions, type ExecHttpServer } from './http.js';
export { createExecMcpServer, describeResult, type ExecMcpOptions } from './mcp.js';
