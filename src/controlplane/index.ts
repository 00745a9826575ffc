export {
  FAILOVER_MODES,
  RESOURCE_TIERS,
  allowedTiers,
  checkCapacity,
  compileEnvironments,
  loadEnvironments,
  tierFor,
  type Environment,
  type EnvironmentName,
  type Environments,
  type FailoverMode,
  type ResourceTier,
  type TierName,
} from './environments.js';
export { CapacityError, DeploymentNameTakenError, DeploymentNotFoundError, NotLeaderError, TierNotAllowedError, type LeaderPointer } from './errors.js';
export { ElectedControlPlane, type ElectedControlPlaneOptions, type RoleChange, type ServerRole, type ServerHealth } from './leadership.js';
export { ControlPlane, type ControlPlaneOptions, type DeployRequest, type DeploymentView, type DeploymentStatus } from './controlplane.js';
export { ControlPlaneRepository, type EventRecord, type OrderRecord, type FillRecord, type StoreChange } from './repository.js';
export { controlPlaneRoutes, controlPlaneErrorStatus, type ControlPlaneRoutesOptions } from './http.js';
export { type AgentLogLine } from './agentlogs.js';
