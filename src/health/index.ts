export {
  HEALTH_STATUSES,
  HEALTH_LEVELS,
  TROUBLE_STATUSES,
  type HealthStatus,
  type HealthLevel,
  type HealthReason,
  type SandboxObservation,
  type AgentSelfReport,
  type HealthObservation,
  type HealthThresholds,
  assessHealth,
  compileHealthThresholds,
  worseOf,
} from './health.js';
export { HealthMonitor, type HealthMonitorOptions, type HealthProbe, type MonitoredAgent, type AgentHealth } from './monitor.js';
export { RECOVERY_MODES, type RecoveryMode, type RecoveryRung, type RecoveryPolicy, type RecoveryState, nextRung, withinWindow } from './recovery.js';
export {
  LeaderElection,
  type LeaderElectionOptions,
  type LeaseView,
  type WriteFence,
  type ElectionState,
  type ElectionEvent,
  ElectionStateError,
  electionTransition,
} from './leader.js';
export { LeaseLostError, isLeaseLostError } from './errors.js';
