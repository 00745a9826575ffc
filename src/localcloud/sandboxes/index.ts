export { SandboxManager, type SandboxNetwork, type CreateSandboxRequest, type ListFilter, type ListOrder, type SandboxManagerConfig } from './manager.js';
export { LocalSandbox, type NetworkMode, type SandboxMetric, type SandboxUser, type SpawnOptions, type SandboxSettings } from './sandbox.js';
export { SandboxState, transition, type SandboxEvent } from './state.js';
export { resolveSandboxPath, toHostPath, type ResolvedPath, type WritableRoots } from './paths.js';
export { claimInstanceDir, instanceState, cleanStaleDataDirs, cleanStaleTempRoots, TEMP_ROOT_PREFIX, type InstanceClaim, type InstanceState } from './ownership.js';
