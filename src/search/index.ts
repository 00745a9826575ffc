export {
  METRICS,
  WalkForwardMode,
  type FoldResult,
  type Metric,
  type ParameterValue,
  type RunStatistics,
  type SearchResult,
  type SearchRow,
  type StepRange,
} from './result.js';
