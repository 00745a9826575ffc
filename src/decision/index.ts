export {
  DecisionPipeline,
  type AccountSnapshot,
  type DecisionRejection,
  type DecisionSummary,
  type RiskStateSummary,
  type AllocationSummary,
} from './pipeline.js';
export { compileConsensusOptions, type ConsensusOptions, type ConsensusTallySummary } from './consensus.js';
export { compilePortfolioAllocatorOptions, Weighting, type PortfolioAllocatorOptions } from './allocator.js';
export { compileRiskManagerOptions, type RiskManagerOptions } from './risk.js';
