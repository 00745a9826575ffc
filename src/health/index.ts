export { HEALTH_STATUSES, HEALTH_LEVELS, TROUBLE_STATUSES, type HealthStatus, type HealthReason, type SandboxObservation, type AgentSelfReport } from './health.js';
export { HealthMonitor, type MonitoredAgent, type AgentHealth } from './monitor.js';
export { type RecoveryMode, type RecoveryRung, type RecoveryPolicy, nextRung, withinWindow } from './recovery.js';
export { DEFAULT_LEASE_TTL_MS, LeaderElection, type LeaseView, type WriteFence } from './leader.js';
export { LeaseLostError, isLeaseLostError } from './errors.js';
