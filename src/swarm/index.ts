export { swarmSectionSchema, parseSwarmSection, parseSwarmSpec, loadSwarmSpec, swarmSpecWarnings, type SwarmSection, type SwarmSpec } from './spec.js';
export { type AgentAbsence } from './absences.js';
export { runSwarm, type RunSwarmOptions, type RunningSwarm, type SandboxTarget, type SwarmOutcome, type SwarmReport } from './orchestrator.js';
export { SwarmRunError, SwarmStoppedError, type SwarmEvent, type AgentReport } from './fleet.js';
export { type SwarmLatency, type SwarmAgreement } from './ledger.js';
export { summarize, type LatencySummary } from './stats.js';
