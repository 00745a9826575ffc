// The chaos suite's public face (issue 16): a seeded schedule of faults, injected from outside into a
// deployment under a real `tradeswarm serve`, and the run compared with the fault-free one.
export { FAULT_KINDS, AGENT_FAULTS, planSchedule, type FaultKind, type MsRange, type ScheduleOptions, type ScheduledFault } from './schedule.js';
export { compareRuns, withFillStatus, type Comparison, type ComparedFill, type ComparedOrder, type ComparedPortfolio, type Difference, type DuplicateId, type RunOutcome } from './compare.js';
export { runChaos, TOPOLOGIES, type Topology, type ChaosOptions } from './runner.js';
export { topologyOk, type ChaosResult, type TopologyResult } from './result.js';
export { type FaultResult } from './injectors.js';
export { type TradeswarmCommand, type RunningProcess, killChildren } from './processes.js';
export { startCloud, startBroker, type CloudSettings } from './lab.js';
export { summarizeFaults, formatChaosReport, type KindSummary, type TimeSummary } from './report.js';
