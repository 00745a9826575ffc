export { swarmSectionSchema, parseSwarmSection, parseSwarmSpec, loadSwarmSpec, type SwarmSection, type SwarmSpec } from './spec.js';
export { runSwarm, type RunSwarmOptions, type RunningSwarm, type SandboxTarget, type SwarmReport } from './orchestrator.js';
export { SwarmRunError, type SwarmEvent, type AgentReport } from './fleet.js';
export { type SwarmLatency, type SwarmAgreement } from './ledger.js';
export { summarize, type LatencySummary } from './stats.js';
