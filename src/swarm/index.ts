export { parseSwarmSpec, parseSwarmSpecText, parseSwarmSection, type SwarmSection, loadSwarmSpec, swarmSpecWarnings, type SwarmSpec } from './spec.js';
export { runSwarm, type RunSwarmOptions, type RunningSwarm } from './run.js';
export { startSwarmRuntime, type SwarmRuntime, type SwarmRuntimeOptions, type SandboxTarget } from './runtime.js';
export { type SwarmOutcome, type SwarmReport } from './report.js';
export { type AgentAbsence } from './absences.js';
export { SwarmRunError, SwarmStoppedError, type SwarmEvent, type AgentReport } from './fleet.js';
export { type SwarmLatency, type SwarmAgreement } from './ledger.js';
export { Deployment, planOf, type DeploymentState, type DeploymentSnapshot, type DeploymentOptions, type DeploymentPlacement } from './deployment.js';
export { type ClosedStep, type DeploymentJournal, type JournalReplay, type JournaledStep, type JournaledOrder, type JournaledSubmission } from './journal.js';
