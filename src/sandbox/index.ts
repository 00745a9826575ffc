export { buildBundle, type AgentBundle } from './bundle.js';
export { deployAgent, attachAgent, agentFiles, defaultBundlePath, DEFAULT_AGENT_DIR, type AgentSignal, type DeployedAgent } from './deploy.js';
export { type CodeCacheUse } from './codecache.js';
export { resolveSandboxConnection, SANDBOX_KINDS, type SandboxKind, type SandboxConnection, type ResolvedSandboxConnection } from './connection.js';
export { MissingApiKeyError } from './errors.js';
export {
  createSandboxProvider,
  inspectSandbox,
  type SandboxCondition,
  LOCAL_CLOUD_RATE_LIMIT,
  type SandboxProvider,
  type SandboxProviderOptions,
  type CreateSandboxOptions,
  type Sandbox,
  type CodeContext,
  type SandboxInfo,
  type SandboxMetrics,
} from './provider.js';
export { providerFailureOf, isCommandExitError, type ProviderFailure } from './failures.js';
export { procLiveness, type ProcessLiveness } from './liveness.js';
export { SandboxOwner, POOL_OWNER_METADATA_KEY, POOL_PROCESS_METADATA_KEY } from './ownership.js';
export { SandboxPool, POOL_ID_METADATA_KEY, type SandboxPoolOptions, type SandboxPoolStats, type Lease } from './pool.js';
export { compileRateLimiterOptions, type RateLimiter, type RateLimiterOptions, type RateLimiterSnapshot } from './ratelimit.js';
export { RESOURCE_TIERS, TIER_NAMES, describeTier, tierTemplateName, type ResourceTier, type TierName } from './tiers.js';
