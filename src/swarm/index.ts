export { swarmSectionSchema, parseSwarmSection, parseSwarmSpec, loadSwarmSpec, type SwarmSection, type SwarmSpec } from './spec.js';
export {
  runSwarm,
  SwarmRunError,
  type RunSwarmOptions,
  type RunningSwarm,
  type SandboxTarget,
  type SwarmEvent,
  type SwarmReport,
  type AgentReport,
} from './orchestrator.js';
export { summarize, type LatencySummary } from './stats.js';
