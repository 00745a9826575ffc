export { swarmSectionSchema, parseSwarmSection, parseSwarmSpec, loadSwarmSpec, swarmSpecWarnings, type SwarmSection, type SwarmSpec } from './spec.js';
export { type AgentAbsence } from './absences.js';
export { runSwarm, type RunSwarmOptions, type RunningSwarm, type SandboxTarget } from './run.js';
export { type SwarmOutcome, type SwarmReport } from './report.js';
export {
  Deployment,
  DeploymentStateError,
  deploymentTransition,
  planOf,
  type DeploymentOptions,
  type DeploymentPlacement,
  type DeploymentSnapshot,
  type DeploymentState,
  type DeploymentEvent,
} from './deployment.js';
export { type AgentLauncher, type LaunchRequest, type LaunchedAgent, type AgentProcessExit } from './launcher.js';
export { SandboxLauncher, AGENT_SANDBOX_OWNER, type SandboxLauncherOptions } from './sandboxes.js';
export { SwarmRunError, SwarmStoppedError, type SwarmEvent, type AgentReport } from './fleet.js';
export { type SwarmLatency, type SwarmAgreement } from './ledger.js';
