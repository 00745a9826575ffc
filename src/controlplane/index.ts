export {
  ENVIRONMENTS,
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
export { CapacityError, TierNotAllowedError } from './errors.js';
