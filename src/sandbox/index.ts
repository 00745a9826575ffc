export {
  buildBundle,
  pruneDiskCache,
  compileBuildBundleOptions,
  DEFAULT_BUNDLE_CACHE_DIR,
  type AgentBundle,
  type BuildBundleOptions,
  type BuildBundleConfig,
} from './bundle.js';
export {
  deployAgent,
  defaultBundlePath,
  agentFiles,
  compileDeployAgentOptions,
  AGENT_SIGNALS,
  DEFAULT_AGENT_DIR,
  type AgentSignal,
  type AgentExit,
  type DeployAgentOptions,
  type DeployAgentConfig,
  type DeployedAgent,
  type DeploySandbox,
  type StopAgentOptions,
} from './deploy.js';
export { CODE_CACHE_LOADER, codeCacheOf, codeCachePathOf, type CodeCacheUse } from './codecache.js';
export {
  resolveSandboxConnection,
  SANDBOX_KINDS,
  type SandboxKind,
  type SandboxConnection,
  type LocalSandboxConnection,
  type ResolveSandboxConnectionOptions,
} from './connection.js';
export {
  BundleBuildError,
  AgentDeployError,
  AgentStopError,
  formatBundleMessage,
  isBundleBuildError,
  isAgentDeployError,
  isAgentStopError,
  type BundleMessage,
  type AgentDeployStage,
} from './errors.js';
