export { parseSwarmSpec, loadSwarmSpec, swarmSpecWarnings, type SwarmSpec } from './spec.js';
export { runSwarm, type RunSwarmOptions, type RunningSwarm } from './run.js';
export { startSwarmRuntime, type SwarmRuntime, type SwarmRuntimeOptions, type SandboxTarget } from './runtime.js';
export { type SwarmOutcome, type SwarmReport } from './report.js';
export { type AgentAbsence } from './absences.js';
export { SwarmRunError, SwarmStoppedError, type SwarmEvent, type AgentReport } from './fleet.js';
export { type SwarmLatency, type SwarmAgreement } from './ledger.js';
